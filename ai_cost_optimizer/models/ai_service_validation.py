from dataclasses import replace

from odoo import models
from odoo.exceptions import UserError

from ..core import request
from ..core.messages import (
    check_code,
    check_label,
    check_model_name,
    prompt_hash,
    short_repr,
    validate_messages,
    validate_texts,
)
from ..core.recommendation import strictest_quality
from ..core.tokens import TokenEstimate, count_message_tokens, count_text_tokens
from ..core.tools import check_response_format, check_tool_choice, check_tools, tools_text
from .ai_service_provider import MAX_TOKENS

# Embeddings: texts per call.
MAX_EMBED_TEXTS = 10_000


class AiServiceValidation(models.AbstractModel):
    """The gateway's first steps: the request checked (bad input gets a clear UserError before anything is
    sent), the provider that answers resolved, and the prompt measured with its tokenizer."""

    _name = "ai.service.validation"
    _description = "AI Gateway: Request Checks"

    def _validate_request(self, call):
        """Check every parameter of a chat call (or the texts of an embedding call) and complete the
        defaults: the quality bar, the company's mode."""
        if call.kind == "embedding":
            self._validate_texts(call)
            return
        try:
            call.messages = validate_messages(call.messages)
        except ValueError as error:
            raise UserError(self.env._("Invalid messages: %s", error)) from None
        try:
            request.check_mode(call.mode)
            request.check_quality(call.quality_required)
            request.check_max_tokens(call.max_tokens, MAX_TOKENS)
            request.check_temperature(call.temperature)
            request.check_max_budget(call.max_budget_usd)
            request.check_flag("use_cache", call.use_cache)
            request.check_flag("single_attempt", call.single_attempt)
            call.tools = check_tools(call.tools)
            call.tool_choice = check_tool_choice(call.tool_choice, call.tools)
            call.response_format = check_response_format(call.response_format, call.tools)
        except ValueError as error:
            raise UserError(str(error)) from None
        call.quality_given, call.quality_required = call.quality_required, strictest_quality(call.quality_required)
        self._validate_labels(call)
        call.mode = call.mode or self.env["res.company"]._ai_gateway_settings(self.env.company.id).default_mode

    def _validate_texts(self, call):
        try:
            call.messages = validate_texts(call.messages, MAX_EMBED_TEXTS)
        except ValueError as error:
            raise UserError(self.env._("Invalid texts: %s", error)) from None
        self._validate_labels(call)

    def _validate_labels(self, call):
        """What the call is about: task type, operation, session and record, checked as every kind of call
        gives them."""
        try:
            call.task_type = check_code(call.task_type, "task_type")
            call.operation = check_label(call.operation, "operation")
            call.session_id = check_label(call.session_id, "session_id")
            call.res_model = check_model_name(call.res_model, "res_model")
            call.res_id = request.check_record_reference(call.res_model, call.res_id)
        except ValueError as error:
            raise UserError(str(error)) from None

    def _resolve_provider(self, call):
        """The given provider (record or id) or the company's default; it must be usable, and serve
        embeddings for an embedding call."""
        _ = self.env._
        # A call that names no provider may be routed by an A/B experiment even in passthrough mode.
        call.provider_given = call.provider is not None
        Provider = self.env["ai.service.provider"].sudo()
        given = call.provider
        if isinstance(given, models.BaseModel) and given._name == Provider._name:
            provider = given.sudo()
        elif request.is_record_id(given):
            provider = Provider.browse(given).exists()
        elif isinstance(given, int) and not isinstance(given, bool):
            provider = Provider
        elif given is None:
            provider = self._default_provider()
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
        if not self._is_users_company(provider._gateway_profile().company_id):
            # Not kept on the call: the failed call is recorded in the caller's company, not in theirs.
            raise UserError(_("The AI provider '%s' belongs to another company.", provider.name))
        self._use_provider(call, provider)
        if not call.profile.active:
            raise UserError(_("The AI provider '%s' is archived.", provider.name))
        if call.kind == "embedding":
            self._check_embedding_provider(call)
        elif not provider._serves_max_tokens(call.max_tokens):
            raise UserError(
                _(
                    "max_tokens %(asked)s exceeds the %(limit)s output tokens of '%(name)s'.",
                    asked=short_repr(call.max_tokens),
                    limit=provider.max_output_tokens,
                    name=provider.name,
                )
            )
        call.config = provider._client_config()
        if call.single_attempt:
            call.config = replace(call.config, max_retries=0)

    def _use_provider(self, call, provider):
        """Make `provider` the one that answers the call, with what every step reads of it and of its company
        (cached: see ai.service.provider's _gateway_profile and res.company's _ai_gateway_settings)."""
        call.provider = provider
        call.profile = provider._gateway_profile()
        call.settings = self.env["res.company"]._ai_gateway_settings(call.profile.company_id)

    def _default_provider(self):
        """The company's default provider, else its first one."""
        company_id = self.env.company.id
        Provider = self.env["ai.service.provider"].sudo()
        default_id = self.env["res.company"]._ai_gateway_settings(company_id).default_provider_id
        if default_id:
            return Provider.browse(default_id)
        return Provider.search([("company_id", "=", company_id)], limit=1)

    def _check_embedding_provider(self, call):
        if call.provider.kind != "openai_compatible":
            raise UserError(self.env._(
                "The AI provider '%s' serves no embeddings: use an OpenAI-compatible provider of an embedding "
                "model (OpenAI, Mistral, Gemini's OpenAI endpoint, Ollama).", call.provider.name,
            ))

    def _estimate_tokens(self, call):
        """The prompt's tokens with the provider's tokenizer: the messages and the tool definitions
        (or the reply's schema), which the provider reads as part of the prompt; an embedding call's
        texts, one count per text (its requests are batched by tokens)."""
        model = call.profile.model
        if call.kind == "embedding":
            counts = [count_text_tokens(text, model) for text in call.messages]
            call.text_tokens = [count.tokens for count in counts]
            call.estimate = TokenEstimate(sum(call.text_tokens), all(c.exact for c in counts), counts[0].encoding)
            call.context_size_tokens = call.estimate.tokens
            return
        estimate = count_message_tokens(call.messages, model)
        definitions = tools_text(call.tools, call.response_format)
        if definitions:
            estimate = TokenEstimate(estimate.tokens + count_text_tokens(definitions, model).tokens,
                                     estimate.exact, estimate.encoding)
        call.estimate = estimate
        call.context_size_tokens = estimate.tokens
        # Tools and a reply schema are part of the request: without them, the prompt hashes as it always did.
        extras = {name: getattr(call, name) for name in ("tools", "tool_choice", "response_format")
                  if getattr(call, name) is not None}
        call.prompt_hash = prompt_hash(call.messages, model, extras or None)

    def _is_users_company(self, company_id):
        """Whether the company `company_id` is one of the current user's active companies. Odoo caches them
        per user: reading the user's company_ids instead would load every field of every company on each call."""
        return company_id in self.env.user._get_company_ids()
