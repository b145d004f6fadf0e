from odoo import api, fields, models

from ..core.billing import COUNTED_KINDS, Reports
from .ai_service_provider_price import PRICE_DIGITS


class AiBillingReportLine(models.Model):
    """One line of a provider's own reports, as fetched: the tokens of a day, model and API key (usage), or
    the dollars billed for a day and model by kind of token (cost: the cost reports have no key)."""

    _name = "ai.billing.report.line"
    _description = "AI Billing Report Line"
    _order = "date desc, model, line_type, api_key_id, id"

    # Key
    account_id = fields.Many2one("ai.billing.account", required=True, ondelete="cascade", index=True, readonly=True)
    company_id = fields.Many2one(related="account_id.company_id", store=True, readonly=True)
    date = fields.Date(required=True, readonly=True, help="The provider's daily bucket (UTC).")
    model = fields.Char(readonly=True)
    line_type = fields.Selection([("usage", "Usage"), ("cost", "Cost")], required=True, readonly=True)
    api_key_id = fields.Char(string="API Key ID", readonly=True,
                             help="The key's id as the provider's console shows it.")

    # Tokens (usage lines)
    requests = fields.Integer(readonly=True, help="0 when the report counts no requests (Anthropic's usage report).")
    uncached_input_tokens = fields.Integer(readonly=True)
    cache_read_tokens = fields.Integer(readonly=True)
    cache_write_tokens = fields.Integer(readonly=True)
    cache_write_1h_tokens = fields.Integer(
        string="1-Hour Cache Write Tokens", readonly=True,
        help="Part of the cache write tokens: those kept for an hour, which Anthropic bills higher.",
    )
    output_tokens = fields.Integer(readonly=True)

    # Dollars (cost lines)
    billed_usd = fields.Float(string="Billed (USD)", digits=PRICE_DIGITS, readonly=True)
    billed_uncached_input_usd = fields.Float(string="Billed Input (USD)", digits=PRICE_DIGITS, readonly=True)
    billed_cache_read_usd = fields.Float(string="Billed Cache Read (USD)", digits=PRICE_DIGITS, readonly=True)
    billed_cache_write_usd = fields.Float(string="Billed Cache Write (USD)", digits=PRICE_DIGITS, readonly=True,
                                          help="The cache writes other than the 1-hour ones.")
    billed_cache_write_1h_usd = fields.Float(string="Billed 1-Hour Cache Write (USD)", digits=PRICE_DIGITS,
                                             readonly=True)
    billed_output_usd = fields.Float(string="Billed Output (USD)", digits=PRICE_DIGITS, readonly=True)
    billed_other_usd = fields.Float(
        string="Billed Other (USD)", digits=PRICE_DIGITS, readonly=True,
        help="Dollars no kind of token names: web searches, code execution, or a report without a breakdown.",
    )

    @api.model
    def _replace(self, account, date_from, date_to, reports: Reports):
        """Put ``reports`` in place of the account's lines of ``date_from`` to ``date_to``: a day fetched
        again has one set of lines, the latest."""
        self.search([("account_id", "=", account.id), ("date", ">=", date_from), ("date", "<=", date_to)]).unlink()
        usage = [{
            "account_id": account.id, "line_type": "usage", "date": line.day, "model": line.model,
            "api_key_id": line.api_key_id or False, "requests": line.tokens.requests or 0,
            **{f"{kind}_tokens": getattr(line.tokens, kind) for kind in COUNTED_KINDS},
        } for line in reports.usage]
        costs = [{
            "account_id": account.id, "line_type": "cost", "date": line.day, "model": line.model,
            "billed_usd": float(line.total),
            **{f"billed_{kind}_usd": float(usd) for kind, usd in line.usd.items()},
        } for line in reports.costs]
        return self.create(usage + costs)
