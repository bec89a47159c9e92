"""Connection profiles with the OS keyring, keys with leases, renames, YAML import/export."""

from __future__ import annotations

import json
import stat
import uuid

import yaml
from PySide6.QtWidgets import QMessageBox

from etcdadmin.core.changes import SetValue
from etcdadmin.core.environments.transfer import export_file, import_file
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.profiles import ProfileStore as CoreProfileStore
from etcdadmin.gui.connections.profiles import ConnectionProfile, ProfileStore
from tests.gui.conftest import connect


def test_a_profile_password_goes_to_the_os_keyring_and_never_to_the_profiles_file(
    os_keyring, tmp_path
):
    import keyring
    from PySide6.QtCore import QSettings

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    store = ProfileStore(tmp_path / "config" / "profiles.json", settings)
    store.save(ConnectionProfile("prod", "127.0.0.1:2379", user="root", password="s3cret-pw"))
    saved = json.loads((tmp_path / "config" / "profiles.json").read_text())
    assert saved["profiles"]["prod"]["user"] == "root"
    assert "s3cret-pw" not in (tmp_path / "config" / "profiles.json").read_text()
    assert stat.S_IMODE((tmp_path / "config" / "profiles.json").stat().st_mode) == 0o600
    assert keyring.get_password("etcdadmin", "prod:root") == "s3cret-pw"
    # The CLI's store (Qt-free) reads the same file and the same keyring entry.
    assert CoreProfileStore(tmp_path / "config" / "profiles.json").load("prod").password == (
        "s3cret-pw"
    )
    store.last_used = "prod"
    assert ProfileStore(tmp_path / "config" / "profiles.json", settings).last_used == "prod"
    store.delete("prod")
    assert keyring.get_password("etcdadmin", "prod:root") is None
    assert store.names() == []


def test_profiles_kept_in_qsettings_by_an_older_version_move_to_profiles_json(tmp_path):
    from PySide6.QtCore import QSettings

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    older = {
        "staging": {"name": "staging", "endpoints": "127.0.0.1:2379", "user": "", "ca_file": "",
                    "cert_file": "", "key_file": "", "production": False, "read_only": True,
                    "sandbox": False},
        "prod": {"name": "prod", "endpoints": "etcd-a.example:2379,etcd-b.example:2379",
                 "user": "root", "production": True},
    }  # fmt: skip
    settings.setValue("profiles", json.dumps(older))
    settings.sync()
    path = tmp_path / "config" / "profiles.json"
    store = ProfileStore(path, settings)
    assert store.names() == ["prod", "staging"]
    assert store.load("staging", with_password=False).read_only
    prod = CoreProfileStore(path).load("prod", with_password=False)
    assert (prod.endpoints, prod.user, prod.production) == (
        "etcd-a.example:2379,etcd-b.example:2379",
        "root",
        True,
    )
    # Once profiles.json exists it is the only source: a later QSettings entry is not merged.
    settings.setValue("profiles", json.dumps({"late": {"endpoints": "127.0.0.1:1"}}))
    assert ProfileStore(path, settings).names() == ["prod", "staging"]


def test_a_wrong_password_is_reported_clearly(qtbot, window, private_etcd):
    private_etcd.etcdctl("user", "add", "root:right-pw")
    private_etcd.etcdctl("auth", "enable")
    window.connect_profile(
        ConnectionProfile("auth", private_etcd.endpoint, user="root", password="wrong")
    )
    qtbot.waitUntil(
        lambda: "refused the credentials of user 'root'" in window.statusBar().currentMessage(),
        timeout=10_000,
    )
    assert "wrong" not in window.statusBar().currentMessage()


def test_a_new_key_with_a_lease_and_a_rename_apply_and_read_back(qtbot, window, etcd_server):
    top = f"lease-{uuid.uuid4().hex[:6]}"
    etcd_server.etcdctl("put", f"{top}/keep", "1")
    connect(qtbot, window, etcd_server.endpoint)
    lease = window.session.conn.grant_lease(300)
    window.changes.stage(SetValue(f"{top}/session".encode(), b"token", 0, lease))
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    out = etcd_server.etcdctl("get", f"{top}/session", "-w", "json").stdout
    assert int(yaml.safe_load(out)["kvs"][0]["lease"]) == lease

    window.tree.select_key(f"{top}/keep".encode())
    qtbot.waitUntil(
        lambda: (
            window.editor.current is not None
            and window.editor.current.key == f"{top}/keep".encode()
        )
    )
    assert "TTL" not in window.editor.lease.text()
    from etcdadmin.core.changes import RenameKey

    window.changes.stage(
        RenameKey(
            f"{top}/keep".encode(), f"{top}/kept".encode(), window.editor.current.mod_revision
        )
    )
    with qtbot.waitSignal(window.changes.applied, timeout=10_000):
        window.changes.apply()
    assert etcd_server.etcdctl("get", f"{top}/kept", "--print-value-only").stdout == "1\n"
    assert etcd_server.etcdctl("get", f"{top}/keep").stdout == ""


def test_export_then_import_of_a_directory_round_trips(tmp_path, etcd_server):
    src, dst = f"exp-{uuid.uuid4().hex[:6]}", f"imp-{uuid.uuid4().hex[:6]}"
    for key, value in {
        "http/addr": ":5000",
        "http/headers/X-Content-Type-Options/0": "nosniff",
        "storage/swift/chunksize": "5242880",
        "notifications/endpoints/0/name": "audit",
    }.items():
        etcd_server.etcdctl("put", f"{src}/{key}", value)
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        export_file(conn, f"{src}/".encode(), tmp_path / "config.yml")
        exported = yaml.safe_load((tmp_path / "config.yml").read_text())
        assert exported["storage"]["swift"]["chunksize"] == 5242880
        assert exported["notifications"]["endpoints"][0]["name"] == "audit"
        changes = import_file(conn, tmp_path / "config.yml", f"{dst}/".encode())
        for change in changes:
            conn.put(change.key, change.value)
        copied = {
            kv.key.removeprefix(f"{dst}/".encode()): kv.value
            for kv in conn.read_prefix(f"{dst}/").items
        }
        original = {
            kv.key.removeprefix(f"{src}/".encode()): kv.value
            for kv in conn.read_prefix(f"{src}/").items
        }
        assert copied == original
        assert import_file(conn, tmp_path / "config.yml", f"{dst}/".encode()) == []
        # A flow value is another spelling of the same config: it exports to the same YAML.
        conn.put(f"{src}/http/headers/X-Content-Type-Options/0", "nosniff")
        conn.delete(f"{src}/http/headers/X-Content-Type-Options/0")
        conn.put(f"{src}/http/headers/X-Content-Type-Options", "[nosniff]")
        export_file(conn, f"{src}/".encode(), tmp_path / "again.yml")
        assert yaml.safe_load((tmp_path / "again.yml").read_text()) == exported


def test_a_profile_with_a_certificate_but_no_key_is_refused_in_a_dialog_not_an_abort(
    qtbot, window, etcd_server, tmp_path
):
    # gRPC's C core aborts the process on a certificate without its key: the core refuses
    # such settings first, and the window says why (the test process is still here after).
    cert = tmp_path / "client.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    window.connect_profile(
        ConnectionProfile("half", etcd_server.endpoint, ca_file=str(cert), cert_file=str(cert))
    )
    found: list[QMessageBox] = []

    def shown() -> bool:
        found[:] = [b for b in window.findChildren(QMessageBox, "errorDialog") if b.isVisible()]
        return bool(found)

    qtbot.waitUntil(shown, timeout=10_000)
    assert "needs its private key (--key)" in found[-1].text()
    assert window.session is None
