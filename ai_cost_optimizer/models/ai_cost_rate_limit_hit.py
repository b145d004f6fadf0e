from odoo import fields, models
from odoo.tools import create_index


class AiCostRateLimitHit(models.Model):
    """One call a rate limit served (`served`), or one call waiting for room (a ticket: its place in the queue).
    Written and counted by ai.cost.rate.limit's ADMIT_SQL; purged once no minute counts it."""

    _name = "ai.cost.rate.limit.hit"
    _description = "AI Rate Limit Hit"
    _order = "id"
    _log_access = False

    limit_id = fields.Many2one("ai.cost.rate.limit", required=True, ondelete="cascade", index=False)
    at = fields.Datetime(required=True)
    tokens = fields.Integer()
    served = fields.Boolean()

    def init(self):
        # ADMIT_SQL counts a limit's served calls of the last minute and looks for earlier waiting tickets.
        create_index(self.env.cr, "ai_cost_rate_limit_hit_limit_idx", self._table, ["limit_id", "served", "at"])
