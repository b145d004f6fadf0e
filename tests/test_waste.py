"""The waste rules: a positive and a negative case each, asserting the tokens and dollars wasted."""

import dataclasses

import pytest

from ai_cost_optimizer.core import waste
from ai_cost_optimizer.core.tokens import count_text_tokens

SETTINGS = waste.WasteSettings()
# $1 per million input tokens, $0.10 cached, $4 output: round numbers keep expected dollars exact.
PRICES = waste.Prices(input_per_mtok=1.0, output_per_mtok=4.0, cache_read_per_mtok=0.1)


def facts(**overrides):
    values = {
        "task_type": "chat",
        "model": "gpt-4o-mini",
        "input_tokens": 1000,
        "output_tokens": 200,
        "cost_usd": 0.0018,
        "prices": PRICES,
        "context_window": 128000,
    }
    values.update(overrides)
    return waste.CallFacts(**values)


def test_duplicate_query_wastes_the_whole_call():
    finding = waste.duplicate_query(facts(duplicate_of_recent=True), SETTINGS)
    assert (finding.type, finding.tokens_wasted, finding.cost_wasted) == ("duplicate_query", 1200, 0.0018)
    assert waste.duplicate_query(facts(), SETTINGS) is None


def test_redundant_context_prices_the_extra_copies():
    block = "Lead 42 is a hardware wholesaler based in Lyon with 40 employees and a budget for Q3. " * 3
    messages = [{"role": "user", "content": f"{block}\n\nQualify this lead.\n\n{block}\n\n{block}"}]
    tokens = waste.redundant_tokens(messages, lambda text: count_text_tokens(text).tokens)
    assert tokens == 2 * count_text_tokens(block.strip()).tokens
    finding = waste.redundant_context(facts(redundant_tokens=tokens), SETTINGS)
    assert finding.tokens_wasted == tokens
    assert finding.cost_wasted == pytest.approx(tokens / 1e6)
    unique = [{"role": "user", "content": f"{block}\n\nQualify this lead."}]
    assert waste.redundant_tokens(unique, len) == 0
    assert waste.redundant_context(facts(redundant_tokens=0), SETTINGS) is None


def test_redundant_context_below_threshold_is_not_waste():
    assert waste.redundant_context(facts(redundant_tokens=SETTINGS.redundant_min_tokens - 1), SETTINGS) is None


def test_oversized_context_for_the_task_type():
    finding = waste.oversized_context(facts(task_type="classify", input_tokens=10000), SETTINGS)
    assert (finding.tokens_wasted, finding.cost_wasted) == (6000, pytest.approx(0.006))
    assert waste.oversized_context(facts(task_type="classify", input_tokens=3000), SETTINGS) is None
    # chat has no stricter limit than the general one
    assert waste.oversized_context(facts(input_tokens=15000), SETTINGS) is None
    assert waste.oversized_context(facts(input_tokens=20000), SETTINGS).tokens_wasted == 4000


def test_oversized_context_near_the_window_for_a_tiny_answer():
    near = facts(input_tokens=7000, output_tokens=10, context_window=8000)
    finding = waste.oversized_context(near, SETTINGS)
    assert finding.tokens_wasted == 7000 - 1600  # the answer needs at most the 20% headroom
    assert finding.cost_wasted == pytest.approx(0.0054)
    assert waste.oversized_context(dataclasses.replace(near, output_tokens=500), SETTINGS) is None
    # An unknown window (0) is no reason to call a prompt near it.
    assert waste.oversized_context(dataclasses.replace(near, context_window=0), SETTINGS) is None


def test_wrong_model_measures_the_price_difference():
    finding = waste.wrong_model(facts(alternatives=(("Cheap", 0.0006), ("Mid", 0.0012))), SETTINGS)
    assert (finding.tokens_wasted, finding.cost_wasted) == (1200, pytest.approx(0.0012))
    assert "Cheap" in finding.recommendation
    assert finding.description.endswith("would have cost $0.0006 instead of $0.0018.")
    # 10% cheaper is below the 20% threshold
    assert waste.wrong_model(facts(alternatives=(("Close", 0.00162),)), SETTINGS) is None
    assert waste.wrong_model(facts(), SETTINGS) is None


def test_unnecessary_history_for_single_shot_tasks():
    messages = [
        {"role": "system", "content": "Classify tickets."},
        {"role": "user", "content": "old question"},
        {"role": "assistant", "content": "old answer"},
        {"role": "user", "content": "Printer on fire"},
    ]
    assert [m["content"] for m in waste.history_messages(messages)] == ["old question", "old answer"]
    finding = waste.unnecessary_history(facts(task_type="classify", history_tokens=500), SETTINGS)
    assert (finding.tokens_wasted, finding.cost_wasted) == (500, pytest.approx(0.0005))
    assert waste.unnecessary_history(facts(task_type="chat", history_tokens=500), SETTINGS) is None
    assert waste.unnecessary_history(facts(task_type="classify", history_tokens=199), SETTINGS) is None


def test_missed_cache_prices_the_cache_saving():
    repeat = facts(static_prefix_tokens=3000, prefix_seen_recently=True)
    finding = waste.missed_cache(repeat, SETTINGS)
    assert (finding.tokens_wasted, finding.cost_wasted) == (3000, pytest.approx(3000 * 0.9 / 1e6))
    assert waste.missed_cache(dataclasses.replace(repeat, cache_read_tokens=3000), SETTINGS) is None
    assert waste.missed_cache(dataclasses.replace(repeat, prefix_seen_recently=False), SETTINGS) is None
    # Claude Haiku caches 2048 tokens or more only
    haiku = dataclasses.replace(repeat, model="claude-3-5-haiku", static_prefix_tokens=1500)
    assert waste.missed_cache(haiku, SETTINGS) is None


def test_static_prefix_is_the_leading_system_messages():
    messages = [{"role": "system", "content": "A"}, {"role": "system", "content": "B"}]
    messages.append({"role": "user", "content": "C"})
    assert waste.static_prefix(messages) == "A\n\nB"
    assert waste.static_prefix([{"role": "user", "content": "C"}]) == ""


def test_analyze_caps_savings_at_the_call_cost_and_scores_them():
    report = waste.analyze(facts(duplicate_of_recent=True, history_tokens=500, task_type="classify"), SETTINGS)
    assert [f["type"] for f in report["findings"]] == ["duplicate_query", "unnecessary_history"]
    assert report["potential_savings_usd"] == pytest.approx(0.0018)
    assert report["waste_score"] == 100
    clean = waste.analyze(facts(), SETTINGS)
    assert clean == {"waste_detected": False, "waste_score": 0, "findings": [], "potential_savings_usd": 0.0}


def test_analyze_drops_findings_that_wasted_nothing():
    """A duplicate of a call that used no tokens and cost nothing is no waste: no zero line in the report."""
    report = waste.analyze(facts(duplicate_of_recent=True, input_tokens=0, output_tokens=0, cost_usd=0.0), SETTINGS)
    assert report == {"waste_detected": False, "waste_score": 0, "findings": [], "potential_savings_usd": 0.0}
    # Tokens wasted at an unknown price still count.
    report = waste.analyze(facts(duplicate_of_recent=True, cost_usd=0.0), SETTINGS)
    assert [(f["type"], f["tokens_wasted"]) for f in report["findings"]] == [("duplicate_query", 1200)]


def test_settings_errors():
    assert SETTINGS.errors() == []
    bad = waste.WasteSettings(duplicate_window_seconds=0, history_min_tokens=-1, near_window_ratio=1.5)
    assert len(bad.errors()) == 3


def test_findings_add_up_to_the_savings():
    """Overlapping findings (a duplicate that also carries history) share the call's cost: the waste report,
    which sums the findings, reads what the dashboard sums of the calls' savings."""
    report = waste.analyze(facts(duplicate_of_recent=True, history_tokens=500, task_type="classify"), SETTINGS)
    costs = [finding["cost_wasted"] for finding in report["findings"]]
    assert sum(costs) == pytest.approx(report["potential_savings_usd"])
    assert costs == [pytest.approx(0.0018), 0.0], "the duplicate wasted the whole call; the history adds nothing"
    assert report["findings"][1]["tokens_wasted"] == 500, "its tokens still show"
