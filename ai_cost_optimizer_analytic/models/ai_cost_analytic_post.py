from odoo import api, fields, models
from odoo.addons.ai_cost_optimizer.models.ai_service_provider_price import PRICE_DIGITS

from .ai_cost_allocation_rule import ONE_DAY


class AiCostAnalyticPost(models.TransientModel):
    """The administrator's "post again": the AI spend of a range of days posted (again) as analytic items,
    with the rules and records as they are now."""

    _name = "ai.cost.analytic.post"
    _description = "Post AI Spend to Analytic Accounting"

    # The days to post
    date_from = fields.Date(string="From", required=True, default=lambda self: self._default_date_from())
    date_to = fields.Date(string="To", required=True, default=lambda self: fields.Date.today() - ONE_DAY)

    # Where the posting stands
    posted_until = fields.Date(related="company_id.ai_cost_posted_until")
    company_id = fields.Many2one("res.company", default=lambda self: self.env.company, required=True, readonly=True)
    unallocated_usd = fields.Float(
        compute="_compute_unallocated_usd", digits=PRICE_DIGITS, string="Unallocated (USD)",
        help="The spend of the posted days of the range that no record nor rule allocated.",
    )

    @api.depends("date_from", "date_to", "company_id")
    def _compute_unallocated_usd(self):
        for wizard in self:
            wizard.unallocated_usd = wizard.date_from and wizard.date_to and self.env["ai.cost.unallocated"]._total_usd(
                wizard.date_from, wizard.date_to, wizard.company_id
            )

    def _default_date_from(self):
        return (fields.Date.today() - ONE_DAY).replace(day=1)

    def action_post(self):
        self.ensure_one()
        self.env["ai.cost.allocation.rule"].post_analytic_lines(self.date_from, self.date_to, self.company_id)
        action = self.env["ir.actions.act_window"]._for_xml_id("analytic.account_analytic_line_action_entries")
        action["domain"] = [
            ("ai_cost_key", "!=", False), ("company_id", "=", self.company_id.id),
            ("date", ">=", self.date_from), ("date", "<=", self.date_to),
        ]
        return action
