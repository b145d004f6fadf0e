from odoo import models

from ..kept_cursors import run_in_own_transaction
from .ai_cost_budget_period import read_committed


class AiService(models.AbstractModel):
    """Budgets in the gateway: reserve before the call, settle after it, release on failure."""

    _inherit = "ai.service"

    def _check_budget(self, call):
        result = super()._check_budget(call)
        Budget = self.env["ai.cost.budget"].sudo()
        rules = Budget._matching_rules(self.env.user, call["provider"], call.get("operation"))
        if not rules:
            return result
        return Budget._reserve_for_call(rules, call, self._switch_to_cheapest)

    def _switch_to_cheapest(self, call):
        """Move the call to the cheapest qualifying provider (ai.cost.optimizer); False when the
        optimizer is missing or recommends nothing cheaper than the current provider."""
        if "ai.cost.optimizer" not in self.env:
            return False
        current = call["provider"]
        # The gateway's recommend step asked the same question already: its answer is reused.
        recommendation = call.get("recommendation") or self.env["ai.cost.optimizer"].recommend_provider(
            call["task_type"], call["context_size_tokens"], call["quality_required"], call.get("max_budget_usd")
        )
        provider = self.env["ai.service.provider"].sudo().browse(recommendation.get("provider_id") or [])
        failed = [failed_provider for failed_provider, _error in call.get("provider_failures", ())]
        if not provider or provider == current or provider in failed:
            return False
        call["provider"] = provider
        call["config"] = provider._client_config()
        call["switched_from"] = call.get("switched_from") or current
        call["budget_switch"] = recommendation
        return True

    def _release_budget(self, call):
        super()._release_budget(call)
        if call.get("budget_reservations"):
            reservations = call.pop("budget_reservations")

            def release(cr):
                env = self.env(cr=cr, su=True)
                read_committed(env)
                env["ai.cost.budget.period"].browse(call["budget_periods"])._release(reservations)

            run_in_own_transaction(self.env, release)

    def _settle_budget(self, call, usage):
        super()._settle_budget(call, usage)
        if call.get("budget_periods"):
            periods = self.env["ai.cost.budget.period"].sudo().browse(call["budget_periods"])
            # The call's cost as the ledger statement wrote it: reading the row back would cost a query.
            periods._settle(call.pop("budget_reservations", []), call.get("cost_usd", 0.0))
