import psycopg2.errors

from odoo import SUPERUSER_ID, Command, api
from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from ..core.tokens import count_message_tokens
from ..kept_cursors import PREPARED, KeptCursors, PreparedStatement
from ..models.ai_cost_budget import HOLD, HOLD_CURSORS

MESSAGES = [{"role": "user", "content": "Qualify lead 42: ACME, 500 seats, budget approved."}]
OPERATION = "kept_cursor_check"


@tagged("post_install", "-at_install")
class TestKeptCursors(TransactionCase):
    """Budget holds commit on cursors kept open between checks, with their statement prepared once per
    connection. Outside test mode, as in production: every check commits for real."""

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            provider = env["ai.service.provider"].create({
                "name": "Kept cursor provider", "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1",
                "model": "gpt-4o-mini",
            })
            budget = env["ai.cost.budget"].create({
                "name": "Kept cursor budget", "budget_amount": 1000, "provider_ids": [Command.set(provider.ids)],
                "operation_ids": [Command.create({"name": OPERATION})],
            })
            self.provider_id, self.budget_id = provider.id, budget.id
        self.addCleanup(self._delete_setup)

    def _delete_setup(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            budget = env["ai.cost.budget"].browse(self.budget_id)
            operations = budget.operation_ids
            budget.unlink()
            operations.unlink()
            env["ai.service.provider"].browse(self.provider_id).unlink()

    def _check(self):
        """One budget check as the gateway runs it, in a transaction of the caller's own; returns the
        kept cursor it used and the reservations committed meanwhile, read from a third transaction."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            provider = env["ai.service.provider"].browse(self.provider_id)
            estimate = count_message_tokens(MESSAGES, provider.model)
            call = {
                "provider": provider, "messages": MESSAGES, "estimate": estimate, "max_tokens": 200,
                "operation": OPERATION, "task_type": "chat", "quality_required": "medium",
                "context_size_tokens": estimate.tokens, "max_budget_usd": None,
            }
            self.assertEqual(env["ai.service"]._check_budget(call)["status"], "ok")
            kept = HOLD_CURSORS._idle[self.registry.db_name][-1]  # the last one given back
            with self.registry.cursor() as other:
                other.execute("SELECT count(*) FROM ai_cost_budget_reservation WHERE id = ANY(%s)",
                              [call["budget_reservations"]])
                [(committed,)] = other.fetchall()
            env["ai.service"]._release_budget(call)
        return kept, committed

    def test_checks_share_one_connection_and_its_plan(self):
        first, committed = self._check()
        self.assertEqual(committed, 1, "the hold is committed before the call goes out")
        second, _committed = self._check()
        self.assertIs(second, first)
        self.assertEqual(second.connection.get_backend_pid(), first.connection.get_backend_pid())
        self.assertIn(HOLD.name, getattr(second, PREPARED))
        second.execute("SELECT count(*) FROM pg_prepared_statements WHERE name = %s", [HOLD.name])
        self.assertEqual(second.fetchone()[0], 1)

    def test_a_closed_connection_is_forgotten(self):
        first, _committed = self._check()
        first._cnx.close()  # as Odoo's pool closes its connections when a registry is dropped
        second, committed = self._check()
        self.assertIsNot(second, first)
        self.assertEqual(committed, 1)
        self.assertNotIn(first, HOLD_CURSORS._idle[self.registry.db_name])

    def test_a_cursor_whose_statement_fails_goes_back_to_the_pool(self):
        cursors = KeptCursors("SET synchronous_commit TO off")
        ratio = PreparedStatement("ai_cost_test_ratio", "SELECT %(a)s / %(b)s", {"a": "int", "b": "int"})
        with cursors.cursor(self.registry) as cr:
            self.assertEqual(ratio.execute(cr, {"a": 6, "b": 3}), [(2,)])
            failing = cr
        with self.assertRaises(psycopg2.errors.DivisionByZero), mute_logger("odoo.sql_db"), \
                cursors.cursor(self.registry) as cr:
            ratio.execute(cr, {"a": 1, "b": 0})
        self.assertTrue(failing.closed)
        with cursors.cursor(self.registry) as cr:
            self.assertIsNot(cr, failing)
            self.assertEqual(ratio.execute(cr, {"a": 9, "b": 3}), [(3,)], "prepared again on the new connection")
        for cr in cursors._idle.pop(self.registry.db_name):
            cr.close()
