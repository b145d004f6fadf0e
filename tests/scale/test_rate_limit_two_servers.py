"""A rate limit shared by two Odoo servers (DESIGN sections 10 and 13): with a limit of N requests a minute,
at most N calls are served in any minute whichever server they reach, and the calls that wait for room are
served in the order they came once it comes back.

Its own provider and operation, so that the budget of test_two_servers never refuses these calls. About a
minute: the calls beyond the first N wait for the first ones' minute to pass."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from scale_report import FIGURES
from scale_servers import RpcError

ROUTE = "/ai_cost_optimizer_test_client/send"
PER_MINUTE = 3
CALLS = 2 * PER_MINUTE
# Seconds between two calls: the calls come in a known order, and room comes back for one waiting call at a
# time, each well apart from the next.
SPACING = 1.0


@pytest.fixture(scope="session")
def rate_phase(scenario, fake):
    """CALLS calls, one every SPACING seconds, alternating between the servers, under a limit of PER_MINUTE
    requests a minute that lets calls wait up to 90 seconds."""
    run, admin = scenario["run"], scenario["admin"]
    provider_id = admin.execute("ai.service.provider", "create", {
        "name": f"Rate check {run}", "kind": "openai_compatible", "base_url": fake.openai_base_url,
        "api_key": "sk-test-rate", "model": "gpt-4o-mini", "timeout": 30, "max_retries": 0,
        "price_source": "manual", "input_price": 10.0, "output_price": 30.0, "company_id": scenario["company_id"],
    })
    operation = f"rate_check_{run}"
    limit_id = admin.execute("ai.cost.rate.limit", "create", {
        "name": f"Rate check {run}", "requests_per_minute": PER_MINUTE, "action": "wait", "max_wait_seconds": 90,
        "operation_ids": [(0, 0, {"name": operation})], "company_id": scenario["company_id"],
    })

    def send(index):
        time.sleep(index * SPACING)
        session = scenario["sessions"][index % 2]
        params = {
            "messages": [{"role": "user", "content": f"Rate check {run}: call {index}."}], "provider": provider_id,
            "mode": "passthrough", "max_tokens": 16, "operation": operation, "session_id": f"rate-{run}-{index}",
        }
        try:
            return session.server.name, "ok", session.call(ROUTE, params)
        except RpcError as error:
            return session.server.name, "error", error

    started = time.monotonic()
    with ThreadPoolExecutor(CALLS) as pool:
        answers = list(pool.map(send, range(CALLS)))
    FIGURES["rate_limit_phase_s"] = round(time.monotonic() - started, 1)
    return {"limit_id": limit_id, "answers": answers}


def test_every_call_is_served_once_room_comes_back(rate_phase):
    statuses = [
        (server, status, answer if status == "error" else "") for server, status, answer in rate_phase["answers"]
    ]
    assert [status for _server, status, _error in statuses] == ["ok"] * CALLS, statuses
    assert {server for server, _status, _error in statuses} == {"server A (--workers 2)", "server B (threaded)"}


def test_no_minute_serves_more_than_the_limit(rate_phase, db):
    with db.cursor() as cr:
        cr.execute(
            "SELECT at FROM ai_cost_rate_limit_hit WHERE limit_id = %s AND served ORDER BY at", [rate_phase["limit_id"]]
        )
        served = [row[0] for row in cr.fetchall()]
    assert len(served) == CALLS
    busiest = max(sum(1 for other in served if start <= other < start + timedelta(minutes=1)) for start in served)
    FIGURES["rate_limit_busiest_minute"] = busiest
    assert busiest == PER_MINUTE, served


def test_waiting_calls_are_served_in_the_order_they_came(rate_phase, db):
    usage_ids = [answer["usage_id"] for _server, _status, answer in rate_phase["answers"]]
    with db.cursor() as cr:
        cr.execute("SELECT id, create_date FROM ai_token_usage WHERE id = ANY(%s)", [usage_ids])
        written = dict(cr.fetchall())
    waited = usage_ids[PER_MINUTE:]
    assert sorted(waited, key=written.get) == waited, "the calls that waited were answered in their order"
    first, later = written[usage_ids[0]], written[waited[0]]
    assert later - first >= timedelta(seconds=59), "the first call that waited went out a minute after the first"
