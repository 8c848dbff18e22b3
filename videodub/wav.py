"""The WAV files a job writes, whatever their length.

A RIFF WAV's chunk sizes are 32-bit, so it holds at most 4 GiB of samples: 6.2 hours of the
48 kHz stereo 16-bit mixing audio, 3.1 hours of a 32-bit float stereo background. Past that
the writers this project uses fail or, worse, write a file that reads back short without a
word (libsndfile's ``WAV`` sets the sizes to 0xFFFFFFFF and its reader then stops at
536 870 911 frames; Python's ``wave`` raises at close; ffmpeg's WAV muxer writes sizes that
wrap). RF64 (EBU Tech 3306) is WAV with a ``ds64`` chunk of 64-bit sizes, read by libsndfile,
ffmpeg and PyAV alike. Files under the limit stay plain WAV:

- :class:`WavWriter`, for audio whose length is not known until it ends (ingest's extraction,
  read while it grows): the header reserves a ``JUNK`` chunk the size of ``ds64``, which
  becomes one at close if the data went past the limit (as ffmpeg's ``-rf64 auto`` does);
- :func:`wav_format`, soundfile's format for audio of a known length;
- :data:`FFMPEG_WAV`, the ffmpeg output arguments of a 16-bit WAV that may grow past it.
"""

from __future__ import annotations

import struct
from pathlib import Path

# What a RIFF size field holds; in RF64 the fields that cannot hold a size hold this.
RIFF_MAX = 0xFFFFFFFF
# Sample bytes past which a file is written as RF64. Below RIFF_MAX by room for the header's
# chunks (libsndfile adds PEAK and others) and for a length known only roughly in advance.
LIMIT = RIFF_MAX - (64 << 20)
DS64_SIZE = 28  # RIFF size, data size, sample count (64-bit each), table length (32-bit)
# ffmpeg output arguments: 16-bit PCM in a WAV that becomes RF64 if it outgrows RIFF.
FFMPEG_WAV = ("-c:a", "pcm_s16le", "-rf64", "auto", "-f", "wav")


def wav_format(frames: int, channels: int, sample_bytes: int) -> str:
    """soundfile's ``format`` for ``frames`` frames: ``"RF64"`` past what RIFF holds."""
    return "RF64" if frames * channels * sample_bytes > LIMIT else "WAV"


class WavWriter:
    """A 16-bit PCM WAV written as samples come: the header first (its sizes at
    :meth:`close`), so that a reader can follow the file as it grows (``GrowingWav``)."""

    HEADER = 12 + 8 + DS64_SIZE + 8 + 16 + 8  # RIFF..WAVE, JUNK/ds64, fmt, data's header

    def __init__(self, path: Path, rate: int, channels: int) -> None:
        self.path, self.rate, self.channels = Path(path), rate, channels
        self.data = 0  # sample bytes written
        self.file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self.file.write(self._header(0))

    def _header(self, data: int) -> bytes:
        block = 2 * self.channels
        fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, self.channels, self.rate,
                                    self.rate * block, block, 16)
        riff = self.HEADER - 8 + data
        if data <= LIMIT:
            return (b"RIFF" + struct.pack("<I", riff) + b"WAVE"
                    + b"JUNK" + struct.pack("<I", DS64_SIZE) + bytes(DS64_SIZE)
                    + fmt + b"data" + struct.pack("<I", data))
        return (b"RF64" + struct.pack("<I", RIFF_MAX) + b"WAVE"
                + b"ds64" + struct.pack("<IQQQI", DS64_SIZE, riff, data, data // block, 0)
                + fmt + b"data" + struct.pack("<I", RIFF_MAX))

    def write(self, samples: bytes) -> None:
        """Interleaved little-endian 16-bit samples."""
        self.file.write(samples)
        self.data += len(samples)

    def close(self) -> None:
        """Write the sizes (as RF64 past the limit) and close; the file is then whole."""
        if self.file.closed:
            return
        try:
            self.file.seek(0)
            self.file.write(self._header(self.data))
        finally:
            self.file.close()


def data_offset(head: bytes) -> int | None:
    """Where the samples start in a WAV (RIFF or RF64) whose first bytes are ``head``; None
    until the header up to the ``data`` chunk is there."""
    if head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return None
    at = 12
    while at + 8 <= len(head):
        chunk, size = head[at:at + 4], int.from_bytes(head[at + 4:at + 8], "little")
        if chunk == b"data":
            return at + 8
        at += 8 + size + (size & 1)
    return None
