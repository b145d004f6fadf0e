"""Malformed requests to the JSON API: a JSON 400/401/403 with a clear message, never a traceback
or a 500, and no change in the database. Also: a revoked API key is refused."""

import json
from datetime import timedelta
from urllib.parse import urlencode

from odoo import Command, fields
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import SQL

from .test_cost_api import API, CostDataMixin

INJECTION = "x' OR '1'='1'; DROP TABLE ai_token_usage; --"

# (label, query parameters, expected status, fragment of the error message)
API_CASES = [
    # -- dates: malformed, out of range, inverted
    ("start month 13", {"start": "2024-13-01"}, 400, "start must be a date"),
    ("start day 45", {"start": "2024-01-45"}, 400, "start must be a date"),
    ("start February 30", {"start": "2024-02-30"}, 400, "start must be a date"),
    ("start word", {"start": "yesterday"}, 400, "start must be a date"),
    ("start year 0", {"start": "0000-01-01"}, 400, "start must be a date"),
    ("start year 99999", {"start": "99999-01-01"}, 400, "start must be a date"),
    ("start with trailing junk", {"start": "2024-01-01' OR 1=1"}, 400, "start must be a date"),
    ("start timestamp", {"start": "2024-01-01T00:00:00"}, 400, "start must be a date"),
    ("start unicode digits", {"start": "٢٠٢٤-٠١-٠١"}, 400, "start must be a date"),
    ("end slashes", {"end": "01/02/2024"}, 400, "end must be a date"),
    ("end year 0", {"end": "0000-12-31"}, 400, "end must be a date"),
    ("end year 99999", {"end": "99999-12-31"}, 400, "end must be a date"),
    ("end at the first day of the calendar", {"end": "0001-01-01"}, 400, "out of range"),
    ("end huge string", {"end": "9" * 5000}, 400, "end must be a date"),
    ("start after end", {"start": "2024-02-01", "end": "2024-01-01"}, 400, "start must not be after end"),
    ("start in year 9999 alone", {"start": "9999-12-31"}, 400, "start must not be after end"),
    # -- unknown filters
    ("unknown filter", {"colour": "blue"}, 400, "Unknown filter(s): colour"),
    ("domain filter", {"domain": "[(1, '=', 1)]"}, 400, "Unknown filter(s): domain"),
    ("field name as filter", {"user_id": "1"}, 400, "Unknown filter(s): user_id"),
    ("order filter", {"order": "id; DROP TABLE ai_token_usage"}, 400, "Unknown filter(s): order"),
    # -- ids: not integers, out of range, from another company
    ("user word", {"user": "bob"}, 400, "user must be an integer"),
    ("user float", {"user": "1.5"}, 400, "user must be an integer"),
    ("user exponent", {"user": "1e3"}, 400, "user must be an integer"),
    ("user negative", {"user": "-3"}, 400, "user must be a positive id"),
    ("user zero", {"user": "0"}, 400, "user must be a positive id"),
    ("user beyond int4", {"user": str(2**31)}, 400, "user must be"),
    ("user huge", {"user": "9" * 40}, 400, "user must be"),
    ("user unicode digits", {"user": "٣"}, 400, "user must be an integer"),
    ("user injection", {"user": "1 OR 1=1"}, 400, "user must be an integer"),
    ("user of another company", {"user": "FOREIGN_USER"}, 400, "Unknown user"),
    ("provider word", {"provider": "gpt"}, 400, "provider must be an integer"),
    ("provider huge", {"provider": "1" + "0" * 30}, 400, "provider must be"),
    ("provider unknown", {"provider": "987654"}, 400, "Unknown provider"),
    ("provider of another company", {"provider": "FOREIGN_PROVIDER"}, 400, "Unknown provider"),
    ("res_id without res_model", {"res_id": "4"}, 400, "res_id needs res_model"),
    ("res_id huge", {"res_model": "res.partner", "res_id": "9" * 30}, 400, "res_id must be"),
    ("res_id negative", {"res_model": "res.partner", "res_id": "-1"}, 400, "res_id must be a positive id"),
    # -- text filters: injection attempts, control characters, huge strings
    ("res_model injection", {"res_model": INJECTION}, 400, "res_model must be an Odoo model name"),
    ("res_model path", {"res_model": "../../etc/passwd"}, 400, "res_model must be an Odoo model name"),
    ("res_model NUL", {"res_model": "res.partner\x00"}, 400, "res_model must be one line"),
    ("res_model huge", {"res_model": "m" * 5000}, 400, "res_model has 5000 characters"),
    ("operation NUL", {"operation": "lead\x00"}, 400, "operation must be one line"),
    ("operation newline", {"operation": "lead\nqualification"}, 400, "operation must be one line"),
    ("operation huge", {"operation": "o" * 5000}, 400, "operation has 5000 characters"),
    # -- the /users budget
    ("budget word", {"PATH": "/users", "budget": "lots"}, 400, "budget must be a number"),
    ("budget negative", {"PATH": "/users", "budget": "-1"}, 400, "budget must be a positive number"),
    ("budget nan", {"PATH": "/users", "budget": "nan"}, 400, "budget must be a positive number"),
    ("budget inf", {"PATH": "/users", "budget": "inf"}, 400, "budget must be a positive number"),
    ("budget overflow", {"PATH": "/users", "budget": "1e999"}, 400, "budget must be a positive number"),
]


@tagged("post_install", "-at_install")
class TestApiBadInput(CostDataMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_usage_data()
        cls.other_company = cls.env["res.company"].create({"name": "Other API Co"})
        cls.foreign_provider = cls.env["ai.service.provider"].create({
            "name": "Foreign (test)", "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1",
            "model": "gpt-4o-mini", "company_id": cls.other_company.id,
        })
        cls.foreign_user = new_test_user(
            cls.env, login="ai_api_foreign", groups="base.group_user", company_id=cls.other_company.id,
            company_ids=[Command.set(cls.other_company.ids)],
        )
        cls.env["ai.token.usage"].create({
            "provider_id": cls.foreign_provider.id, "model": "gpt-4o-mini", "company_id": cls.other_company.id,
            "user_id": cls.foreign_user.id, "status": "ok", "cost_usd": 0.5, "operation": "lead_qualification",
        })
        cls.expiry = fields.Datetime.now() + timedelta(days=1)
        cls.manager_key = cls.env["res.users.apikeys"].with_user(cls.manager)._generate(None, "bad input", cls.expiry)

    def _get(self, params, key=None):
        params = dict(params)
        path = API + params.pop("PATH", "")
        placeholders = {"FOREIGN_USER": self.foreign_user.id, "FOREIGN_PROVIDER": self.foreign_provider.id}
        params = {name: placeholders.get(value, value) for name, value in params.items()}
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = self.url_open(f"{path}?{urlencode(params)}" if params else path, headers=headers)
        self.assertEqual(response.headers["Content-Type"].split(";")[0], "application/json", response.text)
        return response.status_code, response.json()

    def _row_counts(self):
        self.env.flush_all()
        counts = {}
        for name, model in self.env.registry.items():
            if name.startswith("ai.") and model._auto and not model._abstract:
                self.env.cr.execute(SQL("SELECT count(*) FROM %s", SQL.identifier(model._table)))
                counts[name] = self.env.cr.fetchone()[0]
        return counts

    def test_malformed_requests_get_a_clear_json_error(self):
        before = self._row_counts()
        for label, params, status, fragment in API_CASES:
            with self.subTest(label):
                got, body = self._get(params, key=self.manager_key)
                self.assertEqual(got, status, body)
                self.assertIn(fragment, body["error"]["message"])
                self.assertLess(len(body["error"]["message"]), 600)
                self.assertNotIn("Traceback", json.dumps(body))
        self.assertEqual(self._row_counts(), before)

    def test_injection_in_a_text_filter_is_a_plain_value(self):
        """An operation is free text: an injection attempt matches no operation, and changes nothing."""
        before = self._row_counts()
        status, body = self._get({"operation": INJECTION}, key=self.manager_key)
        self.assertEqual((status, body["total_requests"], body["filters"]["operation"]), (200, 0, INJECTION))
        self.assertEqual(self._row_counts(), before)
        _status, body = self._get({}, key=self.manager_key)
        self.assertEqual(body["total_requests"], len(self.usages), "another company's rows never count")

    def test_missing_and_revoked_keys_are_refused(self):
        status, body = self._get({})
        self.assertEqual(status, 401)
        self.assertIn("message", body["error"])
        Keys = self.env["res.users.apikeys"].with_user(self.manager)
        key = Keys._generate(None, "to revoke", self.expiry)
        status, body = self._get({}, key=key)
        self.assertEqual((status, body["total_requests"]), (200, len(self.usages)))
        Keys.search([("name", "=", "to revoke"), ("user_id", "=", self.manager.id)])._remove()
        status, body = self._get({}, key=key)
        self.assertEqual(status, 401, body)
        self.assertNotIn("total_requests", body)
        status, _body = self._get({}, key=self.manager_key)
        self.assertEqual(status, 200, "revoking one key leaves the others")
