"""A file in another encoding turned into a UTF-8 copy, in pieces decoded side by side.

Contract: `to_utf8(source, target, codec, pieces)` writes the UTF-8 text of `source`,
decoded with `codec`, to the new file `target` and returns the SHA-256 of `source`'s bytes;
None when a byte does not decode or a file cannot be read or written (`target` is then
incomplete: the caller drops it). The codec must be one whose line feed is a single byte
that is never part of a character (GB18030): the file is cut after line feeds into at most
`pieces` pieces, each decoded alone by a forked process (Python's decoders hold the GIL),
so the copy is the same bytes whatever the number of pieces, and fails exactly when
decoding the whole file would.
"""

from __future__ import annotations

import codecs
import hashlib
import multiprocessing
import os
from pathlib import Path

BLOCK = 1 << 22  # bytes read, decoded and written at a time
PIECE_MIN_BYTES = 16 << 20  # a smaller piece is decoded faster than a process starts


def to_utf8(source: Path, target: str, codec: str, pieces: int) -> str | None:
    try:
        size = os.path.getsize(source)
        cuts = _cuts(source, size, max(1, min(pieces, size // PIECE_MIN_BYTES)))
        parts = [f"{target}.{k}" for k in range(1, len(cuts) - 1)]
        workers = []
        if parts and "fork" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("fork")
            workers = [context.Process(target=_decode_piece, args=(source, part, codec, cuts[k + 1], cuts[k + 2]),
                                       daemon=True) for k, part in enumerate(parts)]
            for w in workers:
                w.start()
        try:
            with open(target, "wb") as out:
                ok = _decode(source, out, codec, 0, cuts[1] if workers else size)
            if not workers:
                return _sha256(source) if ok else None
            digest = _sha256(source)  # while the workers decode (hashlib lets go of the GIL)
            for w in workers:
                w.join()
            if not ok or any(w.exitcode != 0 for w in workers):
                return None
            with open(target, "ab") as out:
                for part in parts:
                    with open(part, "rb") as fh:
                        while block := fh.read(BLOCK):
                            out.write(block)
            return digest
        finally:
            for w in workers:
                if w.is_alive():
                    w.terminate()
                w.join()
            for part in parts:
                if os.path.exists(part):
                    os.unlink(part)
    except OSError:
        return None


def _cuts(source: Path, size: int, pieces: int) -> list[int]:
    """Offsets 0 < ... < size: each cut just after the first line feed at or past k/pieces of
    the file (fewer cuts when the lines are longer than a piece)."""
    cuts = [0]
    with open(source, "rb") as fh:
        for k in range(1, pieces):
            at = max(cuts[-1], size * k // pieces)
            fh.seek(at)
            while (block := fh.read(1 << 16)) and (found := block.find(b"\n")) < 0:
                at += len(block)
            if not block:
                break
            at += found + 1
            if at < size:
                cuts.append(at)
    return cuts + [size]


def _decode(source: Path, out, codec: str, start: int, end: int) -> bool:
    """Bytes start..end of `source` decoded and written to `out` as UTF-8; False when a
    byte does not decode."""
    decoder = codecs.getincrementaldecoder(codec)()
    try:
        with open(source, "rb") as fh:
            fh.seek(start)
            left = end - start
            while left > 0 and (block := fh.read(min(BLOCK, left))):
                left -= len(block)
                out.write(decoder.decode(block).encode("utf-8"))
            out.write(decoder.decode(b"", final=True).encode("utf-8"))
    except UnicodeError:
        return False
    return True


def _decode_piece(source: Path, part: str, codec: str, start: int, end: int) -> None:
    """In a forked process: one piece into its own file; the exit code says whether it decoded."""
    try:
        with open(part, "wb") as out:
            ok = _decode(source, out, codec, start, end)
    except OSError:  # the parent gives up on the copy (None), as for a byte that does not decode
        ok = False
    raise SystemExit(0 if ok else 1)


def _sha256(source: Path) -> str:
    digest = hashlib.sha256()
    with open(source, "rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()
