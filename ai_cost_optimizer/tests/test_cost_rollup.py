from odoo import Command
from odoo.tests import tagged

from ..models.ai_token_usage import ROLLUP_MODELS
from .common import AiCostCase

MEASURES = ["call_count", "input_tokens", "output_tokens", "cost_usd", "cost_unknown_count", "cache_hit_count",
            "savings_usd", "waste_count", "waste_usd", "latency_ms_sum"]


@tagged("post_install", "-at_install")
class TestCostRollup(AiCostCase):
    def _send(self, provider, operation="lead_qualification", **kwargs):
        return self.env["ai.service"].send_message(
            [{"role": "user", "content": "Qualify lead 42."}], provider=provider, operation=operation, **kwargs
        )

    def _rollup(self, model="ai.token.usage.daily"):
        """{key: measures} of a rollup table, the order-free picture to compare: the first 8 keys and first 10
        measures are every rollup's (MEASURES), the rest the rollup's own (ai.token.usage.daily's model and
        provider_called, its cache tokens; the record rollups' res_id)."""
        Rollup = self.env[model]
        Rollup.invalidate_model()
        keys = [column for column, _expr, _index in Rollup._rollup_keys()]
        measures = MEASURES + [column for column, _aggregate in Rollup._rollup_measures() if column not in MEASURES]
        return {
            tuple(row[key] for key in keys): tuple(round(row[m], 9) for m in measures)
            for row in Rollup.search_read([], keys + measures)
            if row["call_count"]
        }

    def test_rollup_follows_the_ledger(self):
        first = self._send(self.claude, res_model="res.partner", res_id=7)
        second = self._send(self.claude, res_model="res.partner", res_id=7)
        self._send(self.gpt, operation="email_draft")
        rows = self.env["ai.token.usage.daily"].search([("provider_id", "=", self.claude.id)])
        self.assertEqual(len(rows), 1, "two calls with the same key share one rollup row")
        self.assertEqual(rows.call_count, 2)
        self.assertAlmostEqual(rows.cost_usd, first["cost_usd"] + second["cost_usd"], places=10)
        self.assertEqual(rows.operation, "lead_qualification")
        self.assertEqual(rows.res_model, "res.partner")
        usages = self.usage_rows()
        claude_usages = usages.filtered(lambda u: u.provider_id == self.claude)
        self.assertEqual(rows.input_tokens, sum(claude_usages.mapped("input_tokens")))
        self.assertAlmostEqual(rows.savings_usd, sum(usages.mapped("prompt_cache_savings_usd")), places=10)
        record_row = self.env["ai.token.usage.record.daily"].search([])
        self.assertEqual((record_row.res_model, record_row.res_id, record_row.call_count), ("res.partner", 7, 2))

    def test_write_moves_the_contribution(self):
        result = self._send(self.gpt, operation="email_draft")
        usage = self.env["ai.token.usage"].browse(result["usage_id"])
        usage.write({"waste_detected": True, "could_have_saved_usd": 0.25})
        row = self.env["ai.token.usage.daily"].search([("provider_id", "=", self.gpt.id)])
        self.assertEqual((row.call_count, row.waste_count), (1, 1))
        self.assertAlmostEqual(row.waste_usd, 0.25, places=10)
        usage.write({"operation": "ticket_triage"})
        rows = self.env["ai.token.usage.daily"].search([("provider_id", "=", self.gpt.id)])
        self.assertEqual(
            {(r.operation, r.call_count) for r in rows}, {("email_draft", 0), ("ticket_triage", 1)},
            "a changed key moves the call from one rollup row to the other",
        )

    def test_deleted_providers_and_users_keep_their_history(self):
        user = self.env["res.users"].create({
            "name": "Leaving", "login": "leaving@example.com",
            "groups_id": [Command.set([self.env.ref("ai_cost_optimizer.group_ai_cost_user").id])],
        })
        self._send(self.claude)
        self._send(self.gpt)
        self.env["ai.service"].with_user(user).send_message(
            [{"role": "user", "content": "Qualify lead 43."}], provider=self.gpt, operation="lead_qualification"
        )
        before = self._rollup()
        # Both providers' rows fall on the key without a provider: they must add up, not collide.
        (self.claude | self.gpt).unlink()
        user.unlink()
        after = self._rollup()
        self.assertEqual({(key[2], key[3] and key[3][0]) for key in after}, {(False, self.env.uid), (False, False)})
        self.assertEqual(sum(row[0] for row in after.values()), sum(row[0] for row in before.values()), "calls")
        self.assertAlmostEqual(sum(row[3] for row in after.values()), sum(row[3] for row in before.values()), 9)
        for model in ("ai.token.usage.daily", "ai.token.usage.record.daily"):
            incremental = self._rollup(model)
            self.env[model]._rebuild()
            self.assertEqual(self._rollup(model), incremental, model)

    def test_rebuild_matches_incremental_and_raw_totals(self):
        self._send(self.claude, res_model="res.partner", res_id=3)
        self._send(self.gpt, operation="email_draft", res_model="res.partner", res_id=4)
        self.assertCallFails(Exception, provider=self.gpt, max_tokens=10**9)
        # Spread the calls over two days, as the ledger would after midnight.
        usages = self.usage_rows()
        self.env.cr.execute(
            "UPDATE ai_token_usage SET create_date = create_date - interval '1 day' WHERE id = %s", [usages[0].id]
        )
        self.env["ai.token.usage"]._rebuild_rollups()
        rebuilt = self._rollup()
        self.assertEqual(len({key[0] for key in rebuilt}), 2, "rows are keyed by day")
        self.assertIn("error", {key[6] for key in rebuilt})
        self.assertEqual(sum(v[0] for v in rebuilt.values()), len(usages))
        self.assertAlmostEqual(sum(v[3] for v in rebuilt.values()), sum(usages.mapped("cost_usd")), places=9)
        # An incremental history equals its rebuild.
        self.env.cr.execute("UPDATE ai_token_usage SET create_date = create_date + interval '1 day' WHERE id = %s",
                            [usages[0].id])
        self.env["ai.token.usage"]._rebuild_rollups()
        before_daily, before_record = self._rollup(), self._rollup("ai.token.usage.record.daily")
        self.env["ai.token.usage.daily"]._rebuild()
        self.env["ai.token.usage.record.daily"]._rebuild()
        self.assertEqual(self._rollup(), before_daily)
        self.assertEqual(self._rollup("ai.token.usage.record.daily"), before_record)

    def test_incremental_equals_rebuild(self):
        for provider, operation in [(self.claude, "a"), (self.gpt, "b"), (self.claude, "a"), (self.gpt, "a")]:
            self._send(provider, operation=operation, res_model="res.partner", res_id=5)
        incremental = self._rollup(), self._rollup("ai.token.usage.record.daily")
        self.env["ai.token.usage"]._rebuild_rollups()
        self.assertEqual((self._rollup(), self._rollup("ai.token.usage.record.daily")), incremental)

    def test_purged_raw_rows_keep_their_history(self):
        self._send(self.gpt)
        self.usage_rows().unlink()
        self.assertEqual(sum(self.env["ai.token.usage.daily"].search([]).mapped("call_count")), 1)

    def test_covers_rule_python_and_sql_agree(self):
        """`_rollup_covers` (the gateway's choice of upserts) and `_rollup_where_sql` (what the upsert and
        the rebuild sum) derive from `_rollup_required_fields`: both give the same answer on every case, on
        the values of a row to write and on a written row."""
        from itertools import product

        from odoo.tools import SQL

        rollups = [self.env[model] for model in ROLLUP_MODELS]
        for res_model, res_id in product([None, "", "res.partner"], [None, 0, 7]):
            for Rollup in rollups:
                with self.subTest(model=Rollup._name, res_model=res_model, res_id=res_id):
                    self.env.cr.execute(SQL(
                        "SELECT %s FROM (VALUES (%s::varchar, %s::int)) AS u(res_model, res_id)",
                        Rollup._rollup_where_sql(), res_model, res_id,
                    ))
                    [(in_sql,)] = self.env.cr.fetchall()
                    self.assertEqual(Rollup._rollup_covers([{"res_model": res_model, "res_id": res_id}]), in_sql)
                    self.assertEqual(in_sql, Rollup._name == "ai.token.usage.daily" or (res_model, res_id) == (
                        "res.partner", 7))
        cases = list(product([None, "res.partner"], [None, 0, 7]))
        usages = self.env["ai.token.usage"].create([
            {"provider_id": self.gpt.id, "model": "gpt-4o-mini", "operation": "covers_rule", "cost_usd": 0.01,
             "res_model": res_model, "res_id": res_id, "status": "ok"}
            for res_model, res_id in cases
        ])
        self.env.flush_all()
        for Rollup in rollups:
            for usage in usages:
                with self.subTest(model=Rollup._name, usage=(usage.res_model, usage.res_id)):
                    self.env.cr.execute(SQL("SELECT %s FROM ai_token_usage u WHERE u.id = %s",
                                            Rollup._rollup_where_sql(), usage.id))
                    [(in_sql,)] = self.env.cr.fetchall()
                    self.assertEqual(Rollup._rollup_covers(usage), in_sql)
        record_rows = self.env["ai.token.usage.record.daily"].search([("operation", "=", "covers_rule")])
        self.assertEqual(sum(record_rows.mapped("call_count")), 1, "only the row about res.partner 7")

    def test_rollup_source_fields_are_what_the_rollups_read(self):
        """A write of any field a rollup reads moves the row's contribution (_rollup_source_fields, derived from
        the rollups' keys, measures and required fields): here `model`, which only the daily rollup's key reads
        (the reconciliation's day x model), moves the call from one model's row to the other's."""
        read = set().union(*(self.env[model]._rollup_usage_fields() for model in ROLLUP_MODELS))
        self.assertEqual(self.env["ai.token.usage"]._rollup_source_fields(), read)
        self.assertTrue({"model", "provider_called", "cache_read_tokens", "cache_write_tokens",
                         "cache_write_1h_tokens"} <= self.env["ai.token.usage"]._rollup_source_fields())
        usage = self.env["ai.token.usage"].create({
            "provider_id": self.claude.id, "model": "model-before", "operation": "source_fields", "status": "ok",
            "provider_called": True, "input_tokens": 70, "output_tokens": 7, "cost_usd": 0.5,
        })
        usage.write({"model": "model-after"})
        Daily = self.env["ai.token.usage.daily"]
        Daily.invalidate_model()
        rows = Daily.search([("operation", "=", "source_fields")])
        self.assertEqual(
            {row.model: (row.call_count, row.input_tokens, row.cost_usd) for row in rows if row.call_count},
            {"model-after": (1, 70, 0.5)},
        )

    def _usage_table_reads(self):
        """The scans of ai_token_usage this transaction made so far (PostgreSQL's per-transaction statistics)."""
        self.env.cr.execute("SELECT COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0) FROM pg_stat_xact_user_tables "
                            "WHERE relname = 'ai_token_usage'")
        return self.env.cr.fetchone()[0]

    def test_create_feeds_the_rollups_the_new_values_without_reading_the_row_back(self):
        """Issue 27: the upsert that follows a usage row's INSERT takes the row's values as create() wrote them,
        in one statement, without reading the row back; for a call about a record (three rollups) as for the
        others (one)."""
        Usage = self.env["ai.token.usage"]
        for extra in ({}, {"res_model": "res.partner", "res_id": 9}):
            with self.subTest(about_a_record=bool(extra)):
                usage = Usage.create({
                    "provider_id": self.claude.id, "model": self.claude.model, "operation": "no_read_back",
                    "status": "ok", "provider_called": True, "input_tokens": 1_000, "output_tokens": 50,
                    "cache_read_tokens": 600, "cache_write_tokens": 300, "cache_write_1h_tokens": 100,
                    "cost_usd": 0.00123456, **extra,
                })
                Daily = self.env["ai.token.usage.daily"]

                def row(usage=usage, Daily=Daily):
                    Daily.invalidate_model()
                    [found] = Daily.search([("operation", "=", "no_read_back"), ("call_count", ">", 0),
                                            ("res_model", "=", usage.res_model)])
                    return found

                self.assertEqual(
                    (row().day, row().model, row().provider_called, row().call_count, row().input_tokens,
                     row().cache_read_tokens, row().cache_write_tokens, row().cache_write_1h_tokens),
                    (usage.create_date.date(), "claude-3-5-haiku-latest", True, 1, 1_000, 600, 300, 100),
                )
                self.assertAlmostEqual(row().cost_usd, 0.00123456, places=10)
                records = self.env["ai.token.usage.record.daily"].search([("operation", "=", "no_read_back")])
                self.assertEqual(sum(records.mapped("call_count")), 1 if extra else 0)

                # The upsert create() ran, once more: one statement, and no scan of ai_token_usage in it
                # (PostgreSQL's statistics of this transaction).
                self.env.flush_all()
                reads, statements = self._usage_table_reads(), self.env.cr.sql_log_count
                usage._rollup_apply(1, written=True)
                self.assertEqual(self.env.cr.sql_log_count - statements, 1)
                self.assertEqual(self._usage_table_reads(), reads, "the usage row is not read back")
                self.assertEqual((row().call_count, row().cache_write_1h_tokens), (2, 200))
                self.assertAlmostEqual(row().cost_usd, 2 * 0.00123456, places=10)
                # Rows that another module's create() left out of the cache are read, then upserted alike.
                usage.invalidate_recordset()
                usage._rollup_apply(1, written=True)
                self.assertEqual((row().call_count, row().cache_write_1h_tokens, row().model), (3, 300, usage.model))
