/** @odoo-module **/

import { registry } from "@web/core/registry";

// A code as callers pass it (email_draft, oversized_context): what an administrator should not read.
const CODE = /\b[a-z]+_[a-z_]+\b/;
// A count of a thousand or more, with its thousands separator.
const COUNT = /^\d{1,3}(,\d{3})+$/;

function text(selector) {
    const el = document.querySelector(selector);
    if (!el) {
        throw new Error(`Nothing shows ${selector}`);
    }
    return el.textContent.replace(/\s+/g, " ").trim();
}

function texts(selector) {
    return [...document.querySelectorAll(selector)].map((el) => el.textContent.replace(/\s+/g, " ").trim());
}

function chart(name) {
    return window.Chart.getChart(document.querySelector(`canvas.o_ai_cost_chart_${name}`));
}

/** No column title of the list is cut (its text wider than its header), at the tour's 1600-pixel window. */
function checkTitles(screen) {
    const cut = [...document.querySelectorAll(".o_list_table thead th .text-truncate")]
        .filter((el) => el.scrollWidth > el.clientWidth + 1)
        .map((el) => el.textContent.trim());
    if (cut.length) {
        throw new Error(`${screen}: cut column titles: ${cut.join(" | ")}`);
    }
    const codes = [...document.querySelectorAll(".o_data_row td")]
        .map((td) => td.textContent.trim())
        .filter((value) => /^[a-z]+_[a-z_]+$/.test(value));
    if (codes.length) {
        throw new Error(`${screen}: codes instead of labels: ${codes.join(" | ")}`);
    }
}

function menu(xmlid, where = ".o_main_navbar") {
    return `${where} [data-menu-xmlid='ai_cost_optimizer.${xmlid}']`;
}

function openReport(xmlid, content) {
    return [
        { content: "Open Reporting", trigger: menu("menu_ai_cost_reporting"), run: "click" },
        { content: `Open ${content}`, trigger: menu(xmlid, ".o-dropdown--menu"), run: "click" },
    ];
}

registry.category("web_tour.tours").add("ai_cost_labels_tour", {
    steps: () => [
        {
            content: "The dashboard: operations by their label, counts with separators, the axis in dollars",
            trigger: ".o_ai_cost_dashboard .o_ai_cost_waste td",
            run: () => {
                const operations = chart("operation").data.labels;
                if (!operations.includes("Email draft") || operations.some((label) => CODE.test(label))) {
                    throw new Error(`Cost by operation reads ${operations.join(" | ")}`);
                }
                const calls = text(".o_ai_cost_kpi[data-kpi=period] .fs-3 + .small").replace(/ calls.*/, "");
                if (!COUNT.test(calls)) {
                    throw new Error(`The period's calls read ${calls}, without a thousands separator`);
                }
                for (const name of ["daily", "user"]) {
                    const scale = chart(name).options.scales[name === "daily" ? "y" : "x"];
                    const tick = scale.ticks.callback(1250);
                    if (tick !== "$1,250.00") {
                        throw new Error(`The ${name} chart's cost axis reads ${tick}, not dollars`);
                    }
                }
                const delta = text(".o_ai_cost_period_delta");
                if (!/vs the period before \(\$/.test(delta)) {
                    throw new Error(`The period card compares with nothing: ${delta}`);
                }
                const card = text(".o_ai_cost_dashboard");
                for (const codeOrAdvice of ["lead_qualification", "email_draft", "duplicate_query", "use_cache"]) {
                    if (card.includes(codeOrAdvice)) {
                        throw new Error(`The dashboard shows ${codeOrAdvice}`);
                    }
                }
                const waste = text(".o_ai_cost_recommendations li");
                if (!/Duplicate query: .* calls wasted .* about \$[\d,.]+ a month\. Keep Settings > AI Cost/.test(waste)) {
                    throw new Error(`A waste line reads: ${waste}`);
                }
            },
        },
        { content: "Open Usage", trigger: menu("menu_ai_cost_usage"), run: "click" },
        {
            content: "Usage: operations and task types by their label",
            trigger: ".o_list_view .o_data_row td[name=operation_label]:contains(Email draft)",
            run: () => checkTitles("Usage"),
        },
        ...openReport("menu_ai_cost_waste_report", "the Waste Report"),
        { content: "Open the duplicate queries", trigger: ".o_group_header:contains(Duplicate query)", run: "click" },
        {
            content: "Waste Report: rules and operations by their label, advice an administrator can act on",
            trigger: ".o_data_row td[name=operation_label]:contains(Lead qualification)",
            run: () => {
                checkTitles("Waste Report");
                if (document.querySelector(".o_action_manager").innerText.includes("use_cache")) {
                    throw new Error("The Waste Report advises a developer's parameter");
                }
            },
        },
        ...openReport("menu_ai_cost_analytics", "Cost Analytics"),
        {
            content: "Cost Analytics: no cut column title, the top cost driver by its label, dates as in every list",
            trigger: ".o_list_view .o_data_row td[name=top_cost_driver]:contains(Operation)",
            run: () => {
                checkTitles("Cost Analytics");
                const iso = texts(".o_data_row td[name=name]").filter((name) => /\d{4}-\d{2}-\d{2}/.test(name));
                if (iso.length) {
                    throw new Error(`Cost Analytics names periods in another date format: ${iso.join(" | ")}`);
                }
            },
        },
        ...openReport("menu_ai_cost_recommendations", "Recommendations"),
        {
            content: "Recommendations: no cut column title, task types by their name",
            trigger: ".o_list_view .o_data_row td[name=task_type_label]:contains(Classify)",
            run: () => checkTitles("Recommendations"),
        },
        ...openReport("menu_ai_provider_experiments", "A/B Experiments"),
        {
            content: "A/B Experiments: no cut column title",
            trigger: ".o_list_view .o_data_row td[name=assignment_count]",
            run: () => checkTitles("A/B Experiments"),
        },
    ],
});
