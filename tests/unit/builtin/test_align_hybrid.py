"""align=hybrid: each synthesized clip is measured, and made again at the rate it needs or
from a shorter line."""

from __future__ import annotations

import pytest

from videodub.builtin.align_hybrid import HybridAligner, HybridAlignOptions
from videodub.config import implementation_config
from videodub.model import JobContext, RefitsClips, Segment, UsesSpeakingRate

Config = implementation_config("align", "hybrid", HybridAlignOptions)


@pytest.fixture
def ctx(tmp_path) -> JobContext:
    return JobContext(tmp_path, target_lang="es", source_lang="en")


def aligned(ctx, text: str, start=0.0, end=2.0, next_start=2.1, **options) -> tuple[HybridAligner, Segment]:
    aln = HybridAligner(Config(**{"max_speed": 1.3, **options}))
    seg = Segment(id=0, start=start, end=end, source_text="x", target_text=text)
    return aln, aln.align(seg, next_start, ctx)


def synthesized(seg: Segment, natural_s: float) -> Segment:
    """As a synthesizer would leave it: the clip's length at the asked rate."""
    seg.synth_duration = natural_s / seg.tts_rate
    return seg


def test_it_declares_the_capabilities_the_runner_uses():
    aln = HybridAligner(Config())
    assert isinstance(aln, RefitsClips) and isinstance(aln, UsesSpeakingRate)


def test_a_clip_sped_up_on_a_wrong_guess_is_made_again_at_natural_speed(ctx):
    ctx.speaking_rate = 10.0  # the guess says 3.3 s for 33 characters: too slow a voice
    aln, seg = aligned(ctx, "x" * 33)
    assert seg.tts_rate > 1.0
    assert aln.refit(synthesized(seg, natural_s=1.8), ctx) == "resynthesize"
    assert seg.tts_rate == 1.0
    assert aln.refit(synthesized(seg, natural_s=1.8), ctx) == "keep"


def test_a_clip_that_does_not_fit_gets_exactly_the_rate_it_needs(ctx):
    aln, seg = aligned(ctx, "x" * 20)
    assert seg.tts_rate == 1.0
    assert aln.refit(synthesized(seg, natural_s=2.4), ctx) == "resynthesize"
    assert seg.tts_rate == pytest.approx(2.4 / 2.0, abs=0.002)
    assert aln.refit(synthesized(seg, natural_s=2.4), ctx) == "keep"


def test_beyond_the_cap_a_shorter_line_is_asked_for_once_then_the_cap(ctx):
    ctx.speaking_rate = 60.0  # the guess says it fits: the measured clip says otherwise
    aln, seg = aligned(ctx, "x" * 60)
    assert seg.tts_rate == 1.0
    assert aln.refit(synthesized(seg, natural_s=4.0), ctx) == "shorten"
    # 60 characters needed 2.0x in a 1.3x cap: about 60 * 1.3 / 2.0, with a margin
    assert seg.extra["char_budget"] == int(60 * 1.3 / 2.0 * 0.9)
    seg.extra["shorten_asked"] = True  # what the runner records
    assert aln.refit(synthesized(seg, natural_s=4.0), ctx) == "resynthesize"
    assert seg.tts_rate == 1.3


def test_shortening_can_be_turned_off(ctx):
    ctx.speaking_rate = 60.0
    aln, seg = aligned(ctx, "x" * 60, shorten=False)
    assert aln.refit(synthesized(seg, natural_s=4.0), ctx) == "resynthesize"
    assert seg.tts_rate == 1.3


def test_a_clip_never_synthesized_is_left_alone(ctx):
    aln, seg = aligned(ctx, "")
    assert aln.refit(seg, ctx) == "keep"
