"""Billing reconciliation over 90 days of one provider with 50,000 calls a day (4,500,000 usage rows, --calls):
`ai.billing.account.reconcile()` of the 90 days against a bill that matches the ledger. Target: < 5 s.

reconcile() reads the ledger's side from the daily rollup (ai.token.usage.daily, keyed by UTC day, provider,
model, status and whether the request reached the provider, with the cache read and write tokens). Printed
with it: that ledger side alone, and the same figures read from the raw usage rows (grouped by UTC day,
model, status and cost unknown), as reconcile() read them before: both must agree. The rows are inserted in
the benchmark's own transaction and rolled back at the end: the other benchmarks' database stays as they left
it.
"""

import statistics
import time
from datetime import timedelta

from _odoo import load_registry, parse_args

DAYS = 90
MODEL = "claude-sonnet-4-0"
# The calls come from USERS people doing OPERATIONS things: the daily rollup holds some 850 rows a day for the
# provider (user, operation, status, cache hit), as a company's would, not one.
USERS = 37
OPERATIONS = 8


def fill_ledger(env, provider, calls_per_day: int, price, users) -> None:
    """`calls_per_day` usage rows of `provider` on each of the DAYS days before today, with one SQL statement:
    every 40th call failed (no tokens), every 15th answered from the response cache, every 3rd read 70% of
    its prompt from the provider's prompt cache; costs at `price`'s rates, as the gateway prices them. The
    calls are spread over `users` and OPERATIONS operations."""
    started = time.perf_counter()
    env.cr.execute(
        """
        INSERT INTO ai_token_usage (create_date, write_date, create_uid, write_uid, user_id, company_id, provider_id,
            model, mode, operation, task_type, status, input_tokens, output_tokens, cache_read_tokens,
            cost_usd, cost_unknown, cache_hit, provider_called, latency_ms, session_id, attempts, usage_reported, kind)
        SELECT ts, ts, 1, 1, (%(users)s::int[])[1 + g %% %(user_count)s], %(company)s, %(provider)s, %(model)s,
               'passthrough', 'bench_billing_' || (g / 7) %% %(operations)s, 'chat',
               CASE WHEN failed THEN 'error' ELSE 'ok' END, tin, tout, tcache,
               CASE WHEN failed OR hit THEN 0
                    ELSE ((tin - tcache) * %(input)s + tcache * %(cache_read)s + tout * %(output)s) / 1e6 END,
               FALSE, hit, NOT hit, 900, 'bench_billing', 1, TRUE, 'chat'
          FROM (SELECT g, g %% 40 = 0 AS failed, g %% 15 = 0 AND g %% 40 != 0 AS hit,
                       CASE WHEN g %% 40 = 0 THEN 0 ELSE 800 + g %% 4000 END AS tin,
                       CASE WHEN g %% 40 = 0 THEN 0 ELSE 50 + g %% 600 END AS tout,
                       CASE WHEN g %% 40 = 0 OR g %% 3 != 0 THEN 0 ELSE (800 + g %% 4000) * 7 / 10 END AS tcache,
                       date_trunc('day', now() AT TIME ZONE 'UTC') - (1 + (g - 1) / %(per_day)s) * interval '1 day'
                           + (g %% 86400) * interval '1 second' AS ts
                  FROM generate_series(1, %(rows)s) g) s
        """,
        {"users": users.ids, "user_count": len(users), "operations": OPERATIONS, "company": provider.company_id.id,
         "provider": provider.id, "model": provider.model,
         "per_day": calls_per_day, "rows": calls_per_day * DAYS, "input": price.input_per_mtok,
         "cache_read": price.cache_read_per_mtok, "output": price.output_per_mtok},
    )
    print(f"inserted {env.cr.rowcount} usage rows in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    env["ai.token.usage.daily"]._rebuild(fields_date(env, DAYS))
    env.cr.execute("ANALYZE ai_token_usage")
    env.cr.execute("ANALYZE ai_token_usage_daily")
    env.cr.execute("SELECT count(*) FROM ai_token_usage_daily WHERE provider_id = %s", [provider.id])
    print(f"rebuilt the daily rollup of those days ({env.cr.fetchone()[0]} rows) and analyzed in "
          f"{time.perf_counter() - started:.1f} s")


def fields_date(env, days_ago: int):
    from odoo import fields

    return fields.Date.today() - timedelta(days=days_ago)


def store_bill(env, account, date_from, date_to) -> None:
    """The provider's reports of the period as a fetch stores them, made from the ledger at genai-prices'
    rates: every day matches."""

    from odoo.addons.ai_cost_optimizer.core import billing, pricing
    from odoo.addons.ai_cost_optimizer.models.ai_billing_account import PRICE_LISTS

    usage, costs = [], []
    for (day, model), held in sorted(account._ledger_days(date_from, date_to).items()):
        usage.append(billing.UsageLine(day, model, "", held.tokens))
        price = pricing.lookup_price(model, PRICE_LISTS[account.kind])
        costs.append(billing.CostLine(day, model, billing.billed_at_genai_prices(held.tokens, price)))
    days = {date_from + timedelta(days=offset) for offset in range((date_to - date_from).days + 1)}
    account._store_reports(date_from, date_to, billing.Reports(usage, costs, days))


def median_seconds(fn, runs: int = 3) -> float:
    """The median wall time of `runs` runs of `fn`, after one left out (the first warms the caches)."""
    fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def reconcile_seconds(account, date_from, date_to) -> float:
    """reconcile() of the period, as "Fetch now" and the daily cron run it after a fetch."""
    return median_seconds(lambda: account.reconcile(date_from, date_to))


def rollup_ledger_seconds(account, date_from, date_to) -> float:
    """The ledger side alone, as reconcile() reads it: the daily rollup."""
    return median_seconds(lambda: account._ledger_days(date_from, date_to))


def raw_ledger_days(account, date_from, date_to) -> dict:
    """{(day, model): (calls, uncached input, cache read, cache write, output, cost, unknown, failed)} of the raw
    usage rows of the calls that reached the account's providers, as reconcile() read them before the rollup
    held their model and cache tokens."""
    from datetime import datetime, time

    groups = account.env["ai.token.usage"].with_context(tz="UTC")._read_group(
        [("provider_id", "in", account.provider_ids.ids), ("provider_called", "=", True), ("cache_hit", "=", False),
         ("create_date", ">=", datetime.combine(date_from, time.min)),
         ("create_date", "<", datetime.combine(date_to + timedelta(days=1), time.min))],
        groupby=["create_date:day", "model", "status", "cost_unknown"],
        aggregates=["__count", "input_tokens:sum", "cache_read_tokens:sum", "cache_write_tokens:sum",
                    "output_tokens:sum", "cost_usd:sum"],
    )
    days = {}
    for day, model, status, unknown, count, prompt, read, write, output, cost in groups:
        figure = days.setdefault((day.date(), account._model_key(model)), [0, 0, 0, 0, 0, 0.0, 0, 0])
        for index, value in enumerate((count, prompt - read - write, read, write, output, cost,
                                       count if unknown else 0, count if status == "error" else 0)):
            figure[index] += value
    return {key: (*figure[:5], round(figure[5], 6), *figure[6:]) for key, figure in days.items()}


def rollup_figures(account, date_from, date_to) -> dict:
    """`_ledger_days` in raw_ledger_days' shape."""
    return {
        key: (held.calls, held.tokens.uncached_input, held.tokens.cache_read, held.tokens.cache_write,
              held.tokens.output, round(held.cost_usd, 6), held.cost_unknown_calls, held.failed_attempts)
        for key, held in account._ledger_days(date_from, date_to).items()
    }


def raw_ledger_seconds(account, date_from, date_to) -> float:
    """The same figures read from the raw usage rows."""
    return median_seconds(lambda: raw_ledger_days(account, date_from, date_to))


def main() -> None:
    args = parse_args(__doc__, [(("--calls",), {"type": int, "default": 50_000, "help": "calls a day"})])
    registry = load_registry(args)
    from odoo import SUPERUSER_ID, api
    from odoo.addons.ai_cost_optimizer.core import pricing

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        try:
            price = pricing.lookup_price(MODEL, "anthropic")
            provider = env["ai.service.provider"].create({
                "name": "bench-billing", "kind": "anthropic", "base_url": "http://127.0.0.1:9", "model": MODEL,
            })
            account = env["ai.billing.account"].create({
                "name": "bench-billing", "kind": "anthropic", "base_url": "http://127.0.0.1:9",
                "provider_ids": [(6, 0, provider.ids)],
            })
            users = env["res.users"].create([{"name": f"bench-billing {index}", "login": f"bench-billing-{index}"}
                                             for index in range(USERS)])
            fill_ledger(env, provider, args.calls, price, users)
            date_from, date_to = fields_date(env, DAYS), fields_date(env, 1)
            store_bill(env, account, date_from, date_to)
            env.flush_all()

            rows = account.reconcile(date_from, date_to)
            statuses = {status: len(rows.filtered(lambda row, s=status: row.status == s)) for status in
                        set(rows.mapped("status"))}
            assert statuses == {"matched": DAYS}, statuses
            assert sum(rows.mapped("ledger_calls")) == args.calls * DAYS - args.calls * DAYS // 15 + \
                args.calls * DAYS // 120, "every call but the response cache's answers"

            assert rollup_figures(account, date_from, date_to) == raw_ledger_days(account, date_from, date_to), \
                "the ledger side read from the rollup is the raw rows'"

            figures = {
                f"reconcile() of {DAYS} days": reconcile_seconds(account, date_from, date_to),
                "ledger side from the daily rollup": rollup_ledger_seconds(account, date_from, date_to),
                "same figures from the raw rows": raw_ledger_seconds(account, date_from, date_to),
            }
            print(f"{args.calls * DAYS} usage rows of one provider over {DAYS} days; {len(rows)} rows reconciled, "
                  "all matched")
            print(f"{'measure':38} {'median ms':>10}")
            for name, seconds in figures.items():
                verdict = f"  {'OK' if seconds < 5 else 'SLOW'} (target < 5 s)" if name.startswith("reconcile") else ""
                print(f"{name:38} {seconds * 1000:10.1f}{verdict}")
        finally:
            cr.rollback()


if __name__ == "__main__":
    main()
