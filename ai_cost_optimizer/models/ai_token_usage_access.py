from odoo import models
from odoo.exceptions import AccessError

# What a user may change on their own usage rows: their rating of the answer.
USER_WRITABLE_FIELDS = frozenset({"quality_score", "feedback"})


class AiTokenUsage(models.Model):
    """The ledger records money spent: users rate their calls, only managers correct them."""

    _inherit = "ai.token.usage"

    def write(self, vals):
        if not self.env.su and set(vals) - USER_WRITABLE_FIELDS and not self.env.user.has_group(
            "ai_cost_optimizer.group_ai_cost_manager"
        ):
            raise AccessError(
                self.env._(
                    "Only AI Cost managers can change usage rows; you may rate your own calls (%s).",
                    ", ".join(sorted(USER_WRITABLE_FIELDS)),
                )
            )
        return super().write(vals)
