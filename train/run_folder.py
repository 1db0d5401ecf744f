"""A run folder belongs to one run: claimed, locked while training, resumed safely.

Every ``glimpse train`` command enters its folder through :func:`claim_run_dir`:

* **New run** (``--run-dir DIR``, or the default ``runs/<agent>-<env>-<time>``): the folder
  must be empty (or not exist yet). A folder holding files is refused, with the two fixes:
  ``--resume DIR`` continues the run there, ``--overwrite`` replaces it. ``--overwrite``
  deletes the files a run writes (:data:`RUN_FILES`: config, metadata, checkpoints,
  metrics, TensorBoard logs, evaluation) and nothing else: a folder that also holds other
  files is refused, so that a mistyped ``--run-dir`` never deletes a user's files.
* **Resume** (``--resume DIR``): the folder must exist and hold a run of the same command
  (:func:`read_saved_config`: its ``config.json``; :func:`check_run_agent`: its
  ``meta.json``); the run continues from its newest usable checkpoint
  (:func:`load_resume_checkpoint`).
* **Lock**: while a command trains, the folder holds ``.lock`` (created with ``O_EXCL``; it
  holds the process id and host name). A second command on the same folder is refused
  with the holder's process id; the lock is removed when the command ends, also on an
  error. A lock left by a process that no longer runs (killed) is taken over with a notice.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from train.errors import GlimpseError, UsageError

T = TypeVar("T")

#: Name of the lock file inside a run folder.
LOCK_NAME = ".lock"

#: Files and folders a run writes: what ``--overwrite`` deletes.
RUN_FILES: frozenset[str] = frozenset(
    {
        "config.json",
        "meta.json",
        "metrics.csv",
        "eval.json",
        "tb",
        *(
            f"{stem}{tag}{suffix}"
            for stem, suffix in (("checkpoint", ".pt"), ("model", ".zip"))
            for tag in ("", ".prev", ".corrupt")
        ),
    }
)


def _is_run_file(name: str) -> bool:
    """Whether a run wrote ``name``: :data:`RUN_FILES`, temp files of atomic writes, locks."""
    return (
        name in RUN_FILES
        or (name.startswith(".") and name.endswith(".tmp"))
        or name == LOCK_NAME
        or name.startswith(LOCK_NAME + ".stale.")
    )


# --------------------------------------------------------------------------------- lock
def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (True when it cannot be told)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would signal the process there: assume alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by another user
        return True
    return True


class RunLock:
    """The lock file ``.lock`` of a run folder (see the module docstring).

    Args:
        run_dir: the run folder (must exist).
        notice: where taking over a stale lock is reported.
    """

    def __init__(self, run_dir: Path, notice: Callable[[str], None] = print) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.notice = notice
        self.held = False
        self._content = f"{os.getpid()} {socket.gethostname()}\n"

    def acquire(self) -> RunLock:
        """Create the lock file, or take over a stale one.

        Raises:
            GlimpseError: if a running process (named by its id) holds the folder.
        """
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._check_holder()
                continue
            with os.fdopen(fd, "w") as f:
                f.write(self._content)
            self.held = True
            return self
        raise GlimpseError(f"could not lock the run folder {self.run_dir} (lock file {self.path})")

    def _check_holder(self) -> None:
        """Raise if the lock's holder runs; else remove the stale lock (the caller retries)."""
        holder = self._read(self.path)
        if holder is None:  # being written by its creator right now, or gone: look again
            time.sleep(0.05)
            holder = self._read(self.path)
            if holder is None:
                if self.path.exists():
                    self._remove_stale(None)
                return
        pid, host = holder
        if host != socket.gethostname() or _pid_alive(pid):
            where = "" if host == socket.gethostname() else f" on host {host}"
            raise GlimpseError(
                f"run folder {self.run_dir} is in use by process {pid}{where} (lock file "
                f"{self.path}); wait for that run to end or stop it, or use another --run-dir "
                "(if no such process runs, delete the lock file)"
            )
        self._remove_stale(holder)

    def _remove_stale(self, holder: tuple[int, str] | None) -> None:
        """Remove the lock of a dead process, unless another process took it over meanwhile."""
        grave = self.path.with_name(f"{LOCK_NAME}.stale.{os.getpid()}")
        try:
            os.replace(self.path, grave)  # atomic: one process moves a given lock file
        except FileNotFoundError:
            return
        if self._read(grave) != holder:  # a fresh lock taken meanwhile: put it back
            os.replace(grave, self.path)
            return
        grave.unlink(missing_ok=True)
        who = "an unreadable lock" if holder is None else f"the lock of process {holder[0]}"
        self.notice(f"note: took over {who} in {self.run_dir}, which no longer runs")

    @staticmethod
    def _read(path: Path) -> tuple[int, str] | None:
        """``(pid, host)`` from a lock file, or None if it is missing or unreadable."""
        try:
            pid, host = path.read_text().split()
            return int(pid), host
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        """Remove the lock file if this process holds it."""
        if self.held:
            self.held = False
            with contextlib.suppress(OSError):
                if self.path.read_text() == self._content:
                    self.path.unlink()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# ------------------------------------------------------------------------- claiming
def _default_run_dir(agent: str, env_id: str) -> Path:
    """A new folder ``runs/<agent>-<env>-<time>`` (``-2``, ``-3``, ... if taken), created."""
    stem = os.path.join("runs", f"{agent}-{env_id}-{time.strftime('%Y%m%d-%H%M%S')}")
    for n in range(1, 1000):
        path = Path(stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            continue
        return path
    raise GlimpseError(f"no free run folder name like {stem}; give one with --run-dir")


@contextlib.contextmanager
def claim_run_dir(
    run_dir: str | os.PathLike | None,
    agent: str,
    env_id: str,
    resume: bool = False,
    overwrite: bool = False,
    notice: Callable[[str], None] = print,
) -> Iterator[Path]:
    """Claim a run folder for one command and hold its lock until the block ends.

    Args:
        run_dir: the folder (``--run-dir`` or ``--resume``); None: a new
            ``runs/<agent>-<env>-<time>``.
        agent: the kind of agent (for the default name).
        env_id: the env id (for the default name).
        resume: continue the run in ``run_dir`` (it must exist).
        overwrite: replace a previous run in ``run_dir`` (its files are deleted).
        notice: where notes (a stale lock taken over, files deleted) are reported.

    Yields:
        The run folder.

    Raises:
        UsageError: ``--resume`` with ``--overwrite``.
        GlimpseError: if the folder is in use, not empty (new run), missing (resume), or
            holds other files (``--overwrite``); the message names the fixes.
    """
    if resume and overwrite:
        raise UsageError("--overwrite starts a new run and --resume continues one: give one")
    if run_dir is None:
        if resume:
            raise UsageError("--resume needs the run folder to continue")
        path = _default_run_dir(agent, env_id)
    else:
        path = Path(run_dir)
        if resume and not path.is_dir():
            raise GlimpseError(f"--resume {path}: no such folder; give the folder of the run")
        if path.exists() and not path.is_dir():
            raise GlimpseError(f"run folder {path} is a file; give a folder with --run-dir")
        path.mkdir(parents=True, exist_ok=True)
    with RunLock(path, notice):
        if not resume:
            _prepare_new_run(path, overwrite, notice)
        yield path


def _prepare_new_run(path: Path, overwrite: bool, notice: Callable[[str], None]) -> None:
    """Refuse a non-empty folder, or (``overwrite``) delete the previous run's files."""
    present = sorted(p.name for p in path.iterdir() if p.name != LOCK_NAME)
    if not present:
        return
    shown = ", ".join(present[:5]) + (f" and {len(present) - 5} more" if len(present) > 5 else "")
    if not overwrite:
        raise GlimpseError(
            f"run folder {path} is not empty (it holds {shown}); continue that run with "
            f"--resume {path}, or replace it with --overwrite (deletes its files), or give "
            "another --run-dir"
        )
    foreign = [name for name in present if not _is_run_file(name)]
    if foreign:
        listed = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise GlimpseError(
            f"--overwrite: run folder {path} also holds files no glimpse run writes ({listed}); "
            "refused, so as not to delete them: move them, or give another --run-dir"
        )
    for name in present:
        target = path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    notice(f"--overwrite: deleted the previous run's files in {path} ({shown})")


# ------------------------------------------------------------------------------ resume
def load_resume_checkpoint(
    checkpoint: Path, load: Callable[[Path], T], notice: Callable[[str], None] = print
) -> T | None:
    """The newest usable checkpoint of a run being resumed, for ``glimpse train --resume``.

    ``checkpoint`` is loaded, or else its previous one (``checkpoint.prev.pt``; see
    :func:`agents.checkpoints.load_latest`, which reports the fall-back).

    Args:
        checkpoint: the run's checkpoint file (``checkpoint.pt``, ``model.zip``).
        load: reads one file; raises :class:`agents.checkpoints.CheckpointError` for an
            unusable one.
        notice: where the fall-back or a missing checkpoint is reported.

    Returns:
        What ``load`` returned, or None when the run has no checkpoint yet (it was stopped
        before its first one): the caller then starts the run from its beginning, with the
        saved settings, which gives the same result as an uninterrupted run.

    Raises:
        GlimpseError: if checkpoints exist but none is usable (what was found, what to do).
    """
    from agents.checkpoints import CheckpointError, load_latest

    try:
        loaded = load_latest(checkpoint, load, notice)
    except CheckpointError as exc:
        raise GlimpseError(
            f"cannot resume: {exc}; start the run again with --run-dir {checkpoint.parent} "
            "--overwrite and its flags (see its config.json)"
        ) from exc
    if loaded is None:
        notice(
            f"note: {checkpoint.parent} has no checkpoint yet (the run stopped before its "
            "first one): starting it from the beginning with its saved settings"
        )
    return loaded


def read_saved_config(run_dir: Path, cls: type) -> Any:
    """The config saved in ``run_dir/config.json`` by ``glimpse train COMMAND``.

    Raises:
        GlimpseError: if the folder or its ``config.json`` is missing, unreadable, of
            another agent, or holds settings ``cls`` does not take.
    """
    command = f"'glimpse train {cls.command}'"
    config_file = run_dir / "config.json"
    if not run_dir.is_dir():
        raise GlimpseError(
            f"--resume {run_dir}: no such folder; give the run folder of the run to continue"
        )
    check_run_agent(run_dir, cls.agents)
    if not config_file.is_file():
        raise GlimpseError(
            f"--resume {run_dir}: it has no config.json, so it is not a run folder of "
            f"{command}; check the folder, or start a new run there with --run-dir"
        )
    try:
        saved = json.loads(config_file.read_text())
    except json.JSONDecodeError as exc:
        raise GlimpseError(
            f"{config_file} is not valid JSON ({exc.msg} at line {exc.lineno}): the run folder "
            "is damaged; restore config.json or start a new run"
        ) from exc
    try:
        if not isinstance(saved, dict):
            raise TypeError(f"a JSON {type(saved).__name__}")
        return cls.from_dict(saved)
    except (TypeError, KeyError, AttributeError) as exc:
        raise GlimpseError(
            f"{config_file} is not a config of {command} ({exc}); "
            "resume a run with the command that started it"
        ) from exc
    except ValueError as exc:
        raise GlimpseError(
            f"{config_file} holds settings {command} refuses ({exc}); "
            "restore config.json or start a new run"
        ) from exc


def check_run_agent(run_dir: Path, agents: tuple[str, ...]) -> None:
    """Refuse to resume a run of another kind of agent (read from its ``meta.json``).

    Raises:
        GlimpseError: naming the command that continues it.
    """
    try:
        meta = json.loads((run_dir / "meta.json").read_text())
    except (OSError, ValueError):
        return  # no (readable) meta.json: config.json decides
    kind = meta.get("agent") if isinstance(meta, dict) else None
    if kind is None or kind in agents:
        return
    command = {"recurrent_ppo": "ppo"}.get(kind, kind)
    raise GlimpseError(
        f"--resume {run_dir}: it is a {kind} run; continue it with "
        f"'glimpse train {command} --resume {run_dir}'"
    )
