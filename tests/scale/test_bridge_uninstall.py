"""The core addon without analytic, and after the analytic bridge is uninstalled (issue 26, DESIGN section 12).

Uninstalling a module commits and reloads the registry: it cannot run inside the Odoo tier's
transactions. Here real ``odoo-bin`` processes work on a fresh database of their own: install the core
only and call the gateway (the fake provider answers); install analytic, after which Odoo installs the
bridge by itself, and post the call as an analytic item; uninstall the bridge; then the core must
work as before: its screens open, its menus load, every view of the database validates, nothing of
the bridge is left in the registry, the schema or the metadata, and the gateway still answers.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from scale_report import FIGURES

BRIDGE = "ai_cost_optimizer_analytic"
# The line a shell script prints its findings on, among Odoo's own output.
MARKER = "AI_COST_CHECK "
# Odoo's log line: date, time, pid, level, database, logger.
LOG_PROBLEM = re.compile(r"^\S+ \S+ \d+ (WARNING|ERROR|CRITICAL) ")

CALL = """
import json
provider = env["ai.service.provider"].search([("name", "=", "Uninstall check")]) or env["ai.service.provider"].create({
    "name": "Uninstall check", "kind": "openai_compatible", "base_url": BASE_URL, "api_key": "sk-test-uninstall",
    "model": "gpt-4o-mini", "timeout": 30, "max_retries": 0, "price_source": "manual",
    "input_price": 10.0, "output_price": 30.0,
})
result = env["ai.service"].send_message(
    [{"role": "user", "content": "Summarize the uninstall check."}], provider=provider.id,
    mode="passthrough", max_tokens=16, operation="uninstall_check",
)
env.cr.commit()
modules = {m.name: m.state for m in env["ir.module.module"].search([("name", "in", ["analytic", BRIDGE])])}
print(MARKER + json.dumps({
    "content": result["content"], "cost_usd": result["cost_usd"],
    "ledger_rows": env["ai.token.usage"].search_count([("operation", "=", "uninstall_check")]),
    "modules": modules,
}))
"""

# With the bridge installed: a rule puts every call on an account, and the day is posted, so that the
# uninstall has posted analytic items and a company field with a value to take away.
POST = """
import datetime, json
plan = env["account.analytic.plan"].create({"name": "Departments (uninstall check)"})
account = env["account.analytic.account"].create({"name": "Sales", "plan_id": plan.id, "company_id": False})
env["ai.cost.allocation.rule"].create({"name": "Everything to Sales", "analytic_distribution": {str(account.id): 100}})
# Only past days post: the call is moved to yesterday.
env.cr.execute("UPDATE ai_token_usage SET create_date = create_date - interval '1 day'")
yesterday = datetime.date.today() - datetime.timedelta(days=1)
env["ai.cost.allocation.rule"].post_analytic_lines(yesterday - datetime.timedelta(days=1), yesterday)
env.cr.commit()
print(MARKER + json.dumps({
    "bridge": env["ir.module.module"].search([("name", "=", BRIDGE)]).state,
    "posted": env["account.analytic.line"].search_count([("ai_cost_key", "!=", False)]),
}))
"""

UNINSTALL = """
env["ir.module.module"].search([("name", "=", BRIDGE)]).button_immediate_uninstall()
"""

# After the uninstall, as an administrator would meet the core: each screen of its menus opens.
CHECK = """
import json
Views = env["ir.ui.view"]
# Every view of the database validates against the registry without the bridge's fields.
Views.search([])._check_xml()
root = env.ref("ai_cost_optimizer.menu_ai_cost_root")
menus = env["ir.ui.menu"].search([("id", "child_of", root.id)])
loaded = env["ir.ui.menu"].load_menus(debug=False)
opened = []
for menu in menus.filtered(lambda m: m.action and m.action._name == "ir.actions.act_window"):
    action = menu.action
    Model = env[action.res_model]
    modes = [mode for mode in action.view_mode.split(",") if mode != "qweb"]
    Model.get_views([(False, mode) for mode in modes] + [(False, "search")])
    Model.search_count([])
    opened.append(action.res_model)
env.cr.execute("SELECT count(*) FROM ir_model_data WHERE module = %s", [BRIDGE])
model_data = env.cr.fetchone()[0]
env.cr.execute(\"\"\"SELECT model || '.' || name FROM ir_model_fields
                   WHERE name LIKE 'ai_cost_%%' AND model IN ('res.company', 'account.analytic.line')
                      OR model LIKE 'ai.cost.allocation%%' OR model LIKE 'ai.cost.focus%%'\"\"\")
fields_left = [row[0] for row in env.cr.fetchall()]
env.cr.execute(\"\"\"SELECT table_name || '.' || column_name FROM information_schema.columns
                   WHERE table_name IN ('res_company', 'account_analytic_line') AND column_name LIKE 'ai_cost_%%'
                      OR table_name LIKE 'ai_cost_allocation%%'\"\"\")
columns_left = [row[0] for row in env.cr.fetchall()]
views_left = Views.search(["|", ("arch_db", "ilike", "ai_cost_posted_until"), ("arch_db", "ilike", "allocation.rule")])
print(MARKER + json.dumps({
    "menus": len(menus), "menus_loaded": root.id in loaded, "opened": sorted(set(opened)),
    "model_data": model_data, "fields_left": fields_left, "columns_left": columns_left,
    "views_left": views_left.mapped("xml_id"),
    "models_left": [name for name in ("ai.cost.allocation.rule", "ai.cost.unallocated", "ai.cost.focus.export")
                    if name in env],
    "company_field_left": "ai_cost_posted_until" in env["res.company"]._fields,
}))
"""


@pytest.fixture(scope="module")
def bare(settings, tmp_path_factory):
    """odoo-bin on a fresh database `<db>_bare`, with a data directory of its own (Odoo's filestore is
    per database name and shared otherwise); the database is dropped afterwards."""
    db = f"{settings['db']}_bare"
    data_dir = tmp_path_factory.mktemp("bare-data")
    log_path = settings["log_dir"] / f"uninstall-{db}.log"
    log_path.write_text("")
    base = [
        sys.executable, os.path.join(settings["odoo_tree"], "odoo-bin"),
    ]
    options = [
        f"--addons-path={settings['addons']}", f"--data-dir={data_dir}",
        f"--db_host={os.environ['PGHOST']}", f"--db_port={os.environ['PGPORT']}", f"--db_user={os.environ['PGUSER']}",
        "-d", db, "--without-demo=all", "--max-cron-threads=0", "--log-level=info",
    ]

    def run(command: list[str], script: str | None = None, **names) -> list[dict]:
        """Runs odoo-bin (`command`: options), or its shell with `script`; returns what the script printed
        after MARKER, in order. Odoo's log goes to the run's log file, checked below."""
        argv = base + (["shell", *options, "--no-http"] if script is not None else [*options, *command])
        source = None
        if script is not None:
            constants = {"BRIDGE": BRIDGE, "MARKER": MARKER, **names}
            source = "".join(f"{name} = {value!r}\n" for name, value in constants.items()) + script
        done = subprocess.run(argv, input=source, capture_output=True, text=True, timeout=300)
        with log_path.open("a") as log:
            log.write(done.stderr)
        assert done.returncode == 0, f"odoo-bin {command or 'shell'} exited {done.returncode}:\n{done.stderr[-4000:]}"
        found = [line[len(MARKER):] for line in done.stdout.splitlines() if line.startswith(MARKER)]
        return [json.loads(line) for line in found]

    _drop(db)
    try:
        yield run, log_path
    finally:
        _drop(db)


def _drop(db: str) -> None:
    connection = psycopg2.connect(dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cr:
        cr.execute(f'DROP DATABASE IF EXISTS "{db}"')
    connection.close()


@pytest.fixture(scope="module")
def lifecycle(bare, fake):
    """The steps, once: core alone, analytic and the bridge, the bridge uninstalled. Their findings."""
    run, log_path = bare
    started = datetime.datetime.now()
    base_url = fake.openai_base_url
    findings = {}
    run(["-i", "ai_cost_optimizer", "--stop-after-init"])
    [findings["core_alone"]] = run([], CALL, BASE_URL=base_url)
    run(["-i", "analytic", "--stop-after-init"])
    [findings["bridge"]] = run([], POST)
    run([], UNINSTALL)
    # A process of its own after the uninstall: its registry is loaded from the database as left.
    findings["after"], findings["call_after"] = run([], CHECK + CALL, BASE_URL=base_url)
    FIGURES["uninstall_check_s"] = round((datetime.datetime.now() - started).total_seconds(), 1)
    findings["log"] = Path(log_path).read_text()
    return findings


def test_core_installs_and_calls_without_analytic(lifecycle):
    """A database with the core only: analytic is not even installed, and the gateway answers and
    writes its ledger row."""
    core = lifecycle["core_alone"]
    assert core["modules"].get("analytic") == "uninstalled" and core["modules"].get(BRIDGE) == "uninstalled"
    assert core["content"] and core["cost_usd"] > 0
    assert core["ledger_rows"] == 1


def test_bridge_installs_itself_and_posts(lifecycle):
    """Installing analytic alone brings the bridge, which posts the core's call."""
    assert lifecycle["bridge"] == {"bridge": "installed", "posted": 1}


def test_uninstalling_the_bridge_leaves_the_core_intact(lifecycle):
    """After the uninstall the core's screens open and nothing of the bridge is left."""
    after = lifecycle["after"]
    assert after["menus_loaded"] and after["menus"] > 5
    assert "ai.token.usage" in after["opened"] and "ai.service.provider" in after["opened"]
    assert after["model_data"] == 0
    assert after["fields_left"] == [] and after["columns_left"] == [] and after["views_left"] == []
    assert after["models_left"] == [] and after["company_field_left"] is False
    call = lifecycle["call_after"]
    assert call["modules"] == {"analytic": "installed", BRIDGE: "uninstalled"}
    assert call["content"] and call["ledger_rows"] == 2


def test_no_warning_in_the_log(lifecycle):
    """Install, uninstall and the calls log no warning or error (a broken view or field would)."""
    problems = [line for line in lifecycle["log"].splitlines() if LOG_PROBLEM.match(line)]
    assert problems == []
