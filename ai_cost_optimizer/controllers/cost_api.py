import json
import math
import re
from datetime import date, timedelta

import werkzeug.exceptions

from odoo import fields, http
from odoo.http import request
from odoo.osv import expression
from odoo.tools import SQL

from ..core.messages import check_label, check_model_name, short_repr
from ..models.ai_service import MAX_RECORD_ID
from ..models.ai_service_provider_price import PRICE_DIGITS
from ..models.ai_token_usage_record_monthly import month_end, month_start
from ..models.ai_token_usage_record_yearly import year_start
from ..models.ir_http import json_error

COST_FILTERS = {"start", "end", "operation", "user", "provider", "res_model", "res_id"}
USER_FILTERS = {"start", "end", "operation", "provider", "budget"}
DEFAULT_DAYS = 30
TOP_RECORDS = 10
DAY = timedelta(days=1)
# Strict formats: Python's own parsers also take Unicode digits, trailing junk (Date.to_date cuts
# at 10 characters) or exponents.
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
INT_RE = re.compile(r"-?[0-9]+")

# Filter name -> rollup field, for the filters that are equalities on a rollup key.
KEY_FILTERS = {"operation": "operation", "user": "user_id", "provider": "provider_id", "res_model": "res_model",
               "res_id": "res_id"}
RECORD_DAILY, RECORD_MONTHLY = "ai.token.usage.record.daily", "ai.token.usage.record.monthly"
RECORD_OPERATION_MONTHLY = "ai.token.usage.record.operation.monthly"
RECORD_YEARLY, RECORD_OPERATION_YEARLY = "ai.token.usage.record.yearly", "ai.token.usage.record.operation.yearly"
# The filters that the per-month and per-year record rollups apply; the others leave the per-day one.
PERIOD_RECORD_FILTERS = {"start", "end", "operation", "res_model"}
# How many records `_pruned_top` sums at most: the candidates of its two rounds, then the contenders.
PRUNE_CANDIDATES, PRUNE_CONTENDERS = (4 * TOP_RECORDS, 40 * TOP_RECORDS), 50 * TOP_RECORDS
PRUNE_SHARE = 0.5  # of the cost of the year or month that holds the period, that the period holds (`_record_bound`)
NO_PROVIDER = {"provider_name": None, "model": None}
# GROUPING(operation, provider_id, day) of each grouping set of `_daily_sections`.
TOTAL_SET, OPERATION_SET, PROVIDER_SET, DAY_SET = 0b111, 0b011, 0b101, 0b110


def json_response(payload):
    return request.make_response(json.dumps(payload), headers=[("Content-Type", "application/json")])


def rollup_domain(filters, start=None, end=None):
    """The rollup domain of the API `filters` (as `_prepare` returns them), over [start, end] if given."""
    return [("day", ">=", start or filters["start"]), ("day", "<=", end or filters["end"])] + key_domain(filters)


def key_domain(filters):
    """The part of `rollup_domain` on the rollups' keys."""
    return [(field, "=", filters[name]) for name, field in KEY_FILTERS.items() if name in filters]


def cost_payload(env, filters):
    """The body of /ai_cost/api/v1/costs for the API `filters`, read from the rollups in a few queries."""
    Rollup = env["ai.token.usage.record.daily" if "res_id" in filters else "ai.token.usage.daily"]
    sections = _daily_sections(Rollup, rollup_domain(filters))
    (cost, calls, hits, savings, unknown), = sections[TOTAL_SET]
    calls = calls or 0
    providers = env["ai.service.provider"].browse(key for key, *_sums in sections[PROVIDER_SET] if key)
    names = {p.id: {"provider_name": p.name, "model": p.model} for p in providers}
    return {
        "filters": filters,
        "total_cost_usd": cost or 0.0,
        "total_requests": calls,
        "cost_unknown_requests": unknown or 0,
        "by_operation": [
            {"operation": op or None, "cost_usd": c, "requests": n}
            for op, c, n, *_rest in _costliest_first(sections[OPERATION_SET])
        ],
        "by_record": _top_records(env, filters),
        "by_provider": [
            {"provider_id": provider_id or None, **names.get(provider_id, NO_PROVIDER), "cost_usd": c, "requests": n}
            for provider_id, c, n, *_rest in _costliest_first(sections[PROVIDER_SET])
        ],
        "cache_stats": {
            "hits": hits or 0,
            "hit_rate": (hits or 0) / calls if calls else 0.0,
            "estimated_savings_usd": savings or 0.0,
        },
        "time_series": [
            {"date": str(day), "cost_usd": c, "requests": n}
            for day, c, n, *_rest in sorted(sections[DAY_SET])
        ],
    }


def _costliest_first(rows):
    return sorted(rows, key=lambda row: -(row[1] or 0.0))


def _daily_sections(Rollup, domain):
    """Totals and the sums by operation, by provider and by day, in one scan of the per-day `Rollup`:
    {grouping set: [(key, cost, calls, cache hits, savings, cost-unknown calls)]} (no key for the totals)."""
    query = Rollup._search(domain)
    table = query.table
    env = Rollup.env
    env.cr.execute(SQL(
        """SELECT GROUPING(%(op)s, %(provider)s, %(day)s), %(op)s, %(provider)s, %(day)s,
                  SUM(%(cost)s), SUM(%(calls)s), SUM(%(hits)s), SUM(%(savings)s), SUM(%(unknown)s)
             FROM %(tables)s WHERE %(where)s
         GROUP BY GROUPING SETS ((), (%(op)s), (%(provider)s), (%(day)s))""",
        op=SQL.identifier(table, "operation"), provider=SQL.identifier(table, "provider_id"),
        day=SQL.identifier(table, "day"), cost=SQL.identifier(table, "cost_usd"),
        calls=SQL.identifier(table, "call_count"), hits=SQL.identifier(table, "cache_hit_count"),
        savings=SQL.identifier(table, "savings_usd"), unknown=SQL.identifier(table, "cost_unknown_count"),
        tables=query.from_clause, where=query.where_clause,
    ))
    sections = {TOTAL_SET: [], OPERATION_SET: [], PROVIDER_SET: [], DAY_SET: []}
    for grouping, op, provider_id, day, *sums in env.cr.fetchall():
        key = {OPERATION_SET: [op], PROVIDER_SET: [provider_id], DAY_SET: [day]}.get(grouping, [])
        sections[grouping].append((*key, *sums))
    return sections


def _top_records(env, filters):
    """The TOP_RECORDS records that cost the most in the period: the per-month rollup sums the months that
    the period covers, the per-day one the days of the months it cuts. Summed for the costliest records of
    a year or month only when that gives the exact answer (`_pruned_top`), for every record otherwise."""
    parts = _record_parts(env, filters)
    bound = _record_bound(env, filters)
    rows = _pruned_top(env, parts, bound) if bound else None
    if rows is None:
        rows = _top_of(env, parts)
    return [
        {"res_model": model, "res_id": res_id, "cost_usd": c, "requests": n}
        for model, res_id, c, n in rows
    ]


def _record_parts(env, filters):
    """The per-record rollup parts (model, domain, sign) whose rows sum to the usage of the period."""
    start, end = fields.Date.to_date(filters["start"]), fields.Date.to_date(filters["end"])
    first, last = _covered_months(env, start, end) if PERIOD_RECORD_FILTERS.issuperset(filters) else (None, None)
    if first is None or first > last:
        return [(RECORD_DAILY, rollup_domain(filters), 1)]
    monthly = _record_rollup(filters, yearly=False)
    parts = [(monthly, rollup_domain(filters, first, last), 1)]
    if start < first:  # the days of the first month that it cuts, if any
        parts += _cut_month(filters, monthly, start, first - DAY)
    if month_end(last) < end:  # and those of the last month
        parts += _cut_month(filters, monthly, month_end(last) + DAY, end)
    return parts


def _record_bound(env, filters):
    """The month or the year that holds the period and whose per-record sums bound those of the period for
    `_pruned_top`: (its per-record rollup, the domain of its rows). The month when the period lies in one.
    None when the period does not hold PRUNE_SHARE of its cost at least, in the filters' scope, or the
    filters are not those of the per-month and per-year rollups: the bucket's costliest records then show
    too little of the period's, and `_pruned_top` would sum hundreds of records in vain before every record
    is summed."""
    start, end = fields.Date.to_date(filters["start"]), fields.Date.to_date(filters["end"])
    if start.year != end.year or not PERIOD_RECORD_FILTERS.issuperset(filters):
        return None
    yearly = month_start(start) != month_start(end)
    bucket = _record_rollup(filters, yearly)
    first, last = (year_start(start), date(start.year, 12, 31)) if yearly else (month_start(start), month_end(start))
    domain = [("day", ">=", first), ("day", "<=", last), ("res_model", "!=", False)] + key_domain(filters)
    query = env["ai.token.usage.daily"]._search(domain)
    cost, day = SQL.identifier(query.table, "cost_usd"), SQL.identifier(query.table, "day")
    env.cr.execute(query.select(SQL("SUM(%s) FILTER (WHERE %s >= %s AND %s <= %s), SUM(%s)", cost, day, start,
                                    day, end, cost)))
    [(period_cost, bucket_cost)] = env.cr.fetchall()
    if not bucket_cost or (period_cost or 0.0) < PRUNE_SHARE * bucket_cost:
        return None
    # An equality on the bucket's day: the index then reads its rows in cost order.
    return env[bucket], [("day", "=", first)] + key_domain(filters)


def _record_rollup(filters, yearly):
    """The per-record rollup by year (or month) that applies the filters' operation, if any."""
    if yearly:
        return RECORD_OPERATION_YEARLY if "operation" in filters else RECORD_YEARLY
    return RECORD_OPERATION_MONTHLY if "operation" in filters else RECORD_MONTHLY


def _pruned_top(env, parts, bound):
    """The top records of `parts`, summed for a few of the records of the month or year of `bound` (see
    `_record_bound`) only; None when that would not be the exact answer for sure.

    No record costs more in a period than in the month or year that holds it (costs are never negative).
    So the top of the bucket's costliest records (the candidates) gives a threshold, the cost of its last
    record: a record of the exact top costs at least that much in the period, so at least that much in the
    bucket. The top of the records that do (the contenders, at most PRUNE_CONTENDERS) is the exact one, ties
    included. When the bucket's costliest records spent much of it outside the period, the threshold is too
    low: more candidates raise it, up to the last of PRUNE_CANDIDATES."""
    Bucket, bucket = bound
    for limit in PRUNE_CANDIDATES:
        candidates = _costliest(Bucket, bucket, limit)
        rows = _top_of(env, parts, candidates)
        if len(candidates) < limit:  # every record of the bucket
            return rows
        if len(rows) < TOP_RECORDS:
            continue
        # Less half a unit of the last decimal: the threshold was rounded, the bucket's costs were not.
        threshold = rows[-1][2] - 0.5 * 10 ** -PRICE_DIGITS[1]
        contenders = _costliest(Bucket, bucket + [("cost_usd", ">=", threshold)], PRUNE_CONTENDERS + 1)
        if len(contenders) <= PRUNE_CONTENDERS:
            return rows if set(contenders) <= set(candidates) else _top_of(env, parts, contenders)
    return None


def _costliest(Bucket, domain, limit):
    """The (res_model, res_id) of the `limit` costliest rows of the per-year or per-month rollup `Bucket`
    in `domain`, one per row (a record has one in each of the companies it spent in)."""
    query = Bucket._search(domain, order="cost_usd desc", limit=limit)
    Bucket.env.cr.execute(query.select("res_model", "res_id"))
    return Bucket.env.cr.fetchall()


def _top_of(env, parts, records=None):
    """The TOP_RECORDS costliest records of the rollup `parts`, or of its `records` ((res_model, res_id)
    pairs) only: [(res_model, res_id, cost, calls)]."""
    rows = SQL(" UNION ALL ").join(
        _select(_part_query(env[model], domain, records), sign) for model, domain, sign in parts
    )
    if records is not None:
        # The rows of each record looked up by the (res_id, day) index, one record after the other: given a
        # list of hundreds, PostgreSQL would rather read the period's rows and filter them, or plan the
        # lookups in parallel, whose workers take longer to start than the lookups to run.
        rows = SQL("SELECT r.* FROM unnest(%s::int[]) AS given(res_id) CROSS JOIN LATERAL (%s) r",
                   sorted({res_id for _model, res_id in records}), rows)
    # Summed as float8, whose aggregation state is a fraction of numeric's (so the hash table of thousands of
    # records stays in work_mem), then rounded back: costs have PRICE_DIGITS decimals and a float8 sum of
    # them (at most a month's, less some of its days) is off by far less than half the last one, so the
    # rounded sum is the exact one. Ranked by that rounded sum too (in units of the last decimal): two equal
    # costs summed from other rows differ in their float8 sums' last bits (0.1 + 0.2 > 0.3). No calls left:
    # the record's usage is all in the days taken off its month, or was moved to another record (a rollup
    # row keeps its key at zero). Records of equal cost come in the order of their keys, so that the same
    # request always gets the same ten.
    env.cr.execute(SQL(
        """SELECT res_model, res_id, ROUND(cost::numeric, %s), calls FROM (
               SELECT res_model, res_id, SUM(cost_usd::float8) AS cost, SUM(call_count) AS calls,
                      ROUND(SUM(cost_usd::float8) * %s) AS units FROM (%s) r
                GROUP BY res_model, res_id HAVING SUM(call_count) > 0 ORDER BY units DESC, res_model, res_id
                LIMIT %s) top
            ORDER BY units DESC, res_model, res_id""",
        PRICE_DIGITS[1], 10 ** PRICE_DIGITS[1], rows, TOP_RECORDS,
    ))
    return env.cr.fetchall()


def _part_query(Rollup, domain, records=None):
    """The query of the rows of `Rollup` in `domain` (record rules included), or of those of the record
    `given` of `_top_of` only, among `records` (a few more when they span models, which changes no top
    that they hold)."""
    if records is None:
        return Rollup._search(domain)
    query = Rollup._search(domain + [("res_model", "in", sorted({model for model, _id in records}))])
    query.add_where(SQL("%s = given.res_id", SQL.identifier(query.table, "res_id")))
    return query


def _cut_month(filters, monthly, day_from, day_to):
    """The rollup parts (model, domain, sign) of the days [day_from, day_to] of one month: those days of the
    per-day rollup or, when fewer days are left out, the month of the per-month rollup `monthly` less the
    days left out. Per-record rows per day outnumber those per month several times (they are keyed by
    provider, user, operation too), so a cut month reads at most half its days of them."""
    month = month_start(day_from)
    left_out = [(a, b) for a, b in ((month, day_from - DAY), (day_to + DAY, month_end(month))) if a <= b]
    if (day_to - day_from).days + 1 <= sum((b - a).days + 1 for a, b in left_out):
        return [(RECORD_DAILY, rollup_domain(filters, day_from, day_to), 1)]
    return [(monthly, rollup_domain(filters, month, month), 1)] + [
        (RECORD_DAILY, rollup_domain(filters, a, b), -1) for a, b in left_out
    ]


def _select(query, sign):
    """The SELECT of `query` (a rollup's `_search`, record rules included) of the columns the top records
    read, its measures times `sign`."""
    table = query.table
    return query.select(
        SQL.identifier(table, "res_model"), SQL.identifier(table, "res_id"),
        *(SQL("%s * %s AS %s", sign, SQL.identifier(table, column), SQL.identifier(column))
          for column in ("cost_usd", "call_count")),
    )


def _covered_months(env, start, end):
    """The first and last month (their first days) whose rollup rows count exactly the usage of [start, end]:
    the months inside it, and the months it cuts when the part left out has no usage at all (the current
    month, up to today). first > last when there is none."""
    first, last = month_start(start), month_start(end)
    outside = expression.OR([
        [("day", ">=", first), ("day", "<", start)], [("day", ">", end), ("day", "<=", month_end(last))]
    ])
    used = {
        month_start(day) for day, in env["ai.token.usage.daily"]._read_group(
            outside, ["day:month"], having=[("call_count:sum", "!=", 0)]
        )
    }
    if first in used:
        first = month_end(first) + DAY
    if last in used:
        last = month_start(last - DAY)
    return first, last


def user_summary_payload(env, filters, budget=None):
    """The body of /ai_cost/api/v1/costs/users: cost per user, count, min, average and max, and whether all
    are under `budget` (None: not asked)."""
    groups = env["ai.token.usage.daily"]._read_group(
        rollup_domain(filters), ["user_id"], ["cost_usd:sum", "call_count:sum"], order="cost_usd:sum desc"
    )
    costs = [cost for _user, cost, _n in groups]
    return {
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
    }


class CostApi(http.Controller):
    """Read-only JSON API over the usage rollups (AI Cost managers only)."""

    @http.route(
        "/ai_cost/api/v1/costs", type="http", auth="ai_cost_api", methods=["GET"], csrf=False, save_session=False
    )
    def costs(self, **params):
        """Total cost and requests, by operation, record, provider, cache stats and time series."""
        env, filters = self._prepare(params, COST_FILTERS)
        return json_response(cost_payload(env, filters))

    @http.route(
        "/ai_cost/api/v1/costs/users", type="http", auth="ai_cost_api", methods=["GET"], csrf=False, save_session=False
    )
    def costs_by_user(self, **params):
        """Cost per user in the period: count, min, average and max, and whether all are under `budget`."""
        budget = params.pop("budget", None)
        env, filters = self._prepare(params, USER_FILTERS)
        if budget is not None:
            budget = self._parse_number(budget, "budget")
            filters["budget"] = budget
        return json_response(user_summary_payload(env, filters, budget))

    # ------------------------------------------------------------------
    def _prepare(self, params, allowed):
        """The manager's environment and the checked filters (echoed back; see `rollup_domain`)."""
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
