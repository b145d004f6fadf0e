from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from .ai_service_provider_price import PRICE_DIGITS


class AiProviderExperimentArm(models.Model):
    """One provider of an A/B experiment, its share of the traffic and how it performed."""

    _name = "ai.provider.experiment.arm"
    _description = "AI Provider A/B Experiment Arm"
    _order = "experiment_id, id"

    experiment_id = fields.Many2one("ai.provider.experiment", required=True, ondelete="cascade", index=True)
    name = fields.Char(string="Group", required=True, default="A")
    provider_id = fields.Many2one("ai.service.provider", required=True, ondelete="restrict")
    percentage = fields.Float(required=True, digits=(5, 2), help="Share of the users sent to this arm.")

    # Results: the arm's benchmark samples, its calls that reached a provider (ai.provider.benchmark.report)
    calls = fields.Integer(
        compute="_compute_results",
        help="Calls of this arm that reached a provider, answered or failed: not those refused by a budget or "
        "answered from the response cache.",
    )
    error_rate = fields.Float(compute="_compute_results", digits=(5, 4))
    avg_cost_usd = fields.Float(
        compute="_compute_results", digits=PRICE_DIGITS, string="Average Cost (USD)",
        help="Over the answered calls of a known price: a call whose price is unknown counts as missing, not $0.",
    )
    avg_latency_ms = fields.Float(compute="_compute_results", string="Average Latency (ms)")
    avg_quality = fields.Float(compute="_compute_results", help="Average user rating (0-100) of rated answers.")
    rated_calls = fields.Integer(compute="_compute_results")

    _sql_constraints = [
        ("percentage_range", "CHECK(percentage > 0 AND percentage <= 100)",
         "An arm's percentage is between 0 and 100."),
    ]

    def _compute_results(self):
        """The arm's figures over its benchmark samples, as the Benchmarks view and compare_providers read
        them: the view says what a sample is and what it measured (its empty measures are skipped)."""
        Samples = self.env["ai.provider.benchmark.report"].sudo()
        domain = [("ab_arm_id", "in", self.ids)]
        figures = {
            arm: figures for arm, *figures in Samples._read_group(
                domain, ["ab_arm_id"],
                ["__count", "cost_usd:avg", "response_time_ms:avg", "quality_score:avg", "quality_score:count"],
            )
        }
        errors = dict(Samples._read_group(domain + [("error_occurred", "=", True)], ["ab_arm_id"], ["__count"]))
        for arm in self:
            calls, avg_cost, avg_latency, avg_quality, rated = figures.get(arm, (0, None, None, None, 0))
            arm.calls = calls
            arm.error_rate = errors.get(arm, 0) / calls if calls else 0.0
            arm.avg_cost_usd = avg_cost or 0.0
            arm.avg_latency_ms = avg_latency or 0.0
            arm.avg_quality = avg_quality or 0.0
            arm.rated_calls = rated

    @api.model_create_multi
    def create(self, vals_list):
        arms = super().create(vals_list)
        arms._check_not_running()
        return arms

    def write(self, vals):
        self._check_not_running()
        return super().write(vals)

    def unlink(self):
        self._check_not_running()
        return super().unlink()

    def _check_not_running(self):
        # Sticky assignments and per-arm results only mean something if the arms stay as they started.
        if any(arm.experiment_id.state == "running" for arm in self):
            raise UserError(self.env._("Stop the experiment before changing its arms."))

    @api.constrains("percentage")
    def _check_experiment_total(self):
        self.experiment_id._check_percentages()

    @api.constrains("provider_id", "experiment_id")
    def _check_provider_company(self):
        for arm in self:
            if arm.provider_id.company_id != arm.experiment_id.company_id:
                raise ValidationError(self.env._("The arm's provider must belong to the experiment's company."))
