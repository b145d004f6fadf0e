from odoo import models


class AiTokenUsageRecordOperationMonthly(models.Model):
    """Per-month sums of the usage rows that concern an Odoo record, keyed by the record and the operation:
    what ai.token.usage.record.monthly is to the API's top records of a period, for those of one operation
    (the months that a period covers, and the bounds of its costliest records, see cost_api `_record_bound`)."""

    _name = "ai.token.usage.record.operation.monthly"
    _inherit = "ai.token.usage.record.monthly"
    _description = "AI Usage per Record, Operation and Month"
    _rollup_record_keys = ("company_id", "operation", "res_model")
    _rollup_record_index = "company_id, operation, res_model, cost_usd, call_count"
