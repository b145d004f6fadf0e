"""Fixtures of the scale check: the fake provider, two Odoo servers on one database, the data.

Run by scripts/test after the Odoo tier, on the database that tier installed:
AI_COST_SCALE_DB (the database), AI_COST_SCALE_ODOO_TREE, AI_COST_SCALE_ADDONS (the addons path),
AI_COST_SCALE_BASE_PORT (the first port to try), AI_COST_SCALE_LOG_DIR (server logs, figures),
and PGHOST, PGPORT, PGUSER for the servers and for the read-only checks.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
from scale_report import FIGURES
from scale_servers import AdminRpc, OdooServer, UserSession, free_ports

from ai_cost_optimizer.tests.fake_provider import FakeProviderServer

# Seconds the fake provider takes to answer: calls overlap on both servers, so that budget
# reservations are in flight while other calls check the budget.
PROVIDER_LATENCY = 0.2


@pytest.fixture(scope="session")
def settings() -> dict:
    return {
        "db": os.environ["AI_COST_SCALE_DB"],
        "odoo_tree": os.environ["AI_COST_SCALE_ODOO_TREE"],
        "addons": os.environ["AI_COST_SCALE_ADDONS"],
        "base_port": int(os.environ.get("AI_COST_SCALE_BASE_PORT", "8219")),
        "log_dir": Path(os.environ.get("AI_COST_SCALE_LOG_DIR", "/tmp")),
    }


@pytest.fixture(scope="session")
def fake():
    with FakeProviderServer() as server:
        server.set_latency(PROVIDER_LATENCY)
        yield server


@pytest.fixture(scope="session")
def servers(settings):
    """Server A: prefork, 2 HTTP workers; server B: threaded. Both stopped whatever happens."""
    http_a, gevent_a, http_b = free_ports(settings["base_port"], 3)
    log_dir, db = settings["log_dir"], settings["db"]
    common = {"odoo_tree": settings["odoo_tree"], "addons_path": settings["addons"], "db": db}
    workers = OdooServer(
        name="server A (--workers 2)", port=http_a, log_path=log_dir / f"scale-{db}-a.log",
        # The gevent port is the long-polling process of a prefork server: its default 8072 may be taken.
        extra=["--workers=2", f"--gevent-port={gevent_a}", "--limit-time-real=300", "--limit-time-cpu=300"],
        **common,
    )
    threaded = OdooServer(
        name="server B (threaded)", port=http_b, log_path=log_dir / f"scale-{db}-b.log", extra=["--workers=0"], **common
    )
    started = time.monotonic()
    try:
        for server in (workers, threaded):
            server.start()
        for server in (workers, threaded):
            server.wait_ready(timeout=60)
        FIGURES["servers_ready_s"] = round(time.monotonic() - started, 1)
        yield workers, threaded
    finally:
        for server in (workers, threaded):
            server.stop()


@pytest.fixture(scope="session")
def db(settings):
    """A read-only connection to the database, for the assertions (autocommit: each query sees
    what the servers committed so far)."""
    connection = psycopg2.connect(dbname=settings["db"])
    connection.set_session(readonly=True, autocommit=True)
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def scenario(servers, fake):
    """The run's records, made as the administrator on server B: a provider at the fake (manual
    prices, so that the costs are exact), the response cache on, and a user of the AI Cost user
    group logged in on both servers. The budget comes later (see test_two_servers)."""
    run = uuid.uuid4().hex[:8]
    workers, threaded = servers
    admin = AdminRpc(threaded, "admin", "admin")
    company_id = admin.execute("res.users", "read", [admin.uid], ["company_id"])[0]["company_id"][0]
    admin.execute("res.company", "write", [company_id], {"ai_response_cache": True})
    provider_id = admin.execute("ai.service.provider", "create", {
        "name": f"Scale check {run}", "kind": "openai_compatible", "base_url": fake.openai_base_url,
        "api_key": "sk-test-scale", "model": "gpt-4o-mini", "timeout": 30, "max_retries": 0,
        "price_source": "manual", "input_price": 10.0, "output_price": 30.0, "company_id": company_id,
    })
    password = secrets.token_hex(12)
    groups = [admin.xmlid("base", "group_user"), admin.xmlid("ai_cost_optimizer", "group_ai_cost_user")]
    login = f"scale_{run}"
    admin.execute("res.users", "create", {
        "name": f"Scale check {run}", "login": login, "password": password, "groups_id": [(6, 0, groups)],
        "company_id": company_id, "company_ids": [(6, 0, [company_id])],
    })
    return {
        "run": run, "admin": admin, "company_id": company_id, "provider_id": provider_id,
        "sessions": [UserSession(workers, login, password), UserSession(threaded, login, password)],
    }


def pytest_terminal_summary(terminalreporter):
    """The measured figures, for the README and the lead's report."""
    if FIGURES:
        terminalreporter.write_line("scale figures: " + ", ".join(f"{key}={value}" for key, value in FIGURES.items()))
