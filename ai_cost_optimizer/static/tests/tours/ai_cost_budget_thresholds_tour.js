/** @odoo-module **/

import { registry } from "@web/core/registry";

const FIELD = ".o_field_widget[name=alert_thresholds]";

function expectTags(expected) {
    const tags = [...document.querySelectorAll(`${FIELD} .o_ai_threshold_tag`)].map((tag) =>
        tag.textContent.replace("×", "").replace(/\s+/g, " ").trim()
    );
    if (tags.join("|") !== expected) {
        throw new Error(`Threshold badges: ${tags.join("|")}, expected ${expected}`);
    }
}

registry.category("web_tour.tours").add("ai_cost_budget_thresholds_tour", {
    steps: () => [
        {
            content: "The budget list shows the alert thresholds as badges",
            trigger: ".o_data_row:contains(Tour budget) .o_ai_threshold_tag:contains(80 %)",
        },
        {
            content: "Open the budget",
            trigger: ".o_data_row:contains(Tour budget) td[name=name]",
            run: "click",
        },
        {
            content: "The form shows one badge per threshold, never the raw text",
            trigger: `${FIELD} .o_ai_threshold_tag:contains(100 %)`,
            run: () => expectTags("50 %|80 %|100 %"),
        },
        {
            content: "Remove the 50 % threshold",
            trigger: `${FIELD} .o_ai_threshold_tag:contains(50 %) .o_ai_threshold_remove`,
            run: "click",
        },
        {
            content: "Type a new threshold",
            trigger: `${FIELD} input.o_ai_threshold_input`,
            run: "fill 90",
        },
        {
            content: "and add it",
            trigger: `${FIELD} input.o_ai_threshold_input`,
            run: "press Enter",
        },
        {
            content: "It is inserted in order",
            trigger: `${FIELD} .o_ai_threshold_tag:contains(90 %)`,
            run: () => expectTags("80 %|90 %|100 %"),
        },
        {
            content: "Save",
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            content: "Saved",
            trigger: ".o_form_saved",
        },
    ],
});
