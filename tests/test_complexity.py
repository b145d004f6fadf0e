"""core.complexity: trivial prompts are simple, hard ones complex."""

from ai_cost_optimizer.core.complexity import score_prompt
from ai_cost_optimizer.core.tokens import count_text_tokens


def score(text, system="You are helpful."):
    messages = [{"role": "system", "content": system}, {"role": "user", "content": text}]
    return score_prompt(messages, lambda t: count_text_tokens(t, "gpt-4o-mini").tokens)


def test_trivial_prompt_is_simple():
    result = score("What is the capital of France?")
    assert result.level == "simple" and result.quality_level == "low"


def test_the_system_prompt_does_not_count():
    assert score("Say hello.", system="Analyze, compare and design step by step. " * 50).level == "simple"


def test_medium_prompt():
    result = score("Summarize this customer email in two sentences and explain why the customer is unhappy: "
                   + "The delivery was late and the invoice was wrong. " * 5)
    assert result.level == "medium" and result.quality_level == "medium"


def test_hard_prompt_is_complex():
    result = score(
        "Analyze this Python function, explain why it is slow, then refactor it and compare the trade-offs:\n"
        "```python\ndef total(lines):\n    return sum([l.price * l.qty for l in lines])\n```\n"
        "1. Keep the API\n2. Add type hints\n3. Return JSON with the new code"
    )
    assert result.level == "complex" and result.quality_level == "high"
    assert "code" in result.signals
