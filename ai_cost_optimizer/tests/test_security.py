from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import AiCostCase


@tagged("post_install", "-at_install")
class TestSecurity(AiCostCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alice = new_test_user(cls.env, "alice_ai", groups="base.group_user,ai_cost_optimizer.group_ai_cost_user")
        cls.bob = new_test_user(cls.env, "bob_ai", groups="base.group_user,ai_cost_optimizer.group_ai_cost_user")
        cls.manager = new_test_user(
            cls.env, "manager_ai", groups="base.group_user,ai_cost_optimizer.group_ai_cost_manager"
        )

    def _call_as(self, user):
        return self.env["ai.service"].with_user(user).send_message(
            [{"role": "user", "content": f"Hello from {user.login}"}], provider=self.gpt.id
        )

    def test_api_key_readable_by_system_admins_only(self):
        for user in (self.alice, self.manager):
            provider = self.gpt.with_user(user)
            with self.assertRaises(AccessError):
                provider.read(["api_key"])
            self.assertNotIn("api_key", provider.search_read([("id", "=", self.gpt.id)])[0])
            self.assertTrue(provider.has_api_key)
        self.assertEqual(self.gpt.with_user(self.env.ref("base.user_admin")).api_key, "sk-test-openai")

    def test_users_see_only_their_own_usage(self):
        alice_row = self._call_as(self.alice)["usage_id"]
        bob_row = self._call_as(self.bob)["usage_id"]
        Usage = self.env["ai.token.usage"]
        self.assertEqual(Usage.with_user(self.alice).search([("id", "in", [alice_row, bob_row])]).ids, [alice_row])
        with self.assertRaises(AccessError):
            Usage.with_user(self.alice).browse(bob_row).read(["cost_usd"])
        self.assertEqual(
            set(Usage.with_user(self.manager).search([("id", "in", [alice_row, bob_row])]).ids), {alice_row, bob_row}
        )

    def test_users_cannot_manage_providers(self):
        with self.assertRaises(AccessError):
            self.gpt.with_user(self.alice).write({"quality_score": 10})
        self.gpt.with_user(self.manager).write({"quality_score": 90})
        self.assertEqual(self.gpt.quality_score, 90)

    def test_other_company_data_is_invisible(self):
        other = self.env["res.company"].create({"name": "Other AI Co"})
        foreign = self.env["ai.service.provider"].create(
            self._provider_vals(self.fake, "openai_compatible", name="Foreign", company_id=other.id)
        )
        self.assertFalse(self.env["ai.service.provider"].with_user(self.manager).search([("id", "=", foreign.id)]))
        with self.assertRaisesRegex(Exception, "another company|Unknown"):
            self.env["ai.service"].with_user(self.manager).send_message(
                [{"role": "user", "content": "Hi"}], provider=foreign.id
            )
