"""The store helper: a child process that writes small files into local storage.

A sync downloads small files into memory. Writing each into storage, computing the digests
the download left out, and making the batch durable is a few system calls and some hashing
per file; done in the syncing process, every one of those calls hands the GIL back and forth
with the busy event loop, which costs more than the calls themselves. The helper does that
work in a process of its own, on the other core, with no GIL to share:

    helper = await StoreHelper.start()
    digests = await helper.write(items, algorithms=("sha224", ...), use_syncfs=True)
    await helper.close()

``write`` returns once every file is in place (atomically: staged, then renamed) and durable,
with the digests of each. Requests are handled one at a time, in order. If the helper dies,
``write`` raises :class:`StoreHelperError`, and so does every later call.

The child runs ``python -I -S`` with only this package's directory on its path and imports
nothing but the standard library, the stdlib-only modules :mod:`.localfiles` and
:mod:`.durability`, and the library's digest module: it starts quickly and needs no Django
settings.
Messages are pickles behind an 8-byte length, over the child's stdin and stdout (private
pipes between two processes of the same program).
"""
from __future__ import annotations

import asyncio
import fcntl
import functools
import importlib.util
import pickle
import struct
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import BinaryIO

_LENGTH = struct.Struct("!Q")
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
_CHILD_CODE = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from pulp_downloads.storage.helper import serve; serve()"
)


class StoreHelperError(OSError):
    """The helper could not store a batch, or is gone."""


class StoreHelper:
    """Parent side of the helper process (see the module docstring).

    A request is one blocking round trip on a worker thread: a few system calls that
    release the GIL, rather than many small pipe writes interleaved with the busy loop."""

    def __init__(self, process: subprocess.Popen, executor: Executor | None = None) -> None:
        self._process = process
        self._executor = executor
        self._lock = asyncio.Lock()
        self._broken: str | None = None

    @classmethod
    async def start(cls, executor: Executor | None = None) -> "StoreHelper":
        """Start a helper process (raises ``OSError`` when it cannot be started). Round trips
        wait on ``executor``'s threads (the loop's default executor when ``None``)."""
        loop = asyncio.get_running_loop()
        process = await loop.run_in_executor(executor, functools.partial(
            subprocess.Popen, [sys.executable, "-I", "-S", "-c", _CHILD_CODE, _PACKAGE_PARENT],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
        ))
        for pipe in (process.stdin, process.stdout):
            _enlarge(pipe.fileno())
        return cls(process, executor)

    async def write(self, items: Sequence[tuple[Path, bytes]], *, algorithms: Sequence[str],
                    use_syncfs: bool) -> list[dict[str, str]]:
        """Write each ``(destination, content)`` atomically, make them all durable, and
        return the digests (for ``algorithms``) of each content, in order."""
        request = (tuple(algorithms), use_syncfs, [(str(path), content) for path, content in items])
        async with self._lock:
            if self._broken is not None:
                raise StoreHelperError(self._broken)
            loop = asyncio.get_running_loop()
            try:
                status, payload = await loop.run_in_executor(self._executor, self._round_trip, request)
            except (OSError, EOFError, pickle.UnpicklingError) as exc:
                self._broken = f"the store helper process is gone ({type(exc).__name__})"
                raise StoreHelperError(self._broken) from None
        if status != "ok":
            raise StoreHelperError(payload)
        return payload

    def _round_trip(self, request) -> tuple[str, object]:
        data = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        self._process.stdin.write(_LENGTH.pack(len(data)))
        self._process.stdin.write(data)
        self._process.stdin.flush()
        header = _read_exactly(self._process.stdout, _LENGTH.size)
        body = header and _read_exactly(self._process.stdout, _LENGTH.unpack(header)[0])
        if not body:
            raise EOFError("no reply")
        return pickle.loads(body)

    async def close(self) -> None:
        """Stop the helper (it finishes the request in hand first) and wait for it."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._stop)

    def _stop(self) -> None:
        process = self._process
        try:
            process.stdin.close()
        except OSError:  # pragma: no cover - the pipe is already gone
            pass
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:  # pragma: no cover - a child stuck on the disk
            process.kill()
            process.wait()
        process.stdout.close()


def _enlarge(fd: int) -> None:
    """Give the pipe a 1 MiB buffer where the system allows (fewer wake-ups per batch)."""
    set_pipe_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_pipe_size is not None:
        try:
            fcntl.fcntl(fd, set_pipe_size, 1 << 20)
        except OSError:
            pass


# --- the child ------------------------------------------------------------------------------

def _read_exactly(stream: BinaryIO, length: int) -> bytes | None:
    data = stream.read(length)
    if len(data) < length:
        return None
    return data


@functools.lru_cache(maxsize=1)
def _digests_module():
    """The library's digest module (``download/digests.py``, standard library only), loaded
    by its path: importing it through its package would load aiohttp and the whole library
    into the child."""
    path = Path(__file__).resolve().parents[1] / "download" / "digests.py"
    spec = importlib.util.spec_from_file_location("pulp_downloads_helper_digests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _handle(algorithms: tuple[str, ...], use_syncfs: bool,
            items: list[tuple[str, bytes]]) -> list[dict[str, str]]:
    from .durability import flush_files
    from .localfiles import write_local

    digests_of = _digests_module().digests_of
    digests = []
    for destination, content in items:
        digests.append(digests_of(content, algorithms))
        write_local(content, Path(destination))
    flush_files([destination for destination, _ in items], use_syncfs=use_syncfs)
    return digests


def serve(stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
    """The child's loop: answer requests until stdin closes."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    while True:
        header = _read_exactly(stdin, _LENGTH.size)
        if header is None:
            return
        body = _read_exactly(stdin, _LENGTH.unpack(header)[0])
        if body is None:
            return
        try:
            reply = ("ok", _handle(*pickle.loads(body)))
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            reply = ("error", f"could not store a file: {exc.strerror or exc}{where}")
        except Exception as exc:  # a bug: report it rather than die silently
            reply = ("error", f"the store helper failed: {type(exc).__name__}: {exc}")
        data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.write(_LENGTH.pack(len(data)))
        stdout.write(data)
        stdout.flush()
