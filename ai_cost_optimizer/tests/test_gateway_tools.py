from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from ..core.tokens import count_message_tokens
from ..core.usage import from_anthropic, from_openai
from ..exceptions import AiInvalidReply
from .common import AiCostCase, genai_price_of
from .fake_provider import DEFAULT_REPLY

QUESTION = [{"role": "user", "content": "What is the weather in Paris, and should lead 42 get a call today?"}]
WEATHER = {
    "name": "get_weather",
    "description": "The current weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
SCORE = {
    "type": "object",
    "properties": {"score": {"type": "integer"}, "label": {"type": "string"}},
    "required": ["score", "label"],
}
GENAI_PROVIDER = {"anthropic": "anthropic", "openai_compatible": "openai"}


@tagged("post_install", "-at_install")
class TestGatewayTools(AiCostCase):
    """Tool use and structured output through send_message and stream_message, in both wire formats."""

    def _send(self, provider, **kwargs):
        return self.env["ai.service"].send_message(
            kwargs.pop("messages", QUESTION), provider=provider, operation="lead_tools", **kwargs
        )

    def _assert_priced_as_reported(self, result, provider):
        row = self.env["ai.token.usage"].browse(result["usage_id"])
        normalize = from_anthropic if provider.kind == "anthropic" else from_openai
        usage = normalize(self.fake.last_usage)
        self.assertEqual((row.input_tokens, row.output_tokens), (usage.input_tokens, usage.output_tokens))
        expected = genai_price_of(provider.model, GENAI_PROVIDER[provider.kind], {
            "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens, "cache_write_tokens": usage.cache_write_tokens,
        })
        self.assertGreater(expected, 0)
        self.assertAlmostEqual(row.cost_usd, expected, places=10)
        return row

    def test_tool_calls_come_back_in_one_shape_and_the_conversation_goes_on(self):
        self.fake.set_tool_calls([{"name": "get_weather", "arguments": {"city": "Paris"}}])
        for provider in (self.claude, self.gpt):
            with self.subTest(provider.kind):
                result = self._send(provider, tools=[WEATHER], tool_choice="auto")
                self.assertEqual(len(result["tool_calls"]), 1)
                call = result["tool_calls"][0]
                self.assertEqual((call["name"], call["arguments"]), ("get_weather", {"city": "Paris"}))
                self.assertTrue(call["id"])
                row = self._assert_priced_as_reported(result, provider)
                self.assertEqual(row.status, "ok")
                follow_up = [
                    *QUESTION,
                    {"role": "assistant", "content": "", "tool_calls": result["tool_calls"]},
                    {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 21 C"},
                ]
                answer = self._send(provider, messages=follow_up, tools=[WEATHER], tool_choice="none")
                self.assertEqual((answer["content"], answer["tool_calls"]), (DEFAULT_REPLY, []))
                self._assert_priced_as_reported(answer, provider)

    def test_forced_tool(self):
        self.fake.set_tool_calls([{"name": "get_weather", "arguments": {"city": "Lyon"}}])
        result = self._send(self.claude, tools=[WEATHER], tool_choice={"name": "get_weather"})
        self.assertEqual(result["tool_calls"][0]["arguments"], {"city": "Lyon"})
        self.assertEqual(self.fake.requests[-1]["json"]["tool_choice"], {"type": "tool", "name": "get_weather"})
        self._send(self.gpt, tools=[WEATHER], tool_choice="required")
        self.assertEqual(self.fake.requests[-1]["json"]["tool_choice"], "required")

    def test_estimate_and_budget_hold_count_the_tool_definitions(self):
        for provider in (self.claude, self.gpt):
            with self.subTest(provider.kind):
                plain = self.env["ai.token.usage"].browse(self._send(provider)["usage_id"])
                with_tools = self.env["ai.token.usage"].browse(self._send(provider, tools=[WEATHER])["usage_id"])
                self.assertEqual(plain.estimated_input_tokens, count_message_tokens(QUESTION, provider.model).tokens)
                self.assertGreater(with_tools.estimated_input_tokens, plain.estimated_input_tokens)
                self.assertGreater(with_tools.input_tokens, plain.input_tokens)
        budget = self.env["ai.cost.budget"].create({
            "name": "Tools", "budget_amount": 100.0, "provider_ids": [Command.set(self.gpt.ids)],
        })
        plain = self._send(self.gpt)["budget"]
        with_tools = self._send(self.gpt, tools=[WEATHER])["budget"]
        self.assertGreater(with_tools["estimated_cost"], plain["estimated_cost"])
        self.env.invalidate_all()
        self.assertEqual(budget.period_ids.reserved, 0)

    def test_streamed_tool_call(self):
        self.fake.set_tool_calls([{"name": "get_weather", "arguments": {"city": "Nantes"}}])
        for provider in (self.claude, self.gpt):
            with self.subTest(provider.kind):
                with self.env["ai.service"].stream_message(QUESTION, provider=provider, tools=[WEATHER]) as stream:
                    self.assertEqual(list(stream), [])
                self.assertEqual(stream.result["tool_calls"][0]["arguments"], {"city": "Nantes"})
                self._assert_priced_as_reported(stream.result, provider)

    def test_structured_output_is_parsed(self):
        self.fake.set_reply('{"score": 87, "label": "hot"}')
        for provider in (self.claude, self.gpt):
            with self.subTest(provider.kind):
                result = self._send(provider, response_format=SCORE)
                self.assertEqual(result["parsed"], {"score": 87, "label": "hot"})
                self._assert_priced_as_reported(result, provider)
                sent = self.fake.requests[-1]["json"]
                if provider.kind == "anthropic":
                    self.assertEqual(sent["tools"][0]["input_schema"], SCORE)
                    self.assertEqual(sent["tool_choice"]["type"], "tool")
                else:
                    self.assertEqual(sent["response_format"]["json_schema"]["schema"], SCORE)
                stream = self.env["ai.service"].stream_message(QUESTION, provider=provider, response_format=SCORE)
                with stream:
                    streamed = "".join(stream)
                self.assertEqual(stream.result["parsed"], {"score": 87, "label": "hot"})
                self.assertEqual(stream.result["content"], streamed)

    def test_structured_output_from_the_response_cache(self):
        self.env.company.ai_response_cache = True
        self.fake.set_reply('{"score": 87, "label": "hot"}')
        first = self._send(self.gpt, response_format=SCORE, temperature=0)
        second = self._send(self.gpt, response_format=SCORE, temperature=0)
        self.assertEqual((first["cache_hit"], second["cache_hit"]), (False, True))
        self.assertEqual(second["parsed"], first["parsed"])
        # Another schema is another request.
        other = self._send(self.gpt, response_format={**SCORE, "required": ["score"]}, temperature=0)
        self.assertFalse(other["cache_hit"])
        # Tool calls are not replayed from the cache.
        self.fake.set_tool_calls([{"name": "get_weather", "arguments": {"city": "Paris"}}])
        for _attempt in range(2):
            self.assertFalse(self._send(self.gpt, tools=[WEATHER], temperature=0)["cache_hit"])

    def test_reply_that_does_not_parse_is_an_error_recorded_with_its_cost(self):
        budget = self.env["ai.cost.budget"].create({
            "name": "Structured", "budget_amount": 100.0,
            "provider_ids": [Command.set((self.claude | self.gpt).ids)],
        })
        for provider, reply in ((self.claude, "Sorry, I cannot."), (self.gpt, "Sorry, I cannot."),
                                (self.gpt, '{"score": 87}')):
            with self.subTest(provider.kind, reply=reply):
                self.fake.set_reply(reply)
                before = len(self.usage_rows())
                try:
                    self._send(provider, response_format=SCORE)
                except AiInvalidReply as error:
                    self.assertIn("structured reply", str(error))
                else:
                    self.fail("an unparsable structured reply must raise AiInvalidReply")
                rows = self.usage_rows()
                self.assertEqual(len(rows), before + 1)
                self.assertEqual(rows[-1].status, "error")
                self.assertGreater(rows[-1].cost_usd, 0)
                self.assertIn("structured reply", rows[-1].error_message)
        # Streamed, the same: the loop raises at the end, and closing the stream afterwards records nothing more.
        before = len(self.usage_rows())
        stream = self.env["ai.service"].stream_message(QUESTION, provider=self.gpt, response_format=SCORE)
        try:
            list(stream)
        except AiInvalidReply:
            stream.close()
        else:
            self.fail("an unparsable streamed structured reply must raise AiInvalidReply")
        rows = self.usage_rows()
        self.assertEqual(len(rows), before + 1)
        self.assertEqual(rows[-1].status, "error")
        self.assertGreater(rows[-1].cost_usd, 0)
        self.env.invalidate_all()
        period = budget.period_ids
        self.assertEqual(period.reserved, 0)
        self.assertAlmostEqual(period.spend, sum(self.usage_rows()[-4:].mapped("cost_usd")), places=10)

    def test_a_long_unchanging_tool_list_is_a_prompt_cache_candidate(self):
        tools = [
            {**WEATHER, "name": f"crm_action_{index}",
             "description": f"Run CRM action {index} on a lead: score it, tag it and log a note. " * 3}
            for index in range(40)
        ]
        first = self.env["ai.token.usage"].browse(self._send(self.gpt, tools=tools)["usage_id"])
        self.assertGreaterEqual(first.static_prefix_tokens, 1024)
        self.assertFalse(first.waste_finding_ids.filtered(lambda finding: finding.rule == "missed_cache"))
        second = self.env["ai.token.usage"].browse(
            self._send(self.gpt, tools=tools, messages=[{"role": "user", "content": "And lead 43?"}])["usage_id"]
        )
        self.assertEqual(second.static_prefix_hash, first.static_prefix_hash)
        finding = second.waste_finding_ids.filtered(lambda finding: finding.rule == "missed_cache")
        self.assertEqual(finding.tokens_wasted, second.static_prefix_tokens)
        self.assertIn("tool definitions", finding.description)

    def test_tool_result_must_answer_a_call(self):
        messages = [*QUESTION, {"role": "tool", "tool_call_id": "call_unknown", "content": "Sunny"}]
        with self.assertRaisesRegex(UserError, "which no earlier assistant message made"):
            self._send(self.gpt, messages=messages, tools=[WEATHER])
        self.assertFalse(self.fake.requests)
