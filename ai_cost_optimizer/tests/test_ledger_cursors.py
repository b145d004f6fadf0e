from datetime import datetime, timedelta
from unittest.mock import patch

import psycopg2.errors
from psycopg2.extensions import ISOLATION_LEVEL_AUTOCOMMIT, ISOLATION_LEVEL_READ_COMMITTED

from odoo import SUPERUSER_ID, Command, api
from odoo.exceptions import UserError
from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL, mute_logger

from ..core.call import GatewayCall
from ..core.tokens import count_message_tokens
from ..ledger import cursors as kept_cursors
from ..ledger.cursors import LEDGER_CURSORS, MAX_KEPT, PREPARED, STATEMENT_CURSORS, KeptCursors, execute_prepared
from ..models.ai_token_usage import ROLLUP_MODELS
from .common import CommittedProviderCase

MESSAGES = [{"role": "user", "content": "Qualify lead 42: ACME, 500 seats, budget approved."}]
OPERATION = "kept_cursor_check"


@tagged("post_install", "-at_install")
class TestKeptCursors(CommittedProviderCase):
    """Budget holds and ledger transactions commit on cursors kept open between calls, with their
    statements prepared once per connection. Outside test mode, as in production: every call commits for
    real."""

    RECORD = ("res.country", 7)  # what the calls of the ledger test are about

    def _budget_vals(self):
        return {"operation_ids": [Command.create({"name": OPERATION})]}

    def _delete_committed(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            for model in ROLLUP_MODELS:  # the per-record ones keep no provider
                if "res_id" in env[model]._fields:
                    cr.execute(SQL("DELETE FROM %s WHERE res_model = %s AND res_id = %s",
                                   SQL.identifier(env[model]._table), *self.RECORD))
        super()._delete_committed()

    def _check(self):
        """One budget check as the gateway runs it, in a transaction of the caller's own; returns the
        kept cursor it used and the reservations committed meanwhile, read from a third transaction."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            provider = env["ai.service.provider"].browse(self.provider_id)
            estimate = count_message_tokens(MESSAGES, provider.model)
            call = GatewayCall(
                MESSAGES, provider=provider, estimate=estimate, max_tokens=200, operation=OPERATION,
                quality_required="medium", context_size_tokens=estimate.tokens,
            )
            self.assertEqual(env["ai.service"]._check_budget(call)["status"], "ok")
            kept = STATEMENT_CURSORS._idle[self.registry.db_name][-1]  # the last one given back
            with self.registry.cursor() as other:
                other.execute("SELECT count(*) FROM ai_cost_budget_reservation WHERE id = ANY(%s)",
                              [call.budget_reservations])
                [(committed,)] = other.fetchall()
            env["ai.service"]._release_budget(call)
        return kept, committed

    def test_checks_share_one_connection_and_its_plan(self):
        first, committed = self._check()
        self.assertEqual(committed, 1, "the hold is committed before the call goes out")
        second, _committed = self._check()
        self.assertIs(second, first)
        self.assertEqual(second.connection.get_backend_pid(), first.connection.get_backend_pid())
        second.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE name = ANY(%s) AND statement LIKE %s",
            [list(getattr(second, PREPARED).values()), "%INSERT INTO ai_cost_budget_reservation%"],
        )
        self.assertEqual(second.fetchone()[0], 1, "the hold statement, prepared once")

    def test_a_closed_connection_is_forgotten(self):
        first, _committed = self._check()
        first._cnx.close()  # as Odoo's pool closes its connections when a registry is dropped
        second, committed = self._check()
        self.assertIsNot(second, first)
        self.assertEqual(committed, 1)
        self.assertNotIn(first, STATEMENT_CURSORS._idle[self.registry.db_name])

    def test_a_cursor_whose_statement_fails_goes_back_to_the_pool(self):
        cursors = KeptCursors(ISOLATION_LEVEL_AUTOCOMMIT)
        def ratio(cr, a, b):
            execute_prepared(cr, SQL("SELECT %s::int / %s::int", a, b))
            return cr.fetchall()

        with cursors.cursor(self.registry) as cr:
            self.assertEqual(ratio(cr, 6, 3), [(2,)])
            failing = cr
        with self.assertRaises(psycopg2.errors.DivisionByZero), mute_logger("odoo.sql_db"), \
                cursors.cursor(self.registry) as cr:
            ratio(cr, 1, 0)
        self.assertTrue(failing.closed)
        with cursors.cursor(self.registry) as cr:
            self.assertIsNot(cr, failing)
            self.assertEqual(ratio(cr, 9, 3), [(3,)], "prepared again on the new connection")
            self.assertEqual(len(getattr(cr, PREPARED)), 1)
        for cr in cursors._idle.pop(self.registry.db_name):
            cr.close()

    def test_ledger_transactions_share_one_cursor(self):
        kept = []
        for number in range(2):
            with self.registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                result = env["ai.service"].send_message(
                    [{"role": "user", "content": f"Summarize ticket {number}."}], provider=self.provider_id,
                    use_cache=False, operation=OPERATION,
                )
                kept.append(LEDGER_CURSORS._idle[self.registry.db_name][-1])
                with self.registry.cursor() as other:  # committed before the caller's transaction ends
                    other.execute("SELECT count(*) FROM ai_token_usage WHERE id = %s", [result["usage_id"]])
                    self.assertEqual(other.fetchone()[0], 1)
        self.assertIs(kept[1], kept[0])
        self.assertEqual(kept[0].connection.isolation_level, ISOLATION_LEVEL_READ_COMMITTED)

    def test_served_calls_write_their_rows_through_prepared_statements(self):
        """The look-back and the ledger statement run prepared, and write what they wrote unprepared: the
        usage row, its rollups and its waste findings."""
        usage_ids = []
        for _call in range(3):  # the same prompt again: a duplicate, found by the look-back
            with self.registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                result = env["ai.service"].send_message(
                    [{"role": "user", "content": "Summarize the country's import rules."}],
                    provider=self.provider_id, use_cache=False, operation=OPERATION, res_model=self.RECORD[0],
                    res_id=self.RECORD[1],
                )
                usage_ids.append(result["usage_id"])
        kept = LEDGER_CURSORS._idle[self.registry.db_name][-1]
        statements = set(getattr(kept, PREPARED).values())
        kept.execute("SELECT name, statement FROM pg_prepared_statements WHERE name = ANY(%s)", [list(statements)])
        prepared = dict(kept.fetchall())
        self.assertTrue(any(" AS WITH " in text for text in prepared.values()), "the ledger statement")
        self.assertTrue(any("ai_token_usage d" in text for text in prepared.values()), "the look-back")
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            usages = env["ai.token.usage"].browse(usage_ids)
            self.assertEqual(usages.mapped("status"), ["ok"] * 3)
            self.assertEqual(usages.mapped("res_id"), [self.RECORD[1]] * 3)
            self.assertEqual(usages.mapped("waste_detected"), [False, True, True])
            self.assertEqual(set(usages[1:].waste_finding_ids.mapped("rule")), {"duplicate_query"})
            for model in ("ai.token.usage.record.daily", "ai.token.usage.record.monthly"):
                rows = env[model].search([("res_model", "=", self.RECORD[0]), ("res_id", "=", self.RECORD[1])])
                self.assertEqual(sum(rows.mapped("call_count")), 3, model)
                self.assertAlmostEqual(sum(rows.mapped("cost_usd")), sum(usages.mapped("cost_usd")), places=8)

    def test_a_transaction_commits_at_the_end_of_its_block_or_rolls_back(self):
        cursors = KeptCursors(ISOLATION_LEVEL_READ_COMMITTED)
        key = "ai_cost_optimizer.kept_cursor_test"
        insert = "INSERT INTO ir_config_parameter (key, value) VALUES (%s, %s)"
        with self.assertRaises(UserError), cursors.cursor(self.registry) as cr:
            cr.execute(insert, [key, "rolled back"])
            failing = cr
            raise UserError("The block fails after its insert.")
        self.assertTrue(failing.closed)
        with cursors.cursor(self.registry) as cr:
            cr.execute(insert, [key, "committed"])
        try:
            with self.registry.cursor() as other:
                other.execute("SELECT value FROM ir_config_parameter WHERE key = %s", [key])
                self.assertEqual(other.fetchall(), [("committed",)])
        finally:
            with cursors.cursor(self.registry) as cr:
                cr.execute("DELETE FROM ir_config_parameter WHERE key = %s", [key])
            for cr in cursors._idle.pop(self.registry.db_name):
                cr.close()

    def test_cursors_beyond_the_kept_ones_go_back_to_the_pool(self):
        cursors = KeptCursors(ISOLATION_LEVEL_AUTOCOMMIT)
        blocks = [cursors.cursor(self.registry) for _block in range(MAX_KEPT + 2)]
        used = [block.__enter__() for block in blocks]  # all at once, as concurrent calls would
        for block in blocks:
            block.__exit__(None, None, None)
        kept = cursors._idle.pop(self.registry.db_name)
        self.assertEqual(len(kept), MAX_KEPT)
        self.assertEqual([cr.closed for cr in used], [False] * MAX_KEPT + [True] * 2)
        for cr in kept:
            cr.close()


@tagged("post_install", "-at_install")
class TestPreparedStatements(TransactionCase):
    """The call path's long statements run prepared on the kept cursors, one plan per text and connection;
    a statement that cannot be prepared runs as it is. Outside test mode, as in production."""

    def setUp(self):
        super().setUp()
        self.cursors = KeptCursors(ISOLATION_LEVEL_READ_COMMITTED)
        self.addCleanup(self._close_kept)

    def _close_kept(self):
        for cr in self.cursors._idle.pop(self.registry.db_name, []):
            cr.close()

    def _prepared(self, cr):
        cr.execute("SELECT name FROM pg_prepared_statements ORDER BY name")
        return [name for name, in cr.fetchall()]

    def test_a_text_is_prepared_once_and_run_with_each_call_parameters(self):
        # A timestamp less an interval, both declared: undeclared, the interval would be taken for a timestamp.
        # A literal % in the text stays one.
        statement = "SELECT %s - %s, %s::text || '%%', %s = ANY(ARRAY[1, 2])"
        with self.cursors.cursor(self.registry) as cr:
            execute_prepared(cr, SQL(statement, datetime(2026, 1, 2), timedelta(days=1), "a", 2))
            self.assertEqual(cr.fetchall(), [(datetime(2026, 1, 1), "a%", True)])
            execute_prepared(cr, SQL(statement, datetime(2026, 3, 1), timedelta(hours=1), "b", 3))
            self.assertEqual(cr.fetchall(), [(datetime(2026, 2, 28, 23), "b%", False)])
            self.assertEqual(self._prepared(cr), ["ai_cost_statement_0"])
            self.assertEqual(list(getattr(cr, PREPARED).values()), ["ai_cost_statement_0"])

    def test_a_statement_that_cannot_be_prepared_runs_as_it_is(self):
        # PostgreSQL cannot tell the types of two untyped parameters added: PREPARE fails, in a savepoint.
        with self.cursors.cursor(self.registry) as cr:
            cr.execute("CREATE TEMPORARY TABLE prepared_check (n int)")
            with self.assertLogs("odoo.addons.ai_cost_optimizer.ledger.cursors", "WARNING") as logs, \
                    mute_logger("odoo.sql_db"):
                execute_prepared(cr, SQL("SELECT %s + %s", 1, 2))
                self.assertEqual(cr.fetchall(), [(3,)])
                cr.execute("INSERT INTO prepared_check VALUES (1) RETURNING n")  # the transaction goes on
                self.assertEqual(cr.fetchall(), [(1,)])
                execute_prepared(cr, SQL("SELECT %s + %s", 3, 4))
                self.assertEqual(cr.fetchall(), [(7,)])
            self.assertEqual(len(logs.output), 1, "not tried again")
            self.assertIn("runs unprepared", logs.output[0])
            self.assertEqual(self._prepared(cr), [])

    def test_texts_beyond_the_limit_run_unprepared(self):
        with patch.object(kept_cursors, "MAX_PREPARED", 1), self.cursors.cursor(self.registry) as cr:
            for number in (1, 2, 3):
                execute_prepared(cr, SQL(f"SELECT %s::int + {number}", 10))
                self.assertEqual(cr.fetchall(), [(10 + number,)])
            self.assertEqual(self._prepared(cr), ["ai_cost_statement_0"])

    def test_a_plain_cursor_runs_the_statement_unprepared(self):
        with self.registry.cursor() as cr:
            execute_prepared(cr, SQL("SELECT %s::int * 2", 21))
            self.assertEqual(cr.fetchall(), [(42,)])
            self.assertEqual(self._prepared(cr), [])
