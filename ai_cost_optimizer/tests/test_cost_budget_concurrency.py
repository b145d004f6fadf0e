import threading
from unittest.mock import patch

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.modules.registry import DummyRLock, Registry
from odoo.tests import TransactionCase, tagged

from ..core import pricing
from ..core.tokens import count_message_tokens
from ..core.usage import Usage
from ..exceptions import AiBudgetExceeded
from .common import AiCostCase, delete_rows_of
from .fake_provider import FakeProviderServer

MESSAGES = [{"role": "user", "content": "Qualify lead 42: ACME, 500 seats, budget approved."}]
THREADS = 10
CALLS_PER_THREAD = 2
ROUNDS = 4
MAX_TOKENS = 200


@tagged("post_install", "-at_install")
class TestBudgetConcurrency(TransactionCase):
    """Real, separately committed transactions from many threads on one budget that fits only a
    few calls: spend plus reservations never pass the block line by more than one call's estimate."""

    def test_concurrent_calls_never_overspend(self):
        registry = self.registry
        with FakeProviderServer() as fake, registry.cursor() as setup_cr:
            env = api.Environment(setup_cr, SUPERUSER_ID, {})
            provider = env["ai.service.provider"].create(AiCostCase._provider_vals(fake, "openai_compatible"))
            # In force now, as the gateway reads it: a version starts at a whole second (Datetime.now()),
            # which may come after the transaction timestamp that create_date holds.
            price = provider._price_at(fields.Datetime.now())._as_core_price()
            estimate = pricing.compute_cost(
                Usage(input_tokens=count_message_tokens(self._messages(2**63, 9), provider.model).tokens,
                      output_tokens=MAX_TOKENS),
                price,
            )
            setup_cr.commit()
            # The provider answers slowly enough for the calls of all threads to overlap.
            fake.set_latency(0.02)
            # A long answer makes the actual cost close to the estimate: spend gets near the block line.
            fake.set_reply("The lead is qualified. " * 40)
            budgets = env["ai.cost.budget"]
            try:
                for round_ in range(ROUNDS):
                    budget = env["ai.cost.budget"].create({
                        "name": f"Race {round_}", "budget_amount": estimate * 3.5,
                        "provider_ids": [Command.set(provider.ids)], "alert_thresholds": "50",
                        # One operation per round: a new budget counts what its scope already spent.
                        "operation_ids": [Command.create({"name": f"race_{round_}"})],
                    })
                    budgets |= budget
                    setup_cr.commit()
                    with self.subTest(round=round_):
                        self._race(registry, provider.id, budget.id, estimate, f"race_{round_}")
            finally:
                setup_cr.rollback()
                operations = budgets.operation_ids
                budgets.unlink()
                operations.unlink()
                delete_rows_of(env, provider)
                provider.unlink()
                setup_cr.commit()

    @staticmethod
    def _messages(thread, call):
        return [{"role": "user", "content": f"{MESSAGES[0]['content']} ({thread}, {call})"}]

    # Post-install tests run while the loading thread holds Registry._lock, which every new cursor's
    # environment takes: the workers would wait for the end of the install. HttpCase swaps in the
    # same dummy lock when it enters test mode.
    @patch.object(Registry, "_lock", DummyRLock())
    def _race(self, registry, provider_id, budget_id, estimate, operation):
        barrier = threading.Barrier(THREADS)
        outcomes = []

        def worker():
            barrier.wait()
            for call in range(CALLS_PER_THREAD):
                # Distinct prompts, no response cache: every call must go through the budget.
                messages = self._messages(threading.get_ident(), call)
                with registry.cursor() as cr:
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    try:
                        env["ai.service"].send_message(
                            messages, provider=provider_id, max_tokens=MAX_TOKENS, use_cache=False, operation=operation
                        )
                        outcomes.append("served")
                    except AiBudgetExceeded as error:
                        outcomes.append("refused" if "Race" in str(error) else f"unclear: {error}")
                    except Exception as error:  # any other outcome fails the test below
                        outcomes.append(f"{type(error).__name__}: {error}")

        threads = [threading.Thread(target=worker) for _thread in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            budget = env["ai.cost.budget"].browse(budget_id)
            [period] = budget.period_ids
            usage = env["ai.token.usage"].search([("provider_id", "=", provider_id), ("create_date", ">=",
                                                                                      period.create_date)])
            served = usage.filtered(lambda u: u.status == "ok")
            self.assertEqual(len(outcomes), THREADS * CALLS_PER_THREAD)
            self.assertEqual(sorted(set(outcomes)), ["refused", "served"], outcomes)
            self.assertEqual(len(served), outcomes.count("served"))
            self.assertEqual(len(usage.filtered(lambda u: u.status == "blocked")), outcomes.count("refused"))
            self.assertLessEqual(period.spend, budget.budget_amount + estimate)
            self.assertAlmostEqual(period.spend, sum(served.mapped("cost_usd")), places=9)
            self.assertEqual((period.reserved, period.call_count), (0.0, len(served)))
            self.assertFalse(env["ai.cost.budget.reservation"].search([("period_id", "=", period.id)]))
            # The 50% alert went out exactly once, however many workers crossed it at the same time.
            self.assertEqual(len(budget.message_ids.filtered(lambda m: "reached 50%" in (m.body or ""))), 1)
