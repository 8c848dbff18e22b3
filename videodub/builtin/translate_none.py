"""translate=none: keep the source text (re-voice a video in its own language)."""

from __future__ import annotations

from videodub import hookimpl
from videodub.errors import VideodubError
from videodub.languages import primary
from videodub.model import JobContext, Segment, WorkerHint


class KeepSourceText:
    def __init__(self, options) -> None:
        self.options = options
        self.batch_size = options.batch_size

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=True, memory_mb=1, max_concurrency=1, reason="no work to share")

    def check(self, ctx: JobContext) -> None:
        """Known languages are compared before any work; a detected one at the first batch."""
        if ctx.source_lang and primary(ctx.source_lang) != primary(ctx.target_lang):
            raise VideodubError(
                f"translate=none keeps the {ctx.source_lang} text but target_lang={ctx.target_lang}; "
                f"set target_lang={ctx.source_lang} or choose a translator "
                f"(e.g. translate=subtitles translate.file=<{ctx.target_lang}.srt>)")

    def translate(self, segments: list[Segment], ctx: JobContext) -> list[Segment]:
        self.check(ctx)
        for seg in segments:
            seg.target_text = seg.source_text
        return segments


@hookimpl
def register_translators(register):
    register("none", KeepSourceText, None, description="Keep the source text (same-language re-voicing).")
