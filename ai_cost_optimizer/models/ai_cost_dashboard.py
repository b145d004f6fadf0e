import calendar
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

PERIODS = {
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "this_month": "This month",
    "last_month": "Last month",
}
TOP_USERS = 10
TOP_ITEMS = 5


def period_bounds(period, today):
    """(first day, last day) of a dashboard period, both included."""
    if period in ("7d", "30d", "90d"):
        return today - timedelta(days=int(period[:-1]) - 1), today
    first_of_month = today.replace(day=1)
    if period == "this_month":
        return first_of_month, today
    if period == "last_month":
        last = first_of_month - timedelta(days=1)
        return last.replace(day=1), last
    raise UserError(f"Unknown dashboard period {period!r}: use one of {', '.join(PERIODS)}.")


def month_forecast(spent, today):
    """Linear forecast of a month's spend from what was spent by `today` (included)."""
    days_in_month = calendar.monthrange(today.year, today.month)[1]
    return spent / today.day * days_in_month


class AiCostDashboard(models.AbstractModel):
    """The figures of the cost dashboard, read from the per-day rollup in one round trip."""

    _name = "ai.cost.dashboard"
    _description = "AI Cost Dashboard"

    @api.model
    def get_dashboard_data(self, period="30d", company_ids=None):
        """Every figure the dashboard shows for `period` (see PERIODS) and companies (default: the
        allowed companies): KPIs, daily cost by provider, cost by operation and user, provider
        comparison, budgets, top recommendations and waste."""
        if not self.env.user.has_group("ai_cost_optimizer.group_ai_cost_manager"):
            raise UserError(self.env._("The cost dashboard is for AI Cost managers."))
        companies = self._dashboard_companies(company_ids)
        today = fields.Date.context_today(self)
        start, end = period_bounds(period, today)
        Daily = self.env["ai.token.usage.daily"]
        company_domain = [("company_id", "in", companies.ids)]
        domain = company_domain + [("day", ">=", start), ("day", "<=", end)]
        return {
            "period": {"key": period, "start": str(start), "end": str(end), "options": PERIODS},
            "companies": [{"id": c.id, "name": c.name} for c in self.env.user.company_ids],
            "company_ids": companies.ids,
            "kpis": self._kpis(Daily, company_domain, domain, today),
            "daily": self._daily_by_provider(Daily, domain, start, end),
            "by_operation": self._by_dimension(Daily, domain, "operation"),
            "by_user": self._by_dimension(Daily, domain, "user_id", limit=TOP_USERS),
            "providers": self._provider_comparison(Daily, domain),
            "budgets": self._budgets(companies),
            "recommendations": self._recommendations(companies),
            "waste": self._top_waste(companies, start, end),
        }

    def _dashboard_companies(self, company_ids):
        allowed = self.env.user.company_ids
        if not company_ids:
            return self.env.companies
        companies = self.env["res.company"].browse(company_ids).exists()
        if companies - allowed:
            raise UserError(self.env._("You do not have access to all of the requested companies."))
        return companies

    def _kpis(self, Daily, company_domain, domain, today):
        first_of_month = today.replace(day=1)
        first_of_last = (first_of_month - timedelta(days=1)).replace(day=1)
        (this_month,), = Daily._read_group(
            company_domain + [("day", ">=", first_of_month), ("day", "<=", today)], [], ["cost_usd:sum"]
        )
        (last_month,), = Daily._read_group(
            company_domain + [("day", ">=", first_of_last), ("day", "<", first_of_month)], [], ["cost_usd:sum"]
        )
        (cost, calls, savings, hits, waste, waste_count, unknown), = Daily._read_group(
            domain,
            [],
            ["cost_usd:sum", "call_count:sum", "savings_usd:sum", "cache_hit_count:sum", "waste_usd:sum",
             "waste_count:sum", "cost_unknown_count:sum"],
        )
        return {
            "cost_this_month": this_month or 0.0,
            "cost_last_month": last_month or 0.0,
            "forecast_month": month_forecast(this_month or 0.0, today),
            "cost": cost or 0.0,
            "calls": calls or 0,
            "savings": savings or 0.0,
            "cache_hits": hits or 0,
            "waste": waste or 0.0,
            "waste_count": waste_count or 0,
            "cost_unknown_count": unknown or 0,
        }

    def _daily_by_provider(self, Daily, domain, start, end):
        groups = Daily._read_group(domain, ["day:day", "provider_id"], ["cost_usd:sum"])
        days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
        index = {day: n for n, day in enumerate(days)}
        series = {}
        for day, provider, cost in groups:
            name = provider.name or self.env._("Unknown provider")
            series.setdefault((provider.id, name), [0.0] * len(days))[index[day]] += cost
        return {
            "labels": [str(day) for day in days],
            "datasets": [
                {"provider_id": provider_id, "label": name, "data": data}
                for (provider_id, name), data in sorted(series.items(), key=lambda item: -sum(item[1]))
            ],
        }

    def _by_dimension(self, Daily, domain, field, limit=None):
        groups = Daily._read_group(
            domain, [field], ["cost_usd:sum", "call_count:sum"], order="cost_usd:sum desc", limit=limit
        )
        rows = []
        for key, cost, calls in groups:
            if isinstance(key, models.BaseModel):
                key_id, name = key.id, key.display_name
            else:
                key_id, name = key or False, key
            rows.append({"id": key_id, "name": name or self.env._("(none)"), "cost": cost, "calls": calls})
        return rows

    def _provider_comparison(self, Daily, domain):
        groups = Daily._read_group(
            domain + [("cache_hit", "=", False)],
            ["provider_id", "status"],
            ["cost_usd:sum", "call_count:sum", "latency_ms_sum:sum"],
        )
        stats = {}
        for provider, status, cost, calls, latency in groups:
            row = stats.setdefault(provider, {"cost": 0.0, "calls": 0, "errors": 0, "latency": 0.0, "ok": 0})
            row["cost"] += cost
            row["calls"] += calls
            if status == "ok":
                row["ok"] += calls
                row["latency"] += latency
            elif status == "error":
                row["errors"] += calls
        return [
            {
                "id": provider.id,
                "name": provider.name or self.env._("Unknown provider"),
                "model": provider.model or "",
                "cost": row["cost"],
                "calls": row["calls"],
                "avg_latency_ms": row["latency"] / row["ok"] if row["ok"] else 0.0,
                "error_rate": row["errors"] / row["calls"] if row["calls"] else 0.0,
                "quality": self._provider_quality(provider),
            }
            for provider, row in sorted(stats.items(), key=lambda item: -item[1]["cost"])
        ]

    @staticmethod
    def _provider_quality(provider):
        if not provider:
            return 0
        for name in ("effective_quality_score", "quality_score"):
            if name in provider._fields:
                return provider[name]
        return 0

    def _budgets(self, companies):
        """Budget progress bars, when budgets are installed (ai.cost.budget)."""
        if "ai.cost.budget" not in self.env:
            return []
        Budget = self.env["ai.cost.budget"]
        domain = [("company_id", "in", companies.ids)] if "company_id" in Budget._fields else []
        rows = []
        for budget in Budget.search(domain, limit=20):
            amount = budget.budget_amount if "budget_amount" in budget._fields else 0.0
            spend = budget.current_spend if "current_spend" in budget._fields else 0.0
            forecast = budget.forecast_monthly if "forecast_monthly" in budget._fields else 0.0
            rows.append({
                "id": budget.id,
                "name": budget.display_name,
                "period_type": budget.period_type if "period_type" in budget._fields else "",
                "amount": amount,
                "spend": spend,
                "percent": spend / amount * 100 if amount else 0.0,
                "forecast": forecast,
                "forecast_percent": forecast / amount * 100 if amount else 0.0,
            })
        return rows

    def _recommendations(self, companies):
        """The latest recommendations: from the analytics report and the optimizer, when installed."""
        items = []
        if "ai.token.analytics" in self.env:
            Analytics = self.env["ai.token.analytics"]
            if "recommendations" in Analytics._fields:
                report = Analytics.search([("recommendations", "!=", False)], limit=1)
                items += [
                    {"source": "analytics", "text": line.strip("-• ").strip(), "model": report._name, "id": report.id}
                    for line in (report.recommendations or "").splitlines()
                    if line.strip()
                ][:TOP_ITEMS]
        if "ai.cost.recommendation" in self.env:
            Recommendation = self.env["ai.cost.recommendation"]
            for rec in Recommendation.search([], limit=TOP_ITEMS):
                text = rec.reasoning if "reasoning" in rec._fields else rec.display_name
                items.append(
                    {"source": "optimizer", "text": text or rec.display_name, "model": rec._name, "id": rec.id}
                )
        return items[:TOP_ITEMS * 2]

    def _top_waste(self, companies, start, end):
        """The costliest waste findings of the period (a partial index keeps this off the ledger scan)."""
        usages = self.env["ai.token.usage"].search(
            [
                ("company_id", "in", companies.ids),
                ("waste_detected", "=", True),
                ("create_date", ">=", fields.Datetime.to_datetime(start)),
                ("create_date", "<", fields.Datetime.to_datetime(end + timedelta(days=1))),
            ],
            order="could_have_saved_usd desc",
            limit=TOP_ITEMS,
        )
        return [
            {
                "id": usage.id,
                "reason": usage.waste_reason or self.env._("Waste"),
                "operation": usage.operation or usage.task_type or "",
                "provider": usage.provider_id.name or "",
                "saved": usage.could_have_saved_usd,
            }
            for usage in usages
        ]
