"""The files a finished job leaves in its run folder, under their final names.

Each is written under a temporary name and renamed into place (``videodub.media``), so a
crash leaves a file whole or not at all.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from videodub.inputs import input_stem
from videodub.media import NAME_MAX, fit_bytes, write_json_atomic
from videodub.model import JobContext, Segment
from videodub.subtitles import SubtitleLayout, write_srt


# What a file name cannot hold (or should not: control characters).
_UNSAFE = re.compile(r"[\x00-\x1f/\\]")
# Bytes of a file name kept for what follows the input's stem (``.source.srt``, ``.pt-br.mp4``).
SUFFIX_ROOM = 24


class Outputs:
    """``<stem>.<lang>.srt`` for both languages, ``segments.json``, and the dubbed video's name.
    A stem too long for a file name once a suffix follows it is cut (the input's own name can
    take all 255 bytes a name may have)."""

    def __init__(self, run_dir: Path, input_path: str, keep_work: bool,
                 layout: SubtitleLayout | None = None, ctx: JobContext | None = None) -> None:
        self.run_dir = run_dir
        self.input_path = input_path
        self.layout = layout
        self.ctx = ctx
        self._stem: str | None = None
        self.keep_work = keep_work
        self.paths: dict[str, Path] = {}

    @property
    def stem(self) -> str:
        """The outputs' common name: the one an ingester gave (``JobContext.output_name``,
        read at the first output), else the input's; fixed once an output has it."""
        if self._stem is None:
            given = self.ctx.output_name if self.ctx is not None else None
            given = _UNSAFE.sub("_", given or "").strip(" .")
            self._stem = fit_bytes(given or input_stem(self.input_path), NAME_MAX - SUFFIX_ROOM)
        return self._stem

    def video_path(self, target_lang: str) -> Path:
        return self.run_dir / f"{self.stem}.{target_lang}.mp4"

    def write_source_srt(self, segments: list[Segment], source_lang: str | None) -> Path:
        path = write_srt(segments, self.run_dir / f"{self.stem}.{source_lang}.srt", target=False,
                         layout=self.layout, lang=source_lang)
        self.paths["source_srt"] = path
        return path

    def write_target_srt(self, segments: list[Segment], target_lang: str) -> Path:
        target = self.run_dir / f"{self.stem}.{target_lang}.srt"
        if self.paths.get("source_srt") == target and any(
                s.source_text != s.target_text for s in segments):
            # Same language, different text: keep the transcript under its own name.
            self.paths["source_srt"] = target.replace(target.with_suffix(".source.srt"))
        path = self.paths["target_srt"] = write_srt(segments, target, target=True,
                                                    layout=self.layout, lang=target_lang)
        return path

    def write_segments(self, segments: list[Segment], source_lang: str | None, target_lang: str,
                       work_dir: Path) -> Path:
        path = self.paths["segments"] = write_json_atomic(
            self.run_dir / "segments.json",
            {"source_lang": source_lang, "target_lang": target_lang,
             "segments": [self._record(s, work_dir) for s in segments]})
        return path

    def _record(self, seg: Segment, work_dir: Path) -> dict[str, Any]:
        record = seg.to_json()
        # Clips under work/ go away with it unless keep_work; cached clips stay.
        if (record["audio_path"] and not self.keep_work
                and Path(record["audio_path"]).is_relative_to(work_dir)):
            record["audio_path"] = None
        return record

    def names(self) -> dict[str, str]:
        return {k: Path(v).name for k, v in self.paths.items()}
