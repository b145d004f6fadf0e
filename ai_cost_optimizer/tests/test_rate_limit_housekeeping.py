"""The housekeeping of rate limits (DESIGN section 13): the purge of the hits no limit counts or waits for any
more, the tickets of waiting calls whose worker died, which must not hold up the calls behind them, and the
providers' own figures, stored without waiting for a provider row another transaction holds."""

import threading
import time
from datetime import timedelta

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.tests import tagged
from odoo.tools import SQL

from ..exceptions import AiRateLimited
from ..models.ai_cost_rate_limit import MAX_WAIT_SECONDS, TICKET_GRACE
from .common import AiCostCase, CommittedProviderCase

MESSAGES = [{"role": "user", "content": "Qualify lead 42: ACME, 500 seats."}]


@tagged("post_install", "-at_install")
class TestRateLimitHits(AiCostCase):
    def _limit(self, **vals):
        return self.env["ai.cost.rate.limit"].create({"name": "Agent", "requests_per_minute": 100, **vals})

    def _hit(self, limit, seconds_ago, served=True, tokens=10):
        """A hit of `limit` (`served`: a call it served, else a waiting call's ticket) `seconds_ago` seconds old."""
        return self.env["ai.cost.rate.limit.hit"].create({
            "limit_id": limit.id, "at": fields.Datetime.now() - timedelta(seconds=seconds_ago), "tokens": tokens,
            "served": served,
        })

    def _rule(self, limit):
        return next(rule for rule in self.env["ai.cost.rate.limit"]._company_rules(limit.company_id.id)
                    if rule.id == limit.id)

    def _figures(self, limit):
        """What ADMIT_SQL counts of `limit` for one more call, asked without queueing it: (requests, tokens,
        oldest served, the hit that served the call, if any)."""
        [(_limit_id, requests, tokens, oldest, hit, _ticket)] = self.env["ai.cost.rate.limit"]._admit_once(
            [self._rule(limit)], 10, [], enqueue=False,
        )
        return requests, tokens, oldest, hit

    def test_the_purge_keeps_what_a_limit_still_counts_or_waits_for(self):
        full = self._limit(name="Full", requests_per_minute=2, action="refuse")
        queued = self._limit(name="Queued", action="wait", max_wait_seconds=MAX_WAIT_SECONDS)
        horizon = MAX_WAIT_SECONDS + TICKET_GRACE.total_seconds()
        counted = self._hit(full, 10, tokens=30) | self._hit(full, 20, tokens=40)
        # A call waiting for the longest wait a limit allows: its ticket is alive until the horizon.
        waiting = self._hit(queued, MAX_WAIT_SECONDS - 10, served=False)
        stale = self._hit(full, horizon + 30) | self._hit(full, horizon + 60, served=False)
        before = self._figures(full), self._figures(queued)
        requests, tokens, _oldest, hit = before[0]
        self.assertEqual((requests, tokens, hit), (2, 70, None), "full: two calls in the minute")
        self.assertEqual(before[1], (0, 0, None, None), "not served: an earlier call waits")

        self.env["ai.cost.rate.limit"]._cron_purge_hits()

        self.assertEqual((self._figures(full), self._figures(queued)), before, "the limits count the same")
        left = self.env["ai.cost.rate.limit.hit"].search([("limit_id", "in", (full | queued).ids)])
        self.assertEqual(left, counted | waiting, f"only the hits beyond the horizon are gone: {stale.ids}")

    def test_a_dead_ticket_does_not_hold_up_the_calls_behind_it(self):
        provider = self.gpt
        limit = self._limit(action="wait", max_wait_seconds=3, provider_ids=[Command.set(provider.ids)])
        # A call that queued, then its worker died: no one will drop its ticket before the purge.
        life = limit.max_wait_seconds + TICKET_GRACE.total_seconds()
        self._hit(limit, life + 3, served=False)
        started = time.monotonic()
        result = self.env["ai.service"].send_message(MESSAGES, provider=provider, max_tokens=50)
        self.assertLess(time.monotonic() - started, limit.max_wait_seconds - 1, "served at once, not after a wait")
        self.assertEqual((result["provider_id"], len(self.fake.requests)), (provider.id, 1))
        served = self.env["ai.cost.rate.limit.hit"].search([("limit_id", "=", limit.id), ("served", "=", True)])
        self.assertEqual(len(served), 1)

        # The same ticket, alive: the next call waits behind it, here for its whole wait, and is refused.
        self._hit(limit, 0, served=False)
        started = time.monotonic()
        self.assertCallFails(AiRateLimited, provider=provider, max_tokens=50)
        self.assertGreaterEqual(time.monotonic() - started, limit.max_wait_seconds - 0.1)
        self.assertEqual(len(self.fake.requests), 1)


@tagged("post_install", "-at_install")
class TestProviderRateLimitsOfALockedRow(CommittedProviderCase):
    """Outside test mode, as in production: another transaction holds the provider's row (someone saves its
    form) while a call's answer reports the provider's figures."""

    # How long the other transaction holds the row at most: a report that waited for it would take that long.
    HOLD_SECONDS = 5

    def _stored(self):
        with self.registry.cursor() as cr:
            return api.Environment(cr, SUPERUSER_ID, {})["ai.service.provider"].browse(
                self.provider_id
            ).rate_limit_requests_left

    def _hold_row(self, locked, release):
        """Update the provider's row in a transaction of another connection, and keep it open until `release`."""
        with self.registry.cursor() as cr:
            cr.execute(SQL("UPDATE ai_service_provider SET timeout = timeout WHERE id = %s", self.provider_id))
            locked.set()
            release.wait(self.HOLD_SECONDS)
            cr.rollback()

    def test_a_locked_row_is_skipped_then_written_at_the_next_report(self):
        locked, release = threading.Event(), threading.Event()
        holder = threading.Thread(target=self._hold_row, args=(locked, release))
        holder.start()
        self.addCleanup(holder.join)
        self.addCleanup(release.set)
        self.assertTrue(locked.wait(10))
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            self.fake.set_rate_limits(requests=41)
            started = time.monotonic()
            # Odoo's loggers in tests log only critical lines: each logger is asked for its warnings itself.
            with self.assertNoLogs("odoo.addons.ai_cost_optimizer", "WARNING"), \
                    self.assertNoLogs("odoo.sql_db", "WARNING"):
                env["ai.service"].send_message(MESSAGES, provider=self.provider_id, use_cache=False)
            self.assertLess(time.monotonic() - started, self.HOLD_SECONDS / 2, "the call did not wait for the row")
            self.assertEqual(self._stored(), -1, "dropped: the row was held")
            release.set()
            holder.join()
            self.fake.set_rate_limits(requests=40)
            env["ai.service"].send_message(MESSAGES, provider=self.provider_id, use_cache=False)
            self.assertEqual(self._stored(), 40, "the next report is stored once the row is free")
