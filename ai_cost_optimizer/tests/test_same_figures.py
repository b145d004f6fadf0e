"""One figure, one number: each test reads the same figure on two screens (or a screen and the JSON API) and
fails when they differ (issue 24, "Numbers that disagree")."""

from datetime import datetime, time, timedelta

from dateutil.relativedelta import relativedelta
from lxml import etree

from odoo import fields
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import SQL, format_date
from odoo.tools.safe_eval import safe_eval

from ..core.periods import NAMED_PERIODS, named_period_bounds
from ..core.pricing import format_usd
from .common import AiCostCase

# The search views' filter of each named period (core.periods NAMED_PERIODS).
FILTERS = {"7d": "last_7_days", "30d": "last_30_days", "90d": "last_90_days", "this_month": "this_month",
           "last_month": "last_month"}
# Days before today with usage: each named period's first and last day, and the day before its first.
DAYS_AGO = (0, 1, 6, 7, 29, 30, 31, 45, 89, 90, 95)


def filter_domain(env, model, name, today):
    """The domain of the filter `name` of `model`'s search view, evaluated as the web client does on `today`."""
    arch = etree.fromstring(env[model].get_views([(False, "search")])["views"]["search"]["arch"])
    [node] = arch.xpath(f"//filter[@name='{name}']")
    return safe_eval(node.get("domain"), {"context_today": lambda: today, "relativedelta": relativedelta})


@tagged("post_install", "-at_install")
class TestNamedPeriodsAgree(HttpCase):
    """"Last 30 days" and the other named periods select the same days on the dashboard, in Reporting > Cost per
    Day, in the Benchmarks pivot and in the JSON API."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Provider = cls.env["ai.service.provider"]
        cls.gpt = Provider.create({"name": "GPT-4o (periods)", "kind": "openai_compatible",
                                   "base_url": "http://127.0.0.1:9/v1", "model": "gpt-4o"})
        cls.claude = Provider.create({"name": "Claude (periods)", "kind": "anthropic",
                                      "base_url": "http://127.0.0.1:9", "model": "claude-3-5-haiku-latest"})
        cls.manager = new_test_user(cls.env, login="ai_periods_manager",
                                    groups="base.group_user,ai_cost_optimizer.group_ai_cost_manager")
        cls.today = fields.Date.context_today(cls.env["res.users"].with_user(cls.manager))
        Usage = cls.env["ai.token.usage"]
        for n, days_ago in enumerate(DAYS_AGO):
            for provider, status, cache_hit in ((cls.gpt, "ok", False), (cls.gpt, "error", False),
                                                (cls.claude, "ok", False), (cls.gpt, "ok", True),
                                                (cls.gpt, "blocked", False)):
                usage = Usage.create({
                    "provider_id": provider.id, "model": provider.model, "status": status, "cache_hit": cache_hit,
                    "provider_called": status != "blocked" and not cache_hit, "operation": "lead_qualification",
                    "cost_usd": 0.0 if status == "blocked" or cache_hit else 0.001 * (n + 1),
                    "input_tokens": 100, "output_tokens": 10,
                })
                # Late in the day: a day cut at 23:59:59 would miss the calls of its last second.
                when = datetime.combine(cls.today - timedelta(days=days_ago), time(23, 59, 59, 500000))
                cls.env.cr.execute(SQL("UPDATE ai_token_usage SET create_date = %s WHERE id = %s", when, usage.id))
        Usage.invalidate_model()
        Usage._rebuild_rollups(cls.today - timedelta(days=max(DAYS_AGO) + 1))

    def test_named_period_filters_select_the_dashboard_days(self):
        Dashboard = self.env["ai.cost.dashboard"].with_user(self.manager)
        Daily = self.env["ai.token.usage.daily"].with_user(self.manager)
        Benchmarks = self.env["ai.provider.benchmark.report"].with_user(self.manager)
        self.assertEqual(set(FILTERS), set(NAMED_PERIODS))
        for period, name in FILTERS.items():
            with self.subTest(period=period):
                start, end = named_period_bounds(period, self.today)
                data = Dashboard.get_dashboard_data(period)
                self.assertEqual((data["period"]["start"], data["period"]["end"]), (str(start), str(end)))
                # Cost per Day, filtered on the period: the same days, the same cost.
                rows = Daily.search(filter_domain(self.env, "ai.token.usage.daily", name, self.today))
                self.assertEqual(set(rows.mapped("day")), {
                    self.today - timedelta(days=days_ago) for days_ago in DAYS_AGO
                    if start <= self.today - timedelta(days=days_ago) <= end
                })
                self.assertAlmostEqual(sum(rows.mapped("cost_usd")), data["kpis"]["cost"], places=8)
                self.assertEqual(sum(rows.mapped("call_count")), data["kpis"]["calls"])
                # The Benchmarks pivot's gateway calls of each provider: the dashboard's provider calls.
                benchmark_domain = filter_domain(self.env, "ai.provider.benchmark.report", name, self.today)
                for provider in self.gpt | self.claude:
                    calls = Benchmarks.search_count(
                        benchmark_domain + [("provider_id", "=", provider.id), ("source", "=", "gateway")]
                    )
                    [row] = [row for row in data["providers"] if row["id"] == provider.id]
                    self.assertEqual(row["calls"], calls, provider.name)
                    self.assertTrue(calls)

    def _get(self, query=""):
        """GET the costs API as the manager, with an API key (as API clients do)."""
        key = self.env["res.users.apikeys"].with_user(self.manager)._generate(
            None, "periods test", fields.Datetime.now() + timedelta(days=1))
        return self.url_open(f"/ai_cost/api/v1/costs{query}", headers={"Authorization": f"Bearer {key}"})

    def test_api_period_is_the_dashboard_period(self):
        Dashboard = self.env["ai.cost.dashboard"].with_user(self.manager)
        for period in NAMED_PERIODS:
            with self.subTest(period=period):
                response = self._get(f"?period={period}")
                self.assertEqual(response.status_code, 200, response.text)
                body = response.json()
                data = Dashboard.get_dashboard_data(period)
                self.assertEqual((body["filters"]["start"], body["filters"]["end"]),
                                 (data["period"]["start"], data["period"]["end"]))
                self.assertEqual(body["total_cost_usd"], round(data["kpis"]["cost"], 4))
                self.assertEqual(body["total_requests"], data["kpis"]["calls"])
        # Without a period, the API reads the dashboard's default: the last 30 days.
        body = self._get().json()
        self.assertEqual(body["total_cost_usd"], round(Dashboard.get_dashboard_data("30d")["kpis"]["cost"], 4))
        response = self._get("?period=1y")
        self.assertEqual(response.status_code, 400)
        self.assertIn("Unknown period", response.json()["error"]["message"])
        response = self._get("?period=7d&start=2025-01-01")
        self.assertEqual(response.status_code, 400)
        self.assertIn("not both", response.json()["error"]["message"])


@tagged("post_install", "-at_install")
class TestFiguresOfRealCalls(AiCostCase):
    """Figures of calls made through the gateway (the fake provider on 127.0.0.1), read on two screens."""

    def setUp(self):
        super().setUp()
        self.manager = new_test_user(self.env, login="ai_figures_manager",
                                     groups="base.group_user,ai_cost_optimizer.group_ai_cost_manager")
        self.Dashboard = self.env["ai.cost.dashboard"].with_user(self.manager)

    def test_month_forecast_of_the_dashboard_is_the_company_budget_forecast(self):
        budget = self.env["ai.cost.budget"].create({"name": "Company", "budget_amount": 1000.0})
        today = fields.Date.context_today(budget)
        usage_days = sorted({today.replace(day=1), today - timedelta(days=1), today})
        for day in usage_days:
            self.env["ai.service"].send_message([{"role": "user", "content": f"Summarize the week of {day}."}],
                                                provider=self.gpt)
            self.env.cr.execute(SQL("UPDATE ai_token_usage SET create_date = %s WHERE id = %s",
                                    datetime.combine(day, time(12)), self.usage_rows()[-1].id))
        self.env["ai.token.usage"].invalidate_model()
        self.env["ai.token.usage"]._rebuild_rollups(today.replace(day=1))
        budget.invalidate_recordset()
        data = self.Dashboard.get_dashboard_data("this_month")
        self.assertGreater(budget.forecast_monthly, data["kpis"]["cost_this_month"] if today.day > 1 else 0.0)
        # To the budget fields' 8 decimals.
        self.assertAlmostEqual(data["kpis"]["forecast_month"], budget.forecast_monthly, places=8)
        self.assertAlmostEqual(data["kpis"]["forecast_month"], budget.forecast_amount, places=8)
        [bar] = [row for row in data["budgets"] if row["id"] == budget.id]
        self.assertAlmostEqual(bar["forecast"], budget.forecast_amount, places=8)
        self.assertAlmostEqual(bar["spend"], budget.current_spend, places=8)

    def test_waste_of_the_dashboard_is_the_waste_report(self):
        """A duplicate call that also carries history: two findings whose costs overlap. The Waste Report's total
        and each rule's line on the dashboard count the same findings and dollars as the dashboard's waste."""
        history = [{"role": "user", "content": "Earlier question about lead 7 " * 40},
                   {"role": "assistant", "content": "Earlier answer " * 40},
                   {"role": "user", "content": "Is lead 7 qualified? Answer yes or no."}]
        for _n in range(3):
            self.env["ai.service"].send_message(history, provider=self.gpt, task_type="classify",
                                                operation="lead_scoring")
        data = self.Dashboard.get_dashboard_data("7d")
        start, end = fields.Date.to_date(data["period"]["start"]), fields.Date.to_date(data["period"]["end"])
        Findings = self.env["ai.token.waste.finding"].with_user(self.manager)
        report_domain = [("call_date", ">=", datetime.combine(start, time.min)),
                         ("call_date", "<", datetime.combine(end + timedelta(days=1), time.min))]
        by_rule = {rule: (count, cost) for rule, count, cost in Findings._read_group(
            report_domain, ["rule"], ["__count", "cost_wasted_usd:sum"])}
        self.assertIn("duplicate_query", by_rule)
        self.assertIn("unnecessary_history", by_rule)
        self.assertAlmostEqual(sum(cost for _count, cost in by_rule.values()), data["kpis"]["waste"], places=8)
        self.assertGreater(data["kpis"]["waste"], 0)
        lines = {rec["rule"]: rec for rec in data["recommendations"] if rec["source"] == "waste"}
        for rule, (count, cost) in by_rule.items():
            self.assertEqual(lines[rule]["count"], count, rule)
            self.assertAlmostEqual(lines[rule]["cost"], cost, places=8)
            self.assertIn(f"{count} calls wasted", lines[rule]["text"])
            self.assertIn(f"({format_usd(cost)})", lines[rule]["text"])
            self.assertIn(f"about {format_usd(cost * 30 / 7)} a month", lines[rule]["text"])
            self.assertEqual(Findings.search_count(lines[rule]["domain"]), count, "the line opens its findings")

    def test_budget_period_reads_the_same_in_the_history_and_the_chatter(self):
        budget = self.env["ai.cost.budget"].create({"name": "Weekly cap", "period_type": "weekly",
                                                    "budget_amount": 1000.0})
        self.env["ai.service"].send_message([{"role": "user", "content": "Qualify lead 42."}], provider=self.gpt)
        [period] = self.env["ai.cost.budget.period"].search([("budget_id", "=", budget.id)])
        budget.send_alert(50, period)
        message = budget.message_ids.filtered(lambda m: "reached 50%" in (m.body or ""))[:1]
        self.assertTrue(message)
        # The columns of the form's Period History list, as the list formats them.
        form = etree.fromstring(budget.get_views([(False, "form")])["views"]["form"]["arch"])
        columns = [node.get("name") for node in form.xpath("//field[@name='period_ids']/list/field")]
        date_columns = [name for name in columns if period._fields[name].type == "date"]
        self.assertEqual(len(date_columns), 2, columns)
        shown = [format_date(self.env, period[name]) for name in date_columns]
        self.assertEqual(period[date_columns[1]] - period[date_columns[0]], timedelta(days=6), "inclusive end")
        self.assertIn(f"{shown[0]} – {shown[1]}", message.body)
        self.assertEqual(period.display_name, f"{shown[0]} – {shown[1]}")

    def test_playground_lists_the_budgets_the_gateway_applied(self):
        Budget = self.env["ai.cost.budget"]
        company = Budget.create({"name": "Company", "budget_amount": 1000.0})
        Budget.create({"name": "Sales assistants", "budget_amount": 100.0, "operation_ids": [
            (0, 0, {"name": "sales_assistant"})]})
        Budget.create({"name": "Claude only", "budget_amount": 100.0, "provider_ids": self.claude.ids})
        playground = self.env["ai.cost.playground"].create({"prompt": "Translate 'thank you' to Dutch.",
                                                            "provider_id": self.gpt.id})
        playground.action_estimate()
        estimated = playground.budgets_touched
        playground.action_send()
        # What the gateway applied: the budgets whose period counted the call.
        applied = Budget.search([("period_ids.call_count", ">", 0)])
        self.assertEqual(applied, company)
        for text in (estimated, playground.budgets_touched):
            self.assertEqual([line.split(":")[0] for line in text.splitlines()], applied.mapped("name"))
