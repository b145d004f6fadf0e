from odoo.tests import HttpCase, TransactionCase, tagged

from .common import AiCostCase, FakeProviderMixin

PROMPT = [{"role": "user", "content": "Qualify the lead of Azure Interior: budget, need and timing."}]


@tagged("post_install", "-at_install")
class TestMoneyScreens(FakeProviderMixin, HttpCase):
    """An administrator walks Usage, Budgets, Cost per Day, the Waste Report and Providers after real calls
    through the gateway (the fake provider on 127.0.0.1): every cost reads in dollars, with the figures its
    size needs, and an overspent budget shows a full red bar with its real percentage."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()

    def setUp(self):
        super().setUp()
        self.env.company.ai_response_cache = False  # the same prompt twice: a duplicate query, not a hit
        provider = self.env["ai.service.provider"].create(
            AiCostCase._provider_vals(self.fake, "openai_compatible", name="Money tour provider")
        )
        # Never blocks, so that the calls overspend it: over 1,000 % of its amount.
        self.budget = self.env["ai.cost.budget"].create({
            "name": "Overspent", "budget_amount": 0.000001, "block_at_threshold": 0,
            "alert_thresholds": "100", "provider_ids": [provider.id],
        })
        self.env["ai.cost.budget"].create({"name": "Comfortable", "budget_amount": 1000.0})
        for _n in range(2):
            self.env["ai.service"].send_message(PROMPT, provider=provider, operation="lead_qualification")
        self.env["ai.service"].send_message(
            [{"role": "user", "content": "Draft a follow-up e-mail for Azure Interior."}], provider=provider,
            operation="email_draft",
        )
        # A large amount, as a month's total would be, next to the calls' fractions of a cent; and a call to
        # a model without a known price, whose cost is missing, not $0.
        self.env["ai.token.usage"].create([{
            "provider_id": provider.id, "model": provider.model, "operation": "bulk_import", "cost_usd": 1234.5678,
            "input_tokens": 1000, "output_tokens": 100,
        }, {
            "provider_id": provider.id, "model": "llama3.1:8b", "operation": "unpriced", "cost_unknown": True,
            "input_tokens": 500, "output_tokens": 50,
        }])

    def test_costs_read_in_dollars_on_every_screen(self):
        self.assertGreater(self.budget.percentage_used, 1000, "the tour checks the thousands separator")
        findings = self.env["ai.token.waste.finding"].search([("rule", "=", "duplicate_query")])
        self.assertTrue(findings and all(finding.cost_wasted_usd > 0 for finding in findings))
        self.start_tour("/odoo/action-ai_cost_optimizer.action_ai_token_usage", "ai_cost_money_tour", login="admin")


@tagged("post_install", "-at_install")
class TestHumanLabels(TransactionCase):
    """What an administrator reads: labels with their units, rule names rather than codes, no empty fields."""

    def test_labels_carry_their_units(self):
        expected = {
            "ai.token.usage": {
                "latency_ms": "Latency (ms)", "prompt_cache_savings_usd": "Prompt Cache Savings (USD)",
                "could_have_saved_usd": "Could Have Saved (USD)", "recommended_cost_usd": "Recommended Cost (USD)",
                "cost_usd": "Cost (USD)",
            },
            "ai.service.provider": {
                "base_url": "Base URL", "api_key": "API Key", "timeout": "Timeout (seconds)",
                "retry_backoff": "Retry Backoff (seconds)", "input_price": "Input Price (USD / 1M tokens)",
                "context_window": "Context Window (tokens)",
            },
            "res.company": {
                "ai_waste_redundant_min_tokens": "Redundant Context (tokens)",
                "ai_waste_near_window_pct": "Near Context Window (%)",
                "ai_waste_duplicate_window_minutes": "Duplicate Window (minutes)",
            },
        }
        for model, labels in expected.items():
            for name, label in labels.items():
                self.assertEqual(self.env[model]._fields[name].string, label, f"{model}.{name}")

    def test_usage_form_reads_rules_and_hides_what_is_empty(self):
        # A row may hold rule codes (the demo's) or labels (the gateway's): both read as labels.
        usage = self.env["ai.token.usage"].create(
            {"waste_detected": True, "waste_reason": "duplicate_query, Wrong model"}
        )
        self.assertEqual(usage.waste_reason_label, "Duplicate query, Wrong model")
        arch = self.env["ai.token.usage"].get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertEqual(arch.count('name="complexity"'), 1, "Complexity appears once")
        self.assertIn('<field name="res_id" invisible="not res_id"', arch, "no Related Record 0")
        self.assertIn('<field name="waste_reason_label"', arch)
        self.assertNotIn('<field name="waste_reason"', arch)

    def test_cost_per_day_opens_by_day(self):
        views = self.env["ai.token.usage.daily"].get_views([(False, "pivot"), (False, "graph")])["views"]
        self.assertIn('<field name="day" interval="day" type="row"/>', views["pivot"]["arch"])
        self.assertIn('<field name="day" interval="day"/>', views["graph"]["arch"])
