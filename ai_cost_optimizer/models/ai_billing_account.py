import logging
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from urllib.parse import urlsplit

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..core import billing, pricing
from ..core.billing import COUNTED_KINDS, PRICED_KINDS, BillDay, LedgerDay, TokenCounts, Tolerance

_logger = logging.getLogger(__name__)

DEFAULT_BASE_URLS = {"anthropic": "https://api.anthropic.com", "openai": "https://api.openai.com/v1"}
# genai-prices' price list a bill is compared with, by kind of account.
PRICE_LISTS = {"anthropic": "anthropic", "openai": "openai"}
# The providers report late by minutes to hours: the cron fetches the last week again every day.
CRON_DAYS = 7


class AiBillingAccount(models.Model):
    """One provider organization (Anthropic or OpenAI) whose own usage and cost reports, read with its
    admin key, are fetched daily and reconciled with the ledger's calls to the providers billed to it."""

    _name = "ai.billing.account"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _description = "AI Billing Account"
    _order = "name, id"
    _check_company_auto = True

    # Identity
    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True)
    kind = fields.Selection([("anthropic", "Anthropic"), ("openai", "OpenAI")], required=True, default="anthropic")
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company, index=True)
    responsible_id = fields.Many2one(
        "res.users", string="Responsible", default=lambda self: self.env.user, tracking=True,
        help="Told (message and activity) of a difference nothing explains, once a day.",
    )
    provider_ids = fields.Many2many(
        "ai.service.provider", string="Providers Billed Here", check_company=True,
        help="The providers whose calls this organization bills: their calls are the ledger's side.",
    )

    # Access to the reports
    base_url = fields.Char(
        string="Base URL", compute="_compute_base_url", store=True, readonly=False, required=True, precompute=True,
        help="Anthropic: https://api.anthropic.com. OpenAI: https://api.openai.com/v1.",
    )
    # Read by system administrators only; sent to the provider and nowhere else (no log, no message).
    admin_key = fields.Char(string="Admin Key", groups="base.group_system", copy=False,
                            help="Anthropic: sk-ant-admin...; OpenAI: an organization admin key.")
    has_admin_key = fields.Boolean(string="Admin Key Set", compute="_compute_has_admin_key")

    # Tolerances
    tolerance_percent = fields.Float(string="Tolerance (%)", default=2.0,
                                     help="A difference within this share of the bill is a match.")
    tolerance_usd = fields.Float(string="Tolerance (USD)", default=0.01,
                                 help="A difference within these dollars is a match, whatever the share.")

    # Last fetch
    last_fetch_date = fields.Datetime(string="Last Successful Fetch", readonly=True)
    last_fetch_result = fields.Char(readonly=True)
    last_error = fields.Text(readonly=True, help="Why the last fetch failed; empty once a fetch succeeds.")
    last_error_date = fields.Datetime(readonly=True)
    reported_from = fields.Date(readonly=True, help="The first day fetched that the provider reported.")
    reported_through = fields.Date(
        readonly=True, help="The last day the provider reported when fetched, yesterday (UTC) at the latest: today "
                            "is still being billed. Later days are pending.",
    )
    last_alert_date = fields.Date(readonly=True, help="The day the responsible was last told of a difference.")
    report_line_ids = fields.One2many("ai.billing.report.line", "account_id", string="Report Lines")
    reconciliation_ids = fields.One2many("ai.billing.reconciliation", "account_id", string="Reconciliation")

    _sql_constraints = [
        ("tolerance_percent_positive", "CHECK(tolerance_percent >= 0)", "The tolerance in percent cannot be negative."),
        ("tolerance_usd_positive", "CHECK(tolerance_usd >= 0)", "The tolerance in dollars cannot be negative."),
    ]

    @api.depends("kind")
    def _compute_base_url(self):
        for account in self:
            account.base_url = DEFAULT_BASE_URLS.get(account.kind)

    @api.depends_context("uid")
    def _compute_has_admin_key(self):
        for account, sudo_account in zip(self, self.sudo(), strict=True):
            account.has_admin_key = bool(sudo_account.admin_key)

    @api.constrains("base_url")
    def _check_base_url(self):
        for account in self:
            url = urlsplit(account.base_url or "")
            if url.scheme not in ("http", "https") or not url.netloc:
                raise ValidationError(self.env._(
                    "The base URL of %(name)s must be an http(s) address, e.g. %(example)s.",
                    name=account.name, example=DEFAULT_BASE_URLS.get(account.kind),
                ))

    # -- actions ------------------------------------------------------------------------------------

    def action_fetch_now(self):
        """Fetch the last week and reconcile it; the form shows the result or the error."""
        today = fields.Date.today()  # UTC, as the providers' daily buckets
        for account in self:
            if account.fetch_reports(today - timedelta(days=CRON_DAYS - 1), today):
                account.reconcile(today - timedelta(days=CRON_DAYS - 1), today)
        return True

    def action_view_reconciliation(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("ai_cost_optimizer.action_ai_billing_reconciliation")
        action["domain"] = [("account_id", "=", self.id)]
        return action

    # -- fetching -----------------------------------------------------------------------------------

    @api.model
    def _check_period(self, date_from, date_to):
        """The period as dates, or a UserError saying what is wrong with it."""
        try:
            date_from, date_to = fields.Date.to_date(date_from), fields.Date.to_date(date_to)
        except ValueError:
            raise UserError(self.env._("The period's dates must be dates, e.g. 2026-01-31.")) from None
        try:
            billing.check_period(date_from, date_to)
        except ValueError as error:
            raise UserError(str(error)) from None
        return date_from, date_to

    def fetch_reports(self, date_from, date_to):
        """Fetch the providers' usage and cost reports of ``date_from`` to ``date_to`` (inclusive, UTC days)
        into report lines, a day fetched again replacing its lines. A failure (refused key, rate limit,
        server error, malformed page) leaves the lines as they were and says why on the account.
        Returns whether every account was fetched."""
        date_from, date_to = self._check_period(date_from, date_to)
        return all([account._fetch(date_from, date_to) for account in self])

    def _fetch(self, date_from, date_to):
        self.ensure_one()
        source = billing.ReportSource(kind=self.kind, base_url=self.base_url or "", admin_key=self.sudo().admin_key)
        try:
            reports = billing.fetch_reports(source, date_from, date_to)
        except billing.BillingReportError as error:
            # The message never holds the key (see core.billing); it is what the form shows.
            _logger.warning("Billing account %s: fetch of %s to %s failed: %s", self.id, date_from, date_to, error)
            self.write({"last_error": str(error), "last_error_date": fields.Datetime.now()})
            return False
        lines = self._store_reports(date_from, date_to, reports)
        _logger.info("Billing account %s: %s report lines fetched for %s to %s", self.id, len(lines), date_from,
                     date_to)
        return True

    def _store_reports(self, date_from, date_to, reports):
        """Put ``reports`` (of ``date_from`` to ``date_to``) in place of the account's report lines and say so
        on the account: the result, the days the provider has reported. Returns the lines."""
        self.ensure_one()
        # Managers read report lines; only a fetch writes them.
        lines = self.env["ai.billing.report.line"].sudo()._replace(self, date_from, date_to, reports)
        # Today's bucket (UTC, as the providers') is still filling: a day counts as reported once it is over,
        # else its calls of the coming hours would show as a difference. The next fetch completes it.
        today = fields.Date.today()
        reported = sorted(day for day in reports.reported_days if day < today)
        values = {
            "last_fetch_date": fields.Datetime.now(), "last_error": False, "last_error_date": False,
            "last_fetch_result": self.env._(
                "%(lines)s report lines for %(start)s to %(end)s; %(days)s of %(all)s days reported.",
                lines=len(lines), start=date_from, end=date_to, days=len(reported), all=(date_to - date_from).days + 1,
            ),
        }
        if reported:
            # The days reported run from date_from without a gap: the provider reports up to some hour.
            values["reported_from"] = min(filter(None, [self.reported_from, reported[0]]))
            values["reported_through"] = max(filter(None, [self.reported_through, reported[-1]]))
        self.write(values)
        return lines

    @api.model
    def _cron_fetch_and_reconcile(self):
        """Fetch and reconcile the last week of every account with an admin key."""
        today = fields.Date.today()  # UTC, as the providers' daily buckets
        for account in self.search([]):
            if account.has_admin_key and account._fetch(today - timedelta(days=CRON_DAYS - 1), today):
                account.reconcile(today - timedelta(days=CRON_DAYS - 1), today)

    # -- reconciling --------------------------------------------------------------------------------

    def reconcile(self, date_from, date_to):
        """One reconciliation row per account, day and model of ``date_from`` to ``date_to``, in place of
        the earlier ones; the responsible is told of unexplained differences. Returns the rows."""
        date_from, date_to = self._check_period(date_from, date_to)
        # Managers read reconciliation rows; only a reconciliation writes them.
        Reconciliation = self.env["ai.billing.reconciliation"].sudo()
        rows = Reconciliation
        for account in self:
            Reconciliation.search([
                ("account_id", "=", account.id), ("date", ">=", date_from), ("date", "<=", date_to),
            ]).unlink()
            created = Reconciliation.create(account._reconciliation_values(date_from, date_to))
            account._alert_unexplained(created)
            rows |= created
        return rows.sudo(False)

    def _reconciliation_values(self, date_from, date_to):
        """The values of the reconciliation rows of one account: the ledger and the bill of each day and
        model, judged by core.billing.reconcile_day."""
        self.ensure_one()
        ledger = self._ledger_days(date_from, date_to)
        bills = self._bill_days(date_from, date_to)
        tolerance = Tolerance(self.tolerance_percent, self.tolerance_usd)
        values = []
        for day, model in sorted(set(ledger) | set(bills)):
            held = ledger.get((day, model), LedgerDay())
            reported = bool(self.reported_from and self.reported_from <= day <= self.reported_through)
            bill = bills.get((day, model), BillDay(False, self._keys_known()))
            bill.reported = reported
            # The day's prices (a price change at a start date lands on its day), at noon: hours of lower
            # prices (DeepSeek's off-peak) are not what most of a day's calls paid.
            noon = datetime.combine(day, time(12), tzinfo=timezone.utc)
            price = pricing.lookup_price(model, PRICE_LISTS[self.kind], at=noon) if model else None
            outcome = billing.reconcile_day(held, bill, price, tolerance)
            billed = bill.ours + bill.others
            values.append({
                "account_id": self.id, "date": day, "model": model,
                "ledger_calls": held.calls, "ledger_tokens": held.tokens.total, "ledger_cost_usd": held.cost_usd,
                "ledger_cost_unknown_calls": held.cost_unknown_calls, "ledger_failed_attempts": held.failed_attempts,
                "billed_requests": billed.requests or 0, "billed_tokens": billed.total,
                "other_keys_tokens": bill.others.total, "billed_usd": bill.billed_usd,
                "diff_tokens": outcome.diff_tokens, "diff_usd": outcome.diff_usd,
                "status": outcome.status, "explanation": outcome.explanation,
            })
        return values

    def _model_key(self, model):
        """The name a model is reconciled under: genai-prices' id of it when it knows the model, so that the
        ledger's alias (claude-3-5-haiku-latest, as the provider is configured) meets the snapshot the
        provider's reports name (claude-3-5-haiku-20241022)."""
        price = pricing.lookup_price(model, PRICE_LISTS[self.kind]) if model else None
        return price.model_ref if price and price.model_ref else (model or "")

    def _keys_known(self):
        """Whether every provider billed here carries its API key id, telling other keys' usage apart."""
        return bool(self.provider_ids) and all(self.provider_ids.mapped("provider_key_id"))

    def _ledger_days(self, date_from, date_to):
        """{(day, model): LedgerDay} of the calls that reached the providers billed here (UTC days, as the
        providers' buckets): answered or failed, never the response cache's answers. Read from the daily
        rollup, whose day is the UTC day of the call and whose rows are keyed by model and by whether the
        request reached the provider: reconciling a quarter of a busy provider does not scan its raw rows."""
        groups = self.env["ai.token.usage.daily"].sudo()._read_group(
            [
                ("provider_id", "in", self.provider_ids.ids), ("provider_called", "=", True), ("cache_hit", "=", False),
                ("day", ">=", date_from), ("day", "<=", date_to),
            ],
            groupby=["day:day", "model", "status"],
            aggregates=["call_count:sum", "input_tokens:sum", "cache_read_tokens:sum", "cache_write_tokens:sum",
                        "cache_write_1h_tokens:sum", "output_tokens:sum", "cost_usd:sum", "cost_unknown_count:sum"],
        )
        days = {}
        for day, model, status, count, prompt, cache_read, cache_write, one_hour, output, cost, cost_unknown in groups:
            if not count:
                continue  # rows emptied by the corrections of their calls (a write moves a call to another row)
            held = days.setdefault((day, self._model_key(model)), LedgerDay())
            held.calls += count
            held.tokens += TokenCounts(prompt - cache_read - cache_write, cache_read, cache_write, output, count,
                                       cache_write_1h=one_hour)
            held.cost_usd += cost
            held.cost_unknown_calls += cost_unknown
            held.failed_attempts += count if status == "error" else 0
        return days

    def _bill_days(self, date_from, date_to):
        """{(day, model): BillDay} of the report lines: the tokens of the providers' own keys apart from the
        other keys' when every provider carries its key id, and the dollars by kind of token."""
        keys_known = self._keys_known()
        our_keys = set(self.provider_ids.mapped("provider_key_id"))
        bills = {}
        lines = self.env["ai.billing.report.line"].search([
            ("account_id", "=", self.id), ("date", ">=", date_from), ("date", "<=", date_to),
        ])
        for line in lines:
            # Whether the day is reported is the account's to say (reported_from/through), not the lines'.
            bill = bills.setdefault((line.date, self._model_key(line.model)), BillDay(False, keys_known))
            if line.line_type == "cost":
                for kind in (*PRICED_KINDS, "other"):
                    if line[f"billed_{kind}_usd"]:
                        bill.usd[kind] = bill.usd.get(kind, Decimal(0)) + Decimal(str(line[f"billed_{kind}_usd"]))
                continue
            tokens = TokenCounts(**{kind: line[f"{kind}_tokens"] for kind in COUNTED_KINDS}, requests=line.requests)
            if keys_known and line.api_key_id not in our_keys:
                bill.others += tokens
                bill.other_key_ids.add(line.api_key_id or "")
            else:
                bill.ours += tokens
        return bills

    def _alert_unexplained(self, rows):
        """Tell the responsible of the unexplained differences among ``rows``: a message and an activity,
        at most once a day."""
        self.ensure_one()
        unexplained = rows.filtered(lambda row: row.status == "unexplained")
        today = fields.Date.context_today(self)
        if not unexplained or self.last_alert_date == today:
            return
        body = self.env._(
            "%(count)s day(s) and model(s) of %(name)s differ from the provider's bill without explanation, "
            "%(usd)s in all: %(first)s",
            count=len(unexplained), name=self.name, usd=pricing.format_usd(sum(unexplained.mapped("diff_usd"))),
            first=unexplained[0].explanation,
        )
        self.message_post(body=Markup("<p>%s</p>") % body, subtype_xmlid="mail.mt_note")
        if self.responsible_id:
            self.activity_schedule("mail.mail_activity_data_todo", summary=self.env._("Bill differs from the ledger"),
                                   note=body, user_id=self.responsible_id.id)
        self.last_alert_date = today
