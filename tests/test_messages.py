"""Message validation errors, prompt normalization and hashing."""

import pytest

from ai_cost_optimizer.core.messages import normalize_prompt, prompt_hash, validate_messages

USER = {"role": "user", "content": "Hello"}


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ("Hello", "must be a list"),
        (None, "must be a list"),
        ([], "empty"),
        (["Hello"], "Message 0 must be a dict"),
        ([USER, {"role": "robot", "content": "x"}], "Message 1 has role 'robot'"),
        ([{"content": "x"}], "Message 0 has role None"),
        ([{"role": "user", "content": 42}], "content must be a string"),
        ([{"role": "user"}], "content must be a string"),
        ([{"role": "user", "content": "  \n "}], "empty content"),
        ([{"role": "system", "content": "Be brief."}], "no user message"),
    ],
)
def test_bad_messages_raise_clear_errors(messages, error):
    with pytest.raises(ValueError, match=error):
        validate_messages(messages)


def test_valid_messages_are_copied():
    messages = [{"role": "system", "content": "Be brief."}, USER]
    checked = validate_messages(messages)
    assert checked == messages and checked[1] is not USER


def test_prompt_normalization_and_hash():
    a = [{"role": "user", "content": "  What is   the\nVAT rate? "}]
    b = [{"role": "user", "content": "what is the vat rate?"}]
    assert normalize_prompt(a) == "user: what is the vat rate?"
    assert prompt_hash(a, "gpt-4o-mini") == prompt_hash(b, "gpt-4o-mini")
    assert len(prompt_hash(a, "gpt-4o-mini")) == 64
    assert prompt_hash(a, "gpt-4o-mini") != prompt_hash(a, "claude-haiku-4-5")
    assert prompt_hash(a, "gpt-4o-mini", {"max_tokens": 10}) != prompt_hash(a, "gpt-4o-mini", {"max_tokens": 20})
    assert prompt_hash(a, "m", {"a": 1, "b": 2}) == prompt_hash(a, "m", {"b": 2, "a": 1})
    system = [{"role": "system", "content": "what is the vat rate?"}]
    assert prompt_hash(system, "gpt-4o-mini") != prompt_hash(b, "gpt-4o-mini")
