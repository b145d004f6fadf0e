from odoo import fields, models

from ..core import clients, pricing
from ..core.clients import ChatResult, ProviderError
from ..core.messages import batches
from ..core.usage import Usage
from ..exceptions import AiProviderError

# Embeddings per request (a provider's limit is 2048 inputs and some 300k tokens).
EMBED_BATCH_TEXTS = 256
EMBED_BATCH_TOKENS = 100_000


class AiServiceDispatch(models.AbstractModel):
    """The requests to the providers: a chat call (streamed or not) with retries and the fallback to the next
    provider, an embedding call batch by batch, each failed attempt recorded, the answer priced, and what each
    answer said of the provider's own rate limits kept for the next calls."""

    _name = "ai.service.dispatch"
    _description = "AI Gateway: Provider Requests"

    def _call_provider(self, call):
        """Call call.provider with retries; sets result, price and cost_usd or raises ProviderError.
        When the provider fails after its retries, move on to the next qualifying alternative of the
        recommendation (when the company falls back, see `_may_fall_back`). Every failed attempt keeps
        its own usage row (see `_record_failed_attempt`); call.provider_failures lists each provider
        tried that failed, with its last error, in order (send_message's error names them all). A provider
        that reported no room left under its own rate limits is skipped before sending (`_skip_rate_limited`);
        what each answer reports of them is kept (`_note_rate_limits` of ai.service.provider)."""
        failures = call.provider_failures
        while True:
            if self._skip_rate_limited(call):
                continue
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
                provider._note_rate_limits(error.rate_limits)
                failures.append((provider, error))
                if not self._fall_back(call, error):
                    raise
                continue
            provider._note_rate_limits(response.rate_limits)
            if call.stream:
                # Priced when it ends (_end_stream): only then are its tokens known.
                call.stream_reader = response
                return
            call.result = response
            self._price_result(call)
            return

    def _call_embedding_provider(self, call):
        """Embed call.messages batch by batch; sets vectors, result (the batches' usage summed) and cost.
        Raises ProviderError when the first batch fails; once batches were paid for, a failure records their
        cost as an error, settles it and raises AiProviderError."""
        vectors, usage, latency, reported, attempts = [], 0, 0.0, True, 0
        for batch in batches(call.messages, call.text_tokens, EMBED_BATCH_TEXTS, EMBED_BATCH_TOKENS):
            try:
                result = clients.embed(
                    call.config, batch, on_attempt_failed=lambda error: self._record_failed_attempt(call, error)
                )
            except ProviderError as error:
                call.provider._note_rate_limits(error.rate_limits)
                if not vectors:
                    raise
                message = self._provider_failure_message(call, error)
                self._set_embedding_result(call, usage, latency, reported, attempts)
                self._record_usage(call, status="error", error=self.env._(
                    "%(done)s of %(count)s texts embedded, then: %(error)s",
                    done=len(vectors), count=len(call.messages), error=error,
                ))
                raise AiProviderError(message) from None
            call.provider._note_rate_limits(result.rate_limits)
            vectors += result.vectors
            usage += result.usage.input_tokens
            latency += result.latency_ms
            reported = reported and result.usage_reported
            attempts += result.attempts
        call.vectors = vectors
        self._set_embedding_result(call, usage, latency, reported, attempts)

    def _set_embedding_result(self, call, tokens, latency_ms, usage_reported, attempts):
        call.result = ChatResult(
            content="", usage=Usage(input_tokens=tokens), model=call.profile.model,
            latency_ms=latency_ms, attempts=attempts, usage_reported=usage_reported,
        )
        self._price_result(call)

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
