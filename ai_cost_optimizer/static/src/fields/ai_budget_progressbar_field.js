/** @odoo-module **/

import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { formatFloat } from "@web/core/utils/numbers";
import { ProgressBarField, progressBarField } from "@web/views/fields/progress_bar/progress_bar_field";

/**
 * How full a budget is, as the cost dashboard shows it: the bar fills up to 100 %, green, orange from
 * 80 %, red from 100 %; the figure is the real percentage with thousands separators ("1,333 %"), never
 * the abbreviated "1k %" of the standard progress bar, whose overflow also turns it grey.
 */
export class AiBudgetProgressBarField extends ProgressBarField {
    get progressBarColorClass() {
        const percent = (100 * this.currentValue) / this.maxValue;
        return percent >= 100 ? "bg-danger" : percent >= 80 ? "bg-warning" : "bg-success";
    }

    formatCurrentValue(humanReadable = !this.state.isEditing) {
        if (!humanReadable) {
            return super.formatCurrentValue(humanReadable);
        }
        return formatFloat(this.currentValue, { digits: [false, 0] });
    }
}

export const aiBudgetProgressBarField = {
    ...progressBarField,
    component: AiBudgetProgressBarField,
    displayName: _t("Budget Progress Bar"),
};

registry.category("fields").add("ai_budget_progressbar", aiBudgetProgressBarField);
