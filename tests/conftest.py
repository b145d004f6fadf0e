"""Pure test tier: import ``ai_cost_optimizer.core`` and the fake provider without Odoo.

The addon's ``__init__.py`` files import ``odoo``. Stand-in package modules whose ``__path__``
points at the real folders let Python import the sub-packages we need while never executing
those ``__init__`` files.

``tests/addons`` holds Odoo addons (their tests run in the Odoo tier, under Odoo's runner or under
pytest-odoo, whose plugin has loaded Odoo) and ``tests/scale`` the two-server scale check, which needs
an installed database: scripts/test runs it as its own step, with AI_COST_SCALE_DB set. Neither belongs
to ``pytest tests``.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

collect_ignore_glob = [] if "odoo" in sys.modules else ["addons/*"]
if not os.environ.get("AI_COST_SCALE_DB"):
    collect_ignore_glob.append("scale/*")

for _name, _folder in (
    ("ai_cost_optimizer", ROOT / "ai_cost_optimizer"),
    ("ai_cost_optimizer.tests", ROOT / "ai_cost_optimizer" / "tests"),
):
    if _name not in sys.modules:
        _package = types.ModuleType(_name)
        _package.__path__ = [str(_folder)]
        sys.modules[_name] = _package

from ai_cost_optimizer.core.clients import ProviderConfig  # noqa: E402 - needs the stand-ins above
from ai_cost_optimizer.tests.fake_provider import FakeProviderServer  # noqa: E402

TEST_KEY = "sk-test-0123456789abcdef"


@pytest.fixture(scope="session")
def _running_server():
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def server(_running_server: FakeProviderServer) -> FakeProviderServer:
    """The session's fake provider, reset before each test."""
    _running_server.reset()
    return _running_server


class SleepRecorder:
    """Injected in place of time.sleep: records the waits instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def anthropic_config(server: FakeProviderServer) -> ProviderConfig:
    return ProviderConfig(
        kind="anthropic",
        base_url=server.anthropic_base_url,
        api_key=TEST_KEY,
        model="claude-haiku-4-5",
        timeout=5.0,
        backoff_base=0.001,
    )


@pytest.fixture
def openai_config(server: FakeProviderServer) -> ProviderConfig:
    return ProviderConfig(
        kind="openai_compatible",
        base_url=server.openai_base_url + "/",
        api_key=TEST_KEY,
        model="gpt-4o-mini",
        timeout=5.0,
        backoff_base=0.001,
    )
