"""One source per rule (issue 27, "Rules kept twice"): which providers qualify as an alternative (the wrong_model
waste rule and the optimizer), what counts as a benchmark sample (the A/B arms and the Benchmarks view), whether a
provider has a key (the ORM and the optimizer's SQL). Each test fails when one of the readers drifts."""

from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import AiCostCase


@tagged("post_install", "-at_install")
class TestKeyReadiness(AiCostCase):
    """Whether a provider has a key: the stored has_api_key is the one definition; the optimizer's SQL reads its
    column, the gateway and the connection settings its value, pending changes of this transaction included."""

    def _usable(self, provider):
        [candidate] = [candidate for candidate in self.env["ai.cost.optimizer"]._candidates("chat")
                       if candidate.provider_id == provider.id]
        return candidate.usable

    def test_every_reader_agrees(self):
        Provider = self.env["ai.service.provider"]
        cases = {
            (True, True): True, (True, False): True, (False, True): False, (False, False): True,
        }
        for (keyed, required), ready in cases.items():
            with self.subTest(keyed=keyed, required=required):
                provider = Provider.create(self._provider_vals(
                    self.fake, "openai_compatible", name=f"Key {keyed} {required}",
                    api_key="sk-test-key" if keyed else False, api_key_required=required,
                ))
                self.assertEqual(provider.has_api_key, ready)
                self.assertEqual(self._usable(provider), ready, "the optimizer's SQL, pending values")
                self.env.flush_all()
                self.env.registry.clear_cache()
                self.assertEqual(self._usable(provider), ready, "the optimizer's SQL, stored values")
                self.env.cr.execute("SELECT has_api_key FROM ai_service_provider WHERE id = %s", [provider.id])
                self.assertEqual(self.env.cr.fetchone()[0], ready)
                if ready:
                    self.assertEqual(provider._client_config().api_key, "sk-test-key" if keyed else "")
                else:
                    with self.assertRaisesRegex(UserError, "has no API key"):
                        provider._client_config()

    def test_a_key_changed_in_this_transaction_counts_before_it_is_written(self):
        self.assertTrue(self._usable(self.gpt))
        self.gpt.api_key = False  # pending: neither flushed nor written to the database
        self.assertFalse(self.gpt.has_api_key)
        self.assertFalse(self._usable(self.gpt))
        self.gpt.api_key = "sk-test-again"
        self.assertTrue(self._usable(self.gpt))
        self.gpt.api_key_required = False
        self.gpt.api_key = False
        self.assertTrue(self._usable(self.gpt))
