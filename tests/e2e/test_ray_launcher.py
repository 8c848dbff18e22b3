"""Many inputs on Ray (``hydra/launcher=ray``, hydra-ray-launcher): a local Ray with two CPUs,
started by the launcher for this test and gone with it, runs the two jobs in two worker
processes, each sized to the one CPU Ray gives it; outputs, history and the summary intact.
A Ray address that does not answer is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_http import closed_port

from videodub.testing.samples import ENGLISH_TALK, make_talk

pytest.importorskip("hydra_plugins.hydra_ray_launcher",
                    reason="hydra-ray-launcher comes with the ray extra (part of the test extra)")


@pytest.mark.slow
def test_two_inputs_run_in_two_ray_workers_sized_to_their_cpus(tmp_path):
    inputs = tmp_path / "inputs"
    make_talk(inputs / "one.mp4", ENGLISH_TALK[:1], pause=0.8)
    make_talk(inputs / "two.mp4", ENGLISH_TALK[1:2], pause=0.8)
    sweep = tmp_path / "sweep"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)  # a local Ray of its own, never a cluster from elsewhere
    proc = subprocess.Popen(
        [sys.executable, "-m", "videodub", f"input={inputs}", "target_lang=en", "profile=speed",
         "hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2",
         "+hydra.launcher.ray.init.include_dashboard=false",
         "+hydra.launcher.ray.remote.num_cpus=1", f"hydra.sweep.dir={sweep}",
         f"cache_dir={tmp_path / 'cache'}", "runner.display=plain"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr[-3000:]
    assert "2 inputs: 2 dubbed, 0 failed" in stdout, stdout[-2000:]
    rows = json.loads((sweep / "summary.json").read_text())
    pids = set()
    for row in rows:
        run = Path(row["run_dir"])
        report = json.loads((run / "report.json").read_text())
        assert report["status"] == "ok"
        assert Path(row["video"]).stat().st_size > 0
        assert (run / ".hydra" / "overrides.yaml").exists()
        # Ray counts CPUs without pinning them: the job must size itself to the one it got.
        assert report["machine"]["usable_cpus"] == 1, report["machine"]
        assert "Ray task given 1 CPU" in report["machine"]["cpu_reason"]
        pids.add(report["job"]["pid"])
    assert len(pids) == 2, "both jobs ran in one process"
    assert proc.pid not in pids, "a job ran in the launching process, not in a Ray worker"


def test_a_ray_address_that_does_not_answer_is_one_line(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    address = f"127.0.0.1:{closed_port()}"
    proc = subprocess.run(
        [sys.executable, "-m", "videodub", "-m", f"input={tmp_path / 'a.mp4'}", "target_lang=en",
         "hydra/launcher=ray", f"+hydra.launcher.ray.init.address={address}"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: the Ray cluster at {address} does not answer (Connection refused); start one "
        f"with `ray start --head` or fix hydra.launcher.ray.init.address"]
