"""TLS made by `certs init` against real TLS-only etcd members: it works, and each way it can
be wrong (plaintext, untrusted CA, expired, wrong host, refused client) says so in its own words."""

from __future__ import annotations

import datetime
import socket
import stat

import pytest

from etcdadmin.core.certs.authority import (
    CertificateAuthority,
    init_cluster_certificates,
    parse_hosts,
    write_pair,
)
from etcdadmin.core.errors import CertificateError, EtcdPermissionDenied, EtcdTLSError
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from tests.conftest import _construct
from tests.stack.etcd import EtcdCluster, EtcdServer, ServerTLS
from tests.stack.procs import wait_until


def _tls(certs, pair=None) -> ServerTLS:
    pair = pair or certs.members[0].server
    return ServerTLS(certs.ca, pair.cert, pair.key, certs.client.cert, certs.client.key)


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


@pytest.fixture
def pki(tmp_path):
    return init_cluster_certificates(tmp_path / "pki", members=1, client_user="root")


@pytest.fixture
def tls_member(tmp_path, pki):
    server = _construct(lambda: EtcdServer(tmp_path / "etcd", "tls", tls=_tls(pki)))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _settings(endpoint, ca=None, pair=None, **kw) -> ConnectionSettings:
    return ConnectionSettings(
        (endpoint,),
        ca_file=str(ca) if ca else None,
        cert_file=str(pair.cert) if pair else None,
        key_file=str(pair.key) if pair else None,
        timeout=3,
        **kw,
    )


def test_certs_init_makes_private_keys_and_a_tls_only_etcd_serves_with_them(pki, tls_member):
    for path in (pki.ca_key, pki.client.key, pki.members[0].server.key, pki.members[0].peer.key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(pki.ca.stat().st_mode) == 0o644
    with EtcdConnection(_settings(tls_member.endpoint, pki.ca, pki.client)) as conn:
        conn.put("tls/k", "over tls")
    assert tls_member.etcdctl("get", "tls/k", "--print-value-only").stdout == "over tls\n"
    with pytest.raises(CertificateError, match="already holds a CA"):
        init_cluster_certificates(pki.directory)


def test_a_plaintext_client_against_a_tls_only_etcd_is_told_to_use_tls(tls_member):
    with pytest.raises(EtcdTLSError, match=r"only accepts TLS .* pass the CA file with --cacert"):
        EtcdConnection(_settings(tls_member.endpoint)).get("tls/k")


def test_an_untrusted_ca_an_expired_certificate_and_a_wrong_host_each_say_so(
    tmp_path, pki, tls_member
):
    other = CertificateAuthority.create("another CA").write_ca(tmp_path / "other")
    with pytest.raises(EtcdTLSError, match=r"did not sign \(untrusted CA\)"):
        EtcdConnection(_settings(tls_member.endpoint, other.cert, pki.client)).get("k")

    authority = CertificateAuthority.load(pki.directory)
    now = datetime.datetime.now(datetime.UTC)
    expired = write_pair(
        tmp_path / "bad",
        "expired",
        *authority.issue(
            "etcd0",
            hosts=parse_hosts("127.0.0.1,localhost"),
            server=True,
            client=True,
            not_before=now - datetime.timedelta(days=30),
            not_after=now - datetime.timedelta(days=1),
        ),
    )
    elsewhere = write_pair(
        tmp_path / "bad",
        "elsewhere",
        *authority.issue("etcd0", hosts=parse_hosts("etcd.elsewhere.test"), server=True),
    )
    for name, pair, message in (
        ("expired", expired, "has expired"),
        ("elsewhere", elsewhere, "does not name the host"),
    ):
        # Health checks would fail on these certificates: wait for the port instead.
        server = EtcdServer(tmp_path / name, name, tls=_tls(pki, pair))
        server.start(wait=False)
        try:
            wait_until(lambda s=server: _listening(s.client_port), 30, f"{name} etcd listening")
            with pytest.raises(EtcdTLSError, match=message):
                EtcdConnection(_settings(server.endpoint, pki.ca, pki.client)).get("k")
        finally:
            server.stop()


def test_a_client_certificate_the_server_does_not_trust_is_named_as_the_problem(
    tmp_path, pki, tls_member
):
    stranger = CertificateAuthority.create("stranger CA")
    pair = write_pair(tmp_path / "s", "client", *stranger.issue("root", client=True))
    with pytest.raises(EtcdTLSError, match="refused this client's certificate"):
        EtcdConnection(_settings(tls_member.endpoint, pki.ca, pair)).get("k")


def test_a_client_certificate_logs_in_as_the_user_its_cn_names(pki, tls_member):
    # etcdctl presents the root client certificate (CN root): with auth on, that is root.
    tls_member.etcdctl("user", "add", "root:root-pw")
    tls_member.etcdctl("user", "grant-role", "root", "root")
    tls_member.etcdctl("role", "add", "alices")
    tls_member.etcdctl("role", "grant-permission", "alices", "--prefix", "readwrite", "alice/")
    tls_member.etcdctl("user", "add", "alice:alice-pw")
    tls_member.etcdctl("user", "grant-role", "alice", "alices")
    tls_member.etcdctl("auth", "enable")
    alice = write_pair(
        pki.directory,
        "client-alice",
        *CertificateAuthority.load(pki.directory).issue("alice", client=True),
    )
    with EtcdConnection(_settings(tls_member.endpoint, pki.ca, alice)) as conn:
        conn.put("alice/k", "mine")
        with pytest.raises(EtcdPermissionDenied, match="client certificate's CN lacks read-write"):
            conn.put("bob/k", "not mine")
    assert tls_member.etcdctl("get", "alice/k", "--print-value-only").stdout == "mine\n"


def test_three_members_made_by_certs_init_form_a_cluster_with_tls_between_them(tmp_path):
    certs = init_cluster_certificates(tmp_path / "pki", members=3)
    tls = [
        ServerTLS(
            certs.ca,
            member.server.cert,
            member.server.key,
            certs.client.cert,
            certs.client.key,
            peer_cert=member.peer.cert,
            peer_key=member.peer.key,
        )
        for member in certs.members
    ]
    cluster = _construct(lambda: EtcdCluster(tmp_path / "cluster", tls=tls))
    cluster.start()
    try:
        assert all(url.startswith("https://") for url in cluster.client_urls)
        settings = ConnectionSettings(
            tuple(cluster.endpoints),
            ca_file=str(certs.ca),
            cert_file=str(certs.client.cert),
            key_file=str(certs.client.key),
        )
        with EtcdConnection(settings) as conn:
            members = conn.members()
            conn.put("tls3/k", "replicated")
        assert len(members) == 3
        assert all(url.startswith("https://") for m in members for url in m.peer_urls)
        assert cluster.etcdctl("get", "tls3/k", "--print-value-only").stdout == "replicated\n"
    finally:
        cluster.stop()
