import logging

from odoo.tests import tagged

from ..exceptions import AiProviderError
from .common import AiCostCase


class _Collector(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(self.format(record))


@tagged("post_install", "-at_install")
class TestSecretsStayOutOfLogs(AiCostCase):
    def test_api_keys_never_logged_at_any_level(self):
        self.env.company.ai_fallback_on_failure = False  # each refused key fails its own call
        collector = _Collector()
        collector.setFormatter(logging.Formatter("%(name)s %(message)s %(exc_info)s"))
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(collector)
        root.setLevel(logging.DEBUG)
        try:
            ok = [{"role": "user", "content": "Hello"}]
            self.env["ai.service"].send_message(ok, provider=self.claude)
            self.env["ai.service"].send_message(ok, provider=self.gpt)
            for provider in (self.claude, self.gpt):
                provider.api_key = "sk-wrong-" + provider.kind  # the fake server echoes a bad key in its 401
                self.assertCallFails(AiProviderError, provider=provider)
        finally:
            root.removeHandler(collector)
            root.setLevel(old_level)
        self.assertTrue(collector.messages, "the calls must have logged something at DEBUG level")
        for secret in ("sk-test-anthropic", "sk-test-openai", "sk-wrong-anthropic", "sk-wrong-openai_compatible"):
            leaks = [message for message in collector.messages if secret in message]
            self.assertFalse(leaks, f"{secret} leaked into the logs: {leaks[:1]}")
        errors = self.usage_rows().filtered(lambda usage: usage.status == "error")
        self.assertEqual(len(errors), 2)
        self.assertFalse(any("sk-wrong" in (usage.error_message or "") for usage in errors))
