"""videodub.placement: clips at their onsets, never two at once, slowed within the floor, never
cut at the media's end."""

from __future__ import annotations

import numpy as np
import pytest

from videodub.model import Segment
from videodub.placement import GAP_S, MAX_NUCLEUS_SHIFT_S, MAX_PUSH_S, ClipPlacer

RATE = 16000


def seg(i: int, start: float, end: float, slot_end: float | None = None, *, max_speed=1.3,
        tts_rate=1.0, min_speed=0.9) -> Segment:
    s = Segment(id=i, start=start, end=end, target_text="x", slot_start=start,
                slot_end=slot_end if slot_end is not None else end, tts_rate=tts_rate,
                max_speed=max_speed)
    s.extra["min_speed"] = min_speed
    return s


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_a_clip_that_fits_is_not_sped_up_and_starts_at_the_onset():
    s = seg(0, 2.0, 4.0)
    audio, start = ClipPlacer(10.0).place(s, tone(1.9), RATE)
    assert start == 2.0 and s.stretch == 1.0 and s.overflow == 0.0
    assert len(audio) == len(tone(1.9))


def test_a_much_shorter_clip_is_slowed_but_not_below_the_floor():
    s = seg(0, 2.0, 6.0)
    audio, _ = ClipPlacer(10.0).place(s, tone(2.0), RATE)
    assert s.stretch == pytest.approx(0.9)
    assert len(audio) / RATE == pytest.approx(2.0 / 0.9, rel=0.02)
    never = seg(1, 2.0, 6.0, min_speed=1.0)
    ClipPlacer(10.0).place(never, tone(2.0), RATE)
    assert never.stretch == 1.0


def test_a_long_clip_is_sped_up_within_the_cap_and_the_rest_is_overflow():
    s = seg(0, 0.0, 2.0, max_speed=1.25)
    ClipPlacer(10.0).place(s, tone(3.0), RATE)
    assert s.stretch == pytest.approx(1.25)
    assert s.overflow == pytest.approx(3.0 / 1.25 - 2.0, abs=0.01)
    assert "overflow" in s.flags


def test_the_cap_counts_the_rate_the_tts_already_used():
    s = seg(0, 0.0, 2.0, max_speed=1.3, tts_rate=1.2)
    ClipPlacer(10.0).place(s, tone(3.0), RATE)
    assert s.tts_rate * s.stretch == pytest.approx(1.3, abs=0.002)


def test_a_line_after_one_that_ran_long_is_pushed_never_overlapping():
    placer = ClipPlacer(20.0)
    first, second = seg(0, 0.0, 2.0, max_speed=1.0), seg(1, 2.2, 4.0)
    placer.place(first, tone(2.4), RATE)
    _, start = placer.place(second, tone(1.0), RATE)
    assert start == pytest.approx(2.4 + GAP_S, abs=0.002)
    assert second.extra["pushed_s"] == pytest.approx(2.4 + GAP_S - 2.2, abs=0.002)
    assert start >= first.extra["placed_end"]
    assert "truncated" not in first.flags


def test_a_clip_runs_at_most_the_push_bound_past_its_slot_the_rest_is_cut():
    placer = ClipPlacer(20.0)
    first = seg(0, 0.0, 2.0, max_speed=1.0)
    audio, _ = placer.place(first, tone(3.0), RATE)
    assert len(audio) / RATE == pytest.approx(2.0 + MAX_PUSH_S, abs=0.002)
    assert first.extra["truncated_s"] == pytest.approx(0.5, abs=0.002)
    assert "truncated" in first.flags
    assert abs(audio[-1]) < 1e-3  # faded, not clicked off
    _, start = placer.place(seg(1, 2.2, 4.0), tone(1.0), RATE)
    assert start == pytest.approx(2.0 + MAX_PUSH_S + GAP_S, abs=0.002)


def test_the_last_clip_moves_earlier_rather_than_being_cut():
    placer = ClipPlacer(10.0)
    last = seg(0, 8.0, 9.5, slot_end=10.0, max_speed=1.0)
    audio, start = placer.place(last, tone(2.5), RATE)
    assert start + len(audio) / RATE <= 10.0 + 1e-3
    assert start == pytest.approx(7.5, abs=0.01)
    assert "cut_at_end_s" not in last.extra


def test_with_no_room_before_it_the_last_clip_is_sped_up_to_end_in_time():
    placer = ClipPlacer(10.0)
    placer.place(seg(0, 0.0, 8.0, max_speed=1.0), tone(8.0), RATE)
    last = seg(1, 8.5, 9.5, slot_end=10.0, max_speed=1.0)
    audio, start = placer.place(last, tone(3.0), RATE)
    assert start + len(audio) / RATE <= 10.0 + 0.01


# -- the nucleus: a clip's first strong sound on the speaker's --------------------------

def soft_then_loud(soft_s: float, loud_s: float) -> np.ndarray:
    """A clip that opens softly (a fricative 30 dB under its vowel) for ``soft_s``."""
    soft = (0.3 * 10 ** (-30 / 20) * np.random.default_rng(1).standard_normal(
        int(soft_s * RATE))).astype(np.float32)
    return np.concatenate([soft, tone(loud_s)])


def with_nucleus(s: Segment, at: float) -> Segment:
    s.extra["nucleus_s"] = at
    return s


def test_a_clip_that_opens_softly_starts_early_by_its_soft_part():
    s = with_nucleus(seg(0, 2.0, 3.7), 2.0)  # the speaker's vowel at the onset found
    _, start = ClipPlacer(10.0).place(s, soft_then_loud(0.08, 1.5), RATE)
    assert start == pytest.approx(2.0 - 0.08, abs=0.011)
    assert s.extra["nucleus_shift_s"] == pytest.approx(-0.08, abs=0.011)
    assert s.stretch == 1.0 and s.extra["placed_start"] == start


def test_a_clip_lays_its_nucleus_on_a_speaker_who_opens_softly():
    s = with_nucleus(seg(0, 2.0, 4.0), 2.09)  # the speaker's own soft start, 90 ms
    _, start = ClipPlacer(10.0).place(s, tone(1.5), RATE)  # the clip opens on its vowel
    assert start == pytest.approx(2.09, abs=0.011)


def test_the_nucleus_shift_is_bounded():
    s = with_nucleus(seg(0, 2.0, 4.0), 2.0)
    _, start = ClipPlacer(10.0).place(s, soft_then_loud(0.4, 1.0), RATE)
    assert start == pytest.approx(2.0 - MAX_NUCLEUS_SHIFT_S)


def test_the_nucleus_never_starts_a_clip_before_the_previous_one_ends():
    placer = ClipPlacer(10.0)
    placer.place(seg(0, 0.5, 2.0), tone(1.5), RATE)  # ends at 2.0
    s = with_nucleus(seg(1, 2.05, 4.0), 2.05)
    _, start = placer.place(s, soft_then_loud(0.1, 1.0), RATE)
    assert start == pytest.approx(2.0 + GAP_S)


def test_the_nucleus_moves_a_clip_later_only_into_its_slot_s_spare_time():
    fits = with_nucleus(seg(0, 2.0, 3.0), 2.1)
    _, start = ClipPlacer(10.0).place(fits, tone(0.95), RATE)  # 50 ms to spare
    assert start == pytest.approx(2.05, abs=0.001)
    assert fits.stretch == 1.0 and fits.overflow == 0.0
    full = with_nucleus(seg(1, 2.0, 3.0, max_speed=1.3), 2.1)
    _, start = ClipPlacer(10.0).place(full, tone(1.2), RATE)  # sped up to fit: no room
    assert start == pytest.approx(2.0) and full.stretch == pytest.approx(1.2)


def test_a_sped_up_clip_counts_its_nucleus_at_its_speed():
    s = with_nucleus(seg(0, 2.0, 3.0, max_speed=1.5), 2.0)
    _, start = ClipPlacer(10.0).place(s, soft_then_loud(0.12, 1.08), RATE)  # 1.2 s in 1.0
    assert s.stretch == pytest.approx(1.2, abs=0.01)
    assert start == pytest.approx(2.0 - 0.12 / 1.2, abs=0.011)


def test_without_the_speaker_s_nucleus_a_clip_starts_at_the_onset():
    _, start = ClipPlacer(10.0).place(seg(0, 2.0, 4.0), soft_then_loud(0.08, 1.5), RATE)
    assert start == 2.0


def test_a_clip_moved_later_for_its_nucleus_is_not_counted_as_pushed():
    s = with_nucleus(seg(0, 2.0, 3.0), 2.1)
    ClipPlacer(10.0).place(s, tone(0.9), RATE)
    assert s.extra["placed_start"] > 2.0 and "pushed_s" not in s.extra
