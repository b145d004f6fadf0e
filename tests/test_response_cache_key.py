"""Keys and eligibility of the exact-match response cache."""

from ai_cost_optimizer.core.response_cache import cache_key, is_cacheable

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Translate 'ABC'."}]


def test_only_deterministic_calls_are_cacheable():
    assert is_cacheable(True, None)
    assert is_cacheable(True, 0)
    assert not is_cacheable(True, 0.7)
    assert not is_cacheable(False, None)


def test_key_is_the_exact_request():
    key = cache_key("gpt-4o-mini", MESSAGES, 100, None)
    assert key == cache_key("gpt-4o-mini", MESSAGES, 100, 0), "unset and 0 are the same temperature"
    padded = [dict(message, content=f"  {message['content']}\n") for message in MESSAGES]
    assert key == cache_key("gpt-4o-mini", padded, 100, None), "surrounding whitespace is not part of the request"
    lower = [dict(message, content=message["content"].lower()) for message in MESSAGES]
    assert key != cache_key("gpt-4o-mini", lower, 100, None), "case is"
    assert key != cache_key("claude-3-5-haiku-latest", MESSAGES, 100, None)
    assert key != cache_key("gpt-4o-mini", MESSAGES, 200, None)
    assert key != cache_key("gpt-4o-mini", MESSAGES[1:], 100, None)
