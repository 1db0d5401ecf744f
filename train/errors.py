"""The ``glimpse`` command's errors and its one error boundary.

Code under ``train/`` raises :class:`GlimpseError` (a failure the user can fix, exit 1) or
:class:`UsageError` (a bad command line, exit 2 as argparse's own errors) where it knows what
is wrong, with a message saying what is wrong and how to fix it. :func:`describe` turns
those, and the errors of files, downloads, environments and checkpoints that reach
:func:`train.cli.main`, into the single line the command prints instead of a traceback.
"""

from __future__ import annotations

import errno
import os

#: Environment variable that makes the command show tracebacks (as ``--debug`` does).
DEBUG_ENV_VAR = "GLIMPSE_DEBUG"

#: Exit status of a run stopped with Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED_EXIT = 130


class GlimpseError(Exception):
    """A failure the user can fix; the message says what is wrong and how to fix it.

    Attributes:
        exit_code: the command's exit status for this error.
    """

    exit_code = 1


class UsageError(GlimpseError):
    """A bad command line (an invalid value or combination of flags): exit status 2."""

    exit_code = 2


def debug_requested(flag: bool = False) -> bool:
    """Whether tracebacks are asked for: ``flag`` (``glimpse --debug``), or ``GLIMPSE_DEBUG``
    set to anything but ``""`` / ``0`` / ``false`` / ``no``."""
    if flag:
        return True
    return os.environ.get(DEBUG_ENV_VAR, "").strip().lower() not in ("", "0", "false", "no")


def one_line(text: str) -> str:
    """``text`` on one line: its lines stripped and joined with single spaces."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


#: Fixes for the operating-system errors a user meets most, by errno.
_OS_FIXES: dict[int, str] = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "the file system is read-only: choose another path",
    errno.ENOSPC: "the disk is full: free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up: free some space or write elsewhere",
    errno.EISDIR: "it is a folder: name a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
}


def describe_os_error(exc: OSError) -> str:
    """One line for a file error: the path, what went wrong and what to do."""
    if exc.errno is None or exc.strerror is None:  # raised by our code with a message
        return one_line(str(exc))
    where = f"{exc.filename}: " if exc.filename is not None else ""
    if exc.filename2 is not None:
        where = f"{exc.filename} -> {exc.filename2}: "
    fix = _OS_FIXES.get(exc.errno, "check the path and the disk")
    return f"{where}{exc.strerror.lower()}; {fix}"


def describe(exc: BaseException) -> tuple[str, int]:
    """The one-line message and exit status the command reports for ``exc``.

    Args:
        exc: an exception that reached the command's error boundary.

    Returns:
        ``(message, exit status)``: the project's own errors with their status, file and
        data errors with status 1; anything unforeseen with status 1 and a pointer to
        ``--debug``.
    """
    if isinstance(exc, GlimpseError):
        return one_line(str(exc)), exc.exit_code
    if isinstance(exc, OSError):
        return describe_os_error(exc), 1
    if isinstance(exc, MemoryError):
        return "out of memory; use smaller batches (--batch-size, --num-envs) or fewer images", 1
    message = one_line(str(exc)) or type(exc).__name__
    if _is_user_facing(exc):
        return message, 1
    return (
        f"unexpected {type(exc).__name__}: {message}; rerun with --debug (or "
        f"{DEBUG_ENV_VAR}=1) for the traceback and report it"
    ), 1


def _is_user_facing(exc: BaseException) -> bool:
    """Errors whose message is written for users: invalid values (``ValueError``,
    ``TypeError``, e.g. env arguments), MNIST data errors and Gymnasium's own errors."""
    if isinstance(exc, (ValueError, TypeError)):
        return True
    from glimpse_env.datasets import MNISTDataError

    if isinstance(exc, MNISTDataError):
        return True
    try:
        import gymnasium.error
    except ImportError:  # pragma: no cover - gymnasium is a core dependency
        return False
    return isinstance(exc, gymnasium.error.Error)
