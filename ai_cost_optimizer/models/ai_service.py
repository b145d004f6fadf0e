import math
from dataclasses import replace

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..core import clients, pricing
from ..core.call import GatewayCall, GatewayStream
from ..core.clients import ChatResult, ProviderError
from ..core.complexity import score_prompt
from ..core.messages import (
    batches,
    check_code,
    check_label,
    check_model_name,
    prompt_hash,
    short_repr,
    storable_text,
    validate_messages,
    validate_texts,
)
from ..core.recommendation import strictest_quality
from ..core.response_cache import cache_key, is_cacheable
from ..core.tokens import TokenEstimate, count_message_tokens, count_text_tokens
from ..core.tools import check_response_format, check_tool_choice, check_tools, parse_structured, tools_text
from ..core.usage import Usage
from ..exceptions import AiBudgetExceeded, AiInvalidReply, AiProviderError
from ..kept_cursors import references_of, run_in_own_transaction
from ..ledger import LedgerStatement
from .ai_service_provider import MAX_TOKENS
from .ai_token_usage import QUALITY_LEVELS
from .ai_token_waste_finding import CALL_FIELDS, WASTE_FIELDS

MODES = ("passthrough", "smart_router")
MAX_RECORD_ID = 2**31 - 1  # PostgreSQL integer ids
# Errors every provider would give for the same request: falling back would only spend more.
NO_FALLBACK_KINDS = frozenset({"invalid_request"})
# Embeddings: texts per call, and per request (a provider's limit is 2048 inputs and some 300k tokens).
MAX_EMBED_TEXTS = 10_000
EMBED_BATCH_TEXTS = 256
EMBED_BATCH_TOKENS = 100_000
# The parameters of a call, send_message's after the messages: stream_message takes the same.
CALL_PARAMETERS = (
    "provider", "task_type", "quality_required", "mode", "max_tokens", "temperature", "operation", "res_model",
    "res_id", "session_id", "max_budget_usd", "use_cache", "tools", "tool_choice", "response_format", "single_attempt",
)


class AiService(models.AbstractModel):
    """The gateway every LLM call of Odoo goes through.

    `send_message` runs a pipeline of small overridable steps, each reading and completing one
    `call` (core.call.GatewayCall), so other modules can hook in with `super()`: validation, token estimate,
    response cache, recommendation and routing (smart router, auto-switch, A/B arms), budget
    reservation, provider call with fallback, then the ledger (the usage row, which is also the call's
    benchmark sample, and its waste analysis) and the budget settle.
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
        tools=None,
        tool_choice=None,
        response_format=None,
        single_attempt=False,
    ):
        """Send `messages` to an LLM provider, tracking tokens, cost, budget and waste.

        Returns a dict: content, provider_id, provider_name, model, usage, usage_estimated, cost_usd,
        latency_ms, cache_hit, usage_id, recommendation, switched_from, budget, waste_report, tool_calls
        and parsed.
        quality_required (low, medium, high) is the least quality the answer needs: medium when not
        given; in smart_router mode the prompt's complexity may raise it, never lower a given one.
        tools (`[{'name', 'description', 'parameters': JSON schema}]`) and tool_choice ('auto', 'none',
        'required' or `{'name': tool}`) offer tools: the model's calls come back in `tool_calls`,
        `[{'id', 'name', 'arguments': dict}]`; messages may carry an assistant's `tool_calls` and `tool`
        messages with the results (`{'role': 'tool', 'tool_call_id', 'content'}`). response_format (a JSON
        schema of an object) asks for a structured reply: `parsed` holds its object, and a reply that does
        not parse raises AiInvalidReply, recorded with its cost. single_attempt sends one request to the
        given provider and to no other: no retry, no switch and no fallback (a provider's Test connection).
        Raises UserError (AiProviderError, AiBudgetExceeded) with a clear message; every
        call, failed or refused ones included, leaves a usage row.
        """
        call = GatewayCall(
            messages, provider=provider, task_type=task_type, quality_required=quality_required, mode=mode,
            max_tokens=max_tokens, temperature=temperature, operation=operation, res_model=res_model, res_id=res_id,
            session_id=session_id, max_budget_usd=max_budget_usd, use_cache=use_cache, tools=tools,
            tool_choice=tool_choice, response_format=response_format, single_attempt=single_attempt,
        )
        cached = self._prepare_call(call)
        if cached:
            call.parsed = self._parsed_reply(call)
            return self._build_result(call, cached)
        self._serve_call(call)
        return self._build_result(call, self._record_answer(call))

    @api.model
    def stream_message(self, messages, **parameters):
        """Send `messages` as send_message does (the same parameters) and stream the answer: returns a
        GatewayStream, an iterator of text chunks whose `result`, once it is exhausted or closed, is
        send_message's dict (plus `first_chunk_ms`).

            with env['ai.service'].stream_message(messages, operation='chat_reply') as stream:
                for chunk in stream:
                    ...
            stream.result['cost_usd']

        The budget is reserved before the request goes out and settled when the stream ends. A stream
        closed early, or broken mid-way (AiProviderError raised by the iteration), is recorded all the
        same, with the provider's usage when it came, else tiktoken's count of the request and of the
        text received (`usage_estimated`). The response cache does not answer streams.
        """
        unknown = sorted(set(parameters) - set(CALL_PARAMETERS))
        if unknown:
            raise UserError(
                self.env._("stream_message takes send_message's parameters; unknown: %s.", ", ".join(unknown))
            )
        call = GatewayCall(messages, stream=True, **parameters)
        self._prepare_call(call)
        self._serve_call(call)
        stream = GatewayStream()
        stream.bind(self._stream_chunks(call, stream), lambda: self._end_stream(call))
        return stream

    @api.model
    def embed(self, texts, provider=None, operation=None, res_model=None, res_id=None, session_id=None):
        """The embedding vectors of `texts` (a list of strings), one per text in order, through the
        `/embeddings` endpoint of an OpenAI-compatible provider (None: the company's default one).

        Long lists go out in batches; the call leaves one usage row of kind 'embedding', its tokens the
        provider's count, priced by genai-prices (cost unknown for an unpriced model), held against the
        budgets of its scope and settled like a chat call. Never re-routed: vectors of another model would
        not compare. Returns send_message's figures (usage_id, provider_id, provider_name, model, usage,
        usage_estimated, cost_usd, cost_unknown, latency_ms, budget) and `vectors`.
        """
        call = GatewayCall(
            texts, provider=provider, task_type="embedding", mode="passthrough", max_tokens=0, operation=operation,
            res_model=res_model, res_id=res_id, session_id=session_id, kind="embedding",
        )
        try:
            self._validate_embedding_request(call)
            self._resolve_provider(call)
            self._check_embedding_provider(call)
        except UserError as error:
            self._record_usage(call, status="error", error=str(error))
            raise
        counts = [count_text_tokens(text, call.provider.model) for text in call.messages]
        call.estimate = TokenEstimate(sum(c.tokens for c in counts), all(c.exact for c in counts), counts[0].encoding)
        call.context_size_tokens = call.estimate.tokens
        self._reserve_budget(call)
        self._call_embedding_provider(call, [count.tokens for count in counts])
        summary = self._record_usage(call, status="ok")
        return {**summary, "vectors": call.vectors, "budget": call.budget}

    def _validate_embedding_request(self, call):
        try:
            call.messages = validate_texts(call.messages, MAX_EMBED_TEXTS)
        except ValueError as error:
            raise UserError(self.env._("Invalid texts: %s", error)) from None
        self._validate_labels(call)

    def _check_embedding_provider(self, call):
        if call.provider.kind != "openai_compatible":
            raise UserError(self.env._(
                "The AI provider '%s' serves no embeddings: use an OpenAI-compatible provider of an embedding "
                "model (OpenAI, Mistral, Gemini's OpenAI endpoint, Ollama).", call.provider.name,
            ))

    def _call_embedding_provider(self, call, tokens):
        """Embed call.messages batch by batch; sets vectors, result (the batches' usage summed) and cost. A
        failure releases the reservation, or, once batches were paid for, records their cost as an error
        and settles it; it raises AiProviderError."""
        vectors, usage, latency, reported, attempts = [], 0, 0.0, True, 0
        for batch in batches(call.messages, tokens, EMBED_BATCH_TEXTS, EMBED_BATCH_TOKENS):
            try:
                result = clients.embed(
                    call.config, batch, on_attempt_failed=lambda error: self._record_failed_attempt(call, error)
                )
            except ProviderError as error:
                message = self._provider_failure_message(call, error)
                if not vectors:
                    self._release_budget(call)
                    raise AiProviderError(message) from None
                self._set_embedding_result(call, usage, latency, reported, attempts)
                self._record_usage(call, status="error", error=self.env._(
                    "%(done)s of %(count)s texts embedded, then: %(error)s",
                    done=len(vectors), count=len(call.messages), error=error,
                ))
                raise AiProviderError(message) from None
            vectors += result.vectors
            usage += result.usage.input_tokens
            latency += result.latency_ms
            reported = reported and result.usage_reported
            attempts += result.attempts
        call.vectors = vectors
        self._set_embedding_result(call, usage, latency, reported, attempts)

    def _set_embedding_result(self, call, tokens, latency_ms, usage_reported, attempts):
        call.result = ChatResult(
            content="", usage=Usage(input_tokens=tokens), model=call.provider.model, latency_ms=latency_ms,
            attempts=attempts, usage_reported=usage_reported,
        )
        self._price_result(call)

    def _reserve_budget(self, call):
        """Check the call's budgets and hold its estimated cost; a blocked call is recorded and raises
        AiBudgetExceeded."""
        call.budget = self._check_budget(call) or {"status": "ok"}
        if call.budget["status"] == "blocked":
            self._record_usage(call, status="blocked", error=call.budget.get("message"))
            raise AiBudgetExceeded(call.budget.get("message") or self.env._("A budget refused this AI call."))

    def _prepare_call(self, call):
        """The steps before the provider call: validation, token estimate, response cache, routing and
        budget reservation. Returns the summary of a response-cache hit, else None; raises a UserError
        (AiBudgetExceeded for a blocked call), recorded, for a call that must not go out."""
        try:
            self._validate_request(call)
            self._resolve_provider(call)
        except UserError as error:
            self._record_usage(call, status="error", error=str(error))
            raise
        self._estimate_tokens(call)
        cached = self._lookup_response_cache(call)
        if cached:
            return cached
        call.recommendation = self._recommend(call)
        self._apply_recommendation(call)
        self._reserve_budget(call)
        return None

    def _serve_call(self, call):
        """The provider call; a call no provider served releases its budget reservation, is recorded and
        raises AiProviderError."""
        try:
            self._call_provider(call)
        except ProviderError as error:
            self._release_budget(call)
            if error not in call.failed_attempts:
                self._record_usage(call, status="error", error=str(error))
            raise AiProviderError(self._provider_failure_message(call, error)) from None

    def _record_answer(self, call):
        """Record the provider's answer and return its summary. A structured reply that does not parse is
        recorded as an error with its cost (the provider was paid) and raises AiInvalidReply."""
        try:
            call.parsed = self._parsed_reply(call)
        except ValueError as error:
            message = self.env._("The AI provider '%(name)s' gave no valid structured reply: %(error)s",
                                 name=call.provider.name, error=error)
            self._record_usage(call, status="error", error=message)
            raise AiInvalidReply(message) from None
        return self._record_usage(call, status="ok")

    def _parsed_reply(self, call):
        """The object of a structured reply (response_format), None for other calls; ValueError when it
        does not parse."""
        if call.response_format is None:
            return None
        return parse_structured(call.content, call.response_format)

    def _stream_chunks(self, call, stream):
        """Yield the chunks of the call's opened stream, then record the call and set `stream.result`:
        when the stream ends, breaks (AiProviderError) or is closed early (a GeneratorExit here)."""
        try:
            yield from call.stream_reader
        except ProviderError as error:
            stream.result = self._end_stream(call, error)
            raise AiProviderError(self._provider_failure_message(call, error)) from None
        finally:
            if stream.result is None:
                stream.result = self._end_stream(call)

    def _end_stream(self, call, error=None):
        """Record a stream that ended (`error`: the ProviderError that broke it) and settle its budget; returns
        the call's result. What came is priced: the provider's usage, or tiktoken's count where it sent none.
        Once only: a stream whose end raised (a structured reply that does not parse) and is closed after
        that is recorded already (None)."""
        reader, call.stream_reader = call.stream_reader, None
        if reader is None:
            return None
        reader.close()
        complete = error is None and reader.progress.complete
        try:
            call.result = reader.result(parse_tools=complete)
        except ProviderError as malformed:
            error, call.result = malformed, reader.result(parse_tools=False)
        self._price_result(call)
        if error is not None:
            chunks = len(reader.progress.chunks)
            message = self.env._("%(error)s Chunks received: %(count)s.", count=chunks, error=error)
            summary = self._record_usage(call, status="error", error=message)
        elif complete:
            summary = self._record_answer(call)
        else:
            # Closed by its consumer: an answer cut short, not a failure.
            summary = self._record_usage(call, status="ok")
        return {**self._build_result(call, summary), "first_chunk_ms": reader.first_chunk_ms}

    # ------------------------------------------------------------------
    # Pipeline steps
    # ------------------------------------------------------------------
    def _validate_request(self, call):
        """Check every parameter, so that bad input gets a clear UserError before anything is sent."""
        _ = self.env._
        try:
            call.messages = validate_messages(call.messages)
        except ValueError as error:
            raise UserError(_("Invalid messages: %s", error)) from None
        if not self._is_one_of(call.mode, (None, *MODES)):
            raise UserError(_("Unknown mode %s: use 'passthrough' or 'smart_router'.", short_repr(call.mode)))
        quality = call.quality_required
        if quality is not None and not self._is_one_of(quality, dict(QUALITY_LEVELS)):
            raise UserError(_("quality_required must be low, medium or high, not %s.", short_repr(quality)))
        call.quality_given, call.quality_required = quality, strictest_quality(quality)
        max_tokens = call.max_tokens
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0:
            raise UserError(_("max_tokens must be a positive integer, not %s.", short_repr(max_tokens)))
        if max_tokens > MAX_TOKENS:
            # A provider's output limit may be unknown; no model answers this many tokens.
            raise UserError(_("max_tokens %(asked)s exceeds %(limit)s, more than any model answers.",
                              asked=short_repr(max_tokens), limit=MAX_TOKENS))
        temperature = call.temperature
        if temperature is not None and not (self._is_number(temperature) and 0 <= temperature <= 2):
            raise UserError(_("temperature must be a number between 0 and 2, not %s.", short_repr(temperature)))
        budget = call.max_budget_usd
        if budget is not None and not (self._is_number(budget) and math.isfinite(budget) and budget >= 0):
            raise UserError(_("max_budget_usd must be a positive number, not %s.", short_repr(budget)))
        for flag in ("use_cache", "single_attempt"):
            if not isinstance(getattr(call, flag), bool):
                raise UserError(_("%(flag)s must be True or False, not %(value)s.",
                                  flag=flag, value=short_repr(getattr(call, flag))))
        try:
            call.tools = check_tools(call.tools)
            call.tool_choice = check_tool_choice(call.tool_choice, call.tools)
            call.response_format = check_response_format(call.response_format, call.tools)
        except ValueError as error:
            raise UserError(str(error)) from None
        self._validate_labels(call)
        call.mode = call.mode or self.env.company.ai_default_mode or "passthrough"

    def _validate_labels(self, call):
        """What the call is about: task type, operation, session and record, checked as every kind of call
        gives them."""
        try:
            call.task_type = check_code(call.task_type, "task_type")
            call.operation = check_label(call.operation, "operation")
            call.session_id = check_label(call.session_id, "session_id")
            call.res_model = check_model_name(call.res_model, "res_model")
        except ValueError as error:
            raise UserError(str(error)) from None
        self._validate_record_reference(call)

    def _validate_record_reference(self, call):
        """res_model/res_id name an Odoo record: a model name and a positive id, or nothing."""
        _ = self.env._
        res_model, res_id = call.res_model, call.res_id
        if res_id is None or res_id is False:
            call.res_id = None
            return
        if isinstance(res_id, bool) or not isinstance(res_id, int) or not 0 < res_id <= MAX_RECORD_ID:
            raise UserError(_("res_id must be the id of a record (a positive integer), not %s.", short_repr(res_id)))
        if not res_model:
            raise UserError(_("res_id %s needs res_model, the model of the record.", res_id))

    def _resolve_provider(self, call):
        """The given provider (record or id) or the company's default; it must be usable."""
        _ = self.env._
        # A call that names no provider may be routed by an A/B experiment even in passthrough mode.
        call.provider_given = call.provider is not None
        Provider = self.env["ai.service.provider"].sudo()
        given = call.provider
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
        call.provider = provider
        if not provider.active:
            raise UserError(_("The AI provider '%s' is archived.", provider.name))
        if not provider._serves_max_tokens(call.max_tokens):
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

    def _estimate_tokens(self, call):
        """The prompt's tokens with the provider's tokenizer: the messages and the tool definitions
        (or the reply's schema), which the provider reads as part of the prompt."""
        model = call.provider.model
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

    def _lookup_response_cache(self, call):
        """A stored answer for this exact request, or None. A hit records a usage row with cache_hit,
        cost 0 and the original cost as the saving, and returns its summary."""
        if not self._response_cacheable(call):
            return None
        answer = self.env["ai.response.cache"].sudo()._lookup(call.provider.company_id, self._response_key(call))
        if not answer:
            return None
        call.cached_answer = answer
        return self._record_usage(call, status="ok")

    def _recommend(self, call):
        """Score the prompt's complexity (smart_router: it sets the quality bar) and ask the optimizer
        which provider it would pick; passthrough calls record it too (the wrong_model waste rule).
        Returns the recommendation (a dict), or None for a task type the optimizer cannot price."""
        model = call.provider.model
        call.complexity = score_prompt(call.messages, lambda text: count_text_tokens(text, model).tokens)
        if call.mode == "smart_router":
            # The complexity sets the bar of a call that gave none, and may raise a given one.
            call.quality_required = strictest_quality(call.quality_given, call.complexity.quality_level)
        if call.task_type not in self.env["ai.task.type"]._output_figures():
            return None
        # Stored with the usage row of a served call (_add_usage_followers), not for refused ones.
        return (
            self.env["ai.cost.optimizer"]
            .with_company(call.provider.company_id)
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
        if call.switched_from:
            return
        may_reroute = self._may_reroute(call)
        target = self._ab_target(call) if may_reroute or not call.provider_given else None
        if not target and may_reroute:
            target = self._recommended_target(call)
        if target and target != call.provider and target._serves_max_tokens(call.max_tokens):
            self._switch_provider(call, target)

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

    def _call_provider(self, call):
        """Call call.provider with retries; sets result, price and cost_usd or raises ProviderError.
        When the provider fails after its retries, move on to the next qualifying alternative of the
        recommendation (when the company falls back, see `_may_fall_back`). Every failed attempt keeps
        its own usage row (see `_record_failed_attempt`); call.provider_failures lists each provider
        tried that failed, with its last error, in order (send_message's error names them all)."""
        failures = call.provider_failures
        while True:
            provider = call.provider
            try:
                if not provider._fits_context(call.estimate.tokens):
                    # Refused before sending: the provider would reject it, maybe after billing it.
                    raise ProviderError(
                        "invalid_request",
                        f"the prompt has about {call.estimate.tokens} tokens, more than the "
                        f"{provider.context_window}-token context window of {provider.model}",
                    )
                send = clients.open_stream if call.stream else clients.chat
                request = clients.ChatRequest(
                    messages=call.messages,
                    max_tokens=call.max_tokens,
                    temperature=call.temperature,
                    tools=call.tools,
                    tool_choice=call.tool_choice,
                    response_format=call.response_format,
                )
                response = send(
                    call.config, request, on_attempt_failed=lambda error: self._record_failed_attempt(call, error)
                )
            except ProviderError as error:
                failures.append((provider, error))
                if not self._fall_back(call, error):
                    raise
                continue
            if call.stream:
                # Priced when it ends (_end_stream): only then are its tokens known.
                call.stream_reader = response
                return
            call.result = response
            self._price_result(call)
            return

    def _price_result(self, call):
        """Price call.result with its provider's price version in force now, the call's time (cost unknown
        without one)."""
        now = fields.Datetime.now()
        price = call.provider._price_at(now)
        call.price = price
        call.cost_usd = pricing.call_cost(call.result.usage, price._as_core_price(), now) if price else 0.0

    def _record_failed_attempt(self, call, error):
        """One 'error' row, without cost, per failed request sent to a provider: retries and
        fallbacks are accounted attempt by attempt, and the error is not recorded twice."""
        call.attempts, call.failed_attempt = error.attempts, True
        try:
            self._record_usage(call, status="error", error=str(error))
        finally:
            call.failed_attempt = False
        call.failed_attempts.append(error)

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
        # Through create(): other modules' fields, computes and overrides apply to the gateway's rows.
        usage = ledger_env["ai.token.usage"].create(vals)
        ledger = LedgerStatement(usage, vals)
        service._add_usage_followers(call, ledger, status)
        ids = ledger.execute()
        # A call the provider answered, and was paid for, settles its budget even when its answer is an
        # error (a broken stream, a structured reply that does not parse).
        if status == "ok" or call.result is not None:
            service._after_usage(call, usage, ids)
        # The caller's snapshot may predate this commit, so it gets the figures, not the record.
        return self._usage_summary(call, usage.id, vals)

    def _usage_values(self, call, status, error):
        """The values of the call's usage row: the request, the answer and its cost (a response-cache
        hit costs nothing and records the original cost as saved), the prompt's waste facts, and the
        routing (recommendation, complexity, A/B arm)."""
        provider = self._ledger_provider(call)
        company = provider.company_id if provider else self.env.company
        result = call.result
        estimate = call.estimate
        messages = call.messages if isinstance(call.messages, list) else []
        vals = {
            "kind": call.kind,
            "user_id": self.env.uid,
            "company_id": company.id,
            "provider_id": provider.id if provider else False,
            "model": provider.model if provider else False,
            "mode": call.mode if self._is_one_of(call.mode, MODES) else "passthrough",
            "operation": self._clean_str(call.operation),
            "res_model": self._clean_str(call.res_model),
            "res_id": self._clean_id(call.res_id),
            "session_id": self._clean_str(call.session_id),
            "task_type": self._clean_str(call.task_type) or "chat",
            "quality_required": call.quality_required
            if self._is_one_of(call.quality_required, dict(QUALITY_LEVELS))
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
                storable_text("\n\n".join(f"[{message.get('role')}] {message.get('content')}" for message in messages))
            )
        if result is not None:
            price = call.price
            vals.update(
                input_tokens=result.usage.input_tokens,
                output_tokens=result.usage.output_tokens,
                cache_read_tokens=result.usage.cache_read_tokens,
                cache_write_tokens=result.usage.cache_write_tokens,
                cache_write_1h_tokens=result.usage.cache_write_1h_tokens,
                usage_reported=result.usage_reported,
                latency_ms=result.latency_ms,
                attempts=result.attempts,
                cost_usd=call.cost_usd,
                cost_unknown=not price,
                price_id=price.id if price else False,
                prompt_cache_savings_usd=self._prompt_cache_savings(result.usage, price),
                completion_text=company._ai_retained_text(storable_text(result.content)),
            )
        elif error and call.attempts:
            vals["attempts"] = call.attempts
        answer = call.cached_answer
        if answer:
            vals.update(
                cache_hit=True, cost_usd=0.0, cache_savings_usd=answer["cost_usd"], latency_ms=0.0,
                completion_text=company._ai_retained_text(answer["content"]),
            )
        elif status == "ok" and result is not None and call.kind == "chat":
            vals.update(self.env["ai.token.waste.finding"]._waste_facts(
                call.messages, call.provider.model, tools_text(call.tools, call.response_format)
            ))
        # The optimizer's verdict for this call: what the wrong_model waste rule compares against.
        recommendation = call.recommendation or {}
        complexity = call.complexity
        vals.update(
            recommended_provider_id=recommendation.get("provider_id") or False,
            recommended_cost_usd=recommendation.get("estimated_cost") or 0.0,
            complexity=complexity.level if complexity else False,
            ab_arm_id=call.ab_arm_id or False,
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
        price = call.price or self.env["ai.service.provider.price"]
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
                self._response_key(call), call.provider.company_id, ledger.usage.id, ledger.vals, call.result.content
            )
            if entry:
                ledger.add("response_cache", entry)
        if call.recommendation:
            vals = self.env["ai.cost.optimizer"]._recommendation_values(
                call.recommendation, call.task_type, call.context_size_tokens, call.quality_required,
                call.max_budget_usd,
            )
            ledger.add_insert("recommendation", self.env["ai.cost.recommendation"], vals)

    def _after_usage(self, call, usage, ids):
        """Steps after the ledger statement of a successful call, on the ledger transaction: the budget
        settle. `ids`: the ids of the rows the statement wrote, by part name (see LedgerStatement.execute)."""
        if "recommendation" in ids:
            call.recommendation["recommendation_id"] = ids["recommendation"]
        self._settle_budget(call, usage)

    def _analyze_waste(self, usage):
        """Run the waste rules on stored calls of providers with waste detection and fill their waste
        fields; returns the report of the last one, or None."""
        report = None
        Finding = self.env["ai.token.waste.finding"].sudo()
        for row in usage.sudo().filtered(lambda row: row.provider_id._waste_detection_enabled()):
            report = Finding._analyze_usage(row)
        return report

    def _settle_budget(self, call, usage):
        """Replace the budget reservation with the actual cost."""
        if call.budget_periods:
            periods = self.env["ai.cost.budget.period"].sudo().browse(call.budget_periods)
            # The call's cost as the ledger statement wrote it: reading the row back would cost a query.
            reservations, call.budget_reservations = call.budget_reservations, []
            periods._settle(reservations, call.cost_usd)

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------
    @staticmethod
    def _is_one_of(value, choices):
        """Membership that tolerates unhashable junk (lists, dicts) instead of raising TypeError."""
        return (value is None or isinstance(value, str)) and value in choices

    @staticmethod
    def _is_number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)

    def _is_users_company(self, company):
        """Whether `company` is one of the current user's active companies. Odoo caches them per user:
        reading the user's company_ids instead would load every field of every company on each call."""
        return company.id in self.env.user._get_company_ids()

    def _response_cacheable(self, call):
        # A stream is read as it comes, and tool calls are not stored: neither is answered from the cache.
        return (
            call.provider.company_id.ai_response_cache
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
                call.provider.model, call.messages, call.max_tokens, call.temperature, call.response_format
            )
        return call.response_key

    def _may_reroute(self, call):
        """Whether the gateway may send this call elsewhere than the given provider."""
        if call.single_attempt:
            return False
        if call.mode == "smart_router":
            return True
        provider, company = call.provider, call.provider.company_id
        return (provider.enable_cost_optimization or company.ai_enable_cost_optimization) and (
            provider.auto_switch_provider or company.ai_auto_switch_provider
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
            call.task_type, self.env.user, call.provider.company_id
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
        call.provider = target
        call.config = target._client_config()
        self._estimate_tokens(call)

    def _switch_to_cheapest(self, call):
        """Move the call to the cheapest qualifying provider (a budget's auto-switch); False when the
        optimizer recommends nothing cheaper than the current provider, and for an embedding call, whose
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
        call.provider = provider
        call.config = provider._client_config()
        call.switched_from = call.switched_from or current
        call.budget_switch = recommendation
        return True

    def _fall_back(self, call, error):
        """Move the call to the next provider that may serve it, with its budget reservation: the
        budgets of the failed provider's scope are released, those of the new one's checked and
        reserved. A provider its budgets refuse is skipped. False when no provider is left."""
        skip = [provider for provider, _error in call.provider_failures]
        released = False
        while True:
            target = self._fallback_target(call, error, skip)
            if not target:
                return False
            if not released:
                self._release_budget(call)
                call.budget_periods = []
                released = True
            moved = replace(call)
            self._switch_provider(moved, target)
            budget = self._check_budget(moved) or {"status": "ok"}
            if budget["status"] != "blocked":
                moved.budget = budget
                vars(call).update(vars(moved))
                return True
            skip.append(target)

    def _may_fall_back(self, call):
        """Whether a call whose provider failed may go to another one: a company setting (on by
        default) that applies in both modes; never for a single attempt."""
        return not call.single_attempt and call.provider.company_id.ai_fallback_on_failure

    def _fallback_target(self, call, error, tried):
        """The next alternative of the recommendation not in `tried` that can serve the call, if any."""
        if error.kind in NO_FALLBACK_KINDS or not self._may_fall_back(call):
            return None
        Provider = self.env["ai.service.provider"].sudo()
        for alternative in (call.recommendation or {}).get("alternatives") or []:
            provider = Provider.browse(alternative["provider_id"])
            if provider not in tried and provider._serves_max_tokens(call.max_tokens):
                return provider
        return None

    def _ledger_provider(self, call):
        """The provider a usage row may name: the call's provider once it is one provider of the
        caller's companies. Input that failed validation names none, so that a row never lands in
        another company's ledger."""
        provider = call.provider
        if (
            isinstance(provider, models.BaseModel)
            and provider._name == "ai.service.provider"
            and len(provider) == 1
            and self._is_users_company(provider.sudo().company_id)
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
        return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_RECORD_ID else 0

    @staticmethod
    def _prompt_cache_savings(usage, price):
        if not price or not usage.cache_read_tokens:
            return 0.0
        return pricing.cache_read_savings(usage.cache_read_tokens, price.input_price, price.cache_read_price)

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
            "usage_estimated": not vals.get("usage_reported", True),
            "cost_usd": vals.get("cost_usd", 0.0),
            "cost_unknown": vals.get("cost_unknown", False),
            "latency_ms": vals.get("latency_ms", 0.0),
            "cache_hit": vals.get("cache_hit", False),
        }

    def _provider_failure_message(self, call, error):
        """The error of a call no provider served: every provider tried, in order, with its last error."""
        failures = call.provider_failures or [(call.provider, error)]
        if len(failures) == 1:
            return self.env._("The AI provider '%(name)s' failed: %(error)s", name=failures[0][0].name, error=error)
        return self.env._(
            "The %(count)s AI providers tried failed, in this order: %(failures)s.",
            count=len(failures),
            failures="; ".join(f"'{provider.name}': {failure}" for provider, failure in failures),
        )

    def _build_result(self, call, summary):
        return {
            **summary,
            "content": call.content,
            "recommendation": call.recommendation,
            "switched_from": call.switched_from.id if call.switched_from else False,
            "budget": call.budget or {"status": "ok"},
            "waste_report": call.waste_report,
            "tool_calls": call.result.tool_calls if call.result is not None else [],
            "parsed": call.parsed,
        }
