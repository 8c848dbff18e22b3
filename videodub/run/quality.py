"""How good the dub is, measured on the audio in every run: the ``quality`` section of
``report.json`` and the quality line of the end-of-run summary.

- **sync**: for each dubbed line, the nucleus of its dub speech (the first strong sound after
  the onset, ``speech_regions.nucleus``) in the dub track against the nucleus of the speech
  measured in the source audio near the recogniser's start (mean, p95, max of the absolute
  error, ms): what a listener hears start together; how far dub speech runs past the line's
  end;
- **speed**: the speed factor's distribution (share <= 1.1 and <= 1.25, max, lines slowed),
  and lines sped up although their clip fitted its slot at natural speed;
- **fit**: overflow (count, seconds), overlaps of two dubbed clips (count, longest), speech
  cut at the media's end;
- **suspect lines** and what was done with them;
- **original voice**: seconds of source speech left uncovered by any dub speech (the original
  may be heard there), and the level of what is left of the original audio where the source
  speaks (under dub lines, in the gaps, both), relative to the dub's average level, from the
  background track the mixer used and the dub track (both before the common loudness gain;
  a mix's limiter makes the mix minus the dub useless below about -30 dB). The original's
  background counts too (an upper bound on the voice).

Everything is numpy on per-frame levels of the decoded audio with the energy detector of
``videodub.speech_regions``, the tracks read a block at a time (memory does not grow with the
media's length): a fraction of a second per minute of media, so it stays on in the speed
profile.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from videodub.model import JobContext, MediaInfo, Segment
from videodub.run.candidates import candidate_figures
from videodub.speech_regions import (FRAME_S, Levels, detect_levels, levels_of_file, nucleus,
                                     source_levels)
from videodub.subtitles import FAST_CPS
from videodub.timing import speaker_nucleus, speech_onset
from videodub.voice_activity import source_regions_of_file

# The dub track is clean (exact zeros between clips): anything above this is dub speech.
DUB_THRESHOLD_DB = -50.0


def _stats_ms(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mean_ms": None, "p95_ms": None, "max_ms": None}
    a = np.abs(np.array(values)) * 1000.0
    return {"n": len(values), "mean_ms": round(float(a.mean()), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1), "max_ms": round(float(a.max()), 1)}


def sync_figures(dubbed: list[Segment], src_spans: Any, dub_spans: Any, src_db: np.ndarray,
                 dub_db: np.ndarray) -> dict[str, Any]:
    """Each line's nucleus in the dub against the speaker's (``speech_regions.nucleus``: the
    first strong sound, on the frame levels ``dub_db`` and ``src_db``), after the onset of
    speech in each; and how far dub speech runs past the line's end."""
    errors: list[float] = []
    per_line: dict[int, int] = {}
    overrun: list[float] = []
    previous_end = None  # the line before's end, snapped: align finds onsets knowing it
    for seg in dubbed:
        placed = seg.extra["placed_start"]
        # This clip's speech: a span that runs past its start (the clip before ends at least
        # ``placement.GAP_S`` earlier, and is not this line's onset).
        onsets = [max(s, placed - 0.2) for s, e in dub_spans.spans
                  if e > placed + FRAME_S and s < seg.extra["placed_end"]]
        before, previous_end = previous_end, seg.end
        if not onsets:
            continue
        source_onset = speech_onset(seg.extra.get("asr_start", seg.start),
                                    seg.extra.get("asr_end", seg.end), src_spans, before)
        loud = speaker_nucleus(src_db, source_onset)
        err = (onsets[0] + (nucleus(dub_db, onsets[0]) or 0.0)
               - (source_onset if loud is None else loud))
        errors.append(err)
        per_line[seg.id] = int(round(err * 1000))
        overrun.append(max(0.0, seg.extra["placed_end"] - seg.end))
    worst = sorted(per_line.items(), key=lambda kv: -abs(kv[1]))[:5]
    # JSON keys are strings: the report read back equals the one returned.
    worst_ms = {str(k): v for k, v in worst}
    return {"onset_error": {**_stats_ms(errors), "worst_lines_ms": worst_ms},
            "overrun_past_line_end": {"lines": sum(1 for o in overrun if o > 0.1),
                                      "max_s": round(max(overrun, default=0.0), 3),
                                      "total_s": round(sum(overrun), 3)}}


def speed_figures(dubbed: list[Segment]) -> dict[str, Any]:
    speeds = [s.speed_factor for s in dubbed if s.speed_factor is not None]
    needless = []
    for s in dubbed:
        slot = (s.slot_end or s.end) - (s.slot_start if s.slot_start is not None else s.start)
        natural = (s.synth_duration or 0.0) * s.tts_rate  # the clip at rate 1.0, near enough
        if (s.speed_factor or 1.0) > 1.01 and natural <= slot + 0.02:
            needless.append(s.id)
    n = len(speeds) or 1
    return {"share_le_1_1": round(sum(v <= 1.1 for v in speeds) / n, 3),
            "share_le_1_25": round(sum(v <= 1.25 for v in speeds) / n, 3),
            "max": round(max(speeds, default=1.0), 3),
            "slowed": sum(v < 0.99 for v in speeds),
            "sped_up_though_fit": len(needless), "sped_up_though_fit_lines": needless}


def fit_figures(dubbed: list[Segment], media_end: float) -> dict[str, Any]:
    over = [s for s in dubbed if s.overflow > 0.05]
    spans = sorted((s.extra["placed_start"], s.extra["placed_end"], s.id) for s in dubbed)
    overlaps = [(min(a_end, b_end) - b_start, b_id) for (_, a_end, _), (b_start, b_end, b_id)
                in zip(spans, spans[1:]) if b_start < a_end - 0.005]
    cut = sum(s.extra.get("cut_at_end_s", 0.0) for s in dubbed)
    if spans:
        cut = max(cut, spans[-1][1] - media_end)
    pushed = {s.id: s.extra["pushed_s"] for s in dubbed if "pushed_s" in s.extra}
    truncated = {s.id: s.extra["truncated_s"] for s in dubbed if "truncated_s" in s.extra}
    return {"overflow": {"lines": len(over), "seconds": round(sum(s.overflow for s in over), 3),
                         "line_ids": [s.id for s in over]},
            "overlaps": {"count": len(overlaps),
                         "longest_s": round(max((o for o, _ in overlaps), default=0.0), 3),
                         "line_ids": [i for _, i in overlaps]},
            "pushed_lines": pushed,
            "truncated": {"lines": len(truncated), "seconds": round(sum(truncated.values()), 3),
                          "by_line": truncated},
            "cut_at_end_s": round(max(0.0, cut), 3)}


def suspect_figures(segments: list[Segment]) -> dict[str, Any]:
    suspect = [s for s in segments if any(f.startswith("suspect_") for f in s.flags)]
    return {"lines": len(suspect),
            "kept_original": sum("kept_original" in s.flags for s in suspect),
            "dropped": sum("dropped_suspect" in s.flags for s in suspect),
            "dubbed": sum(bool(s.audio_path) for s in suspect),
            "line_ids": [s.id for s in suspect]}


def residual_figures(src_spans: Any, dub_spans: Any, segments: list[Segment], dub: Levels,
                     orig: Levels, ducked: bool) -> dict[str, Any]:
    """What is left of the original where the source speaks, relative to the dub: the
    background track the mixer laid under the dub (at the gain it applied) against the dub
    track's levels, both before the mix's common loudness gain. Ducking under the dub is not
    counted, so for a ducked mix the figure under dub lines is an upper bound. Both tracks are
    compared as per-frame levels (never whole samples in memory)."""
    if orig.rate != dub.rate:
        return {"uncovered_source_speech_s": None, "original_where_source_speaks_db": None}
    n_frames = int(min(dub.samples, orig.samples) / dub.rate / FRAME_S)
    p_orig = 10 ** (orig.db[:n_frames] / 10)
    p_dub = 10 ** (dub.db[:n_frames] / 10)
    source = src_spans.mask(n_frames)
    for s in segments:  # where the original plays on purpose, it is not a residual
        if "kept_original" in s.flags:
            source[int(s.start / FRAME_S): int(math.ceil(s.end / FRAME_S))] = False
    dubbing = dub_spans.mask(n_frames)
    uncovered = source & ~dubbing
    dub_level = float(p_dub[dubbing].mean()) if dubbing.any() else 0.0

    # All of the original that is left there counts (its background too): without a
    # separator the two cannot be told apart, and an upper bound is the honest figure. (For a
    # surround original whose voice is in its centre alone, ``orig`` is that centre.)
    def rel_db(mask: np.ndarray) -> float | None:
        if not mask.any() or dub_level <= 0:
            return None
        left = max(float(p_orig[mask].mean()), 1e-12)
        return round(max(10 * math.log10(left / dub_level), -120.0), 1)

    return {"uncovered_source_speech_s": round(float(uncovered.sum()) * FRAME_S, 2),
            "source_speech_s": round(float(source.sum()) * FRAME_S, 2),
            "original_under_dub_db": rel_db(source & dubbing),
            "original_in_gaps_db": rel_db(uncovered),
            "original_where_source_speaks_db": rel_db(source),
            "ducked_upper_bound": ducked}


def track_levels(ctx: JobContext, levels_key: str, path_key: str,
                 gain_db: float = 0.0) -> Levels | None:
    """A track's frame levels at ``gain_db``: as the mixer measured them while it mixed
    (``levels_key``), or read from its file (``path_key``); None when there is neither."""
    levels = ctx.artifacts.get(levels_key)
    if levels is not None:
        return dataclasses.replace(levels, db=levels.db + gain_db)
    path = ctx.artifacts.get(path_key)
    if path is None or not Path(path).exists():
        return None
    return levels_of_file(Path(path), scale=10 ** (gain_db / 20))


def measure(segments: list[Segment], media: MediaInfo, ctx: JobContext) -> dict[str, Any]:
    """The ``quality`` section of the report."""
    t0 = time.perf_counter()
    src_spans = source_regions_of_file(media.speech_audio)
    dubbed = [s for s in segments if s.audio_path and "placed_start" in s.extra]
    out: dict[str, Any] = {"lines": len(segments), "dubbed": len(dubbed)}
    dub = track_levels(ctx, "speech_levels", "speech_track")
    if dub is not None:
        # Clips are at least 80 ms apart: a shorter bridge keeps each clip its own region.
        dub_spans = detect_levels(dub.db, dub.duration, threshold_db=DUB_THRESHOLD_DB,
                                  merge_gap=0.05)
        out.update(sync_figures(dubbed, src_spans, dub_spans,
                                source_levels(media.speech_audio).db, dub.db))
        background = track_levels(ctx, "background_levels", "background",
                                  gain_db=float(ctx.artifacts.get("background_gain_db", 0.0)))
        if background is not None:
            out["original_voice"] = residual_figures(
                src_spans, dub_spans, segments, dub, background,
                bool(ctx.artifacts.get("background_ducked", False)))
            # A surround original's voice is in its centre alone: what is left of that.
            out["original_voice"]["centre_only"] = bool(ctx.artifacts.get("voice_in_centre"))
    out["speed"] = speed_figures(dubbed)
    out.update(fit_figures(dubbed, media.duration))
    out["suspect"] = suspect_figures(segments)
    out["candidates"] = candidate_figures(segments)
    out["measure_s"] = round(time.perf_counter() - t0, 3)
    return plain(out)


def plain(value: Any) -> Any:
    """The figures as JSON takes them (numpy scalars as Python numbers)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def summary_line(q: dict[str, Any]) -> str:
    """The quality row of the end-of-run summary."""
    onset = q.get("onset_error", {})
    voice = q.get("original_voice", {})
    speed = q.get("speed", {})

    def fmt(v: Any, unit: str = "") -> str:
        return "-" if v is None else f"{v}{unit}"

    # Lines not dubbed first: every other figure is measured on the dubbed ones only.
    undubbed = (f"{q['lines'] - q['dubbed']} of {q['lines']} lines not dubbed, "
                if q.get("lines", 0) > q.get("dubbed", 0) else "")
    return (f"quality: {undubbed}onset p95 {fmt(onset.get('p95_ms'), ' ms')}, "
            f"speed <=1.25 {speed.get('share_le_1_25', 0):.0%} (max {speed.get('max')}), "
            f"sped up though fit {speed.get('sped_up_though_fit')}, "
            f"overflow {q['overflow']['lines']} ({q['overflow']['seconds']} s), "
            f"truncated {q['truncated']['lines']}, "
            f"overlaps {q['overlaps']['count']}, cut at end {q['cut_at_end_s']} s, "
            f"suspect {q['suspect']['lines']}, "
            f"original voice {fmt(voice.get('original_where_source_speaks_db'), ' dB')} "
            f"({fmt(voice.get('uncovered_source_speech_s'), ' s')} uncovered)"
            + _candidates(q.get("candidates") or {}) + _subtitles(q.get("subtitles") or {}))


def _subtitles(sub: dict[str, Any]) -> str:
    if not sub.get("cues"):
        return ""
    return (f", subtitles {sub['cps_p95']} chars/s p95 ({sub['cues_over_fast_cps']} cues over "
            f"{sub.get('fast_cps', FAST_CPS):g}), lines up to {sub['longest_line_columns']} columns")


def _candidates(c: dict[str, Any]) -> str:
    if not c.get("compared"):
        return ""
    won = ", ".join(f"{name} {n}" for name, n in sorted(c["won"].items()))
    return f", side by side on {c['compared']} lines (won: {won})"
