"""Images for the test stack, all built locally: no registry is reachable to pull from.

* the Docker registry: Debian's ``docker-registry`` binary and the libraries ``ldd`` names, in a
  ``FROM scratch`` image;
* a Debian base with Python: ``debootstrap`` once, cached as a tarball, then imported;
* the watcher agent: ``Dockerfile.agent`` on that base, installing wheels built on the host
  (pip inside a build cannot reach the package index here).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.stack.docker_daemon import CACHE_ROOT
from tests.stack.procs import StackError, StackUnavailable, require_binary, run_checked

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)

REGISTRY_TAG = "etcdadmin-stack/registry:2.8"
BASE_TAG = "etcdadmin-stack/debian-python:bookworm"
AGENT_TAG = "etcdadmin/watcher-agent:test"
BINARY_SHA_LABEL = "etcdadmin.stack.binary-sha256"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
REGISTRY_BINARY = Path("/usr/bin/docker-registry")
# The classic builder colours RUN output (stderr in red); error messages want plain text.
_ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def build_registry_image(client: docker.DockerClient, tag: str = REGISTRY_TAG) -> str:
    """Build (or reuse) the registry image; return its id.

    The image carries the sha256 of the binary it was built from, so a ``docker-registry``
    package upgrade rebuilds it and an unchanged binary costs one image lookup.
    """
    binary = Path(require_binary("docker-registry", "docker-registry")).resolve()
    digest = _sha256(binary)
    existing = _image_or_none(client, tag)
    if existing is not None and existing.labels.get(BINARY_SHA_LABEL) == digest:
        return str(existing.id)
    with tempfile.TemporaryDirectory(prefix="registry-image-") as tmp:
        context = Path(tmp)
        rootfs = context / "rootfs"
        _copy_file(binary, rootfs / str(REGISTRY_BINARY).lstrip("/"))
        for library in _shared_libraries(binary):
            _copy_file(library.resolve(), rootfs / str(library).lstrip("/"))
        # Go's os.TempDir() is /tmp; uploads may stage there. The config dir is a mount point.
        (rootfs / "tmp").mkdir(mode=0o1777)
        (rootfs / "tmp").chmod(0o1777)
        (rootfs / "etc/docker/registry").mkdir(parents=True)
        (context / "Dockerfile").write_text(
            "FROM scratch\n"
            "COPY rootfs/ /\n"
            f'LABEL {BINARY_SHA_LABEL}="{digest}"\n'
            f'ENTRYPOINT ["{REGISTRY_BINARY}", "serve", "/etc/docker/registry/config.yml"]\n'
        )
        return _build(client, "registry image", path=str(context), tag=tag, rm=True)


def build_base_image(
    client: docker.DockerClient,
    tag: str = BASE_TAG,
    mirror: str = DEBIAN_MIRROR,
) -> str:
    """Build (or reuse) a Debian bookworm image with python3 and venv; return its id.

    debootstrap takes about 40 s, so its result is kept as a tarball in the cache directory and
    later runs (or a fresh data-root) only import it, in a few seconds.
    """
    existing = _image_or_none(client, tag)
    if existing is not None:
        return str(existing.id)
    tarball = CACHE_ROOT / f"debian-python-bookworm-{'-'.join(BASE_PACKAGES)}.tar"
    with _cache_lock("debootstrap"):
        if not tarball.exists():
            _debootstrap_tarball(tarball, mirror)
    repository, _, version = tag.rpartition(":")
    client.api.import_image_from_file(
        str(tarball),
        repository=repository,
        tag=version,
        changes=['CMD ["/bin/bash"]', "ENV LANG=C.UTF-8"],
    )
    return str(client.images.get(tag).id)


def build_agent_image(
    client: docker.DockerClient,
    repo_root: Path,
    base_tag: str,
    tag: str = AGENT_TAG,
) -> str:
    """Build the watcher agent image from ``Dockerfile.agent``; return its id.

    Wheels for the project, its dependencies and its build backend are made on the host, where
    pip reaches the index; the Dockerfile then installs with ``--no-index`` from the context.
    The build backend matters: pip installs ``/src`` from source, and its isolated build env
    may only use what ``--find-links`` offers.
    """
    repo_root = Path(repo_root).resolve()
    wheel_dir = repo_root / "build" / "agent-wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    with (repo_root / "pyproject.toml").open("rb") as file:
        pyproject = tomllib.load(file)
    # The project's own wheel keeps its version while its code changes: always rebuild it.
    project = re.sub(r"[-_.]+", "_", pyproject["project"]["name"])
    for stale in wheel_dir.glob(f"{project}-*.whl"):
        stale.unlink()
    build_requires = pyproject.get("build-system", {}).get("requires", ["setuptools", "wheel"])
    run_checked(
        [
            sys.executable, "-m", "pip", "wheel",
            "--disable-pip-version-check",
            "--wheel-dir", str(wheel_dir),
            str(repo_root), *map(str, build_requires),
        ],
        "pip wheel of the agent",
        # Fixed zip timestamps make the wheel byte-identical while the sources are, so
        # Docker's cache keeps the COPY and pip install layers of an unchanged agent.
        env={"SOURCE_DATE_EPOCH": "315532800"},
    )  # fmt: skip
    return _build(
        client,
        "agent image",
        path=str(repo_root),
        dockerfile="Dockerfile.agent",
        tag=tag,
        buildargs={
            "BASE_IMAGE": base_tag,
            "PIP_OPTIONS": "--no-index --find-links /src/build/agent-wheels",
        },
        network_mode="host",
        rm=True,
        forcerm=True,
    )


def _build(client: docker.DockerClient, what: str, **kwargs: Any) -> str:
    """``client.images.build`` with a ``StackError`` that quotes the end of the build log."""
    import docker.errors

    try:
        image, _ = client.images.build(**kwargs)
    except docker.errors.BuildError as exc:
        lines = [
            str(chunk.get("stream") or chunk.get("error") or "").rstrip() for chunk in exc.build_log
        ]
        log_tail = _ANSI_COLOUR.sub("", "\n".join(line for line in lines if line))
        log_tail = "\n".join(log_tail.splitlines()[-40:])
        raise StackError(f"building the {what} failed: {exc.msg}\n{log_tail}") from exc
    except docker.errors.APIError as exc:
        raise StackError(f"building the {what} failed: {exc}") from exc
    return str(image.id)


def _debootstrap_tarball(tarball: Path, mirror: str) -> None:
    """debootstrap a minbase bookworm with python3 into a temp dir and tar it to ``tarball``."""
    debootstrap = require_binary("debootstrap", "debootstrap")
    if os.geteuid() != 0:
        raise StackUnavailable("debootstrap needs root to build the base image")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    # Same filesystem as the cache, so device nodes and the final rename both work.
    rootfs = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=tarball.parent))
    partial = tarball.with_suffix(".partial")
    try:
        run_checked(
            [
                debootstrap, "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                "bookworm", str(rootfs), mirror,
            ],
            "debootstrap of the base image",
            timeout=1800,
        )  # fmt: skip
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / leftover).glob("*"):
                if entry.is_file():
                    entry.unlink()
        run_checked(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
            "tar of the debootstrap root",
        )
        partial.replace(tarball)
    finally:
        partial.unlink(missing_ok=True)
        _remove_rootfs(rootfs)


def _remove_rootfs(rootfs: Path) -> None:
    """Delete a debootstrap root, unless a mount survived in it (debootstrap died mid-way).

    debootstrap mounts /proc and /sys in the target while it installs; deleting through a
    mount would reach the host's files, so such a root is left for a human.
    """
    for mount_point in ("proc", "sys"):
        subprocess.run(
            ["umount", "--recursive", str(rootfs / mount_point)], capture_output=True, check=False
        )
    prefix = f"{rootfs}/"
    with open("/proc/self/mounts") as mounts:
        busy = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    if busy:
        log.warning("leaving %s in place: still mounted: %s", rootfs, ", ".join(busy))
        return
    shutil.rmtree(rootfs, ignore_errors=True)


@contextmanager
def _cache_lock(name: str) -> Iterator[None]:
    """Serialise slow cache fills between concurrent test sessions on one machine."""
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with (CACHE_ROOT / f"{name}.lock").open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _image_or_none(client: docker.DockerClient, tag: str) -> Any:
    import docker.errors

    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def _shared_libraries(binary: Path) -> list[Path]:
    """The libraries ``ldd`` lists for ``binary``, as the paths the loader will look for."""
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        if "not a dynamic executable" in result.stdout + result.stderr:
            return []  # a static binary needs nothing next to it
        raise StackError(f"ldd {binary} failed: {result.stderr.strip()}")
    libraries = []
    for line in result.stdout.splitlines():
        # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux... (0x...)"
        path = line.split("=>")[-1].strip().split(" (")[0].strip()
        if path.startswith("/"):
            libraries.append(Path(path))
    return libraries


def _copy_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(stat.S_IMODE(source.stat().st_mode) | 0o444)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
