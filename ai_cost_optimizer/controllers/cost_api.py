import json
from datetime import timedelta

import werkzeug.exceptions

from odoo import fields, http
from odoo.http import request

from ..models.ir_http import json_error

COST_FILTERS = {"start", "end", "operation", "user", "provider", "res_model", "res_id"}
USER_FILTERS = {"start", "end", "operation", "provider", "budget"}
DEFAULT_DAYS = 30
TOP_RECORDS = 10


def json_response(payload):
    return request.make_response(json.dumps(payload), headers=[("Content-Type", "application/json")])


def cost_payload(env, domain, filters):
    """The body of /ai_cost/api/v1/costs for a rollup `domain`, read from the per-day rollups."""
    Daily = env["ai.token.usage.daily"]
    if "res_id" in filters:
        Daily = env["ai.token.usage.record.daily"]
    (cost, calls, hits, savings, unknown), = Daily._read_group(
        domain, [], ["cost_usd:sum", "call_count:sum", "cache_hit_count:sum", "savings_usd:sum",
                     "cost_unknown_count:sum"],
    )
    calls = calls or 0
    return {
        "filters": filters,
        "total_cost_usd": cost or 0.0,
        "total_requests": calls,
        "cost_unknown_requests": unknown or 0,
        "by_operation": [
            {"operation": op or None, "cost_usd": c, "requests": n}
            for op, c, n in Daily._read_group(
                domain, ["operation"], ["cost_usd:sum", "call_count:sum"], order="cost_usd:sum desc"
            )
        ],
        "by_record": [
            {"res_model": model, "res_id": res_id, "cost_usd": c, "requests": n}
            for model, res_id, c, n in env["ai.token.usage.record.daily"]._read_group(
                domain, ["res_model", "res_id"], ["cost_usd:sum", "call_count:sum"],
                order="cost_usd:sum desc", limit=TOP_RECORDS,
            )
        ],
        "by_provider": [
            {"provider_id": p.id or None, "provider_name": p.name or None, "model": p.model or None,
             "cost_usd": c, "requests": n}
            for p, c, n in Daily._read_group(
                domain, ["provider_id"], ["cost_usd:sum", "call_count:sum"], order="cost_usd:sum desc"
            )
        ],
        "cache_stats": {
            "hits": hits or 0,
            "hit_rate": (hits or 0) / calls if calls else 0.0,
            "estimated_savings_usd": savings or 0.0,
        },
        "time_series": [
            {"date": str(day), "cost_usd": c, "requests": n}
            for day, c, n in Daily._read_group(
                domain, ["day:day"], ["cost_usd:sum", "call_count:sum"], order="day:day"
            )
        ],
    }


class CostApi(http.Controller):
    """Read-only JSON API over the per-day usage rollups (AI Cost managers only)."""

    @http.route(
        "/ai_cost/api/v1/costs", type="http", auth="ai_cost_api", methods=["GET"], csrf=False, save_session=False
    )
    def costs(self, **params):
        """Total cost and requests, by operation, record, provider, cache stats and time series."""
        env, domain, filters = self._prepare(params, COST_FILTERS)
        return json_response(cost_payload(env, domain, filters))

    @http.route(
        "/ai_cost/api/v1/costs/users", type="http", auth="ai_cost_api", methods=["GET"], csrf=False, save_session=False
    )
    def costs_by_user(self, **params):
        """Cost per user in the period: count, min, average and max, and whether all are under `budget`."""
        budget = params.pop("budget", None)
        env, domain, filters = self._prepare(params, USER_FILTERS)
        if budget is not None:
            budget = self._parse_number(budget, "budget")
            filters["budget"] = budget
        groups = env["ai.token.usage.daily"]._read_group(
            domain, ["user_id"], ["cost_usd:sum", "call_count:sum"], order="cost_usd:sum desc"
        )
        costs = [cost for _user, cost, _n in groups]
        return json_response({
            "filters": filters,
            "users": [
                {"user_id": user.id or None, "user_name": user.name or None, "cost_usd": cost, "requests": n}
                for user, cost, n in groups
            ],
            "count": len(costs),
            "min_cost_usd": min(costs, default=0.0),
            "avg_cost_usd": sum(costs) / len(costs) if costs else 0.0,
            "max_cost_usd": max(costs, default=0.0),
            "budget_usd": budget,
            "all_under_budget": None if budget is None else all(cost < budget for cost in costs),
        })

    # ------------------------------------------------------------------
    def _prepare(self, params, allowed):
        """The manager's environment, the rollup domain of the filters, and the filters echoed back."""
        env = request.env
        if not env.user.has_group("ai_cost_optimizer.group_ai_cost_manager"):
            raise json_error(werkzeug.exceptions.Forbidden, "The AI cost API is for AI Cost managers.")
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise self._bad_request(
                f"Unknown filter(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}."
            )
        today = fields.Date.context_today(env.user)
        end = self._parse_date(params.get("end"), "end") or today
        start = self._parse_date(params.get("start"), "start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise self._bad_request("start must not be after end.")
        domain = [("day", ">=", start), ("day", "<=", end)]
        filters = {"start": str(start), "end": str(end)}
        if params.get("operation"):
            domain.append(("operation", "=", params["operation"]))
            filters["operation"] = params["operation"]
        for name, field in (("user", "user_id"), ("provider", "provider_id"), ("res_id", "res_id")):
            if params.get(name) not in (None, ""):
                value = self._parse_int(params[name], name)
                domain.append((field, "=", value))
                filters[name] = value
        if params.get("res_model"):
            domain.append(("res_model", "=", params["res_model"]))
            filters["res_model"] = params["res_model"]
        if "res_id" in filters and "res_model" not in filters:
            raise self._bad_request("res_id needs res_model.")
        return env, domain, filters

    @staticmethod
    def _bad_request(message):
        return json_error(werkzeug.exceptions.BadRequest, message)

    def _parse_date(self, value, name):
        if value in (None, ""):
            return None
        try:
            return fields.Date.to_date(value)
        except ValueError:
            raise self._bad_request(f"{name} must be a date in YYYY-MM-DD format, not {value!r}.") from None

    def _parse_int(self, value, name):
        try:
            number = int(value)
        except ValueError:
            raise self._bad_request(f"{name} must be an integer id, not {value!r}.") from None
        if number <= 0:
            raise self._bad_request(f"{name} must be a positive id.")
        return number

    def _parse_number(self, value, name):
        try:
            number = float(value)
        except ValueError:
            raise self._bad_request(f"{name} must be a number, not {value!r}.") from None
        if number < 0 or number != number:
            raise self._bad_request(f"{name} must be a positive number.")
        return number
