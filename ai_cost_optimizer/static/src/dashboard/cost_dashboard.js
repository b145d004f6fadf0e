/** @odoo-module **/

import { Component, onMounted, onPatched, onWillStart, onWillUnmount, useRef, useState } from "@odoo/owl";
import { loadBundle } from "@web/core/assets";
import { getColor } from "@web/core/colors/colors";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { deserializeDate, deserializeDateTime, formatDate } from "@web/core/l10n/dates";
import { useService } from "@web/core/utils/hooks";
import { formatInteger } from "@web/views/fields/formatters";
import { formatUsd } from "@ai_cost_optimizer/fields/format_usd";

const CHARTS = ["daily", "operation", "user"];
const DEFAULT_PERIOD = "30d";

/**
 * Days (ISO, as the server sends them) named as Odoo's graph view names day groups ("07 Nov 2026", the month in
 * the user's language), without the year when all the days fall in one year: the year would only repeat itself.
 *
 * @param {string[]} days ISO dates (yyyy-MM-dd)
 * @returns {string[]} one label per day, in the same order
 */
export function dayLabels(days) {
    const dates = days.map((day) => deserializeDate(day));
    const format = new Set(dates.map((date) => date.year)).size > 1 ? "dd MMM yyyy" : "dd MMM";
    return dates.map((date) => formatDate(date, { format }));
}

export class CostDashboard extends Component {
    static template = "ai_cost_optimizer.CostDashboard";
    static props = ["*"];

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.state = useState({ period: this.savedPeriod() || DEFAULT_PERIOD, companyIds: [], data: null });
        this.canvases = Object.fromEntries(CHARTS.map((name) => [name, useRef(`chart_${name}`)]));
        this.charts = {};
        this.formatUsd = formatUsd;
        // Counts with the user's thousands separator, as Odoo's integer fields show them.
        this.formatCount = (value) => formatInteger(value || 0);
        onWillStart(async () => {
            await loadBundle("web.chartjs_lib");
            await this.load();
        });
        onMounted(() => this.renderCharts());
        onPatched(() => this.renderCharts());
        onWillUnmount(() => this.destroyCharts());
    }

    async load() {
        this.state.data = await this.orm.call("ai.cost.dashboard", "get_dashboard_data", [], {
            period: this.state.period,
            company_ids: this.state.companyIds.length ? this.state.companyIds : null,
        });
        this.state.companyIds = this.state.data.company_ids;
    }

    /** The period kept in the URL (?period=7d), which a reload gives back as the action's params. */
    savedPeriod() {
        const action = this.props.action || {};
        return action.params?.period || action.context?.params?.period;
    }

    async onPeriodChange(ev) {
        this.state.period = ev.target.value;
        await this.load();
        this.props.updateActionState?.({ period: this.state.period });
    }

    async onCompanyChange(ev) {
        const value = parseInt(ev.target.value);
        this.state.companyIds = value ? [value] : [];
        await this.load();
    }

    get periodOptions() {
        return Object.entries(this.state.data.period.options).map(([key, label]) => ({ key, label }));
    }

    get monthDelta() {
        // Against the same days of last month: early in a month, a whole month would always look cheaper.
        const { cost_this_month, cost_last_month_same_days } = this.state.data.kpis;
        if (!cost_last_month_same_days) {
            return null;
        }
        return ((cost_this_month - cost_last_month_same_days) / cost_last_month_same_days) * 100;
    }

    /** The period's cost against the period before it (previous_period), in percent; null when that cost nothing. */
    get periodDelta() {
        const before = this.state.data.previous_period.cost;
        return before ? ((this.state.data.kpis.cost - before) / before) * 100 : null;
    }

    /** The provider comparison: each figure as a bar against the highest of the period. */
    get providerRows() {
        const providers = this.state.data.providers;
        const top = (key) => Math.max(...providers.map((p) => p[key]), 0) || 1;
        const tops = { cost: top("cost"), latency: top("avg_latency_ms") };
        return providers.map((p) => ({
            ...p,
            costWidth: (p.cost / tops.cost) * 100,
            latencyWidth: (p.avg_latency_ms / tops.latency) * 100,
            qualityWidth: Math.min(p.quality, 100),
        }));
    }

    // ------------------------------------------------------------------
    // Click-through to the matching views
    // ------------------------------------------------------------------
    periodDomain(field = "create_date") {
        const { start, end } = this.state.data.period;
        const companies = [["company_id", "in", this.state.data.company_ids]];
        if (field === "day") {
            return [...companies, ["day", ">=", start], ["day", "<=", end]];
        }
        return [...companies, [field, ">=", `${start} 00:00:00`], [field, "<=", `${end} 23:59:59`]];
    }

    openUsage(extraDomain = [], name = _t("AI Usage"), views = ["list", "pivot", "graph", "form"]) {
        this.action.doAction({
            type: "ir.actions.act_window",
            name,
            res_model: "ai.token.usage",
            views: views.map((view) => [false, view]),
            domain: [...this.periodDomain(), ...extraDomain],
        });
    }

    openDaily(extraDomain = [], name = _t("Cost per Day"), context = {}) {
        this.action.doAction({
            type: "ir.actions.act_window",
            name,
            res_model: "ai.token.usage.daily",
            views: [[false, "pivot"], [false, "graph"], [false, "list"]],
            domain: [...this.periodDomain("day"), ...extraDomain],
            context,
        });
    }

    openMonth(offset) {
        // The month's days as the server counted them (the user's today, not the browser's).
        const [start, end] = this.state.data.months[offset ? "last_month" : "this_month"];
        this.action.doAction({
            type: "ir.actions.act_window",
            name: offset ? _t("Cost last month") : _t("Cost this month"),
            res_model: "ai.token.usage.daily",
            views: [[false, "pivot"], [false, "list"]],
            domain: [["company_id", "in", this.state.data.company_ids], ["day", ">=", start], ["day", "<=", end]],
        });
    }

    openReconciliation() {
        const { start, end } = this.state.data.period;
        this.action.doAction({
            type: "ir.actions.act_window",
            name: _t("Reconciliation"),
            res_model: "ai.billing.reconciliation",
            views: [[false, "list"], [false, "pivot"]],
            domain: [["company_id", "in", this.state.data.company_ids], ["date", ">=", start], ["date", "<=", end]],
            context: { search_default_group_status: 1 },
        });
    }

    /** The spend anomalies the dashboard counts (their domain comes with the figure), or those of one day. */
    openAnomalies(day = null) {
        const domain = [...this.state.data.anomalies.domain, ...(day ? [["day", "=", day]] : [])];
        this.action.doAction({
            type: "ir.actions.act_window",
            name: day ? _t("Spend anomalies on %s", formatDate(deserializeDate(day))) : _t("Spend anomalies"),
            res_model: "ai.cost.anomaly",
            views: [[false, "list"], [false, "form"]],
            domain,
        });
    }

    /**
     * The daily chart's markers: a triangle on top of each day's bar that has spend anomalies, whose tooltip
     * names the hours (in the user's time), who spent and how much against the usual hour.
     */
    anomalyMarkers(daily) {
        const byDay = this.state.data.anomalies.by_day;
        const totals = daily.labels.map((_label, i) => daily.datasets.reduce((sum, ds) => sum + (ds.data[i] || 0), 0));
        return {
            type: "line",
            label: _t("Spend anomalies"),
            anomaly: true,
            stack: "anomalies",
            data: daily.labels.map((day, i) => (byDay[day] ? totals[i] : null)),
            showLine: false,
            pointStyle: "triangle",
            pointRadius: 9,
            pointHoverRadius: 11,
            backgroundColor: "#d9534f",
            borderColor: "#a94442",
            order: -1,
        };
    }

    anomalyTooltip(day) {
        const entry = this.state.data.anomalies.by_day[day];
        if (!entry) {
            return [];
        }
        const lines = entry.items.map((item) => {
            const hour = deserializeDateTime(item.hour);
            const span = `${hour.toFormat("HH:mm")}-${hour.plus({ hours: 1 }).toFormat("HH:mm")}`;
            return `${span} ${item.subject}: ${formatUsd(item.spend)} (${item.ratio_label})`;
        });
        if (entry.count > entry.items.length) {
            lines.push(_t("and %s more", entry.count - entry.items.length));
        }
        return [_t("%s spend anomalies", entry.count), ...lines];
    }

    openProvider(row) {
        this.openUsage([["provider_id", "=", row.id]], row.name);
    }

    openRecommendation(rec) {
        if (!rec.domain) {
            return this.openRecord(rec.model, rec.id);
        }
        // A rule's waste in the period: the Waste Report's findings that the line counts.
        this.action.doAction({
            type: "ir.actions.act_window",
            name: _t("Waste Report"),
            res_model: "ai.token.waste.finding",
            views: [[false, "list"], [false, "pivot"]],
            domain: rec.domain,
        });
    }

    openRecord(model, id) {
        this.action.doAction({ type: "ir.actions.act_window", res_model: model, res_id: id, views: [[false, "form"]] });
    }

    openBudgets() {
        this.action.doAction({
            type: "ir.actions.act_window",
            name: _t("Budgets"),
            res_model: "ai.cost.budget",
            views: [[false, "list"], [false, "form"]],
        });
    }

    // ------------------------------------------------------------------
    // Charts
    // ------------------------------------------------------------------
    destroyCharts() {
        for (const chart of Object.values(this.charts)) {
            chart.destroy();
        }
        this.charts = {};
    }

    renderCharts() {
        const data = this.state.data;
        if (!data || !window.Chart) {
            return;
        }
        this.destroyCharts();
        const money = { callbacks: { label: (ctx) => `${ctx.dataset.label || ctx.label}: ${formatUsd(ctx.parsed.y ?? ctx.parsed)}` } };
        // The chart keeps the ISO days as its labels (a click opens that day's records); it only shows them named.
        const dayNames = dayLabels(data.daily.labels);
        const dailyTooltip = {
            callbacks: {
                title: (items) => (items.length ? dayNames[items[0].dataIndex] : ""),
                label: (ctx) => (ctx.dataset.anomaly ? this.anomalyTooltip(ctx.label) : money.callbacks.label(ctx)),
            },
        };
        // A cost axis reads in dollars, as every other amount of the dashboard.
        const dollarTicks = { callback: (value) => formatUsd(value) };
        this.makeChart("daily", {
            type: "bar",
            data: {
                labels: data.daily.labels,
                datasets: [
                    ...data.daily.datasets.map((ds, i) => ({ label: ds.label, data: ds.data, backgroundColor: getColor(i) })),
                    ...(data.anomalies.count ? [this.anomalyMarkers(data.daily)] : []),
                ],
            },
            options: {
                scales: {
                    // Level, as a person reads dates: days that do not fit side by side are skipped, not tilted.
                    x: { stacked: true, ticks: { callback: (index) => dayNames[index], maxRotation: 0, autoSkipPadding: 8 } },
                    y: { stacked: true, beginAtZero: true, ticks: dollarTicks, title: { display: true, text: _t("Cost (USD)") } },
                },
                plugins: { tooltip: dailyTooltip },
                onClick: (_ev, items, chart) => {
                    const marker = items.find((item) => chart.data.datasets[item.datasetIndex].anomaly);
                    if (marker) {
                        this.openAnomalies(data.daily.labels[marker.index]);
                    } else if (items.length) {
                        const day = data.daily.labels[items[0].index];
                        const providerId = data.daily.datasets[items[0].datasetIndex].provider_id;
                        this.openUsage(
                            [["create_date", ">=", `${day} 00:00:00`], ["create_date", "<=", `${day} 23:59:59`], ["provider_id", "=", providerId]],
                            _t("AI Usage on %s", formatDate(deserializeDate(day)))
                        );
                    } else {
                        this.openDaily([], _t("Cost per Day"), { pivot_row_groupby: ["day:day"] });
                    }
                },
            },
        });
        this.makeChart("operation", this.doughnut(data.by_operation, (row) => this.openUsage([["operation", "=", row.id]], row.name)));
        this.makeChart("user", {
            type: "bar",
            data: {
                labels: data.by_user.map((row) => row.name),
                datasets: [{ label: _t("Cost"), data: data.by_user.map((row) => row.cost), backgroundColor: getColor(3) }],
            },
            options: {
                indexAxis: "y",
                scales: { x: { beginAtZero: true, ticks: dollarTicks, title: { display: true, text: _t("Cost (USD)") } } },
                plugins: { legend: { display: false } },
                onClick: (_ev, items) => {
                    const row = items.length ? data.by_user[items[0].index] : null;
                    this.openUsage(row ? [["user_id", "=", row.id]] : [], row ? row.name : _t("AI Usage"));
                },
            },
        });
    }

    doughnut(rows, onRowClick) {
        return {
            type: "doughnut",
            data: {
                labels: rows.map((row) => row.name),
                datasets: [{ data: rows.map((row) => row.cost), backgroundColor: rows.map((_row, i) => getColor(i)) }],
            },
            options: {
                plugins: { legend: { position: "right" } },
                onClick: (_ev, items) => items.length && onRowClick(rows[items[0].index]),
            },
        };
    }

    makeChart(name, config) {
        const canvas = this.canvases[name].el;
        if (canvas) {
            config.options = { maintainAspectRatio: false, responsive: true, animation: false, ...config.options };
            this.charts[name] = new window.Chart(canvas, config);
        }
    }
}

registry.category("actions").add("ai_cost_optimizer.dashboard", CostDashboard);
