/** @odoo-module **/

import { registry } from "@web/core/registry";
import { dayLabels } from "@ai_cost_optimizer/dashboard/cost_dashboard";

const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;
// The test user's language is English: a day reads "07 Nov", as Odoo's graph view names it without the year.
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const englishDay = (iso) => `${iso.slice(8, 10)} ${MONTHS[parseInt(iso.slice(5, 7)) - 1]}`;

// The ISO day whose bar the tour clicks, to read back in the window it opens.
let clickedDay;

function expectEqual(actual, expected, what) {
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
        throw new Error(`${what} reads ${JSON.stringify(actual)}, not ${JSON.stringify(expected)}`);
    }
}

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
                for (const name of ["daily", "operation", "user"]) {
                    const canvas = document.querySelector(`canvas.o_ai_cost_chart_${name}`);
                    if (!canvas || !window.Chart.getChart(canvas)) {
                        throw new Error(`The ${name} chart is not drawn`);
                    }
                }
            },
        },
        {
            content: "The daily chart shows its days as the user reads dates, level, and keeps the ISO days to open them",
            trigger: ".o_ai_cost_dashboard canvas.o_ai_cost_chart_daily",
            run: () => {
                const chart = window.Chart.getChart(document.querySelector("canvas.o_ai_cost_chart_daily"));
                const days = chart.data.labels;
                if (!days.every((day) => ISO_DAY.test(day))) {
                    throw new Error(`The chart's days, which its clicks open, are not ISO days: ${days}`);
                }
                const shown = chart.scales.x.ticks.map((tick) => tick.label);
                if (!shown.length || shown.some((label) => /\d{4}-\d{2}-\d{2}/.test(label))) {
                    throw new Error(`The daily chart's axis reads ${shown.join(" | ")}`);
                }
                const today = days.length - 1;
                expectEqual(chart.scales.x.getLabelForValue(today), days[today], "The last day's data label");
                expectEqual(chart.options.scales.x.ticks.callback(today), englishDay(days[today]), "Today's tick");
                expectEqual(chart.options.plugins.tooltip.callbacks.title([{ dataIndex: today }]),
                    englishDay(days[today]), "Today's tooltip title");
                if (chart.scales.x.labelRotation !== 0) {
                    throw new Error(`The days are tilted by ${chart.scales.x.labelRotation}°`);
                }
                expectEqual(dayLabels(["2026-11-07", "2026-11-08"]), ["07 Nov", "08 Nov"], "Two days of one year");
                expectEqual(dayLabels(["2026-12-31", "2027-01-01"]), ["31 Dec 2026", "01 Jan 2027"],
                    "Days across New Year");
            },
        },
        {
            content: "This month is compared with the same days of last month",
            trigger: ".o_ai_cost_kpi[data-kpi=month] .o_ai_cost_month_delta:contains(vs same days last month)",
        },
        {
            content: "The provider comparison shows each figure with its unit, quality included",
            trigger: ".o_ai_cost_providers tr.o_ai_cost_provider_row td[data-figure=quality]:contains(/ 100)",
            run: () => {
                const headers = [...document.querySelectorAll(".o_ai_cost_providers th")].map((th) => th.textContent);
                for (const header of ["Cost (USD)", "Avg latency (ms)", "Quality (0-100)"]) {
                    if (!headers.includes(header)) {
                        throw new Error(`No "${header}" column in the provider comparison: ${headers}`);
                    }
                }
                if (!document.querySelector(".o_ai_cost_providers td[data-figure=latency]").textContent.includes(" ms")) {
                    throw new Error("The latency has no unit");
                }
            },
        },
        {
            content: "The embedding calls of the period have their card, in dollars",
            trigger: ".o_ai_cost_kpi[data-kpi=embeddings] .fs-3:contains($0.00008)",
            run: () => {
                const card = document.querySelector(".o_ai_cost_kpi[data-kpi=embeddings]").textContent;
                if (!card.includes("1 calls") || !card.includes("4,000 tokens")) {
                    throw new Error(`The embedding card lacks its calls or tokens: ${card}`);
                }
            },
        },
        {
            content: "Switch to the last 7 days",
            trigger: "select.o_ai_cost_period",
            run: "select 7d",
        },
        {
            content: "The period KPI follows, the period is kept in the URL; reload the page",
            trigger: ".o_ai_cost_dashboard[data-period='7d'] .o_ai_cost_kpi[data-kpi=period] .small:contains(6 calls)",
            run: async () => {
                // The router writes the URL a moment after the change.
                for (let wait = 0; wait < 40 && !window.location.search.includes("period=7d"); wait++) {
                    await new Promise((resolve) => setTimeout(resolve, 50));
                }
                if (!window.location.search.includes("period=7d")) {
                    throw new Error(`The period is not in the URL: ${window.location.href}`);
                }
                window.location.reload();
            },
            expectUnloadPage: true,
        },
        {
            content: "The period survives the reload",
            trigger: ".o_ai_cost_dashboard canvas.o_ai_cost_chart_daily",
            run: () => {
                const period = document.querySelector("select.o_ai_cost_period").value;
                const days = window.Chart.getChart(document.querySelector("canvas.o_ai_cost_chart_daily")).data.labels;
                if (period !== "7d" || days.length !== 7) {
                    throw new Error(`After a reload the period is ${period} with ${days.length} days, not the last 7 days`);
                }
            },
        },
        {
            content: "A click on a day's bar opens that day's calls",
            trigger: ".o_ai_cost_dashboard canvas.o_ai_cost_chart_daily",
            run: () => {
                const chart = window.Chart.getChart(document.querySelector("canvas.o_ai_cost_chart_daily"));
                const today = chart.data.labels.length - 1;
                clickedDay = chart.data.labels[today];
                chart.options.onClick(null, [{ index: today, datasetIndex: 0 }], chart);
            },
        },
        {
            content: "Their window names the day as the user reads dates (en_US: month/day/year), not in ISO",
            trigger: ".o_list_view .o_breadcrumb .active:contains('AI Usage on')",
            run: () => {
                const [year, month, day] = clickedDay.split("-");
                const title = document.querySelector(".o_breadcrumb .active").textContent.trim();
                expectEqual(title, `AI Usage on ${month}/${day}/${year}`, "The window's title");
            },
        },
        {
            content: "Back to the dashboard",
            trigger: ".o_breadcrumb a",
            run: "click",
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
