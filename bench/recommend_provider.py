"""Time of one ai.cost.optimizer.recommend_provider call with 20 providers and 1,000,000 benchmark samples
(external runs, which the benchmark view reads like the gateway's usage rows).
Target: under 2 ms. The optimizer reads the per-provider quality and the per-task answer length cached
on providers and task types (refreshed by the benchmark cron and by ratings), never the benchmark rows;
the time of that refresh over the 1,000,000 rows is printed too."""

import time

from _odoo import environment, load_registry, parse_args, percentile

PROVIDERS = 20
ROWS = 1_000_000
SAMPLES = 500
TASKS = ("chat", "summarize", "classify", "extract", "code", "translate")


def ensure_data(env) -> None:
    """20 providers with manual prices and varied quality, and 1,000,000 benchmark rows over 30 days,
    1 in 5 rated, 1 in 50 failed, inserted with one SQL statement."""
    Provider = env["ai.service.provider"]
    providers = Provider.search([("name", "=like", "recbench-%")], order="id")
    for index in range(len(providers), PROVIDERS):
        providers |= Provider.create({
            "name": f"recbench-{index:02d}", "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1",
            "api_key": "sk-bench", "model": f"bench-model-{index}", "quality_score": 40 + 3 * index,
            "input_price": 0.1 * (index + 1), "output_price": 0.4 * (index + 1),
            "context_window": 8000 * (1 + index % 4),
        })
    env.cr.execute("SELECT count(*) FROM ai_provider_benchmark WHERE provider_id = ANY(%s)", [providers.ids])
    have = env.cr.fetchone()[0]
    if have < ROWS:
        started = time.perf_counter()
        env.cr.execute(
            """
            INSERT INTO ai_provider_benchmark (create_date, write_date, create_uid, write_uid, provider_id,
                company_id, task_type, task_complexity, input_tokens, output_tokens, cost_usd, response_time_ms,
                quality_score, rated, error_occurred)
            SELECT now() at time zone 'UTC' - (g %% 43200) * interval '1 minute', now() at time zone 'UTC', 1, 1,
                   (%(providers)s::int[])[1 + g %% %(count)s], %(company)s, (%(tasks)s::text[])[1 + g %% 6],
                   (ARRAY['simple', 'medium', 'complex'])[1 + g %% 3], 500 + g %% 4000, 50 + g %% 700,
                   0.0001 * (1 + g %% 20), 200 + g %% 1800, (g * 7) %% 101, g %% 5 = 0, g %% 50 = 0
              FROM generate_series(%(first)s, %(rows)s) g
            """,
            {"providers": providers.ids, "count": PROVIDERS, "company": env.company.id, "tasks": list(TASKS),
             "first": have + 1, "rows": ROWS},
        )
        env.cr.execute("ANALYZE ai_provider_benchmark")
        print(f"inserted {ROWS - have} benchmark rows in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    env["ai.provider.benchmark"]._cron_refresh_figures()
    print(f"refresh of the cached figures over {ROWS} rows: {(time.perf_counter() - started) * 1000:.0f} ms")


def measure(registry, internal: bool) -> list[float]:
    """Per-call times of recommend_provider on a cold ORM cache (as in a new request), rolled back."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {"ai_recommendation_internal": internal})
        Optimizer = env["ai.cost.optimizer"]
        Optimizer.recommend_provider("chat", 2000, "medium")  # warm-up
        samples = []
        for index in range(SAMPLES):
            env.invalidate_all()
            started = time.perf_counter()
            Optimizer.recommend_provider(TASKS[index % 6], 1000 + index * 10, ("low", "medium", "high")[index % 3])
            env.flush_all()
            samples.append((time.perf_counter() - started) * 1000)
        cr.rollback()
    return samples


def main() -> None:
    args = parse_args(__doc__)
    registry = load_registry(args)
    with environment(registry) as env:
        ensure_data(env)
        env.cr.execute("SELECT count(*) FROM ai_service_provider WHERE active")
        providers = env.cr.fetchone()[0]
    print(f"{providers} active providers, {ROWS} benchmark rows:")
    print(f"{'recommend_provider':>34} {'p50 ms':>8} {'p95 ms':>8}")
    for label, internal in (("stored as a record", False), ("internal (gateway, not stored)", True)):
        samples = measure(registry, internal)
        p50, p95 = percentile(samples, 0.5), percentile(samples, 0.95)
        print(f"{label:>34} {p50:8.2f} {p95:8.2f}  {'OK' if p50 < 2 else 'SLOW'} (target < 2 ms)")


if __name__ == "__main__":
    main()
