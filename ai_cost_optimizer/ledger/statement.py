"""The rows that follow a call's usage row, written by ONE SQL statement.

The usage row itself goes through `ai.token.usage.create()`, so that the fields, computes and create()
overrides of other modules apply to it; the upsert of its rollups, which create() leaves to the gateway,
leads this statement (ai.token.usage's `_add_rollups_to`). What follows it is derived from the call rather than
from the row: the budget settle of a call the provider answered, and on a served call the recommendation made
for it, its waste findings and its response-cache entry. Raw SQL for the gateway overhead target (DESIGN section
9): they are data-modifying CTEs of one statement, prepared once per connection (ledger.cursors), where ORM
create() calls would each cost a statement and about half a millisecond of Python."""

from odoo.tools import SQL

from .cursors import execute_prepared

# The transaction's timestamp, as Odoo's cr.now() gives it, read by the statement that writes it rather
# than by a query of its own.
NOW = SQL("(now() AT TIME ZONE 'UTC')")


def insert_sql(model, vals):
    """`INSERT ... RETURNING id` of one row of `model` holding `vals`, as create() would store it: the
    fields' defaults and the log-access columns filled in, values converted by their fields. No create()
    override, constraint or recomputation runs: `vals` must hold every stored computed field."""
    vals = model._add_missing_default_values(dict(vals))
    if model._log_access:
        vals.update(create_uid=model.env.uid, write_uid=model.env.uid, create_date=NOW, write_date=NOW)
    columns, values = [], []
    for name, value in vals.items():
        field = model._fields[name]
        if not field.column_type:
            continue
        columns.append(SQL.identifier(name))
        values.append(value if isinstance(value, SQL) else field.convert_to_column_insert(value, model, vals))
    return SQL(
        "INSERT INTO %s (%s) VALUES (%s) RETURNING id",
        SQL.identifier(model._table), SQL(", ").join(columns), SQL(", ").join(values),
    )


def _cte(name, statement, materialized=False):
    return SQL("%s AS MATERIALIZED (%s)" if materialized else "%s AS (%s)", SQL.identifier(name), statement)


def with_statement(parts):
    """One statement of `parts`, [(name, SQL, materialized)]: the last one its main statement, the others the
    common table expressions it and each other read by their names."""
    *ctes, (_name, main, _materialized) = parts
    if not ctes:
        return main
    return SQL("WITH %s %s", SQL(", ").join(_cte(*cte) for cte in ctes), main)


class LedgerStatement:
    """The statement being built for the rows that follow `usage` (an ai.token.usage record written with
    `vals`): `add` them, then `execute` it.

    Its parts are data-modifying common table expressions of one statement. PostgreSQL runs those whose result
    the statement returns in the order they were added, each to its end, before the others: the parts that lock
    rows other calls' statements lock too are added first, in one order (the rollup rows, then the budget
    periods, see ai.service.ledger), so that every call takes those locks in that order whatever else its
    statement holds."""

    def __init__(self, usage, vals):
        self.usage = usage
        self.vals = vals
        self._parts = []
        self._written_models = []

    def invalidates(self, models):
        """The models whose rows the statement's parts write besides the usage row's followers: their cache is
        invalidated once it ran."""
        self._written_models += models

    def add(self, name, statement, result=None, materialized=False):
        """Add a statement named `name`, which the others may read by that name; with `result`, an SQL
        expression over it (a scalar subquery), `execute` returns its value under `name`."""
        if any(name == part for part, _statement, _result, _materialized in self._parts):
            raise ValueError(f"the ledger statement already has a part named {name!r}")
        self._parts.append((name, statement, result, materialized))

    def add_insert(self, name, model, vals):
        """Add the insertion of one row of `model` (see `insert_sql`); `execute` returns its id under `name`."""
        self.add(name, insert_sql(model, vals), result=SQL("(SELECT id FROM %s)", SQL.identifier(name)))

    def execute(self):
        """Run the statement, when it has parts; returns {name: result} of the parts that have one."""
        if not self._parts:
            return {}
        cr = self.usage.env.cr
        results = [(name, result) for name, _statement, result, _materialized in self._parts if result is not None]
        # Raw SQL for the gateway overhead target (DESIGN section 9): see the module docstring.
        execute_prepared(cr, SQL(
            "WITH %s SELECT %s",
            SQL(", ").join(_cte(name, statement, materialized)
                           for name, statement, _result, materialized in self._parts),
            SQL(", ").join(result for _name, result in results) or SQL("1"),
        ))
        values = dict(zip((name for name, _result in results), cr.fetchone(), strict=False))
        # The usage row's one2many fields were cached empty at its create().
        self.usage.invalidate_recordset()
        for model in self._written_models:
            model.invalidate_model()
        return values
