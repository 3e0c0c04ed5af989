"""FileDownloader: file:// URLs, confined to the allowed roots."""
from __future__ import annotations

import asyncio
import contextlib
import email.utils
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from multidict import CIMultiDict, CIMultiDictProxy

from .attempts import Attempt, ResumeFrom
from .base import BaseDownloader
from .defaults import BLOCK_SIZE
from .exceptions import DownloadError, NotFound, UnsupportedURL
from .fileurls import FileUrlError, confine_to_roots, file_url_to_path
from .result import HeadResult


class FileDownloader(BaseDownloader):
    """Reads local files named by ``file://`` URLs that lie under an allowed root. Never
    resumes: a retry reads the file again from its first byte."""

    supports_resume = False

    def _path(self, url: str) -> Path:
        try:
            return confine_to_roots(file_url_to_path(url), self.context.settings.file_roots)
        except FileUrlError as exc:
            raise UnsupportedURL(url, str(exc)) from None
        except ValueError as exc:  # urlsplit() of a malformed URL
            raise UnsupportedURL(url, f"malformed URL: {exc}") from None

    def _stat(self, url: str, path: Path) -> os.stat_result:
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise NotFound(url, None, "no such file") from None
        except OSError as exc:
            raise DownloadError(url, f"cannot read file: {exc.strerror}") from None
        if not path.is_file():
            raise NotFound(url, None, "not a regular file")
        return stat

    @staticmethod
    def _headers(stat: os.stat_result) -> CIMultiDictProxy[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        headers["Content-Length"] = str(stat.st_size)
        headers["Last-Modified"] = email.utils.formatdate(stat.st_mtime, usegmt=True)
        return CIMultiDictProxy(headers)

    @contextlib.asynccontextmanager
    async def _open(self, url: str, resume: ResumeFrom | None) -> AsyncIterator[Attempt]:
        path = self._path(url)
        stat = self._stat(url, path)
        loop = asyncio.get_running_loop()
        try:
            handle = await loop.run_in_executor(self.context.executor, open, path, "rb")
        except OSError as exc:
            raise DownloadError(url, f"cannot open file: {exc.strerror}") from None
        try:
            yield Attempt(final_url=url, status=None, headers=self._headers(stat),
                          body=self._blocks(handle))
        finally:
            handle.close()

    async def _blocks(self, handle: BinaryIO) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        while True:
            try:
                block = await loop.run_in_executor(self.context.executor, handle.read, BLOCK_SIZE)
            except OSError as exc:
                raise DownloadError(self.url, f"cannot read file: {exc.strerror}") from None
            if not block:
                return
            yield block

    async def _head_attempt(self, url: str) -> HeadResult:
        path = self._path(url)
        stat = self._stat(url, path)
        return HeadResult(url=self.url, final_url=url, status=200,
                          headers=self._headers(stat), size=stat.st_size)
