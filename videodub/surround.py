"""A surround original's centre channel, where films and series put their dialogue.

Taken out under the dub's lines, it takes the original voice with it while the other
channels (music, effects, ambience) play on: the background a viewer expects to stay, kept
without a separation model. ``extract`` writes the centre as the stereo downmix carries it
(the same downmix with the other channels silent: the downmix less it is the original
without its centre, to a least significant bit) and measures with :class:`CentreShare`
whether the voice is there alone; ``mix=duck`` subtracts it where the source speaks.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from videodub.model import JobContext

# The centre's share of a surround source's other channels (:class:`CentreShare`) is measured
# in frames this long (seconds), where the centre is within LOUD_DB of its loudest (its 95th
# percentile) and louder than SILENT_DB (dBFS).
SHARE_FRAME_S = 0.1
LOUD_DB = 15.0
SILENT_DB = -60.0
# A surround original whose other channels follow its centre more than this where the centre
# is loud (:class:`CentreShare`: a squared correlation, 0 to 1) has its voice there too;
# taking the centre out would leave it. A dialogue centre over music measures near 0 (0.003
# on a talk over a music bed), the same voice at -3 dB in the front pair 0.66.
CENTRE_SHARE_MAX = 0.25
# The share is judged again in sections this long (seconds), each on its own loud frames
# (at least MIN_LOUD_FRAMES of them): a film whose centre carries the score with the voice
# for a stretch, or a series with an upmixed scene, keeps the rest of its background there.
SECTION_S = 30.0
MIN_LOUD_FRAMES = 10

Section = tuple[float, float, float]  # start s, end s, the share there


def _clock(t: float) -> str:
    return f"{int(t // 60)}:{t % 60:04.1f}"


def shared_stretches(sections: list[Section], offset: float = 0.0) -> list[tuple[float, float]]:
    """The sections whose voice is in the other channels too, neighbours joined, moved by
    ``offset`` seconds (the audio's start on the picture's timeline)."""
    spans: list[tuple[float, float]] = []
    for start, end, share in sections:
        if share <= CENTRE_SHARE_MAX:
            continue
        if spans and abs(spans[-1][1] - (start + offset)) < 1e-6:
            spans[-1] = (spans[-1][0], end + offset)
        else:
            spans.append((start + offset, end + offset))
    return spans


def centre_voice(share: float | None, track: dict, name: str, ctx: JobContext,
                 sections: list[Section] = ()) -> bool:
    """Whether the voice of a surround original is in its centre channel alone, so the mix
    can take it out there and keep the other channels under the dub (noted either way):
    over the whole file, or in some of its ``sections`` (the others: ``shared_stretches``)."""
    channels = track.get("channels") or 0
    if channels < 3:
        return False
    if share is None or math.isnan(share):
        why = ("no centre channel with sound in it" if share is None else
               "a codec read by the ffmpeg command, which does not give its centre apart")
        ctx.note(f"ingest: {name} has {channels} audio channels and {why}; its voice is taken "
                 f"out of the whole downmix")
        return False
    alone = [s for s in sections if s[2] <= CENTRE_SHARE_MAX]
    if share > CENTRE_SHARE_MAX and not alone:
        ctx.note(f"ingest: the voice of {name} is not in its centre channel alone (the other "
                 f"channels follow it: {share:.2f}); it is taken out of the whole downmix")
        return False
    shared = shared_stretches(sections)
    where = "; ".join(f"{_clock(a)}-{_clock(b)}" for a, b in shared[:4]) + (
        "..." if len(shared) > 4 else "")
    ctx.note(f"ingest: the voice of {name} is in its centre channel ({share:.3f} of it in the "
             f"others); the other channels play on under the dub" + (
                 f", except in {len(shared)} stretch{'es' * (len(shared) > 1)} where they "
                 f"follow it ({where}): there it is taken out of the whole downmix"
                 if shared else ""))
    return True


class CentreShare:
    """How much of a surround source's other channels is its centre's signal where the
    centre is loud (where a film's dialogue is): over the 0.1 s frames within ``LOUD_DB`` of
    the centre's loudest, the median of the largest squared correlation between the centre
    and any other channel (the LFE aside). A dialogue centre over music and effects gives
    near 0, since the other channels carry other sounds; a voice in the front channels too
    (a surround track upmixed from stereo) near 1, and the centre alone would not take it
    out. None when the source has no centre beside other channels, or a silent one."""

    def __init__(self, layout: str) -> None:
        self.powers: list[np.ndarray] = []
        self.shares: list[np.ndarray] = []
        self.pending: np.ndarray | None = None
        self.layout(layout)

    def layout(self, name: str) -> None:
        import av

        try:
            names = [c.name for c in av.AudioLayout(name).channels]
        except (ValueError, av.error.FFmpegError):  # a layout FFmpeg cannot name: no centre
            names = []
        self.others = [i for i, n in enumerate(names) if n not in ("FC", "LFE")]
        self.centre = names.index("FC") if "FC" in names and self.others else None
        self.pending = None

    def add(self, data: np.ndarray, rate: int) -> None:
        """``data``: the source's samples, channels x samples, in order."""
        if self.centre is None:
            return
        if self.pending is not None:
            data = np.concatenate([self.pending, data], axis=1)
        size = max(1, int(rate * SHARE_FRAME_S))
        n = data.shape[1] // size
        self.pending = data[:, n * size:]
        if not n:
            return
        def frames(i: int) -> np.ndarray:
            return data[i, :n * size].reshape(n, size)

        def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # per frame, without copies
            return np.einsum("ij,ij->i", a, b).astype(np.float64)

        c = frames(self.centre)
        cc = dot(c, c)
        share = np.zeros(n)
        for i in self.others:
            o = frames(i)
            co = dot(c, o)
            share = np.maximum(share, co * co / (cc * dot(o, o) + 1e-20))
        self.powers.append(cc / size)
        self.shares.append(share)

    def _loud(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The frames' shares, and which frames are loud; None: no loud frame."""
        if not self.powers:
            return None
        db = 10 * np.log10(np.concatenate(self.powers) + 1e-20)
        loud = db > max(SILENT_DB, float(np.percentile(db, 95)) - LOUD_DB)
        return (np.concatenate(self.shares), loud) if loud.any() else None

    def result(self) -> float | None:
        found = self._loud()
        return None if found is None else round(float(np.median(found[0][found[1]])), 3)

    def sections(self) -> list[Section]:
        """The share in each ``SECTION_S`` of the source with enough loud frames to judge."""
        found = self._loud()
        if found is None:
            return []
        shares, loud = found
        per = int(round(SECTION_S / SHARE_FRAME_S))
        out = []
        for k in range(0, len(shares), per):
            here = shares[k:k + per][loud[k:k + per]]
            if len(here) >= MIN_LOUD_FRAMES:
                out.append((k * SHARE_FRAME_S, min(k + per, len(shares)) * SHARE_FRAME_S,
                            round(float(np.median(here)), 3)))
        return out


def channel_names(layout: str) -> list[str]:
    """FFmpeg's names of a layout's channels in order ("FL", "FR", "FC", "LFE"...); none for
    a layout it cannot name."""
    import av

    try:
        return [c.name for c in av.AudioLayout(layout).channels]
    except (ValueError, av.error.FFmpegError):
        return []


def bs1770_weights(layout: str, channels: int) -> np.ndarray:
    """Each channel's weight in BS.1770 loudness, as FFmpeg's ``ebur128`` gives them: 0 for
    the LFE, 1.41 (+1.5 dB) for the surrounds (side and back), 1 for the front ones."""
    names = channel_names(layout) if channels > 2 else []
    if len(names) != channels:
        return np.ones(channels)
    return np.array([0.0 if n.startswith("LFE") else 1.41 if n[0] in "SB" else 1.0
                     for n in names])


def surround_dub(path: Path, layout: str | None, voice_centre: bool,
                 name: str, ctx: JobContext) -> tuple[Path, str] | None:
    """The original in its own channels for a surround dub (``path``, written in ``layout``),
    when the voice is in its centre; else None, and the file is removed."""
    if not path.exists():
        return None
    names = channel_names(layout or "")
    if voice_centre and "FC" in names:
        return path, layout
    path.unlink()
    if "FC" in names:
        ctx.note(f"ingest: {name} is dubbed in its stereo downmix, not in {layout}: its voice "
                 f"is not in its centre channel alone")
    return None
