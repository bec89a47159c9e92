"""The program's assets, installed as the package `etcdadmin.resources` (see setup.py).

Load them through `etcdadmin.core.assets`, never by a path relative to a source file: a wheel
install has no source tree. resources/screenshots/ is for the README and is not packaged.
"""
