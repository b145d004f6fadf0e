"""Static checks of the addon that need no Odoo: XML well-formed, manifest consistent."""

import ast
import csv
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ADDON = Path(__file__).resolve().parent.parent / "ai_cost_optimizer"
MANIFEST = ast.literal_eval((ADDON / "__manifest__.py").read_text())
XML_FILES = sorted(p for p in ADDON.rglob("*.xml") if "node_modules" not in p.parts)


@pytest.mark.parametrize("path", XML_FILES, ids=lambda p: str(p.relative_to(ADDON)))
def test_xml_is_well_formed(path):
    ET.parse(path)


def test_xml_views_use_odoo_18_syntax():
    for path in XML_FILES:
        text = path.read_text()
        assert "<tree" not in text, f"{path.name}: use <list>, not <tree>"
        assert "attrs=" not in text, f"{path.name}: use invisible=/readonly= expressions, not attrs"


def test_manifest_is_sane():
    for key in ("name", "version", "depends", "data", "license"):
        assert key in MANIFEST, f"manifest lacks {key}"
    assert MANIFEST["version"].startswith("18.0."), "an Odoo 18 addon's version starts with 18.0."
    files = MANIFEST["data"] + MANIFEST.get("demo", [])
    for name in files:
        assert (ADDON / name).is_file(), f"manifest lists a missing file: {name}"
    assert len(files) == len(set(files)), "a file is listed twice in the manifest"
    listed = set(files)
    for path in ADDON.glob("*/*.xml"):
        relative = str(path.relative_to(ADDON))
        if relative.startswith(("views/", "security/", "data/", "demo/", "report/", "wizard/")):
            assert relative in listed, f"{relative} exists but the manifest does not load it"


def test_security_is_loaded_first_and_every_model_has_access_rules():
    data = MANIFEST["data"]
    assert data[0] == "security/ai_cost_optimizer_security.xml"
    with (ADDON / "security" / "ir.model.access.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    covered = {row["model_id:id"] for row in rows}
    for path in (ADDON / "models").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            attrs = {
                target.id: stmt.value
                for stmt in node.body
                if isinstance(stmt, ast.Assign)
                for target in stmt.targets
                if isinstance(target, ast.Name)
            }
            name = attrs.get("_name")
            bases = {getattr(base, "attr", None) for base in node.bases}
            if isinstance(name, ast.Constant) and "AbstractModel" not in bases:
                model_id = "model_" + name.value.replace(".", "_")
                assert model_id in covered, f"{name.value} has no line in ir.model.access.csv"
