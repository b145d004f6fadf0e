import json
import math
import re

import werkzeug.exceptions

from odoo import fields, http
from odoo.http import request

from ..core.messages import check_label, check_model_name, short_repr
from ..core.periods import NAMED_PERIODS, named_period_bounds
from ..core.request import MAX_RECORD_ID
from ..models.ir_http import json_error

COST_FILTERS = {"period", "start", "end", "operation", "user", "provider", "res_model", "res_id"}
USER_FILTERS = {"period", "start", "end", "operation", "provider", "budget"}
# Without a period nor a start: the days of this named period ending on `end` (the dashboard's default).
DEFAULT_PERIOD = "30d"
# The API only reads. Its routes take every method, so that another one gets a JSON 405 from the
# controller rather than the HTML page of Odoo's router.
READ_METHODS = ("GET", "HEAD")
# Strict formats: Python's own parsers also take Unicode digits, trailing junk (Date.to_date cuts
# at 10 characters) or exponents.
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
INT_RE = re.compile(r"-?[0-9]+")
# The figures the API rounds, by key (ai.cost.report computes them exact): sums of dollars (totals, per
# operation, record, provider, user or day) to a hundredth of a cent, so that a few sub-cent calls still
# show; the average per user to a millionth of a dollar, a single call's cost; ratios to 4 decimals.
TOTAL_DIGITS = 4
ROUNDED = {
    "total_cost_usd": TOTAL_DIGITS, "cost_usd": TOTAL_DIGITS, "estimated_savings_usd": TOTAL_DIGITS,
    "min_cost_usd": TOTAL_DIGITS, "max_cost_usd": TOTAL_DIGITS, "avg_cost_usd": 6, "hit_rate": 4,
}


def rounded(value, key=None):
    """`value` (a report of ai.cost.report) with the figures of ROUNDED rounded; the rest as it is."""
    if isinstance(value, dict):
        return {name: rounded(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    if isinstance(value, float) and key in ROUNDED:
        return round(value, ROUNDED[key])
    return value


def json_response(payload):
    return request.make_response(json.dumps(rounded(payload)), headers=[("Content-Type", "application/json")])


class CostApi(http.Controller):
    """Read-only JSON API over the usage rollups (AI Cost managers only): parses and checks the request,
    authorizes it, and returns what the reporting model (ai.cost.report) reads, as JSON."""

    @http.route(
        "/ai_cost/api/v1/costs", type="http", auth="ai_cost_api", csrf=False, save_session=False
    )
    def costs(self, **params):
        """Total cost and requests, by operation, record, provider, cache stats and time series."""
        env, filters = self._prepare(params, COST_FILTERS)
        return json_response(env["ai.cost.report"]._costs(filters))

    @http.route(
        "/ai_cost/api/v1/costs/users", type="http", auth="ai_cost_api", csrf=False, save_session=False
    )
    def costs_by_user(self, **params):
        """Cost per user in the period: count, min, average and max, and whether all are under `budget`."""
        budget = params.pop("budget", None)
        env, filters = self._prepare(params, USER_FILTERS)
        if budget is not None:
            budget = self._parse_number(budget, "budget")
            filters["budget"] = budget
        return json_response(env["ai.cost.report"]._user_summary(filters, budget))

    # ------------------------------------------------------------------
    def _prepare(self, params, allowed):
        """The manager's environment and the checked filters (echoed back; see ai.cost.report `_rollup_domain`)."""
        method = request.httprequest.method
        if method not in READ_METHODS:
            raise json_error(
                werkzeug.exceptions.MethodNotAllowed, f"The AI cost API only reads: use GET, not {method}.",
                headers=[("Allow", ", ".join(READ_METHODS))],
            )
        env = request.env
        if not env.user.has_group("ai_cost_optimizer.group_ai_cost_manager"):
            raise json_error(werkzeug.exceptions.Forbidden, "The AI cost API is for AI Cost managers.")
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise self._bad_request(
                f"Unknown filter(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}."
            )
        start, end = self._period(params, fields.Date.context_today(env.user))
        if start > end:
            raise self._bad_request("start must not be after end.")
        filters = {"start": str(start), "end": str(end)}
        for name, check in (("operation", check_label), ("res_model", check_model_name)):
            try:
                value = check(params.get(name), name)
            except ValueError as error:
                raise self._bad_request(str(error)) from None
            if value:
                filters[name] = value
        for name in ("user", "provider", "res_id"):
            if params.get(name) not in (None, ""):
                filters[name] = self._parse_int(params[name], name)
        self._check_visible(env, filters)
        if "res_id" in filters and "res_model" not in filters:
            raise self._bad_request("res_id needs res_model.")
        return env, filters

    def _period(self, params, today):
        """(start, end) of the request: a named period (`period`, as the dashboard names them, seen on the
        user's `today`), or `start` and `end`, by default the DEFAULT_PERIOD ending on `end` or today."""
        period = params.get("period")
        if period not in (None, ""):
            if params.get("start") or params.get("end"):
                raise self._bad_request("Give either a period or start/end dates, not both.")
            if period not in NAMED_PERIODS:
                raise self._bad_request(
                    f"Unknown period {short_repr(period)}: use one of {', '.join(NAMED_PERIODS)}."
                )
            return named_period_bounds(period, today)
        end = self._parse_date(params.get("end"), "end") or today
        try:
            start = self._parse_date(params.get("start"), "start") or named_period_bounds(DEFAULT_PERIOD, end)[0]
        except OverflowError:
            raise self._bad_request(
                f"The default start, {NAMED_PERIODS[DEFAULT_PERIOD].lower()} up to end, is out of range."
            ) from None
        return start, end

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
