"""Side by side: the rerated and the shortened clip of an overlong line, the lower sync cost
kept, both made (concurrently when the job allows)."""

from __future__ import annotations

import threading

import pytest

from videodub.model import JobContext, Segment
from videodub.run.candidates import candidate_figures, side_by_side, sync_cost
from videodub.timing import refit_rate

CHARS_PER_S = 15.0


class Synth:
    """Clip length from the text and the rate, as a voice speaking 15 characters a second."""

    def __init__(self, gate: threading.Barrier | None = None) -> None:
        self.calls: list[tuple[str, float]] = []
        self.gate = gate

    def synthesize(self, seg: Segment, ctx: JobContext) -> Segment:
        if self.gate is not None:
            self.gate.wait(10)  # both candidates in flight at once, or this times out
        self.calls.append((seg.target_text, seg.tts_rate))
        seg.synth_duration = len(seg.target_text) / CHARS_PER_S / seg.tts_rate
        seg.audio_path = f"/clips/{len(self.calls)}.wav"
        return seg


class Aligner:
    def refit(self, seg: Segment, ctx: JobContext) -> str:
        return refit_rate(seg, shorten=True)


class Shortener:
    def __init__(self, text: str | None) -> None:
        self.text = text

    def shorten(self, seg: Segment, budget: int, ctx: JobContext) -> str | None:
        return self.text


def overlong(text: str = "x" * 60) -> Segment:
    # 60 characters = 4 s at natural speed in a 2 s slot: too long even at the 1.3 cap.
    seg = Segment(id=3, start=1.0, end=3.0, target_text=text, slot_start=1.0, slot_end=3.0,
                  max_speed=1.3, tts_rate=1.0)
    seg.synth_duration = len(text) / CHARS_PER_S
    assert refit_rate(seg, shorten=True) == "shorten"
    return seg


def test_sync_cost_is_seconds_past_the_slot_plus_the_speed_up():
    seg = overlong()
    seg.synth_duration, seg.tts_rate = 2.5, 1.3
    assert sync_cost(seg) == pytest.approx(0.5 + 0.3)
    seg.synth_duration, seg.tts_rate = 1.8, 1.0
    assert sync_cost(seg) == 0.0
    seg.target_text = "y" * 45  # a quarter of the 60 characters dropped
    assert sync_cost(seg, "x" * 60) == pytest.approx(2.0 * 0.25)


def test_a_shorter_line_that_fits_wins_and_both_were_made(tmp_path):
    synth, line = Synth(), overlong()
    won = side_by_side(line, Aligner(), synth, Shortener("y" * 25), JobContext(
        tmp_path, "es", "en"))
    assert won is line  # the job's own line becomes the winner
    assert won.extra["candidate"] == "shortened" and "shortened" in won.flags
    assert won.target_text == "y" * 25 and won.extra["longer_text"] == "x" * 60
    costs = won.extra["candidate_costs"]  # rerated: 3.08 s at 1.3x; shortened: 1.67 s
    assert costs["rerated"] == pytest.approx(1.08 + 0.3, abs=0.01)
    assert costs["shortened"] == pytest.approx(2.0 * (1 - 25 / 60), abs=0.01)
    assert sorted(synth.calls) == [("x" * 60, 1.3), ("y" * 25, 1.0)]


def test_a_line_cut_by_half_loses_to_the_whole_line_a_little_late(tmp_path):
    # 40 characters: 2.67 s, 2.05 s at the 1.3 cap in a 2 s slot (cost 0.05 + 0.3). Cut to
    # 20 it fits at natural speed, but half the line is gone (cost 1.0): the whole line wins.
    synth = Synth()
    won = side_by_side(overlong("x" * 40), Aligner(), synth, Shortener("y" * 20),
                       JobContext(tmp_path, "es", "en"))
    costs = won.extra["candidate_costs"]
    assert won.extra["candidate"] == "rerated" and won.target_text == "x" * 40
    assert costs["rerated"] == pytest.approx(0.35, abs=0.01)
    assert costs["shortened"] == pytest.approx(1.0, abs=0.01)
    assert "shortened" not in won.flags and len(synth.calls) == 2  # both were made


def test_a_translator_that_declines_leaves_the_rerated_line_flagged(tmp_path):
    won = side_by_side(overlong(), Aligner(), Synth(), Shortener(None),
                       JobContext(tmp_path, "es", "en"))
    assert won.extra["candidate"] == "rerated" and "shorten_declined" in won.flags
    assert won.tts_rate == 1.3 and won.target_text == "x" * 60


def test_candidates_are_made_concurrently_when_the_job_allows(tmp_path):
    synth = Synth(gate=threading.Barrier(2))  # each waits for the other to be in flight
    won = side_by_side(overlong(), Aligner(), synth, Shortener("y" * 25),
                       JobContext(tmp_path, "es", "en"), concurrently=True)
    assert won.extra["candidate"] == "shortened" and len(synth.calls) == 2


def test_the_report_counts_which_won():
    a, b, c = (Segment(id=i, start=0, end=1) for i in range(3))
    a.extra.update(candidate="shortened", candidate_costs={"rerated": 1, "shortened": 0})
    b.extra.update(candidate="rerated", candidate_costs={"rerated": 0.2, "shortened": 0.4})
    c.extra.update(candidate="rerated")  # declined: nothing to compare
    assert candidate_figures([a, b, c]) == {"lines": 3, "compared": 2,
                                            "won": {"shortened": 1, "rerated": 2}}
