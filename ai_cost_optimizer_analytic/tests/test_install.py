from pathlib import Path

from odoo.modules.module import get_manifest
from odoo.tests import TransactionCase

CORE_ADDON = Path(__file__).resolve().parents[2] / "ai_cost_optimizer"


class TestInstall(TransactionCase):
    def test_bridge_installs_itself_with_analytic(self):
        """The suite's database is made with ai_cost_optimizer and analytic only (scripts/odoo-pytest): the
        bridge is there because Odoo auto-installed it."""
        bridge = self.env["ir.module.module"].search([("name", "=", "ai_cost_optimizer_analytic")])
        self.assertEqual(bridge.state, "installed")
        self.assertTrue(bridge.auto_install)
        self.assertEqual(set(bridge.dependencies_id.mapped("name")), {"ai_cost_optimizer", "analytic"})

    def test_core_addon_needs_no_analytic(self):
        """The core addon neither depends on analytic nor names its models: it installs and runs without it."""
        self.assertNotIn("analytic", get_manifest("ai_cost_optimizer")["depends"])
        naming = [
            str(path.relative_to(CORE_ADDON)) for path in CORE_ADDON.rglob("*")
            if path.suffix in (".py", ".xml", ".csv", ".js") and "tests" not in path.parts
            and ("account.analytic" in path.read_text() or "analytic.mixin" in path.read_text())
        ]
        self.assertEqual(naming, [])
