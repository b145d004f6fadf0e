from odoo import api, fields, models, tools

# The fields the optimizer reads on every call, cached per registry (see _output_figures).
FIGURE_FIELDS = ("code", "active", "expected_output_tokens", "learned_output_tokens", "learned_output_samples")


class AiTaskType(models.Model):
    """What a call does (chat, summarize, classify...), with its typical answer length: configured, and
    learned from the benchmarks (cached here by ai.provider.benchmark)."""

    _name = "ai.task.type"
    _inherit = ["ai.cost.gateway.cache.mixin"]
    _description = "AI Task Type"
    _order = "sequence, id"
    _gateway_cache_fields = FIGURE_FIELDS

    name = fields.Char(required=True, translate=True)
    code = fields.Char(required=True, help="Technical name passed as task_type to ai.service.send_message.")
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)

    # Answer length
    expected_output_tokens = fields.Integer(
        default=500, help="Typical answer length, used before enough usage history exists."
    )
    learned_output_tokens = fields.Float(readonly=True, help="Average output tokens of this task type's calls.")
    learned_output_samples = fields.Integer(readonly=True, help="Calls the learned average is computed from.")

    _sql_constraints = [
        ("code_unique", "unique(code)", "A task type with this code already exists."),
    ]

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
