"""Provider faults through the gateway, for both wire protocols, against the fake provider.

Every request sent to a provider leaves exactly one usage row: failed attempts an 'error' row
without cost, the successful one an 'ok' row priced from the usage the provider reported (or,
when it reported none, from the tiktoken estimate of the prompt and the reply).
"""

import socket
import time

from odoo.tests import tagged
from odoo.tests.common import _super_send

from ..core.tokens import count_message_tokens, count_text_tokens
from ..exceptions import AiProviderError
from .common import AiCostCase, genai_price_of

PROMPT = [{"role": "system", "content": "You qualify CRM leads."}, {"role": "user", "content": "Qualify lead 42."}]
# genai-prices' provider id of each fake provider's model.
PRICE_PROVIDER = {"anthropic": "anthropic", "openai_compatible": "openai"}
# What an error shown to a user never contains: the HTTP libraries' exception reprs and object addresses.
LIBRARY_INTERNALS = ("0x", "urllib3", "HTTPConnectionPool", "NewConnectionError", "httpx", "httpcore", "Error(")


def closed_port_url(kind):
    """A base URL on a loopback port that was free a moment ago: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}" + ("/v1" if kind == "openai_compatible" else "")


@tagged("post_install", "-at_install")
class TestProviderFaults(AiCostCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # One retry after a millisecond-scale backoff keeps the suite fast.
        (cls.claude | cls.gpt).write({"max_retries": 1, "retry_backoff": 0.001, "timeout": 5})
        # These tests are about one provider's retries and errors: no fallback to the other provider
        # (on by default, tested in test_passthrough_falls_back_to_the_other_protocol and test_cost_routing).
        cls.env.company.ai_fallback_on_failure = False

    @classmethod
    def _request_handler(cls, session, request, /, **kwargs):
        """Odoo's test harness raises any requests timeout under 10 s to 10 s. The timeout is
        what these tests are about and the fake provider is on loopback: keep it as configured."""
        if request.url.startswith(cls.fake.url):
            return _super_send(session, request, **kwargs)
        return super()._request_handler(session, request, **kwargs)

    # -- helpers -------------------------------------------------------------------------------

    def for_each_protocol(self, check):
        """Run ``check(provider)`` for the Anthropic SDK provider, then the OpenAI-compatible
        one, each in a subTest with the fake server reset."""
        for provider in (self.claude, self.gpt):
            with self.subTest(protocol=provider.kind):
                self.fake.reset()
                check(provider)

    def last_usage_id(self):
        return self.env["ai.token.usage"].search([], order="id desc", limit=1).id or 0

    def rows_since(self, last_id):
        return self.env["ai.token.usage"].search([("id", ">", last_id)], order="id")

    def send(self, provider):
        return self.env["ai.service"].send_message(PROMPT, provider=provider)

    def assert_fails(self, provider, expected_fragment):
        """The call ends in a clear AiProviderError: it names the provider and the failure,
        carries no chained traceback and no API key."""
        error = self.assertCallFails(AiProviderError, messages=PROMPT, provider=provider)
        message = str(error)
        self.assertIn(provider.name, message)
        self.assertIn(expected_fragment, message)
        for internal in ("Traceback", "sk-test", *LIBRARY_INTERNALS):
            self.assertNotIn(internal, message)
        self.assertIsNone(error.__cause__)
        self.assertTrue(error.__suppress_context__, "the provider's exception must not be chained to the user")
        return error

    def assert_failed_attempts(self, rows, provider, fragment):
        """Error rows, one per attempt numbered from 1, without any cost."""
        self.assertEqual(rows.mapped("attempts"), list(range(1, len(rows) + 1)))
        for row in rows:
            self.assertEqual((row.status, row.provider_id, row.cost_usd), ("error", provider, 0.0))
            self.assertEqual((row.input_tokens, row.output_tokens, row.completion_text), (0, 0, False))
            self.assertIn(fragment, row.error_message)

    def assert_priced(self, row, provider, usage):
        expected = genai_price_of(provider.model, PRICE_PROVIDER[provider.kind], usage)
        self.assertGreater(expected, 0)
        self.assertEqual((row.status, row.cost_unknown), ("ok", False))
        self.assertAlmostEqual(row.cost_usd, expected, places=10)

    def assert_retried_then_ok(self, provider, fault, fragment):
        """One scripted fault, then success: an error row for attempt 1, an ok row for attempt 2."""
        last_id, sent = self.last_usage_id(), len(self.fake.requests)
        self.fake.queue_responses([fault])
        result = self.send(provider)
        rows = self.rows_since(last_id)
        self.assertEqual(len(rows), 2)
        self.assertEqual(len(self.fake.requests) - sent, 2, "one row per request the provider received")
        self.assert_failed_attempts(rows[:1], provider, fragment)
        self.assertEqual((rows[1].id, rows[1].status, rows[1].attempts), (result["usage_id"], "ok", 2))
        self.assertGreater(rows[1].cost_usd, 0)
        return rows

    def assert_exhausts_retries(self, provider, faults, fragment, attempts=2):
        """Faults on every attempt: one error row per attempt, then a clear error."""
        last_id, sent = self.last_usage_id(), len(self.fake.requests)
        self.fake.queue_responses(faults)
        self.assert_fails(provider, fragment)
        rows = self.rows_since(last_id)
        self.assertEqual(len(rows), attempts)
        self.assertEqual(len(self.fake.requests) - sent, attempts, "one row per request the provider received")
        self.assert_failed_attempts(rows, provider, fragment)

    # -- transport faults ----------------------------------------------------------------------

    def test_connection_refused(self):
        def check(provider):
            provider.base_url = closed_port_url(provider.kind)
            last_id = self.last_usage_id()
            # One sentence naming the address and the cause.
            cause = f"Could not connect to {provider.base_url} (connection refused)"
            self.assert_fails(provider, f"failed: {cause} after 2 attempts.")
            rows = self.rows_since(last_id)
            self.assertEqual(len(rows), 2, "max_retries=1: two attempts, two rows")
            self.assert_failed_attempts(rows, provider, cause)

        self.for_each_protocol(check)

    def test_timeout(self):
        def check(provider):
            provider.timeout = 0.3
            self.fake.set_latency(1.0)
            last_id = self.last_usage_id()
            started = time.monotonic()
            cause = f"No answer from {provider.base_url} within 0.3 s"
            self.assert_fails(provider, f"failed: {cause} after 2 attempts.")
            self.assertLess(time.monotonic() - started, 1.5, "each attempt must be cut at the provider's timeout")
            rows = self.rows_since(last_id)
            self.assertEqual(len(rows), 2)
            self.assert_failed_attempts(rows, provider, cause)

        self.for_each_protocol(check)

    def test_truncated_body_is_retried(self):
        def check(provider):
            self.assert_retried_then_ok(provider, {"truncated": True}, f"{provider.base_url}")
            self.assert_exhausts_retries(provider, [{"truncated": True}] * 2, f"{provider.base_url}")

        self.for_each_protocol(check)

    # -- HTTP errors ---------------------------------------------------------------------------

    def test_rate_limit_honours_retry_after(self):
        def check(provider):
            started = time.monotonic()
            self.assert_retried_then_ok(provider, {"status": 429, "retry_after": "0.3"}, "HTTP 429")
            # The backoff alone is a millisecond: only Retry-After explains the wait.
            self.assertGreaterEqual(time.monotonic() - started, 0.3)

        self.for_each_protocol(check)

    def test_rate_limit_without_retry_after_backs_off(self):
        def check(provider):
            self.assert_retried_then_ok(provider, {"status": 429}, "rate limit")
            self.assert_exhausts_retries(provider, [{"status": 429, "retry_after": "0"}] * 2, "HTTP 429")

        self.for_each_protocol(check)

    def test_server_errors_and_overload(self):
        for status in (500, 502, 503, 529):

            def check(provider, status=status):
                self.assert_retried_then_ok(provider, {"status": status}, f"HTTP {status}")
                self.assert_exhausts_retries(provider, [{"status": status}] * 2, f"HTTP {status}")

            self.for_each_protocol(check)

    def test_client_errors_are_not_retried(self):
        def check(provider):
            self.assert_exhausts_retries(provider, [{"status": 400, "message": "too large"}], "too large", attempts=1)

        self.for_each_protocol(check)

    def test_passthrough_falls_back_to_the_other_protocol(self):
        """With fallback on (the default), a provider overloaded through its retries hands the
        passthrough call to the other one; each failed attempt keeps its error row."""
        self.env.company.ai_fallback_on_failure = True
        for provider, other in ((self.claude, self.gpt), (self.gpt, self.claude)):
            with self.subTest(protocol=provider.kind):
                self.fake.reset()
                last_id = self.last_usage_id()
                self.fake.queue_responses([{"status": 503}, {"status": 503}])
                result = self.send(provider)
                rows = self.rows_since(last_id)
                self.assertEqual(len(self.fake.requests), 3, "two attempts, then the other provider")
                self.assert_failed_attempts(rows[:2], provider, "HTTP 503")
                self.assertEqual((rows[2].status, rows[2].provider_id, rows[2].id), ("ok", other, result["usage_id"]))
                self.assertEqual((result["provider_id"], result["switched_from"]), (other.id, provider.id))
                self.assertGreater(rows[2].cost_usd, 0)

    # -- bad bodies ----------------------------------------------------------------------------

    def test_malformed_json_is_not_retried(self):
        # A provider that answered 200 may have billed the call: no blind retry.
        def check(provider):
            self.assert_exhausts_retries(provider, [{"malformed": True}, {}], "malformed", attempts=1)

        self.for_each_protocol(check)

    def test_missing_usage_is_estimated_and_priced(self):
        reply = "Warm lead: follow up next week."

        def check(provider):
            self.fake.set_reply(reply)
            self.fake.queue_responses([{"no_usage": True}])
            last_id = self.last_usage_id()
            result = self.send(provider)
            self.assertIsNone(self.fake.last_usage, "the provider sent no usage block")
            [row] = self.rows_since(last_id)
            self.assertFalse(row.usage_reported)
            estimated = {
                "input_tokens": count_message_tokens(PROMPT, provider.model).tokens,
                "output_tokens": count_text_tokens(reply, provider.model).tokens,
                "cache_read_tokens": 0,
                "cache_write_tokens": 0,
            }
            self.assertEqual(row.input_tokens, estimated["input_tokens"])
            self.assertEqual(row.output_tokens, estimated["output_tokens"])
            self.assert_priced(row, provider, estimated)
            self.assertAlmostEqual(result["cost_usd"], row.cost_usd, places=10)
            self.assertEqual(result["content"], reply)

        self.for_each_protocol(check)
