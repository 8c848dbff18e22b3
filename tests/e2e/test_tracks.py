"""Films come with several tracks: the speech may not be the first audio track, and the
other audio tracks and subtitles must survive the dub."""

from __future__ import annotations

import re

import av
import pytest

from videodub.testing.samples import ENGLISH_TALK


@pytest.mark.slow
def test_the_speech_track_is_dubbed_and_the_films_other_tracks_kept(run_cli, multitrack_talk,
                                                                    tmp_path):
    """source_lang=en picks the track tagged eng (the second; the first is a tone); the
    quality profile decodes the whole file first (subtitle tracks and all); the output keeps
    the tone track and the German subtitles after ours. A run that asks for the tone track
    does not reuse the talk's transcript from the cache: it finds no speech."""
    cache = tmp_path / "cache"
    run = run_cli(f"input={multitrack_talk}", "target_lang=en", "source_lang=en",
                  "translate=none", "profile=quality", cache_dir=cache).check()

    heard = set(re.findall(r"[a-z']+",
                           " ".join(s["source_text"] for s in run.segments()).lower()))
    said = set(re.findall(r"[a-z']+", " ".join(line for line, _ in ENGLISH_TALK[:2]).lower()))
    assert len(heard & said) >= 0.8 * len(said), heard
    with av.open(str(run.video)) as container:
        audio = [(s.metadata.get("language"), s.metadata.get("name"))
                 for s in container.streams.audio]
        subtitles = [s.metadata.get("language") for s in container.streams.subtitles]
    assert audio == [("eng", "Dub (en)"), ("eng", "Original"), ("fre", "Commentary")]
    assert subtitles == ["eng", "ger"]
    assert "ingest: audio track 1 (eng) of 2 is dubbed (ingest.audio_track)" in \
        run.report()["notes"]

    tone = run_cli(f"input={multitrack_talk}", "target_lang=en", "source_lang=en",
                   "translate=none", "profile=quality", "ingest.audio_track=0", cache_dir=cache)
    assert tone.returncode == 2, tone.describe()
    assert tone.error_lines == ["error: no speech found in multi.mkv"]
