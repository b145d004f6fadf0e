from odoo import api, fields, models, tools
from odoo.exceptions import ValidationError

from ..core.messages import short_repr
from .ai_service_provider_price import PRICE_DIGITS
from .ai_token_usage import COMPLEXITIES

# Calls a task type's learned answer length is averaged over (the most recent ones).
OUTPUT_SAMPLE_WINDOW = 1000


class AiProviderBenchmark(models.Model):
    """One provider run measured outside the gateway (`log_benchmark`), and the provider comparison.

    The gateway writes no row here: its calls are benchmark samples through their usage rows. Both
    kinds are read together through ai.provider.benchmark.report: by provider comparison, by the
    quality the optimizer blends in and by the answer length it expects."""

    _name = "ai.provider.benchmark"
    _description = "AI Provider Benchmark Run"
    _inherit = ["ai.cost.code.label.mixin"]
    _order = "create_date desc, id desc"
    _code_label_fields = ("task_type",)

    provider_id = fields.Many2one("ai.service.provider", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one("res.company", required=True, index=True)
    task_type = fields.Char(string="Task Type Code", required=True)
    task_type_label = fields.Char(string="Task Type", compute="_compute_code_labels")
    task_complexity = fields.Selection(COMPLEXITIES)
    input_tokens = fields.Integer()
    output_tokens = fields.Integer()
    cost_usd = fields.Float(digits=PRICE_DIGITS, string="Cost (USD)")
    response_time_ms = fields.Float(string="Response Time (ms)")
    quality_score = fields.Integer(help="Rated quality of the answer (0-100), when rated.")
    rated = fields.Boolean(help="The answer was rated: quality_score holds the rating.")
    error_occurred = fields.Boolean()

    def init(self):
        # The samples' readers (see ai.provider.benchmark.report) take one task type or one provider's
        # rated runs, recent first.
        tools.create_index(
            self.env.cr, "ai_provider_benchmark_task_company_date_idx", self._table,
            ["task_type", "company_id", "create_date"],
        )
        tools.create_index(
            self.env.cr, "ai_provider_benchmark_rated_idx", self._table,
            ["provider_id", "create_date"], where="rated",
        )

    @api.constrains("quality_score")
    def _check_quality_score(self):
        if any(not 0 <= row.quality_score <= 100 for row in self):
            raise ValidationError(self.env._("A quality score is between 0 and 100."))

    # ------------------------------------------------------------------
    # Public API
    # ------------------------------------------------------------------
    @api.model
    def log_benchmark(self, provider_id, task_type, task_complexity, input_tokens, output_tokens, cost_usd,
                      response_time_ms, quality_score=None, error_occurred=False):
        """Record one provider run made outside the gateway; returns its record. A rated run refreshes
        the provider's cached quality at once."""
        valid_id = isinstance(provider_id, int) and not isinstance(provider_id, bool) and 0 < provider_id < 2**31
        provider = self.env["ai.service.provider"].sudo().browse(provider_id if valid_id else []).exists()
        if not provider:
            raise ValidationError(self.env._("Unknown AI provider %s.", short_repr(provider_id)))
        row = self.sudo().create({
            "provider_id": provider.id,
            "company_id": provider.company_id.id,
            "task_type": task_type,
            "task_complexity": task_complexity or False,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cost_usd": cost_usd,
            "response_time_ms": response_time_ms,
            "quality_score": quality_score or 0,
            "rated": quality_score is not None,
            "error_occurred": bool(error_occurred),
        })
        if quality_score is not None:
            provider._refresh_benchmark_quality()
        return row

    @api.model
    def compare_providers(self, task_type, period_days=30):
        """Per provider of the current company, over the last `period_days` days of `task_type`:
        {'provider_id', 'provider_name', 'calls', 'errors', 'avg_cost_usd', 'avg_latency_ms',
        'p95_latency_ms', 'error_rate', 'avg_quality', 'cost_per_quality_point'}, best value first.
        Costs and latencies are over successful calls (costs over those of a known price), of the
        gateway and of external runs alike; avg_quality is the rated quality, or the
        provider's effective quality when no answer was rated."""
        self._check_compare_input(task_type, period_days)
        since = fields.Datetime.subtract(fields.Datetime.now(), days=period_days)
        self.flush_model()
        self.env["ai.token.usage"].flush_model()  # the gateway's samples
        # Raw SQL: a 95th percentile, which _read_group cannot express. The view's measures are empty
        # where they were not measured (see ai.provider.benchmark.report), so the averages skip them.
        self.env.cr.execute(
            """
            SELECT provider_id,
                   COUNT(*),
                   COUNT(*) FILTER (WHERE error_occurred),
                   AVG(cost_usd),
                   AVG(response_time_ms),
                   PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY response_time_ms),
                   AVG(quality_score)
              FROM ai_provider_benchmark_report
             WHERE task_type = %s AND company_id = %s AND date >= %s
          GROUP BY provider_id
            """,
            [task_type, self.env.company.id, since],
        )
        rows = self.env.cr.fetchall()
        providers = self.env["ai.service.provider"].sudo().with_context(active_test=False).browse(
            [row[0] for row in rows]
        )
        result = []
        for (provider_id, calls, errors, avg_cost, avg_latency, p95, avg_quality), provider in zip(
            rows, providers, strict=True
        ):
            quality = float(avg_quality) if avg_quality is not None else provider.effective_quality
            avg_cost = avg_cost or 0.0
            result.append({
                "provider_id": provider_id,
                "provider_name": provider.name,
                "calls": calls,
                "errors": errors,
                "avg_cost_usd": avg_cost,
                "avg_latency_ms": avg_latency or 0.0,
                "p95_latency_ms": p95 or 0.0,
                "error_rate": errors / calls,
                "avg_quality": quality,
                "cost_per_quality_point": avg_cost / quality if quality else None,
            })
        result.sort(key=lambda r: (r["cost_per_quality_point"] is None, r["cost_per_quality_point"] or 0.0))
        return result

    @api.model
    def get_ab_test_group(self, task_type):
        """The current user's arm of the running A/B experiment on `task_type`, sticky per user:
        {'experiment_id', 'experiment_name', 'arm_id', 'group', 'provider_id'} or False."""
        return self.env["ai.provider.experiment"]._group_for_user(task_type, self.env.user)

    def _check_compare_input(self, task_type, period_days):
        _ = self.env._
        if not self.env["ai.cost.optimizer"]._is_code(task_type) or task_type not in self.env[
            "ai.task.type"
        ]._output_figures():
            raise ValidationError(_("Unknown task type %s.", short_repr(task_type)))
        if isinstance(period_days, bool) or not isinstance(period_days, int) or not 0 < period_days <= 36500:
            raise ValidationError(_("period_days must be a positive number of days, not %s.", short_repr(period_days)))

    # ------------------------------------------------------------------
    # Cached figures for the optimizer
    # ------------------------------------------------------------------
    @api.model
    def _cron_refresh_figures(self):
        """Refresh what the optimizer caches: every provider's rated quality and every task type's
        answer length (the latest OUTPUT_SAMPLE_WINDOW successful calls)."""
        self.env["ai.service.provider"].sudo().with_context(active_test=False).search([])._refresh_benchmark_quality()
        task_types = self.env["ai.task.type"].sudo().search([])
        for task_type in task_types:
            recent = self.env["ai.provider.benchmark.report"].sudo().search_read(
                [("task_type", "=", task_type.code), ("error_occurred", "=", False)], ["output_tokens"],
                order="date desc", limit=OUTPUT_SAMPLE_WINDOW,
            )
            samples = len(recent)
            average = sum(row["output_tokens"] for row in recent) / samples if samples else 0.0
            learned = {"learned_output_tokens": average, "learned_output_samples": samples}
            # An unchanged figure is not written: a write clears the optimizer's cache in every worker.
            if (task_type.learned_output_tokens, task_type.learned_output_samples) != tuple(learned.values()):
                task_type.write(learned)
