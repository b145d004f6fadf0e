from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..ledger.cursors import STATEMENT_CURSORS, execute_prepared, holds_call_rows
from .ai_service_provider_price import PRICE_DIGITS


class AiResponseCache(models.Model):
    """Stored answers of deterministic calls, keyed by the exact request (see core/response_cache.py).

    Kept in PostgreSQL so that every worker and every Odoo node shares them. Only the answer and a
    hash of the request are stored, never the prompt.
    """

    _name = "ai.response.cache"
    _description = "AI Response Cache Entry"
    _order = "id desc"
    _rec_name = "model"

    key = fields.Char(required=True, readonly=True, help="SHA-256 of model, messages and parameters.")
    company_id = fields.Many2one("res.company", required=True, readonly=True, ondelete="cascade")
    provider_id = fields.Many2one("ai.service.provider", readonly=True, ondelete="cascade")
    model = fields.Char(readonly=True)
    content = fields.Text(readonly=True)
    cost_usd = fields.Float(digits=PRICE_DIGITS, string="Original Cost (USD)", readonly=True)
    usage_id = fields.Many2one("ai.token.usage", string="Original Call", readonly=True, ondelete="set null")
    expires_at = fields.Datetime(required=True, readonly=True, index=True)

    _sql_constraints = [("key_uniq", "UNIQUE(company_id, key)", "One cached answer per request and company.")]

    def _lookup(self, company, key):
        """The live answer for `key` in `company`, as {'content', 'cost_usd'}, or None. Asked before every
        cacheable call: one probe of the unique index, without the ORM's domain parsing.

        Read committed, on a cursor of its own: the caller's snapshot may predate the answers committed since
        it began, such as the answer to an identical request earlier in the same transaction. A transaction
        that keeps its calls' rows itself (see holds_call_rows) is read as well."""
        probe = SQL(
            "SELECT content, cost_usd FROM ai_response_cache WHERE company_id = %s AND key = %s AND expires_at > %s"
            " LIMIT 1",
            company.id, key, fields.Datetime.now(),
        )

        def read(cr):
            # Raw SQL for the gateway overhead target (DESIGN section 9), prepared; committed state (see above).
            execute_prepared(cr, probe)
            return cr.dictfetchone()

        # In test mode the probe's cursor shares the caller's transaction, which must show its changes.
        self.flush_model(["company_id", "key", "expires_at"])
        with STATEMENT_CURSORS.cursor(self.env.registry) as cr:
            answer = read(cr)
        if answer is None and holds_call_rows(self.env.cr):
            answer = read(self.env.cr)
        return answer

    def _store_sql(self, key, company, usage_id, usage_vals, content):
        """The statement that stores (or refreshes) the answer of the usage row `usage_id`, written with the
        values `usage_vals`, in the ledger statement; None when `company` (the usage's) keeps no completions.

        An upsert: two workers answering the same request at once must not make the ledger
        transaction fail on the unique key."""
        settings = company._ai_gateway_settings(company.id)
        if settings.prompt_retention == "none" or not settings.prompt_retention_days:
            return None
        now = fields.Datetime.now()
        # The cache keeps answers no longer than the ledger keeps completions.
        expires_at = min(
            now + timedelta(hours=settings.response_cache_ttl_hours),
            now + timedelta(days=settings.prompt_retention_days),
        )
        return SQL(
            """INSERT INTO ai_response_cache
                   (key, company_id, provider_id, model, content, cost_usd, usage_id, expires_at,
                    create_uid, write_uid, create_date, write_date)
               VALUES (%(key)s, %(company)s, %(provider)s, %(model)s, %(content)s, %(cost)s, %(usage)s, %(expires)s,
                       %(uid)s, %(uid)s, %(now)s, %(now)s)
               ON CONFLICT (company_id, key) DO UPDATE SET
                   provider_id = EXCLUDED.provider_id, model = EXCLUDED.model, content = EXCLUDED.content,
                   cost_usd = EXCLUDED.cost_usd, usage_id = EXCLUDED.usage_id, expires_at = EXCLUDED.expires_at,
                   write_uid = EXCLUDED.write_uid, write_date = EXCLUDED.write_date""",
            key=key, company=company.id, provider=usage_vals["provider_id"] or None, model=usage_vals["model"],
            content=content, cost=usage_vals["cost_usd"], usage=usage_id, expires=expires_at, uid=self.env.uid, now=now,
        )

    @api.model
    def _cron_purge_expired(self):
        self.search([("expires_at", "<=", fields.Datetime.now())]).unlink()
