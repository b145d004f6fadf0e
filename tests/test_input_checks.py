"""Checks of the gateway's optional text parameters and of text that reaches PostgreSQL."""

import pytest

from ai_cost_optimizer.core.messages import (
    MAX_PROMPT_CHARS,
    check_code,
    check_label,
    check_model_name,
    short_repr,
    storable_text,
    validate_messages,
)


@pytest.mark.parametrize("value", [None, False, ""])
def test_absent_labels(value):
    assert check_label(value, "operation") is None


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (42, "must be a string, got int"),
        (["x"], "must be a string, got list"),
        ("x" * 257, "257 characters; at most 256"),
        ("two\nlines", "one line"),
        ("nul\x00", "one line"),
        ("bad \ud800 surrogate", "not valid Unicode"),
    ],
)
def test_bad_labels(value, error):
    with pytest.raises(ValueError, match=error):
        check_label(value, "operation")


def test_unicode_labels_are_fine():
    assert check_label("résumé · 見積もり 🚀", "operation") == "résumé · 見積もり 🚀"


@pytest.mark.parametrize("value", ["chat", "code.review", "lead-qualif_2"])
def test_codes(value):
    assert check_code(value, "task_type") == value


@pytest.mark.parametrize("value", ["crm.lead", "res.partner", "x_custom.model_2", "board"])
def test_model_names(value):
    assert check_model_name(value, "res_model") == value


@pytest.mark.parametrize("value", ["Res.Partner", "res..partner", "res.partner;", ".res", "res partner", "m" * 129])
def test_bad_model_names(value):
    with pytest.raises(ValueError, match="res_model"):
        check_model_name(value, "res_model")


@pytest.mark.parametrize("value", [None, "", " chat", "2fast", "chat; DROP TABLE x", "x" * 65, 7])
def test_bad_codes(value):
    with pytest.raises(ValueError, match="task_type must be a code"):
        check_code(value, "task_type")


@pytest.mark.parametrize(
    ("content", "error"),
    [("a\x00b", "NUL"), ("\udfff", "not valid Unicode"), ("x" * (MAX_PROMPT_CHARS + 1), "at most")],
)
def test_message_contents_postgresql_cannot_store(content, error):
    with pytest.raises(ValueError, match=error):
        validate_messages([{"role": "user", "content": content}])


def test_storable_text_and_short_repr():
    assert storable_text("a\x00b\ud800c") == "ab?c"
    assert short_repr("x" * 1000).endswith("...") and len(short_repr("x" * 1000)) == 60
    assert short_repr(10**5000) == "<int>"
