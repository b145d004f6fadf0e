"""One call through the gateway, as the steps of `ai.service.send_message` read and complete it.

The steps are methods that other modules override with `super()`: each reads the fields it needs and sets
the ones it decides, so a step's contract is the fields named here, not keys of a dict."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .clients.base import ChatResult, ProviderConfig
from .complexity import Complexity
from .tokens import TokenEstimate


class ProviderProfile(NamedTuple):
    """What the gateway reads of a provider on every call (ai.service.provider's _gateway_profile). `config` is
    None when the provider needs an API key and has none."""

    name: str
    company_id: int
    active: bool
    model: str
    context_window: int
    max_output_tokens: int
    enable_waste_detection: bool
    enable_cost_optimization: bool
    auto_switch_provider: bool
    config: ProviderConfig | None


class GatewaySettings(NamedTuple):
    """A company's settings as the gateway reads them on every call (res.company's _ai_gateway_settings)."""

    default_provider_id: int
    default_mode: str
    enable_cost_optimization: bool
    auto_switch_provider: bool
    fallback_on_failure: bool
    enable_waste_detection: bool
    response_cache: bool
    response_cache_ttl_hours: int
    prompt_retention: str
    prompt_retention_days: int
    tz: str  # the company's timezone, which sets its budgets' periods


@dataclass
class GatewayCall:
    """A call's request, then what each step decided about it.

    Odoo records (providers, price versions) are typed `Any`: this module never imports Odoo. The request's
    fields are typed `Any` too: they hold what the caller gave until validation normalizes them."""

    # The request, as the caller gave it; validation normalizes these fields in place.
    messages: Any
    provider: Any = None  # as given (a record, an id or None), then the ai.service.provider record that answers
    task_type: Any = "chat"
    quality_required: Any = None  # as given, then the bar the answer must meet (low | medium | high)
    mode: Any = None  # passthrough | smart_router, the company's default when not given
    max_tokens: Any = 1024
    temperature: Any = None
    operation: Any = None
    res_model: Any = None
    res_id: Any = None
    session_id: Any = None
    max_budget_usd: Any = None
    use_cache: Any = True
    single_attempt: Any = False  # one request to the given provider and no other: no retry, switch or fallback
    tools: Any = None  # [{'name', 'description', 'parameters': JSON schema}] (core.tools)
    tool_choice: Any = None  # 'auto' | 'none' | 'required' | {'name'}
    response_format: Any = None  # the JSON schema of a structured reply
    stream: bool = False  # set by stream_message: the answer is read chunk by chunk
    kind: str = "chat"  # chat | embedding (embed: `messages` holds the texts)

    # Validation and the provider
    quality_given: str | None = None  # the bar the caller asked for, before the prompt's complexity raised it
    provider_given: bool = False  # False: the company's default provider, which an A/B experiment may replace
    config: ProviderConfig | None = None  # how to reach the provider that answers
    profile: ProviderProfile | None = None  # what the gateway reads of that provider
    settings: GatewaySettings | None = None  # its company's gateway settings

    # The prompt, measured with the answering provider's tokenizer
    estimate: TokenEstimate | None = None
    context_size_tokens: int = 0
    prompt_hash: str | None = None
    text_tokens: list[int] = field(default_factory=list)  # an embedding call's, one count per text

    # The response cache
    response_key: str | None = None  # fixed at the lookup: a re-routed call stores its answer under it
    cached_answer: dict | None = None  # {'content', 'cost_usd'} of a hit

    # Routing
    complexity: Complexity | None = None
    recommendation: dict | None = None  # ai.cost.optimizer's answer for this call
    switched_from: Any = None  # the provider first asked, when the call went to another one
    ab_arm_id: int | None = None

    # Budgets
    budget: dict | None = None  # {'status': 'ok'|'warning'|'switched'|'blocked', 'message', ...}
    budget_periods: list[int] = field(default_factory=list)  # the periods that hold the reservations
    budget_reservations: list[int] = field(default_factory=list)
    budget_rules: dict = field(default_factory=dict)  # the BudgetRule of each budget that holds a reservation
    budget_switch: dict | None = None  # the recommendation a budget's auto-switch followed
    rate_limit_hits: dict[int, int] = field(default_factory=dict)  # its place in its limits' minutes: {limit: hit}
    rate_limited_by: int | None = None  # the rate limit that refused it

    # The provider's answer
    result: ChatResult | None = None
    price: Any = None  # the ai.service.provider.price version in force, empty when the model has no known price
    cost_usd: float = 0.0
    attempts: int = 0  # of the last failed request (a served one carries its own in `result`)
    failed_attempt: bool = False  # while the usage row of a failed attempt is written
    failed_attempts: list = field(default_factory=list)  # the errors already recorded attempt by attempt
    provider_failures: list = field(default_factory=list)  # (provider, last error) of each provider that failed
    stream_reader: Any = None  # the opened core.clients.ChatStream of a streamed call, until it ends
    parsed: dict | None = None  # the object of a structured reply
    vectors: list | None = None  # an embedding call's vectors, one per text

    # Waste
    waste_values: dict | None = None  # what the waste rules read of the call
    waste_report: dict | None = None

    @property
    def content(self) -> str | None:
        """The answer: the provider's, or the response cache's."""
        if self.result is not None:
            return self.result.content
        return self.cached_answer["content"] if self.cached_answer else None


class GatewayStream:
    """The text chunks of a streamed answer, as `ai.service.stream_message` returns them.

    Iterate it for the chunks. Once it is exhausted, or closed early (`close()`, or the end of a `with`
    block), `result` holds the dict send_message returns, for the chunks read; until then it is None.
    A stream dropped without closing is closed, and recorded, when Python collects it: use `with`."""

    def __init__(self) -> None:
        self.result: dict | None = None
        self._chunks: Iterator[str] = iter(())
        self._finish: Callable[[], dict | None] | None = None

    def bind(self, chunks: Iterator[str], finish: Callable[[], dict | None]) -> None:
        """`chunks`: the generator that reads the provider's stream and records the call when it ends (it
        sets `result`); `finish`: records a stream closed before its first chunk was asked for, which that
        generator, never started, cannot see."""
        self._chunks, self._finish = chunks, finish

    def __iter__(self) -> GatewayStream:
        return self

    def __next__(self) -> str:
        return next(self._chunks)

    def close(self) -> None:
        """Stop reading: the call is recorded with what came."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        if self.result is None and self._finish is not None:
            self.result = self._finish()

    def __enter__(self) -> GatewayStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
