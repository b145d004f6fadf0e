from odoo import api, fields, models, tools
from odoo.exceptions import AccessError, ValidationError
from odoo.tools import SQL, create_index

from ..core import pricing
from ..core.messages import check_label, short_repr
from ..core.usage import Usage
from ..ledger.cursors import execute_prepared
from ..ledger.statement import with_statement
from .ai_service_provider_price import PRICE_DIGITS
from .ai_token_usage_rollup_mixin import (
    NEW_ROWS_NAME,
    USAGE_STATUSES,
    new_rows_parts,
    rollup_parts,
    values_json,
)
from .ai_token_waste_finding import RULE_LABELS

QUALITY_LEVELS = [("low", "Low"), ("medium", "Medium"), ("high", "High")]
COMPLEXITIES = [("simple", "Simple"), ("medium", "Medium"), ("complex", "Complex")]
# What a user may change on their own usage rows: their rating of the answer.
USER_WRITABLE_FIELDS = frozenset({"quality_score", "feedback"})
ROLLUP_MODELS = ("ai.token.usage.daily", "ai.token.usage.record.daily", "ai.token.usage.record.monthly")
# A context key: the caller of create() adds the rows it writes to the rollups itself, in a statement that holds
# other rows too (the gateway's ledger statement, see `_add_rollups_to`), rather than create() in one of its own.
ROLLUPS_BY_CALLER = "ai_cost_rollups_by_caller"


class AiTokenUsage(models.Model):
    """The ledger of money spent: one row per provider attempt, and one per blocked or cached call.

    Users rate their calls, only managers correct them. The per-day rollups are kept up to date as rows
    are written (on the same transaction). The waste facts of a call are measured from its prompt when it
    is recorded, so that the rules can run later on the row alone (the prompt text itself may not be kept).
    """

    _name = "ai.token.usage"
    _inherit = ["ai.cost.code.label.mixin"]
    _description = "AI Token Usage"
    _order = "create_date desc, id desc"
    _rec_name = "display_name"
    _code_label_fields = ("operation", "task_type")

    # When: the call's time. Indexed for what reads a time range of the ledger (the hourly spend anomaly check
    # reads an hour and 7 days of it, the Usage list opens on the latest calls, the retention purge).
    create_date = fields.Datetime(index=True, readonly=True)

    # Who and what
    kind = fields.Selection(
        [("chat", "Chat"), ("embedding", "Embedding")], default="chat", required=True,
        help="A chat call (answered in one piece or streamed), or an embedding call.",
    )
    user_id = fields.Many2one("res.users", default=lambda self: self.env.user, index=True, readonly=True)
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company, index=True)
    provider_id = fields.Many2one("ai.service.provider", index=True, ondelete="set null")
    model = fields.Char()
    mode = fields.Selection([("passthrough", "Passthrough"), ("smart_router", "Smart router")], default="passthrough")
    operation = fields.Char(
        string="Operation Code", index=True, help="What the caller was doing, e.g. lead_qualification."
    )
    res_model = fields.Char(string="Related Model", index=True)
    res_id = fields.Integer(string="Related Record")
    session_id = fields.Char(index=True)
    task_type = fields.Char(string="Task Type Code", default="chat", index=True)
    operation_label = fields.Char(string="Operation", compute="_compute_code_labels")
    task_type_label = fields.Char(string="Task Type", compute="_compute_code_labels")
    complexity = fields.Selection(COMPLEXITIES)
    quality_required = fields.Selection(QUALITY_LEVELS, default="medium")

    # Tokens: input_tokens counts every prompt token; cache reads and writes are parts of it
    estimated_input_tokens = fields.Integer(help="tiktoken estimate made before the call.")
    estimate_exact = fields.Boolean(help="False when the estimate fell back to a character heuristic.")
    input_tokens = fields.Integer()
    output_tokens = fields.Integer()
    cache_read_tokens = fields.Integer()
    cache_write_tokens = fields.Integer()
    cache_write_1h_tokens = fields.Integer(
        string="1-hour Cache Write Tokens", help="The part of the cache writes kept for an hour (Anthropic), "
        "billed at its own rate."
    )
    # Not stored: nothing searches or sums it on the raw rows (the rollups hold the sums), and a stored one costs
    # every call's create() a precomputation on a new() record (0.2-0.3 ms).
    total_tokens = fields.Integer(compute="_compute_total_tokens")
    usage_reported = fields.Boolean(
        default=True, help="False when the provider returned no usage and tokens were estimated."
    )
    context_size_tokens = fields.Integer()
    context_type = fields.Selection([("full", "Full"), ("selective", "Selective"), ("minimal", "Minimal")])

    # Money (USD)
    cost_usd = fields.Float(digits=PRICE_DIGITS, string="Cost (USD)")
    cost_unknown = fields.Boolean(help="No price was known for the model: the cost is missing, not zero.")
    price_id = fields.Many2one("ai.service.provider.price", ondelete="set null", readonly=True)
    prompt_cache_savings_usd = fields.Float(
        digits=PRICE_DIGITS, string="Prompt Cache Savings (USD)",
        help="What cache-read tokens would have cost at the uncached input price, minus their cost.",
    )
    cache_savings_usd = fields.Float(
        digits=PRICE_DIGITS, string="Response Cache Savings (USD)",
        help="Answered from the response cache: what the original call cost.",
    )

    # Outcome
    latency_ms = fields.Float(string="Latency (ms)")
    cache_hit = fields.Boolean(help="Answered from the response cache, without calling the provider.")
    provider_called = fields.Boolean(
        readonly=True, help="The request reached the provider, answered or failed: a sample of its benchmarks."
    )
    status = fields.Selection(USAGE_STATUSES, default="ok", required=True, index=True)
    rate_limit_id = fields.Many2one("ai.cost.rate.limit", string="Refused by Rate Limit", ondelete="set null")
    error_message = fields.Text()
    attempts = fields.Integer(default=1)
    prompt_hash = fields.Char()  # searched through ai_token_usage_waste_prompt_idx, which it leads
    prompt_text = fields.Text()
    completion_text = fields.Text()

    # The user's rating of the answer
    quality_score = fields.Integer(help="User feedback, 0-100.")
    quality_rated = fields.Boolean(readonly=True, help="The user rated this answer (quality_score holds the rating).")
    feedback = fields.Text()

    # Routing: the recommendation made for this call, and its A/B arm
    recommended_provider_id = fields.Many2one("ai.service.provider", ondelete="set null")
    recommended_cost_usd = fields.Float(digits=PRICE_DIGITS, string="Recommended Cost (USD)")
    switched = fields.Boolean()
    switched_from_id = fields.Many2one("ai.service.provider", ondelete="set null")
    ab_arm_id = fields.Many2one("ai.provider.experiment.arm", string="A/B Arm", ondelete="set null",
                                index="btree_not_null", readonly=True)

    # Waste: the findings, and the facts of the prompt the rules read
    waste_detected = fields.Boolean()  # the costly ones: ai_token_usage_waste_saved_idx, partial
    waste_reason = fields.Char()  # the rules found, as their labels (older rows: their codes)
    waste_reason_label = fields.Char(compute="_compute_waste_reason_label", string="Waste Found")
    could_have_saved_usd = fields.Float(digits=PRICE_DIGITS, string="Could Have Saved (USD)")
    optimization_score = fields.Integer(help="100: nothing to improve.")
    waste_finding_ids = fields.One2many("ai.token.waste.finding", "usage_id", string="Waste Findings")
    static_prefix_hash = fields.Char(help="SHA-256 of the leading system messages: the cacheable prefix.")
    static_prefix_tokens = fields.Integer(help="Tokens of the leading system messages.")
    redundant_context_tokens = fields.Integer(help="Tokens of repeated text blocks inside the prompt.")
    history_tokens = fields.Integer(help="Tokens of the conversation turns before the last user message.")

    @api.depends("input_tokens", "output_tokens")
    def _compute_total_tokens(self):
        for usage in self:
            usage.total_tokens = Usage(usage.input_tokens, usage.output_tokens).total_tokens

    @api.depends("waste_reason")
    def _compute_waste_reason_label(self):
        for usage in self:
            rules = (usage.waste_reason or "").split(", ")
            usage.waste_reason_label = ", ".join(RULE_LABELS.get(rule, rule) for rule in rules if rule) or False

    @api.depends("model", "operation", "task_type")
    def _compute_display_name(self):
        for usage in self:
            usage.display_name = " · ".join(filter(None, [usage.model, usage.operation_label or usage.task_type_label]))

    @api.constrains("quality_score")
    def _check_quality_score(self):
        if any(not 0 <= usage.quality_score <= 100 for usage in self):
            raise ValidationError(self.env._("A rating is a number from 0 to 100."))

    def init(self):
        super().init()
        # The dashboard's "top waste" reads the costliest findings of a period without a scan. DDL in init():
        # a partial, descending index, which a field's index= cannot declare.
        self.env.cr.execute(
            "CREATE INDEX IF NOT EXISTS ai_token_usage_waste_saved_idx ON ai_token_usage "
            "(could_have_saved_usd DESC, create_date) WHERE waste_detected"
        )
        # Constant-time look-ups of the waste rules: an earlier identical prompt or prefix,
        # of the same company, within a time window.
        create_index(
            self.env.cr, "ai_token_usage_waste_prompt_idx", self._table, ["prompt_hash", "company_id", "create_date"]
        )
        create_index(
            self.env.cr, "ai_token_usage_waste_prefix_idx", self._table,
            ["static_prefix_hash", "provider_id", "create_date"], where="static_prefix_hash IS NOT NULL",
        )
        # The benchmark samples (ai.provider.benchmark.report) of one task type, recent first, and the
        # rated answers of a provider: compare_providers and the refresh of the optimizer's figures.
        create_index(
            self.env.cr, "ai_token_usage_benchmark_idx", self._table,
            ["task_type", "company_id", "create_date"], where="provider_called",
        )
        create_index(self.env.cr, "ai_token_usage_rated_idx", self._table, ["provider_id"], where="quality_rated")

    # ------------------------------------------------------------------
    # CRUD: the ledger records money spent, and its rollups follow it
    # ------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        usages = super().create(vals_list)
        if not self.env.context.get(ROLLUPS_BY_CALLER):
            usages._rollup_apply(1, written=True)
        return usages

    def write(self, vals):
        if not self.env.su and set(vals) - USER_WRITABLE_FIELDS and not self.env.user.has_group(
            "ai_cost_optimizer.group_ai_cost_manager"
        ):
            raise AccessError(
                self.env._(
                    "Only AI Cost managers can change usage rows; you may rate your own calls (%s).",
                    ", ".join(sorted(USER_WRITABLE_FIELDS)),
                )
            )
        moves_rollups = bool(self) and not self._rollup_source_fields().isdisjoint(vals)
        if moves_rollups:
            self._rollup_apply(-1)
        result = super().write(vals)
        if moves_rollups:
            self._rollup_apply(1)
        if "quality_score" in vals:
            self._feed_rating_to_benchmarks()
        return result

    # Unlinking raw rows (retention) keeps their history in the rollups on purpose.

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------
    def analyze_waste(self):
        """Fill the waste fields; the rules come with waste detection (ai.token.analytics)."""
        return self.env["ai.service"]._analyze_waste(self)

    def rate_quality(self, score, feedback=None):
        """Rate the answers: score 0-100 (True/False: thumbs up/down), optional feedback text.
        The rating feeds the provider's benchmark quality, which the optimizer blends in."""
        if isinstance(score, bool):
            score = 100 if score else 0
        if not isinstance(score, int) or not 0 <= score <= 100:
            raise ValidationError(self.env._("A rating is a number from 0 to 100, not %s.", short_repr(score)))
        if any(usage.status != "ok" for usage in self):
            raise ValidationError(self.env._("Only answered calls can be rated."))
        vals = {"quality_score": score}
        if feedback is not None:
            vals["feedback"] = feedback
        # Written as the user: only their own rows, and only the rating (see write).
        return self.write(vals)

    def action_thumbs_up(self):
        return self.rate_quality(True)

    def action_thumbs_down(self):
        return self.rate_quality(False)

    def action_open_record(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self.res_model,
            "res_id": self.res_id,
            "view_mode": "form",
        }

    @api.model
    def session_cost(self, session_id):
        """A run's cost: the tokens, calls and dollars of the usage rows of `session_id`, chat and embedding
        apart and in total. `calls` counts answered calls (cache hits included), `errors` the failed
        attempts and refused calls; `cost_usd` every dollar spent, a broken stream's included;
        `cost_unknown` the rows of models without a known price, whose cost is missing, not zero."""
        try:
            session_id = check_label(session_id, "session_id")
        except ValueError as error:
            raise ValidationError(str(error)) from None
        if not session_id:
            raise ValidationError(self.env._("session_id is required: the run whose cost to sum."))
        groups = self._read_group(
            [("session_id", "=", session_id)], ["kind", "status"],
            ["__count", "input_tokens:sum", "output_tokens:sum", "cost_usd:sum"],
        )
        unknown = dict(self._read_group(
            [("session_id", "=", session_id), ("cost_unknown", "=", True)], ["kind"], ["__count"]
        ))
        empty = {"calls": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "cost_unknown": 0}
        figures = {"chat": dict(empty), "embedding": dict(empty)}
        for kind, status, count, input_tokens, output_tokens, cost in groups:
            part = figures[kind]
            part["calls" if status == "ok" else "errors"] += count
            part["input_tokens"] += input_tokens
            part["output_tokens"] += output_tokens
            part["cost_usd"] += cost
        for kind, count in unknown.items():
            figures[kind]["cost_unknown"] = count
        figures["total"] = {name: figures["chat"][name] + figures["embedding"][name] for name in empty}
        return {"session_id": session_id, **figures}

    # ------------------------------------------------------------------
    # Cost and rating
    # ------------------------------------------------------------------
    def _core_usage(self):
        self.ensure_one()
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens,
        )

    def _recompute_cost(self):
        """Re-price rows with the price version that priced each call (after a correction of it),
        or, for calls whose cost was unknown, the version in force at the time of the call."""
        for usage in self.filtered(lambda u: u.status == "ok" and not u.cache_hit and u.provider_id):
            price = usage.price_id or usage.provider_id._price_at(usage.create_date)
            if not price:
                usage.write({"cost_unknown": True, "cost_usd": 0.0, "price_id": False})
                continue
            usage.write(
                {
                    "price_id": price.id,
                    "cost_unknown": False,
                    "cost_usd": pricing.call_cost(usage._core_usage(), price._as_core_price(), usage.create_date),
                }
            )

    def _feed_rating_to_benchmarks(self):
        """A rating (also one typed in the form) marks the row rated, which makes it a rated benchmark
        sample of its provider, and refreshes the provider's cached quality."""
        rows = self.sudo()
        rows.write({"quality_rated": True})
        rows.provider_id._refresh_benchmark_quality()

    # ------------------------------------------------------------------
    # Rollups
    # ------------------------------------------------------------------
    def _rollup_apply(self, sign, written=False):
        """Add (sign 1) or remove (sign -1) these rows' contribution to every rollup, in one statement:
        the upserts after the first run as data-modifying CTEs, which PostgreSQL runs exactly once.

        `written`: the rows were just written by this transaction (create()), and the cache holds what it
        stored; the statement then takes their values as its one parameter rather than reading the rows back
        from the table (issue 27), and is prepared on the gateway's kept cursor: its text is built once per
        set of covering rollups (`_rollup_upsert_code`). Otherwise (write()) the rows are read from the table."""
        rollups = self._covering_rollups(self)
        if not rollups:
            return
        self.flush_recordset()
        # Raw SQL for upserts (ON CONFLICT, atomic increments across workers: DESIGN section 10), in one statement
        # for the gateway overhead target; the rollups keep the dashboard and API under 300 ms (section 9).
        if written and sign == 1:
            execute_prepared(self.env.cr, with_statement(self._new_rows_rollup_parts(rollups)))
        else:
            self.env.cr.execute(with_statement(
                rollup_parts(rollups, sign, SQL.identifier(self._table), SQL("u.id = ANY(%s)", self.ids))
            ))
        for rollup in rollups:
            rollup.invalidate_model()

    def _add_rollups_to(self, ledger):
        """Add to `ledger` (the gateway's LedgerStatement) the upsert of these rows, which create() just wrote
        and left to its caller (ROLLUPS_BY_CALLER), into the rollups that cover them: one statement less per
        call. Added first, and read first (see LedgerStatement), so that every call locks its rollup rows
        before any other row, as when create() upserts them."""
        rollups = self._covering_rollups(self)
        if not rollups:
            return
        self.flush_recordset()
        for name, statement, materialized in self._new_rows_rollup_parts(rollups):
            result = None if name == NEW_ROWS_NAME else SQL("(SELECT count(*) FROM %s)", SQL.identifier(name))
            ledger.add(name, statement, result=result, materialized=materialized)
        ledger.invalidates(rollups)

    def _new_rows_rollup_parts(self, rollups):
        """The parts of the statement that adds these rows, just written, to `rollups` (see the mixin's
        `new_rows_parts`), their values as its parameter."""
        names, parts = self._rollup_upsert_code(tuple(rollup._name for rollup in rollups))
        values = values_json(self, names)
        return [(name, SQL(code, values) if name == NEW_ROWS_NAME else SQL(code), materialized)
                for name, code, materialized in parts]

    @api.model
    @tools.ormcache()
    def _rollup_source_fields(self):
        """The usage fields whose change moves a row's contribution to the rollups: every field that a rollup's
        keys, measures or required fields read."""
        return frozenset().union(*(self.env[model]._rollup_usage_fields() for model in ROLLUP_MODELS))

    @api.model
    @tools.ormcache("rollup_models")
    def _rollup_upsert_code(self, rollup_models):
        """(fields, parts) of the statement that adds to the rollups `rollup_models` the rows given as its one
        parameter, a JSON array of those fields of the usage rows (see the mixin's `new_rows_parts`)."""
        return new_rows_parts([self.env[model].sudo() for model in rollup_models])

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
        `date_from`'s month: the cost API's top records add the per-month sums of some months to the per-day
        sums of others, so all are rebuilt over the same whole months."""
        date_from = date_from and fields.Date.to_date(date_from).replace(day=1)
        for model in ROLLUP_MODELS:
            self.env[model].sudo()._rebuild(date_from)
        return True

    # ------------------------------------------------------------------
    # Retention
    # ------------------------------------------------------------------
    @api.model
    def _cron_purge_prompts(self):
        """Blank prompt and completion texts older than each company's retention period."""
        for company in self.env["res.company"].search([]):
            cutoff = fields.Datetime.subtract(fields.Datetime.now(), days=company.ai_prompt_retention_days)
            self.search(
                [
                    ("company_id", "=", company.id),
                    ("create_date", "<", cutoff),
                    "|", ("prompt_text", "!=", False), ("completion_text", "!=", False),
                ]
            ).write({"prompt_text": False, "completion_text": False})
