from odoo import fields, models
from odoo.addons.ai_cost_optimizer.models.ai_service_provider_price import PRICE_DIGITS


class AccountAnalyticLine(models.Model):
    """Analytic items posted from the AI cost ledger (ai.cost.allocation.rule `post_analytic_lines`): one per
    day, distribution key (its accounts, one per plan), provider and operation."""

    _inherit = "account.analytic.line"

    # What the item posts: set only on items posted from the AI cost ledger
    ai_cost_key = fields.Char(
        string="AI Distribution Key", index="btree_not_null", readonly=True,
        help="The key of the analytic distribution it was posted for (account ids, one per plan).",
    )
    ai_cost_provider_id = fields.Many2one(
        "ai.service.provider", string="AI Provider", readonly=True, ondelete="set null",
    )
    ai_cost_operation = fields.Char(string="AI Operation", readonly=True)
    ai_cost_usd = fields.Float(
        digits=PRICE_DIGITS, string="AI Cost (USD)", readonly=True,
        help="The share of the ledger's cost in US dollars that the item posts.",
    )
    # The amount before rounding to the currency: the next items of the key carry the rounding difference,
    # so that a month's items of an account add up to its share of the ledger to a cent.
    ai_cost_unrounded = fields.Float(string="AI Amount Before Rounding", readonly=True)
