import re
from unittest.mock import patch

from odoo.fields import Command
from odoo.sql_db import Cursor
from odoo.tests import tagged

from ..models.ai_token_usage import ROLLUP_MODELS
from .common import AiCostCase

WRITE_STATEMENT = re.compile(r"\s*(WITH|INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


@tagged("post_install", "-at_install")
class TestLedgerStatement(AiCostCase):
    """A served call writes its usage row through create(), then its rollups and every row that follows it with
    one more statement (ledger/statement.py): the gateway's overhead is mostly the statements it sends."""

    def setUp(self):
        super().setUp()
        # The ledger's writes only: the provider's rate-limit headers, whose first report this process stores
        # (then at most every 30 seconds, test_provider_rate_limits), are not sent.
        self.fake.set_rate_limits(None)

    def _send_recording_writes(self, **kwargs):
        writes = []
        execute = Cursor.execute

        def recording(cr, query, params=None, log_exceptions=True):
            code = query.code if hasattr(query, "code") else str(query)
            if WRITE_STATEMENT.match(code):
                writes.append(code)
            return execute(cr, query, params, log_exceptions)

        messages = [{"role": "user", "content": "Summarize the last three e-mails of partner 7."}]
        with patch.object(Cursor, "execute", recording):
            result = self.env["ai.service"].send_message(
                messages, provider=self.claude, operation="partner_summary", res_model="res.partner", res_id=7,
                **kwargs,
            )
        return result, writes

    def _rollup_totals(self):
        """(cost, calls) of each rollup; other tests' committed calls may be in them (test_ledger_rollback)."""
        return {
            rollup: self.env[rollup]._read_group([], [], ["cost_usd:sum", "call_count:sum"])[0]
            for rollup in ROLLUP_MODELS
        }

    def assertLedgerWrites(self, writes):
        """The usage row inserted by create(), then one statement for its rollups, which lead it, and the rows
        that follow it. Anything else updates the usage row: another module's stored compute (the test
        client's)."""
        statements = [write.lstrip() for write in writes]
        self.assertTrue(statements[0].startswith('INSERT INTO "ai_token_usage"'), statements[0][:80])
        self.assertEqual(sum(statement.startswith("WITH") for statement in statements), 1, statements)
        followers = next(statement for statement in statements if statement.startswith("WITH"))
        self.assertTrue(followers.startswith('WITH "new_usage" AS ('), followers[:80])
        self.assertRegex(followers, r'\) SELECT \(SELECT count\(\*\) FROM "rollup_0"\), ')
        others = [statement for statement in statements[1:] if not statement.startswith("WITH")]
        self.assertTrue(all(statement.startswith('UPDATE "ai_token_usage"') for statement in others), others)

    def test_served_call_writes_its_row_through_create_and_what_follows_with_one_statement(self):
        self.env.company.ai_response_cache = True
        self.env.flush_all()  # read by the gateway's ledger transaction
        before = self._rollup_totals()
        result, writes = self._send_recording_writes()
        self.assertLedgerWrites(writes)

        usage = self.env["ai.token.usage"].browse(result["usage_id"])
        self.assertEqual((usage.status, usage.create_uid, usage.user_id), ("ok", self.env.user, self.env.user))
        self.assertTrue(usage.create_date)
        self.assertEqual(usage.total_tokens, usage.input_tokens + usage.output_tokens)
        self.assertGreater(usage.cost_usd, 0)

        # The usage row is the call's benchmark sample: no second row is written for it.
        sample = self.env["ai.provider.benchmark.report"].search([("usage_id", "=", usage.id)])
        self.assertEqual(
            (sample.id, sample.provider_id, sample.input_tokens, sample.cost_usd, sample.calls),
            (usage.id, self.claude, usage.input_tokens, usage.cost_usd, 1),
        )
        self.assertFalse(any('"ai_provider_benchmark"' in write for write in writes))
        recommendation = self.env["ai.cost.recommendation"].browse(result["recommendation"]["recommendation_id"])
        self.assertEqual(recommendation.recommended_provider_id.id, result["recommendation"]["provider_id"])
        self.assertEqual(recommendation.user_id, self.env.user)
        entry = self.env["ai.response.cache"].search([("usage_id", "=", usage.id)])
        self.assertEqual(entry.content, result["content"])
        self.env.invalidate_all()
        for rollup, (cost, calls) in self._rollup_totals().items():
            cost_before, calls_before = before[rollup]
            self.assertEqual(
                (round((cost or 0) - (cost_before or 0), 8), calls - calls_before), (round(usage.cost_usd, 8), 1),
                rollup,
            )

    def test_budget_settle_follows_the_rollups_in_the_statement_of_the_rows_that_follow(self):
        """Issue 27: a call under a budget settles it in the statement of the rows that follow its usage row, not
        in one of its own, right after the rollups: every call locks its rollup rows, then its budget's period, then
        a response-cache entry that another call may share (ledger.statement's lock order)."""
        self.env.company.ai_response_cache = True
        budget = self.env["ai.cost.budget"].create({
            "name": "Claude", "budget_amount": 100.0, "provider_ids": [Command.set(self.claude.ids)],
        })
        self.env.flush_all()
        result, writes = self._send_recording_writes()
        # Before the call, its reservation (ai.cost.budget.period's HOLD_SQL); then the ledger's writes.
        writes = writes[next(i for i, write in enumerate(writes) if 'INSERT INTO "ai_token_usage"' in write):]
        self.assertLedgerWrites(writes)
        followers = [write.lstrip() for write in writes if write.lstrip().startswith("WITH")][-1]
        self.assertIn(', "settle_locked" AS MATERIALIZED (', followers)
        self.assertIn('"response_cache" AS (', followers)
        # PostgreSQL runs the parts whose results the statement selects in the order they are selected: the
        # rollups', then the settle's.
        self.assertRegex(
            followers,
            r'\) SELECT (\(SELECT count\(\*\) FROM "rollup_\d"\), )+'
            r'\(SELECT json_agg\([^)]*\)\) FROM "budget_settle"\), ',
        )
        self.env.invalidate_all()
        period = budget.period_ids.filtered(lambda p: p.date_start == budget.current_period_start)
        self.assertEqual((period.call_count, period.reserved), (1, 0.0))
        self.assertAlmostEqual(period.spend, result["cost_usd"], places=8)

    def test_waste_findings_come_with_the_usage_row(self):
        self._send_recording_writes()
        result, writes = self._send_recording_writes()  # the same prompt again: a duplicate query
        self.assertLedgerWrites(writes)
        usage = self.env["ai.token.usage"].browse(result["usage_id"])
        self.assertTrue(usage.waste_detected)
        self.assertIn("duplicate_query", usage.waste_finding_ids.mapped("rule"))
        finding = usage.waste_finding_ids[:1]
        self.assertEqual((finding.operation, finding.call_date), ("partner_summary", usage.create_date))
