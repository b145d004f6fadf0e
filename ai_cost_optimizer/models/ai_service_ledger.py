from odoo import models

from ..core import pricing, request
from ..core.messages import storable_text
from ..core.recommendation import QUALITY_BARS
from ..core.tools import tools_text
from ..core.usage import Usage
from ..ledger.cursors import references_of, run_in_own_transaction
from ..ledger.statement import LedgerStatement
from .ai_token_usage import ROLLUPS_BY_CALLER
from .ai_token_waste_finding import CALL_FIELDS, WASTE_FIELDS


class AiServiceLedger(models.AbstractModel):
    """The call's rows: its usage row (every call leaves one, refused and failed ones included) and the rows
    that follow it, written in a transaction of their own so that they outlive a caller that rolls back (the
    money was spent), with the steps that complete them: waste analysis before, the budget settle after."""

    _name = "ai.service.ledger"
    _description = "AI Gateway: Ledger"

    def _record_usage(self, call, status, error=None):
        """Write the usage row in a transaction of its own: the money was spent even if the
        caller's transaction rolls back (see run_in_own_transaction for the transactions that keep
        it themselves). The post-call steps run in the same transaction, the rows that follow the
        usage row in one statement (see ledger.py)."""
        vals = self._usage_values(call, status, error)
        return run_in_own_transaction(
            self.env, lambda ledger_cr: self._write_ledger(ledger_cr, call, status, vals),
            references=references_of(self.env["ai.token.usage"], vals),
        )

    def _write_ledger(self, ledger_cr, call, status, vals):
        """Write the call's usage row (its values `vals`) and the rows that follow it on `ledger_cr`; returns
        its summary."""
        # allowed_company_ids spares a read of the user's companies on every call.
        ledger_env = self.env(cr=ledger_cr, su=True, context=dict(allowed_company_ids=[vals["company_id"]]))
        service = self.with_env(ledger_env)
        if status == "ok":
            service._before_usage(call, vals)
        # Through create(): other modules' fields, computes and overrides apply to the gateway's rows. Its
        # rollups lead the statement of the rows that follow it (see ai.token.usage's _add_rollups_to).
        usage = ledger_env["ai.token.usage"].with_context(**{ROLLUPS_BY_CALLER: True}).create(vals)
        ledger = LedgerStatement(usage, vals)
        usage._add_rollups_to(ledger)
        # A call the provider answered, and was paid for, settles its budget even when its answer is an
        # error (a broken stream, a structured reply that does not parse). First in the statement: see
        # _add_budget_settle.
        settles = status == "ok" or call.result is not None
        if settles:
            service._add_budget_settle(call, ledger)
        service._add_usage_followers(call, ledger, status)
        results = ledger.execute()
        if settles:
            service._after_usage(call, usage, results)
        # The caller's snapshot may predate this commit, so it gets the figures, not the record.
        return self._usage_summary(call, usage.id, vals)

    def _usage_values(self, call, status, error):
        """The values of the call's usage row: the request, the answer and its cost (a response-cache
        hit costs nothing and records the original cost as saved), the prompt's waste facts, and the
        routing (recommendation, complexity, A/B arm)."""
        provider = self._ledger_provider(call)
        # A call refused before its provider was resolved has no profile yet.
        profile = provider._gateway_profile() if provider else None
        company = self.env["res.company"].browse(profile.company_id) if profile else self.env.company
        settings = company._ai_gateway_settings(company.id)
        result = call.result
        estimate = call.estimate
        messages = call.messages if isinstance(call.messages, list) else []
        vals = {
            "kind": call.kind,
            "user_id": self.env.uid,
            "company_id": company.id,
            "provider_id": provider.id if provider else False,
            "model": profile.model if profile else False,
            "mode": call.mode if request.is_one_of(call.mode, request.MODES) else "passthrough",
            "operation": self._clean_str(call.operation),
            "res_model": self._clean_str(call.res_model),
            "res_id": self._clean_id(call.res_id),
            "session_id": self._clean_str(call.session_id),
            "task_type": self._clean_str(call.task_type) or "chat",
            "quality_required": call.quality_required
            if request.is_one_of(call.quality_required, QUALITY_BARS)
            else False,
            "status": status,
            # A request that reached a provider, answered or failed, is a sample of its benchmarks.
            "provider_called": result is not None or call.failed_attempt,
            "error_message": error and storable_text(error),
            "estimated_input_tokens": estimate.tokens if estimate else 0,
            "estimate_exact": estimate.exact if estimate else False,
            "context_size_tokens": call.context_size_tokens,
            "prompt_hash": call.prompt_hash,
            "switched_from_id": call.switched_from.id if call.switched_from else False,
            "switched": bool(call.switched_from),
        }
        if all(isinstance(m, dict) for m in messages) and messages:
            vals["prompt_text"] = company._ai_retained_text(
                storable_text("\n\n".join(f"[{message.get('role')}] {message.get('content')}" for message in messages)),
                settings,
            )
        usage = result.usage if result is not None else Usage()
        vals.update(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
        )
        if result is not None:
            price = call.price
            vals.update(
                usage_reported=result.usage_reported,
                latency_ms=result.latency_ms,
                attempts=result.attempts,
                cost_usd=call.cost_usd,
                cost_unknown=not price,
                price_id=price.id if price else False,
                prompt_cache_savings_usd=self._prompt_cache_savings(result.usage, price),
                completion_text=company._ai_retained_text(storable_text(result.content), settings),
            )
        elif error and call.attempts:
            vals["attempts"] = call.attempts
        answer = call.cached_answer
        if answer:
            vals.update(
                cache_hit=True, cost_usd=0.0, cache_savings_usd=answer["cost_usd"], latency_ms=0.0,
                completion_text=company._ai_retained_text(answer["content"], settings),
            )
        elif status == "ok" and result is not None and call.kind == "chat":
            vals.update(self.env["ai.token.waste.finding"]._waste_facts(
                call.messages, profile.model, tools_text(call.tools, call.response_format)
            ))
        # The optimizer's verdict for this call: what the wrong_model waste rule compares against.
        recommendation = call.recommendation or {}
        complexity = call.complexity
        vals.update(
            recommended_provider_id=recommendation.get("provider_id") or False,
            recommended_cost_usd=recommendation.get("estimated_cost") or 0.0,
            complexity=complexity.level if complexity else False,
            ab_arm_id=call.ab_arm_id or False,
            rate_limit_id=call.rate_limited_by or False,
        )
        return vals

    def _before_usage(self, call, vals):
        """Steps of a successful call that complete the values of its usage row before it is written,
        on the ledger transaction: the waste rules run here, so that the row is written once, with its
        waste fields; the findings follow it in the same statement (_add_usage_followers)."""
        provider = call.provider
        # The waste rules read chat prompts; an embedding call has none.
        if call.cached_answer or call.kind != "chat" or not provider._waste_detection_enabled():
            call.waste_report = None
            return
        profile = call.profile
        price = call.price._as_core_price() if call.price else None
        # The row's values and what the gateway knows of its provider and price.
        values = {
            **dict.fromkeys(CALL_FIELDS + WASTE_FIELDS, False),
            **vals,
            "context_window": profile.context_window,
            "input_price": price.input_per_mtok if price else 0.0,
            "output_price": price.output_per_mtok if price else 0.0,
            "cache_read_price": (price.cache_read_per_mtok or 0.0) if price else 0.0,
        }
        Finding = self.env["ai.token.waste.finding"].sudo()
        report = Finding._report(values)
        vals.update(Finding._waste_values(report))
        call.waste_report, call.waste_values = report, values

    def _add_usage_followers(self, call, ledger, status):
        """Add to `ledger` (a LedgerStatement) the rows that follow the usage row of a served call,
        written by one statement: its waste findings, its response-cache entry and its recommendation.
        The usage row itself is the call's benchmark sample (see ai.provider.benchmark.report)."""
        # Neither a failed call nor an embedding call has findings, a response-cache entry or a recommendation.
        if status != "ok" or call.kind != "chat":
            return
        # An answer from the response cache has no findings and is stored already.
        served = not call.cached_answer
        if served and call.waste_report:
            Finding = self.env["ai.token.waste.finding"].sudo()
            usage = ledger.usage
            findings = Finding._finding_values(usage.id, usage.create_date, call.waste_values, call.waste_report)
            for index, vals in enumerate(findings):
                ledger.add_insert(f"finding_{index}", self.env["ai.token.waste.finding"], vals)
        if served and self._response_cacheable(call):
            # The company as the caller's transaction has read it: the ledger's need not read it again.
            entry = self.env["ai.response.cache"].sudo()._store_sql(
                self._response_key(call), self._company(call), ledger.usage.id, ledger.vals, call.result.content
            )
            if entry:
                ledger.add("response_cache", entry)
        if call.recommendation:
            vals = self.env["ai.cost.optimizer"]._recommendation_values(
                call.recommendation, call.task_type, call.context_size_tokens, call.quality_required,
                call.max_budget_usd,
            )
            ledger.add_insert("recommendation", self.env["ai.cost.recommendation"], vals)

    def _after_usage(self, call, usage, results):
        """Steps after the ledger statement of a successful call, on the ledger transaction: the alerts of the
        budget settle. `results`: what the statement's parts returned, by part name (the ids of the rows it
        wrote, see LedgerStatement.execute)."""
        if "recommendation" in results:
            call.recommendation["recommendation_id"] = results["recommendation"]
        self._send_budget_alerts(call, results.get("budget_settle"))

    def _analyze_waste(self, usage):
        """Run the waste rules on stored calls of providers with waste detection and fill their waste
        fields; returns the report of the last one, or None."""
        report = None
        Finding = self.env["ai.token.waste.finding"].sudo()
        for row in usage.sudo().filtered(lambda row: row.provider_id._waste_detection_enabled()):
            report = Finding._analyze_usage(row)
        return report

    def _ledger_provider(self, call):
        """The provider a usage row may name: the call's provider once it is one provider of the
        caller's companies. Input that failed validation names none, so that a row never lands in
        another company's ledger."""
        provider = call.provider
        if (
            isinstance(provider, models.BaseModel)
            and provider._name == "ai.service.provider"
            and len(provider) == 1
            and self._is_users_company(provider._gateway_profile().company_id)
        ):
            return provider
        return None

    @staticmethod
    def _clean_str(value, limit=256):
        """A parameter as it can be stored, even when it failed validation."""
        return storable_text(value[:limit]) if isinstance(value, str) and value else False

    @staticmethod
    def _clean_id(value):
        """A record id as it can be stored (0 when it is not one), even when it failed validation."""
        return value if request.is_record_id(value) else 0

    @staticmethod
    def _prompt_cache_savings(usage, price):
        if not price or not usage.cache_read_tokens:
            return 0.0
        rates = price._as_core_price()
        return pricing.cache_read_savings(
            usage.cache_read_tokens, rates.input_per_mtok, rates.cache_read_per_mtok or 0.0
        )

    def _usage_summary(self, call, usage_id, vals):
        """The figures of the usage row, from the values it was written with."""
        provider = self._ledger_provider(call)
        return {
            "usage_id": usage_id,
            "provider_id": provider.id if provider else False,
            "provider_name": provider._gateway_profile().name if provider else False,
            "model": vals.get("model"),
            "usage": {
                name: vals.get(name, 0)
                for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
            },
            "usage_estimated": not vals.get("usage_reported", True),
            "cost_usd": vals.get("cost_usd", 0.0),
            "cost_unknown": vals.get("cost_unknown", False),
            "latency_ms": vals.get("latency_ms", 0.0),
            "cache_hit": vals.get("cache_hit", False),
        }
