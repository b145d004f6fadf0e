"""Cursors kept open between the short transactions of the call path, and statements prepared on them.

A budget check commits its reservation in a transaction of its own before the call goes out. Through
`registry.cursor()` that costs more than the statement's work: Odoo's pool resets each connection it lends
(DISCARD ALL), which also drops the plans the connection cached, so the statement is planned again each
time. A kept cursor stays borrowed, in autocommit mode, and runs a prepared statement on a plan made once
per connection."""

import threading
from contextlib import contextmanager

from odoo.tools import SQL

# A kept cursor's attribute: the names of the statements prepared on its connection.
PREPARED = "_ai_cost_prepared"


class KeptCursors:
    """Autocommit cursors of each database, kept open after use for the next caller of the same process.

    As many stay open as callers ever used them at once. When Odoo closes its pool's connections (a
    registry dropped, the server stopped), the kept cursors on them are forgotten; a cursor whose statement
    fails goes back to Odoo's pool, which resets it. In test mode every cursor is the registry's test
    cursor, in the test transaction: nothing is kept, and statements run unprepared."""

    def __init__(self, settings: str):
        """`settings`: the session settings (`SET ...`) each kept cursor runs once, when it is opened."""
        self._settings = settings
        self._idle: dict[str, list] = {}
        self._lock = threading.Lock()

    @contextmanager
    def cursor(self, registry):
        """A cursor of `registry`'s database for statements that commit on their own."""
        if registry.in_test_mode():
            with registry.cursor() as cr:
                yield cr
            return
        cr = self._take(registry.db_name) or self._open(registry)
        try:
            yield cr
        except Exception:
            if not cr._cnx.closed:
                cr.close()
            raise
        with self._lock:
            self._idle.setdefault(registry.db_name, []).append(cr)

    def _take(self, db_name: str):
        with self._lock:
            idle = self._idle.get(db_name, [])
            while idle:
                cr = idle.pop()
                if not cr._cnx.closed:
                    return cr
        return None

    def _open(self, registry):
        cr = registry.cursor()
        cr._cnx.autocommit = True
        cr.execute(self._settings)
        setattr(cr, PREPARED, set())
        return cr


class PreparedStatement:
    """A statement with named parameters (`%(name)s`), prepared once on each kept cursor that runs it."""

    def __init__(self, name: str, query: str, types: dict[str, str]):
        """`types`: the SQL type of each parameter of `query`, by name."""
        self.name = name
        self.query = query
        self._names = list(types)
        positions = {param: f"${position}" for position, param in enumerate(types, 1)}
        self._prepare = SQL(f"PREPARE {name} ({', '.join(types.values())}) AS {query % positions}")
        self._execute = f"EXECUTE {name} ({', '.join(f'%s::{kind}' for kind in types.values())})"

    def execute(self, cr, params: dict) -> list[tuple]:
        """Run the statement with `params` on `cr` and return its rows: prepared on a kept cursor (see
        KeptCursors), as a plain statement on any other."""
        prepared = getattr(cr, PREPARED, None)
        if prepared is None:
            cr.execute(SQL(self.query, **params))
        else:
            if self.name not in prepared:
                cr.execute(self._prepare)
                prepared.add(self.name)
            cr.execute(SQL(self._execute, *(params[name] for name in self._names)))
        return cr.fetchall()
