"""Cursors kept open between the short transactions of the call path, and statements prepared on them.

A call commits in transactions of its own: its budget reservation before it goes out, its ledger rows after.
Through `registry.cursor()` that costs more than the statements' work: Odoo's pool resets each connection it
lends (DISCARD ALL), which also drops the plans the connection cached, so each statement and each of the
foreign-key checks of the rows it inserts is planned again every time. A kept cursor stays borrowed, and
keeps those plans; a prepared statement runs on a plan made once per connection."""

import threading
from contextlib import contextmanager

from psycopg2.extensions import ISOLATION_LEVEL_AUTOCOMMIT

from odoo.tools import SQL

# A kept cursor's attribute: the names of the statements prepared on its connection.
PREPARED = "_ai_cost_prepared"
# Kept cursors per database and use, at most: each holds a connection of Odoo's pool (64 by default), and
# a threaded server may run many calls at once. The cursors of the calls beyond go back to the pool.
MAX_KEPT = 4


class KeptCursors:
    """Cursors of each database at one isolation level, kept open after use for the next caller of the same
    process, as `with registry.cursor() as cr:` would be used: committed when the block ends, rolled back
    when it raises.

    Up to MAX_KEPT stay open, as many as callers used them at once. When Odoo closes its pool's connections (a
    registry dropped, the server stopped), the kept cursors on them are forgotten; a cursor whose block
    raised goes back to Odoo's pool, which resets it. In test mode every cursor is the registry's test
    cursor, in the test transaction: nothing is kept, and statements run unprepared."""

    def __init__(self, isolation_level: int, settings: str | None = None):
        """`isolation_level`: psycopg2's (ISOLATION_LEVEL_AUTOCOMMIT: every statement commits on its own);
        `settings`: session settings (`SET ...`) each kept cursor runs once, when it is opened."""
        self._isolation_level = isolation_level
        self._settings = settings
        self._idle: dict[str, list] = {}
        self._lock = threading.Lock()

    @contextmanager
    def cursor(self, registry):
        """A cursor of `registry`'s database, its transaction committed at the end of the block."""
        if registry.in_test_mode():
            with registry.cursor() as cr:
                yield cr
            return
        cr = self._take(registry) or self._open(registry)
        try:
            yield cr
            if self._isolation_level != ISOLATION_LEVEL_AUTOCOMMIT:
                cr.commit()
        except BaseException:
            if not cr._cnx.closed:
                cr.close()
            raise
        with self._lock:
            idle = self._idle.setdefault(registry.db_name, [])
            kept = len(idle) < MAX_KEPT
            if kept:
                idle.append(cr)
        if not kept:
            cr.close()

    def _take(self, registry):
        with self._lock:
            idle = self._idle.get(registry.db_name, [])
            while idle:
                cr = idle.pop()
                if not cr._cnx.closed:
                    break
            else:
                return None
        if cr.transaction is not None and cr.transaction.registry is not registry:
            cr.transaction = None  # the registry was reloaded: environments must see the new one
        return cr

    def _open(self, registry):
        cr = registry.cursor()
        cr.connection.set_isolation_level(self._isolation_level)
        if self._settings:
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
