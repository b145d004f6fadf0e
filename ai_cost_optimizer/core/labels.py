"""The labels people read for the codes callers pass to send_message (operation="email_draft"): the codes
stay what filters and the JSON API use; screens show these labels."""

from __future__ import annotations


def code_label(code: str | None) -> str:
    """`email_draft` -> `Email draft`: the label of an operation or task type code that no record names."""
    if not code:
        return ""
    words = code.replace("_", " ").replace("-", " ").split()
    return " ".join(words)[:1].upper() + " ".join(words)[1:]
