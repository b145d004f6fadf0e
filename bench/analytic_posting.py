"""Posting the AI spend as analytic items (ai_cost_optimizer_analytic, DESIGN section 12): 90 days of a company
with 50,000 calls a day (4.5 million ledger rows), allocated by rules of which one splits 30/70 over two accounts
on two plans at once, two operations left unallocated. Target: under 10 s for the 90 days, as the administrator's
"repost a period" runs it."""

import datetime
import time

from _odoo import environment, load_registry, parse_args, vacuum_settled

COMPANY = "analyticbench"
CALLS_PER_DAY = 50_000
DAYS = 90
OPERATIONS = 8  # op_0 .. op_7; op_6 and op_7 match no rule
TARGET_S = 10.0


def ensure_company(env):
    """The benchmark's company, its providers, plans, accounts and rules (made once)."""
    company = env["res.company"].search([("name", "=", COMPANY)])
    if company:
        return company
    company = env["res.company"].create({"name": COMPANY, "currency_id": env.ref("base.USD").id})
    for model in ("gpt-4o-mini", "claude-3-5-haiku-latest"):
        env["ai.service.provider"].create({"name": f"analyticbench-{model}", "kind": "openai_compatible",
                                           "base_url": "http://127.0.0.1:9/v1", "model": model,
                                           "company_id": company.id})
    Plan, Account = env["account.analytic.plan"], env["account.analytic.account"]
    departments, projects = Plan.create({"name": "analyticbench departments"}), Plan.create(
        {"name": "analyticbench projects"})
    accounts = [Account.create({"name": f"analyticbench {plan.name} {index}", "plan_id": plan.id,
                                "company_id": company.id}) for plan in (departments, projects) for index in range(3)]
    sales, support, rnd, project_a, project_b, _project_c = accounts
    Rule = env["ai.cost.allocation.rule"]
    distributions = [
        # the split: 30/70 over two departments and the whole of a project on the other plan
        {f"{sales.id}": 30, f"{support.id}": 70, f"{project_a.id}": 100},
        {f"{sales.id}": 100}, {f"{support.id}": 100, f"{project_b.id}": 100}, {f"{rnd.id}": 100},
        {f"{rnd.id}": 50, f"{sales.id}": 50}, {f"{support.id}": 100},
    ]
    for index, distribution in enumerate(distributions):
        Rule.create({"name": f"analyticbench op_{index}", "company_id": company.id, "operation": f"op_{index}",
                     "analytic_distribution": distribution})
    return company


def ensure_rows(env, company) -> tuple[datetime.date, datetime.date]:
    """The company's DAYS x CALLS_PER_DAY ledger rows, up to yesterday (UTC), inserted with one SQL statement.
    Returns the first and the last day."""
    last = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)
    first = last - datetime.timedelta(days=DAYS - 1)
    env.cr.execute("SELECT count(*), min(create_date)::date FROM ai_token_usage WHERE company_id = %s", [company.id])
    have, since = env.cr.fetchone()
    if have == DAYS * CALLS_PER_DAY and since == first:
        return first, last
    # Rows of an earlier run end on another day: made again, so that the 90 days are the last 90.
    env.cr.execute("DELETE FROM ai_token_usage WHERE company_id = %s", [company.id])
    providers = env["ai.service.provider"].search([("company_id", "=", company.id)], order="id")
    env.flush_all()
    started = time.perf_counter()
    # Calls spread evenly over each day, by any of the database's users, 1 in 4 about a contact (a record
    # without a distribution of its own: the rules allocate it), 1 in 10 on the dearer provider.
    env.cr.execute(
        """
        INSERT INTO ai_token_usage (create_date, write_date, create_uid, write_uid, user_id, company_id,
            provider_id, model, mode, operation, task_type, status, input_tokens, output_tokens,
            cost_usd, cost_unknown, cache_hit, res_model, res_id, optimization_score, attempts, usage_reported, kind,
            provider_called)
        SELECT ts, ts, 1, 1, users[1 + g %% array_length(users, 1)], %(company)s, p.id, p.model, 'passthrough',
               'op_' || (g %% %(operations)s), 'chat', 'ok', tin, 200,
               tin * p.input_price / 1e6 + 200 * p.output_price / 1e6, FALSE, FALSE,
               CASE WHEN g %% 4 = 0 THEN 'res.partner' END, CASE WHEN g %% 4 = 0 THEN 1 + g %% 50 END,
               100, 1, TRUE, 'chat', TRUE
          FROM (SELECT g, 1000 + g %% 9000 AS tin,
                       %(first)s::timestamp + (g * 86400.0 / %(per_day)s) * interval '1 second' AS ts,
                       (%(providers)s::int[])[1 + (g %% 10 = 7)::int] AS provider
                  FROM generate_series(0, %(rows)s - 1) g) s
          JOIN ai_service_provider p ON p.id = s.provider
         CROSS JOIN (SELECT array_agg(id ORDER BY id) AS users FROM res_users) u
        """,
        {"company": company.id, "operations": OPERATIONS, "first": first, "per_day": CALLS_PER_DAY,
         "rows": DAYS * CALLS_PER_DAY, "providers": providers.ids},
    )
    print(f"inserted {DAYS * CALLS_PER_DAY} usage rows in {time.perf_counter() - started:.1f} s")
    # The other benchmarks read the rollups: they must count these rows too.
    env["ai.token.usage"]._rebuild_rollups(first)
    env.cr.commit()
    return first, last


def main() -> None:
    args = parse_args(__doc__)
    registry = load_registry(args)
    if "ai.cost.allocation.rule" not in registry:
        raise SystemExit("the analytic bridge is not installed in the database (scripts/bench installs analytic)")
    with environment(registry) as env:
        company = ensure_company(env)
        first, last = ensure_rows(env, company)
        company_id = company.id
    with registry.cursor() as cr:
        cr._cnx.autocommit = True
        vacuum_settled(cr, ["ai_token_usage", "account_analytic_line"])
        cr._cnx.autocommit = False
    figures = []
    for run in ("first posting", "posting again"):
        # Posting again replaces the days' items: the administrator's repost of a period.
        with environment(registry, company_id) as env:
            started = time.perf_counter()
            lines = env["ai.cost.allocation.rule"].post_analytic_lines(first, last, env.company)
            env.flush_all()
            elapsed = time.perf_counter() - started
            unallocated = env["ai.cost.unallocated"]._total_usd(first, last, env.company)
        figures.append(elapsed)
        print(f"  {run}: {len(lines)} analytic items, ${unallocated:,.2f} unallocated, {elapsed:.2f} s")
    worst = max(figures)
    verdict = "OK" if worst < TARGET_S else "SLOW"
    print(f"analytic_posting: {DAYS} days x {CALLS_PER_DAY} calls posted in {worst:.2f} s "
          f"{verdict} (target < {TARGET_S:.0f} s)")


if __name__ == "__main__":
    main()
