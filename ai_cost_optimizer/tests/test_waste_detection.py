from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from ..core.tokens import count_text_tokens
from .common import SYSTEM_PROMPT, AiCostCase

BLOCK = "Lead 42 is a hardware wholesaler in Lyon with 40 employees, a confirmed budget and a Q3 deadline."
LONG_SYSTEM = "You are the assistant of an Odoo CRM. Answer with the lead's score and one reason. " * 200


@tagged("post_install", "-at_install")
class TestWasteDetection(AiCostCase):
    """A positive and a negative case per rule, through the gateway, asserting tokens and dollars."""

    def _send(self, content="Qualify lead 42.", provider=None, messages=None, **kwargs):
        kwargs.setdefault("operation", "lead_qualification")
        result = self.env["ai.service"].send_message(
            messages or [{"role": "user", "content": content}], provider=provider or self.gpt, **kwargs
        )
        return self.env["ai.token.usage"].browse(result["usage_id"]), result

    def _configure(self, record, **vals):
        """Settings are read on the gateway's ledger transaction: flush them to the database."""
        record.write(vals)
        self.env.flush_all()

    def _finding(self, usage, rule):
        findings = usage.waste_finding_ids.filtered(lambda finding: finding.rule == rule)
        self.assertLessEqual(len(findings), 1)
        return findings

    def _input_cost(self, usage, tokens):
        return tokens * usage.price_id.input_price / 1e6

    def test_duplicate_query(self):
        first, _result = self._send()
        self.assertFalse(self._finding(first, "duplicate_query"))
        second, result = self._send()
        finding = self._finding(second, "duplicate_query")
        self.assertEqual(finding.tokens_wasted, second.input_tokens + second.output_tokens)
        self.assertAlmostEqual(finding.cost_wasted_usd, second.cost_usd, places=10)
        self.assertEqual(result["waste_report"]["findings"][0]["type"], "duplicate_query")
        self.assertTrue(second.waste_detected)
        self.assertEqual(second.waste_reason, "Duplicate query")
        self.assertAlmostEqual(second.could_have_saved_usd, second.cost_usd, places=10)
        self.assertEqual(second.optimization_score, 0)

    def test_no_duplicate_for_another_operation_or_outside_the_window(self):
        self._send()
        other, _result = self._send(operation="lead_scoring")
        self.assertFalse(other.waste_detected)
        self.assertFalse(other.waste_finding_ids)
        self._configure(self.env.company, ai_waste_duplicate_window_minutes=1)
        self.env.cr.execute("UPDATE ai_token_usage SET create_date = create_date - interval '2 minutes'")
        self.env.invalidate_all()
        later, _result = self._send()
        self.assertFalse(self._finding(later, "duplicate_query"))

    def test_redundant_context(self):
        usage, _result = self._send(f"{BLOCK}\n\nQualify this lead.\n\n{BLOCK}\n\n{BLOCK}\n\n{BLOCK}")
        finding = self._finding(usage, "redundant_context")
        tokens = 3 * count_text_tokens(BLOCK, "gpt-4o-mini").tokens
        self.assertEqual(finding.tokens_wasted, tokens)
        self.assertAlmostEqual(finding.cost_wasted_usd, self._input_cost(usage, tokens), places=12)
        single, _result = self._send(f"{BLOCK}\n\nQualify this lead.")
        self.assertFalse(self._finding(single, "redundant_context"))

    def test_oversized_context(self):
        self._configure(self.env.company, ai_waste_oversized_input_tokens=100)
        usage, _result = self._send(SYSTEM_PROMPT)
        finding = self._finding(usage, "oversized_context")
        self.assertGreater(usage.input_tokens, 100)
        self.assertEqual(finding.tokens_wasted, usage.input_tokens - 100)
        self.assertAlmostEqual(finding.cost_wasted_usd, self._input_cost(usage, usage.input_tokens - 100), places=12)
        short, _result = self._send("Qualify lead 7.")
        self.assertFalse(self._finding(short, "oversized_context"))

    def test_wrong_model(self):
        usage, _result = self._send(provider=self.claude)
        finding = self._finding(usage, "wrong_model")
        cheaper = self.gpt._price_at(usage.create_date)
        gpt_cost = (usage.input_tokens * cheaper.input_price + usage.output_tokens * cheaper.output_price) / 1e6
        self.assertEqual(finding.tokens_wasted, usage.input_tokens + usage.output_tokens)
        self.assertAlmostEqual(finding.cost_wasted_usd, usage.cost_usd - gpt_cost, places=12)
        self.assertIn(self.gpt.name, finding.recommendation)
        # The cheapest provider itself is not the wrong model.
        cheap, _result = self._send(provider=self.gpt, operation="other")
        self.assertFalse(self._finding(cheap, "wrong_model"))

    def test_unnecessary_history(self):
        old_turns = [
            {"role": "user", "content": "Earlier ticket: " + BLOCK * 6},
            {"role": "assistant", "content": "Category: sales. " + BLOCK * 2},
        ]
        messages = [*old_turns, {"role": "user", "content": "Classify: the printer is on fire."}]
        usage, _result = self._send(messages=messages, task_type="classify")
        finding = self._finding(usage, "unnecessary_history")
        self.assertGreaterEqual(usage.history_tokens, 200)
        self.assertEqual(finding.tokens_wasted, usage.history_tokens)
        self.assertAlmostEqual(finding.cost_wasted_usd, self._input_cost(usage, usage.history_tokens), places=12)
        chat, _result = self._send(messages=messages, task_type="chat", operation="chat")
        self.assertEqual(chat.history_tokens, usage.history_tokens)
        self.assertFalse(self._finding(chat, "unnecessary_history"))

    def _send_long_system(self, question):
        return self._send(
            messages=[{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": question}],
            provider=self.claude,
        )

    def test_missed_cache(self):
        self._configure(self.claude, enable_prompt_caching=False)
        first, _result = self._send_long_system("Qualify lead 1.")
        self.assertFalse(self._finding(first, "missed_cache"))
        second, _result = self._send_long_system("Qualify lead 2.")
        finding = self._finding(second, "missed_cache")
        self.assertGreaterEqual(second.static_prefix_tokens, 2048)
        self.assertEqual(finding.tokens_wasted, second.static_prefix_tokens)
        price = second.price_id
        measured = second.static_prefix_tokens * (price.input_price - price.cache_read_price) / 1e6
        # The rules before it (a cheaper model) may have counted part of the call's cost already: the findings
        # share the call's cost, so that the Waste Report sums to the calls' savings (core.waste.analyze).
        before = sum((second.waste_finding_ids - finding).mapped("cost_wasted_usd"))
        self.assertAlmostEqual(finding.cost_wasted_usd, min(measured, second.cost_usd - before), places=12)
        self.assertAlmostEqual(sum(second.waste_finding_ids.mapped("cost_wasted_usd")), second.could_have_saved_usd,
                               places=12)

    def test_no_missed_cache_when_the_prompt_cache_is_read(self):
        self._send_long_system("Qualify lead 1.")
        second, _result = self._send_long_system("Qualify lead 2.")
        self.assertGreater(second.cache_read_tokens, 0)
        self.assertFalse(self._finding(second, "missed_cache"))

    def test_rerun_replaces_findings_and_provider_switch_off(self):
        self._send()
        usage, _result = self._send()
        report = self.env["ai.token.analytics"].analyze_waste(usage.id)
        self.assertEqual(len(usage.waste_finding_ids), len(report["findings"]))
        self.assertEqual(report["potential_savings_usd"], usage.could_have_saved_usd)
        self._configure(self.gpt, enable_waste_detection=False)
        off, result = self._send()
        self.assertIsNone(result["waste_report"])
        self.assertFalse(off.waste_detected)

    def test_analyze_waste_bad_ids(self):
        Analytics = self.env["ai.token.analytics"]
        for bad in (0, -1, "12", None, 2**31 - 1):
            with self.assertRaises(UserError):
                Analytics.analyze_waste(bad)
        usage, _result = self._send()
        other = self.env["res.company"].create({"name": "Other AI Co"})
        with self.assertRaises(UserError):
            Analytics.with_company(other).with_context(allowed_company_ids=[other.id]).analyze_waste(usage.id)

    def test_settings_refuse_nonsense_thresholds(self):
        for field, value in (
            ("ai_waste_duplicate_window_minutes", 0),
            ("ai_waste_cache_window_minutes", -5),
            ("ai_waste_history_min_tokens", -1),
            ("ai_waste_near_window_pct", 150),
            ("ai_waste_wrong_model_saving_pct", 0),
            ("ai_response_cache_ttl_hours", 0),
        ):
            with self.subTest(field=field), self.assertRaises(ValidationError):
                self.env.company.write({field: value})

    def test_manager_marks_findings_reviewed(self):
        groups = "base.group_user,ai_cost_optimizer.group_ai_cost_"
        user = new_test_user(self.env, "waste_user", groups=groups + "user")
        manager = new_test_user(self.env, "waste_manager", groups=groups + "manager")
        Service = self.env["ai.service"].with_user(user)
        Service.send_message([{"role": "user", "content": "Qualify lead 9."}], provider=self.gpt)
        result = Service.send_message([{"role": "user", "content": "Qualify lead 9."}], provider=self.gpt)
        finding = self.env["ai.token.waste.finding"].search([("usage_id", "=", result["usage_id"])])
        self.assertEqual(finding.rule, "duplicate_query")
        self.assertEqual(finding.with_user(user).search([]), finding, "users see the findings of their calls")
        with self.assertRaises(AccessError):
            finding.with_user(user).action_mark_reviewed()
        finding.with_user(manager).action_mark_reviewed()
        self.assertEqual((finding.reviewed, finding.reviewed_by_id), (True, manager))
