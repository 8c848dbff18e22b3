"""translate=subtitles: use an existing translated SRT/WebVTT file as the translation.

Cues are matched to the transcribed segments by time overlap. Where one segment overlaps
exactly one cue (and that cue no other segment), the segment keeps its timing and takes the
cue's text. Elsewhere (a cue spanning several segments, a segment split over several cues,
a cue over no speech) the cues themselves become the target segments, timed as the file says.

Lines stream: a stretch of the transcript is matched as soon as no later segment can change
it (the next segment starts after every cue so far has ended), so the dub of a talk with a
subtitle file follows its recognition instead of waiting for the whole transcript.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from videodub import hookimpl
from videodub.errors import VideodubError
from videodub.inputs import is_url
from videodub.languages import primary
from videodub.model import JobContext, Segment, WorkerHint
from videodub.subtitles import Cue, read_cues


@dataclass
class SubtitlesOptions:
    # The translated .srt or .vtt file; empty: the one beside the input named for the
    # target language, as players find them (talk.es.srt or talk.es.vtt for talk.mp4), so
    # a folder of talks and their subtitles dubs with one command.
    file: str = ""
    # Seconds two intervals must share to count as overlapping.
    min_overlap: float = 0.1


def _overlap(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    return min(a_end, b_end) - max(a_start, b_start)


class SubtitleTranslator:
    batch_size = None  # a whole transcript when called in batches; the runner streams it

    def __init__(self, options) -> None:
        self.options = options
        self.path: Path | None = None
        self.cues: list[Cue] = []
        if options.file:
            self._read(Path(options.file).expanduser())

    def _read(self, path: Path) -> None:
        self.cues = read_cues(path, spoken=True)
        self._starts = [c.start for c in self.cues]
        self.path = path

    def check(self, ctx: JobContext) -> None:
        if self.path is None:
            self._read(beside_input(ctx))

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=True, memory_mb=1, max_concurrency=1, reason="one file")

    def translate(self, segments: list[Segment], ctx: JobContext) -> list[Segment]:
        return list(self.translate_stream(segments, ctx))

    def translate_stream(self, segments: Iterable[Segment], ctx: JobContext) -> Iterator[Segment]:
        """The matched lines, in start order, each stretch as soon as it is final: segments
        come in start order, so once the next segment starts, the cues that ended before it
        can take no later segment, and the segments so far can take no later cue — unless
        they reach past its start, or a cue around that start overlaps them. (A recogniser's
        segments often touch, and the next cue starts a little before the next segment.)"""
        if self.path is None:
            self._read(beside_input(ctx))
        pending: list[Segment] = []
        first = 0  # cues before this one are matched already
        last_end = None
        reach = 0.0  # the latest end of a pending segment
        for seg in segments:
            upto = bisect.bisect_left(self._starts, seg.start)
            if pending and reach < seg.start + self.options.min_overlap:
                cut = self._cut(pending, first, upto, seg.start)
                if cut is not None:
                    yield from self._match(pending, cut)
                    pending, first = [], first + len(cut)
            pending.append(seg)
            reach = seg.end if len(pending) == 1 else max(reach, seg.end)
            last_end = seg.end
        if last_end is not None and self.cues and self.cues[0].start > last_end + 5:
            raise VideodubError(f"{self.path}: no cue overlaps the speech (wrong file?)")
        if pending:
            yield from self._match(pending, self.cues[first:])

    def _cut(self, pending: list[Segment], first: int, upto: int, at: float) -> list[Cue] | None:
        """The cues that go with ``pending`` when the transcript is cut at ``at``: those, in
        start order, that have ended by then. None when a cue still running at ``at``
        overlaps a pending segment (it links them to what comes next). A cue that goes on
        to the next stretch starts no earlier than any line this one gives: a pending
        segment that starts after it and does not overlap it by ``min_overlap`` is shorter
        than that, and gets no cue."""
        cues = self.cues[first:upto]  # all started before ``at``
        done = 0
        while done < len(cues) and cues[done].end <= at:
            done += 1
        if any(_overlap(s.start, s.end, c.start, c.end) >= self.options.min_overlap
               for c in cues[done:] for s in pending):
            return None
        return cues[:done]

    def _match(self, segments: list[Segment], cues: list[Cue]) -> list[Segment]:
        """Segments and the cues around them, matched by overlap (see the module's doc)."""
        min_overlap = self.options.min_overlap
        n_seg = len(segments)
        parent = list(range(n_seg + len(cues)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        best_cue: dict[int, tuple[float, int]] = {}
        for i, seg in enumerate(segments):
            for j, cue in enumerate(cues):
                ov = _overlap(seg.start, seg.end, cue.start, cue.end)
                if ov >= min_overlap:
                    parent[find(i)] = find(n_seg + j)
                    if ov > best_cue.get(i, (0.0, -1))[0]:
                        best_cue[i] = (ov, j)

        groups: dict[int, tuple[list[int], list[int]]] = {}
        for i in range(n_seg):
            groups.setdefault(find(i), ([], []))[0].append(i)
        for j in range(len(cues)):
            groups.setdefault(find(n_seg + j), ([], []))[1].append(j)

        out: list[Segment] = []
        for seg_ids, cue_ids in groups.values():
            if len(seg_ids) == 1 and len(cue_ids) == 1:
                seg = segments[seg_ids[0]]
                seg.target_text = cues[cue_ids[0]].text
                out.append(seg)
                continue
            for j in cue_ids:
                out.append(self._cue_segment(cues[j], j, segments, seg_ids, best_cue))
            # A segment no cue covers has no translation: it is left silent (not dubbed).
        out.sort(key=lambda s: s.start)
        return out

    @staticmethod
    def _cue_segment(cue: Cue, j: int, segments: list[Segment], seg_ids: list[int],
                     best_cue: dict[int, tuple[float, int]]) -> Segment:
        source = " ".join(segments[i].source_text for i in seg_ids if best_cue.get(i, (0, -1))[1] == j)
        return Segment(id=-1, start=cue.start, end=cue.end, source_text=source,
                       target_text=cue.text, flags=["from_subtitle_cue"])


def beside_input(ctx: JobContext) -> Path:
    """The subtitle file beside the input for the target language (``talk.es.srt``,
    ``talk.es.vtt``; ``talk.pt-BR.srt`` or ``talk.pt.srt`` for pt-br), names compared without
    case; a one-line error naming what was looked for when there is none."""
    given = ctx.input or ""
    if not given or is_url(given):
        raise VideodubError("translate=subtitles: set translate.file (a link has no subtitle "
                            "file beside it)")
    source = Path(given).expanduser()
    langs = dict.fromkeys([ctx.target_lang.lower(), primary(ctx.target_lang.lower())])
    wanted = [f"{source.stem}.{lang}{ext}".lower() for lang in langs for ext in (".srt", ".vtt")]
    try:
        present = {p.name.lower(): p for p in source.parent.iterdir() if p.is_file()}
    except OSError:
        present = {}
    for name in wanted:
        if name in present:
            return present[name]
    raise VideodubError(f"translate=subtitles: no translate.file given, and no "
                        f"{source.stem}.{ctx.target_lang}.srt or .vtt beside {source.name}")


@hookimpl
def register_translators(register):
    register("subtitles", SubtitleTranslator, SubtitlesOptions,
             description="An existing translated SRT/VTT file, matched to the speech by time.")
