from markupsafe import Markup

from odoo import api, fields, models, tools
from odoo.exceptions import ValidationError

from ..core import anomaly as anomaly_rules
from ..core import budget as budget_math
from ..core.call import GatewaySettings
from ..core.waste import WasteSettings
from .ai_service_provider_price import PRICE_DIGITS

WASTE_FIELDS = (
    "ai_waste_duplicate_window_minutes",
    "ai_waste_redundant_min_tokens",
    "ai_waste_oversized_input_tokens",
    "ai_waste_near_window_pct",
    "ai_waste_tiny_answer_tokens",
    "ai_waste_wrong_model_saving_pct",
    "ai_waste_history_min_tokens",
    "ai_waste_cache_window_minutes",
)
# The settings every gateway call reads, cached per company (_ai_gateway_settings).
GATEWAY_FIELDS = (
    "ai_default_provider_id",
    "ai_default_mode",
    "ai_enable_cost_optimization",
    "ai_auto_switch_provider",
    "ai_fallback_on_failure",
    "ai_enable_waste_detection",
    "ai_response_cache",
    "ai_response_cache_ttl_hours",
    "ai_prompt_retention",
    "ai_prompt_retention_days",
)
CACHED_SET = frozenset(WASTE_FIELDS + GATEWAY_FIELDS)


class ResCompany(models.Model):
    """The company's AI Cost settings: routing, prompt retention, waste rules (see core/waste.py),
    the response cache and the daily cost alerts."""

    _inherit = "res.company"

    # Providers and routing
    ai_default_provider_id = fields.Many2one(
        "ai.service.provider", string="Default AI Provider", domain="[('company_id', '=', id)]"
    )
    ai_default_mode = fields.Selection(
        [
            ("passthrough", "Passthrough: use the caller's provider"),
            ("smart_router", "Smart router: the optimizer picks"),
        ],
        string="Default AI Mode",
        default="passthrough",
        required=True,
        help="The mode of calls that name none.",
    )
    ai_enable_cost_optimization = fields.Boolean(
        string="Cost Optimization (all providers)",
        help="Optimize the calls of every provider of the company, whatever the provider's own flag.",
    )
    ai_auto_switch_provider = fields.Boolean(
        string="Auto-switch Providers (all providers)",
        help="Send calls to the recommended provider when it is cheaper, whatever the provider's own flag.",
    )
    ai_fallback_on_failure = fields.Boolean(
        string="Fall Back When a Provider Fails",
        default=True,
        help="When a provider still fails after its retries (outage, timeout, rate limit), send the call to the "
        "next recommended provider that qualifies, in passthrough and smart router mode alike. A request the "
        "provider rejects as invalid is never sent elsewhere. Off: the call fails with the provider's error.",
    )

    # Daily cost alerts (cost monitor)
    ai_alert_daily_spend = fields.Float(
        digits=PRICE_DIGITS, string="Daily Spend Alert (USD)", help="Alert when a day's AI spend passes this. 0: off."
    )
    ai_alert_cost_per_record = fields.Float(
        digits=PRICE_DIGITS, string="Cost per Record Alert (USD)",
        help="Alert when the average AI cost per record (lead, ticket...) of a day passes this. 0: off.",
    )
    ai_alert_cache_hit_floor = fields.Float(
        string="Cache Hit Rate Floor (%)", help="Alert when the day's response-cache hit rate falls below this. 0: off."
    )
    # Alert-once marker: 'YYYY-MM-DD:kind,kind' of the alerts already sent today.
    ai_alerts_sent = fields.Char(readonly=True, copy=False)

    # Spend anomalies (ai.cost.anomaly: an hour far above the operation's or user's usual hour, see core/anomaly.py)
    ai_anomaly_check = fields.Boolean(
        string="Spend Anomaly Alerts", default=True,
        help="Every hour, compare each operation's and each user's spend in the last hour with its usual hour.",
    )
    ai_anomaly_ratio = fields.Float(
        string="Anomaly Ratio (times the usual hour)", default=anomaly_rules.DEFAULT_RATIO, digits=(16, 1),
        help="An hour spending more than this many times the usual hour (the median of the hours with calls of "
        "the 7 days before) is an anomaly. Above 1.",
    )
    ai_anomaly_min_spend = fields.Float(
        string="Anomaly Minimum (USD per hour)", default=anomaly_rules.DEFAULT_MIN_SPEND, digits=PRICE_DIGITS,
        help="An hour spending this much or less is never an anomaly.",
    )

    # Waste rules
    ai_enable_waste_detection = fields.Boolean(
        string="Waste Detection", default=True, help="Switch the waste rules off for every provider of the company."
    )
    ai_waste_duplicate_window_minutes = fields.Integer(
        string="Duplicate Window (minutes)", default=60,
        help="The same prompt answered again within this time is a duplicate query.",
    )
    ai_waste_redundant_min_tokens = fields.Integer(
        string="Redundant Context (tokens)", default=50,
        help="Repeated text blocks inside one prompt adding up to this many tokens are redundant context.",
    )
    ai_waste_oversized_input_tokens = fields.Integer(
        string="Oversized Input (tokens)", default=16000,
        help="Input above this (4000 for classify, 8000 for extract and translate) is oversized context.",
    )
    ai_waste_near_window_pct = fields.Integer(
        string="Near Context Window (%)", default=80,
        help="Input filling this share of the context window for a tiny answer is oversized context.",
    )
    ai_waste_tiny_answer_tokens = fields.Integer(
        string="Tiny Answer (tokens)", default=100, help="An answer of at most this many tokens is tiny."
    )
    ai_waste_wrong_model_saving_pct = fields.Integer(
        string="Wrong Model Saving (%)", default=20,
        help="A qualifying provider cheaper by at least this share makes the call a wrong-model call.",
    )
    ai_waste_history_min_tokens = fields.Integer(
        string="Unnecessary History (tokens)", default=200,
        help="Earlier turns of at least this many tokens sent with a single-shot task are unnecessary history.",
    )
    ai_waste_cache_window_minutes = fields.Integer(
        string="Prompt Cache Lifetime (minutes)", default=5,
        help="A static prefix repeated within this time without cache reads is a missed prompt cache.",
    )

    # Response cache
    ai_response_cache = fields.Boolean(
        string="Response Cache", default=True,
        help="Answer repeated deterministic calls (temperature 0 or unset) from stored answers.",
    )
    ai_response_cache_ttl_hours = fields.Integer(string="Response Cache Lifetime (hours)", default=24)

    # Prompt retention
    ai_prompt_retention = fields.Selection(
        [("none", "Do not keep"), ("truncated", "First 1000 characters"), ("full", "Full text")],
        string="Keep Prompts",
        default="truncated",
        required=True,
    )
    ai_prompt_retention_days = fields.Integer(string="Purge Prompts After (days)", default=30)

    # ------------------------------------------------------------------------------------------------
    # Constraints
    # ------------------------------------------------------------------------------------------------

    @api.constrains("ai_default_provider_id")
    def _check_ai_default_provider_company(self):
        # The field's domain only guides the UI; a call must never be billed to another company.
        for company in self:
            if company.ai_default_provider_id.sudo().company_id not in (company, self.env["res.company"]):
                raise ValidationError(self.env._("The default AI provider must belong to %s.", company.name))

    @api.constrains("ai_alert_daily_spend", "ai_alert_cost_per_record", "ai_alert_cache_hit_floor")
    def _check_ai_alert_limits(self):
        for company in self:
            if company.ai_alert_daily_spend < 0 or company.ai_alert_cost_per_record < 0:
                raise ValidationError(self.env._("Cost alert limits cannot be negative."))
            if not 0 <= company.ai_alert_cache_hit_floor <= 100:
                raise ValidationError(self.env._("The cache hit rate floor is a percentage between 0 and 100."))

    @api.constrains("ai_anomaly_ratio", "ai_anomaly_min_spend")
    def _check_ai_anomaly_settings(self):
        for company in self:
            errors = company._ai_anomaly_settings().errors()
            if errors:
                raise ValidationError(self.env._("Invalid spend anomaly settings: %s", " ".join(errors)))

    @api.constrains(*WASTE_FIELDS, "ai_response_cache_ttl_hours")
    def _check_ai_waste_settings(self):
        for company in self:
            errors = company._ai_waste_settings_read().errors()
            if errors:
                raise ValidationError(self.env._("Invalid waste detection thresholds: %s", " ".join(errors)))
            if company.ai_response_cache_ttl_hours <= 0:
                raise ValidationError(self.env._("The response cache lifetime must be at least one hour."))

    @api.constrains("ai_prompt_retention_days")
    def _check_ai_prompt_retention_days(self):
        # 100 years: beyond that a date computation would overflow rather than purge.
        if any(not 0 <= company.ai_prompt_retention_days <= 36500 for company in self):
            raise ValidationError(self.env._("The prompt retention period must be between 0 and 36500 days."))

    # ------------------------------------------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------------------------------------------

    def write(self, vals):
        result = super().write(vals)
        if CACHED_SET.intersection(vals):
            # Cached per company (_ai_gateway_settings, _ai_waste_settings_cached), cleared as the records
            # of ai.cost.gateway.cache.mixin are.
            self.env["ai.cost.gateway.cache.mixin"]._clear_gateway_cache()
        return result

    # ------------------------------------------------------------------------------------------------
    # Gateway settings
    # ------------------------------------------------------------------------------------------------

    @api.model
    @tools.ormcache("company_id")
    def _ai_gateway_settings(self, company_id):
        """The company's gateway settings (GatewaySettings): cached, as every call reads them and they
        seldom change; reading the company instead loads all of its columns after each commit."""
        company = self.sudo().browse(company_id)
        return GatewaySettings(
            default_provider_id=company.ai_default_provider_id.id,
            default_mode=company.ai_default_mode or "passthrough",
            enable_cost_optimization=company.ai_enable_cost_optimization,
            auto_switch_provider=company.ai_auto_switch_provider,
            fallback_on_failure=company.ai_fallback_on_failure,
            enable_waste_detection=company.ai_enable_waste_detection,
            response_cache=company.ai_response_cache,
            response_cache_ttl_hours=company.ai_response_cache_ttl_hours,
            prompt_retention=company.ai_prompt_retention,
            prompt_retention_days=company.ai_prompt_retention_days,
            tz=company.partner_id.tz or "UTC",
        )

    # ------------------------------------------------------------------------------------------------
    # Waste rules
    # ------------------------------------------------------------------------------------------------

    def _ai_waste_settings(self):
        """The company's thresholds as the core rules take them; cached, as they are read on every call
        and seldom change (a change clears the cache of every worker through the registry signaling)."""
        self.ensure_one()
        return self._ai_waste_settings_cached(self.id)

    @tools.ormcache("company_id")
    def _ai_waste_settings_cached(self, company_id):
        return self.sudo().browse(company_id)._ai_waste_settings_read()

    def _ai_waste_settings_read(self):
        self.ensure_one()
        return WasteSettings(
            duplicate_window_seconds=self.ai_waste_duplicate_window_minutes * 60,
            redundant_min_tokens=self.ai_waste_redundant_min_tokens,
            oversized_input_tokens=self.ai_waste_oversized_input_tokens,
            near_window_ratio=self.ai_waste_near_window_pct / 100,
            tiny_answer_tokens=self.ai_waste_tiny_answer_tokens,
            wrong_model_min_saving_ratio=self.ai_waste_wrong_model_saving_pct / 100,
            history_min_tokens=self.ai_waste_history_min_tokens,
            missed_cache_window_seconds=self.ai_waste_cache_window_minutes * 60,
        )

    # ------------------------------------------------------------------------------------------------
    # Prompt retention
    # ------------------------------------------------------------------------------------------------

    def _ai_retained_text(self, text, settings=None):
        """The part of a prompt or completion this company keeps (`settings`: its GatewaySettings, when read)."""
        self.ensure_one()
        retention = (settings or self._ai_gateway_settings(self.id)).prompt_retention
        if retention == "none" or not text:
            return False
        return text[:1000] if retention == "truncated" else text

    # ------------------------------------------------------------------------------------------------
    # Daily cost alerts
    # ------------------------------------------------------------------------------------------------

    @api.model
    def _cron_ai_cost_monitor(self):
        companies = self.search([]).filtered(
            lambda c: c.ai_alert_daily_spend or c.ai_alert_cost_per_record or c.ai_alert_cache_hit_floor
        )
        for company in companies:
            company._ai_cost_monitor()

    def _ai_cost_monitor(self, day=None):
        """Check today's (UTC) figures of the per-day rollups against the limits and notify the
        AI Cost managers of each alert once a day. Returns the alerts sent."""
        self.ensure_one()
        day = day or fields.Date.today()  # the rollups are keyed by UTC day
        domain = [("company_id", "=", self.id), ("day", "=", day), ("status", "=", "ok")]
        Daily = self.env["ai.token.usage.daily"].sudo()
        [(spend, calls, hits)] = Daily._read_group(
            domain, [], ["cost_usd:sum", "call_count:sum", "cache_hit_count:sum"]
        )
        per_record = {
            res_model: (cost or 0.0, records)
            for res_model, cost, records in self.env["ai.token.usage.record.daily"].sudo()._read_group(
                domain, ["res_model"], ["cost_usd:sum", "res_id:count_distinct"]
            )
        }
        alerts = budget_math.cost_alerts(
            spend or 0.0, self.ai_alert_daily_spend, per_record, self.ai_alert_cost_per_record,
            hits or 0, calls or 0, self.ai_alert_cache_hit_floor,
        )
        sent_day, _sep, sent = (self.ai_alerts_sent or "").partition(":")
        already = set(sent.split(",")) if sent_day == str(day) else set()
        new = {kind: message for kind, message in alerts.items() if kind not in already}
        if not new:
            return {}
        managers = self.env.ref("ai_cost_optimizer.group_ai_cost_manager").users.filtered(
            lambda user: not user.share and self in user.company_ids and user.partner_id.active
        )
        self.env["mail.thread"].sudo().message_notify(
            partner_ids=managers.partner_id.ids,
            subject=self.env._("AI cost alert for %s", self.name),
            body=Markup("<ul>%s</ul>") % Markup().join(Markup("<li>%s</li>") % text for text in new.values()),
        )
        self.sudo().ai_alerts_sent = f"{day}:{','.join(sorted(already | set(new)))}"
        return new

    # ------------------------------------------------------------------------------------------------
    # Spend anomalies
    # ------------------------------------------------------------------------------------------------

    def _ai_anomaly_settings(self):
        """The company's spend anomaly thresholds, as core.anomaly takes them (read by the hourly check only)."""
        self.ensure_one()
        return anomaly_rules.AnomalySettings(ratio=self.ai_anomaly_ratio, min_spend=self.ai_anomaly_min_spend)
