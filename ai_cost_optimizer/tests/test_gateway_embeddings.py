from odoo import Command
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from ..core.tokens import count_text_tokens
from ..exceptions import AiBudgetExceeded, AiProviderError
from ..models import ai_service_dispatch
from .common import AiCostCase, genai_price_of

# genai-prices finds this model's price by its name alone (the fake provider's URL names no provider).
MODEL = "mistral-embed"
TEXTS = ["ACME Corp, 500 seats, budget approved.", "Globex: renewal due in March.", "Initech wants a demo."]


@tagged("post_install", "-at_install")
class TestGatewayEmbeddings(AiCostCase):
    """embed() through /v1/embeddings of the fake provider: vectors, the usage row of kind 'embedding' priced by
    genai-prices, budgets, batches, and a run's cost with session_cost."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.embedder = cls.env["ai.service.provider"].create(
            cls._provider_vals(cls.fake, "openai_compatible", name="Embeddings (fake)", model=MODEL)
        )

    def _embed(self, texts=TEXTS, **kwargs):
        return self.env["ai.service"].embed(texts, **{"provider": self.embedder, "operation": "lead_search", **kwargs})

    def test_vectors_and_a_priced_embedding_row(self):
        result = self._embed(res_model="res.partner", res_id=7, session_id="run-1")
        self.assertEqual(len(result["vectors"]), 3)
        self.assertEqual(len({tuple(vector) for vector in result["vectors"]}), 3)
        sent = self.fake.requests[-1]
        self.assertEqual((sent["path"], sent["json"]["input"]), ("/v1/embeddings", TEXTS))
        row = self.env["ai.token.usage"].browse(result["usage_id"])
        reported = self.fake.last_usage["prompt_tokens"]
        self.assertEqual((row.kind, row.status, row.input_tokens, row.output_tokens), ("embedding", "ok", reported, 0))
        self.assertEqual((row.operation, row.res_model, row.res_id, row.session_id),
                         ("lead_search", "res.partner", 7, "run-1"))
        expected = genai_price_of(MODEL, "mistral", {
            "input_tokens": reported, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0,
        })
        self.assertGreater(expected, 0)
        self.assertAlmostEqual(row.cost_usd, expected, places=12)
        self.assertAlmostEqual(result["cost_usd"], expected, places=12)
        self.assertEqual(row.estimated_input_tokens,
                         sum(count_text_tokens(text, MODEL).tokens for text in TEXTS))
        self.assertFalse(row.cost_unknown or result["usage_estimated"])

    def test_unpriced_model_is_cost_unknown(self):
        local = self.env["ai.service.provider"].create(
            self._provider_vals(self.fake, "openai_compatible", name="Local embedder", model="nomic-embed-local")
        )
        result = self._embed(provider=local)
        row = self.env["ai.token.usage"].browse(result["usage_id"])
        self.assertTrue(row.cost_unknown and result["cost_unknown"])
        self.assertGreater(row.input_tokens, 0)

    def test_long_lists_go_in_batches_in_order(self):
        texts = [f"Lead number {index} asks for a quote." for index in range(7)]
        self.patch(ai_service_dispatch, "EMBED_BATCH_TEXTS", 3)
        result = self._embed(texts)
        requests = [request["json"]["input"] for request in self.fake.requests]
        self.assertEqual(requests, [texts[0:3], texts[3:6], texts[6:7]])
        single = [self._embed([text])["vectors"][0] for text in texts[:4]]
        self.assertEqual(result["vectors"][:4], single)
        row = self.env["ai.token.usage"].browse(result["usage_id"])
        self.assertEqual(row.input_tokens, sum(count_text_tokens(text).tokens for text in texts))

    def test_budget_holds_settles_and_blocks(self):
        budget = self.env["ai.cost.budget"].create({
            "name": "Embeddings", "budget_amount": 100.0, "provider_ids": [Command.set(self.embedder.ids)],
        })
        result = self._embed()
        self.env.invalidate_all()
        period = budget.period_ids
        self.assertEqual(period.reserved, 0)
        self.assertAlmostEqual(period.spend, result["cost_usd"], places=12)
        self.assertEqual(period.call_count, 1)
        self.assertGreater(result["budget"]["estimated_cost"], 0)
        budget.write({"budget_amount": result["cost_usd"] / 2, "block_at_threshold": 100})
        before = len(self.usage_rows())
        try:
            self._embed()
        except AiBudgetExceeded as error:
            self.assertIn("Embeddings", str(error))
        else:
            self.fail("a budget over its limit must block an embedding call")
        rows = self.usage_rows()
        self.assertEqual(len(rows), before + 1)
        self.assertEqual((rows[-1].kind, rows[-1].status), ("embedding", "blocked"))

    def test_failed_embedding_releases_and_records(self):
        self.fake.queue_responses([{"status": 503}, {"status": 503}])
        before = len(self.usage_rows())
        try:
            self._embed()
        except AiProviderError as error:
            self.assertIn("Embeddings (fake)", str(error))
        else:
            self.fail("a failing provider must raise AiProviderError")
        rows = self.usage_rows()[before:]
        self.assertEqual(len(rows), 2)
        self.assertEqual(set(rows.mapped("kind")), {"embedding"})
        self.assertEqual(sum(rows.mapped("cost_usd")), 0)

    def test_failure_after_paid_batches_records_their_cost(self):
        self.patch(ai_service_dispatch, "EMBED_BATCH_TEXTS", 2)
        self.fake.queue_responses([{}, {"status": 400, "message": "too long"}])
        before = len(self.usage_rows())
        try:
            self._embed()
        except AiProviderError:
            pass
        else:
            self.fail("a failed batch must raise AiProviderError")
        paid = self.usage_rows()[before:].filtered(lambda row: row.cost_usd > 0)
        self.assertEqual(len(paid), 1)
        self.assertEqual(paid.status, "error")
        self.assertIn("2 of 3 texts embedded", paid.error_message)

    def test_bad_input_is_refused(self):
        cases = [
            ("texts str", {"texts": "hello"}, "must be a list"),
            ("texts empty", {"texts": []}, "empty"),
            ("text blank", {"texts": ["  "]}, "Text 0 is empty"),
            ("text int", {"texts": ["ok", 3]}, "Text 1 must be a string"),
            ("anthropic provider", {"provider": self.claude}, "serves no embeddings"),
            ("bad session", {"session_id": "a\nb"}, "session_id"),
        ]
        for label, kwargs, fragment in cases:
            with self.subTest(label):
                before = len(self.usage_rows())
                texts = kwargs.pop("texts", TEXTS)
                try:
                    self._embed(texts, **kwargs)
                except UserError as error:
                    self.assertIn(fragment, str(error))
                else:
                    self.fail(f"{label} must be refused")
                rows = self.usage_rows()
                self.assertEqual(len(rows), before + 1)
                self.assertEqual((rows[-1].kind, rows[-1].status, rows[-1].cost_usd), ("embedding", "error", 0.0))
        self.assertFalse(self.fake.requests)

    def test_session_cost_sums_chat_and_embeddings(self):
        chat = self.env["ai.service"].send_message(
            [{"role": "user", "content": "Summarize lead 42."}], provider=self.gpt, session_id="run-7"
        )
        with self.env["ai.service"].stream_message(
            [{"role": "user", "content": "Draft the reply."}], provider=self.claude, session_id="run-7"
        ) as stream:
            list(stream)
        first = self._embed(session_id="run-7")
        second = self._embed(TEXTS[:1], session_id="run-7")
        self._embed(session_id="another-run")
        cost = self.env["ai.token.usage"].session_cost("run-7")
        self.assertEqual((cost["chat"]["calls"], cost["embedding"]["calls"], cost["total"]["calls"]), (2, 2, 4))
        self.assertAlmostEqual(cost["chat"]["cost_usd"], chat["cost_usd"] + stream.result["cost_usd"], places=12)
        self.assertAlmostEqual(cost["embedding"]["cost_usd"], first["cost_usd"] + second["cost_usd"], places=12)
        self.assertAlmostEqual(cost["total"]["cost_usd"], cost["chat"]["cost_usd"] + cost["embedding"]["cost_usd"],
                               places=12)
        self.assertEqual(cost["embedding"]["input_tokens"],
                         first["usage"]["input_tokens"] + second["usage"]["input_tokens"])
        self.assertEqual(cost["embedding"]["output_tokens"], 0)
        self.assertGreater(cost["chat"]["output_tokens"], 0)
        self.assertEqual(self.env["ai.token.usage"].session_cost("nothing-here")["total"]["calls"], 0)
        for bad in (None, "", 42, "x" * 300):
            with self.subTest(bad=bad), self.assertRaises(ValidationError):
                self.env["ai.token.usage"].session_cost(bad)
