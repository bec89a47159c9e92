"""Private keys that open secrets: key files (the agent's PRIVATE_KEY) and new agent keys.

A key file is an OpenSSH private key (`id_rsa`, `id_ed25519`, OpenSSH or PEM encoding, as
`ssh-keygen` writes them, one key a file) or an age identity file (`AGE-SECRET-KEY-1...`
lines, every one of them used, as `age -d -i` does). Keys protected by a passphrase are
refused with a message: an agent has nobody to type one.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyrage
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from etcdadmin.core.secrets.errors import BadKeyFile

KeyType = Literal["ed25519", "rsa"]
# 3072 bits: the size `ssh-keygen -t rsa` makes today (and the seed's id_rsa).
RSA_BITS = 3072


@dataclass(frozen=True)
class LoadedKey:
    """The private keys read from one file: its pyrage identities and where they came from.

    An age identity file may hold several keys (`age -d -i` tries them all); an OpenSSH
    private key file holds one."""

    path: Path
    identities: tuple[object, ...]


def key_paths(spec: str) -> list[Path]:
    """The files a PRIVATE_KEY setting names: a comma list of files, or a directory of them.

    In a directory, every regular file is a key except `*.pub` and hidden files, in name order,
    so an agent can hold its old and new keys during a rotation.
    """
    paths: list[Path] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        path = Path(part)
        if path.is_dir():
            paths.extend(
                child
                for child in sorted(path.iterdir())
                if child.is_file() and not child.name.startswith(".") and child.suffix != ".pub"
            )
        else:
            paths.append(path)
    return paths


def load_key_files(spec: str) -> list[LoadedKey]:
    """Every key named by `spec` (see `key_paths`); `BadKeyFile` naming the first bad one."""
    keys = [load_key_file(path) for path in key_paths(spec)]
    if not keys:
        raise BadKeyFile(f"{spec}: no private key file found there")
    return keys


# A key file is a few kB (an RSA-4096 OpenSSH key about 3.4 kB, an age identity 74 bytes a
# key); anything far larger, or not a regular file (a FIFO would block its reader: the
# client's window, an agent's start), is not one.
MAX_KEY_FILE = 1024 * 1024


def load_key_file(path: Path) -> LoadedKey:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_KEY_FILE:
            raise BadKeyFile(f"{path}: not a private key file (a regular file of at most 1 MiB)")
        data = path.read_bytes()
    except OSError as exc:
        raise BadKeyFile(f"{path}: cannot read the private key ({exc.strerror})") from None
    return LoadedKey(path, parse_identities(data, str(path)))


def identities_in(paths: Sequence[Path]) -> list[object]:
    """Every identity in the key files `paths` (an operator's `--identity FILE`, or a file
    opened in the client), file after file; `BadKeyFile` naming the first bad one."""
    return identities([load_key_file(path) for path in paths])


# What a key file is expected to be, for the messages that refuse one.
_EXPECTED = (
    "an age identity file (AGE-SECRET-KEY-1... lines, as age-keygen writes it) or an OpenSSH "
    "private key (id_ed25519, id_rsa)"
)


def parse_identities(data: bytes, source: str) -> tuple[object, ...]:
    """The pyrage identities in `data` (a key file's bytes), as `age -d -i` reads the file:
    an OpenSSH private key (one identity), else an age identity file (every key in it).

    Errors name `source` and a line number, never the bytes: a bad line may be a key."""
    text = data.strip()
    # age itself tells the two kinds apart the same way: a PEM armour line starts a key file
    if text.startswith(b"-----BEGIN"):
        return (_ssh_identity(text, source),)
    # the bytes as they are, so that a line number counts the blank lines on top too
    return _age_identities(data, source)


def _ssh_identity(text: bytes, source: str) -> object:
    try:
        return pyrage.ssh.Identity.from_buffer(text + b"\n")
    except pyrage.IdentityError as exc:
        if "decrypted" in str(exc) or "passphrase" in str(exc).lower():
            # Said for both users of a key file: the agent (nobody to type a passphrase) and
            # an operator's --identity for a restore (etcdadmin does not ask for one).
            raise BadKeyFile(
                f"{source}: the key is protected by a passphrase, which etcdadmin does not ask "
                "for: give a copy without one (`ssh-keygen -p -N '' -f COPY`), or, for an "
                "agent, a key `etcdadmin keys new` makes, kept readable only by the agent"
            ) from None
        raise BadKeyFile(
            f"{source}: not a private key etcdadmin can use ({exc}); expected {_EXPECTED}"
        ) from None


def _age_identities(data: bytes, source: str) -> tuple[object, ...]:
    """Every key of an age identity file. Like age, a line that is neither a key, a `#`
    comment nor blank refuses the whole file: skipping it could hide the very key that was
    meant to open the backup. Unlike age, spaces around a line are forgiven."""
    found: list[object] = []
    for number, raw in enumerate(data.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        if line.startswith(b"AGE-SECRET-KEY-"):
            try:
                found.append(pyrage.x25519.Identity.from_str(line.decode("ascii")))
            except (pyrage.IdentityError, UnicodeDecodeError):
                raise BadKeyFile(
                    f"{source}: the age identity at line {number} is malformed (the line is not "
                    "shown: it is a private key)"
                ) from None
            continue
        if line.startswith((b"age1", b"ssh-")):
            what = "a public key, which opens nothing; give the private key instead"
        elif line.startswith(b"AGE-PLUGIN-"):
            what = "an age plugin identity, which etcdadmin cannot use"
        else:
            what = "not an age identity, a # comment or a blank line (the line is not shown)"
        raise BadKeyFile(f"{source}: line {number} is {what}; expected {_EXPECTED}")
    if not found:
        raise BadKeyFile(f"{source}: no private key in this file; expected {_EXPECTED}")
    return tuple(found)


def identities(keys: Sequence[LoadedKey]) -> list[object]:
    """Every identity of `keys`, file after file, each file's in its own order."""
    return [identity for key in keys for identity in key.identities]


@dataclass(frozen=True)
class NewKey:
    """A freshly made agent key: the private key file's bytes and the public key line."""

    private_openssh: bytes
    public_key: str


def new_agent_key(kind: KeyType = "ed25519", comment: str = "") -> NewKey:
    """A new unencrypted OpenSSH key pair (what the agent's PRIVATE_KEY reads)."""
    private: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    if kind == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    line = public.decode("ascii") + (f" {comment}" if comment else "")
    return NewKey(pem, line)


def write_key_pair(path: Path, key: NewKey) -> Path:
    """Write the private key 0600 at `path` (refusing to overwrite) and `path`.pub 0644.

    The file is created with O_EXCL and mode 0600, so the key is never readable by others,
    not even for the instant between create and chmod.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BadKeyFile(f"{path} exists; refusing to overwrite a key file") from None
    except OSError as exc:
        raise BadKeyFile(f"{path}: cannot write the key ({exc.strerror})") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_openssh)
    public_path = path.with_name(path.name + ".pub")
    public_path.write_text(key.public_key + "\n", encoding="ascii")
    return public_path
