from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    ai_cost_posted_until = fields.Date(
        string="AI Spend Posted Until", readonly=True,
        help="The last day whose AI spend is posted as analytic items; the daily posting goes on from the next.",
    )
