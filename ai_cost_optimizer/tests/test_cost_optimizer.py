"""ai.cost.optimizer.recommend_provider: filters, ranking, records and bad input."""

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import AiCostCase


class OptimizerCase(AiCostCase):
    """Four providers with manual prices (USD per million tokens) for predictable costs:
    cheap (q 50, 0.1/0.4), mid (q 70, 0.5/2), strong (q 92, 3/15), tiny window (q 90, 0.2/0.8, 4k)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Provider = cls.env["ai.service.provider"]
        (cls.claude | cls.gpt).action_archive()

        def make(name, quality, input_price, output_price, **extra):
            vals = cls._provider_vals(cls.fake, "openai_compatible", name=name, quality_score=quality,
                                      input_price=input_price, output_price=output_price, **extra)
            return Provider.create(vals)

        cls.cheap = make("Cheap", 50, 0.1, 0.4)
        cls.mid = make("Mid", 70, 0.5, 2.0)
        cls.strong = make("Strong", 92, 3.0, 15.0, max_output_tokens=8192)
        cls.tiny = make("Tiny window", 90, 0.2, 0.8, context_window=4000)
        cls.optimizer = cls.env["ai.cost.optimizer"]
        cls.env.ref("ai_cost_optimizer.task_type_chat").expected_output_tokens = 400

    @staticmethod
    def ids(result):
        """The qualifying provider ids of a recommendation, best first."""
        return [alternative["provider_id"] for alternative in result["alternatives"]]

    @staticmethod
    def cost(provider, tokens_in, tokens_out):
        return (tokens_in * provider.input_price + tokens_out * provider.output_price) / 1e6


@tagged("post_install", "-at_install")
class TestRecommendProvider(OptimizerCase):
    def test_quality_bar_excludes_weak_providers(self):
        low = self.optimizer.recommend_provider("chat", 1000, "low")
        self.assertEqual(low["provider_id"], self.cheap.id)
        medium = self.optimizer.recommend_provider("chat", 1000, "medium")
        self.assertNotIn(self.cheap.id, self.ids(medium))
        high = self.optimizer.recommend_provider("chat", 1000, "high")
        self.assertEqual({alt["provider_id"] for alt in high["alternatives"]}, {self.strong.id, self.tiny.id})

    def test_context_window_excludes_small_providers(self):
        # 3,700 tokens + 400 expected output do not fit the 4,000-token window.
        fits = self.optimizer.recommend_provider("chat", 3500, "high")
        self.assertEqual(fits["provider_id"], self.tiny.id)
        too_big = self.optimizer.recommend_provider("chat", 3700, "high")
        self.assertEqual(too_big["provider_id"], self.strong.id)
        self.assertEqual(self.ids(too_big), [self.strong.id])

    def test_budget_excludes_expensive_providers(self):
        strong_cost = self.cost(self.strong, 10_000, 400)
        within = self.optimizer.recommend_provider("chat", 10_000, "high", max_budget_usd=strong_cost)
        self.assertEqual(within["provider_id"], self.strong.id)
        over = self.optimizer.recommend_provider("chat", 10_000, "high", max_budget_usd=strong_cost * 0.99)
        self.assertFalse(over["provider_id"])
        self.assertIn("Strong its estimated $", over["reasoning"])
        self.assertIn("budget", over["reasoning"])

    def test_cheapest_per_quality_point_wins_and_alternatives_are_ordered(self):
        result = self.optimizer.recommend_provider("chat", 2000, "low")
        expected = sorted(
            [self.cheap, self.mid, self.strong, self.tiny],
            key=lambda p: self.cost(p, 2000, 400) / p.quality_score,
        )
        self.assertEqual(self.ids(result), [p.id for p in expected])
        self.assertEqual(result["provider_id"], expected[0].id)
        self.assertAlmostEqual(result["estimated_cost"], self.cost(expected[0], 2000, 400))
        self.assertIn(expected[0].name, result["reasoning"])
        points = [alt["cost_per_quality_point"] for alt in result["alternatives"]]
        self.assertEqual(points, sorted(points))

    def test_benchmark_ratings_move_quality(self):
        # Mid (prior 70) rated 20 times at 30 blends to 50: below the medium bar.
        Benchmark = self.env["ai.provider.benchmark"]
        self.assertIn(self.mid.id, self.ids(self.optimizer.recommend_provider("chat", 100)))
        for _ in range(20):
            Benchmark.log_benchmark(self.mid.id, "chat", "simple", 100, 50, 0.0001, 300.0, quality_score=30)
        self.assertAlmostEqual(self.mid.effective_quality, 50.0)
        result = self.optimizer.recommend_provider("chat", 100, "medium")
        self.assertNotIn(self.mid.id, self.ids(result))

    def test_expected_output_is_learned_from_benchmarks(self):
        Benchmark = self.env["ai.provider.benchmark"]
        self.assertEqual(self.optimizer.recommend_provider("chat", 100)["expected_output_tokens"], 400)
        for _ in range(10):
            Benchmark.log_benchmark(self.mid.id, "chat", "simple", 100, 3000, 0.0001, 300.0)
        Benchmark._cron_refresh_figures()
        result = self.optimizer.recommend_provider("chat", 100, "high")
        self.assertEqual(result["expected_output_tokens"], 3000)
        self.assertEqual(result["provider_id"], self.tiny.id)
        # 100 + 3,000 tokens still fit the 4,000-token window; 1,500 + 3,000 do not.
        self.assertEqual(self.optimizer.recommend_provider("chat", 1500, "high")["provider_id"], self.strong.id)

    def test_task_types_providers_without_key_and_other_companies(self):
        code = self.env.ref("ai_cost_optimizer.task_type_code")
        self.cheap.task_type_ids = self.env.ref("ai_cost_optimizer.task_type_classify")
        self.strong.task_type_ids = code
        result = self.optimizer.recommend_provider("code", 100, "low")
        self.assertNotIn(self.cheap.id, self.ids(result))
        self.assertIn(self.strong.id, self.ids(result))
        self.mid.api_key = False
        self.assertNotIn(self.mid.id, self.ids(self.optimizer.recommend_provider("chat", 10, "low")))
        other = self.env["res.company"].create({"name": "Other AI Co"})
        self.tiny.company_id = other
        self.assertNotIn(self.tiny.id, self.ids(self.optimizer.recommend_provider("chat", 10, "low")))

    def test_provider_changes_reach_the_cached_candidates(self):
        self.assertIn(self.strong.id, self.ids(self.optimizer.recommend_provider("chat", 1000, "high")))
        self.strong.quality_score = 60
        self.assertNotIn(self.strong.id, self.ids(self.optimizer.recommend_provider("chat", 1000, "high")))
        self.mid.input_price = 0.01
        low = self.optimizer.recommend_provider("chat", 1000, "low")
        self.assertAlmostEqual(low["alternatives"][self.ids(low).index(self.mid.id)]["estimated_cost"],
                               self.cost(self.mid, 1000, 400))

    def test_every_recommendation_is_stored(self):
        Recommendation = self.env["ai.cost.recommendation"]
        before = Recommendation.search_count([])
        result = self.optimizer.recommend_provider("summarize", 1200, "medium", max_budget_usd=1.0)
        record = Recommendation.browse(result["recommendation_id"])
        self.assertEqual(Recommendation.search_count([]), before + 1)
        self.assertEqual(
            (record.task_type, record.quality_required, record.context_size_tokens, record.recommended_provider_id.id,
             record.reasoning, record.user_id, record.max_budget_usd),
            ("summarize", "medium", 1200, result["provider_id"], result["reasoning"], self.env.user, 1.0),
        )
        self.assertAlmostEqual(record.estimated_cost_usd, result["estimated_cost"])

    def test_no_provider_returns_nothing_qualifies(self):
        self.env["ai.service.provider"].search([]).action_archive()
        result = self.optimizer.recommend_provider("chat", 100)
        self.assertFalse(result["provider_id"])
        self.assertEqual(result["alternatives"], [])
        self.assertIn("no active provider", result["reasoning"])

    def test_nothing_qualifies_names_each_exclusion(self):
        result = self.optimizer.recommend_provider("chat", 100_000, "high", max_budget_usd=0.0)
        self.assertFalse(result["provider_id"])
        for provider in (self.cheap, self.mid, self.strong, self.tiny):
            self.assertIn(provider.name, result["reasoning"])

    def test_bad_input_is_a_validation_error(self):
        for args, message in [
            (("no_such_task", 10), "Unknown task type"),
            (("chat", 10, "best"), "quality_required"),
            (("chat", -1), "context_size_tokens"),
            (("chat", "10"), "context_size_tokens"),
            (("chat", 10, "low", -0.5), "max_budget_usd"),
            (("chat", 10, "low", float("nan")), "max_budget_usd"),
        ]:
            with self.subTest(args=args), self.assertRaisesRegex(ValidationError, message):
                self.optimizer.recommend_provider(*args)
