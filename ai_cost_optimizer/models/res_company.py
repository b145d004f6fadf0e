from odoo import api, fields, models
from odoo.exceptions import ValidationError


class ResCompany(models.Model):
    _inherit = "res.company"

    ai_default_provider_id = fields.Many2one(
        "ai.service.provider", string="Default AI Provider", domain="[('company_id', '=', id)]"
    )
    ai_prompt_retention = fields.Selection(
        [("none", "Do not keep"), ("truncated", "First 1000 characters"), ("full", "Full text")],
        string="Keep Prompts",
        default="truncated",
        required=True,
    )
    ai_prompt_retention_days = fields.Integer(string="Purge Prompts After (days)", default=30)

    @api.constrains("ai_prompt_retention_days")
    def _check_ai_prompt_retention_days(self):
        # 100 years: beyond that a date computation would overflow rather than purge.
        if any(not 0 <= company.ai_prompt_retention_days <= 36500 for company in self):
            raise ValidationError(self.env._("The prompt retention period must be between 0 and 36500 days."))

    @api.constrains("ai_default_provider_id")
    def _check_ai_default_provider_company(self):
        # The field's domain only guides the UI; a call must never be billed to another company.
        for company in self:
            if company.ai_default_provider_id.sudo().company_id not in (company, self.env["res.company"]):
                raise ValidationError(self.env._("The default AI provider must belong to %s.", company.name))

    def _ai_retained_text(self, text):
        """The part of a prompt or completion this company keeps."""
        self.ensure_one()
        if self.ai_prompt_retention == "none" or not text:
            return False
        return text[:1000] if self.ai_prompt_retention == "truncated" else text
