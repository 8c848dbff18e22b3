"""Side by side: for a line that does not fit its slot even at the speed cap, the quality
profile makes both ways out and keeps the one with the lower measured sync cost, instead of
trying them one after the other as align=hybrid does.

- **rerated**: the whole translation, synthesized at the rate it needs within the cap (it
  still runs past its slot by what the cap leaves);
- **shortened**: a shorter line asked of the translator (``ShortensLines``) for the slot's
  character budget, synthesized at natural speed and re-rated within the cap if needed.

Both are measured as synthesized: the sync cost is the seconds the clip would run past its
slot plus ``SPEED_WEIGHT`` seconds per unit of speed-up above natural speed (a line at 1.3x
costs 0.3 s, as if it ran 0.3 s long); a shortened line also pays ``CONTENT_WEIGHT`` seconds
for all of its text, in proportion to the characters it dropped (a fifth of the line: 0.4 s),
or a shorter line would always win and the dub would say less than it could. The two are made concurrently when the synthesizer
takes more than one request at a time (a server); one after the other otherwise (espeak-ng
has one synthesizer per process). Both are paid: that is the quality profile's trade. The
line records which won (``extra["candidate"]``) and both costs; the report counts the wins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from videodub.model import JobContext, RefitsClips, Segment, ShortensLines

# Seconds of cost per unit of speed-up (1.0 -> 1.3x costs 0.3 s).
SPEED_WEIGHT = 1.0
# Seconds of cost for dropping a whole line's text (a shortened line pays its share).
CONTENT_WEIGHT = 2.0


def sync_cost(seg: Segment, full_text: str | None = None) -> float:
    """Seconds past the slot, plus the speed-up weighted as seconds, plus (for a line
    shortened from ``full_text``) the share of characters dropped; lower is better."""
    if not seg.synth_duration or seg.slot_end is None or seg.slot_start is None:
        return float("inf")
    slot = max(seg.slot_end - seg.slot_start, 1e-3)
    cost = max(0.0, seg.synth_duration - slot) + SPEED_WEIGHT * max(0.0, seg.tts_rate - 1.0)
    if full_text:
        dropped = 1.0 - len(seg.target_text or "") / max(len(full_text), 1)
        cost += CONTENT_WEIGHT * max(0.0, dropped)
    return cost


def side_by_side(seg: Segment, aligner: RefitsClips, synth: Any, shortener: ShortensLines,
                 ctx: JobContext, concurrently: bool = False) -> Segment:
    """The better of the rerated and the shortened clip of ``seg`` (whose refit asked for
    shortening, so ``extra["char_budget"]`` is set); ``concurrently`` when the job runs more
    than one synthesis at a time."""
    budget = int(seg.extra.get("char_budget", 0))
    seg.extra["shorten_asked"] = True

    def copy(**changes: Any) -> Segment:
        return dataclasses.replace(seg, flags=list(seg.flags), extra=dict(seg.extra),
                                   audio_path=None, synth_duration=None, **changes)

    def rerated() -> Segment:
        return synth.synthesize(copy(tts_rate=seg.max_speed), ctx)

    def shortened() -> Segment | None:
        text = shortener.shorten(seg, budget, ctx)
        if not text or len(text) >= len(seg.target_text or ""):
            return None
        cand = copy(target_text=text, tts_rate=1.0)
        cand.flags.append("shortened")
        cand.extra["longer_text"] = seg.target_text
        cand = synth.synthesize(cand, ctx)
        if aligner.refit(cand, ctx) == "resynthesize":  # still long: re-rated within the cap
            cand = synth.synthesize(cand, ctx)
        return cand

    a, b = _both(rerated, shortened, concurrently)
    if b is None:
        a.flags.append("shorten_declined")
        a.extra["candidate"] = "rerated"
        return _into(seg, a)
    costs = {"rerated": round(sync_cost(a), 3),
             "shortened": round(sync_cost(b, seg.target_text), 3)}
    won = b if costs["shortened"] <= costs["rerated"] else a
    won.extra["candidate"] = "shortened" if won is b else "rerated"
    won.extra["candidate_costs"] = costs
    return _into(seg, won)


def _into(seg: Segment, won: Segment) -> Segment:
    """``seg`` made the winner, in place: the job's list of lines holds ``seg`` itself."""
    for f in dataclasses.fields(seg):
        setattr(seg, f.name, getattr(won, f.name))
    return seg


def _both(first: Callable[[], Segment], second: Callable[[], Segment | None],
          concurrently: bool) -> tuple[Segment, Segment | None]:
    if not concurrently:
        return first(), second()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="videodub-candidate") as pool:
        fa, fb = pool.submit(first), pool.submit(second)
        return fa.result(), fb.result()


def candidate_figures(segments: list[Segment]) -> dict[str, Any]:
    """How often each way out won, for the report's ``quality`` section."""
    won: dict[str, int] = {}
    compared = 0
    for seg in segments:
        name = seg.extra.get("candidate")
        if name:
            won[name] = won.get(name, 0) + 1
            compared += "candidate_costs" in seg.extra
    return {"lines": sum(won.values()), "compared": compared, "won": won}
