"""Dashboard data and the JSON API over 1,000,000 usage rows, read from the per-day rollups, compared
with the same figures aggregated naively over the raw rows. Target: < 300 ms each, >= 50x faster."""

import statistics
import time
from datetime import timedelta

from _odoo import environment, load_registry, parse_args, vacuum_settled

OPERATIONS = ["lead_qualification", "lead_summary", "email_draft", "ticket_triage", "invoice_extraction",
              "product_description", "translation", "chatbot"]
MODELS = ["claude-3-5-haiku-latest", "gpt-4o-mini", "gemini-2.0-flash", "deepseek-chat", "claude-sonnet-4-0"]


def timed(fn, runs: int = 5) -> tuple[float, object]:
    """Median wall time in ms of `fn` over `runs` runs (after one warm-up), and its last result."""
    result = fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), result


def ensure_rows(env, rows: int) -> None:
    """Bench providers and users, then `rows` usage rows over 90 days, inserted with one SQL statement."""
    env.cr.execute("SELECT count(*) FROM ai_token_usage WHERE session_id = 'bench'")
    have = env.cr.fetchone()[0]
    if have >= rows:
        print(f"{have} bench usage rows already present")
        return
    Provider = env["ai.service.provider"]
    providers = Provider.search([("name", "=like", "bench-%")])
    for model in MODELS[len(providers):]:
        providers |= Provider.create({"name": f"bench-{model}", "kind": "openai_compatible",
                                      "base_url": "http://127.0.0.1:9/v1", "model": model})
    users = env["res.users"].search([("login", "=like", "bench_user_%")])
    for n in range(len(users), 6):
        users |= env["res.users"].create({"name": f"Bench user {n}", "login": f"bench_user_{n}"})
    env.flush_all()
    started = time.perf_counter()
    # Realistic shape: calls come in sessions of 20 about one record (a lead, a ticket) on one day, by the
    # user who owns the record, over 4 operations; each operation is routed to one provider.
    env.cr.execute(
        """
        INSERT INTO ai_token_usage (create_date, write_date, create_uid, write_uid, user_id, company_id,
            provider_id, model, mode, operation, res_model, res_id, task_type, status, input_tokens, output_tokens,
            total_tokens, cost_usd, cost_unknown, cache_hit, latency_ms, prompt_cache_savings_usd, waste_detected,
            waste_reason, could_have_saved_usd, session_id, attempts, usage_reported)
        SELECT ts, ts, 1, 1, (%(users)s::int[])[1 + b %% 6], %(company)s, (%(providers)s::int[])[1 + op %% 5],
               'bench', 'passthrough', (%(ops)s::text[])[1 + op], 'res.partner', 1 + (b * 7919) %% 20000, 'chat',
               CASE WHEN g %% 40 = 0 THEN 'error' ELSE 'ok' END, tin, tout, tin + tout,
               CASE WHEN g %% 40 = 0 OR g %% 15 = 0 THEN 0 ELSE tin * 0.00000015 + tout * 0.0000006 END,
               FALSE, g %% 15 = 0, 400 + g %% 1500, (g %% 3) * 0.00001, g %% 9 = 0,
               CASE WHEN g %% 9 = 0 THEN 'duplicate_query' END, CASE WHEN g %% 9 = 0 THEN 0.0001 ELSE 0 END,
               'bench', 1, TRUE
          FROM (SELECT g, g / 20 AS b, (g %% 4) + 4 * ((g / 20) %% 2) AS op, 800 + g %% 2000 AS tin,
                       50 + g %% 500 AS tout,
                       now() at time zone 'UTC' - (89 - (g - 1) * 90 / %(rows)s) * interval '1 day'
                           - (g %% 36000) * interval '1 second' AS ts
                  FROM generate_series(1, %(rows)s) g) s
        """,
        {"users": users.ids, "company": env.company.id, "ops": OPERATIONS, "rows": rows - have,
         "providers": providers.ids},
    )
    print(f"inserted {rows - have} usage rows in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    env["ai.token.usage"]._rebuild_rollups()
    print(f"rebuilt the rollups in {time.perf_counter() - started:.1f} s")


def vacuum(env) -> None:
    """What autovacuum does to a live database: statistics, and the visibility map that lets the covering
    indexes answer without the rows. On every run, not only after inserting: the other benchmarks rebuild
    the rollups of the same database (every row rewritten, the map cleared), and the index-only scans of the
    next run then read each row too (one operation's top records took twice as long)."""
    started = time.perf_counter()
    env.cr.commit()  # VACUUM runs outside a transaction
    env.cr._cnx.autocommit = True
    from odoo.addons.ai_cost_optimizer.models.ai_token_usage_rollup import ROLLUP_MODELS

    waited = vacuum_settled(env.cr, ["ai_token_usage", *(env[model]._table for model in ROLLUP_MODELS)])
    env.cr._cnx.autocommit = False
    print(f"vacuumed the ledger and the rollups in {time.perf_counter() - started:.1f} s "
          f"({waited:.1f} s of it waiting for autovacuum)")


def naive_costs(env, start, end, operation=None):
    """The API's figures aggregated over the raw ledger: what the rollups spare."""
    cr = env.cr
    where = "create_date >= %(start)s AND create_date < %(end)s"
    if operation:
        where += " AND operation = %(operation)s"
    params = {"start": start, "end": end + timedelta(days=1), "operation": operation}
    out = {}
    for name, query in {
        "total": f"SELECT sum(cost_usd), count(*), count(*) FILTER (WHERE cache_hit) FROM ai_token_usage WHERE {where}",
        "by_operation": f"SELECT operation, sum(cost_usd), count(*) FROM ai_token_usage WHERE {where} GROUP BY 1",
        "by_provider": f"SELECT provider_id, sum(cost_usd), count(*) FROM ai_token_usage WHERE {where} GROUP BY 1",
        "by_record": f"SELECT res_model, res_id, sum(cost_usd) c FROM ai_token_usage WHERE {where} "
                     "GROUP BY 1, 2 ORDER BY c DESC LIMIT 10",
        "time_series": f"SELECT create_date::date, sum(cost_usd), count(*) FROM ai_token_usage WHERE {where} "
                       "GROUP BY 1",
    }.items():
        cr.execute(query, params)
        out[name] = cr.fetchall()
    return out


def naive_user_summary(env, start, end):
    """The per-user summary aggregated over the raw ledger."""
    env.cr.execute(
        """SELECT user_id, count(*), min(cost_usd), avg(cost_usd), max(cost_usd) FROM ai_token_usage
            WHERE create_date >= %s AND create_date < %s GROUP BY 1""",
        [start, end + timedelta(days=1)],
    )
    return env.cr.fetchall()


def naive_dashboard(env, start, end):
    """The dashboard's aggregations over the raw ledger."""
    cr = env.cr
    where = "create_date >= %(start)s AND create_date < %(end)s"
    params = {"start": start, "end": end + timedelta(days=1)}
    for query in [
        f"SELECT sum(cost_usd), count(*), sum(prompt_cache_savings_usd), sum(could_have_saved_usd) "
        f"FROM ai_token_usage WHERE {where}",
        f"SELECT create_date::date, provider_id, sum(cost_usd) FROM ai_token_usage WHERE {where} GROUP BY 1, 2",
        f"SELECT operation, sum(cost_usd) FROM ai_token_usage WHERE {where} GROUP BY 1",
        f"SELECT user_id, sum(cost_usd) FROM ai_token_usage WHERE {where} GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
        f"SELECT provider_id, status, sum(cost_usd), count(*), sum(latency_ms) FROM ai_token_usage WHERE {where} "
        "GROUP BY 1, 2",
    ]:
        cr.execute(query, params)
        cr.fetchall()


def main() -> None:
    args = parse_args(__doc__, [(("--rows",), {"type": int, "default": 1_000_000})])
    registry = load_registry(args)
    from odoo import fields
    from odoo.addons.ai_cost_optimizer.controllers.cost_api import cost_payload, user_summary_payload

    with environment(registry) as env:
        ensure_rows(env, args.rows)
        vacuum(env)
    with environment(registry) as env:
        env.cr.execute("SELECT count(*) FROM ai_token_usage")
        raw = env.cr.fetchone()[0]
        env.cr.execute("SELECT count(*) FROM ai_token_usage_daily")
        daily = env.cr.fetchone()[0]
        env.cr.execute("SELECT count(*) FROM ai_token_usage_record_daily")
        per_record = env.cr.fetchone()[0]
        env.cr.execute("SELECT count(*) FROM ai_token_usage_record_monthly")
        per_month = env.cr.fetchone()[0]
        print(f"raw usage rows: {raw}; rollup rows: {daily} per day, {per_record} per record and day, "
              f"{per_month} per record and month")
        env = env(user=env.ref("base.user_admin").id)
        end = fields.Date.context_today(env.user)
        start = end - timedelta(days=89)
        filters = {"start": str(start), "end": str(end)}
        Dashboard = env["ai.cost.dashboard"]

        results = {}
        results["dashboard (90 days)"] = timed(lambda: Dashboard.get_dashboard_data("90d"))[0]
        results["dashboard (30 days)"] = timed(lambda: Dashboard.get_dashboard_data("30d"))[0]
        results["API costs (90 days)"], payload = timed(lambda: cost_payload(env, filters))
        # The API's default period: a third of the ledger's days, where the year's costliest records say
        # little about the period's (see cost_api `_worth_pruning`).
        month = {"start": str(end - timedelta(days=29)), "end": str(end)}
        results["API costs (30 days, default)"] = timed(lambda: cost_payload(env, month))[0]
        one_operation = {**filters, "operation": "email_draft"}
        results["API costs, one operation"] = timed(lambda: cost_payload(env, one_operation))[0]
        month_of_one_operation = {**month, "operation": "email_draft"}
        results["API costs, one operation (30 days)"] = timed(lambda: cost_payload(env, month_of_one_operation))[0]
        # A start that cuts a month with usage: its days come from the per-day rollup.
        cut = {**filters, "start": str(start + timedelta(days=15))}
        results["API costs, start cuts a month"] = timed(lambda: cost_payload(env, cut))[0]
        results["API costs per user (90 days)"] = timed(lambda: user_summary_payload(env, filters, 100.0))[0]
        # Each figure against the same question asked of the raw rows, in the same run.
        naive_runs = {
            "dashboard (90 days)": lambda: naive_dashboard(env, start, end),
            "dashboard (30 days)": lambda: naive_dashboard(env, end - timedelta(days=29), end),
            "API costs (90 days)": lambda: naive_costs(env, start, end),
            "API costs (30 days, default)": lambda: naive_costs(env, end - timedelta(days=29), end),
            "API costs, one operation": lambda: naive_costs(env, start, end, one_operation["operation"]),
            "API costs, one operation (30 days)": lambda: naive_costs(
                env, end - timedelta(days=29), end, one_operation["operation"]
            ),
            "API costs, start cuts a month": lambda: naive_costs(env, start + timedelta(days=15), end),
            "API costs per user (90 days)": lambda: naive_user_summary(env, start, end),
        }
        naive_ms = {name: timed(run, runs=2)[0] for name, run in naive_runs.items()}
        naive = naive_costs(env, start, end)
        total_raw = float(naive["total"][0][0] or 0)
        assert abs(payload["total_cost_usd"] - total_raw) < 1e-6, (payload["total_cost_usd"], total_raw)
        assert payload["total_requests"] == naive["total"][0][1]

        print(f"{'measure':32} {'median ms':>10}")
        for name, ms in results.items():
            print(f"{name:32} {ms:10.1f}  {'OK' if ms < 300 else 'SLOW'} (target < 300 ms)")
        for name, ms in naive_ms.items():
            print(f"naive {name:26} {ms:10.1f}  ({ms / results[name]:.0f}x the rollup's, target >= 50)")
        print(f"API total {payload['total_cost_usd']:.4f} USD over {payload['total_requests']} requests = raw ledger")


if __name__ == "__main__":
    main()
