"""History records built directly (a real run is not what these tests are about)."""

from __future__ import annotations

from typing import Any

from videodub.perf.record import ProviderFigures, RunRecord, StageFigures

IMPLS = {"ingest": "local", "transcribe": "faster_whisper", "translate": "subtitles",
         "align": "length", "tts": "espeak", "mix": "duck", "mux": "ffmpeg"}
MACHINE = {"usable_cpus": 2, "memory_total_mb": 8192, "memory_available_mb": 4096, "gpu": None}


def make_record(n: int, walls: dict[str, float] | None = None, *, status: str = "ok",
                profile: str = "balanced", machine_class: str = "2cpu-8g-nogpu-x86_64",
                media_s: float = 60.0, rss: float = 300.0, providers: list[ProviderFigures]
                | None = None, quality: dict[str, float] | None = None,
                versions: dict[str, str] | None = None, input_hash: str = "abc",
                **extra: Any) -> RunRecord:
    walls = walls or {"transcribe": 4.0, "tts": 2.0, "mix": 1.0}
    stages = [StageFigures(stage=s, impl=IMPLS[s], wall_s=w, cpu_s=w / 2, items=6, workers=1,
                           worker_reason="implementation limit 1", peak_rss_mb=rss,
                           cached=False) for s, w in walls.items()]
    return RunRecord(
        run_id=f"run-{n}", started_at=f"2026-11-{1 + n % 28:02d}T10:00:{n % 60:02d}+00:00",
        status=status, error=None if status == "ok" else "boom", input="talk.mp4",
        input_hash=input_hash, media_s=media_s, segments=6, profile=profile,
        implementations=dict(IMPLS), versions=versions or {"videodub": "0.1.0"},
        config_hash="cfg", machine_class=machine_class, machine=dict(MACHINE),
        wall_s=sum(walls.values()), cpu_s=sum(walls.values()) / 2, peak_rss_mb=rss,
        cost_usd=None, stages=stages, providers=providers or [], quality=quality or {},
        timeline=[[0.0, 50.0, 200.0], [0.5, 90.0, rss]], **extra)
