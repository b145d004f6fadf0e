from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..core import ab_testing


class AiProviderExperiment(models.Model):
    """An A/B test: one task type's traffic split between providers by percentage, sticky per user."""

    _name = "ai.provider.experiment"
    _description = "AI Provider A/B Experiment"
    _order = "state, date_start desc, id desc"

    name = fields.Char(required=True)
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company, index=True)
    task_type_id = fields.Many2one("ai.task.type", required=True, ondelete="restrict")
    task_type = fields.Char(related="task_type_id.code", store=True, index=True)
    state = fields.Selection(
        [("draft", "Draft"), ("running", "Running"), ("stopped", "Stopped")], default="draft", required=True
    )
    date_start = fields.Datetime(readonly=True)
    date_stop = fields.Datetime(readonly=True)
    arm_ids = fields.One2many("ai.provider.experiment.arm", "experiment_id", string="Arms", copy=True)
    assignment_count = fields.Integer(compute="_compute_assignment_count", string="Users Assigned")

    def _compute_assignment_count(self):
        counts = dict(
            self.env["ai.provider.experiment.assignment"]._read_group(
                [("experiment_id", "in", self.ids)], ["experiment_id"], ["__count"]
            )
        )
        for experiment in self:
            experiment.assignment_count = counts.get(experiment, 0)

    @api.constrains("arm_ids")
    def _check_percentages(self):
        for experiment in self:
            total = sum(experiment.arm_ids.mapped("percentage"))
            if experiment.arm_ids and abs(total - 100) > 1e-6:
                raise ValidationError(
                    self.env._("The arms of '%(name)s' add up to %(total)s%%, not 100%%.", name=experiment.name,
                               total=round(total, 2))
                )

    @api.constrains("state", "task_type_id", "company_id")
    def _check_one_running(self):
        for experiment in self.filtered(lambda e: e.state == "running"):
            if self.search_count([("id", "!=", experiment.id), ("state", "=", "running"),
                                  ("task_type_id", "=", experiment.task_type_id.id),
                                  ("company_id", "=", experiment.company_id.id)]):
                raise ValidationError(
                    self.env._("Another experiment already runs on the task type '%s'.", experiment.task_type_id.name)
                )

    def action_start(self):
        for experiment in self:
            if len(experiment.arm_ids) < 2:
                raise UserError(self.env._("An experiment needs at least two arms."))
            if experiment.arm_ids.provider_id.company_id != experiment.company_id:
                raise UserError(self.env._("Every arm's provider must belong to %s.", experiment.company_id.name))
        self.write({"state": "running", "date_start": fields.Datetime.now(), "date_stop": False})

    def action_stop(self):
        self.write({"state": "stopped", "date_stop": fields.Datetime.now()})

    # ------------------------------------------------------------------
    # Assignment
    # ------------------------------------------------------------------
    @api.model
    def _group_for_user(self, task_type, user, company=None):
        """The user's arm of the running experiment on `task_type`, assigned once and kept in
        PostgreSQL, so every worker and every node routes the user the same way; False when none runs."""
        experiment = self.sudo().search(
            [("state", "=", "running"), ("task_type", "=", task_type),
             ("company_id", "=", (company or self.env.company).id)],
            limit=1,
        )
        if not experiment:
            return False
        arm = experiment._assigned_arm(user)
        return {
            "experiment_id": experiment.id,
            "experiment_name": experiment.name,
            "arm_id": arm.id,
            "group": arm.name,
            "provider_id": arm.provider_id.id,
        }

    def _assigned_arm(self, user):
        self.ensure_one()
        assignment = self.env["ai.provider.experiment.assignment"].sudo().search(
            [("experiment_id", "=", self.id), ("user_id", "=", user.id)], limit=1
        )
        if assignment:
            return assignment.arm_id
        arm = self._arm_for_user(user)
        # Raw SQL for an upsert (ON CONFLICT, DESIGN section 10): concurrent first calls of the same user
        # agree, the bucket being deterministic, and the unique index makes the second insert a no-op.
        self.env.cr.execute(
            """INSERT INTO ai_provider_experiment_assignment
                      (experiment_id, arm_id, user_id, create_uid, write_uid, create_date, write_date)
               VALUES (%s, %s, %s, %s, %s, now() at time zone 'UTC', now() at time zone 'UTC')
               ON CONFLICT (experiment_id, user_id) DO NOTHING""",
            [self.id, arm.id, user.id, self.env.uid, self.env.uid],
        )
        return arm

    def _arm_for_user(self, user):
        """The arm core.ab_testing computes for the user (before any stored assignment)."""
        arms = self.arm_ids.sorted("id")
        return arms[ab_testing.pick_arm(ab_testing.bucket(self.id, user.id), arms.mapped("percentage"))]
