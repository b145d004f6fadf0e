import csv
import datetime
import io
import json
import re
from decimal import Decimal
from urllib.parse import urlencode

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tests import HttpCase, new_test_user

from .common import MONTH_END, MONTH_START, AnalyticCase

# FOCUS 1.2 (focus.finops.org, "Column requirement level: Mandatory"): the columns every dataset must have,
# and their data types. Written from the specification, not from the export.
FOCUS_12_MANDATORY = {
    "BilledCost": "Decimal", "BillingAccountId": "String", "BillingAccountName": "String",
    "BillingCurrency": "String", "BillingPeriodEnd": "Date/Time", "BillingPeriodStart": "Date/Time",
    "ChargeCategory": "String", "ChargeClass": "String", "ChargeDescription": "String",
    "ChargePeriodEnd": "Date/Time", "ChargePeriodStart": "Date/Time", "ContractedCost": "Decimal",
    "EffectiveCost": "Decimal", "InvoiceIssuerName": "String", "ListCost": "Decimal",
    "PricingQuantity": "Decimal", "PricingUnit": "String", "ProviderName": "String", "PublisherName": "String",
    "ServiceCategory": "String", "ServiceName": "String",
}
# Conditional columns the ledger fills: consumed tokens, the model as SKU, the tags.
FOCUS_12_FILLED = {"ConsumedQuantity": "Decimal", "ConsumedUnit": "String", "SkuId": "String", "Tags": "JSON"}
# FOCUS date-times: ISO 8601 in UTC ("Z"); decimals: plain numbers; currencies: ISO 4217 codes.
ISO_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
ISO_4217 = re.compile(r"[A-Z]{3}")
# FOCUS 1.2 ChargeCategory values, and the ServiceCategory values.
CHARGE_CATEGORIES = {"Adjustment", "Credit", "Purchase", "Tax", "Usage"}
AI_SERVICE_CATEGORY = "AI and Machine Learning"


class FocusCase(AnalyticCase):
    def calls(self):
        """Spend in March: priced calls of two operations, one call of an unpriced model."""
        self.Rule.create({"name": "Leads", "operation": "lead_qualification",
                          "analytic_distribution": {str(self.sales.id): 30, str(self.rnd.id): 70}})
        usages = self.usage(MONTH_START, 0.25, "lead_qualification") + self.usage(MONTH_START, 0.5, "chat")
        usages += self.usage(MONTH_START + datetime.timedelta(days=3), 1.125, "lead_qualification")
        unknown = self.usage(MONTH_START, 0.0, "chat")
        unknown.write({"cost_unknown": True, "model": "unpriced-model"})
        self.Rule.post_analytic_lines(MONTH_START, MONTH_END)
        return usages + unknown

    def check_dataset(self, text, usages):
        rows = list(csv.DictReader(io.StringIO(text)))
        self.assertTrue(rows)
        for column, kind in {**FOCUS_12_MANDATORY, **FOCUS_12_FILLED}.items():
            self.assertIn(column, rows[0], column)
            for row in rows:
                value = row[column]
                if kind == "Decimal" and value:
                    Decimal(value)
                elif kind == "Date/Time":
                    self.assertRegex(value, ISO_UTC, column)
                elif kind == "JSON":
                    self.assertIsInstance(json.loads(value), dict)
        for row in rows:
            self.assertRegex(row["BillingCurrency"], ISO_4217)
            self.assertEqual(row["BillingCurrency"], "USD")
            self.assertIn(row["ChargeCategory"], CHARGE_CATEGORIES)
            self.assertEqual(row["ServiceCategory"], AI_SERVICE_CATEGORY)
            self.assertEqual(row["BilledCost"], row["EffectiveCost"])
            self.assertLess(row["ChargePeriodStart"], row["ChargePeriodEnd"])
        keys = [(row["ChargePeriodStart"], row["ProviderName"], row["SkuId"], json.loads(row["Tags"])["ai_operation"])
                for row in rows]
        self.assertEqual(len(keys), len(set(keys)), "one row per day, provider, model and operation")
        billed = sum(Decimal(row["BilledCost"]) for row in rows if row["BilledCost"])
        self.assertAlmostEqual(float(billed), sum(usages.mapped("cost_usd")), places=9)
        unknown = [row for row in rows if json.loads(row["Tags"]).get("ai_cost_unknown") == "true"]
        self.assertEqual([(row["SkuId"], row["BilledCost"]) for row in unknown], [("unpriced-model", "")])
        lead = next(json.loads(row["Tags"]) for row in rows
                    if row["ChargePeriodStart"].startswith("2026-03-01") and "lead" in row["Tags"])
        self.assertEqual(
            {tag: Decimal(value) for tag, value in lead.items() if tag.startswith("analytic:")},
            {"analytic:Departments (test):Sales": 30, "analytic:Departments (test):R&D": 70},
        )
        return rows


class TestFocusExport(FocusCase):
    def test_rows_have_the_focus_columns_and_sum_to_the_ledger(self):
        usages = self.calls()
        text = self.env["ai.cost.focus.export"]._focus_csv(MONTH_START, MONTH_END, self.env.company)
        rows = self.check_dataset(text, usages)
        self.assertEqual(len(rows), 4)

    def test_reporting_action_downloads_the_api_csv(self):
        wizard = self.env["ai.cost.focus.export"].with_user(self.manager).create(
            {"date_from": MONTH_START, "date_to": MONTH_END}
        )
        action = wizard.action_export()
        self.assertEqual(action["url"], "/ai_cost/api/v1/focus?start=2026-03-01&end=2026-03-31")
        with self.assertRaisesRegex(ValidationError, "first day comes after its last day"):
            wizard.date_from = MONTH_END + datetime.timedelta(days=1)


class TestFocusApi(FocusCase, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        expiry = fields.Datetime.now() + datetime.timedelta(days=1)
        cls.key = cls.env["res.users.apikeys"].with_user(cls.manager)._generate(None, "focus test", expiry)
        basic = new_test_user(
            cls.env, login="ai_focus_basic", groups="base.group_user,ai_cost_optimizer.group_ai_cost_user"
        )
        cls.basic_key = cls.env["res.users.apikeys"].with_user(basic)._generate(None, "focus test", expiry)

    def get(self, key=None, **params):
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return self.url_open(f"/ai_cost/api/v1/focus?{urlencode(params)}", headers=headers)

    def test_api_serves_the_dataset(self):
        usages = self.calls()
        response = self.get(start="2026-03-01", end="2026-03-31")
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.headers["Content-Type"].split(";")[0], "text/csv")
        self.check_dataset(response.text, usages)

    def test_bad_dates_and_callers_are_refused_in_json(self):
        for params in ({"start": "2026-02-30", "end": "2026-03-31"}, {"start": "2026-03-31", "end": "2026-03-01"},
                       {"start": "yesterday"}, {"start": "2026-03-01", "currency": "EUR"}):
            response = self.get(**params)
            self.assertEqual(response.status_code, 400, params)
            self.assertIn("error", response.json())
        self.assertEqual(self.get(key=self.basic_key, start="2026-03-01").status_code, 403)
        self.assertEqual(self.get(key="not-a-key", start="2026-03-01").status_code, 401)
