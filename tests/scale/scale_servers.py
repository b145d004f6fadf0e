"""Odoo server processes and a small JSON-RPC client for the scale check (stdlib only).

The servers are real ``odoo-bin`` processes on 127.0.0.1, each in a process group of its own so
that stopping one also stops its workers and its gevent process, whatever happened in the test.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

REQUEST_TIMEOUT = 120  # seconds; the first request to a fresh worker loads the registry


class RpcError(Exception):
    """A JSON-RPC error answer: Odoo's exception name and message."""

    def __init__(self, error: dict) -> None:
        data = error.get("data") or {}
        self.name = data.get("name") or ""
        self.message = data.get("message") or error.get("message") or ""
        super().__init__(f"{self.name}: {self.message}")


def free_ports(start: int, count: int) -> list[int]:
    """`count` ports from `start` on that nothing listens on now (a bind succeeds)."""
    ports = []
    for port in itertools.count(start):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise AssertionError("unreachable")


@dataclass
class OdooServer:
    """One ``odoo-bin`` serving `db` on 127.0.0.1:`port`; `extra` adds options (e.g. --workers)."""

    name: str
    odoo_tree: str
    addons_path: str
    db: str
    port: int
    log_path: Path
    extra: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable, os.path.join(self.odoo_tree, "odoo-bin"),
            f"--addons-path={self.addons_path}",
            f"--db_host={os.environ['PGHOST']}", f"--db_port={os.environ['PGPORT']}",
            f"--db_user={os.environ['PGUSER']}",
            "-d", self.db, f"--db-filter=^{self.db}$",
            "--http-interface=127.0.0.1", f"--http-port={self.port}",
            # Crons would write to the same tables at random moments; the check wants only its calls.
            "--max-cron-threads=0",
            "--log-level=info",
            *self.extra,
        ]

    def start(self) -> None:
        log = open(self.log_path, "wb")
        # A new session makes the server the leader of a process group: stop() kills the group.
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()

    def wait_ready(self, timeout: float) -> None:
        """Poll /web/health until it answers 200; fail with the log's tail if the server died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/web/health", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        raise AssertionError(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(grace)
                break
            except subprocess.TimeoutExpired:
                continue
        # Workers outlive a killed master for a moment; make sure nothing of the group is left.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def post_json(url: str, payload: dict, cookie: str | None = None) -> tuple[dict, str | None]:
    """POST a JSON body; returns the decoded answer and the session cookie it set, if any."""
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode("utf-8"), headers={"Content-Type": "application/json"}, method="POST"
    )
    if cookie:
        request.add_header("Cookie", f"session_id={cookie}")
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
        body = json.loads(response.read())
        cookies = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.load(header)
    return body, cookies["session_id"].value if "session_id" in cookies else None


def rpc_result(body: dict):
    """The result of a JSON-RPC answer, or RpcError."""
    if "error" in body:
        raise RpcError(body["error"])
    return body["result"]


class AdminRpc:
    """execute_kw over /jsonrpc as a user with a password (the setup, as an administrator would)."""

    def __init__(self, server: OdooServer, login: str, password: str) -> None:
        self.server, self.password = server, password
        self.uid = self._call("common", "login", [server.db, login, password])
        if not self.uid:
            raise AssertionError(f"cannot log in as {login} on {server.db}")

    def _call(self, service: str, method: str, args: list):
        payload = {"jsonrpc": "2.0", "method": "call", "params": {"service": service, "method": method, "args": args}}
        body, _cookie = post_json(self.server.url + "/jsonrpc", payload)
        return rpc_result(body)

    def execute(self, model: str, method: str, *args, **kwargs):
        return self._call("object", "execute_kw", [self.server.db, self.uid, self.password, model, method,
                                                   list(args), kwargs])

    def xmlid(self, module: str, name: str) -> int:
        rows = self.execute("ir.model.data", "search_read", [("module", "=", module), ("name", "=", name)],
                            fields=["res_id"], limit=1)
        if not rows:
            raise AssertionError(f"no record {module}.{name}")
        return rows[0]["res_id"]


class UserSession:
    """A logged-in browser session on one server, calling JSON routes as its user."""

    def __init__(self, server: OdooServer, login: str, password: str) -> None:
        self.server = server
        body, self.cookie = post_json(
            server.url + "/web/session/authenticate",
            {"jsonrpc": "2.0", "method": "call", "params": {"db": server.db, "login": login, "password": password}},
        )
        rpc_result(body)
        if not self.cookie:
            raise AssertionError(f"{server.name} set no session cookie for {login}")

    def call(self, path: str, params: dict):
        """The route's result; raises RpcError for an error answer."""
        body, _cookie = post_json(
            self.server.url + path, {"jsonrpc": "2.0", "method": "call", "params": params}, self.cookie
        )
        return rpc_result(body)
