from datetime import timedelta

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from ..core import pricing
from .common import AiCostCase


@tagged("post_install", "-at_install")
class TestProviderPrices(AiCostCase):
    def test_prices_come_from_genai_prices(self):
        expected = pricing.lookup_price("claude-3-5-haiku-latest", "anthropic")
        self.assertEqual(self.claude.price_source, "genai_prices")
        self.assertAlmostEqual(self.claude.input_price, expected.input_per_mtok)
        self.assertAlmostEqual(self.claude.cache_read_price, expected.cache_read_per_mtok)
        self.assertAlmostEqual(self.claude.cache_write_price, expected.cache_write_per_mtok)
        self.assertEqual(len(self.claude.price_ids), 1)
        self.assertEqual(self.claude.price_ids.source, "genai_prices")

    def test_manual_override_versions_prices_and_recomputes_past_usage(self):
        result = self.env["ai.service"].send_message([{"role": "user", "content": "Hi"}], provider=self.gpt)
        usage = self.env["ai.token.usage"].browse(result["usage_id"])
        old_version = usage.price_id
        self.assertEqual(old_version, self.gpt.price_ids)

        self.gpt.write({"input_price": 10.0, "output_price": 20.0, "cache_read_price": 5.0})
        self.assertEqual(self.gpt.price_source, "manual")
        self.assertEqual(len(self.gpt.price_ids), 2)
        self.assertEqual(usage.cost_usd, result["cost_usd"], "a new price must not change past costs by itself")

        # A price correction of the version the call used re-prices it.
        old_version.write({"input_price": 1.0, "output_price": 2.0})
        old_version.action_recompute_usage_cost()
        expected = (usage.input_tokens * 1.0 + usage.output_tokens * 2.0) / 1e6
        self.assertAlmostEqual(usage.cost_usd, expected, places=10)

    def test_price_at_picks_the_version_in_force(self):
        first = self.gpt.price_ids
        first.date_start = fields.Datetime.now() - timedelta(days=10)
        self.gpt.write({"input_price": 9.0})
        self.assertEqual(self.gpt._price_at(fields.Datetime.now() - timedelta(days=5)), first)
        self.assertEqual(self.gpt._price_at(fields.Datetime.now()).input_price, 9.0)

    def test_sync_back_to_genai_prices(self):
        self.gpt.write({"input_price": 9.0})
        self.gpt.action_use_genai_prices()
        self.assertAlmostEqual(self.gpt.input_price, pricing.lookup_price("gpt-4o-mini", "openai").input_per_mtok)

    def test_invalid_provider_values(self):
        for vals in ({"quality_score": 101}, {"input_price": -1}, {"context_window": -1}, {"base_url": "ftp://x"}):
            with self.subTest(vals=vals), self.assertRaises(ValidationError), self.cr.savepoint():
                self.gpt.write(vals)
