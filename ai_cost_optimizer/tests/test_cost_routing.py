"""Routing in the gateway (over 400 lines: a test per case of each concern): passthrough tracking,
smart router, auto-switch, fallback, benchmarks, ratings and A/B experiments, end to end
through send_message and the fake provider."""

import socket

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged
from odoo.tests.common import _super_send

from ..exceptions import AiProviderError
from .test_cost_optimizer import OptimizerCase

TRIVIAL = [{"role": "user", "content": "What is 2 + 2?"}]
HARD = [{"role": "user", "content": (
    "Analyze this Python function, explain why it is slow, then refactor it and compare the trade-offs:\n"
    "```python\ndef total(lines):\n    return sum([l.price * l.qty for l in lines])\n```\n"
    "1. Keep the API\n2. Add type hints\n3. Return JSON with the new code"
)}]


class RoutingCase(OptimizerCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.all_providers = cls.cheap | cls.mid | cls.strong | cls.tiny
        cls.all_providers.write({"max_retries": 1, "retry_backoff": 0.001, "timeout": 5})
        cls.service = cls.env["ai.service"]

    @classmethod
    def _request_handler(cls, session, request, /, **kwargs):
        """Keep the fake provider's timeouts as configured (the harness would raise them to 10 s)."""
        if request.url.startswith("http://127.0.0.1"):
            return _super_send(session, request, **kwargs)
        return super()._request_handler(session, request, **kwargs)

    def rows_since(self, last_id):
        return self.env["ai.token.usage"].search([("id", ">", last_id)], order="id")

    def last_id(self):
        return self.env["ai.token.usage"].search([], order="id desc", limit=1).id or 0


@tagged("post_install", "-at_install")
class TestRouting(RoutingCase):
    def test_passthrough_records_the_recommendation_without_switching(self):
        result = self.service.send_message(TRIVIAL, provider=self.strong, quality_required="medium")
        self.assertEqual(result["provider_id"], self.strong.id)
        self.assertFalse(result["switched_from"])
        # Medium bar: mid, tiny and strong qualify; tiny is the cheapest per quality point.
        self.assertEqual(result["recommendation"]["provider_id"], self.tiny.id)
        usage = self.env["ai.token.usage"].browse(result["usage_id"])
        self.assertEqual(usage.recommended_provider_id, self.tiny)
        self.assertAlmostEqual(usage.recommended_cost_usd, result["recommendation"]["estimated_cost"])
        self.assertEqual(usage.complexity, "simple")
        self.assertFalse(usage.switched)
        stored = self.env["ai.cost.recommendation"].browse(result["recommendation"]["recommendation_id"])
        self.assertEqual((stored.recommended_provider_id, stored.task_type), (self.tiny, "chat"))

    def test_refused_calls_store_no_recommendation(self):
        count = self.env["ai.cost.recommendation"].search_count([])
        self.fake.queue_responses([{"status": 400}])
        self.assertCallFails(AiProviderError, messages=TRIVIAL, provider=self.strong)
        self.assertEqual(self.env["ai.cost.recommendation"].search_count([]), count)

    def test_smart_router_sends_trivial_prompts_cheap_and_hard_ones_strong(self):
        trivial = self.service.send_message(TRIVIAL, provider=self.strong, mode="smart_router")
        self.assertEqual(trivial["provider_id"], self.cheap.id)
        self.assertEqual(trivial["switched_from"], self.strong.id)
        hard = self.service.send_message(HARD, provider=self.cheap, mode="smart_router")
        self.assertIn(hard["provider_id"], (self.tiny | self.strong).ids)
        usage = self.env["ai.token.usage"].browse(hard["usage_id"])
        self.assertEqual((usage.complexity, usage.quality_required), ("complex", "high"))
        self.assertEqual(usage.provider_id, self.tiny, "tiny is the cheapest per point above the high bar")

    def test_smart_router_never_lowers_a_given_quality_bar(self):
        result = self.service.send_message(TRIVIAL, provider=self.cheap, mode="smart_router", quality_required="high")
        usage = self.env["ai.token.usage"].browse(result["usage_id"])
        self.assertEqual((usage.complexity, usage.quality_required), ("simple", "high"))
        self.assertEqual(usage.provider_id, self.tiny, "tiny is the cheapest per point above the high bar")
        # A given bar below the prompt's complexity is raised to it.
        result = self.service.send_message(HARD, provider=self.cheap, mode="smart_router", quality_required="low")
        usage = self.env["ai.token.usage"].browse(result["usage_id"])
        self.assertEqual((usage.complexity, usage.quality_required), ("complex", "high"))

    def test_auto_switch_needs_both_flags(self):
        company = self.env.company
        for optimize, auto, company_auto, switches in [
            (False, True, False, False),
            (True, False, False, False),
            (True, True, False, True),
            (True, False, True, True),
            (False, False, True, False),
        ]:
            with self.subTest(optimize=optimize, auto=auto, company_auto=company_auto):
                self.strong.write({"enable_cost_optimization": optimize, "auto_switch_provider": auto})
                company.ai_auto_switch_provider = company_auto
                result = self.service.send_message(TRIVIAL, provider=self.strong, quality_required="medium")
                self.assertEqual(result["provider_id"], self.tiny.id if switches else self.strong.id)
                usage = self.env["ai.token.usage"].browse(result["usage_id"])
                self.assertEqual(usage.switched_from_id, self.strong if switches else self.env["ai.service.provider"])

    def test_auto_switch_only_when_cheaper(self):
        # At quality 41, cheap loses per quality point to tiny (q 90) but still costs fewer dollars:
        # an auto-switching passthrough call stays, only the recommendation names tiny.
        self.cheap.write({"auto_switch_provider": True, "quality_score": 41})
        result = self.service.send_message(TRIVIAL, provider=self.cheap, quality_required="low")
        self.assertEqual(result["recommendation"]["provider_id"], self.tiny.id)
        self.assertEqual(result["provider_id"], self.cheap.id)
        self.assertFalse(result["switched_from"])


@tagged("post_install", "-at_install")
class TestFallback(RoutingCase):
    def test_fallback_on_5xx_records_both_providers(self):
        before = self.last_id()
        self.fake.queue_responses([{"status": 500}, {"status": 503}])
        result = self.service.send_message(TRIVIAL, provider=self.cheap, mode="smart_router")
        rows = self.rows_since(before)
        self.assertEqual(rows.mapped("status"), ["error", "error", "ok"])
        self.assertEqual(rows[:2].provider_id, self.cheap)
        samples = self.env["ai.provider.benchmark.report"].search([("usage_id", "in", rows.ids)])
        self.assertEqual(len(samples), 3)
        self.assertEqual(samples.filtered("error_occurred").provider_id, self.cheap)
        # Low bar, ranked cheap, tiny, mid, strong: tiny is next.
        self.assertEqual(rows[2].provider_id, self.tiny)
        self.assertEqual(result["provider_id"], self.tiny.id)
        self.assertEqual(result["switched_from"], self.cheap.id)
        self.assertTrue(all(row.cost_usd == 0 for row in rows[:2]))

    def test_fallback_on_timeout(self):
        with socket.socket() as silent:
            # Accepts connections (backlog) and never answers: every request times out.
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            self.cheap.write({"base_url": f"http://127.0.0.1:{silent.getsockname()[1]}/v1", "timeout": 0.3,
                              "max_retries": 0})
            before = self.last_id()
            result = self.service.send_message(TRIVIAL, provider=self.cheap, mode="smart_router")
        rows = self.rows_since(before)
        self.assertEqual(rows.mapped("status"), ["error", "ok"])
        self.assertEqual(rows[0].error_message, f"No answer from {self.cheap.base_url} within 0.3 s.")
        self.assertEqual(result["provider_id"], self.tiny.id)

    def test_no_fallback_on_invalid_request(self):
        before = self.last_id()
        self.fake.queue_responses([{"status": 400, "message": "bad parameter"}])
        self.assertCallFails(AiProviderError, messages=TRIVIAL, provider=self.cheap, mode="smart_router")
        rows = self.rows_since(before)
        self.assertEqual(rows.mapped("status"), ["error"])
        self.assertEqual(rows.provider_id, self.cheap)
        self.assertEqual(len(self.fake.requests), 1, "nothing was sent to another provider")

    def test_passthrough_falls_back_by_default(self):
        """Default settings (no cost optimization, no auto-switch): a passthrough call whose provider
        answers 503 through its retries is served by the next recommended provider."""
        company = self.env.company
        self.assertTrue(company.ai_fallback_on_failure, "fallback is on by default")
        self.assertFalse(company.ai_enable_cost_optimization or company.ai_auto_switch_provider)
        before = self.last_id()
        self.fake.queue_responses([{"status": 503}, {"status": 503}])
        result = self.service.send_message(TRIVIAL, provider=self.mid)
        rows = self.rows_since(before)
        self.assertEqual(rows.mapped("status"), ["error", "error", "ok"], "one error row per failed attempt")
        self.assertEqual(rows[:2].provider_id, self.mid)
        self.assertEqual(rows.mapped("mode"), ["passthrough"] * 3)
        self.assertTrue(all(row.cost_usd == 0 for row in rows[:2]))
        # Medium bar: tiny, mid, strong qualify; tiny is the cheapest per quality point.
        self.assertEqual((rows[2].id, rows[2].provider_id), (result["usage_id"], self.tiny))
        self.assertEqual((result["provider_id"], result["switched_from"]), (self.tiny.id, self.mid.id))
        self.assertGreater(result["cost_usd"], 0)

    def test_passthrough_without_fallback_does_not_fall_back(self):
        self.env.company.ai_fallback_on_failure = False
        before = self.last_id()
        self.fake.queue_responses([{"status": 500}, {"status": 500}])
        error = self.assertCallFails(AiProviderError, messages=TRIVIAL, provider=self.cheap)
        self.assertEqual(self.rows_since(before).mapped("status"), ["error", "error"])
        self.assertEqual(len(self.fake.requests), 2, "nothing was sent to another provider")
        self.assertIn("The AI provider 'Cheap' failed: ", str(error))
        self.assertIn("HTTP 500", str(error))

    def test_smart_router_without_fallback_does_not_fall_back(self):
        self.env.company.ai_fallback_on_failure = False
        before = self.last_id()
        self.fake.queue_responses([{"status": 500}, {"status": 500}])
        error = self.assertCallFails(AiProviderError, messages=TRIVIAL, provider=self.strong, mode="smart_router")
        rows = self.rows_since(before)
        self.assertEqual(rows.mapped("status"), ["error", "error"])
        self.assertEqual(rows.provider_id, self.cheap, "the router picked cheap, which failed")
        self.assertIn("The AI provider 'Cheap' failed: ", str(error))

    def test_every_provider_failing_raises(self):
        before = self.last_id()
        self.fake.queue_responses([{"status": 500}] * 8)
        error = self.assertCallFails(AiProviderError, messages=TRIVIAL, provider=self.cheap, mode="smart_router")
        rows = self.rows_since(before)
        self.assertEqual(len(rows), 8)
        self.assertEqual(set(rows.mapped("status")), {"error"})
        self.assertEqual(rows.provider_id, self.all_providers)
        # Low bar, ranked cheap, tiny, mid, strong: the error names each, in the order tried.
        message = str(error)
        names = [f"'{provider.name}': Provider server error (HTTP 500)"
                 for provider in (self.cheap, self.tiny, self.mid, self.strong)]
        self.assertIn("The 4 AI providers tried failed, in this order: ", message)
        self.assertEqual([message.index(name) for name in names], sorted(message.index(name) for name in names))

    def test_every_provider_failing_in_passthrough_names_them_all(self):
        before = self.last_id()
        self.fake.queue_responses([{"status": 503}] * 6)
        error = self.assertCallFails(AiProviderError, messages=TRIVIAL, provider=self.mid)
        rows = self.rows_since(before)
        # Medium bar: mid (asked), then tiny and strong, the alternatives that qualify.
        self.assertEqual(rows.mapped("status"), ["error"] * 6)
        self.assertEqual([row.provider_id.name for row in rows], ["Mid"] * 2 + ["Tiny window"] * 2 + ["Strong"] * 2)
        message = str(error)
        self.assertTrue(message.startswith("The 3 AI providers tried failed, in this order: 'Mid': "), message)
        self.assertLess(message.index("'Tiny window': "), message.index("'Strong': "))
        self.assertIn("HTTP 503", message)
        self.assertNotIn("sk-test", message)

    def test_fallback_skips_a_provider_its_budget_blocks(self):
        """A fallback provider is checked against its own budgets: one that blocks it is skipped, and
        the failed provider's reservation is released."""
        Budget = self.env["ai.cost.budget"]
        mid_budget = Budget.create({"name": "Mid", "budget_amount": 100.0, "provider_ids": [(6, 0, self.mid.ids)]})
        tiny_budget = Budget.create({"name": "Tiny", "budget_amount": 1e-6, "provider_ids": [(6, 0, self.tiny.ids)]})
        before = self.last_id()
        self.fake.queue_responses([{"status": 503}, {"status": 503}])
        result = self.service.send_message(TRIVIAL, provider=self.mid)
        rows = self.rows_since(before)
        self.assertEqual(rows.mapped("status"), ["error", "error", "ok"])
        self.assertEqual(result["provider_id"], self.strong.id, "tiny's budget blocks it: strong is next")
        self.env.invalidate_all()
        for budget in (mid_budget, tiny_budget):
            self.assertEqual((budget.current_spend, budget.current_reserved), (0.0, 0.0), budget.name)


@tagged("post_install", "-at_install")
class TestBenchmarks(RoutingCase):
    def test_compare_providers_agrees_with_usage(self):
        # mid's failed call below must stay a failed call of mid, not fall back to another provider.
        self.env.company.ai_fallback_on_failure = False
        before = self.last_id()
        for _ in range(3):
            self.service.send_message(TRIVIAL, provider=self.cheap)
        self.fake.queue_responses([{"status": 500}, {"status": 500}])
        self.assertCallFails(AiProviderError, messages=TRIVIAL, provider=self.mid)
        self.fake.set_reply("A longer reply from the fake provider, to change the cost. " * 5)
        for _ in range(2):
            self.service.send_message(TRIVIAL, provider=self.mid)
        self.service.send_message(TRIVIAL, provider=self.mid, task_type="summarize")
        rows = self.rows_since(before).filtered(lambda row: row.task_type == "chat")
        report = {line["provider_id"]: line for line in self.env["ai.provider.benchmark"].compare_providers("chat")}
        self.assertEqual(set(report), {self.cheap.id, self.mid.id})
        for provider in (self.cheap, self.mid):
            mine = rows.filtered(lambda row, p=provider: row.provider_id == p)
            ok = mine.filtered(lambda row: row.status == "ok")
            line = report[provider.id]
            self.assertEqual(line["calls"], len(mine))
            self.assertEqual(line["errors"], len(mine - ok))
            self.assertAlmostEqual(line["error_rate"], len(mine - ok) / len(mine))
            self.assertAlmostEqual(line["avg_cost_usd"], sum(ok.mapped("cost_usd")) / len(ok))
            self.assertAlmostEqual(line["avg_latency_ms"], sum(ok.mapped("latency_ms")) / len(ok), places=3)
            latencies = sorted(ok.mapped("latency_ms"))
            position = 0.95 * (len(latencies) - 1)
            low = int(position)
            p95 = latencies[low] + (latencies[min(low + 1, len(latencies) - 1)] - latencies[low]) * (position - low)
            self.assertAlmostEqual(line["p95_latency_ms"], p95, places=3)
            self.assertAlmostEqual(line["avg_quality"], provider.effective_quality)
            self.assertAlmostEqual(line["cost_per_quality_point"], line["avg_cost_usd"] / provider.effective_quality)
        self.assertEqual(report[self.mid.id]["errors"], 2)

    def test_benchmark_samples_are_the_calls_sent_to_a_provider_and_the_external_runs(self):
        """A call that reached a provider is a sample through its usage row, answered or failed; a cache
        hit, a refused call and a prompt stopped before sending are not. External runs join them; a
        failed or unpriced call measures no cost, an unrated one no quality."""
        self.env.company.write({"ai_fallback_on_failure": False, "ai_response_cache": True})
        unpriced = self.env["ai.service.provider"].create(
            self._provider_vals(self.fake, "openai_compatible", name="Unpriced", model="llama-local-test")
        )
        Report, Benchmark = self.env["ai.provider.benchmark.report"], self.env["ai.provider.benchmark"]
        before_rows, before_runs = self.last_id(), Benchmark.search_count([])
        served = self.service.send_message(TRIVIAL, provider=self.mid)
        self.assertTrue(self.service.send_message(TRIVIAL, provider=self.mid)["cache_hit"])
        self.fake.queue_responses([{"status": 500}, {"status": 500}])  # a failed attempt, then its retry
        self.assertCallFails(AiProviderError, messages=TRIVIAL + [{"role": "user", "content": "Again?"}],
                             provider=self.mid)
        self.assertCallFails(AiProviderError, messages=[{"role": "user", "content": "word " * 5000}],
                             provider=self.tiny)
        self.service.send_message(TRIVIAL, provider=unpriced)
        self.env["ai.token.usage"].browse(served["usage_id"]).rate_quality(30)
        Benchmark.log_benchmark(self.mid.id, "chat", "simple", 100, 50, 0.5, 900.0, quality_score=90)
        Benchmark.log_benchmark(self.mid.id, "chat", "simple", 100, 0, 0.0, 0.0, error_occurred=True)
        self.assertEqual(Benchmark.search_count([]) - before_runs, 2, "the gateway writes no benchmark run")

        rows = self.rows_since(before_rows)
        self.assertEqual(len(rows), 6)
        samples = Report.search([("usage_id", "in", rows.ids)])
        self.assertEqual(
            sorted((sample.provider_id.name, sample.error_occurred) for sample in samples),
            [("Mid", False), ("Mid", True), ("Mid", True), ("Unpriced", False)],
        )
        self.assertEqual(Report.search_count([("provider_id", "=", self.tiny.id)]), 0)
        line = {line["provider_id"]: line for line in Benchmark.compare_providers("chat")}
        mid, served_row = line[self.mid.id], self.env["ai.token.usage"].browse(served["usage_id"])
        self.assertEqual((mid["calls"], mid["errors"]), (5, 3))
        self.assertAlmostEqual(mid["avg_cost_usd"], (served_row.cost_usd + 0.5) / 2)
        self.assertAlmostEqual(mid["avg_latency_ms"], (served_row.latency_ms + 900.0) / 2, places=3)
        self.assertAlmostEqual(mid["avg_quality"], (30 + 90) / 2)
        self.assertEqual((self.mid.benchmark_quality, self.mid.benchmark_quality_samples), (60.0, 2))
        self.assertEqual((line[unpriced.id]["calls"], line[unpriced.id]["avg_cost_usd"]), (1, 0.0))

    def test_compare_providers_bad_input(self):
        Benchmark = self.env["ai.provider.benchmark"]
        for junk in ("nope", "chat\x00", None, "x" * 100_000):
            with self.assertRaisesRegex(ValidationError, "Unknown task type"):
                Benchmark.compare_providers(junk)
        for junk in ("1", True, -1, 2**40):
            with self.assertRaisesRegex(ValidationError, "Unknown AI provider"):
                Benchmark.log_benchmark(junk, "chat", "simple", 1, 1, 0.0, 1.0)
        with self.assertRaisesRegex(ValidationError, "period_days"):
            Benchmark.compare_providers("chat", period_days=0)

    def test_ratings_feed_benchmark_quality(self):
        results = [self.service.send_message(TRIVIAL, provider=self.mid) for _ in range(2)]
        usages = self.env["ai.token.usage"].browse([result["usage_id"] for result in results])
        usages[0].action_thumbs_down()
        usages[1].rate_quality(40, feedback="Too vague")
        self.assertEqual((self.mid.benchmark_quality, self.mid.benchmark_quality_samples), (20.0, 2))
        # Prior 70, two ratings averaging 20: 70 * 20/22 + 20 * 2/22.
        self.assertAlmostEqual(self.mid.effective_quality, 70 * 20 / 22 + 20 * 2 / 22)
        line = next(line for line in self.env["ai.provider.benchmark"].compare_providers("chat")
                    if line["provider_id"] == self.mid.id)
        self.assertAlmostEqual(line["avg_quality"], 20.0)
        self.assertEqual(usages[1].feedback, "Too vague")
        with self.assertRaisesRegex(ValidationError, "0 to 100"):
            usages[0].rate_quality(101)

    def test_users_rate_their_own_calls(self):
        user = self.env["res.users"].create({
            "name": "Rating user", "login": "rating_user_ai",
            "groups_id": [(6, 0, [self.env.ref("ai_cost_optimizer.group_ai_cost_user").id])],
        })
        result = self.service.with_user(user).send_message(TRIVIAL, provider=self.mid)
        usage = self.env["ai.token.usage"].with_user(user).browse(result["usage_id"])
        usage.action_thumbs_up()
        self.assertEqual((usage.quality_score, usage.quality_rated), (100, True))
        self.assertEqual((self.mid.benchmark_quality, self.mid.benchmark_quality_samples), (100.0, 1))
        # Typed in the form's feedback page: the same effect.
        usage.write({"quality_score": 60})
        self.assertEqual(self.mid.benchmark_quality, 60.0)

    def test_cached_figures_spare_the_ledger(self):
        """recommend_provider reads providers and task types only: its query count does not depend
        on the number of benchmark rows."""
        optimizer = self.env["ai.cost.optimizer"]
        optimizer.recommend_provider("chat", 100)
        with self.assertQueryCount(__system__=3):
            optimizer.recommend_provider("chat", 100)
        for _ in range(30):
            self.env["ai.provider.benchmark"].log_benchmark(self.mid.id, "chat", "simple", 10, 10, 0.0, 1.0)
        self.env.invalidate_all()
        optimizer.recommend_provider("chat", 100)
        with self.assertQueryCount(__system__=3):
            optimizer.recommend_provider("chat", 100)


@tagged("post_install", "-at_install")
class TestAbExperiments(RoutingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.experiment = cls.env["ai.provider.experiment"].create({
            "name": "Cheap vs mid on chat",
            "task_type_id": cls.env.ref("ai_cost_optimizer.task_type_chat").id,
            "arm_ids": [
                (0, 0, {"name": "A", "provider_id": cls.cheap.id, "percentage": 30}),
                (0, 0, {"name": "B", "provider_id": cls.mid.id, "percentage": 70}),
            ],
        })

    def test_percentages_must_sum_to_100(self):
        with self.assertRaisesRegex(ValidationError, "add up to 90"):
            self.env["ai.provider.experiment"].create({
                "name": "Bad", "task_type_id": self.env.ref("ai_cost_optimizer.task_type_chat").id,
                "arm_ids": [(0, 0, {"name": "A", "provider_id": self.cheap.id, "percentage": 40}),
                            (0, 0, {"name": "B", "provider_id": self.mid.id, "percentage": 50})],
            })

    def test_start_stop_and_sticky_assignment(self):
        Benchmark = self.env["ai.provider.benchmark"]
        self.assertFalse(Benchmark.get_ab_test_group("chat"))
        self.experiment.action_start()
        first = Benchmark.get_ab_test_group("chat")
        self.assertEqual(first["experiment_id"], self.experiment.id)
        self.assertEqual([Benchmark.get_ab_test_group("chat") for _ in range(5)], [first] * 5)
        # Stored in PostgreSQL: the assignment stays when the percentages change.
        self.env.cr.execute("SELECT arm_id FROM ai_provider_experiment_assignment WHERE user_id = %s",
                            [self.env.uid])
        self.assertEqual(self.env.cr.fetchall(), [(first["arm_id"],)])
        for change in (lambda: self.experiment.arm_ids[0].write({"percentage": 30}),
                       lambda: self.experiment.arm_ids[0].unlink()):
            with self.assertRaisesRegex(UserError, "Stop the experiment"):
                change()
        self.experiment.action_stop()
        self.assertEqual(self.experiment.state, "stopped")
        self.assertFalse(Benchmark.get_ab_test_group("chat"))

    def test_1000_users_follow_the_percentages(self):
        self.experiment.action_start()
        Users = self.env["res.users"]
        arms = [self.experiment._arm_for_user(Users.browse(user_id)) for user_id in range(1, 1001)]
        share_a = sum(arm == self.experiment.arm_ids[0] for arm in arms) / 1000
        # 30% of 1,000, within four binomial standard deviations (about 5.8 points).
        self.assertAlmostEqual(share_a, 0.30, delta=4 * (0.3 * 0.7 / 1000) ** 0.5)

    def test_pinned_passthrough_calls_are_not_split(self):
        self.experiment.action_start()
        result = self.service.send_message(TRIVIAL, provider=self.strong)
        self.assertEqual(result["provider_id"], self.strong.id)
        unpinned = self.service.send_message(TRIVIAL)
        arm = self.env["ai.provider.benchmark"].get_ab_test_group("chat")
        self.assertEqual(unpinned["provider_id"], arm["provider_id"])
        self.assertEqual(self.env["ai.token.usage"].browse(unpinned["usage_id"]).ab_arm_id.id, arm["arm_id"])

    def test_calls_follow_the_arm_and_report_per_arm(self):
        self.experiment.action_start()
        arm = self.env["ai.provider.experiment.arm"].browse(
            self.env["ai.provider.benchmark"].get_ab_test_group("chat")["arm_id"])
        self.strong.auto_switch_provider = True
        results = [self.service.send_message(TRIVIAL, provider=self.strong) for _ in range(2)]
        self.assertEqual({result["provider_id"] for result in results}, {arm.provider_id.id})
        usages = self.env["ai.token.usage"].browse([result["usage_id"] for result in results])
        self.assertEqual(usages.ab_arm_id, arm)
        usages[0].rate_quality(80)
        arm.invalidate_recordset()
        self.assertEqual((arm.calls, arm.error_rate, arm.rated_calls, arm.avg_quality), (2, 0.0, 1, 80.0))
        self.assertAlmostEqual(arm.avg_cost_usd, sum(usages.mapped("cost_usd")) / 2)
        self.assertAlmostEqual(arm.avg_latency_ms, sum(usages.mapped("latency_ms")) / 2)
