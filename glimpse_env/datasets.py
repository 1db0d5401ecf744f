"""MNIST loading: lookup, verified download, IDX parsing and splits.

The four original MNIST IDX ``.gz`` files are looked for, in order, in:

1. the ``data_dir`` argument,
2. the folder named by the environment variable ``GLIMPSE_ENV_DATA``,
3. the per-user cache folder (:func:`default_cache_dir`), into which they are
   downloaded from public mirrors when missing (only this folder is ever
   downloaded into).

A download tries the mirrors in turn and says on stderr which file it fetches from
which mirror, with its progress; a mirror that does not connect within
:data:`CONNECT_TIMEOUT` seconds, or stalls (no data for :data:`READ_TIMEOUT`
seconds), is given up for the next one.

Every file's size and SHA256 are checked each time it is parsed, and the IDX
headers are validated, so a corrupt, truncated or wrong file raises
:class:`MNISTDataError` instead of yielding silently wrong data. Parsing
happens once per data folder per process; the splits are read-only views
(slices) of the same buffers, so many environments share one copy in memory.

Splits: ``train`` is the first 50,000 training images, ``val`` the last
10,000 training images, ``test`` the 10,000 test images and ``train_full``
all 60,000 training images.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import tempfile
import threading
import time
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "CONNECT_TIMEOUT",
    "DATA_ENV_VAR",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "READ_TIMEOUT",
    "SPLITS",
    "MNISTDataError",
    "MNISTSplit",
    "default_cache_dir",
    "download_mnist",
    "load_mnist",
    "resolve_data_dir",
]

MNIST_FILES: dict[str, tuple[str, int]] = {
    "train-images-idx3-ubyte.gz": (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        9_912_422,
    ),
    "train-labels-idx1-ubyte.gz": (
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        28_881,
    ),
    "t10k-images-idx3-ubyte.gz": (
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        1_648_877,
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        4_542,
    ),
}
"""File name -> (SHA256 of the ``.gz`` file, its size in bytes)."""

MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
"""Public base URLs serving the four original files, tried in order."""

SPLITS: tuple[str, ...] = ("train", "val", "test", "train_full")
DATA_ENV_VAR = "GLIMPSE_ENV_DATA"

CONNECT_TIMEOUT = 10.0
"""Seconds a mirror has to accept the connection (TLS handshake included)."""
READ_TIMEOUT = 30.0
"""Seconds a mirror may send nothing (before the response or within it) before it is
given up as stalled."""
_PROGRESS_INTERVAL = 5.0  # seconds between progress lines when stderr is not a terminal

_TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
_TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
_TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
_TEST_LABELS = "t10k-labels-idx1-ubyte.gz"

_IMAGE_MAGIC = 2051
_LABEL_MAGIC = 2049
_ROWS = 28
_COLS = 28
_N_TRAIN = 60_000
_N_TEST = 10_000
_N_VAL = 10_000

_CHUNK = 1 << 20

_FIX_HINT = (
    f"To fix: download the four MNIST files ({', '.join(MNIST_FILES)}) by hand "
    f"(e.g. from {MNIST_MIRRORS[0]}) into a folder and set the environment variable "
    f"{DATA_ENV_VAR} to that folder (or pass data_dir=...); or unset {DATA_ENV_VAR} and "
    f"pass no data_dir to download them automatically into the cache folder."
)


class MNISTDataError(RuntimeError):
    """Raised for any problem finding, downloading, verifying or parsing MNIST."""


@dataclass(frozen=True, eq=False)
class MNISTSplit:
    """One split of MNIST.

    Attributes:
        name: The split name, one of :data:`SPLITS`.
        images: ``uint8`` array of shape ``(N, 28, 28)``; read-only.
        labels: ``int64`` array of shape ``(N,)`` with digits 0-9; read-only.
    """

    name: str
    images: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        """Return the number of examples in the split."""
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        """Return a short description (without the array contents)."""
        return f"MNISTSplit(name={self.name!r}, n={len(self)})"


def default_cache_dir() -> Path:
    """Return the per-user cache folder for MNIST.

    Returns:
        ``$XDG_CACHE_HOME/glimpse_env/mnist`` if ``XDG_CACHE_HOME`` is set and
        non-empty, else ``~/.cache/glimpse_env/mnist``.
    """
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "glimpse_env" / "mnist"


def _missing_files(folder: Path) -> list[str]:
    """Return the names of the MNIST files that are not regular files in ``folder``."""
    return [name for name in MNIST_FILES if not (folder / name).is_file()]


def _describe_missing(missing: Sequence[str]) -> str:
    """Format missing file names with their expected SHA256 and size."""
    return "\n".join(
        f"  {name} (sha256 {MNIST_FILES[name][0]}, {MNIST_FILES[name][1]} bytes)"
        for name in missing
    )


def resolve_data_dir(
    data_dir: str | os.PathLike[str] | None = None, *, download: bool = True
) -> Path:
    """Find the folder holding the four MNIST ``.gz`` files.

    Lookup order: the ``data_dir`` argument; else the ``GLIMPSE_ENV_DATA``
    environment variable (if non-empty); else :func:`default_cache_dir`. A
    folder named explicitly (argument or environment variable) must already
    hold all four files; only the cache folder is downloaded into. Files are
    only checked for presence here; their contents are verified on loading.

    Args:
        data_dir: Folder holding the files, or ``None`` to look further.
        download: Whether missing files may be downloaded into the cache
            folder (creating it).

    Returns:
        The data folder (absolute).

    Raises:
        MNISTDataError: If a named folder is missing or lacks files, or the
            cache folder lacks files and ``download`` is false or the
            download fails.
    """
    if data_dir is not None:
        folder, source = Path(data_dir).expanduser(), "the data_dir argument"
    elif os.environ.get(DATA_ENV_VAR):
        folder, source = Path(os.environ[DATA_ENV_VAR]).expanduser(), f"${DATA_ENV_VAR}"
    else:
        folder, source = default_cache_dir(), None
    folder = folder.absolute()

    if source is not None:
        if not folder.is_dir():
            raise MNISTDataError(
                f"MNIST data folder {folder} (from {source}) does not exist.\n"
                f"It must hold these files:\n{_describe_missing(list(MNIST_FILES))}\n"
                f"{_FIX_HINT}"
            )
        missing = _missing_files(folder)
        if missing:
            raise MNISTDataError(
                f"MNIST data folder {folder} (from {source}) lacks these files:\n"
                f"{_describe_missing(missing)}\n{_FIX_HINT}"
            )
        return folder

    missing = _missing_files(folder)
    if missing:
        if not download:
            raise MNISTDataError(
                f"MNIST files missing from the cache folder {folder} and download=False:\n"
                f"{_describe_missing(missing)}\n{_FIX_HINT}"
            )
        # Read MNIST_MIRRORS at call time so it can be overridden (e.g. in tests).
        download_mnist(folder, MNIST_MIRRORS)
    return folder


def _file_digest(path: Path) -> tuple[str, int]:
    """Return the SHA256 hex digest and size of a file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _with_read_timeout(cls: type, read_timeout: float) -> type:
    """``cls`` (an ``http.client`` connection class) switched to ``read_timeout`` once
    connected: connecting uses the request's timeout, every later read this one."""

    class Connection(cls):  # type: ignore[misc, valid-type]
        def connect(self) -> None:
            super().connect()
            self.sock.settimeout(read_timeout)

    return Connection


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, read_timeout: float) -> None:
        super().__init__()
        self.read_timeout = read_timeout

    def do_open(self, http_class: type, req: urllib.request.Request, **kwargs: object) -> object:
        return super().do_open(_with_read_timeout(http_class, self.read_timeout), req, **kwargs)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, read_timeout: float) -> None:
        super().__init__()
        self.read_timeout = read_timeout

    def do_open(self, http_class: type, req: urllib.request.Request, **kwargs: object) -> object:
        return super().do_open(_with_read_timeout(http_class, self.read_timeout), req, **kwargs)


def _urlopen(url: str, connect_timeout: float, read_timeout: float) -> object:
    """Open ``url`` (proxies from the environment as ``urllib`` does) with a connect timeout
    and a separate read timeout."""
    opener = urllib.request.build_opener(_HTTPHandler(read_timeout), _HTTPSHandler(read_timeout))
    return opener.open(url, timeout=connect_timeout)


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _progress_reporter(name: str, total: int, enabled: bool) -> tuple[Callable, Callable]:
    """``(update(n_bytes), close())`` showing a download's progress on stderr: a tqdm bar
    on a terminal, else a line every few seconds (nothing when not ``enabled``)."""
    if not enabled:
        return (lambda n: None), (lambda: None)
    if sys.stderr.isatty():
        try:
            from tqdm import tqdm  # imported only here: the env core needs NumPy only
        except ImportError:  # pragma: no cover - tqdm is a core dependency
            pass
        else:
            bar = tqdm(total=total, desc=name, unit="B", unit_scale=True, leave=False)
            return bar.update, bar.close
    state = {"done": 0, "last": time.monotonic()}

    def update(n: int) -> None:
        state["done"] += n
        now = time.monotonic()
        if now - state["last"] >= _PROGRESS_INTERVAL:
            state["last"] = now
            print(
                f"MNIST: {name}: {_megabytes(state['done'])} of {_megabytes(total)} "
                f"({100 * state['done'] / total:.0f}%)",
                file=sys.stderr,
                flush=True,
            )

    return update, (lambda: None)


def _download_one(
    url: str,
    name: str,
    dest: Path,
    connect_timeout: float,
    read_timeout: float,
    progress: bool = False,
) -> None:
    """Download ``url`` to ``dest / name`` atomically, verifying size and SHA256.

    Args:
        url: The URL to fetch.
        name: The file name, a key of :data:`MNIST_FILES`.
        dest: The destination folder (must exist).
        connect_timeout: Seconds to connect.
        read_timeout: Seconds the server may send nothing.
        progress: Show the progress on stderr.

    Raises:
        OSError: On network or file errors (``urllib.error.URLError`` included; a
            stalled mirror raises ``TimeoutError``).
        ValueError: If the downloaded content has the wrong size or SHA256.
    """
    expected_sha, expected_size = MNIST_FILES[name]
    tmp = tempfile.NamedTemporaryFile(dir=dest, prefix=f".{name}.", suffix=".part", delete=False)
    tmp_path = Path(tmp.name)
    done = False
    update, close = _progress_reporter(name, expected_size, progress)
    try:
        with tmp:
            digest = hashlib.sha256()
            size = 0
            with _urlopen(url, connect_timeout, read_timeout) as response:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except TimeoutError:
                        raise TimeoutError(
                            f"stalled: no data for {read_timeout:g} s after "
                            f"{_megabytes(size)} of {_megabytes(expected_size)}"
                        ) from None
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > expected_size:
                        raise ValueError(f"more than the expected {expected_size} bytes")
                    digest.update(chunk)
                    tmp.write(chunk)
                    update(len(chunk))
            tmp.flush()
            os.fsync(tmp.fileno())
        actual_sha = digest.hexdigest()
        if size != expected_size or actual_sha != expected_sha:
            raise ValueError(
                f"got {size} bytes with sha256 {actual_sha}, "
                f"expected {expected_size} bytes with sha256 {expected_sha}"
            )
        os.replace(tmp_path, dest / name)
        done = True
    finally:
        close()
        if not done:
            tmp_path.unlink(missing_ok=True)


def _reason(exc: BaseException, connect_timeout: float, read_timeout: float) -> str:
    """Why a mirror failed, in words (timeouts say which one)."""
    reason = getattr(exc, "reason", None)  # urllib.error.URLError wraps the socket error
    if isinstance(exc, TimeoutError) and str(exc).startswith("stalled"):
        return str(exc)
    if isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError):
        return (
            f"timed out (no connection within {connect_timeout:g} s, or no response "
            f"within {read_timeout:g} s)"
        )
    return f"{type(exc).__name__}: {exc}"


def download_mnist(
    dest: str | os.PathLike[str],
    mirrors: Sequence[str] = MNIST_MIRRORS,
    *,
    timeout: float | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    progress: bool = True,
) -> Path:
    """Download the four MNIST ``.gz`` files into ``dest``, verifying each.

    Files already present with the right size and SHA256 are kept. Each
    missing (or bad) file is fetched from each mirror in turn into a temporary
    file in ``dest``, checked, and moved into place atomically, so an
    interrupted download never leaves a partial file under the final name.
    A mirror that does not connect within ``connect_timeout`` or sends nothing
    for ``read_timeout`` seconds is given up for the next one.

    Args:
        dest: Destination folder; created if needed.
        mirrors: Base URLs to try in order (file names are appended).
        timeout: If given, both ``connect_timeout`` and ``read_timeout``.
        connect_timeout: Seconds a mirror has to accept the connection.
        read_timeout: Seconds a mirror may send nothing before it counts as stalled.
        progress: Say on stderr which file is fetched from which mirror, with its
            progress, and why a mirror was given up.

    Returns:
        The destination folder.

    Raises:
        MNISTDataError: If a file could not be obtained from any mirror.
    """
    if timeout is not None:
        connect_timeout = read_timeout = timeout
    folder = Path(dest).expanduser().absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MNISTDataError(f"Cannot create MNIST folder {folder}: {exc}\n{_FIX_HINT}") from exc

    def say(text: str) -> None:
        if progress:
            print(f"MNIST: {text}", file=sys.stderr, flush=True)

    for name, (expected_sha, expected_size) in MNIST_FILES.items():
        target = folder / name
        if target.is_file() and _file_digest(target) == (expected_sha, expected_size):
            continue
        errors: list[str] = []
        for i, mirror in enumerate(mirrors):
            url = mirror.rstrip("/") + "/" + name
            say(
                f"downloading {name} ({_megabytes(expected_size)}) from {url} "
                f"(mirror {i + 1} of {len(mirrors)}) into {folder}"
            )
            try:
                _download_one(url, name, folder, connect_timeout, read_timeout, progress)
            except (OSError, ValueError) as exc:
                reason = _reason(exc, connect_timeout, read_timeout)
                errors.append(f"  {url}: {reason}")
                more = "trying the next mirror" if i + 1 < len(mirrors) else "no mirror left"
                say(f"{url} failed: {reason}; {more}")
                continue
            break
        else:
            tried = "\n".join(errors) if errors else "  (no mirrors given)"
            raise MNISTDataError(
                f"Could not download MNIST file {name} into {folder}; tried:\n{tried}\n{_FIX_HINT}"
            )
    return folder


def _parse_idx(data: bytes, path: Path, *, images: bool, count: int) -> np.ndarray:
    """Parse decompressed IDX content into a read-only array.

    Args:
        data: The decompressed file content.
        path: The file it came from (for error messages).
        images: Whether this is an image file (else a label file).
        count: The expected number of items.

    Returns:
        ``uint8`` array of shape ``(count, 28, 28)`` for images or ``(count,)``
        for labels, a zero-copy read-only view of ``data``.

    Raises:
        MNISTDataError: If the header or length is not as expected.
    """
    magic_expected = _IMAGE_MAGIC if images else _LABEL_MAGIC
    header_len = 16 if images else 8
    expected_header = (magic_expected, count, _ROWS, _COLS) if images else (magic_expected, count)
    item_size = _ROWS * _COLS if images else 1
    if len(data) < header_len:
        raise MNISTDataError(
            f"MNIST file {path} is not a valid IDX file: only {len(data)} bytes "
            f"after decompression.\n{_FIX_HINT}"
        )
    header = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=header_len // 4))
    if header != expected_header:
        raise MNISTDataError(
            f"MNIST file {path} has IDX header (magic, count[, rows, cols]) = {header}, "
            f"expected {expected_header}.\n{_FIX_HINT}"
        )
    if len(data) != header_len + count * item_size:
        raise MNISTDataError(
            f"MNIST file {path} has {len(data)} decompressed bytes, expected "
            f"{header_len + count * item_size}.\n{_FIX_HINT}"
        )
    arr = np.frombuffer(data, dtype=np.uint8, offset=header_len)
    if images:
        arr = arr.reshape(count, _ROWS, _COLS)
    arr.flags.writeable = False
    return arr


def _read_verified(folder: Path, name: str) -> bytes:
    """Read one ``.gz`` file, check its size and SHA256, and decompress it.

    Args:
        folder: The data folder.
        name: The file name, a key of :data:`MNIST_FILES`.

    Returns:
        The decompressed content.

    Raises:
        MNISTDataError: If the file is unreadable, has the wrong size or
            SHA256, or does not decompress.
    """
    path = folder / name
    expected_sha, expected_size = MNIST_FILES[name]
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MNISTDataError(f"Cannot read MNIST file {path}: {exc}\n{_FIX_HINT}") from exc
    actual_sha = hashlib.sha256(raw).hexdigest()
    if len(raw) != expected_size or actual_sha != expected_sha:
        raise MNISTDataError(
            f"MNIST file {path} is corrupt or truncated:\n"
            f"  expected {expected_size} bytes, sha256 {expected_sha}\n"
            f"  actual   {len(raw)} bytes, sha256 {actual_sha}\n"
            f"Delete it (a file in the cache folder is then downloaded again) or replace it "
            f"with a good copy.\n{_FIX_HINT}"
        )
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise MNISTDataError(f"Cannot decompress MNIST file {path}: {exc}\n{_FIX_HINT}") from exc


@dataclass(frozen=True, eq=False)
class _Raw:
    """Parsed MNIST arrays of one data folder."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


_RAW_CACHE: dict[str, _Raw] = {}
_RAW_LOCK = threading.Lock()


def _labels_int64(labels: np.ndarray) -> np.ndarray:
    """Convert labels to a read-only ``int64`` array."""
    out = labels.astype(np.int64)
    out.flags.writeable = False
    return out


def _load_raw(folder: Path) -> _Raw:
    """Verify and parse the four files of ``folder``, once per process."""
    key = str(folder.resolve())
    with _RAW_LOCK:
        raw = _RAW_CACHE.get(key)
        if raw is None:
            raw = _Raw(
                train_images=_parse_idx(
                    _read_verified(folder, _TRAIN_IMAGES),
                    folder / _TRAIN_IMAGES,
                    images=True,
                    count=_N_TRAIN,
                ),
                train_labels=_labels_int64(
                    _parse_idx(
                        _read_verified(folder, _TRAIN_LABELS),
                        folder / _TRAIN_LABELS,
                        images=False,
                        count=_N_TRAIN,
                    )
                ),
                test_images=_parse_idx(
                    _read_verified(folder, _TEST_IMAGES),
                    folder / _TEST_IMAGES,
                    images=True,
                    count=_N_TEST,
                ),
                test_labels=_labels_int64(
                    _parse_idx(
                        _read_verified(folder, _TEST_LABELS),
                        folder / _TEST_LABELS,
                        images=False,
                        count=_N_TEST,
                    )
                ),
            )
            _RAW_CACHE[key] = raw
    return raw


def load_mnist(
    split: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
) -> MNISTSplit:
    """Load one MNIST split.

    The data folder is found by :func:`resolve_data_dir`. The first load from
    a folder in a process verifies (size and SHA256) and parses all four
    files; later loads reuse the same read-only buffers.

    Args:
        split: One of ``"train"`` (first 50,000 training images), ``"val"``
            (last 10,000 training images), ``"test"`` (10,000 test images) or
            ``"train_full"`` (all 60,000 training images).
        data_dir: Folder holding the four ``.gz`` files, or ``None`` to use
            ``$GLIMPSE_ENV_DATA`` or the cache folder.
        download: Whether missing files may be downloaded into the cache
            folder.

    Returns:
        The split, with read-only ``uint8`` images ``(N, 28, 28)`` and
        ``int64`` labels ``(N,)``.

    Raises:
        ValueError: If ``split`` is not one of :data:`SPLITS`.
        MNISTDataError: If the data cannot be found, downloaded or verified.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown MNIST split {split!r}; valid splits: {', '.join(SPLITS)}")
    raw = _load_raw(resolve_data_dir(data_dir, download=download))
    n_train = _N_TRAIN - _N_VAL
    if split == "train":
        images, labels = raw.train_images[:n_train], raw.train_labels[:n_train]
    elif split == "val":
        images, labels = raw.train_images[n_train:], raw.train_labels[n_train:]
    elif split == "test":
        images, labels = raw.test_images, raw.test_labels
    else:
        images, labels = raw.train_images, raw.train_labels
    return MNISTSplit(name=split, images=images, labels=labels)
