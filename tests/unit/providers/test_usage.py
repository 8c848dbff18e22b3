"""Prices and costs: the default price list, dated model snapshots, and what a usage costs."""

from __future__ import annotations

import pytest

from videodub.providers.usage import (Estimate, EstimateLine, Price, Usage, cost, default_prices,
                                      find_price)


def test_prices_cover_the_default_models_and_dated_snapshots():
    prices = default_prices()
    assert find_price(prices, "gpt-4o-mini-2024-07-18") == prices["gpt-4o-mini"]
    assert find_price(prices, "llama3.1:8b") is None
    assert cost(Usage(audio_in_s=600), prices["whisper-1"]) == pytest.approx(0.06)
    assert cost(Usage(chars=1_000_000), prices["tts-1"]) == pytest.approx(15.0)
    assert cost(Usage(tokens_in=1_000_000, tokens_out=1_000_000),
                Price(input_per_1m_tokens=1, output_per_1m_tokens=2)) == pytest.approx(3.0)
    assert cost(Usage(chars=10), None) is None


def test_the_estimate_names_each_paid_stage_or_says_there_is_none():
    line = EstimateLine("translate", "gpt-4o-mini", Usage(calls=2, tokens_in=500, tokens_out=61),
                        0.0002)
    assert Estimate([line]).summary() == ("estimated cost: $0.0002 at list prices; translate "
                                          "gpt-4o-mini: $0.0002 (~561 tokens in ~2 calls)")
    assert Estimate([]).summary() == "estimated cost: $0 (no paid calls)"
