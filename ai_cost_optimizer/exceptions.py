from odoo.exceptions import UserError


class AiProviderError(UserError):
    """The provider could not answer after its retries (and fallbacks)."""


class AiBudgetExceeded(UserError):
    """A budget's block threshold refused the call."""
