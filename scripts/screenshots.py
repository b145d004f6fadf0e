"""Takes PNG screenshots of the running demo (scripts/demo) with headless Chromium.

    python scripts/screenshots.py [--url http://127.0.0.1:8069] [--out docs/screenshots] [page ...]

Logs in as admin through JSON-RPC, hands the session cookie to Chromium over the DevTools
protocol, opens each page and saves a PNG once the page has settled.
"""

import argparse
import base64
import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import requests
import websocket

PAGES = {
    "dashboard": "/odoo/action-ai_cost_optimizer.action_ai_cost_dashboard",
    "waste_report": "/odoo/action-ai_cost_optimizer.action_ai_token_waste_finding",
    "usage": "/odoo/action-ai_cost_optimizer.action_ai_token_usage",
    "benchmarks": "/odoo/action-ai_cost_optimizer.action_ai_provider_benchmark_report",
    "cost_per_day": "/odoo/action-ai_cost_optimizer.action_ai_token_usage_daily",
    "cost_analytics": "/odoo/action-ai_cost_optimizer.action_ai_token_analytics",
    "recommendations": "/odoo/action-ai_cost_optimizer.action_ai_cost_recommendation",
    "ab_experiments": "/odoo/action-ai_cost_optimizer.action_ai_provider_experiment",
    "budgets": "/odoo/action-ai_cost_optimizer.action_ai_cost_budget",
    "rate_limits": "/odoo/action-ai_cost_optimizer.action_ai_cost_rate_limit",
    "providers": "/odoo/action-ai_cost_optimizer.action_ai_service_provider",
    "allocation_rules": "/odoo/action-ai_cost_optimizer_analytic.action_ai_cost_allocation_rule",
    "unallocated": "/odoo/action-ai_cost_optimizer_analytic.action_ai_cost_unallocated",
    "analytic_items": "/odoo/action-analytic.account_analytic_line_action_entries",
    # The OpenAI account's form: its last fetch, providers, and in the chatter the alert of its price difference.
    "billing_accounts": "/odoo/action-ai_cost_optimizer.action_ai_billing_account/"
    "{ai_cost_optimizer.demo_billing_account_openai}",
    "reconciliation": "/odoo/action-ai_cost_optimizer.action_ai_billing_reconciliation",
    # The hours in which an operation or a user spent far above its usual hour (the demo's looping agent).
    "spend_anomalies": "/odoo/action-ai_cost_optimizer.action_ai_cost_anomaly",
}
# A filter and a group-by chosen in the search panel after the page opened, as a user would: a URL carries
# neither. Analytic Items: the AI spend per department.
SEARCH = {"analytic_items": ("AI Spend", "Departments")}
# Opens the search panel, picks the filter labelled FILTER, then the field labelled GROUP_BY under "Add Custom
# Group" (a plan's column: analytic's own search view offers no group-by per plan without the accounting app),
# and closes the panel. Answers what it could not find, or "".
SEARCH_SCRIPT = """
(async (filter, groupBy) => {
    const pause = () => new Promise((resolve) => setTimeout(resolve, 700));
    const toggler = document.querySelector(".o_searchview_dropdown_toggler");
    toggler.click();
    await pause();
    const item = [...document.querySelectorAll(".o_filter_menu .o-dropdown-item")]
        .find((element) => element.textContent.trim() === filter);
    if (!item) return `filter ${filter}`;
    item.click();
    await pause();
    const select = document.querySelector(".o_group_by_menu select");
    const option = select && [...select.options].find((element) => element.textContent.trim() === groupBy);
    if (!option) return `group-by ${groupBy}`;
    select.value = option.value;
    select.dispatchEvent(new Event("change", { bubbles: true }));
    await pause();
    toggler.click();
    return "";
})(%s, %s)
"""
# The groups of a grouped list opened before the shot (by the start of their title): what needs a look.
OPEN_GROUPS = {"reconciliation": ("Unexplained", "Explained", "Pending")}
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1600,1000",
]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def record_id(url: str, session_id: str, xml_id: str) -> int:
    """The database id of the record of `xml_id` (module.name): the demo's ids depend on the install."""
    module, name = xml_id.split(".")
    response = requests.post(
        f"{url}/web/dataset/call_kw",
        json={"jsonrpc": "2.0", "params": {
            "model": "ir.model.data", "method": "search_read", "args": [[("module", "=", module), ("name", "=", name)]],
            "kwargs": {"fields": ["res_id"], "limit": 1},
        }},
        cookies={"session_id": session_id}, timeout=30,
    )
    response.raise_for_status()
    found = response.json().get("result")
    if not found:
        raise SystemExit(f"no record {xml_id} in the demo database")
    return found[0]["res_id"]


def page_path(url: str, session_id: str, path: str) -> str:
    """`path` with each {module.name} replaced by that record's id."""
    return re.sub(r"\{([\w.]+)\}", lambda match: str(record_id(url, session_id, match[1])), path)


def login(url: str, db: str) -> str:
    response = requests.post(
        f"{url}/web/session/authenticate",
        json={"jsonrpc": "2.0", "params": {"db": db, "login": "admin", "password": "admin"}},
        timeout=30,
    )
    response.raise_for_status()
    if response.json().get("error"):
        raise SystemExit(f"login failed: {response.json()['error']['data']['message']}")
    return response.cookies["session_id"]


class DevTools:
    def __init__(self, port: int):
        for _ in range(50):
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
                page = next(t for t in targets if t["type"] == "page")
                break
            except (OSError, StopIteration):
                time.sleep(0.2)
        else:
            raise SystemExit("Chromium's DevTools endpoint did not answer")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        self.next_id = 0

    def wait_for(self, selector: str, timeout: float = 120.0) -> None:
        """Wait until the page shows `selector`: the first visit also compiles Odoo's assets."""
        deadline = time.monotonic() + timeout
        expression = f"!!document.querySelector({json.dumps(selector)})"
        while time.monotonic() < deadline:
            if self.call("Runtime.evaluate", expression=expression).get("result", {}).get("value"):
                return
            time.sleep(0.5)
        raise SystemExit(f"the page never showed {selector}")

    def open_groups(self, titles) -> None:
        """Click the group headers of the list whose title starts with one of `titles`."""
        self.wait_for(".o_group_header")
        self.call("Runtime.evaluate", expression=(
            "document.querySelectorAll('.o_group_header').forEach(row => "
            f"{json.dumps(list(titles))}.some(title => row.innerText.trim().startsWith(title)) && row.click())"
        ))

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                return message.get("result", {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8069")
    parser.add_argument("--db", default="ai_cost_demo")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "screenshots"))
    parser.add_argument("pages", nargs="*", choices=[[], *PAGES], help="the pages to take (default: all)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to let charts draw")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    session_id = login(args.url, args.db)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    port = free_port()  # several demos may be photographed at once
    with tempfile.TemporaryDirectory() as profile:
        process = subprocess.Popen(
            [browser, *CHROMIUM_FLAGS, f"--remote-debugging-port={port}", f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            tools = DevTools(port)
            tools.call("Network.enable")
            tools.call("Network.setCookie", name="session_id", value=session_id, url=args.url)
            for name, path in PAGES.items():
                if args.pages and name not in args.pages:
                    continue
                tools.call("Page.navigate", url=args.url + page_path(args.url, session_id, path))
                tools.wait_for(".o_action_manager .o_content, .o_action_manager .o_ai_cost_dashboard")
                if name in SEARCH:
                    script = SEARCH_SCRIPT % tuple(map(json.dumps, SEARCH[name]))
                    missing = tools.call("Runtime.evaluate", expression=script, awaitPromise=True)["result"]["value"]
                    if missing:
                        raise SystemExit(f"{name}: no {missing} in the search panel")
                if name in OPEN_GROUPS:
                    tools.open_groups(OPEN_GROUPS[name])
                time.sleep(args.settle)
                shot = tools.call("Page.captureScreenshot", format="png")
                target = out / f"{name}.png"
                target.write_bytes(base64.b64decode(shot["data"]))
                print(f"wrote {target}")
        finally:
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
