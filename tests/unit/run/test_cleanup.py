"""The work folder of a failed or interrupted job goes, even while a stage that has not yet
seen the cancellation is still writing in it."""

from __future__ import annotations

import threading
import time

from videodub.run.runner import remove_work


def test_the_work_folder_goes_though_a_stage_still_writes_in_it(tmp_path):
    work = tmp_path / "work"
    (work / "clips").mkdir(parents=True)
    stop = threading.Event()

    def late_stage() -> None:  # writes clips for 0.3 s more, then sees the cancellation
        k = 0
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            try:
                (work / "clips" / f"{k}.wav").write_bytes(b"x" * 1000)
            except FileNotFoundError:
                pass  # the folder is gone: the stage's write fails, as a real one would
            k += 1
        stop.set()

    writer = threading.Thread(target=late_stage)
    writer.start()
    time.sleep(0.02)
    remove_work(work)
    writer.join()
    assert stop.is_set() and not work.exists()
