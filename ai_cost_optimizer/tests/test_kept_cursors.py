import psycopg2.errors
from psycopg2.extensions import ISOLATION_LEVEL_AUTOCOMMIT, ISOLATION_LEVEL_READ_COMMITTED

from odoo import SUPERUSER_ID, Command, api
from odoo.exceptions import UserError
from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from ..core.tokens import count_message_tokens
from ..kept_cursors import MAX_KEPT, PREPARED, KeptCursors, PreparedStatement
from ..models.ai_cost_budget import HOLD, HOLD_CURSORS
from ..models.ai_service import LEDGER_CURSORS
from .common import AiCostCase, delete_rows_of
from .fake_provider import FakeProviderServer

MESSAGES = [{"role": "user", "content": "Qualify lead 42: ACME, 500 seats, budget approved."}]
OPERATION = "kept_cursor_check"


@tagged("post_install", "-at_install")
class TestKeptCursors(TransactionCase):
    """Budget holds and ledger transactions commit on cursors kept open between calls, the holds with
    their statement prepared once per connection. Outside test mode, as in production: every call
    commits for real."""

    def setUp(self):
        super().setUp()
        self.fake = FakeProviderServer().start()
        self.addCleanup(self.fake.stop)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            provider = env["ai.service.provider"].create(AiCostCase._provider_vals(self.fake, "openai_compatible"))
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
            provider = env["ai.service.provider"].browse(self.provider_id)
            delete_rows_of(env, provider)
            provider.unlink()

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
        cursors = KeptCursors(ISOLATION_LEVEL_AUTOCOMMIT)
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
