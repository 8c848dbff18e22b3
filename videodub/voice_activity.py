"""Where the source's *voice* is: Silero VAD (the model faster-whisper ships) decides what is
speech, and the energy detector (``speech_regions``) places its edges.

The energy detector alone hears whatever is loud. Under steady noise it heard none of a talk at
-1 dB SNR (over its sentences) and a tenth of it at 5 dB, and there the few bursts it did hear
moved lines up to 1.3 s late when align snapped to them; in a music intro it heard "speech",
and the mix cut holes in the music. Silero hears the voice in both (its onsets within
30-120 ms of the sentences' at -1 dB SNR) but works in 32 ms frames and starts a region a frame or three
late in clean speech, where the energy detector is exact to 10 ms. So within each voice span
the energy regions stand where they hear it, edges and pauses, and Silero's edges where they
do not (see :func:`refine`): exact in a quiet room, Silero's in noise, and loud sound that is
not a voice is not speech.

The model runs over the file a block at a time with its state carried (the same
probabilities as one call over the whole file, in bounded memory): about 0.14 s of one CPU a
minute of audio. Where the transcriber has already run it over the speech (faster_whisper
with ``transcribe.vad``, window by window), its probabilities are read instead (``offer``),
and the model runs only over what it has not reached; regions are asked for up to a time
(``voice_regions_until``), so on long media nothing waits for the whole file. A job finds its
regions by voice where its transcriber says so (``by_voice``): faster_whisper with its VAD,
and a transcriber that sends the audio away, which has the model run ahead of align in a
thread (:class:`RunAhead`) while it waits on the API.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from pathlib import Path

import numpy as np

from videodub.speech_regions import Regions, file_key, regions_of_file, remember

log = logging.getLogger(__name__)

RATE = 16000
FRAME = 512  # samples per Silero frame at 16 kHz: 32 ms
FRAME_S = FRAME / RATE
# faster-whisper's defaults: speech from a probability of 0.5, and on until it falls below 0.35.
ON, OFF = 0.5, 0.35
# Pauses shorter than this are bridged, as the energy detector does (``speech_regions.detect``),
# and regions under MIN_SPEECH_S dropped: a note's attack at the start of a music intro gave
# Silero two frames (64 ms) over 0.5; a short word ("Oh", "Yes") is 150 ms and more.
MERGE_GAP_S = 0.25
MIN_SPEECH_S = 0.1
# How far before a voice span an energy region's onset may lie and still be the span's start:
# Silero starts 0-70 ms after the energy detector on clean speech, and under a music bed 12 dB
# down the energy onsets came 0.15-0.28 s before the speaker's (the music), which is Silero's
# start then. How far after its end an energy region may reach; how far inside a span its
# first onset (last offset) may lie and still be the edge; how much of a span the energy
# regions must cover for their edges and pauses to be used.
LEAD_S = 0.12
REACH_S = 0.3
LAG_S = 0.15
HEARD = 0.5
# Frames per model call (16 s of audio): memory stays the same whatever the file's length.
# 2000 frames took 110 MB more while the model ran (onnxruntime's buffers), 500 frames 36 MB,
# for the same CPU (1.09-1.15 s for 10 minutes of speech either way).
BATCH = 500
# Asked for regions up to a time (``voice_regions_until``), the model is run up to it in
# pieces this long (seconds), and the regions are good to EDGE_S before where its
# probabilities end (a region there may go on).
PIECE_S = 60.0
EDGE_S = 1.0


def probabilities(path: str | Path, start: int = 0, count: int = -1,
                  carry: list | None = None) -> np.ndarray:
    """Silero's speech probability for each 32 ms frame of a sound file (mixed to mono,
    resampled to 16 kHz when it is not), read a block at a time; ``count`` samples (all:
    -1) from sample ``start`` of a 16 kHz file, the model's state fresh there or
    ``carry[0]`` (the state where an earlier call ended, which it is set to at the end)."""
    import soundfile
    import soxr

    from videodub.recognition import vad_run, vad_session, vad_state

    session = vad_session()
    state = carry[0] if carry and carry[0] is not None else vad_state()
    outputs: list[np.ndarray] = []
    with soundfile.SoundFile(str(path)) as f:
        resampler = (None if f.samplerate == RATE
                     else soxr.ResampleStream(f.samplerate, RATE, 1, dtype="float32"))
        if start:
            f.seek(start)
        rest = np.zeros(0, np.float32)
        block = BATCH * FRAME * f.samplerate // RATE
        left = count
        while True:
            want = block if left < 0 else min(block, left)
            data = f.read(want, dtype="float32", always_2d=True)
            last = len(data) < block or len(data) == left
            left -= len(data)
            mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=last)
            samples = np.concatenate([rest, mono])
            if last and len(samples) % FRAME:  # the last frame padded, as faster-whisper does
                samples = np.pad(samples, (0, FRAME - len(samples) % FRAME))
            whole = len(samples) // FRAME * FRAME
            if whole:
                out, state = vad_run(session, samples[:whole].reshape(-1, FRAME), state)
                outputs.append(np.asarray(out, np.float32).reshape(-1))
            rest = samples[whole:]
            if last:
                break
    if carry is not None:
        carry[:] = [state]
    return np.concatenate(outputs) if outputs else np.zeros(0, np.float32)


def voice_spans(probs: np.ndarray, duration: float,
                times: np.ndarray | None = None) -> list[tuple[float, float]]:
    """Spans of speech from frame probabilities (frames starting at ``times``, seconds; one
    after the other from 0 when not given), with hysteresis (on at ``ON``, off below
    ``OFF``), short pauses bridged and blips dropped."""
    probs = np.asarray(probs, np.float32).reshape(-1)
    if times is None:
        times = np.arange(len(probs)) * FRAME_S
    # Hysteresis without a loop over frames (a two-hour file has 225,000): each frame takes
    # the state of the last frame that decided one (on at ON, off under OFF), off at first.
    decides = (probs >= ON) | (probs < OFF)
    last = np.maximum.accumulate(np.where(decides, np.arange(len(probs)), -1))
    speaking = np.where(last >= 0, probs[np.maximum(last, 0)] >= ON, False)
    edges = np.diff(np.concatenate([[0], speaking.astype(np.int8), [0]]))
    bounds = np.append(times, duration)
    spans: list[list[float]] = []
    for i, j in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
        s, e = float(bounds[i]), min(float(bounds[j]), duration)
        if spans and s - spans[-1][1] < MERGE_GAP_S:
            spans[-1][1] = e
        else:
            spans.append([s, e])
    return [(s, e) for s, e in spans if e - s >= MIN_SPEECH_S]


def refine(voice: list[tuple[float, float]], energy: Regions) -> tuple[tuple[float, float], ...]:
    """The speech regions from the voice spans and the energy regions (see the module's
    docstring). Within a voice span that the energy detector hears (``HEARD`` of it or more)
    its regions stand, with the pauses it found, ending at most ``REACH_S`` after the span; its
    first onset gives way to the span's start where it lies more than ``LEAD_S`` before it
    (music that goes on into the voice is not speech) or ``LAG_S`` inside it (an onset lost in
    noise), and its last offset to the span's end where that lies ``LAG_S`` inside. A span it
    does not hear is speech as Silero found it. Energy regions outside every span are not
    speech."""
    out: list[tuple[float, float]] = []
    ends = [e for _, e in energy.spans]  # sorted: the regions do not overlap
    for a, b in voice:
        first = bisect.bisect_right(ends, a)
        inside = []
        for s, e in energy.spans[first:]:
            if s >= b:
                break
            inside.append((s, min(e, b + REACH_S)))
        heard = sum(min(e, b) - max(s, a) for s, e in inside)
        if heard < HEARD * (b - a):
            inside = [(a, b)]
        if not a - LEAD_S <= inside[0][0] <= a + LAG_S:
            inside[0] = (a, inside[0][1])
        if inside[-1][1] < b - LAG_S:
            inside[-1] = (inside[-1][0], b)
        for start, end in inside:
            if out and start <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], end))
            else:
                out.append((start, end))
    return tuple((round(s, 3), round(e, 3)) for s, e in out)


_cache: dict[tuple, Regions] = {}
_prefix_cache: dict[tuple, Regions] = {}
_lock = threading.Lock()
_extend_lock = threading.Lock()
# The probabilities faster-whisper's VAD found for each window of a speech file as the
# transcriber read it (``offer``): (first sample, samples, probabilities), in order.
_offered: dict[str, list[tuple[int, int, np.ndarray]]] = {}
# Where the model's own runs over a file ended (``_reach``), and its state there: the next
# piece goes on from it, so pieces give one pass's probabilities.
_carried: dict[str, tuple[int, tuple]] = {}


# Speech files whose job finds its speech regions by voice (``by_voice``).
_by_voice: set[str] = set()


def by_voice(path: str | Path) -> None:
    """The job reading the speech file ``path`` finds its speech regions by voice: its
    transcriber runs Silero over the speech (faster_whisper with ``transcribe.vad``) or has
    it run ahead (:class:`RunAhead`), or would have (its transcript came from the cache).
    Without this they are the energy detector's alone."""
    with _lock:
        if len(_by_voice) > 16:
            _by_voice.clear()
        _by_voice.add(str(Path(path).resolve()))


def _is_by_voice(path: str | Path) -> bool:
    with _lock:
        return str(Path(path).resolve()) in _by_voice


def source_regions_until(path: str | Path, until: float) -> tuple[Regions, float]:
    """The job's speech regions good up to ``until`` at least, and how far they are good:
    by voice (``voice_regions_until``) where the job said so, else the energy detector's."""
    if _is_by_voice(path):
        return voice_regions_until(path, until)
    return regions_of_file(path), math.inf


def source_regions_of_file(path: str | Path) -> Regions:
    """The job's speech regions over the whole file (see :func:`source_regions_until`)."""
    return voice_regions_of_file(path) if _is_by_voice(path) else regions_of_file(path)


def offer(path: str | Path, at: int, samples: int, probs: np.ndarray) -> None:
    """The transcriber's VAD probabilities for the window of the 16 kHz speech file ``path``
    that starts at sample ``at`` and is ``samples`` long (its last frame padded): the speech
    regions read them instead of running the model over the file again (0.14 s of CPU a
    minute, taken from recognition while it ran). Kept only while they join up from 0."""
    key = _store_key(Path(path))
    with _lock:
        pieces = _offered.setdefault(key, [])
        if at == 0:
            pieces.clear()
            _carried.pop(key, None)
            if len(_offered) > 4:
                for other in [k for k in _offered if k != key]:
                    del _offered[other]
                    _carried.pop(other, None)
        if at == (pieces[-1][0] + pieces[-1][1] if pieces else 0):
            pieces.append((at, samples, np.asarray(probs, np.float32).reshape(-1)))


def _store_key(path: Path) -> tuple[str, int]:
    """A speech file, as long as it is the same file: one that grows keeps its inode, a new
    one written where an earlier job's was does not."""
    return str(path.resolve()), path.stat().st_ino


def _reach(path: Path, until_sample: int, total: int) -> int:
    """Probabilities for the file up to ``until_sample`` at least: the model is run from
    where the store ends (the transcriber's windows, or earlier runs of this) a piece of
    ``PIECE_S`` at a time. The pieces fall where they fall whoever asks (align, the mix,
    :class:`RunAhead`), so the regions do not depend on which asked first. Returns how far
    the store reaches."""
    key = _store_key(path)
    step = int(PIECE_S * RATE) // FRAME * FRAME  # whole frames: nothing padded between them
    while True:
        with _extend_lock:  # align, the mix and the run ahead may all ask; one piece runs once
            with _lock:
                pieces = _offered.setdefault(key, [])
                covered = pieces[-1][0] + pieces[-1][1] if pieces else 0
                at, state = _carried.get(key, (-1, None))
            if covered >= min(until_sample, total):
                return covered
            count = min(total - covered, step)
            carry = [state if at == covered else None]  # on from the piece before it
            probs = probabilities(path, covered, count, carry)
            with _lock:
                if covered == (pieces[-1][0] + pieces[-1][1] if pieces else 0):
                    pieces.append((covered, count, probs))
                    _carried[key] = (covered + count, carry[0])


class RunAhead:
    """The model run over a speech file a piece at a time in a thread of its own, ahead of
    the stages that ask for regions: for a transcriber that sends the audio away, whose
    job waits on the network meanwhile (0.14 s of CPU a minute of audio, off align's path).
    What it has not reached when asked is run by whoever asks, in the same pieces."""

    def __init__(self, path: str | Path, cancel: threading.Event) -> None:
        self.path, self.cancel, self.stopping = Path(path), cancel, threading.Event()
        self.thread = threading.Thread(target=self._run, name="videodub-voice-ahead",
                                       daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import soundfile

        try:
            info = soundfile.info(str(self.path))
            if info.samplerate != RATE:
                return
            covered = 0
            while covered < info.frames and not (self.stopping.is_set()
                                                 or self.cancel.is_set()):
                covered = _reach(self.path, covered + 1, info.frames)
        except (ImportError, AttributeError, RuntimeError, OSError) as exc:
            log.warning("voice activity not run ahead: %s", exc)

    def stop(self) -> None:
        """Stop after the piece it is running (the job has ended)."""
        self.stopping.set()
        self.thread.join()


def voice_regions_until(path: str | Path, until: float) -> tuple[Regions, float]:
    """Speech regions good up to ``until`` seconds at least, and how far they are good: read
    from the probabilities of the file's start (the transcriber's, or the model run up to
    what is asked, a piece at a time), so that on long media align's first line does not
    wait for the model over the whole file. The whole file's (good to its end) once it is all covered."""
    p = Path(path)
    import soundfile

    info = soundfile.info(str(p))
    if info.samplerate != RATE:
        return voice_regions_of_file(p), math.inf
    try:
        covered = _reach(p, min(info.frames, int((until + EDGE_S) * RATE)), info.frames)
    except (ImportError, AttributeError, RuntimeError):
        return voice_regions_of_file(p), math.inf
    if covered >= info.frames:
        return voice_regions_of_file(p), math.inf
    key = (_store_key(p), covered)
    with _lock:
        if key in _prefix_cache:
            return _prefix_cache[key], covered / RATE - EDGE_S
        pieces = [piece for piece in _offered.get(key[0], ()) if piece[0] < covered]
    probs, times = _joined(pieces)
    found = _regions(regions_of_file(p), probs, times, covered / RATE)
    remember(_prefix_cache, key, found, 8, _lock)
    return found, covered / RATE - EDGE_S


def _regions(energy: Regions, probs: np.ndarray, times: np.ndarray | None,
             heard_to: float) -> Regions:
    """The speech regions from the energy regions and Silero's probabilities up to
    ``heard_to`` seconds. No voice anywhere, though a job asks where its lines are spoken: a
    voice Silero does not know (singing, a synthetic or heavily processed one). The energy
    regions are the better guess then, as they were before Silero was asked."""
    voice = voice_spans(probs, heard_to, times)
    if not voice:
        return energy
    return Regions(refine(voice, energy), energy.duration, energy.threshold_db, by_voice=True)


def _joined(pieces: list[tuple[int, int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    times = np.concatenate([(at + np.arange(len(p)) * FRAME) / RATE for at, _, p in pieces])
    return np.concatenate([p for _, _, p in pieces]), times


def file_probabilities(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """The file's probabilities and their frames' start times (None: one after the other
    from 0): the transcriber's where it offered them, the model run over the rest."""
    key = _store_key(path)
    with _lock:
        pieces = list(_offered.get(key, ()))
        at, state = _carried.get(key, (-1, None))
    if not pieces:
        return probabilities(path), None
    covered = pieces[-1][0] + pieces[-1][1]
    import soundfile

    if covered < soundfile.info(str(path)).frames:
        carry = [state if at == covered else None]
        pieces.append((covered, 0, probabilities(path, covered, carry=carry)))
    return _joined(pieces)


def voice_regions_of_file(path: str | Path) -> Regions:
    """The source's speech regions by voice (see the module's docstring), computed once per
    file version: align, the mixer and the quality figures all ask for them."""
    p = Path(path)
    key = file_key(p, {})
    with _lock:
        if key in _cache:
            return _cache[key]
    energy = regions_of_file(p)
    try:
        probs, times = file_probabilities(p)
    except (ImportError, AttributeError, RuntimeError) as exc:  # no model this can read
        log.warning("speech regions by energy alone: %s", exc)
        return energy
    found = _regions(energy, probs, times, energy.duration)
    remember(_cache, key, found, 4, _lock)
    return found
