"""The `etcdadmin` command line: scripted reads and guarded writes on the Qt-free core."""
