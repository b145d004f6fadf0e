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

    # Results, from the usage rows of the calls routed to this arm
    calls = fields.Integer(compute="_compute_results")
    error_rate = fields.Float(compute="_compute_results", digits=(5, 4))
    avg_cost_usd = fields.Float(compute="_compute_results", digits=PRICE_DIGITS, string="Average Cost (USD)")
    avg_latency_ms = fields.Float(compute="_compute_results", string="Average Latency (ms)")
    avg_quality = fields.Float(compute="_compute_results", help="Average user rating (0-100) of rated answers.")
    rated_calls = fields.Integer(compute="_compute_results")

    _sql_constraints = [
        ("percentage_range", "CHECK(percentage > 0 AND percentage <= 100)",
         "An arm's percentage is between 0 and 100."),
    ]

    def _compute_results(self):
        Usage = self.env["ai.token.usage"].sudo()
        totals = {arm: count for arm, count in Usage._read_group(
            [("ab_arm_id", "in", self.ids)], ["ab_arm_id"], ["__count"])}
        errors = {arm: count for arm, count in Usage._read_group(
            [("ab_arm_id", "in", self.ids), ("status", "=", "error")], ["ab_arm_id"], ["__count"])}
        ok = {arm: (cost, latency) for arm, cost, latency in Usage._read_group(
            [("ab_arm_id", "in", self.ids), ("status", "=", "ok")], ["ab_arm_id"], ["cost_usd:avg", "latency_ms:avg"])}
        rated = {arm: (quality, count) for arm, quality, count in Usage._read_group(
            [("ab_arm_id", "in", self.ids), ("quality_rated", "=", True)], ["ab_arm_id"],
            ["quality_score:avg", "__count"])}
        for arm in self:
            calls = totals.get(arm, 0)
            arm.calls = calls
            arm.error_rate = errors.get(arm, 0) / calls if calls else 0.0
            arm.avg_cost_usd, arm.avg_latency_ms = ok.get(arm, (0.0, 0.0))
            arm.avg_quality, arm.rated_calls = rated.get(arm, (0.0, 0))

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
