"""Scale beyond one process (DESIGN section 10): two Odoo servers, one database, concurrent calls.

Server A runs with ``--workers 2`` (prefork), server B threaded; both serve the database the Odoo
tier installed. A user of the AI Cost user group calls the test client's JSON route (another
module's controller calling ``ai.service.send_message``) on both, against the fake provider. All
shared state (budget reservations, response cache, alert markers) must live in PostgreSQL for
the checks below to hold; every figure is read back from the database.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from scale_report import FIGURES
from scale_servers import RpcError

ROUTE = "/ai_cost_optimizer_test_client/send"
CONCURRENT_CALLS = 40
THREADS = 16
MAX_TOKENS = 16
INPUT_PRICE, OUTPUT_PRICE = 10.0, 30.0  # USD per million tokens, as the scenario's provider
BUDGET_CALLS = 20  # the budget is worth about this many calls of the concurrent phase
THRESHOLDS = (50, 80)
# Odoo's log line: date, time, pid, level, database, logger.
LOG_ERROR = re.compile(r"^\S+ \S+ \d+ (ERROR|CRITICAL) ")
LOG_BLOCKED = re.compile(r"^\S+ \S+ \d+ WARNING \S+ odoo\.http: Budget '.*' \(.*\) blocks this call")


def _params(scenario, session_id, content):
    return {
        "messages": [{"role": "user", "content": content}], "provider": scenario["provider_id"],
        "mode": "passthrough", "max_tokens": MAX_TOKENS, "operation": "scale_check", "session_id": session_id,
    }


def _send(session, params):
    """('ok', result) or ('error', RpcError): a refused call is an answer too."""
    try:
        return "ok", session.call(ROUTE, params)
    except RpcError as error:
        return "error", error


@pytest.fixture(scope="session")
def cache_phase(scenario):
    """A deterministic request answered by one server, then sent to the other; both directions."""
    workers, threaded = scenario["sessions"]
    results = {}
    for name, first, second in (("a", workers, threaded), ("b", threaded, workers)):
        content = f"Scale check {scenario['run']}: summarize the cache test {name}."
        for step, session in (("1", first), ("2", second)):
            session_id = f"scale-{scenario['run']}-cache-{name}{step}"
            status, result = _send(session, _params(scenario, session_id, content))
            assert status == "ok", f"cache call {session_id} on {session.server.name} failed: {result}"
            results[session_id] = result
    return results


@pytest.fixture(scope="session")
def budget(scenario, cache_phase, db):
    """A monthly budget on the scenario's provider, blocking at 100% of about BUDGET_CALLS calls
    beyond what the cache phase spent, alerting at THRESHOLDS. Created once the servers run: the
    registry caches of both servers must learn about it."""
    run = scenario["run"]
    call_cost = cache_phase[f"scale-{run}-cache-a1"]["cost_usd"]
    assert call_cost > 0, "the fake provider's call was not priced"
    amount = round(_ledger_spend(db, scenario["provider_id"]) + BUDGET_CALLS * call_cost, 8)
    name = f"Scale check {run}"
    budget_id = scenario["admin"].execute("ai.cost.budget", "create", {
        "name": name, "period_type": "monthly", "budget_amount": amount,
        "alert_thresholds": ",".join(map(str, THRESHOLDS)), "block_at_threshold": 100.0,
        "auto_switch_at_threshold": 0.0, "provider_ids": [(6, 0, [scenario["provider_id"]])],
        "company_id": scenario["company_id"],
    })
    return {"id": budget_id, "name": name, "amount": amount, "call_cost": call_cost}


@pytest.fixture(scope="session")
def concurrent_phase(scenario, budget):
    """CONCURRENT_CALLS distinct calls at once, alternating between the servers: together they
    cost about twice the budget, so the budget blocks part of them."""
    run = scenario["run"]
    calls = []
    for index in range(CONCURRENT_CALLS):
        session = scenario["sessions"][index % 2]
        session_id = f"scale-{run}-{index:03d}"
        content = f"Scale check {run}: qualify lead number {index:03d} for the sales team."
        calls.append((session, session_id, _params(scenario, session_id, content)))
    started = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(lambda call: _send(call[0], call[2]), calls))
    FIGURES["concurrent_calls"] = CONCURRENT_CALLS
    FIGURES["concurrent_phase_s"] = round(time.monotonic() - started, 1)
    return {
        session_id: {"server": session.server.name, "status": status, "answer": answer}
        for (session, session_id, _params_), (status, answer) in zip(calls, answers, strict=True)
    }


def _ledger_spend(db, provider_id):
    with db.cursor() as cr:
        cr.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM ai_token_usage WHERE provider_id = %s", [provider_id])
        return float(cr.fetchone()[0])


def _usage_rows(db, run):
    """{session_id: [(id, status, cache_hit, cost_usd, estimated_input_tokens)]} of the run's calls."""
    with db.cursor() as cr:
        cr.execute(
            """SELECT session_id, id, status, COALESCE(cache_hit, false), cost_usd, estimated_input_tokens
                 FROM ai_token_usage WHERE session_id LIKE %s ORDER BY id""",
            [f"scale-{run}-%"],
        )
        rows = {}
        for session_id, *row in cr.fetchall():
            rows.setdefault(session_id, []).append((row[0], row[1], row[2], float(row[3] or 0), row[4]))
        return rows


def test_calls_are_served_or_blocked(concurrent_phase):
    """Both servers serve calls; the budget blocks the rest, and nothing else fails."""
    served = [call for call in concurrent_phase.values() if call["status"] == "ok"]
    refused = [call for call in concurrent_phase.values() if call["status"] == "error"]
    FIGURES["served"], FIGURES["blocked"] = len(served), len(refused)
    FIGURES["served_by_server"] = {
        name: sum(call["server"] == name for call in served) for name in sorted({c["server"] for c in served})
    }
    assert served and refused, f"{len(served)} served, {len(refused)} refused: the budget was not crossed"
    others = [call["answer"] for call in refused if not call["answer"].name.endswith(".AiBudgetExceeded")]
    assert not others, f"calls failed for another reason than the budget: {others[:3]}"
    assert len({call["server"] for call in served}) == 2, "one server served no call"


def test_blocked_calls_raise_a_clear_error(concurrent_phase, budget, servers):
    """A refused call is a JSON-RPC error naming the budget, logged by the server as one WARNING
    line (Odoo's way for a UserError), never as an ERROR with its traceback."""
    blocked = [call for call in concurrent_phase.values() if call["status"] == "error"]
    for call in blocked:
        message = call["answer"].message
        assert f"Budget '{budget['name']}'" in message and "blocks this call" in message, message
    logged = 0
    for server in servers:
        lines = server.log_text().splitlines()
        errors = [line for line in lines if LOG_ERROR.match(line)]
        assert not errors, f"{server.name} logged errors:\n" + "\n".join(errors[:5])
        logged += sum(1 for line in lines if LOG_BLOCKED.match(line) and budget["name"] in line)
    assert logged == len(blocked), f"{logged} warning lines for {len(blocked)} blocked calls"


def test_no_budget_overspend(scenario, budget, concurrent_phase, db):
    """Spend <= amount + one call + the estimation error of the calls in flight: each served call's
    reservation was its upper estimate (prompt tokens counted before the call plus max_tokens of
    output), so only a call costing more than its estimate can push the spend over the line."""
    rows = [row for call_rows in _usage_rows(db, scenario["run"]).values() for row in call_rows]
    served = [row for row in rows if row[1] == "ok" and not row[2]]
    spend = sum(row[3] for row in served)
    assert abs(spend - _ledger_spend(db, scenario["provider_id"])) < 1e-9, "calls outside the run hit the provider"
    estimation_error = sum(
        max(0.0, cost - (estimated_input * INPUT_PRICE + MAX_TOKENS * OUTPUT_PRICE) / 1e6)
        for _id, _status, _hit, cost, estimated_input in served
    )
    one_call = max(row[3] for row in served)
    FIGURES["budget_usd"] = budget["amount"]
    FIGURES["spend_usd"] = round(spend, 8)
    FIGURES["overspend_usd"] = round(spend - budget["amount"], 8)
    FIGURES["estimation_error_usd"] = round(estimation_error, 8)
    assert spend <= budget["amount"] + one_call + estimation_error + 1e-9, (
        f"spend {spend:.8f} passes the budget {budget['amount']:.8f} by more than one call ({one_call:.8f}) "
        f"plus the estimation error ({estimation_error:.8f})"
    )


def test_budget_period_matches_the_ledger(scenario, budget, concurrent_phase, db):
    """The period row both servers settled holds the ledger's spend and no reservation is left over
    (each call settled or released its own, whichever process reserved it)."""
    with db.cursor() as cr:
        cr.execute("SELECT spend, reserved FROM ai_cost_budget_period WHERE budget_id = %s", [budget["id"]])
        periods = cr.fetchall()
    assert len(periods) == 1, f"{len(periods)} period rows for one month"
    spend, reserved = (float(value or 0) for value in periods[0])
    assert abs(spend - _ledger_spend(db, scenario["provider_id"])) < 1e-7, (spend, _ledger_spend(db, scenario[
        "provider_id"]))
    assert reserved < 1e-9, f"{reserved} USD still reserved after every call ended"


def test_response_cached_by_one_server_is_a_hit_on_the_other(scenario, cache_phase):
    run = scenario["run"]
    for name in ("a", "b"):
        first, second = cache_phase[f"scale-{run}-cache-{name}1"], cache_phase[f"scale-{run}-cache-{name}2"]
        assert not first["cache_hit"] and first["cost_usd"] > 0, first
        assert second["cache_hit"], f"the same request on the other server was not a cache hit: {second}"
        assert second["content"] == first["content"] and second["cost_usd"] == 0
    FIGURES["cache_hits_across_servers"] = "2/2"


def test_each_threshold_alerts_once(budget, concurrent_phase, db):
    """One chatter message and one activity per threshold in the period, though both servers'
    processes settled calls crossing them."""
    with db.cursor() as cr:
        cr.execute(
            "SELECT subject FROM mail_message WHERE model = 'ai.cost.budget' AND res_id = %s AND subject LIKE %s",
            [budget["id"], "AI budget %"],
        )
        subjects = sorted(row[0] for row in cr.fetchall())
        cr.execute(
            "SELECT summary FROM mail_activity WHERE res_model = 'ai.cost.budget' AND res_id = %s", [budget["id"]]
        )
        activities = sorted(row[0] for row in cr.fetchall())
        cr.execute("SELECT alerted_up_to FROM ai_cost_budget_period WHERE budget_id = %s", [budget["id"]])
        alerted_up_to = cr.fetchone()[0]
    expected = sorted(f"AI budget {budget['name']} at {threshold}%" for threshold in THRESHOLDS)
    FIGURES["alert_messages"] = len(subjects)
    assert subjects == expected, subjects
    assert activities == sorted(f"AI budget at {threshold}%" for threshold in THRESHOLDS), activities
    assert alerted_up_to == max(THRESHOLDS)


def test_every_call_has_exactly_one_usage_row(scenario, cache_phase, concurrent_phase, db):
    """One row per call, whatever the outcome: served ('ok', the usage_id returned), cached (ok,
    cache_hit) or refused ('blocked')."""
    rows = _usage_rows(db, scenario["run"])
    calls = {**{key: {"status": "ok", "answer": value} for key, value in cache_phase.items()}, **concurrent_phase}
    assert sorted(rows) == sorted(calls), "usage rows and calls differ"
    for session_id, call in calls.items():
        assert len(rows[session_id]) == 1, f"{session_id}: {len(rows[session_id])} usage rows"
        row_id, status, cache_hit, _cost, _estimate = rows[session_id][0]
        if call["status"] == "ok":
            assert status == "ok" and row_id == call["answer"]["usage_id"], (session_id, status, row_id)
            assert cache_hit == call["answer"]["cache_hit"]
        else:
            assert status == "blocked", (session_id, status)
    FIGURES["usage_rows"] = sum(len(value) for value in rows.values())
