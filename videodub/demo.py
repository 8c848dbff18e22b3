"""The offline demo: make a short English talk video, then dub it into Spanish with the
translated subtitles that come with it. Prints where the result is.

    python -m videodub.demo [outputs/demo] [profile=speed ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from videodub.testing.samples import make_talk, write_translation_srt

DEFAULT_OUT = "outputs/demo"


def parse(argv: list[str]) -> tuple[Path, list[str]]:
    """The demo's folder and the config overrides (``key=value``) passed on to the run."""
    parser = argparse.ArgumentParser(
        prog="python -m videodub.demo",
        description="Make a short English talk video and dub it into Spanish, offline.")
    parser.add_argument("args", nargs="*", metavar="[FOLDER] [KEY=VALUE ...]",
                        help=f"where the talk and the run go (default {DEFAULT_OUT}), then "
                             "config overrides for the run, e.g. profile=speed")
    args = parser.parse_args(argv).args
    folders = [a for a in args if "=" not in a]
    if len(folders) > 1:
        parser.error(f"one folder at most, got {' '.join(folders)}")
    out = Path(folders[0] if folders else DEFAULT_OUT).resolve()
    return out, [a for a in args if "=" in a]


def command(out: Path, video: Path, subtitles: Path, overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "videodub", f"input={video}", "target_lang=es",
            "translate=subtitles", f"translate.file={subtitles}",
            f"hydra.run.dir={out / 'run'}", *overrides]


def main(argv: list[str] | None = None) -> None:
    out, overrides = parse(sys.argv[1:] if argv is None else argv)
    out.mkdir(parents=True, exist_ok=True)
    video = out / "talk.mp4"
    script = make_talk(video)
    subs = write_translation_srt(script, out / "talk.es.given.srt")
    print(f"sample video: {video}", flush=True)
    cmd = command(out, video, subs, overrides)
    print("running: python -m videodub " + " ".join(cmd[3:]), flush=True)
    sys.exit(subprocess.call(cmd))


if __name__ == "__main__":
    main()
