from odoo import api, fields, models
from odoo.exceptions import UserError

from ..core import pricing
from ..core.tokens import count_message_tokens
from ..core.usage import Usage
from .ai_service_provider_price import PRICE_DIGITS
from .ai_token_usage import QUALITY_LEVELS

TITLE_LENGTH = 60
# The operation of the playground's calls: the budgets scoped to operations apply to them by this name.
OPERATION = "playground"


class AiCostPlayground(models.TransientModel):
    """Try a prompt: see its tokens, the recommended provider and the cost before sending it."""

    _name = "ai.cost.playground"
    _description = "AI Cost Playground"

    # What to send
    prompt = fields.Text(required=True)
    task_type_id = fields.Many2one(
        "ai.task.type", required=True, default=lambda self: self._default_task_type(), ondelete="cascade"
    )
    quality_required = fields.Selection(QUALITY_LEVELS, required=True, default="medium")
    provider_id = fields.Many2one(
        "ai.service.provider", string="Provider", help="Empty: the recommended provider, else the company default."
    )
    state = fields.Selection([("draft", "Draft"), ("estimated", "Estimated"), ("sent", "Sent")], default="draft")

    # Estimate, before sending
    token_estimate = fields.Integer(readonly=True)
    estimate_exact = fields.Boolean(readonly=True)
    expected_output_tokens = fields.Integer(readonly=True)
    recommended_provider_id = fields.Many2one("ai.service.provider", readonly=True)
    recommendation_reasoning = fields.Text(readonly=True)
    alternatives = fields.Text(readonly=True)
    estimated_cost_usd = fields.Float(string="Estimated Cost (USD)", digits=PRICE_DIGITS, readonly=True)
    budgets_touched = fields.Text(readonly=True)
    # Why Send cannot go anywhere (no provider, no key): then neither Send nor an estimated cost is offered.
    send_refusal = fields.Char(compute="_compute_send_refusal")

    # Result, after sending
    answer = fields.Text(readonly=True)
    # The call's usage row, by id: the gateway commits it in a transaction of its own, after this one first read
    # the database, so that a foreign key (a stored many2one) checked in this one would not see it.
    usage_ref = fields.Integer(readonly=True)
    usage_id = fields.Many2one("ai.token.usage", compute="_compute_usage_id", string="Usage Row")
    actual_cost_usd = fields.Float(string="Actual Cost (USD)", digits=PRICE_DIGITS, readonly=True)
    actual_provider_id = fields.Many2one("ai.service.provider", readonly=True)
    waste_findings = fields.Text(readonly=True)

    @api.depends("prompt")
    def _compute_display_name(self):
        """The prompt's first line, shortened: what the breadcrumb and the title read."""
        for playground in self:
            first_line = (playground.prompt or "").strip().split("\n")[0]
            playground.display_name = (
                first_line if len(first_line) <= TITLE_LENGTH else first_line[: TITLE_LENGTH - 1] + "…"
            ) or self.env._("New prompt")

    @api.depends("usage_ref")
    def _compute_usage_id(self):
        for playground in self:
            playground.usage_id = self.env["ai.token.usage"].browse(playground.usage_ref).exists()

    @api.depends("provider_id", "recommended_provider_id")
    def _compute_send_refusal(self):
        for playground in self:
            playground.send_refusal = playground._refusal(playground._target_provider())

    def _refusal(self, provider):
        """Why `provider` (the target of Send) cannot answer, or False."""
        if not provider:
            return self.env._("No AI provider can answer: add one in AI Cost > Configuration > Providers.")
        if not provider.has_api_key:
            return self.env._(
                "The provider '%s' has no API key: add it in AI Cost > Configuration > Providers before sending.",
                provider.name,
            )
        return False

    @api.model
    def _default_task_type(self):
        TaskType = self.env["ai.task.type"]
        return TaskType.search([("code", "=", "chat")], limit=1) or TaskType.search([], limit=1)

    def _messages(self):
        if not (self.prompt or "").strip():
            raise UserError(self.env._("Type a prompt first."))
        return [{"role": "user", "content": self.prompt}]

    def _target_provider(self):
        """The explicit provider, else the recommended one, else the company default."""
        return (
            self.provider_id
            or self.recommended_provider_id
            or self.env.company.ai_default_provider_id
            or self.env["ai.service.provider"].search([("company_id", "=", self.env.company.id)], limit=1)
        )

    def action_estimate(self):
        self.ensure_one()
        messages = self._messages()
        model_name = (self.provider_id or self.env.company.ai_default_provider_id).model or None
        estimate = count_message_tokens(messages, model_name)
        vals = {
            "state": "estimated",
            "token_estimate": estimate.tokens,
            "estimate_exact": estimate.exact,
            "expected_output_tokens": self.task_type_id.expected_output_tokens,
            "recommended_provider_id": False,
            "recommendation_reasoning": False,
            "alternatives": False,
        }
        vals.update(self._recommendation_vals(estimate.tokens))
        self.write(vals)
        provider = self._target_provider()
        if self.send_refusal:
            # No provider would answer: an estimate would price a call that cannot be made.
            self.estimated_cost_usd = 0.0
        elif not self.estimated_cost_usd:
            self.estimated_cost_usd = self._estimate_cost(provider)
        self.budgets_touched = self._budgets_text(provider)
        return True  # the form reloads this record in place (no new breadcrumb)

    def _recommendation_vals(self, tokens):
        if "ai.cost.optimizer" not in self.env:
            return {}
        rec = self.env["ai.cost.optimizer"].recommend_provider(
            self.task_type_id.code, tokens, quality_required=self.quality_required
        )
        alternatives = [
            f"{alt.get('provider_name')}: {pricing.format_usd(alt.get('estimated_cost') or 0.0)}"
            + (f" (quality {alt['quality']})" if alt.get("quality") is not None else "")
            for alt in rec.get("alternatives") or []
        ]
        return {
            "recommended_provider_id": rec.get("provider_id") or False,
            "recommendation_reasoning": rec.get("reasoning") or False,
            "alternatives": "\n".join(alternatives) or False,
            "estimated_cost_usd": rec.get("estimated_cost") or 0.0,
        }

    def _estimate_cost(self, provider):
        price = provider.sudo()._price_at(fields.Datetime.now())
        if not price:
            return 0.0
        usage = Usage(input_tokens=self.token_estimate, output_tokens=self.expected_output_tokens)
        return pricing.compute_cost(usage, price._as_core_price())

    def _budgets_text(self, provider):
        """The budgets that the gateway would apply to this call, found by the gateway's own matching
        (ai.cost.budget `_matching_rules`: company, user, provider and the playground's operation)."""
        rules = self.env["ai.cost.budget"]._matching_rules(self.env.user, provider, OPERATION)
        return self._budget_lines(self.env["ai.cost.budget"].browse(rule.id for rule in rules))

    def _budget_lines(self, budgets):
        """`budgets` with how full they are, as their progress bars read."""
        return "\n".join(
            f"{budget.display_name}: {budget.percentage_used:,.0f} % used" for budget in budgets
        ) or self.env._("No budget applies.")

    def action_send(self):
        self.ensure_one()
        messages, parameters = self._send_parameters()
        # A refused call (a budget's block) raises after the gateway recorded it in a transaction of its own:
        # the usage row stays when this one rolls back.
        self._store_answer(self.env["ai.service"].send_message(messages, **parameters))
        return True  # the form reloads this record in place (no new breadcrumb)

    def _stream_answer(self):
        """Send as Send does, the answer streamed: the GatewayStream of `ai.service.stream_message`, whose
        `result` goes to `_store_answer` once it has been read (see controllers/playground.py)."""
        self.ensure_one()
        messages, parameters = self._send_parameters()
        return self.env["ai.service"].stream_message(messages, **parameters)

    def _send_parameters(self):
        """The messages and the gateway's parameters of Send; a UserError says why it cannot go."""
        messages = self._messages()
        provider = self._target_provider()
        if refusal := self._refusal(provider):
            raise UserError(refusal)
        return messages, {
            "provider": provider,
            "task_type": self.task_type_id.code,
            "quality_required": self.quality_required,
            "operation": OPERATION,
        }

    def _store_answer(self, result):
        """Show the recorded call: the gateway's `result` of send_message or of a stream."""
        waste = result.get("waste_report") or {}
        findings = [
            f"{f.get('type')}: {f.get('description')} ({f.get('recommendation')})"
            for f in waste.get("findings") or []
        ]
        # The budgets the gateway applied to the call, as its result lists them.
        applied = [budget["id"] for budget in (result.get("budget") or {}).get("budgets") or []]
        self.write({
            "state": "sent",
            "budgets_touched": self._budget_lines(self.env["ai.cost.budget"].browse(applied)),
            "answer": result.get("content"),
            "usage_ref": result.get("usage_id") or 0,
            "actual_cost_usd": result.get("cost_usd") or 0.0,
            "actual_provider_id": result.get("provider_id") or False,
            "waste_findings": "\n".join(findings) or self.env._("No waste found."),
        })
