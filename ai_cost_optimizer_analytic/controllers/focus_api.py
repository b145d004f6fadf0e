from odoo import http
from odoo.addons.ai_cost_optimizer.controllers import cost_api
from odoo.http import request

FOCUS_FILTERS = {"start", "end"}


class CostApi(cost_api.CostApi):
    """The costs API, with the ledger as a FinOps FOCUS 1.2 CSV: the same authentication, checks and
    JSON errors (400 on bad dates) as the other routes, through the core controller's `_prepare`."""

    @http.route("/ai_cost/api/v1/focus", type="http", auth="ai_cost_api", csrf=False, save_session=False)
    def focus(self, **params):
        """The FOCUS rows of the days from `start` to `end` (inclusive; by default the last 30 days)."""
        env, filters = self._prepare(params, FOCUS_FILTERS)
        body = env["ai.cost.focus.export"]._focus_csv(filters["start"], filters["end"], env.companies)
        filename = f"ai-spend-focus-{filters['start']}-{filters['end']}.csv"
        return request.make_response(body, headers=[
            ("Content-Type", "text/csv; charset=utf-8"),
            ("Content-Disposition", f'attachment; filename="{filename}"'),
        ])
