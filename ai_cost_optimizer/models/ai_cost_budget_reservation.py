from odoo import fields, models

from .ai_service_provider_price import PRICE_DIGITS


class AiCostBudgetReservation(models.Model):
    """The estimated cost of one in-flight call, held against a budget period until the call
    is settled (replaced by its actual cost), released (the call failed) or expires (the worker died).

    Rows are written with plain SQL by the gateway: they live for the duration of one call.
    """

    _name = "ai.cost.budget.reservation"
    _description = "AI Budget Reservation"
    _order = "id desc"

    period_id = fields.Many2one("ai.cost.budget.period", required=True, index=True, ondelete="cascade")
    budget_id = fields.Many2one(related="period_id.budget_id")
    amount = fields.Float(digits=PRICE_DIGITS, string="Reserved (USD)", required=True)
    # The call's worst case (prompt plus max_tokens of output): the amount itself on a worst-case budget, more on a
    # calibrated one; the difference is what the budget has at risk while the call runs.
    worst_case = fields.Float(digits=PRICE_DIGITS, string="Worst Case (USD)")
    # create_date is the reservation time: stale reservations expire from it (index for the cron).
    create_date = fields.Datetime(index=True, readonly=True)
