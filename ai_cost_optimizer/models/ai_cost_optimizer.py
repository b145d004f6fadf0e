from odoo import api, models, tools
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from ..core import recommendation as ranking_rules
from ..core.messages import check_code, is_finite_number, short_repr
from ..core.recommendation import Candidate
from ..core.request import MAX_RECORD_ID
from .ai_service_provider import CANDIDATE_FIELDS


class AiCostOptimizer(models.AbstractModel):
    """Recommends the cheapest provider per quality point for a task (see core.recommendation).

    It reads only providers and task types: their benchmark figures (quality, answer length) are
    cached on them by ai.provider.benchmark, so no usage or benchmark row is scanned per call. Both
    are read with one SQL query each: a recommendation is made on every gateway call (bench/).
    """

    _name = "ai.cost.optimizer"
    _description = "AI Cost Optimizer"

    @api.model
    def recommend_provider(self, task_type, context_size_tokens, quality_required="medium", max_budget_usd=None):
        """The cheapest qualifying provider of the current company, per quality point.

        Returns {'provider_id', 'provider_name', 'estimated_cost', 'reasoning', 'alternatives',
        'excluded', 'expected_output_tokens', 'recommendation_id'}: alternatives are every qualifying
        provider, best first (the recommended one included), as {'provider_id', 'provider_name',
        'estimated_cost', 'quality', 'cost_per_quality_point'}; excluded lists the others with the
        reason, as {'provider_id', 'provider_name', 'reason'}.
        When nothing qualifies provider_id is False and the reasoning names what excluded each
        candidate. Every recommendation is stored as an ai.cost.recommendation record, except the
        questions asked with the context key ai_recommendation_internal (the gateway stores the
        recommendations of the calls it serves itself, in its ledger transaction).
        """
        output_tokens = self._check_recommendation_input(
            task_type, context_size_tokens, quality_required, max_budget_usd
        )
        # Internal questions about an unknown task type (a past call's) get the "nothing qualifies" shape.
        candidates = self._candidates(task_type) if output_tokens is not None else []
        output_tokens = output_tokens or 0
        ranking = ranking_rules.rank(candidates, context_size_tokens, output_tokens, quality_required, max_budget_usd)
        result = self._result(ranking, quality_required, output_tokens)
        if not self.env.context.get("ai_recommendation_internal"):
            result["recommendation_id"] = self._store(
                result, task_type, context_size_tokens, quality_required, max_budget_usd
            )
        return result

    @staticmethod
    def _result(ranking, quality_required, output_tokens):
        """recommend_provider's answer for a core.recommendation Ranking (without recommendation_id)."""
        best = ranking.best
        return {
            "provider_id": best.candidate.provider_id if best else False,
            "provider_name": best.candidate.name if best else False,
            "estimated_cost": best.estimated_cost if best else 0.0,
            "expected_output_tokens": output_tokens,
            "reasoning": ranking_rules.reasoning(ranking, quality_required),
            "excluded": [
                {"provider_id": candidate.provider_id, "provider_name": candidate.name, "reason": reason}
                for candidate, reason in ranking.excluded
            ],
            "alternatives": [
                {
                    "provider_id": scored.candidate.provider_id,
                    "provider_name": scored.candidate.name,
                    "estimated_cost": scored.estimated_cost,
                    "quality": round(scored.quality, 2),
                    "cost_per_quality_point": scored.cost_per_quality_point,
                }
                for scored in ranking.ranked
            ],
        }

    def _check_recommendation_input(self, task_type, context_size_tokens, quality_required, max_budget_usd):
        """Clear ValidationErrors for bad input; returns the task type's expected output tokens (or,
        for internal questions with the context key ai_recommendation_internal, None when unknown)."""
        _ = self.env._
        if not isinstance(quality_required, str) or quality_required not in ranking_rules.QUALITY_BARS:
            raise ValidationError(
                _("quality_required must be low, medium or high, not %s.", short_repr(quality_required))
            )
        if (
            isinstance(context_size_tokens, bool)
            or not isinstance(context_size_tokens, int)
            or not 0 <= context_size_tokens <= MAX_RECORD_ID
        ):
            raise ValidationError(
                _("context_size_tokens must be a positive integer, not %s.", short_repr(context_size_tokens))
            )
        if max_budget_usd is not None and not (is_finite_number(max_budget_usd) and max_budget_usd >= 0):
            raise ValidationError(_("max_budget_usd must be a positive number, not %s.", short_repr(max_budget_usd)))
        output_tokens = self._expected_output_tokens(task_type) if self._is_code(task_type) else None
        if output_tokens is None and not self.env.context.get("ai_recommendation_internal"):
            raise ValidationError(
                _("Unknown task type %s. Task types are listed in AI Cost > Configuration > Task Types.",
                  short_repr(task_type))
            )
        return output_tokens

    @staticmethod
    def _is_code(task_type):
        """Whether `task_type` can be a task type code; junk (NUL, lone surrogates, megabytes) is
        refused before it reaches the database."""
        try:
            check_code(task_type, "task_type")
        except ValueError:
            return False
        return True

    def _expected_output_tokens(self, task_type):
        """Output tokens to expect from a call of an active task type (learned once there are enough
        calls, else configured, see core.recommendation); None for an unknown task type."""
        figures = self.env["ai.task.type"]._output_figures().get(task_type)
        return ranking_rules.expected_output_tokens(*figures) if figures else None

    def _candidates(self, task_type, company_id=None):
        """The active providers of a company (default: the current one) as the ranking sees them."""
        rows = self._candidate_rows(company_id or self.env.company.id)
        keys = self._pending_keys()
        return [
            Candidate(
                provider_id=provider_id,
                name=name,
                prior_quality=quality,
                context_window=context_window,
                input_price=None if cost_unknown else input_price or 0.0,
                output_price=None if cost_unknown else output_price or 0.0,
                serves_task=not task_codes or task_type in task_codes,
                usable=keys.get(provider_id, has_key),
                benchmark_quality=benchmark_quality if samples else None,
                benchmark_samples=samples or 0,
            )
            for (provider_id, name, quality, context_window, cost_unknown, input_price, output_price, has_key,
                 benchmark_quality, samples, task_codes) in rows
        ]

    def _candidate(self, company_id, provider_id):
        """The ranking's view of one active provider of the company, None when it is not one: what the
        wrong_model waste rule prices the recommended provider with (ai.token.waste.finding)."""
        return next(
            (candidate for candidate in self._candidates(None, company_id) if candidate.provider_id == provider_id),
            None,
        )

    def _pending_keys(self):
        """{provider id: has_api_key} of the providers whose key readiness this transaction changed and did
        not write yet: _candidate_rows reads the stored column and must not flush the key (see there)."""
        Provider = self.env["ai.service.provider"].sudo()
        field = Provider._fields["has_api_key"]
        pending = Provider.browse(
            [*self.env.records_to_compute(field)._ids, *self.env.cache.get_dirty_records(Provider, field)._ids]
        )
        return {provider.id: provider.has_api_key for provider in pending}

    @tools.ormcache("company_id")
    def _candidate_rows(self, company_id):
        """The fields the ranking reads of the company's active providers, cached per registry: read on
        every gateway call and changed seldom (ai.service.provider's CANDIDATE_FIELDS clear the cache)."""
        Provider = self.env["ai.service.provider"].sudo()
        # Never flush api_key here (nor has_api_key, whose recomputation would flush it with it): a pending key
        # change would be written, and logged at DEBUG level by the SQL logger. Pending key changes are taken
        # from the ORM cache (_pending_keys).
        Provider.flush_model([name for name in CANDIDATE_FIELDS if name != "api_key"])
        self.env["ai.task.type"].flush_model(["code", "active"])
        relation = Provider._fields["task_type_ids"]
        # Raw SQL: the providers with their task codes in one query; whether a key is ready is the stored
        # has_api_key (ai.service.provider's one definition), so the key itself is never read.
        self.env.cr.execute(SQL(
            """
            SELECT p.id, p.name, p.quality_score, p.context_window, p.cost_unknown, p.input_price, p.output_price,
                   p.has_api_key,
                   p.benchmark_quality, p.benchmark_quality_samples,
                   array_remove(array_agg(t.code), NULL)
              FROM ai_service_provider p
         LEFT JOIN %(rel)s rel ON rel.%(provider_col)s = p.id
         LEFT JOIN ai_task_type t ON t.id = rel.%(task_col)s AND t.active
             WHERE p.company_id = %(company)s AND p.active
          GROUP BY p.id
          ORDER BY p.sequence, p.name, p.id
            """,
            rel=SQL.identifier(relation.relation),
            provider_col=SQL.identifier(relation.column1),
            task_col=SQL.identifier(relation.column2),
            company=company_id,
        ))
        return tuple((*row[:-1], frozenset(row[-1])) for row in self.env.cr.fetchall())

    def _store(self, result, task_type, context_size_tokens, quality_required, max_budget_usd):
        """Keep a recommendation (the dict recommend_provider returned) as a record; returns its id."""
        vals = self._recommendation_values(result, task_type, context_size_tokens, quality_required, max_budget_usd)
        return self.env["ai.cost.recommendation"].sudo().create(vals).id

    def _recommendation_values(self, result, task_type, context_size_tokens, quality_required, max_budget_usd):
        """The values of the record of a recommendation (the gateway's are written by its ledger statement)."""
        return {
            "name": f"{task_type} / {quality_required}: {result['provider_name'] or '-'}",
            "user_id": self.env.uid,
            "company_id": self.env.company.id,
            "task_type": task_type,
            "quality_required": quality_required,
            "context_size_tokens": context_size_tokens,
            "expected_output_tokens": result["expected_output_tokens"],
            "max_budget_usd": max_budget_usd or 0.0,
            "recommended_provider_id": result["provider_id"],
            "estimated_cost_usd": result["estimated_cost"],
            "qualifying_count": len(result["alternatives"]),
            "excluded_count": len(result["excluded"]),
            "reasoning": result["reasoning"],
        }
