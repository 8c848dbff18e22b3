"""A Spanish talk dubbed into English on the command line with the multilingual Whisper base
and no ``source_lang``: the language is detected, and the report, the subtitle files and the
video's original track say Spanish. And ``python -m videodub.whisper_models fetch``, which
readies models before going offline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import av
import pytest
import srt

from videodub.testing.samples import make_talk, write_translation_srt
from videodub.whisper_models import PACKAGED

from .conftest import cli_env

SPANISH = [("Bienvenidos a esta breve charla sobre videos para todos.",
            "Welcome to this short talk about videos for everyone."),
           ("Hoy veremos tres ideas sencillas.", "Today we will look at three simple ideas."),
           ("Gracias por mirar, y hasta la próxima.", "Thank you for watching, see you soon.")]


def words(text: str) -> set[str]:
    """Lower-case words without accents."""
    plain = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    return set(re.findall(r"[a-z]+", plain))


@pytest.mark.slow
def test_a_spanish_talk_is_detected_as_spanish_and_dubbed_into_english(run_cli, tmp_path):
    talk = tmp_path / "charla.mp4"
    script = make_talk(talk, SPANISH, lang="es")
    english = write_translation_srt(script, tmp_path / "charla.en.given.srt")

    run = run_cli(f"input={talk}", "target_lang=en", "translate=subtitles",
                  f"translate.file={english}", "transcribe.model=base", "profile=speed").check()

    report = run.report()
    assert report["job"]["source_lang"] == "es"
    assert any(n.startswith("transcribe: model base, beam 1, language es (detected, p=")
               for n in report["notes"]), report["notes"]
    heard = srt.parse((run.run_dir / "charla.es.srt").read_text(encoding="utf-8"))
    spoken = words(" ".join(text for text, _ in SPANISH))
    share = len(spoken & words(" ".join(c.content for c in heard))) / len(spoken)
    assert share >= 0.4, (share, [c.content for c in heard])
    dubbed = srt.parse((run.run_dir / "charla.en.srt").read_text(encoding="utf-8"))
    assert [" ".join(c.content.split("\n")) for c in dubbed] == [
        line.translation for line in script]
    with av.open(str(run.video)) as container:
        dub, original = container.streams.audio
        assert dub.metadata.get("language") == "eng"
        assert original.metadata.get("language") == "spa"


def fetch(*names: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "videodub.whisper_models", "fetch", *names],
                          capture_output=True, text=True, env=cli_env(**env), timeout=120)


def test_fetch_readies_the_packaged_base_and_says_what_it_cannot_fetch_offline(tmp_path):
    """Offline (and with an empty Hugging Face cache), base is the installed packaged copy,
    while small can only be named as missing, in one line and a non-zero exit."""
    proc = fetch("base", "small", env={"HF_HOME": str(tmp_path / "empty_hf_home")})
    assert proc.returncode == 1, proc.stderr
    base, small = proc.stdout.splitlines()
    folder = Path(base.removeprefix("base: "))
    assert folder.name == PACKAGED["base"].folder
    assert json.loads((folder / "config.json").read_text())["lang_ids"], "not multilingual"
    assert (folder / "model.bin").stat().st_size == 145217532
    assert small == ("error: Whisper model 'small' is not available offline and could not be "
                     "fetched (LocalEntryNotFoundError); fetch it while online: python -m "
                     "videodub.whisper_models fetch small; or use transcribe.model=bundled or a "
                     "local model directory")
