"""Backups taken with `--encrypt-to`, restored by the same commands with `--identity FILE`:
online (a directory), point in time, disaster recovery and verify, against the real etcd,
Swift or a directory, with keys made by Debian's `age-keygen` and by etcdadmin's own key
maker (ssh-ed25519), read back with etcdctl."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import subprocess
import uuid
from contextlib import ExitStack
from pathlib import Path

import pyrage
import pytest

from etcdadmin.cli import exits
from etcdadmin.core.secrets.identities import new_agent_key, write_key_pair
from tests.cli.test_backup_restore import put_many, values
from tests.core.backup_support import connect
from tests.stack.etcd import EtcdCommand
from tests.stack.procs import free_port


@pytest.fixture(params=["swift", "local"])
def where(request, tmp_path) -> tuple[list[str], dict[str, str]]:
    """(options before the subcommand, environment) for a fresh location of each kind."""
    if request.param == "swift":
        swift = request.getfixturevalue("swift")
        env = {"ST_AUTH": swift.auth_url, "ST_USER": swift.user, "ST_KEY": swift.key}
        return ["--container", f"encrypted-{uuid.uuid4().hex[:8]}"], env
    return ["--dir", str(tmp_path / "backups")], {}


def age_identity(folder: Path, name: str = "age-key.txt") -> tuple[Path, str]:
    """An X25519 identity file and its age1 recipient: from `age-keygen` when installed (the
    stock tool's file format), else made by pyrage."""
    path = folder / name
    keygen = shutil.which("age-keygen")
    if keygen is not None:
        subprocess.run([keygen, "-o", str(path)], check=True, capture_output=True, timeout=30)
        public = subprocess.run(
            [keygen, "-y", str(path)], check=True, capture_output=True, text=True, timeout=30
        ).stdout.strip()
        return path, public
    identity = pyrage.x25519.Identity.generate()
    path.write_text(f"{identity}\n")
    path.chmod(0o600)
    return path, str(identity.to_public())


def ssh_identity(folder: Path, name: str = "id_ed25519") -> tuple[Path, str]:
    key = new_agent_key("ed25519", comment="backup-test")
    write_key_pair(folder / name, key)
    return folder / name, key.public_key


def created_id(result) -> str:
    assert result.exit_code == 0, result.stderr
    return str(result.stdout.strip())


def listed(at, options: list[str], env: dict[str, str]) -> list[dict[str, object]]:
    result = at("backup", *options, "ls", "--json", **env)
    assert result.exit_code == 0, result.stderr
    return list(json.loads(result.stdout))


def test_an_encrypted_backup_restores_a_directory_with_an_age_identity_or_an_ssh_key(
    at, where, top, etcd_server, tmp_path, age_cli
):
    options, env = where
    age_key, age_public = age_identity(tmp_path)
    ssh_key, ssh_public = ssh_identity(tmp_path)
    original = {f"{top}/app/http/addr": ":5000", f"{top}/app/log/level": "info"}
    put_many(etcd_server.endpoint, {**original, f"{top}/other/keep": "before"})
    backup_id = created_id(
        at(
            "backup", *options, "create", "--prefix", f"{top}/app/",
            "--encrypt-to", age_public, "--encrypt-to", ssh_public, **env,
        )
    )  # fmt: skip
    if options[0] == "--dir":
        # the stock age tool opens the export with the ssh-ed25519 key too
        stored = next((tmp_path / "backups" / backup_id).glob("keys.jsonl.gz.age"))
        opened = subprocess.run(
            [age_cli, "-d", "-i", str(ssh_key), str(stored)], capture_output=True, timeout=60
        )
        assert opened.returncode == 0, opened.stderr
        assert f"{top}/app/log/level".encode() not in stored.read_bytes()
        assert len(gzip.decompress(opened.stdout).splitlines()) == 2

    for identity in (age_key, ssh_key):
        etcd_server.etcdctl("del", f"{top}/app/log/level")
        etcd_server.etcdctl("put", f"{top}/app/http/addr", ":6000")
        etcd_server.etcdctl("put", f"{top}/app/added", "since")
        etcd_server.etcdctl("put", f"{top}/other/keep", f"after {identity.name}")

        restored = at(
            "backup", *options, "restore", backup_id, "--prefix", f"{top}/app",
            "--identity", str(identity), "--yes", **env,
        )  # fmt: skip

        assert restored.exit_code == 0, restored.stderr
        assert values(etcd_server, f"{top}/app/") == original
        assert values(etcd_server, f"{top}/other/") == {
            f"{top}/other/keep": f"after {identity.name}"
        }
    safety = [e for e in listed(at, options, env) if e["id"] != backup_id]
    assert len(safety) == 2 and all(e["encrypted"] for e in safety), (
        "what a restore of an encrypted backup overwrote is kept encrypted too"
    )


def test_a_wrong_identity_is_refused_naming_the_recipients_and_nothing_is_written(
    at, top, etcd_server, tmp_path
):
    options = ["--dir", str(tmp_path / "backups")]
    _, age_public = age_identity(tmp_path)
    _, ssh_public = ssh_identity(tmp_path)
    stranger, _ = age_identity(tmp_path, "stranger.txt")
    etcd_server.etcdctl("put", f"{top}/app/a", "1")
    backup_id = created_id(
        at(
            "backup", *options, "create", "--prefix", f"{top}/app/",
            "--encrypt-to", age_public, "--encrypt-to", ssh_public,
        )
    )  # fmt: skip
    etcd_server.etcdctl("put", f"{top}/app/a", "2")

    refused = at(
        "backup", *options, "restore", backup_id, "--prefix", f"{top}/app",
        "--identity", str(stranger), "--yes",
    )  # fmt: skip

    assert refused.exit_code == exits.USAGE, refused.stderr
    message = " ".join(refused.stderr.split())
    assert age_public in message and "ssh-ed25519 ..." in message and "backup-test" in message
    assert "--identity FILE" in message and "nothing was written" in message
    assert values(etcd_server, f"{top}/app/") == {f"{top}/app/a": "2"}
    assert [e["id"] for e in listed(at, options, {})] == [backup_id], "no safety backup either"

    data_dir = tmp_path / "restored"
    recovered = at(
        "backup", *options, "restore", backup_id, "--data-dir", str(data_dir),
        "--identity", str(stranger),
    )  # fmt: skip
    assert recovered.exit_code == exits.USAGE, recovered.stderr
    assert not data_dir.exists() and not list(tmp_path.glob(".etcdadmin-snapshot-*"))


def test_an_encrypted_snapshot_recovered_with_data_dir_serves_the_backups_keys(
    at, top, private_etcd, tmp_path
):
    options = ["--dir", str(tmp_path / "backups")]
    ssh_key, ssh_public = ssh_identity(tmp_path)
    private_etcd.etcdctl("put", f"{top}/a", "1")
    private_etcd.etcdctl("put", f"{top}/b", "2")
    backup_id = created_id(
        at("--endpoints", private_etcd.endpoint, "backup", *options, "create",
           "--encrypt-to", ssh_public)
    )  # fmt: skip
    private_etcd.etcdctl("del", f"{top}/a")
    client_url = f"http://127.0.0.1:{free_port()}"

    recovered = at(
        "backup", *options, "restore", backup_id, "--data-dir", str(tmp_path / "restored"),
        "--client-url", client_url, "--peer-url", f"http://127.0.0.1:{free_port()}",
        "--identity", str(ssh_key), "--json",
    )  # fmt: skip

    assert recovered.exit_code == 0, recovered.stderr
    printed = json.loads(recovered.stdout)
    assert not list(tmp_path.glob(".etcdadmin-snapshot-*")), "the decrypted download is removed"
    with ExitStack() as started:
        member = EtcdCommand(printed["commands"][0], client_url, tmp_path / "restored.log")
        started.callback(member.stop)
        member.start()
        assert values(private_etcd, f"{top}/", [client_url]) == {f"{top}/a": "1", f"{top}/b": "2"}


def test_verify_checks_an_encrypted_backup_without_a_key_and_its_snapshot_with_one(
    at, top, etcd_server, tmp_path
):
    options = ["--dir", str(tmp_path / "backups")]
    age_key, age_public = age_identity(tmp_path)
    etcd_server.etcdctl("put", f"{top}/a", "1")
    backup_id = created_id(
        at("backup", *options, "create", "--prefix", f"{top}/", "--encrypt-to", age_public)
    )

    plain = at("backup", *options, "verify", backup_id)
    opened = at("backup", *options, "verify", backup_id, "--deep", "--identity", str(age_key))

    assert plain.exit_code == 0 and "2 objects match" in plain.stdout, plain.stderr
    assert "decrypted" not in plain.stdout
    assert opened.exit_code == 0, opened.stderr
    assert "snapshot decrypted" in opened.stdout and "etcdctl snapshot status" in opened.stdout

    snapshot = next((tmp_path / "backups" / backup_id).glob("snapshot.db.age"))
    damaged = bytearray(snapshot.read_bytes())
    damaged[len(damaged) // 2] ^= 1
    snapshot.write_bytes(bytes(damaged))
    for extra in ([], ["--identity", str(age_key)]):
        failed = at("backup", *options, "verify", backup_id, *extra)
        assert failed.exit_code == exits.DIFFERENT, failed.stderr


def test_restore_at_rebuilds_a_directory_from_an_encrypted_base_backup(
    at, top, etcd_server, tmp_path
):
    options = ["--dir", str(tmp_path / "backups")]
    age_key, age_public = age_identity(tmp_path)
    etcd_server.etcdctl("put", f"{top}/app/a", "1")
    etcd_server.etcdctl("put", f"{top}/app/b", "2")
    backup_id = created_id(
        at("backup", *options, "create", "--prefix", f"{top}/", "--encrypt-to", age_public)
    )
    revision = backup_id.rpartition("-r")[2]
    etcd_server.etcdctl("put", f"{top}/app/a", "changed")
    etcd_server.etcdctl("del", f"{top}/app/b")

    restored = at(
        "backup", *options, "restore-at", "--prefix", f"{top}/app", "--at-revision", revision,
        "--identity", str(age_key), "--yes",
    )  # fmt: skip

    assert restored.exit_code == 0, restored.stderr
    assert values(etcd_server, f"{top}/app/") == {f"{top}/app/a": "1", f"{top}/app/b": "2"}


def age_keys_file(age_cli: str, folder: Path, name: str, count: int) -> tuple[Path, list[str]]:
    """An identity file holding `count` keys from Debian's `age-keygen`, as an operator
    gathers them: a comment line of their own, then each key as age-keygen writes it (its
    `# created` and `# public key` comments included), a blank line between; with the
    recipients in the file's order."""
    keygen = str(Path(age_cli).with_name("age-keygen"))
    parts, publics = ["# ops keys, the retired one first\n"], []
    for n in range(count):
        single = folder / f"{name}-{n}.txt"
        subprocess.run([keygen, "-o", str(single)], check=True, capture_output=True, timeout=30)
        parts.append(single.read_text())
        publics.append(
            subprocess.run(
                [keygen, "-y", str(single)], check=True, capture_output=True, text=True, timeout=30
            ).stdout.strip()
        )
        single.unlink()
    path = folder / f"{name}.txt"
    path.write_text("\n".join(parts))
    path.chmod(0o600)
    return path, publics


def test_an_identity_file_opens_a_backup_encrypted_to_its_second_key_as_age_does(
    at, top, etcd_server, tmp_path, age_cli
):
    options = ["--dir", str(tmp_path / "backups")]
    keys, publics = age_keys_file(age_cli, tmp_path, "keys", 2)
    etcd_server.etcdctl("put", f"{top}/app/a", "1")
    backup_id = created_id(
        at("backup", *options, "create", "--prefix", f"{top}/", "--encrypt-to", publics[1])
    )
    revision = backup_id.rpartition("-r")[2]
    # Debian's age opens the stored export with the same file: it tries every key in it
    stored = next((tmp_path / "backups" / backup_id).glob("keys.jsonl.gz.age"))
    opened = subprocess.run(
        [age_cli, "-d", "-i", str(keys), str(stored)], capture_output=True, timeout=60
    )
    assert opened.returncode == 0, opened.stderr
    exported = [json.loads(line) for line in gzip.decompress(opened.stdout).splitlines()]
    assert [base64.b64decode(e["k"]).decode() for e in exported] == [f"{top}/app/a"]
    etcd_server.etcdctl("put", f"{top}/app/a", "changed")

    restored = at(
        "backup", *options, "restore", backup_id, "--prefix", f"{top}/app",
        "--identity", str(keys), "--yes",
    )  # fmt: skip
    assert restored.exit_code == 0, restored.stderr
    assert values(etcd_server, f"{top}/app/") == {f"{top}/app/a": "1"}

    etcd_server.etcdctl("put", f"{top}/app/a", "changed again")
    rebuilt = at(
        "backup", *options, "restore-at", "--prefix", f"{top}/app", "--at-revision", revision,
        "--identity", str(keys), "--yes",
    )  # fmt: skip
    assert rebuilt.exit_code == 0, rebuilt.stderr
    assert values(etcd_server, f"{top}/app/") == {f"{top}/app/a": "1"}

    verified = at("backup", *options, "verify", backup_id, "--deep", "--identity", str(keys))
    assert verified.exit_code == 0, verified.stderr
    assert "snapshot decrypted" in verified.stdout

    data_dir = tmp_path / "restored"
    recovered = at(
        "backup", *options, "restore", backup_id, "--data-dir", str(data_dir),
        "--identity", str(keys),
    )  # fmt: skip
    assert recovered.exit_code == 0, recovered.stderr
    assert (data_dir / "member").is_dir()


def test_an_identity_file_whose_keys_all_miss_is_refused_naming_the_recipients(
    at, top, etcd_server, tmp_path, age_cli
):
    options = ["--dir", str(tmp_path / "backups")]
    keys, _ = age_keys_file(age_cli, tmp_path, "strangers", 2)
    _, owner = age_keys_file(age_cli, tmp_path, "owner", 1)
    etcd_server.etcdctl("put", f"{top}/app/a", "1")
    backup_id = created_id(
        at("backup", *options, "create", "--prefix", f"{top}/app/", "--encrypt-to", owner[0])
    )
    etcd_server.etcdctl("put", f"{top}/app/a", "2")
    stored = next((tmp_path / "backups" / backup_id).glob("keys.jsonl.gz.age"))
    by_age = subprocess.run(
        [age_cli, "-d", "-i", str(keys), str(stored)], capture_output=True, text=True, timeout=60
    )
    assert by_age.returncode != 0 and "no identity matched" in by_age.stderr

    refused = at(
        "backup", *options, "restore", backup_id, "--prefix", f"{top}/app",
        "--identity", str(keys), "--yes",
    )  # fmt: skip

    assert refused.exit_code == exits.USAGE, refused.stderr
    message = " ".join(refused.stderr.split())
    assert owner[0] in message and "--identity FILE" in message
    assert "nothing was written" in message and "AGE-SECRET-KEY-1" not in message
    assert values(etcd_server, f"{top}/app/") == {f"{top}/app/a": "2"}
    assert [e["id"] for e in listed(at, options, {})] == [backup_id], "no safety backup either"


def test_an_identity_file_without_a_usable_key_is_refused_naming_it_and_what_was_expected(
    at, top, tmp_path, age_cli
):
    options = ["--dir", str(tmp_path / "backups")]
    (tmp_path / "backups").mkdir()
    real, _ = age_keys_file(age_cli, tmp_path, "real", 1)
    secret = next(line for line in real.read_text().splitlines() if line.startswith("AGE-"))
    only_comments = tmp_path / "comments.txt"
    only_comments.write_text("# public key: age1nothing\n\n# no key here\n")
    # a key with one character changed: its line must not reach the message
    damaged = tmp_path / "damaged.txt"
    damaged.write_text(f"# ops\n{secret[:-1]}{'Q' if secret[-1] != 'Q' else 'P'}\n")

    messages = {}
    for path in (only_comments, damaged):
        by_age = subprocess.run(
            [age_cli, "-d", "-i", str(path)], input=b"", capture_output=True, timeout=60
        )
        assert by_age.returncode != 0, "Debian's age refuses the file too"
        refused = at(
            "backup", *options, "restore", "c-r1", "--prefix", f"{top}/app",
            "--identity", str(path), "--yes",
        )  # fmt: skip
        assert refused.exit_code == exits.USAGE, refused.stderr
        messages[path] = " ".join(refused.stderr.split())

    empty = messages[only_comments]
    assert str(only_comments) in empty and "no private key in this file" in empty
    assert "expected an age identity file (AGE-SECRET-KEY-1... lines" in empty
    assert "OpenSSH private key" in empty
    malformed = messages[damaged]
    assert str(damaged) in malformed and "at line 2 is malformed" in malformed
    assert secret[16:-1] not in malformed, "not a character of the key is shown"


def test_history_in_backups_names_an_encrypted_backup_until_an_identity_opens_it(
    run, private_etcd, tmp_path, os_keyring
):
    team_key, team_public = age_identity(tmp_path)
    directory = tmp_path / "backups"
    endpoint = ["--endpoints", private_etcd.endpoint]
    private_etcd.etcdctl("put", "app/level", "kept-only-in-the-backup")
    backup_id = created_id(
        run(*endpoint, "backup", "--dir", str(directory), "create", "--encrypt-to", team_public)
    )
    with connect(private_etcd) as conn:
        old = conn.header()[0]
        private_etcd.etcdctl("compaction", str(conn.put("app/level", "now")))
    history = [*endpoint, "history", "app/level", "--backups", "--backup-dir", str(directory)]

    unopened = run(*history)
    assert unopened.exit_code == 0, unopened.stderr
    assert "kept-only-in-the-backup" not in unopened.stdout
    assert "1 encrypted backup was not searched" in unopened.stderr
    assert backup_id in unopened.stderr and "--identity FILE" in unopened.stderr
    as_json = json.loads(run(*history, "--json").stdout)
    assert as_json["unsearched_backups"] == [backup_id]

    alone = run(*endpoint, "history", "app/level", "--identity", str(team_key))
    assert alone.exit_code == exits.USAGE and "add --backups" in alone.stderr

    opened = run(*history, "--identity", str(team_key), "--json")
    assert opened.exit_code == 0, opened.stderr
    found = {v["revision"]: v for v in json.loads(opened.stdout)["versions"]}
    assert found[old]["value"] == "kept-only-in-the-backup"
    assert found[old]["source"] == backup_id
    assert json.loads(opened.stdout)["unsearched_backups"] == []
