from contextlib import nullcontext
from datetime import timedelta

from odoo import api, fields, models, tools
from odoo.tools import SQL

from ..core import budget as budget_math
from ..ledger.cursors import test_mode

# What calibrated reservations learn from: the output tokens of the successful calls a provider served (no
# response-cache hit, no failed attempt, no usage estimated for a broken stream) in the last
# CALIBRATION_WINDOW_DAYS days, per provider, model and operation (NULL: ''), with their p99 as PostgreSQL's
# percentile_disc takes it (an observed value: core.budget.percentile_disc says the same in Python).
LEARN_SQL = """
SELECT provider_id, model, COALESCE(operation, ''),
       percentile_disc(%(fraction)s) WITHIN GROUP (ORDER BY output_tokens),
       count(*), avg(output_tokens)::float8
  FROM ai_token_usage
 WHERE create_date >= %(since)s AND status = 'ok' AND kind = 'chat' AND provider_called
   AND usage_reported IS NOT FALSE AND cache_hit IS NOT TRUE AND provider_id IS NOT NULL AND model IS NOT NULL
 GROUP BY 1, 2, 3
"""


class AiCostBudgetCalibration(models.Model):
    """What the output of a provider's model for one operation is learned to be: the p99 of the output tokens
    of its recent successful calls, which a budget in `calibrated` reservation mode holds instead of
    `max_tokens` (ai.cost.budget `_call_estimates`) once CALIBRATION_MIN_SAMPLES calls tell it.

    An hourly cron recomputes this small table from the usage rows (`_cron_learn`); the gateway reads it
    through one cached function (`_learned_output`), so a call costs no query for it (DESIGN section 9). The
    cache holds only what the gateway's rule reads, the p99 of each calibrated key (`_gateway_view`), and the
    cron clears it only when that changes: not the gateway cache mixin, whose every write, create or unlink
    would clear every worker's caches each hour for samples that change nothing a call reads."""

    _name = "ai.cost.budget.calibration"
    _inherit = ["ai.cost.code.label.mixin"]
    _description = "AI Budget Calibration"
    _order = "provider_id, model, operation"
    _rec_name = "operation"
    _code_label_fields = ("operation",)

    provider_id = fields.Many2one("ai.service.provider", required=True, index=True, ondelete="cascade",
                                  readonly=True, context={"active_test": False})
    company_id = fields.Many2one(related="provider_id.company_id", store=True, index=True)
    model = fields.Char(required=True, readonly=True)
    operation = fields.Char(string="Operation Code", readonly=True,
                            help="send_message's `operation`; empty: calls made without one.")
    operation_label = fields.Char(string="Operation", compute="_compute_code_labels")
    output_tokens_p99 = fields.Integer(string="Output Tokens p99", readonly=True,
                                       help="99 % of the calls answered with at most this many output tokens.")
    output_tokens_avg = fields.Float(string="Average Output Tokens", digits=(16, 1), readonly=True)
    samples = fields.Integer(
        readonly=True, help=f"Successful served calls of the last {budget_math.CALIBRATION_WINDOW_DAYS} days."
    )
    calibrated = fields.Boolean(
        compute="_compute_calibrated", store=True,
        help=f"At least {budget_math.CALIBRATION_MIN_SAMPLES} samples of the last "
             f"{budget_math.CALIBRATION_WINDOW_DAYS} days: calls reserve the p99 instead of max_tokens on budgets "
             "in calibrated mode.",
    )

    _sql_constraints = [
        ("calibration_unique", "UNIQUE(provider_id, model, operation)", "One row per provider, model and operation."),
    ]

    @api.depends("samples")
    def _compute_calibrated(self):
        for calibration in self:
            calibration.calibrated = budget_math.is_calibrated(calibration.samples)

    # ------------------------------------------------------------------
    # The gateway's read (one cached table, no query per call)
    # ------------------------------------------------------------------
    @api.model
    def _learned_output(self, provider_id, model, operation):
        """The p99 of the output tokens learned for calls of `operation` to the provider's `model` once it is
        calibrated (enough samples: core.budget is_calibrated), else None."""
        return self._learned_table().get((provider_id, model or "", operation or ""))

    @api.model
    @tools.ormcache()
    def _learned_table(self):
        """`_gateway_view` of the table, read on a cursor of its own (as ai.cost.budget `_company_rules`: the cache
        is shared by every transaction and must hold committed rows only), or on the test's own cursor in a test.
        Cleared, in every worker, when the cron changes what it holds (`_cron_learn`)."""
        in_test = test_mode(self.env.cr, self.env.registry)
        if in_test:
            self.flush_model()
        with nullcontext(self.env.cr) if in_test == "transaction" else self.env.registry.cursor() as cr:
            rows = self.env(cr=cr, su=True)[self._name].search_fetch(
                [("calibrated", "=", True)], ["provider_id", "model", "operation", "output_tokens_p99", "calibrated"]
            )
            return tools.frozendict(self._gateway_view(rows))

    @api.model
    def _gateway_view(self, rows):
        """What the gateway reads of calibration `rows`: {(provider id, model, operation or ''): p99} of the
        calibrated ones."""
        return {
            (row.provider_id.id, row.model or "", row.operation or ""): row.output_tokens_p99
            for row in rows if row.calibrated
        }

    # ------------------------------------------------------------------
    # Learning
    # ------------------------------------------------------------------
    @api.model
    def _cron_learn(self):
        """Recompute the table from the usage rows of the last CALIBRATION_WINDOW_DAYS days: one grouped
        statement over those rows (a background job, hourly: the gateway never reads the ledger for it).
        Unchanged figures are not written; keys without a recent sample are dropped. The gateway's caches are
        cleared, in every worker, only when what they hold changed (`_gateway_view`: a key becoming calibrated or
        not, a calibrated key's p99 moving), not for samples that change nothing a call reads. Returns the
        number of rows created, changed or dropped."""
        since = fields.Datetime.now() - timedelta(days=budget_math.CALIBRATION_WINDOW_DAYS)
        self.env["ai.token.usage"].flush_model()
        # Raw SQL: percentile_disc, an ordered-set aggregate the ORM's _read_group has no name for.
        self.env.cr.execute(SQL(LEARN_SQL, fraction=budget_math.CALIBRATION_PERCENTILE, since=since))
        learned = {
            (provider_id, model, operation): {"output_tokens_p99": int(p99), "samples": samples,
                                              "output_tokens_avg": round(average or 0.0, 1)}
            for provider_id, model, operation, p99, samples, average in self.env.cr.fetchall()
        }
        Calibration = self.sudo().with_context(active_test=False)
        changes = 0
        stale = Calibration.browse()
        rows = Calibration.search([])
        cached = self._gateway_view(rows)
        for row in rows:
            figures = learned.pop((row.provider_id.id, row.model, row.operation or ""), None)
            if figures is None:
                stale |= row
            elif (row.output_tokens_p99, row.samples, row.output_tokens_avg) != tuple(figures.values()):
                row.write(figures)
                changes += 1
        stale.unlink()
        created = Calibration.create([
            {"provider_id": provider_id, "model": model, "operation": operation or False, **figures}
            for (provider_id, model, operation), figures in learned.items()
        ])
        if self._gateway_view((rows - stale) | created) != cached:
            self.env["ai.cost.gateway.cache.mixin"]._clear_gateway_cache()
        return changes + len(stale) + len(learned)
