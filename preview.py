"""The live preview of a run (--preview): a small web server on this machine and one page
(preview.html) that shows the running image, the loss curves, the plan, the progress and the end.

The run only records what happened (a few list appends per iteration, under a lock). The page asks
for the state about twice a second; the server answers from that record in its own threads, so a
slow or absent browser costs the run nothing. The running image is read back from the optimiser at
most once every IMAGE_EVERY seconds, and only while a page is open; it is encoded when asked for.

Every request must carry the run's random token (?token=...), else it is refused (403). Only the
page, the state and the run's own images are served, never files by path.
"""
import contextlib
import io
import json
import os
import secrets
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from PIL import Image

import images
from errors import Interrupted, ToolError

# The page: beside this file, or where `pip install .` puts it (as the bundled weights)
PAGES = (os.path.join(os.path.dirname(os.path.abspath(__file__)), "preview.html"),
         os.path.join(sys.prefix, "share", "neural-style", "preview.html"))
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
IMAGE_EVERY = 2.0       # seconds between two reads of the running image
PAGE_GONE = 5.0         # a page that has not asked for this long is closed: no image is read for it
LAST_LOOK = 3.0         # at the end, how long an open page is waited for to fetch the final state
IMAGE_SIDE = 1024       # the images are sent at most this large
REQUEST_TIMEOUT = 10.0  # seconds a client may take over one request


class Preview:
    """The page of one command's run, made by `serving`. The run tells it `units` (a video's frames
    or a batch's pairs), each unit's `plan`, `unit`, every `iteration`, `unit_done`, and `finish`."""

    def __init__(self, host, port, title):
        self.token = secrets.token_urlsafe(18)
        self.lock = threading.Lock()
        with open(next((p for p in PAGES if os.path.exists(p)), PAGES[0]), "rb") as f:
            self.page = f.read()
        self.started = time.time()
        self.state = dict(title=title, status="starting", why=None, levels=[], settings={}, units=1, unit=0,
                          unit_label=None, unit_name=None, level=None, done=0.0, total=0.0, elapsed=0.0,
                          work=0.0, work_total=0.0, left=None,
                          image=0, previous=0, points=[], bounds=[])
        self.images = {"image": None, "previous": None}  # name -> (version, pixels)
        self.encoded = {}  # name -> (version, JPEG bytes)
        # Where the running level began (iterations, and work: iterations x pixels), its calls so far
        self.level_start, self.level_work, self.calls = 0.0, 0.0, 0
        self.per_unit = (0, 0)  # one unit's iterations and work, from its plan
        self.first = None  # (time, work) at the first iteration: the rate leaves out the start-up
        self.last_read = 0.0
        self.last_request = 0.0
        self.final_seen = threading.Event()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("Server", (ThreadingHTTPServer,), dict(address_family=family, daemon_threads=True))
        try:
            self.server = server_class((host, port), Handler)
        except OSError as e:
            what = f"port {port} on {host}" if port else f"a port on {host}"
            raise ToolError(f"--preview: cannot listen on {what}: {e.strerror or e}"
                            + (" (choose another --preview-port, or leave it out for a free one)" if port else ""))
        self.server.preview = self
        self.thread = threading.Thread(target=self.server.serve_forever, name="preview", daemon=True)
        self.thread.start()

    @property
    def url(self):
        host, port = self.server.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/?token={self.token}"

    # --- what the run tells -------------------------------------------------------------------

    def units(self, count, name):
        """The run makes `count` units of one plan each: frames or pairs (`name`)."""
        with self.lock:
            self.state.update(units=count, unit_name=name)

    def plan(self, levels, settings):
        """The (unit's) plan: `levels` [(width, height, iterations, tiles)] smallest first, and the
        settings shown ({flag: value})."""
        with self.lock:
            s = self.state
            s["levels"] = [dict(width=w, height=h, iterations=n, tiles=t) for w, h, n, t in levels]
            s["settings"] = {k: v for k, v in settings.items() if v is not None}
            s["status"] = "running"
            self.per_unit = (sum(n for _, _, n, _ in levels), sum(n * w * h for w, h, n, _ in levels))
            s["total"], s["work_total"] = (s["units"] * amount for amount in self.per_unit)

    def unit(self, index, label):
        """Unit `index` (0-based) of the plan starts: a video's frame or a batch's pair."""
        with self.lock:
            s = self.state
            s.update(unit=index, unit_label=label, level=None)
            s["done"], s["work"] = (index * amount for amount in self.per_unit)

    def iteration(self, progress):
        """After every iteration (pipeline.Progress): the loss point, the progress, and now and then
        the running image."""
        with self.lock:
            s = self.state
            tiles = s["levels"][progress.level - 1]["tiles"]
            if s["level"] != progress.level:
                s["level"] = progress.level
                s["bounds"].append([s["done"], f"{progress.width}x{progress.height}"])
                self.level_start, self.level_work, self.calls = s["done"], s["work"], 0
            self.calls += 1
            # A level in tiles calls once per tile and iteration.
            iterations = self.calls / tiles
            s["done"] = self.level_start + iterations
            s["work"] = self.level_work + iterations * progress.width * progress.height
            if progress.losses is not None:
                s["points"].append([round(s["done"], 3)] + [float(v) for v in progress.losses])
            now = time.time()
            if self.first is None:
                self.first = (now, s["work"])
            wanted = now - self.last_request < PAGE_GONE and now - self.last_read >= IMAGE_EVERY
        if wanted and progress.image is not None:
            pixels = progress.image()  # outside the lock: it reads back from the device
            self.last_read = time.time()
            self._set_image("image", pixels)

    def unit_done(self, pixels):
        """The unit's result: shown as the previous one (a video's last finished frame)."""
        self._set_image("previous", pixels)

    def finish(self, pixels=None, why=None):
        """The run ended: with `pixels` its result, and `why` if it stopped early. An open page is
        given a moment to fetch it."""
        if pixels is None and self.images["previous"] is not None:
            pixels = self.images["previous"][1]  # a video's last frame
        if pixels is not None:
            self._set_image("image", pixels)
        with self.lock:
            self.state.update(status="stopped" if why else "finished", why=why)
            self.state["elapsed"] = time.time() - self.started
            open_page = time.time() - self.last_request < PAGE_GONE
            self.final_seen.clear()
        if open_page:
            self.final_seen.wait(LAST_LOOK)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _set_image(self, name, pixels):
        with self.lock:
            version = self.state[name] + 1
            self.images[name] = (version, pixels)
            self.state[name] = version

    # --- what the page asks for ---------------------------------------------------------------

    def state_json(self, since=0):
        """The state, with the loss points from number `since` on (the page has the others)."""
        with self.lock:
            self.last_request = time.time()
            points = self.state["points"]
            state = dict(self.state, points=points[since:] if since <= len(points) else points,
                         first=since if since <= len(points) else 0, bounds=list(self.state["bounds"]))
            if state["status"] in ("running", "starting"):
                now = time.time()
                state["elapsed"] = now - self.started
                if self.first and state["work"] > self.first[1]:  # seconds left at the rate so far
                    rate = (now - self.first[0]) / (state["work"] - self.first[1])
                    state["left"] = rate * (state["work_total"] - state["work"])
            sent = self.encoded.get("image")
            if state["status"] not in ("running", "starting") and sent and sent[0] == state["image"]:
                self.final_seen.set()  # the page has the final image and now learns that it is final
        return json.dumps(state).encode()

    def image_bytes(self, name):
        with self.lock:
            self.last_request = time.time()
            held = self.images.get(name)
            cached = self.encoded.get(name)
            ended = self.state["status"] not in ("running", "starting")
        if held is None:
            return None
        version, pixels = held
        if cached is None or cached[0] != version:
            picture = Image.fromarray(images.to_uint8(pixels))
            picture.thumbnail((IMAGE_SIDE, IMAGE_SIDE), Image.LANCZOS)
            buffer = io.BytesIO()
            picture.save(buffer, "JPEG", quality=92)
            cached = (version, buffer.getvalue())
            with self.lock:
                self.encoded[name] = cached
        if ended and name == "image":
            self.final_seen.set()
        return cached[1]


class Handler(BaseHTTPRequestHandler):
    """GET / (the page), /state (JSON), /image and /previous (JPEG); each with ?token=."""
    timeout = REQUEST_TIMEOUT
    server_version = "neural-style-preview"
    sys_version = ""

    def do_GET(self):
        preview = self.server.preview
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        token = query.get("token", [""])[0]
        if not secrets.compare_digest(token.encode(), preview.token.encode()):
            return self.reply(HTTPStatus.FORBIDDEN, b"this page's address carries the token the run printed\n",
                              "text/plain; charset=utf-8")
        if url.path == "/":
            return self.reply(HTTPStatus.OK, preview.page, "text/html; charset=utf-8")
        if url.path == "/state":
            since = query.get("since", ["0"])[0]
            return self.reply(HTTPStatus.OK, preview.state_json(int(since) if since.isdigit() else 0),
                              "application/json")
        if url.path in ("/image", "/previous"):
            body = preview.image_bytes(url.path[1:])
            if body is None:
                return self.reply(HTTPStatus.NOT_FOUND, b"no image yet\n", "text/plain; charset=utf-8")
            return self.reply(HTTPStatus.OK, body, "image/jpeg")
        return self.reply(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

    def reply(self, status, body, content_type):
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")  # the token stays in this page
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", "default-src 'none'; img-src 'self'; connect-src 'self'; "
                                                        "script-src 'unsafe-inline'; style-src 'unsafe-inline'")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass  # the browser went away: nothing to do

    def log_message(self, format, *args):
        pass  # the run's output stays the run's


def why_stopped(error):
    """What the page says of a run that ended with `error`."""
    if isinstance(error, (Interrupted, KeyboardInterrupt)):
        return "terminated" if getattr(error, "exit_code", 130) == 143 else "interrupted (Ctrl-C)"
    return str(error) or type(error).__name__


@contextlib.contextmanager
def serving(options, title="neural-style"):
    """The page of a run for as long as the block lasts, or None without `options` ((host, port)
    of --preview-host and --preview-port; port 0: a free one). Its address is printed once; a port
    that cannot be had is a ToolError, before the run starts. A run that fails shows why."""
    if not options:
        yield None
        return
    host, port = options
    if host not in LOCAL_HOSTS:
        print(f"warning: --preview-host {host}: the page is reachable from other machines on that network "
              "(anyone with its address, token included, sees the run)", file=sys.stderr)
    live = Preview(host, port, title)
    print(f"preview: {live.url}", file=sys.stderr, flush=True)
    try:
        yield live
    except BaseException as e:
        live.finish(why=why_stopped(e))
        raise
    finally:
        live.close()
