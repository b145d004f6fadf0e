from datetime import timedelta

from odoo import fields
from odoo.tests import TransactionCase, tagged
from odoo.tools import convert_file

from ..models.ai_cost_demo import TEAMS


@tagged("post_install", "-at_install")
class TestDemoData(TransactionCase):
    """The shipped demo data (demo/ai_cost_demo.xml and ai.cost.demo), loaded as an install with demo
    data loads it: a company that looks real, and a demo model that answers from the Playground."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The gateway's own transactions run on the test cursor, as in AiCostCase.
        cls.registry.enter_test_mode(cls.cr)
        cls.addClassCleanup(cls.registry.leave_test_mode)
        cls.now = fields.Datetime.now()
        # As during the install that loads demo data: the registry is not ready yet, so that the superuser's
        # create() keeps the calls' dates (create_date) instead of stamping them now.
        ready, cls.registry.ready = cls.registry.ready, False
        try:
            convert_file(cls.env, "ai_cost_optimizer", "demo/ai_cost_demo.xml", None, mode="init", kind="demo")
        finally:
            cls.registry.ready = ready
        cls.env.invalidate_all()
        cls.demo_model = cls.env.ref("ai_cost_optimizer.demo_provider_local")
        cls.Usage = cls.env["ai.token.usage"]

    def test_a_company_of_a_few_dozen_people(self):
        users = self.env["res.users"].search([("login", "=like", "ai.demo.%")])
        self.assertEqual(len(users), sum(len(names) for _ops, names in TEAMS.values()))
        self.assertTrue(20 <= len(users) <= 50, len(users))
        self.assertTrue(all(user.has_group("ai_cost_optimizer.group_ai_cost_user") for user in users))
        callers = {user for (user,) in self.Usage._read_group([], ["user_id"])}
        self.assertGreaterEqual(len(callers & set(users)), 20, "most of them call the AI features")

    def test_spend_per_month_on_several_providers(self):
        first_of_month = self.now.date().replace(day=1)
        last_month = (first_of_month - timedelta(days=1)).replace(day=1)
        rows = self.Usage._read_group(
            [("create_date", ">=", last_month), ("create_date", "<", first_of_month)], ["provider_id"],
            ["cost_usd:sum"],
        )
        total = sum(cost for _provider, cost in rows)
        self.assertTrue(300 <= total <= 5000, f"last month's spend: ${total:,.2f}")
        significant = [provider for provider, cost in rows if cost >= 0.05 * total]
        self.assertGreaterEqual(len(significant), 3, "several providers carry the spend")

    def test_streamed_tool_and_embedding_calls_reach_the_dashboard(self):
        embeddings = self.Usage.search([("kind", "=", "embedding"), ("status", "=", "ok")])
        self.assertGreater(len(embeddings), 100)
        self.assertEqual(set(embeddings.mapped("operation")), {"document_embedding"})
        self.assertEqual(embeddings.provider_id.model, "text-embedding-3-small")
        self.assertFalse(any(embeddings.mapped("output_tokens")) or any(embeddings.mapped("cost_unknown")))
        self.assertTrue(all(embeddings.mapped("cost_usd")), "priced by genai-prices")
        chat = self.Usage.search_count([("kind", "=", "chat")])
        self.assertGreater(chat, len(embeddings))
        for operation in ("lead_enrichment_tool_calls", "chatbot_streamed"):
            self.assertGreater(self.Usage.search_count([("operation", "=", operation), ("kind", "=", "chat")]), 100)
        # The optimizer never ranks the embedding model for a chat call.
        self.assertNotIn(embeddings.provider_id, self.env["ai.cost.recommendation"].search([]).recommended_provider_id)
        dina = self.env.ref("ai_cost_optimizer.demo_user_dina")
        kpis = self.env["ai.cost.dashboard"].with_user(dina).get_dashboard_data("30d")["kpis"]
        self.assertGreater(kpis["embedding_calls"], 100)
        self.assertGreater(kpis["embedding_tokens"], 1_000_000, "batches of documents: many tokens")
        self.assertTrue(0 < kpis["embedding_cost"] < 0.05 * kpis["cost"], "a small part of the cost")

    def test_no_demo_row_in_the_future(self):
        latest = self.Usage.search([], order="create_date desc", limit=1)
        self.assertLessEqual(latest.create_date, self.now)
        for model, field in (("ai.cost.recommendation", "date"), ("ai.token.waste.finding", "call_date"),
                             ("ai.provider.experiment", "date_start")):
            records = self.env[model].search([(field, ">", self.now)])
            self.assertFalse(records, f"{model} dated in the future: {records.mapped(field)}")
        self.assertFalse(self.env["ai.cost.budget.period"].search([("date_start", ">", self.now.date())]))

    def test_budgets_at_believable_fill_levels(self):
        budgets = {budget.name: budget for budget in self.env["ai.cost.budget"].search([])}
        company, sales, cap = budgets["Company AI budget"], budgets["Sales assistants"], budgets["Claude Sonnet cap"]
        self.assertLess(company.percentage_used, 50, "comfortable")
        self.assertTrue(80 <= sales.percentage_used < 100, f"past its alert: {sales.percentage_used:.1f}%")
        self.assertGreaterEqual(cap.percentage_used, cap.block_at_threshold, "blocked")
        self.assertGreaterEqual(company.budget_amount, 100, "a budget in hundreds of dollars at least")
        odoobot = self.env.ref("base.user_root")
        for budget in budgets.values():
            self.assertTrue(budget.responsible_id.login.startswith("ai.demo."), budget.name)
            self.assertNotEqual(budget.responsible_id, odoobot)
        self.assertGreaterEqual(len(company.period_ids), 3, "the company budget has its history")
        # The thresholds crossed were alerted: the responsible has an activity for the blocked cap.
        self.assertIn(cap.responsible_id, cap.activity_ids.user_id)
        self.assertEqual(cap.period_ids.filtered(lambda p: p.date_start == cap.current_period_start).alerted_up_to,
                         100)

    def test_output_lengths_learned_for_calibrated_budgets(self):
        """The demo's last week of calls taught Budget Calibration its figures: a calibrated budget reserves them
        at once."""
        learned = self.env["ai.cost.budget.calibration"].search([("calibrated", "=", True)])
        self.assertGreaterEqual(len(learned), 3)
        self.assertTrue(all(0 < row.output_tokens_avg <= row.output_tokens_p99 for row in learned))

    def test_recommendations_and_a_running_experiment_with_both_arms(self):
        self.assertGreater(self.env["ai.cost.recommendation"].search_count([]), 0)
        recommended = self.env["ai.cost.recommendation"].search([]).recommended_provider_id
        self.assertNotIn(self.demo_model, recommended, "the stored recommendations rank the real providers")
        experiment = self.env["ai.provider.experiment"].search([("state", "=", "running")])
        self.assertEqual(len(experiment), 1)
        for arm in experiment.arm_ids:
            assigned = self.env["ai.provider.experiment.assignment"].search_count([("arm_id", "=", arm.id)])
            self.assertGreater(assigned, 0, f"arm {arm.name} has users")
            self.assertGreater(arm.calls, 100, f"arm {arm.name} has calls")
            self.assertTrue(self.Usage.search_count([("ab_arm_id", "=", arm.id),
                                                     ("provider_id", "!=", arm.provider_id.id)]) == 0)

    def test_playground_send_reaches_usage_and_budget_through_the_demo_model(self):
        self.assertEqual(self.env.company.ai_default_provider_id, self.demo_model)
        self.assertEqual((self.demo_model.kind, self.demo_model.cost_unknown), ("demo", False))
        company_budget = self.env["ai.cost.budget"].search([("name", "=", "Company AI budget")])
        spent = company_budget.current_spend
        playground = self.env["ai.cost.playground"].create({"prompt": "Summarize what Deco Addict bought this year."})
        playground.action_estimate()
        playground.action_send()
        self.assertEqual((playground.state, playground.actual_provider_id), ("sent", self.demo_model))
        self.assertTrue(playground.answer.startswith("Demo answer"))
        usage = playground.usage_id
        self.assertEqual((usage.status, usage.provider_id), ("ok", self.demo_model))
        self.assertGreater(usage.cost_usd, 0)
        company_budget.invalidate_recordset()
        self.assertAlmostEqual(company_budget.current_spend, spent + usage.cost_usd, places=9)

    def test_billing_accounts_reconciled_mostly_matched_with_one_price_difference_and_one_outside_day(self):
        accounts = self.env["ai.billing.account"].search([("report_line_ids", "!=", False)])
        self.assertEqual(set(accounts.mapped("kind")), {"anthropic", "openai"})
        rows = self.env["ai.billing.reconciliation"].search([("account_id", "in", accounts.ids)])
        counts = {status: len(rows.filtered(lambda row, status=status: row.status == status))
                  for status in ("matched", "explained", "unexplained", "pending")}
        reported = len(rows) - counts["pending"]
        self.assertGreaterEqual(counts["matched"], 0.9 * reported, counts)
        # Today only can be pending (when the demo has calls today): the providers report a day once it is over.
        self.assertLessEqual(set(rows.filtered(lambda row: row.status == "pending").mapped("date")),
                             {fields.Date.today()})
        unexplained = rows.filtered(lambda row: row.status == "unexplained")
        self.assertEqual(len(unexplained), 1, unexplained.mapped("explanation"))
        self.assertEqual(unexplained.account_id.kind, "openai")
        self.assertIn("output tokens billed $", unexplained.explanation)
        self.assertIn("per million where genai-prices says", unexplained.explanation)
        self.assertGreater(unexplained.diff_usd, 0)
        explained = rows.filtered(lambda row: row.status == "explained")
        self.assertEqual(len(explained), 1, explained.mapped("explanation"))
        self.assertEqual(explained.account_id.kind, "anthropic")
        self.assertGreater(explained.other_keys_tokens, 0)
        self.assertIn("came from other API keys of the organization", explained.explanation)
        # The responsible was told of the unexplained difference, as the reconcile() of a real fetch does.
        openai = unexplained.account_id
        self.assertIn(openai.responsible_id, openai.activity_ids.user_id)

    def test_the_daily_fetch_skips_the_demo_accounts_without_admin_key(self):
        accounts = self.env["ai.billing.account"].search([("report_line_ids", "!=", False)])
        rows = self.env["ai.billing.reconciliation"].search([("account_id", "in", accounts.ids)])
        before = {row.id: row.status for row in rows}
        self.env["ai.billing.account"]._cron_fetch_and_reconcile()
        for account in accounts:
            self.assertFalse(account.has_admin_key or account.last_error, account.last_error)
            self.assertIn("no admin key: the daily fetch skips this account", account.last_fetch_result)
        self.assertEqual({row.id: row.status for row in rows.exists()}, before)

    def test_one_looping_hour_is_a_spend_anomaly(self):
        # Yesterday 14:00-15:00 UTC the lead enrichment agent looped under Lucas Moreau's account: the operation
        # and the person, each once.
        anomalies = self.env["ai.cost.anomaly"].search([])
        self.assertEqual(sorted((anomaly.kind, anomaly.subject) for anomaly in anomalies),
                         [("operation", "Lead enrichment tool calls"), ("user", "Lucas Moreau")])
        for anomaly in anomalies:
            self.assertTrue(anomaly.notified and anomaly.activity_ids, anomaly.subject)
            self.assertGreater(anomaly.spend_usd, 1.0)
            self.assertGreater(anomaly.spend_usd, 5 * anomaly.median_usd)
        operation = anomalies.filtered(lambda anomaly: anomaly.kind == "operation")
        self.assertEqual(operation.budget_id.name, "Sales assistants")
        self.assertEqual(operation.activity_ids.user_id, operation.budget_id.responsible_id)
        # The check of the same hour again records nothing more, nor that of any hour of the day before: office
        # hours are compared with the hours with calls, not with nights.
        Anomaly = self.env["ai.cost.anomaly"]
        self.assertFalse(Anomaly._detect(self.env.company, operation.hour))
        day_before = operation.hour.replace(hour=0) - timedelta(days=1)
        for hour in range(24):
            self.assertFalse(Anomaly._detect(self.env.company, day_before + timedelta(hours=hour)), hour)
