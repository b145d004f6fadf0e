import json
from datetime import timedelta
from urllib.parse import urlencode

from odoo import fields
from odoo.tests import HttpCase, new_test_user, tagged

API = "/ai_cost/api/v1/costs"
# What a browser sends when one opens the API URL in a tab: Odoo's bearer auth accepts the session then.
BROWSER_HEADERS = {
    "Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none", "Sec-Fetch-User": "?1",
}


class CostDataMixin:
    """Usage rows written through the ORM (so the rollups follow), over providers, operations and records."""

    @classmethod
    def _create_usage_data(cls):
        Provider = cls.env["ai.service.provider"]
        cls.claude = Provider.create({
            "name": "Claude (test)", "kind": "anthropic", "base_url": "http://127.0.0.1:9",
            "model": "claude-3-5-haiku-latest",
        })
        cls.gpt = Provider.create({
            "name": "GPT (test)", "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1",
            "model": "gpt-4o-mini",
        })
        cls.manager = new_test_user(
            cls.env, login="ai_api_manager", groups="base.group_user,ai_cost_optimizer.group_ai_cost_manager"
        )
        cls.basic = new_test_user(cls.env, login="ai_api_user", groups="ai_cost_optimizer.group_ai_cost_user")
        specs = [
            (cls.claude, "lead_qualification", "res.partner", 11, 0.010, cls.manager, "ok", False),
            (cls.claude, "lead_qualification", "res.partner", 11, 0.020, cls.basic, "ok", False),
            (cls.gpt, "email_draft", "res.partner", 12, 0.005, cls.basic, "ok", False),
            (cls.gpt, "email_draft", None, 0, 0.0, cls.manager, "ok", True),
            (cls.gpt, "email_draft", None, 0, 0.0, cls.manager, "error", False),
        ]
        cls.usages = cls.env["ai.token.usage"].create([
            {
                "provider_id": provider.id, "model": provider.model, "operation": operation, "res_model": res_model,
                "res_id": res_id, "cost_usd": cost, "user_id": user.id, "status": status, "cache_hit": hit,
                "input_tokens": 100, "output_tokens": 10, "prompt_cache_savings_usd": 0.001, "latency_ms": 500,
                # As the gateway writes them: every request but the response cache's answer reached the provider.
                "provider_called": not hit,
            }
            for provider, operation, res_model, res_id, cost, user, status, hit in specs
        ])


@tagged("post_install", "-at_install")
class TestCostApi(CostDataMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_usage_data()
        expiry = fields.Datetime.now() + timedelta(days=1)
        cls.manager_key = cls.env["res.users.apikeys"].with_user(cls.manager)._generate(None, "api test", expiry)
        cls.basic_key = cls.env["res.users.apikeys"].with_user(cls.basic)._generate(None, "api test", expiry)

    def _get(self, path=API, key=None, headers=None, **params):
        headers = dict(headers or {})
        if key:
            headers["Authorization"] = f"Bearer {key}"
        response = self.url_open(f"{path}?{urlencode(params)}" if params else path, headers=headers)
        self.assertEqual(response.headers["Content-Type"].split(";")[0], "application/json", response.text)
        return response.status_code, response.json()

    def test_api_key_totals_equal_the_database(self):
        status, body = self._get(key=self.manager_key)
        self.assertEqual(status, 200, body)
        self.assertAlmostEqual(body["total_cost_usd"], sum(self.usages.mapped("cost_usd")), places=10)
        self.assertEqual(body["total_requests"], len(self.usages))
        self.assertEqual(
            {row["operation"]: row["requests"] for row in body["by_operation"]},
            {"lead_qualification": 2, "email_draft": 3},
        )
        self.assertEqual(
            body["by_record"][0], {"res_model": "res.partner", "res_id": 11, "cost_usd": 0.03, "requests": 2}
        )
        self.assertEqual(len(body["by_record"]), 2)
        self.assertEqual({row["provider_id"] for row in body["by_provider"]}, {self.claude.id, self.gpt.id})
        self.assertEqual(body["cache_stats"]["hits"], 1)
        self.assertAlmostEqual(body["cache_stats"]["hit_rate"], 1 / 5)
        self.assertAlmostEqual(body["cache_stats"]["estimated_savings_usd"], 0.005, places=10)
        today = str(fields.Date.today())
        self.assertEqual(body["time_series"], [{"date": today, "cost_usd": body["total_cost_usd"], "requests": 5}])

    def test_filters(self):
        _status, body = self._get(key=self.manager_key, operation="email_draft", provider=self.gpt.id)
        self.assertEqual((body["total_requests"], body["total_cost_usd"]), (3, 0.005))
        _status, body = self._get(key=self.manager_key, user=self.basic.id)
        self.assertAlmostEqual(body["total_cost_usd"], 0.025, places=10)
        _status, body = self._get(key=self.manager_key, res_model="res.partner", res_id=11)
        self.assertEqual((body["total_requests"], body["by_record"][0]["res_id"]), (2, 11))
        yesterday = fields.Date.today() - timedelta(days=1)
        _status, body = self._get(key=self.manager_key, start=str(yesterday - timedelta(days=5)), end=str(yesterday))
        self.assertEqual((body["total_requests"], body["time_series"]), (0, []))

    def test_session_auth(self):
        self.authenticate("ai_api_manager", "ai_api_manager")
        status, body = self._get(headers=BROWSER_HEADERS)
        self.assertEqual((status, body["total_requests"]), (200, 5))
        status, body = self._get()
        self.assertEqual(status, 403, "a session without browser navigation headers could be CSRF")

    def test_refusals_are_json(self):
        status, body = self._get()
        self.assertEqual(status, 401)
        self.assertIn("message", body["error"])
        status, body = self._get(key="not-a-key")
        self.assertEqual(status, 401)
        status, body = self._get(key=self.basic_key)
        self.assertEqual(status, 403)
        self.assertIn("managers", body["error"]["message"])

    def test_bad_filters_get_400(self):
        for params, needle in [
            ({"start": "2024-13-45"}, "start must be a date"),
            ({"end": "yesterday"}, "end must be a date"),
            ({"start": "2024-02-01", "end": "2024-01-01"}, "start must not be after end"),
            ({"colour": "blue"}, "Unknown filter(s): colour"),
            ({"user": "bob"}, "user must be an integer"),
            ({"res_id": "4"}, "res_id needs res_model"),
        ]:
            status, body = self._get(key=self.manager_key, **params)
            self.assertEqual(status, 400, params)
            self.assertIn(needle, body["error"]["message"])
            self.assertNotIn("Traceback", json.dumps(body))

    def test_user_summary(self):
        status, body = self._get(API + "/users", key=self.manager_key, budget="0.02")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["count"], 2)
        self.assertAlmostEqual(body["min_cost_usd"], 0.01, places=10)
        self.assertAlmostEqual(body["max_cost_usd"], 0.025, places=10)
        self.assertAlmostEqual(body["avg_cost_usd"], 0.0175, places=10)
        self.assertFalse(body["all_under_budget"])
        _status, body = self._get(API + "/users", key=self.manager_key, budget="1")
        self.assertTrue(body["all_under_budget"])
        status, body = self._get(API + "/users", key=self.manager_key, budget="-1")
        self.assertEqual(status, 400)

    def test_other_methods_get_a_json_405(self):
        for method in ("POST", "PUT", "DELETE"):
            for path in (API, API + "/users"):
                response = self.opener.request(
                    method, self.base_url() + path, headers={"Authorization": f"Bearer {self.manager_key}"},
                    data={"start": "2026-01-01"}, timeout=30,
                )
                self.assertEqual(response.status_code, 405, (method, path, response.text))
                self.assertEqual(response.headers["Content-Type"].split(";")[0], "application/json")
                self.assertEqual(response.headers["Allow"], "GET, HEAD")
                self.assertIn(f"use GET, not {method}", response.json()["error"]["message"])

    def test_figures_are_rounded(self):
        """Sums come to a hundredth of a cent, averages to a millionth of a dollar: never a float's 16 digits."""
        self.env["ai.token.usage"].create([
            {"provider_id": self.gpt.id, "model": "gpt-4o-mini", "operation": "rounding", "cost_usd": cost,
             "user_id": user.id, "status": "ok", "input_tokens": 10, "output_tokens": 1}
            for cost, user in ((1 / 3, self.manager), (1 / 7, self.basic), (1 / 9, self.basic))
        ])
        _status, body = self._get(key=self.manager_key, operation="rounding")
        self.assertEqual(body["total_cost_usd"], round(1 / 3 + 1 / 7 + 1 / 9, 4))
        self.assertEqual(body["by_operation"], [{"operation": "rounding", "cost_usd": 0.5873, "requests": 3}])
        self.assertEqual(body["time_series"][0]["cost_usd"], 0.5873)
        _status, body = self._get(API + "/users", key=self.manager_key, operation="rounding")
        self.assertEqual([user["cost_usd"] for user in body["users"]], [0.3333, 0.254])
        self.assertEqual((body["min_cost_usd"], body["max_cost_usd"]), (0.254, 0.3333))
        self.assertEqual(body["avg_cost_usd"], round((1 / 3 + 1 / 7 + 1 / 9) / 2, 6))

        def decimals(value):
            return len(repr(value).partition(".")[2]) if isinstance(value, float) else 0

        _status, body = self._get(key=self.manager_key)
        figures = [body["total_cost_usd"], body["cache_stats"]["estimated_savings_usd"]] + [
            row["cost_usd"] for key in ("by_operation", "by_record", "by_provider", "time_series") for row in body[key]
        ]
        self.assertLessEqual(max(map(decimals, figures)), 4, figures)
