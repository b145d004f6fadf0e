from odoo import models


class ResUsers(models.Model):
    _inherit = "res.users"

    def unlink(self):
        self.env["ai.token.usage"]._rollup_fold_deleted("user_id", self.ids)
        return super().unlink()
