"""Integrated loudness (ITU-R BS.1770-4) of audio given in pieces, for the streaming mix
(``videodub.streammix``): K-weighting, 100 ms hops, gated 400 ms blocks."""

from __future__ import annotations

import math

import numpy as np

from videodub.surround import bs1770_weights

# Integrated loudness is summed over 100 ms hops, four to a 400 ms gating block (BS.1770-4).
HOP_S = 0.1
ABSOLUTE_GATE = -70.0
RELATIVE_GATE = 10.0


def k_weighting(rate: int) -> list[tuple[float, ...]]:
    """BS.1770's K-weighting as two biquads ``(b0, b1, b2, a0, a1, a2)``, normalised: a +4 dB
    shelf above ~1.5 kHz, then a 38 Hz high-pass, designed for ``rate`` by the Audio EQ
    Cookbook's formulas as pyloudnorm designs them (its default meter's filters; a test holds
    the two to the same coefficients)."""
    w0 = 2 * math.pi * 1500.0 / rate
    a, alpha = 10 ** (4.0 / 40), math.sin(w0) / (2 * (1 / math.sqrt(2)))
    cos, root = math.cos(w0), 2 * math.sqrt(10 ** (4.0 / 40)) * alpha
    shelf = (a * ((a + 1) + (a - 1) * cos + root), -2 * a * ((a - 1) + (a + 1) * cos),
             a * ((a + 1) + (a - 1) * cos - root), (a + 1) - (a - 1) * cos + root,
             2 * ((a - 1) - (a + 1) * cos), (a + 1) - (a - 1) * cos - root)
    w0 = 2 * math.pi * 38.0 / rate
    cos, alpha = math.cos(w0), math.sin(w0) / (2 * 0.5)
    highpass = ((1 + cos) / 2, -(1 + cos), (1 + cos) / 2, 1 + alpha, -2 * cos, 1 - alpha)
    return [tuple(c / f[3] for c in f) for f in (shelf, highpass)]


class KWeighted:
    """Audio given in pieces, K-weighted as one signal: FFmpeg's ``biquad`` filter in double
    precision through PyAV, which keeps each filter's state from piece to piece (the same
    samples as ``scipy.signal.sosfilt`` to 1e-12; scipy.signal's import alone took 0.8-1.2 s
    of every job's CPU, during recognition)."""

    def __init__(self, rate: int, channels: int) -> None:
        import av
        from av.filter import Graph

        self.rate, self.channels, self.pts = rate, channels, 0
        self.layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")
        # Packed from eight channels on: PyAV's ``from_ndarray`` asks a planar frame of eight
        # channels for a ninth plane (the graph converts it for the filter).
        self.format = "dblp" if channels < 8 else "dbl"
        self.graph = Graph()
        chain = [self.graph.add_abuffer(format=self.format, sample_rate=rate,
                                        layout=self.layout)]
        for coefficients in k_weighting(rate):
            args = ":".join(f"{name}={value!r}" for name, value in
                            zip(("b0", "b1", "b2", "a0", "a1", "a2"), coefficients))
            chain.append(self.graph.add("biquad", f"{args}:precision=f64"))
            chain[-2].link_to(chain[-1])
        if self.format == "dbl":  # and packed out again, for the same reason
            chain.append(self.graph.add("aformat", "sample_fmts=dbl"))
            chain[-2].link_to(chain[-1])
        chain.append(self.graph.add("abuffersink"))
        chain[-2].link_to(chain[-1])
        self.graph.configure()

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """``audio`` (samples x channels) K-weighted, as float64 of the same shape."""
        import av

        if len(audio) == 0:
            return np.zeros((0, self.channels))
        data = (np.ascontiguousarray(audio.T, dtype=np.float64) if self.format == "dblp"
                else np.ascontiguousarray(audio, dtype=np.float64).reshape(1, -1))
        frame = av.AudioFrame.from_ndarray(data, format=self.format, layout=self.layout)
        frame.sample_rate, frame.pts = self.rate, self.pts
        self.pts += len(audio)
        self.graph.push(frame)
        # The biquads give a frame for a frame: pulled once, not until the graph says it is
        # empty. Every call into the graph gives up the GIL and waits to take it back, which
        # costs most when other threads of the job are busy in Python.
        out = [self._pull()]
        got = len(out[0])
        while got < len(audio):
            out.append(self._pull())
            got += len(out[-1])
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _pull(self) -> np.ndarray:
        data = self.graph.pull().to_ndarray()
        return data.T if self.format == "dblp" else data.reshape(-1, self.channels)


class LoudnessMeter:
    """Integrated loudness (LUFS, BS.1770-4) of audio given in pieces. One channel is
    measured as dual mono (as two loudspeakers play it), so a mono dub at the target is as
    loud as a stereo one (EBU Tech 3341's dual-mono case). More than two channels are
    weighted by their ``layout`` (FFmpeg's name: "5.1"), as BS.1770 does: the LFE not counted,
    the surrounds at +1.5 dB."""

    def __init__(self, rate: int, channels: int, layout: str | None = None) -> None:
        weights = bs1770_weights(layout or "", channels)
        # The channels that count (not the LFE), weighted when they are not all alike.
        self.counted = None if weights.all() else np.flatnonzero(weights)
        if self.counted is not None:
            weights = weights[self.counted]
        self.channel_weights = None if (weights == 1.0).all() else weights
        channels = len(weights)
        self.weighting = KWeighted(rate, channels)
        self.hop = int(round(rate * HOP_S))
        self.rest = np.zeros((0, channels))  # filtered samples of an unfinished hop
        self.energies: list[float] = []  # mean square per hop, summed over channels
        self.weight = 2.0 if channels == 1 else 1.0

    def add(self, audio: np.ndarray) -> None:
        if len(audio) == 0:
            return
        if self.counted is not None:
            audio = audio[:, self.counted]
        weighted = np.concatenate([self.rest, self.weighting(audio)])
        whole = len(weighted) // self.hop * self.hop
        if whole:
            hops = weighted[:whole].reshape(-1, self.hop, weighted.shape[1])
            if self.channel_weights is None:
                sums = np.einsum("hnc,hnc->h", hops, hops, dtype=np.float64)
            else:
                sums = np.einsum("hnc,hnc->hc", hops, hops) @ self.channel_weights
            self.energies.extend((sums * (self.weight / self.hop)).tolist())
        self.rest = weighted[whole:]

    def integrated(self) -> float:
        """The gated loudness so far; ``ABSOLUTE_GATE`` for silence or under 400 ms."""
        e = np.asarray(self.energies)
        if len(e) < 4:
            return ABSOLUTE_GATE
        blocks = (e[:-3] + e[1:-2] + e[2:-1] + e[3:]) / 4
        with np.errstate(divide="ignore"):
            levels = -0.691 + 10 * np.log10(blocks)
        kept = blocks[levels > ABSOLUTE_GATE]
        if not len(kept):
            return ABSOLUTE_GATE
        relative = -0.691 + 10 * np.log10(kept.mean()) - RELATIVE_GATE
        kept = blocks[(levels > ABSOLUTE_GATE) & (levels > relative)]
        return float(-0.691 + 10 * np.log10(kept.mean())) if len(kept) else ABSOLUTE_GATE
