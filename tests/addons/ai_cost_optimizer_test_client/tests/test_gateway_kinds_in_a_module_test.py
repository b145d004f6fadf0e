from odoo import Command
from odoo.addons.ai_cost_optimizer.tests.fake_provider import FakeProviderServer
from odoo.tests import TransactionCase, new_test_user, tagged


@tagged("post_install", "-at_install")
class TestGatewayKindsInAModuleTest(TransactionCase):
    """Another module's plain TransactionCase streams an answer, has a tool called and embeds texts through
    the gateway: each call is served and recorded, its budget settled, and its rows stay in the test's
    transaction."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fake = FakeProviderServer().start()
        cls.addClassCleanup(cls.fake.stop)
        Provider = cls.env["ai.service.provider"]
        vals = {"kind": "openai_compatible", "base_url": cls.fake.openai_base_url, "api_key": "sk-test-client",
                "timeout": 5, "max_retries": 1}
        cls.chat = Provider.create({**vals, "name": "Module chat", "model": "gpt-4o-mini"})
        cls.embedder = Provider.create({**vals, "name": "Module embedder", "model": "mistral-embed"})
        cls.budget = cls.env["ai.cost.budget"].create({
            "name": "Module kinds budget", "budget_amount": 10,
            "provider_ids": [Command.set((cls.chat | cls.embedder).ids)],
        })
        cls.user = new_test_user(
            cls.env, login="ai_test_client_kinds", groups="base.group_user,ai_cost_optimizer.group_ai_cost_user"
        )

    def _committed_usage_count(self):
        with self.registry.cursor() as cr:
            cr.execute('SELECT count(*) FROM "ai_token_usage"')
            return cr.fetchone()[0]

    def test_stream_tool_call_and_embeddings(self):
        before = self._committed_usage_count()
        service = self.env(user=self.user)["ai.service"]
        messages = [{"role": "user", "content": "Welcome the new customer in two lines."}]
        with service.stream_message(messages, provider=self.chat.id, session_id="onboarding-1") as stream:
            text = "".join(stream)
        self.assertEqual(text, stream.result["content"])
        self.fake.set_tool_calls([{"name": "create_task", "arguments": {"title": "Call back"}}])
        tool = {"name": "create_task", "parameters": {"type": "object", "properties": {"title": {"type": "string"}}}}
        called = service.send_message(messages, provider=self.chat.id, tools=[tool], session_id="onboarding-1")
        self.assertEqual(called["tool_calls"][0]["arguments"], {"title": "Call back"})
        embedded = service.embed([text], provider=self.embedder.id, session_id="onboarding-1")
        self.assertEqual(len(embedded["vectors"]), 1)

        cost = self.env["ai.token.usage"].session_cost("onboarding-1")
        self.assertEqual((cost["chat"]["calls"], cost["embedding"]["calls"]), (2, 1))
        spent = stream.result["cost_usd"] + called["cost_usd"] + embedded["cost_usd"]
        self.assertAlmostEqual(cost["total"]["cost_usd"], spent, places=10)
        self.assertAlmostEqual(self.budget.current_spend, spent, places=8)
        self.assertEqual(self._committed_usage_count(), before, "nothing committed outside the test's transaction")
