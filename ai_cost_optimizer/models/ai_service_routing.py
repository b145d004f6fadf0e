from dataclasses import replace

from odoo import models

from ..core.clients import ProviderError
from ..core.clients.base import RATE_LIMITED_AHEAD
from ..core.complexity import score_prompt
from ..core.recommendation import strictest_quality
from ..core.response_cache import cache_key, is_cacheable
from ..core.tokens import count_text_tokens

# Errors every provider would give for the same request: falling back would only spend more.
NO_FALLBACK_KINDS = frozenset({"invalid_request"})


class AiServiceRouting(models.AbstractModel):
    """Where a call goes: the response cache, the optimizer's recommendation (smart router, auto-switch),
    A/B experiment arms, a budget's switch to the cheapest provider and the fallback when a provider fails
    or reported no room left under its own rate limits."""

    _name = "ai.service.routing"
    _description = "AI Gateway: Routing"

    def _company(self, call):
        """The answering provider's company."""
        return self.env["res.company"].browse(call.profile.company_id)

    def _lookup_response_cache(self, call):
        """A stored answer for this exact request, or None. A hit records a usage row with cache_hit,
        cost 0 and the original cost as the saving, and returns its summary."""
        if not self._response_cacheable(call):
            return None
        answer = self.env["ai.response.cache"].sudo()._lookup(self._company(call), self._response_key(call))
        if not answer:
            return None
        call.cached_answer = answer
        return self._record_usage(call, status="ok")

    def _response_cacheable(self, call):
        # A stream is read as it comes, and tool calls are not stored: neither is answered from the cache; nor
        # is an embedding call.
        return (
            call.kind == "chat"
            and call.settings.response_cache
            and not call.stream
            and not call.tools
            and is_cacheable(call.use_cache, call.temperature)
        )

    @staticmethod
    def _response_key(call):
        """The request's key, fixed at lookup: a call re-routed afterwards must store its answer
        under the key the next identical request will look up, the caller's model."""
        if call.response_key is None:
            call.response_key = cache_key(
                call.profile.model, call.messages, call.max_tokens, call.temperature,
                call.response_format,
            )
        return call.response_key

    def _recommend(self, call):
        """Score the prompt's complexity (smart_router: it sets the quality bar) and ask the optimizer
        which provider it would pick; passthrough calls record it too (the wrong_model waste rule).
        Returns the recommendation (a dict), or None for a task type the optimizer cannot price."""
        if call.kind != "chat":
            return None
        model = call.profile.model
        call.complexity = score_prompt(call.messages, lambda text: count_text_tokens(text, model).tokens)
        if call.mode == "smart_router":
            # The complexity sets the bar of a call that gave none, and may raise a given one.
            call.quality_required = strictest_quality(call.quality_given, call.complexity.quality_level)
        if call.kind != "chat" or call.task_type not in self.env["ai.task.type"]._output_figures():
            return None
        # Stored with the usage row of a served call (_add_usage_followers), not for refused ones.
        return (
            self.env["ai.cost.optimizer"]
            .with_company(self._company(call))
            .with_context(ai_recommendation_internal=True)
            .recommend_provider(
                call.task_type, call.context_size_tokens, call.quality_required, call.max_budget_usd
            )
        )

    def _apply_recommendation(self, call):
        """Switch call.provider when configured to. smart_router always follows the recommendation;
        passthrough only when cost optimization and auto-switch are both on (on the provider or for
        the company) and it is cheaper. A running A/B experiment on the task type takes precedence
        over both, and also routes passthrough calls that name no provider."""
        # Vectors of another model would not compare: an embedding call stays where it was sent.
        if call.switched_from or call.kind != "chat":
            return
        may_reroute = self._may_reroute(call)
        target = self._ab_target(call) if may_reroute or not call.provider_given else None
        if not target and may_reroute:
            target = self._recommended_target(call)
        if target and target != call.provider and target._serves_max_tokens(call.max_tokens):
            self._switch_provider(call, target)

    def _may_reroute(self, call):
        """Whether the gateway may send this call elsewhere than the given provider."""
        if call.single_attempt:
            return False
        if call.mode == "smart_router":
            return True
        provider, company = call.profile, call.settings
        return (provider.enable_cost_optimization or company.enable_cost_optimization) and (
            provider.auto_switch_provider or company.auto_switch_provider
        )

    def _recommended_target(self, call):
        recommendation = call.recommendation or {}
        target = self.env["ai.service.provider"].sudo().browse(recommendation.get("provider_id") or [])
        if not target or call.mode == "smart_router":
            return target
        current = next(
            (alt for alt in recommendation["alternatives"] if alt["provider_id"] == call.provider.id), None
        )
        # A passthrough call moves only to save money: the current provider may be the cheapest one
        # in dollars while another one wins per quality point.
        if current and current["estimated_cost"] <= recommendation["estimated_cost"]:
            return self.env["ai.service.provider"]
        return target

    def _ab_target(self, call):
        """The provider of the user's arm in a running A/B experiment on this task type."""
        group = self.env["ai.provider.experiment"].sudo()._group_for_user(
            call.task_type, self.env.user, self._company(call)
        )
        if not group:
            return self.env["ai.service.provider"]
        provider = self.env["ai.service.provider"].sudo().browse(group["provider_id"])
        if not (provider.active and provider.has_api_key):
            # An arm that cannot serve leaves the call where it was, outside the experiment.
            return self.env["ai.service.provider"]
        call.ab_arm_id = group["arm_id"]
        return provider

    def _switch_provider(self, call, target):
        """Send the call to `target`, re-estimated with its tokenizer; the first provider asked is kept."""
        call.switched_from = call.switched_from or call.provider
        self._use_provider(call, target)
        call.config = target._client_config()
        self._estimate_tokens(call)

    def _switch_to_cheapest(self, call):
        """Move the call to the cheapest qualifying provider (a budget's auto-switch), under the rate limits of
        its scope as a fallback is (`_fall_back`); False when the optimizer recommends nothing cheaper than the
        current provider, when that provider's rate limits refuse the call, and for an embedding call, whose
        vectors another model would not match."""
        if call.kind != "chat" or call.single_attempt:
            return False
        current = call.provider
        # The gateway's recommend step asked the same question already: its answer is reused.
        recommendation = call.recommendation or self.env["ai.cost.optimizer"].recommend_provider(
            call.task_type, call.context_size_tokens, call.quality_required, call.max_budget_usd
        )
        provider = self.env["ai.service.provider"].sudo().browse(recommendation.get("provider_id") or [])
        failed = [failed_provider for failed_provider, _error in call.provider_failures]
        if not provider or provider == current or provider in failed:
            return False
        moved = replace(call)
        self._use_provider(moved, provider)
        if not self._admit_elsewhere(call, moved):
            return False
        vars(call).update(vars(moved))
        self._release_unsent_rate_limits(call)
        call.config = provider._client_config()
        call.switched_from = call.switched_from or current
        call.budget_switch = recommendation
        return True

    def _fall_back(self, call, error):
        """Move the call to the next provider that may serve it, under that provider's rate limits and with its
        budget reservation: the limits of the new provider's scope that did not admit the call yet admit it
        (waiting as their actions allow), the budgets of the failed provider's scope are released, those of the
        new one's checked and reserved. A provider its rate limits or its budgets refuse is skipped; once the
        call moved, the limits scoped to a provider to which nothing was sent give its minute back. False when
        no provider is left."""
        skip = [provider for provider, _error in call.provider_failures]
        released = False
        while True:
            target = self._fallback_target(call, error, skip)
            if not target:
                return False
            skip.append(target)
            moved = replace(call)
            self._switch_provider(moved, target)
            if not self._admit_elsewhere(call, moved):
                continue
            if not released:
                # Only now: a target its rate limits refuse leaves the call its reservation, where it may still go.
                self._release_budget(call)
                call.budget_periods = []
                released = True
            moved.budget_periods, moved.budget_reservations = [], []
            budget = self._check_budget(moved) or {"status": "ok"}
            if budget["status"] == "blocked":
                self._release_rate_limits(moved, keep=call.rate_limit_hits)
                continue
            moved.budget = budget
            vars(call).update(vars(moved))
            self._release_unsent_rate_limits(call)
            return True

    def _skip_rate_limited(self, call):
        """Move the call to the fallback provider before it is sent when its provider reported no requests or
        no tokens left at its last answer (or refused one with a 429) and the time it named has not come yet
        (ai.service.provider's _rate_limited_until): the fallback serves it instead of a 429 being earned.
        The skipped provider counts as tried, its error saying why (a call no provider served names it), and
        leaves no usage row: nothing was sent to it. With no fallback (fallback off, a single attempt, no
        provider left that has room), the call goes out to its provider all the same: the provider decides.
        Returns whether the call moved."""
        until = call.provider._rate_limited_until()
        if until is None:
            return False
        error = ProviderError(RATE_LIMITED_AHEAD, self.env._(
            "Not sent: the provider reported no requests or tokens left until %(until)s UTC",
            until=until.strftime("%Y-%m-%d %H:%M:%S"),
        ))
        call.provider_failures.append((call.provider, error))
        held = bool(call.budget_periods)
        if self._fall_back(call, error):
            return True
        call.provider_failures.pop()
        if held and not call.budget_periods:
            # A fallback gave the reservation back before its own budget refused it: the call goes out here after
            # all, so it holds its budgets again (a refusal now is recorded and raised as any).
            self._reserve_budget(call)
        return False

    def _may_fall_back(self, call):
        """Whether a call whose provider failed may go to another one: a company setting (on by
        default) that applies in both modes; never for a single attempt."""
        return not call.single_attempt and call.settings.fallback_on_failure

    def _fallback_target(self, call, error, tried):
        """The next alternative of the recommendation not in `tried` that can serve the call, if any; a provider
        that reported no room left under its own rate limits cannot, until the time it named."""
        if error.kind in NO_FALLBACK_KINDS or not self._may_fall_back(call):
            return None
        Provider = self.env["ai.service.provider"].sudo()
        for alternative in (call.recommendation or {}).get("alternatives") or []:
            provider = Provider.browse(alternative["provider_id"])
            if (
                provider not in tried
                and provider._serves_max_tokens(call.max_tokens)
                and not provider._rate_limited_until()
            ):
                return provider
        return None
