"""Waste analysis time per call, as the gateway runs it in the ledger transaction: the six rules on the
call's values with their indexed look-back query, and the findings of a call with waste. Measured with
10,000 and then 1,000,000 usage rows in the ledger. Target: under 2 ms per call, the same at both sizes
(constant time: hash indexes, never a scan of the ledger)."""

import statistics
import time

from _odoo import environment, load_registry, parse_args, percentile

SESSION = "wastebench"
PROMPTS = 50_000  # distinct prompt hashes: each repeats every 50,000 rows
PREFIXES = 200  # distinct system prompts: hot prefixes, each shared by 5,000 rows out of 1M
SAMPLES = 400


def ensure_rows(env, rows: int) -> int:
    """Usage rows of this benchmark up to `rows`, inserted with one SQL statement; returns the count."""
    env.cr.execute("SELECT count(*) FROM ai_token_usage WHERE session_id = %s", [SESSION])
    have = env.cr.fetchone()[0]
    if have >= rows:
        return have
    Provider = env["ai.service.provider"]
    providers = Provider.search([("name", "=like", "wastebench-%")], order="id")
    for model in ["gpt-4o-mini", "claude-3-5-haiku-latest"][len(providers):]:
        providers |= Provider.create({"name": f"wastebench-{model}", "kind": "openai_compatible",
                                      "base_url": "http://127.0.0.1:9/v1", "model": model})
    env.flush_all()
    started = time.perf_counter()
    # Calls spread over 30 days, 1 in 2 with a system prompt, 1 in 10 on the expensive provider (the optimizer
    # recommended the cheap one for every call, as the gateway records it: the wrong_model rule's input), 1 in 20
    # with repeated context, 1 in 10 single-shot (classify) tasks carrying old turns. Recorded as the
    # gateway records them: optimization score 100 until the analysis finds waste.
    env.cr.execute(
        """
        INSERT INTO ai_token_usage (create_date, write_date, create_uid, write_uid, user_id, company_id,
            provider_id, model, mode, operation, task_type, status, input_tokens, output_tokens,
            cost_usd, cost_unknown, cache_hit, price_id, prompt_hash, static_prefix_hash, static_prefix_tokens,
            redundant_context_tokens, history_tokens, optimization_score, session_id, attempts, usage_reported, kind,
            provider_called, recommended_provider_id)
        SELECT ts, ts, 1, 1, 1, %(company)s, p.id, p.model, 'passthrough', 'op_' || (g %% 8),
               CASE WHEN g %% 10 = 0 THEN 'classify' ELSE 'chat' END, 'ok',
               tin, 200, tin * p.input_price / 1e6 + 200 * p.output_price / 1e6, FALSE, FALSE,
               (SELECT max(id) FROM ai_service_provider_price WHERE provider_id = p.id),
               md5((g %% %(prompts)s)::text), CASE WHEN g %% 2 = 0 THEN md5((g %% %(prefixes)s)::text) END,
               3000, CASE WHEN g %% 20 = 0 THEN 120 ELSE 0 END, (g %% 5) * 100, 100, %(session)s, 1, TRUE, 'chat', TRUE,
               (%(providers)s::int[])[1]
          FROM (SELECT g, 1000 + g %% 9000 AS tin,
                       now() at time zone 'UTC' - (30 - (g - 1) * 30.0 / %(rows)s) * interval '1 day' AS ts,
                       (%(providers)s::int[])[1 + (g %% 10 = 7)::int] AS provider
                  FROM generate_series(%(first)s, %(rows)s) g) s
          JOIN ai_service_provider p ON p.id = s.provider
        """,
        {"company": env.company.id, "prompts": PROMPTS, "prefixes": PREFIXES, "session": SESSION,
         "rows": rows, "first": have + 1, "providers": providers.ids},
    )
    print(f"inserted {rows - have} usage rows in {time.perf_counter() - started:.1f} s")
    env["ai.token.usage"]._rebuild_rollups()
    env.cr.execute("ANALYZE ai_token_usage")
    env.cr.commit()
    return rows


def measure(registry) -> list[float]:
    """Per-call time of the waste analysis of SAMPLES recent rows, rolled back afterwards."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        cr.execute("SELECT id FROM ai_token_usage WHERE session_id = %s ORDER BY id DESC LIMIT %s", [SESSION, SAMPLES])
        ids = [row[0] for row in cr.fetchall()]
        Finding = env["ai.token.waste.finding"]
        Finding._analyze_usage(env["ai.token.usage"].browse(ids[-1]))  # warm-up
        samples = {False: [], True: []}
        for usage_id in ids:
            # The row's values as the gateway has them before the INSERT (with its provider and price).
            usage = env["ai.token.usage"].browse(usage_id)
            values = Finding._call_values(usage)
            env.invalidate_all()  # each call is analyzed on a fresh ledger transaction
            started = time.perf_counter()
            report = Finding._report(values, before_id=usage_id)
            Finding._waste_values(report)
            Finding._create_findings(usage, values, report)
            env.flush_all()
            samples[report["waste_detected"]].append((time.perf_counter() - started) * 1000)
        cr.rollback()
    print(f"  {len(samples[True])}/{len(ids)} sampled calls with waste")
    return samples


def measure_facts(registry) -> float:
    """Median time to measure the prompt facts (prefix hash, repeats, history) of a typical prompt."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        Finding = api.Environment(cr, SUPERUSER_ID, {})["ai.token.waste.finding"]
        messages = [
            {"role": "system", "content": "You are the assistant of an Odoo CRM. Be brief. " * 100},
            {"role": "user", "content": "Earlier question about lead 41 and its budget."},
            {"role": "assistant", "content": "Lead 41 has a confirmed budget for Q3."},
            {"role": "user", "content": "Qualify lead 42: hardware wholesaler, 40 employees, Lyon."},
        ]
        Finding._waste_facts(messages, "gpt-4o-mini")
        samples = []
        for _ in range(200):
            started = time.perf_counter()
            Finding._waste_facts(messages, "gpt-4o-mini")
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    args = parse_args(__doc__)
    registry = load_registry(args)
    results = {}
    for rows in (10_000, 1_000_000):
        with environment(registry) as env:
            have = ensure_rows(env, rows)
        if have > rows:
            print(f"{have} rows already present: skipping the {rows}-row measure")
            continue
        print(f"{rows} usage rows:")
        results[rows] = measure(registry)
    print(f"{'ledger rows':>12} {'calls':>18} {'p50 ms':>8} {'p95 ms':>8}")
    for rows, by_kind in results.items():
        for kind, samples in (("all", by_kind[False] + by_kind[True]), ("clean", by_kind[False]),
                              ("with waste", by_kind[True])):
            if samples:
                p50, p95 = percentile(samples, 0.5), percentile(samples, 0.95)
                verdict = f"{'OK' if p50 < 2 else 'SLOW'} (target < 2 ms)" if kind == "all" else ""
                print(f"{rows:12d} {kind + f' ({len(samples)})':>18} {p50:8.2f} {p95:8.2f}  {verdict}")
    print(f"prompt facts measured when a call is recorded: {measure_facts(registry):.2f} ms (median)")


if __name__ == "__main__":
    main()
