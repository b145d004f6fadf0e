from odoo import api, models

from ..core.labels import code_label


class AiCostCodeLabelMixin(models.AbstractModel):
    """Models whose Char fields hold the codes callers pass to send_message (operation, task_type): the codes
    stay for filters, domains and the JSON API; lists, pivots and graphs show their labels, from
    `_code_labels` alone. An inheriting model names the fields in `_code_label_fields` and declares a
    `<field>_label` Char computed by `_compute_code_labels` for each."""

    _name = "ai.cost.code.label.mixin"
    _description = "AI Cost: codes shown by their label"
    _code_label_fields = ()

    @api.model
    def _code_labels(self, field_name, codes):
        """{code: label} of `codes` of `field_name`: a task type reads as its record's name, any other code
        (or a task type no record knows) as core.labels.code_label."""
        codes = {code for code in codes if code}
        names = {}
        if field_name == "task_type" and codes:
            task_types = self.env["ai.task.type"].sudo().with_context(active_test=False).search_fetch(
                [("code", "in", list(codes))], ["code", "name"]
            )
            names = {task_type.code: task_type.name for task_type in task_types}
        return {code: names.get(code) or code_label(code) for code in codes}

    @api.depends(lambda self: self._code_label_fields)
    def _compute_code_labels(self):
        for field_name in self._code_label_fields:
            labels = self._code_labels(field_name, self.mapped(field_name))
            for record in self:
                record[f"{field_name}_label"] = labels.get(record[field_name], False)

    def _read_group_format_result(self, rows_dict, lazy_groupby):
        # Groups by a code read as its label in lists, pivots and graphs; their `__domain`, built above from
        # the code, still selects the group's rows.
        super()._read_group_format_result(rows_dict, lazy_groupby)
        for group in lazy_groupby:
            if group in self._code_label_fields:
                labels = self._code_labels(group, [row[group] for row in rows_dict])
                for row in rows_dict:
                    if row[group]:
                        row[group] = labels[row[group]]
