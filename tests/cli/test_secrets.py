"""`etcdadmin keys|secret|identity`, `apply` with `!secret`, and secrets through `export`, `copy`
and `diff`, on the real etcd and the real OS keyring, read back with `etcdctl` and `age`.

Every output is checked for the plaintext: it appears only where `--reveal` asked for it.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
from click.testing import Result

from etcdadmin.core.secrets.envelope import fingerprint, is_envelope, open_envelope, seal
from etcdadmin.core.secrets.errors import MovedSecret
from etcdadmin.core.secrets.identities import load_key_files, new_agent_key
from etcdadmin.core.secrets.recipients import parse_public_key
from tests.cli.conftest import save_profile
from tests.cli.test_profiles_and_policy import _on_a_terminal

pytestmark = pytest.mark.usefixtures("os_keyring")


def _value() -> str:
    return f"PLAINTEXT-{uuid.uuid4().hex[:10]}"


def _clean(result: Result, *plaintexts: str) -> Result:
    """The result, after checking that no plaintext is in its stdout or stderr."""
    for text in plaintexts:
        assert text not in result.stdout and text not in result.stderr, result.output
    return result


def _ok(result: Result, *plaintexts: str) -> Result:
    assert result.exit_code == 0, result.stderr
    return _clean(result, *plaintexts)


def _stored(etcd_server, key: str) -> bytes:
    return etcd_server.etcdctl("get", "--print-value-only", key).stdout.rstrip("\n").encode()


def _opens(path: Path, key: str, stored: bytes) -> bytes:
    return open_envelope(key.encode(), stored, [load_key_files(str(path))[0].identities[0]])


def _agent_dir(at, top: str, tmp_path: Path, name: str = "agent-1") -> Path:
    out = tmp_path / f"{name}-{uuid.uuid4().hex[:6]}"
    _ok(at("keys", "new", name, "--dir", top, "--out", str(out)))
    return out


def test_keys_new_writes_a_private_key_and_publishes_its_public_key(at, etcd_server, top, tmp_path):
    out = tmp_path / "agent-key"
    done = _ok(at("keys", "new", "agent-1", "--dir", top, "--out", str(out), "--type", "rsa"))
    assert "keys rotate" in done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    public = (tmp_path / "agent-key.pub").read_text().split()
    assert public[0] == "ssh-rsa"
    record = json.loads(
        etcd_server.etcdctl(
            "get", "--print-value-only", f"/etcdadmin/recipients/{top}/agent-1"
        ).stdout
    )
    assert record["public_key"] == " ".join(public[:2]) and record["role"] == "agent"
    assert "PRIVATE" not in json.dumps(record)
    again = at("keys", "new", "agent-2", "--dir", top, "--out", str(out))
    assert again.exit_code == 2 and "refusing to overwrite" in again.stderr


def test_keys_add_ls_and_rm_manage_the_recipients_of_a_directory(at, etcd_server, top, tmp_path):
    ssh = new_agent_key("ed25519", comment="ops@host")
    (tmp_path / "ops.pub").write_text(ssh.public_key + "\n")
    (tmp_path / "alice.age").write_text(
        "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n"
    )
    _ok(at("keys", "add", "ops", "--dir", top, "--public-key", str(tmp_path / "ops.pub")))
    _ok(
        at(
            "keys", "add", "alice", "--dir", f"{top}/prod", "--role", "operator",
            "--public-key", str(tmp_path / "alice.age"),
        )
    )  # fmt: skip
    listed = json.loads(_ok(at("keys", "ls", top, "--json")).stdout)
    assert {(r["directory"], r["name"], r["role"]) for r in listed} == {
        (f"{top}/", "ops", "agent"),
        (f"{top}/prod/", "alice", "operator"),
    }
    assert next(r for r in listed if r["name"] == "ops")["fingerprint"].startswith("SHA256:")
    text = _ok(at("keys", "ls", top)).stdout
    assert f"{top}/\tops\tagent\tSHA256:" in text

    bad = tmp_path / "bad.pub"
    bad.write_text("ssh-dss AAAA nope\n")
    refused = at("keys", "add", "x", "--dir", top, "--public-key", str(bad))
    assert refused.exit_code == 2 and "ssh-ed25519" in refused.stderr

    _ok(at("keys", "rm", "ops", "--dir", top))
    assert etcd_server.etcdctl("get", f"/etcdadmin/recipients/{top}/ops").stdout == ""
    missing = at("keys", "rm", "ops", "--dir", top)
    assert missing.exit_code == 1


def test_secret_put_from_stdin_stores_only_ciphertext_that_get_reveals_only_when_asked(
    at, etcd_server, top, tmp_path
):
    agent_key = _agent_dir(at, top, tmp_path)
    value = _value()
    key = f"{top}/storage/swift/password"
    _ok(at("secret", "put", key, input=value.encode()), value)

    stored = _stored(etcd_server, key)
    assert value.encode() not in stored and is_envelope(stored)
    assert _opens(agent_key, key, stored) == value.encode()

    shown = _ok(at("secret", "get", key), value)
    assert fingerprint(stored) in shown.stdout and "X25519" in shown.stdout
    assert "agent-1" in shown.stdout
    info = json.loads(_ok(at("secret", "get", key, "--json"), value).stdout)
    assert info["fingerprint"] == fingerprint(stored)
    revealed = _ok(at("secret", "get", key, "--reveal"))
    assert revealed.stdout_bytes == value.encode(), "byte for byte, no newline added"
    plain_get = _ok(at("get", key), value)
    assert "BEGIN AGE ENCRYPTED FILE" in plain_get.stdout

    listed = json.loads(_ok(at("secret", "ls", top, "--json"), value).stdout)
    assert listed == [
        {
            "key": key,
            "fingerprint": fingerprint(stored),
            "encrypted_to": listed[0]["encrypted_to"],
            "opens": True,
            "reason": None,
        }
    ]
    assert "X25519" in listed[0]["encrypted_to"]
    assert any(t.startswith("ssh-ed25519 ") for t in listed[0]["encrypted_to"])

    unchanged = _ok(at("secret", "put", key, input=value.encode()), value)
    assert "nothing to change" in unchanged.stderr
    assert _stored(etcd_server, key) == stored


def test_a_secret_in_a_directory_without_recipients_is_refused(at, etcd_server, top):
    value = _value()
    done = _clean(at("secret", "put", f"{top}/db/password", input=value.encode()), value)
    assert done.exit_code == 2 and "keys new" in done.stderr
    assert etcd_server.etcdctl("get", f"{top}/db/password").stdout == ""


def test_secret_ls_says_which_secrets_this_operator_cannot_open(at, etcd_server, top, tmp_path):
    _agent_dir(at, top, tmp_path)
    stranger = new_agent_key("ed25519")
    key = f"{top}/foreign/token"
    envelope = seal(key.encode(), b"x", [parse_public_key(stranger.public_key)])
    etcd_server.etcdctl("put", "--", key, envelope.decode())
    text = _ok(at("secret", "ls", top)).stdout
    assert f"{key}\tsha256:" in text and "cannot open (no_matching_key)" in text


def test_rotate_after_adding_a_new_key_and_removing_the_old_one(
    at, etcd_server, top, tmp_path, age_cli
):
    old_key = _agent_dir(at, top, tmp_path, "agent-old")
    values = {f"{top}/s{i}/password": _value() for i in range(3)}
    for key, value in values.items():
        _ok(at("secret", "put", key, input=value.encode()), value)
    new_key = tmp_path / "id_rsa"
    _ok(at("keys", "new", "agent-new", "--dir", top, "--out", str(new_key), "--type", "rsa"))
    _ok(at("keys", "rm", "agent-old", "--dir", top))

    done = _ok(at("keys", "rotate", top), *values.values())
    assert "re-encrypting 3 secrets" in done.stderr and "3 of 3 keys written" in done.stderr
    for key, value in values.items():
        stored = _stored(etcd_server, key)
        assert _opens(new_key, key, stored) == value.encode()
        with pytest.raises(Exception, match="none of the private keys"):
            _opens(old_key, key, stored)
    first = next(iter(values))
    by_hand = subprocess.run(
        f"etcdctl get --print-value-only {first} | {age_cli} -d -i {new_key} | tail -n +4",
        shell=True,
        capture_output=True,
        env={**os.environ, "ETCDCTL_API": "3", "ETCDCTL_ENDPOINTS": etcd_server.endpoint},
        check=True,
        timeout=30,
    )
    assert by_hand.stdout.rstrip(b"\n") == values[first].encode()


def test_rotate_names_a_secret_it_cannot_open_and_exits_2(at, etcd_server, top, tmp_path):
    _agent_dir(at, top, tmp_path)
    value = _value()
    _ok(at("secret", "put", f"{top}/mine/password", input=value.encode()), value)
    stranger = new_agent_key("ed25519")
    foreign = f"{top}/foreign/token"
    etcd_server.etcdctl(
        "put",
        "--",
        foreign,
        seal(foreign.encode(), b"x", [parse_public_key(stranger.public_key)]).decode(),
    )
    done = _clean(at("keys", "rotate", top), value)
    assert done.exit_code == 2
    assert f"{foreign} (no_matching_key)" in done.stderr
    assert "1 of 1 keys written" in done.stderr


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"config-{uuid.uuid4().hex[:6]}.yml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _mod_revision(etcd_server, key: str) -> int:
    out = etcd_server.etcdctl("get", key, "-w", "json").stdout
    return int(json.loads(out)["kvs"][0]["mod_revision"])


def test_apply_seals_secret_values_and_rewrites_only_changed_ones(at, etcd_server, top, tmp_path):
    agent_key = _agent_dir(at, top, tmp_path)
    first, second = _value(), _value()
    config = "http:\n  addr: :5000\nstorage:\n  swift:\n    password: !secret {pw}\n"
    key = f"{top}/storage/swift/password"

    added = _ok(
        at("apply", "-f", _write(tmp_path, config.format(pw=first)), "--dir", top, "-y"), first
    )
    assert "+ storage/swift/password: secret (added)" in added.stdout
    stored = _stored(etcd_server, key)
    assert first.encode() not in stored and _opens(agent_key, key, stored) == first.encode()
    revision = _mod_revision(etcd_server, key)

    same = _ok(
        at("apply", "-f", _write(tmp_path, config.format(pw=first)), "--dir", top, "-y"), first
    )
    assert "storage/swift/password: secret (unchanged)" in same.stdout
    assert "0 to add, 0 to change" in same.stdout
    assert _mod_revision(etcd_server, key) == revision, "an unchanged secret is not rewritten"

    changed = _ok(
        at("apply", "-f", _write(tmp_path, config.format(pw=second)), "--dir", top, "-y"),
        first,
        second,
    )
    assert "~ storage/swift/password: secret (changed)" in changed.stdout
    assert _opens(agent_key, key, _stored(etcd_server, key)) == second.encode()

    dry_run = at(
        "apply", "-f", _write(tmp_path, config.format(pw=first)), "--dir", top, "--dry-run",
        "--json",
    )  # fmt: skip
    assert dry_run.exit_code == 1, "a dry run with something to change exits 1"
    as_json = json.loads(_clean(dry_run, first, second).stdout)
    assert as_json["plan"]["changes"][0]["secret"] is True
    assert as_json["plan"]["changes"][0]["after"].startswith("secret (sha256:")


def test_export_prints_placeholders_that_apply_keeps_and_reveals_only_when_asked(
    at, etcd_server, top, tmp_path
):
    _agent_dir(at, top, tmp_path)
    value = "p@ss: w*rd&! " + _value()
    key = f"{top}/storage/swift/password"
    _ok(at("apply", "-f", _write(tmp_path, "storage:\n  swift:\n    password: !secret 'x'\n"),
           "--dir", top, "-y"))  # fmt: skip
    _ok(at("secret", "put", key, input=value.encode()), value)
    stored = _stored(etcd_server, key)
    revision = _mod_revision(etcd_server, key)

    exported = _ok(at("export", top), value)
    assert f"password: !secret {fingerprint(stored)}" in exported.stdout
    assert "BEGIN AGE" not in exported.stdout
    kept = _ok(at("apply", "-f", _write(tmp_path, exported.stdout), "--dir", top, "-y"), value)
    assert "secret (unchanged)" in kept.stdout
    assert _mod_revision(etcd_server, key) == revision

    revealed = _ok(at("export", top, "--reveal"))
    assert value in revealed.stdout and "!secret" in revealed.stdout
    again = _ok(at("apply", "-f", _write(tmp_path, revealed.stdout), "--dir", top, "-y"), value)
    assert "0 to add, 0 to change" in again.stdout
    assert _mod_revision(etcd_server, key) == revision

    etcd_server.etcdctl("del", key)
    stale = _clean(at("apply", "-f", _write(tmp_path, exported.stdout), "--dir", top, "-y"), value)
    assert stale.exit_code == 2 and "placeholder" in stale.stderr


def test_copy_re_encrypts_secrets_for_the_target_key_and_recipients(at, etcd_server, top, tmp_path):
    source_key = _agent_dir(at, f"{top}/test", tmp_path, "agent-test")
    target_key = _agent_dir(at, f"{top}/prod", tmp_path, "agent-prod")
    value = _value()
    _ok(at("secret", "put", f"{top}/test/db/password", input=value.encode()), value)
    etcd_server.etcdctl("put", f"{top}/test/db/host", "db.example")

    _ok(at("copy", f"{top}/test", f"{top}/prod"), value)
    copied = _stored(etcd_server, f"{top}/prod/db/password")
    assert _opens(target_key, f"{top}/prod/db/password", copied) == value.encode()
    with pytest.raises(Exception, match="none of the private keys"):
        _opens(source_key, f"{top}/prod/db/password", copied)
    assert etcd_server.etcdctl("get", "--print-value-only", f"{top}/prod/db/host").stdout == (
        "db.example\n"
    )

    # The source envelope pasted by hand under the target key is refused there.
    source_envelope = _stored(etcd_server, f"{top}/test/db/password")
    etcd_server.etcdctl("put", "--", f"{top}/prod/db/password", source_envelope.decode())
    with pytest.raises(MovedSecret):
        _opens(source_key, f"{top}/prod/db/password", source_envelope)
    pasted = at("secret", "get", f"{top}/prod/db/password", "--reveal")
    assert pasted.exit_code == 2 and "encrypted for another key" in pasted.stderr
    assert value not in pasted.stdout


def test_copy_stops_on_a_secret_it_cannot_open_with_nothing_written(at, etcd_server, top, tmp_path):
    _agent_dir(at, f"{top}/a", tmp_path, "agent-a")
    _agent_dir(at, f"{top}/b", tmp_path, "agent-b")
    etcd_server.etcdctl("put", f"{top}/a/host", "h")
    stranger = new_agent_key("ed25519")
    foreign = f"{top}/a/token"
    etcd_server.etcdctl(
        "put",
        "--",
        foreign,
        seal(foreign.encode(), b"x", [parse_public_key(stranger.public_key)]).decode(),
    )
    done = at("copy", f"{top}/a", f"{top}/b")
    assert done.exit_code == 2 and foreign in done.stderr
    assert etcd_server.etcdctl("get", "--prefix", f"{top}/b/").stdout == ""


def test_diff_compares_secrets_by_their_values_without_printing_them(
    at, etcd_server, top, tmp_path
):
    _agent_dir(at, f"{top}/a", tmp_path, "agent-a")
    _agent_dir(at, f"{top}/b", tmp_path, "agent-b")
    same, left, right = _value(), _value(), _value()
    for side, pw in (("a", left), ("b", right)):
        _ok(at("secret", "put", f"{top}/{side}/same/password", input=same.encode()), same)
        _ok(at("secret", "put", f"{top}/{side}/db/password", input=pw.encode()), pw)
    stranger = new_agent_key("ed25519")
    for side in ("a", "b"):
        key = f"{top}/{side}/foreign/token"
        envelope = seal(key.encode(), side.encode(), [parse_public_key(stranger.public_key)])
        etcd_server.etcdctl("put", "--", key, envelope.decode())

    done = _clean(at("diff", f"{top}/a", f"{top}/b"), same, left, right)
    assert done.exit_code == 1
    lines = done.stdout.splitlines()
    assert lines[lines.index("~ db/password") + 1].strip() == "secret differs"
    assert lines[lines.index("~ foreign/token") + 1].strip() == "secret (cannot compare)"
    assert lines[lines.index("  same/password") + 1].strip() == "secret same"
    assert "BEGIN AGE" not in done.stdout
    as_json = json.loads(
        _clean(at("diff", f"{top}/a", f"{top}/b", "--json"), same, left, right).stdout
    )
    assert as_json["same_secrets"] == ["same/password"]
    assert {d["key"]: d["secret"] for d in as_json["differences"]} == {
        "db/password": "differs",
        "foreign/token": "cannot compare",
    }
    assert "BEGIN AGE" not in json.dumps(as_json)


def test_identity_show_export_and_import_keep_the_secret_half_out_of_files_and_argv(at, tmp_path):
    public = _ok(at("identity", "show")).stdout.strip()
    assert public.startswith("age1")
    out = tmp_path / "identity.age"
    passphrase = "correct horse battery"
    _ok(at("identity", "export", "--out", str(out), ETCDADMIN_IDENTITY_PASSPHRASE=passphrase))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    data = out.read_bytes()
    assert b"AGE-SECRET-KEY" not in data and b"BEGIN AGE ENCRYPTED FILE" in data
    wrong = at("identity", "import", str(out), ETCDADMIN_IDENTITY_PASSPHRASE="wrong passphrase")
    assert wrong.exit_code == 2 and "wrong passphrase" in wrong.stderr
    again = _ok(at("identity", "import", str(out), ETCDADMIN_IDENTITY_PASSPHRASE=passphrase))
    assert again.stdout.strip() == public
    no_tty = at("identity", "export", "--out", str(tmp_path / "other.age"))
    assert no_tty.exit_code == 2 and "ETCDADMIN_IDENTITY_PASSPHRASE" in no_tty.stderr


def test_production_confirmation_never_prints_a_secret_value(
    run, profiles, etcd_server, top, tmp_path
):
    save_profile(profiles, "prod", etcd_server.endpoint, production=True)
    run("--profile", "prod", "keys", "new", "agent", "--dir", top, "--out", str(tmp_path / "k"),
        "--yes")  # fmt: skip
    plain, sealed = _value(), _value()
    etcd_server.etcdctl("put", f"{top}/db/password", "old-" + plain)
    # On a terminal the confirmation shows the diff of the values: masked for a secret name.
    argv = ["--profile", "prod", "put", f"{top}/db/password", "--value", plain]
    declined = _on_a_terminal(argv, answer="n")
    assert declined.returncode == 2 and "Write these changes to prod?" in declined.stderr
    assert "(secret) -> (secret)" in declined.stderr
    assert plain not in declined.stdout + declined.stderr

    refused = _clean(run("--profile", "prod", "secret", "put", f"{top}/api/token",
                         input=sealed.encode()), sealed)  # fmt: skip
    assert refused.exit_code == 2 and "pass --yes" in refused.stderr
    done = _clean(run("--profile", "prod", "secret", "put", f"{top}/api/token", "--yes",
                      input=sealed.encode()), sealed)  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert f"create {top}/api/token" in done.stderr and "BEGIN AGE" not in done.stderr
