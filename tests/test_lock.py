"""The locks pin what the suite passed with: every package exactly, each requirement inside its range."""

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCKS = sorted(ROOT.glob("requirements-py*.lock"))


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _pins(lock: Path) -> dict[str, str]:
    pins = {}
    for line in _lines(lock):
        name, separator, version = line.partition("==")
        assert separator and version and " " not in line, f"{lock.name}: {line!r} is not pinned with =="
        pins[canonicalize_name(name)] = version
    return pins


def test_there_is_a_lock_for_the_python_of_the_suite():
    assert (ROOT / "requirements-py311.lock") in LOCKS


@pytest.mark.parametrize("lock", LOCKS, ids=lambda path: path.name)
def test_every_requirement_is_locked_inside_its_range(lock):
    pins = _pins(lock)
    for line in _lines(ROOT / "requirements.txt"):
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is required but not in {lock.name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock.name} pins {requirement.name}=={pins[name]}, outside {requirement.specifier}"
        )
