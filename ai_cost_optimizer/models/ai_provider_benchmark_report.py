from odoo import fields, models, tools
from odoo.tools import SQL

from .ai_service_provider_price import PRICE_DIGITS
from .ai_token_usage import COMPLEXITIES


class AiProviderBenchmarkReport(models.Model):
    """Every benchmark sample of the providers, read-only: the gateway's calls that reached a provider
    (their usage rows, answered or failed) and the external runs recorded by `log_benchmark`.

    A database view rather than a second row written per call: a sample holds nothing its usage row
    does not. Gateway samples keep their usage row's id; external runs take the negative of theirs.
    Cost and latency are empty on failed calls, cost also when the model's price is unknown, and the
    quality when the answer was not rated, so that their averages cover only what was measured.

    This query is the one definition of a benchmark sample and of what it measured: the provider comparison
    (ai.provider.benchmark's compare_providers), the optimizer's cached figures and the results of the A/B
    arms (ai.provider.experiment.arm, through ab_arm_id) all read this view. A call refused by a budget,
    answered from the response cache or stopped before it was sent is no sample of a provider."""

    _name = "ai.provider.benchmark.report"
    _description = "AI Provider Benchmark Analysis"
    _auto = False
    _order = "date desc, id desc"
    _inherit = ["ai.cost.code.label.mixin"]
    _rec_name = "provider_id"
    _code_label_fields = ("task_type",)
    # What a search of the view flushes first (a rating written in this transaction, say).
    _depends = {
        "ai.token.usage": [
            "create_date", "provider_id", "company_id", "task_type", "complexity", "status", "input_tokens",
            "estimated_input_tokens", "output_tokens", "cost_usd", "cost_unknown", "latency_ms", "quality_score",
            "quality_rated", "provider_called", "ab_arm_id",
        ],
        "ai.provider.benchmark": [
            "create_date", "provider_id", "company_id", "task_type", "task_complexity", "input_tokens",
            "output_tokens", "cost_usd", "response_time_ms", "quality_score", "rated", "error_occurred",
        ],
    }

    # The sample
    date = fields.Datetime(readonly=True)
    source = fields.Selection([("gateway", "Gateway call"), ("external", "External run")], readonly=True)
    usage_id = fields.Many2one("ai.token.usage", string="Usage Row", readonly=True)
    provider_id = fields.Many2one("ai.service.provider", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    task_type = fields.Char(string="Task Type Code", readonly=True)
    task_type_label = fields.Char(string="Task Type", compute="_compute_code_labels")
    task_complexity = fields.Selection(COMPLEXITIES, string="Complexity", readonly=True)
    ab_arm_id = fields.Many2one("ai.provider.experiment.arm", string="A/B Arm", readonly=True)

    # Measures: the averages of a pivot are over the samples that measured them
    calls = fields.Integer(readonly=True)
    input_tokens = fields.Integer(readonly=True)
    output_tokens = fields.Integer(readonly=True)
    cost_usd = fields.Float(string="Cost per Call (USD)", digits=PRICE_DIGITS, aggregator="avg", readonly=True)
    response_time_ms = fields.Float(string="Latency (ms)", aggregator="avg", readonly=True)
    quality_score = fields.Float(string="Rated Quality (0-100)", aggregator="avg", readonly=True)
    rated = fields.Boolean(readonly=True)
    error_occurred = fields.Boolean(string="Error", readonly=True)

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(SQL("CREATE VIEW %s AS (%s)", SQL.identifier(self._table), self._samples_query()))

    def _samples_query(self):
        # Plain columns where a filter of the readers (task type, company, date, rated) applies, so that
        # PostgreSQL pushes it into both branches and their partial indexes answer.
        return SQL("""
            SELECT u.id AS id, 'gateway' AS source, u.id AS usage_id, u.create_date AS date,
                   u.provider_id, u.company_id, u.task_type, u.complexity AS task_complexity, 1 AS calls,
                   CASE WHEN u.status = 'ok' THEN u.input_tokens ELSE u.estimated_input_tokens END AS input_tokens,
                   u.output_tokens,
                   CASE WHEN u.status = 'ok' AND u.cost_unknown IS NOT TRUE THEN u.cost_usd END AS cost_usd,
                   CASE WHEN u.status = 'ok' THEN u.latency_ms END AS response_time_ms,
                   CASE WHEN u.quality_rated THEN u.quality_score END::float AS quality_score,
                   u.quality_rated AS rated, u.status = 'error' AS error_occurred, u.ab_arm_id
              FROM ai_token_usage u
             WHERE u.provider_called
            UNION ALL
            SELECT -b.id, 'external', NULL, b.create_date,
                   b.provider_id, b.company_id, b.task_type, b.task_complexity, 1,
                   b.input_tokens,
                   b.output_tokens,
                   CASE WHEN b.error_occurred IS NOT TRUE THEN b.cost_usd END,
                   CASE WHEN b.error_occurred IS NOT TRUE THEN b.response_time_ms END,
                   CASE WHEN b.rated THEN b.quality_score END::float,
                   b.rated, b.error_occurred, NULL::integer
              FROM ai_provider_benchmark b
        """)
