"""Stored files shared by the apps: written atomically, journaled while in flight, swept when orphaned, and
deleted once the database change that dropped their rows commits.

Every file the apps store (reference images under `references/`, case-record images under `audit/`) goes through
`AtomicFileSystemStorage` (settings.STORAGES["default"]): the bytes go to a temporary file in the same folder, made
owner-only and then given FILE_UPLOAD_PERMISSIONS before any byte is written, fsynced, and then linked to its final
name (never overwriting one) and the folder fsynced; so a final name always holds a whole file, and a process killed
mid-write leaves at most a `.<name>.<process>.tmp` file. Rows are created after their file is complete, so a kill
can never leave a row without its file; it can leave a file without a row (killed between the file and the commit,
or between committing a delete and removing the file). `files_sweep` removes those, at every worker start and from
`manage.py sweep_files`, with no age rule: each serving process holds an exclusive lock (flock) on its own
`<id>.lock` in the in-flight folder (`inflight_root`: MEDIA_ROOT's sibling `<media>.inflight/`) for its whole life
and journals every name it is about to write in `<id>.journal` there before writing it. A file that no row names is deleted unless a live process (its lock still held) journaled it; the
kernel drops a killed process's lock at once, so its leftovers go at the next sweep, while uploads in flight in the
other workers are kept.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import transaction

log = logging.getLogger(__name__)

INFLIGHT_SUFFIX = ".inflight"  # the in-flight folder is MEDIA_ROOT's sibling: files under MEDIA_ROOT are all stored ones
TMP_SUFFIX = ".tmp"
JOURNAL_COMPACT_BYTES = 256 * 1024  # a journal longer than this keeps only entries younger than JOURNAL_KEEP_S
JOURNAL_KEEP_S = 3600.0  # far beyond any request's life (gunicorn's timeout kills a worker stuck longer)


def inflight_root() -> Path:
    """Where serving processes keep their locks and journals: `<MEDIA_ROOT>.inflight/` beside MEDIA_ROOT."""
    media = Path(settings.MEDIA_ROOT)
    return media.with_name(media.name + INFLIGHT_SUFFIX)


class _InFlight:
    """This process's lock and journal in `inflight_root()` (created on first use, again after a fork)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._pid: int | None = None
        self._root: Path | None = None
        self.id = ""
        self._lock_fd = -1

    def _ensure(self) -> None:
        root = inflight_root()
        if self._pid == os.getpid() and self._root == root:
            return
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        ident = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        pending = root / f".{ident}.lock.new"
        fd = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(pending, root / f"{ident}.lock")  # only ever seen by a sweeper already locked
        self._pid, self._root, self.id, self._lock_fd = os.getpid(), root, ident, fd

    def add(self, name: str) -> str:
        """Journal `name` (a storage name about to be written); returns this process's id."""
        with self._mutex:
            self._ensure()
            journal = self._root / f"{self.id}.journal"
            line = f"{time.time():.0f} {name}\n".encode()
            fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size > JOURNAL_COMPACT_BYTES:
                self._compact(journal)
            return self.id

    def _compact(self, journal: Path) -> None:
        keep_after = time.time() - JOURNAL_KEEP_S
        lines = [line for line in journal.read_text().splitlines(keepends=True)
                 if line.split(" ", 1)[0].isdigit() and float(line.split(" ", 1)[0]) >= keep_after]
        fresh = journal.with_suffix(".journal.new")
        fresh.write_text("".join(lines))
        os.replace(fresh, journal)


_inflight = _InFlight()


class AtomicFileSystemStorage(FileSystemStorage):
    """FileSystemStorage whose files appear whole or not at all, never with loose permissions, and are journaled
    while in flight (see the module's docstring)."""

    def _save(self, name: str, content) -> str:
        while True:
            full = Path(self.path(name))
            full.parent.mkdir(parents=True, exist_ok=True)
            if self.directory_permissions_mode is not None:
                os.chmod(full.parent, self.directory_permissions_mode)
            owner = _inflight.add(name)
            tmp = full.parent / f".{full.name}.{owner}{TMP_SUFFIX}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
            try:
                os.fchmod(fd, self.file_permissions_mode if self.file_permissions_mode is not None else 0o600)
                if hasattr(content, "seek"):
                    content.seek(0)
                for chunk in content.chunks():
                    view = memoryview(chunk if isinstance(chunk, bytes) else chunk.encode())
                    while view:
                        view = view[os.write(fd, view):]
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                _unlink(tmp)
                raise
            os.close(fd)
            try:
                os.link(tmp, full)  # atomic, and never replaces a file already there
            except FileExistsError:
                _unlink(tmp)
                name = self.get_available_name(name)
                continue
            finally:
                if full.exists():
                    _unlink(tmp)
            _fsync_dir(full.parent)
            return str(name).replace("\\", "/")


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def files_delete(names: list[str]) -> None:
    """Delete these storage names now; a file that cannot be deleted is logged, the others still go."""
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            log.exception("could not delete %s", name)


def files_delete_on_commit(names: list[str]) -> None:
    """Delete these storage names after the current transaction commits (never, if it rolls back)."""
    if names:
        transaction.on_commit(lambda: files_delete(names))


def _processes() -> tuple[set[str], set[str], list[tuple[int, Path]]]:
    """(ids of live processes, names their journals hold, [(fd, lock) of dead ones, now locked by us])."""
    root = inflight_root()
    live, names, dead = set(), set(), []
    if not root.is_dir():
        return live, names, dead
    for lock in root.glob("*.lock"):
        ident = lock.name[: -len(".lock")]
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            live.add(ident)
            try:
                names.update(line.split(" ", 1)[1].rstrip("\n") for line in
                             (root / f"{ident}.journal").read_text().splitlines(keepends=True) if " " in line)
            except FileNotFoundError:
                pass
            continue
        dead.append((fd, lock))
    return live, names, dead


def files_sweep(folders: dict[str, Callable[[list[str]], set[str]]], *, dry_run: bool = False) -> list[str]:
    """Delete, in each MEDIA_ROOT/<folder>, the files no row names (`folders[folder](names)` returns those of
    `names` some row names) and no live process journaled, and the temporary files of dead processes; then forget
    the dead processes' journals. Returns the storage names deleted (or, `dry_run`, that would be)."""
    root = Path(settings.MEDIA_ROOT)
    live, journaled, dead = _processes()  # before listing: a file listed below was journaled before it existed
    gone: list[str] = []
    try:
        for folder, known in folders.items():
            directory = root / folder
            if not directory.is_dir():
                continue
            candidates = []
            for path in directory.iterdir():
                name = f"{folder}/{path.name}"
                if path.name.startswith(".") and path.name.endswith(TMP_SUFFIX):
                    owner = path.name[: -len(TMP_SUFFIX)].rsplit(".", 1)[-1]
                    if owner not in live:
                        gone.append(name)
                elif path.is_file() and name not in journaled:
                    candidates.append(name)
            if candidates:
                named = known(candidates)
                gone.extend(name for name in candidates if name not in named)
        if not dry_run:
            files_delete(gone)
            for fd, lock in dead:
                _unlink(lock.with_suffix(".journal"))
                _unlink(lock)
    finally:
        for fd, _ in dead:
            os.close(fd)
    if gone:
        log.warning("%s %d stored file(s) without a database row", "found" if dry_run else "deleted", len(gone))
    return gone


def chunked(names: Iterable[str], size: int = 500) -> Iterable[list[str]]:
    batch: list[str] = []
    for name in names:
        batch.append(name)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
