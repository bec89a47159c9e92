"""Encrypting backup objects to age recipients (X25519 `age1...` or `ssh-rsa`/`ssh-ed25519`).

pyrage's `encrypt_io(reader, writer, recipients)` streams: it pulls the plaintext from a
reader's `read` and pushes age's 64 KiB chunks to a writer's `write` (measured: 300 MB
through it with a peak RSS of 12 MB). So each object is ONE age file, which `age -d` or
`rage -d` opens whole, and the segmenting happens after encryption.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

import pyrage

from etcdadmin.core.backup.errors import BackupError

AGE_SUFFIX = ".age"


class Sink(Protocol):
    def write(self, data: bytes) -> int: ...


def parse_recipients(texts: Sequence[str]) -> list[Any]:
    """age recipients from their public texts; raises BackupError naming the bad one."""
    recipients = []
    for text in texts:
        text = text.strip()
        try:
            if text.startswith("age1"):
                recipients.append(pyrage.x25519.Recipient.from_str(text))
            else:
                recipients.append(pyrage.ssh.Recipient.from_str(text))
        except Exception:  # pyrage raises its own RecipientError or ValueError
            raise BackupError(
                f"{text[:16]}... is not an age recipient: give an age1... public key or an "
                "ssh-rsa / ssh-ed25519 public key line"
            ) from None
    return recipients


class _ChunkReader:
    """A `read(n)` view of an iterator of chunks, for pyrage to pull from."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""
        self.error: BaseException | None = None

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) < n:
            try:
                chunk = next(self._chunks, None)
            except BaseException as exc:
                self.error = exc
                raise
            if chunk is None:
                break
            self._buffer += chunk
        if n < 0:
            n = len(self._buffer)
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def readinto(self, target: Any) -> int:
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)


class _ErrorKeepingWriter:
    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self.error: BaseException | None = None

    def write(self, data: bytes) -> int:
        try:
            return self._sink.write(data)
        except BaseException as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        pass


def encrypt_stream(chunks: Iterable[bytes], sink: Sink, recipients: Sequence[Any]) -> None:
    """Encrypt `chunks` (pulled as needed) into `sink`, one age file.

    An error raised while reading the chunks or writing the sink comes out as itself: pyrage
    would otherwise turn it into an opaque I/O error of its own.
    """
    reader, writer = _ChunkReader(chunks), _ErrorKeepingWriter(sink)
    try:
        pyrage.encrypt_io(reader, writer, list(recipients))
    except Exception:
        error = reader.error or writer.error
        if error is not None:
            raise error from None
        raise
