"""Everything that can fail before media work, checked before any of it starts."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from videodub.model import STAGES, Checked, JobContext, KnowsSourceLanguage
from videodub.providers.usage import Estimate, estimate

log = logging.getLogger(__name__)


def preflight(stages: dict[str, Any], ctx: JobContext, input_path: str,
              prices: dict[str, Any]) -> tuple[float, Estimate | None]:
    """The input first (ingest's check probes it and the disk), the source language where the
    transcriber knows it already (an English-only model), then every other stage's check at once (voices, models, provider keys and endpoints); then the cost estimate.
    Returns the seconds it took and the estimate (None when the media length is unknown)."""
    t0 = time.monotonic()
    ctx.input_path = Path(input_path)
    ctx.input = input_path
    if isinstance(stages["ingest"], Checked):
        stages["ingest"].check(ctx)
    if ctx.source_lang is None and isinstance(stages["transcribe"], KnowsSourceLanguage):
        ctx.source_lang = stages["transcribe"].source_language(ctx)
    checks = [stages[s] for s in STAGES[1:] if isinstance(stages[s], Checked)]
    if checks:
        with ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="videodub-check") as pool:
            for fut in [pool.submit(stage.check, ctx) for stage in checks]:
                fut.result()
    seconds = time.monotonic() - t0
    log.info("preflight: %.2f s", seconds)
    return seconds, (estimate(stages, ctx.input_duration, prices) if ctx.input_duration else None)
