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


BENCH = ROOT / "bench"
BENCH_LOCKS = sorted(BENCH.glob("requirements-py*.lock"))


def test_there_is_a_bench_lock_for_the_python_of_the_suite():
    assert (BENCH / "requirements-py311.lock") in BENCH_LOCKS


@pytest.mark.parametrize("lock", BENCH_LOCKS, ids=lambda path: f"bench/{path.name}")
def test_the_bench_lock_is_the_main_lock_plus_the_bench_packages(lock):
    """venv-bench runs the addon as the suite does (every pin of the main lock, unchanged), with LiteLLM and
    the openai SDK beside it; they stay out of the main lock: the addon never needs them."""
    main, bench = _pins(ROOT / lock.name), _pins(lock)
    changed = {name: (version, bench.get(name)) for name, version in main.items() if bench.get(name) != version}
    assert not changed, f"bench/{lock.name} differs from {lock.name} (main, bench): {changed}"
    for line in _lines(BENCH / "requirements.txt"):
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name not in main, f"{requirement.name} is a bench-only package, yet in {lock.name}"
        assert name in bench, f"{requirement.name} is required by bench/requirements.txt but not in bench/{lock.name}"
        assert requirement.specifier.contains(bench[name], prereleases=True), (
            f"bench/{lock.name} pins {requirement.name}=={bench[name]}, outside {requirement.specifier}"
        )
