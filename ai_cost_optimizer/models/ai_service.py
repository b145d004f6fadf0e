from odoo import api, models
from odoo.exceptions import UserError

from ..core.call import GatewayCall, GatewayStream
from ..core.clients import ProviderError
from ..core.tools import parse_structured
from ..exceptions import AiInvalidReply, AiProviderError

# The parameters of a call, send_message's after the messages: stream_message takes the same.
CALL_PARAMETERS = (
    "provider", "task_type", "quality_required", "mode", "max_tokens", "temperature", "operation", "res_model",
    "res_id", "session_id", "max_budget_usd", "use_cache", "tools", "tool_choice", "response_format", "single_attempt",
)


class AiService(models.AbstractModel):
    """The gateway every LLM call of Odoo goes through: its public methods and the order of their steps.

    `send_message` runs a pipeline of small overridable steps, each reading and completing one
    `call` (core.call.GatewayCall), so other modules can hook in with `super()`: validation, token estimate
    (ai.service.validation), response cache, recommendation and routing, with the smart router, auto-switch,
    A/B arms and fallback (ai.service.routing), budget reservation (ai.service.budget), the provider call
    (ai.service.dispatch), then the ledger: the usage row, which is also the call's benchmark sample, its
    waste analysis and the budget settle (ai.service.ledger).
    """

    _name = "ai.service"
    _inherit = ["ai.service.validation", "ai.service.routing", "ai.service.budget", "ai.service.dispatch",
                "ai.service.ledger"]
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
        self._prepare_call(call)
        self._serve_call(call)
        summary = self._record_usage(call, status="ok")
        return {**summary, "vectors": call.vectors, "budget": call.budget}

    def _prepare_call(self, call):
        """The steps before the provider call: validation, token estimate, response cache, routing, rate limits
        and budget reservation. Returns the summary of a response-cache hit, else None; raises a UserError
        (AiRateLimited, AiBudgetExceeded for a refused call), recorded, for a call that must not go out."""
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
        self._hold_rate_limits(call)
        self._reserve_budget(call)
        return None

    def _serve_call(self, call):
        """The provider call; a call no provider served releases its budget reservation, is recorded and
        raises AiProviderError."""
        try:
            if call.kind == "embedding":
                self._call_embedding_provider(call)
            else:
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
