from . import ai_token_usage
