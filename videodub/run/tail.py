"""What is left after the last clip, kept short: the mixer encodes the dub track the muxer's
way while it mixes, and the muxer copies it.

Without this the AAC encode of the whole track runs in mux, after the mix, after the last
clip: on long media the largest part of the job's wall. With it the encoder works while
clips are still being synthesized, and what remains at the end is the last stretch of the
mix and a copy into the MP4. Both sides are optional capabilities (``EncodesDub`` on the
muxer, ``StreamsEncoded`` on the mixer); a pair without them runs as before.
"""

from __future__ import annotations

import logging
from typing import Any

from videodub.model import EncodesDub, MixesSurround, StreamsEncoded

log = logging.getLogger(__name__)


def connect_tail(stages: dict[str, Any]) -> bool:
    """Hand the muxer's dub encoding to the mixer when both can; True when they were."""
    mixer, muxer = stages.get("mix"), stages.get("mux")
    if not isinstance(mixer, StreamsEncoded) or not isinstance(muxer, EncodesDub):
        return False
    encoding = muxer.dub_encoding()
    if encoding is None:
        return False
    mixer.encode_as(encoding)
    log.info("tail: the mixer encodes the dub track as it mixes (%s)", " ".join(encoding.args))
    return True


def keeps_surround(stages: dict[str, Any]) -> bool:
    """Whether the mixer dubs a surround original in its own channels (ingest then extracts
    them); asked after :func:`connect_tail`, so the muxer's encoding has its say."""
    mixer = stages.get("mix")
    return isinstance(mixer, MixesSurround) and mixer.keeps_surround()
