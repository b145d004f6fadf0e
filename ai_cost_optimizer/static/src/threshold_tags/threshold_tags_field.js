/** @odoo-module **/

import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { standardFieldProps } from "@web/views/fields/standard_field_props";

import { Component, useRef, useState } from "@odoo/owl";

/**
 * Alert thresholds ("50, 80, 100", a Char validated by the server) shown as percentage badges.
 * In edit mode each badge has a remove button and an input adds percentages (Enter, comma or
 * leaving the field; several can be pasted at once). The list is kept sorted and without
 * duplicates, and stored in its canonical text; the server still validates the range.
 */
export class ThresholdTagsField extends Component {
    static template = "ai_cost_optimizer.ThresholdTagsField";
    static props = { ...standardFieldProps, placeholder: { type: String, optional: true } };

    setup() {
        this.input = useRef("input");
        this.state = useState({ invalid: false });
    }

    get thresholds() {
        return parseThresholds(this.props.record.data[this.props.name] || "");
    }

    async store(thresholds) {
        const sorted = [...new Set(thresholds)].sort((a, b) => a - b);
        await this.props.record.update({ [this.props.name]: sorted.join(", ") });
    }

    async add() {
        const text = this.input.el.value.trim();
        if (!text) {
            this.state.invalid = false;
            return;
        }
        const typed = parseThresholds(text);
        this.state.invalid = typed.length === 0 || typed.some((value) => Number.isNaN(value));
        if (this.state.invalid) {
            return;
        }
        this.input.el.value = "";
        await this.store([...this.thresholds, ...typed]);
    }

    async remove(threshold) {
        await this.store(this.thresholds.filter((value) => value !== threshold));
    }

    onKeydown(ev) {
        if (ev.key === "Enter" || ev.key === ",") {
            ev.preventDefault();
            this.add();
        } else if (ev.key === "Backspace" && !this.input.el.value && this.thresholds.length) {
            this.remove(this.thresholds.at(-1));
        }
    }
}

/** "50, 80 100%" -> [50, 80, 100]; a part that is not a number gives NaN. */
export function parseThresholds(text) {
    return text
        .split(/[\s,;]+/)
        .map((part) => part.replace(/%$/, ""))
        .filter(Boolean)
        .map(Number);
}

export const thresholdTagsField = {
    component: ThresholdTagsField,
    displayName: _t("Threshold Tags"),
    supportedTypes: ["char"],
    extractProps: ({ attrs }) => ({ placeholder: attrs.placeholder }),
};

registry.category("fields").add("ai_threshold_tags", thresholdTagsField);
