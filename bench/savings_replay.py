"""Savings replay: one seeded workload of Odoo AI calls replayed through send_message against the fake
provider, under four policies: always the premium model (the baseline), passthrough to each caller's
configured provider, smart_router with the response cache and prompt caching, smart_router plus a budget.
Target: smart_router with caching at least 40% cheaper than the baseline, with 0 calls served below
their quality bar (the served provider's quality, its prior blended with rated benchmarks).

The policies run in two processes at once, each in a company of its own (providers, response cache,
budgets, ledger rows): the smart router's two here, the baseline and passthrough in a worker. Their
figures are costs and counts; the milliseconds per call they print are shared by both processes."""

import json
import logging
import random
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass

from _odoo import environment, fake_provider_class, load_registry, parse_args

SEED = 8
PREFIX = "savings-"
# Model, kind, quality prior, task types served (empty: all), at several price/quality levels.
PROVIDERS = [
    ("claude-sonnet-4-5", "anthropic", 92, ()),
    ("claude-3-5-haiku-latest", "anthropic", 75, ()),
    ("gpt-4o-mini", "openai_compatible", 70, ()),
    ("deepseek-chat", "openai_compatible", 72, ("chat", "translate", "summarize", "code")),
]
PREMIUM = "claude-sonnet-4-5"
RATED_SAMPLES = 30  # rated benchmark answers per provider: they weigh 60% of the blended quality
POLICIES = ("premium", "passthrough", "smart_router+cache", "smart_router+budget")
# The policies each process replays, in order (the budget policy's budget is the smart router's spend).
GROUPS = {"smart": ("smart_router+cache", "smart_router+budget"), "baseline": ("premium", "passthrough")}
RESULT = "savings_replay results: "
WORDS = (
    "invoice customer order delivery quantity price discount tax warehouse product supplier contract clause "
    "payment term due date shipment lead opportunity revenue forecast quarter budget approval team manager "
    "meeting request support ticket issue error refund warranty subscription renewal account partner address"
).split()


@dataclass(frozen=True)
class Caller:
    """An Odoo feature that calls the gateway: its task, its quality bar and its configured provider."""

    operation: str
    task_type: str
    quality: str  # the caller's quality bar: low | medium | high
    model: str  # the provider the caller configured (passthrough)
    weight: int  # share of the workload
    prompt_words: tuple[int, int]  # length range of the user's request
    answer_words: int  # length of the answer
    system_words: int = 0  # a long static system prompt, identical across calls
    history_turns: int = 0  # earlier conversation turns sent along
    duplicates: float = 0.1  # share of requests that repeat an earlier one exactly
    temperature: float = 0.0


CALLERS = [
    Caller("lead_qualification", "classify", "low", "claude-3-5-haiku-latest", 20, (20, 80), 3, system_words=900,
           duplicates=0.2),
    Caller("ticket_triage", "classify", "low", "gpt-4o-mini", 15, (30, 150), 3, duplicates=0.25),
    Caller("invoice_extraction", "extract", "medium", PREMIUM, 15, (300, 1500), 60, system_words=400),
    Caller("email_summary", "summarize", "medium", PREMIUM, 12, (400, 2500), 120),
    Caller("chatbot", "chat", "medium", "claude-3-5-haiku-latest", 15, (10, 60), 80, system_words=700,
           history_turns=8, duplicates=0.05, temperature=0.7),
    Caller("product_translation", "translate", "medium", "deepseek-chat", 10, (50, 400), 200, duplicates=0.15),
    Caller("code_review", "code", "high", PREMIUM, 8, (150, 600), 250, duplicates=0.02),
    Caller("contract_analysis", "summarize", "high", PREMIUM, 5, (1500, 4000), 300, duplicates=0.02),
]


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def user_request(rng: random.Random, caller: Caller) -> str:
    body = text(rng, rng.randint(*caller.prompt_words))
    if caller.task_type == "code":
        return (f"Review and refactor this function; explain why step by step:\n```python\n"
                f"def compute_{rng.randint(1, 99)}(order):\n    # {body}\n    return order.amount_total\n```")
    if caller.operation == "contract_analysis":
        return f"Analyze this contract, compare its clauses with our policy and justify the risks:\n{body}"
    return {"classify": "Classify in one word: ", "extract": "Extract the invoice fields as JSON: ",
            "summarize": "Summarize: ", "translate": "Translate into French: ", "chat": ""}[caller.task_type] + body


def workload(calls: int) -> list[dict]:
    """`calls` requests from the callers by weight, seeded: the same workload on every run."""
    rng = random.Random(SEED)
    systems = {c.operation: text(rng, c.system_words) for c in CALLERS if c.system_words}
    weights = [c.weight for c in CALLERS]
    seen = {c.operation: [] for c in CALLERS}
    out = []
    for _ in range(calls):
        caller = rng.choices(CALLERS, weights)[0]
        if seen[caller.operation] and rng.random() < caller.duplicates:
            out.append(rng.choice(seen[caller.operation]))
            continue
        messages = [{"role": "system", "content": systems[caller.operation]}] if caller.system_words else []
        for _turn in range(caller.history_turns if rng.random() < 0.6 else 0):
            messages += [{"role": "user", "content": text(rng, rng.randint(10, 60))},
                         {"role": "assistant", "content": text(rng, rng.randint(30, 120))}]
        messages.append({"role": "user", "content": user_request(rng, caller)})
        request = {"caller": caller, "messages": messages, "answer": text(rng, caller.answer_words)}
        seen[caller.operation].append(request)
        out.append(request)
    return out


def setup(env, fake) -> tuple[dict, list[int]]:
    """The four bench providers of the environment's company (prices from genai-prices); the company's
    other active providers are archived for the run, and their ids returned, so that the smart router
    chooses among the bench providers only."""
    Provider = env["ai.service.provider"].with_context(active_test=False)
    others = Provider.search([("company_id", "=", env.company.id), ("active", "=", True),
                              ("name", "not like", PREFIX)])
    others.write({"active": False})
    TaskType = env["ai.task.type"]
    providers = {}
    for model, kind, quality, tasks in PROVIDERS:
        vals = {
            "name": PREFIX + model, "kind": kind, "model": model, "api_key": "sk-test-savings", "active": True,
            "base_url": fake.anthropic_base_url if kind == "anthropic" else fake.openai_base_url,
            "quality_score": quality, "context_window": 200000 if kind == "anthropic" else 128000,
            "max_retries": 0, "task_type_ids": [(6, 0, TaskType.search([("code", "in", tasks)]).ids)],
        }
        provider = Provider.search([("name", "=", PREFIX + model), ("company_id", "=", env.company.id)], limit=1)
        if provider:
            provider.write(vals)
        else:
            provider = Provider.create(vals)
        assert not provider.cost_unknown, f"genai-prices does not know {model}"
        providers[model] = provider
    return providers, others.ids


def reset(registry, company_id: int, provider_ids: list[int]) -> None:
    """A clean slate for the next policy: no usage, cached answers, benchmarks, budgets or periods of the
    bench providers; then the rated benchmark answers that set each provider's quality."""
    with environment(registry, company_id) as env:
        Usage = env["ai.token.usage"]
        # The company's rows only: the other process replays its policies meanwhile.
        Usage.search([("company_id", "=", company_id), "|", ("provider_id", "in", provider_ids),
                      ("session_id", "=like", PREFIX + "%")]).unlink()
        env["ai.response.cache"].search([("provider_id", "in", provider_ids)]).unlink()
        env["ai.cost.recommendation"].search([("recommended_provider_id", "in", provider_ids)]).unlink()
        env["ai.cost.budget"].with_context(active_test=False).search(
            [("name", "=like", PREFIX + "%"), ("company_id", "=", company_id)]
        ).unlink()
        Benchmark = env["ai.provider.benchmark"]
        Benchmark.search([("provider_id", "in", provider_ids)]).unlink()
        rng = random.Random(SEED)
        for provider in env["ai.service.provider"].browse(provider_ids):
            for index in range(RATED_SAMPLES):
                task = ("chat", "summarize", "classify", "extract", "code", "translate")[index % 6]
                Benchmark.create({
                    "provider_id": provider.id, "company_id": provider.company_id.id, "task_type": task,
                    "input_tokens": 1000, "output_tokens": 200, "quality_score": provider.quality_score
                    + rng.randint(-3, 3), "rated": True,
                })
        env["ai.service.provider"].browse(provider_ids)._refresh_benchmark_quality()


def replay(registry, company_id: int, fake, providers: dict, calls: list[dict], policy: str,
           budget_usd: float = 0.0) -> dict:
    """Send every call under `policy` (the budget policy gets a monthly budget of `budget_usd`); returns
    the figures of the run."""
    from odoo.addons.ai_cost_optimizer.core.recommendation import QUALITY_BARS
    from odoo.addons.ai_cost_optimizer.exceptions import AiBudgetExceeded

    smart = policy.startswith("smart_router")
    ids = [p.id for p in providers.values()]
    with environment(registry, company_id) as env:
        env["ai.service.provider"].browse(ids).write({"enable_prompt_caching": smart})
        env.company.ai_response_cache = smart
        if policy == "smart_router+budget":
            env["ai.cost.budget"].create({
                "name": PREFIX + "monthly", "period_type": "monthly", "budget_amount": budget_usd,
                "alert_thresholds": "50, 80, 100", "auto_switch_at_threshold": 50.0, "block_at_threshold": 0.0,
            })
    fake.reset()  # forget the prompt prefixes cached during the previous policy
    served, blocked, statuses = [], 0, {}
    started = time.perf_counter()
    with environment(registry, company_id) as env:
        quality = {p.id: p.effective_quality for p in env["ai.service.provider"].browse(ids)}
    for request in calls:
        caller = request["caller"]
        fake.set_reply(request["answer"])
        provider = providers[PREMIUM if policy == "premium" else caller.model]
        # One transaction per call, as one request each: a long transaction would not see the answers
        # cached (committed by the ledger transaction) after its snapshot.
        with environment(registry, company_id) as env:
            try:
                result = env["ai.service"].send_message(
                    request["messages"], provider=provider.id, task_type=caller.task_type,
                    quality_required=caller.quality, mode="smart_router" if smart else "passthrough",
                    max_tokens=1024, temperature=caller.temperature, operation=caller.operation,
                    session_id=PREFIX + policy, use_cache=smart,
                )
            except AiBudgetExceeded:
                blocked += 1
                continue
            status = result["budget"]["status"]
            statuses[status] = statuses.get(status, 0) + 1
            below = quality[result["provider_id"]] < QUALITY_BARS[caller.quality]
            served.append((result["cost_usd"], result["cache_hit"], below))
    elapsed = time.perf_counter() - started
    with environment(registry, company_id) as env:
        env.cr.execute(
            """SELECT count(*) FILTER (WHERE waste_detected), COALESCE(sum(could_have_saved_usd), 0),
                      COALESCE(sum(cache_savings_usd), 0), COALESCE(sum(prompt_cache_savings_usd), 0)
                 FROM ai_token_usage WHERE provider_id = ANY(%s) AND status = 'ok'""",
            [ids],
        )
        waste_calls, waste_usd, response_saved, prompt_saved = env.cr.fetchone()
    return {
        "calls": len(calls), "served": len(served), "blocked": blocked, "seconds": elapsed,
        "cost": sum(cost for cost, _hit, _below in served),
        "hits": sum(1 for _cost, hit, _below in served if hit),
        "below": sum(1 for _cost, _hit, below in served if below),
        "waste_calls": waste_calls, "waste_usd": waste_usd, "avoided_usd": response_saved + prompt_saved,
        "statuses": statuses,
    }


def companies(registry) -> dict:
    """{group: company id}: a company per process, with the superuser in it (made before the worker
    starts: two processes adding companies to the same user would collide)."""
    with environment(registry) as env:
        found = {}
        for group in GROUPS:
            name = f"{PREFIX}{group}"
            company = env["res.company"].search([("name", "=", name)]) or env["res.company"].create({"name": name})
            env.user.write({"company_ids": [(4, company.id)]})
            found[group] = company.id
        return found


def run_group(registry, company_id: int, calls: list[dict], policies: tuple, verbose: bool) -> dict:
    """Replay `policies` in order in the company `company_id`; returns their figures."""
    results = {}
    with fake_provider_class()() as fake:
        with environment(registry, company_id) as env:
            providers, archived = setup(env, fake)
            ids = [p.id for p in providers.values()]
            for model, provider in providers.items():
                if verbose:
                    print(f"  {model:26} quality {provider.quality_score:3d}, ${provider.input_price:g} in / "
                          f"${provider.output_price:g} out per M tokens")
        try:
            for policy in policies:
                reset(registry, company_id, ids)
                # A budget that the smart router's spend crosses halfway: alerts and auto-switch fire.
                budget = results.get("smart_router+cache", {}).get("cost", 0.0)
                results[policy] = replay(registry, company_id, fake, providers, calls, policy, budget)
        finally:
            reset(registry, company_id, ids)
            with environment(registry, company_id) as env:
                env["ai.service.provider"].browse(ids).write({"active": False})
                env["ai.service.provider"].browse(archived).write({"active": True})
                env.company.ai_response_cache = True
    return results


def main() -> None:
    args = parse_args(__doc__, [(("--calls",), {"type": int, "default": 5000}),
                                (("--group",), {"choices": sorted(GROUPS), "help": "run as the worker of a group"})])
    registry = load_registry(args)
    # Every SDK request is logged at INFO by its HTTP library; that is not the gateway's cost.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    # The SDK warns that claude-sonnet-4-5 nears its end of life: the fake server serves it anyway.
    warnings.filterwarnings("ignore", message="The model .* is deprecated", category=DeprecationWarning)
    calls = workload(args.calls)
    if args.group:
        company_id = companies(registry)[args.group]
        print(RESULT + json.dumps(run_group(registry, company_id, calls, GROUPS[args.group], verbose=False)))
        return
    unique = len({id(request) for request in calls})
    print(f"savings_replay workload: {len(calls)} calls ({unique} distinct requests) from {len(CALLERS)} callers, "
          f"seed {SEED}")
    company_ids = companies(registry)
    worker = subprocess.Popen(
        [sys.executable, __file__, "--odoo-tree", args.odoo_tree, "--addons", args.addons, "--db", args.db,
         "--calls", str(args.calls), "--group", "baseline"],
        stdout=subprocess.PIPE, text=True,
    )
    results = run_group(registry, company_ids["smart"], calls, GROUPS["smart"], verbose=True)
    output, _errors = worker.communicate()
    lines = [line for line in output.splitlines() if line.startswith(RESULT)]
    if worker.returncode or not lines:
        sys.exit(f"savings_replay: the baseline worker failed (exit {worker.returncode})")
    results.update(json.loads(lines[-1][len(RESULT):]))
    results = {policy: results[policy] for policy in POLICIES}
    baseline = results["premium"]["cost"]
    for policy, r in results.items():
        saving = 1 - r["cost"] / baseline if baseline else 0.0
        print(
            f"savings_replay {policy}: total ${r['cost']:.4f}, per call ${r['cost'] / r['calls']:.6f}, "
            f"saving {saving * 100:.1f}% vs premium, below bar {r['below']}, "
            f"cache hit {r['hits'] / max(r['served'], 1) * 100:.1f}%, waste found ${r['waste_usd']:.4f} "
            f"in {r['waste_calls']} calls, waste avoided ${r['avoided_usd']:.4f}, blocked {r['blocked']}, "
            f"{r['seconds'] / r['calls'] * 1000:.1f} ms/call, budget {r['statuses']}"
        )
    smart = results["smart_router+cache"]
    saving = 1 - smart["cost"] / baseline if baseline else 0.0
    ok = saving >= 0.4 and smart["below"] == 0
    print(f"savings_replay verdict: smart_router+cache saves {saving * 100:.1f}% with {smart['below']} calls below "
          f"their bar: {'OK' if ok else 'MISSED'} (target >= 40% and 0)")


if __name__ == "__main__":
    main()
