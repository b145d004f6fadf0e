"""ai.service.provider, one model in one file as Odoo's apps keep them: over 400 lines because a provider
carries its endpoint, its genai-prices price versions, its benchmark figures, the profile the gateway caches and
what it reported of its own rate limits; splitting it would re-open the model in a second file."""

import logging
import math
from datetime import datetime, timezone
from urllib.parse import urlsplit

import psycopg2

from odoo import api, fields, models, tools
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from ..core import pricing
from ..core.call import ProviderProfile
from ..core.clients import ProviderConfig
from ..core.clients.rate_limits import StoredRateLimits, ceil_second
from ..core.recommendation import blended_quality, fits_context_window
from ..ledger.cursors import STATEMENT_CURSORS, run_in_own_transaction
from .ai_service_provider_price import PRICE_DIGITS, PRICE_FIELDS

_logger = logging.getLogger(__name__)

MAX_TOKENS = 100_000_000
# The Test connection button's call: short, so that it costs a fraction of a cent.
TEST_PROMPT = "Reply with one short sentence: the connection works."
TEST_MAX_TOKENS = 50
TEST_OPERATION = "test_connection"
MAX_TIMEOUT = 3600
MAX_RETRIES = 10
# What genai-prices matches a provider's prices with: a change of one of them syncs its prices again.
PRICE_MATCH_FIELDS = {"model", "price_provider", "kind", "base_url"}
# What the optimizer reads of every active provider on every gateway call, cached (see the optimizer's
# _candidate_rows): a change of one of them clears the gateway's caches.
CANDIDATE_FIELDS = (
    "company_id", "active", "sequence", "name", "quality_score", "context_window", "cost_unknown", "input_price",
    "output_price", "api_key", "api_key_required", "benchmark_quality", "benchmark_quality_samples", "task_type_ids",
)
# What the gateway reads of a provider on every call, cached (_gateway_profile).
PROFILE_FIELDS = (
    "name", "company_id", "active", "kind", "base_url", "api_key", "api_key_required", "model", "timeout",
    "max_retries", "retry_backoff", "enable_prompt_caching", "context_window", "max_output_tokens",
    "enable_waste_detection", "enable_cost_optimization", "auto_switch_provider",
)
# genai-prices' price list guessed from the base URL (an Anthropic endpoint is guessed from its kind).
PROVIDER_HINTS = {
    "azure": "azure",
    "anthropic": "anthropic",
    "openai.com": "openai",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral": "mistral",
    "googleapis.com": "google",
    "openrouter": "openrouter",
    "cerebras": "cerebras",
    "perplexity": "perplexity",
    "api.x.ai": "x-ai",
    "together": "together",
    "fireworks": "fireworks",
}


def _utc(value):
    """An Odoo datetime (naive UTC) as an aware UTC datetime."""
    return value.replace(tzinfo=timezone.utc) if value else None


def _naive(value):
    """An aware datetime as Odoo stores it, naive UTC; None stays None (NULL)."""
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value else None


class AiServiceProvider(models.Model):
    """One provider endpoint and model. It caches the benchmark figures the optimizer ranks with
    (written by ai.provider.benchmark), so that a recommendation reads no benchmark rows."""

    _name = "ai.service.provider"
    _inherit = ["ai.cost.gateway.cache.mixin"]
    _description = "AI Provider"
    _order = "sequence, name, id"
    _gateway_cache_fields = CANDIDATE_FIELDS + PROFILE_FIELDS

    # Identity and endpoint
    name = fields.Char(required=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company, index=True)
    kind = fields.Selection(
        [
            ("anthropic", "Anthropic (Messages API)"),
            ("openai_compatible", "OpenAI-compatible API"),
            ("demo", "Demo model (no network)"),
        ],
        required=True,
        default="openai_compatible",
        help="Demo model: answers on the Odoo server without calling anyone, priced as its model id, "
        "to try the Playground, budgets and dashboard before entering a real provider's key.",
    )
    base_url = fields.Char(
        string="Base URL",
        help="Anthropic: https://api.anthropic.com. OpenAI-compatible: the URL ending in /v1 "
        "(OpenAI, DeepSeek, Groq, Mistral, OpenRouter, Ollama, vLLM...).",
    )
    api_key = fields.Char(string="API Key", groups="base.group_system", copy=False)
    api_key_required = fields.Boolean(
        string="Needs an API key",
        compute="_compute_api_key_required",
        store=True,
        readonly=False,
        help="Untick for a local server without authentication (Ollama, vLLM): calls are then sent "
        "without a key and without an Authorization header.",
    )
    provider_key_id = fields.Char(
        string="API Key ID at the Provider", copy=False,
        help="The id of this provider's API key as the provider's console shows it (Anthropic: apikey_..., "
        "OpenAI: key_...): with it, the billing reconciliation tells the organization's other keys apart.",
    )
    # Stored: the one definition of "has a key" that the ORM and the optimizer's SQL both read.
    has_api_key = fields.Boolean(
        string="Key ready", compute="_compute_has_api_key", store=True,
        help="A key is set, or the provider needs none.",
    )
    model = fields.Char(required=True, help="The provider's model id, e.g. claude-3-5-haiku-latest or gpt-4o-mini.")
    timeout = fields.Float(string="Timeout (seconds)", default=60.0, help="Seconds before one attempt is abandoned.")
    max_retries = fields.Integer(default=2, help="Retries after a timeout, a 429 or a 5xx, with backoff.")
    retry_backoff = fields.Float(
        string="Retry Backoff (seconds)", default=0.5,
        help="Seconds of the first wait between retries, doubled at each retry; Retry-After wins.",
    )

    # Capabilities: the limits come from genai-prices' model data where it has them; 0 means unknown, and
    # the gateway then refuses nothing on a guess (the provider decides)
    task_type_ids = fields.Many2many("ai.task.type", string="Task Types", help="Empty: serves every task type.")
    context_window = fields.Integer(
        string="Context Window (tokens)", compute="_compute_limits", store=True, readonly=False,
        help="Filled from genai-prices' model data when it knows the model. 0: unknown, no prompt is refused "
        "for its size before it is sent.",
    )
    max_output_tokens = fields.Integer(
        compute="_compute_limits", store=True, readonly=False,
        help="0: unknown (genai-prices publishes no output limits), no max_tokens is refused before the call.",
    )

    # Quality: the configured prior blended with the rated answers of the benchmarks
    quality_score = fields.Integer(default=70, help="Configured quality prior (0-100), blended with benchmarks.")
    benchmark_quality = fields.Float(
        readonly=True, help="Average rated quality (0-100) of this provider's answers, from its benchmarks."
    )
    benchmark_quality_samples = fields.Integer(readonly=True, string="Rated Answers")
    effective_quality = fields.Float(
        compute="_compute_effective_quality",
        help="The configured quality blended with the rated answers; the optimizer's quality bar applies to it.",
    )

    # Prices (USD per million tokens); every change creates a price version
    price_source = fields.Selection(
        [("genai_prices", "genai-prices"), ("manual", "Manual override"), ("free", "Free")],
        default="genai_prices", required=True,
        help="Free: a model served on your own hardware (Ollama, vLLM), with no per-token price: its calls "
        "cost $0.00 and count as priced.",
    )
    price_provider = fields.Selection(
        selection="_selection_price_provider", string="Price List", compute="_compute_price_provider", store=True,
        readonly=False,
        help="genai-prices' price list the model is priced from, guessed from the kind and the base URL: set it "
        "for a proxy, a local gateway or an Azure endpoint serving a known model. Empty, or a model missing "
        "from it: the model id alone decides.",
    )
    price_list_models = fields.Text(
        string="Models in the Price List", compute="_compute_price_list_models",
        help="The model ids genai-prices prices under this price list.",
    )
    input_price = fields.Float(digits=PRICE_DIGITS, string="Input Price (USD / 1M tokens)")
    output_price = fields.Float(digits=PRICE_DIGITS, string="Output Price (USD / 1M tokens)")
    cache_read_price = fields.Float(digits=PRICE_DIGITS, string="Cache Read Price (USD / 1M tokens)")
    cache_write_price = fields.Float(digits=PRICE_DIGITS, string="Cache Write Price (USD / 1M tokens)")
    cost_unknown = fields.Boolean(
        default=True, readonly=True, help="No price known for this model: its calls are flagged, never priced $0."
    )
    price_ids = fields.One2many("ai.service.provider.price", "provider_id", string="Price History")
    price_synced_on = fields.Datetime(readonly=True)

    # Behaviour
    enable_cost_optimization = fields.Boolean(default=True)
    auto_switch_provider = fields.Boolean(help="Send calls to the recommended provider when it is cheaper.")
    enable_waste_detection = fields.Boolean(default=True)
    enable_prompt_caching = fields.Boolean(
        default=True, help="Anthropic: mark the system prompt with cache_control so repeats are read from cache."
    )

    # The provider's own rate limits, as the headers of its last answer reported them; written by the gateway
    # (_note_rate_limits) when they change its routing or are older than REFRESH_AFTER, not at every call
    rate_limit_requests_left = fields.Integer(
        string="Requests Left", readonly=True, copy=False, default=-1,
        help="Requests the provider said were left at its last answer (-1: it did not say).",
    )
    rate_limit_tokens_left = fields.Integer(
        string="Tokens Left", readonly=True, copy=False, default=-1,
        help="Tokens the provider said were left at its last answer, the tightest of its token limits "
        "(-1: it did not say).",
    )
    rate_limit_requests_reset_at = fields.Datetime(
        string="Requests Full Again At", readonly=True, copy=False,
        help="When the provider said its request limit would be full again.",
    )
    rate_limit_tokens_reset_at = fields.Datetime(
        string="Tokens Full Again At", readonly=True, copy=False,
        help="When the provider said its token limit would be full again.",
    )
    rate_limit_reported_at = fields.Datetime(
        string="Reported At", readonly=True, copy=False,
        help="When the provider's answer that reported these figures came; they are stored again when they change "
        "where calls go, else at most every 30 seconds.",
    )
    rate_limited_until = fields.Datetime(
        string="Calls Go to the Fallback Until", readonly=True, copy=False,
        help="The provider reported no requests or no tokens left (or refused a call with a 429): until then, "
        "calls that may fall back go to the next provider before they are sent, instead of earning a 429.",
    )

    rate_limited_now = fields.Boolean(
        string="Out of Room Now", compute="_compute_rate_limited_now",
        help="The provider reported no room left and the time it named has not come yet.",
    )

    usage_count = fields.Integer(compute="_compute_usage_count")

    @api.model
    def _selection_price_provider(self):
        return pricing.price_providers()

    @api.depends("kind", "base_url")
    def _compute_price_provider(self):
        known = {provider_id for provider_id, _name in pricing.price_providers()}
        for provider in self:
            url = (provider.base_url or "").lower()
            hint = "anthropic" if provider.kind == "anthropic" else next(
                (hint for needle, hint in PROVIDER_HINTS.items() if needle in url), False
            )
            provider.price_provider = hint if hint in known else False

    @api.depends("price_provider")
    def _compute_price_list_models(self):
        for provider in self:
            provider.price_list_models = ", ".join(pricing.price_list_models(provider.price_provider)) or False

    @api.depends("model", "price_provider")
    def _compute_limits(self):
        for provider in self:
            provider.context_window = pricing.context_window(provider.model or "", provider.price_provider) or 0
            # genai-prices publishes no output limit, and another model's typed limit no longer holds.
            provider.max_output_tokens = 0

    @api.depends("kind")
    def _compute_api_key_required(self):
        for provider in self:
            provider.api_key_required = provider.kind != "demo"

    @api.depends("api_key", "api_key_required")
    def _compute_has_api_key(self):
        """Whether the provider can be called: a key is set, or it needs none. The only place that says so:
        the gateway, the optimizer (its SQL reads the stored column) and the connection settings read it.
        Computed as superuser (a stored field), so the key itself stays out of other users' reach."""
        for provider in self:
            provider.has_api_key = bool(provider.api_key) or not provider.api_key_required

    @api.depends("rate_limited_until")
    def _compute_rate_limited_now(self):
        now = fields.Datetime.now()
        for provider in self:
            provider.rate_limited_now = bool(provider.rate_limited_until and provider.rate_limited_until > now)

    def _compute_usage_count(self):
        counts = dict(
            self.env["ai.token.usage"]._read_group([("provider_id", "in", self.ids)], ["provider_id"], ["__count"])
        )
        for provider in self:
            provider.usage_count = counts.get(provider, 0)

    @api.depends("quality_score", "benchmark_quality", "benchmark_quality_samples")
    def _compute_effective_quality(self):
        for provider in self:
            provider.effective_quality = blended_quality(
                provider.quality_score, provider.benchmark_quality, provider.benchmark_quality_samples
            )

    @api.constrains("context_window", "max_output_tokens", "timeout", "max_retries", "retry_backoff", "quality_score")
    def _check_limits(self):
        _ = self.env._
        for provider in self:
            if not 0 <= provider.quality_score <= 100:
                raise ValidationError(_("The quality score must be between 0 and 100."))
            if not (0 <= provider.context_window <= MAX_TOKENS and 0 <= provider.max_output_tokens <= MAX_TOKENS):
                raise ValidationError(
                    _("Context window and max output tokens must be between 0 (unknown) and %s.", MAX_TOKENS)
                )
            if not (math.isfinite(provider.timeout) and 0 < provider.timeout <= MAX_TIMEOUT):
                raise ValidationError(_("The timeout must be between 0 and %s seconds.", MAX_TIMEOUT))
            if not 0 <= provider.max_retries <= MAX_RETRIES:
                raise ValidationError(_("Retries must be between 0 and %s.", MAX_RETRIES))
            if not (math.isfinite(provider.retry_backoff) and 0 <= provider.retry_backoff <= MAX_TIMEOUT):
                raise ValidationError(_("The retry backoff must be between 0 and %s seconds.", MAX_TIMEOUT))

    @api.constrains(*PRICE_FIELDS)
    def _check_prices(self):
        for provider in self:
            if not all(math.isfinite(provider[name]) and provider[name] >= 0 for name in PRICE_FIELDS):
                raise ValidationError(self.env._("Prices must be positive numbers."))

    @api.constrains("base_url", "kind")
    def _check_base_url(self):
        for provider in self.filtered(lambda p: p.kind != "demo"):
            url = provider.base_url or ""
            parts = urlsplit(url) if url.isascii() and url.isprintable() and " " not in url else None
            if not parts or parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValidationError(
                    self.env._("The base URL must be an http:// or https:// address, not %r.", url[:100])
                )

    @api.constrains("model")
    def _check_model(self):
        for provider in self:
            if not (provider.model or "").strip() or len(provider.model) > 256:
                raise ValidationError(self.env._("The model id must be given, e.g. gpt-4o-mini."))

    # ------------------------------------------------------------------
    # CRUD: prices are versioned
    # ------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if any(vals.get(name) for name in PRICE_FIELDS) and "price_source" not in vals:
                vals["price_source"] = "manual"
        providers = super().create(vals_list)
        providers.filtered(lambda p: p.price_source == "genai_prices")._sync_prices()
        providers.filtered(lambda p: p.price_source == "free")._set_free_prices()
        providers.filtered(lambda p: p.price_source == "manual")._version_current_prices()
        return providers

    def write(self, vals):
        if any(name in vals for name in PRICE_FIELDS) and "price_source" not in vals and not self.env.context.get(
            "ai_price_sync"
        ):
            vals["price_source"] = "manual"
        res = super().write(vals)
        if self.env.context.get("ai_price_sync"):
            return res
        if vals.get("price_source") == "genai_prices" or PRICE_MATCH_FIELDS & set(vals):
            self.filtered(lambda p: p.price_source == "genai_prices")._sync_prices()
        if vals.get("price_source") == "free":
            self._set_free_prices()
        if any(name in vals for name in PRICE_FIELDS) or vals.get("price_source") == "manual":
            self.filtered(lambda p: p.price_source == "manual")._version_current_prices()
        return res

    def unlink(self):
        self.env["ai.token.usage"]._rollup_fold_deleted("provider_id", self.ids)
        return super().unlink()

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------
    def action_sync_prices(self):
        to_sync = self.filtered(lambda p: p.price_source == "genai_prices")
        to_sync._sync_prices()
        unknown = to_sync.filtered("cost_unknown")
        message = (
            self.env._(
                "genai-prices does not know: %s. Their calls are flagged 'cost unknown'.",
                ", ".join(unknown.mapped("model")),
            )
            if unknown
            else self.env._("Prices synced from genai-prices %s.", pricing.genai_prices_version())
        )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {"message": message, "type": "warning" if unknown else "success", "sticky": False},
        }

    def action_use_genai_prices(self):
        self.write({"price_source": "genai_prices"})
        return True

    def action_test_connection(self):
        """Send one small call to this provider and to no other (no retry, no fallback, no switch), recorded
        like any call (one usage row, cost, budgets), and show its answer, latency and cost; a failure raises
        the gateway's UserError, whose dialog gives the reason and stays until closed."""
        self.ensure_one()
        result = self.env["ai.service"].send_message(
            [{"role": "user", "content": TEST_PROMPT}],
            provider=self,
            mode="passthrough",
            max_tokens=min(TEST_MAX_TOKENS, self.max_output_tokens or TEST_MAX_TOKENS),
            operation=TEST_OPERATION,
            use_cache=False,
            single_attempt=True,
        )
        details = {
            "answer": (result["content"] or "").strip()[:200] or self.env._("(empty answer)"),
            "latency": round(result["latency_ms"]),
            "cost": self.env._("cost unknown") if result["cost_unknown"] else pricing.format_usd(result["cost_usd"]),
        }
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.env._("Connection to %s works", self.name),
                "message": self.env._("Answer: %(answer)s (%(latency)s ms, %(cost)s).", **details),
                "type": "success",
                "sticky": False,
            },
        }

    def action_view_usage(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("ai_cost_optimizer.action_ai_token_usage")
        action["domain"] = [("provider_id", "=", self.id)]
        return action

    # ------------------------------------------------------------------
    # Prices
    # ------------------------------------------------------------------
    def _sync_prices(self):
        """Fill prices from the installed genai-prices under the provider's price list; a model it does not
        know is 'cost unknown'."""
        for provider in self:
            price = pricing.lookup_price(provider.model, provider.price_provider or None)
            vals = {"price_synced_on": fields.Datetime.now(), "cost_unknown": price is None}
            if price is not None:
                vals.update(
                    input_price=price.input_per_mtok,
                    output_price=price.output_per_mtok,
                    cache_read_price=price.cache_read_per_mtok or 0.0,
                    cache_write_price=price.cache_write_per_mtok or 0.0,
                )
            provider.with_context(ai_price_sync=True).write(vals)
            if price is not None:
                provider._version_current_prices(source="genai_prices", detail=f"{price.source} {price.model_ref}")

    def _set_free_prices(self):
        """A provider declared free prices its calls at 0 from now on: a price version of rates 0."""
        self.with_context(ai_price_sync=True).write(dict.fromkeys(PRICE_FIELDS, 0.0))
        self._version_current_prices(detail=self.env._("Declared free by %s", self.env.user.name))

    def _version_current_prices(self, source=None, detail=None):
        """Start a new price version when the provider's prices, its source or what genai-prices matches
        them with (model and price list) differ from its current one."""
        Price = self.env["ai.service.provider.price"]
        for provider in self:
            current = provider._price_at(fields.Datetime.now())
            values = {name: provider[name] for name in PRICE_FIELDS}
            match = {
                "source": source or provider.price_source,
                "model": provider.model,
                "price_provider": provider.price_provider or False,
            }
            if (
                current
                and all(abs(current[name] - value) < 1e-9 for name, value in values.items())
                and all(current[name] == value for name, value in match.items())
            ):
                continue
            Price.create(
                {
                    "provider_id": provider.id,
                    "source_detail": detail or self.env.user.name,
                    **match,
                    **values,
                }
            )
            if source is None:
                provider.with_context(ai_price_sync=True).write({"cost_unknown": False})

    def _price_at(self, when):
        """The price version in force at `when`, or an empty recordset."""
        self.ensure_one()
        Price = self.env["ai.service.provider.price"]
        return Price.browse(next((price_id for start, price_id in Price._versions(self.id) if start <= when), []))

    @api.model
    def _cron_sync_prices(self):
        self.search([("price_source", "=", "genai_prices")])._sync_prices()

    # ------------------------------------------------------------------
    # Gateway helpers
    # ------------------------------------------------------------------
    def _gateway_profile(self):
        """This provider as the gateway reads it (ProviderProfile): cached, as every call reads it and it seldom
        changes; reading the record instead loads its row again after each commit of the caller."""
        self.ensure_one()
        return self._gateway_profile_cached(self.id)

    @tools.ormcache("provider_id")
    def _gateway_profile_cached(self, provider_id):
        provider = self.sudo().browse(provider_id)
        config = None
        if provider.has_api_key:
            config = ProviderConfig(
                kind=provider.kind,
                base_url=provider.base_url or "",
                api_key=provider.api_key or "",
                model=provider.model,
                timeout=provider.timeout,
                max_retries=provider.max_retries,
                backoff_base=provider.retry_backoff,
                prompt_caching=provider.enable_prompt_caching,
            )
        return ProviderProfile(
            name=provider.name,
            company_id=provider.company_id.id,
            active=provider.active,
            model=provider.model,
            context_window=provider.context_window,
            max_output_tokens=provider.max_output_tokens,
            enable_waste_detection=provider.enable_waste_detection,
            enable_cost_optimization=provider.enable_cost_optimization,
            auto_switch_provider=provider.auto_switch_provider,
            config=config,
        )

    def _serves_max_tokens(self, max_tokens):
        """Whether this provider's output limit allows `max_tokens`; an unknown limit (0) refuses nothing."""
        limit = self._gateway_profile().max_output_tokens
        return not limit or max_tokens <= limit

    def _fits_context(self, tokens):
        """Whether a prompt of `tokens` fits this provider's context window (an unknown one fits all)."""
        return fits_context_window(tokens, self._gateway_profile().context_window)

    def _waste_detection_enabled(self):
        """Waste rules run for this provider's calls unless it or its company switched them off."""
        profile = self._gateway_profile()
        return profile.enable_waste_detection and self.env["res.company"]._ai_gateway_settings(
            profile.company_id
        ).enable_waste_detection

    # ------------------------------------------------------------------
    # The provider's own rate limits (DESIGN section 13)
    # ------------------------------------------------------------------
    def _rate_limited_until(self):
        """Until when this provider has no room as it reported at its last answer (an aware UTC datetime), None
        while it has room or once that time has come. Every call asks: it reads an ormcache, not the database."""
        return self._stored_rate_limits().exhausted_at(datetime.now(timezone.utc))

    def _stored_rate_limits(self):
        """What is stored of this provider's rate limits (core StoredRateLimits), cached in this process. The
        process that stores a report updates it in place; the others are told through Odoo's cache signaling."""
        self.ensure_one()
        return self._stored_rate_limits_cached(self.id)

    @tools.ormcache("provider_id")
    def _stored_rate_limits_cached(self, provider_id):
        provider = self.sudo().browse(provider_id)
        provider.fetch(["rate_limited_until", "rate_limit_reported_at"])
        return StoredRateLimits(
            until=_utc(provider.rate_limited_until), reported_at=_utc(provider.rate_limit_reported_at)
        )

    def _note_rate_limits(self, limits):
        """Keep what the provider reported at an answer (core RateLimits, None when it reported nothing) in
        PostgreSQL, shared by every Odoo process, without a write per call: only when it runs out of room, has
        room again or names another time for it, and else when the stored figures are older than 30 seconds.
        Running out of room, or having it again, tells the other processes (their caches are cleared); a moved
        end of a stretch without room is stored without, as a 429's Retry-After moves it on each answer. A report
        that cannot be stored (the row is locked by another transaction) is dropped: the next answer brings
        another one."""
        if limits is None:
            return
        stored = self._stored_rate_limits()
        change = stored.change(limits)
        if change is None:
            return
        signal = stored.room_flips(limits)
        until = ceil_second(limits.exhausted_until())
        vals = {
            "rate_limit_requests_left": -1 if limits.requests_remaining is None else limits.requests_remaining,
            "rate_limit_tokens_left": -1 if limits.tokens_remaining is None else limits.tokens_remaining,
            "rate_limit_requests_reset_at": _naive(ceil_second(limits.requests_reset_at)),
            "rate_limit_tokens_reset_at": _naive(ceil_second(limits.tokens_reset_at)),
            "rate_limit_reported_at": _naive(limits.reported_at.replace(microsecond=0)),
            "rate_limited_until": _naive(until),
        }
        try:
            held = self._store_rate_limits(vals, signal=signal)
        except psycopg2.Error as error:
            _logger.warning("The rate limits reported by AI provider %s were not stored: %s", self.id, error)
            return
        if held is None:
            return
        stored.keep(limits)
        if held and signal:
            # Stored in the caller's transaction: the other processes learn it when it commits, and this one
            # forgets it if it rolls back.
            self._clear_gateway_cache()

    def _store_rate_limits(self, vals, signal):
        """Write `vals` on this provider in a transaction of its own (the caller's when it holds the call's
        rows, see run_in_own_transaction) and, with `signal`, tell the other Odoo processes to clear their
        caches. Returns whether the caller's transaction holds the write, None when another transaction held
        the row. Raw SQL: one UPDATE that skips a locked row (FOR UPDATE SKIP LOCKED, which the ORM has no
        API for) rather than waiting for it, as a caller that wrote this provider in its open transaction
        would wait for itself; and the increment of Odoo's cache signaling sequence without the invalidations
        the caller's transaction has pending, which it signals itself when it commits."""
        self.ensure_one()
        assignments = SQL(", ").join(SQL("%s = %s", SQL.identifier(name), value) for name, value in vals.items())

        def work(cr):
            cr.execute(SQL(
                "UPDATE %(table)s SET %(assignments)s WHERE id IN "
                "(SELECT id FROM %(table)s WHERE id = %(id)s FOR UPDATE SKIP LOCKED)",
                table=SQL.identifier(self._table), assignments=assignments, id=self.id,
            ))
            if not cr.rowcount:
                return None
            held = cr is self.env.cr
            if signal and not held and not self.env.registry.in_test_mode():
                cr.execute(SQL("SELECT nextval('base_cache_signaling_default')"))
            return held

        # Raw SQL after the ORM's pending writes of these fields, which it then forgets.
        self.flush_recordset(list(vals))
        held = run_in_own_transaction(self.env, work, STATEMENT_CURSORS, references={self._table: {self.id}})
        self.invalidate_recordset(list(vals), flush=False)
        return held

    def _client_config(self):
        """The connection settings for core.clients (the key read as superuser, never logged)."""
        profile = self._gateway_profile()
        if profile.config is None:
            raise UserError(
                self.env._("Provider '%s' has no API key. A system administrator must set one.", profile.name)
            )
        return profile.config

    # ------------------------------------------------------------------
    # Benchmarks
    # ------------------------------------------------------------------
    def _refresh_benchmark_quality(self):
        """Cache the average rated quality of each provider's answers, the gateway's and external runs'
        (indexed on rated rows)."""
        if not self:
            return
        figures = {
            provider.id: (average, count)
            for provider, average, count in self.env["ai.provider.benchmark.report"].sudo()._read_group(
                [("provider_id", "in", self.ids), ("rated", "=", True)], ["provider_id"],
                ["quality_score:avg", "__count"],
            )
        }
        for provider in self:
            average, count = figures.get(provider.id, (0.0, 0))
            if (provider.benchmark_quality, provider.benchmark_quality_samples) != (average, count):
                provider.write({"benchmark_quality": average, "benchmark_quality_samples": count})
