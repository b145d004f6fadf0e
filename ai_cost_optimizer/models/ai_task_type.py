from odoo import fields, models


class AiTaskType(models.Model):
    _name = "ai.task.type"
    _description = "AI Task Type"
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True)
    code = fields.Char(required=True, help="Technical name passed as task_type to ai.service.send_message.")
    sequence = fields.Integer(default=10)
    expected_output_tokens = fields.Integer(
        default=500, help="Typical answer length, used before enough usage history exists."
    )
    active = fields.Boolean(default=True)

    _sql_constraints = [
        ("code_unique", "unique(code)", "A task type with this code already exists."),
    ]
