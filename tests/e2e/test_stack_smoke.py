"""Smoke checks of the real-service stack, as a user would make them by hand.

If these fail, every other stack test fails for the same reason; they say which service is
broken before the seed demo's tests try to use all of them at once.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.stack.docker_daemon import STACK_LABELS, DockerDaemon
from tests.stack.etcd import EtcdCluster, EtcdServer
from tests.stack.procs import free_port
from tests.stack.registry import (
    push_image,
    registry_config,
    registry_up,
    run_registry,
    wait_container_exit,
    wait_registry_up,
    write_registry_config,
)
from tests.stack.swift import SwiftAIO, wait_for_objects

pytestmark = pytest.mark.stack


def test_etcdctl_reads_back_what_it_put(etcd_server: EtcdServer) -> None:
    key = f"smoke/{uuid.uuid4().hex}"
    etcd_server.etcdctl("put", key, "hello etcd")
    got = etcd_server.etcdctl("get", key, "--print-value-only").stdout
    assert got.strip() == "hello etcd"


def test_etcd_keeps_its_data_and_endpoint_across_a_restart(etcd_server: EtcdServer) -> None:
    key = f"smoke/{uuid.uuid4().hex}"
    endpoint = etcd_server.endpoint
    etcd_server.etcdctl("put", key, "survives")
    etcd_server.restart()
    assert etcd_server.endpoint == endpoint
    assert etcd_server.etcdctl("get", key, "--print-value-only").stdout.strip() == "survives"


def test_etcd_cluster_keeps_serving_with_one_member_down(etcd_cluster: EtcdCluster) -> None:
    assert len(set(etcd_cluster.endpoints)) == 3
    etcd_cluster.stop_member(0)
    etcd_cluster.etcdctl("put", "smoke/quorum", "two of three")
    etcd_cluster.start_member(0)
    got = etcd_cluster.members[0].etcdctl("get", "smoke/quorum", "--print-value-only").stdout
    assert got.strip() == "two of three"


def test_swift_object_uploaded_through_the_proxy_downloads_intact(swift: SwiftAIO) -> None:
    container = f"smoke-{uuid.uuid4().hex[:8]}"
    payload = uuid.uuid4().bytes * 4096
    connection = swift.connection()
    try:
        connection.put_container(container)
        connection.put_object(container, "blob", payload)
        _, body = connection.get_object(container, "blob")
        assert body == payload
        _, listing = connection.get_container(container)
        assert [item["name"] for item in listing] == ["blob"]
    finally:
        connection.close()


def test_registry_on_swift_serves_v2_and_a_push_lands_blobs_in_swift(
    tmp_path: Path, swift: SwiftAIO, docker_daemon: DockerDaemon, registry_image: str
) -> None:
    client = docker_daemon.client()
    suffix = uuid.uuid4().hex[:8]
    port, container_name = free_port(), f"smoke-registry-{suffix}"
    config_dir = tmp_path / "registry"
    write_registry_config(
        config_dir, registry_config(swift, swift.key, container=container_name, port=port)
    )
    registry = run_registry(client, registry_image, config_dir, container_name, port)
    try:
        wait_registry_up(registry, port)
        assert registry_up(port)

        repository = f"127.0.0.1:{port}/smoke"
        assert client.images.get(registry_image).tag(repository, "1")
        push_image(client, repository, "1")

        connection = swift.connection()
        try:
            wait_for_objects(connection, container_name, timeout=10)
            _, objects = connection.get_container(container_name, full_listing=True)
        finally:
            connection.close()
        names = [item["name"] for item in objects]
        assert any("/blobs/sha256/" in name for name in names), names
        assert any("/repositories/smoke/_manifests/tags/1/" in name for name in names), names
    finally:
        registry.remove(force=True)
        client.images.remove(f"127.0.0.1:{port}/smoke:1")
        client.close()


def test_registry_with_a_wrong_swift_password_exits_with_an_error(
    tmp_path: Path, swift: SwiftAIO, docker_daemon: DockerDaemon, registry_image: str
) -> None:
    client = docker_daemon.client()
    port, name = free_port(), f"smoke-bad-registry-{uuid.uuid4().hex[:8]}"
    config_dir = tmp_path / "registry"
    write_registry_config(config_dir, registry_config(swift, "wrong-password", port=port))
    registry = run_registry(client, registry_image, config_dir, name, port)
    try:
        assert wait_container_exit(registry, timeout=30) != 0, registry.logs(tail=20)
        assert not registry_up(port)
    finally:
        registry.remove(force=True)
        client.close()


def test_agent_image_has_the_agent_and_core_but_no_qt(
    docker_daemon: DockerDaemon, agent_image: str
) -> None:
    client = docker_daemon.client()
    try:
        output = client.containers.run(
            agent_image,
            entrypoint=["python3", "-c"],
            command=[
                "import importlib.util, etcdadmin.core, watcher_agent, docker, yaml;"
                "print('qt' if importlib.util.find_spec('PySide6') else 'ok')"
            ],
            network_mode="host",
            labels=STACK_LABELS,
            remove=True,
        )
    finally:
        client.close()
    assert output.decode().strip() == "ok"
