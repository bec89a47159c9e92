"""The package list, which pyproject.toml cannot say: everything `find_packages` discovers plus
`etcdadmin.resources`, whose files are the top-level resources/ folder (mapped in
pyproject.toml's [tool.setuptools.package-dir]). Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["etcdadmin*", "watcher_agent*"]), "etcdadmin.resources"])
