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


def test_tool_calls_and_the_reply_schema_are_part_of_the_key():
    call = {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    with_call = [*MESSAGES, {"role": "assistant", "content": "", "tool_calls": [call]},
                 {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"}]
    other_call = [*with_call[:-2], {**with_call[-2], "tool_calls": [{**call, "arguments": {"city": "Lyon"}}]},
                  with_call[-1]]
    assert cache_key("gpt-4o-mini", with_call, 100, None) != cache_key("gpt-4o-mini", other_call, 100, None)
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}}
    plain = cache_key("gpt-4o-mini", MESSAGES, 100, None)
    assert plain == cache_key("gpt-4o-mini", MESSAGES, 100, None, None), "a plain request keeps its key"
    assert plain != cache_key("gpt-4o-mini", MESSAGES, 100, None, schema)
