/** @odoo-module **/

import { registry } from "@web/core/registry";

import { formatUsd } from "@ai_cost_optimizer/fields/format_usd";

// An amount as the ai_cost_usd widget shows it: "$", thousands separators, 2 to 6 decimals, maybe a unit.
const USD = /^-?(< )?\$\d{1,3}(,\d{3})*\.\d{2,6}( \/ 1M tokens)?$/;
// A figure with more than 6 decimals, anywhere on the screen.
const RAW_FLOAT = /\d\.\d{7,}/;

function texts(selector) {
    return [...document.querySelectorAll(selector)].map((el) => el.textContent.replace(/\s+/g, " ").trim());
}

/** What a cost field shows: its text, or "$" and its input's value (then its unit) when it is edited. */
function shownAmount(field) {
    const input = field.querySelector("input");
    if (!input) {
        return field.textContent.replace(/\s+/g, " ").trim();
    }
    const unit = field.querySelector(".text-muted");
    return `$${input.value}${unit ? " " + unit.textContent.trim() : ""}`;
}

/** Every cost field of the screen reads as dollars, and no figure shows more than 6 decimals. */
function checkMoney(screen, minCells) {
    const cells = [...document.querySelectorAll(".o_field_ai_cost_usd")].map(shownAmount);
    if (cells.length < minCells) {
        throw new Error(`${screen}: ${cells.length} cost cells, expected at least ${minCells}`);
    }
    // A call to a model without a known price reads "Unknown", never $0.00.
    const wrong = cells.filter((text) => text !== "Unknown" && !USD.test(text));
    if (wrong.length) {
        throw new Error(`${screen}: cost cells not in dollars: ${wrong.join(" | ")}`);
    }
    const raw = document.querySelector(".o_action_manager").innerText.match(RAW_FLOAT);
    if (raw) {
        throw new Error(`${screen}: a figure with more than 6 decimals: ${raw[0]}`);
    }
}

/** The total under the list's column `name` reads as dollars. */
function checkTotal(screen, name) {
    const headers = [...document.querySelectorAll(".o_list_table thead tr th")];
    const column = headers.findIndex((th) => th.dataset.name === name);
    const cell = document.querySelectorAll(".o_list_table tfoot tr td")[column];
    const total = cell ? cell.textContent.trim() : "";
    if (column < 0 || !USD.test(total)) {
        throw new Error(`${screen}: the total of ${name} reads "${total}", not dollars`);
    }
}

function menu(xmlid, where = ".o_main_navbar") {
    return `${where} [data-menu-xmlid='ai_cost_optimizer.${xmlid}']`;
}

function openSubMenu(parent, xmlid, content) {
    return [
        { content: `Open ${content}'s menu`, trigger: menu(parent), run: "click" },
        { content: `Open ${content}`, trigger: menu(xmlid, ".o-dropdown--menu"), run: "click" },
    ];
}

registry.category("web_tour.tours").add("ai_cost_money_tour", {
    steps: () => [
        {
            content: "The dollar format follows the amount's size",
            trigger: ".o_list_view .o_data_row .o_field_ai_cost_usd",
            run: () => {
                const cases = [
                    [0, "$0.00"], [1234.5678, "$1,234.57"], [0.000216, "$0.000216"], [0.00021634, "$0.000216"],
                    [0.07, "$0.07"], [0.9328896, "$0.933"], [0.5, "$0.50"], [2.5, "$2.50"], [0.0000001, "< $0.000001"],
                    [-0.0042, "-$0.0042"], [1, "$1.00"], [0.999999, "$1.00"],
                ];
                for (const [value, expected] of cases) {
                    if (formatUsd(value) !== expected) {
                        throw new Error(`formatUsd(${value}) = ${formatUsd(value)}, expected ${expected}`);
                    }
                }
                if (formatUsd(1.125, { exact: true }) !== "$1.125") {
                    throw new Error(`exact price: ${formatUsd(1.125, { exact: true })}`);
                }
            },
        },
        {
            content: "Usage: every cost in dollars, the total too",
            trigger: ".o_list_view .o_data_row .o_field_ai_cost_usd .o_ai_cost_usd:contains($1,234.57)",
            run: () => {
                checkMoney("Usage", 3);
                checkTotal("Usage", "cost_usd");
                const unpriced = [...document.querySelectorAll(".o_data_row")]
                    .filter((row) => row.querySelector("td[name=operation_label]").textContent.trim() === "Unpriced")
                    .map((row) => row.querySelector("td[name=cost_usd]").textContent.trim());
                if (unpriced.join() !== "Unknown") {
                    throw new Error(`The cost of a call without a known price reads ${unpriced.join()}, not Unknown`);
                }
            },
        },
        {
            content: "Open a call",
            trigger: ".o_list_view .o_data_row:not(:contains($1,234.57)):not(:contains(Unpriced)) td[name=provider_id]",
            run: "click",
        },
        {
            content: "The call's form: its cost with its significant digits",
            trigger: ".o_form_view .o_field_widget[name=cost_usd]",
            run: () => {
                checkMoney("Usage form", 4);
                const cost = shownAmount(document.querySelector(".o_field_widget[name=cost_usd]"));
                if (!/^\$0\.0\d*[1-9]$/.test(cost)) {
                    throw new Error(`A call's cost shows ${cost}, expected a fraction of a cent without trailing zeros`);
                }
                if (document.querySelector(".o_form_view .o_field_widget[name=res_id]")) {
                    throw new Error("Related Record shows for a call about no record");
                }
            },
        },
        ...openSubMenu("menu_ai_cost_budgets", "menu_ai_cost_budget_list", "Budgets"),
        {
            content: "Budgets: amounts and spend in dollars; the overspent budget's bar is full and red",
            trigger: ".o_list_view .o_data_row:contains(Overspent) .o_field_ai_budget_progressbar",
            run: () => {
                checkMoney("Budgets", 4);
                const row = [...document.querySelectorAll(".o_data_row")].find((r) => r.innerText.includes("Overspent"));
                const field = row.querySelector("[name=percentage_used] .o_progressbar");
                const track = field.querySelector(".o_progress");
                const bar = track.firstElementChild;
                if (!bar.classList.contains("bg-danger")) {
                    throw new Error(`An overspent budget's bar is ${bar.className}, not red`);
                }
                if (!track.clientWidth || bar.offsetWidth < track.clientWidth) {
                    throw new Error("An overspent budget's bar is not full");
                }
                const value = field.querySelector(".o_progressbar_value").textContent.replace(/\s+/g, " ").trim();
                if (!/^\d{1,3}(,\d{3})+ ?%$/.test(value)) {
                    throw new Error(`An overspent budget reads ${value}, expected the real percentage like 1,333 %`);
                }
            },
        },
        ...openSubMenu("menu_ai_cost_reporting", "menu_ai_cost_daily", "Cost per Day"),
        {
            content: "Cost per Day opens by day, its costs in dollars",
            trigger: ".o_pivot_view .o_pivot_cell_value",
            run: () => {
                const rows = texts(".o_pivot tbody .o_pivot_header_cell_closed");
                if (!rows.length || rows.some((text) => /^W\d+/.test(text) || !/\d{1,2}.*\d{4}/.test(text))) {
                    throw new Error(`Cost per Day is not grouped by day: ${rows.join(" | ")}`);
                }
                const values = texts(".o_pivot .o_pivot_cell_value").filter(Boolean);
                const wrong = values.filter((text) => !USD.test(text));
                if (wrong.length) {
                    throw new Error(`Cost per Day pivot: ${wrong.join(" | ")}`);
                }
            },
        },
        { content: "Switch to the list", trigger: ".o_switch_view.o_list", run: "click" },
        {
            content: "Cost per Day list: costs, savings and waste in dollars",
            trigger: ".o_list_view .o_data_row td[name=waste_usd] .o_field_ai_cost_usd",
            run: () => {
                checkMoney("Cost per Day", 3);
                checkTotal("Cost per Day", "cost_usd");
                checkTotal("Cost per Day", "waste_usd");
            },
        },
        ...openSubMenu("menu_ai_cost_reporting", "menu_ai_cost_waste_report", "the Waste Report"),
        {
            content: "The waste report is grouped by rule: open the duplicate queries",
            trigger: ".o_group_header:contains(Duplicate query)",
            run: "click",
        },
        {
            content: "Waste Report: what was wasted, in dollars; a button to mark it reviewed",
            trigger: ".o_data_row td[name=cost_wasted_usd] .o_field_ai_cost_usd",
            run: () => {
                checkMoney("Waste Report", 1);
                if (!texts(".o_data_row button[name=action_mark_reviewed]").includes("Mark Reviewed")) {
                    throw new Error("No Mark Reviewed button on the findings");
                }
                const groups = texts(".o_group_header .o_list_number").filter(Boolean);
                if (!groups.length || groups.some((text) => !USD.test(text) && !/^\d[\d,]*$/.test(text))) {
                    throw new Error(`Group sums: ${groups.join(" | ")}`);
                }
            },
        },
        ...openSubMenu("menu_ai_cost_config", "menu_ai_cost_providers", "Providers"),
        {
            content: "Providers: prices per million tokens in dollars",
            trigger: ".o_list_view .o_data_row td[name=input_price] .o_field_ai_cost_usd",
            run: () => checkMoney("Providers", 2),
        },
        {
            content: "Open the provider",
            trigger: ".o_list_view .o_data_row:contains(Money tour) td[name=name]",
            run: "click",
        },
        {
            content: "The provider's prices read per million tokens",
            trigger: ".o_form_view .o_field_widget[name=input_price]",
            run: () => {
                checkMoney("Provider form", 4);
                const price = shownAmount(document.querySelector(".o_field_widget[name=input_price]"));
                if (!/^\$0\.15 \/ 1M tokens$/.test(price)) {
                    throw new Error(`Input price: ${price}, expected $0.15 / 1M tokens`);
                }
            },
        },
    ],
});
