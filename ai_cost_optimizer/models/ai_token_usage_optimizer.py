from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..core.messages import short_repr


class AiTokenUsage(models.Model):
    """Routing facts of a call (A/B arm) and the user's rating of its answer."""

    _inherit = "ai.token.usage"

    ab_arm_id = fields.Many2one("ai.provider.experiment.arm", string="A/B Arm", ondelete="set null",
                                index="btree_not_null", readonly=True)
    quality_rated = fields.Boolean(readonly=True, help="The user rated this answer (quality_score holds the rating).")

    @api.constrains("quality_score")
    def _check_quality_score(self):
        if any(not 0 <= usage.quality_score <= 100 for usage in self):
            raise ValidationError(self.env._("A rating is a number from 0 to 100."))

    def write(self, vals):
        result = super().write(vals)
        if "quality_score" in vals:
            self._feed_rating_to_benchmarks()
        return result

    def rate_quality(self, score, feedback=None):
        """Rate the answers: score 0-100 (True/False: thumbs up/down), optional feedback text.
        The rating feeds the provider's benchmark quality, which the optimizer blends in."""
        if isinstance(score, bool):
            score = 100 if score else 0
        if not isinstance(score, int) or not 0 <= score <= 100:
            raise ValidationError(self.env._("A rating is a number from 0 to 100, not %s.", short_repr(score)))
        if any(usage.status != "ok" for usage in self):
            raise ValidationError(self.env._("Only answered calls can be rated."))
        vals = {"quality_score": score}
        if feedback is not None:
            vals["feedback"] = feedback
        # Written as the user: only their own rows, and only the rating (ai_token_usage_access).
        return self.write(vals)

    def _feed_rating_to_benchmarks(self):
        """A rating (also one typed in the form) marks the row rated and becomes its benchmark's quality."""
        rows = self.sudo()
        rows.write({"quality_rated": True})
        benchmarks = self.env["ai.provider.benchmark"].sudo().search([("usage_id", "in", rows.ids)])
        for benchmark in benchmarks:
            benchmark.write({"quality_score": benchmark.usage_id.quality_score, "rated": True})
        benchmarks.provider_id._refresh_benchmark_quality()

    def action_thumbs_up(self):
        return self.rate_quality(True)

    def action_thumbs_down(self):
        return self.rate_quality(False)
