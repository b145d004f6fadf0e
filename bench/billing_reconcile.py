"""Billing reconciliation over 90 days of one provider with 50,000 calls a day (4,500,000 usage rows, --calls):
`ai.billing.account.reconcile()` of the 90 days against a bill that matches the ledger. Target: < 5 s.

Printed with it: the ledger side alone as reconcile() reads it today (the raw usage rows, grouped by day,
model, status and cost unknown), and the same day's figures read from the daily rollup. The rollup cannot
serve reconcile() yet: it holds no cache read or cache write tokens (the bill is priced per kind of token)
and no model (it is keyed by provider). The rows are inserted in the benchmark's own transaction and rolled
back at the end: the other benchmarks' database stays as they left it.
"""

import statistics
import time
from datetime import timedelta

from _odoo import load_registry, parse_args

DAYS = 90
MODEL = "claude-sonnet-4-0"


def fill_ledger(env, provider, calls_per_day: int, price) -> None:
    """`calls_per_day` usage rows of `provider` on each of the DAYS days before today, with one SQL statement:
    every 40th call failed (no tokens), every 15th answered from the response cache, every 3rd read 70% of
    its prompt from the provider's prompt cache; costs at `price`'s rates, as the gateway prices them."""
    started = time.perf_counter()
    env.cr.execute(
        """
        INSERT INTO ai_token_usage (create_date, write_date, create_uid, write_uid, user_id, company_id, provider_id,
            model, mode, operation, task_type, status, input_tokens, output_tokens, cache_read_tokens, total_tokens,
            cost_usd, cost_unknown, cache_hit, provider_called, latency_ms, session_id, attempts, usage_reported, kind)
        SELECT ts, ts, 1, 1, %(uid)s, %(company)s, %(provider)s, %(model)s, 'passthrough', 'bench_billing', 'chat',
               CASE WHEN failed THEN 'error' ELSE 'ok' END, tin, tout, tcache, tin + tout,
               CASE WHEN failed OR hit THEN 0
                    ELSE ((tin - tcache) * %(input)s + tcache * %(cache_read)s + tout * %(output)s) / 1e6 END,
               FALSE, hit, NOT hit, 900, 'bench_billing', 1, TRUE, 'chat'
          FROM (SELECT g %% 40 = 0 AS failed, g %% 15 = 0 AND g %% 40 != 0 AS hit,
                       CASE WHEN g %% 40 = 0 THEN 0 ELSE 800 + g %% 4000 END AS tin,
                       CASE WHEN g %% 40 = 0 THEN 0 ELSE 50 + g %% 600 END AS tout,
                       CASE WHEN g %% 40 = 0 OR g %% 3 != 0 THEN 0 ELSE (800 + g %% 4000) * 7 / 10 END AS tcache,
                       date_trunc('day', now() AT TIME ZONE 'UTC') - (1 + (g - 1) / %(per_day)s) * interval '1 day'
                           + (g %% 86400) * interval '1 second' AS ts
                  FROM generate_series(1, %(rows)s) g) s
        """,
        {"uid": env.uid, "company": provider.company_id.id, "provider": provider.id, "model": provider.model,
         "per_day": calls_per_day, "rows": calls_per_day * DAYS, "input": price.input_per_mtok,
         "cache_read": price.cache_read_per_mtok, "output": price.output_per_mtok},
    )
    print(f"inserted {env.cr.rowcount} usage rows in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    env["ai.token.usage.daily"]._rebuild(fields_date(env, DAYS))
    env.cr.execute("ANALYZE ai_token_usage")
    env.cr.execute("ANALYZE ai_token_usage_daily")
    print(f"rebuilt the daily rollup of those days and analyzed in {time.perf_counter() - started:.1f} s")


def fields_date(env, days_ago: int):
    from odoo import fields

    return fields.Date.today() - timedelta(days=days_ago)


def store_bill(env, account, date_from, date_to) -> None:
    """The provider's reports of the period as a fetch stores them, made from the ledger at genai-prices'
    rates: every day matches."""
    from decimal import Decimal

    from odoo.addons.ai_cost_optimizer.core import billing, pricing
    from odoo.addons.ai_cost_optimizer.models.ai_billing_account import PRICE_LISTS

    usage, costs = [], []
    for (day, model), held in sorted(account._ledger_days(date_from, date_to).items()):
        usage.append(billing.UsageLine(day, model, "", held.tokens))
        price = pricing.lookup_price(model, PRICE_LISTS[account.kind])
        line = billing.CostLine(day, model)
        for kind in billing.TOKEN_KINDS:
            if getattr(held.tokens, kind):
                one_kind = billing.TokenCounts(**{kind: getattr(held.tokens, kind)})
                line.usd[kind] = Decimal(str(pricing.compute_cost(one_kind.as_usage(), price)))
        costs.append(line)
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


def raw_ledger_seconds(account, date_from, date_to) -> float:
    """The ledger side alone, as reconcile() reads it: the raw usage rows."""
    return median_seconds(lambda: account._ledger_days(date_from, date_to))


def rollup_ledger_seconds(env, account, date_from, date_to) -> float:
    """The figures of the ledger side that the daily rollup holds (calls, input and output tokens, cost, calls
    of unknown cost, by day, provider and status), read from it."""
    def read():
        env["ai.token.usage.daily"]._read_group(
            [("provider_id", "in", account.provider_ids.ids), ("cache_hit", "=", False),
             ("status", "in", ("ok", "error")), ("day", ">=", date_from), ("day", "<=", date_to)],
            groupby=["day:day", "provider_id", "status"],
            aggregates=["call_count:sum", "input_tokens:sum", "output_tokens:sum", "cost_usd:sum",
                        "cost_unknown_count:sum"],
        )
        env["ai.token.usage.daily"].invalidate_model()

    return median_seconds(read)


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
            fill_ledger(env, provider, args.calls, price)
            date_from, date_to = fields_date(env, DAYS), fields_date(env, 1)
            store_bill(env, account, date_from, date_to)
            env.flush_all()

            rows = account.reconcile(date_from, date_to)
            statuses = {status: len(rows.filtered(lambda row, s=status: row.status == s)) for status in
                        set(rows.mapped("status"))}
            assert statuses == {"matched": DAYS}, statuses
            assert sum(rows.mapped("ledger_calls")) == args.calls * DAYS - args.calls * DAYS // 15 + \
                args.calls * DAYS // 120, "every call but the response cache's answers"

            figures = {
                f"reconcile() of {DAYS} days": reconcile_seconds(account, date_from, date_to),
                "ledger side from the raw rows": raw_ledger_seconds(account, date_from, date_to),
                "ledger side from the daily rollup": rollup_ledger_seconds(env, account, date_from, date_to),
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
