/** @odoo-module **/

import { registry } from "@web/core/registry";

/** The daily chart's anomaly markers, as Chart.js holds them. */
function anomalyMarkers() {
    const chart = window.Chart.getChart(document.querySelector("canvas.o_ai_cost_chart_daily"));
    const dataset = chart && chart.data.datasets.find((ds) => ds.anomaly);
    if (!dataset) {
        throw new Error("The daily chart has no spend anomaly markers");
    }
    return { chart, dataset };
}

registry.category("web_tour.tours").add("ai_cost_anomaly_tour", {
    steps: () => [
        {
            content: "The daily chart's card counts the period's spend anomalies",
            trigger: ".o_ai_cost_dashboard .o_ai_cost_anomalies:contains(2 spend anomalies)",
        },
        {
            content: "A marker sits on the looping day only, and its tooltip names the hour, who and how much",
            trigger: ".o_ai_cost_dashboard canvas.o_ai_cost_chart_daily",
            run: () => {
                const { chart, dataset } = anomalyMarkers();
                const marked = chart.data.labels.filter((_day, i) => dataset.data[i] !== null);
                if (marked.length !== 1) {
                    throw new Error(`Expected one marked day, got ${marked}`);
                }
                const label = chart.options.plugins.tooltip.callbacks.label;
                const lines = label({ dataset, label: marked[0], parsed: { y: 0 } });
                const text = lines.join("\n");
                if (lines[0] !== "2 spend anomalies" || !text.includes("Lead enrichment: $30.00 (72.6× usual)")
                    || !text.includes("Alice: $30.00") || !/\d\d:00-\d\d:00 /.test(lines[1])) {
                    throw new Error(`The marker's tooltip reads: ${text}`);
                }
            },
        },
        {
            content: "The button opens the anomalies it counts",
            trigger: ".o_ai_cost_anomalies",
            run: "click",
        },
        {
            content: "The list shows the looping operation against its usual hour, in dollars",
            trigger: ".o_list_view .o_data_row:contains(Lead enrichment):contains(72.6× usual):contains($30.00)",
        },
        {
            content: "and its user",
            trigger: ".o_list_view .o_data_row:contains(Alice):contains($30.00)",
            run: () => {
                const rows = document.querySelectorAll(".o_list_view .o_data_row");
                if (rows.length !== 2) {
                    throw new Error(`The list shows ${rows.length} anomalies, not 2`);
                }
            },
        },
    ],
});
