import json

import werkzeug.exceptions

from odoo import api, http
from odoo.exceptions import AccessError, UserError
from odoo.http import request

from ..models.ir_http import json_error

STREAM_HEADERS = [
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Cache-Control", "no-cache"),
    # A proxy (nginx) would otherwise buffer the answer and hand it over in one piece.
    ("X-Accel-Buffering", "no"),
]


def sse(event, data):
    """One server-sent event: `data` as one line of JSON (a chunk may hold newlines)."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class PlaygroundStream(http.Controller):
    """The playground's answer, streamed to the browser as it comes (server-sent events).

    POST /ai_cost/playground/<id>/stream sends the playground's prompt as its Send button does and answers
    `chunk` events ({"text": ...}) as the provider writes, then `done` ({"usage_id", "cost_usd"}) once the call
    is recorded and the playground shows it. A call that does not start (a budget's block, a provider error, no
    provider) or breaks off answers an `error` event ({"message"}) instead; the gateway recorded it all the same."""

    @http.route("/ai_cost/playground/<int:playground_id>/stream", type="http", auth="user", methods=["POST"])
    def stream(self, playground_id, **_params):
        self._check_access(playground_id)
        events = self._events(request.env.registry, request.env.uid, dict(request.env.context), playground_id)
        return http.Response(events, headers=STREAM_HEADERS, direct_passthrough=True)

    @staticmethod
    def _check_access(playground_id):
        """404 for a playground the user cannot see (another user's), 403 without the right to write it."""
        try:
            playground = request.env["ai.cost.playground"].search([("id", "=", playground_id)])
            if not playground:
                raise json_error(werkzeug.exceptions.NotFound, request.env._("This playground does not exist."))
            playground.check_access("write")
        except AccessError as error:
            raise json_error(werkzeug.exceptions.Forbidden, str(error)) from None

    @staticmethod
    def _events(registry, uid, context, playground_id):
        """The events of the playground's streamed answer.

        On a cursor of its own, opened when the server starts reading this generator: the request's is closed
        by then. It commits when the generator ends, also after an error: the gateway's rows, which may be held
        in this transaction (see ledger.cursors.run_in_own_transaction), and the playground's answer."""
        with registry.cursor() as cr:
            playground = api.Environment(cr, uid, context)["ai.cost.playground"].browse(playground_id)
            stream = None
            try:
                stream = playground._stream_answer()
                with stream:
                    for chunk in stream:
                        yield sse("chunk", {"text": chunk})
            except UserError as error:  # refused before it went out, or broken off by the provider
                yield sse("error", {"message": str(error)})
            if stream is not None:
                # Read to its end or broken off, the call is recorded: the playground shows it.
                playground._store_answer(stream.result)
                yield sse("done", {"usage_id": stream.result["usage_id"], "cost_usd": stream.result["cost_usd"]})
