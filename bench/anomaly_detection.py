"""The hourly spend anomaly check (ai.cost.anomaly `_detect`) of a company making 50,000 calls a day (--calls),
around the clock, over 10 operations and 35 users, with 30 days of ledger (--days: 1,500,000 usage rows, of
which the 7 days the check reads, about 350,000), the last hour with one agent looping. Target: < 2 s per
company and hour.

Three settings: a quiet hour (nothing above the minimum: only the hour is read), the default lines (5 times
and $1: only the operations whose hour passes $1 read their 7 days, here all 10 of them, and the looping
user), and the worst case (minimum $0: every operation and every user reads its 7 days). Printed with them,
the same checks without the index on the usage rows' create_date (the naive baseline: the hour and the 7 days
are then found by scanning the ledger), and what that index costs each inserted row (a btree on increasing
timestamps, measured on a table of its own). The rows are committed (the check reads committed rows, all-visible
once autovacuum passed) and deleted at the end: the other benchmarks' database stays as they left it. Each run
of a check is a transaction of its own, rolled back.
"""

import statistics
import time
from datetime import timedelta

from _odoo import environment, load_registry, parse_args, vacuum_settled

OPERATIONS = 10
USERS = 35
LOOP_CALLS = 600


def insert_rows(env, provider, users, start, rows: int, seconds: int) -> float:
    """`rows` usage rows spread evenly over `seconds` from `start`, by SQL; returns the seconds it took."""
    started = time.perf_counter()
    env.cr.execute(
        """
        INSERT INTO ai_token_usage (create_date, write_date, create_uid, write_uid, user_id, company_id, provider_id,
            model, mode, operation, task_type, status, input_tokens, output_tokens, cost_usd,
            cost_unknown, cache_hit, provider_called, latency_ms, attempts, usage_reported, kind)
        SELECT ts, ts, 1, 1, (%(users)s::int[])[1 + g %% %(user_count)s], %(company)s, %(provider)s, %(model)s,
               'passthrough', 'bench_anomaly_' || (g %% %(operations)s), 'chat', 'ok', 1000, 200,
               0.008 + (g %% 5) * 0.001, FALSE, FALSE, TRUE, 900, 1, TRUE, 'chat'
          FROM (SELECT g, %(start)s::timestamp + (g::float8 * %(seconds)s / %(rows)s) * interval '1 second' AS ts
                  FROM generate_series(0, %(rows)s - 1) g) s
        """,
        {"users": users.ids, "user_count": len(users), "company": provider.company_id.id, "provider": provider.id,
         "model": provider.model, "operations": OPERATIONS, "start": start, "seconds": seconds, "rows": rows},
    )
    return time.perf_counter() - started


def loop(env, provider, user, hour) -> None:
    """An agent that loops in the hour checked: LOOP_CALLS calls of one operation by one user, $0.05 each."""
    env.cr.execute(
        """
        INSERT INTO ai_token_usage (create_date, write_date, create_uid, write_uid, user_id, company_id, provider_id,
            model, mode, operation, task_type, status, input_tokens, output_tokens, cost_usd,
            cost_unknown, cache_hit, provider_called, latency_ms, attempts, usage_reported, kind)
        SELECT ts, ts, 1, 1, %(user)s, %(company)s, %(provider)s, %(model)s, 'passthrough', 'bench_anomaly_loop',
               'chat', 'ok', 5000, 1000, 0.05, FALSE, FALSE, TRUE, 900, 1, TRUE, 'chat'
          FROM (SELECT %(hour)s::timestamp + g * interval '5 seconds' AS ts FROM generate_series(0, %(calls)s - 1) g) s
        """,
        {"user": user.id, "company": provider.company_id.id, "provider": provider.id, "model": provider.model,
         "hour": hour, "calls": LOOP_CALLS},
    )


def index_cost_us(env, rows: int = 200_000, rounds: int = 3) -> float:
    """What a btree index on a timestamp adds to inserting a row, in microseconds: `rows` increasing timestamps
    (as create_date grows) inserted into a table of that one column with and without the index, in turns (the
    median of `rounds`). On the ledger itself the difference drowns in the noise of its other indexes."""
    env.cr.execute("CREATE TEMP TABLE bench_anomaly_ts (create_date timestamp)")
    timings = {True: [], False: []}
    for _round in range(rounds):
        for indexed in (False, True):
            env.cr.execute("TRUNCATE bench_anomaly_ts")
            if indexed:
                env.cr.execute("CREATE INDEX bench_anomaly_ts_idx ON bench_anomaly_ts (create_date)")
            started = time.perf_counter()
            env.cr.execute(
                "INSERT INTO bench_anomaly_ts SELECT now() + g * interval '1 millisecond' "
                "FROM generate_series(1, %s) g", [rows],
            )
            timings[indexed].append(time.perf_counter() - started)
            if indexed:
                env.cr.execute("DROP INDEX bench_anomaly_ts_idx")
    env.cr.execute("DROP TABLE bench_anomaly_ts")
    return (statistics.median(timings[True]) - statistics.median(timings[False])) / rows * 1e6


def detect_seconds(registry, hour, min_spend: float, runs: int = 3, drop_index: bool = False):
    """The median wall time of the check of `hour` with the minimum `min_spend`, each run in a transaction of its
    own and rolled back (as the cron runs, every run records and notifies its anomalies), after one run left
    out; and what the last run found. `drop_index`: without the create_date index (dropped in the run's
    transaction, rolled back with it)."""
    from odoo import SUPERUSER_ID, api

    samples, found = [], []
    for run in range(runs + 1):
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            if drop_index:
                cr.execute("DROP INDEX ai_token_usage__create_date_index")
            env.company.write({"ai_anomaly_ratio": 5.0, "ai_anomaly_min_spend": min_spend})
            env.flush_all()
            started = time.perf_counter()
            anomalies = env["ai.cost.anomaly"]._detect(env.company, hour)
            env.flush_all()
            elapsed = time.perf_counter() - started
            found = [(anomaly.kind, anomaly.subject, round(anomaly.spend_usd, 2)) for anomaly in anomalies]
            cr.rollback()
        if run:
            samples.append(elapsed)
    return statistics.median(samples), found


def main() -> None:
    args = parse_args(__doc__, [(("--calls",), {"type": int, "default": 50_000, "help": "calls per day"}),
                                (("--days",), {"type": int, "default": 30, "help": "days of ledger"})])
    registry = load_registry(args)
    from odoo import fields
    from odoo.addons.ai_cost_optimizer.core.anomaly import HISTORY_HOURS, last_complete_hour

    hour = last_complete_hour(fields.Datetime.now())
    with environment(registry) as env:
        provider = env["ai.service.provider"].create({
            "name": "Anomaly benchmark", "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1",
            "model": "gpt-4o-mini",
        })
        users = env["res.users"].with_context(no_reset_password=True).create([
            {"name": f"Anomaly bench {n}", "login": f"anomaly.bench.{n}"} for n in range(USERS)
        ])
        provider_id, user_ids = provider.id, users.ids
        hours = max(args.days * 24, HISTORY_HOURS) + 1
        rows = args.calls * hours // 24
        inserted = insert_rows(env, provider, users, hour - timedelta(hours=hours - 1), rows, hours * 3600)
        loop(env, provider, users[0], hour)
    try:
        with registry.cursor() as cr:
            cr._cnx.autocommit = True
            vacuum_settled(cr, ["ai_token_usage"])
            cr._cnx.autocommit = False
            cr.execute("SELECT count(*) FROM ai_token_usage")
            ledger_rows = cr.fetchone()[0]
        print(f"anomaly_detection: {rows + LOOP_CALLS:,} usage rows inserted ({args.calls:,} calls a day, "
              f"{hours // 24} days, {OPERATIONS} operations, {USERS} users) in a ledger of {ledger_rows:,} rows, "
              f"{inserted:.1f} s")
        # A quiet hour: nothing passes the minimum, so only the hour is read.
        quiet_s, _found = detect_seconds(registry, hour, 1000.0)
        print(f"anomaly_detection quiet hour (nothing above the minimum): {quiet_s * 1000:.1f} ms")
        default_s, found = detect_seconds(registry, hour, 1.0)
        print(f"anomaly_detection default lines (5x, $1): {default_s * 1000:.0f} ms, found {found}")
        worst_s, found = detect_seconds(registry, hour, 0.0)
        print(f"anomaly_detection worst case (every operation and user reads 7 days): {worst_s * 1000:.0f} ms, "
              f"{len(found)} anomalies")
        # The naive baseline: the same checks without the index on create_date.
        naive_quiet_s, _found = detect_seconds(registry, hour, 1000.0, runs=1, drop_index=True)
        naive_default_s, _found = detect_seconds(registry, hour, 1.0, runs=1, drop_index=True)
        naive_worst_s, _found = detect_seconds(registry, hour, 0.0, runs=1, drop_index=True)
        print(f"anomaly_detection without the create_date index: quiet hour {naive_quiet_s * 1000:.0f} ms, "
              f"default lines {naive_default_s * 1000:.0f} ms, worst case {naive_worst_s * 1000:.0f} ms")
        with environment(registry) as env:
            print(f"anomaly_detection index cost per inserted row: {index_cost_us(env):.2f} us")
        print(f"anomaly_detection: quiet {quiet_s:.3f} s, default {default_s:.3f} s, worst {worst_s:.3f} s, "
              f"naive quiet {naive_quiet_s:.3f} s, naive default {naive_default_s:.3f} s, "
              f"naive worst {naive_worst_s:.3f} s")
    finally:
        with environment(registry) as env:
            env.cr.execute("DELETE FROM ai_token_usage WHERE provider_id = %s", [provider_id])
            env["ai.service.provider"].browse(provider_id).unlink()
            env["res.users"].browse(user_ids).unlink()


if __name__ == "__main__":
    main()
