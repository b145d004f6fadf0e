"""Budget check time: the gateway's `_check_budget` (find the matching budgets, lock their period
rows, reserve the estimate in a short committed transaction of its own) with an empty ledger and
with 1,000,000 usage rows. Target: under 1 ms, the same at both sizes (running period totals, no
scan of the usage table)."""

import time

from _odoo import environment, load_registry, parse_args, percentile

ROWS = 1_000_000
OPERATION = "bench_budget"
MESSAGES = [{"role": "user", "content": "Qualify lead 42: ACME, 500 seats, budget approved."}]


def fill_ledger(env, provider, rows: int) -> None:
    """Insert usage rows of the budget's scope over the last 90 days, with one SQL statement."""
    env.cr.execute(
        """INSERT INTO ai_token_usage (company_id, provider_id, user_id, operation, status, mode, task_type,
                                       input_tokens, output_tokens, cost_usd, create_date, write_date)
           SELECT %(company)s, %(provider)s, %(uid)s, %(operation)s, 'ok', 'passthrough', 'chat', 500, 50,
                  0.0001, now() AT TIME ZONE 'UTC' - (i %% 90) * interval '1 day',
                  now() AT TIME ZONE 'UTC'
             FROM generate_series(1, %(rows)s) AS i""",
        {"company": provider.company_id.id, "provider": provider.id, "uid": env.uid, "operation": OPERATION,
         "rows": rows},
    )
    env.cr.execute("ANALYZE ai_token_usage")


def measure(registry, provider_id: int, calls: int) -> list[float]:
    """Time `_check_budget` on a call dict like the pipeline's, releasing each reservation after."""
    from odoo.addons.ai_cost_optimizer.core.tokens import count_message_tokens

    samples = []
    with environment(registry) as env:
        provider = env["ai.service.provider"].browse(provider_id)
        service = env["ai.service"]
        estimate = count_message_tokens(MESSAGES, provider.model)
        for _ in range(calls):
            call = {
                "provider": provider, "messages": MESSAGES, "estimate": estimate, "max_tokens": 200,
                "operation": OPERATION, "task_type": "chat", "quality_required": "medium",
                "context_size_tokens": estimate.tokens, "max_budget_usd": None,
            }
            started = time.perf_counter()
            result = service._check_budget(call)
            samples.append((time.perf_counter() - started) * 1000)
            assert result["status"] == "ok", result
            service._release_budget(call)
    return samples


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
        results = {}
        for rows in (0, ROWS):
            if rows:
                started = time.perf_counter()
                with environment(registry) as env:
                    fill_ledger(env, env["ai.service.provider"].browse(provider_id), rows)
                    # A new period row starts from the ledger's sum, once: start this size afresh.
                    env["ai.cost.budget"].browse(budget_id).period_ids.unlink()
                print(f"budget_check: inserted {rows:,} usage rows in {time.perf_counter() - started:.1f} s")
            measure(registry, provider_id, 20)  # warm-up (and the period row's creation)
            results[rows] = measure(registry, provider_id, args.calls)
        for rows, samples in results.items():
            print(
                f"budget_check with {rows:>9,} usage rows: p50 {percentile(samples, 0.5):.3f} ms, "
                f"p95 {percentile(samples, 0.95):.3f} ms, max {max(samples):.3f} ms over {len(samples)} checks "
                "(target < 1 ms)"
            )
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
