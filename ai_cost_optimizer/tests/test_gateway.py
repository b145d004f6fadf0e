from odoo.exceptions import UserError
from odoo.tests import tagged

from ..exceptions import AiProviderError
from .common import SYSTEM_PROMPT, AiCostCase, genai_price_of


@tagged("post_install", "-at_install")
class TestGateway(AiCostCase):
    def _send(self, provider, **kwargs):
        messages = kwargs.pop(
            "messages",
            [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "Qualify lead 42."}],
        )
        return self.env["ai.service"].send_message(
            messages, provider=provider, operation="lead_qualification", **kwargs
        )

    def _assert_row_matches_server(self, result, model, provider_id, normalized):
        usage = self.env["ai.token.usage"].browse(result["usage_id"])
        self.assertEqual(usage.status, "ok")
        self.assertEqual(
            (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens),
            (normalized["input_tokens"], normalized["output_tokens"],
             normalized["cache_read_tokens"], normalized["cache_write_tokens"]),
        )
        expected = genai_price_of(model, provider_id, normalized)
        self.assertGreater(expected, 0)
        self.assertAlmostEqual(usage.cost_usd, expected, places=10)
        self.assertAlmostEqual(result["cost_usd"], expected, places=10)
        self.assertFalse(usage.cost_unknown)
        return usage

    def test_anthropic_end_to_end_with_prompt_cache(self):
        self.fake.set_reply("Hot lead: budget confirmed.")
        first = self._send(self.claude, res_model="res.partner", res_id=42)
        self.assertEqual(first["content"], "Hot lead: budget confirmed.")
        reported = self.fake.last_usage
        self.assertGreater(reported["cache_creation_input_tokens"], 0)
        sent_system = self.fake.requests[-1]["json"]["system"]
        self.assertEqual(sent_system[-1]["cache_control"], {"type": "ephemeral"})

        def normalized(block):
            return {
                "input_tokens": block["input_tokens"] + block["cache_read_input_tokens"]
                + block["cache_creation_input_tokens"],
                "output_tokens": block["output_tokens"],
                "cache_read_tokens": block["cache_read_input_tokens"],
                "cache_write_tokens": block["cache_creation_input_tokens"],
            }

        usage = self._assert_row_matches_server(first, "claude-3-5-haiku-latest", "anthropic", normalized(reported))
        self.assertEqual((usage.operation, usage.res_model, usage.res_id), ("lead_qualification", "res.partner", 42))
        self.assertTrue(usage.prompt_hash)

        second = self._send(self.claude)
        reported = self.fake.last_usage
        self.assertGreater(reported["cache_read_input_tokens"], 0)
        usage = self._assert_row_matches_server(second, "claude-3-5-haiku-latest", "anthropic", normalized(reported))
        self.assertGreater(usage.prompt_cache_savings_usd, 0)
        self.assertLess(second["cost_usd"], first["cost_usd"])

    def test_openai_compatible_end_to_end_with_cached_tokens(self):
        self.fake.set_cached_tokens(256)
        result = self._send(self.gpt, temperature=0)
        reported = self.fake.last_usage
        self.assertEqual(reported["prompt_tokens_details"]["cached_tokens"], 256)
        normalized = {
            "input_tokens": reported["prompt_tokens"],
            "output_tokens": reported["completion_tokens"],
            "cache_read_tokens": 256,
            "cache_write_tokens": 0,
        }
        self._assert_row_matches_server(result, "gpt-4o-mini", "openai", normalized)
        self.assertEqual(result["provider_id"], self.gpt.id)
        self.assertEqual(result["budget"]["status"], "ok")

    def test_default_provider_of_the_company(self):
        self.env.company.ai_default_provider_id = self.gpt
        result = self.env["ai.service"].send_message([{"role": "user", "content": "Hello"}])
        self.assertEqual(result["provider_id"], self.gpt.id)
        self.assertEqual(self.fake.requests[-1]["path"], "/v1/chat/completions")

    def test_unknown_model_is_cost_unknown_not_zero(self):
        local = self.env["ai.service.provider"].create(
            self._provider_vals(self.fake, "openai_compatible", name="Local llama", model="llama-local-test")
        )
        self.assertTrue(local.cost_unknown)
        result = self._send(local)
        usage = self.env["ai.token.usage"].browse(result["usage_id"])
        self.assertTrue(usage.cost_unknown)
        self.assertTrue(result["cost_unknown"])
        self.assertGreater(usage.input_tokens, 0)

    def test_retry_after_429_then_success(self):
        self.fake.queue_responses([{"status": 429, "retry_after": "0"}])
        result = self._send(self.gpt)
        usage = self.env["ai.token.usage"].browse(result["usage_id"])
        self.assertEqual(usage.attempts, 2)
        self.assertEqual(len(self.fake.requests), 2)

    def test_bad_inputs_raise_clear_errors_and_record_failed_calls(self):
        archived = self.env["ai.service.provider"].create(
            self._provider_vals(self.fake, "openai_compatible", name="Old", active=False)
        )
        keyless = self.env["ai.service.provider"].create(
            self._provider_vals(self.fake, "openai_compatible", name="No key", api_key=False)
        )
        ok = [{"role": "user", "content": "Hi"}]
        cases = [
            ("empty messages", {"messages": []}, "Invalid messages"),
            ("not a list", {"messages": "hello"}, "Invalid messages"),
            ("bad role", {"messages": [{"role": "robot", "content": "Hi"}]}, "role"),
            ("empty content", {"messages": [{"role": "user", "content": ""}]}, "Invalid messages"),
            ("negative max_tokens", {"messages": ok, "max_tokens": -5}, "max_tokens"),
            ("unknown provider", {"messages": ok, "provider": 999999}, "Unknown AI provider"),
            ("archived provider", {"messages": ok, "provider": archived.id}, "archived"),
            ("no api key", {"messages": ok, "provider": keyless.id}, "no API key"),
            ("bad quality", {"messages": ok, "quality_required": "ultra"}, "quality_required"),
            ("bad mode", {"messages": ok, "mode": "turbo"}, "mode"),
        ]
        for label, kwargs, fragment in cases:
            with self.subTest(label):
                before = len(self.usage_rows())
                kwargs.setdefault("provider", self.gpt)
                error = self.assertCallFails(UserError, **kwargs)
                self.assertIn(fragment, str(error))
                rows = self.usage_rows()
                self.assertEqual(len(rows), before + 1)
                self.assertEqual((rows[-1].status, rows[-1].cost_usd), ("error", 0.0))
                self.assertTrue(rows[-1].error_message)
        self.assertFalse(self.fake.requests, "no invalid call may reach the provider")

    def test_unreachable_provider_records_error_without_cost(self):
        self.env.company.ai_fallback_on_failure = False  # the error of this provider, not another's answer
        dead = self.env["ai.service.provider"].create(
            self._provider_vals(self.fake, "anthropic", name="Dead", base_url="http://127.0.0.1:9", max_retries=0)
        )
        error = self.assertCallFails(AiProviderError, provider=dead)
        self.assertIn("Dead", str(error))
        self.assertNotIn("sk-test", str(error))
        row = self.usage_rows()[-1]
        self.assertEqual((row.status, row.cost_usd, row.provider_id), ("error", 0.0, dead))

    def test_server_errors_exhaust_retries(self):
        self.env.company.ai_fallback_on_failure = False  # the error of this provider, not another's answer
        self.fake.queue_responses([{"status": 503}, {"status": 503}])
        self.assertCallFails(AiProviderError, provider=self.gpt)
        self.assertEqual(len(self.fake.requests), 2)
        self.assertEqual(self.usage_rows()[-1].status, "error")

    def test_prompt_retention_setting(self):
        self.env.company.ai_prompt_retention = "none"
        result = self._send(self.gpt)
        self.assertFalse(self.env["ai.token.usage"].browse(result["usage_id"]).prompt_text)
        self.env.company.ai_prompt_retention = "truncated"
        result = self._send(self.gpt)
        self.assertEqual(len(self.env["ai.token.usage"].browse(result["usage_id"]).prompt_text), 1000)
