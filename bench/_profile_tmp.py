import cProfile, pstats, itertools, time, logging, sys
from _odoo import environment, fake_provider_process, load_registry, parse_args
args = parse_args("p", [(("--budgets",), {"type": int, "default": 0})])
registry = load_registry(args)
logging.getLogger("httpx").setLevel(logging.WARNING)
with fake_provider_process() as (a_url, o_url), environment(registry) as env:
    provider = env["ai.service.provider"].create({"name": "prof", "kind": "openai_compatible", "base_url": o_url,
        "api_key": "sk-test", "model": "gpt-4o-mini"})
    budgets = env["ai.cost.budget"]
    if args.budgets:
        budgets |= budgets.create({"name": "co", "budget_amount": 1e6, "period_type": "monthly"})
        budgets |= budgets.create({"name": "pr", "budget_amount": 1e6, "period_type": "monthly", "provider_ids": [(6, 0, provider.ids)]})
    env.cr.commit()
    n = itertools.count()
    def call():
        env["ai.service"].send_message([{"role": "user", "content": f"Lead {time.time_ns()} {next(n)}"}], provider=provider, max_tokens=64, operation="bench")
        env.cr.commit()
    for _ in range(30): call()
    from odoo import sql_db
    counted = []
    ex = sql_db.Cursor.execute
    def counting(self, q, p=None, log_exceptions=True):
        counted.append(str(getattr(q, "code", q))[:110].replace("\n", " "))
        return ex(self, q, p, log_exceptions)
    sql_db.Cursor.execute = counting
    call()
    sql_db.Cursor.execute = ex
    print("\n".join(counted))
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    for _ in range(200): call()
    prof.disable()
    print("per call ms", (time.perf_counter() - t) / 200 * 1000)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(110)
    budgets.unlink()
    env["ai.token.usage"].search([("provider_id", "=", provider.id)]).unlink()
    provider.unlink()
