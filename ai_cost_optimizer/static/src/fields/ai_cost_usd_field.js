/** @odoo-module **/

import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { FloatField, floatField } from "@web/views/fields/float/float_field";

import { formatUsd, formatUsdInput } from "./format_usd";

/**
 * A float field holding US dollars (costs, budgets, prices): "$" and the figures its size needs
 * (`formatUsd`), an optional unit after it ("$0.15 / 1M tokens"); edited as a plain number after a "$".
 */
export class AiCostUsdField extends FloatField {
    static template = "ai_cost_optimizer.AiCostUsdField";
    static props = {
        ...FloatField.props,
        exact: { type: Boolean, optional: true },
        unit: { type: String, optional: true },
        unknownField: { type: String, optional: true },
    };

    /** The cost of a call to a model without a known price is missing, not $0. */
    get isUnknown() {
        return Boolean(this.props.unknownField && this.props.record.data[this.props.unknownField]);
    }

    get formattedValue() {
        if (!this.props.readonly) {
            return formatUsdInput(this.value);
        }
        return formatUsd(this.value, { exact: this.props.exact });
    }
}

export const aiCostUsdField = {
    ...floatField,
    component: AiCostUsdField,
    displayName: _t("Amount in USD"),
    supportedOptions: [
        {
            label: _t("Every decimal"),
            name: "exact",
            type: "boolean",
            help: _t("Show every decimal up to 6 (prices) instead of the figures the amount's size needs."),
        },
        { label: _t("Unit"), name: "unit", type: "string", help: _t("Shown after the amount, e.g. / 1M tokens.") },
        {
            label: _t("Unknown when"),
            name: "unknown_field",
            type: "field",
            availableTypes: ["boolean"],
            help: _t("A boolean field that, when set, means the amount is not known: shown as Unknown, not $0.00."),
        },
    ],
    extractProps: (fieldInfo) => ({
        ...floatField.extractProps(fieldInfo),
        exact: Boolean(fieldInfo.options.exact),
        unit: fieldInfo.options.unit,
        unknownField: fieldInfo.options.unknown_field,
    }),
    fieldDependencies: ({ options }) =>
        options.unknown_field ? [{ name: options.unknown_field, type: "boolean", readonly: true }] : [],
};

registry.category("fields").add("ai_cost_usd", aiCostUsdField);
// List totals and group sums of a column with this widget are formatted the same way.
registry.category("formatters").add("ai_cost_usd", (value) => formatUsd(value));
