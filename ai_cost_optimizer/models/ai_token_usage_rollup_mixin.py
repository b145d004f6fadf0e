import json
import re

from odoo import api, fields, models
from odoo.exceptions import CacheMiss
from odoo.tools import SQL

from .ai_service_provider_price import PRICE_DIGITS

# What became of a call: the usage rows' and their rollups' status.
USAGE_STATUSES = [("ok", "OK"), ("error", "Error"), ("blocked", "Blocked"), ("rate_limited", "Rate Limited")]

# The raw usage rows: what a rollup sums, unless told otherwise.
LEDGER = SQL.identifier("ai_token_usage")

# Measures of a rollup row: (column, SQL aggregate over the raw usage rows `u`).
ROLLUP_MEASURES = [
    ("call_count", "COUNT(*)"),
    ("input_tokens", "SUM(COALESCE(u.input_tokens, 0))"),
    ("output_tokens", "SUM(COALESCE(u.output_tokens, 0))"),
    ("cost_usd", "SUM(COALESCE(u.cost_usd, 0))"),
    ("cost_unknown_count", "COUNT(*) FILTER (WHERE u.cost_unknown)"),
    ("cache_hit_count", "COUNT(*) FILTER (WHERE u.cache_hit)"),
    ("savings_usd", "SUM(COALESCE(u.prompt_cache_savings_usd, 0))"),
    ("waste_count", "COUNT(*) FILTER (WHERE u.waste_detected)"),
    ("waste_usd", "SUM(COALESCE(u.could_have_saved_usd, 0))"),
    ("latency_ms_sum", "SUM(COALESCE(u.latency_ms, 0))"),
    # The embedding calls among them (the others are chat calls).
    ("embedding_call_count", "COUNT(*) FILTER (WHERE u.kind = 'embedding')"),
    ("embedding_tokens", "COALESCE(SUM(u.input_tokens) FILTER (WHERE u.kind = 'embedding'), 0)"),
    ("embedding_cost_usd", "COALESCE(SUM(u.cost_usd) FILTER (WHERE u.kind = 'embedding'), 0)"),
]

# Key of a rollup row: (column, SQL expression over `u`, expression of the unique index).
# COALESCE in the unique index makes NULL keys (no provider, no operation) collide as they should.
ROLLUP_KEYS = [
    ("day", "u.create_date::date", "day"),
    ("company_id", "u.company_id", "company_id"),
    ("provider_id", "u.provider_id", "COALESCE(provider_id, 0)"),
    ("user_id", "u.user_id", "COALESCE(user_id, 0)"),
    ("operation", "u.operation", "COALESCE(operation, '')"),
    ("res_model", "u.res_model", "COALESCE(res_model, '')"),
    ("status", "u.status", "status"),
    ("cache_hit", "COALESCE(u.cache_hit, FALSE)", "cache_hit"),
]

# The raw usage row's fields an SQL expression over `u` reads.
USAGE_COLUMN = re.compile(r"\bu\.(\w+)")
# The relation of the usage rows just written, in the statement that upserts them (`new_rows_parts`).
NEW_ROWS_NAME = "new_usage"
NEW_ROWS = SQL.identifier(NEW_ROWS_NAME)


def rollup_parts(rollups, sign, source, where):
    """The upserts into `rollups` (rollup models) of the contribution (times `sign`) of the usage rows `u` of
    `source` matching `where`, as the parts of one statement (ledger.statement.with_statement), in which
    PostgreSQL runs each exactly once: [(name, SQL, materialized)]."""
    return [(f"rollup_{index}", rollup._upsert_sql(where, sign, source), False) for index, rollup in enumerate(rollups)]


def new_rows_parts(rollups):
    """(fields, parts) of the statement that adds to `rollups` the usage rows given as its one parameter: a
    JSON array of objects holding those fields (`values_json`), read in the table's column types
    (json_populate_recordset), so that the rows just written are not read back from the table. The parts are
    texts, [(name, text, materialized)]: the first, NEW_ROWS_NAME, holds the parameter."""
    names = tuple(sorted(set().union(*(rollup._rollup_usage_fields() for rollup in rollups))))
    values = SQL("SELECT %s FROM json_populate_recordset(NULL::%s, %s::json)",
                 SQL(", ").join(map(SQL.identifier, names)), LEDGER, "[]")
    parts = [(NEW_ROWS_NAME, values, False), *rollup_parts(rollups, 1, NEW_ROWS, SQL("TRUE"))]
    if sum(len(statement.params) for _name, statement, _materialized in parts) != 1:
        raise ValueError("the upsert of new usage rows takes their values as its one parameter")
    return names, tuple((name, statement.code, materialized) for name, statement, materialized in parts)


def values_json(usages, names):
    """The fields `names` of the usage records `usages` as the cache holds them (after a flush: as stored),
    converted as an INSERT writes them (timestamps as text), in a JSON array: `new_rows_parts`' parameter."""
    fields_ = [usages._fields[name] for name in names]
    cache = usages.env.cache

    def rows():
        return [{field.name: field.convert_to_column(cache.get(usage, field), usage) for field in fields_}
                for usage in usages]

    try:
        return json.dumps(rows())
    except CacheMiss:  # rows create() did not cache whole (another module's override invalidated them)
        usages.fetch(names)
        return json.dumps(rows())


class AiTokenUsageRollupMixin(models.AbstractModel):
    """Per-day sums of ai.token.usage, so that the dashboard and the API never scan the raw ledger.

    Rows are upserted (INSERT ... ON CONFLICT DO UPDATE on a unique index of the key, see `_upsert_sql`)
    in the transaction that writes the usage rows, and can be rebuilt from the raw rows.

    Its `day` is the usage row's `create_date` (UTC in the database) cut to the day: a UTC day, as the providers'
    daily buckets (ai.billing.account reconciles per UTC day from ai.token.usage.daily).
    """

    _name = "ai.token.usage.rollup.mixin"
    _inherit = ["ai.cost.code.label.mixin"]
    _description = "AI Usage Rollup (shared)"
    _order = "day desc, id desc"
    _code_label_fields = ("operation",)
    _rollup_extra_keys = []  # [(column, expression over u, index expression)]
    _rollup_extra_measures = []  # [(column, SQL aggregate over u)], as ROLLUP_MEASURES
    # Which raw usage rows this rollup covers: those whose fields named here are all set (not NULL, 0 or
    # empty). The one statement of the rule: its SQL (`_rollup_where_sql`) and its Python check
    # (`_rollup_covers`) are both derived from it.
    _rollup_required_fields = ()
    # Its (company_id, day) index: True for a plain one; the columns it covers, for the API's top records to
    # read from the index; False when another index serves its queries (a write less per call).
    _rollup_company_day_index = True

    # Key
    day = fields.Date(required=True, index=True, readonly=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True, ondelete="cascade")
    provider_id = fields.Many2one("ai.service.provider", readonly=True, ondelete="set null")
    user_id = fields.Many2one("res.users", readonly=True, ondelete="set null")
    operation = fields.Char(string="Operation Code", readonly=True)
    operation_label = fields.Char(string="Operation", compute="_compute_code_labels")
    res_model = fields.Char(string="Related Model", readonly=True)
    status = fields.Selection(USAGE_STATUSES, required=True, readonly=True)
    cache_hit = fields.Boolean(readonly=True)

    # Measures
    call_count = fields.Integer(string="Calls", readonly=True)
    input_tokens = fields.Integer(readonly=True)
    output_tokens = fields.Integer(readonly=True)
    cost_usd = fields.Float(string="Cost (USD)", digits=PRICE_DIGITS, readonly=True)
    cost_unknown_count = fields.Integer(string="Calls With Unknown Cost", readonly=True)
    cache_hit_count = fields.Integer(string="Cache Hits", readonly=True)
    savings_usd = fields.Float(string="Savings (USD)", digits=PRICE_DIGITS, readonly=True)
    waste_count = fields.Integer(string="Calls With Waste", readonly=True)
    waste_usd = fields.Float(string="Waste (USD)", digits=PRICE_DIGITS, readonly=True)
    latency_ms_sum = fields.Float(string="Latency Sum (ms)", readonly=True)
    # default=0: the rows summed before these measures existed get 0, to which the upserts add.
    embedding_call_count = fields.Integer(string="Embedding Calls", readonly=True, default=0)
    embedding_tokens = fields.Integer(readonly=True, default=0)
    embedding_cost_usd = fields.Float(string="Embedding Cost (USD)", digits=PRICE_DIGITS, readonly=True, default=0.0)

    @classmethod
    def _rollup_keys(cls):
        return ROLLUP_KEYS + cls._rollup_extra_keys

    @classmethod
    def _rollup_measures(cls):
        return ROLLUP_MEASURES + cls._rollup_extra_measures

    @classmethod
    def _rollup_usage_fields(cls):
        """The raw usage row's fields this rollup reads: in its keys, its measures and its required fields."""
        exprs = [expr for _column, expr, _index in cls._rollup_keys()] + [agg for _m, agg in cls._rollup_measures()]
        return set(USAGE_COLUMN.findall(" ".join(exprs))) | set(cls._rollup_required_fields)

    def _rollup_covers(self, rows):
        """Whether this rollup covers any of `rows` (usage records, or the values of a usage row about to
        be written), by `_rollup_required_fields` as `_rollup_where_sql` reads them. It lets the gateway
        leave out the upsert of a rollup that none of a call's rows concerns: planning that upsert costs
        PostgreSQL more than running it."""
        def value(row, name):
            return row.get(name) if isinstance(row, dict) else row[name]

        return any(all(value(row, name) for name in self._rollup_required_fields) for row in rows)

    def _rollup_where_sql(self):
        """The SQL of `_rollup_required_fields` over the raw usage row `u`: each field is set, as Python's
        truth value of the field's value (NULL, 0, '' and FALSE are not)."""
        fields_ = self.env["ai.token.usage"]._fields
        zeros = {"char": SQL("''"), "boolean": SQL("FALSE")}
        return SQL(" AND ").join(
            [SQL("COALESCE(%s, %s) <> %s", SQL.identifier("u", name), zeros.get(fields_[name].type, SQL("0")),
                 zeros.get(fields_[name].type, SQL("0")))
             for name in self._rollup_required_fields] or [SQL("TRUE")]
        )

    def init(self):
        if self._abstract:
            return
        self._create_key_index()
        self._create_company_day_index()

    def _create_key_index(self):
        """The unique index on the key's expressions, the upserts' conflict target."""
        # DDL in init(): a unique index on expressions, which a field's index= cannot declare.
        self.env.cr.execute(SQL(
            "CREATE UNIQUE INDEX IF NOT EXISTS %s ON %s (%s)", SQL.identifier(f"{self._table}_key_uniq"),
            SQL.identifier(self._table), SQL(", ".join(index for _column, _expr, index in self._rollup_keys())),
        ))

    def _create_company_day_index(self):
        """The (company_id, day) index `_rollup_company_day_index` asks for: plain, or covering some columns."""
        columns = self._rollup_company_day_index
        if not columns:
            return
        name, include = f"{self._table}_company_day_idx", SQL()
        if isinstance(columns, str):
            name, include = f"{self._table}_top_idx", SQL(" INCLUDE (%s)", SQL(columns))
        # DDL in init(): an index of two columns (INCLUDE some more), which a field's index= cannot declare.
        self.env.cr.execute(SQL(
            "CREATE INDEX IF NOT EXISTS %s ON %s (company_id, day)%s",
            SQL.identifier(name), SQL.identifier(self._table), include,
        ))

    def _aggregate_sql(self, where, sign=1, source=LEDGER):
        """SELECT of the rollup rows of the usage rows `u` of `source` matching `where` (an SQL), times `sign`
        (1 or -1). `source`: the raw usage rows (the table), or a relation of the same columns (the values of
        rows just written, see ai.token.usage `_rollup_apply`)."""
        if sign not in (1, -1):
            raise ValueError(f"a rollup adds (1) or removes (-1) rows, not {sign!r}")
        keys = self._rollup_keys()
        key_exprs = SQL(", ".join(expr for _column, expr, _index in keys))
        factor = "" if sign == 1 else "-1 * "
        measures = SQL(", ".join(f"{factor}{aggregate}" for _column, aggregate in self._rollup_measures()))
        return SQL(
            "SELECT %s, %s FROM %s u WHERE %s AND %s GROUP BY %s",
            key_exprs, measures, source, self._rollup_where_sql(), where, key_exprs,
        )

    def _columns_sql(self):
        return SQL(", ".join([column for column, _e, _i in self._rollup_keys()]
                             + [m for m, _a in self._rollup_measures()]))

    def _upsert_sql(self, where, sign=1, source=LEDGER):
        """The upsert that adds (sign 1) or removes (sign -1) the contribution of the usage rows of `source`
        matching `where` (see `_aggregate_sql`)."""
        index_exprs = ", ".join(index for _column, _expr, index in self._rollup_keys())
        updates = ", ".join(f"{m} = {self._table}.{m} + EXCLUDED.{m}" for m, _a in self._rollup_measures())
        return SQL(
            # RETURNING: a statement that holds the upsert among other parts runs it first by reading it (see
            # ledger.statement.LedgerStatement).
            "INSERT INTO %s (%s) %s ON CONFLICT (%s) DO UPDATE SET %s RETURNING 1",
            SQL.identifier(self._table),
            self._columns_sql(),
            self._aggregate_sql(where, sign, source),
            SQL(index_exprs),
            SQL(updates),
        )

    @api.model
    def _fold_deleted(self, column, ids):
        """Move the rows keyed by the records `ids` of `column` (provider_id or user_id) to the rows
        without one, before those records are deleted: the raw rows' column becomes NULL (ondelete
        set null), and a plain set null here would collide with the rows already without one."""
        keys = [key for key, _expr, _index in self._rollup_keys()]
        index_exprs = ", ".join(index for _column, _expr, index in self._rollup_keys())
        selected = ", ".join("NULL" if key == column else key for key in keys)
        kept = ", ".join(key for key in keys if key != column)
        updates = ", ".join(f"{m} = {self._table}.{m} + EXCLUDED.{m}" for m, _a in self._rollup_measures())
        table = SQL.identifier(self._table)
        self.flush_model()
        # Raw SQL for an upsert (ON CONFLICT, DESIGN section 10): the gateway's upserts write the same rows.
        self.env.cr.execute(SQL(
            "INSERT INTO %s (%s) SELECT %s, %s FROM %s WHERE %s = ANY(%s) GROUP BY %s "
            "ON CONFLICT (%s) DO UPDATE SET %s",
            table, self._columns_sql(), SQL(selected),
            SQL(", ".join(f"SUM({m})" for m, _a in self._rollup_measures())),
            table, SQL.identifier(column), list(ids), SQL(kept), SQL(index_exprs), SQL(updates),
        ))
        self.invalidate_model()
        self.search([(column, "in", list(ids))]).unlink()

    @api.model
    def _rebuild(self, date_from=None):
        """Recompute the rollup from the raw usage rows, from `date_from` (a date) on, or entirely.

        Days whose raw rows were purged keep their rollup rows unless they fall in the rebuilt range.
        """
        self.env["ai.token.usage"].flush_model()
        # Maintenance (a rebuild), set-based: unlink() would load every row first, and the ORM has no
        # INSERT ... SELECT.
        if date_from:
            self.env.cr.execute(SQL("DELETE FROM %s WHERE day >= %s", SQL.identifier(self._table), date_from))
            where = SQL("u.create_date >= %s", fields.Date.to_date(date_from))
        else:
            self.env.cr.execute(SQL("DELETE FROM %s", SQL.identifier(self._table)))
            where = SQL("TRUE")
        self.env.cr.execute(
            SQL(
                "INSERT INTO %s (%s) %s",
                SQL.identifier(self._table),
                self._columns_sql(),
                self._aggregate_sql(where),
            )
        )
        self.invalidate_model()
        return True
