from datetime import timedelta

from odoo import api, fields, models
from odoo.osv import expression
from odoo.tools import SQL

from .ai_service_provider_price import PRICE_DIGITS
from .ai_token_usage_record_monthly import month_end, month_start

DAILY, RECORD_DAILY = "ai.token.usage.daily", "ai.token.usage.record.daily"
RECORD_MONTHLY = "ai.token.usage.record.monthly"
# The API filters that the per-month record rollup applies; the others leave the per-day one.
MONTHLY_FILTERS = {"start", "end", "res_model"}
DAY = timedelta(days=1)
# API filter name -> rollup key, for the filters that are equalities on a rollup key.
KEY_FILTERS = {"operation": "operation", "user": "user_id", "provider": "provider_id", "res_model": "res_model",
               "res_id": "res_id"}
TOP_RECORDS = 10
COST_MEASURES = ["cost_usd", "call_count", "cache_hit_count", "savings_usd", "cost_unknown_count"]
NO_PROVIDER = {"provider_name": None, "model": None}


class AiCostReport(models.AbstractModel):
    """How the dashboard and the JSON API read the usage rollups: sums grouped several ways in one scan of
    a per-day rollup (`_grouped_sums`), and the costliest records of a period (`_top_records`). The callers
    authorize (AI Cost managers) and check their input; the rollups' record rules apply."""

    _name = "ai.cost.report"
    _description = "AI Cost Report"

    # ------------------------------------------------------------------
    # Shared: grouped sums of a rollup
    # ------------------------------------------------------------------
    @api.model
    def _grouped_sums(self, domain, groupings, measures, rollup=DAILY):
        """The sums of `measures` over the rows of `rollup` in `domain`, for each grouping of `groupings`
        (tuples of key columns; () for the totals, one row even without rows), in one scan (GROUPING SETS):
        {grouping: [(*its keys, *sums)]}."""
        Rollup = self.env[rollup]
        columns = list(dict.fromkeys(column for grouping in groupings for column in grouping))
        result = {grouping: [] for grouping in groupings}
        if not columns:
            result[()] = Rollup._read_group(domain, [], [f"{measure}:sum" for measure in measures])
            return result
        query = Rollup._search(domain)
        table = query.table
        sums = [SQL("SUM(%s)", SQL.identifier(table, measure)) for measure in measures]
        # GROUPING(columns) sets a bit for each column that a grouping set leaves out, the first one highest.
        by_mask = {
            sum(1 << (len(columns) - 1 - n) for n, column in enumerate(columns) if column not in grouping): grouping
            for grouping in groupings
        }
        if len(by_mask) != len(groupings):
            raise ValueError(f"Groupings of the same columns: {groupings}")
        keys = [SQL.identifier(table, column) for column in columns]
        # Raw SQL for the dashboard and API target (under 300 ms: DESIGN section 9): GROUPING SETS, one scan for
        # every grouping, which _read_group cannot express.
        self.env.cr.execute(SQL(
            "SELECT GROUPING(%s), %s, %s FROM %s WHERE %s GROUP BY GROUPING SETS (%s)",
            SQL(", ").join(keys), SQL(", ").join(keys), SQL(", ").join(sums), query.from_clause, query.where_clause,
            SQL(", ").join(SQL("(%s)", SQL(", ").join(SQL.identifier(table, column) for column in grouping))
                           for grouping in groupings),
        ))
        position = {column: n for n, column in enumerate(columns)}
        for mask, *values in self.env.cr.fetchall():
            grouping = by_mask[mask]
            key = [values[position[column]] for column in grouping]
            result[grouping].append((*key, *values[len(columns):]))
        return result

    @api.model
    def _rollup_domain(self, filters, start=None, end=None):
        """The rollup domain of the API `filters` (as the controller checks them), over [start, end] if given."""
        return [("day", ">=", start or filters["start"]), ("day", "<=", end or filters["end"])] + [
            (field, "=", filters[name]) for name, field in KEY_FILTERS.items() if name in filters
        ]

    # ------------------------------------------------------------------
    # The JSON API
    # ------------------------------------------------------------------
    @api.model
    def _costs(self, filters):
        """The body of /ai_cost/api/v1/costs for the API `filters`: totals, by operation, record, provider,
        cache stats and time series, in two queries of the rollups (and one of the providers' names)."""
        operation, provider, day = ("operation",), ("provider_id",), ("day",)
        sections = self._grouped_sums(
            self._rollup_domain(filters), [(), operation, provider, day], COST_MEASURES,
            rollup=RECORD_DAILY if "res_id" in filters else DAILY,
        )
        (cost, calls, hits, savings, unknown), = sections[()] or [(None,) * len(COST_MEASURES)]
        calls = calls or 0
        providers = self.env["ai.service.provider"].browse(key for key, *_sums in sections[provider] if key)
        names = {p.id: {"provider_name": p.name, "model": p.model} for p in providers}
        return {
            "filters": filters,
            "total_cost_usd": cost or 0.0,
            "total_requests": calls,
            "cost_unknown_requests": unknown or 0,
            "by_operation": [
                {"operation": op or None, "cost_usd": c, "requests": n}
                for op, c, n, *_rest in _costliest_first(sections[operation])
            ],
            "by_record": [
                {"res_model": model, "res_id": res_id, "cost_usd": c, "requests": n}
                for model, res_id, c, n in self._top_records(filters)
            ],
            "by_provider": [
                {"provider_id": pid or None, **names.get(pid, NO_PROVIDER), "cost_usd": c, "requests": n}
                for pid, c, n, *_rest in _costliest_first(sections[provider])
            ],
            "cache_stats": {
                "hits": hits or 0,
                "hit_rate": (hits or 0) / calls if calls else 0.0,
                "estimated_savings_usd": savings or 0.0,
            },
            "time_series": [
                {"date": str(d), "cost_usd": c, "requests": n} for d, c, n, *_rest in sorted(sections[day])
            ],
        }

    @api.model
    def _top_records(self, filters):
        """The TOP_RECORDS records that cost the most in the period of the API `filters`, summed over every
        record of the period: [(res_model, res_id, cost, calls)]. The per-month rollup sums the months that
        the period covers, the per-day one the days of the months it cuts (`_record_parts`).

        Summed as float8, whose aggregation state is a fraction of numeric's (so the hash table of thousands
        of records stays in work_mem), then rounded back: costs have PRICE_DIGITS decimals and a float8 sum
        of them (at most a month's, less some of its days) is off by far less than half the last one, so the
        rounded sum is the exact one. Ranked by that rounded sum too (in units of the last decimal): two
        equal costs summed from other rows differ in their float8 sums' last bits (0.1 + 0.2 > 0.3). No calls
        left: the record's usage is all in the days taken off its month, or was moved to another record (a
        rollup row keeps its key at zero). Records of equal cost come in the order of their keys, so that the
        same request always gets the same ten."""
        rows = SQL(" UNION ALL ").join(
            self._record_part_sql(model, domain, sign) for model, domain, sign in self._record_parts(filters)
        )
        # Raw SQL for the API target (under 300 ms: DESIGN section 9): signed parts of two rollups, summed as float8.
        self.env.cr.execute(SQL(
            """SELECT res_model, res_id, ROUND(cost::numeric, %s), calls FROM (
                   SELECT res_model, res_id, SUM(cost_usd::float8) AS cost, SUM(call_count) AS calls,
                          ROUND(SUM(cost_usd::float8) * %s) AS units FROM (%s) r
                    GROUP BY res_model, res_id HAVING SUM(call_count) > 0 ORDER BY units DESC, res_model, res_id
                    LIMIT %s) top
                ORDER BY units DESC, res_model, res_id""",
            PRICE_DIGITS[1], 10 ** PRICE_DIGITS[1], rows, TOP_RECORDS,
        ))
        return self.env.cr.fetchall()

    @api.model
    def _record_parts(self, filters):
        """The per-record rollup parts (model, domain, sign) whose rows sum to the usage of the period: the
        per-day rollup's rows of the period or, with only the filters that the per-month rollup keeps, the
        months that the period covers and the days of those it cuts (see `_cut_month`). Summing every record
        of 90 days from the per-day rollup alone took 365 ms at 2,000,000 usage rows, above the 300 ms target;
        from the months, 20-40 ms."""
        start, end = fields.Date.to_date(filters["start"]), fields.Date.to_date(filters["end"])
        first, last = self._covered_months(start, end) if MONTHLY_FILTERS.issuperset(filters) else (None, None)
        if first is None or first > last:
            return [(RECORD_DAILY, self._rollup_domain(filters), 1)]
        parts = [(RECORD_MONTHLY, self._rollup_domain(filters, first, last), 1)]
        if start < first:  # the days of the first month that it cuts, if any
            parts += self._cut_month(filters, start, first - DAY)
        if month_end(last) < end:  # and those of the last month
            parts += self._cut_month(filters, month_end(last) + DAY, end)
        return parts

    @api.model
    def _cut_month(self, filters, day_from, day_to):
        """The rollup parts (model, domain, sign) of the days [day_from, day_to] of one month: those days of
        the per-day rollup or, when fewer days are left out, the month of the per-month rollup less the days
        left out. Per-record rows per day outnumber those per month several times (they are keyed by
        provider, user, operation too), so a cut month reads at most half its days of them."""
        month = month_start(day_from)
        left_out = [(a, b) for a, b in ((month, day_from - DAY), (day_to + DAY, month_end(month))) if a <= b]
        if (day_to - day_from).days + 1 <= sum((b - a).days + 1 for a, b in left_out):
            return [(RECORD_DAILY, self._rollup_domain(filters, day_from, day_to), 1)]
        return [(RECORD_MONTHLY, self._rollup_domain(filters, month, month), 1)] + [
            (RECORD_DAILY, self._rollup_domain(filters, a, b), -1) for a, b in left_out
        ]

    @api.model
    def _covered_months(self, start, end):
        """The first and last month (their first days) whose per-month rows count exactly the usage of
        [start, end]: the months inside it, and the months it cuts when the part left out has no usage at
        all (the current month, up to today). first > last when there is none."""
        first, last = month_start(start), month_start(end)
        outside = expression.OR([
            [("day", ">=", first), ("day", "<", start)], [("day", ">", end), ("day", "<=", month_end(last))]
        ])
        used = {
            month_start(day) for day, in self.env[DAILY]._read_group(
                outside, ["day:month"], having=[("call_count:sum", "!=", 0)]
            )
        }
        if first in used:
            first = month_end(first) + DAY
        if last in used:
            last = month_start(last - DAY)
        return first, last

    @api.model
    def _record_part_sql(self, model, domain, sign):
        """The SELECT of the rows of the per-record rollup `model` in `domain` (record rules included), of the
        columns the top records read, its measures times `sign`."""
        query = self.env[model]._search(domain)
        table = query.table
        return query.select(
            SQL.identifier(table, "res_model"), SQL.identifier(table, "res_id"),
            *(SQL("%s * %s AS %s", sign, SQL.identifier(table, column), SQL.identifier(column))
              for column in ("cost_usd", "call_count")),
        )

    @api.model
    def _user_summary(self, filters, budget=None):
        """The body of /ai_cost/api/v1/costs/users: cost per user (its embedding calls' part apart), count,
        min, average and max, and whether all are under `budget` (None: not asked)."""
        grouping = ("user_id",)
        measures = ["cost_usd", "call_count", "embedding_cost_usd", "embedding_call_count", "embedding_tokens"]
        rows = _costliest_first(self._grouped_sums(self._rollup_domain(filters), [grouping], measures)[grouping])
        users = self.env["res.users"].browse(user_id for user_id, *_sums in rows if user_id)
        names = {user.id: user.name for user in users}
        costs = [cost for _user, cost, *_counts in rows]
        return {
            "filters": filters,
            "users": [
                {
                    "user_id": user_id or None, "user_name": names.get(user_id), "cost_usd": cost, "requests": n,
                    "embedding_cost_usd": embedding_cost, "embedding_requests": embeddings,
                    "embedding_tokens": embedding_tokens,
                }
                for user_id, cost, n, embedding_cost, embeddings, embedding_tokens in rows
            ],
            "count": len(costs),
            "min_cost_usd": min(costs, default=0.0),
            "avg_cost_usd": sum(costs) / len(costs) if costs else 0.0,
            "max_cost_usd": max(costs, default=0.0),
            "budget_usd": budget,
            "all_under_budget": None if budget is None else all(cost < budget for cost in costs),
        }


def _costliest_first(rows):
    """Rows (key, cost, ...) costliest first."""
    return sorted(rows, key=lambda row: -(row[1] or 0.0))
