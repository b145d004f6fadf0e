"""Cursors kept open between the short transactions of the call path, and statements prepared on them.

A call commits in transactions of its own: its budget reservation before it goes out, its ledger rows after.
Through `registry.cursor()` that costs more than the statements' work: Odoo's pool resets each connection it
lends (DISCARD ALL), which also drops the plans the connection cached, so each statement and each of the
foreign-key checks of the rows it inserts is planned again every time. A kept cursor stays borrowed, and
keeps those plans; a prepared statement runs on a plan made once per connection.

Which transaction holds a call's rows, its own or the caller's (a test's, or one that created a record the
rows name), is decided in one place: `run_in_own_transaction`."""

import logging
import re
import threading
from collections import defaultdict
from contextlib import contextmanager
from datetime import date, datetime, timedelta

import psycopg2
import psycopg2.errors
from psycopg2.extensions import ISOLATION_LEVEL_AUTOCOMMIT, ISOLATION_LEVEL_READ_COMMITTED

import odoo.modules.module
from odoo.tools import SQL

_logger = logging.getLogger(__name__)

# A kept cursor's attribute: the names of the statements prepared on its connection, by their text.
PREPARED = "_ai_cost_prepared"
# Statements prepared by `execute_prepared` per connection, at most: a call's statements take a few shapes
# (which rows follow its usage row), each one text; beyond, statements run unprepared.
MAX_PREPARED = 64
PLACEHOLDER = re.compile(r"%([s%])")
# Kept cursors per database and use, at most: each holds a connection of Odoo's pool (64 by default), and
# a threaded server may run many calls at once. The cursors of the calls beyond go back to the pool.
MAX_KEPT = 4
# The mark that a caller's transaction holds the rows of its calls (see `run_in_own_transaction`), in the data
# of its postcommit callbacks: Odoo clears them when the transaction commits or rolls back, not when it flushes.
HOLDS_CALL_ROWS = "ai_cost_holds_call_rows"
# The records known to be committed, by database and table: a call's rows refer to them, and a record once
# committed stays so (PostgreSQL never gives an id twice). A cache only: a record not in it is looked up.
_COMMITTED: defaultdict[tuple[str, str], set[int]] = defaultdict(set)


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
        if test_mode(registry=registry):
            with registry.cursor() as cr:
                yield cr
            return
        cr = self._take(registry) or self._open(registry)
        try:
            yield cr
            if self._isolation_level != ISOLATION_LEVEL_AUTOCOMMIT:
                cr.commit()
        except BaseException:
            if not cr.closed:
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
                if not cr.closed:
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
            # Raw SQL: session settings (SET), which the ORM has no API for.
            cr.execute(self._settings)
        setattr(cr, PREPARED, {})
        return cr


def execute_prepared(cr, statement: SQL) -> None:
    """Run `statement` on `cr`: on a kept cursor (see KeptCursors), prepared once per connection for each
    text, then executed with its parameters; on any other cursor, beyond MAX_PREPARED texts, or for a text
    that PostgreSQL refuses to prepare, as a plain statement. For the call path's statements, whose parsing
    and planning cost more than their work: raw SQL (PREPARE and EXECUTE, which the ORM has no API for) for the
    gateway overhead target of DESIGN section 9.

    PostgreSQL infers each parameter's type from where it stands (a column it is compared with or inserted
    into, a cast), except for dates, timestamps and intervals, declared as such: in `timestamp - $1`, an
    untyped interval would be taken for a timestamp. A parameter that stands alone in a SELECT list is
    taken for text: cast it."""
    prepared = getattr(cr, PREPARED, None)
    code, params = statement.code, statement.params
    name = None if prepared is None else prepared.get(code)
    if name is None and prepared is not None and len(prepared) < MAX_PREPARED:
        name = prepared[code] = _prepare(cr, f"ai_cost_statement_{len(prepared)}", code, params)
    if not name:
        query = statement
    elif params:
        query = SQL(f"EXECUTE {name} ({', '.join(['%s'] * len(params))})", *params)
    else:
        query = SQL(f"EXECUTE {name}")
    # A failure propagates; Odoo's log of it would show the parameters, the texts of a prompt among them.
    cr.execute(query, log_exceptions=False)


def _prepare(cr, name, code, params):
    """PREPARE the statement `code` as `name`; its name, or False when PostgreSQL refuses it (in a savepoint
    within a transaction, so that it goes on: the statement then runs unprepared, and the warning says why).
    Raw SQL for the gateway overhead target, as `execute_prepared`."""
    numbers = iter(range(1, len(params) + 1))
    text = PLACEHOLDER.sub(lambda match: "%" if match[1] == "%" else f"${next(numbers)}", code)
    types = f" ({', '.join(_parameter_type(param) for param in params)})" if params else ""
    prepare = f"PREPARE {name}{types} AS {text}"
    try:
        if cr.connection.autocommit:  # a statement of its own: its failure aborts nothing
            cr.execute(prepare)
        else:
            with cr.savepoint(flush=False):
                cr.execute(prepare)
    except psycopg2.Error as error:
        _logger.warning("A statement of the call path runs unprepared: %s", error)
        return False
    return name


def _parameter_type(value) -> str:
    if isinstance(value, datetime):
        return "timestamp"
    if isinstance(value, date):
        return "date"
    if isinstance(value, timedelta):
        return "interval"
    return "unknown"


# Statements that commit on their own: the budget holds, committed before the call goes out so that concurrent
# calls see them, and the response-cache probe, which must see the answers committed since the caller's
# transaction began.
STATEMENT_CURSORS = KeptCursors(ISOLATION_LEVEL_AUTOCOMMIT, "SET synchronous_commit TO off")
# The ledger transactions, read committed: concurrent calls update the same budget and rollup rows, which
# would make a repeatable-read ledger transaction fail with a serialization error.
LEDGER_CURSORS = KeptCursors(ISOLATION_LEVEL_READ_COMMITTED)


def test_mode(cr=None, registry=None) -> str | None:
    """The one place where the addon asks whether it runs in a test. 'transaction': `cr` is the cursor of the
    test being run (a TransactionCase's), whose rows must roll back with it; 'registry': `registry` is in Odoo's
    test mode (an HttpCase's), where every new cursor joins the test's transaction; None outside tests."""
    if cr is not None and getattr(odoo.modules.module.current_test, "cr", None) is cr:
        return "transaction"
    if registry is not None and registry.in_test_mode():
        return "registry"
    return None


def holds_call_rows(cr) -> bool:
    """Whether the transaction of `cr` keeps the rows of its calls itself, rather than transactions of their own:
    a test's transaction, or one whose calls named a record of its own (see `run_in_own_transaction`)."""
    return test_mode(cr) == "transaction" or cr.postcommit.data.get(HOLDS_CALL_ROWS, False)


def run_in_own_transaction(env, work, cursors: KeptCursors = LEDGER_CURSORS, references=None):
    """`work(cr)`'s result, run in a transaction of its own, committed before this returns: for the rows of a call
    that must outlive the caller's transaction, since the money was spent. On a cursor of `cursors`, by default a
    read-committed ledger cursor: concurrent calls update the same rows, which would make a repeatable-read
    transaction fail with a serialization error. `references`: the records those rows refer to, {table: ids}
    (see `references_of`).

    Two kinds of callers' transactions keep those rows themselves, written in a savepoint:
    - a test's (another module's TransactionCase): its rows roll back with it;
    - one whose call names a record that exists in it only (a provider, a user just created): no other
      transaction could refer to it. From then on, until it ends, it keeps the rows of all its calls, which then
      roll back with it. Such a record is one of `references` that the own transaction does not see, or one
      that a foreign key names (a reference that another module's override adds)."""
    if not holds_call_rows(env.cr):
        try:
            with cursors.cursor(env.registry) as cr:
                if not _names_uncommitted(cr, references or {}):
                    return work(cr)
        except psycopg2.errors.ForeignKeyViolation as error:
            _logger.info("An AI call names a record of its caller's open transaction (%s).", error.diag.constraint_name)
        env.cr.postcommit.data[HOLDS_CALL_ROWS] = True
    # Unflushed: the caller's pending writes are the caller's to flush (a provider's key is logged when written).
    with env.cr.savepoint(flush=False):
        return work(env.cr)


def references_of(model, vals) -> dict[str, set[int]]:
    """The records that a row of `model` holding `vals` refers to, by table: its many2one values and its author."""
    references = defaultdict(set)
    for name, value in vals.items():
        field = model._fields.get(name)
        if field is not None and field.type == "many2one" and isinstance(value, int) and value:
            references[model.env[field.comodel_name]._table].add(value)
    if model._log_access:
        references["res_users"].add(model.env.uid)
    return references


def _names_uncommitted(cr, references) -> bool:
    """Whether one of `references` ({table: ids}) is a record that the transaction of `cr` does not see.
    Raw SQL: a reading of committed state on that other cursor, by table name (the caller's cache and snapshot
    would show its own uncommitted records)."""
    for table, ids in references.items():
        known = _COMMITTED[cr.dbname, table]
        unknown = [record_id for record_id in ids if record_id not in known]
        if not unknown:
            continue
        cr.execute(SQL("SELECT id FROM %s WHERE id = ANY(%s)", SQL.identifier(table), unknown))
        found = {record_id for record_id, in cr.fetchall()}
        known.update(found)
        if len(found) < len(unknown):
            return True
    return False
