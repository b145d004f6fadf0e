"""Gateway overhead per call: send_message against the fake provider on loopback (a process of its
own, as a real provider is), compared in the same run with direct `anthropic` SDK calls to the same
server. Target: p50 < 5 ms, p95 < 15 ms. The streamed call (stream_message) is measured the same way against
the SDK's own stream: its overhead to the first chunk and to the end.

Each call asks about another lead, like real traffic: a stream of one repeated prompt would measure
the response cache and the duplicate-request waste rule instead. Also printed: the SQL statements a
call sends, and the database round trip (`SELECT 1`) they each cost at least, in the same run."""

import itertools
import logging
import time

from _odoo import environment, fake_provider_process, load_registry, parse_args, percentile

SYSTEM = {"role": "system", "content": "You qualify CRM leads in one word."}
LEAD = "Lead #{}: ACME Corp, 500 seats, budget approved, demo next week."


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


def main() -> None:
    args = parse_args(__doc__, [(("--calls",), {"type": int, "default": 300})])
    registry = load_registry(args)
    # Every SDK request is logged at INFO by its HTTP library; that is not the gateway's cost.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    import anthropic

    with fake_provider_process() as (anthropic_base_url, _openai_base_url), environment(registry) as env:
        provider = env["ai.service.provider"].create(
            {
                "name": "bench",
                "kind": "anthropic",
                "base_url": anthropic_base_url,
                "api_key": "sk-test-bench",
                "model": "claude-3-5-haiku-latest",
                "enable_prompt_caching": False,
            }
        )
        env.cr.commit()
        client = anthropic.Anthropic(api_key="sk-test-bench", base_url=anthropic_base_url, max_retries=0)

        # Unique per run too: the response cache outlives the run.
        leads = (f"{time.time_ns()}-{n}" for n in itertools.count())

        def direct():
            client.messages.create(
                model="claude-3-5-haiku-latest", max_tokens=64, system=SYSTEM["content"],
                messages=[{"role": "user", "content": LEAD.format(next(leads))}],
            )

        records = itertools.cycle(range(1, 1001))

        def gateway(record=False):
            messages = [SYSTEM, {"role": "user", "content": LEAD.format(next(leads))}]
            about = {"res_model": "res.partner", "res_id": next(records)} if record else {}
            env["ai.service"].send_message(messages, provider=provider, max_tokens=64, operation="bench", **about)

        def gateway_about_a_record():
            gateway(record=True)

        def direct_stream():
            events = client.messages.create(
                model="claude-3-5-haiku-latest", max_tokens=64, system=SYSTEM["content"], stream=True,
                messages=[{"role": "user", "content": LEAD.format(next(leads))}],
            )
            with events:
                for event in events:
                    if event.type == "content_block_delta" and event.delta.type == "text_delta":
                        yield event.delta.text

        def gateway_stream():
            messages = [SYSTEM, {"role": "user", "content": LEAD.format(next(leads))}]
            with env["ai.service"].stream_message(
                messages, provider=provider, max_tokens=64, operation="bench"
            ) as stream:
                yield from stream

        timed(direct, 20)
        timed(gateway, 20)
        timed(gateway_about_a_record, 20)
        timed_stream(direct_stream, 20)
        timed_stream(gateway_stream, 20)
        # Interleave them so drift of the machine affects all alike.
        direct_ms, gateway_ms, record_ms = [], [], []
        streams = {"direct": ([], []), "gateway": ([], [])}
        for _ in range(args.calls // 10):
            direct_ms += timed(direct, 10)
            gateway_ms += timed(gateway, 10)
            record_ms += timed(gateway_about_a_record, 10)
            for name, chunks in (("direct", direct_stream), ("gateway", gateway_stream)):
                first_ms, end_ms = timed_stream(chunks, 10)
                streams[name][0].extend(first_ms)
                streams[name][1].extend(end_ms)

        statements = count_statements(gateway)
        round_trip_ms = timed(lambda: env.cr.execute("SELECT 1"), 200)
        provider_id = provider.id

    # A fresh transaction: the ledger rows were committed after the first one's snapshot.
    with environment(registry) as env:
        env["ai.token.usage"].search([("provider_id", "=", provider_id)]).unlink()
        env["ai.service.provider"].browse(provider_id).unlink()

    for kind, samples in (("", gateway_ms), (", a call about a record", record_ms)):
        for label, q in (("p50", 0.5), ("p95", 0.95)):
            base, total = percentile(direct_ms, q), percentile(samples, q)
            print(
                f"gateway_overhead {label}{kind}: direct SDK {base:.2f} ms, send_message {total:.2f} ms, "
                f"overhead {total - base:.2f} ms, ratio {total / base:.2f}x "
                f"(target {'5' if label == 'p50' else '15'} ms)"
            )
    for index, point in ((0, "first chunk"), (1, "end")):
        for label, q in (("p50", 0.5), ("p95", 0.95)):
            base, total = percentile(streams["direct"][index], q), percentile(streams["gateway"][index], q)
            print(
                f"gateway_overhead stream {label} to the {point}: direct SDK stream {base:.2f} ms, stream_message "
                f"{total:.2f} ms, overhead {total - base:.2f} ms, ratio {total / base:.2f}x"
            )
    print(f"gateway_overhead calls: {len(direct_ms)} direct, {len(gateway_ms) + len(record_ms)} through the gateway")
    rtt = percentile(round_trip_ms, 0.5)
    print(
        f"gateway_overhead SQL: {statements} statements per call, database round trip (SELECT 1) p50 {rtt:.2f} ms: "
        f"{statements * rtt:.2f} ms of round trips, before the ledger transaction's BEGIN and COMMIT"
    )


if __name__ == "__main__":
    main()
