"""The layering rules, checked: the core and the agent never reach Qt, the GUI or the CLI, and
the agent uses nothing of etcdadmin but its core."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# What the Qt-free side must never import (a prefix matches the package and its modules).
FORBIDDEN = ("PySide6", "etcdadmin.gui", "etcdadmin.cli")
QT_FREE = ("etcdadmin/core", "watcher_agent")


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _names(module: str, path: Path) -> list[str]:
    """Every module `path` imports, at any depth (imports inside functions count too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing package
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from etcdadmin import gui` may import the module etcdadmin.gui; `from etcdadmin
            # import __version__` imports only the package etcdadmin
            names.append(base)
            names += [f"{base}.{a.name}" for a in node.names if not a.name.startswith("__")]
    return names


def _matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def imports_that_break_the_rules(root: Path) -> list[tuple[str, str]]:
    """(module, what it imports) for every import under `root` the rules forbid: Qt, the GUI
    or the CLI from the core or the agent; from the agent, anything of etcdadmin but its core."""
    found = []
    for top in QT_FREE:
        for path in sorted((root / top).rglob("*.py")):
            module = _module_name(root, path)
            for name in _names(module, path):
                agent_reaching = (
                    top == "watcher_agent"
                    and _matches(name, ("etcdadmin",))
                    and not _matches(name, ("etcdadmin.core",))
                    and name != "etcdadmin"
                )
                if _matches(name, FORBIDDEN) or agent_reaching:
                    found.append((module, name))
    return sorted(set(found))


# Imports every module of the Qt-free packages with Qt, the GUI and the CLI made unimportable;
# prints {module: error} for those that fail.
_IMPORT_ALL = textwrap.dedent(
    """
    import importlib, importlib.abc, json, pkgutil, sys

    FORBIDDEN = tuple(sys.argv[1].split(","))

    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == p or name.startswith(p + ".") for p in FORBIDDEN):
                raise ImportError(f"{name} is blocked: the Qt-free side must not import it")
            return None

    sys.meta_path.insert(0, Blocked())
    failed = {}
    for top in sys.argv[2:]:
        package = importlib.import_module(top)
        names = [top] + [
            m.name for m in pkgutil.walk_packages(package.__path__, top + ".")
            if not m.name.endswith(".__main__")  # runs the program
        ]
        for name in names:
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed[name] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(failed))
    """
)


def modules_that_fail_without_qt(root: Path) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, ",".join(FORBIDDEN), "etcdadmin.core", "watcher_agent"],
        cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return dict(json.loads(result.stdout))


def test_the_core_and_the_agent_import_without_qt_the_gui_or_the_cli():
    assert modules_that_fail_without_qt(REPO) == {}


def test_no_core_or_agent_module_even_mentions_an_import_of_qt_the_gui_or_the_cli():
    assert imports_that_break_the_rules(REPO) == []


def test_the_checks_report_a_core_module_that_imports_qt(tmp_path):
    for top in ("etcdadmin/core", "watcher_agent"):
        shutil.copytree(REPO / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "etcdadmin" / "__init__.py", tmp_path / "etcdadmin" / "__init__.py")
    names = tmp_path / "etcdadmin" / "core" / "tree" / "names.py"
    names.write_text(names.read_text() + "\n\ndef _late():\n    from PySide6 import QtCore\n")
    valueformat = tmp_path / "etcdadmin" / "core" / "tree" / "valueformat.py"
    valueformat.write_text(valueformat.read_text() + "\nimport PySide6.QtGui\n")
    loop = tmp_path / "watcher_agent" / "loop.py"
    loop.write_text(loop.read_text() + "\nfrom etcdadmin import gui\n")

    assert imports_that_break_the_rules(tmp_path) == [
        ("etcdadmin.core.tree.names", "PySide6"),
        ("etcdadmin.core.tree.names", "PySide6.QtCore"),
        ("etcdadmin.core.tree.valueformat", "PySide6.QtGui"),
        ("watcher_agent.loop", "etcdadmin.gui"),
    ]
    failed = modules_that_fail_without_qt(tmp_path)
    assert "etcdadmin.core.tree.valueformat" in failed
    assert "PySide6" in failed["etcdadmin.core.tree.valueformat"]
    assert "watcher_agent.loop" in failed
