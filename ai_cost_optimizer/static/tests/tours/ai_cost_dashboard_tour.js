/** @odoo-module **/

import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("ai_cost_dashboard_tour", {
    steps: () => [
        {
            content: "The dashboard shows its KPI cards",
            trigger: ".o_ai_cost_dashboard .o_ai_cost_kpi[data-kpi=month] .fs-3:contains($)",
        },
        {
            content: "and its charts",
            trigger: ".o_ai_cost_dashboard canvas.o_ai_cost_chart_daily",
            run: () => {
                for (const name of ["daily", "operation", "user", "provider"]) {
                    const canvas = document.querySelector(`canvas.o_ai_cost_chart_${name}`);
                    if (!canvas || !window.Chart.getChart(canvas)) {
                        throw new Error(`The ${name} chart is not drawn`);
                    }
                }
            },
        },
        {
            content: "Switch to the last 7 days",
            trigger: "select.o_ai_cost_period",
            run: "select 7d",
        },
        {
            content: "The period KPI follows",
            trigger: ".o_ai_cost_kpi[data-kpi=period] .small:contains(5 calls)",
        },
        {
            content: "Open the calls of the period",
            trigger: ".o_ai_cost_kpi[data-kpi=period] .card",
            run: "click",
        },
        {
            content: "They are listed",
            trigger: ".o_list_view .o_data_row",
        },
        {
            content: "Open the playground",
            trigger: ".o_main_navbar [data-menu-xmlid='ai_cost_optimizer.menu_ai_cost_playground']",
            run: "click",
        },
        {
            content: "Type a prompt",
            trigger: ".o_field_widget[name=prompt] textarea",
            run: "edit Summarize the last three emails of this lead in two sentences.",
        },
        {
            content: "Estimate it",
            trigger: "button[name=action_estimate]",
            run: "click",
        },
        {
            content: "The estimate is shown",
            trigger: ".o_field_widget[name=token_estimate]:not(:contains(/^0$/))",
            run: () => {
                const tokens = parseInt(document.querySelector(".o_field_widget[name=token_estimate]").textContent);
                if (!(tokens > 0)) {
                    throw new Error(`No token estimate: ${tokens}`);
                }
            },
        },
        {
            content: "with a cost",
            trigger: ".o_field_widget[name=estimated_cost_usd]",
        },
    ],
});
