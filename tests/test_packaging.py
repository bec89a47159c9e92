"""A wheel installed the way a user installs it (not editable) carries what the program loads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Builds the window from the installed wheel, in a fresh interpreter, outside the repository.
CHECK = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from PySide6.QtWidgets import QApplication

    import etcdadmin
    from etcdadmin.core.assets import asset
    from etcdadmin.core.config import mapping
    from etcdadmin.core.local.example import example_config
    from etcdadmin.gui.mainwindow import MainWindow

    venv = Path(sys.argv[1]).resolve()
    app = QApplication([])
    window = MainWindow(sandbox_dir=Path(sys.argv[2]))
    icons = {"window": window.windowIcon(), **window.model.icons}
    for name, icon in icons.items():
        assert not icon.isNull(), f"{name} icon is null"
        assert not icon.pixmap(16, 16).isNull(), f"{name} icon has no pixmap"
    keys = mapping.flatten(example_config(), "registry-test/")
    assert "registry-test/http/addr" in keys, sorted(keys)
    for path in (Path(etcdadmin.__file__), Path(str(asset("icons/key.svg")))):
        assert venv in path.resolve().parents, f"{path} is not in the installed venv"
    window.close()
    print("ok", sorted(icons), len(keys))
    """
)


def _build_wheel(source: Path, out: Path) -> Path:
    """A wheel of a copy of the repository's package files, built offline with this venv's
    own setuptools (no build isolation: nothing is downloaded)."""
    try:
        from setuptools import __version__ as setuptools_version
    except ImportError:  # pragma: no cover - the test extra installs it
        setuptools_version = "0"
    major, minor = (int(part) for part in setuptools_version.split(".")[:2])
    if (major, minor) < (70, 1):
        pytest.fail(
            f"setuptools {setuptools_version} cannot build a wheel by itself: reinstall the "
            "test extra (pip install -e '.[gui,test]') to get setuptools>=70.1"
        )
    tree = out / "src"
    for name in ("etcdadmin", "watcher_agent", "resources"):
        shutil.copytree(REPO / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, tree / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out / "dist"), str(tree)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (wheel,) = (out / "dist").glob("etcdadmin-*.whl")
    return wheel


def test_a_wheel_installed_into_a_fresh_venv_shows_icons_and_runs_the_cli(tmp_path, etcd_server):
    wheel = _build_wheel(REPO, tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "etcdadmin/resources/icons/key.svg" in names
    assert "etcdadmin/resources/icons/lock.svg" in names
    assert "etcdadmin/resources/example/registry.yml" in names
    assert not [n for n in names if "screenshots" in n], "the README's pictures stay out"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # The dependencies (PySide6, the etcd client) come from this test's venv, listed AFTER the
    # fresh venv's own site-packages, so the installed etcdadmin is the one imported. A path in
    # a .pth file does not run that directory's .pth files: this venv's editable install of
    # etcdadmin stays out.
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (Path(site) / "test-deps.pth").write_text("".join(f"{d}\n" for d in deps))
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "-q", str(wheel)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "check.py").write_text(CHECK)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(
        QT_QPA_PLATFORM="offscreen",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_RUNTIME_DIR=str(tmp_path / "runtime"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    (tmp_path / "runtime").mkdir(mode=0o700)
    result = subprocess.run(
        [str(python), "check.py", str(venv), str(tmp_path / "sandbox")],
        cwd=outside, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok ['dir', 'key', 'secret', 'window']")
    # The installed console script is the command line, talking to a real etcd.
    cli = [str(venv / "bin" / "etcdadmin"), "--endpoints", etcd_server.endpoint]
    helped = subprocess.run(
        [*cli, "--help"], cwd=outside, env=env, capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0, helped.stderr[-3000:]
    for command in ("apply", "export", "diff", "get", "put"):
        assert f"  {command} " in helped.stdout
    put = subprocess.run(
        [*cli, "put", "packaging/check", "--value", "from-the-wheel"],
        cwd=outside, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert put.returncode == 0, put.stderr[-3000:]
    assert etcd_server.etcdctl("get", "packaging/check", "--print-value-only").stdout.strip() == (
        "from-the-wheel"
    )
