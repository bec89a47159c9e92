"""ls, export, diff and copy of directories against a real etcd."""

from __future__ import annotations

import json

import yaml


def _fill(etcd_server, prefix: str, keys: dict[str, str]) -> None:
    for key, value in keys.items():
        etcd_server.etcdctl("put", f"{prefix}/{key}", value)


def test_ls_shows_sub_directories_with_a_slash_and_keys_and_r_every_key(at, etcd_server, top):
    _fill(etcd_server, top, {"http/addr": ":5000", "http/tls/cert": "c", "version": "0.1"})
    assert at("ls", top).stdout.splitlines() == [f"{top}/http/", f"{top}/version"]
    assert at("ls", f"{top}/").stdout == at("ls", top).stdout
    assert at("ls", "-r", top).stdout.splitlines() == [
        f"{top}/http/addr",
        f"{top}/http/tls/cert",
        f"{top}/version",
    ]
    assert json.loads(at("ls", top, "--json").stdout) == [
        {"path": f"{top}/http/", "kind": "directory", "keys": 2},
        {"path": f"{top}/version", "kind": "key"},
    ]
    assert f"{top}/" in at("ls").stdout.splitlines()


def test_export_of_a_directory_without_keys_says_so_and_prints_nothing(at, top):
    done = at("export", f"{top}-typo")
    assert (done.exit_code, done.stdout) == (0, "")
    assert done.stderr == f"no keys under {top}-typo/\n"


def test_export_prints_the_yaml_an_agent_renders(at, etcd_server, top):
    _fill(
        etcd_server,
        top,
        {"http/addr": ":5000", "storage/swift/chunksize": "5242880", "log/level": "info"},
    )
    done = at("export", top)
    assert done.exit_code == 0, done.stderr
    assert yaml.safe_load(done.stdout) == {
        "http": {"addr": ":5000"},
        "log": {"level": "info"},
        "storage": {"swift": {"chunksize": 5242880}},
    }


def test_diff_exits_0_for_equal_directories_and_1_with_the_differences(at, etcd_server, top):
    same = {"http/addr": ":5000", "log/level": "info"}
    _fill(etcd_server, f"{top}-a", same)
    _fill(etcd_server, f"{top}-b", same)
    equal = at("diff", f"{top}-a", f"{top}-b")
    assert (equal.exit_code, equal.stdout) == (0, "")
    assert "0 different, 2 identical" in equal.stderr

    etcd_server.etcdctl("put", f"{top}-b/log/level", "debug")
    etcd_server.etcdctl("put", f"{top}-a/only-a", "1")
    etcd_server.etcdctl("put", f"{top}-b/only-b", "2")
    differ = at("diff", f"{top}-a", f"{top}-b")
    assert differ.exit_code == 1
    assert differ.stdout.splitlines() == [
        "~ log/level",
        f"    {top}-a/: info",
        f"    {top}-b/: debug",
        "- only-a",
        "+ only-b",
    ]
    keys_only = at("diff", "--keys-only", f"{top}-a", f"{top}-b")
    assert keys_only.stdout.splitlines() == ["~ log/level", "- only-a", "+ only-b"]
    report = json.loads(at("diff", "--json", f"{top}-a", f"{top}-b").stdout)
    assert report["identical"] == 1
    assert report["differences"][0] == {
        "key": "log/level",
        "status": "different",
        "left": {"value": "info", "encoding": "utf-8"},
        "right": {"value": "debug", "encoding": "utf-8"},
    }


def test_copy_writes_a_directory_and_refuses_to_overwrite_without_force(at, etcd_server, top):
    _fill(etcd_server, f"{top}-src", {"http/addr": ":5000", "log/level": "info"})
    done = at("copy", f"{top}-src", f"{top}-dst")
    assert done.exit_code == 0, done.stderr
    assert etcd_server.etcdctl("get", "--prefix", f"{top}-dst/").stdout.splitlines() == [
        f"{top}-dst/http/addr",
        ":5000",
        f"{top}-dst/log/level",
        "info",
    ]

    etcd_server.etcdctl("put", f"{top}-src/log/level", "debug")
    refused = at("copy", f"{top}-src", f"{top}-dst")
    assert refused.exit_code == 1
    assert "exists already" in refused.stderr and "Nothing was written" in refused.stderr
    assert "pass --force" in refused.stderr and "stage them again" not in refused.stderr
    assert etcd_server.etcdctl("get", f"{top}-dst/log/level", "--print-value-only").stdout == (
        "info\n"
    )

    etcd_server.etcdctl("put", f"{top}-dst/extra", "x")
    forced = at("copy", "--force", f"{top}-src", f"{top}-dst")
    assert forced.exit_code == 0, forced.stderr
    assert "wrote 1 key" in forced.stdout
    assert etcd_server.etcdctl("get", f"{top}-dst/log/level", "--print-value-only").stdout == (
        "debug\n"
    )
    assert etcd_server.etcdctl("get", f"{top}-dst/extra", "--print-value-only").stdout == "x\n"


def test_diff_says_a_secret_differs_without_printing_either_value(at, etcd_server, top):
    _fill(etcd_server, f"{top}-a", {"storage/swift/password": "MARKER-a", "http/addr": ":1"})
    _fill(etcd_server, f"{top}-b", {"storage/swift/password": "MARKER-b", "http/addr": ":2"})
    text = at("diff", f"{top}-a", f"{top}-b")
    as_json = at("diff", f"{top}-a", f"{top}-b", "--json")
    assert text.exit_code == as_json.exit_code == 1
    for output in (text.stdout + text.stderr, as_json.stdout):
        assert "MARKER" not in output
    assert "~ storage/swift/password" in text.stdout and "the values differ" in text.stdout
    assert ":1" in text.stdout  # values of other paths are still shown
    entry = [e for e in json.loads(as_json.stdout)["differences"] if e.get("secret")]
    assert entry[0]["left"] == {"value": "(secret)"}


def test_export_names_a_key_that_is_not_utf8_as_the_tree_shows_it(at, top):
    assert at("put", f"{top}/k\\xff\\x01", "--value", "v").exit_code == 0
    done = at("export", top)
    assert done.exit_code == 2
    assert f"`{top}/k\\xff\\x01` is not valid UTF-8 text" in done.stderr
    assert "\x01" not in done.stderr
