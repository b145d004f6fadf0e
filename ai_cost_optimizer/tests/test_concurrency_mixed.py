"""16 concurrent callers, each on its own committed cursor, on shared budgets of every scope
(company-wide, per user, per operation, per provider), over several rounds."""

import re
import threading
import time
from unittest.mock import patch

from odoo import SUPERUSER_ID, Command, api
from odoo.modules.registry import DummyRLock, Registry
from odoo.tests import TransactionCase, tagged

from ..core.call import GatewayCall
from ..exceptions import AiBudgetExceeded
from .common import AiCostCase, delete_rows_of
from .fake_provider import FakeProviderServer

THREADS = 16
ROUNDS = 4
MAX_TOKENS = 120
JOIN_TIMEOUT = 30
PROMPT = "Qualify lead {}: ACME, 500 seats, budget approved, decision in Q3."


@tagged("post_install", "-at_install")
class TestMixedScopeConcurrency(TransactionCase):
    @patch.object(Registry, "_lock", DummyRLock())
    def test_mixed_scopes_under_concurrency(self):
        started = time.monotonic()
        registry = self.registry
        with FakeProviderServer() as fake, registry.cursor() as setup_cr:
            env = api.Environment(setup_cr, SUPERUSER_ID, {})
            Provider = env["ai.service.provider"]
            providers = Provider.create(AiCostCase._provider_vals(fake, "openai_compatible", name="Mixed A")) | \
                Provider.create(AiCostCase._provider_vals(fake, "openai_compatible", name="Mixed B"))
            cache_setting = env.company.ai_response_cache
            env.company.ai_response_cache = False
            users = env.ref("base.user_root") | env.ref("base.user_admin")
            operation = env["ai.cost.budget.operation"].create({"name": "mixed_x"})
            setup_cr.commit()
            estimate = self._estimate(registry, providers[0])
            fake.set_latency(0.02)
            fake.set_reply("The lead is qualified. " * 20)
            budgets = env["ai.cost.budget"]
            try:
                # Limits in call estimates: every scope blocks some calls over the rounds.
                for name, scope, calls in [
                    ("Company", {}, 30),
                    ("Admin", {"user_ids": [Command.set(users[1].ids)]}, 9),
                    ("Operation x", {"operation_ids": [Command.set(operation.ids)]}, 12),
                    ("Provider A", {"provider_ids": [Command.set(providers[0].ids)]}, 14),
                ]:
                    budgets |= env["ai.cost.budget"].create({"name": f"Mixed {name}", "budget_amount": 1.0, **scope})
                    # A budget counts what its scope already spent this period: add the limit on top.
                    budgets[-1].budget_amount = budgets[-1].current_spend + calls * estimate
                setup_cr.commit()
                attempted = served = refused = 0
                refusing = set()
                for round_ in range(ROUNDS):
                    outcomes = self._race(registry, round_, users, providers, operation.name)
                    attempted += THREADS
                    served += outcomes.count("served")
                    refusals = [outcome for outcome in outcomes if outcome.startswith("refused by ")]
                    refused += len(refusals)
                    refusing.update(refusals)
                    with self.subTest(round=round_):
                        self.assertEqual(len(refusals) + outcomes.count("served"), THREADS, outcomes)
                        self._check_accounts(registry, budgets, providers, estimate, attempted, served, refused)
                self.assertGreater(served, 0)
                self.assertGreaterEqual(len(refusing), 2, f"budgets of several scopes must refuse calls: {refusing}")
            finally:
                setup_cr.rollback()
                env.invalidate_all()
                budgets.unlink()
                operation.unlink()
                for provider in providers:
                    delete_rows_of(env, provider)
                providers.unlink()
                env.company.ai_response_cache = cache_setting
                setup_cr.commit()
        self.assertLess(time.monotonic() - started, 60)

    @staticmethod
    def _estimate(registry, provider):
        """The upper cost estimate of one call (all prompts have the same token count)."""
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            Service = env["ai.service"]
            call = GatewayCall(
                [{"role": "user", "content": PROMPT.format("0-00")}], provider=provider.id, quality_required="medium",
                max_tokens=MAX_TOKENS, use_cache=False,
            )
            Service._validate_request(call)
            Service._resolve_provider(call)
            Service._estimate_tokens(call)
            return env["ai.cost.budget"]._estimate_cost(call.provider, call)

    def _race(self, registry, round_, users, providers, operation):
        """One round: every thread makes one call, all at once; returns the outcomes."""
        barrier = threading.Barrier(THREADS)
        outcomes = []

        def worker(index):
            user = users[index % 2]
            provider = providers[index // 2 % 2]
            barrier.wait()
            with registry.cursor() as cr:
                env = api.Environment(cr, user.id, {})
                try:
                    env["ai.service"].send_message(
                        [{"role": "user", "content": PROMPT.format(f"{round_}-{index:02d}")}],
                        provider=provider.id, max_tokens=MAX_TOKENS, use_cache=False,
                        operation=operation if index // 4 % 2 else "mixed_y",
                    )
                    outcomes.append("served")
                except AiBudgetExceeded as error:
                    name = re.search(r"Budget '(Mixed [^']+)'", str(error))
                    outcomes.append(f"refused by {name.group(1)}" if name else f"unclear: {error}")
                except Exception as error:  # any other outcome fails the test
                    outcomes.append(f"{type(error).__name__}: {error}")

        threads = [threading.Thread(target=worker, args=(index,)) for index in range(THREADS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + JOIN_TIMEOUT
        for thread in threads:
            thread.join(timeout=max(deadline - time.monotonic(), 0))
        self.assertFalse([thread for thread in threads if thread.is_alive()], "deadlock: threads still running")
        self.assertEqual(len(outcomes), THREADS)
        return outcomes

    def _check_accounts(self, registry, budgets, providers, estimate, attempted, served, refused):
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            usage = env["ai.token.usage"].search([("provider_id", "in", providers.ids)])
            self.assertEqual(
                len(usage), attempted, f"one usage row per call: {usage.mapped(lambda u: (u.status, u.error_message))}"
            )
            self.assertEqual(served + refused, attempted)
            self.assertEqual(len(usage.filtered(lambda row: row.status == "ok")), served)
            self.assertEqual(len(usage.filtered(lambda row: row.status == "blocked")), refused)
            budgets = env["ai.cost.budget"].browse(budgets.ids)
            for budget in budgets:
                start = budget.current_period_start
                period = budget.period_ids.filtered(lambda p, start=start: p.date_start == start)
                self.assertLessEqual(period.spend, budget.budget_amount + estimate, f"{budget.name} overspent")
                self.assertAlmostEqual(
                    period.spend, budget._ledger_spend(period.date_start, period.date_end), places=9,
                    msg=f"{budget.name}: the running total is the ledger's",
                )
                self.assertEqual(period.reserved, 0.0, f"{budget.name}: nothing left in flight")
            self.assertFalse(env["ai.cost.budget.reservation"].search([("period_id", "in", budgets.period_ids.ids)]))
