from odoo import api, fields, models
from odoo.tools import SQL
from odoo.tools.sql import drop_index

from ..ledger import USAGE_CTE
from .ai_token_usage_record_yearly import year_start
from .ai_token_usage_rollup_mixin import ROLLUP_SOURCE_FIELDS

ROLLUP_MODELS = (
    "ai.token.usage.daily", "ai.token.usage.record.daily", "ai.token.usage.record.monthly",
    "ai.token.usage.record.operation.monthly", "ai.token.usage.record.yearly", "ai.token.usage.record.operation.yearly",
)


class AiTokenUsage(models.Model):
    """Keeps the per-day rollups up to date as usage rows are written (on the same transaction)."""

    _inherit = "ai.token.usage"

    def init(self):
        super().init()
        # The dashboard's "top waste" reads the costliest findings of a period without a scan.
        self.env.cr.execute(
            "CREATE INDEX IF NOT EXISTS ai_token_usage_waste_saved_idx ON ai_token_usage "
            "(could_have_saved_usd DESC, create_date) WHERE waste_detected"
        )
        # It supersedes the plain waste_detected index of earlier versions (Odoo keeps a dropped index).
        drop_index(self.env.cr, "ai_token_usage__waste_detected_index", self._table)

    @api.model_create_multi
    def create(self, vals_list):
        usages = super().create(vals_list)
        usages._rollup_apply(1)
        return usages

    def write(self, vals):
        if not self or not ROLLUP_SOURCE_FIELDS.intersection(vals):
            return super().write(vals)
        self._rollup_apply(-1)
        result = super().write(vals)
        self._rollup_apply(1)
        return result

    # Unlinking raw rows (retention) keeps their history in the rollups on purpose.

    def _rollup_apply(self, sign):
        """Add (sign 1) or remove (sign -1) these rows' contribution to every rollup, in one statement:
        the upserts after the first run as data-modifying CTEs, which PostgreSQL runs exactly once."""
        rollups = self._covering_rollups(self)
        if not rollups:
            return
        self.flush_recordset()
        where = SQL("u.id = ANY(%s)", self.ids)
        first, *others = [rollup._upsert_sql(where, sign) for rollup in rollups]
        ctes = [SQL("%s AS (%s)", SQL.identifier(f"rollup_{index}"), upsert) for index, upsert in enumerate(others)]
        self.env.cr.execute(SQL("WITH %s %s", SQL(", ").join(ctes), first) if ctes else first)
        for rollup in rollups:
            rollup.invalidate_model()

    @api.model
    def _add_ledger_rows(self, ledger):
        """The rollups of the usage row that `ledger` inserts: upserts of that statement."""
        super()._add_ledger_rows(ledger)
        for rollup in self._covering_rollups([ledger.vals]):
            upsert = rollup._upsert_sql(SQL("TRUE"), source=SQL.identifier(USAGE_CTE))
            ledger.add(f"rollup_{rollup._table}", upsert)

    def _covering_rollups(self, rows):
        """The rollup models that cover any of `rows` (usage records or values)."""
        rollups = [self.env[model].sudo() for model in ROLLUP_MODELS]
        return [rollup for rollup in rollups if rollup._rollup_covers(rows)]

    @api.model
    def _rollup_fold_deleted(self, column, ids):
        """Keep the rollups' history of providers or users being deleted (see the mixin's _fold_deleted)."""
        for model in ROLLUP_MODELS:
            self.env[model].sudo()._fold_deleted(column, ids)

    @api.model
    def _rebuild_rollups(self, date_from=None):
        """Rebuild every rollup from the raw usage rows (see the mixin's _rebuild), from the start of
        `date_from`'s year: a year's per-record sums bound those of its months and days (the cost API's top
        records rely on it), so all are rebuilt over the same whole years."""
        date_from = date_from and year_start(fields.Date.to_date(date_from))
        for model in ROLLUP_MODELS:
            self.env[model].sudo()._rebuild(date_from)
        return True
