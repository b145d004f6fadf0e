from odoo import api, fields, models


class AiCostBudgetOperation(models.Model):
    """An operation code callers pass to send_message (e.g. lead_qualification), to scope budgets."""

    _name = "ai.cost.budget.operation"
    _description = "AI Budget Operation"
    _order = "name"

    name = fields.Char(required=True, help="The `operation` argument of send_message, e.g. lead_qualification.")

    _sql_constraints = [("name_unique", "UNIQUE(name)", "This operation already exists.")]

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("name"):
                vals["name"] = vals["name"].strip()
        return super().create(vals_list)

    # Budgets are matched by operation name from cached rules (ai.cost.budget._company_rules).
    def write(self, vals):
        if "name" in vals:
            self.env["ai.cost.budget"]._clear_rules()
        return super().write(vals)

    def unlink(self):
        self.env["ai.cost.budget"]._clear_rules()
        return super().unlink()
