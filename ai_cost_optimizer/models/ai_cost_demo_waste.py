from datetime import timedelta

from odoo import fields, models
from odoo.tools import SQL

from ..core.waste import ADVICE, RULES
from .ai_token_analytics import PERIOD_TYPES, period_bounds
from .ai_token_waste_finding import RULE_LABELS


class AiCostDemo(models.AbstractModel):
    """Waste report and analytics periods of the demo ledger."""

    _inherit = "ai.cost.demo"

    def _demo_extras(self, providers):
        super()._demo_extras(providers)
        self._demo_waste_findings()
        self._demo_analytics_periods()

    def _demo_waste_findings(self):
        """One finding per demo row flagged with waste (its waste_reason is the rule), in one statement:
        the tokens wasted are the share of the call's tokens its savings represent."""
        def by_rule(texts):
            return SQL("CASE u.waste_reason %s END", SQL(" ").join(
                SQL("WHEN %s THEN %s", rule, texts[rule]) for rule in RULES
            ))

        descriptions = {rule: f"{RULE_LABELS[rule]} (demo data)." for rule in RULES}
        self.env.cr.execute(SQL(
            """INSERT INTO ai_token_waste_finding (usage_id, rule, description, recommendation, tokens_wasted,
                       cost_wasted_usd, reviewed, company_id, user_id, operation, provider_id, call_date,
                       create_uid, write_uid, create_date, write_date)
               SELECT u.id, u.waste_reason, %s, %s,
                      ROUND(u.total_tokens * u.could_have_saved_usd / NULLIF(u.cost_usd, 0)),
                      u.could_have_saved_usd, FALSE, u.company_id, u.user_id, u.operation, u.provider_id,
                      u.create_date, %s, %s, u.create_date, u.create_date
                 FROM ai_token_usage u
                WHERE u.waste_detected AND u.waste_reason IN %s
                  AND NOT EXISTS (SELECT 1 FROM ai_token_waste_finding f WHERE f.usage_id = u.id)""",
            by_rule(descriptions), by_rule(ADVICE), self.env.uid, self.env.uid, tuple(RULES),
        ))
        self.env["ai.token.waste.finding"].invalidate_model()

    def _demo_analytics_periods(self, days=90):
        Analytics = self.env["ai.token.analytics"].sudo()
        today = fields.Date.today()
        built = set()
        for offset in range(days, -1, -1):
            day = today - timedelta(days=offset)
            for period_type, _label in PERIOD_TYPES:
                key = (period_type, period_bounds(period_type, day)[0])
                if key not in built:
                    built.add(key)
                    Analytics._build_period(self.env.company, period_type, day)
