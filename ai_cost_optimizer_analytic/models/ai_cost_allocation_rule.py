import datetime
from collections import defaultdict

from odoo import api, fields, models
from odoo.addons.ai_cost_optimizer.core.messages import check_label, check_model_name
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL, float_compare

# The many2one fields through which a record names its own analytic account, as Odoo's modules name them:
# project.project's account_id, the analytic_account_id of the sale and purchase orders of earlier versions.
RECORD_ACCOUNT_FIELDS = ("analytic_account_id", "account_id")
ONE_DAY = datetime.timedelta(days=1)


class AiCostAllocationRule(models.Model):
    """Where the AI spend goes in analytic accounting: the first active rule (by sequence) whose criteria
    all match a call gives its analytic distribution, unless the record the call is about carries its own.

    `post_analytic_lines` posts the ledger's days as analytic items with the rules and records as they are
    when it runs: a later change moves no posted day until that day is posted again.
    """

    _name = "ai.cost.allocation.rule"
    _inherit = ["analytic.mixin", "ai.cost.code.label.mixin"]
    _description = "AI Cost Allocation Rule"
    _order = "sequence, id"
    _code_label_fields = ("operation",)

    name = fields.Char(required=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)

    # Criteria: an empty one matches every call
    company_id = fields.Many2one("res.company", ondelete="cascade", help="Empty: the calls of every company.")
    operation = fields.Char(
        string="Operation Code", help="What the caller was doing, e.g. lead_qualification. Empty: every operation."
    )
    operation_label = fields.Char(string="Operation", compute="_compute_code_labels")
    user_id = fields.Many2one("res.users", string="User", ondelete="cascade", help="Empty: every user.")
    provider_id = fields.Many2one("ai.service.provider", ondelete="cascade", help="Empty: every provider.")
    res_model = fields.Char(
        string="Related Model", help="The model of the record the call is about, e.g. crm.lead. Empty: every call."
    )
    # The distribution itself is analytic.mixin's analytic_distribution.

    @api.constrains("analytic_distribution")
    def _check_analytic_distribution(self):
        for rule in self:
            totals = self._plan_totals(rule.analytic_distribution or {})
            if not totals:
                raise ValidationError(self.env._("The rule %s needs an analytic distribution.", rule.name))
            if any(float_compare(total, 100, precision_digits=rule.analytic_precision) for total in totals.values()):
                # A plan under 100% would leave spend unposted, over 100% would post more than was spent.
                raise ValidationError(
                    self.env._("The distribution of the rule %s must give 100%% on each analytic plan.", rule.name)
                )

    @api.constrains("operation", "res_model")
    def _check_criteria(self):
        for rule in self:
            try:
                check_label(rule.operation, "operation")
                check_model_name(rule.res_model, "Related Model")
            except ValueError as error:
                raise ValidationError(str(error)) from None

    def _plan_totals(self, distribution):
        """{root plan: its percentage} of an analytic distribution."""
        totals = defaultdict(float)
        for key, percentage in distribution.items():
            for account in self._key_accounts(key):
                totals[account.root_plan_id] += percentage
        return totals

    def _key_accounts(self, key):
        return self.env["account.analytic.account"].browse(int(account_id) for account_id in key.split(",")).exists()

    # ------------------------------------------------------------------
    # Posting
    # ------------------------------------------------------------------
    @api.model
    def post_analytic_lines(self, date_from, date_to, companies=None):
        """Post (or post again) the AI spend of the days `date_from` to `date_to` (inclusive, past days) of
        `companies` (default: the environment's) as analytic items: one per day, distribution key, provider and
        operation, its amount the negative share of the ledger's cost in the company's currency at that day's
        rate. The days' earlier items and unallocated spend are replaced. Returns the items posted."""
        date_from, date_to = self._check_posting_range(date_from, date_to)
        if not self.env.su and not self.env.user.has_group("ai_cost_optimizer.group_ai_cost_manager"):
            raise AccessError(self.env._("Only AI Cost managers can post the AI spend."))
        # Finance's books: posted whatever analytic rights the manager has, once checked above.
        companies = (companies or self.env.companies).sudo()
        self = self.sudo()
        allocated, unallocated = self._allocate(self._ledger_groups(date_from, date_to, companies))
        period = [("company_id", "in", companies.ids), ("date", ">=", date_from), ("date", "<=", date_to)]
        self.env["account.analytic.line"].search([("ai_cost_key", "!=", False), *period]).unlink()
        Unallocated = self.env["ai.cost.unallocated"]
        Unallocated.search(
            [("company_id", "in", companies.ids), ("day", ">=", date_from), ("day", "<=", date_to)]
        ).unlink()
        Unallocated.create([
            {"day": day, "company_id": company_id, "provider_id": provider_id, "operation": operation,
             "user_id": user_id, "res_model": res_model, "cost_usd": cost, "call_count": calls}
            for (day, company_id, provider_id, operation, user_id, res_model), (cost, calls) in unallocated.items()
        ])
        lines = self.env["account.analytic.line"].create(self._analytic_line_vals(allocated, date_from))
        for company in companies:
            if not company.ai_cost_posted_until or company.ai_cost_posted_until < date_to:
                company.ai_cost_posted_until = date_to
        return lines

    @api.model
    def _cron_post_analytic_lines(self):
        """Post, for each company, the days after its last posted one (from its first call on) up to yesterday."""
        yesterday = fields.Date.today() - ONE_DAY
        for company in self.env["res.company"].search([]):
            start = company.ai_cost_posted_until and company.ai_cost_posted_until + ONE_DAY
            if not start:
                self.env.cr.execute(SQL(
                    "SELECT MIN(create_date)::date FROM ai_token_usage WHERE company_id = %s", company.id
                ))
                start = self.env.cr.fetchone()[0]
            if start and start <= yesterday:
                self.post_analytic_lines(start, yesterday, company)

    @api.model
    def _check_posting_range(self, date_from, date_to):
        try:
            date_from, date_to = fields.Date.to_date(date_from), fields.Date.to_date(date_to)
        except (TypeError, ValueError):
            raise UserError(self.env._("Give the days to post as dates (YYYY-MM-DD).")) from None
        if not date_from or not date_to:
            raise UserError(self.env._("Give the first and the last day to post."))
        if date_from > date_to:
            raise UserError(self.env._("The first day to post must not be after the last one."))
        if date_to >= fields.Date.today():
            raise UserError(self.env._("Only past days can be posted: today's spend is not complete yet."))
        return date_from, date_to

    @api.model
    def _ledger_groups(self, date_from, date_to, companies):
        """The ledger's cost of the days, summed per day (UTC, as the rollups count them), company, provider,
        operation, user and related model, and per record where the record can carry its own distribution."""
        record_models = [
            name for name, model in self.env.registry.items()
            if not model._abstract and model._auto and self._record_distribution_field(model)
        ]
        self.env.cr.execute(SQL(
            """
            SELECT u.create_date::date, u.company_id, u.provider_id, u.operation, u.user_id, u.res_model,
                   CASE WHEN u.res_model = ANY(%(models)s) AND u.res_id > 0 THEN u.res_id END,
                   SUM(u.cost_usd), COUNT(*)
              FROM ai_token_usage u
             WHERE u.company_id = ANY(%(companies)s) AND u.create_date >= %(start)s AND u.create_date < %(end)s
               AND u.cost_usd <> 0
             GROUP BY 1, 2, 3, 4, 5, 6, 7
            """,
            models=record_models, companies=companies.ids,
            start=datetime.datetime.combine(date_from, datetime.time.min),
            end=datetime.datetime.combine(date_to + ONE_DAY, datetime.time.min),
        ))
        return self.env.cr.fetchall()

    @api.model
    def _allocate(self, groups):
        """Split the ledger `groups` over distributions: ({(company, day, key, provider, operation): [USD,
        calls]}, {(day, company, provider, operation, user, related model): [USD, calls]} of what nothing
        allocated)."""
        records = self._record_distributions(groups)
        rules = [
            (rule.company_id.id, rule.provider_id.id, rule.operation, rule.user_id.id, rule.res_model,
             rule.analytic_distribution)
            for rule in self.search([])
        ]
        rule_of = {}
        allocated = defaultdict(lambda: [0.0, 0])
        unallocated = defaultdict(lambda: [0.0, 0])
        for day, company_id, provider_id, operation, user_id, res_model, res_id, cost, calls in groups:
            distribution = records.get((res_model, res_id))
            if not distribution:
                criteria = (company_id, provider_id, operation, user_id, res_model)
                if criteria not in rule_of:
                    rule_of[criteria] = next((
                        distribution for *wanted, distribution in rules
                        if all(not want or want == value for want, value in zip(wanted, criteria, strict=True))
                    ), None)
                distribution = rule_of[criteria]
            if not distribution:
                total = unallocated[day, company_id, provider_id, operation, user_id, res_model]
                total[0] += cost
                total[1] += calls
                continue
            for key, percentage in distribution.items():
                total = allocated[company_id, day, key, provider_id, operation]
                total[0] += cost * percentage / 100
                total[1] += calls
        return allocated, unallocated

    @api.model
    def _record_distributions(self, groups):
        """{(model, id): distribution} of the records of `groups` that carry their own."""
        ids_by_model = defaultdict(set)
        for group in groups:
            if group[6]:
                ids_by_model[group[5]].add(group[6])
        distributions = {}
        for model_name, ids in ids_by_model.items():
            records = self.env[model_name].with_context(active_test=False).browse(ids).exists()
            fname = self._record_distribution_field(records)
            for record in records:
                value = record[fname]
                distribution = value if fname == "analytic_distribution" else value and {str(value.id): 100}
                if distribution:
                    distributions[model_name, record.id] = distribution
        return distributions

    @api.model
    def _record_distribution_field(self, model):
        """The field through which records of `model` carry their own allocation, read as Odoo's modules read
        it: analytic.mixin's distribution (order lines, expenses), else the record's analytic account (a project)."""
        field = model._fields.get("analytic_distribution")
        if field and field.type == "json" and field.store:
            return "analytic_distribution"
        for fname in RECORD_ACCOUNT_FIELDS:
            field = model._fields.get(fname)
            if field and field.type == "many2one" and field.comodel_name == "account.analytic.account" and field.store:
                return fname
        return None

    @api.model
    def _analytic_line_vals(self, allocated, date_from):
        """The analytic items of `allocated` (see _allocate), in the company's currency at the day's rate.

        Each item is rounded to the currency with the rounding difference carried to the key's next item of the
        month (from the month's items already posted before `date_from`), so that a month's items of an account
        add up to its share of the ledger within half a cent."""
        usd = self.env.ref("base.USD")
        Currency = self.env["res.currency"]
        companies = self.env["res.company"].browse({key[0] for key in allocated})
        carry = defaultdict(float)
        for company, key, unrounded, amount in self.env["account.analytic.line"]._read_group(
            [("ai_cost_key", "!=", False), ("company_id", "in", companies.ids),
             ("date", ">=", date_from.replace(day=1)), ("date", "<", date_from)],
            groupby=["company_id", "ai_cost_key"], aggregates=["ai_cost_unrounded:sum", "amount:sum"],
        ):
            carry[company.id, key, date_from.replace(day=1)] = unrounded - amount
        columns = {}
        providers = {provider.id: provider.name for provider in self.env["ai.service.provider"].with_context(
            active_test=False).browse({key[3] for key in allocated if key[3]})}
        # Descriptions name the operation as the screens do (Email draft); its code stays in ai_cost_operation.
        operations = self._code_labels("operation", {key[4] for key in allocated})
        rates = {}
        vals_list = []
        for company_id, day, key, provider_id, operation in sorted(
            allocated, key=lambda group: (group[0], group[1], group[2], group[3] or 0, group[4] or "")
        ):
            company = companies.browse(company_id)
            if (company_id, day) not in rates:
                rates[company_id, day] = Currency._get_conversion_rate(usd, company.currency_id, company, day)
            if key not in columns:
                columns[key] = {account.plan_id._column_name(): account.id for account in self._key_accounts(key)}
            cost, calls = allocated[company_id, day, key, provider_id, operation]
            unrounded = -cost * rates[company_id, day]
            month = company_id, key, day.replace(day=1)
            amount = company.currency_id.round(unrounded + carry[month])
            carry[month] += unrounded - amount
            vals_list.append({
                "name": self.env._("AI: %(provider)s · %(operation)s", provider=providers.get(provider_id, "-"),
                                   operation=operations.get(operation) or "-"),
                "date": day, "company_id": company_id, "amount": amount, "unit_amount": calls,
                "ai_cost_key": key, "ai_cost_provider_id": provider_id, "ai_cost_operation": operation,
                "ai_cost_usd": cost, "ai_cost_unrounded": unrounded, **columns[key],
            })
        return vals_list
