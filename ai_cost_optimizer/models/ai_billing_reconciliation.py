from odoo import api, fields, models

from .ai_service_provider_price import PRICE_DIGITS

STATUSES = [("matched", "Matched"), ("explained", "Explained"), ("unexplained", "Unexplained"), ("pending", "Pending")]


class AiBillingReconciliation(models.Model):
    """The ledger and the provider's bill side by side for one account, day and model, with the difference,
    a status and one sentence that explains it when it can (written by ai.billing.account.reconcile)."""

    _name = "ai.billing.reconciliation"
    _description = "AI Billing Reconciliation"
    _order = "date desc, account_id, model, id"
    _rec_name = "model"

    # Key
    account_id = fields.Many2one("ai.billing.account", required=True, ondelete="cascade", index=True, readonly=True)
    company_id = fields.Many2one(related="account_id.company_id", store=True, readonly=True)
    date = fields.Date(required=True, readonly=True, help="UTC day, as the provider's buckets.")
    model = fields.Char(readonly=True)

    # The ledger
    ledger_calls = fields.Integer(string="Calls (Ledger)", readonly=True)
    ledger_tokens = fields.Integer(string="Tokens (Ledger)", readonly=True)
    ledger_cost_usd = fields.Float(string="Tracked (USD)", digits=PRICE_DIGITS, readonly=True)
    ledger_cost_unknown_calls = fields.Integer(string="Calls With Unknown Cost", readonly=True)
    ledger_failed_attempts = fields.Integer(string="Failed Attempts", readonly=True)

    # The bill
    billed_requests = fields.Integer(string="Requests (Bill)", readonly=True,
                                     help="0 when the provider's report counts no requests (Anthropic).")
    billed_tokens = fields.Integer(string="Tokens (Bill)", readonly=True, help="Every key of the organization.")
    other_keys_tokens = fields.Integer(string="Tokens of Other Keys", readonly=True,
                                       help="Known only when the providers carry their API key id.")
    billed_usd = fields.Float(string="Billed (USD)", digits=PRICE_DIGITS, readonly=True)

    # The verdict
    diff_tokens = fields.Integer(string="Difference (Tokens)", readonly=True, help="Bill minus ledger.")
    diff_usd = fields.Float(string="Difference (USD)", digits=PRICE_DIGITS, readonly=True, help="Bill minus ledger.")
    status = fields.Selection(STATUSES, required=True, readonly=True, index=True)
    # Text, not Char: the list wraps it, and a sentence naming a price difference and other keys' usage is long.
    explanation = fields.Text(readonly=True)

    @api.model
    def _billed_vs_tracked(self, companies, start, end):
        """The dashboard's "Billed vs tracked" of ``start`` to ``end`` (inclusive): the dollars the providers
        billed against the ledger's over the days they reported, the difference, the rows nothing explains
        and the days and models still pending."""
        groups = self._read_group(
            [("company_id", "in", companies.ids), ("date", ">=", start), ("date", "<=", end)],
            groupby=["status"], aggregates=["__count", "billed_usd:sum", "ledger_cost_usd:sum"],
        )
        reported = [(count, billed, tracked) for status, count, billed, tracked in groups if status != "pending"]
        counts = {status: count for status, count, _billed, _tracked in groups}
        billed = sum(billed for _count, billed, _tracked in reported)
        tracked = sum(tracked for _count, _billed, tracked in reported)
        return {
            "billed": billed, "tracked": tracked, "difference": billed - tracked,
            "rows": sum(counts.values()), "unexplained": counts.get("unexplained", 0),
            "pending": counts.get("pending", 0),
        }
