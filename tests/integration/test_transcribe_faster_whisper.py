"""transcribe=faster_whisper on real speech: ``../shared/media/jfk.flac`` through videodub's
own ingest and transcribe stages, in this process (skipped where the file is absent)."""

from __future__ import annotations

import re

import pytest

from videodub.api import compose_job
from videodub.model import JobContext
from videodub.plugins import collect

# The reference text in ../shared/media/README.md.
JFK_REFERENCE = ("And so, my fellow Americans, ask not what your country can do for you; "
                 "ask what you can do for your country.")


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


@pytest.mark.needs_jfk
def test_jfk_transcription(jfk_flac, tmp_path):
    """Real speech, through videodub's own ingest and transcribe stages."""
    job = compose_job([f"input={jfk_flac}", "target_lang=en", "transcribe.model=bundled"])
    registry = collect()

    def stage(name):
        return registry.get(name, job.stages[name].impl).create(job.stages[name])

    ctx = JobContext(tmp_path, "en", None)
    media = stage("ingest").ingest(jfk_flac, ctx)
    assert media.duration == pytest.approx(11.0, abs=0.2)
    assert not media.has_video
    segments = list(stage("transcribe").transcribe(media, ctx))
    assert ctx.source_lang == "en"
    assert all(0 <= s.start < s.end <= media.duration for s in segments), segments
    heard = " ".join(s.source_text for s in segments)
    assert words(heard) == words(JFK_REFERENCE), heard
