"""The real-service test stack: etcd, Swift, a private dockerd, the registry and the agent image.

One module per service (``etcd``, ``swift``, ``docker_daemon``, ``registry``, ``images``) on top
of ``procs`` (process, port and waiting helpers). Each class starts real processes from Debian
packages with all state in a directory it is given, and stops them by pid. Used by the session
fixtures in ``tests/conftest.py`` and by the demo (``python -m tests.stack.demo``).
"""
