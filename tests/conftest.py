"""Session fixtures for the real-service stack (etcd, Swift, a private dockerd, images).

Each service starts once per session, on demand, and is stopped at the end even when tests
fail. A machine without the stack's packages skips the tests that need them, naming the
package to install; under CI (``CI`` set) that is a failure instead, so a broken CI image
cannot pass by skipping everything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Protocol, TypeVar

import pytest

from tests.stack.procs import MissingBinary, StackUnavailable

if TYPE_CHECKING:
    from tests.stack.access import SecuredEtcd
    from tests.stack.docker_daemon import DockerDaemon
    from tests.stack.etcd import EtcdCluster, EtcdServer
    from tests.stack.keyring_service import KeyringService
    from tests.stack.secure import SecureCluster
    from tests.stack.swift import SwiftAIO

REPO_ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class _Startable(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


Service = TypeVar("Service", bound=_Startable)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(exc: StackUnavailable) -> NoReturn:
    """Skip, or under CI fail, because the machine lacks something the stack needs."""
    if isinstance(exc, MissingBinary):
        message = f"needs {exc.name}: apt-get install {exc.package}"
    else:
        message = f"needs {exc}"
    if _in_ci():
        pytest.fail(f"{message} (CI is set: the CI image must provide it)", pytrace=False)
    pytest.skip(message)


def _construct(factory: Callable[[], T]) -> T:
    """Call ``factory``; when the machine lacks what it needs, skip (or fail under CI)."""
    try:
        return factory()
    except StackUnavailable as exc:
        missing = exc
    # Outside the except block, so the report shows the hint, not a chained traceback.
    _unavailable(missing)


def _require_module(module: str, distribution: str) -> None:
    """A missing Python package skips locally and fails under CI, like a missing service."""
    try:
        __import__(module)
    except ImportError:
        message = f"needs the Python package {distribution}: run bash .ci/install"
        if _in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@contextmanager
def _running(factory: Callable[[], Service]) -> Iterator[Service]:
    """Construct (skip or fail when the machine lacks it), start, and always stop."""
    service = _construct(factory)
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def stack_root() -> Iterator[Path]:
    """A private directory for all service state, removed at the end of the session.

    Short and under /tmp on purpose: dockerd's and containerd's unix sockets live in it and
    socket paths are limited to 108 bytes.
    """
    root = Path(tempfile.mkdtemp(prefix="etcdadmin-stack-", dir="/tmp"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if root.exists():
            warnings.warn(f"could not remove the stack's state dir {root}", stacklevel=1)


@pytest.fixture(scope="session")
def etcd_server(stack_root: Path) -> Iterator[EtcdServer]:
    """One etcd member, started once per session."""
    from tests.stack.etcd import EtcdServer

    with _running(lambda: EtcdServer(stack_root / "etcd")) as server:
        yield server


@pytest.fixture
def private_etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    """An etcd member of the test's own, for tests that stop, restart, compact or lock it."""
    from tests.stack.etcd import EtcdServer

    with _running(lambda: EtcdServer(tmp_path / "etcd", "private")) as server:
        yield server


@pytest.fixture
def etcd_cluster(tmp_path: Path) -> Iterator[EtcdCluster]:
    """A three-member cluster of the test's own: tests stop and start its members."""
    from tests.stack.etcd import EtcdCluster

    with _running(lambda: EtcdCluster(tmp_path / "etcd-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def os_keyring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The real Secret Service keyring (gnome-keyring on a private session bus).

    Its variables go into this process's environment (and so into child processes) for the
    session, then are restored.
    """
    from tests.stack.keyring_service import KeyringService

    service = _construct(lambda: KeyringService(tmp_path_factory.mktemp("keyring")))
    service.start()
    saved = {k: os.environ.get(k) for k in service.env}
    os.environ.update(service.env)
    try:
        # keyring works out which backends can run once per process (`get_all_keyring` is
        # cached) and picks one: a test that read the keyring before this session bus existed
        # left it the "no keyring" one, and every keyring test after it failed. Work it out
        # again now (inside `try`: a failure here still stops the service).
        import keyring.backend
        import keyring.core

        with contextlib.suppress(KeyError):  # KeyError: nothing was worked out yet
            keyring.backend.get_all_keyring.reset()  # type: ignore[attr-defined]
        keyring.core.init_backend()
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        service.stop()


@pytest.fixture
def private_keyring(tmp_path: Path) -> Iterator[KeyringService]:
    """A keyring daemon of the test's own (its `env` for child processes): tests restart it."""
    from tests.stack.keyring_service import KeyringService

    with _running(lambda: KeyringService(tmp_path / "keyring")) as service:
        yield service


@pytest.fixture(scope="session")
def age_cli() -> str:
    """Debian's `age` binary: the stock tool that must open what etcdadmin seals."""
    from tests.stack.procs import require_binary

    return _construct(lambda: require_binary("age", "age"))


@pytest.fixture(scope="session")
def swift(stack_root: Path) -> Iterator[SwiftAIO]:
    """Swift all-in-one with tempauth (``swift.user`` / ``swift.key``)."""
    _require_module("swiftclient", "python-swiftclient")
    from tests.stack.swift import SwiftAIO

    with _running(lambda: SwiftAIO(stack_root / "swift")) as service:
        yield service


@pytest.fixture(scope="session")
def docker_daemon(stack_root: Path) -> Iterator[DockerDaemon]:
    """A private dockerd: no bridge, no iptables, host networking only."""
    _require_module("docker", "docker")
    from tests.stack.docker_daemon import DockerDaemon

    with _running(lambda: DockerDaemon(stack_root / "docker")) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def registry_image(docker_daemon: DockerDaemon) -> str:
    """Tag of the registry image (built once; rebuilt when the binary changes)."""
    from tests.stack.images import REGISTRY_TAG, build_registry_image

    client = docker_daemon.client()
    try:
        _construct(lambda: build_registry_image(client, REGISTRY_TAG))
    finally:
        client.close()
    return REGISTRY_TAG


@pytest.fixture(scope="session")
def base_image(docker_daemon: DockerDaemon) -> str:
    """Tag of the Debian bookworm + python3 base (debootstrap once, cached as a tarball)."""
    from tests.stack.images import BASE_TAG, build_base_image

    client = docker_daemon.client()
    try:
        _construct(lambda: build_base_image(client, BASE_TAG))
    finally:
        client.close()
    return BASE_TAG


@pytest.fixture(scope="session")
def agent_image(docker_daemon: DockerDaemon, base_image: str) -> str:
    """Tag of the watcher agent image, built from this checkout's ``Dockerfile.agent``."""
    from tests.stack.images import AGENT_TAG, build_agent_image

    client = docker_daemon.client()
    try:
        build_agent_image(client, REPO_ROOT, base_image, AGENT_TAG)
    finally:
        client.close()
    return AGENT_TAG


@pytest.fixture(scope="module")
def auth_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredEtcd]:
    """An etcd of the module's own with auth enabled (root's password:
    `tests.stack.access.ROOT_PASSWORD`). Never the session's `etcd_server`: other tests share
    that one without credentials."""
    from tests.stack.access import enable_auth_with_etcdctl
    from tests.stack.etcd import EtcdServer

    state = tmp_path_factory.mktemp("auth-etcd")
    with _running(lambda: EtcdServer(state, "auth")) as server:
        yield enable_auth_with_etcdctl(server)


@pytest.fixture(scope="module")
def secure_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    """Three TLS members with auth on and a team (`tests.stack.secure`), one per module: tests
    that stop a member start it again before they end."""
    from tests.stack.secure import start_secure_cluster

    state = tmp_path_factory.mktemp("secure")
    cluster = _construct(lambda: start_secure_cluster(state))
    try:
        yield cluster
    finally:
        cluster.stop()
