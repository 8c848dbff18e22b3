"""translate=subtitles: use an existing translated SRT/WebVTT file as the translation.

Cues are matched to the transcribed segments by time overlap. Where one segment overlaps
exactly one cue (and that cue no other segment), the segment keeps its timing and takes the
cue's text. Elsewhere (a cue spanning several segments, a segment split over several cues,
a cue over no speech) the cues themselves become the target segments, timed as the file says.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING

from videodub import hookimpl
from videodub.errors import VideodubError
from videodub.model import JobContext, Segment, WorkerHint
from videodub.subtitles import Cue, read_cues


@dataclass
class SubtitlesOptions:
    # The translated .srt or .vtt file.
    file: str = MISSING
    # Seconds two intervals must share to count as overlapping.
    min_overlap: float = 0.1


def _overlap(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    return min(a_end, b_end) - max(a_start, b_start)


class SubtitleTranslator:
    batch_size = None  # matching by overlap needs the whole transcript

    def __init__(self, options) -> None:
        self.options = options
        self.cues = read_cues(Path(options.file).expanduser())

    def worker_hint(self) -> WorkerHint:
        return WorkerHint(cpu_bound=True, memory_mb=1, max_concurrency=1, reason="one file")

    def translate(self, segments: list[Segment], ctx: JobContext) -> list[Segment]:
        cues = self.cues
        if segments and cues and cues[0].start > segments[-1].end + 5:
            raise VideodubError(f"{self.options.file}: no cue overlaps the speech (wrong file?)")
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
                if ov >= self.options.min_overlap:
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


@hookimpl
def register_translators(register):
    register("subtitles", SubtitleTranslator, SubtitlesOptions,
             description="An existing translated SRT/VTT file, matched to the speech by time.")
