"""Paths the user names for failfirst to write, checked before anything runs.

A real run writes where it is told: a database file (``--db``, checked by
:meth:`failfirst.store.sqlite.Store.open_file`), a result file (``--out``), a private
server's folder (``--folder``). Each is either a new name in a directory that exists
and can be written, or an existing thing of the kind expected. Anything else — a
directory where a file is meant, a device, a FIFO, a socket, a parent that does not
exist, a folder of someone else's — is refused in one line before the work begins,
and is never replaced, emptied or deleted.
"""

from __future__ import annotations

import os
import stat

from failfirst.store.interface import StoreError

#: A folder failfirst made for a private server holds this file: only such a folder (or
#: an empty one) is ever emptied or removed by failfirst.
FOLDER_MARK = ".failfirst-folder"


class PathRefused(StoreError):
    """A user-named path that failfirst will not write: one line, before the run."""


def shown(path: str) -> str:
    """A path as a one-line message shows it (escaped when it holds a newline)."""
    return path if path.isprintable() else repr(path)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _check_parent(full: str, what: str) -> None:
    parent = os.path.dirname(full)
    if not os.path.isdir(parent):
        raise PathRefused(f"{what} {shown(full)}: directory {shown(parent)} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PathRefused(f"{what} {shown(full)}: directory {shown(parent)} is not writable")


def output_file(path: str, what: str = "--out") -> str:
    """The absolute path of a file failfirst may write (replace): a new name in a
    writable directory, or an existing regular file (a symlink to one: its target is
    written). Raises :class:`PathRefused` otherwise."""
    if not isinstance(path, str) or not path:
        raise PathRefused(f"{what}: empty path")
    full = os.path.abspath(path)
    try:
        st = os.stat(full)
    except FileNotFoundError:
        _check_parent(full, what)
        return full
    except OSError as exc:
        raise PathRefused(f"{what} {shown(full)}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise PathRefused(f"{what} {shown(full)}: {_kind(st.st_mode)}, not a file failfirst may write")
    if not os.access(full, os.W_OK):
        raise PathRefused(f"{what} {shown(full)}: not writable")
    return os.path.realpath(full)


def is_ours(folder: str) -> bool:
    """Did failfirst make this folder (it holds :data:`FOLDER_MARK`)?"""
    return os.path.isfile(os.path.join(folder, FOLDER_MARK))


def own_folder(path: str, what: str = "--folder") -> str:
    """The absolute path of a folder failfirst may fill, empty and remove: a new name in
    a writable directory, an empty directory, or a folder failfirst made before (it
    holds :data:`FOLDER_MARK`). Raises :class:`PathRefused` otherwise."""
    if not isinstance(path, str) or not path:
        raise PathRefused(f"{what}: empty path")
    full = os.path.abspath(path)
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        _check_parent(full, what)
        return full
    except OSError as exc:
        raise PathRefused(f"{what} {shown(full)}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else (
            "a file" if stat.S_ISREG(st.st_mode) else _kind(st.st_mode))
        raise PathRefused(f"{what} {shown(full)}: {kind}, not a folder")
    if not os.access(full, os.W_OK | os.X_OK):
        raise PathRefused(f"{what} {shown(full)}: not writable")
    if os.listdir(full) and not is_ours(full):
        raise PathRefused(f"{what} {shown(full)}: a folder that failfirst did not make "
                          f"(no {FOLDER_MARK} in it): it is left alone; name a new or empty one")
    return full


def mark_ours(folder: str) -> None:
    """Create ``folder`` if needed and mark it as failfirst's (see :func:`own_folder`)."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, FOLDER_MARK), "w", encoding="utf-8") as f:
        f.write("made by failfirst: removed by failfirst when its run ends\n")
