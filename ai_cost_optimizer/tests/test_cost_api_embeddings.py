from datetime import timedelta

from odoo import fields
from odoo.tests import HttpCase, new_test_user, tagged

from .common import AiCostCase


@tagged("post_install", "-at_install")
class TestCostApiEmbeddings(HttpCase):
    """The API's per-user summary gives each user's embedding calls apart: their requests, tokens and dollars,
    from the rollups the gateway keeps."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = new_test_user(
            cls.env, login="ai_api_embed_manager", groups="base.group_user,ai_cost_optimizer.group_ai_cost_manager"
        )
        cls.analyst = new_test_user(cls.env, login="ai_api_embed_user", groups="ai_cost_optimizer.group_ai_cost_user")
        cls.provider = cls.env["ai.service.provider"].create({
            "name": "Embeddings (test)", "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1",
            "model": "mistral-embed",
        })
        specs = [  # (user, kind, input tokens, cost)
            (cls.analyst, "embedding", 1200, 0.00012),
            (cls.analyst, "embedding", 800, 0.00008),
            (cls.analyst, "chat", 300, 0.003),
            (cls.manager, "chat", 100, 0.001),
        ]
        cls.env["ai.token.usage"].create([
            {"provider_id": cls.provider.id, "model": "mistral-embed", "user_id": user.id, "kind": kind,
             "input_tokens": tokens, "cost_usd": cost, "status": "ok"}
            for user, kind, tokens, cost in specs
        ])
        expiry = fields.Datetime.now() + timedelta(days=1)
        cls.key = cls.env["res.users.apikeys"].with_user(cls.manager)._generate(None, "api test", expiry)

    def test_user_summary_gives_the_embedding_figures(self):
        response = self.url_open("/ai_cost/api/v1/costs/users", headers={"Authorization": f"Bearer {self.key}"})
        self.assertEqual(response.status_code, 200, response.text)
        users = {row["user_id"]: row for row in response.json()["users"]}
        analyst, manager = users[self.analyst.id], users[self.manager.id]
        self.assertEqual(
            (analyst["requests"], analyst["embedding_requests"], analyst["embedding_tokens"]), (3, 2, 2000)
        )
        self.assertAlmostEqual(analyst["embedding_cost_usd"], 0.0002, places=10)
        self.assertAlmostEqual(analyst["cost_usd"], 0.0032, places=10)
        self.assertEqual((manager["embedding_requests"], manager["embedding_tokens"]), (0, 0))
        self.assertEqual(manager["embedding_cost_usd"], 0.0)


# The gateway's rows feed the same figures: an embedding call moves the rollups as it is recorded.
@tagged("post_install", "-at_install")
class TestEmbeddingRollups(AiCostCase):
    def test_an_embedding_call_moves_the_rollups(self):
        embedder = self.env["ai.service.provider"].create(
            self._provider_vals(self.fake, "openai_compatible", name="Embedder", model="mistral-embed")
        )
        result = self.env["ai.service"].embed(["ACME Corp, 500 seats."], provider=embedder)
        self.env.invalidate_all()
        daily = self.env["ai.token.usage.daily"].search([("provider_id", "=", embedder.id)])
        self.assertEqual((daily.call_count, daily.embedding_call_count), (1, 1))
        self.assertEqual(daily.embedding_tokens, result["usage"]["input_tokens"])
        self.assertAlmostEqual(daily.embedding_cost_usd, result["cost_usd"], places=12)
        self.assertGreater(daily.embedding_cost_usd, 0)
