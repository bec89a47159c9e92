"""Encrypting backup objects to age recipients (X25519 `age1...` or `ssh-rsa`/`ssh-ed25519`),
and opening them again with the identities that match.

pyrage's `encrypt_io(reader, writer, recipients)` streams: it pulls the plaintext from a
reader's `read` and pushes age's 64 KiB chunks to a writer's `write` (measured: 300 MB
through it with a peak RSS of 12 MB). So each object is ONE age file, which `age -d` or
`rage -d` opens whole, and the segmenting happens after encryption.

`decrypt_io(reader, writer, identities)` streams the same way back (it writes 8 KiB at a
time), so a snapshot is opened on its way to the file etcd's tool restores, and an export on
its way to the parser, never whole in memory: a 210 MB object was downloaded from a
directory, hashed and opened into a file in 1.8 s with 7 MB more peak RSS.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pyrage

from etcdadmin.core.backup.errors import BackupDamaged, BackupError, BackupLocked

log = logging.getLogger(__name__)

AGE_SUFFIX = ".age"
# Plaintext handed from the decrypting thread to the reader at a time (pyrage writes 8 KiB
# at once: batching keeps the hand-over cost per byte low), and how many may wait: the
# memory of an open stream stays near 4 MiB whatever the object's size.
_BATCH = 1024 * 1024
_WAITING = 3
_POLL = 0.2


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


@dataclass(frozen=True)
class BackupOpener:
    """The identities that open one encrypted backup, and what to say when they do not.

    `identities` are pyrage identities (never logged or shown); `source` says where they
    came from, in words for the message."""

    backup: str
    recipients: tuple[str, ...]
    identities: tuple[object, ...]
    source: str

    def __repr__(self) -> str:
        return f"BackupOpener({self.backup!r}, {len(self.identities)} identities)"

    def refused(self) -> BackupLocked:
        return locked(self.backup, self.recipients, f"{self.source} open none of them")


def show_recipient(text: str) -> str:
    """A recipient short enough for one line: age1 keys whole, SSH keys by type, tail, name."""
    parts = text.split()
    if len(parts) >= 2 and parts[0].startswith("ssh-"):
        name = f" {' '.join(parts[2:])}" if len(parts) > 2 else ""
        return f"{parts[0]} ...{parts[1][-12:]}{name}"
    return text


def locked(backup: str, recipients: Sequence[str], why: str) -> BackupLocked:
    shown = tuple(show_recipient(r) for r in recipients)
    return BackupLocked(
        f"backup {backup} is encrypted to {', '.join(shown) or 'unknown recipients'}; {why}: "
        "pass --identity FILE with the private key of one of them (an age identity file or an "
        "OpenSSH private key, as `age -d -i` takes it); nothing was written",
        backup=backup,
        recipients=shown,
        why=why,
    )


def opener_for(
    backup: str, recipients: Sequence[str], identities: Sequence[object] | None = None
) -> BackupOpener:
    """The identities to open a backup encrypted to `recipients` with: `identities` when
    given, else the operator's own from the OS keyring when it is one of the recipients.
    Raises BackupLocked naming the recipients when there is none to try."""
    if identities:
        return BackupOpener(backup, tuple(recipients), tuple(identities), "the identities given")
    # Imported here: only a restore of an encrypted backup reads the keyring.
    from etcdadmin.core.secrets.errors import SecretError
    from etcdadmin.core.secrets.operator import load_operator_identity

    try:
        operator = load_operator_identity()
    except SecretError as exc:
        raise locked(backup, recipients, f"no identity was given, and {exc}") from None
    if operator is None:
        why = "no identity was given and the OS keyring holds no operator identity"
        raise locked(backup, recipients, why)
    if operator.public_key not in {r.strip() for r in recipients}:
        why = f"your operator identity ({operator.public_key}) is not one of them"
        raise locked(backup, recipients, why)
    log.info("opening an encrypted backup with the operator identity")
    source = "the operator identity in the OS keyring"
    return BackupOpener(backup, tuple(recipients), (operator.to_pyrage(),), source)


def decrypt_stream(chunks: Iterable[bytes], sink: Sink, opener: BackupOpener, name: str) -> None:
    """Open the age file in `chunks` (pulled as needed) into `sink`.

    Raises BackupLocked when no identity of `opener` is a recipient (before any byte reaches
    `sink`: age reads its header first), BackupDamaged when the file was altered (age checks
    every 64 KiB chunk); errors of the chunks or the sink come out as themselves."""
    reader, writer = _ChunkReader(chunks), _ErrorKeepingWriter(sink)
    try:
        pyrage.decrypt_io(reader, writer, list(opener.identities))
    except Exception as exc:
        error = reader.error or writer.error
        if error is not None:
            raise error from None
        # pyrage's words for "no identity matches a recipient stanza" (pyrage 1.4.0)
        if isinstance(exc, pyrage.DecryptError) and "no matching keys" in str(exc).lower():
            raise opener.refused() from None
        raise BackupDamaged(
            f"{name} cannot be decrypted ({type(exc).__name__}): the stored copy was altered "
            "or damaged; nothing was written; use another backup"
        ) from None


class _Handover:
    """A sink that hands plaintext to another thread in batches, waiting while it is busy."""

    def __init__(self) -> None:
        self.queue: queue.Queue[bytes | BaseException | None] = queue.Queue(_WAITING)
        self.stopped = threading.Event()
        self._batch = bytearray()

    def write(self, data: bytes) -> int:
        self._batch += data
        if len(self._batch) >= _BATCH:
            self.put(bytes(self._batch))
            self._batch.clear()
        return len(data)

    def put(self, item: bytes | BaseException | None) -> None:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue
        raise BackupError("the reader of the decrypted stream stopped")

    def finish(self) -> None:
        if self._batch:
            self.put(bytes(self._batch))
            self._batch.clear()
        self.put(None)


def decrypted(chunks: Iterable[bytes], opener: BackupOpener, name: str) -> Iterator[bytes]:
    """The plaintext of the age file in `chunks`, as it is opened (see `decrypt_stream`).

    pyrage pushes plaintext to a writer; a parser pulls it. A thread of its own runs the
    decryption and hands batches over; closing this iterator early stops it."""
    handover = _Handover()

    def run() -> None:
        try:
            decrypt_stream(chunks, handover, opener, name)
            handover.finish()
        except BaseException as exc:
            # BackupError: the reader is gone, nobody is left to hear it
            with contextlib.suppress(BackupError):
                handover.put(exc)

    thread = threading.Thread(target=run, name="backup-decrypt", daemon=True)
    thread.start()
    try:
        while True:
            item = handover.queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        handover.stopped.set()
        thread.join()
