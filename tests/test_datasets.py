"""Tests for :mod:`glimpse_env.datasets` (no internet needed)."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest

from glimpse_env import datasets
from glimpse_env.datasets import (
    DATA_ENV_VAR,
    MNIST_FILES,
    MNISTDataError,
    download_mnist,
    load_mnist,
    resolve_data_dir,
)

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --------------------------------------------------------------------------- helpers


def _copy_files(src: Path, dst: Path, *, link: bool = False) -> Path:
    """Copy (or symlink) the four MNIST files from ``src`` into ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        if link:
            (dst / name).symlink_to(src / name)
        else:
            shutil.copyfile(src / name, dst / name)
    return dst


def _flip_byte(path: Path, offset: int = 1000) -> None:
    """Flip one byte of ``path`` in place."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep tests away from the real env var, the real cache and any proxy."""
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture
def mnist_copy(mnist_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the MNIST files in a fresh folder."""
    return _copy_files(mnist_dir, tmp_path / "copy")


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """The cache folder for this test (under the patched ``XDG_CACHE_HOME``)."""
    folder = datasets.default_cache_dir()
    assert folder == tmp_path / "xdg" / "glimpse_env" / "mnist"
    return folder


class _LocalServer:
    """An HTTP server on 127.0.0.1 (a free port) in a daemon thread; ``close`` stops it."""

    def _start(self, handler: Any) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class _Server(_LocalServer):
    """A local HTTP server serving a folder, recording request paths."""

    def __init__(self, root: Path) -> None:
        self.requests: list[str] = []
        recorder = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                recorder.append(self.path)

        self._start(functools.partial(Handler, directory=str(root)))


@pytest.fixture
def server_root(mnist_dir: Path, tmp_path: Path) -> Path:
    """Served tree: ``good/`` (real files), ``bad/`` (one flipped byte), ``short/`` (truncated)."""
    root = tmp_path / "www"
    _copy_files(mnist_dir, root / "good")
    bad = _copy_files(mnist_dir, root / "bad")
    short = _copy_files(mnist_dir, root / "short")
    for name in MNIST_FILES:
        _flip_byte(bad / name, offset=100)
        data = (short / name).read_bytes()
        (short / name).write_bytes(data[: len(data) // 2])
    return root


@pytest.fixture
def server(server_root: Path) -> Iterator[_Server]:
    """A running local server over :func:`server_root`."""
    srv = _Server(server_root)
    yield srv
    srv.close()


# --------------------------------------------------------------------------- content


@pytest.mark.parametrize(
    ("split", "n"), [("train", 50_000), ("val", 10_000), ("test", 10_000), ("train_full", 60_000)]
)
def test_split_shapes_and_dtypes(mnist_dir: Path, split: str, n: int) -> None:
    ds = load_mnist(split, mnist_dir)
    assert ds.name == split
    assert len(ds) == n
    assert ds.images.shape == (n, 28, 28)
    assert ds.images.dtype == np.uint8
    assert ds.labels.shape == (n,)
    assert ds.labels.dtype == np.int64
    assert not ds.images.flags.writeable
    assert not ds.labels.flags.writeable
    with pytest.raises(ValueError):
        ds.images[0, 0, 0] = 1
    with pytest.raises(ValueError):
        ds.labels[0] = 1
    assert ds.labels.min() == 0
    assert ds.labels.max() == 9
    assert ds.images.max() == 255


def test_label_counts(mnist_dir: Path) -> None:
    full = load_mnist("train_full", mnist_dir)
    test = load_mnist("test", mnist_dir)
    assert np.bincount(full.labels, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(test.labels, minlength=10).tolist() == TEST_COUNTS


def test_splits_are_views_of_train_full(mnist_dir: Path) -> None:
    full = load_mnist("train_full", mnist_dir)
    train = load_mnist("train", mnist_dir)
    val = load_mnist("val", mnist_dir)
    assert np.array_equal(val.images, full.images[50_000:])
    assert np.array_equal(val.labels, full.labels[50_000:])
    assert np.array_equal(train.images, full.images[:50_000])
    assert np.array_equal(train.labels, full.labels[:50_000])
    # Shared memory: no copies per split or per call.
    assert np.shares_memory(full.images, val.images)
    assert np.shares_memory(full.images, train.images)
    assert np.shares_memory(full.labels, val.labels)
    assert load_mnist("test", mnist_dir).images is load_mnist("test", mnist_dir).images


def test_unknown_split(mnist_dir: Path) -> None:
    with pytest.raises(ValueError, match="train_full"):
        load_mnist("validation", mnist_dir)


def test_split_repr_is_short(mnist_dir: Path) -> None:
    assert repr(load_mnist("val", mnist_dir)) == "MNISTSplit(name='val', n=10000)"


# --------------------------------------------------------------------------- lookup order


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert datasets.default_cache_dir() == tmp_path / "c" / "glimpse_env" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.default_cache_dir() == tmp_path / "home" / ".cache" / "glimpse_env" / "mnist"


def test_lookup_order(
    mnist_dir: Path, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arg = _copy_files(mnist_dir, tmp_path / "arg", link=True)
    env = _copy_files(mnist_dir, tmp_path / "env", link=True)
    _copy_files(mnist_dir, cache_dir, link=True)
    monkeypatch.setenv(DATA_ENV_VAR, str(env))
    assert resolve_data_dir(arg) == arg
    assert resolve_data_dir(str(arg)) == arg
    assert resolve_data_dir() == env
    monkeypatch.setenv(DATA_ENV_VAR, "")
    assert resolve_data_dir() == cache_dir
    monkeypatch.delenv(DATA_ENV_VAR)
    assert resolve_data_dir(download=False) == cache_dir


def test_load_via_env_var(mnist_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV_VAR, str(mnist_dir))
    assert len(load_mnist("test")) == 10_000


def test_named_folder_does_not_fall_back(
    mnist_dir: Path, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _copy_files(mnist_dir, cache_dir, link=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MNISTDataError, match="lacks"):
        resolve_data_dir(empty)
    monkeypatch.setenv(DATA_ENV_VAR, str(empty))
    with pytest.raises(MNISTDataError, match=DATA_ENV_VAR):
        resolve_data_dir()
    # Nothing was downloaded into the named folder.
    assert list(empty.iterdir()) == []


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("via_env", [False, True])
def test_missing_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, via_env: bool) -> None:
    missing = tmp_path / "nope"
    if via_env:
        monkeypatch.setenv(DATA_ENV_VAR, str(missing))
    with pytest.raises(MNISTDataError) as info:
        load_mnist("train", None if via_env else missing)
    msg = str(info.value)
    assert str(missing) in msg
    assert "does not exist" in msg
    assert DATA_ENV_VAR in msg
    for name, (sha, _size) in MNIST_FILES.items():
        assert name in msg
        assert sha in msg
    assert not missing.exists()


def test_missing_file(mnist_copy: Path) -> None:
    name = "t10k-labels-idx1-ubyte.gz"
    (mnist_copy / name).unlink()
    with pytest.raises(MNISTDataError) as info:
        load_mnist("test", mnist_copy)
    msg = str(info.value)
    assert name in msg
    assert MNIST_FILES[name][0] in msg
    assert "train-images-idx3-ubyte.gz (sha256" not in msg  # only the missing one listed
    assert DATA_ENV_VAR in msg


@pytest.mark.parametrize("name", list(MNIST_FILES))
def test_corrupt_file(mnist_copy: Path, name: str) -> None:
    _flip_byte(mnist_copy / name, offset=200)
    with pytest.raises(MNISTDataError) as info:
        load_mnist("train", mnist_copy)
    msg = str(info.value)
    assert str(mnist_copy / name) in msg
    assert MNIST_FILES[name][0] in msg
    assert "corrupt" in msg
    assert DATA_ENV_VAR in msg


def test_truncated_file(mnist_copy: Path) -> None:
    name = "train-images-idx3-ubyte.gz"
    path = mnist_copy / name
    path.write_bytes(path.read_bytes()[:5_000_000])
    with pytest.raises(MNISTDataError) as info:
        load_mnist("val", mnist_copy)
    msg = str(info.value)
    assert str(path) in msg
    assert "5000000" in msg
    assert str(MNIST_FILES[name][1]) in msg
    assert DATA_ENV_VAR in msg


def test_corrupt_file_not_cached(mnist_copy: Path, mnist_dir: Path) -> None:
    """A failed load leaves nothing cached: fixing the file makes the next load work."""
    name = "t10k-images-idx3-ubyte.gz"
    _flip_byte(mnist_copy / name)
    with pytest.raises(MNISTDataError):
        load_mnist("test", mnist_copy)
    shutil.copyfile(mnist_dir / name, mnist_copy / name)
    assert len(load_mnist("test", mnist_copy)) == 10_000


@pytest.mark.parametrize(
    ("data", "images", "match"),
    [
        (b"\x00\x00", True, "only 2 bytes"),
        (np.array([2049, 10_000, 28, 28], ">u4").tobytes(), True, "header"),
        (np.array([2051, 60_000, 28, 28], ">u4").tobytes(), True, "header"),
        (np.array([2051, 10_000, 28, 27], ">u4").tobytes(), True, "header"),
        (np.array([2051, 10_000, 28, 28], ">u4").tobytes() + b"\x00" * 10, True, "bytes"),
        (np.array([2051, 10_000], ">u4").tobytes(), False, "header"),
        (np.array([2049, 10_000], ">u4").tobytes() + b"\x00" * 9_999, False, "bytes"),
    ],
)
def test_bad_idx_header(data: bytes, images: bool, match: str) -> None:
    with pytest.raises(MNISTDataError, match=match):
        datasets._parse_idx(data, Path("x.gz"), images=images, count=10_000)


# --------------------------------------------------------------------------- download


def test_download_into_cache(
    server: _Server, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", (server.url + "/good/",))
    assert not cache_dir.exists()
    test = load_mnist("test")
    assert np.bincount(test.labels, minlength=10).tolist() == TEST_COUNTS
    assert sorted(p.name for p in cache_dir.iterdir()) == sorted(MNIST_FILES)
    for name, expected in MNIST_FILES.items():
        assert datasets._file_digest(cache_dir / name) == expected
    # Everything present now: a second call downloads nothing.
    n_requests = len(server.requests)
    download_mnist(cache_dir, (server.url + "/good/",))
    assert resolve_data_dir() == cache_dir
    assert len(server.requests) == n_requests


def test_download_false_does_not_download(
    server: _Server, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", (server.url + "/good/",))
    with pytest.raises(MNISTDataError, match="download=False"):
        load_mnist("test", download=False)
    assert server.requests == []
    assert not cache_dir.exists()


def test_download_falls_back_to_next_mirror(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "dl"
    mirrors = ("http://127.0.0.1:1/", server.url + "/bad", server.url + "/short/")
    mirrors += (server.url + "/good/",)
    assert download_mnist(dest, mirrors, timeout=10) == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(MNIST_FILES)
    for name, expected in MNIST_FILES.items():
        assert datasets._file_digest(dest / name) == expected
    for name in MNIST_FILES:
        assert server.requests.index(f"/bad/{name}") < server.requests.index(f"/good/{name}")
    assert len(load_mnist("train", dest)) == 50_000


def test_download_replaces_bad_existing_file(
    server: _Server, mnist_dir: Path, tmp_path: Path
) -> None:
    dest = _copy_files(mnist_dir, tmp_path / "dl")
    name = "train-labels-idx1-ubyte.gz"
    _flip_byte(dest / name, offset=50)
    download_mnist(dest, (server.url + "/good/",))
    assert server.requests == [f"/good/{name}"]
    assert datasets._file_digest(dest / name) == MNIST_FILES[name]


def test_download_all_mirrors_fail(
    server: _Server, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirrors = ("http://127.0.0.1:1/", server.url + "/bad/", server.url + "/short/")
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", mirrors)
    with pytest.raises(MNISTDataError) as info:
        load_mnist("train")
    msg = str(info.value)
    first = next(iter(MNIST_FILES))
    assert first in msg
    for mirror in mirrors:
        assert mirror + first in msg
    assert "sha256" in msg
    assert DATA_ENV_VAR in msg
    # No data file and no temporary file left behind.
    assert cache_dir.is_dir()
    assert list(cache_dir.iterdir()) == []


def test_download_removes_temp_file_on_interrupt(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception mid-download (e.g. Ctrl-C) leaves no partial or temp file."""
    dest = tmp_path / "dl"

    def boom(*args: object, **kwargs: object) -> NoReturn:
        raise KeyboardInterrupt

    monkeypatch.setattr(datasets, "_urlopen", boom)
    with pytest.raises(KeyboardInterrupt):
        download_mnist(dest, (server.url + "/good/",))
    assert list(dest.iterdir()) == []


# --------------------------------------------------------------------------- stalled mirrors


class _StallingServer(_LocalServer):
    """A local HTTP server whose ``/hang/...`` never answers and whose ``/stall/...`` sends
    the headers and then nothing; both are released when the test ends (bounded wait)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        release = self.release

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.startswith("/stall/"):
                    self.send_response(200)
                    self.send_header("Content-Length", "4542")
                    self.end_headers()
                    self.wfile.write(b"\x1f\x8b")  # two bytes, then silence
                    self.wfile.flush()
                release.wait(timeout=10)

        self._start(Handler)

    def close(self) -> None:
        self.release.set()
        super().close()


@pytest.fixture
def stalling() -> Iterator[_StallingServer]:
    srv = _StallingServer()
    yield srv
    srv.close()


def test_download_gives_up_stalled_mirrors_and_says_so(
    stalling: _StallingServer,
    server: _Server,
    mnist_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    """A mirror that never answers, or stops sending mid-file, costs ``read_timeout``
    (not a minute), and stderr names each file, mirror and why a mirror was given up."""
    dest = _copy_files(mnist_dir, tmp_path / "dl")
    name = "t10k-labels-idx1-ubyte.gz"
    (dest / name).unlink()
    mirrors = (stalling.url + "/hang/", stalling.url + "/stall/", server.url + "/good/")
    start = time.monotonic()
    download_mnist(dest, mirrors, connect_timeout=2.0, read_timeout=0.5)
    elapsed = time.monotonic() - start
    # Two stalls of 0.5 s; without the timeouts each would last until the server gives up
    # (10 s), so the bound is loose enough for a busy machine and still catches that.
    assert elapsed < 8.0, elapsed
    assert datasets._file_digest(dest / name) == MNIST_FILES[name]
    err = capsys.readouterr().err
    for i, mirror in enumerate(mirrors, start=1):
        assert f"{mirror}{name} (mirror {i} of 3)" in err
    assert f"{stalling.url}/hang/{name} failed: timed out" in err
    assert f"{stalling.url}/stall/{name} failed: stalled: no data for 0.5 s" in err
    assert err.count("trying the next mirror") == 2
    # progress=False: silent.
    (dest / name).unlink()
    download_mnist(dest, (server.url + "/good/",), progress=False)
    assert capsys.readouterr().err == ""


def test_download_timeouts_connect_short_read_separate(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connecting uses ``connect_timeout`` (10 s by default), reading ``read_timeout``."""
    import inspect
    import socket

    params = inspect.signature(download_mnist).parameters
    assert params["connect_timeout"].default == datasets.CONNECT_TIMEOUT == 10.0
    assert params["read_timeout"].default == datasets.READ_TIMEOUT
    seen: list[tuple[float | None, float | None]] = []
    real = socket.create_connection

    def spy(address: object, timeout: float | None = None, *args: object, **kw: object) -> object:
        sock = real(address, timeout, *args, **kw)
        seen.append((timeout, None))
        return sock

    real_with = datasets._with_read_timeout

    def spy_with(cls: type, read_timeout: float) -> type:
        base = real_with(cls, read_timeout)

        class Recording(base):  # type: ignore[misc, valid-type]
            def connect(self) -> None:
                super().connect()
                seen[-1] = (seen[-1][0], self.sock.gettimeout())

        return Recording

    monkeypatch.setattr(socket, "create_connection", spy)
    monkeypatch.setattr(datasets, "_with_read_timeout", spy_with)
    dest = tmp_path / "dl"
    download_mnist(dest, (server.url + "/good/",), connect_timeout=3.0, read_timeout=7.0)
    assert len(seen) == len(MNIST_FILES)
    assert set(seen) == {(3.0, 7.0)}
