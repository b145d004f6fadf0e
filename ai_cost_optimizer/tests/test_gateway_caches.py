"""The gateway's caches of what every call reads (the company's settings, the provider's profile, its price,
the budgets' rules): a call after the caller's commit reads none of them from the database again, and a
change, kept or rolled back, is what the next call sees."""

import re
from contextlib import contextmanager
from unittest.mock import patch

from odoo import sql_db
from odoo.tests import tagged

from .common import AiCostCase

MESSAGES = [{"role": "user", "content": "Qualify lead 7: ACME, 40 seats."}]
CACHED_TABLES = ("res_company", "res_partner", "ai_service_provider", "ai_service_provider_price", "ai_cost_budget")
# The ORM's reads name their table quoted; the waste rules' subquery of alternatives does not.
READ = re.compile(r'\bFROM\s+"({})"'.format("|".join(CACHED_TABLES)))


@contextmanager
def statements():
    """The SQL statements every cursor of this process runs meanwhile."""
    sent = []
    execute = sql_db.Cursor.execute

    def recording(cursor, query, params=None, log_exceptions=True):
        sent.append(str(getattr(query, "code", query)))
        return execute(cursor, query, params, log_exceptions)

    with patch.object(sql_db.Cursor, "execute", recording):
        yield sent


@tagged("post_install", "-at_install")
class TestGatewayCaches(AiCostCase):
    def _call(self, **kwargs):
        return self.env["ai.service"].send_message(MESSAGES, provider=self.claude, max_tokens=32, **kwargs)

    def test_a_call_after_a_commit_reads_no_setting_again(self):
        self.env["ai.cost.budget"].create({"name": "Company (test)", "budget_amount": 1000, "period_type": "monthly"})
        self._call()
        # What a commit does to the caller's environment: its record cache is gone.
        self.env.invalidate_all()
        with statements() as sent:
            result = self._call()
        self.assertEqual(result["budget"]["status"], "ok")
        reads = [query for query in sent if READ.search(query)]
        self.assertEqual(reads, [], "the company, provider, price and budgets come from Odoo's caches")

    def test_a_changed_provider_or_setting_is_what_the_next_call_reads(self):
        self._call()
        self.claude.model = "claude-3-5-sonnet-latest"
        self.assertEqual(self._call(mode="passthrough")["model"], "claude-3-5-sonnet-latest")
        self.env.company.ai_default_mode = "smart_router"
        usage = self.env["ai.token.usage"].browse(self._call()["usage_id"])
        self.assertEqual(usage.mode, "smart_router")

    def test_a_rolled_back_change_is_forgotten(self):
        self._call()
        with self.registry.cursor() as cr:
            provider = self.claude.with_env(self.env(cr=cr))
            provider.model = "claude-3-opus-latest"
            self.assertEqual(provider._gateway_profile().model, "claude-3-opus-latest")
            cr.rollback()
        self.assertEqual(self.claude._gateway_profile().model, "claude-3-5-haiku-latest")

    def test_a_company_timezone_sets_its_budget_periods(self):
        budget = self.env["ai.cost.budget"].create({"name": "Tz (test)", "budget_amount": 10, "period_type": "daily"})
        self.env.company.partner_id.tz = "UTC"
        self.assertEqual(budget._tz(), "UTC")
        self.env.company.partner_id.tz = "Pacific/Auckland"
        self.assertEqual(budget._tz(), "Pacific/Auckland")
