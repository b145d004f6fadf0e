from odoo.exceptions import UserError


class AiProviderError(UserError):
    """The provider could not answer after its retries (and fallbacks)."""


class AiBudgetExceeded(UserError):
    """A budget's block threshold refused the call."""


class AiRateLimited(UserError):
    """A rate limit refused the call (at once, or when its wait for room ran out)."""


class AiInvalidReply(AiProviderError):
    """The provider answered, and was paid, but its reply is not the structured output asked for."""
