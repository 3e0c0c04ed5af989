"""The transport seam: a transport only yields Attempt values; the base downloader restarts,
resumes, checks lengths and validates. Shown with a transport of its own (no HTTP), and the
capabilities of the two the library has."""
from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import AsyncIterator

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from pulp_downloads.download import (Attempt, BaseDownloader, FileDownloader, HttpDownloader,
                                     IncompleteDownload, LibrarySettings, MemoryWriter,
                                     ResumeFrom)

from .upstream import LOOPBACK_ALLOWED

DATA = os.urandom(200_000)
HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict({"ETag": '"v1"'}))


class Broken(Exception):
    pass


class ScriptedTransport(BaseDownloader):
    """Serves ``DATA`` from memory, one scripted answer per attempt:
    ``("whole", cut)``: the whole file, the body breaking after ``cut`` bytes (None: not);
    ``("resume", None)``: the part asked for; ``("part", offset)``: a part from ``offset``."""

    supports_resume = True
    script: list[tuple[str, int | None]] = []
    asked: list[ResumeFrom | None] = []

    @contextlib.asynccontextmanager
    async def _open(self, url: str, resume: ResumeFrom | None) -> AsyncIterator[Attempt]:
        self.asked.append(resume)
        kind, value = self.script.pop(0)
        if kind == "whole":
            yield Attempt(url, 200, HEADERS, _blocks(DATA, value), start=0,
                          resume_validator='"v1"', length=len(DATA))
        elif kind == "resume":
            assert resume is not None
            yield Attempt(url, 206, HEADERS, _blocks(DATA[resume.offset:], None),
                          start=resume.offset, resume_validator=resume.validator,
                          length=len(DATA) - resume.offset)
        else:
            yield Attempt(url, 206, HEADERS, _blocks(DATA[value:], None), start=None)


async def _blocks(data: bytes, cut: int | None) -> AsyncIterator[bytes]:
    end = len(data) if cut is None else cut
    for i in range(0, end, 64 * 1024):
        yield data[i:min(i + 64 * 1024, end)]
    if cut is not None:
        raise IncompleteDownload("mem://f", "broken on purpose")


@pytest.fixture
def scripted(make_factory, tmp_path):
    factory = make_factory("mem://repo/", max_retries=3, settings=LibrarySettings(
        address_policy=LOOPBACK_ALLOWED, working_directory=tmp_path))
    factory.downloader_classes = {**factory.downloader_classes, "mem": ScriptedTransport}

    def build(*script: tuple[str, int | None]) -> ScriptedTransport:
        downloader = factory.build("mem://repo/f", writer=MemoryWriter(),
                                   expected_digests={"sha256": hashlib.sha256(DATA).hexdigest()})
        assert isinstance(downloader, ScriptedTransport)
        downloader.script, downloader.asked = list(script), []
        return downloader

    return build


def test_the_transports_declare_whether_they_resume():
    assert HttpDownloader.supports_resume is True
    assert FileDownloader.supports_resume is False
    assert BaseDownloader.supports_resume is False


async def test_a_broken_body_is_resumed_from_the_bytes_every_consumer_took(scripted):
    downloader = scripted(("whole", 100_000), ("resume", None))
    result = await downloader.run()
    assert result.content == DATA and result.size == len(DATA)
    assert downloader.asked == [None, ResumeFrom(100_000, '"v1"')]


async def test_a_part_from_elsewhere_restarts_the_download_from_byte_0(scripted):
    downloader = scripted(("whole", 100_000), ("part", 4096), ("whole", None))
    result = await downloader.run()
    assert result.content == DATA
    assert downloader.asked == [None, ResumeFrom(100_000, '"v1"'), None]


async def test_a_whole_answer_to_a_resume_restarts_the_writer(scripted):
    downloader = scripted(("whole", 100_000), ("whole", None))
    result = await downloader.run()
    assert result.content == DATA and result.size == len(DATA)
    assert downloader.asked == [None, ResumeFrom(100_000, '"v1"')]
