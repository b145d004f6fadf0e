"""Access matrix: every model of the gateway against every kind of user, plus the API key, other
users' usage and other companies' data."""

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import AiCostCase

GROUPS = {
    "portal": "base.group_portal",
    "internal": "base.group_user",
    "user": "base.group_user,ai_cost_optimizer.group_ai_cost_user",
    "manager": "base.group_user,ai_cost_optimizer.group_ai_cost_manager,base.group_allow_export",
    # Settings rights alone do not open the AI ledger...
    "system": "base.group_user,base.group_system,base.group_allow_export",
    # ...the administrator of a database is both (base.user_admin is made AI Cost Manager on install).
    "admin": "base.group_user,base.group_system,ai_cost_optimizer.group_ai_cost_manager",
}

# r(ead) w(rite) c(reate) u(nlink), for records of the user's own company (and own usage rows).
EXPECTED = {
    "ai.service.provider": {
        "portal": "", "internal": "", "user": "r", "manager": "rwcu", "system": "", "admin": "rwcu",
    },
    "ai.service.provider.price": {
        "portal": "", "internal": "", "user": "r", "manager": "rwcu", "system": "", "admin": "rwcu",
    },
    # A user writes only the rating of their own calls (see test_users_only_rate_their_calls).
    "ai.token.usage": {
        "portal": "", "internal": "", "user": "rw", "manager": "rwcu", "system": "", "admin": "rwcu",
    },
    "ai.task.type": {
        "portal": "", "internal": "", "user": "r", "manager": "rwcu", "system": "", "admin": "rwcu",
    },
}


@tagged("post_install", "-at_install")
class TestAccess(AiCostCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.users = {role: new_test_user(cls.env, f"access_{role}", groups=groups) for role, groups in GROUPS.items()}
        cls.other_company = cls.env["res.company"].create({"name": "Other AI Co"})
        cls.foreign = cls.env["ai.service.provider"].create(
            cls._provider_vals(cls.fake, "openai_compatible", name="Foreign", company_id=cls.other_company.id)
        )

    # -- one record per model, as the superuser -------------------------------------------------

    def make(self, model, owner=None):
        """A fresh record of `model` in the main company (a usage row of `owner`)."""
        values = self.create_values(model, owner)
        return self.env[model].create(values)

    def create_values(self, model, owner=None):
        if model == "ai.service.provider":
            return self._provider_vals(self.fake, "openai_compatible", name="Matrix", api_key="sk-test-matrix")
        if model == "ai.service.provider.price":
            return {"provider_id": self.gpt.id, "input_price": 1.0, "output_price": 2.0}
        if model == "ai.token.usage":
            return {"user_id": (owner or self.env.user).id, "provider_id": self.gpt.id, "cost_usd": 0.001}
        self._task_codes = getattr(self, "_task_codes", 0) + 1
        return {"name": "Matrix task", "code": f"matrix_{self._task_codes}"}

    WRITES = {
        "ai.service.provider": {"sequence": 5},
        "ai.service.provider.price": {"source_detail": "checked"},
        "ai.token.usage": {"feedback": "Useful answer."},
        "ai.task.type": {"sequence": 7},
    }

    def rights(self, model, user):
        """The operations `user` may do on `model`, as a string like EXPECTED's."""
        record = self.make(model, owner=user).with_user(user)
        operations = {
            "r": lambda: record.read(["display_name"]),
            "w": lambda: record.write(self.WRITES[model]),
            "c": lambda: self.env[model].with_user(user).create(self.create_values(model, user)),
            "u": lambda: self.make(model, owner=user).with_user(user).unlink(),
        }
        granted = ""
        for letter, operation in operations.items():
            try:
                operation()
            except AccessError:
                continue
            granted += letter
        return granted

    # -- the matrix -----------------------------------------------------------------------------

    def test_access_matrix(self):
        for model, expected_by_role in EXPECTED.items():
            for role, expected in expected_by_role.items():
                with self.subTest(model=model, role=role):
                    self.assertEqual(self.rights(model, self.users[role]), expected)

    def test_users_only_rate_their_calls(self):
        user = self.users["user"]
        row = self.make("ai.token.usage", owner=user).with_user(user)
        row.write({"quality_score": 90, "feedback": "Right on."})
        for tampering in ({"cost_usd": 0.0}, {"status": "error"}, {"user_id": self.users["manager"].id}):
            with self.subTest(tampering=tampering), self.assertRaises(AccessError):
                row.write(tampering)
        self.assertEqual((row.sudo().cost_usd, row.sudo().quality_score), (0.001, 90))
        self.make("ai.token.usage", owner=user).with_user(self.users["manager"]).write({"cost_usd": 0.002})

    # -- the API key ----------------------------------------------------------------------------

    def test_api_key_never_reaches_non_admins(self):
        for role in ("user", "manager"):
            provider = self.gpt.with_user(self.users[role])
            with self.subTest(role=role):
                self.assertNotIn("api_key", provider.fields_get())
                self.assertNotIn("api_key", provider.search_read([("id", "=", self.gpt.id)])[0])
                self.assertNotIn("api_key", provider.read()[0])
                self.assertNotIn("api_key", provider.web_read({"name": {}, "has_api_key": {}})[0])
                self.assertTrue(provider.has_api_key)
                for leak in (
                    lambda p: p.read(["api_key"]),
                    lambda p: p.search_read([], ["api_key"]),
                    lambda p: p.web_read({"api_key": {}}),
                    lambda p: p.web_search_read([], {"api_key": {}}),
                    lambda p: p.search([("api_key", "=like", "sk-test%")]),
                    lambda p: p._read_group([], ["api_key"], ["__count"]),
                ):
                    with self.assertRaises(AccessError):
                        leak(provider)
        manager = self.gpt.with_user(self.users["manager"])
        with self.assertRaises(AccessError):
            manager.export_data(["name", "api_key"])
        self.assertNotIn("sk-test-openai", str(manager.export_data(["name", "model"])))
        admin = self.gpt.with_user(self.users["admin"])
        self.assertEqual(admin.read(["api_key"])[0]["api_key"], "sk-test-openai")

    def test_api_key_cannot_be_written_by_managers_without_settings_rights(self):
        with self.assertRaises(AccessError):
            self.gpt.with_user(self.users["manager"]).write({"api_key": "sk-test-hijack"})
        self.assertEqual(self.gpt.api_key, "sk-test-openai")

    # -- other users, other companies -----------------------------------------------------------

    def test_other_users_usage_is_invisible(self):
        alice, manager = self.users["user"], self.users["manager"]
        own = self.make("ai.token.usage", owner=alice)
        other = self.make("ai.token.usage", owner=manager)
        Usage = self.env["ai.token.usage"].with_user(alice)
        self.assertEqual(Usage.search([("id", "in", (own | other).ids)]), own)
        self.assertEqual(Usage.search_count([("user_id", "=", manager.id)]), 0)
        self.assertFalse(Usage._read_group([("id", "=", other.id)], [], ["cost_usd:sum"])[0][0])
        for operation in (lambda r: r.read(["cost_usd"]), lambda r: r.write({"feedback": "x"})):
            with self.assertRaises(AccessError):
                operation(other.with_user(alice))
        self.assertEqual(self.env["ai.token.usage"].with_user(manager).search([("id", "in", (own | other).ids)]),
                         own | other)

    def test_other_company_data_is_invisible(self):
        foreign_usage = self.env["ai.token.usage"].create(
            {"user_id": self.users["manager"].id, "provider_id": self.foreign.id, "company_id": self.other_company.id}
        )
        foreign_price = self.foreign.price_ids[:1]
        self.assertTrue(foreign_price, "genai-prices knows gpt-4o-mini: the foreign provider has a price version")
        for role in ("user", "manager", "admin"):
            user = self.users[role]
            with self.subTest(role=role):
                for record in (self.foreign, foreign_price, foreign_usage):
                    self.assertFalse(self.env[record._name].with_user(user).search([("id", "=", record.id)]))
                    with self.assertRaises(AccessError):
                        record.with_user(user).read(["display_name"])
        with self.assertRaises(AccessError):
            self.env["ai.service.provider"].with_user(self.users["manager"]).create(
                self._provider_vals(self.fake, "openai_compatible", company_id=self.other_company.id)
            )
