from odoo import fields
from odoo.tests import tagged

from .common import SYSTEM_PROMPT, AiCostCase, genai_price_of

PROMPT = [{"role": "user", "content": "Summarize the CRM pipeline rules."}]


@tagged("post_install", "-at_install")
class TestResponseCache(AiCostCase):
    def setUp(self):
        super().setUp()
        self.env.company.ai_response_cache = True

    def _send(self, messages=PROMPT, **kwargs):
        return self.env["ai.service"].send_message(messages, provider=self.gpt, operation="pipeline_rules", **kwargs)

    def test_hit_costs_nothing_and_records_the_saving(self):
        self.fake.set_reply("Rule 1: follow up within a day.")
        first = self._send()
        self.assertFalse(first["cache_hit"])
        self.assertGreater(first["cost_usd"], 0)
        second = self._send(messages=[{"role": "user", "content": "  Summarize the CRM pipeline rules. "}])
        self.assertEqual(len(self.fake.requests), 1, "the provider must not be called again")
        self.assertTrue(second["cache_hit"])
        self.assertEqual(second["content"], "Rule 1: follow up within a day.")
        self.assertEqual(second["cost_usd"], 0.0)
        usage = self.env["ai.token.usage"].browse(second["usage_id"])
        self.assertTrue(usage.cache_hit)
        self.assertEqual(usage.status, "ok")
        self.assertEqual(usage.cost_usd, 0.0)
        self.assertAlmostEqual(usage.cache_savings_usd, first["cost_usd"], places=12)
        self.assertFalse(usage.waste_detected)

    def test_rerouted_call_is_found_by_the_next_identical_request(self):
        self.claude.write({"auto_switch_provider": True, "enable_cost_optimization": True})
        self.env.flush_all()
        send = self.env["ai.service"].send_message
        first = send(PROMPT, provider=self.claude, operation="pipeline_rules")
        self.assertEqual(first["switched_from"], self.claude.id, "the call must have been re-routed")
        second = send(PROMPT, provider=self.claude, operation="pipeline_rules")
        self.assertTrue(second["cache_hit"])
        self.assertEqual(len(self.fake.requests), 1)

    def test_only_deterministic_calls_are_cached(self):
        self._send(temperature=0.7)
        self._send(temperature=0.7)
        self._send(use_cache=False)
        self.assertEqual(len(self.fake.requests), 3)
        self._send(temperature=0)
        self.assertTrue(self._send()["cache_hit"], "temperature 0 and unset are the same deterministic call")
        self.assertFalse(self._send(max_tokens=50)["cache_hit"], "other parameters are another request")
        self.assertFalse(
            self._send(messages=[{"role": "user", "content": "summarize the crm pipeline rules."}])["cache_hit"],
            "an exact-match cache keeps case",
        )

    def test_expired_entries_and_company_switch(self):
        self._send()
        entry = self.env["ai.response.cache"].search([("company_id", "=", self.env.company.id)])
        self.assertEqual(len(entry), 1)
        entry.sudo().write({"expires_at": fields.Datetime.subtract(fields.Datetime.now(), seconds=1)})
        self.assertFalse(self._send()["cache_hit"])
        self.env.company.ai_response_cache = False
        self.assertFalse(self._send()["cache_hit"])
        self.assertEqual(len(self.fake.requests), 3)

    def test_respects_prompt_retention(self):
        self.env.company.ai_prompt_retention = "none"
        self.env.flush_all()  # read by the gateway's ledger transaction
        self._send()
        self.assertFalse(self.env["ai.response.cache"].search([]))
        self.assertFalse(self._send()["cache_hit"])
        self.env.company.write({"ai_prompt_retention": "truncated", "ai_prompt_retention_days": 1,
                                "ai_response_cache_ttl_hours": 72})
        self.env.flush_all()
        self._send()
        entry = self.env["ai.response.cache"].search([])
        self.assertLessEqual(entry.expires_at, fields.Datetime.add(fields.Datetime.now(), days=1))
        self.assertFalse(hasattr(entry, "prompt_text"), "the cache never keeps the prompt")


@tagged("post_install", "-at_install")
class TestPromptCacheSavings(AiCostCase):
    def test_cache_reads_and_writes_priced_at_their_rates(self):
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "Qualify lead 42."}]
        Service = self.env["ai.service"]
        first = Service.send_message(messages, provider=self.claude, use_cache=False)
        second = Service.send_message(messages, provider=self.claude, use_cache=False)
        write_row, read_row = self.env["ai.token.usage"].browse([first["usage_id"], second["usage_id"]])
        self.assertGreater(write_row.cache_write_tokens, 0)
        self.assertGreater(read_row.cache_read_tokens, 0)
        for row in (write_row, read_row):
            usage = {name: row[name] for name in ("input_tokens", "output_tokens", "cache_read_tokens",
                                                   "cache_write_tokens")}
            self.assertAlmostEqual(row.cost_usd, genai_price_of("claude-3-5-haiku-latest", "anthropic", usage),
                                   places=12)
        price = read_row.price_id
        self.assertEqual(write_row.prompt_cache_savings_usd, 0.0)
        self.assertAlmostEqual(
            read_row.prompt_cache_savings_usd,
            read_row.cache_read_tokens * (price.input_price - price.cache_read_price) / 1e6,
            places=12,
        )
