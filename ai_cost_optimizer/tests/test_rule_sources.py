"""One source per rule (issue 27, "Rules kept twice"): which providers qualify as an alternative (the wrong_model
waste rule and the optimizer), what counts as a benchmark sample (the A/B arms and the Benchmarks view), whether a
provider has a key (the ORM and the optimizer's SQL). Each test fails when one of the readers drifts."""

import random

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from ..core import recommendation as ranking_rules
from ..core.recommendation import Candidate
from .common import AiCostCase, UsageRowsCase

SEEDS = range(6)
PROVIDERS_PER_CASE = 7
CALLS_PER_CASE = 8
TASK_TYPES = ("chat", "classify", "summarize")
# Windows around the prompts (20 to 400 tokens) plus the task types' expected answers (20 to 400): some fit the
# prompt alone and not the prompt with its answer.
CONTEXT_WINDOWS = (0, 0, 100_000, 300, 500, 800)
INPUT_PRICES = (0.05, 0.1, 0.15, 0.5, 1.0, 2.5, 3.0, 10.0)
# A model genai-prices does not know: its provider's cost is unknown.
UNKNOWN_MODEL = "rules-test-unknown-model"


@tagged("post_install", "-at_install")
class TestWrongModelNamesWhatTheOptimizerRecommends(AiCostCase):
    """Generated cases: random providers (quality prior and rated answers, context window, prices known, unknown or
    free, key or none, task types active or not) and random passthrough calls through the gateway. The waste report
    names provider X for a call iff X is the provider the optimizer ranks first for it (core.recommendation.rank
    over the providers as generated), X is not the call's provider, and X would have cost at least the company's
    threshold less; it never names a provider the ranking excluded. A re-analysis of the stored row agrees."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        (cls.claude | cls.gpt).action_archive()
        cls.env.company.write({"ai_auto_switch_provider": False, "ai_waste_wrong_model_saving_pct": 20})
        cls.legacy = cls.env["ai.task.type"].create(
            {"name": "Legacy (rules test)", "code": "legacy_rules_test", "active": False}
        )
        cls.task_types = {code: cls.env.ref(f"ai_cost_optimizer.task_type_{code}") for code in TASK_TYPES}

    def _random_provider(self, rng, name):
        """A provider with random facts, and those facts as the test knows them: (record, facts)."""
        pricing = rng.choices(["manual", "unknown", "free"], weights=[8, 1, 1])[0]
        keyed = rng.random() < 0.7
        required = keyed or rng.random() < 0.5
        codes = set() if rng.random() < 0.5 else set(rng.sample([*TASK_TYPES, "legacy"], rng.randint(1, 3)))
        rated = rng.random() < 0.4
        input_price = rng.choice(INPUT_PRICES)
        vals = self._provider_vals(
            self.fake, "openai_compatible", name=name,
            model=UNKNOWN_MODEL if pricing == "unknown" else "gpt-4o-mini",
            api_key="sk-test-rules" if keyed else False, api_key_required=required,
            quality_score=rng.randint(30, 95), context_window=rng.choice(CONTEXT_WINDOWS),
            task_type_ids=[Command.set([
                (self.legacy if code == "legacy" else self.task_types[code]).id for code in codes
            ])],
            benchmark_quality=rng.uniform(0, 100) if rated else 0.0,
            benchmark_quality_samples=rng.randint(1, 60) if rated else 0,
        )
        if pricing == "manual":
            vals.update(input_price=input_price, output_price=input_price * rng.choice([2, 4, 5]))
        elif pricing == "free":
            vals["price_source"] = "free"
        else:
            vals["price_source"] = "genai_prices"
        provider = self.env["ai.service.provider"].create(vals)
        served = codes - {"legacy"}  # an archived task type serves nothing: no active code, every task
        facts = {"usable": keyed or not required, "served": served, "callable": keyed}
        return provider, facts

    def _ranking(self, providers, usage):
        """The optimizer's ranking of the call of `usage`, computed from the providers as generated."""
        candidates = [
            Candidate(
                provider_id=provider.id, name=provider.name, prior_quality=provider.quality_score,
                context_window=provider.context_window,
                input_price=None if provider.cost_unknown else provider.input_price,
                output_price=None if provider.cost_unknown else provider.output_price,
                serves_task=not facts["served"] or usage.task_type in facts["served"],
                usable=facts["usable"],
                benchmark_quality=provider.benchmark_quality if provider.benchmark_quality_samples else None,
                benchmark_samples=provider.benchmark_quality_samples,
            )
            for provider, facts in providers
        ]
        output_tokens = self.env["ai.cost.optimizer"]._expected_output_tokens(usage.task_type)
        return ranking_rules.rank(candidates, usage.context_size_tokens, output_tokens, usage.quality_required)

    @staticmethod
    def _cost_at(provider, usage):
        return (usage.input_tokens * provider.input_price + usage.output_tokens * provider.output_price) / 1e6

    def _expected_name(self, ranking, usage):
        """The provider the wrong_model rule must name for `usage`, or None."""
        best = ranking.best
        if not best or best.candidate.provider_id == usage.provider_id.id:
            return None
        if usage.cost_unknown or not usage.cost_usd:
            return None
        provider = self.env["ai.service.provider"].browse(best.candidate.provider_id)
        saving = usage.cost_usd - self._cost_at(provider, usage)
        return provider.name if saving >= 0.2 * usage.cost_usd else None

    @staticmethod
    def _named(findings):
        """The provider names a wrong_model finding names (its description starts with the name)."""
        return [finding["description"].split(" meets the quality bar")[0] for finding in findings
                if finding["type"] == "wrong_model"]

    def test_generated_cases(self):
        named = excluded_cheaper = 0
        previous = self.env["ai.service.provider"]
        for seed in SEEDS:
            rng = random.Random(seed)
            previous.action_archive()
            providers = [self._random_provider(rng, f"Rules {seed}.{index}") for index in range(PROVIDERS_PER_CASE)]
            previous = self.env["ai.service.provider"].browse([provider.id for provider, _facts in providers])
            callers = [
                provider for provider, facts in providers
                if facts["callable"] and provider.context_window in (0, 100_000)
            ]
            for number in range(CALLS_PER_CASE if callers else 0):
                caller = rng.choice(callers)
                prompt = f"Case {seed} call {number}: " + "word " * rng.randint(10, 350)
                result = self.env["ai.service"].send_message(
                    [{"role": "user", "content": prompt}], provider=caller, mode="passthrough",
                    task_type=rng.choice(TASK_TYPES), quality_required=rng.choice(["low", "medium", "high"]),
                )
                usage = self.env["ai.token.usage"].browse(result["usage_id"])
                ranking = self._ranking(providers, usage)
                expected = self._expected_name(ranking, usage)
                excluded = {candidate.name for candidate, _reason in ranking.excluded}
                with self.subTest(seed=seed, call=number, provider=caller.name, task=usage.task_type,
                                  bar=usage.quality_required, tokens=usage.context_size_tokens):
                    self.assertEqual(usage.status, "ok")
                    best = ranking.best.candidate.provider_id if ranking.best else False
                    self.assertEqual(result["recommendation"]["provider_id"], best)
                    self.assertEqual(self._named(result["waste_report"]["findings"]), [expected] if expected else [])
                    self.assertFalse(excluded & set(self._named(result["waste_report"]["findings"])))
                    # The stored row, analysed again, names the same provider.
                    again = self.env["ai.token.analytics"].analyze_waste(usage.id)
                    self.assertEqual(self._named(again["findings"]), [expected] if expected else [])
                named += bool(expected)
                excluded_cheaper += any(
                    provider.name in excluded and not provider.cost_unknown and usage.cost_usd
                    and self._cost_at(provider, usage) <= 0.8 * usage.cost_usd
                    for provider, _facts in providers
                )
        # The generator keeps exercising both sides: calls with a finding, and calls where a cheaper provider the
        # optimizer excluded (no key, quality, window, task type) must not be named.
        self.assertGreater(named, 3)
        self.assertGreater(excluded_cheaper, 3)

    def test_no_finding_when_the_optimizer_recommends_nothing(self):
        """The optimizer excludes the cheaper provider (no key): the waste report does not name it, although it
        meets every other rule, and a call for which nothing qualifies has no wrong_model finding."""
        strong = self.env["ai.service.provider"].create(self._provider_vals(
            self.fake, "openai_compatible", name="Strong (rules)", quality_score=95, input_price=5.0, output_price=20.0,
        ))
        keyless = self.env["ai.service.provider"].create(self._provider_vals(
            self.fake, "openai_compatible", name="Keyless (rules)", quality_score=95, input_price=0.1, output_price=0.4,
            api_key=False,
        ))
        result = self.env["ai.service"].send_message(
            [{"role": "user", "content": "Qualify lead 42."}], provider=strong, quality_required="high"
        )
        excluded = {row["provider_id"]: row["reason"] for row in result["recommendation"]["excluded"]}
        self.assertEqual(excluded[keyless.id], "has no API key")
        self.assertEqual(result["recommendation"]["provider_id"], strong.id)
        self.assertFalse(self._named(result["waste_report"]["findings"]))
        # The key is entered: the optimizer now recommends it, and the waste report names it.
        keyless.api_key = "sk-test-rules"
        result = self.env["ai.service"].send_message(
            [{"role": "user", "content": "Qualify lead 43."}], provider=strong, quality_required="high"
        )
        self.assertEqual(self._named(result["waste_report"]["findings"]), [keyless.name])
        # Above every provider's quality (a rated strong provider blended below the bar): nothing qualifies.
        (strong | keyless).write({"benchmark_quality": 10.0, "benchmark_quality_samples": 40})
        result = self.env["ai.service"].send_message(
            [{"role": "user", "content": "Qualify lead 44."}], provider=strong, quality_required="high"
        )
        self.assertFalse(result["recommendation"]["provider_id"])
        self.assertFalse(self._named(result["waste_report"]["findings"]))


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
