"""Billing accounts against the fake provider's own usage and cost reports: fetching, reconciling, the
alert, bad input and access (DESIGN section 11, issue 25)."""

from datetime import timedelta

import genai_prices

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged
from odoo.tools import SQL

from ..core.pricing import format_usd
from .common import AiCostCase
from .fake_provider import api_key_id

ADMIN_KEY = "sk-test-admin-reconcile-0123456789"
# A call's usage as Anthropic reports it with 1-hour cache writes, which it bills higher than 5-minute ones.
ONE_HOUR_WRITES = {
    "input_tokens": 40, "output_tokens": 500, "cache_read_input_tokens": 8_000, "cache_creation_input_tokens": 3_000,
    "cache_creation": {"ephemeral_5m_input_tokens": 1_000, "ephemeral_1h_input_tokens": 2_000},
}
LOGGER = "odoo.addons.ai_cost_optimizer.models.ai_billing_account"


@tagged("post_install", "-at_install")
class TestBilling(AiCostCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = new_test_user(cls.env, "billing_manager",
                                    groups="base.group_user,ai_cost_optimizer.group_ai_cost_manager")
        Account = cls.env["ai.billing.account"]
        cls.anthropic = Account.create({
            "name": "Anthropic org", "kind": "anthropic", "base_url": cls.fake.anthropic_base_url,
            "admin_key": ADMIN_KEY, "responsible_id": cls.manager.id, "provider_ids": [(6, 0, cls.claude.ids)],
        })
        cls.openai = Account.create({
            "name": "OpenAI org", "kind": "openai", "base_url": cls.fake.openai_base_url,
            "admin_key": ADMIN_KEY, "responsible_id": cls.manager.id, "provider_ids": [(6, 0, cls.gpt.ids)],
        })

    def setUp(self):
        super().setUp()
        self.today = fields.Date.context_today(self.env["ai.billing.account"].with_context(tz="UTC"))
        # The tests' calls are yesterday's (UTC), on the bill and in the ledger: today is never a reported day.
        self.day = self.today - timedelta(days=1)
        self.fake.set_billing_day(self.day)

    def call(self, provider, count=1, day=None):
        """``count`` calls through the gateway, moved to ``day`` (default: the tests' day) in the ledger and
        its rollups, as the fake bills them."""
        before = self.usage_rows()
        for index in range(count):
            self.env["ai.service"].send_message([{"role": "user", "content": f"Qualify lead {index}."}],
                                                provider=provider)
        calls = self.usage_rows() - before
        days_back = (self.today - (day or self.day)).days
        self.env.cr.execute(SQL("UPDATE ai_token_usage SET create_date = create_date - %s * INTERVAL '1 day' "
                                "WHERE id = ANY(%s)", days_back, calls.ids))
        calls.invalidate_recordset(["create_date"])
        self.env["ai.token.usage"]._rebuild_rollups(day or self.day)

    def reconcile_day(self, account):
        self.assertTrue(account.fetch_reports(self.day, self.day), account.last_error)
        return account.reconcile(self.day, self.day)

    # -- each case of the issue -----------------------------------------------------------------

    def test_calls_through_the_gateway_match(self):
        for account, provider in ((self.anthropic, self.claude), (self.openai, self.gpt)):
            with self.subTest(kind=account.kind):
                self.call(provider, 2)
                [row] = self.reconcile_day(account)
                ledger = self.usage_rows().filtered(lambda usage, provider=provider: usage.provider_id == provider)
                self.assertEqual((row.status, row.model, row.ledger_calls), ("matched", provider.model, 2))
                self.assertEqual(row.ledger_tokens, sum(ledger.mapped("total_tokens")))
                self.assertEqual((row.billed_tokens, row.diff_tokens), (row.ledger_tokens, 0))
                self.assertAlmostEqual(row.billed_usd, sum(ledger.mapped("cost_usd")), places=9)
                self.assertGreater(row.billed_usd, 0)
                self.assertEqual(row.explanation, "The bill matches the ledger within tolerance.")
                self.assertFalse(account.last_error)
                self.assertEqual(account.reported_through, self.day)

    def test_one_hour_cache_writes_reconcile_at_their_own_rate(self):
        self.anthropic.write({"tolerance_percent": 0.0, "tolerance_usd": 0.000001})
        self.claude.provider_key_id = api_key_id(self.claude.sudo().api_key)
        self.fake.queue_responses([{"usage": ONE_HOUR_WRITES}] * 2)
        self.call(self.claude, 2)
        self.assertEqual(sum(self.usage_rows().mapped("cache_write_1h_tokens")), 4_000)
        console = {"input_tokens": 10, "output_tokens": 1, "cache_creation_input_tokens": 50_000,
                   "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 50_000}}
        self.fake.add_billed_usage("messages", self.claude.model, "sk-test-console", console)
        [row] = self.reconcile_day(self.anthropic)

        ours = self.anthropic.report_line_ids.filtered(lambda line: line.api_key_id == self.claude.provider_key_id)
        self.assertEqual((ours.cache_write_tokens, ours.cache_write_1h_tokens), (6_000, 4_000))
        self.assertEqual(row.status, "explained", row.explanation)
        self.assertNotIn("genai-prices:", row.explanation, "no kind of token billed at another price")
        # The other key's 1-hour writes are estimated at genai-prices' own price of them, the 1-hour rate.
        estimate = float(genai_prices.calc_price(
            genai_prices.Usage(input_tokens=50_010, output_tokens=1, cache_write_tokens=50_000,
                               cache_write_1h_tokens=50_000),
            self.claude.model, provider_id="anthropic",
        ).total_price)
        self.assertIn(f"({api_key_id('sk-test-console')}; about {format_usd(estimate)} at genai-prices)",
                      row.explanation)
        self.assertAlmostEqual(row.diff_usd, estimate, places=6)

    def test_the_ledger_alias_meets_the_snapshot_the_provider_reports(self):
        self.assertEqual(self.claude.model, "claude-3-5-haiku-latest")
        self.fake.set_model_snapshot(self.claude.model, "claude-3-5-haiku-20241022")
        self.call(self.claude, 2)
        [row] = self.reconcile_day(self.anthropic)
        self.assertEqual(self.anthropic.report_line_ids.mapped("model"), ["claude-3-5-haiku-20241022"] * 2)
        self.assertEqual((row.status, row.ledger_calls, row.diff_tokens), ("matched", 2, 0))

    def test_other_keys_are_told_apart_with_the_provider_key_id(self):
        self.claude.provider_key_id = api_key_id(self.claude.sudo().api_key)
        self.call(self.claude)
        self.fake.add_billed_usage("messages", self.claude.model, "sk-test-console",
                                   {"input_tokens": 40_000, "output_tokens": 1_000})
        [row] = self.reconcile_day(self.anthropic)
        self.assertEqual((row.status, row.other_keys_tokens), ("explained", 41_000))
        self.assertIn(f"41,000 tokens came from other API keys of the organization ({api_key_id('sk-test-console')}; "
                      "about $", row.explanation)
        self.assertEqual(row.diff_tokens, 41_000)

    def test_without_the_provider_key_id_outside_usage_is_a_possibility(self):
        self.call(self.claude)
        self.fake.add_billed_usage("messages", self.claude.model, "sk-test-console",
                                   {"input_tokens": 40_000, "output_tokens": 1_000})
        [row] = self.reconcile_day(self.anthropic)
        self.assertEqual((row.status, row.other_keys_tokens), ("explained", 0))
        self.assertIn("41,000 tokens more than the ledger", row.explanation)
        self.assertIn("possibly usage from outside Odoo", row.explanation)

    def test_a_billed_price_above_genai_prices_is_unexplained_and_notifies_once_a_day(self):
        # A test's calls cost fractions of a cent: only a tolerance of $0 lets their price difference show.
        self.openai.tolerance_usd = 0.0
        self.call(self.gpt, 3)
        genai_output = self.gpt.output_price
        self.fake.set_billed_price(self.gpt.model, "output", genai_output * 3)
        [row] = self.reconcile_day(self.openai)
        self.assertEqual(row.status, "unexplained")
        self.assertIn("more than at genai-prices", row.explanation)
        self.assertIn(f"${genai_output * 3:.4g} per million where genai-prices says ${genai_output:.4g}",
                      row.explanation)
        self.assertGreater(row.diff_usd, 0)
        activities = self.openai.activity_ids
        self.assertEqual((len(activities), activities.user_id), (1, self.manager))
        self.assertEqual(len(self.openai.message_ids.filtered(lambda m: "without explanation" in (m.body or ""))), 1)

        self.reconcile_day(self.openai)
        self.assertEqual(len(self.openai.activity_ids), 1, "once per day")
        self.assertEqual(self.openai.last_alert_date, fields.Date.context_today(self.openai))

    def test_calls_held_as_cost_unknown_are_named(self):
        unknown = self.env["ai.service.provider"].create(
            self._provider_vals(self.fake, "anthropic", name="Unpriced", model="claude-unpriced-test")
        )
        self.assertTrue(unknown.cost_unknown)
        self.anthropic.provider_ids = unknown
        self.fake.set_billed_price(unknown.model, "uncached_input", 1.0)
        self.fake.set_billed_price(unknown.model, "output", 5.0)
        self.call(unknown, 2)
        [row] = self.reconcile_day(self.anthropic)
        self.assertEqual((row.status, row.ledger_cost_unknown_calls, row.ledger_cost_usd), ("explained", 2, 0.0))
        self.assertGreater(row.billed_usd, 0)
        self.assertIn("2 calls are held as cost unknown in the ledger", row.explanation)

    def test_attempts_that_failed_here_but_were_billed_there_are_named(self):
        self.fake.queue_responses([{"truncated": True}])
        self.call(self.gpt)
        [row] = self.reconcile_day(self.openai)
        self.assertEqual((row.status, row.ledger_failed_attempts), ("explained", 1))
        self.assertIn("1 attempts failed here but were billed there", row.explanation)

    def test_a_day_not_reported_is_pending_until_the_next_fetch(self):
        self.call(self.claude)
        self.fake.set_reported_through(self.day - timedelta(days=1))
        [row] = self.reconcile_day(self.anthropic)
        self.assertEqual(row.status, "pending")
        self.assertIn("0 of 1 days reported", self.anthropic.last_fetch_result)
        self.assertFalse(self.anthropic.reported_through)

        self.fake.set_reported_through(None)
        [row] = self.reconcile_day(self.anthropic)
        self.assertEqual(row.status, "matched")
        self.assertEqual(len(self.env["ai.billing.reconciliation"].search([("account_id", "=", self.anthropic.id)])),
                         1, "reconciling a day again replaces its rows")

    def test_fetching_a_day_twice_leaves_one_set_of_lines(self):
        self.call(self.gpt)
        self.reconcile_day(self.openai)
        first = self.openai.report_line_ids
        self.assertEqual(sorted(first.mapped("line_type")), ["cost", "usage"])
        self.call(self.gpt)
        self.reconcile_day(self.openai)
        second = self.openai.report_line_ids
        self.assertEqual(len(second), 2)
        self.assertFalse(first.exists())
        self.assertEqual(second.filtered(lambda line: line.line_type == "usage").requests, 2)

    def test_the_daily_cron_fetches_and_reconciles_the_last_week(self):
        self.call(self.claude)
        self.fake.add_billed_usage("messages", self.claude.model, "sk-test-anthropic",
                                   {"input_tokens": 10, "output_tokens": 2}, day=self.today - timedelta(days=6))
        self.env.ref("ai_cost_optimizer.ir_cron_billing_fetch_reconcile").method_direct_trigger()
        rows = self.env["ai.billing.reconciliation"].search([("account_id", "=", self.anthropic.id)])
        self.assertEqual(sorted(rows.mapped("date")), [self.today - timedelta(days=6), self.day])
        self.assertEqual(self.anthropic.reported_from, self.today - timedelta(days=6))
        # The week up to today was fetched; today, still being billed, is not reported.
        self.assertIn("6 of 7 days reported", self.anthropic.last_fetch_result)
        self.assertEqual(self.anthropic.reported_through, self.day)

    def test_todays_bucket_is_not_a_reported_day(self):
        """The providers' bucket of today (UTC) is still filling: fetched, it is stored, but the day stays
        pending until a fetch after it is over."""
        self.fake.set_billing_day(None)
        self.call(self.claude, day=self.today)
        self.assertTrue(self.anthropic.fetch_reports(self.day, self.today), self.anthropic.last_error)
        self.assertEqual(self.anthropic.report_line_ids.mapped("date"), [self.today] * 2,
                         "the provider returned today's bucket")
        self.assertEqual(self.anthropic.reported_through, self.day)
        self.assertIn("1 of 2 days reported", self.anthropic.last_fetch_result)
        [row] = self.anthropic.reconcile(self.day, self.today)
        self.assertEqual((row.date, row.status, row.ledger_calls), (self.today, "pending", 1))

    # -- bad input ----------------------------------------------------------------------------------

    def assert_fetch_fails(self, account, fragment, faults=(), key=None):
        """A fetch that fails: False, the reason on the account, the earlier lines and the last successful
        fetch intact, and the admin key nowhere."""
        self.call(self.claude)
        self.reconcile_day(account)
        lines, fetched = account.report_line_ids, account.last_fetch_date
        if key:
            account.admin_key = key
        self.fake.queue_responses(list(faults))
        with self.assertLogs(LOGGER, "WARNING") as logs:
            self.assertFalse(account.fetch_reports(self.today - timedelta(days=1), self.today))
        self.assertIn(fragment, account.last_error)
        self.assertTrue(account.last_error_date)
        self.assertEqual((account.report_line_ids, account.last_fetch_date), (lines, fetched), "nothing half-written")
        for text in [account.last_error, *logs.output, *account.message_ids.mapped("body")]:
            self.assertNotIn(account.sudo().admin_key, text or "")
        return account

    def test_a_wrong_admin_key_is_said_without_the_key(self):
        self.assert_fetch_fails(self.anthropic, "The provider refused the admin key (HTTP 401)",
                                key="sk-live-admin-revoked-secret")

    def test_a_429_beyond_the_wait_allowed_is_said(self):
        self.assert_fetch_fails(self.anthropic, "rate limited (HTTP 429) for another 3600 s",
                                [{"status": 429, "retry_after": "3600"}])

    def test_a_429_with_a_short_retry_after_is_waited_for(self):
        self.call(self.claude)
        self.fake.queue_responses([{"status": 429, "retry_after": "0.1"}])
        self.reconcile_day(self.anthropic)
        self.assertEqual(len(self.anthropic.report_line_ids), 2)

    def test_server_errors_are_retried_then_said(self):
        self.assert_fetch_fails(self.openai, "failed (HTTP 500) after 3 attempts", [{"status": 500}] * 3)

    def test_a_malformed_page_after_good_ones_writes_nothing(self):
        # The usage report reads well; the cost report's page is broken.
        self.assert_fetch_fails(self.anthropic, "malformed report page", [{}, {"malformed": True}])

    def test_an_account_without_admin_key_says_so(self):
        self.anthropic.admin_key = False
        with self.assertLogs(LOGGER, "WARNING"):
            self.assertFalse(self.anthropic.fetch_reports(self.today, self.today))
        self.assertEqual(self.anthropic.last_error, "The billing account has no admin key.")
        self.assertFalse(self.anthropic.report_line_ids)

    def test_providers_of_another_company_cannot_be_billed_here(self):
        other = self.env["res.company"].create({"name": "Other billing Co"})
        foreign = self.env["ai.service.provider"].create(
            self._provider_vals(self.fake, "anthropic", name="Foreign", company_id=other.id))
        with self.assertRaises(UserError):
            self.anthropic.provider_ids = foreign

    def test_an_account_made_in_code_gets_its_kinds_report_address(self):
        accounts = self.env["ai.billing.account"].create([
            {"name": "Anthropic (made in code)", "kind": "anthropic"},
            {"name": "OpenAI (made in code)", "kind": "openai"},
        ])
        self.assertEqual(accounts.mapped("base_url"), ["https://api.anthropic.com", "https://api.openai.com/v1"])

    def test_a_bad_period_is_refused(self):
        for period in ((self.today, self.today - timedelta(days=1)), (self.today - timedelta(days=400), self.today),
                       (False, self.today), ("not a date", self.today)):
            with self.subTest(period=period), self.assertRaises(UserError):
                self.anthropic.fetch_reports(*period)
            with self.subTest(period=period), self.assertRaises(UserError):
                self.anthropic.reconcile(*period)

    # -- the dashboard ------------------------------------------------------------------------------

    def test_billed_vs_tracked_sums_the_reconciliation_of_the_period(self):
        self.openai.tolerance_usd = 0.0
        self.call(self.gpt, 2)
        self.call(self.claude)
        self.fake.set_billed_price(self.gpt.model, "output", self.gpt.output_price * 3)
        self.reconcile_day(self.openai)
        self.reconcile_day(self.anthropic)
        before = self.day - timedelta(days=1)
        self.fake.set_reported_through(before)
        self.fake.add_billed_usage("messages", self.claude.model, "sk-test-console",
                                   {"input_tokens": 10, "output_tokens": 1}, day=before)
        self.assertTrue(self.anthropic.fetch_reports(before, self.day))
        self.anthropic.reconcile(before, before)

        figure = self.env["ai.cost.dashboard"].with_user(self.manager).get_dashboard_data("30d")["billed_vs_tracked"]
        rows = self.env["ai.billing.reconciliation"].search([])
        reported = rows.filtered(lambda row: row.status != "pending")
        self.assertEqual(len(rows), 3)
        self.assertAlmostEqual(figure["billed"], sum(reported.mapped("billed_usd")), places=9)
        self.assertAlmostEqual(figure["tracked"], sum(reported.mapped("ledger_cost_usd")), places=9)
        self.assertAlmostEqual(figure["difference"], figure["billed"] - figure["tracked"], places=9)
        self.assertGreater(figure["difference"], 0, "the OpenAI bill is three times genai-prices' output price")
        self.assertEqual((figure["rows"], figure["unexplained"], figure["pending"]), (3, 1, 0))
        self.assertEqual(sorted(rows.mapped("status")), ["explained", "matched", "unexplained"])

    # -- access -------------------------------------------------------------------------------------

    def test_only_managers_see_accounts_and_reconciliation_and_only_admins_the_key(self):
        self.call(self.claude)
        self.reconcile_day(self.anthropic)
        user = new_test_user(self.env, "billing_user", groups="base.group_user,ai_cost_optimizer.group_ai_cost_user")
        for model in ("ai.billing.account", "ai.billing.reconciliation", "ai.billing.report.line"):
            with self.subTest(model=model), self.assertRaises(AccessError):
                self.env[model].with_user(user).search([])
            self.assertTrue(self.env[model].with_user(self.manager).search([]))
        for model in ("ai.billing.reconciliation", "ai.billing.report.line"):
            with self.subTest(model=model), self.assertRaises(AccessError):
                self.env[model].with_user(self.manager).create({"account_id": self.anthropic.id,
                                                                 "date": self.today})
            with self.subTest(model=model), self.assertRaises(AccessError):
                self.env[model].with_user(self.manager).search([]).unlink()
        account = self.anthropic.with_user(self.manager)
        self.assertTrue(account.has_admin_key)
        with self.assertRaises(AccessError):
            account.admin_key  # noqa: B018 - reading the field is the test
        admin = new_test_user(self.env, "billing_admin", groups="base.group_user,base.group_system,"
                              "ai_cost_optimizer.group_ai_cost_manager")
        self.assertEqual(self.anthropic.with_user(admin).admin_key, ADMIN_KEY)
        # A manager fetches and reconciles without reading the key.
        self.assertTrue(account.fetch_reports(self.day, self.day))
        self.assertEqual(account.reconcile(self.day, self.day).status, "matched")
