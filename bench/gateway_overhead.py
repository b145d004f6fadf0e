"""Gateway overhead per call, against the fake provider on loopback (a process of its own, as a real provider
is), as ratios measured in one run. Four arms send the same request to the same OpenAI-compatible endpoint
(`/v1/chat/completions`, gpt-4o-mini), interleaved in rounds of 10 calls each:

- a plain POST (`requests`, a kept session, as the gateway's OpenAI-compatible client sends it): the floor;
- the official `openai` SDK (`chat.completions.create`, no retries);
- LiteLLM's SDK (`litellm.completion`, its offline price map, no callbacks, no telemetry): it prices the call
  itself, the work the gateway does besides writing a durable ledger; the reference (DESIGN section 9);
- `env['ai.service'].send_message` on a provider at that endpoint, then the caller's `env.cr.commit()`: an
  Odoo request ends with one, and the next call starts with a cold record cache.

And the floor of a gateway that keeps a durable ledger: the plain POST, then the call's usage row written by
`ai.token.usage.create()` (its rollups included) in a transaction of its own, committed, as send_message writes
it, but without anything else send_message does (validation, routing, pricing, waste analysis, the rows that
follow the usage row). send_message minus this floor is the gateway's own work. The benchmarks' PostgreSQL
cluster is durable (scripts/bench): a commit is flushed to disk, as in production.

Twice: without a budget, then with a company budget and a budget of the provider (both far from blocking).
Targets (issue 27): send_message p50 at most LiteLLM's p50 without a budget, at most 1.2x with the two
budgets; its overhead over the plain POST under 5 ms at p50 (DESIGN: under 15 ms at p95) in both.

Without a budget, also: a call about a record (its per-record rollups) against the same plain POST, and the
Anthropic path (send_message and stream_message on an Anthropic provider against the `anthropic` SDK's call
and stream at the same server; a stream's overhead to the first chunk and to the end).

Each call asks about another lead, like real traffic: a stream of one repeated prompt would measure the
response cache and the duplicate-request waste rule instead. Also printed: the SQL statements a call sends,
and the database round trip (`SELECT 1`) they each cost at least, in the same run.

LiteLLM and the openai SDK are the benchmark's own packages (bench/requirements.txt), never the addon's:
scripts/bench runs this in venv-bench, built from bench/requirements-py311.lock."""

import concurrent.futures
import itertools
import logging
import os
import time

from _odoo import environment, fake_provider_process, load_registry, parse_args, percentile

MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-3-5-haiku-latest"
API_KEY = "sk-test-bench"
SYSTEM = {"role": "system", "content": "You qualify CRM leads in one word."}
LEAD = "Lead #{}: ACME Corp, 500 seats, budget approved, demo next week."
ROUND = 10
WARM_UP = 20
# The main arms, in the order the report prints them.
MAIN_ARMS = ("plain POST", "openai SDK", "LiteLLM SDK", "POST + usage row", "send_message")
SETTINGS = (("no budget", 1.0), ("two budgets", 1.2))


def timed(fn, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def timed_stream(chunks, n: int) -> tuple[list[float], list[float]]:
    """Milliseconds to the first chunk and to the end of `n` streams, each read from `chunks()`."""
    first_ms, end_ms = [], []
    for _ in range(n):
        started = time.perf_counter()
        first = None
        for _chunk in chunks():
            if first is None:
                first = (time.perf_counter() - started) * 1000
        end_ms.append((time.perf_counter() - started) * 1000)
        first_ms.append(end_ms[-1] if first is None else first)
    return first_ms, end_ms


def count_statements(fn) -> int:
    """How many SQL statements `fn` sends, on any cursor of this process."""
    from odoo import sql_db

    counted = []
    execute = sql_db.Cursor.execute

    def counting(self, query, params=None, log_exceptions=True):
        counted.append(query)
        return execute(self, query, params, log_exceptions)

    sql_db.Cursor.execute = counting
    try:
        fn()
    finally:
        sql_db.Cursor.execute = execute
    return len(counted)


def import_litellm():
    """LiteLLM's SDK as a plain library call: its price map from the package (no download at import), no
    callbacks, no telemetry."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.callbacks, litellm.success_callback, litellm.failure_callback = [], [], []
    return litellm


def watch_background(litellm):
    """LiteLLM returns before its success handler ran: it submits it to a thread pool (a second cost
    calculation, the logging payload). Returns `drain()`, which waits for the handlers submitted so far
    (called between batches, untimed, so that they slow no other arm), and the list of their durations."""
    from litellm import utils

    pool, pending, spent_ms = utils.executor, [], []

    class Watched:
        def submit(self, fn, *args, **kwargs):
            def run():
                started = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    spent_ms.append((time.perf_counter() - started) * 1000)

            future = pool.submit(run)
            pending.append(future)
            return future

        def __getattr__(self, name):
            return getattr(pool, name)

    utils.executor = Watched()

    def drain():
        concurrent.futures.wait(pending)
        pending.clear()

    return drain, spent_ms


def delete_rows_of(env, provider_id: int) -> None:
    """Every stored row pointing at the provider (ledger, rollups, findings...), then the provider: the
    benchmark leaves no history in the rollups the other benchmarks read. The per-record monthly rollup
    keeps no provider: the months the calls about a record went into are rebuilt from the ledger."""
    from odoo.tools import SQL

    env.cr.execute("SELECT min(create_date) FROM ai_token_usage WHERE provider_id = %s AND res_model IS NOT NULL",
                   [provider_id])
    first_about_a_record = env.cr.fetchone()[0]
    for model in env.registry.values():
        field = model._fields.get("provider_id")
        if model._auto and field and field.store and field.comodel_name == "ai.service.provider":
            env.cr.execute(SQL("DELETE FROM %s WHERE provider_id = %s", SQL.identifier(model._table), provider_id))
    env.invalidate_all()
    if first_about_a_record:
        env["ai.token.usage.record.monthly"]._rebuild(first_about_a_record.date())
    env["ai.service.provider"].browse(provider_id).unlink()


def main() -> None:
    args = parse_args(__doc__, [(("--calls",), {"type": int, "default": 300})])
    registry = load_registry(args)
    # Every SDK request is logged at INFO by its HTTP library; that is not the gateway's cost.
    for name in ("httpx", "httpx2", "openai", "anthropic", "LiteLLM", "litellm"):
        logging.getLogger(name).setLevel(logging.WARNING)
    litellm = import_litellm()
    drain_litellm, litellm_background_ms = watch_background(litellm)

    created = {"ai.service.provider": [], "ai.cost.budget": []}
    try:
        figures, statements, round_trip_ms, priced, response_cache = measure_all(
            args, registry, litellm, drain_litellm, litellm_background_ms, created
        )
    finally:
        # A fresh transaction: the ledger rows were committed after the first one's snapshot.
        with environment(registry) as env:
            env["ai.cost.budget"].browse(created["ai.cost.budget"]).unlink()
            for provider_id in created["ai.service.provider"]:
                delete_rows_of(env, provider_id)
    print_figures(args, figures, statements, round_trip_ms, priced, response_cache, litellm_background_ms)


def measure_all(args, registry, litellm, drain_litellm, litellm_background_ms, created):
    """Both settings' samples, the SQL statements of a call in each, the database round trip, the cost of the
    last calls and whether the response cache is on. Records it creates are added to `created`."""
    import anthropic
    import openai
    import requests

    from odoo.addons.ai_cost_optimizer.ledger.cursors import references_of, run_in_own_transaction
    from odoo.fields import Command

    with fake_provider_process() as (anthropic_base_url, openai_base_url), environment(registry) as env:
        # The database outlives a run: a budget or rate limit left in it (by a run stopped half-way) would apply
        # to the calls of the setting without a budget.
        leftovers = [*env["ai.cost.budget"].search([]).mapped("display_name"),
                     *env["ai.cost.rate.limit"].search([]).mapped("display_name")]
        if leftovers:
            raise SystemExit(f"gateway_overhead: the benchmark database holds {', '.join(leftovers)}, which would "
                             "apply to the setting without a budget: delete them first.")
        Provider = env["ai.service.provider"]
        provider = Provider.create({
            "name": "bench (OpenAI-compatible)", "kind": "openai_compatible", "base_url": openai_base_url,
            "api_key": API_KEY, "model": MODEL, "price_provider": "openai",
        })
        claude = Provider.create({
            "name": "bench (Anthropic)", "kind": "anthropic", "base_url": anthropic_base_url, "api_key": API_KEY,
            "model": ANTHROPIC_MODEL, "enable_prompt_caching": False,
        })
        response_cache = env.company.ai_response_cache
        env.cr.commit()
        created["ai.service.provider"] += [provider.id, claude.id]

        # Unique per run too: the response cache outlives the run.
        leads = (f"{time.time_ns()}-{n}" for n in itertools.count())
        records = itertools.cycle(range(1, 1001))

        def prompt():
            return [SYSTEM, {"role": "user", "content": LEAD.format(next(leads))}]

        session = requests.Session()
        openai_client = openai.OpenAI(api_key=API_KEY, base_url=openai_base_url, max_retries=0)
        anthropic_client = anthropic.Anthropic(api_key=API_KEY, base_url=anthropic_base_url, max_retries=0)
        costs = {}

        def plain_post():
            messages = prompt()
            reply = session.post(
                f"{openai_base_url}/chat/completions", timeout=30, headers={"Authorization": f"Bearer {API_KEY}"},
                json={"model": MODEL, "max_tokens": 64, "messages": messages},
            )
            reply.raise_for_status()
            return messages, reply.json()

        def post_and_usage_row():
            messages, answer = plain_post()
            vals = {
                "provider_id": provider.id, "model": MODEL, "operation": "bench", "status": "ok",
                "provider_called": True, "input_tokens": answer["usage"]["prompt_tokens"],
                "output_tokens": answer["usage"]["completion_tokens"],
                "prompt_text": "\n\n".join(f"[{m['role']}] {m['content']}" for m in messages),
                "completion_text": answer["choices"][0]["message"]["content"],
            }
            run_in_own_transaction(env, lambda cr: env(cr=cr, su=True)["ai.token.usage"].create(vals).id,
                                   references=references_of(env["ai.token.usage"], vals))
            env.cr.commit()

        def openai_sdk():
            openai_client.chat.completions.create(model=MODEL, max_tokens=64, messages=prompt())

        def litellm_sdk():
            response = litellm.completion(
                model=f"openai/{MODEL}", api_base=openai_base_url, api_key=API_KEY, max_tokens=64, max_retries=0,
                messages=prompt(),
            )
            costs["LiteLLM SDK"] = response._hidden_params.get("response_cost")

        def gateway(target, **about):
            result = env["ai.service"].send_message(
                prompt(), provider=target, max_tokens=64, operation="bench", **about
            )
            env.cr.commit()
            return result

        def send_message():
            costs["send_message"] = gateway(provider)["cost_usd"]

        def about_a_record():
            gateway(provider, res_model="res.partner", res_id=next(records))

        def anthropic_sdk():
            anthropic_client.messages.create(
                model=ANTHROPIC_MODEL, max_tokens=64, system=SYSTEM["content"], messages=prompt()[1:],
            )

        def anthropic_send_message():
            gateway(claude)

        def anthropic_sdk_stream():
            events = anthropic_client.messages.create(
                model=ANTHROPIC_MODEL, max_tokens=64, system=SYSTEM["content"], stream=True, messages=prompt()[1:],
            )
            with events:
                for event in events:
                    if event.type == "content_block_delta" and event.delta.type == "text_delta":
                        yield event.delta.text

        def anthropic_stream_message():
            stream = env["ai.service"].stream_message(prompt(), provider=claude, max_tokens=64, operation="bench")
            with stream:
                yield from stream
            env.cr.commit()

        main_arms = dict(zip(MAIN_ARMS, (plain_post, openai_sdk, litellm_sdk, post_and_usage_row, send_message),
                             strict=True))
        more_arms = {"about a record": about_a_record, "Anthropic SDK": anthropic_sdk,
                     "Anthropic send_message": anthropic_send_message}
        streams = {"Anthropic SDK stream": anthropic_sdk_stream, "Anthropic stream_message": anthropic_stream_message}

        def measure(arms: dict, stream_arms: dict) -> dict[str, list[float]]:
            """Each arm `args.calls` times, in rounds of ROUND calls, the arms' order turning each round."""
            names = list(arms) + list(stream_arms)
            samples = {name: [] for name in names} | {f"{name} first chunk": [] for name in stream_arms}

            def run(name: str, n: int, keep: bool) -> None:
                if name in stream_arms:
                    first_ms, end_ms = timed_stream(stream_arms[name], n)
                    if keep:
                        samples[f"{name} first chunk"] += first_ms
                        samples[name] += end_ms
                elif keep:
                    samples[name] += timed(arms[name], n)
                else:
                    timed(arms[name], n)
                if name == "LiteLLM SDK":
                    drain_litellm()

            for name in names:
                run(name, WARM_UP, keep=False)
            litellm_background_ms.clear()
            for round_ in range(max(1, args.calls // ROUND)):
                # Turning the order: no arm always follows the same one (a commit, LiteLLM's threads).
                shift = round_ % len(names)
                for name in names[shift:] + names[:shift]:
                    run(name, ROUND, keep=True)
            return samples

        figures, statements = {}, {}
        for setting, _target in SETTINGS:
            if setting == "two budgets":
                Budget = env["ai.cost.budget"]
                budgets = Budget.create({"name": "bench: the company", "budget_amount": 1.0}) | Budget.create(
                    {"name": "bench: the provider", "budget_amount": 1.0, "provider_ids": [Command.set(provider.ids)]}
                )
                for budget in budgets:
                    # A budget counts what its scope already spent this period: far from blocking on top.
                    budget.budget_amount = budget.current_spend + 1_000_000
                env.cr.commit()
                created["ai.cost.budget"] += budgets.ids
                figures[setting] = measure(main_arms, {})
            else:
                figures[setting] = measure(main_arms | more_arms, streams)
            statements[setting] = count_statements(send_message)
        round_trip_ms = timed(lambda: env.cr.execute("SELECT 1"), 200)
        return figures, statements, round_trip_ms, dict(costs), response_cache


def print_figures(args, figures, statements, round_trip_ms, priced, response_cache, litellm_background_ms):
    rtt = percentile(round_trip_ms, 0.5)
    for setting, target in SETTINGS:
        print_setting(setting, target, figures[setting], statements[setting], rtt)
    samples = figures["no budget"]
    for label, q in (("p50", 0.5), ("p95", 0.95)):
        limit = 5 if label == "p50" else 15
        base, total = percentile(samples["plain POST"], q), percentile(samples["about a record"], q)
        print(f"gateway_overhead {label}, a call about a record: plain POST {base:.2f} ms, send_message "
              f"{total:.2f} ms, overhead {total - base:.2f} ms, ratio {total / base:.2f}x (target {limit} ms)")
    for label, q in (("p50", 0.5), ("p95", 0.95)):
        limit = 5 if label == "p50" else 15
        base, total = percentile(samples["Anthropic SDK"], q), percentile(samples["Anthropic send_message"], q)
        print(f"gateway_overhead {label}, Anthropic: anthropic SDK {base:.2f} ms, send_message {total:.2f} ms, "
              f"overhead {total - base:.2f} ms, ratio {total / base:.2f}x (target {limit} ms)")
    for suffix, point in ((" first chunk", "first chunk"), ("", "end")):
        for label, q in (("p50", 0.5), ("p95", 0.95)):
            base = percentile(samples[f"Anthropic SDK stream{suffix}"], q)
            total = percentile(samples[f"Anthropic stream_message{suffix}"], q)
            print(f"gateway_overhead stream {label} to the {point}: direct SDK stream {base:.2f} ms, stream_message "
                  f"{total:.2f} ms, overhead {total - base:.2f} ms, ratio {total / base:.2f}x")
    if litellm_background_ms:
        print(f"gateway_overhead LiteLLM's success handler, run on its thread pool after each call returned (not in "
              f"its figures; waited for between rounds): p50 {percentile(litellm_background_ms, 0.5):.2f} ms per call")
    print(f"gateway_overhead cost of one call as priced: LiteLLM SDK ${priced.get('LiteLLM SDK') or 0:.8f}, "
          f"send_message ${priced.get('send_message') or 0:.8f}; response cache {'on' if response_cache else 'off'}")
    calls = {setting: sum(len(v) for k, v in figures[setting].items() if not k.endswith("first chunk"))
             for setting, _target in SETTINGS}
    print(f"gateway_overhead calls: {calls['no budget']} without a budget, {calls['two budgets']} with two budgets, "
          f"{args.calls} per arm and setting")


def print_setting(setting: str, target: float, samples: dict, statements: int, rtt: float) -> None:
    """The main arms of one setting: their p50 and p95, send_message's ratio to LiteLLM's SDK and its overhead
    over the plain POST, each against its target."""
    tag = f"gateway_overhead [{setting}]"
    for label, q in (("p50", 0.5), ("p95", 0.95)):
        print(f"{tag} {label}: " + ", ".join(f"{arm} {percentile(samples[arm], q):.2f} ms" for arm in MAIN_ARMS))
    ratio = percentile(samples["send_message"], 0.5) / percentile(samples["LiteLLM SDK"], 0.5)
    print(f"{tag} send_message p50 / LiteLLM SDK p50: {ratio:.2f}x (target <= {target:.2f}x): "
          f"{'pass' if ratio <= target else 'FAIL'}")
    overheads = []
    for label, q, limit in (("p50", 0.5, 5), ("p95", 0.95, 15)):
        overhead = percentile(samples["send_message"], q) - percentile(samples["plain POST"], q)
        overheads.append(f"{label} {overhead:.2f} ms (target < {limit} ms: {'pass' if overhead < limit else 'FAIL'})")
    print(f"{tag} send_message overhead over the plain POST: " + ", ".join(overheads))
    floor = percentile(samples["POST + usage row"], 0.5)
    print(f"{tag} send_message p50 over its floor (the POST and the usage row's create() and commit): "
          f"{percentile(samples['send_message'], 0.5) - floor:.2f} ms; the floor over LiteLLM's SDK p50: "
          f"{floor - percentile(samples['LiteLLM SDK'], 0.5):+.2f} ms")
    post = percentile(samples["plain POST"], 0.5)
    print(f"{tag} p50 as multiples of the plain POST: "
          + ", ".join(f"{arm} {percentile(samples[arm], 0.5) / post:.2f}x" for arm in MAIN_ARMS[1:]))
    print(f"{tag} SQL: {statements} statements per call, database round trip (SELECT 1) p50 {rtt:.2f} ms: "
          f"{statements * rtt:.2f} ms of round trips, besides the ledger transaction's BEGIN and COMMIT")

if __name__ == "__main__":
    main()
