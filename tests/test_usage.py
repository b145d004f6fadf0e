"""Usage normalization: cache tokens are parts of input_tokens, counted once."""

from anthropic.types import CacheCreation
from anthropic.types import Usage as AnthropicUsage

from ai_cost_optimizer.core.usage import Usage, from_anthropic, from_openai


def test_anthropic_cache_tokens_are_added_to_input():
    usage = from_anthropic(
        {"input_tokens": 50, "output_tokens": 20, "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 300}
    )
    assert usage == Usage(input_tokens=1350, output_tokens=20, cache_read_tokens=1000, cache_write_tokens=300)
    assert usage.uncached_input_tokens == 50
    assert usage.total_tokens == 1370


def test_anthropic_sdk_object_with_none_cache_fields():
    class SdkUsage:  # the SDK's pydantic model exposes attributes, cache fields may be None
        input_tokens = 12
        output_tokens = 3
        cache_read_input_tokens = None
        cache_creation_input_tokens = None

    assert from_anthropic(SdkUsage()) == Usage(input_tokens=12, output_tokens=3)


def test_openai_cached_tokens_are_already_inside_prompt_tokens():
    usage = from_openai(
        {
            "prompt_tokens": 2000,
            "completion_tokens": 100,
            "total_tokens": 2100,
            "prompt_tokens_details": {"cached_tokens": 1536},
        }
    )
    assert usage == Usage(input_tokens=2000, output_tokens=100, cache_read_tokens=1536, cache_write_tokens=0)
    assert usage.uncached_input_tokens == 464


def test_openai_null_details_and_deepseek_cache_hits():
    assert from_openai({"prompt_tokens": 7, "completion_tokens": 1, "prompt_tokens_details": None}) == Usage(7, 1)
    deepseek = from_openai(
        {"prompt_tokens": 900, "completion_tokens": 10, "prompt_cache_hit_tokens": 640, "prompt_cache_miss_tokens": 260}
    )
    assert deepseek == Usage(input_tokens=900, output_tokens=10, cache_read_tokens=640)


def test_uncached_input_never_negative():
    assert Usage(input_tokens=5, cache_read_tokens=10).uncached_input_tokens == 0


def test_anthropic_one_hour_cache_writes_are_part_of_the_cache_writes():
    """The SDK's own usage type, as the client receives it: the 1-hour writes are kept apart."""
    reported = AnthropicUsage(
        input_tokens=30, output_tokens=7, cache_read_input_tokens=500, cache_creation_input_tokens=1_200,
        cache_creation=CacheCreation(ephemeral_5m_input_tokens=200, ephemeral_1h_input_tokens=1_000),
    )
    assert from_anthropic(reported) == Usage(
        input_tokens=1_730, output_tokens=7, cache_read_tokens=500, cache_write_tokens=1_200,
        cache_write_1h_tokens=1_000,
    )
    # Without the breakdown (older API versions), every write counts as a 5-minute one.
    assert from_anthropic({"input_tokens": 1, "cache_creation_input_tokens": 9}).cache_write_1h_tokens == 0
