"""Get the raw data files: download them, or take a copy the user already has.

A file appears at its destination only complete, with the pinned checksum, and readable in its
layout. Each attempt streams into a temporary file beside the destination (pooch's HTTP or FTP
downloader writing into :func:`v1rsa.io.atomic_path`), which is checked and only then renamed
into place: its size against the ``Content-Length`` (urllib3 < 2 does not check it), its hash
against the pin, and, with or without a pin, that it reads as its layout (so an HTML error page
served with status 200, or a transfer cut short without a ``Content-Length``, is never kept).
Network errors, server errors (5xx) and bad transfers are retried; a client error (4xx but 408
and 429) is final. Every failed attempt is logged, also when a later one succeeds.

The hash of every file used is recorded beside it (``<file>.sha256``): the line to pin as
``known_hash``, and what :func:`check_pin` compares a pin with before any job runs.
"""

from __future__ import annotations

import ftplib
import hashlib
import logging
import os
import string
import time
from pathlib import Path

import pooch
import requests

from v1rsa import logs
from v1rsa.io import ContractError, atomic_path

logger = logging.getLogger(__name__)

# The published files (docs/science.md#layouts). ``known_hash`` None: no checksum is published;
# the first download records its sha256 for the user to pin.
KNOWN_FILES: dict[str, dict] = {
    "stringer_orientations": {
        "url": "https://osf.io/ny4ut/download",
        "known_hash": None,
        "layout": "raw",
    },
    "oribinned1": {
        "url": "https://osf.io/683xc/download",
        "known_hash": "md5:436599dfd8ebe6019f066c38aed20580",
        "layout": "oribinned1",
    },
    "oribinned6_split": {
        "url": "https://osf.io/p3aeb/download",
        "known_hash": "md5:b3f7245c6221234a676b71a1f43c3bb5",
        "layout": "oribinned6_split",
    },
}

HASH_RECORD_SUFFIX = ".sha256"
_SOURCE_PREFIX = "# source: "  # the record's second line: where the file came from
_CHUNK_BYTES = 1 << 20  # pooch's default of 1 KiB costs a Python call per KiB of a 937 MB file
_MAX_WAIT_S = 10  # between attempts: 1 s, 2 s, ... up to this
_TRANSIENT_CLIENT_ERRORS = (408, 429)  # request timeout, too many requests: worth retrying


class DownloadError(OSError):
    """A file could not be obtained complete and with the expected checksum."""


class ChecksumError(DownloadError):
    """A file's checksum differs from the pinned one."""


class _IncompleteTransfer(requests.exceptions.RequestException):
    """The server closed the connection before sending all the bytes it announced."""


class _BadTransfer(Exception):
    """What an attempt received is not the file asked for (wrong hash, unreadable layout)."""


class _ChecksumMismatch(_BadTransfer):
    """What an attempt received has another hash than the pinned one."""


def _split_hash(known_hash: str) -> tuple[str, str]:
    """Return (algorithm, lowercase hex digest) of ``"alg:hex"``; a bare hex digest is sha256."""
    algorithm, _, digest = known_hash.rpartition(":")
    algorithm = algorithm.lower() or "sha256"
    try:
        n_hex = 2 * hashlib.new(algorithm).digest_size
    except (ValueError, TypeError):
        n_hex = 0
    if n_hex == 0:
        raise ValueError(
            f"known_hash {known_hash!r}: unknown hash algorithm {algorithm!r}; expected "
            "'md5:<32 hex digits>' or 'sha256:<64 hex digits>'"
        )
    if len(digest) != n_hex or not set(digest) <= set(string.hexdigits):
        raise ValueError(
            f"known_hash {known_hash!r}: a {algorithm} digest has {n_hex} hex digits; "
            f"got {digest!r}"
        )
    return algorithm, digest.lower()


def _checksum(path: str | os.PathLike, algorithm: str) -> str:
    """``"<algorithm>:<hex digest>"`` of the file at ``path``."""
    return f"{algorithm}:{pooch.file_hash(str(path), alg=algorithm)}"


class _CompleteHTTPDownloader(pooch.HTTPDownloader):
    """pooch's HTTP downloader that also rejects a body shorter than its ``Content-Length``.

    urllib3 >= 2 raises on a short body by itself; urllib3 1.x (which requests still accepts)
    returns it silently, and with no pinned hash nothing else would notice.
    """

    def __init__(self, progressbar):
        super().__init__(
            progressbar=progressbar,
            chunk_size=_CHUNK_BYTES,
            hooks={"response": self._remember_length},
        )
        self.announced_bytes: int | None = None

    def _remember_length(self, response, *args, **kwargs) -> None:
        # Called for every response, redirects first, so the last call is the file's own.
        length = response.headers.get("Content-Length", "")
        encoding = response.headers.get("Content-Encoding", "identity").lower()
        # Content-Length counts encoded bytes; requests writes decoded ones.
        self.announced_bytes = int(length) if length.isdigit() and encoding == "identity" else None

    def __call__(self, url, output_file, pooch, check_only=False):
        self.announced_bytes = None
        result = super().__call__(url, output_file, pooch, check_only=check_only)
        if not check_only and self.announced_bytes is not None:
            received = os.path.getsize(output_file)
            if received != self.announced_bytes:
                raise _IncompleteTransfer(
                    f"incomplete transfer: received {received} of the "
                    f"{self.announced_bytes} bytes announced by the server"
                )
        return result


def _is_final(err: Exception) -> bool:
    """Whether retrying cannot help: a client error (4xx but 408, 429) or a permanent FTP one."""
    if isinstance(err, requests.exceptions.HTTPError) and err.response is not None:
        status = err.response.status_code
        return 400 <= status < 500 and status not in _TRANSIENT_CLIENT_ERRORS
    return isinstance(err, ftplib.error_perm)


_NETWORK_ERRORS = (requests.exceptions.RequestException, ftplib.Error, ConnectionError,
                   TimeoutError)


def _is_retried(err: Exception) -> bool:
    return isinstance(err, (_BadTransfer, *_NETWORK_ERRORS)) and not _is_final(err)


def _receive(url: str, tmp: Path, downloader, expected: str | None, algorithm: str,
             layout: str | None) -> tuple[str, int]:
    """One attempt: download into ``tmp`` and check it; return (checksum, size in bytes)."""
    downloader(url, str(tmp), None)
    received, size = _checksum(tmp, algorithm), tmp.stat().st_size
    if expected is not None and received != expected:
        raise _ChecksumMismatch(f"checksum mismatch: received {received} ({size} bytes)")
    if layout is not None:
        from v1rsa import load

        try:
            load.check_file(tmp, layout)
        except (ContractError, load.UnsafePickleError, OSError) as err:
            reason = str(err).replace(f"{tmp}: ", "").replace(str(tmp), "the file")
            raise _BadTransfer(f"the {size} bytes received are not a {layout!r} file "
                               f"({reason})") from err
    return received, size


def fetch(
    url: str,
    path: str | os.PathLike,
    known_hash: str | None = None,
    *,
    retries: int = 3,
    layout: str | None = None,
    progressbar: bool = True,
    pinned_at: str = "known_hash",
) -> str:
    """Download ``url`` to exactly ``path``, check it, and return its checksum.

    known_hash: ``"md5:<hex>"``, ``"sha256:<hex>"`` (bare hex = sha256) or None when none is
    published, in which case the sha256 is logged for the user to pin. retries: attempts after
    the first, for network and server errors and bad transfers (a 4xx is final), waiting 1 s,
    2 s, ... (at most 10 s) in between. layout: a layout of :mod:`v1rsa.load` the file must read
    as (:func:`v1rsa.load.check_file`), or None. progressbar: report progress
    (:func:`v1rsa.logs.progress`). pinned_at: where the pin is set, for messages (e.g.
    ``"datasets.x.known_hash in config/config.yaml"``). A file already at ``path`` with the
    pinned hash is kept without downloading; one with another hash is replaced.
    Returns ``"<algorithm>:<hex>"`` in the pinned algorithm (sha256 when none is pinned).
    Raises :class:`DownloadError` (:class:`ChecksumError` when every attempt had another hash)
    and leaves no file at ``path`` and no temporary file beside it.
    """
    if not url.startswith(("http://", "https://", "ftp://")):
        raise ValueError(f"url {url!r}: expected an http://, https:// or ftp:// address")
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries {retries!r}: expected an integer >= 0")
    path = Path(os.path.abspath(path))
    if known_hash is None:
        algorithm, expected = "sha256", None
    else:
        algorithm, digest = _split_hash(known_hash)
        expected = f"{algorithm}:{digest}"
        if os.path.lexists(path):
            if path.is_file() and _checksum(path, algorithm) == expected:
                return expected
            logger.warning("%s does not have the pinned %s; downloading it again", path, expected)
            path.unlink()

    n_attempts = 1 + retries
    for attempt in range(1, n_attempts + 1):
        bar = logs.byte_progress(f"download {path.name}") if progressbar else False
        if url.startswith("ftp://"):
            downloader = pooch.FTPDownloader(progressbar=bar)
        else:
            downloader = _CompleteHTTPDownloader(progressbar=bar)
        try:
            with atomic_path(path) as tmp:
                checksum, size = _receive(url, tmp, downloader, expected, algorithm, layout)
            break
        except (_BadTransfer, OSError, ftplib.Error) as err:  # requests' errors are OSErrors
            if not _is_retried(err) or attempt == n_attempts:
                raise _download_error(err, url, path, expected, attempt, pinned_at) from err
            wait = min(attempt, _MAX_WAIT_S)
            logger.warning("attempt %d of %d to download %s failed: %s; trying again in %d s",
                           attempt, n_attempts, url, err, wait)
            time.sleep(wait)
    if attempt > 1:
        logger.warning("%s downloaded on attempt %d of %d (%d bytes)", url, attempt, n_attempts,
                       size)
    if expected is None:
        logger.warning(
            "%s has no pinned checksum; the downloaded file %s has %s. Pin it as %s so that a "
            "later download is checked against it.",
            url, path, checksum, pinned_at,
        )
    return checksum


def _download_error(err: Exception, url: str, path: Path, expected: str | None, attempt: int,
                    pinned_at: str) -> DownloadError:
    mismatch = isinstance(err, _ChecksumMismatch)
    if mismatch:
        hint = (f"Run again to retry; if the upstream file truly changed, check it and update "
                f"{pinned_at}.")
    elif _is_final(err):
        hint = "The server refused the request: check the URL."
    elif isinstance(err, (_BadTransfer, *_NETWORK_ERRORS)):
        hint = "Check the URL and the network connection, then run again."
    else:  # writing here failed
        hint = f"Check that {path.parent} is writable and has room for the file."
    return (ChecksumError if mismatch else DownloadError)(
        f"Could not download {url} to {path}: {err} (after {attempt} attempt(s)); pinned "
        f"checksum: {expected or 'none'}. No file was left at {path}. {hint}"
    )


def check_pin(path: str | os.PathLike, known_hash: str | None, *, source: str,
              pinned_at: str = "known_hash") -> None:
    """Refuse a pin that the data file already at ``path`` does not have, before any job runs.

    ``path``: a file in ``resources/`` (downloaded, or a link to the user's file); its record
    ``<path>.sha256`` holds the sha256 of the file as it was fetched or linked and where it came
    from. ``source``: where the file comes from now (the URL, or the user's file). Nothing is
    checked without a pin, without the file or its record, when the file now comes from another
    source, or when the file changed after its record was written (the job that remakes them
    checks the pin then). A sha256 pin is compared with the record; any other pin with the
    file's own hash. Raises :class:`ChecksumError` naming the file, both hashes and
    ``pinned_at``; the file is left as it is.
    """
    path = Path(path)
    record = hash_record_path(path)
    if known_hash is None or not path.exists() or not record.is_file():
        return
    if path.stat().st_mtime > record.stat().st_mtime:  # follows a link to the user's file
        return
    recorded, recorded_source = read_hash_record(record)
    if recorded_source is not None and recorded_source != _source_name(source):
        return
    algorithm, digest = _split_hash(known_hash)
    expected = f"{algorithm}:{digest}"
    actual = recorded if algorithm == "sha256" else _checksum(path, algorithm)
    if actual != expected:
        if path.is_symlink():  # the user's own file
            shown, remedy = os.path.realpath(path), "or point the dataset at the file you meant"
        else:
            shown, remedy = path, f"or, to download the file again, delete {path}"
        raise ChecksumError(
            f"{pinned_at} is {expected}, but the file in use, {shown}, has {actual} (recorded in "
            f"{record}). Nothing was run and the file was kept. If the pin is mistyped, correct "
            f"it, {remedy}."
        )


def verify_local(path: str | os.PathLike, known_hash: str | None = None, *,
                 pinned_at: str = "known_hash") -> str:
    """Check that the user's own file at ``path`` exists (and has ``known_hash`` when given).

    Returns ``"<algorithm>:<hex>"`` (sha256 when nothing is pinned). Raises FileNotFoundError or
    :class:`ChecksumError` (naming ``pinned_at``, where the pin is set); never deletes or changes
    the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file; check the path given for this dataset")
    if not path.is_file():
        raise IsADirectoryError(f"{path}: expected a data file, found a directory")
    if known_hash is None:
        return _checksum(path, "sha256")
    algorithm, digest = _split_hash(known_hash)
    expected = f"{algorithm}:{digest}"
    actual = _checksum(path, algorithm)
    if actual != expected:
        raise ChecksumError(
            f"{path}: checksum {actual} does not match the pinned {expected} ({pinned_at}). The "
            "file was left untouched. Check that the dataset points at the right file; if it "
            f"does and the file is the one you mean to use, update {pinned_at}."
        )
    return actual


def link_local(
    src: str | os.PathLike, dest: str | os.PathLike, known_hash: str | None = None, *,
    pinned_at: str = "known_hash",
) -> str:
    """Verify the user's file ``src`` (:func:`verify_local`), then make ``dest`` a symlink to it.

    The link holds the absolute, fully resolved path of ``src`` and replaces ``dest`` atomically.
    Returns the checksum from :func:`verify_local`.
    """
    checksum = verify_local(src, known_hash, pinned_at=pinned_at)
    target = Path(os.path.realpath(src))
    dest = Path(dest)
    if Path(os.path.realpath(dest.parent)) / dest.name == target:
        raise ValueError(
            f"{src} is the file {dest} itself: point the dataset at a copy outside {dest.parent}"
        )
    with atomic_path(dest) as tmp:
        tmp.unlink()
        tmp.symlink_to(target)
    return checksum


def hash_record_path(path: str | os.PathLike) -> Path:
    """The record of a data file ``X`` is ``X.sha256``; a path already ending so is kept."""
    path = Path(path)
    if path.name.endswith(HASH_RECORD_SUFFIX):
        return path
    return path.with_name(path.name + HASH_RECORD_SUFFIX)


def _source_name(source: str | os.PathLike) -> str:
    """A URL as it is; a file by its real path (a link and the file it names are one source)."""
    source = str(source)
    return source if "://" in source else os.path.realpath(source)


def write_hash_record(path: str | os.PathLike, checksum: str,
                      source: str | os.PathLike | None = None) -> Path:
    """Write ``sha256:<hex>`` of a data file to its record ``<data file>.sha256``, atomically.

    path: the data file or its record. checksum: as returned by :func:`fetch`; when it is not a
    sha256 (an md5 pinned upstream), the sha256 is computed from the data file. source: where
    the file came from (its URL, or the user's file), written on a second line ``# source: ...``
    for :func:`check_pin`. The first line is the one to pin as known_hash. Returns the record's
    path.
    """
    record = hash_record_path(path)
    algorithm, digest = _split_hash(checksum)
    if algorithm != "sha256":
        data_file = record.with_name(record.name[: -len(HASH_RECORD_SUFFIX)])
        if not data_file.is_file():
            raise FileNotFoundError(
                f"{data_file}: no such file; needed to compute the sha256 for {record}"
            )
        digest = pooch.file_hash(str(data_file), alg="sha256")
    text = f"sha256:{digest}\n"
    if source is not None:
        text += f"{_SOURCE_PREFIX}{_source_name(source)}\n"
    with atomic_path(record) as tmp:
        tmp.write_text(text)
    return record


def read_hash_record(path: str | os.PathLike) -> tuple[str, str | None]:
    """``("sha256:<hex>", source or None)`` from a record written by :func:`write_hash_record`
    (a record without a source line, from an older version, gives None)."""
    lines = hash_record_path(path).read_text().splitlines()
    sources = [line.removeprefix(_SOURCE_PREFIX) for line in lines[1:]
               if line.startswith(_SOURCE_PREFIX)]
    return lines[0].strip(), (sources[0] if sources else None)
