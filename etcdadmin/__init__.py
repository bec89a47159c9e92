"""etcdadmin: configuration kept in etcd, edited by operators, applied by watcher agents."""

__version__ = "0.1.0"
