from odoo import api, fields, models, tools

# The fields the optimizer reads on every call, cached per registry (see _output_figures).
FIGURE_FIELDS = ("code", "active", "expected_output_tokens", "learned_output_tokens", "learned_output_samples")


class AiTaskType(models.Model):
    """The answer length learned from the benchmarks, cached by ai.provider.benchmark."""

    _inherit = "ai.task.type"

    learned_output_tokens = fields.Float(readonly=True, help="Average output tokens of this task type's calls.")
    learned_output_samples = fields.Integer(readonly=True, help="Calls the learned average is computed from.")

    @api.model_create_multi
    def create(self, vals_list):
        task_types = super().create(vals_list)
        self.env.registry.clear_cache()
        return task_types

    def write(self, vals):
        result = super().write(vals)
        if set(FIGURE_FIELDS).intersection(vals):
            self.env.registry.clear_cache()
        return result

    def unlink(self):
        result = super().unlink()
        self.env.registry.clear_cache()
        return result

    @api.model
    def _output_figures(self):
        """{code: (expected_output_tokens, learned_output_tokens, learned_output_samples)} of the active
        task types. Read on every gateway call and changed seldom (by hand, or by the benchmark cron):
        cached, and cleared in every worker through the registry signaling when one changes."""
        return self._output_figures_cached()

    @tools.ormcache()
    def _output_figures_cached(self):
        rows = self.sudo().search_fetch([("active", "=", True)], FIGURE_FIELDS)
        return tools.frozendict(
            (row.code, (row.expected_output_tokens, row.learned_output_tokens, row.learned_output_samples))
            for row in rows
        )
