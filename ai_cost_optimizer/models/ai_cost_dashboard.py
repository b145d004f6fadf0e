from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..core import budget as budget_math
from ..core.periods import NAMED_PERIODS, named_period_bounds, previous_period_bounds, same_days_last_month

TOP_USERS = 10
TOP_ITEMS = 5
# What the dashboard reads of the per-day rollup for its period, in one scan (ai.cost.report `_grouped_sums`):
# the totals, cost per day and provider, per operation, per user, per provider and outcome. The latency sum
# stays last (the provider comparison reads it there).
PERIOD_GROUPINGS = [
    (), ("day", "provider_id"), ("operation",), ("user_id",), ("provider_id", "status", "provider_called"),
]
PERIOD_MEASURES = ["cost_usd", "call_count", "savings_usd", "cache_hit_count", "waste_usd", "waste_count",
                   "cost_unknown_count", "embedding_call_count", "embedding_tokens", "embedding_cost_usd",
                   "latency_ms_sum"]


class AiCostDashboard(models.AbstractModel):
    """The figures of the cost dashboard, read from the per-day rollup through ai.cost.report, the way the
    JSON API reads them."""

    _name = "ai.cost.dashboard"
    _description = "AI Cost Dashboard"

    @api.model
    def get_dashboard_data(self, period="30d", company_ids=None):
        """Every figure the dashboard shows for `period` (see core.periods NAMED_PERIODS) and companies (default: the
        allowed companies): KPIs, daily cost by provider, cost by operation and user, provider
        comparison, budgets, top recommendations, waste and the spend anomalies of the period."""
        if not self.env.user.has_group("ai_cost_optimizer.group_ai_cost_manager"):
            raise UserError(self.env._("The cost dashboard is for AI Cost managers."))
        companies = self._dashboard_companies(company_ids)
        today = fields.Date.context_today(self)
        try:
            start, end = named_period_bounds(period, today)
        except ValueError:
            raise UserError(self.env._(
                "Unknown dashboard period %(period)r: use one of %(periods)s.",
                period=period, periods=", ".join(NAMED_PERIODS),
            )) from None
        Report = self.env["ai.cost.report"]
        company_domain = [("company_id", "in", companies.ids)]
        # One scan of the per-day rollup for the period's figures, one for this month's and last month's cost.
        sections = Report._grouped_sums(
            company_domain + [("day", ">=", start), ("day", "<=", end)], PERIOD_GROUPINGS, PERIOD_MEASURES
        )
        # The period card compares with the period before (core.periods.previous_period_bounds).
        previous = previous_period_bounds(period, today)
        [(previous_cost,)] = Report._grouped_sums(
            company_domain + [("day", ">=", previous[0]), ("day", "<=", previous[1])], [()], ["cost_usd"]
        )[()]
        return {
            "period": {"key": period, "start": str(start), "end": str(end), "options": NAMED_PERIODS},
            "previous_period": {"start": str(previous[0]), "end": str(previous[1]), "cost": previous_cost or 0.0},
            # The days the month cards count (their click-through opens the same days).
            "months": {
                key: [str(day) for day in named_period_bounds(key, today)] for key in ("this_month", "last_month")
            },
            "companies": [{"id": c.id, "name": c.name} for c in self.env.user.company_ids],
            "company_ids": companies.ids,
            "kpis": self._kpis(Report, company_domain, sections[()], today),
            "daily": self._daily_by_provider(sections[("day", "provider_id")], start, end),
            # An operation keeps its code as id (the click-through filters on it) and reads as its label.
            "by_operation": self._by_dimension(
                sections[("operation",)], lambda codes: self.env["ai.token.usage"]._code_labels("operation", codes)
            ),
            "by_user": self._by_dimension(
                sections[("user_id",)],
                lambda ids: {user.id: user.display_name for user in self.env["res.users"].browse(ids)},
                limit=TOP_USERS,
            ),
            "providers": self._provider_comparison(sections[("provider_id", "status", "provider_called")]),
            "budgets": self._budgets(companies),
            "recommendations": self._recommendations(companies, start, end),
            "waste": self._top_waste(companies, start, end),
            "billed_vs_tracked": self.env["ai.billing.reconciliation"]._billed_vs_tracked(companies, start, end),
            # The spend anomalies of the period, marked on the daily chart (ai.cost.anomaly `_dashboard_summary`).
            "anomalies": self.env["ai.cost.anomaly"]._dashboard_summary(companies, start, end),
        }

    def _dashboard_companies(self, company_ids):
        allowed = self.env.user.company_ids
        if not company_ids:
            return self.env.companies
        companies = self.env["res.company"].browse(company_ids).exists()
        if companies - allowed:
            raise UserError(self.env._("You do not have access to all of the requested companies."))
        return companies

    def _month_costs(self, Report, company_domain, today):
        """This month's cost so far and its forecast, last month's cost, and last month's over the same days
        (the fair comparison early in a month), from one scan of the per-day rollup."""
        first_of_month = today.replace(day=1)
        first_of_last, last_same_day = same_days_last_month(today)
        by_day = Report._grouped_sums(
            company_domain + [("day", ">=", first_of_last), ("day", "<=", today)], [("day",)], ["cost_usd"]
        )[("day",)]
        return {
            # The same forecast as a monthly budget's (core.budget.period_forecast), on the days of this month.
            "forecast_month": budget_math.period_forecast(
                dict(by_day), *budget_math.period_bounds(today, "monthly"), today
            ),
            "cost_this_month": sum((cost for day, cost in by_day if day >= first_of_month), 0.0),
            "cost_last_month": sum((cost for day, cost in by_day if day < first_of_month), 0.0),
            "cost_last_month_same_days": sum((cost for day, cost in by_day if day <= last_same_day), 0.0),
        }

    def _kpis(self, Report, company_domain, totals, today):
        months = self._month_costs(Report, company_domain, today)
        (cost, calls, savings, hits, waste, waste_count, unknown, embedding_calls, embedding_tokens, embedding_cost,
         _latency), = totals
        return {
            **months,
            "cost": cost or 0.0,
            "calls": calls or 0,
            "savings": savings or 0.0,
            "cache_hits": hits or 0,
            "waste": waste or 0.0,
            "waste_count": waste_count or 0,
            "cost_unknown_count": unknown or 0,
            # The embedding calls among the period's calls (their cost is part of the period cost).
            "embedding_calls": embedding_calls or 0,
            "embedding_tokens": embedding_tokens or 0,
            "embedding_cost": embedding_cost or 0.0,
        }

    def _daily_by_provider(self, rows, start, end):
        days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
        index = {day: n for n, day in enumerate(days)}
        providers = self.env["ai.service.provider"].browse({provider for _day, provider, *_ in rows if provider})
        names = {provider.id: provider.name for provider in providers}
        series = {}
        for day, provider_id, cost, *_sums in rows:
            name = names.get(provider_id) or self.env._("Unknown provider")
            series.setdefault((provider_id or False, name), [0.0] * len(days))[index[day]] += cost
        return {
            "labels": [str(day) for day in days],
            "datasets": [
                {"provider_id": provider_id, "label": name, "data": data}
                for (provider_id, name), data in sorted(series.items(), key=lambda item: -sum(item[1]))
            ],
        }

    def _by_dimension(self, rows, names_of, limit=None):
        """Cost and calls by the key of `rows`, costliest first, each named by `names_of` ({key: name} of
        the keys it is given)."""
        rows = sorted(rows, key=lambda row: -row[1])[:limit]
        names = names_of([key for key, *_ in rows if key])
        return [
            {"id": key or False, "name": names.get(key) or self.env._("(none)"),
             "cost": cost, "calls": calls}
            for key, cost, calls, *_sums in rows
        ]

    def _provider_comparison(self, rows):
        stats = {}
        for provider_id, status, provider_called, cost, calls, *_sums, latency in rows:
            # A provider's samples are the requests that reached it, as the Benchmarks view counts them: not the
            # answers of the response cache, nor the calls a budget or a rate limit refused or that failed
            # before they were sent.
            if not provider_called:
                continue
            row = stats.setdefault(
                provider_id or False, {"cost": 0.0, "calls": 0, "errors": 0, "latency": 0.0, "ok": 0}
            )
            row["cost"] += cost
            row["calls"] += calls
            if status == "ok":
                row["ok"] += calls
                row["latency"] += latency
            elif status == "error":
                row["errors"] += calls
        providers = self.env["ai.service.provider"].browse(pid for pid in stats if pid)
        records = {provider.id: provider for provider in providers}
        result = []
        for provider_id, row in sorted(stats.items(), key=lambda item: -item[1]["cost"]):
            provider = records.get(provider_id, self.env["ai.service.provider"])
            result.append({
                "id": provider.id,
                "name": provider.name or self.env._("Unknown provider"),
                "model": provider.model or "",
                "cost": row["cost"],
                "calls": row["calls"],
                "avg_latency_ms": row["latency"] / row["ok"] if row["ok"] else 0.0,
                "error_rate": row["errors"] / row["calls"] if row["calls"] else 0.0,
                # The configured quality blended with the rated answers (0-100), as the optimizer ranks it.
                "quality": round(provider.effective_quality, 1) if provider else 0.0,
            })
        return result

    def _budgets(self, companies):
        """Budget progress bars: each budget's current period, its spend and its forecast, as its form
        shows them (ai.cost.budget `forecast_amount`, the forecast of the period, not of the month)."""
        return [
            {
                "id": budget.id,
                "name": budget.display_name,
                "period_type": budget.period_type,
                "amount": budget.budget_amount,
                "spend": budget.current_spend,
                "percent": budget.percentage_used,
                "forecast": budget.forecast_amount,
                "forecast_percent": budget.forecast_percentage,
            }
            for budget in self.env["ai.cost.budget"].search([("company_id", "in", companies.ids)], limit=20)
        ]

    def _recommendations(self, companies, start, end):
        """The waste found in the period, one line per rule as the Waste Report counts its findings
        (ai.token.analytics `_waste_by_rule`), then the optimizer's latest recommendations."""
        items = [
            {"source": "waste", "text": line["text"], "rule": line["rule"], "count": line["count"],
             "cost": line["cost"], "domain": line["domain"]}
            for line in self.env["ai.token.analytics"]._waste_by_rule(companies, start, end)[:TOP_ITEMS]
        ]
        Recommendation = self.env["ai.cost.recommendation"]
        for rec in Recommendation.search([("company_id", "in", companies.ids)], limit=TOP_ITEMS):
            items.append({"source": "optimizer", "text": rec.reasoning or rec.display_name, "model": rec._name,
                          "id": rec.id})
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
                "operation": usage.operation_label or usage.task_type_label or "",
                "provider": usage.provider_id.name or "",
                "saved": usage.could_have_saved_usd,
            }
            for usage in usages
        ]
