"""The secret envelope: age files bound to their key, opened by etcdadmin and by Debian's `age`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pyrage
import pytest

from etcdadmin.core.secrets.envelope import (
    fingerprint,
    is_envelope,
    open_envelope,
    recipient_types,
    seal,
)
from etcdadmin.core.secrets.errors import BadKeyFile, DamagedSecret, MovedSecret, NoMatchingKey
from etcdadmin.core.secrets.identities import (
    identities,
    load_key_files,
    new_agent_key,
    parse_identities,
    write_key_pair,
)
from etcdadmin.core.secrets.opener import SecretOpener
from etcdadmin.core.secrets.recipients import (
    parse_public_key,
    public_key_fingerprint,
    ssh_tag,
)

KEY = b"registry-test/storage/swift/password"
VALUE = b"s3cr3t-swift-password\n\x00binary too"


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3072-bit id_rsa as `ssh-keygen` makes it (the seed demo's agent key)."""
    path = tmp_path_factory.mktemp("rsa") / "id_rsa"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-f", str(path)], check=True
    )
    return path


def _pub(path: Path) -> str:
    return path.with_name(path.name + ".pub").read_text()


def test_a_sealed_value_opens_with_any_of_its_recipients_and_only_under_its_key(rsa_key):
    agent = pyrage.ssh.Identity.from_buffer(rsa_key.read_bytes())
    operator = pyrage.x25519.Identity.generate()
    envelope = seal(KEY, VALUE, [parse_public_key(_pub(rsa_key)), operator.to_public()])

    assert is_envelope(envelope)
    assert VALUE not in envelope and b"s3cr3t" not in envelope
    assert open_envelope(KEY, envelope, [agent]) == VALUE
    assert open_envelope(KEY, envelope, [operator]) == VALUE
    with pytest.raises(MovedSecret) as moved:
        open_envelope(b"registry-prod/storage/swift/password", envelope, [agent])
    assert "registry-test/storage/swift/password" in str(moved.value)
    assert "s3cr3t" not in str(moved.value)


def test_a_stranger_key_a_tampered_value_and_plain_text_are_refused_by_name(rsa_key):
    stranger = pyrage.x25519.Identity.generate()
    envelope = seal(KEY, VALUE, [parse_public_key(_pub(rsa_key))])

    with pytest.raises(NoMatchingKey) as no_key:
        open_envelope(KEY, envelope, [stranger])
    assert f"ssh-rsa {ssh_tag(_pub(rsa_key))}" in str(no_key.value)
    assert no_key.value.key == KEY.decode()

    lines = envelope.splitlines()
    middle = len(lines) // 2
    lines[middle] = (
        lines[middle][:10] + (b"A" if lines[middle][10:11] != b"A" else b"B") + (lines[middle][11:])
    )
    agent = pyrage.ssh.Identity.from_buffer(rsa_key.read_bytes())
    with pytest.raises(DamagedSecret):
        open_envelope(KEY, b"\n".join(lines), [agent])
    with pytest.raises(DamagedSecret):
        open_envelope(KEY, b"not a secret at all", [agent])
    assert not is_envelope(b"plain value")


def test_two_seals_of_one_value_differ_and_name_their_recipients(rsa_key):
    recipients = [parse_public_key(_pub(rsa_key)), pyrage.x25519.Identity.generate().to_public()]
    first, second = seal(KEY, VALUE, recipients), seal(KEY, VALUE, recipients)
    assert fingerprint(first) != fingerprint(second)
    assert recipient_types(first) == [f"ssh-rsa {ssh_tag(_pub(rsa_key))}", "X25519"]


def test_the_age_cli_opens_a_value_with_id_rsa_as_the_format_documents(rsa_key, age_cli):
    envelope = seal(KEY, VALUE, [parse_public_key(_pub(rsa_key))])
    opened = subprocess.run(
        [age_cli, "-d", "-i", str(rsa_key)], input=envelope, capture_output=True, check=True
    ).stdout
    header, _, value = opened.partition(b"\n\n")
    assert header == b"etcdadmin-secret v1\nkey registry-test/storage/swift/password"
    assert value == VALUE
    # the documented one-liner: `age -d -i id_rsa | tail -n +4`
    tailed = subprocess.run(["tail", "-n", "+4"], input=opened, capture_output=True, check=True)
    assert tailed.stdout == VALUE


def test_a_value_made_with_the_age_cli_in_the_documented_layout_opens(rsa_key, age_cli, tmp_path):
    plaintext = b"etcdadmin-secret v1\nkey " + KEY + b"\n\n" + VALUE
    made = subprocess.run(
        [age_cli, "-a", "-R", str(rsa_key) + ".pub"],
        input=plaintext,
        capture_output=True,
        check=True,
    ).stdout
    agent = load_key_files(str(rsa_key))[0].identities[0]
    assert open_envelope(KEY, made, [agent]) == VALUE


def test_new_agent_keys_are_private_files_that_open_what_their_public_key_seals(tmp_path):
    for kind in ("ed25519", "rsa"):
        key = new_agent_key(kind, comment="agent-1")  # type: ignore[arg-type]
        path = tmp_path / f"id_{kind}"
        public_path = write_key_pair(path, key)
        assert path.stat().st_mode & 0o777 == 0o600
        assert public_path.read_text().startswith(f"ssh-{kind} ")
        envelope = seal(KEY, VALUE, [parse_public_key(public_path.read_text())])
        assert open_envelope(KEY, envelope, list(load_key_files(str(path))[0].identities)) == VALUE
        with pytest.raises(BadKeyFile, match="refusing to overwrite"):
            write_key_pair(path, key)
    # ssh-keygen agrees on the fingerprint
    printed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(tmp_path / "id_ed25519.pub")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    assert public_key_fingerprint((tmp_path / "id_ed25519.pub").read_text()) == printed


def test_a_private_key_setting_names_several_files_or_a_directory(tmp_path, rsa_key):
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("old", "new"):
        write_key_pair(keys / name, new_agent_key("ed25519"))
    assert [k.path.name for k in load_key_files(str(keys))] == ["new", "old"]
    listed = load_key_files(f"{keys / 'old'}, {rsa_key}")
    assert [k.path for k in listed] == [keys / "old", rsa_key]
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadKeyFile, match="no private key file"):
        load_key_files(str(tmp_path / "empty"))
    with pytest.raises(BadKeyFile, match="cannot read"):
        load_key_files(str(tmp_path / "missing"))


def test_a_passphrase_protected_key_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "id_locked"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "passphrase", "-f", str(path)], check=True
    )
    with pytest.raises(BadKeyFile, match="protected by a passphrase") as refused:
        parse_identities(path.read_bytes(), str(path))
    assert "BEGIN" not in str(refused.value)
    # what to do, for an operator's --identity as for an agent's key
    assert "ssh-keygen -p" in str(refused.value) and "etcdadmin keys new" in str(refused.value)


def test_every_key_of_an_age_identity_file_opens_what_it_was_sealed_to_as_age_does(
    tmp_path, age_cli
):
    keygen = str(Path(age_cli).with_name("age-keygen"))
    made = [
        subprocess.run([keygen], capture_output=True, text=True, check=True, timeout=30).stdout
        for _ in range(2)
    ]
    second = next(
        line[len("# public key: ") :] for line in made[1].splitlines() if "public" in line
    )
    path = tmp_path / "keys.txt"
    # CRLF line ends, as a file saved on Windows has them, and a comment of the operator's own
    path.write_bytes("\n".join(["# old key first", "", *made]).replace("\n", "\r\n").encode())
    envelope = seal(KEY, VALUE, [parse_public_key(second)])

    loaded = load_key_files(str(path))

    assert len(loaded) == 1 and len(loaded[0].identities) == 2
    assert open_envelope(KEY, envelope, identities(loaded)) == VALUE
    opened = subprocess.run(
        [age_cli, "-d", "-i", str(path)], input=envelope, capture_output=True, timeout=60
    )
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.endswith(VALUE)


def test_a_line_of_an_age_identity_file_that_is_no_key_refuses_the_file_unquoted(rsa_key):
    secret = str(pyrage.x25519.Identity.generate())
    public = str(pyrage.x25519.Identity.generate().to_public())
    for line, said in (
        (public, "line 2 is a public key"),
        (_pub(rsa_key), "line 2 is a public key"),
        ("AGE-PLUGIN-YUBIKEY-1QQQQQQ", "line 2 is an age plugin identity"),
        ("hello", "line 2 is not an age identity"),
    ):
        data = f"{secret}\n{line}\n".encode()
        with pytest.raises(BadKeyFile, match=said) as refused:
            parse_identities(data, "keys.txt")
        assert secret[16:] not in str(refused.value) and line not in str(refused.value)
    with pytest.raises(BadKeyFile, match="line 4 is not an age identity"):
        parse_identities(f"\n\n# counted from the file's top\nhello\n{secret}\n".encode(), "k")
    assert len(parse_identities(rsa_key.read_bytes(), "id_rsa")) == 1, "an SSH key is one key"


def test_the_opener_decrypts_each_envelope_once_and_still_refuses_a_moved_one(rsa_key):
    opener = SecretOpener([pyrage.ssh.Identity.from_buffer(rsa_key.read_bytes())])
    recipient = parse_public_key(_pub(rsa_key))
    envelopes = {
        f"d/k{i}".encode(): seal(f"d/k{i}".encode(), b"v%d" % i, [recipient]) for i in range(5)
    }
    for _ in range(3):
        for key, envelope in envelopes.items():
            assert opener.open(key, envelope) == b"v" + key[3:]
    assert opener.decryptions == 5
    with pytest.raises(MovedSecret):
        opener.open(b"d/k1", envelopes[b"d/k0"])
    moved = opener.reseal(b"d/k0", envelopes[b"d/k0"], b"other/k0", [recipient])
    assert opener.open(b"other/k0", moved) == b"v0"


def test_a_key_file_that_is_a_pipe_or_too_big_is_refused_without_being_read(tmp_path):
    # A FIFO would block whoever reads it (the client's window, an agent's start).
    pipe = tmp_path / "key.fifo"
    os.mkfifo(pipe)
    big = tmp_path / "big.agekey"
    big.write_bytes(b"# padding\n" * 110_000)  # over 1 MiB
    for path in (pipe, big):
        with pytest.raises(BadKeyFile, match="not a private key file"):
            load_key_files(str(path))
