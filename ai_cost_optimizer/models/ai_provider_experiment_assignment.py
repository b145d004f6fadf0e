from odoo import fields, models


class AiProviderExperimentAssignment(models.Model):
    """Which arm of an experiment a user was given: kept in PostgreSQL so it is the same on every worker."""

    _name = "ai.provider.experiment.assignment"
    _description = "AI Provider A/B Assignment"

    experiment_id = fields.Many2one("ai.provider.experiment", required=True, ondelete="cascade", index=True)
    arm_id = fields.Many2one("ai.provider.experiment.arm", required=True, ondelete="cascade")
    user_id = fields.Many2one("res.users", required=True, ondelete="cascade")

    _sql_constraints = [
        ("experiment_user_unique", "unique(experiment_id, user_id)", "A user has one arm per experiment."),
    ]
