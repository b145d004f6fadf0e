"""Opens an Odoo environment on the benchmark database (shared by the bench/ scripts)."""

import argparse
import os
import sys
from contextlib import contextmanager


def parse_args(description: str, extra=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--odoo-tree", required=True)
    parser.add_argument("--addons", required=True, help="the folder that holds ai_cost_optimizer")
    parser.add_argument("--db", required=True)
    for args, kwargs in extra or []:
        parser.add_argument(*args, **kwargs)
    return parser.parse_args()


def load_registry(args: argparse.Namespace):
    """Configure Odoo like scripts/bench's odoo-bin and return the database's registry."""
    sys.path.insert(0, args.odoo_tree)
    import odoo
    from odoo.modules.registry import Registry

    odoo.tools.config.parse_config(
        [
            f"--addons-path={args.odoo_tree}/addons,{args.addons}",
            f"--db_host={os.environ['PGHOST']}",
            f"--db_port={os.environ['PGPORT']}",
            f"--db_user={os.environ['PGUSER']}",
            f"--database={args.db}",
            "--log-level=warn",
        ]
    )
    return Registry(args.db)


@contextmanager
def environment(registry, company_id=None):
    """A superuser environment on a cursor that commits on success, in `company_id` when given."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        yield api.Environment(cr, SUPERUSER_ID, {"allowed_company_ids": [company_id]} if company_id else {})


def vacuum_settled(cr, tables) -> float:
    """VACUUM ANALYZE `tables` (`cr` in autocommit) as autovacuum would have on a live database, with no
    autovacuum worker running, neither during it nor after: a worker's snapshot keeps VACUUM from marking
    the newest rows all-visible (index-only scans then read every row), and its pass over a million rows
    would share the 2 cores with the figures measured next (it slowed the API's twice). Then CHECKPOINT
    writes the dirty buffers out. Returns the seconds spent waiting for autovacuum."""
    waited = _wait_for_autovacuum(cr)
    for table in tables:
        cr.execute(f"VACUUM ANALYZE {table}")
    waited += _wait_for_autovacuum(cr)
    cr.execute("CHECKPOINT")
    return waited


def _wait_for_autovacuum(cr, timeout: float = 180.0) -> float:
    import time

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        cr.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")
        if not cr.fetchone()[0]:
            break
        time.sleep(0.5)
    return time.perf_counter() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def fake_provider_class():
    """FakeProviderServer, imported without the addon's test package (which pulls in odoo.tests)."""
    import importlib
    import types

    import odoo.addons.ai_cost_optimizer as addon

    name = "odoo.addons.ai_cost_optimizer.tests"
    if name not in sys.modules:
        package = types.ModuleType(name)
        package.__path__ = [os.path.join(os.path.dirname(addon.__file__), "tests")]
        sys.modules[name] = package
    return importlib.import_module(name + ".fake_provider").FakeProviderServer


@contextmanager
def fake_provider_process(setup=None):
    """The fake provider server in a process of its own, as a real provider is: none of its work runs in
    the measured process. `setup(server)`, when given, sets it up there first (its replies, its latency).
    Yields the running server's (anthropic_base_url, openai_base_url)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe()

    def serve(connection):
        with fake_provider_class()() as server:
            if setup is not None:
                setup(server)
            connection.send((server.anthropic_base_url, server.openai_base_url))
            connection.recv()  # until told to stop

    process = context.Process(target=serve, args=(theirs,), daemon=True)
    process.start()
    try:
        yield ours.recv()
    finally:
        ours.send(None)
        process.join(5)
