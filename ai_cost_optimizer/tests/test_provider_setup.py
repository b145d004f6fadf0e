from lxml import etree

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from ..core import pricing
from ..core.tokens import count_message_tokens, count_text_tokens
from ..models.ai_service_provider import TEST_MAX_TOKENS
from .common import AiCostCase, genai_price_of
from .fake_provider import DEFAULT_REPLY
from .test_provider_faults import closed_port_url


@tagged("post_install", "-at_install")
class TestProviderSetup(AiCostCase):
    """What an administrator does first: test a provider, use a local one without a key, try the demo model."""

    def _budget_on(self, provider):
        return self.env["ai.cost.budget"].create({
            "name": f"{provider.name} budget", "budget_amount": 10.0, "provider_ids": [Command.set(provider.ids)],
        })

    def _test_connection_error(self, provider):
        """The UserError of the Test connection button, read without rolling back the usage row."""
        try:
            provider.action_test_connection()
        except UserError as error:
            return str(error)
        self.fail("action_test_connection did not raise UserError")

    # -- Test connection ----------------------------------------------------------------------------

    def test_test_connection_shows_answer_latency_and_cost_of_a_recorded_call(self):
        budget = self._budget_on(self.gpt)
        action = self.gpt.action_test_connection()

        usage = self.env["ai.token.usage"].search([("operation", "=", "test_connection")])
        self.assertEqual((len(usage), usage.provider_id, usage.status), (1, self.gpt, "ok"))
        expected = genai_price_of("gpt-4o-mini", "openai", {
            "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cache_read_tokens": 0, "cache_write_tokens": 0,
        })
        self.assertGreater(expected, 0)
        self.assertAlmostEqual(usage.cost_usd, expected, places=10)
        self.assertAlmostEqual(budget.current_spend, usage.cost_usd, places=10)
        self.assertEqual(len(self.fake.requests), 1)
        self.assertEqual(self.fake.requests[0]["json"]["max_tokens"], TEST_MAX_TOKENS)

        params = action["params"]
        self.assertEqual((action["tag"], params["type"]), ("display_notification", "success"))
        self.assertIn(DEFAULT_REPLY, params["message"])
        self.assertIn(f"{round(usage.latency_ms)} ms", params["message"])
        self.assertIn(pricing.format_usd(usage.cost_usd), params["message"])

    def test_test_connection_failure_is_one_clear_sentence(self):
        self.env.company.ai_fallback_on_failure = False
        url = closed_port_url("openai_compatible")
        self.gpt.write({"base_url": url, "max_retries": 0})
        message = self._test_connection_error(self.gpt)
        self.assertEqual(
            message, f"The AI provider '{self.gpt.name}' failed: Could not connect to {url} (connection refused)."
        )
        failed = self.env["ai.token.usage"].search([("operation", "=", "test_connection")])
        self.assertEqual((failed.status, failed.provider_id), ("error", self.gpt))

    def test_test_connection_tests_this_provider_once_and_no_other(self):
        # Fallback on failure is on (the default) and the provider retries twice: the test tries this provider
        # once, and neither the other provider nor a retry hides its failure.
        self.assertTrue(self.env.company.ai_fallback_on_failure)
        url = closed_port_url("openai_compatible")
        self.gpt.write({"base_url": url, "max_retries": 2})
        message = self._test_connection_error(self.gpt)
        self.assertIn(f"Could not connect to {url} (connection refused)", message)
        rows = self.env["ai.token.usage"].search([("operation", "=", "test_connection")])
        self.assertEqual([(row.status, row.provider_id) for row in rows], [("error", self.gpt)])
        self.assertFalse(self.fake.requests, "the other provider was not asked")
        # Calls that do not ask for a single attempt still fall back, as before.
        served = self.env["ai.service"].send_message([{"role": "user", "content": "Hello"}], provider=self.gpt)
        self.assertEqual(served["provider_id"], self.claude.id)

    def test_the_form_speaks_of_the_key_box_only_where_it_shows(self):
        arch = self.env["ai.service.provider"].get_view(view_type="form")["arch"]
        form = etree.fromstring(arch)
        box = form.xpath("//field[@name='api_key_required']")[0]
        for node in form.iter():
            mentions = " ".join(filter(None, [node.text, *node.attrib.values()]))
            if "Needs an API key" in mentions:
                self.assertEqual(node.get("invisible"), box.get("invisible"), etree.tostring(node)[:200])
        kinds = dict(self.env["ai.service.provider"]._fields["kind"].selection)
        self.assertNotIn("chat", kinds["openai_compatible"], "an embedding model's provider is of this kind too")

    def test_single_attempt_must_be_a_boolean(self):
        error = self.assertCallFails(UserError, provider=self.gpt, single_attempt="yes")
        self.assertIn("single_attempt must be True or False", str(error))

    def test_test_connection_without_key_says_so(self):
        self.gpt.api_key = False
        self.assertIn("has no API key", self._test_connection_error(self.gpt))
        self.assertFalse(self.fake.requests)

    # -- Providers without a key ---------------------------------------------------------------------

    def test_local_provider_without_key_over_http(self):
        self.fake.set_key_required(False)  # as Ollama or a local vLLM
        local = self.env["ai.service.provider"].create(self._provider_vals(
            self.fake, "openai_compatible", name="Llama (local)", api_key=False, api_key_required=False,
        ))
        self.assertTrue(local.has_api_key, "a provider that needs no key is ready to call")
        result = self.env["ai.service"].send_message([{"role": "user", "content": "Hello"}], provider=local)
        self.assertEqual((result["content"], result["provider_id"]), (DEFAULT_REPLY, local.id))
        self.assertNotIn("authorization", self.fake.requests[-1]["headers"])
        # The optimizer ranks it as a usable provider.
        ranked = self.env["ai.cost.optimizer"].recommend_provider("chat", 100, "low")["alternatives"]
        self.assertIn(local.id, [alternative["provider_id"] for alternative in ranked])

    def test_provider_that_needs_a_key_is_refused_without_one(self):
        self.gpt.api_key = False
        self.assertEqual((self.gpt.api_key_required, self.gpt.has_api_key), (True, False))
        error = self.assertCallFails(UserError, provider=self.gpt)
        self.assertIn("has no API key", str(error))
        self.assertFalse(self.fake.requests)

    # -- The demo model ------------------------------------------------------------------------------

    def test_demo_model_end_to_end_through_the_gateway(self):
        demo = self.env["ai.service.provider"].create({
            "name": "Demo model (answers locally)", "kind": "demo", "model": "gpt-4o-mini",
        })
        self.assertEqual((demo.api_key_required, demo.has_api_key, demo.cost_unknown), (False, True, False))
        self.assertAlmostEqual(demo.input_price, pricing.lookup_price("gpt-4o-mini").input_per_mtok)
        budget = self._budget_on(demo)
        messages = [{"role": "user", "content": "Summarize lead 42 in one line."}]

        result = self.env["ai.service"].send_message(messages, provider=demo, operation="playground")

        self.assertTrue(result["content"].startswith("Demo answer"))
        usage = self.env["ai.token.usage"].browse(result["usage_id"])
        self.assertEqual((usage.status, usage.provider_id, usage.model), ("ok", demo, "gpt-4o-mini"))
        self.assertEqual(usage.input_tokens, count_message_tokens(messages, "gpt-4o-mini").tokens)
        self.assertEqual(usage.output_tokens, count_text_tokens(result["content"], "gpt-4o-mini").tokens)
        expected = genai_price_of("gpt-4o-mini", None, {
            "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cache_read_tokens": 0, "cache_write_tokens": 0,
        })
        self.assertGreater(expected, 0)
        self.assertAlmostEqual(usage.cost_usd, expected, places=10)
        self.assertAlmostEqual(budget.current_spend, expected, places=10)
        self.assertFalse(self.fake.requests, "the demo model calls no one")

    def test_demo_model_test_connection_says_what_it_is(self):
        demo = self.env["ai.service.provider"].create({"name": "Demo", "kind": "demo", "model": "gpt-4o-mini"})
        params = demo.action_test_connection()["params"]
        self.assertEqual(params["type"], "success")
        self.assertIn("nothing was sent to an AI provider", params["message"])

    def test_demo_model_streams_through_the_gateway(self):
        demo = self.env["ai.service.provider"].create({"name": "Demo", "kind": "demo", "model": "gpt-4o-mini"})
        messages = [{"role": "user", "content": "Summarize lead 42 in one line."}]
        with self.env["ai.service"].stream_message(messages, provider=demo) as stream:
            chunks = list(stream)
        self.assertGreater(len(chunks), 5)
        usage = self.env["ai.token.usage"].browse(stream.result["usage_id"])
        self.assertEqual((usage.status, usage.provider_id, usage.usage_reported), ("ok", demo, True))
        self.assertEqual(usage.output_tokens, count_text_tokens("".join(chunks), "gpt-4o-mini").tokens)
        self.assertGreater(usage.cost_usd, 0)

    def test_demo_model_answers_the_playground(self):
        demo = self.env["ai.service.provider"].create({"name": "Demo", "kind": "demo", "model": "gpt-4o-mini"})
        playground = self.env["ai.cost.playground"].create({"prompt": "Draft a reply to Deco Addict.",
                                                            "provider_id": demo.id})
        playground.action_send()
        self.assertEqual((playground.state, playground.actual_provider_id), ("sent", demo))
        self.assertTrue(playground.answer.startswith("Demo answer"))
        self.assertGreater(playground.usage_id.cost_usd, 0)

    def test_other_kinds_need_a_base_url(self):
        with self.assertRaises(UserError):
            self.env["ai.service.provider"].create({"name": "No URL", "kind": "openai_compatible", "model": "x"})
