from odoo import api, fields, models

from ..core.recommendation import blended_quality


class AiServiceProvider(models.Model):
    """The benchmark figures the optimizer ranks with, cached on the provider by
    ai.provider.benchmark so that a recommendation reads no benchmark rows."""

    _inherit = "ai.service.provider"

    benchmark_quality = fields.Float(
        readonly=True, help="Average rated quality (0-100) of this provider's answers, from its benchmarks."
    )
    benchmark_quality_samples = fields.Integer(readonly=True, string="Rated Answers")
    effective_quality = fields.Float(
        compute="_compute_effective_quality",
        help="The configured quality blended with the rated answers; the optimizer's quality bar applies to it.",
    )

    @api.depends("quality_score", "benchmark_quality", "benchmark_quality_samples")
    def _compute_effective_quality(self):
        for provider in self:
            provider.effective_quality = blended_quality(
                provider.quality_score, provider.benchmark_quality, provider.benchmark_quality_samples
            )

    def _refresh_benchmark_quality(self):
        """Cache the average rated quality of each provider's answers (indexed on rated rows)."""
        if not self:
            return
        self.env["ai.provider.benchmark"].flush_model(["provider_id", "quality_score", "rated"])
        self.env.cr.execute(
            """
            SELECT provider_id, AVG(quality_score), COUNT(*)
              FROM ai_provider_benchmark
             WHERE provider_id = ANY(%s) AND rated
          GROUP BY provider_id
            """,
            [self.ids],
        )
        figures = {provider_id: (float(average), count) for provider_id, average, count in self.env.cr.fetchall()}
        for provider in self:
            average, count = figures.get(provider.id, (0.0, 0))
            if (provider.benchmark_quality, provider.benchmark_quality_samples) != (average, count):
                provider.write({"benchmark_quality": average, "benchmark_quality_samples": count})
