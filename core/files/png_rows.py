"""A PNG written a band of rows at a time: exports whose picture would be too large to hold at once (a strip of
16 stages of 4096 px is 67,000 x 4,600 px, 1.2 GB as a Pillow image) hold one band of it instead.

8-bit grey or RGB, not interlaced. Each row gets the filter libpng and Pillow choose by default (of the five,
the one whose bytes, read as signed, sum to the least magnitude), then one zlib stream at zlib's default level
(Pillow's too) is cut into IDAT chunks. Any PNG reader gives back the rows exactly as written.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np
from numba import njit

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHUNK = 1 << 18  # bytes of compressed data per IDAT chunk


@njit(nogil=True, cache=True)
def _filter_rows(rows, above, bpp, out):  # pragma: no cover
    """out[r] = the filter type and the filtered bytes of rows[r] (n, stride) uint8, the row above the first
    being `above` (zeros at the top of the image); out (n, stride + 1) uint8. Filters 0-4 of the PNG spec
    (none, sub, up, average, Paeth); the one whose bytes, as signed values, sum to the least magnitude."""
    n, stride = rows.shape
    trial = np.empty(stride, np.uint8)
    for r in range(n):
        row = rows[r]
        up = above if r == 0 else rows[r - 1]
        best = -1
        best_sum = 0
        for f in range(5):
            total = 0
            for i in range(stride):
                x = np.int32(row[i])
                a = np.int32(row[i - bpp]) if i >= bpp else 0
                b = np.int32(up[i])
                c = np.int32(up[i - bpp]) if i >= bpp else 0
                if f == 0:
                    v = x
                elif f == 1:
                    v = x - a
                elif f == 2:
                    v = x - b
                elif f == 3:
                    v = x - (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    v = x - (a if pa <= pb and pa <= pc else (b if pb <= pc else c))
                v &= 255
                trial[i] = v
                total += v if v < 128 else 256 - v
            if best < 0 or total < best_sum:
                best, best_sum = f, total
                out[r, 0] = f
                out[r, 1:] = trial


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


class PngRows:
    """Writes a width x height PNG with `channels` (1: grey, 3: RGB) to the binary file `f`: the header at once,
    then write() the rows top to bottom in bands of any height ((n, width, channels) or (n, width) uint8),
    then close(). Memory: one band and its filtered copy."""

    def __init__(self, f: BinaryIO, width: int, height: int, channels: int) -> None:
        if channels not in (1, 3):
            raise ValueError(f"a PNG of rows is grey or RGB (1 or 3 channels), got {channels}")
        self.f, self.width, self.height, self.channels = f, width, height, channels
        self.rows_left = height
        self._above = np.zeros(width * channels, np.uint8)
        self._zip = zlib.compressobj(6)
        self._pending = bytearray()
        f.write(SIGNATURE)
        f.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)))

    def write(self, rows: np.ndarray) -> None:
        if (rows.dtype != np.uint8 or rows.ndim not in (2, 3) or rows.shape[1] != self.width
                or int(np.prod(rows.shape[2:])) != self.channels):
            raise ValueError(f"rows must be uint8 (n, {self.width}, {self.channels}), got {rows.dtype} {rows.shape}")
        if rows.shape[0] > self.rows_left:
            raise ValueError(f"{rows.shape[0]} rows given, {self.rows_left} left of the image")
        flat = np.ascontiguousarray(rows).reshape(rows.shape[0], self.width * self.channels)
        filtered = np.empty((flat.shape[0], flat.shape[1] + 1), np.uint8)
        _filter_rows(flat, self._above, self.channels, filtered)
        self._above = flat[-1].copy()
        self.rows_left -= rows.shape[0]
        self._pending += self._zip.compress(filtered)
        self._flush(CHUNK)

    def _flush(self, at_least: int) -> None:
        while len(self._pending) >= max(at_least, 1):
            part = bytes(self._pending[:CHUNK])
            del self._pending[:CHUNK]
            self.f.write(_chunk(b"IDAT", part))

    def close(self) -> None:
        """The end of the image (every row must have been written)."""
        if self.rows_left:
            raise ValueError(f"{self.rows_left} rows of the image were not written")
        self._pending += self._zip.flush()
        self._flush(0)
        self.f.write(_chunk(b"IEND", b""))
