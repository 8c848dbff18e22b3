"""Which of an input's audio tracks is dubbed (``ingest.audio_track``): films carry several
(languages, a commentary), and the speech is not always the first."""

from __future__ import annotations

from videodub.errors import VideodubError
from videodub.languages import primary, tag_language


def check_track_choice(choice: str) -> None:
    value = str(choice).strip().lower()
    if not (value == "auto" or value.isdigit() or tag_language(value)):
        raise ValueError(f"audio_track must be auto, a track number (0 is the first) or a "
                         f"language such as es or spa, got {choice!r}")


def pick_audio_track(audio: list[dict], choice: str, source_lang: str | None,
                     name: str) -> int:
    """Which of the input's audio tracks (``audio``, as :func:`~videodub.media.probe` lists
    them) to dub, by ``ingest.audio_track``; a one-line error when it names none."""
    value = str(choice).strip().lower()
    langs = [tag_language(a.get("language")) for a in audio]

    def listed() -> str:
        return ", ".join(f"{i} ({a.get('language') or 'untagged'})" for i, a in enumerate(audio))

    if value.isdigit():
        if int(value) >= len(audio):
            raise VideodubError(f"{name} has {len(audio)} audio track(s): {listed()}; "
                                f"ingest.audio_track={value} names none")
        return int(value)
    if value == "auto":
        wanted = primary(source_lang) if source_lang else None
        if wanted and wanted in langs:
            return langs.index(wanted)
        marked = [i for i, a in enumerate(audio) if a.get("default")]
        return marked[0] if len(marked) == 1 else 0  # the one the file plays by default
    wanted = tag_language(value)
    if wanted not in langs:
        raise VideodubError(f"{name} has no audio track in {value}: its tracks are {listed()}; "
                            f"set ingest.audio_track to a number or another language")
    return langs.index(wanted)
