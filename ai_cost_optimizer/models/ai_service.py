import logging
import math

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..core import clients, pricing
from ..core.clients import ProviderError
from ..core.messages import (
    check_code,
    check_label,
    check_model_name,
    prompt_hash,
    short_repr,
    storable_text,
    validate_messages,
)
from ..core.recommendation import strictest_quality
from ..core.tokens import count_message_tokens
from ..exceptions import AiBudgetExceeded, AiProviderError
from ..kept_cursors import LEDGER_CURSORS, run_in_own_transaction
from ..ledger import USAGE_CTE, LedgerStatement
from .ai_token_usage import QUALITY_LEVELS

_logger = logging.getLogger(__name__)

MODES = ("passthrough", "smart_router")
MAX_RECORD_ID = 2**31 - 1  # PostgreSQL integer ids


class AiService(models.AbstractModel):
    """The gateway every LLM call of Odoo goes through.

    `send_message` runs a pipeline of small overridable steps, each taking and enriching
    one `call` dict, so other modules can hook in with `super()`.
    """

    _name = "ai.service"
    _description = "AI Gateway"

    @api.model
    def send_message(
        self,
        messages,
        provider=None,
        task_type="chat",
        quality_required=None,
        mode=None,
        max_tokens=1024,
        temperature=None,
        operation=None,
        res_model=None,
        res_id=None,
        session_id=None,
        max_budget_usd=None,
        use_cache=True,
    ):
        """Send `messages` to an LLM provider, tracking tokens, cost, budget and waste.

        Returns a dict: content, provider_id, provider_name, model, usage, cost_usd, latency_ms,
        cache_hit, usage_id, recommendation, switched_from, budget, waste_report.
        quality_required (low, medium, high) is the least quality the answer needs: medium when not
        given; in smart_router mode the prompt's complexity may raise it, never lower a given one.
        Raises UserError (AiProviderError, AiBudgetExceeded) with a clear message; every
        call, failed or refused ones included, leaves a usage row.
        """
        call = {
            "messages": messages,
            "provider": provider,
            "task_type": task_type,
            "quality_required": quality_required,
            "mode": mode,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "operation": operation,
            "res_model": res_model,
            "res_id": res_id,
            "session_id": session_id,
            "max_budget_usd": max_budget_usd,
            "use_cache": use_cache,
        }
        try:
            self._validate_request(call)
            self._resolve_provider(call)
        except UserError as error:
            self._record_usage(call, status="error", error=str(error))
            raise
        self._estimate_tokens(call)
        cached = self._lookup_response_cache(call)
        if cached:
            return self._build_result(call, cached)
        call["recommendation"] = self._recommend(call)
        self._apply_recommendation(call)
        call["budget"] = self._check_budget(call) or {"status": "ok"}
        if call["budget"]["status"] == "blocked":
            self._record_usage(call, status="blocked", error=call["budget"].get("message"))
            raise AiBudgetExceeded(call["budget"].get("message") or self.env._("A budget refused this AI call."))
        try:
            self._call_provider(call)
        except ProviderError as error:
            self._release_budget(call)
            if error not in call.get("failed_attempts", ()):
                self._record_usage(call, status="error", error=str(error))
            # Every provider tried, in order, with its last error (a fallback may have tried several).
            failures = list(call.get("provider_failures") or ())
            if not failures or failures[-1][1] is not error:
                failures.append((call["provider"], error))
            if len(failures) == 1:
                message = self.env._(
                    "The AI provider '%(name)s' failed: %(error)s", name=failures[0][0].name, error=error
                )
            else:
                message = self.env._(
                    "The %(count)s AI providers tried failed, in this order: %(failures)s.",
                    count=len(failures),
                    failures="; ".join(f"'{provider.name}': {failure}" for provider, failure in failures),
                )
            raise AiProviderError(message) from None
        summary = self._record_usage(call, status="ok")
        return self._build_result(call, summary)

    # ------------------------------------------------------------------
    # Pipeline steps
    # ------------------------------------------------------------------
    def _validate_request(self, call):
        """Check every parameter, so that bad input gets a clear UserError before anything is sent."""
        _ = self.env._
        try:
            call["messages"] = validate_messages(call["messages"])
        except ValueError as error:
            raise UserError(_("Invalid messages: %s", error)) from None
        if not self._is_one_of(call["mode"], (None, *MODES)):
            raise UserError(_("Unknown mode %s: use 'passthrough' or 'smart_router'.", short_repr(call["mode"])))
        quality = call["quality_required"]
        if quality is not None and not self._is_one_of(quality, dict(QUALITY_LEVELS)):
            raise UserError(_("quality_required must be low, medium or high, not %s.", short_repr(quality)))
        call["quality_given"], call["quality_required"] = quality, strictest_quality(quality)
        max_tokens = call["max_tokens"]
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0:
            raise UserError(_("max_tokens must be a positive integer, not %s.", short_repr(max_tokens)))
        temperature = call["temperature"]
        if temperature is not None and not (self._is_number(temperature) and 0 <= temperature <= 2):
            raise UserError(_("temperature must be a number between 0 and 2, not %s.", short_repr(temperature)))
        budget = call["max_budget_usd"]
        if budget is not None and not (self._is_number(budget) and math.isfinite(budget) and budget >= 0):
            raise UserError(_("max_budget_usd must be a positive number, not %s.", short_repr(budget)))
        if not isinstance(call["use_cache"], bool):
            raise UserError(_("use_cache must be True or False, not %s.", short_repr(call["use_cache"])))
        try:
            call["task_type"] = check_code(call["task_type"], "task_type")
            for name in ("operation", "session_id"):
                call[name] = check_label(call[name], name)
            call["res_model"] = check_model_name(call["res_model"], "res_model")
        except ValueError as error:
            raise UserError(str(error)) from None
        self._validate_record_reference(call)
        call["mode"] = call["mode"] or self.env.company.ai_default_mode or "passthrough"

    def _validate_record_reference(self, call):
        """res_model/res_id name an Odoo record: a model name and a positive id, or nothing."""
        _ = self.env._
        res_model, res_id = call["res_model"], call["res_id"]
        if res_id is None or res_id is False:
            call["res_id"] = None
            return
        if isinstance(res_id, bool) or not isinstance(res_id, int) or not 0 < res_id <= MAX_RECORD_ID:
            raise UserError(_("res_id must be the id of a record (a positive integer), not %s.", short_repr(res_id)))
        if not res_model:
            raise UserError(_("res_id %s needs res_model, the model of the record.", res_id))

    @staticmethod
    def _is_one_of(value, choices):
        """Membership that tolerates unhashable junk (lists, dicts) instead of raising TypeError."""
        return (value is None or isinstance(value, str)) and value in choices

    @staticmethod
    def _is_number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)

    def _resolve_provider(self, call):
        """The given provider (record or id) or the company's default; it must be usable."""
        _ = self.env._
        Provider = self.env["ai.service.provider"].sudo()
        given = call["provider"]
        if isinstance(given, models.BaseModel) and given._name == Provider._name:
            provider = given.sudo()
        elif isinstance(given, int) and not isinstance(given, bool) and 0 < given <= MAX_RECORD_ID:
            provider = Provider.browse(given).exists()
        elif isinstance(given, int) and not isinstance(given, bool):
            provider = Provider
        elif given is None:
            provider = self.env.company.ai_default_provider_id.sudo() or Provider.search(
                [("company_id", "=", self.env.company.id)], limit=1
            )
        else:
            raise UserError(_("provider must be an ai.service.provider record or id, not %s.", short_repr(given)))
        if len(provider) != 1:
            raise UserError(
                _("Unknown AI provider %s.", short_repr(given))
                if given is not None
                else _(
                    "No AI provider is configured for %s. Add one in AI Cost > Configuration > Providers.",
                    self.env.company.name,
                )
            )
        if not self._is_users_company(provider.company_id):
            # Not kept on the call: the failed call is recorded in the caller's company, not in theirs.
            raise UserError(_("The AI provider '%s' belongs to another company.", provider.name))
        call["provider"] = provider
        if not provider.active:
            raise UserError(_("The AI provider '%s' is archived.", provider.name))
        if call["max_tokens"] > provider.max_output_tokens:
            raise UserError(
                _(
                    "max_tokens %(asked)s exceeds the %(limit)s output tokens of '%(name)s'.",
                    asked=short_repr(call["max_tokens"]),
                    limit=provider.max_output_tokens,
                    name=provider.name,
                )
            )
        call["config"] = provider._client_config()

    def _estimate_tokens(self, call):
        estimate = count_message_tokens(call["messages"], call["provider"].model)
        call["estimate"] = estimate
        call["context_size_tokens"] = estimate.tokens
        call["prompt_hash"] = prompt_hash(call["messages"], call["provider"].model)

    def _lookup_response_cache(self, call):
        """Hook: a stored answer for this exact request, or None. Filled by the response cache."""
        return None

    def _recommend(self, call):
        """Hook: the optimizer's recommendation for this call (a dict), or None."""
        return None

    def _apply_recommendation(self, call):
        """Hook: switch call['provider'] to the recommendation when configured to."""
        call.setdefault("switched_from", False)

    def _check_budget(self, call):
        """Hook: check and reserve budgets; returns {'status': 'ok'|'warning'|'switched'|'blocked',
        'message': ...} or None when no budget applies. 'blocked' records the call and raises."""
        return None

    def _release_budget(self, call):
        """Hook: release the reservation of a call that failed."""

    def _call_provider(self, call):
        """Call call['provider'] with retries; sets result, price and cost_usd or raises ProviderError.
        Every failed attempt is recorded on the way (see `_record_failed_attempt`)."""
        provider = call["provider"]
        if call["estimate"].tokens > provider.context_window:
            # Refused before sending: the provider would reject it, maybe after billing it.
            raise ProviderError(
                "invalid_request",
                f"the prompt has about {call['estimate'].tokens} tokens, more than the "
                f"{provider.context_window}-token context window of {provider.model}",
            )
        result = clients.chat(
            call["config"],
            call["messages"],
            call["max_tokens"],
            call["temperature"],
            on_attempt_failed=lambda error: self._record_failed_attempt(call, error),
        )
        call["result"] = result
        price = call["provider"]._price_at(fields.Datetime.now())
        call["price"] = price
        call["cost_usd"] = pricing.compute_cost(result.usage, price._as_core_price()) if price else 0.0

    def _record_failed_attempt(self, call, error):
        """One 'error' row, without cost, per failed request sent to a provider: retries and
        fallbacks are accounted attempt by attempt, and the error is not recorded twice."""
        call["attempts"], call["failed_attempt"] = error.attempts, True
        try:
            self._record_usage(call, status="error", error=str(error))
        finally:
            call.pop("failed_attempt")
        call.setdefault("failed_attempts", []).append(error)

    def _record_usage(self, call, status, error=None):
        """Write the usage row in a transaction of its own: the money was spent even if the
        caller's transaction rolls back (see run_in_own_transaction for the transactions that keep
        it themselves). The post-call steps run in the same transaction, the rows they write in the
        same statement as the usage row (see ledger.py)."""
        return run_in_own_transaction(
            self.env, lambda ledger_cr: self._write_ledger(ledger_cr, call, status, error), LEDGER_CURSORS
        )

    def _write_ledger(self, ledger_cr, call, status, error):
        """Write the call's usage row and the rows that follow it on `ledger_cr`; returns its summary."""
        vals = self._usage_values(call, status, error)
        # allowed_company_ids spares a read of the user's companies on every call.
        ledger_env = self.env(cr=ledger_cr, su=True, context=dict(allowed_company_ids=[vals["company_id"]]))
        service = self.with_env(ledger_env)
        if status == "ok":
            service._before_usage(call, vals)
        ledger = LedgerStatement(ledger_env["ai.token.usage"], vals)
        service._add_usage_followers(call, ledger, status)
        ids = ledger.execute()
        usage = ledger_env["ai.token.usage"].browse(ids[USAGE_CTE])
        if status == "ok":
            service._after_usage(call, usage, ids)
        # The caller's snapshot may predate this commit, so it gets the figures, not the record.
        return self._usage_summary(call, usage.id, vals)

    def _before_usage(self, call, vals):
        """Hook: steps of a successful call that complete the values of its usage row before it is
        written, on the ledger transaction (the waste analysis: the row is then written once)."""

    def _add_usage_followers(self, call, ledger, status):
        """Hook: add to `ledger` (a LedgerStatement) the rows that follow the usage row of a call
        with `status`, written by the same statement: its rollups, and for a served call its benchmark
        (`_log_benchmark`, also for a failed attempt), its recommendation, its waste findings and its
        response-cache entry."""
        ledger.usage_model._add_ledger_rows(ledger)
        # A request that reached a provider, answered or failed, counts in its benchmarks (error rate).
        if (status == "ok" and call.get("result") is not None) or call.get("failed_attempt"):
            self._log_benchmark(call, ledger)

    def _after_usage(self, call, usage, ids):
        """Steps after the ledger statement of a successful call, on the ledger transaction: the waste
        analysis (unless made before the row was written) and the budget settle. `ids`: the ids of the
        rows the statement wrote, by part name (see LedgerStatement.execute)."""
        if "waste_report" not in call:
            call["waste_report"] = self._analyze_waste(usage)
        self._settle_budget(call, usage)

    def _log_benchmark(self, call, ledger):
        """Hook: add the call's provider performance row (ai.provider.benchmark) to `ledger`."""

    def _analyze_waste(self, usage):
        """Hook: run the waste rules on a usage row and fill its waste fields; returns a report or None."""
        return None

    def _settle_budget(self, call, usage):
        """Hook: replace the budget reservation with the actual cost."""

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------
    def _ledger_provider(self, call):
        """The provider a usage row may name: the call's provider once it is one provider of the
        caller's companies. Input that failed validation names none, so that a row never lands in
        another company's ledger."""
        provider = call.get("provider")
        if (
            isinstance(provider, models.BaseModel)
            and provider._name == "ai.service.provider"
            and len(provider) == 1
            and self._is_users_company(provider.sudo().company_id)
        ):
            return provider
        return None

    def _is_users_company(self, company):
        """Whether `company` is one of the current user's active companies. Odoo caches them per user:
        reading the user's company_ids instead would load every field of every company on each call."""
        return company.id in self.env.user._get_company_ids()

    def _usage_values(self, call, status, error):
        provider = self._ledger_provider(call)
        company = provider.company_id if provider else self.env.company
        result = call.get("result")
        estimate = call.get("estimate")
        messages = call["messages"] if isinstance(call["messages"], list) else []
        vals = {
            "user_id": self.env.uid,
            "company_id": company.id,
            "provider_id": provider.id if provider else False,
            "model": provider.model if provider else False,
            "mode": call["mode"] if self._is_one_of(call["mode"], MODES) else "passthrough",
            "operation": self._clean_str(call["operation"]),
            "res_model": self._clean_str(call["res_model"]),
            "res_id": self._clean_id(call["res_id"]),
            "session_id": self._clean_str(call["session_id"]),
            "task_type": self._clean_str(call["task_type"]) or "chat",
            "quality_required": call["quality_required"]
            if self._is_one_of(call["quality_required"], dict(QUALITY_LEVELS))
            else False,
            "status": status,
            "error_message": error and storable_text(error),
            "estimated_input_tokens": estimate.tokens if estimate else 0,
            "estimate_exact": estimate.exact if estimate else False,
            "context_size_tokens": call.get("context_size_tokens", 0),
            "prompt_hash": call.get("prompt_hash"),
            "switched_from_id": call["switched_from"].id if call.get("switched_from") else False,
            "switched": bool(call.get("switched_from")),
        }
        if all(isinstance(m, dict) for m in messages) and messages:
            vals["prompt_text"] = company._ai_retained_text(
                storable_text("\n\n".join(f"[{message.get('role')}] {message.get('content')}" for message in messages))
            )
        if result is not None:
            price = call.get("price")
            vals.update(
                input_tokens=result.usage.input_tokens,
                output_tokens=result.usage.output_tokens,
                cache_read_tokens=result.usage.cache_read_tokens,
                cache_write_tokens=result.usage.cache_write_tokens,
                usage_reported=result.usage_reported,
                latency_ms=result.latency_ms,
                attempts=result.attempts,
                cost_usd=call["cost_usd"],
                cost_unknown=not price,
                price_id=price.id if price else False,
                prompt_cache_savings_usd=self._prompt_cache_savings(result.usage, price),
                completion_text=company._ai_retained_text(storable_text(result.content)),
            )
        elif error and call.get("attempts"):
            vals["attempts"] = call["attempts"]
        # Stored and computed: the ledger statement writes it, no create() computes it.
        vals["total_tokens"] = vals.get("input_tokens", 0) + vals.get("output_tokens", 0)
        return vals

    @staticmethod
    def _clean_str(value, limit=256):
        """A parameter as it can be stored, even when it failed validation."""
        return storable_text(value[:limit]) if isinstance(value, str) and value else False

    @staticmethod
    def _clean_id(value):
        """A record id as it can be stored (0 when it is not one), even when it failed validation."""
        return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_RECORD_ID else 0

    @staticmethod
    def _prompt_cache_savings(usage, price):
        if not price or not usage.cache_read_tokens:
            return 0.0
        return usage.cache_read_tokens * (price.input_price - (price.cache_read_price or price.input_price)) / 1e6

    def _usage_summary(self, call, usage_id, vals):
        """The figures of the usage row, from the values it was written with."""
        provider = self._ledger_provider(call)
        return {
            "usage_id": usage_id,
            "provider_id": provider.id if provider else False,
            "provider_name": provider.name if provider else False,
            "model": vals.get("model"),
            "usage": {
                name: vals.get(name, 0)
                for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
            },
            "cost_usd": vals.get("cost_usd", 0.0),
            "cost_unknown": vals.get("cost_unknown", False),
            "latency_ms": vals.get("latency_ms", 0.0),
            "cache_hit": vals.get("cache_hit", False),
        }

    def _build_result(self, call, summary):
        return {
            **summary,
            "content": call["result"].content if call.get("result") else call.get("cached_content"),
            "recommendation": call.get("recommendation"),
            "switched_from": call["switched_from"].id if call.get("switched_from") else False,
            "budget": call.get("budget") or {"status": "ok"},
            "waste_report": call.get("waste_report"),
        }
