from odoo import fields, models


class AiTaskType(models.Model):
    """The answer length learned from the benchmarks, cached by ai.provider.benchmark."""

    _inherit = "ai.task.type"

    learned_output_tokens = fields.Float(readonly=True, help="Average output tokens of this task type's calls.")
    learned_output_samples = fields.Integer(readonly=True, help="Calls the learned average is computed from.")

    def _by_code(self, code):
        return self.search([("code", "=", code)], limit=1)
