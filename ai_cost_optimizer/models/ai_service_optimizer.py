from odoo import models

from ..core.clients import ProviderError
from ..core.complexity import score_prompt
from ..core.recommendation import strictest_quality
from ..core.tokens import count_text_tokens
from ..ledger import USAGE_ID

# Errors every provider would give for the same request: falling back would only spend more.
NO_FALLBACK_KINDS = frozenset({"invalid_request"})


class AiService(models.AbstractModel):
    """Routing in the gateway: recommendation, smart router, auto-switch, A/B arms, fallback, benchmarks."""

    _inherit = "ai.service"

    # ------------------------------------------------------------------
    # Recommendation and routing
    # ------------------------------------------------------------------
    def _resolve_provider(self, call):
        # A call that names no provider may be routed by an A/B experiment even in passthrough mode.
        call["provider_given"] = call["provider"] is not None
        super()._resolve_provider(call)

    def _recommend(self, call):
        """Score the prompt's complexity (smart_router: it sets the quality bar) and ask the optimizer
        which provider it would pick; passthrough calls record it too (the wrong_model waste rule)."""
        recommendation = super()._recommend(call)
        model = call["provider"].model
        call["complexity"] = score_prompt(call["messages"], lambda text: count_text_tokens(text, model).tokens)
        if call["mode"] == "smart_router":
            # The complexity sets the bar of a call that gave none, and may raise a given one.
            call["quality_required"] = strictest_quality(call["quality_given"], call["complexity"].quality_level)
        if recommendation is not None or call["task_type"] not in self.env["ai.task.type"]._output_figures():
            return recommendation
        # Stored with the usage row of a served call (_add_usage_followers), not for refused ones.
        return (
            self.env["ai.cost.optimizer"]
            .with_company(call["provider"].company_id)
            .with_context(ai_recommendation_internal=True)
            .recommend_provider(
                call["task_type"], call["context_size_tokens"], call["quality_required"], call["max_budget_usd"]
            )
        )

    def _apply_recommendation(self, call):
        """smart_router always follows the recommendation; passthrough only when cost optimization
        and auto-switch are both on (on the provider or for the company) and it is cheaper.
        A running A/B experiment on the task type takes precedence over both, and also routes
        passthrough calls that name no provider."""
        super()._apply_recommendation(call)
        if call.get("switched_from"):
            return
        may_reroute = self._may_reroute(call)
        target = self._ab_target(call) if may_reroute or not call["provider_given"] else None
        if not target and may_reroute:
            target = self._recommended_target(call)
        if target and target != call["provider"] and target.max_output_tokens >= call["max_tokens"]:
            self._switch_provider(call, target)

    def _may_reroute(self, call):
        """Whether the gateway may send this call elsewhere than the given provider."""
        if call["mode"] == "smart_router":
            return True
        provider, company = call["provider"], call["provider"].company_id
        return (provider.enable_cost_optimization or company.ai_enable_cost_optimization) and (
            provider.auto_switch_provider or company.ai_auto_switch_provider
        )

    def _recommended_target(self, call):
        recommendation = call.get("recommendation") or {}
        target = self.env["ai.service.provider"].sudo().browse(recommendation.get("provider_id") or [])
        if not target or call["mode"] == "smart_router":
            return target
        current = next(
            (alt for alt in recommendation["alternatives"] if alt["provider_id"] == call["provider"].id), None
        )
        # A passthrough call moves only to save money: the current provider may be the cheapest one
        # in dollars while another one wins per quality point.
        if current and current["estimated_cost"] <= recommendation["estimated_cost"]:
            return self.env["ai.service.provider"]
        return target

    def _ab_target(self, call):
        """The provider of the user's arm in a running A/B experiment on this task type."""
        group = self.env["ai.provider.experiment"].sudo()._group_for_user(
            call["task_type"], self.env.user, call["provider"].company_id
        )
        if not group:
            return self.env["ai.service.provider"]
        provider = self.env["ai.service.provider"].sudo().browse(group["provider_id"])
        if not (provider.active and provider.api_key):
            # An arm that cannot serve leaves the call where it was, outside the experiment.
            return self.env["ai.service.provider"]
        call["ab_arm_id"] = group["arm_id"]
        return provider

    def _switch_provider(self, call, target):
        """Send the call to `target`, re-estimated with its tokenizer; the first provider asked is kept."""
        call["switched_from"] = call.get("switched_from") or call["provider"]
        call["provider"] = target
        call["config"] = target._client_config()
        self._estimate_tokens(call)

    # ------------------------------------------------------------------
    # Fallback
    # ------------------------------------------------------------------
    def _call_provider(self, call):
        """Call the provider; when it fails after its retries, move on to the next qualifying
        alternative of the recommendation (when the company falls back, see `_may_fall_back`).
        Every failed attempt keeps its own usage row; call['provider_failures'] lists each provider
        tried that failed, with its last error, in order (send_message's error names them all)."""
        failures = call.setdefault("provider_failures", [])
        while True:
            try:
                return super()._call_provider(call)
            except ProviderError as error:
                failures.append((call["provider"], error))
                if not self._fall_back(call, error):
                    raise

    def _fall_back(self, call, error):
        """Move the call to the next provider that may serve it, with its budget reservation: the
        budgets of the failed provider's scope are released, those of the new one's checked and
        reserved. A provider its budgets refuse is skipped. False when no provider is left."""
        skip = [provider for provider, _error in call["provider_failures"]]
        released = False
        while True:
            target = self._fallback_target(call, error, skip)
            if not target:
                return False
            if not released:
                self._release_budget(call)
                call.pop("budget_periods", None)
                released = True
            moved = dict(call)
            self._switch_provider(moved, target)
            budget = self._check_budget(moved) or {"status": "ok"}
            if budget["status"] != "blocked":
                moved["budget"] = budget
                call.update(moved)
                return True
            skip.append(target)

    def _may_fall_back(self, call):
        """Whether a call whose provider failed may go to another one: a company setting (on by
        default) that applies in both modes."""
        return call["provider"].company_id.ai_fallback_on_failure

    def _fallback_target(self, call, error, tried):
        """The next alternative of the recommendation not in `tried` that can serve the call, if any."""
        if error.kind in NO_FALLBACK_KINDS or not self._may_fall_back(call):
            return None
        Provider = self.env["ai.service.provider"].sudo()
        for alternative in (call.get("recommendation") or {}).get("alternatives") or []:
            provider = Provider.browse(alternative["provider_id"])
            if provider not in tried and provider.max_output_tokens >= call["max_tokens"]:
                return provider
        return None

    # ------------------------------------------------------------------
    # Ledger and benchmarks
    # ------------------------------------------------------------------
    def _usage_values(self, call, status, error):
        vals = super()._usage_values(call, status, error)
        recommendation = call.get("recommendation") or {}
        complexity = call.get("complexity")
        vals.update(
            recommended_provider_id=recommendation.get("provider_id") or False,
            recommended_cost_usd=recommendation.get("estimated_cost") or 0.0,
            complexity=complexity.level if complexity else False,
            ab_arm_id=call.get("ab_arm_id") or False,
        )
        return vals

    def _add_usage_followers(self, call, ledger, status):
        super()._add_usage_followers(call, ledger, status)
        if status == "ok" and call.get("recommendation"):
            vals = self.env["ai.cost.optimizer"]._recommendation_values(
                call["recommendation"], call["task_type"], call["context_size_tokens"], call["quality_required"],
                call["max_budget_usd"],
            )
            ledger.add_insert("recommendation", self.env["ai.cost.recommendation"], vals)

    def _after_usage(self, call, usage, ids):
        if "recommendation" in ids:
            call["recommendation"]["recommendation_id"] = ids["recommendation"]
        # The waste rules ask the optimizer again: that question is not a recommendation to keep,
        # and must not fail the call for a task type the optimizer does not know.
        super(AiService, self.with_context(ai_recommendation_internal=True))._after_usage(call, usage, ids)

    def _log_benchmark(self, call, ledger):
        super()._log_benchmark(call, ledger)
        usage, Benchmark = ledger.vals, self.env["ai.provider.benchmark"]
        failed = usage["status"] != "ok"
        # The call's provider, read by the caller's transaction: the ledger's need not read it again.
        vals = Benchmark._benchmark_values(
            call["provider"], usage["task_type"], usage.get("complexity"),
            usage["estimated_input_tokens"] if failed else usage["input_tokens"], usage.get("output_tokens", 0),
            usage.get("cost_usd", 0.0), usage.get("latency_ms", 0.0), error_occurred=failed, usage_id=USAGE_ID,
        )
        ledger.add_insert("benchmark", Benchmark, vals)
