from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..core import budget as budget_math
from .ai_service_provider_price import PRICE_DIGITS


class ResCompany(models.Model):
    """Company-level cost monitoring: daily spend, cost per record, cache hit rate."""

    _inherit = "res.company"

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

    @api.constrains("ai_alert_daily_spend", "ai_alert_cost_per_record", "ai_alert_cache_hit_floor")
    def _check_ai_alert_limits(self):
        for company in self:
            if company.ai_alert_daily_spend < 0 or company.ai_alert_cost_per_record < 0:
                raise ValidationError(self.env._("Cost alert limits cannot be negative."))
            if not 0 <= company.ai_alert_cache_hit_floor <= 100:
                raise ValidationError(self.env._("The cache hit rate floor is a percentage between 0 and 100."))

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
