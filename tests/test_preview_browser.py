"""The live preview page (--preview) in a real browser: headless Chromium (Debian's package) opens
the page of a real small run. Marked `browser`: `python -m pytest -q -m browser` runs them (they need
`apt-get install chromium chromium-driver`); .ci/run does."""
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from conftest import ROOT, input_path

sys.path.append(os.path.join(ROOT, "benchmarks"))  # after the root: its video.py is not the tool's
import chromium  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def start_run(tmp_path, *flags):
    """neural_style.py --preview on the cat and Starry Night: (process, page address)."""
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "neural_style.py"), "--network-type", "sqz",
         "--content", input_path("cat.png"), "--styles", input_path("starry_night.jpg"), "--no-collage",
         "--output", str(tmp_path / "out.png"), "--seed", "1", "--preview", *map(str, flags)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return process, chromium.address(process)


def status_of(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as e:
        return e.code


def test_page_follows_a_run_to_its_end_and_refuses_requests_without_the_token(tmp_path):
    process, url = start_run(tmp_path, "--width", 200, "--max-hierarchy", 2, "--iterations", 300)
    base, token = url.split("/?token=")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base)
    try:
        # Without the token, with another one, or asking for a file: refused.
        assert status_of(base + "/") == 403
        assert status_of(base + "/state") == 403
        assert status_of(base + "/image?token=" + token[:-1] + "x") == 403
        assert status_of(base + "/preview.py?token=" + token) == 404
        assert status_of(base + "/../README.md?token=" + token) == 404
        assert status_of(url) == 200

        browser = chromium.browser()
        try:
            browser.get(url)
            running = []
            while True:
                checksum, status, points = browser.execute_script(chromium.PAGE_STATE)
                if status != "running":
                    if status in ("finished", "stopped"):
                        break
                else:
                    running.append((checksum, points))
                time.sleep(0.4)
                assert process.poll() is None or status == "finished", "the run ended but the page did not say so"
            final_checksum, _, final_points = browser.execute_script(chromium.PAGE_STATE)
            assert process.wait(60) == 0
            # While the run went on, the image changed by itself and the plot gained points.
            shown = [c for c, _ in running if c is not None]
            assert len(set(shown)) >= 2, running
            counts = [p for _, p in running]
            assert counts[-1] > counts[0] > 0 or len(set(counts)) >= 2, counts
            # The end: said, and the final image and every point kept after the run's server is gone.
            time.sleep(1.5)
            checksum, status, points = browser.execute_script(chromium.PAGE_STATE)
            assert status == "finished" and checksum == final_checksum is not None and points == final_points
            plan = browser.find_element("id", "plan").text
            assert "200x132" in plan and "100x66" in plan
            assert browser.find_element("id", "progress-text").text.startswith("100%")
        finally:
            browser.quit()
    finally:
        process.kill()
        process.wait()


def test_page_of_a_stopped_run_says_why(tmp_path):
    process, url = start_run(tmp_path, "--width", 160, "--iterations", 3000)
    browser = chromium.browser()
    try:
        browser.get(url)
        deadline = time.time() + 120
        while browser.execute_script(chromium.PAGE_STATE)[0] is None:  # the first image shown
            assert time.time() < deadline
            time.sleep(0.3)
        process.send_signal(subprocess.signal.SIGINT)
        assert process.wait(60) == 130
        status = browser.find_element("id", "status").text
        why = browser.find_element("id", "why").text
        assert status == "stopped" and "interrupted" in why
    finally:
        browser.quit()
        process.kill()
        process.wait()


def follow(browser, url, process, probe, timeout=300):
    """Poll the page until it says the run finished: [probe(browser) while it ran]."""
    browser.get(url)
    seen, deadline = [], time.time() + timeout
    while browser.find_element("id", "status").text != "finished":
        assert time.time() < deadline and (process.poll() in (None, 0)), "the page did not show the end"
        seen.append(probe(browser))
        time.sleep(0.4)
    assert process.wait(60) == 0
    return seen


def test_video_page_shows_the_frame_beside_the_last_finished_one_and_the_temporal_term(tmp_path):
    import clips
    import images
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, frame in enumerate(clips.pan_and_zoom(size=(64, 96), pan_frames=4, zoom_frames=2)):
        images.save_image(str(frames / f"{i:04d}.png"), frame)
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "neural_video.py"), "--network-type", "sqz", "--content", str(frames),
         "--styles", input_path("starry_night.jpg"), "--iterations", "60", "--output", str(tmp_path / "out"),
         "--preview"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    browser = chromium.browser()
    try:
        seen = follow(browser, chromium.address(process), process, lambda b: (
            b.find_element("id", "image-caption").text, b.find_element("id", "previous-figure").is_displayed(),
            b.find_element("id", "previous-caption").text,
            [s.text for s in b.find_elements("css selector", "#legend span") if s.is_displayed()]))
        captions = {caption.split(",")[0] for caption, *_ in seen if caption.startswith("running")}
        assert len(captions) >= 3 and "running: frame 6 of 6" in captions, captions
        beside = [s for s in seen if s[1]]
        assert beside and all(s[2] == "the last finished frame" for s in beside)
        assert "temporal and other terms" in seen[-1][3]
        assert browser.find_element("id", "progress-text").text.startswith("frame 6 of 6 · 100%")
    finally:
        browser.quit()
        process.kill()
        process.wait()


def test_batch_page_counts_the_pairs(tmp_path):
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "batch.py"), "--contents", input_path("cat.png"),
         "--styles", input_path("starry_night.jpg"), input_path("the_scream.jpg"), "--output-dir", str(tmp_path),
         "--network-type", "sqz", "--width", "96", "--iterations", "60", "--no-collage", "--preview"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    browser = chromium.browser()
    try:
        seen = follow(browser, chromium.address(process), process, lambda b: b.find_element("id", "progress-text").text)
        assert any(text.startswith("pair 2 of 2") for text in seen), seen
        assert browser.find_element("id", "units").text == "2 pairs, each:"
    finally:
        browser.quit()
        process.kill()
        process.wait()
