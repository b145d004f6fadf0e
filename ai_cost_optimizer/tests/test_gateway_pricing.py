import genai_prices

from odoo.exceptions import UserError
from odoo.tests import Form, tagged

from ..core.tokens import count_message_tokens
from ..exceptions import AiProviderError
from .common import AiCostCase, genai_price_of

# A long-context call: above the 200k-token tier of both families.
LONG_ANTHROPIC_USAGE = {"input_tokens": 300_000, "output_tokens": 2_000}
LONG_OPENAI_USAGE = {"prompt_tokens": 300_000, "completion_tokens": 2_000, "total_tokens": 302_000}
ASK = [{"role": "user", "content": "Summarize the attached contract."}]


@tagged("post_install", "-at_install")
class TestGatewayPricing(AiCostCase):
    """Each call priced by genai-prices' own calculation under the provider's price list; limits from the
    model data, and no refusal on a guess where they are unknown."""

    def _provider(self, kind, **overrides):
        return self.env["ai.service.provider"].create(self._provider_vals(self.fake, kind, **overrides))

    def _row(self, result):
        return self.env["ai.token.usage"].browse(result["usage_id"])

    def _genai_cost(self, row, model, provider_id):
        """genai-prices' price of the row's tokens at the row's time."""
        usage = {name: row[name] for name in (
            "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens"
        )}
        return genai_price_of(model, provider_id, usage, at=row.create_date)

    def test_long_context_call_costs_what_genai_prices_computes(self):
        sonnet = self._provider("anthropic", name="Sonnet 4.5 (fake)", model="claude-sonnet-4-5")
        self.fake.queue_responses([{"usage": LONG_ANTHROPIC_USAGE}])
        row = self._row(self.env["ai.service"].send_message(ASK, provider=sonnet))
        self.assertEqual((row.input_tokens, row.output_tokens), (300_000, 2_000))
        self.assertAlmostEqual(row.cost_usd, self._genai_cost(row, "claude-sonnet-4-5", "anthropic"), places=12)
        self.assertAlmostEqual(row.cost_usd, 1.845, places=12)
        self.assertFalse(row.cost_unknown)

        gemini = self._provider(
            "openai_compatible", name="Gemini 2.5 Pro (fake)", model="gemini-2.5-pro", price_provider="google"
        )
        self.fake.queue_responses([{"usage": LONG_OPENAI_USAGE}])
        row = self._row(self.env["ai.service"].send_message(ASK, provider=gemini))
        self.assertAlmostEqual(row.cost_usd, self._genai_cost(row, "gemini-2.5-pro", "google"), places=12)
        self.assertAlmostEqual(row.cost_usd, 0.78, places=12)

    def test_streamed_long_context_call_and_recompute_keep_genai_prices(self):
        sonnet = self._provider("anthropic", name="Sonnet 4.5 (fake)", model="claude-sonnet-4-5")
        self.fake.queue_responses([{"usage": LONG_ANTHROPIC_USAGE}])
        with self.env["ai.service"].stream_message(ASK, provider=sonnet) as stream:
            "".join(stream)
        row = self._row(stream.result)
        self.assertAlmostEqual(row.cost_usd, 1.845, places=12)
        row.cost_usd = 0.0
        row._recompute_cost()
        self.assertAlmostEqual(row.cost_usd, self._genai_cost(row, "claude-sonnet-4-5", "anthropic"), places=12)

    def test_one_hour_cache_writes_recorded_and_priced(self):
        sonnet = self._provider("anthropic", name="Sonnet 4.5 (fake)", model="claude-sonnet-4-5")
        reported = {
            "input_tokens": 40, "output_tokens": 500, "cache_read_input_tokens": 8_000,
            "cache_creation_input_tokens": 3_000,
            "cache_creation": {"ephemeral_5m_input_tokens": 1_000, "ephemeral_1h_input_tokens": 2_000},
        }
        self.fake.queue_responses([{"usage": reported}])
        row = self._row(self.env["ai.service"].send_message(ASK, provider=sonnet))
        self.assertEqual((row.cache_write_tokens, row.cache_write_1h_tokens), (3_000, 2_000))
        expected = genai_prices.extract_usage(
            {"model": "claude-sonnet-4-5", "usage": reported}, provider_id="anthropic"
        ).calc_price(genai_request_timestamp=row.create_date)
        self.assertAlmostEqual(row.cost_usd, float(expected.total_price), places=12)

    def test_manual_price_wins_with_its_rates(self):
        sonnet = self._provider("anthropic", name="Sonnet 4.5 (fake)", model="claude-sonnet-4-5")
        sonnet.write({"input_price": 1.0, "output_price": 2.0, "cache_read_price": 0.5, "cache_write_price": 1.0})
        self.fake.queue_responses([{"usage": LONG_ANTHROPIC_USAGE}])
        row = self._row(self.env["ai.service"].send_message(ASK, provider=sonnet))
        self.assertEqual(row.price_id.source, "manual")
        self.assertAlmostEqual(row.cost_usd, (300_000 * 1.0 + 2_000 * 2.0) / 1e6, places=12)

    def test_embedding_on_a_local_gateway_priced_under_its_price_list(self):
        local = self._provider(
            "openai_compatible", name="Local OpenAI gateway", model="text-embedding-3-small", price_provider="openai"
        )
        self.assertIn("127.0.0.1", local.base_url)
        result = self.env["ai.service"].embed(["ACME Corp, 500 seats.", "Globex renewal."], provider=local)
        row = self._row(result)
        self.assertFalse(row.cost_unknown or result["cost_unknown"])
        expected = self._genai_cost(row, "text-embedding-3-small", "openai")
        self.assertGreater(expected, 0)
        self.assertAlmostEqual(row.cost_usd, expected, places=12)
        self.assertIn("text-embedding-3-small", local.price_list_models)

        # The same endpoint without a price list: genai-prices cannot place this id by name alone.
        unpriced = self._provider("openai_compatible", name="No list", model="text-embedding-3-small")
        self.assertFalse(unpriced.price_provider)
        self.assertTrue(unpriced.cost_unknown)
        # Setting the price list re-syncs the prices, as a new version.
        unpriced.price_provider = "openai"
        self.assertFalse(unpriced.cost_unknown)
        self.assertEqual(unpriced.price_ids.price_provider, "openai")

    def test_unknown_model_stays_cost_unknown(self):
        private = self._provider(
            "openai_compatible", name="Private", model="acme-private-finetune-7", price_provider="openai"
        )
        self.assertTrue(private.cost_unknown)
        row = self._row(self.env["ai.service"].send_message(ASK, provider=private))
        self.assertTrue(row.cost_unknown)
        self.assertEqual(row.cost_usd, 0.0)
        self.assertGreater(row.input_tokens, 0)

    def test_free_provider_calls_cost_nothing_and_count_as_priced(self):
        self.fake.set_key_required(False)  # as Ollama
        local = self._provider(
            "openai_compatible", name="Llama (local Ollama)", model="llama3.1:8b", api_key=False,
            api_key_required=False,
        )
        self.assertTrue(local.cost_unknown, "genai-prices does not know a local model")
        unknown = self._row(self.env["ai.service"].send_message(ASK, provider=local))
        self.assertEqual((unknown.provider_id, unknown.cost_unknown), (local, True))

        local.price_source = "free"
        self.assertEqual((local.cost_unknown, local.input_price, local.output_price), (False, 0.0, 0.0))
        self.assertEqual(local.price_ids[:1].source, "free")
        row = self._row(self.env["ai.service"].send_message(ASK, provider=local))
        self.assertEqual(
            (row.provider_id, row.cost_unknown, row.cost_usd, row.price_id.source), (local, False, 0.0, "free")
        )
        kpis = self.env["ai.cost.dashboard"].get_dashboard_data("7d")["kpis"]
        self.assertEqual(kpis["cost_unknown_count"], 1, "only the call made before it was declared free")

        # A self-hosted copy of a hosted model costs nothing either, not the hosted price.
        hosted_copy = self._provider(
            "openai_compatible", name="gpt-4o-mini (own vLLM)", model="gpt-4o-mini", price_source="free"
        )
        row = self._row(self.env["ai.service"].send_message(ASK, provider=hosted_copy))
        self.assertEqual((row.provider_id, row.cost_unknown, row.cost_usd), (hosted_copy, False, 0.0))

    def test_anthropic_format_endpoint_serving_another_makers_model(self):
        proxy = self._provider("anthropic", name="DeepSeek (Anthropic API)", model="deepseek-chat")
        self.assertEqual(proxy.price_provider, "anthropic")
        self.assertFalse(proxy.cost_unknown)
        row = self._row(self.env["ai.service"].send_message(ASK, provider=proxy))
        self.assertGreater(row.cost_usd, 0)
        self.assertAlmostEqual(row.cost_usd, self._genai_cost(row, "deepseek-chat", "deepseek"), places=12)

    def test_price_list_guessed_from_kind_and_url_and_editable(self):
        guesses = {
            "https://api.perplexity.ai": "perplexity",
            "https://api.x.ai/v1": "x-ai",
            "https://api.together.xyz/v1": "together",
            "https://api.fireworks.ai/inference/v1": "fireworks",
            "https://acme.openai.azure.com/openai/v1": "azure",
            "https://api.openai.com/v1": "openai",
            "https://generativelanguage.googleapis.com/v1beta/openai": "google",
            self.fake.openai_base_url: False,
        }
        for url, expected in guesses.items():
            with self.subTest(url=url):
                provider = self._provider("openai_compatible", name=url, base_url=url)
                self.assertEqual(provider.price_provider, expected)
        self.assertEqual(self.claude.price_provider, "anthropic")
        chosen = self._provider("openai_compatible", name="Chosen", price_provider="azure")
        self.assertEqual(chosen.price_provider, "azure")

    def test_limits_from_model_data_on_the_form(self):
        with Form(self.env["ai.service.provider"]) as form:
            form.name = "Sonnet 4.5"
            form.kind = "anthropic"
            form.base_url = self.fake.anthropic_base_url
            form.model = "claude-sonnet-4-5"
            self.assertEqual(form.context_window, 200_000)
            self.assertEqual(form.max_output_tokens, 0)
            form.model = "acme-private-finetune-7"
            self.assertEqual(form.context_window, 0)
            form.model = "claude-sonnet-4-5"
        sonnet = form.record
        self.assertEqual((sonnet.context_window, sonnet.max_output_tokens), (200_000, 0))
        # Typed limits are kept until the model changes.
        sonnet.write({"context_window": 150_000, "max_output_tokens": 8_192})
        self.assertEqual((sonnet.context_window, sonnet.max_output_tokens), (150_000, 8_192))
        sonnet.model = "gpt-4o-mini"
        self.assertEqual((sonnet.context_window, sonnet.max_output_tokens), (128_000, 0))

    def test_no_refusal_on_a_guess(self):
        sonnet = self._provider("anthropic", name="Sonnet 4.5 (fake)", model="claude-sonnet-4-5")
        self.assertEqual(sonnet.context_window, 200_000)
        words = " ".join(f"clause{index}" for index in range(55_000))
        long_prompt = [{"role": "user", "content": words}]
        tokens = count_message_tokens(long_prompt, sonnet.model).tokens
        self.assertGreater(tokens, 150_000)
        self.assertLess(tokens, 200_000)
        result = self.env["ai.service"].send_message(long_prompt, provider=sonnet, max_tokens=32_000, use_cache=False)
        self.assertEqual(self._row(result).status, "ok")
        self.assertEqual(self.fake.requests[-1]["json"]["max_tokens"], 32_000)

        # An unknown window and output limit refuse nothing; the provider decides.
        unknown = self._provider("openai_compatible", name="Unknown limits", model="acme-private-finetune-7")
        self.assertEqual((unknown.context_window, unknown.max_output_tokens), (0, 0))
        result = self.env["ai.service"].send_message(ASK, provider=unknown, max_tokens=32_000)
        self.assertEqual(self._row(result).status, "ok")
        self.assertEqual(self.fake.requests[-1]["json"]["max_tokens"], 32_000)

        # Known limits still refuse what cannot fit, before anything is sent.
        sonnet.max_output_tokens = 8_192
        sent = len(self.fake.requests)
        error = self.assertCallFails(UserError, provider=sonnet, max_tokens=32_000)
        self.assertIn("exceeds the 8192 output tokens", str(error))
        self.assertEqual(len(self.fake.requests), sent)
        sonnet.max_output_tokens = 0

        sonnet.context_window = 1_000
        sent = len(self.fake.requests)
        self.assertCallFails(AiProviderError, messages=long_prompt, provider=sonnet)
        self.assertEqual(len(self.fake.requests), sent)
