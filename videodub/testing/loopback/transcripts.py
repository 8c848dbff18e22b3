"""The transcription route's content: the multipart form an upload arrives in, the segments
heard in it (labelled voiced regions, or the bundled Whisper model), and the five response
formats OpenAI offers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from typing import Any

import numpy as np
import srt

from videodub.languages import code_of, name_of
from videodub.testing.loopback.audio import TRANSCRIPTION_RATE
from videodub.testing.loopback.faults import Response, bad_request, json_response

TRANSCRIPT_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
UPLOAD_FORMATS = "['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']"
SHORT_REGION_S = 0.4  # shorter regions look like noise to Whisper: high no_speech_prob


class Form:
    """The fields of a multipart/form-data body, by name (a name may repeat)."""

    def __init__(self, body: bytes, content_type: str) -> None:
        # The email parser reads a MIME message: the body behind its own Content-Type header.
        head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
        message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
        if message.get_content_type() != "multipart/form-data" or not message.get_boundary():
            raise bad_request(f"Invalid Content-Type header ({content_type}), expected "
                              "multipart/form-data.")
        self.fields: dict[str, list[bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(data, bytes):
                self.fields.setdefault(name, []).append(data)

    def text(self, name: str) -> str | None:
        parts = self.fields.get(name)
        return parts[0].decode("utf-8", "replace") if parts else None

    def texts(self, name: str) -> list[str]:
        return [data.decode("utf-8", "replace") for data in self.fields.get(name, [])]

    def file(self, name: str) -> bytes | None:
        parts = self.fields.get(name)
        return parts[0] if parts else None


@dataclass
class Segment:
    start: float
    end: float
    text: str
    avg_logprob: float = -0.25
    compression_ratio: float = 1.4
    no_speech_prob: float = 0.01


def scripted_segment(line: str, start: float, end: float) -> Segment:
    """A region labelled with a script line; a leading ``~`` or ``%`` makes it doubtful."""
    segment = Segment(start, end, "")
    while line[:1] in ("~", "%"):
        if line[0] == "~":
            segment.avg_logprob = -1.4
        else:
            segment.compression_ratio = 2.8
        line = line[1:]
    segment.text = line.strip()
    if end - start < SHORT_REGION_S:
        # A whole scripted line "heard" in a blip: Whisper doubts both that it is speech and
        # what it decoded (a log-probability under its -1.0).
        segment.no_speech_prob = 0.8
        segment.avg_logprob = min(segment.avg_logprob, -1.2)
    return segment


def whisper_segments(audio: np.ndarray) -> list[Segment]:
    """Segments from the bundled tiny.en model (loaded on first use, once per process).

    Whisper's timestamps come in 20 ms steps and the last one may overshoot the audio, so
    times are clamped to the upload's duration.
    """
    from videodub.recognition import BUNDLED, load_model

    model = load_model(BUNDLED, "int8", 2)
    segments, _info = model.transcribe(audio, language="en", vad_filter=True)
    duration = len(audio) / TRANSCRIPTION_RATE
    return [Segment(min(s.start, duration), min(s.end, duration), s.text.strip(), s.avg_logprob,
                    s.compression_ratio, s.no_speech_prob)
            for s in segments if s.text.strip()]


def language_name(value: str | None) -> str:
    """Whisper's name for the requested language ("es" -> "spanish"); English by default."""
    if not value:
        return "english"
    code = code_of(value.replace("_", "-"))
    if code is None:
        raise bad_request(f"Invalid language '{value}'. Language parameter must be specified in "
                          "ISO-639-1 format.", "language", "invalid_language_format")
    return name_of(code).lower()


def _cue_time(seconds: float) -> timedelta:
    # Rounded to the millisecond here: both subtitle writers would cut the fraction off.
    return timedelta(milliseconds=round(seconds * 1000))


def _vtt_timestamp(seconds: float) -> str:
    return srt.timedelta_to_srt_timestamp(_cue_time(seconds)).replace(",", ".")


def subtitles(segments: list[Segment], vtt: bool) -> str:
    """The segments as an SRT or a WebVTT file, numbered or timed as Whisper writes them."""
    if vtt:
        import webvtt

        return webvtt.WebVTT(captions=[
            webvtt.Caption(_vtt_timestamp(s.start), _vtt_timestamp(s.end), s.text)
            for s in segments]).content
    # Numbered in order, without srt's reindexing, which would drop cues it finds empty.
    return srt.compose([srt.Subtitle(i, _cue_time(s.start), _cue_time(s.end), s.text)
                        for i, s in enumerate(segments, 1)], reindex=False)


def _verbose_segment(index: int, segment: Segment) -> dict[str, Any]:
    return {"id": index, "seek": int(segment.start // 30) * 3000, "start": round(segment.start, 2),
            "end": round(segment.end, 2), "text": " " + segment.text, "tokens": [],
            "temperature": 0.0, "avg_logprob": segment.avg_logprob,
            "compression_ratio": segment.compression_ratio,
            "no_speech_prob": segment.no_speech_prob}


def _words(segment: Segment) -> list[dict[str, Any]]:
    """Word timings spread evenly over the segment (regions carry no finer timing)."""
    words = segment.text.split()
    step = (segment.end - segment.start) / max(1, len(words))
    return [{"word": word, "start": round(segment.start + i * step, 2),
             "end": round(segment.start + (i + 1) * step, 2)} for i, word in enumerate(words)]


def transcript_response(fmt: str, segments: list[Segment], duration: float, language: str,
                        granularities: list[str]) -> Response:
    text = " ".join(s.text for s in segments)
    if fmt == "json":
        return json_response({"text": text})
    if fmt in ("srt", "vtt"):
        return Response(200, subtitles(segments, fmt == "vtt").encode(),
                        "text/plain; charset=utf-8")
    if fmt == "text":
        return Response(200, (text + "\n").encode(), "text/plain; charset=utf-8")
    body: dict[str, Any] = {"task": "transcribe", "language": language,
                            "duration": round(duration, 2), "text": text}
    if not granularities or "segment" in granularities:
        body["segments"] = [_verbose_segment(i, s) for i, s in enumerate(segments)]
    if "word" in granularities:
        body["words"] = [word for s in segments for word in _words(s)]
    return json_response(body)
