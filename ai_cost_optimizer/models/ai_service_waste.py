import hashlib

from odoo import models

from ..core import waste as waste_rules
from ..core.response_cache import cache_key, is_cacheable
from ..core.tokens import count_message_tokens, count_text_tokens
from ..ledger import USAGE_DATE, USAGE_ID
from .ai_token_analytics import CALL_FIELDS, WASTE_FIELDS


class AiService(models.AbstractModel):
    """Response cache, waste facts and waste analysis in the gateway."""

    _inherit = "ai.service"

    # ------------------------------------------------------------------
    # Response cache
    # ------------------------------------------------------------------
    def _lookup_response_cache(self, call):
        """A hit records a usage row with cache_hit, cost 0 and the original cost as the saving."""
        cached = super()._lookup_response_cache(call)
        if cached or not self._response_cacheable(call):
            return cached
        answer = self.env["ai.response.cache"].sudo()._lookup(call["provider"].company_id, self._response_key(call))
        if not answer:
            return None
        call["cache_entry"] = answer
        call["cached_content"] = answer["content"]
        return self._record_usage(call, status="ok")

    def _response_cacheable(self, call):
        return call["provider"].company_id.ai_response_cache and is_cacheable(call["use_cache"], call["temperature"])

    @staticmethod
    def _response_key(call):
        """The request's key, fixed at lookup: a call re-routed afterwards must store its answer
        under the key the next identical request will look up, the caller's model."""
        if "response_key" not in call:
            call["response_key"] = cache_key(
                call["provider"].model, call["messages"], call["max_tokens"], call["temperature"]
            )
        return call["response_key"]

    def _add_usage_followers(self, call, ledger, status):
        super()._add_usage_followers(call, ledger, status)
        if status != "ok" or call.get("cache_entry"):
            return
        if call.get("waste_report"):
            Analytics = self.env["ai.token.analytics"].sudo()
            findings = Analytics._finding_values(USAGE_ID, USAGE_DATE, call["waste_values"], call["waste_report"])
            for index, vals in enumerate(findings):
                ledger.add_insert(f"finding_{index}", self.env["ai.token.waste.finding"], vals)
        if self._response_cacheable(call):
            # The company as the caller's transaction has read it: the ledger's need not read it again.
            entry = self.env["ai.response.cache"].sudo()._store_sql(
                self._response_key(call), call["provider"].company_id, ledger.vals, call["result"].content
            )
            if entry:
                ledger.add("response_cache", entry)

    # ------------------------------------------------------------------
    # Waste
    # ------------------------------------------------------------------
    def _usage_values(self, call, status, error):
        vals = super()._usage_values(call, status, error)
        answer = call.get("cache_entry")
        if answer:
            company = call["provider"].company_id
            vals.update(
                cache_hit=True, cost_usd=0.0, cache_savings_usd=answer["cost_usd"], latency_ms=0.0,
                completion_text=company._ai_retained_text(answer["content"]),
            )
        elif status == "ok" and call.get("result") is not None:
            vals.update(self._waste_facts(call["messages"], call["provider"].model))
        recommendation = call.get("recommendation") or {}
        if recommendation.get("provider_id"):
            # The optimizer's verdict for this call: what the wrong_model rule compares against.
            vals.setdefault("recommended_provider_id", recommendation["provider_id"])
            vals.setdefault("recommended_cost_usd", recommendation.get("estimated_cost") or 0.0)
        return vals

    @staticmethod
    def _waste_facts(messages, model):
        """What the waste rules need from the prompt, measured once, so the prompt need not be kept."""
        prefix = waste_rules.static_prefix(messages)
        history = waste_rules.history_messages(messages)
        return {
            # Exact bytes: a prompt cache only matches a byte-identical prefix.
            "static_prefix_hash": hashlib.sha256(f"{model}\n{prefix}".encode()).hexdigest() if prefix else False,
            "static_prefix_tokens": count_text_tokens(prefix, model).tokens if prefix else 0,
            "redundant_context_tokens": waste_rules.redundant_tokens(
                messages, lambda text: count_text_tokens(text, model).tokens
            ),
            "history_tokens": count_message_tokens(history, model).tokens if history else 0,
        }

    def _before_usage(self, call, vals):
        """Run the waste rules on the call before its row is written, so that the row is written once,
        with its waste fields; the findings follow it (_after_usage)."""
        super()._before_usage(call, vals)
        provider = call["provider"]
        if call.get("cache_entry") or not provider._waste_detection_enabled():
            call["waste_report"] = None
            return
        price = call.get("price") or self.env["ai.service.provider.price"]
        # The row's values and what the caller's transaction has read of its provider and price.
        values = {
            **dict.fromkeys(CALL_FIELDS + WASTE_FIELDS, False),
            **vals,
            "context_window": provider.context_window,
            "provider_quality": provider.quality_score,
            "input_price": price.input_price,
            "output_price": price.output_price,
            "cache_read_price": price.cache_read_price,
        }
        Analytics = self.env["ai.token.analytics"].sudo()
        report = Analytics._report(values)
        vals.update(Analytics._waste_values(report))
        call["waste_report"], call["waste_values"] = report, values

    def _analyze_waste(self, usage):
        """Run the waste rules on stored calls of providers with waste detection; the report of the last one."""
        report = super()._analyze_waste(usage)
        Analytics = self.env["ai.token.analytics"].sudo()
        for row in usage.sudo().filtered(lambda row: row.provider_id._waste_detection_enabled()):
            report = Analytics._analyze_usage(row)
        return report
