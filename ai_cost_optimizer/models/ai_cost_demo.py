import itertools
import random
from dataclasses import replace
from datetime import datetime, time, timedelta

from odoo import Command, api, fields, models

from ..core import pricing
from ..core import recommendation as ranking_rules
from ..core.periods import report_period_bounds
from ..core.usage import Usage
from ..core.waste import ADVICE, RULES
from .ai_token_analytics import PERIOD_TYPES
from .ai_token_waste_finding import RULE_LABELS

# operation: (task type, weight, prompt tokens (mean), answer tokens (mean), about a record?)
OPERATIONS = {
    "lead_qualification": ("classify", 20, 900, 60, "lead"),
    "lead_summary": ("summarize", 14, 3500, 300, "lead"),
    "email_draft": ("chat", 18, 1200, 450, "partner"),
    "ticket_triage": ("classify", 12, 700, 40, "partner"),
    "invoice_extraction": ("extract", 9, 2600, 250, "partner"),
    "product_description": ("chat", 7, 500, 600, None),
    "translation": ("translate", 8, 800, 850, "partner"),
    "chatbot": ("chat", 12, 2200, 350, None),
}
# Which providers serve an operation, by demo provider xml id and weight.
PROVIDER_MIX = {
    "classify": {"demo_provider_gpt4o_mini": 5, "demo_provider_claude_haiku": 3, "demo_provider_ollama": 2,
                 "demo_provider_claude_sonnet": 1},
    "summarize": {"demo_provider_claude_haiku": 4, "demo_provider_claude_sonnet": 3, "demo_provider_gemini_flash": 3},
    "chat": {"demo_provider_claude_sonnet": 3, "demo_provider_gpt4o_mini": 4, "demo_provider_deepseek": 3},
    "extract": {"demo_provider_gemini_flash": 4, "demo_provider_claude_haiku": 3, "demo_provider_deepseek": 2},
    "translate": {"demo_provider_deepseek": 4, "demo_provider_gpt4o_mini": 3, "demo_provider_ollama": 2},
}
# The rated quality of the demo providers' answers (mean of a user's 0-100 rating).
QUALITY = {"demo_provider_claude_haiku": 78, "demo_provider_claude_sonnet": 90, "demo_provider_gpt4o_mini": 76,
           "demo_provider_gemini_flash": 74, "demo_provider_deepseek": 80, "demo_provider_ollama": 58}
LATENCY_MS = {"demo_provider_claude_haiku": 900, "demo_provider_claude_sonnet": 2400, "demo_provider_gpt4o_mini": 1100,
              "demo_provider_gemini_flash": 800, "demo_provider_deepseek": 1800, "demo_provider_ollama": 3000}
WASTE_RULES = ["duplicate_query", "redundant_context", "oversized_context", "wrong_model", "unnecessary_history",
               "missed_cache"]
USERS = ["demo_user_alice", "demo_user_bruno", "demo_user_chen", "demo_user_dina", "demo_user_emil"]
CALLS_PER_WEEKDAY = 160
BATCH = 2000


class AiCostDemo(models.AbstractModel):
    """Generates the demo ledger: realistic usage over several providers, operations, users and records,
    with its waste report and analytics periods."""

    _name = "ai.cost.demo"
    _description = "AI Cost Demo Data"

    @api.model
    def generate(self, days=90, seed=0):
        """Write `days` days of usage rows (deterministic for a `seed`; their rollups follow them in create())."""
        rng = random.Random(seed)
        providers = {xml_id: self.env.ref(f"ai_cost_optimizer.{xml_id}") for xml_id in LATENCY_MS}
        start = fields.Datetime.now() - timedelta(days=days + 5)
        prices = {}
        for xml_id, provider in providers.items():
            # The demo history predates the providers' creation: let their prices cover it.
            provider.price_ids.write({"date_start": start})
            price = provider._price_at(fields.Datetime.now())
            prices[xml_id] = (price.id, price._as_core_price()) if price else (None, None)
        users = [self.env.ref(f"ai_cost_optimizer.{xml_id}").id for xml_id in USERS]
        users.append(self.env.ref("base.user_admin").id)
        records = self._demo_records()
        today = fields.Date.context_today(self)
        rows = []
        for offset in range(days, -1, -1):
            day = today - timedelta(days=offset)
            growth = 0.6 + 0.8 * (days - offset) / days
            weekday_factor = 1.0 if day.weekday() < 5 else 0.25
            for _n in range(int(CALLS_PER_WEEKDAY * growth * weekday_factor * rng.uniform(0.85, 1.15))):
                rows.append(self._demo_row(rng, day, providers, prices, users, records))
                if len(rows) >= BATCH:
                    self._insert(rows)
                    rows = []
        self._insert(rows)
        self._demo_extras(providers)
        return True

    def _demo_records(self):
        """Records the calls are about: leads when CRM is installed, partners otherwise."""
        partners = self.env["res.partner"].search([("is_company", "=", True)], limit=30).ids or self.env[
            "res.partner"
        ].search([], limit=30).ids
        records = {"partner": ("res.partner", partners)}
        if "crm.lead" in self.env:
            leads = self.env["crm.lead"].search([], limit=60).ids
            records["lead"] = ("crm.lead", leads) if leads else records["partner"]
        else:
            records["lead"] = records["partner"]
        return records

    def _demo_row(self, rng, day, providers, prices, users, records):
        operation = rng.choices(list(OPERATIONS), weights=[spec[1] for spec in OPERATIONS.values()])[0]
        task_type, _weight, prompt_mean, answer_mean, record_kind = OPERATIONS[operation]
        mix = PROVIDER_MIX[task_type]
        xml_id = rng.choices(list(mix), weights=list(mix.values()))[0]
        provider = providers[xml_id]
        price_id, price = prices[xml_id]
        res_model, res_id = None, 0
        if record_kind and records[record_kind][1]:
            res_model = records[record_kind][0]
            res_id = rng.choice(records[record_kind][1])
        # Working hours, in UTC for simplicity.
        when = datetime.combine(day, time(7)) + timedelta(seconds=rng.randint(0, 11 * 3600))
        input_tokens = max(20, int(rng.gauss(prompt_mean, prompt_mean * 0.35)))
        output_tokens = max(5, int(rng.gauss(answer_mean, answer_mean * 0.4)))
        roll = rng.random()
        status = "error" if roll < 0.025 else "ok"
        cache_hit = status == "ok" and roll > 0.93
        cache_read = int(input_tokens * 0.7) if provider.kind == "anthropic" and rng.random() < 0.35 else 0
        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cache_read)
        cost = pricing.compute_cost(usage, price) if price and status == "ok" and not cache_hit else 0.0
        savings = 0.0
        if price and cache_read and status == "ok" and not cache_hit:
            savings = pricing.cache_read_savings(cache_read, price.input_per_mtok, price.cache_read_per_mtok)
        waste = status == "ok" and not cache_hit and rng.random() < 0.12
        rule = rng.choice(WASTE_RULES) if waste else None
        rated = status == "ok" and not cache_hit and rng.random() < 0.08
        failed, served = status == "error", status == "ok" and not cache_hit
        return {
            "create_date": when, "write_date": when, "user_id": rng.choice(users),
            "company_id": provider.company_id.id, "provider_id": provider.id, "model": provider.model,
            "mode": "smart_router" if rng.random() < 0.3 else "passthrough", "operation": operation,
            "res_model": res_model, "res_id": res_id, "task_type": task_type,
            "quality_required": rng.choice(["low", "medium", "medium", "high"]),
            "input_tokens": 0 if failed else input_tokens, "output_tokens": 0 if failed else output_tokens,
            "cache_read_tokens": 0 if failed else cache_read, "estimated_input_tokens": input_tokens,
            "estimate_exact": True, "usage_reported": True, "context_size_tokens": input_tokens,
            "cost_usd": cost, "cost_unknown": served and price is None, "price_id": price_id if served else False,
            "prompt_cache_savings_usd": savings,
            "latency_ms": 0.0 if cache_hit else rng.gauss(LATENCY_MS[xml_id], LATENCY_MS[xml_id] * 0.25)
            + output_tokens * 2,
            "cache_hit": cache_hit, "status": status, "error_message": "HTTP 529: overloaded" if failed else False,
            "attempts": 3 if failed else 1, "prompt_hash": f"demo-{operation}-{rng.randint(0, 400)}",
            "waste_detected": waste, "waste_reason": rule or False,
            "could_have_saved_usd": cost * rng.uniform(0.15, 0.6) if waste else 0.0,
            "optimization_score": rng.randint(30, 75) if waste else 100, "switched": rng.random() < 0.05,
            "provider_called": not cache_hit,
            "quality_score": min(100, max(0, int(rng.gauss(QUALITY[xml_id], 10)))) if rated else 0,
            "quality_rated": rated,
        }

    def _insert(self, rows):
        # create_date is the call's: the superuser may set it while the registry loads (the demo data's install).
        if rows:
            self.env["ai.token.usage"].create(rows)

    def _demo_extras(self, providers):
        """Budgets at several fill levels, the figures the optimizer learns from the rated calls,
        recommendations, a running A/B test, waste findings and analytics periods."""
        self._demo_budgets(providers)
        self.env["ai.provider.benchmark"]._cron_refresh_figures()
        rng = random.Random(7)
        experiment = self.env["ai.provider.experiment"].create({
            "name": "Summaries: Haiku against GPT-4o mini",
            "task_type_id": self.env.ref("ai_cost_optimizer.task_type_summarize").id,
            "arm_ids": [
                Command.create({"name": arm, "provider_id": providers[xml_id].id, "percentage": 50})
                for arm, xml_id in (("A", "demo_provider_claude_haiku"), ("B", "demo_provider_gpt4o_mini"))
            ],
        })
        experiment.action_start()
        self._demo_recommendations(rng)
        self._demo_waste_findings()
        self._demo_analytics_periods()

    def _demo_recommendations(self, rng, days=90, per_question=6):
        """What the optimizer recommended over the demo period: `per_question` answers per task type of
        the demo operations and quality bar, at various prompt sizes. The demo providers have no API
        key, so the optimizer rightly finds none usable: they are ranked as once keys are entered."""
        Optimizer = self.env["ai.cost.optimizer"]
        now = fields.Datetime.now()
        vals_list = []
        for task_type in sorted({task_type for task_type, *_rest in OPERATIONS.values()}):
            output_tokens = Optimizer._expected_output_tokens(task_type)
            candidates = [replace(candidate, usable=True) for candidate in Optimizer._candidates(task_type)]
            for quality, _n in itertools.product(("low", "medium", "high"), range(per_question)):
                tokens = rng.randint(300, 6000)
                ranking = ranking_rules.rank(candidates, tokens, output_tokens, quality)
                result = Optimizer._result(ranking, task_type, quality, output_tokens)
                vals = Optimizer._recommendation_values(result, task_type, tokens, quality, None)
                vals["date"] = now - timedelta(days=rng.uniform(0, days))
                vals_list.append(vals)
        self.env["ai.cost.recommendation"].create(vals_list)

    def _demo_budgets(self, providers):
        """A roomy company budget, a tight one for sales operations and a provider cap that blocks."""
        month_spend = sum(
            cost for (cost,) in self.env["ai.token.usage.daily"]._read_group(
                [("day", ">=", fields.Date.context_today(self).replace(day=1))], [], ["cost_usd:sum"]
            )
        )
        Operation = self.env["ai.cost.budget.operation"]
        sales = Operation.create([{"name": "lead_qualification"}, {"name": "lead_summary"}])
        self.env["ai.cost.budget"].create([
            {"name": "Company AI budget", "budget_amount": round(month_spend * 1.6, 2) or 1.0},
            {"name": "Sales assistants", "budget_amount": round(month_spend * 0.3, 2) or 1.0,
             "operation_ids": [Command.set(sales.ids)]},
            {"name": "Claude Sonnet cap", "budget_amount": round(max(month_spend * 0.05, 0.01), 2),
             "provider_ids": [Command.set(providers["demo_provider_claude_sonnet"].ids)], "block_at_threshold": 100},
        ])

    def _demo_waste_findings(self):
        """One finding per demo row flagged with waste (its waste_reason is the rule): the tokens wasted are
        the share of the call's tokens its savings represent."""
        usages = self.env["ai.token.usage"].search([
            ("waste_detected", "=", True), ("waste_reason", "in", list(RULES)), ("waste_finding_ids", "=", False),
        ])
        self.env["ai.token.waste.finding"].create([{
            "usage_id": usage.id,
            "rule": usage.waste_reason,
            "description": f"{RULE_LABELS[usage.waste_reason]} (demo data).",
            "recommendation": ADVICE[usage.waste_reason],
            "tokens_wasted": round(usage.total_tokens * usage.could_have_saved_usd / usage.cost_usd)
            if usage.cost_usd else 0,
            "cost_wasted_usd": usage.could_have_saved_usd,
            "company_id": usage.company_id.id,
            "user_id": usage.user_id.id,
            "operation": usage.operation,
            "provider_id": usage.provider_id.id,
            "call_date": usage.create_date,
            "create_date": usage.create_date,
            "write_date": usage.create_date,
        } for usage in usages])

    def _demo_analytics_periods(self, days=90):
        """The analytics periods (of every period type) covering the demo days, each built once."""
        Analytics = self.env["ai.token.analytics"].sudo()
        today = fields.Date.today()
        built = set()
        for offset in range(days, -1, -1):
            day = today - timedelta(days=offset)
            for period_type, _label in PERIOD_TYPES:
                key = (period_type, report_period_bounds(period_type, day)[0])
                if key not in built:
                    built.add(key)
                    Analytics._build_period(self.env.company, period_type, day)
