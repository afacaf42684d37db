"""Get the raw data files: download them through pooch, or take a copy the user already has.

A file appears at its destination only complete and with the pinned checksum. pooch streams each
attempt into a temporary file beside the destination (``tempfile.NamedTemporaryFile`` in the same
folder), checks the hash, then moves it into place; it removes the temporary file on any failure
and retries network errors, truncated transfers and checksum mismatches ``retry_if_failed`` times.
We add what pooch leaves out: a body shorter than its ``Content-Length`` is an error even where
urllib3 does not check it (urllib3 < 2), error messages that name the URL, path and both hashes,
and the sha256 to pin when none is published.
"""

from __future__ import annotations

import hashlib
import logging
import os
import string
from pathlib import Path

import pooch
import requests

from v1rsa.io import atomic_path

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
_CHUNK_BYTES = 1 << 20  # pooch's default of 1 KiB costs a Python call per KiB of a 937 MB file
_HOW_TO_FIX = (
    "Re-run to try again; if the upstream file truly changed, check it and update the pinned "
    "known_hash of this dataset in config/config.yaml."
)


class DownloadError(OSError):
    """A file could not be obtained complete and with the expected checksum."""


class ChecksumError(DownloadError):
    """A file's checksum differs from the pinned one."""


class _IncompleteTransfer(requests.exceptions.RequestException):
    """The server closed the connection before sending all the bytes it announced.

    A ``RequestException``, so that pooch retries it like any other network error.
    """


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

    def __init__(self, progressbar: bool):
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


class _AttemptRecorder:
    """Wrap a pooch downloader; remember the size and checksum of what each attempt wrote."""

    def __init__(self, downloader, algorithm: str):
        self.downloader = downloader
        self.algorithm = algorithm
        self.n_attempts = 0
        self.received_bytes: int | None = None
        self.received_hash: str | None = None

    def __call__(self, url, output_file, pooch, check_only=False):
        if check_only:
            return self.downloader(url, output_file, pooch, check_only=True)
        self.n_attempts += 1
        self.received_bytes = self.received_hash = None
        try:
            return self.downloader(url, output_file, pooch)
        finally:
            # pooch always hands us the path of its temporary file.
            if os.path.isfile(output_file):
                self.received_bytes = os.path.getsize(output_file)
                self.received_hash = _checksum(output_file, self.algorithm)


def fetch(
    url: str,
    path: str | os.PathLike,
    known_hash: str | None = None,
    *,
    retries: int = 3,
    progressbar: bool = True,
) -> str:
    """Download ``url`` to exactly ``path`` with pooch, verify it, and return its checksum.

    known_hash: ``"md5:<hex>"``, ``"sha256:<hex>"`` (bare hex = sha256) or None when none is
    published, in which case the sha256 is logged for the user to pin. retries: attempts after
    the first (pooch's ``retry_if_failed``). A file already at ``path`` with the pinned hash is
    kept without downloading; one with another hash is replaced.
    Returns ``"<algorithm>:<hex>"`` in the pinned algorithm (sha256 when none is pinned).
    Raises :class:`DownloadError` (:class:`ChecksumError` on a hash mismatch) and leaves no file
    at ``path`` and no temporary file beside it.
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

    if url.startswith("ftp://"):
        downloader = pooch.FTPDownloader(progressbar=progressbar)
    else:
        downloader = _CompleteHTTPDownloader(progressbar=progressbar)
    recorder = _AttemptRecorder(downloader, algorithm)
    registry = pooch.create(
        path=path.parent,
        base_url="",
        registry={path.name: expected},
        urls={path.name: url},
        retry_if_failed=retries,
    )
    try:
        registry.fetch(path.name, downloader=recorder)
    except (ValueError, requests.exceptions.RequestException, OSError) as err:
        mismatch = (
            isinstance(err, ValueError)
            and expected is not None
            and recorder.received_hash not in (None, expected)
        )
        reason = "checksum mismatch" if mismatch else str(err)
        received = (
            f"; the last attempt received {recorder.received_hash} "
            f"({recorder.received_bytes} bytes)"
            if recorder.received_bytes
            else ""
        )
        hint = _HOW_TO_FIX if mismatch else "Check the URL and the network connection, then re-run."
        raise (ChecksumError if mismatch else DownloadError)(
            f"Could not download {url} to {path}: {reason} (after {recorder.n_attempts} "
            f"attempt(s)); pinned checksum: {expected or 'none'}{received}. "
            f"No file was left at {path}. {hint}"
        ) from err

    if recorder.n_attempts == 0:  # pooch found the file already there (nothing was pinned)
        return _checksum(path, algorithm)
    checksum = recorder.received_hash
    if expected is None:
        logger.warning(
            "%s has no published checksum; the downloaded file %s has %s. Pin it as known_hash "
            "so that a later download is checked against it.",
            url,
            path,
            checksum,
        )
    return checksum


def verify_local(path: str | os.PathLike, known_hash: str | None = None) -> str:
    """Check that the user's own file at ``path`` exists (and has ``known_hash`` when given).

    Returns ``"<algorithm>:<hex>"`` (sha256 when nothing is pinned). Raises FileNotFoundError or
    :class:`ChecksumError`; never deletes or changes the file.
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
            f"{path}: checksum {actual} does not match the pinned {expected}. The file was left "
            "untouched. Check that the dataset points at the right file; if it does and the file "
            "is the one you mean to use, update its pinned known_hash in config/config.yaml."
        )
    return actual


def link_local(
    src: str | os.PathLike, dest: str | os.PathLike, known_hash: str | None = None
) -> str:
    """Verify the user's file ``src`` (:func:`verify_local`), then make ``dest`` a symlink to it.

    The link holds the absolute, fully resolved path of ``src`` and replaces ``dest`` atomically.
    Returns the checksum from :func:`verify_local`.
    """
    checksum = verify_local(src, known_hash)
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


def write_hash_record(path: str | os.PathLike, checksum: str) -> Path:
    """Write ``sha256:<hex>`` of a data file to its record ``<data file>.sha256``, atomically.

    path: the data file or its record. checksum: as returned by :func:`fetch`; when it is not a
    sha256 (an md5 pinned upstream), the sha256 is computed from the data file. The record holds
    the one line to pin as known_hash. Returns the record's path.
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
    with atomic_path(record) as tmp:
        tmp.write_text(f"sha256:{digest}\n")
    return record
