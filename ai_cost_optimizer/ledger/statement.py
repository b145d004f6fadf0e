"""The rows that follow a call's usage row, inserted by ONE SQL statement.

The usage row itself goes through `ai.token.usage.create()`, so that the fields, computes and create()
overrides of other modules apply to it (its rollups are kept up to date there too). What follows it is
derived from the call rather than from the row: on a served call the recommendation made for it, its waste
findings and its response-cache entry. Raw SQL for the gateway overhead target (DESIGN section
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


class LedgerStatement:
    """The statement being built for the rows that follow `usage` (an ai.token.usage record written with
    `vals`): `add` them, then `execute` it."""

    def __init__(self, usage, vals):
        self.usage = usage
        self.vals = vals
        self._parts = []

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
        """Run the statement, when it has parts; returns {name: id} of the parts that return one."""
        if not self._parts:
            return {}
        cr = self.usage.env.cr
        returning = [name for name, _statement, returns_id in self._parts if returns_id]
        # Raw SQL for the gateway overhead target (DESIGN section 9): see the module docstring.
        execute_prepared(cr, SQL(
            "WITH %s SELECT %s",
            SQL(", ").join(SQL("%s AS (%s)", SQL.identifier(name), statement) for name, statement, _r in self._parts),
            SQL(", ").join(SQL("(SELECT id FROM %s)", SQL.identifier(name)) for name in returning) or SQL("1"),
        ))
        ids = dict(zip(returning, cr.fetchone(), strict=False))
        # The usage row's one2many fields were cached empty at its create().
        self.usage.invalidate_recordset()
        return ids
