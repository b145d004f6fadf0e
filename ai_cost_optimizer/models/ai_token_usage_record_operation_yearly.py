from odoo import models


class AiTokenUsageRecordOperationYearly(models.Model):
    """Per-year sums of the usage rows that concern an Odoo record, keyed by the record and the operation:
    the bounds of ai.token.usage.record.yearly for the API's top records of one operation."""

    _name = "ai.token.usage.record.operation.yearly"
    _inherit = "ai.token.usage.record.yearly"
    _description = "AI Usage per Record, Operation and Year"
    _rollup_record_keys = ("company_id", "operation", "res_model")
