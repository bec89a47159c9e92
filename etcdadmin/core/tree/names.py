"""How keys are shown and typed: UTF-8 text, with binary bytes escaped unambiguously.

One place for it, so the tree, the editor, dialogs and error messages show a key the same way
and what an operator types back (`\\xNN` for a raw byte) is exactly the key meant.
"""

from __future__ import annotations

import re

from etcdadmin.core.errors import EtcdAdminError


class SegmentSyntaxError(EtcdAdminError, ValueError):
    """A typed key name has a backslash that starts no escape: write ``\\`` for a backslash."""


def display_segment(segment: bytes) -> str:
    r"""How a key segment is shown: its UTF-8 text, escaped where text would be ambiguous.

    Bytes that are not valid UTF-8 and characters that do not print (controls, NUL, format
    characters) become ``\xNN`` per byte and a backslash becomes ``\\``, so binary keys show
    unambiguously and `parse_display_segment` gives the exact bytes back.
    """
    text = segment.decode("utf-8", errors="surrogateescape")
    if text.isprintable() and "\\" not in text:
        return text
    parts: list[str] = []
    for char in text:
        if char == "\\":
            parts.append("\\\\")
        elif "\udc80" <= char <= "\udcff":
            parts.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif char.isprintable():
            parts.append(char)
        else:
            parts.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8"))
    return "".join(parts)


_ESCAPE = re.compile(r"\\(?:\\|x([0-9a-fA-F]{2}))|\\")


def parse_display_segment(text: str) -> bytes:
    r"""The bytes a displayed (or typed) segment stands for: the inverse of `display_segment`.

    ``\xNN`` is one byte, ``\\`` a backslash, anything else its UTF-8 encoding. A backslash
    starting neither escape raises `SegmentSyntaxError` rather than guessing.
    """
    if "\\" not in text:
        return text.encode("utf-8", "surrogateescape")
    out = bytearray()
    done = 0
    for match in _ESCAPE.finditer(text):
        out += text[done : match.start()].encode("utf-8", "surrogateescape")
        if match.group(0) == "\\":
            raise SegmentSyntaxError(
                f"A backslash at position {match.start()} starts no escape: write \\\\ for a "
                "backslash or \\xNN for a byte."
            )
        out += b"\\" if match.group(1) is None else bytes([int(match.group(1), 16)])
        done = match.end()
    out += text[done:].encode("utf-8", "surrogateescape")
    return bytes(out)
