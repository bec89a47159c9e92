"""How a value is shown and edited: text, JSON, YAML or hex, with validation before staging.

Bytes that are not UTF-8 text are shown as hex and only ever edited as hex, so opening and
saving a binary value never changes it.
"""

from __future__ import annotations

import binascii
import json
import re
from enum import Enum

from etcdadmin.core.config.documents import InvalidYAML, load_yaml
from etcdadmin.core.errors import EtcdAdminError, MappingError


class ValueFormat(Enum):
    TEXT = "Text"
    JSON = "JSON"
    YAML = "YAML"
    HEX = "Hex"


class ValueFormatError(EtcdAdminError):
    """The edited text is not valid in the chosen format; nothing was staged."""


# Control characters, and what a text editor would silently change: a carriage return (CRLF
# becomes LF), NEL, the Unicode line and paragraph separators, the non-breaking space.
_PRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f\x85\xa0\u2028\u2029]")


def is_text(value: bytes) -> bool:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not _PRINTABLE.search(text)


def detect(value: bytes) -> ValueFormat:
    """The format a value opens in: hex for binary, JSON when it parses as a JSON document."""
    if not is_text(value):
        return ValueFormat.HEX
    stripped = value.strip()
    if stripped[:1] in (b"{", b"["):
        try:
            json.loads(stripped)
            return ValueFormat.JSON
        except ValueError:
            pass
    return ValueFormat.TEXT


def to_text(value: bytes, fmt: ValueFormat) -> str:
    if fmt is ValueFormat.HEX:
        raw = value.hex()
        return "\n".join(
            " ".join(raw[i + j : i + j + 2] for j in range(0, min(32, len(raw) - i), 2))
            for i in range(0, len(raw), 32)
        )
    if not is_text(value):
        raise ValueFormatError("this value is binary: it can only be shown and edited as hex")
    return value.decode("utf-8")


def from_text(text: str, fmt: ValueFormat) -> bytes:
    """The bytes to store for edited `text`, after validating it in `fmt`."""
    if fmt is ValueFormat.HEX:
        try:
            return binascii.unhexlify(re.sub(r"\s+", "", text))
        except (binascii.Error, ValueError):
            raise ValueFormatError(
                "not valid hex: use pairs of 0-9/a-f digits (spaces and line breaks are ignored)"
            ) from None
    if fmt is ValueFormat.JSON:
        try:
            json.loads(text)
        except ValueError as exc:
            raise ValueFormatError(f"not valid JSON: {exc}") from None
    elif fmt is ValueFormat.YAML:
        try:
            load_yaml(text, "the YAML")
        except InvalidYAML as exc:
            where = f" at line {exc.line}, column {exc.column}" if exc.line else ""
            raise ValueFormatError(f"not valid YAML{where}") from None
        except MappingError as exc:  # past the limits every YAML read by the project obeys
            raise ValueFormatError(str(exc)) from None
    return text.encode("utf-8")


def preview(value: bytes | None, limit: int | None = None) -> str:
    """A value in one cell or line: its text, or 0x-hex when it is not plain text."""
    if value is None:
        return "(absent)"
    text = value.decode("utf-8") if is_text(value) else "0x" + value.hex()
    return text if limit is None or len(text) <= limit else text[:limit] + "…"
