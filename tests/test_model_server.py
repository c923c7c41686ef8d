"""The model server a sweep holds: one that dies while held stops the run at once, with the reason, instead of
leaving the eval's requests waiting on a dead server until their retries run out."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from vendomini_eval.sweep import server

FAKE_SERVER = """
    import http.server, os, sys, threading, time
    port = int(sys.argv[sys.argv.index("--port") + 1])
    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
        def log_message(self, *args):
            pass
    threading.Thread(target=http.server.HTTPServer(("127.0.0.1", port), Healthy).serve_forever, daemon=True).start()
    time.sleep(float(os.environ["FAKE_SERVER_LIFE_S"]))
    os._exit(3)
"""


def fake_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, life_s: float) -> server.ServerSpec:
    """A stand-in for `vllm serve`: healthy at once, exits with status 3 after `life_s` seconds."""
    script = tmp_path / "fake_vllm.py"
    script.write_text(textwrap.dedent(FAKE_SERVER), encoding="utf-8")
    monkeypatch.setenv("VENDOMINI_SERVE_COMMAND", f"{sys.executable} {script}")
    monkeypatch.setenv("FAKE_SERVER_LIFE_S", str(life_s))
    return server.vllm_spec("vllm/fake-model", (), 1)


def test_a_server_that_dies_while_held_stops_the_run_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = fake_vllm(tmp_path, monkeypatch, life_s=2)
    lines: list[str] = []
    started = time.monotonic()
    died = r"the model server exited \(status 3\) during the run"
    with pytest.raises(server.ServerFailed, match=died), server.serve(spec, log=lines.append, timeout=30):
        time.sleep(60)  # the run: the watcher's signal ends it
    assert time.monotonic() - started < 20
    assert any("exited with status 3 during the run: stopping the run" in line for line in lines), lines


def test_a_server_stopped_at_the_end_of_the_run_is_not_a_death(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = fake_vllm(tmp_path, monkeypatch, life_s=60)
    lines: list[str] = []
    with server.serve(spec, log=lines.append, timeout=30) as environment:
        assert environment["VLLM_BASE_URL"].startswith("http://127.0.0.1:")
    time.sleep(1)  # a watcher that mistook the stop for a death would signal this process now
    assert not any("during the run" in line for line in lines), lines
