"""Calibrated reservations (issue 28, DESIGN section 13): how much of a budget agents can spend before the
first call is refused, when each reserves its worst case and when each reserves its learned p99.

The scene of the issue: a $5 daily budget on one provider, 8 callers at once (threads, each with its own
cursor and environment, committing after each call as an Odoo request does), every call asking for
`max_tokens=32000` and getting about 500 tokens back (the fake provider, in a process of its own, answers
in turn with texts whose lengths spread normally around 500 tokens, standard deviation 40, and takes 50 ms per
answer, so the 8 calls overlap as real ones do), on a model priced at $3 / $15 per million input / output
tokens (a provider with a manual price). A worst case then reserves $0.48 for a call that costs $0.0077.

Once per mode (a provider and a budget of its own each): first yesterday's traffic, 200 calls through the
gateway with no budget, moved to yesterday, from which the hourly job learns the p99 output tokens; then the 8
callers call until the budget refuses them for good (a refused caller waits 20 ms and tries again, and stops
when the budget's settled spend alone leaves no room for its reservation). Printed per mode: the share of the
budget spent (settled) when the first call was refused (target for calibrated: at least 95 %), the spend and
overspend at the end of the run (worst case: none beyond the estimation error), the calls whose actual cost
exceeded their reservation and by how much (the period's counters, checked against the calls' own results),
and the budget check's time (`_check_budget`, p50 over 300 checks, the two modes in turns) and statements."""

import logging
import random
import threading
import time

from _odoo import environment, fake_provider_process, load_registry, parse_args, percentile

BUDGET_USD = 5.0
CALLERS = 8
MAX_TOKENS = 32000
MODEL = "agent-model"  # priced by hand below: genai-prices knows no such model
INPUT_PRICE, OUTPUT_PRICE = 3.0, 15.0  # USD per million tokens
OPERATION = "agent_step"
TRAINING_CALLS = 200
ANSWER_TOKENS = (500, 40, 300, 800)  # mean, standard deviation, bounds of the answers' output tokens
LATENCY_S = 0.05
RETRY_S = 0.02
CHECKS = 300
MODES = ("worst_case", "calibrated")


def answer_texts(count_tokens, seed: int = 28, variants: int = 211) -> list[str]:
    """`variants` answers whose output tokens (as the fake counts them) spread around 500."""
    rng = random.Random(seed)
    mean, deviation, low, high = ANSWER_TOKENS
    texts = []
    for _ in range(variants):
        tokens = min(high, max(low, round(rng.gauss(mean, deviation))))
        text = "Step" + " done" * (tokens - 1)
        assert count_tokens(text) == tokens, (tokens, count_tokens(text))
        texts.append(text)
    return texts


def setup_fake(texts):
    def setup(server):
        server.set_replies(texts)
        server.set_latency(LATENCY_S)

    return setup


def callers(registry, provider_id: int, tag: str, calls_each: int | None = None, budget_id: int | None = None,
            reservation: float = 0.0) -> dict:
    """CALLERS threads calling the gateway, each on its own cursor, a commit after each call: `calls_each` calls
    each, or (`budget_id`) until the budget refuses them for good: a refused caller waits RETRY_S and tries again,
    unless the budget's settled spend alone leaves no room for its `reservation`. Returns what happened."""
    from odoo import SUPERUSER_ID, api
    from odoo.addons.ai_cost_optimizer.exceptions import AiBudgetExceeded

    lock = threading.Lock()
    counter = iter(range(10**9))
    outcome = {"served": 0, "refused": 0, "errors": [], "first_refusal": None, "over": 0, "over_usd": 0.0,
               "worst_error_usd": 0.0}
    barrier = threading.Barrier(CALLERS)

    def settled_spend(cr):
        cr.execute("SELECT spend::float8, reserved::float8 FROM ai_cost_budget_period WHERE budget_id = %s "
                   "ORDER BY date_start DESC LIMIT 1", [budget_id])
        return cr.fetchone() or (0.0, 0.0)

    def call(number):
        messages = [{"role": "user", "content": f"Plan the next step of agent run {tag}-{number}."}]
        with registry.cursor() as cr:  # commits at the end, as an Odoo request does
            env = api.Environment(cr, SUPERUSER_ID, {})
            return env["ai.service"].send_message(
                messages, provider=provider_id, max_tokens=MAX_TOKENS, operation=OPERATION, use_cache=False,
            )

    def worker():
        barrier.wait()
        done = refusals = 0
        while (calls_each is None or done < calls_each) and refusals < 5000:
            with lock:
                number = next(counter)
            try:
                result = call(number)
            except AiBudgetExceeded:
                refusals += 1
                with registry.cursor() as cr:
                    spend, reserved = settled_spend(cr)
                with lock:
                    outcome["refused"] += 1
                    if outcome["first_refusal"] is None:
                        outcome["first_refusal"] = (spend, reserved, time.perf_counter())
                # No room for a reservation even once nothing else is in flight (the margin: a prompt's few tokens
                # more or less): the budget is done for this caller.
                if spend + reservation + 1e-4 > BUDGET_USD:
                    return
                time.sleep(RETRY_S)
                continue
            except Exception as error:  # reported by the caller of callers(): the run is invalid
                with lock:
                    outcome["errors"].append(f"{type(error).__name__}: {error}")
                return
            done += 1
            with lock:
                outcome["served"] += 1
                for detail in (result.get("budget") or {}).get("budgets") or []:
                    excess = result["cost_usd"] - detail["reserved"]
                    if excess > 0:
                        outcome["over"] += 1
                        outcome["over_usd"] += excess
                    outcome["worst_error_usd"] = max(outcome["worst_error_usd"],
                                                     result["cost_usd"] - result["budget"]["estimated_cost"])

    threads = [threading.Thread(target=worker) for _ in range(CALLERS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcome["seconds"] = time.perf_counter() - started
    if outcome["first_refusal"]:
        outcome["first_refusal_s"] = outcome["first_refusal"][2] - started
    return outcome


def expected_reservation(registry, provider_id: int, budget_id: int) -> float:
    """What one call reserves on the budget (its mode's amount, for a prompt like the runs')."""
    with environment(registry) as env:
        service = env["ai.service"]
        call = checked_call(service, provider_id, "Plan the next step of agent run x-100000.")
        rule = next(rule for rule in env["ai.cost.budget"]._company_rules(env.company.id) if rule.id == budget_id)
        _worst, estimates = env["ai.cost.budget"]._call_estimates([rule], call)
        return estimates[budget_id]


def checked_call(service, provider_id: int, content: str):
    """A call like the runs', through the gateway's steps up to the budget check."""
    from odoo.addons.ai_cost_optimizer.core.call import GatewayCall

    call = GatewayCall([{"role": "user", "content": content}], provider=provider_id, max_tokens=MAX_TOKENS,
                       operation=OPERATION, quality_required="medium")
    service._validate_request(call)
    service._resolve_provider(call)
    service._estimate_tokens(call)
    return call


def measure_checks(registry, providers: dict) -> dict:
    """`_check_budget` of a call like the runs' (released after each), as budget_check.py times it, on each mode's
    provider in turn (rounds of 20 checks, so that both modes see the same minutes of a shared machine).
    Returns {mode: (samples in ms, statements per check)}."""

    samples = {mode: [] for mode in providers}
    statements = dict.fromkeys(providers, 0)
    thread = threading.current_thread()
    thread.query_count = thread.query_time = 0
    with environment(registry) as env:
        service = env["ai.service"]
        for round_ in range(CHECKS // 20 + 1):
            for mode, provider_id in providers.items():
                for _ in range(20):
                    call = checked_call(service, provider_id, "Plan the next step of agent run check.")
                    before = thread.query_count
                    started = time.perf_counter()
                    result = service._check_budget(call)
                    elapsed = (time.perf_counter() - started) * 1000
                    if round_:  # the first round warms up
                        samples[mode].append(elapsed)
                        statements[mode] += thread.query_count - before
                    assert result["status"] == "ok", result
                    service._release_budget(call)
    del thread.query_count, thread.query_time
    return {mode: (samples[mode], statements[mode] / len(samples[mode])) for mode in providers}


def delete_rows_of(env, provider_id: int) -> None:
    """Every stored row pointing at the provider (ledger, rollups, learned figures...), then the provider."""
    from odoo.tools import SQL

    for model in env.registry.values():
        field = model._fields.get("provider_id")
        if model._auto and field and field.store and field.comodel_name == "ai.service.provider":
            env.cr.execute(SQL("DELETE FROM %s WHERE provider_id = %s", SQL.identifier(model._table), provider_id))
    env.invalidate_all()
    env["ai.service.provider"].browse(provider_id).unlink()


def run_mode(registry, mode: str, base_url: str, created: dict) -> dict:
    from odoo.fields import Command

    with environment(registry) as env:
        provider = env["ai.service.provider"].create({
            "name": f"bench calibrated reservations ({mode})", "kind": "openai_compatible", "base_url": base_url,
            "api_key": "sk-test-bench", "model": MODEL, "price_source": "manual", "input_price": INPUT_PRICE,
            "output_price": OUTPUT_PRICE,
        })
        created["providers"].append(provider.id)
        provider_id = provider.id
    # Yesterday's traffic, from which the hourly job learns (moved back a day: it is not today's spend).
    training = callers(registry, provider_id, f"{mode}-training", calls_each=TRAINING_CALLS // CALLERS)
    assert not training["errors"], training["errors"]
    with environment(registry) as env:
        env.cr.execute("UPDATE ai_token_usage SET create_date = create_date - interval '25 hours' "
                       "WHERE provider_id = %s", [provider_id])
        env["ai.cost.budget.calibration"]._cron_learn()
        budget = env["ai.cost.budget"].create({
            "name": f"bench calibrated reservations ({mode})", "budget_amount": BUDGET_USD, "period_type": "daily",
            "provider_ids": [Command.set([provider_id])], "reservation_mode": mode, "block_at_threshold": 100,
        })
        created["budgets"].append(budget.id)
        budget_id = budget.id
    with environment(registry) as env:  # once the learned figures are committed
        row = env["ai.cost.budget.calibration"].search([("provider_id", "=", provider_id), ("model", "=", MODEL),
                                                         ("operation", "=", OPERATION)])
        learned = (row.output_tokens_p99, row.samples) if row else None
    reservation = expected_reservation(registry, provider_id, budget_id)
    run = callers(registry, provider_id, mode, budget_id=budget_id, reservation=reservation)
    assert not run["errors"], run["errors"][:3]
    with environment(registry) as env:
        env.cr.execute(
            """SELECT spend::float8, reserved::float8, call_count, over_reservation_calls, over_reservation_usd::float8
                 FROM ai_cost_budget_period WHERE budget_id = %s ORDER BY date_start DESC LIMIT 1""", [budget_id])
        spend, reserved, calls, over_calls, over_usd = env.cr.fetchone()
        env.cr.execute("SELECT coalesce(sum(cost_usd), 0)::float8 FROM ai_token_usage WHERE provider_id = %s "
                       "AND status = 'ok' AND create_date >= (now() AT TIME ZONE 'UTC') - interval '1 hour'",
                       [provider_id])
        ledger = env.cr.fetchone()[0]
        env["ai.cost.budget"].browse(budget_id).budget_amount = 1e9  # the check's timing, far from blocking
    return {"mode": mode, "provider_id": provider_id, "learned": learned, "run": run, "spend": spend,
            "reserved": reserved, "calls": calls, "over_calls": over_calls, "over_usd": over_usd, "ledger": ledger,
            "reservation": reservation}


def report(figures: dict) -> None:
    tag = "calibrated_reservations"
    for mode, f in figures.items():
        run = f["run"]
        p99, samples = f["learned"] or (None, 0)
        print(f"{tag} [{mode}]: learned p99 {p99} output tokens from {samples} calls; a call reserves "
              f"${f['reservation']:.6f} (worst case ${reservation_worst(figures):.6f})")
        spent, reserved, _at = run["first_refusal"] or (f["spend"], 0.0, 0)
        print(f"{tag} [{mode}]: first refusal at {spent / BUDGET_USD * 100:.1f} % of the budget spent "
              f"(${spent:.4f}; {reserved / BUDGET_USD * 100:.1f} % reserved by the calls in flight), "
              f"{run.get('first_refusal_s', 0):.1f} s into the run")
        overspend = max(0.0, f["spend"] - BUDGET_USD)
        print(f"{tag} [{mode}]: end of run: spent ${f['spend']:.4f} of ${BUDGET_USD:.2f} "
              f"({f['spend'] / BUDGET_USD * 100:.1f} %), overspend ${overspend:.6f}, {f['over_calls']} calls over "
              f"their reservation (${f['over_usd']:.6f} beyond it), estimation error of the worst case at most "
              f"${max(run['worst_error_usd'], 0):.6f} a call; {run['served']} served, {run['refused']} refused, "
              f"{run['seconds']:.1f} s")
        assert f["calls"] == run["served"] and f["over_calls"] == run["over"], (f, run)
        assert abs(f["ledger"] - f["spend"]) < 1e-6 and f["reserved"] == 0, f
        print(f"{tag} [{mode}]: budget check p50 {percentile(f['checks'], 0.5):.3f} ms, "
              f"p95 {percentile(f['checks'], 0.95):.3f} ms, {f['statements']:g} statements per check")


def reservation_worst(figures: dict) -> float:
    return figures.get("worst_case", {}).get("reservation", 0.0)


def main() -> None:
    args = parse_args(__doc__)
    registry = load_registry(args)
    # A refused call is logged (a WARNING per refusal): hundreds here, on purpose.
    logging.getLogger("odoo.addons.ai_cost_optimizer").setLevel(logging.ERROR)
    from odoo.addons.ai_cost_optimizer.core.tokens import count_text_tokens

    texts = answer_texts(lambda text: count_text_tokens(text).tokens)
    created = {"providers": [], "budgets": []}
    figures = {}
    try:
        with fake_provider_process(setup_fake(texts)) as (_anthropic_base_url, openai_base_url):
            for mode in MODES:
                figures[mode] = run_mode(registry, mode, openai_base_url, created)
        checks = measure_checks(registry, {mode: figures[mode]["provider_id"] for mode in MODES})
        for mode, (samples, statements) in checks.items():
            figures[mode].update(checks=samples, statements=statements)
    finally:
        with environment(registry) as env:
            env["ai.cost.budget"].browse(created["budgets"]).unlink()
            for provider_id in created["providers"]:
                delete_rows_of(env, provider_id)
    report(figures)


if __name__ == "__main__":
    main()
