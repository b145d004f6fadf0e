/** @odoo-module **/

import { registry } from "@web/core/registry";

// An amount as the ai_cost_usd widget shows it, above zero.
const USD = /^\$\d{1,3}(,\d{3})*\.\d{2,6}$/;

function shown(selector, root = document) {
    const field = root.querySelector(selector);
    return field ? field.textContent.replace(/\s+/g, " ").trim() : "";
}

function expectAtRisk(where, selector, root = document) {
    const text = shown(selector, root);
    if (!USD.test(text) || text === "$0.00") {
        throw new Error(`${where}: At Risk Now reads "${text}", expected the dollars the calls in flight risk`);
    }
}

registry.category("web_tour.tours").add("ai_cost_budget_at_risk_tour", {
    steps: () => [
        {
            content: "The budget list shows the calibrated budget's mode and what is at risk now",
            trigger: ".o_data_row:contains(Agents) td[name=current_at_risk] .o_field_ai_cost_usd",
            run: () => {
                const row = [...document.querySelectorAll(".o_data_row")].find((r) => r.innerText.includes("Agents"));
                if (!row.querySelector("td[name=reservation_mode]").innerText.includes("Calibrated")) {
                    throw new Error("The list does not show the budget's reservation mode");
                }
                expectAtRisk("Budget list", "td[name=current_at_risk]", row);
            },
        },
        {
            content: "Open the budget",
            trigger: ".o_data_row:contains(Agents) td[name=name]",
            run: "click",
        },
        {
            content: "The form shows the reservation mode and, in dollars, what the calls in flight risk",
            trigger: ".o_form_view .o_field_widget[name=current_at_risk]",
            run: () => {
                const select = document.querySelector(".o_field_widget[name=reservation_mode] select");
                const mode = select ? select.options[select.selectedIndex].textContent.trim() : "";
                if (mode !== "Calibrated") {
                    throw new Error(`Reservation reads "${mode}"`);
                }
                expectAtRisk("Budget form", ".o_form_view .o_field_widget[name=current_at_risk]");
                const label = [...document.querySelectorAll(".o_form_view label")].find((l) =>
                    l.textContent.includes("At Risk Now")
                );
                if (!label) {
                    throw new Error("The form has no At Risk Now label");
                }
            },
        },
        {
            content: "Open Budget Calibration",
            trigger: ".o_main_navbar [data-menu-xmlid='ai_cost_optimizer.menu_ai_cost_config']",
            run: "click",
        },
        {
            content: "under Configuration",
            trigger: ".o-dropdown--menu [data-menu-xmlid='ai_cost_optimizer.menu_ai_cost_budget_calibration']",
            run: "click",
        },
        {
            content: "It lists what was learned: the p99 of the operation's answers, by its label",
            trigger: ".o_list_view .o_data_row:contains(Agent step) td[name=output_tokens_p99]:contains(120)",
        },
    ],
});
