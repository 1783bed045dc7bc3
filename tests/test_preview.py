"""The live preview (--preview) without a browser: what it refuses, what it costs a run, and its
errors. tests/test_preview_browser.py opens the page in Chromium."""
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

import preview
from conftest import input_path, run_tool
from errors import ToolError
from pipeline import Progress


def get(url):
    """(status, body) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def live():
    with preview.serving(("127.0.0.1", 0), "test") as page:
        page.plan([(64, 48, 10, 1), (128, 96, 20, 4)], {"style_weight": 500.0, "output": None})
        yield page


def test_every_request_needs_the_token_and_only_the_runs_own_things_are_served(live):
    base, token = live.url.split("/?token=")
    assert base.startswith("http://127.0.0.1:")
    for path in ("/", "/state", "/image", "/previous", "/preview.py", "/../README.md"):
        assert get(base + path)[0] == 403
        assert get(base + path + "?token=" + token.upper())[0] == 403
    assert get(base + "/preview.py?token=" + token)[0] == 404
    assert get(base + "/%2e%2e/README.md?token=" + token)[0] == 404
    status, page = get(live.url)
    assert status == 200 and b"<canvas" in page and b"http" not in page.split(b"<script>")[1]  # nothing fetched from elsewhere
    assert get(base + "/image?token=" + token)[0] == 404  # no image yet


def test_state_follows_the_plan_the_levels_and_the_losses(live):
    base, token = live.url.split("/?token=")
    state = json.loads(get(base + "/state?token=" + token)[1])
    assert state["status"] == "running" and state["total"] == 30
    assert state["work_total"] == 10 * 64 * 48 + 20 * 128 * 96  # iterations x pixels: the share of time
    assert [(l["width"], l["height"], l["tiles"]) for l in state["levels"]] == [(64, 48, 1), (128, 96, 4)]
    assert state["settings"] == {"style_weight": 500.0}
    seen = []
    image = lambda: seen.append(1) or np.full((96, 128, 3), 200.0)  # noqa: E731
    for i in range(1, 11):
        live.iteration(Progress(1, 2, 64, 48, i, 10, np.array([1.0, 2, 3, 6]) * i, image))
    for i in range(1, 9):  # a level in 4 tiles: each tile's iteration is a quarter of the level's
        live.iteration(Progress(2, 2, 128, 96, i % 2 + 1, 20, None if i % 2 else np.ones(4), image))
    state = json.loads(get(base + "/state?token=" + token)[1])
    assert state["done"] == pytest.approx(12.0)
    assert state["work"] == pytest.approx(10 * 64 * 48 + 2 * 128 * 96)
    assert state["left"] >= 0.0  # at the rate since the first iteration
    assert len(state["points"]) == 14 and state["points"][9] == [10.0, 10.0, 20.0, 30.0, 60.0]
    assert [b[1] for b in state["bounds"]] == ["64x48", "128x96"]
    assert 1 <= len(seen) <= 2  # read at most once a second, while a page asks
    status, body = get(base + f"/image?token={token}")
    assert status == 200 and body[:2] == b"\xff\xd8"  # a JPEG
    live.finish(np.zeros((96, 128, 3)), "interrupted")
    state = json.loads(get(base + "/state?token=" + token)[1])
    assert state["status"] == "stopped" and state["why"] == "interrupted"


def test_no_image_is_read_while_no_page_is_open():
    with preview.serving(("127.0.0.1", 0)) as live:
        live.plan([(64, 48, 10, 1)], {})
        read = []
        for i in range(1, 6):
            live.iteration(Progress(1, 1, 64, 48, i, 10, np.ones(4), lambda: read.append(1)))
        assert read == []


def test_a_stalled_client_does_not_slow_the_run(live):
    host, port = live.server.server_address[:2]
    stalled = [socket.create_connection((host, port)) for _ in range(20)]  # connect, send nothing
    try:
        started = time.perf_counter()
        for i in range(1, 2001):
            live.iteration(Progress(1, 2, 64, 48, i, 10, np.ones(4), None))
        assert time.perf_counter() - started < 1.0
        base, token = live.url.split("/?token=")
        assert get(base + "/state?token=" + token)[0] == 200  # others are still served
    finally:
        for s in stalled:
            s.close()


def test_a_taken_port_is_a_clear_error_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ToolError, match=f"port {port}"):
            with preview.serving(("127.0.0.1", port)):
                pass
        out = tmp_path / "out.png"
        result = run_tool("neural_style.py", "--network-type", "sqz", "--content", input_path("cat.png"),
                          "--styles", input_path("starry_night.jpg"), "--output", out, "--preview",
                          "--preview-port", port)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"cannot listen on port {port} on 127.0.0.1" in result.stderr and "--preview-port" in result.stderr
    assert not out.exists()


def test_preview_flags_are_checked():
    result = run_tool("neural_style.py", "--content", "c.jpg", "--styles", "s.jpg", "--preview-port", "8080")
    assert result.returncode == 2 and "--preview-host and --preview-port need --preview" in result.stderr
    result = run_tool("batch.py", "--contents", "c.jpg", "--styles", "s.jpg", "--preview", "--preview-port", "70000")
    assert result.returncode == 2 and "--preview-port must be between 1 and 65535" in result.stderr


def test_another_interface_is_warned_of(capsys):
    with preview.serving(("0.0.0.0", 0)) as live:
        assert live.url.startswith("http://0.0.0.0:")
    err = capsys.readouterr().err
    assert "warning: --preview-host 0.0.0.0" in err and err.count("preview: http://") == 1


def test_without_preview_nothing_is_started():
    before = threading.active_count()
    with preview.serving(None) as live:
        assert live is None and threading.active_count() == before
