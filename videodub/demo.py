"""The offline demo: make a short English talk video, then dub it into Spanish with the
translated subtitles that come with it. Prints where the result is.

    python -m videodub.demo [outputs/demo]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from videodub.testing.samples import make_talk, write_translation_srt


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/demo").resolve()
    out.mkdir(parents=True, exist_ok=True)
    video = out / "talk.mp4"
    script = make_talk(video)
    subs = write_translation_srt(script, out / "talk.es.given.srt")
    print(f"sample video: {video}", flush=True)
    cmd = [sys.executable, "-m", "videodub", f"input={video}", "target_lang=es",
           "translate=subtitles", f"translate.file={subs}", f"hydra.run.dir={out / 'run'}"]
    print("running: python -m videodub " + " ".join(cmd[3:]), flush=True)
    sys.exit(subprocess.call(cmd))


if __name__ == "__main__":
    main()
