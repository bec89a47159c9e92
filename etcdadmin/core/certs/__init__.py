"""Certificates for etcd over TLS: a throw-away authority and what etcd needs from it."""
