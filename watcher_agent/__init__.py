"""The watcher agent: keeps a service's config file in step with an etcd directory."""
