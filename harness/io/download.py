"""Downloads that resume and verify, and archive extraction that cannot escape its folder.

* :func:`download` fetches a URL into a file. Bytes go to ``<dest>.part`` first; a later call
  resumes it with an HTTP ``Range`` request (a server that ignores the range restarts it). The
  finished file is checked against its sha256 before it takes its final name, so a file at
  ``dest`` is always complete. Without a network it fails at once with :class:`DownloadError`,
  whose message says which file to fetch by hand and where to put it. ``LLBENCH_OFFLINE=1``
  makes every download fail that way without trying.
* :func:`safe_extract` (in :mod:`llbench.io.extract`, re-exported here) unpacks zip and tar
  archives without escaping the destination and refuses archive bombs; see that module.
* :func:`fetch_weights` resolves a method's released weights (:class:`~llbench.api.specs.WeightsRef`)
  to a verified local file, downloading it when absent (``--weights official``).
"""

from __future__ import annotations

import http.client
import os
import posixpath
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from llbench import __version__
from llbench.api.specs import WeightsRef
from llbench.errors import LLBenchError, WeightsError
from llbench.io.extract import (  # noqa: F401 - re-exported: extraction lived here before
    CHUNK,
    ArchiveTooLargeError,
    ExtractLimits,
    GiB,
    KiB,
    MiB,
    UnsafeArchiveError,
    safe_extract,
)
from llbench.io.hashing import sha256_file

USER_AGENT = f"llbench/{__version__} (+https://github.com/llbench/llbench)"


class DownloadError(LLBenchError):
    """A download that failed (offline, HTTP error, interrupted); the message says what to do."""


class ChecksumError(DownloadError):
    """A downloaded or cached file whose sha256 is not the published one."""


def offline() -> bool:
    """True when ``LLBENCH_OFFLINE`` asks llbench not to touch the network."""
    return os.environ.get("LLBENCH_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def manual_download_steps(url: str, dest: Path, sha256: str | None = None) -> str:
    """The by-hand instructions that every download error carries."""
    check = f" Its sha256 must be {sha256}." if sha256 else ""
    return (
        f"To do it by hand: download {url} with a browser or `curl -L -C - -o {dest} {url}`, "
        f"and place the file at {dest}.{check} Then run the same command again."
    )


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    *,
    progress: bool = True,
    timeout: float = 10.0,
    manual: str = "",
) -> Path:
    """Download ``url`` to ``dest`` (a file path, or a folder to put the URL's file name in).

    Resumes ``<dest>.part`` left by an interrupted call, verifies ``sha256`` when given, and
    returns the final path. A file already at ``dest`` is reused after its hash is checked.
    ``timeout`` bounds the connection and each read (seconds). ``manual`` is appended to error
    messages (e.g. a dataset's page and layout). Raises :class:`DownloadError` (offline, HTTP
    error, interrupted: the partial file is kept for the next call) or :class:`ChecksumError`.
    """
    as_folder = isinstance(dest, str) and dest.endswith(("/", os.sep))
    dest = Path(dest)
    if as_folder or dest.is_dir():
        name = posixpath.basename(urllib.parse.urlparse(url).path)
        if name in ("", ".", ".."):
            name = "download"
        dest = dest / name
    sha256 = sha256.lower() if sha256 else None
    steps = manual_download_steps(url, dest, sha256) + (f" {manual}" if manual else "")

    if dest.is_file():
        if sha256 is None or sha256_file(dest) == sha256:
            return dest
        raise ChecksumError(
            f"{dest} exists but its sha256 is {sha256_file(dest)}, not {sha256}: it is a different or "
            f"damaged file. Delete it and run again. {steps}"
        )
    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise DownloadError(
            f"cannot download {url!r}: only http, https and file URLs are supported"
        )
    if offline():
        raise DownloadError(f"not downloading {url}: LLBENCH_OFFLINE is set. {steps}")

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _fetch_to_part(url, part, timeout=timeout, progress=progress, steps=steps)
    if sha256 is not None:
        actual = sha256_file(part)
        if actual != sha256:
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}. The "
                f"download was deleted; the file on the server may have changed. {steps}"
            )
    os.replace(part, dest)
    return dest


def _fetch_to_part(url: str, part: Path, *, timeout: float, progress: bool, steps: str) -> None:
    have = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.build_opener(_SafeRedirects).open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            total = _content_range_total(exc.headers.get("Content-Range", ""))
            exc.close()
            if total is not None and total == have:
                return  # the partial file is already complete
            part.unlink(missing_ok=True)  # stale partial file: start over next time
            raise DownloadError(
                f"the server refused to resume {url} (HTTP 416); the partial file was "
                f"removed, run again to start over. {steps}"
            ) from None
        exc.close()
        raise DownloadError(
            f"could not download {url}: HTTP {exc.code} {exc.reason}. {steps}"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"could not download {url}: {reason} (offline, or the host is unreachable). {steps}"
        ) from None

    with response:
        status = getattr(response, "status", 200)
        length = response.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        if have and status == 206:
            start = _content_range_start(response.headers.get("Content-Range", ""))
            if start != have:  # never splice bytes from the wrong offset
                part.unlink(missing_ok=True)
                raise DownloadError(
                    f"{url} answered a resume request from byte {have} with a range starting at "
                    f"{start}; the partial file was removed, run again to start over. {steps}"
                )
            mode = "ab"
        else:
            mode, have = "wb", 0  # no partial file, or the server ignored the range
        total = have + remaining if remaining is not None else None
        with open(part, mode) as out, _ProgressBar(part.name, total, have, progress) as bar:
            try:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    bar.advance(len(block))
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                out.flush()
                raise DownloadError(
                    f"download of {url} was interrupted after {out.tell()} bytes ({exc}); run "
                    f"the same command again to resume from {part}. {steps}"
                ) from None
            written = out.tell()
    if total is not None and written < total:
        raise DownloadError(
            f"download of {url} stopped at {written} of {total} bytes; run the same command "
            f"again to resume from {part}. {steps}"
        )


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only, and never from https down to plain http."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old = urllib.parse.urlsplit(req.full_url).scheme.lower()
        new = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl)).scheme.lower()
        if new not in ("http", "https") or (old == "https" and new == "http"):
            raise urllib.error.HTTPError(
                req.full_url, code, f"refused redirect from {old} to {newurl!r}", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _content_range_start(value: str) -> int | None:
    m = re.match(r"\s*bytes\s+(\d+)-\d+/(?:\d+|\*)", value)
    return int(m.group(1)) if m else None


def _content_range_total(value: str) -> int | None:
    m = re.match(r"\s*bytes\s+(?:\*|\d+-\d+)/(\d+)", value)
    return int(m.group(1)) if m else None


class _ProgressBar:
    """A rich download bar on stderr (bytes, rate, ETA); silent when disabled."""

    def __init__(self, name: str, total: int | None, done: int, enabled: bool):
        self._progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._task = self._progress.add_task(name, total=total, completed=done)

    def __enter__(self) -> _ProgressBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def advance(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


# -- released weights ----------------------------------------------------------------------------
def fetch_weights(ref: WeightsRef, cache_dir: str | os.PathLike, *, progress: bool = True) -> Path:
    """Return ``cache_dir/ref.filename``, downloading it from ``ref.url`` when absent.

    ``cache_dir`` is the folder for this method's weights (the runner passes
    ``<cache>/weights/<method>``). The file's sha256 must equal ``ref.sha256`` (when the
    reference gives one); a cached file that does not match raises :class:`WeightsError`.
    Offline, the :class:`DownloadError` says which file to place where.
    """
    cache_dir = Path(cache_dir)
    name = ref.filename
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise WeightsError(
            f"the released weights at {ref.url} name the file {name!r}; a plain file name is "
            f"needed (it is placed in {cache_dir})"
        )
    path = cache_dir / name
    expected = ref.sha256.lower() if ref.sha256 else None
    if path.is_file():
        if expected is None:
            return path
        actual = sha256_file(path)
        if actual != expected:
            raise WeightsError(
                f"{path} has sha256 {actual}, but the released weights have {expected}"
                f"{' (' + ref.source + ')' if ref.source else ''}. Delete the file and run again, "
                f"or download {ref.url} by hand and put it there."
            )
        return path
    source = f" Published at: {ref.source}." if ref.source else ""
    return download(ref.url, path, expected, progress=progress, manual=source.strip())
