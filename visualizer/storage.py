"""The server's private cache folder and the secret that signs background-job handles.

The folder holds the diskcache of background jobs (every user's results), the job-slot table
and, on one machine without Redis, the signing secret. It is private to the account running the
server: ``<tmp>/bpttlab-cache-<uid>`` (``BPTTLAB_CACHE_DIR`` overrides it), created with mode 0700.
An existing folder is used only if it is a real directory (not a link) owned by this account and
closed to everyone else; otherwise the server refuses to start and says why. Another local
account that pre-created it could otherwise read every result or plant a known secret and forge
job handles.

The secret: ``BPTTLAB_SECRET_KEY`` if set (required with Redis: every web server and worker of a
cluster must sign with the same one, see :func:`require_cluster_secret`), else a random key in
``signing-secret`` (mode 0600, checked like the folder), created once and read by every worker
process of this machine.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
import time
from pathlib import Path

CACHE_ENV = "BPTTLAB_CACHE_DIR"
SECRET_ENV = "BPTTLAB_SECRET_KEY"
SECRET_FILE = "signing-secret"
MIN_SECRET_CHARS = 16
MAKE_SECRET = "python -c 'import secrets; print(secrets.token_hex(32))'"


class UnsafeStorage(RuntimeError):
    """The cache folder or the secret is not private to this account; ``str(e)`` says what to do."""


def default_cache_dir() -> Path:
    """``<tmp>/bpttlab-cache-<uid>``: one folder per account."""
    return Path(tempfile.gettempdir()) / f"bpttlab-cache-{os.geteuid()}"


def check_private(path: Path, kind: str, mode_mask: int = 0o077) -> None:
    """Raise :class:`UnsafeStorage` unless ``path`` is a ``kind`` ("folder" or "file", not a
    symbolic link) owned by this account with none of the ``mode_mask`` permission bits."""
    st = os.lstat(path)
    want = stat.S_ISDIR if kind == "folder" else stat.S_ISREG
    fix = (f"Remove it (if it is not yours, ask who made it) or set {CACHE_ENV} to a folder only you can "
           "read, then start again.")
    if not want(st.st_mode):
        raise UnsafeStorage(f"{path} is not a {kind} (a link or something else): refusing to use it. {fix}")
    if st.st_uid != os.geteuid():
        raise UnsafeStorage(f"The {kind} {path} belongs to another account (uid {st.st_uid}, you are "
                            f"{os.geteuid()}): refusing to use it. {fix}")
    if st.st_mode & mode_mask:
        raise UnsafeStorage(f"The {kind} {path} can be read or changed by other accounts (mode "
                            f"{stat.S_IMODE(st.st_mode):o}): refusing to use it. "
                            f"Run: chmod {'700' if kind == 'folder' else '600'} {path}")


def cache_dir() -> Path:
    """The private cache folder (created with mode 0700; an existing one is checked, see the module)."""
    folder = Path(os.environ.get(CACHE_ENV) or default_cache_dir())
    folder.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    check_private(folder, "folder")
    return folder


def env_secret() -> bytes | None:
    """``BPTTLAB_SECRET_KEY`` as bytes, None if unset; too short a key is refused."""
    value = os.environ.get(SECRET_ENV, "").strip()
    if not value:
        return None
    if len(value) < MIN_SECRET_CHARS:
        raise UnsafeStorage(f"{SECRET_ENV} is too short ({len(value)} characters; at least {MIN_SECRET_CHARS}). "
                            f"Make one with: {MAKE_SECRET}")
    return value.encode()


def missing_secret_message(redis_env: str) -> str:
    """What to do when Redis is configured but no shared secret is."""
    return (f"{SECRET_ENV} is not set. With {redis_env} (Celery + Redis) every web server and every worker must "
            f"sign background-job handles with the same secret. Set it to the same random value on every "
            f"machine, e.g. export {SECRET_ENV}=$({MAKE_SECRET})")


def require_cluster_secret(redis_url: str | None, redis_env: str) -> bytes | None:
    """The shared secret; raises :class:`UnsafeStorage` when ``redis_url`` is set without one."""
    secret = env_secret()
    if redis_url and secret is None:
        raise UnsafeStorage(missing_secret_message(redis_env))
    return secret


def shared_secret(redis_url: str | None = None, redis_env: str = "BPTTLAB_REDIS_URL") -> bytes:
    """The secret that signs background-job handles (see the module docstring)."""
    secret = require_cluster_secret(redis_url, redis_env)
    if secret is not None:
        return secret
    path = cache_dir() / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        check_private(path, "file")
        for _ in range(50):  # another process may be writing it right now
            data = path.read_bytes().strip()
            if data:
                return data
            time.sleep(0.01)
        raise UnsafeStorage(f"{path} is empty; delete it and start again") from None
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_hex(32).encode())
    return path.read_bytes().strip()
