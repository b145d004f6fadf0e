"""The demo company's data (ai.cost.demo): over 400 lines because it writes a month of every screen's data
(calls, budgets, waste, benchmarks, experiments, billing reports) from one seeded generator, so that the
figures agree with each other; each section is one method."""

import itertools
import math
import random
from dataclasses import replace
from datetime import datetime, time, timedelta
from decimal import Decimal

from odoo import Command, api, fields, models

from ..core import billing, pricing
from ..core import budget as budget_math
from ..core import recommendation as ranking_rules
from ..core.periods import report_period_bounds
from ..core.usage import Usage
from ..core.waste import ADVICE, RULES
from .ai_billing_account import PRICE_LISTS
from .ai_token_analytics import PERIOD_TYPES

# operation: (task type, weight, prompt tokens (mean), answer tokens (mean), about a record?). Prompts carry
# what real assistants send: retrieved documents, e-mail threads, the lead's history. The enrichment
# assistant's prompts carry its tool definitions (the CRM and web look-ups it may call); the chatbot streams
# its answers; document search embeds batches of knowledge-base documents (task type "embedding": embedding
# calls, input tokens only).
OPERATIONS = {
    "lead_qualification": ("classify", 20, 1500, 60, "lead"),
    "lead_summary": ("summarize", 14, 12000, 600, "lead"),
    "lead_enrichment_tool_calls": ("extract", 8, 5500, 250, "lead"),
    "email_draft": ("chat", 18, 6000, 700, "partner"),
    "ticket_triage": ("classify", 12, 1200, 40, "partner"),
    "invoice_extraction": ("extract", 9, 8000, 400, "partner"),
    "product_description": ("chat", 7, 1500, 700, None),
    "translation": ("translate", 8, 2000, 2000, "partner"),
    "chatbot_streamed": ("chat", 12, 16000, 500, None),
    "document_embedding": ("embedding", 10, 40000, 0, None),
}
# Which providers serve an operation, by demo provider xml id and weight.
PROVIDER_MIX = {
    "classify": {"demo_provider_gpt4o_mini": 4, "demo_provider_claude_haiku": 3, "demo_provider_claude_sonnet": 2,
                 "demo_provider_ollama": 1, "demo_provider_gemini_flash": 1},
    "summarize": {"demo_provider_claude_haiku": 2, "demo_provider_claude_sonnet": 6, "demo_provider_gemini_flash": 1},
    "chat": {"demo_provider_claude_sonnet": 5, "demo_provider_gpt4o": 5, "demo_provider_gpt4o_mini": 1},
    "extract": {"demo_provider_gemini_flash": 1, "demo_provider_claude_haiku": 3, "demo_provider_gpt4o": 4},
    "translate": {"demo_provider_deepseek": 3, "demo_provider_gpt4o": 3, "demo_provider_gpt4o_mini": 2,
                  "demo_provider_ollama": 1},
    "embedding": {"demo_provider_embedding": 1},
}
# The rated quality of the demo providers' answers (mean of a user's 0-100 rating).
QUALITY = {"demo_provider_claude_haiku": 78, "demo_provider_claude_sonnet": 90, "demo_provider_gpt4o_mini": 76,
           "demo_provider_gpt4o": 86, "demo_provider_gemini_flash": 74, "demo_provider_deepseek": 80,
           "demo_provider_ollama": 58}
LATENCY_MS = {"demo_provider_claude_haiku": 900, "demo_provider_claude_sonnet": 2400, "demo_provider_gpt4o_mini": 1100,
              "demo_provider_gpt4o": 1600, "demo_provider_gemini_flash": 800, "demo_provider_deepseek": 1800,
              "demo_provider_ollama": 3000, "demo_provider_embedding": 450}
# Each waste rule: how often it fires among the calls with waste, and the share of the call's cost it wastes. A
# real company's rules are uneven: oversized prompts and duplicates dominate, missed prompt caching is rare; a
# duplicate wastes the whole call.
WASTE_RULES = {
    "oversized_context": (14, (0.3, 0.7)),
    "duplicate_query": (8, (1.0, 1.0)),
    "wrong_model": (6, (0.2, 0.6)),
    "unnecessary_history": (3.5, (0.1, 0.35)),
    "redundant_context": (2, (0.1, 0.3)),
    "missed_cache": (0.8, (0.05, 0.25)),
}
# What a finding of each rule says about its call (the wording of core.waste's rules).
WASTE_DESCRIPTIONS = {
    "oversized_context": "{input} input tokens for a '{task}' task that needs about {need}.",
    "duplicate_query": "The same prompt was already answered in the last 60 minutes.",
    "wrong_model": "A cheaper qualifying provider would have answered these {input} input tokens for {cheaper}.",
    "unnecessary_history": "{wasted} tokens of earlier turns were sent with a single-shot '{task}' task.",
    "redundant_context": "{wasted} tokens of the prompt repeat text already in it.",
    "missed_cache": "A {wasted}-token prompt prefix (tool definitions, system prompt) sent again within 300 seconds "
    "was not read from the prompt cache.",
}
# The company's teams: the operations each one runs, and its people (the first ones are in the demo data, with
# Dina Haddad, AI Cost manager, leading operations). Every person calls at a pace of their own.
TEAMS = {
    "sales": (("lead_qualification", "lead_summary", "lead_enrichment_tool_calls", "email_draft"), [
        "demo_user_alice", "Lucas Moreau", "Sofia Rossi", "Jonas Weber", "Amara Okafor", "Mateo Garcia",
        "Hanna Lindqvist", "Omar Farouk", "Julia Nowak", "Ravi Patel", "Elena Petrova", "Tom Becker",
    ]),
    "support": (("ticket_triage", "chatbot_streamed", "document_embedding", "email_draft", "translation"), [
        "demo_user_bruno", "Chloe Dubois", "Ines Santos", "Kenji Sato", "Fatima Zahra", "Liam O'Brien",
        "Nora Jansen", "Pavel Horak", "Sara Lind", "Yusuf Demir",
    ]),
    "finance": (("invoice_extraction",), ["demo_user_chen", "Marta Kowalski", "Pierre Laurent", "Aisha Bello"]),
    "marketing": (("product_description", "translation", "email_draft"), [
        "demo_user_emil", "Lea Fischer", "Diego Alvarez", "Mia Costa", "Noah Schmidt",
    ]),
    "operations": (("lead_summary", "invoice_extraction", "chatbot_streamed", "document_embedding"), [
        "demo_user_dina", "Viktor Ivanov", "Grace Kim", "Samuel Mensah",
    ]),
}
# The A/B experiment on summaries: started this many days ago, its arms' providers.
EXPERIMENT_DAYS = 30
EXPERIMENT_ARMS = (("A", "demo_provider_claude_haiku"), ("B", "demo_provider_gpt4o_mini"))
CALLS_PER_WEEKDAY = 1200
BATCH = 5000
# The billing accounts' month of reports, made from the demo ledger: the provider has reported every day but
# today. On one day someone of the company used Claude Sonnet in the Anthropic Workbench with another key of
# the organization (days ago, key id, tokens); on another OpenAI billed GPT-4o's output tokens above
# genai-prices (days ago, model, kind of token, billed over listed price).
BILLING_DAYS = 30
BILLING_ACCOUNTS = ("demo_billing_account_anthropic", "demo_billing_account_openai")
OUTSIDE_USAGE = (12, "demo_provider_claude_sonnet", "apikey_01DemoWorkbench",
                 billing.TokenCounts(uncached_input=1_450_000, output=38_000, requests=None))
PRICE_DIFFERENCE = (9, "demo_provider_gpt4o", "output", Decimal("1.25"))
# A spend anomaly: yesterday from 14:00 to 15:00 UTC, the lead enrichment agent that runs under a salesperson's
# account looped (operation, person, days ago, UTC hour, calls in the hour; its usual hour is a few calls).
LOOP = ("lead_enrichment_tool_calls", "Lucas Moreau", 1, 14, 420)

class AiCostDemo(models.AbstractModel):
    """Generates the demo ledger: realistic usage over several providers, operations, users and records,
    with its waste report and analytics periods."""

    _name = "ai.cost.demo"
    _description = "AI Cost Demo Data"

    @api.model
    def generate(self, days=90, seed=0):
        """Write `days` days of usage rows up to now (deterministic for a `seed`; their rollups follow them in
        create()), then what follows from them: budgets, recommendations, waste findings, analytics periods."""
        rng = random.Random(seed)
        now = fields.Datetime.now()
        providers = {xml_id: self.env.ref(f"ai_cost_optimizer.{xml_id}") for xml_id in LATENCY_MS}
        prices = {}
        for xml_id, provider in providers.items():
            # The demo history predates the providers' creation: let their prices cover it.
            provider.price_ids.write({"date_start": now - timedelta(days=days + 5)})
            price = provider._price_at(now)
            prices[xml_id] = (price.id, price._as_core_price()) if price else (None, None)
        people = self._demo_people(rng)
        experiment = self._demo_experiment(providers, now - timedelta(days=EXPERIMENT_DAYS))
        # The people whose team writes summaries are in the experiment: each gets an arm, as at their first call.
        arms = {
            user_id: experiment._assigned_arm(self.env["res.users"].browse(user_id))
            for user_id, _team, operations, _pace in people
            if any(OPERATIONS[operation][0] == experiment.task_type for operation in operations)
        }
        xml_ids = {provider: xml_id for xml_id, provider in providers.items()}
        context = {
            "providers": providers, "prices": prices, "records": self._demo_records(),
            "experiment": (experiment.task_type, experiment.date_start),
            "arms": {user_id: (arm.id, xml_ids[arm.provider_id]) for user_id, arm in arms.items()},
        }
        users = [(user_id, operations) for user_id, _team, operations, _pace in people]
        cum_weights = list(itertools.accumulate(pace for *_rest, pace in people))
        rows = []
        for offset in range(days, -1, -1):
            day = now.date() - timedelta(days=offset)
            growth = 0.6 + 0.8 * (days - offset) / days
            weekday_factor = 1.0 if day.weekday() < 5 else 0.25
            for _n in range(int(CALLS_PER_WEEKDAY * growth * weekday_factor * rng.uniform(0.85, 1.15))):
                when = datetime.combine(day, time(7)) + timedelta(seconds=rng.randint(0, 11 * 3600))
                if when >= now:
                    continue  # no demo call in the future: today's calls stop now
                user_id, operations = rng.choices(users, cum_weights=cum_weights)[0]
                rows.append(self._demo_row(rng, when, user_id, operations, context))
                if len(rows) >= BATCH:
                    self._insert(rows)
                    rows = []
        self._insert(rows)
        loop_hour = self._demo_loop(now, context)
        self._demo_extras(providers, people)
        self._demo_anomalies(loop_hour)
        return True

    def _demo_loop(self, now, context):
        """The calls of the agent that looped in one hour (LOOP), a seeded generator of their own. Returns the
        hour (its start, UTC)."""
        operation, person, days_ago, hour, calls = LOOP
        rng = random.Random(28)
        start = datetime.combine(now.date() - timedelta(days=days_ago), time(hour))
        login = "ai.demo." + person.lower().replace(" ", ".")
        user_id = self.env["res.users"].search([("login", "=", login)]).id
        self._insert([
            self._demo_row(rng, start + timedelta(seconds=rng.randint(0, 3599)), user_id, (operation,), context)
            for _n in range(calls)
        ])
        return start

    def _demo_anomalies(self, hour):
        """The hourly check of the looping hour, as the cron ran it then: the operation's and the person's
        anomalies, told to the budget's responsible and the managers, their messages dated from that hour."""
        anomalies = self.env["ai.cost.anomaly"]._detect(self.env.company, hour)
        told = hour + timedelta(hours=1, minutes=2)
        for anomaly in anomalies:
            (anomaly.message_ids | anomaly.budget_id.message_ids[:1]).sudo().date = told
        return anomalies

    def _demo_people(self, rng):
        """The company's AI users: [(user id, team, its operations, pace)], the people of TEAMS that the
        demo data does not hold created here, all in the AI Cost user group."""
        Users = self.env["res.users"].with_context(no_reset_password=True, mail_create_nosubscribe=True)
        new_names = [name for _ops, names in TEAMS.values() for name in names if not name.startswith("demo_user_")]
        created = Users.create([
            {
                "name": name,
                "login": "ai.demo." + name.lower().replace(" ", ".").replace("'", ""),
                "groups_id": [Command.link(self.env.ref("ai_cost_optimizer.group_ai_cost_user").id)],
            }
            for name in new_names
        ])
        by_name = dict(zip(new_names, created.ids, strict=True))
        return [
            (
                self.env.ref(f"ai_cost_optimizer.{name}").id if name.startswith("demo_user_") else by_name[name],
                team,
                operations,
                rng.lognormvariate(0, 0.6),
            )
            for team, (operations, names) in TEAMS.items()
            for name in names
        ]

    def _demo_experiment(self, providers, started):
        """The running A/B experiment on summaries, started `started` (a UTC datetime)."""
        experiment = self.env["ai.provider.experiment"].create({
            "name": "Summaries: Haiku against GPT-4o mini",
            "task_type_id": self.env.ref("ai_cost_optimizer.task_type_summarize").id,
            "arm_ids": [
                Command.create({"name": arm, "provider_id": providers[xml_id].id, "percentage": 50})
                for arm, xml_id in EXPERIMENT_ARMS
            ],
        })
        experiment.action_start()
        experiment.date_start = started
        return experiment

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

    def _demo_row(self, rng, when, user_id, operations, context):
        """The values of the usage row of a call made at `when` by `user_id`, whose team runs
        `operations`: a summary of a user in the running experiment goes to the provider of their arm. An
        embedding call, as the gateway records it, has no answer, response cache, waste, rating or routing."""
        weights = [OPERATIONS[operation][1] for operation in operations]
        operation = rng.choices(operations, weights=weights)[0]
        task_type, _weight, prompt_mean, answer_mean, record_kind = OPERATIONS[operation]
        mix = PROVIDER_MIX[task_type]
        xml_id = rng.choices(list(mix), weights=list(mix.values()))[0]
        arm_id = None
        experiment_task, experiment_start = context["experiment"]
        if task_type == experiment_task and when >= experiment_start:
            arm_id, xml_id = context["arms"][user_id]
        provider = context["providers"][xml_id]
        price_id, price = context["prices"][xml_id]
        res_model, res_id = None, 0
        records = context["records"]
        if record_kind and records[record_kind][1]:
            res_model = records[record_kind][0]
            res_id = rng.choice(records[record_kind][1])
        input_tokens = max(20, int(rng.gauss(prompt_mean, prompt_mean * 0.35)))
        embedding = task_type == "embedding"
        output_tokens = 0 if embedding else max(5, int(rng.gauss(answer_mean, answer_mean * 0.4)))
        roll = rng.random()
        status = "error" if roll < 0.025 else "ok"
        cache_hit = status == "ok" and roll > 0.93 and not embedding
        cache_read = int(input_tokens * 0.7) if provider.kind == "anthropic" and rng.random() < 0.35 else 0
        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cache_read)
        cost = pricing.call_cost(usage, price, when) if price and status == "ok" and not cache_hit else 0.0
        savings = 0.0
        if price and cache_read and status == "ok" and not cache_hit:
            savings = pricing.cache_read_savings(cache_read, price.input_per_mtok, price.cache_read_per_mtok)
        chat_served = status == "ok" and not cache_hit and not embedding
        waste = chat_served and rng.random() < 0.12
        rule = rng.choices(list(WASTE_RULES), weights=[weight for weight, _share in WASTE_RULES.values()])[0] if waste \
            else None
        rated = chat_served and rng.random() < 0.08
        failed, served = status == "error", status == "ok" and not cache_hit
        return {
            "kind": "embedding" if embedding else "chat", "create_date": when, "write_date": when, "user_id": user_id,
            "company_id": provider.company_id.id, "provider_id": provider.id, "model": provider.model,
            "mode": "smart_router" if not embedding and rng.random() < 0.3 else "passthrough", "operation": operation,
            "res_model": res_model, "res_id": res_id, "task_type": task_type,
            "quality_required": False if embedding else rng.choice(["low", "medium", "medium", "high"]),
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
            "could_have_saved_usd": cost * rng.uniform(*WASTE_RULES[rule][1]) if waste else 0.0,
            "optimization_score": rng.randint(30, 75) if waste else 100,
            "switched": not embedding and rng.random() < 0.05,
            "provider_called": not cache_hit,
            "quality_score": min(100, max(0, int(rng.gauss(QUALITY[xml_id], 10)))) if rated else 0,
            "quality_rated": rated, "ab_arm_id": arm_id or False,
        }

    def _insert(self, rows):
        # create_date is the call's: the superuser may set it while the registry loads (the demo data's install).
        if rows:
            self.env["ai.token.usage"].create(rows)

    def _demo_extras(self, providers, people):
        """Budgets at several fill levels with their period history, the figures the optimizer learns from
        the rated calls, recommendations, waste findings and analytics periods."""
        self._demo_budgets(providers, people)
        self._demo_rate_limits(providers, people)
        self.env["ai.provider.benchmark"]._cron_refresh_figures()
        self.env["ai.cost.budget.calibration"]._cron_learn()  # the output lengths calibrated budgets reserve
        self._demo_recommendations(providers, random.Random(7))
        self._demo_waste_findings()
        self._demo_analytics_periods()
        self._demo_billing()

    def _demo_recommendations(self, providers, rng, days=90, per_question=6):
        """What the optimizer recommended over the demo period: `per_question` answers per task type of
        the demo operations and quality bar, at various prompt sizes, among the demo's real providers.
        They have no API key, so the optimizer rightly finds none usable: they are ranked as once keys
        are entered."""
        Optimizer = self.env["ai.cost.optimizer"]
        now = fields.Datetime.now()
        real = {provider.id for provider in providers.values()}
        vals_list = []
        # The optimizer ranks chat providers; an embedding call is never re-routed.
        chat_task_types = {task_type for task_type, *_rest in OPERATIONS.values() if task_type != "embedding"}
        for task_type in sorted(chat_task_types):
            output_tokens = Optimizer._expected_output_tokens(task_type)
            candidates = [
                replace(candidate, usable=True)
                for candidate in Optimizer._candidates(task_type)
                if candidate.provider_id in real
            ]
            for quality, _n in itertools.product(("low", "medium", "high"), range(per_question)):
                tokens = rng.randint(300, 9000)
                ranking = ranking_rules.rank(candidates, tokens, output_tokens, quality)
                result = Optimizer._result(ranking, quality, output_tokens)
                vals = Optimizer._recommendation_values(result, task_type, tokens, quality, None)
                vals["date"] = now - timedelta(days=rng.uniform(0, days))
                vals_list.append(vals)
        self.env["ai.cost.recommendation"].create(vals_list)

    def _demo_budgets(self, providers, people):
        """Three budgets, each with a responsible person: the company's monthly one, comfortable (a quarter
        above last month's spend, with the history of the last months), the sales assistants', past its 80%
        alert, and a cap on Claude Sonnet, blocked. The last two were set from what their scope spent in
        the current week or month, whichever has run longer, so that their amounts stay believable early
        in a month."""
        now = fields.Datetime.now()
        leads = {team: user_id for user_id, team, *_rest in reversed(people)}  # the first person of each team
        sales = self.env["ai.cost.budget.operation"].create([{"name": name} for name in TEAMS["sales"][0]])
        Budget = self.env["ai.cost.budget"]
        company = Budget.create(
            {"name": "Company AI budget", "budget_amount": 1.0, "responsible_id": leads["operations"]}
        )
        this_month = company._period_at(now)
        last_month = company._period_at(fields.Datetime.to_datetime(this_month[0]) - timedelta(days=1))
        before_last = company._period_at(fields.Datetime.to_datetime(last_month[0]) - timedelta(days=1))
        company.budget_amount = self._round_amount(company._ledger_spend(*last_month) * 1.25)
        week = budget_math.current_period(now, company._tz(), "weekly")
        period_type = "weekly" if week[0] < this_month[0] else "monthly"
        team, cap = Budget.create([
            {"name": "Sales assistants", "budget_amount": 1.0, "responsible_id": leads["sales"],
             "period_type": period_type, "operation_ids": [Command.set(sales.ids)]},
            {"name": "Claude Sonnet cap", "budget_amount": 1.0, "responsible_id": leads["operations"],
             "period_type": period_type,
             "provider_ids": [Command.set(providers["demo_provider_claude_sonnet"].ids)]},
        ])
        current = team._period_at(now)
        team.budget_amount = self._round_amount(team._ledger_spend(*current) / 0.87)
        # Rounded down: the cap stays past its block line.
        cap.budget_amount = self._round_amount(cap._ledger_spend(*current) / 1.04, down=True)
        for budget, bounds in ((company, before_last), (company, last_month), (company, this_month),
                               (team, current), (cap, current)):
            self._demo_budget_period(budget, bounds, now)

    def _demo_rate_limits(self, providers, people):
        """Two rate limits: the sales assistants' agents wait for room, calls to Claude Sonnet are refused
        beyond 20 a minute, as three calls of a looping script were in the last hour."""
        sales = self.env["ai.cost.budget.operation"].search([("name", "in", TEAMS["sales"][0])])
        sonnet = providers["demo_provider_claude_sonnet"]
        limits = self.env["ai.cost.rate.limit"].create([
            {"name": "Sales assistants' agents", "requests_per_minute": 60, "tokens_per_minute": 200_000,
             "action": "wait", "max_wait_seconds": 30, "operation_ids": [Command.set(sales.ids)]},
            {"name": "Claude Sonnet: 20 calls a minute", "requests_per_minute": 20, "action": "refuse",
             "provider_ids": [Command.set(sonnet.ids)]},
        ])
        cap, user_id = limits[1], people[0][0]
        self.env["ai.token.usage"].create([
            {"provider_id": sonnet.id, "model": sonnet.model, "user_id": user_id, "operation": "report_script",
             "status": "rate_limited", "rate_limit_id": cap.id, "provider_called": False, "attempts": 0,
             "error_message": f"Rate limit '{cap.name}' (20 requests per minute) is reached: room comes back in 41 s.",
             "create_date": fields.Datetime.now() - timedelta(minutes=20, seconds=second)}
            for second in range(3)
        ])

    def _demo_budget_period(self, budget, bounds, now):
        """The period row of `budget` for `bounds` (first day, first day of the next), its spend from the
        ledger, and each threshold it crossed alerted when the spend crossed it, with the spend of that moment:
        the alerts of a past period are dated in it, and their activities were done then."""
        # Every figure given: the budget hold adds them up in SQL, where an unset one would be NULL.
        period = self.env["ai.cost.budget.period"].create({
            "budget_id": budget.id, "date_start": bounds[0], "date_end": bounds[1], "spend": 0.0, "reserved": 0.0,
            "call_count": 0, "alerted_up_to": 0.0,
        })
        period._rebuild_from_ledger()
        crossed = budget._rule().crossed_thresholds(period.spend, 0)
        for threshold, when in self._demo_crossings(budget, bounds, crossed):
            period.spend = budget.budget_amount * threshold / 100
            activities = budget.activity_ids
            budget.send_alert(threshold, period)
            budget.message_ids[:1].sudo().date = when
            if bounds[1] <= now.date():
                (budget.activity_ids - activities).unlink()
        period._rebuild_from_ledger()
        period.alerted_up_to = max(crossed, default=0)

    def _demo_crossings(self, budget, bounds, thresholds):
        """[(threshold, when the period's spend crossed it)] of `thresholds`, from the ledger's hourly spend,
        the moment placed within its hour by the share of that hour's spend it took."""
        hours = self.env["ai.token.usage"].sudo()._read_group(
            budget._ledger_domain(*bounds), ["create_date:hour"], ["cost_usd:sum"],
            order="create_date:hour",
        )
        crossings, spent, pending = [], 0.0, sorted(thresholds)
        for hour, cost in hours:
            while pending and cost and spent + cost >= budget.budget_amount * pending[0] / 100:
                share = (budget.budget_amount * pending[0] / 100 - spent) / cost
                crossings.append((pending.pop(0), hour + timedelta(seconds=round(3600 * share))))
            spent += cost or 0.0
        return crossings

    @staticmethod
    def _round_amount(amount, down=False):
        """A budget amount as people set them: two significant digits, the second one 0 or 5 ($85, $550,
        $1,500), at least a dollar; `down` rounds down, else to the nearest."""
        if amount <= 1:
            return 1.0
        step = 5 * 10 ** (math.floor(math.log10(amount)) - 1)
        return max(1.0, round((math.floor if down else round)(amount / step) * step, 2))

    def _demo_waste_findings(self):
        """One finding per demo row flagged with waste (its waste_reason is the rule): the tokens wasted are
        the share of the call's tokens its savings represent."""
        usages = self.env["ai.token.usage"].search([
            ("waste_detected", "=", True), ("waste_reason", "in", list(RULES)), ("waste_finding_ids", "=", False),
        ])
        vals_list = []
        for usage in usages:
            wasted = round(usage.total_tokens * usage.could_have_saved_usd / usage.cost_usd) if usage.cost_usd else 0
            description = WASTE_DESCRIPTIONS[usage.waste_reason].format(
                input=f"{usage.input_tokens:,}", task=usage.task_type, need=f"{max(0, usage.input_tokens - wasted):,}",
                wasted=f"{wasted:,}", cheaper=pricing.format_usd(usage.cost_usd - usage.could_have_saved_usd),
            )
            vals_list.append(self._demo_finding_values(usage, description, wasted))
        self.env["ai.token.waste.finding"].create(vals_list)

    @staticmethod
    def _demo_finding_values(usage, description, wasted):
        return {
            "usage_id": usage.id,
            "rule": usage.waste_reason,
            "description": description,
            "recommendation": ADVICE[usage.waste_reason],
            "tokens_wasted": wasted,
            "cost_wasted_usd": usage.could_have_saved_usd,
            "company_id": usage.company_id.id,
            "user_id": usage.user_id.id,
            "operation": usage.operation,
            "provider_id": usage.provider_id.id,
            "call_date": usage.create_date,
            "create_date": usage.create_date,
            "write_date": usage.create_date,
        }

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

    def _demo_billing(self):
        """A month of the providers' usage and cost reports for each demo billing account, as a fetch would
        store them, made from the demo ledger (so most days match) with OUTSIDE_USAGE and PRICE_DIFFERENCE
        added, then reconciled by the accounts' own reconcile(): the statuses are the real code's."""
        today = fields.Date.today()  # UTC, as the providers' daily buckets
        date_from = today - timedelta(days=BILLING_DAYS)
        reported = {date_from + timedelta(days=offset) for offset in range(BILLING_DAYS)}
        for xml_id in BILLING_ACCOUNTS:
            account = self.env.ref(f"ai_cost_optimizer.{xml_id}")
            account._store_reports(date_from, today, self._demo_reports(account, date_from, today, reported))
            account.last_fetch_result = self.env._(
                "Demo reports made from the demo ledger, no admin key: the daily fetch skips this account until "
                "one is entered. %(result)s", result=account.last_fetch_result,
            )
            account.reconcile(date_from, today)

    def _demo_reports(self, account, date_from, date_to, reported):
        """billing.Reports of `account` for the `reported` days of `date_from` to `date_to`: the ledger's
        tokens of each day and model under the providers' key id, billed at genai-prices' rates."""
        usage = []
        for (day, model), held in sorted(account._ledger_days(date_from, date_to).items()):
            if day in reported:
                # Anthropic's usage report counts no requests; OpenAI's counts the requests it answered.
                requests = None if account.kind == "anthropic" else held.calls - held.failed_attempts
                key_id = account.provider_ids[:1].provider_key_id or "key_DemoOdooGateway"
                usage.append(billing.UsageLine(day, model, key_id, replace(held.tokens, requests=requests)))
        days_ago, xml_id, key_id, tokens = OUTSIDE_USAGE
        provider = self.env.ref(f"ai_cost_optimizer.{xml_id}")
        if provider in account.provider_ids:
            usage.append(billing.UsageLine(date_to - timedelta(days=days_ago), account._model_key(provider.model),
                                           key_id, tokens))
        billed = {}
        for line in usage:
            billed[line.day, line.model] = billed.get((line.day, line.model), billing.TokenCounts()) + line.tokens
        days_ago, xml_id, kind, factor = PRICE_DIFFERENCE
        provider = self.env.ref(f"ai_cost_optimizer.{xml_id}")
        overbilled = (date_to - timedelta(days=days_ago), account._model_key(provider.model), kind)
        costs = []
        for (day, model), tokens in sorted(billed.items()):
            price = pricing.lookup_price(model, PRICE_LISTS[account.kind])
            usd = billing.billed_at_genai_prices(tokens, price)
            costs.append(billing.CostLine(day, model, {
                token_kind: amount * (factor if (day, model, token_kind) == overbilled else 1)
                for token_kind, amount in usd.items()
            }))
        return billing.Reports(usage, costs, reported)
