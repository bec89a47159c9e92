"""The agent's /metrics server: a scraper hanging up is not an error worth a traceback."""

from __future__ import annotations

from watcher_agent.metrics import bind


def test_a_scraper_that_hangs_up_leaves_no_traceback_and_other_errors_one_line(capfd, caplog):
    server = bind(("127.0.0.1", 0))
    try:
        for error in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")):
            try:
                raise error
            except ConnectionError:
                server.handle_error(None, ("127.0.0.1", 1))
        try:
            raise ValueError("a bug in a handler")
        except ValueError:
            server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.server_close()
    assert "Traceback" not in capfd.readouterr().err
    failed = [r.getMessage() for r in caplog.records if "request failed" in r.getMessage()]
    assert failed == ["a /metrics or /healthz request failed: a bug in a handler"]
