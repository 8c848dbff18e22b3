"""What the dub track's AAC coder and bit rate cost and how they sound: encode CPU, size, and
ViSQOL's MOS-LQO (audio mode, 48 kHz) against the lossless track, per setting.

    .venv/bin/python benchmarks/bench_codec.py
    .venv/bin/python benchmarks/bench_codec.py --variants twoloop:96,fast:128 --visqol-seconds 0
    .venv/bin/python benchmarks/bench_codec.py --variants fast:64,fast:64@32000

Materials: the pipeline benchmark's talk dubbed by the quality profile with the two-pass mix
(``mix.streaming=false``, whose ``dub_mix.wav`` is the lossless track), and the shared JFK
recording (when ``../shared/media/jfk.flac`` is present) alone and over pink noise at -26 dBFS.
With ``--music FILE`` (any file soundfile reads, e.g. the Ogg tracks of Debian's
``extremetuxracer-data``), also the recording over that music 14 dB under its speech, and
the music alone, from 30 s into the file. Each setting is encoded with PyAV as the mix encodes
(one encoder, mono, 48 kHz) and decoded back. A setting with ``@RATE`` (``fast:64@32000``) is
the track at that sample rate instead, as a mix at ``ingest.mix_sample_rate=RATE`` gives it:
the material is resampled to RATE first (FFmpeg's resampler, as ingest reads the original),
and the decoded result back to 48 kHz to be scored against the 48 kHz material; the CPU figure
is the encode's alone.

MOS-LQO needs ``pip install visqol-python`` (not a videodub dependency: it is only for this
measurement); without it, or with ``--visqol-seconds 0``, only CPU and size are printed. The
pure-Python ViSQOL takes about 2.5 s per second of audio, so it scores the first
``--visqol-seconds`` of each material. Nothing is asserted: the figures are for a person.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

JFK = Path(__file__).resolve().parents[2] / "shared" / "media" / "jfk.flac"
RATE = 48000
FRAME = 1024  # AAC's priming: the decoded stream starts one frame late


def resample(x: np.ndarray, rate: int, to: int) -> np.ndarray:
    """Mono float32 ``x`` from ``rate`` to ``to`` Hz, with FFmpeg's resampler (PyAV)."""
    import av

    if rate == to:
        return x
    resampler = av.AudioResampler(format="flt", layout="mono", rate=to)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None, :]), format="flt",
                                       layout="mono")
    frame.sample_rate = rate
    out = [f.to_ndarray()[0] for f in resampler.resample(frame)]
    out += [f.to_ndarray()[0] for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.float32)


def encode(x: np.ndarray, coder: str, kbits: int, rate: int = RATE,
           options: dict[str, str] | None = None) -> tuple[list, bytes, float]:
    """Packets of ``x`` (float32 at ``rate``: samples, or samples x 2 for stereo), the codec's
    extradata, and the CPU-s."""
    import av

    planar = x[None, :] if x.ndim == 1 else np.ascontiguousarray(x.T)
    layout = "mono" if len(planar) == 1 else "stereo"
    t0 = time.process_time()
    ctx = av.CodecContext.create("aac", "w")
    ctx.sample_rate, ctx.layout, ctx.format = rate, layout, "fltp"
    ctx.bit_rate, ctx.time_base = kbits * 1000, Fraction(1, rate)
    ctx.options = {"aac_coder": coder, **(options or {})}
    ctx.open()
    packets = []
    block = 48 * FRAME
    for i in range(0, planar.shape[1], block):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar[:, i:i + block]),
                                           format="fltp", layout=layout)
        frame.sample_rate, frame.pts = rate, i
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    return packets, bytes(ctx.extradata or b""), time.process_time() - t0


def decode(packets: list, extradata: bytes, n: int, rate: int = RATE,
           channels: int = 1) -> np.ndarray:
    import av

    ctx = av.CodecContext.create("aac", "r")
    ctx.extradata, ctx.sample_rate = extradata, rate
    ctx.layout = "mono" if channels == 1 else "stereo"
    out = [f.to_ndarray() for p in packets for f in ctx.decode(p)]
    out += [f.to_ndarray() for f in ctx.decode(None)]
    data = np.concatenate(out, axis=1)[:, FRAME:FRAME + n].astype(np.float32)
    return data[0] if channels == 1 else data.T


def coded(x: np.ndarray, coder: str, kbits: int, rate: int,
          options: dict[str, str] | None = None) -> tuple[np.ndarray, float, float]:
    """``x`` (48 kHz) through the setting and back at 48 kHz; KiB and encode CPU-s."""
    if x.ndim == 2:  # stereo: no resampling (the stereo materials are scored at 48 kHz)
        packets, extradata, cpu = encode(x, coder, kbits, rate, options)
        back = decode(packets, extradata, len(x), rate, channels=2)
        back = np.concatenate([back, np.zeros((max(0, len(x) - len(back)), 2), np.float32)])
        return back[:len(x)], sum(p.size for p in packets) / 1024, cpu
    at_rate = resample(x, RATE, rate)
    packets, extradata, cpu = encode(at_rate, coder, kbits, rate, options)
    back = resample(decode(packets, extradata, len(at_rate), rate), rate, RATE)
    back = np.concatenate([back, np.zeros(max(0, len(x) - len(back)), np.float32)])[:len(x)]
    return back, sum(p.size for p in packets) / 1024, cpu


def talk_track(folder: Path, seconds: float, stereo: bool = False) -> np.ndarray:
    """The quality profile's lossless dub of the pipeline benchmark's talk (its channels
    averaged, or with ``stereo`` both as they are)."""
    import soundfile

    import bench_pipeline as bp
    from videodub.api import dub

    video, srt, _ = bp.build_talk(folder, seconds)
    run = folder / "run"
    dub(bp.overrides(video, srt, "quality") + ["mix.streaming=false"], run)
    audio, _ = soundfile.read(str(run / "work" / "dub_mix.wav"), dtype="float32",
                              always_2d=True)
    if stereo:
        return audio if audio.shape[1] == 2 else np.repeat(audio, 2, axis=1)
    return audio.mean(axis=1)


def read_mono(path: Path) -> np.ndarray:
    """A file's channels averaged, at 48 kHz."""
    return read_audio(path).mean(axis=1)


def read_audio(path: Path) -> np.ndarray:
    """A file's samples x channels, at 48 kHz."""
    import soundfile
    from scipy.signal import resample_poly

    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return resample_poly(audio, RATE, rate, axis=0).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def jfk_alone() -> np.ndarray:
    speech = read_mono(JFK)
    return (0.5 * speech / np.abs(speech).max()).astype(np.float32)


def jfk_over_pink(stereo: bool = False) -> np.ndarray:
    """The recording over pink noise at -26 dBFS; with ``stereo``, the speech in the centre
    (the same in both channels, as a dub's voice is) and the noise different in each."""
    from scipy.signal import lfilter

    speech = read_mono(JFK)
    white = np.random.default_rng(1).standard_normal((len(speech), 2 if stereo else 1))
    # Paul Kellet's pink-noise filter (-3 dB an octave).
    pink = lfilter([0.049922035, -0.095993537, 0.050612699, -0.004408786],
                   [1, -2.494956002, 2.017265875, -0.522189400], white, axis=0)
    pink *= 0.05 / np.sqrt(np.mean(pink ** 2))  # -26 dBFS RMS
    mix = 0.5 * speech[:, None] / np.abs(speech).max() + pink
    return (mix if stereo else mix[:, 0]).astype(np.float32)


def music_excerpt(music: Path, samples: int, stereo: bool = False) -> np.ndarray:
    x = read_audio(music)
    x = x if stereo else x.mean(axis=1, keepdims=True)
    x = x[min(30 * RATE, max(0, len(x) - samples)):][:samples]
    x = np.pad(x, ((0, samples - len(x)), (0, 0)))
    return x if stereo else x[:, 0]


def jfk_over_music(music: Path, stereo: bool = False) -> np.ndarray:
    """The recording over the music, the music's RMS 14 dB under the speech's (the speech in
    the centre of the stereo music with ``stereo``)."""
    speech = jfk_alone()
    bed = music_excerpt(music, len(speech), stereo)
    bed *= rms(speech) * 10 ** (-14 / 20) / max(rms(bed), 1e-9)
    mix = (speech[:, None] if stereo else speech) + bed
    return (mix * min(1.0, 0.9 / np.abs(mix).max())).astype(np.float32)


def music_alone(music: Path, seconds: float, stereo: bool = False) -> np.ndarray:
    bed = music_excerpt(music, int(seconds * RATE), stereo)
    return (bed * min(1.0, 0.9 / max(np.abs(bed).max(), 1e-9))).astype(np.float32)


def mos(reference: np.ndarray, degraded: np.ndarray, api) -> float:
    return float(api.measure_from_arrays(reference.astype(np.float64),
                                         degraded.astype(np.float64), RATE).moslqo)


def stereo_scores(reference: np.ndarray, degraded: np.ndarray, api) -> str:
    """ViSQOL (mono) of each channel (their mean) and of the side signal (L-R)/2, where the
    reference has one: a coder's stereo tools change the side most, and noise that differs
    between the channels shows there."""
    per_channel = [mos(reference[:, c], degraded[:, c], api) for c in (0, 1)]
    side_ref = (reference[:, 0] - reference[:, 1]) / 2
    side = (f"{mos(side_ref, (degraded[:, 0] - degraded[:, 1]) / 2, api):8.3f}"
            if rms(side_ref) > 10 ** (-50 / 20) else f"{'-':>8s}")
    return f"{np.mean(per_channel):8.3f} {side}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="fast:64,fast:96,fast:128,twoloop:96,twoloop:128",
                    help="coder:kbit/s[@sample rate][+option=value...], comma-separated")
    ap.add_argument("--seconds", type=float, default=60.0, help="the talk's length")
    ap.add_argument("--visqol-seconds", type=float, default=20.0,
                    help="seconds of each material ViSQOL scores (0: no scores)")
    ap.add_argument("--music", type=Path, help="a music file for the speech-over-music and "
                    "music materials")
    ap.add_argument("--no-talk", action="store_true", help="leave out the generated talk")
    ap.add_argument("--stereo", action="store_true",
                    help="stereo materials (the speech in the centre), scored per channel "
                         "and on the side signal; kbit/s are the two channels' together")
    args = ap.parse_args(argv)
    variants = []
    for v in args.variants.split(","):
        v, *opts = v.split("+")
        coder, _, rest = v.partition(":")
        kbits, _, rate = rest.partition("@")
        options = dict(o.split("=", 1) for o in opts)
        variants.append((coder, int(kbits), int(rate or RATE), options))
    api = None
    if args.visqol_seconds > 0:
        try:
            from visqol import VisqolApi
        except ImportError:
            print("MOS-LQO not measured: pip install visqol-python")
        else:
            api = VisqolApi()
            api.create(mode="audio")
    stereo = args.stereo
    with tempfile.TemporaryDirectory() as tmp:
        materials = ({} if args.no_talk
                     else {"talk (dub)": talk_track(Path(tmp), args.seconds, stereo)})
    if JFK.is_file():
        if not stereo:  # in the centre alone it is the mono material
            materials["jfk"] = jfk_alone()
        materials["jfk + pink noise"] = jfk_over_pink(stereo)
        if args.music:
            materials["jfk + music"] = jfk_over_music(args.music, stereo)
    else:
        print(f"the JFK materials are skipped: {JFK} is absent")
    if args.music:
        materials["music"] = music_alone(args.music, 11.0, stereo)
    score_head = f"{'MOS L/R':>8s} {'MOS side':>8s}" if stereo else f"{'MOS-LQO':>8s}"
    print(f"{'material':18s} {'setting':22s} {'CPU-s/min':>9s} {'KiB/min':>8s} {score_head}")
    for name, x in materials.items():
        minutes = len(x) / RATE / 60
        scored = x[:int(args.visqol_seconds * RATE)]
        for coder, kbits, rate, options in variants:
            back, size, cpu = coded(x, coder, kbits, rate, options)
            if api is None:
                score = f"{'-':>8s}"
            elif stereo:
                score = stereo_scores(scored, back[:len(scored)], api)
            else:
                score = f"{mos(scored, back[:len(scored)], api):8.3f}"
            setting = (f"{coder} {kbits}k" + (f"@{rate // 1000}k" if rate != RATE else "")
                       + "".join(f" {k}={v}" for k, v in options.items()))
            print(f"{name:18s} {setting:22s} {cpu / minutes:9.3f} "
                  f"{size / minutes:8.0f} {score}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
