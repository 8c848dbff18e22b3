"""Voice and background apart, with an MDX-Net source-separation model on onnxruntime, so a dub
can go over the original's background at its own level (``mix.original_voice=separate``).

MDX-Net models (the ones Ultimate Vocal Remover publishes as ONNX, e.g.
``UVR-MDX-NET-Voc_FT.onnx``) take a stereo spectrogram and return the separated source's:
input and output ``[batch, 4, dim_f, dim_t]`` (real and imaginary parts of both channels,
``dim_f`` lowest bins of an ``n_fft`` STFT with hop ``hop``, at 44.1 kHz). The STFT, the
chunking with its overlap trimmed, and the inverse are numpy here; onnxruntime ships with
faster-whisper already, so no PyTorch is needed. The original streams through it a block at a
time (:class:`BlockResampler`, :class:`VoiceStream`), with the samples the whole file at once
would give, so memory does not grow with the input's length.

The model is fetched on first use into the cache (``<cache_dir>/models``), checked against its
SHA-256 when one is configured, and renamed into place only once whole. Offline, a model that
is not cached is one error line naming the command that fetches it ahead of time:

    python -m videodub.separation fetch [--url URL] [--sha256 HEX] [--cache DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videodub.errors import VideodubError
from videodub.media import atomic_path
from videodub.wav import wav_format

DEFAULT_MODEL_URL = ("https://github.com/TRvlvr/model_repo/releases/download/"
                     "all_public_uvr_models/UVR-MDX-NET-Voc_FT.onnx")
# Samples of the original read at a time (5.5 s at 48 kHz).
BLOCK = 1 << 18
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "videodub"


@dataclass(frozen=True)
class MdxShape:
    """The STFT a model was trained on (UVR-MDX-NET-Voc_FT's by default)."""

    n_fft: int = 6144
    hop: int = 1024
    dim_f: int = 3072
    dim_t: int = 256
    rate: int = 44100


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_path(source: str, cache_dir: Path | None = None) -> Path:
    """Where ``source`` (a local file, or a URL fetched into the cache) lives."""
    if "://" not in source:
        return Path(source).expanduser()
    return (cache_dir or DEFAULT_CACHE) / "models" / source.rsplit("/", 1)[-1]


def fetch_model(source: str, sha256: str = "", cache_dir: Path | None = None,
                download: bool = True) -> Path:
    """The model file for ``source``: a local path as it is, a URL from the cache or fetched
    into it. A configured ``sha256`` is checked on every use of a cached or fetched file."""
    path = model_path(source, cache_dir)
    if "://" not in source and not path.is_file():
        raise VideodubError(f"separation model not found: {path}")
    if not path.is_file():
        if not download:
            raise VideodubError(f"the separation model {path.name} is not in {path.parent}; fetch it "
                                f"with: python -m videodub.separation fetch --url {source}")
        try:
            with atomic_path(path) as tmp, urllib.request.urlopen(source, timeout=60) as answer:
                with open(tmp, "wb") as out:
                    for block in iter(lambda: answer.read(1 << 20), b""):
                        out.write(block)
                if sha256 and sha256_of(tmp) != sha256.lower():
                    raise VideodubError(f"the separation model fetched from {source} does not "
                                        f"match mix.separator_sha256")
        except VideodubError:
            raise
        except OSError as exc:
            raise VideodubError(f"could not fetch the separation model {path.name} "
                                f"({type(exc).__name__}); fetch it ahead with: python -m "
                                f"videodub.separation fetch --url {source}, or set "
                                f"mix.separator_model to a local file") from exc
    if sha256 and sha256_of(path) != sha256.lower():
        raise VideodubError(f"the separation model {path} does not match mix.separator_sha256")
    return path


def stft(x: np.ndarray, shape: MdxShape) -> np.ndarray:
    """Centred (reflect-padded) STFT of mono ``x`` with a periodic Hann window: [bins, frames]."""
    pad = shape.n_fft // 2
    x = np.pad(x, pad, mode="reflect")
    n = 1 + (len(x) - shape.n_fft) // shape.hop
    idx = np.arange(shape.n_fft)[None, :] + shape.hop * np.arange(n)[:, None]
    window = np.hanning(shape.n_fft + 1)[:-1].astype(np.float32)
    return np.fft.rfft(x[idx] * window, axis=1).T


def istft(spec: np.ndarray, shape: MdxShape, length: int) -> np.ndarray:
    """The inverse of :func:`stft` (weighted overlap-add), ``length`` samples."""
    window = np.hanning(shape.n_fft + 1)[:-1]
    frames = np.fft.irfft(spec.T, n=shape.n_fft, axis=1) * window
    total = shape.n_fft + shape.hop * (frames.shape[0] - 1)
    out = np.zeros(total)
    norm = np.zeros(total)
    for i, frame in enumerate(frames):
        out[i * shape.hop: i * shape.hop + shape.n_fft] += frame
        norm[i * shape.hop: i * shape.hop + shape.n_fft] += window ** 2
    out /= np.maximum(norm, 1e-8)
    pad = shape.n_fft // 2
    return out[pad: pad + length]


class Separator:
    """One model loaded once per process and file; ``vocals(stereo)`` runs it in chunks."""

    _sessions: dict[str, object] = {}
    _lock = threading.Lock()

    def __init__(self, path: Path, shape: MdxShape | None = None, threads: int = 0) -> None:
        import onnxruntime

        self.shape = shape or MdxShape()
        key = f"{path}:{threads}"
        with self._lock:
            if key not in self._sessions:
                opts = onnxruntime.SessionOptions()
                if threads:
                    opts.intra_op_num_threads = threads
                try:
                    self._sessions[key] = onnxruntime.InferenceSession(
                        str(path), opts, providers=["CPUExecutionProvider"])
                except Exception as exc:  # onnxruntime raises its own types
                    raise VideodubError(f"cannot load the separation model {path.name}: "
                                        f"{str(exc).splitlines()[0][:200]}") from exc
            self.session = self._sessions[key]
        inp = self.session.get_inputs()[0]
        expected = [4, self.shape.dim_f, self.shape.dim_t]
        if list(inp.shape[1:]) != expected:
            raise VideodubError(f"the separation model {path.name} takes {inp.shape}, not an "
                                f"MDX-Net spectrogram [batch, {', '.join(map(str, expected))}]")
        self.input_name = inp.name

    def vocals(self, stereo: np.ndarray) -> np.ndarray:
        """The voice in ``stereo`` ([2, samples] at the model's rate), same shape."""
        return VoiceStream(self).push(stereo, last=True)

    def chunk(self, waves: np.ndarray) -> np.ndarray:
        """The voice of the middle ``gen`` samples of one ``chunk`` of stereo (its ``trim``
        samples either side are the model's context)."""
        s = self.shape
        chunk, trim = s.hop * (s.dim_t - 1), s.n_fft // 2
        specs = [stft(ch, s)[: s.dim_f] for ch in waves]
        x = np.stack([specs[0].real, specs[0].imag, specs[1].real, specs[1].imag])
        y = self.session.run(None, {self.input_name: x[None].astype(np.float32)})[0][0]
        out = np.zeros((2, chunk - 2 * trim))
        for c in range(2):
            full = np.zeros((s.n_fft // 2 + 1, s.dim_t), dtype=complex)
            full[: s.dim_f] = y[2 * c] + 1j * y[2 * c + 1]
            out[c] = istft(full, s, chunk)[trim: chunk - trim]
        return out


class VoiceStream:
    """:meth:`Separator.chunk` over stereo given in pieces: the chunks, and so the voice, of
    the whole signal at once (silence of ``trim`` before it, and after it up to a whole
    chunk), with a few seconds held at a time."""

    def __init__(self, sep: Separator) -> None:
        s = sep.shape
        self.sep = sep
        self.chunk, self.trim = s.hop * (s.dim_t - 1), s.n_fft // 2
        self.gen = self.chunk - 2 * self.trim
        self.buf = np.zeros((2, self.trim))  # the padded signal from the next chunk's start
        self.n = self.given = 0  # samples taken in, voice samples given out

    def push(self, stereo: np.ndarray, last: bool = False) -> np.ndarray:
        """The voice of what is final now ([2, k], k a multiple of ``gen`` until ``last``)."""
        self.buf = np.concatenate([self.buf, stereo], axis=1)
        self.n += stereo.shape[1]
        if last:
            pad = self.gen - self.n % self.gen
            self.buf = np.concatenate([self.buf, np.zeros((2, pad + self.trim))], axis=1)
        out = []
        while self.buf.shape[1] >= self.chunk:
            out.append(self.sep.chunk(self.buf[:, : self.chunk]))
            self.buf = self.buf[:, self.gen:]
        voice = np.concatenate(out, axis=1) if out else np.zeros((2, 0))
        if last:  # not what the padding added
            voice = voice[:, : self.n - self.given]
        self.given += voice.shape[1]
        return voice


class BlockResampler:
    """``scipy.signal.resample_poly`` over a signal given in pieces, with the samples it gives
    over the whole signal at once: each stretch starts on a multiple of ``down`` input samples
    (so on the output grid) and is filtered with ``margin`` samples of its neighbours, more
    than the filter reaches."""

    def __init__(self, up: int, down: int, channels: int = 2) -> None:
        self.up, self.down = up, down
        reach = 10 * max(up, down) // up + 2  # input samples the default filter spans, each side
        self.margin = down * -(-reach // down)
        self.buf = np.zeros((channels, 0))
        self.start = 0  # input index of buf[:, 0]
        self.done = 0  # input samples already resampled (a multiple of down until the end)

    def push(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        from scipy.signal import resample_poly

        self.buf = np.concatenate([self.buf, x], axis=1)
        total = self.start + self.buf.shape[1]
        end = total if last else (total - self.margin) // self.down * self.down
        if end <= self.done:
            return np.zeros((self.buf.shape[0], 0))
        lo = max(0, self.done - self.margin)
        hi = total if last else end + self.margin
        y = resample_poly(self.buf[:, lo - self.start: hi - self.start], self.up, self.down,
                          axis=1)
        first = (self.done - lo) * self.up // self.down
        count = (-(-end * self.up // self.down)) - self.done * self.up // self.down
        self.done = end
        keep = max(0, end - self.margin)
        self.buf, self.start = self.buf[:, keep - self.start:], keep
        return y[:, first: first + count]


def separate_background(original: Path, out: Path, model: Path, threads: int = 0) -> Path:
    """``original`` minus its voice, written to ``out`` at the original's rate and channels.
    Read, separated and written a block at a time: memory stays the same whatever the
    length (the whole file in memory took about 210 MiB a minute of stereo)."""
    import math

    import soundfile

    sep = Separator(model, threads=threads)
    with soundfile.SoundFile(str(original)) as src, atomic_path(out) as tmp:
        rate, channels, frames = src.samplerate, src.channels, src.frames
        g = math.gcd(rate, sep.shape.rate)
        to_model = BlockResampler(sep.shape.rate // g, rate // g)
        voices = VoiceStream(sep)
        back = BlockResampler(rate // g, sep.shape.rate // g)
        held = np.zeros((2, 0))  # the original, waiting for its voice
        with soundfile.SoundFile(str(tmp), "w", samplerate=rate, channels=channels,
                                 subtype="FLOAT", format=wav_format(frames, channels, 4)) as dst:

            def write(voice: np.ndarray) -> None:
                nonlocal held
                n = min(voice.shape[1], held.shape[1])
                background = held[:, :n] - voice[:, :n]
                held = held[:, n:]
                dst.write((background.mean(axis=0, keepdims=True) if channels == 1
                           else background).T.astype(np.float32))

            for block in src.blocks(blocksize=BLOCK, dtype="float64", always_2d=True):
                stereo = block.T if channels == 2 else np.repeat(block[:, :1].T, 2, axis=0)
                held = np.concatenate([held, stereo], axis=1)
                write(back.push(voices.push(to_model.push(stereo))))
            # Resampled there and back, the voice is at least as long as the original.
            write(back.push(voices.push(to_model.push(np.zeros((2, 0)), last=True), last=True),
                            last=True))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m videodub.separation",
                                 description="Fetch the separation model into the cache ahead of "
                                             "time (mix.original_voice=separate).")
    sub = ap.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch")
    fetch.add_argument("--url", default=DEFAULT_MODEL_URL)
    fetch.add_argument("--sha256", default="")
    fetch.add_argument("--cache", type=Path, default=None,
                       help=f"cache directory (default {DEFAULT_CACHE})")
    args = ap.parse_args(argv)
    try:
        path = fetch_model(args.url, args.sha256, args.cache)
    except VideodubError as exc:
        print(f"error: {exc}")
        return 1
    print(f"{path} sha256={sha256_of(path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
