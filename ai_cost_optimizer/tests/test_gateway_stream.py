from odoo import Command
from odoo.tests import tagged

from ..core.tokens import count_message_tokens, count_text_tokens
from ..exceptions import AiProviderError
from .common import SYSTEM_PROMPT, AiCostCase, genai_price_of
from .fake_provider import DEFAULT_REPLY

MESSAGES = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "Qualify lead 42."}]
# The events before the first text chunk: Anthropic's message_start, ping, content_block_start; OpenAI's role chunk.
BEFORE_FIRST_CHUNK = {"anthropic": 3, "openai_compatible": 1}


def normalized_anthropic(block):
    return {
        "input_tokens": block["input_tokens"] + block["cache_read_input_tokens"] + block["cache_creation_input_tokens"],
        "output_tokens": block["output_tokens"],
        "cache_read_tokens": block["cache_read_input_tokens"],
        "cache_write_tokens": block["cache_creation_input_tokens"],
    }


@tagged("post_install", "-at_install")
class TestGatewayStream(AiCostCase):
    """stream_message end to end: the anthropic SDK's stream and OpenAI-compatible server-sent events over
    real HTTP, the ledger row priced by genai-prices, the budget held before the first byte and settled at
    the end, and the early-stopped and broken streams each recorded once, at a cost."""

    def _stream(self, provider, **kwargs):
        return self.env["ai.service"].stream_message(
            kwargs.pop("messages", MESSAGES), provider=provider, operation="lead_qualification", **kwargs
        )

    def _row(self, result):
        return self.env["ai.token.usage"].browse(result["usage_id"])

    def _budget(self, provider):
        return self.env["ai.cost.budget"].create({
            "name": "Streams", "budget_amount": 100.0, "provider_ids": [Command.set(provider.ids)],
        })

    def _period(self, budget):
        self.env.invalidate_all()
        return budget.period_ids.filtered(lambda p: p.date_start == budget.current_period_start)

    def _assert_priced(self, result, model, provider_id, normalized):
        row = self._row(result)
        self.assertEqual(
            (row.input_tokens, row.output_tokens, row.cache_read_tokens, row.cache_write_tokens),
            (normalized["input_tokens"], normalized["output_tokens"],
             normalized["cache_read_tokens"], normalized["cache_write_tokens"]),
        )
        expected = genai_price_of(model, provider_id, normalized)
        self.assertGreater(expected, 0)
        self.assertAlmostEqual(row.cost_usd, expected, places=10)
        self.assertAlmostEqual(result["cost_usd"], expected, places=10)
        return row

    def test_anthropic_stream_priced_with_cache_tokens(self):
        self.fake.set_reply("Hot lead: budget confirmed, 500 seats, decision this quarter.")
        for expect_read in (False, True):
            with self._stream(self.claude) as stream:
                chunks = list(stream)
            self.assertGreater(len(chunks), 1)
            self.assertEqual("".join(chunks), "Hot lead: budget confirmed, 500 seats, decision this quarter.")
            result = stream.result
            reported = self.fake.last_usage
            self.assertEqual(bool(reported["cache_read_input_tokens"]), expect_read)
            row = self._assert_priced(result, "claude-3-5-haiku-latest", "anthropic", normalized_anthropic(reported))
            self.assertEqual((row.status, row.usage_reported, row.operation), ("ok", True, "lead_qualification"))
            self.assertEqual(result["content"], "".join(chunks))
            self.assertFalse(result["usage_estimated"])
            self.assertGreaterEqual(result["latency_ms"], result["first_chunk_ms"])
        self.assertTrue(self.fake.requests[-1]["json"]["stream"])
        # Same keys as send_message's result.
        sent = self.env["ai.service"].send_message(MESSAGES, provider=self.claude)
        self.assertLessEqual(set(sent), set(result))

    def test_openai_stream_reads_the_usage_of_the_last_chunk(self):
        self.fake.set_cached_tokens(256)
        with self._stream(self.gpt) as stream:
            self.assertEqual("".join(stream), DEFAULT_REPLY)
        sent = self.fake.requests[-1]["json"]
        self.assertEqual((sent["stream"], sent["stream_options"]), (True, {"include_usage": True}))
        reported = self.fake.last_usage
        row = self._assert_priced(stream.result, "gpt-4o-mini", "openai", {
            "input_tokens": reported["prompt_tokens"], "output_tokens": reported["completion_tokens"],
            "cache_read_tokens": 256, "cache_write_tokens": 0,
        })
        self.assertTrue(row.usage_reported)

    def test_budget_held_before_the_first_byte_and_settled_at_the_end(self):
        for provider in (self.claude, self.gpt):
            with self.subTest(provider.kind):
                budget = self._budget(provider)
                stream = self._stream(provider)
                # The request is out, nothing read yet: the estimate is held.
                period = self._period(budget)
                self.assertGreater(period.reserved, 0)
                self.assertEqual(period.spend, 0)
                list(stream)
                period = self._period(budget)
                self.assertEqual(period.reserved, 0)
                self.assertEqual(period.call_count, 1)
                self.assertAlmostEqual(period.spend, stream.result["cost_usd"], places=10)
                self.assertFalse(self.env["ai.cost.budget.reservation"].search([("period_id", "=", period.id)]))
                self.assertEqual(stream.result["budget"]["status"], "ok")

    def test_stream_stopped_early_leaves_one_priced_row(self):
        for provider in (self.claude, self.gpt):
            with self.subTest(provider.kind):
                budget = self._budget(provider)
                before = len(self.usage_rows())
                stream = self._stream(provider)
                first = next(stream)
                stream.close()
                self.assertEqual(len(self.usage_rows()), before + 1)
                result = stream.result
                row = self._row(result)
                self.assertEqual((row.status, row.completion_text), ("ok", first))
                self.assertGreater(row.cost_usd, 0)
                self.assertFalse(row.usage_reported)
                self.assertTrue(result["usage_estimated"])
                self.assertEqual(row.output_tokens, count_text_tokens(first, provider.model).tokens)
                if provider.kind == "anthropic":
                    # message_start came: the prompt side is the provider's.
                    self.assertEqual(row.input_tokens, normalized_anthropic(self.fake.last_usage)["input_tokens"])
                else:
                    self.assertEqual(row.input_tokens, count_message_tokens(MESSAGES, provider.model).tokens)
                period = self._period(budget)
                self.assertEqual(period.reserved, 0)
                self.assertAlmostEqual(period.spend, row.cost_usd, places=10)
                # Closing again records nothing more.
                stream.close()
                self.assertEqual(len(self.usage_rows()), before + 1)

    def test_stream_closed_before_reading_is_recorded(self):
        before = len(self.usage_rows())
        with self._stream(self.gpt) as stream:
            pass
        self.assertEqual(len(self.usage_rows()), before + 1)
        row = self._row(stream.result)
        self.assertEqual(row.output_tokens, 0)
        self.assertGreater(row.cost_usd, 0)

    def test_broken_stream_leaves_one_priced_error_row(self):
        for provider in (self.claude, self.gpt):
            with self.subTest(provider.kind):
                budget = self._budget(provider)
                before = len(self.usage_rows())
                self.fake.queue_responses([{"disconnect_after": BEFORE_FIRST_CHUNK[provider.kind] + 1}])
                stream = self._stream(provider)
                received = []
                try:
                    for chunk in stream:
                        received.append(chunk)
                except AiProviderError as error:
                    self.assertIn(provider.name, str(error))
                else:
                    self.fail("a broken stream must raise AiProviderError")
                self.assertEqual(len(received), 1)
                rows = self.usage_rows()
                self.assertEqual(len(rows), before + 1)
                row = rows[-1]
                self.assertEqual(row, self._row(stream.result))
                self.assertEqual(row.status, "error")
                self.assertRegex(
                    row.error_message, r"^The stream from \S+ broke off \([a-z ]+\)\. Chunks received: 1\.$"
                )
                self.assertGreater(row.cost_usd, 0)
                self.assertFalse(row.usage_reported)
                self.assertEqual(row.output_tokens, count_text_tokens(received[0], provider.model).tokens)
                period = self._period(budget)
                self.assertEqual(period.reserved, 0)
                self.assertAlmostEqual(period.spend, row.cost_usd, places=10)

    def test_unpriced_model_stream_is_cost_unknown(self):
        local = self.env["ai.service.provider"].create(
            self._provider_vals(self.fake, "openai_compatible", name="Local llama", model="llama-local-test")
        )
        with self._stream(local) as stream:
            list(stream)
        row = self._row(stream.result)
        self.assertTrue(row.cost_unknown and stream.result["cost_unknown"])
        self.assertGreater(row.input_tokens, 0)

    def test_response_cache_does_not_answer_streams(self):
        self.env.company.ai_response_cache = True
        for _attempt in range(2):
            with self._stream(self.gpt, temperature=0) as stream:
                list(stream)
            self.assertFalse(stream.result["cache_hit"])
        self.assertEqual(len(self.fake.requests), 2)
        self.assertFalse(self.env["ai.response.cache"].search([("usage_id", "=", stream.result["usage_id"])]))

    def test_provider_error_before_the_stream_is_recorded_without_cost(self):
        self.env.company.ai_fallback_on_failure = False
        self.fake.queue_responses([{"status": 400, "message": "bad request"}])
        before = len(self.usage_rows())
        try:
            self._stream(self.gpt)
        except AiProviderError as error:
            self.assertIn("bad request", str(error))
        else:
            self.fail("a refused stream must raise AiProviderError")
        rows = self.usage_rows()
        self.assertEqual(len(rows), before + 1)
        self.assertEqual((rows[-1].status, rows[-1].cost_usd), ("error", 0.0))
