"""The reconciliation's ledger side, read from the daily rollup, against the raw usage rows it sums (issue 25:
"it reads the rollups, not the raw rows"): generated calls of every kind (answered, failed after reaching the
provider or before, refused, answered from the response cache, of unknown cost, with prompt-cache reads and
5-minute and 1-hour writes), to several providers, models, users and operations, must give the same calls,
tokens of each kind, dollars, unknown costs and failed attempts per UTC day, model and provider (its API key)."""

import random
from collections import defaultdict
from datetime import datetime, time, timedelta

from odoo import fields
from odoo.tests import TransactionCase, new_test_user, tagged
from odoo.tools import SQL

from ..core.billing import LedgerDay

# A time zone far from UTC: the user's day is not the provider's.
FAR_TZ = "Pacific/Kiritimati"  # UTC+14
OPERATIONS = ("lead_qualification", "email_draft", "ticket_triage")


def raw_ledger_days(account, date_from, date_to):
    """The ledger side as reconcile() read it before the rollup held it: the raw usage rows of the calls that
    reached the account's providers, grouped by UTC day, model, status and unknown cost."""
    groups = account.env["ai.token.usage"].sudo().with_context(tz="UTC")._read_group(
        [
            ("provider_id", "in", account.provider_ids.ids), ("provider_called", "=", True), ("cache_hit", "=", False),
            ("create_date", ">=", datetime.combine(date_from, time.min)),
            ("create_date", "<", datetime.combine(date_to + timedelta(days=1), time.min)),
        ],
        groupby=["create_date:day", "model", "status", "cost_unknown"],
        aggregates=["__count", "input_tokens:sum", "cache_read_tokens:sum", "cache_write_tokens:sum",
                    "cache_write_1h_tokens:sum", "output_tokens:sum", "cost_usd:sum"],
    )
    figures = defaultdict(lambda: [0, 0, 0, 0, 0, 0, 0.0, 0, 0])
    for day, model, status, unknown, count, prompt, read, write, one_hour, output, cost in groups:
        figure = figures[fields.Date.to_date(day), account._model_key(model)]
        for index, value in enumerate((count, prompt - read - write, read, write, one_hour, output, cost,
                                       count if unknown else 0, count if status == "error" else 0)):
            figure[index] += value
    return {key: (*figure[:6], round(figure[6], 8), *figure[7:]) for key, figure in figures.items()}


def as_figures(days: dict[tuple, LedgerDay]):
    """`_ledger_days`' answer in raw_ledger_days' shape."""
    return {
        key: (held.calls, held.tokens.uncached_input, held.tokens.cache_read, held.tokens.cache_write,
              held.tokens.cache_write_1h, held.tokens.output, round(held.cost_usd, 8), held.cost_unknown_calls,
              held.failed_attempts)
        for key, held in days.items()
    }


@tagged("post_install", "-at_install")
class TestLedgerSideFromTheRollup(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Provider = cls.env["ai.service.provider"]

        def provider(name, model, key_id=False):
            return Provider.create({"name": name, "kind": "anthropic", "base_url": "http://127.0.0.1:9",
                                    "model": model, "provider_key_id": key_id})

        # Two providers of one model under its alias and its snapshot: the reconciliation meets them under one
        # name (genai-prices' id). A model genai-prices does not know keeps its own name.
        cls.providers = (
            provider("Haiku (alias)", "claude-3-5-haiku-latest", "apikey_01Alias")
            | provider("Haiku (snapshot)", "claude-3-5-haiku-20241022", "apikey_02Snapshot")
            | provider("Sonnet", "claude-sonnet-4-0", "apikey_03Sonnet")
            | provider("Unpriced", "claude-unpriced-test")
        )
        cls.outside = provider("Not billed here", "claude-sonnet-4-0")
        Account = cls.env["ai.billing.account"]
        cls.account = Account.create({"name": "Every provider", "kind": "anthropic",
                                      "provider_ids": [(6, 0, cls.providers.ids)]})
        # One account per provider: the figures per API key.
        cls.key_accounts = Account.create([{"name": f"Key of {p.name}", "kind": "anthropic",
                                            "provider_ids": [(6, 0, p.ids)]} for p in cls.providers])
        cls.users = cls.env.user | new_test_user(
            cls.env, "ledger_side_manager", tz=FAR_TZ, groups="base.group_user,ai_cost_optimizer.group_ai_cost_manager")

    def generate_calls(self, count, seed):
        """`count` usage rows of every kind, written through create() as the gateway writes them (single rows
        and a batch), some about a record (the per-record rollups then join the upsert)."""
        rng = random.Random(seed)
        rows = []
        for _index in range(count):
            provider = rng.choice(self.providers | self.outside)
            status = rng.choice(["ok"] * 6 + ["error"] * 2 + ["blocked"])
            cache_hit = status == "ok" and rng.random() < 0.15
            # Failed attempts that reached the provider may be billed; those refused before it (an unknown
            # model, a timeout before sending) or blocked by a budget are not.
            called = not cache_hit and (status == "ok" or (status == "error" and rng.random() < 0.7))
            answered = called and (status == "ok" or rng.random() < 0.3)  # a broken stream is an error with usage
            prompt = rng.randint(10, 20_000) if answered or cache_hit else 0
            read = rng.randint(0, prompt // 2) if rng.random() < 0.4 else 0
            write = rng.randint(0, prompt - read) if rng.random() < 0.3 else 0
            unknown = answered and (provider.model == "claude-unpriced-test" or rng.random() < 0.05)
            rows.append({
                "provider_id": provider.id,
                # A provider's model may have been changed since some of its calls.
                "model": provider.model if rng.random() < 0.9 else "claude-3-7-sonnet-latest",
                "user_id": rng.choice(self.users).id,
                "operation": rng.choice(OPERATIONS),
                **({"res_model": "res.partner", "res_id": rng.randint(1, 3)} if rng.random() < 0.3 else {}),
                "status": status, "cache_hit": cache_hit, "provider_called": called,
                "input_tokens": prompt, "output_tokens": rng.randint(1, 2_000) if prompt else 0,
                "cache_read_tokens": read, "cache_write_tokens": write,
                "cache_write_1h_tokens": rng.randint(0, write) if write and rng.random() < 0.5 else 0,
                "cost_unknown": unknown,
                "cost_usd": 0.0 if unknown or cache_hit or not answered else round(rng.uniform(0, 0.2), 8),
                "latency_ms": rng.uniform(100, 3_000),
            })
        Usage = self.env["ai.token.usage"]
        singles, batch = rows[: count // 2], rows[count // 2:]
        usages = Usage.browse()
        for vals in singles:
            usages |= Usage.create(vals)
        return usages | Usage.create(batch)

    def assert_ledger_side_is_the_raw_rows(self, date_from, date_to):
        accounts = self.account | self.key_accounts
        for account in accounts.with_context(tz=FAR_TZ):
            with self.subTest(account=account.name):
                expected = raw_ledger_days(account, date_from, date_to)
                self.assertTrue(expected)
                self.assertEqual(as_figures(account._ledger_days(date_from, date_to)), expected)

    def test_the_rollup_gives_the_raw_rows_figures(self):
        usages = self.generate_calls(400, seed=25)
        today = fields.Date.today()
        # The incremental rollup: each create() fed the upsert its rows' values.
        self.assert_ledger_side_is_the_raw_rows(today, today)
        # Corrections move calls between rollup rows (write() takes their contribution out and puts it back).
        rng = random.Random(7)
        for usage in usages.filtered(lambda u: u.provider_called and not u.cache_hit)[:40]:
            change = rng.choice([
                {"model": "claude-sonnet-4-0"}, {"cost_usd": round(rng.uniform(0, 1), 8), "cost_unknown": False},
                {"status": "error"}, {"cache_read_tokens": usage.input_tokens}, {"provider_called": False},
            ])
            usage.write(change)
        self.assert_ledger_side_is_the_raw_rows(today, today)
        # Every kind of call reached the account: the comparison is not an empty one.
        self.assertEqual(set(usages.mapped("status")), {"ok", "error", "blocked"})
        figures = as_figures(self.account._ledger_days(today, today))
        self.assertTrue(all(sum(figure[index] for figure in figures.values()) for index in range(9)),
                        "calls, each kind of token (1-hour cache writes too), dollars, unknown costs, failed attempts")
        # The alias and the snapshot of Haiku meet under genai-prices' one id of them.
        haiku = {self.account._model_key(model) for model in ("claude-3-5-haiku-latest", "claude-3-5-haiku-20241022")}
        self.assertEqual(len(haiku), 1)
        self.assertIn((today, haiku.pop()), figures)

    def test_days_are_utc_days_whatever_the_users_time_zone(self):
        usages = self.generate_calls(300, seed=11)
        today = fields.Date.today()
        # Spread the calls over four UTC days, on both sides of midnight (the last and the first instants).
        moments = [time(0, 0), time(0, 0, 0, 1), time(9, 30), time(23, 59, 59, 999999)]
        when = {}
        for index, usage in enumerate(usages):
            when[usage.id] = datetime.combine(today - timedelta(days=index % 4), moments[index // 4 % 4])
            self.env.cr.execute(SQL("UPDATE ai_token_usage SET create_date = %s WHERE id = %s",
                                    when[usage.id], usage.id))
        usages.invalidate_recordset(["create_date"])
        self.env["ai.token.usage"]._rebuild_rollups(today - timedelta(days=3))
        self.assert_ledger_side_is_the_raw_rows(today - timedelta(days=3), today)
        # The count of each UTC day, in Python: a call at 23:59:59.999999 UTC is its day's, whatever the user's
        # time zone (in Kiritimati it is already the next day).
        calls = defaultdict(int)
        for usage in usages.filtered(lambda u: u.provider_id in self.providers and u.provider_called
                                     and not u.cache_hit):
            calls[when[usage.id].date()] += 1
        days = self.account.with_user(self.users[1]).with_context(tz=FAR_TZ)._ledger_days(today - timedelta(days=3),
                                                                                            today)
        per_day = defaultdict(int)
        for (day, _model), held in days.items():
            per_day[day] += held.calls
        self.assertEqual(dict(per_day), dict(calls))
        self.assertEqual(len(calls), 4)
        # A period of one day reads that day only.
        one_day = self.account._ledger_days(today - timedelta(days=1), today - timedelta(days=1))
        self.assertEqual({day for day, _model in one_day}, {today - timedelta(days=1)})
