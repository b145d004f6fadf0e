import json
import math
import re
from datetime import timedelta

import werkzeug.exceptions

from odoo import fields, http
from odoo.http import request

from ..core.messages import check_label, check_model_name, short_repr
from ..models.ai_service import MAX_RECORD_ID
from ..models.ir_http import json_error

COST_FILTERS = {"start", "end", "operation", "user", "provider", "res_model", "res_id"}
USER_FILTERS = {"start", "end", "operation", "provider", "budget"}
DEFAULT_DAYS = 30
TOP_RECORDS = 10
# Strict formats: Python's own parsers also take Unicode digits, trailing junk (Date.to_date cuts
# at 10 characters) or exponents.
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
INT_RE = re.compile(r"-?[0-9]+")


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
        try:
            start = self._parse_date(params.get("start"), "start") or end - timedelta(days=DEFAULT_DAYS - 1)
        except OverflowError:
            raise self._bad_request(f"The default start, {DEFAULT_DAYS} days before end, is out of range.") from None
        if start > end:
            raise self._bad_request("start must not be after end.")
        domain = [("day", ">=", start), ("day", "<=", end)]
        filters = {"start": str(start), "end": str(end)}
        for name, check in (("operation", check_label), ("res_model", check_model_name)):
            try:
                value = check(params.get(name), name)
            except ValueError as error:
                raise self._bad_request(str(error)) from None
            if value:
                domain.append((name, "=", value))
                filters[name] = value
        for name, field in (("user", "user_id"), ("provider", "provider_id"), ("res_id", "res_id")):
            if params.get(name) not in (None, ""):
                value = self._parse_int(params[name], name)
                domain.append((field, "=", value))
                filters[name] = value
        self._check_visible(env, filters)
        if "res_id" in filters and "res_model" not in filters:
            raise self._bad_request("res_id needs res_model.")
        return env, domain, filters

    @staticmethod
    def _bad_request(message):
        return json_error(werkzeug.exceptions.BadRequest, message)

    def _check_visible(self, env, filters):
        """A user or provider id must name one of the caller's companies': an unknown id is a
        mistake to report, not an empty answer."""
        companies = env.companies.ids
        if "user" in filters and not env["res.users"].sudo().with_context(active_test=False).search_count(
            [("id", "=", filters["user"]), ("company_ids", "in", companies)], limit=1
        ):
            raise self._bad_request(f"Unknown user {filters['user']}.")
        if "provider" in filters and not env["ai.service.provider"].with_context(active_test=False).search_count(
            [("id", "=", filters["provider"]), ("company_id", "in", companies)], limit=1
        ):
            raise self._bad_request(f"Unknown provider {filters['provider']}.")

    def _parse_date(self, value, name):
        if value in (None, ""):
            return None
        try:
            if not DATE_RE.fullmatch(value):
                raise ValueError(value)
            return fields.Date.to_date(value)
        except ValueError:
            raise self._bad_request(f"{name} must be a date in YYYY-MM-DD format, not {short_repr(value)}.") from None

    def _parse_int(self, value, name):
        if not INT_RE.fullmatch(value):
            raise self._bad_request(f"{name} must be an integer id, not {short_repr(value)}.")
        number = int(value)
        if not 0 < number <= MAX_RECORD_ID:
            raise self._bad_request(f"{name} must be a positive id (at most {MAX_RECORD_ID}).")
        return number

    def _parse_number(self, value, name):
        try:
            number = float(value)
        except ValueError:
            raise self._bad_request(f"{name} must be a number, not {short_repr(value)}.") from None
        if not math.isfinite(number) or number < 0:
            raise self._bad_request(f"{name} must be a positive number.")
        return number
