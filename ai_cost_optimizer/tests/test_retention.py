"""Privacy: the retention cron blanks prompts and answers past each company's period, and keeps
every number of the ledger."""

from odoo.tests import tagged
from odoo.tools import SQL

from .common import AiCostCase

NUMBERS = ("input_tokens", "output_tokens", "total_tokens", "cost_usd", "status", "prompt_hash", "provider_id")


@tagged("post_install", "-at_install")
class TestRetention(AiCostCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.write({"ai_prompt_retention": "full", "ai_prompt_retention_days": 30})
        cls.other_company = cls.env["res.company"].create(
            {"name": "Other AI Co", "ai_prompt_retention": "full", "ai_prompt_retention_days": 7}
        )
        cls.cron = cls.env.ref("ai_cost_optimizer.ir_cron_purge_prompts")

    def call(self, days_ago, prompt="Qualify lead 42."):
        """A real call through the gateway, dated `days_ago`."""
        usage_id = self.env["ai.service"].send_message([{"role": "user", "content": prompt}], provider=self.gpt)[
            "usage_id"
        ]
        return self.backdate(self.env["ai.token.usage"].browse(usage_id), days_ago)

    def foreign_row(self, days_ago):
        usage = self.env["ai.token.usage"].create(
            {
                "company_id": self.other_company.id,
                "input_tokens": 120,
                "output_tokens": 30,
                "cost_usd": 0.00004,
                "prompt_hash": "f" * 64,
                "prompt_text": "[user] Summarize ticket 7",
                "completion_text": "Printer jam, solved.",
            }
        )
        return self.backdate(usage, days_ago)

    def backdate(self, usage, days_ago):
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "UPDATE ai_token_usage SET create_date = (now() AT TIME ZONE 'UTC') - %s * interval '1 day' "
                "WHERE id = %s",
                days_ago,
                usage.id,
            )
        )
        self.env.invalidate_all()
        return usage

    def numbers(self, usages):
        return usages.read(list(NUMBERS))

    def run_cron(self):
        self.cron.method_direct_trigger()
        self.env.invalidate_all()

    def test_cron_purges_texts_per_company_and_keeps_numbers(self):
        old, recent = self.call(40), self.call(20)
        old_foreign, recent_foreign = self.foreign_row(10), self.foreign_row(5)
        everything = old | recent | old_foreign | recent_foreign
        self.assertTrue(all(everything.mapped("prompt_text")) and all(everything.mapped("completion_text")))
        before = self.numbers(everything)

        self.run_cron()
        for usage in old | old_foreign:
            self.assertEqual((usage.prompt_text, usage.completion_text), (False, False), usage.company_id.name)
        for usage in recent | recent_foreign:
            self.assertTrue(usage.prompt_text and usage.completion_text, usage.company_id.name)
        self.assertEqual(self.numbers(everything), before, "tokens, cost and status survive the purge")
        self.assertGreater(old.cost_usd, 0)

        # A shorter period, set in the settings, applies at the next run.
        settings = self.env["res.config.settings"].create({"ai_prompt_retention_days": 10})
        settings.execute()
        self.run_cron()
        self.assertEqual((recent.prompt_text, recent.completion_text), (False, False))
        self.assertTrue(recent_foreign.prompt_text, "another company's period is its own")
        self.assertEqual(self.numbers(everything), before)

    def test_purge_is_scheduled_daily(self):
        self.assertTrue(self.cron.active)
        self.assertEqual((self.cron.interval_number, self.cron.interval_type), (1, "days"))
        self.assertEqual(self.cron.model_id.model, "ai.token.usage")
        self.assertIn("_cron_purge_prompts", self.cron.code)
