"""The study web server: standard-library ``http.server`` with a strict JSON API.

HiLLIE's interface (Appendix D): participants see two images of the same content (A and B),
click the one with higher perceptual quality, zoom with the mouse wheel, move on automatically
after each choice, and the header tracks progress and time spent; results go to a CSV file.
Here every answer is written to the llbench database the moment it is given (CSV comes from
``llbench study export``), a participant who reloads or returns continues where they stopped,
and any number of participants can take part at once (one thread per request, SQLite WAL).

Routes:

* ``GET /``, ``/static/app.js``, ``/static/style.css``: the page (no external resources).
* ``GET /api/study``: title, instructions, kind, number of items, rating scale.
* ``POST /api/session`` ``{"participant": id}``: register or resume; returns progress.
* ``GET /api/next?participant=id``: the participant's next trial (records that it was shown).
* ``POST /api/answer`` ``{"participant", "item", "choice": "left"|"right"}`` or
  ``{"participant", "item", "rating": n}``: stores the answer, returns the next trial.
* ``GET /images/<token>.<ext>``: only files registered for this study, from its folder.

Validation: request bodies must be JSON objects of at most 4 KiB with exactly the expected keys
and types; participant ids and tokens must match fixed patterns; an answer must name an item
shown to that participant; a repeated identical answer is acknowledged without a second row
(idempotent) and a different answer to an answered item is refused with 409, leaving the stored
one intact. Bad requests get 4xx and never a stack trace; cross-origin writes are refused.
A request, headers and body included, must arrive within ``REQUEST_DEADLINE_S`` seconds in all
(a client sending a byte now and then cannot hold a thread longer), each read within
``REQUEST_TIMEOUT_S``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from llbench.study.model import (
    IMAGE_TYPES,
    PARTICIPANT_RE,
    StudyError,
    participant_schedule,
    trial_for,
)
from llbench.study.store import StudyStore

log = logging.getLogger("llbench.study.server")

MAX_BODY = 4096
DRAIN_LIMIT = 1 << 20
REQUEST_TIMEOUT_S = 20
REQUEST_DEADLINE_S = 30.0
ITEM_RE = re.compile(r"^[0-9a-f]{16}\Z")
IMAGE_RE = re.compile(r"^/images/([0-9a-f]{20}\.(?:png|jpg|jpeg|webp))\Z")
CONTENT_LENGTH_RE = re.compile(r"^[0-9]{1,12}\Z")
RATING_LABELS = {1: "Bad", 2: "Poor", 3: "Fair", 4: "Good", 5: "Excellent"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}


class HttpError(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


class StudyApp:
    """The study's logic behind the HTTP layer (one instance serves all threads)."""

    def __init__(self, home: str | Path, name: str):
        self.home = Path(home)
        self.sstore = StudyStore(self.home)
        self.study = self.sstore.require_study(name)
        self.name = name
        missing = [f for f in self.sstore.images(name) if not (self.study.image_dir / f).is_file()]
        if missing:
            raise StudyError(
                f"study {name!r} is missing {len(missing)} image file(s) in "
                f"{self.study.image_dir} (e.g. {missing[0]}); the study folder was changed"
            )
        self._static = {}
        files = resources.files("llbench.study") / "static"
        for route, (fname, ctype) in STATIC.items():
            self._static[route] = ((files / fname).read_bytes(), ctype)

    # -- helpers ---------------------------------------------------------------------------
    def static(self, route: str) -> tuple[bytes, str] | None:
        return self._static.get(route)

    def _participant(self, value: Any, must_exist: bool = True) -> str:
        if not isinstance(value, str) or not PARTICIPANT_RE.match(value):
            raise HttpError(
                400,
                "invalid participant id: use 1-64 letters, digits, '_', '-', '.' or '@', "
                "starting with a letter or digit",
            )
        if must_exist and not self.sstore.has_participant(self.name, value):
            raise HttpError(404, "unknown participant: start a session first")
        return value

    def info(self) -> dict[str, Any]:
        s = self.study
        out = {
            "name": s.name,
            "kind": s.kind,
            "title": s.title,
            "instructions": s.instructions,
            "items": len(self.sstore.items(self.name)),
        }
        if s.kind == "rating":
            out["scale"] = [
                {"value": v, "label": RATING_LABELS.get(v, str(v)) if s.scale_max == 5 else str(v)}
                for v in range(s.scale_min, s.scale_max + 1)
            ]
        return out

    def session(self, participant: Any) -> dict[str, Any]:
        p = self._participant(participant, must_exist=False)
        _, new = self.sstore.start_participant(self.name, p)
        total = len(self.sstore.items(self.name))
        done = len(self.sstore.answered_items(self.name, p))
        return {
            "participant": p,
            "new": new,
            "total": total,
            "answered": done,
            "elapsed": self.sstore.elapsed(self.name, p),
        }

    def next_trial(self, participant: Any) -> dict[str, Any]:
        p = self._participant(participant)
        items = self.sstore.items(self.name)
        answered = self.sstore.answered_items(self.name, p)
        base = {
            "total": len(items),
            "answered": len(answered),
            "elapsed": self.sstore.elapsed(self.name, p),
        }
        for trial in participant_schedule(self.study.seed, p, items):
            if trial.item.item in answered:
                continue
            self.sstore.record_presentation(self.name, p, trial.item.item, trial.swapped)
            images = [f"/images/{trial.left[1]}"]
            if trial.right is not None:
                images.append(f"/images/{trial.right[1]}")
            return {**base, "done": False, "item": trial.item.item, "images": images}
        return {**base, "done": True}

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        kind = self.study.kind
        expected = {"participant", "item", "choice" if kind == "pairwise" else "rating"}
        keys = set(body)
        if keys != expected:
            raise HttpError(
                400,
                f"an answer needs exactly the fields {', '.join(sorted(expected))}"
                + (
                    f"; unexpected: {', '.join(sorted(keys - expected))}" if keys - expected else ""
                ),
            )
        p = self._participant(body["participant"])
        item_id = body["item"]
        if not isinstance(item_id, str) or not ITEM_RE.match(item_id):
            raise HttpError(400, "invalid item id")
        item = self.sstore.get_item(self.name, item_id)
        if item is None:
            raise HttpError(404, "no such item in this study")
        trial = trial_for(self.study.seed, p, item)
        chosen = side = None
        rating = None
        if kind == "pairwise":
            side = body["choice"]
            if side not in ("left", "right"):
                raise HttpError(400, "choice must be 'left' or 'right'")
            chosen = (trial.left if side == "left" else trial.right)[0]  # type: ignore[index]
        else:
            rating = body["rating"]
            if (
                not isinstance(rating, int)
                or isinstance(rating, bool)
                or not self.study.scale_min <= rating <= self.study.scale_max
            ):
                raise HttpError(
                    400,
                    f"rating must be a whole number from {self.study.scale_min} to "
                    f"{self.study.scale_max}",
                )
        outcome = self.sstore.record_answer(
            self.name, p, item, swapped=trial.swapped, chosen=chosen, side=side, rating=rating
        )
        if outcome.status == "not_shown":
            raise HttpError(409, "this item has not been shown to this participant")
        if outcome.status == "conflict":
            raise HttpError(
                409, "this item was already answered differently; the first answer stands"
            )
        return {"status": outcome.status, "next": self.next_trial(p)}

    def image(self, path: str) -> tuple[bytes, str] | None:
        m = IMAGE_RE.match(path)
        if not m:
            return None
        file = m.group(1)
        row = self.sstore.image_file(self.name, file)
        if row is None:
            return None
        base = self.study.image_dir.resolve()
        target = (base / row.file).resolve()
        if target.parent != base or not target.is_file():
            return None
        return target.read_bytes(), IMAGE_TYPES[target.suffix.lower()]


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    server_version = "llbench-study/1"
    sys_version = ""
    timeout = REQUEST_TIMEOUT_S
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n"
    deadline = REQUEST_DEADLINE_S

    @property
    def app(self) -> StudyApp:
        return self.server.app  # type: ignore[attr-defined]

    # -- plumbing --------------------------------------------------------------------------
    def handle_one_request(self) -> None:
        # The socket timeout bounds each read, not a request: a client dripping one byte every
        # few seconds would keep the thread forever. Past the deadline the socket is shut down,
        # which ends any read or write in progress.
        timer = threading.Timer(self.deadline, self._expire)
        timer.daemon = True
        timer.start()
        try:
            super().handle_one_request()
        finally:
            timer.cancel()

    def _expire(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        log.info("%s %s", self.address_string(), format % args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Methods without a handler would get 501; for a client they are a 405.
        if code == HTTPStatus.NOT_IMPLEMENTED:
            code, message = HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed"
        super().send_error(code, message, explain)

    def _send(
        self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: dict[str, Any]) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode()
        self._send(status, body, "application/json", {"Cache-Control": "no-store"})

    def _run(self, fn) -> None:
        try:
            self._check_host()
            fn()
        except HttpError as exc:
            try:
                self._json(exc.status, {"error": exc.message, **exc.extra})
            except OSError:  # the client is gone, or the deadline shut the socket
                self.close_connection = True
        except (TimeoutError, ConnectionError):
            self.close_connection = True
        except Exception:  # noqa: BLE001 - never leak a trace to the client
            log.exception("error handling %s %s", self.command, self.path)
            try:
                self._json(500, {"error": "internal error"})
            except OSError:
                pass
        finally:
            self.app.sstore.close()  # this thread's connection; threads are short-lived

    def _path(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        try:
            query = parse_qs(parts.query, keep_blank_values=True, max_num_fields=8)
        except ValueError as exc:
            raise HttpError(400, "malformed query string") from exc
        return parts.path, query

    def _check_host(self) -> None:
        """A server listening on loopback answers only requests addressed to a loopback name, so
        a web page whose domain was re-pointed at 127.0.0.1 (DNS rebinding) cannot use it."""
        bound = str(self.server.server_address[0])
        if not _is_loopback(bound):
            return  # a lab server on the network: participants use its name or address
        header = self.headers.get("Host")
        if header is None:
            return  # HTTP/1.0 clients; browsers always send Host
        host = urlsplit("//" + header).hostname
        if host is None or not _is_loopback(host):
            raise HttpError(421, "this study server only answers requests for localhost")

    def _check_origin(self) -> None:
        origin = self.headers.get("Origin")
        if origin is None:
            return
        host = self.headers.get("Host", "")
        if urlsplit(origin).netloc != host:
            raise HttpError(403, "cross-origin requests are not accepted")

    def _body(self) -> dict[str, Any]:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise HttpError(411, "send a Content-Length, not a chunked body")
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            self.close_connection = True
            raise HttpError(411, "Content-Length required")
        # Digits only (around them the optional white space of HTTP), and only one length:
        # int() would also take "+5", "-0" and "1_0".
        if len(lengths) != 1 or not CONTENT_LENGTH_RE.match(lengths[0].strip(" \t")):
            self.close_connection = True
            raise HttpError(400, "invalid Content-Length")
        n = int(lengths[0].strip(" \t"))
        if n > MAX_BODY:
            self.close_connection = True
            if n <= DRAIN_LIMIT:  # read it away, so the client sees the 413 and not a reset
                left = n
                while left > 0:
                    chunk = self.rfile.read(min(left, 65536))
                    if not chunk:
                        break
                    left -= len(chunk)
            raise HttpError(413, f"request body larger than {MAX_BODY} bytes")
        raw = self.rfile.read(n)
        if len(raw) != n:
            self.close_connection = True
            raise HttpError(400, "request body shorter than its Content-Length")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HttpError(415, "send JSON (Content-Type: application/json)")
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: nesting
            raise HttpError(400, "request body is not valid JSON") from exc
        if not isinstance(obj, dict):
            raise HttpError(400, "request body must be a JSON object")
        return obj

    # -- methods ---------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._run(self._get)

    def do_HEAD(self) -> None:  # noqa: N802
        self._run(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._run(self._post)

    def _not_allowed(self) -> None:
        self._run(lambda: self._json(405, {"error": "method not allowed"}))

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed  # noqa: N815

    def _get(self) -> None:
        path, query = self._path()
        if self.command == "HEAD" and path.startswith("/api/"):
            raise HttpError(405, "use GET")
        static = self.app.static(path)
        if static is not None:
            body, ctype = static
            extra = {"Cache-Control": "no-cache"}
            if ctype.startswith("text/html"):
                extra["Content-Security-Policy"] = CSP
            self._send(200, body, ctype, extra)
            return
        if path == "/favicon.ico":  # browsers ask for it; there is none
            self._send(204, b"", "image/x-icon", {"Cache-Control": "max-age=86400"})
            return
        if path == "/api/study":
            self._json(200, self.app.info())
            return
        if path == "/api/next":
            values = query.get("participant", [])
            if len(values) != 1 or set(query) - {"participant"}:
                raise HttpError(400, "give exactly one participant=... query parameter")
            self._json(200, self.app.next_trial(values[0]))
            return
        if path.startswith("/images/"):
            found = self.app.image(path)
            if found is None:
                raise HttpError(404, "not found")
            body, ctype = found
            self._send(200, body, ctype, {"Cache-Control": "private, max-age=86400, immutable"})
            return
        if path in ("/api/session", "/api/answer"):
            raise HttpError(405, "use POST")
        raise HttpError(404, "not found")

    def _post(self) -> None:
        path, _ = self._path()
        if path not in ("/api/session", "/api/answer"):
            if path in STATIC or path in ("/api/study", "/api/next"):
                raise HttpError(405, "use GET")
            raise HttpError(404, "not found")
        self._check_origin()
        body = self._body()
        if path == "/api/session":
            if set(body) != {"participant"}:
                raise HttpError(400, "a session needs exactly the field participant")
            self._json(200, self.app.session(body["participant"]))
        else:
            self._json(200, self.app.answer(body))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class StudyServer:
    """Serve one study; ``port=0`` picks a free port (see :attr:`url`)."""

    def __init__(self, home: str | Path, name: str, host: str = "127.0.0.1", port: int = 0):
        self.app = StudyApp(home, name)
        server_cls = _Server
        if ":" in host:  # an IPv6 literal
            server_cls = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        try:
            self.httpd = server_cls((host, port), _Handler)
        except OSError as exc:
            raise StudyError(f"cannot listen on {host}:{port}: {exc}") from exc
        self.httpd.app = self.app  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        if ":" in str(host):
            host = f"[{host}]"
        return f"http://{host}:{port}/"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.1)

    def start(self) -> StudyServer:
        """Serve from a background thread (for tests and notebooks)."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="llbench-study", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> StudyServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
