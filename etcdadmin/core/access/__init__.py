"""Who may read and write what in etcd: auth on and off, users, roles, directory grants,
teams, and what a user can reach. Qt-free; the CLI (`etcdadmin access ...`) and the client
share it. Every call goes through `EtcdConnection`'s auth calls (`etcdadmin.core.etcd.auth`).
"""
