"""The gateway's ledger statement: a call's usage row and the rows that follow it, in ONE SQL statement.

On the gateway's hot path every statement costs more than its rows: PostgreSQL plans it, and re-plans the
foreign-key checks of every row it inserts, since Odoo's pool resets each connection it hands out
(DISCARD ALL drops the cached plans); every ORM create() costs about half a millisecond of Python besides.
So the usage row, its rollups, its benchmark, the recommendation made for it, its waste findings and its
response-cache entry are data-modifying CTEs of one statement, the followers reading the new row's id as
`USAGE_ID`."""

from odoo.tools import SQL

from .kept_cursors import execute_prepared

USAGE_CTE = "usage"
# The id of the usage row that the statement inserts, as a value of the rows that follow it.
USAGE_ID = SQL("(SELECT id FROM %s)", SQL.identifier(USAGE_CTE))
# Its create_date, the transaction's timestamp (NOW), as the rows that follow it record the call's date.
USAGE_DATE = SQL("(SELECT create_date FROM %s)", SQL.identifier(USAGE_CTE))
# The transaction's timestamp, as Odoo's cr.now() gives it, read by the statement that writes it rather
# than by a query of its own.
NOW = SQL("(now() AT TIME ZONE 'UTC')")
RETURNING_ID = SQL("id")


def insert_sql(model, vals, returning=RETURNING_ID):
    """`INSERT ... RETURNING id` (or `returning`) of one row of `model` holding `vals`, as create() would
    store it: the fields' defaults and the log-access columns filled in, values converted by their fields.
    No create() override, constraint or recomputation runs: `vals` must hold every stored computed field.
    A value may be an SQL expression (such as USAGE_ID)."""
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
        "INSERT INTO %s (%s) VALUES (%s) RETURNING %s",
        SQL.identifier(model._table), SQL(", ").join(columns), SQL(", ").join(values), returning,
    )


class LedgerStatement:
    """The statement being built for one usage row: `add` the rows that follow it, then `execute` it."""

    def __init__(self, usage_model, vals):
        self.usage_model = usage_model
        self.vals = vals
        # The whole row: the rollups read it.
        self._parts = [(USAGE_CTE, insert_sql(usage_model, vals, returning=SQL("*")), True)]

    def add(self, name, statement, returns_id=False):
        """Add a data-modifying statement named `name`; with `returns_id`, it ends with RETURNING id and
        `execute` returns that id under `name`."""
        if any(name == part for part, _statement, _returns in self._parts):
            raise ValueError(f"the ledger statement already has a part named {name!r}")
        self._parts.append((name, statement, returns_id))

    def add_insert(self, name, model, vals):
        """Add the insertion of one row of `model` (see `insert_sql`); `execute` returns its id under `name`."""
        self.add(name, insert_sql(model, vals), returns_id=True)

    def execute(self):
        """Run the statement; returns {name: id} of the parts that return one, the usage row's under "usage"."""
        cr = self.usage_model.env.cr
        returning = [name for name, _statement, returns_id in self._parts if returns_id]
        execute_prepared(cr, SQL(
            "WITH %s SELECT %s",
            SQL(", ").join(SQL("%s AS (%s)", SQL.identifier(name), statement) for name, statement, _r in self._parts),
            SQL(", ").join(SQL("(SELECT id FROM %s)", SQL.identifier(name)) for name in returning),
        ))
        return dict(zip(returning, cr.fetchone(), strict=True))
