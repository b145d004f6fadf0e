import json

import werkzeug.exceptions

from odoo import http, models
from odoo.exceptions import AccessDenied


def json_error(exception_class, message, headers=None, **kwargs):
    """An HTTP error whose body is JSON, for API clients (never an HTML page or a traceback)."""
    response = http.Response(
        json.dumps({"error": {"code": exception_class.code, "message": message}}),
        status=exception_class.code,
        headers=headers,
        content_type="application/json",
    )
    return exception_class(description=message, response=response, **kwargs)


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _auth_method_ai_cost_api(cls):
        """Odoo's 'bearer' authentication (an API key as Bearer, or a browser session), with the
        refusals answered in JSON: 401 without valid credentials, 403 when they are refused."""
        try:
            cls._auth_method_bearer()
        except werkzeug.exceptions.Unauthorized as error:
            raise json_error(werkzeug.exceptions.Unauthorized, error.description) from None
        except (AccessDenied, http.SessionExpiredException) as error:
            message = str(error.args[0]) if error.args else "Access denied"
            raise json_error(werkzeug.exceptions.Forbidden, message) from None
