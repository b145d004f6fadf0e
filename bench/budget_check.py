"""Budget check time: the gateway's `_check_budget` (find the matching budgets, lock their period
rows, reserve the estimate in a short committed transaction of its own) with an empty ledger and
with 1,000,000 usage rows. Target: under 1 ms, the same at both sizes (running period totals, no
scan of the usage table). Printed with it, in the same run: the naive check (sum the period's ledger
in the budget's scope on every call), the statements one check sends, and the floor of any check
that commits a reservation: one `SELECT 1` round trip on a raw connection."""

import os
import threading
import time

from _odoo import environment, load_registry, parse_args, percentile, vacuum_settled

ROWS = 1_000_000
OPERATION = "bench_budget"
MESSAGES = [{"role": "user", "content": "Qualify lead 42: ACME, 500 seats, budget approved."}]


def fill_ledger(env, provider, rows: int) -> None:
    """Insert usage rows of the budget's scope over the last 90 days, with one SQL statement."""
    env.cr.execute(
        """INSERT INTO ai_token_usage (company_id, provider_id, user_id, operation, status, mode, task_type,
                                       input_tokens, output_tokens, cost_usd, create_date, write_date, kind,
                                       provider_called)
           SELECT %(company)s, %(provider)s, %(uid)s, %(operation)s, 'ok', 'passthrough', 'chat', 500, 50,
                  0.0001, now() AT TIME ZONE 'UTC' - (i %% 90) * interval '1 day',
                  now() AT TIME ZONE 'UTC', 'chat', TRUE
             FROM generate_series(1, %(rows)s) AS i""",
        {"company": provider.company_id.id, "provider": provider.id, "uid": env.uid, "operation": OPERATION,
         "rows": rows},
    )


def measure(registry, provider_id: int, calls: int) -> tuple[list[float], float]:
    """Time `_check_budget` on a call like the pipeline's, releasing each reservation after.
    Returns the samples and the statements (Odoo's per-thread query count) one check sends."""
    from odoo.addons.ai_cost_optimizer.core.call import GatewayCall
    from odoo.addons.ai_cost_optimizer.core.tokens import count_message_tokens

    samples = []
    thread = threading.current_thread()
    # Odoo counts the statements of a thread that has these attributes.
    thread.query_count = thread.query_time = statements = 0
    with environment(registry) as env:
        provider = env["ai.service.provider"].browse(provider_id)
        service = env["ai.service"]
        estimate = count_message_tokens(MESSAGES, provider.model)
        for _ in range(calls):
            call = GatewayCall(
                MESSAGES, provider=provider, estimate=estimate, max_tokens=200, operation=OPERATION,
                quality_required="medium", context_size_tokens=estimate.tokens,
            )
            before = thread.query_count
            started = time.perf_counter()
            result = service._check_budget(call)
            samples.append((time.perf_counter() - started) * 1000)
            statements += thread.query_count - before
            assert result["status"] == "ok", result
            service._release_budget(call)
    del thread.query_count, thread.query_time
    return samples, statements / calls


def measure_naive(registry, budget_id: int, calls: int) -> list[float]:
    """The check done the naive way: sum the usage ledger of the current period in the budget's
    scope on every call (what running period totals avoid), then evaluate the budget."""
    samples = []
    with environment(registry) as env:
        budget = env["ai.cost.budget"].browse(budget_id)
        rule = budget._rule()
        for _ in range(calls):
            started = time.perf_counter()
            start, end = budget._period_at(budget._now())
            assert rule.status(budget._ledger_spend(start, end), 0.001) == "ok"
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def measure_round_trip(db: str, calls: int = 2000) -> list[float]:
    """`SELECT 1` on a raw psycopg2 connection to the same server: one round trip, the floor."""
    import psycopg2

    connection = psycopg2.connect(host=os.environ["PGHOST"], port=os.environ["PGPORT"], user=os.environ["PGUSER"],
                                  dbname=db)
    connection.autocommit = True
    samples = []
    with connection, connection.cursor() as cr:
        for _ in range(calls):
            started = time.perf_counter()
            cr.execute("SELECT 1")
            cr.fetchall()
            samples.append((time.perf_counter() - started) * 1000)
    connection.close()
    return samples


def stats(samples: list[float]) -> str:
    return f"p50 {percentile(samples, 0.5):.3f} ms, p95 {percentile(samples, 0.95):.3f} ms"


def main() -> None:
    args = parse_args(__doc__, [(("--calls",), {"type": int, "default": 500})])
    registry = load_registry(args)
    with environment(registry) as env:
        provider = env["ai.service.provider"].create(
            {"name": "bench budget", "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1",
             "model": "gpt-4o-mini"}
        )
        budget = env["ai.cost.budget"].create(
            {"name": "bench", "budget_amount": 1e9, "provider_ids": [(6, 0, provider.ids)],
             "operation_ids": [(0, 0, {"name": OPERATION})]}
        )
        ids = provider.id, budget.id
    provider_id, budget_id = ids
    try:
        results, naive = {}, {}
        for rows in (0, ROWS):
            if rows:
                started = time.perf_counter()
                with environment(registry) as env:
                    fill_ledger(env, env["ai.service.provider"].browse(provider_id), rows)
                    # A new period row starts from the ledger's sum, once: start this size afresh.
                    env["ai.cost.budget"].browse(budget_id).period_ids.unlink()
                print(f"budget_check: inserted {rows:,} usage rows in {time.perf_counter() - started:.1f} s")
            # Also before the empty ledger's figures: the benchmark that ran before this one may have left
            # autovacuum a million rows to go through, on the 2 cores that the checks use.
            with environment(registry) as env:
                env.cr.commit()
                env.cr._cnx.autocommit = True
                waited = vacuum_settled(env.cr, ["ai_token_usage"])
                print(f"budget_check: vacuumed the ledger ({waited:.1f} s waiting for autovacuum)")
                env.cr._cnx.autocommit = False
            measure(registry, provider_id, 20)  # warm-up (and the period row's creation)
            results[rows] = measure(registry, provider_id, args.calls)
            naive[rows] = measure_naive(registry, budget_id, 20 if rows else args.calls)
        round_trip = measure_round_trip(args.db)
        for rows, (samples, statements) in results.items():
            print(
                f"budget_check with {rows:>9,} usage rows: p50 {percentile(samples, 0.5):.3f} ms, "
                f"p95 {percentile(samples, 0.95):.3f} ms, max {max(samples):.3f} ms over {len(samples)} checks "
                "(target < 1 ms)"
            )
            ratio = percentile(naive[rows], 0.5) / percentile(samples, 0.5)
            print(
                f"budget_check naive (ledger sum per call) with {rows:>9,} usage rows: {stats(naive[rows])} "
                f"over {len(naive[rows])} checks, {ratio:.1f}x the check's p50 (it reserves nothing)"
            )
            print(f"budget_check statements per check with {rows:>9,} usage rows: {statements:g}")
        print(f"budget_check floor: SELECT 1 round trip on a raw connection {stats(round_trip)}")
    finally:
        with environment(registry) as env:
            env.cr.execute("DELETE FROM ai_token_usage WHERE provider_id = %s", (provider_id,))
            budget = env["ai.cost.budget"].browse(budget_id)
            operations = budget.operation_ids
            budget.unlink()
            operations.unlink()
            env["ai.service.provider"].browse(provider_id).unlink()


if __name__ == "__main__":
    main()
