"""Encodings of CSV input: which codec a file's bytes are in, and decoding that keeps bad bytes.

`detect_encoding(data)` gives (codec, BOM length): a BOM decides (UTF-8, UTF-16 LE/BE);
without one, NUL bytes on alternate positions mean UTF-16; otherwise UTF-8 if the file
decodes, or if most of its non-ASCII lines do; else GB18030. Decoding with the error
handler `ESCAPE_ERRORS` keeps each undecodable byte as a lone surrogate (`SURROGATE`
finds them, so only the rows holding one are rejected); `printable` makes such text
safe to report.
"""

from __future__ import annotations

import codecs
import re

ESCAPE_ERRORS = "ledger.escape"


def _escape_undecodable(exc: UnicodeError):
    """Decode error handler: keep bad bytes as lone surrogates U+DC00+byte.

    A strict decoder never yields lone surrogates, so a row containing one is known
    to hold undecodable bytes. One byte at a time, so a bad lead byte never swallows
    the comma or newline after it; UTF-16 must skip whole code units to stay aligned.
    """
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    end = exc.end if "16" in exc.encoding else exc.start + 1
    return "".join(chr(0xDC00 + b) for b in exc.object[exc.start:end]), end


codecs.register_error(ESCAPE_ERRORS, _escape_undecodable)
SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    return SURROGATE.sub("\ufffd", text)


def detect_encoding(data: bytes) -> tuple[str, int]:
    """(codec, BOM length) of a CSV file's bytes."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"),
                       (codecs.BOM_UTF16_LE, "utf-16-le"),
                       (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return codec, len(bom)
    utf16 = utf16_without_bom(data[:4096])
    if utf16:
        return utf16, 0
    return ("utf-8" if _mostly_utf8(data) else "gb18030"), 0


def utf16_without_bom(sample: bytes) -> str | None:
    # ASCII (the header at least) in UTF-16 puts a NUL in every other byte.
    pairs = len(sample) // 2
    even, odd = sample[0:pairs * 2:2].count(0), sample[1:pairs * 2:2].count(0)
    if odd >= max(2, pairs // 10) and even * 4 < odd:
        return "utf-16-le"
    if even >= max(2, pairs // 10) and odd * 4 < even:
        return "utf-16-be"
    return None


def _mostly_utf8(data: bytes, sample_lines: int = 2000) -> bool:
    if _is_utf8(data):
        return True
    # GBK text is practically never valid UTF-8, so the majority of non-ASCII lines
    # tells a GBK export from a UTF-8 file with a few damaged lines.
    good = bad = 0
    start = 0
    while start < len(data) and good + bad < sample_lines:
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        line = data[start:end]
        start = end + 1
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            good += 1
        except UnicodeDecodeError:
            bad += 1
    return good > bad


def _is_utf8(data: bytes) -> bool:
    return decodes(data, 0, "utf-8")


def decodes(data: bytes, start: int, codec: str, chunk: int = 1 << 20) -> bool:
    """Whether data[start:] decodes strictly, without building the whole text."""
    decoder = codecs.getincrementaldecoder(codec)()
    view = memoryview(data)
    try:
        for i in range(start, len(view), chunk):
            decoder.decode(view[i:i + chunk])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True
