import time
from collections import namedtuple
from datetime import timedelta

from odoo import api, fields, models, tools
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from ..core import budget as budget_math
from ..exceptions import AiRateLimited
from ..ledger.cursors import STATEMENT_CURSORS, execute_prepared, run_in_own_transaction

WINDOW = timedelta(minutes=1)
MAX_WAIT_SECONDS = 600
# A waiting call asks again this often at most, and sooner when room comes back earlier.
POLL_SECONDS = 0.25
# A waiting call's ticket that outlives its longest wait by this much belongs to a worker that died.
TICKET_GRACE = timedelta(seconds=5)

# Admit a call under its rate limits in ONE statement, committed on its own (autocommit, like the budget hold):
# lock the limits' rows in id order (concurrent calls of every Odoo process queue on them), count what each
# served in the last minute, and admit the call only when every limit has room for one more request and its
# tokens and no earlier call waits on it; then record it as served, or, when asked, queue it (a ticket) so that
# waiting calls are served in the order they came. Returns each limit with its figures, the served hit and the
# queued ticket.
ADMIT_SQL = """
WITH locked AS MATERIALIZED (
    SELECT l.id, COALESCE(l.requests_per_minute, 0) AS rpm, COALESCE(l.tokens_per_minute, 0) AS tpm,
           -- A ticket lives as long as the longest wait this limit allows, and a little more: beyond, its
           -- worker died. Any call waiting on the limit waits no longer than that.
           make_interval(secs => COALESCE(l.max_wait_seconds, 0)) + %(ticket_grace)s::interval AS ticket_life
      FROM ai_cost_rate_limit l
     WHERE l.id = ANY(%(limits)s::int[])
     ORDER BY l.id
       FOR UPDATE OF l
), mine AS MATERIALIZED (
    SELECT t.id, t.limit_id FROM ai_cost_rate_limit_hit t WHERE t.id = ANY(%(tickets)s::int[])
), state AS MATERIALIZED (
    SELECT l.id, l.rpm, l.tpm, served.requests, served.tokens, served.oldest,
           EXISTS (
               SELECT 1 FROM ai_cost_rate_limit_hit w
                WHERE w.limit_id = l.id AND NOT w.served AND w.at > %(now)s::timestamp - l.ticket_life
                  AND w.id < COALESCE((SELECT m.id FROM mine m WHERE m.limit_id = l.id), 2147483647)
           ) AS queued_before
      FROM locked l
     CROSS JOIN LATERAL (
           SELECT count(*) AS requests, COALESCE(sum(h.tokens), 0) AS tokens, min(h.at) AS oldest
             FROM ai_cost_rate_limit_hit h
            WHERE h.limit_id = l.id AND h.served AND h.at > %(now)s::timestamp - %(window)s::interval
     ) served
), verdict AS (
    SELECT bool_and(NOT queued_before AND (rpm = 0 OR requests < rpm)
                    AND (tpm = 0 OR tokens + %(tokens)s::int <= tpm)) AS admitted
      FROM state
), dropped AS (
    DELETE FROM ai_cost_rate_limit_hit WHERE id IN (SELECT id FROM mine) AND (SELECT admitted FROM verdict)
), served AS (
    INSERT INTO ai_cost_rate_limit_hit (limit_id, at, tokens, served)
    SELECT id, %(now)s::timestamp, %(tokens)s::int, TRUE FROM state WHERE (SELECT admitted FROM verdict)
    RETURNING id, limit_id
), queued AS (
    INSERT INTO ai_cost_rate_limit_hit (limit_id, at, tokens, served)
    SELECT id, %(now)s::timestamp, %(tokens)s::int, FALSE FROM state
     WHERE NOT (SELECT admitted FROM verdict) AND %(enqueue)s::bool
    RETURNING id, limit_id
)
SELECT s.id, s.requests, s.tokens, s.oldest, served.id, queued.id
  FROM state s LEFT JOIN served ON served.limit_id = s.id LEFT JOIN queued ON queued.limit_id = s.id
"""


class LimitRule(namedtuple("LimitRule", [
    "id", "name", "requests_per_minute", "tokens_per_minute", "action", "max_wait_seconds",
    "user_ids", "provider_ids", "operations",
])):
    """A rate limit as the gateway applies it: plain immutable values, cached per company (`_company_rules`)."""

    __slots__ = ()

    def matches(self, user_id, provider_id, operation):
        """Whether a call by `user_id` to `provider_id` for `operation` falls in this limit's scope."""
        return budget_math.in_scope(self.user_ids, self.provider_ids, self.operations, user_id, provider_id, operation)


class AiCostRateLimit(models.Model):
    """Requests and tokens per minute that the calls of a scope may send, counted in PostgreSQL so that every
    Odoo process shares them (DESIGN section 13). A call beyond a limit waits for room (action `wait`, up to a
    set number of seconds, served in the order the calls came) or is refused at once (`refuse`), with an
    AiRateLimited error and a usage row of status `rate_limited`."""

    _name = "ai.cost.rate.limit"
    _description = "AI Rate Limit"
    _inherit = ["ai.cost.gateway.cache.mixin"]
    _order = "name, id"
    _gateway_cache_fields = (
        "active", "company_id", "requests_per_minute", "tokens_per_minute", "action", "max_wait_seconds",
        "user_ids", "provider_ids", "operation_ids",
    )

    # Identity
    name = fields.Char(required=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company, index=True)

    # Scope: empty means every user / operation / provider of the company, as for budgets.
    user_ids = fields.Many2many("res.users", string="Users", context={"active_test": False}, help="Empty: every user.")
    operation_ids = fields.Many2many(
        "ai.cost.budget.operation", string="Operations", help="Empty: every operation (send_message's `operation`)."
    )
    provider_ids = fields.Many2many(
        "ai.service.provider", string="Providers", domain="[('company_id', '=', company_id)]",
        context={"active_test": False}, help="Empty: every provider.",
    )

    # The limit
    requests_per_minute = fields.Integer(string="Requests per Minute", help="0: no limit on requests.")
    tokens_per_minute = fields.Integer(
        string="Tokens per Minute",
        help="Each call counts its prompt and its max_tokens, the most it may use (as providers count). 0: no limit.",
    )
    action = fields.Selection(
        [("wait", "Wait for room"), ("refuse", "Refuse at once")], required=True, default="wait",
        help="Wait: a call beyond the limit waits for room, in the order calls came, up to the maximum wait, "
        "then is refused. Refuse: it is refused at once.",
    )
    max_wait_seconds = fields.Integer(string="Maximum Wait (seconds)", default=30)

    # What it did
    served_last_minute = fields.Integer(compute="_compute_activity", string="Served in the Last Minute")
    refused_this_hour = fields.Integer(compute="_compute_activity", string="Refused in the Last Hour")

    _sql_constraints = [
        ("limits_positive", "CHECK(requests_per_minute >= 0 AND tokens_per_minute >= 0)",
         "A rate limit cannot be negative."),
    ]

    def _compute_activity(self):
        now = fields.Datetime.now()
        served = dict(self.env["ai.cost.rate.limit.hit"].sudo()._read_group(
            [("limit_id", "in", self.ids), ("served", "=", True), ("at", ">", now - WINDOW)],
            ["limit_id"], ["__count"],
        ))
        refused = dict(self.env["ai.token.usage"].sudo()._read_group(
            [("rate_limit_id", "in", self.ids), ("status", "=", "rate_limited"),
             ("create_date", ">", now - timedelta(hours=1))],
            ["rate_limit_id"], ["__count"],
        ))
        for limit in self:
            limit.served_last_minute = served.get(limit, 0)
            limit.refused_this_hour = refused.get(limit, 0)

    @api.constrains("requests_per_minute", "tokens_per_minute", "max_wait_seconds")
    def _check_limits(self):
        for limit in self:
            if not (limit.requests_per_minute or limit.tokens_per_minute):
                raise ValidationError(self.env._(
                    "Rate limit '%s' limits nothing: set requests per minute, tokens per minute or both.", limit.name
                ))
            if not 0 <= limit.max_wait_seconds <= MAX_WAIT_SECONDS:
                raise ValidationError(self.env._(
                    "The maximum wait is between 0 and %s seconds.", MAX_WAIT_SECONDS
                ))

    # ------------------------------------------------------------------
    # Gateway
    # ------------------------------------------------------------------
    @api.model
    @tools.ormcache("company_id")
    def _company_rules(self, company_id):
        """The active limits of a company as LimitRule tuples: a company without limits costs a call nothing."""
        limits = self.sudo().with_context(active_test=True).search([("company_id", "=", company_id)])
        return tuple(
            LimitRule(
                limit.id, limit.name, limit.requests_per_minute, limit.tokens_per_minute, limit.action,
                limit.max_wait_seconds, frozenset(limit.user_ids.ids), frozenset(limit.provider_ids.ids),
                frozenset(limit.operation_ids.mapped("name")),
            )
            for limit in limits
        )

    @api.model
    def _matching_rules(self, company_id, user_id, provider_id, operation):
        """The rules of the company's active limits whose scope holds the call."""
        return [rule for rule in self._company_rules(company_id) if rule.matches(user_id, provider_id, operation)]

    @api.model
    def _admit(self, rules, tokens):
        """Admit a call of `tokens` under `rules`, waiting for room as their actions allow; returns
        its hits, {limit id: hit id}. Raises AiRateLimited, naming the limit and when room comes back, when a
        limit refuses it or its wait runs out."""
        too_big = [rule for rule in rules if rule.tokens_per_minute and tokens > rule.tokens_per_minute]
        if too_big:
            raise self._refusal(too_big, [], tokens, 0.0)
        wait = 0 if any(rule.action == "refuse" for rule in rules) else min(rule.max_wait_seconds for rule in rules)
        deadline = time.monotonic() + wait
        tickets = []
        while True:
            rows = self._admit_once(rules, tokens, tickets, enqueue=wait > 0 and not tickets)
            hits = {row[0]: row[4] for row in rows if row[4]}
            if hits:
                return hits
            tickets = tickets or [row[5] for row in rows if row[5]]
            room_in = self._room_in(rules, rows, tokens)
            left = deadline - time.monotonic()
            if left <= 0 or room_in > left:
                self._drop_tickets(tickets)
                raise self._refusal(rules, rows, tokens, room_in)
            time.sleep(min(max(room_in, 0.01), POLL_SECONDS))

    def _admit_once(self, rules, tokens, tickets, enqueue):
        """One try of ADMIT_SQL: [(limit id, requests, tokens, oldest served at, hit id, ticket id)]."""
        params = {
            "limits": [rule.id for rule in rules], "tickets": tickets, "tokens": tokens, "enqueue": enqueue,
            "now": fields.Datetime.now(), "window": WINDOW,
            "ticket_grace": TICKET_GRACE,
        }

        def admit(cr):
            # Raw SQL: one statement under row locks shared by every Odoo process (DESIGN sections 9 and 10).
            execute_prepared(cr, SQL(ADMIT_SQL, **params))
            return cr.fetchall()

        return run_in_own_transaction(self.env, admit, STATEMENT_CURSORS, {"ai_cost_rate_limit": set(params["limits"])})

    def _drop_tickets(self, tickets):
        if tickets:
            run_in_own_transaction(self.env, lambda cr: cr.execute(
                SQL("DELETE FROM ai_cost_rate_limit_hit WHERE id = ANY(%s)", tickets)
            ), STATEMENT_CURSORS)

    @api.model
    def _release(self, hit_ids):
        """Forget the hits of a call that did not go out under their limits after all (a budget refused it, or it
        moved to a provider out of their scope before anything was sent)."""
        self._drop_tickets(hit_ids)

    def _room_in(self, rules, rows, tokens):
        """Seconds until the oldest request counted by a full limit leaves its minute: room may come back then."""
        by_id = {rule.id: rule for rule in rules}
        now = fields.Datetime.now()
        waits = [
            (oldest + WINDOW - now).total_seconds()
            for limit_id, requests, used, oldest, _hit, _ticket in rows
            if oldest and self._is_full(by_id[limit_id], requests, used, tokens)
        ]
        return max(waits, default=0.0)

    @staticmethod
    def _is_full(rule, requests, used, tokens):
        return bool(
            (rule.requests_per_minute and requests >= rule.requests_per_minute)
            or (rule.tokens_per_minute and used + tokens > rule.tokens_per_minute)
        )

    def _refusal(self, rules, rows, tokens, room_in):
        """The AiRateLimited error of a refused call: it names the limit (`limit_id`) and when room comes back."""
        by_id = {rule.id: rule for rule in rules}
        full = next(
            (by_id[row[0]] for row in rows if self._is_full(by_id[row[0]], row[1], row[2], tokens)), rules[0]
        )
        figures = " and ".join(filter(None, [
            full.requests_per_minute and self.env._("%s requests", full.requests_per_minute),
            full.tokens_per_minute and self.env._("%s tokens", full.tokens_per_minute),
        ]))
        if full.tokens_per_minute and tokens > full.tokens_per_minute:
            message = self.env._(
                "Rate limit '%(name)s' (%(figures)s per minute) refused the call: its %(tokens)s tokens (prompt and "
                "max_tokens) exceed the limit. Lower max_tokens or raise the limit.",
                name=full.name, figures=figures, tokens=tokens,
            )
        else:
            message = self.env._(
                "Rate limit '%(name)s' (%(figures)s per minute) is reached: room comes back in %(seconds)s s.",
                name=full.name, figures=figures, seconds=max(1, round(room_in)),
            )
        error = AiRateLimited(message)
        error.limit_id = full.id
        return error

    @api.model
    def _cron_purge_hits(self):
        """Drop the hits that no minute counts any more, and the tickets of workers that died."""
        oldest_ticket = timedelta(seconds=MAX_WAIT_SECONDS) + TICKET_GRACE
        self.env.cr.execute(SQL(
            "DELETE FROM ai_cost_rate_limit_hit WHERE at < %s",
            fields.Datetime.now() - max(WINDOW, oldest_ticket),
        ))
