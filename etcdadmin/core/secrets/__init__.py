"""Secret values: age envelopes bound to their key, recipients per directory, keys.

- `envelope`: the one owner of the format (seal, open, fingerprint);
- `recipients`: who may open a directory's secrets, kept in etcd (public keys only);
- `identities`: private key files (the agent's PRIVATE_KEY) and new agent keys;
- `operator`: the operator's own identity in the OS keyring;
- `opener`: opening many secrets with a cache keyed by ciphertext;
- `finder`: which of some keys hold a secret, for views that mark them.
"""
