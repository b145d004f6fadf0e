"""One source per rule (issue 27, "Rules kept twice"): which providers qualify as an alternative (the wrong_model
waste rule and the optimizer), what counts as a benchmark sample (the A/B arms and the Benchmarks view), whether a
provider has a key (the ORM and the optimizer's SQL). Each test fails when one of the readers drifts."""

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import AiCostCase, UsageRowsCase


@tagged("post_install", "-at_install")
class TestBenchmarkSamples(UsageRowsCase):
    """An A/B arm's results and the Benchmarks view (compare_providers) count the same samples and measure the same
    things: a call refused by a budget, answered from the response cache or stopped before it was sent is no
    sample; a failed call measures no cost nor latency, a call of unknown price no cost, an unrated one no
    quality."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Provider = cls.env["ai.service.provider"]
        cls.other = Provider.create({
            "name": "Other arm (samples test)", "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1",
            "model": "gpt-4o",
        })
        cls.task_type = cls.env["ai.task.type"].create({"name": "Samples test", "code": "samples_test"})
        experiment = cls.env["ai.provider.experiment"].create({
            "name": "Samples test", "task_type_id": cls.task_type.id,
            "arm_ids": [Command.create({"name": "A", "provider_id": cls.provider.id, "percentage": 50}),
                        Command.create({"name": "B", "provider_id": cls.other.id, "percentage": 50})],
        })
        cls.arm = experiment.arm_ids.filtered(lambda arm: arm.name == "A")
        common = {"provider_id": cls.provider.id, "model": cls.provider.model, "task_type": "samples_test",
                  "ab_arm_id": cls.arm.id, "input_tokens": 100, "output_tokens": 20}
        cls.env["ai.token.usage"].create([
            {**common, "status": "ok", "provider_called": True, "cost_usd": 0.002, "latency_ms": 100.0},
            {**common, "status": "ok", "provider_called": True, "cost_usd": 0.004, "latency_ms": 300.0,
             "quality_score": 80, "quality_rated": True},
            # Unknown price: answered, no cost measured (never $0).
            {**common, "status": "ok", "provider_called": True, "cost_usd": 0.0, "cost_unknown": True,
             "latency_ms": 200.0},
            # Failed at the provider: a sample, an error, no cost nor latency.
            {**common, "status": "error", "provider_called": True, "cost_usd": 0.0, "latency_ms": 50.0,
             "output_tokens": 0},
            # Not samples: refused by a budget, answered from the response cache (and rated), stopped before sending.
            {**common, "status": "blocked", "provider_called": False, "cost_usd": 0.0},
            {**common, "status": "ok", "cache_hit": True, "provider_called": False, "cost_usd": 0.0,
             "latency_ms": 0.0, "quality_score": 20, "quality_rated": True},
            {**common, "status": "error", "provider_called": False, "cost_usd": 0.0, "output_tokens": 0},
        ])

    def test_arm_results_are_the_benchmark_figures(self):
        expected = {"calls": 4, "errors": 1, "avg_cost_usd": 0.003, "avg_latency_ms": 200.0, "avg_quality": 80.0}
        arm = self.arm
        self.assertEqual((arm.calls, arm.rated_calls), (expected["calls"], 1))
        self.assertAlmostEqual(arm.error_rate, expected["errors"] / expected["calls"])
        self.assertAlmostEqual(arm.avg_cost_usd, expected["avg_cost_usd"], places=10)
        self.assertAlmostEqual(arm.avg_latency_ms, expected["avg_latency_ms"])
        self.assertAlmostEqual(arm.avg_quality, expected["avg_quality"])
        [line] = [line for line in self.env["ai.provider.benchmark"].compare_providers("samples_test")
                  if line["provider_id"] == self.provider.id]
        self.assertEqual((line["calls"], line["errors"]), (expected["calls"], expected["errors"]))
        self.assertAlmostEqual(line["error_rate"], arm.error_rate)
        for name in ("avg_cost_usd", "avg_latency_ms", "avg_quality"):
            self.assertAlmostEqual(line[name], expected[name], places=10, msg=name)
            self.assertAlmostEqual(line[name], arm[name], places=10, msg=name)
        # The Benchmarks view lists exactly the arm's samples.
        samples = self.env["ai.provider.benchmark.report"].search([("ab_arm_id", "=", arm.id)])
        self.assertEqual(len(samples), arm.calls)
        self.assertEqual(set(samples.usage_id.mapped("provider_called")), {True})

    def test_an_arm_without_samples_reads_zero(self):
        other = self.arm.experiment_id.arm_ids - self.arm
        self.assertEqual((other.calls, other.error_rate, other.avg_cost_usd, other.rated_calls), (0, 0.0, 0.0, 0))


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
