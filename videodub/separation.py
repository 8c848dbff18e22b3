"""Voice and background apart, with an MDX-Net source-separation model on onnxruntime, so a dub
can go over the original's background at its own level (``mix.original_voice=separate``).

MDX-Net models (the ones Ultimate Vocal Remover publishes as ONNX, e.g.
``UVR-MDX-NET-Voc_FT.onnx``) take a stereo spectrogram and return the separated source's:
input and output ``[batch, 4, dim_f, dim_t]`` (real and imaginary parts of both channels,
``dim_f`` lowest bins of an ``n_fft`` STFT with hop ``hop``, at 44.1 kHz). The STFT, the
chunking with its overlap trimmed, and the inverse are numpy here; onnxruntime ships with
faster-whisper already, so no PyTorch is needed.

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
        s = self.shape
        chunk = s.hop * (s.dim_t - 1)
        trim = s.n_fft // 2
        gen = chunk - 2 * trim
        n = stereo.shape[1]
        pad = gen - n % gen
        padded = np.concatenate([np.zeros((2, trim)), stereo, np.zeros((2, pad + trim))], axis=1)
        out = np.zeros((2, n + pad))
        for i in range(0, n + pad, gen):
            waves = padded[:, i: i + chunk]
            specs = [stft(ch, s)[: s.dim_f] for ch in waves]
            x = np.stack([specs[0].real, specs[0].imag, specs[1].real, specs[1].imag])
            y = self.session.run(None, {self.input_name: x[None].astype(np.float32)})[0][0]
            for c in range(2):
                full = np.zeros((s.n_fft // 2 + 1, s.dim_t), dtype=complex)
                full[: s.dim_f] = y[2 * c] + 1j * y[2 * c + 1]
                out[c, i: i + gen] = istft(full, s, chunk)[trim: trim + gen]
        return out[:, :n]


def separate_background(original: Path, out: Path, model: Path, threads: int = 0) -> Path:
    """``original`` minus its voice, written to ``out`` at the original's rate and channels."""
    import math

    import soundfile
    from scipy.signal import resample_poly

    sep = Separator(model, threads=threads)
    audio, rate = soundfile.read(str(original), dtype="float64", always_2d=True)
    stereo = audio.T if audio.shape[1] == 2 else np.repeat(audio[:, :1].T, 2, axis=0)
    g = math.gcd(rate, sep.shape.rate)
    at_model = resample_poly(stereo, sep.shape.rate // g, rate // g, axis=1)
    voice = sep.vocals(at_model)
    voice = resample_poly(voice, rate // g, sep.shape.rate // g, axis=1)[:, : stereo.shape[1]]
    if voice.shape[1] < stereo.shape[1]:
        voice = np.pad(voice, ((0, 0), (0, stereo.shape[1] - voice.shape[1])))
    background = stereo - voice
    if audio.shape[1] == 1:
        background = background.mean(axis=0, keepdims=True)
    with atomic_path(out) as tmp:
        soundfile.write(str(tmp), background.T.astype(np.float32), rate, subtype="FLOAT",
                        format=wav_format(*background.T.shape, 4))
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
