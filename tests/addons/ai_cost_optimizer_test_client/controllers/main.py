"""A JSON route calling the gateway the way any module's controller would.

It stands for "another module" in the tests: the call runs as the logged-in user, in the
request's transaction, through the public `ai.service.send_message` API, and over HTTP, so
that the scale test can drive several Odoo servers at once.
"""

from odoo import http
from odoo.exceptions import UserError
from odoo.http import request

# The keyword arguments of send_message a client may pass; anything else is refused, as a module
# would not forward arbitrary parameters from a browser.
ALLOWED_KWARGS = frozenset({
    "provider", "task_type", "quality_required", "mode", "max_tokens", "temperature", "operation",
    "res_model", "res_id", "session_id", "max_budget_usd", "use_cache",
})


class AiCostTestClient(http.Controller):
    @http.route("/ai_cost_optimizer_test_client/send", type="json", auth="user", methods=["POST"])
    def send(self, messages, **kwargs):
        """Send `messages` through the gateway and return its result dict.

        A refused or failed call raises the gateway's UserError, which Odoo answers as a JSON-RPC
        error carrying the exception's name and message.
        """
        unknown = sorted(set(kwargs) - ALLOWED_KWARGS)
        if unknown:
            raise UserError(request.env._("Unknown parameters of send_message: %s", ", ".join(unknown)))
        # The result holds plain values only (ids, not records; the recommendation and waste report
        # are dicts), so Odoo's JSON-RPC encoder returns it as it is.
        return request.env["ai.service"].send_message(messages, **kwargs)

