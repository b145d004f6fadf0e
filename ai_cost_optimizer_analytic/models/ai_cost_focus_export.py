import csv
import datetime
import io
import json
from collections import defaultdict

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from .ai_cost_allocation_rule import ONE_DAY

# The columns of the export, in order: every column FOCUS 1.2 makes mandatory, and the conditional ones the
# ledger can fill (consumed tokens, the model as SKU, the company as sub account, tags).
FOCUS_COLUMNS = [
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency",
    "ChargePeriodEnd", "ChargePeriodStart", "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "EffectiveCost",
    "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName",
    "ServiceCategory", "ServiceName", "ServiceSubcategory", "SkuId", "SubAccountId", "SubAccountName", "Tags",
]


def focus_datetime(day):
    """FOCUS date-times: ISO 8601 in UTC, the ledger's days being UTC days."""
    return f"{day.isoformat()}T00:00:00Z"


def focus_decimal(value):
    return format(value, ".10f").rstrip("0").rstrip(".") if value is not None else ""


class AiCostFocusExport(models.TransientModel):
    """The AI spend as a FinOps FOCUS 1.2 cost and usage dataset (CSV), so that FinOps tools read it next to
    cloud spend: from Reporting (this wizard) and from GET /ai_cost/api/v1/focus (the same rows)."""

    _name = "ai.cost.focus.export"
    _description = "AI Spend FOCUS Export"

    date_from = fields.Date(string="From", required=True, default=lambda self: fields.Date.today().replace(day=1))
    date_to = fields.Date(string="To", required=True, default=fields.Date.today)

    @api.constrains("date_from", "date_to")
    def _check_dates(self):
        # The API answers a reversed range with a 400, which the browser would download as the file.
        if any(export.date_from > export.date_to for export in self):
            raise ValidationError(self.env._("The export's first day comes after its last day."))

    def action_export(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_url", "target": "download",
            "url": f"/ai_cost/api/v1/focus?start={self.date_from}&end={self.date_to}",
        }

    @api.model
    def _focus_csv(self, start, end, companies):
        """The FOCUS dataset of `_focus_rows` as CSV text, a header line first."""
        out = io.StringIO()
        writer = csv.DictWriter(out, FOCUS_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self._focus_rows(start, end, companies))
        return out.getvalue()

    @api.model
    def _focus_rows(self, start, end, companies):
        """One FOCUS row per day, company, provider, model and operation of the ledger from `start` to `end`
        (inclusive), the cost-unknown calls in rows of their own with an empty cost, as {column: text}."""
        start, end = fields.Date.to_date(start), fields.Date.to_date(end)
        self.env.cr.execute(SQL(
            """
            SELECT u.create_date::date AS day, u.company_id, u.provider_id, u.model, u.operation,
                   COALESCE(u.cost_unknown, FALSE) AS cost_unknown, SUM(COALESCE(u.cost_usd, 0)) AS cost,
                   SUM(COALESCE(u.input_tokens, 0) + COALESCE(u.output_tokens, 0)) AS tokens
              FROM ai_token_usage u
             WHERE u.company_id = ANY(%s) AND u.create_date >= %s AND u.create_date < %s
             GROUP BY 1, 2, 3, 4, 5, 6
             ORDER BY 1, 2, 3, 4, 5, 6
            """,
            companies.ids, datetime.datetime.combine(start, datetime.time.min),
            datetime.datetime.combine(end + ONE_DAY, datetime.time.min),
        ))
        groups = self.env.cr.dictfetchall()
        providers = self.env["ai.service.provider"].sudo().with_context(active_test=False).browse(
            {group["provider_id"] for group in groups if group["provider_id"]}
        )
        names = {provider.id: provider.name for provider in providers}
        allocation = self._posted_allocation(start, end, companies)
        # The allocation is the books' (day, provider, operation): tagged as shares of its spend.
        spend = defaultdict(float)
        for group in groups:
            spend[self._allocation_key(group)] += group["cost"]
        rows = []
        for group in groups:
            day, provider = group["day"], names.get(group["provider_id"], "Unknown provider")
            cost = None if group["cost_unknown"] else group["cost"]
            billing_start = day.replace(day=1)
            tags = {"ai_operation": group["operation"] or "", "ai_model": group["model"] or ""}
            if group["cost_unknown"]:
                tags["ai_cost_unknown"] = "true"
            key = self._allocation_key(group)
            tags.update({
                tag: focus_decimal(round(100 * usd / spend[key], 4))
                for tag, usd in allocation.get(key, {}).items() if spend[key]
            })
            company = companies.browse(group["company_id"])
            rows.append({
                "BilledCost": focus_decimal(cost), "ContractedCost": focus_decimal(cost),
                "EffectiveCost": focus_decimal(cost), "ListCost": focus_decimal(cost),
                "BillingAccountId": str(group["provider_id"] or ""), "BillingAccountName": provider,
                "BillingCurrency": "USD",
                "BillingPeriodStart": focus_datetime(billing_start),
                "BillingPeriodEnd": focus_datetime((billing_start + datetime.timedelta(days=32)).replace(day=1)),
                "ChargeCategory": "Usage", "ChargeClass": "", "ChargeFrequency": "Usage-Based",
                "ChargeDescription": f"{group['model'] or 'AI'} calls ({group['operation'] or 'no operation'}) "
                                     f"through {provider}",
                "ChargePeriodStart": focus_datetime(day), "ChargePeriodEnd": focus_datetime(day + ONE_DAY),
                "ConsumedQuantity": focus_decimal(group["tokens"]), "ConsumedUnit": "Tokens",
                "PricingQuantity": focus_decimal(group["tokens"]), "PricingUnit": "Tokens",
                "ProviderName": provider, "PublisherName": provider, "InvoiceIssuerName": provider,
                "ServiceCategory": "AI and Machine Learning", "ServiceSubcategory": "Generative AI",
                "ServiceName": provider, "SkuId": group["model"] or "",
                "SubAccountId": str(company.id), "SubAccountName": company.name,
                "Tags": json.dumps(tags, sort_keys=True),
            })
        return rows

    @staticmethod
    def _allocation_key(group):
        return group["day"], group["company_id"], group["provider_id"], group["operation"]

    @api.model
    def _posted_allocation(self, start, end, companies):
        """{(day, company, provider, operation): {"analytic:<plan>:<account>": USD}} of the posted analytic
        items: where the books put the spend of the day's calls of that provider and operation."""
        posted = self.env["account.analytic.line"].sudo()._read_group(
            [("ai_cost_key", "!=", False), ("company_id", "in", companies.ids),
             ("date", ">=", start), ("date", "<=", end)],
            groupby=["date:day", "company_id", "ai_cost_provider_id", "ai_cost_operation", "ai_cost_key"],
            aggregates=["ai_cost_usd:sum"],
        )
        Rule = self.env["ai.cost.allocation.rule"].sudo()
        allocation = defaultdict(lambda: defaultdict(float))
        for day, company, provider, operation, key, usd in posted:
            for account in Rule._key_accounts(key):
                tag = f"analytic:{account.root_plan_id.name}:{account.name}"
                allocation[day, company.id, provider.id or None, operation or None][tag] += usd
        return allocation
