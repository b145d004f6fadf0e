from datetime import timedelta

from odoo import fields
from odoo.tests import HttpCase, tagged

from ..core.labels import code_label
from .common import AiCostCase, FakeProviderMixin

PROMPT = [{"role": "user", "content": "Qualify the lead of Azure Interior: budget, need and timing."}]


@tagged("post_install", "-at_install")
class TestReadsLikeAPerson(FakeProviderMixin, HttpCase):
    """An administrator reads the dashboard, Usage, the Waste Report, Cost Analytics, Recommendations and A/B
    Experiments at 1600 pixels (ai_cost_labels_tour): operations, task types and rules by their label, counts
    with separators, costs and the daily axis in dollars, the period against the one before, whole column
    titles, and advice that says what to change where."""

    browser_size = "1600x1000"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()

    def setUp(self):
        super().setUp()
        self.env.company.ai_response_cache = False  # the same prompt twice: a duplicate query
        self.provider = self.env["ai.service.provider"].create(
            AiCostCase._provider_vals(self.fake, "openai_compatible", name="Labels tour provider")
        )
        for _n in range(2):
            self.env["ai.service"].send_message(PROMPT, provider=self.provider, operation="lead_qualification",
                                                task_type="classify")
        # Over a thousand e-mail drafts this week and a few the week before: counts that need a separator, and
        # a period to compare with.
        now = fields.Datetime.now()
        # As the demo data's install does: while the registry loads, the superuser's create() keeps the dates.
        ready, self.registry.ready = self.registry.ready, False
        try:
            self.env["ai.token.usage"].create([{
                "provider_id": self.provider.id, "model": self.provider.model, "operation": "email_draft",
                "task_type": "chat", "cost_usd": 0.02, "input_tokens": 900, "output_tokens": 300,
                "create_date": now - timedelta(days=n % 3 + (8 if n < 20 else 0)),
            } for n in range(1220)])
        finally:
            self.registry.ready = ready
        today = fields.Date.context_today(self.env.user)
        self.env["ai.token.analytics"]._build_period(self.env.company, "month", today)
        self.env["ai.cost.optimizer"].recommend_provider("classify", 1000)
        self.env["ai.provider.experiment"].create({
            "name": "Triage: two models",
            "task_type_id": self.env.ref("ai_cost_optimizer.task_type_classify").id,
            "arm_ids": [(0, 0, {"name": "A", "provider_id": self.provider.id, "percentage": 100})],
        })

    def test_screens_read_like_a_person_wrote_them(self):
        self.start_tour("/odoo/action-ai_cost_optimizer.action_ai_cost_dashboard", "ai_cost_labels_tour",
                        login="admin")

    def test_groups_read_as_labels_and_keep_their_codes(self):
        """Lists, pivots and graphs group by an operation or task type under its label; the group still opens
        the rows of its code, and the API's reading (_read_group) keeps the codes."""
        for model, field, code, label in (
            ("ai.token.usage", "operation", "email_draft", "Email draft"),
            ("ai.token.usage", "task_type", "classify", "Classify"),
            ("ai.token.usage.daily", "operation", "lead_qualification", "Lead qualification"),
            ("ai.token.waste.finding", "operation", "lead_qualification", "Lead qualification"),
        ):
            Model = self.env[model]
            groups = {group[field]: group for group in Model.read_group([], [field], [field])}
            self.assertIn(label, groups, f"{model} by {field}: {list(groups)}")
            self.assertNotIn(code, groups)
            self.assertEqual(Model.search_count(groups[label]["__domain"]), Model.search_count([(field, "=", code)]))
            self.assertIn(code, [key for (key,) in Model._read_group([], [field])])
        usage = self.env["ai.token.usage"].search([("operation", "=", "email_draft")], limit=1)
        self.assertEqual((usage.operation_label, usage.task_type_label), ("Email draft", "Chat"))
        self.assertEqual(code_label("lead_enrichment_tool_calls"), "Lead enrichment tool calls")
        data = self.env["ai.cost.dashboard"].get_dashboard_data("7d")
        self.assertIn({"id": "email_draft", "name": "Email draft"},
                      [{"id": row["id"], "name": row["name"]} for row in data["by_operation"]])
        # The period card's comparison: the ledger's cost of the 7 days before, the 20 older drafts among it.
        before = data["previous_period"]
        [(ledger,)] = self.env["ai.token.usage"]._read_group([
            ("create_date", ">=", fields.Datetime.to_datetime(before["start"])),
            ("create_date", "<", fields.Datetime.to_datetime(before["end"]) + timedelta(days=1)),
        ], [], ["cost_usd:sum"])
        self.assertAlmostEqual(before["cost"], ledger, places=8)
        self.assertGreaterEqual(before["cost"], 20 * 0.02 - 1e-9)
