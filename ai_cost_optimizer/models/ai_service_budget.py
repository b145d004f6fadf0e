from odoo import models
from odoo.tools import SQL

from ..core.clients.base import RATE_LIMITED_AHEAD
from ..exceptions import AiBudgetExceeded, AiRateLimited
from ..ledger.cursors import run_in_own_transaction


class AiServiceBudget(models.AbstractModel):
    """The budgets and rate limits of a call's scope: the call admitted under its rate limits and its estimated
    cost held before it goes out, released when no provider served it, replaced by its actual cost once the
    ledger holds it."""

    _name = "ai.service.budget"
    _description = "AI Gateway: Budgets and Rate Limits"

    def _hold_rate_limits(self, call):
        """Admit the call under the rate limits of its scope, waiting for room when they allow it (in the order
        calls came); a refused call is recorded (status rate_limited) and raises AiRateLimited."""
        rules = self._rate_limit_rules(call, call.provider)
        if not rules:
            return
        try:
            call.rate_limit_hits = self._admit_rate_limits(call, rules)
        except AiRateLimited as error:
            call.rate_limited_by = error.limit_id
            self._record_usage(call, status="rate_limited", error=str(error))
            raise

    def _rate_limit_rules(self, call, provider):
        """The rules of the rate limits whose scope holds `call` sent to `provider` (cached: no query)."""
        return self.env["ai.cost.rate.limit"].sudo()._matching_rules(
            provider._gateway_profile().company_id, self.env.uid, provider.id, call.operation
        )

    def _admit_rate_limits(self, call, rules):
        """Admit `call` under `rules`: {limit id: hit id}; raises AiRateLimited."""
        # The most the call may use, as providers count their own limits: its prompt and its max_tokens.
        return self.env["ai.cost.rate.limit"].sudo()._admit(rules, call.estimate.tokens + call.max_tokens)

    def _admit_elsewhere(self, call, moved):
        """Admit `moved`, `call` about to go to another provider, under the rate limits of the new provider's
        scope that did not admit the call already, waiting for room as their actions allow. False when one of
        them refuses it: nothing more is held then."""
        rules = [rule for rule in self._rate_limit_rules(moved, moved.provider) if rule.id not in call.rate_limit_hits]
        if not rules:
            return True
        try:
            hits = self._admit_rate_limits(moved, rules)
        except AiRateLimited:
            return False
        # A new dict: `moved` is a shallow copy, and `call` keeps its own hits until the move is decided.
        moved.rate_limit_hits = {**call.rate_limit_hits, **hits}
        return True

    def _release_unsent_rate_limits(self, call):
        """Give the call's minute back to the limits scoped to providers it was never sent to, once it moved:
        those of a provider skipped before sending. A provider a request reached counts it (providers count
        failed requests too), and so do its limits."""
        if not call.rate_limit_hits:
            return
        sent = [provider for provider, error in call.provider_failures if error.kind != RATE_LIMITED_AHEAD]
        self._release_rate_limits(call, keep={
            rule.id for provider in (call.provider, *sent) for rule in self._rate_limit_rules(call, provider)
        })

    def _release_rate_limits(self, call, keep=()):
        """Give the call's minute back to its rate limits, but to those of `keep` (limit ids): it does not go out
        under them."""
        dropped = [hit for limit_id, hit in call.rate_limit_hits.items() if limit_id not in keep]
        if dropped:
            self.env["ai.cost.rate.limit"].sudo()._release(dropped)
            call.rate_limit_hits = {limit_id: hit for limit_id, hit in call.rate_limit_hits.items() if limit_id in keep}

    def _reserve_budget(self, call):
        """Check the call's budgets and hold its estimated cost; a blocked call is recorded and raises
        AiBudgetExceeded."""
        call.budget = self._check_budget(call) or {"status": "ok"}
        if call.budget["status"] == "blocked":
            # It does not go out: its rate limits' minutes do not count it.
            self._release_rate_limits(call)
            self._record_usage(call, status="blocked", error=call.budget.get("message"))
            raise AiBudgetExceeded(call.budget.get("message") or self.env._("A budget refused this AI call."))

    def _check_budget(self, call):
        """Check the budgets whose scope matches the call and reserve its estimated cost on them;
        returns {'status': 'ok'|'warning'|'switched'|'blocked', 'message': ...} or None when no budget
        applies. 'blocked' records the call and raises (send_message)."""
        Budget = self.env["ai.cost.budget"].sudo()
        rules = Budget._matching_rules(self.env.user, call.provider, call.operation)
        if not rules:
            return None
        return Budget._reserve_for_call(rules, call, self._switch_to_cheapest)

    def _release_budget(self, call):
        """Release the budget reservation of a call that failed."""
        if call.budget_reservations:
            reservations, call.budget_reservations = call.budget_reservations, []

            def release(cr):
                env = self.env(cr=cr, su=True)
                env["ai.cost.budget.period"].browse(call.budget_periods)._release(reservations)

            run_in_own_transaction(self.env, release)

    def _add_budget_settle(self, call, ledger):
        """Add to `ledger` (the LedgerStatement of the call's rows) the statement that replaces the call's budget
        reservations with its actual cost (the cost the usage row is written with). Added after the rollups and
        before the other parts: it locks the periods the calls of a budget share, and every call's statement must
        take its locks in one order (rollup rows, periods, then the rows it may share with other calls, such as
        a response-cache entry), or two calls could each hold what the other waits for."""
        if not call.budget_periods:
            return
        periods = self.env["ai.cost.budget.period"].sudo().browse(call.budget_periods)
        reservations, call.budget_reservations = call.budget_reservations, []
        *parts, (name, update, _materialized) = periods._settle_parts(reservations, call.cost_usd)
        for part_name, statement, materialized in parts:
            ledger.add(part_name, statement, materialized=materialized)
        # Each period's figures, as _settle_alerts reads them.
        ledger.add(name, update, result=SQL(
            "(SELECT json_agg(json_build_array(id, spend, alerted_up_to, budget_id)) FROM %s)", SQL.identifier(name)
        ))

    def _send_budget_alerts(self, call, settled):
        """Send the alerts of the thresholds the call's settle made its budgets reach; `settled`: what it returned
        (see _add_budget_settle)."""
        if call.budget_periods:
            periods = self.env["ai.cost.budget.period"].sudo().browse(call.budget_periods)
            periods._settle_alerts(settled or [], call.budget_rules)
