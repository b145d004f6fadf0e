from collections import defaultdict
from datetime import timedelta

import psycopg2.errors
import pytz
from markupsafe import Markup

from odoo import api, fields, models
from odoo.tools import SQL, format_date

from ..core import anomaly as anomaly_rules
from ..core import pricing
from .ai_service_provider_price import PRICE_DIGITS

KINDS = [("operation", "Operation"), ("user", "User")]
# What the dashboard lists of a day's anomalies in its chart's tooltip.
DASHBOARD_PER_DAY = 5


class AiCostAnomaly(models.Model):
    """An hour in which an operation or a user spent far more than usual (DESIGN section 13): found by the
    hourly cron (`_cron_detect`), notified once, and kept as the marker that it was (one record per company,
    kind, operation or user and UTC day, held by a unique index so that two Odoo processes never notify it
    twice).

    The rule, its thresholds and why hours without calls do not count are in core.anomaly. Spend is read from
    the usage rows themselves (the rollups are per day), over the hour checked and, for the operations and
    users whose hour passes the minimum amount only, the 7 days before, through the index on their
    create_date.
    """

    _name = "ai.cost.anomaly"
    _description = "AI Spend Anomaly"
    _inherit = ["mail.thread", "mail.activity.mixin", "ai.cost.code.label.mixin"]
    _order = "hour desc, spend_usd desc, id desc"
    _code_label_fields = ("operation",)

    # Key: once per company, kind, operation or user and day (ai_cost_anomaly_once_a_day)
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True, ondelete="cascade")
    day = fields.Date(required=True, readonly=True, index=True, help="The hour's UTC day, as the dashboard's days.")
    hour = fields.Datetime(required=True, readonly=True, help="The start of the hour checked.")
    kind = fields.Selection(KINDS, required=True, readonly=True)
    operation = fields.Char(string="Operation Code", readonly=True, help="Empty: the calls that named no operation.")
    operation_label = fields.Char(string="Operation", compute="_compute_code_labels")
    user_id = fields.Many2one("res.users", string="User", readonly=True, ondelete="cascade")
    subject = fields.Char(string="Operation or User", compute="_compute_subject")

    # Figures
    spend_usd = fields.Float(string="Spend in the Hour (USD)", digits=PRICE_DIGITS, readonly=True)
    median_usd = fields.Float(
        string="Usual Hour (USD)", digits=PRICE_DIGITS, readonly=True,
        help="The median spend of the hours with calls in the 7 days before (hours without calls do not count).",
    )
    ratio = fields.Float(string="Times the Usual Hour", digits=(16, 1), readonly=True,
                         help="Spend in the hour divided by the usual hour; 0 when there was no usual spend.")
    ratio_label = fields.Char(string="Against Usual", compute="_compute_ratio_label")
    active_hours = fields.Integer(string="Hours With Calls (7 days before)", readonly=True)

    # Who was told
    budget_id = fields.Many2one(
        "ai.cost.budget", string="Budget", readonly=True, ondelete="set null",
        help="The budget whose scope holds the operation or user: its responsible was told.",
    )
    notified_user_ids = fields.Many2many("res.users", string="Notified Users", readonly=True)
    notified = fields.Boolean(readonly=True, help="A message and an activity were sent.")

    def init(self):
        super().init()
        # The alert-once marker, in PostgreSQL (DESIGN section 10): `_claim` inserts against it.
        self.env.cr.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS ai_cost_anomaly_once_a_day ON ai_cost_anomaly "
            "(company_id, kind, COALESCE(operation, ''), COALESCE(user_id, 0), day)"
        )

    @api.depends("kind", "operation_label", "user_id")
    def _compute_subject(self):
        for anomaly in self:
            if anomaly.kind == "user":
                anomaly.subject = anomaly.user_id.name
            else:
                anomaly.subject = anomaly.operation_label or self.env._("Calls without an operation")

    @api.depends("ratio", "spend_usd", "median_usd")
    def _compute_ratio_label(self):
        for anomaly in self:
            if anomaly.median_usd > 0:
                anomaly.ratio_label = self.env._("%s× usual", f"{anomaly.ratio:,.1f}")
            else:
                anomaly.ratio_label = self.env._("No usual spend")

    @api.depends("subject", "spend_usd", "hour")
    def _compute_display_name(self):
        for anomaly in self:
            anomaly.display_name = self.env._(
                "%(subject)s: %(spend)s in an hour",
                subject=anomaly.subject, spend=pricing.format_usd(anomaly.spend_usd),
            )

    # ------------------------------------------------------------------------------------------------
    # Detection
    # ------------------------------------------------------------------------------------------------

    @api.model
    def _cron_detect(self):
        """Check the last complete hour of every company that has the alerts on."""
        hour = anomaly_rules.last_complete_hour(fields.Datetime.now())
        for company in self.env["res.company"].sudo().search([("ai_anomaly_check", "=", True)]):
            self._detect(company, hour)

    @api.model
    def _detect(self, company, hour):
        """Find the operations and users of `company` whose spend in the hour starting at `hour` (UTC, naive)
        is an anomaly (core.anomaly), record each one not yet recorded that day, and notify it. Returns the
        anomalies recorded now."""
        settings = company._ai_anomaly_settings()
        found = []
        spend = self._hour_spend(company, hour)
        for kind in ("operation", "user"):
            keys = anomaly_rules.candidates(spend[kind], settings)
            if keys:
                history = self._active_hour_spends(company, kind, keys, hour)
                found += [(kind, anomaly) for anomaly in anomaly_rules.find_anomalies(
                    {key: spend[kind][key] for key in keys}, history, settings)]
        recorded = self.browse()
        for kind, anomaly in found:
            record = self._claim(company, hour, kind, anomaly)
            if record:
                record._notify()
                recorded |= record
        return recorded

    @api.model
    def _usage(self):
        # Grouping by hour in UTC: the hour checked and the days are UTC, as the rollups' days.
        return self.env["ai.token.usage"].sudo().with_context(tz="UTC", active_test=False)

    @api.model
    def _hour_spend(self, company, hour):
        """{'operation': {code or False: spend}, 'user': {user id: spend}} in the hour starting at `hour`."""
        rows = self._usage()._read_group(
            [("company_id", "=", company.id), ("create_date", ">=", hour),
             ("create_date", "<", hour + timedelta(hours=1))],
            ["operation", "user_id"], ["cost_usd:sum"],
        )
        spend = {"operation": defaultdict(float), "user": defaultdict(float)}
        for operation, user, cost in rows:
            spend["operation"][operation or False] += cost or 0.0
            if user:
                spend["user"][user.id] += cost or 0.0
        return spend

    @api.model
    def _active_hour_spends(self, company, kind, keys, hour):
        """{key: [spend of each hour with calls]} over the 7 days before `hour`, for `keys` only."""
        field = "operation" if kind == "operation" else "user_id"
        start, end = anomaly_rules.history_bounds(hour)
        rows = self._usage()._read_group(
            [("company_id", "=", company.id), ("create_date", ">=", start), ("create_date", "<", end),
             (field, "in", list(keys))],
            ["create_date:hour", field], ["cost_usd:sum"],
        )
        history = defaultdict(list)
        for _hour, key, cost in rows:
            history[key.id if kind == "user" else key or False].append(cost or 0.0)
        return history

    @api.model
    def _claim(self, company, hour, kind, anomaly):
        """Record `anomaly` unless that company, kind, key and day already have one: the returned record
        (empty when another run, in this process or another, recorded it first) is this run's to notify.

        One INSERT ... ON CONFLICT DO NOTHING against the unique index: a concurrent run waits for the
        first one's transaction and then inserts nothing. Under Odoo's REPEATABLE READ, a row committed
        after this transaction's snapshot makes PostgreSQL refuse the insert (a serialization failure)
        instead: the other run has it, so this one rolls back to its savepoint and records nothing."""
        budget = self._budget_for(company, kind, anomaly.key)
        values = {
            "company_id": company.id, "day": hour.date(), "hour": hour, "kind": kind,
            "operation": (anomaly.key or None) if kind == "operation" else None,
            "user_id": anomaly.key if kind == "user" else None,
            "spend_usd": anomaly.spend, "median_usd": anomaly.median, "ratio": anomaly.ratio or 0.0,
            "active_hours": anomaly.active_hours, "budget_id": budget.id or None, "notified": False,
            "create_uid": self.env.uid, "write_uid": self.env.uid,
        }
        query = SQL(
            "INSERT INTO ai_cost_anomaly (%s, create_date, write_date) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING RETURNING id",
            SQL(", ").join(SQL.identifier(column) for column in values),
            SQL(", ").join(SQL("%s", value) for value in values.values()),
            self.env.cr.now(), self.env.cr.now(),
        )
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(query, log_exceptions=False)
                row = self.env.cr.fetchone()
        except psycopg2.errors.SerializationFailure:
            return self.browse()
        return self.browse(row[0]) if row else self.browse()

    @api.model
    def _budget_for(self, company, kind, key):
        """The budget whose scope holds the operation or user: one that names it, else one of the whole company
        (no user, operation or provider named); the first by the budgets' order."""
        budgets = self.env["ai.cost.budget"].sudo().search([("company_id", "=", company.id)])
        if kind == "operation":
            naming = budgets.filtered(lambda budget: key and key in budget.operation_ids.mapped("name"))
        else:
            naming = budgets.filtered(lambda budget: key in budget.user_ids.ids)
        whole = budgets.filtered(lambda budget: not (budget.user_ids or budget.operation_ids or budget.provider_ids))
        return (naming or whole)[:1]

    # ------------------------------------------------------------------------------------------------
    # Notification
    # ------------------------------------------------------------------------------------------------

    def _recipients(self):
        """The budget's responsible, else the company's AI Cost managers (internal, active users)."""
        self.ensure_one()
        if self.budget_id.responsible_id.active:
            return self.budget_id.responsible_id
        return self.env.ref("ai_cost_optimizer.group_ai_cost_manager").sudo().users.filtered(
            lambda user: user.active and not user.share and self.company_id in user.company_ids
        )

    def _hour_label(self):
        """The hour in the company's timezone, as its people read it: '03/04/2026 15:00-16:00 (Europe/Brussels)'."""
        self.ensure_one()
        tz_name = self.env["res.company"]._ai_gateway_settings(self.company_id.id).tz
        start = pytz.utc.localize(self.hour).astimezone(pytz.timezone(tz_name))
        end = start + timedelta(hours=1)
        return f"{format_date(self.env, start.date())} {start:%H:%M}-{end:%H:%M} ({tz_name})"

    def _sentence(self):
        """What happened, in one sentence."""
        self.ensure_one()
        args = {
            "subject": self.subject, "spend": pricing.format_usd(self.spend_usd), "hour": self._hour_label(),
        }
        if self.median_usd > 0:
            return self.env._(
                "%(subject)s spent %(spend)s in the hour of %(hour)s: %(ratio)s times its usual hour (%(usual)s, "
                "the median of its %(hours)s hours with calls in the 7 days before).",
                ratio=f"{self.ratio:,.1f}", usual=pricing.format_usd(self.median_usd),
                hours=self.active_hours, **args,
            )
        return self.env._(
            "%(subject)s spent %(spend)s in the hour of %(hour)s, with no spend in the 7 days before.", **args
        )

    def _notify(self):
        """A message on the anomaly for its recipients, an activity for each of them, and a note in the chatter
        of the budget whose scope holds it."""
        self.ensure_one()
        recipients = self._recipients()
        body = self._sentence()
        self.with_context(mail_create_nosubscribe=True).message_post(
            body=Markup("<p>%s</p>") % body, subject=self.env._("AI spend anomaly: %s", self.subject),
            partner_ids=recipients.partner_id.ids, subtype_xmlid="mail.mt_note",
        )
        for user in recipients:
            self.activity_schedule(
                "mail.mail_activity_data_todo", summary=self.env._("Unusual AI spend: %s", self.subject),
                note=body, user_id=user.id,
            )
        if self.budget_id:
            link = Markup('<a href="/odoo/ai.cost.anomaly/%s">%s</a>') % (self.id, self.env._("Spend anomaly"))
            self.budget_id.sudo().message_post(body=Markup("<p>%s: %s</p>") % (link, body),
                                               subtype_xmlid="mail.mt_note")
        self.write({"notified": True, "notified_user_ids": [fields.Command.set(recipients.ids)]})

    # ------------------------------------------------------------------------------------------------
    # Screens
    # ------------------------------------------------------------------------------------------------

    @api.model
    def _period_domain(self, companies, start, end):
        """The anomalies of the UTC days `start` to `end` (inclusive): what the dashboard counts and marks, and
        what its click-through lists."""
        return [("company_id", "in", companies.ids), ("day", ">=", start), ("day", "<=", end)]

    @api.model
    def _dashboard_summary(self, companies, start, end):
        """The dashboard's anomalies of the period: their count, the domain of the list that shows them, and per
        day the costliest few ({day: [{'id', 'hour', 'subject', 'spend', 'ratio_label'}]})."""
        domain = self._period_domain(companies, start, end)
        anomalies = self.search(domain, order="day, spend_usd desc, id")
        by_day = defaultdict(list)
        for anomaly in anomalies:
            by_day[str(anomaly.day)].append(anomaly)
        return {
            "count": len(anomalies),
            "domain": domain,
            "by_day": {
                day: {
                    "count": len(records),
                    "items": [
                        {"id": anomaly.id, "hour": fields.Datetime.to_string(anomaly.hour),
                         "subject": anomaly.subject, "spend": anomaly.spend_usd, "ratio_label": anomaly.ratio_label}
                        for anomaly in records[:DASHBOARD_PER_DAY]
                    ],
                }
                for day, records in by_day.items()
            },
        }

    def action_view_usage(self):
        """The calls of the hour that make up the anomaly."""
        self.ensure_one()
        key = ("user_id", "=", self.user_id.id) if self.kind == "user" else ("operation", "=", self.operation or False)
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Calls of %s", self.display_name),
            "res_model": "ai.token.usage",
            "view_mode": "list,form",
            "domain": [("company_id", "=", self.company_id.id), ("create_date", ">=", self.hour),
                       ("create_date", "<", self.hour + timedelta(hours=1)), key],
        }
