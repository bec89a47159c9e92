"""The agent's render time with secret values, beside the same directory in plaintext.

    .venv/bin/python -m benchmarks.agent_secrets [--secrets 1000] [--rounds 5]

A directory of ``--secrets`` keys ``bench/svcNN/keyNN``, every value sealed to a 3072-bit
`id_rsa` from `ssh-keygen` (the seed demo's agent key), goes through what the agent does before
it writes a config: `SecretValues.unseal` with the key loaded as PRIVATE_KEY loads it, then a
render in the agent's render process. Timed (wall clock, the decryptions run in the agent and
the render in its child):
1. the first render, where every secret is decrypted;
2. an unrelated change (one plain key changed), ``--rounds`` times: the cache by ciphertext
   means no decryption, so it should cost about what the plaintext directory costs.
The same directory with the values in plaintext is timed the same way. Target: the unrelated
change within 1.5x of plaintext. Not a test: it prints figures for the README.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from etcdadmin.core.secrets.envelope import seal
from etcdadmin.core.secrets.identities import identities as all_identities
from etcdadmin.core.secrets.recipients import parse_public_key
from watcher_agent.render_worker import RenderWorker
from watcher_agent.secret_values import SecretValues
from watcher_agent.settings import load_private_keys

BASE = "version: 0.1\nlog:\n  level: info\n"
DIRECTORY = "bench/"


def rsa_key(directory: Path) -> Path:
    path = directory / "id_rsa"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-f", str(path)], check=True
    )
    return path


def timed_render(
    values: SecretValues, renderer: RenderWorker, entries: Mapping[bytes, bytes]
) -> float:
    """Seconds for what `Applier` does before writing: open the secrets, then render."""
    started = time.perf_counter()
    unsealed = values.unseal(entries)
    if unsealed.failure is not None:
        raise SystemExit(f"cannot open a secret: {unsealed.failure}")
    outcome = renderer.render(BASE, unsealed.entries, DIRECTORY)
    if outcome.config is None:
        raise SystemExit(f"render failed: {outcome.error}")
    return time.perf_counter() - started


def measure(
    values: SecretValues, entries: dict[bytes, bytes], rounds: int
) -> tuple[float, list[float], int]:
    """(first render, unrelated changes, decryptions during the changes)."""
    renderer = RenderWorker(timeout=600, memory_limit=1 << 30)
    renderer.start()
    try:
        renderer.render(BASE, {}, DIRECTORY)  # the child's interpreter start is not timed
        first = timed_render(values, renderer, entries)
        before = values.decryptions
        changes = []
        for n in range(rounds):
            entries[b"bench/log/level"] = b"debug" if n % 2 else b"warn"
            changes.append(timed_render(values, renderer, entries))
        return first, changes, values.decryptions - before
    finally:
        renderer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agent-secrets-") as tmp:
        key = rsa_key(Path(tmp))
        recipient = parse_public_key(key.with_name("id_rsa.pub").read_text())
        identities = all_identities(load_private_keys(str(key)))
    plain = {
        f"bench/svc{n // 100:02d}/key{n % 100:02d}".encode(): b"s3cret-%06d" % n
        for n in range(args.secrets)
    }
    started = time.perf_counter()
    sealed = {k: seal(k, v, [recipient]) for k, v in plain.items()}
    seal_time = time.perf_counter() - started

    plain_first, plain_changes, _ = measure(SecretValues(identities), dict(plain), args.rounds)
    values = SecretValues(identities)
    secret_first, secret_changes, decrypted = measure(values, dict(sealed), args.rounds)

    plain_change = statistics.median(plain_changes)
    secret_change = statistics.median(secret_changes)
    print(f"{args.secrets:,} values, RSA-3072 id_rsa; sealing them took {seal_time:.2f} s")
    print(f"{'':34}{'plaintext':>12}{'secrets':>12}{'ratio':>8}")
    print(
        f"{'first render':34}{plain_first * 1000:>10.0f}ms{secret_first * 1000:>10.0f}ms"
        f"{secret_first / plain_first:>8.1f}"
    )
    print(
        f"{f'unrelated change (median of {args.rounds})':34}{plain_change * 1000:>10.0f}ms"
        f"{secret_change * 1000:>10.0f}ms{secret_change / plain_change:>8.2f}"
    )
    per_secret = (secret_first - plain_first) / args.secrets * 1000
    first_decryptions = values.decryptions - decrypted
    print(f"decryptions: {first_decryptions} in the first render ({per_secret:.1f} ms each),")
    print(f"             {decrypted} during the {args.rounds} unrelated changes")
    verdict = "met" if secret_change <= 1.5 * plain_change else "NOT met"
    print(f"target (unrelated change within 1.5x of plaintext): {verdict}")


if __name__ == "__main__":
    main()
