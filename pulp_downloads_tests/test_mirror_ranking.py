"""Mirror ranking (new downloads go to the fastest healthy mirror) and Metalink 4 mirror
lists (their URLs and priorities become the mirrors; their hashes are checked against the
manifest).

Which mirror is fast is decided in the mirror set's own time (a test clock the slow server
moves forward), so a busy machine cannot make the fast mirror look slow."""
from __future__ import annotations

import logging
import os

import pytest

from pulp_downloads.download.config import LibrarySettings
from pulp_downloads.download.metalink import MetalinkError, parse_metalink
from pulp_downloads.download.mirrors import MAX_MIRRORS, MirrorSet

from .upstream import FAST_RETRIES, LOOPBACK_ALLOWED, delay_fault, free_port, sha256

FILES = {f"pool/{i:02d}.bin": os.urandom(30_000 + i) for i in range(10)}


def serve_files(server, files, delay: float = 0.0) -> str:
    for path, data in files.items():
        server.add(f"repo/{path}", data)
        if delay:
            server.faults[f"repo/{path}"].append(delay_fault(delay))
    return server.url + "repo/"


def served(server, path_prefix: str = "repo/pool/") -> int:
    return sum(1 for method, path, _ in server.requests
               if method == "GET" and path.lstrip("/").startswith(path_prefix))


async def download_all(factory, base: str, files) -> None:
    for path, data in files.items():  # one after another: each sees the others' speeds
        await factory.build(base + path, expected_digests={"sha256": sha256(data)}).run()


class LaggingClock:
    """Monotonic seconds that pass only when told (:meth:`lag`), plus a microsecond a look."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1e-6
        return self.now

    def lag(self, seconds: float):
        """An upstream fault: the answer takes ``seconds`` of this clock, then comes."""
        async def fault(request, upstream):
            self.now += seconds
            return await upstream.serve(request, request.match_info["path"])
        return fault


async def test_new_downloads_move_to_the_faster_mirror(upstream, mirror, make_factory, tmp_path):
    clock = LaggingClock()
    slow = serve_files(upstream, FILES)
    for path in FILES:  # the primary answers a quarter of a second late, every time
        upstream.faults[f"repo/{path}"] += [clock.lag(0.25)] * len(FILES)
    fast = serve_files(mirror, FILES)
    settings = LibrarySettings(address_policy=LOOPBACK_ALLOWED, working_directory=tmp_path)
    factory = make_factory(slow, mirrors=[fast], settings=settings)
    factory.context.mirrors = MirrorSet(slow, [fast], FAST_RETRIES.mirror_cooldown, clock=clock)
    await download_all(factory, slow, FILES)
    assert served(upstream) <= 2, "the slow primary kept being asked first"
    assert served(mirror) >= 8
    speeds = factory.context.mirrors.speeds()
    assert speeds[fast] > speeds[slow] * 5


async def test_a_setting_keeps_the_primary_first(upstream, mirror, make_factory, tmp_path):
    slow = serve_files(upstream, FILES, delay=0.05)
    fast = serve_files(mirror, FILES)
    settings = LibrarySettings(address_policy=LOOPBACK_ALLOWED, working_directory=tmp_path,
                               mirror_ranking=False)
    factory = make_factory(slow, mirrors=[fast], settings=settings)
    await download_all(factory, slow, FILES)
    assert served(upstream) == len(FILES) and served(mirror) == 0


def metalink(files: dict[str, bytes], urls: list[tuple[str, int, str]],
             wrong: str | None = None) -> str:
    """A Metalink 4 document for ``files`` at each ``(base, priority, location)``."""
    entries = []
    for path, data in files.items():
        digest = "0" * 64 if path == wrong else sha256(data)
        links = "".join(f'<url priority="{priority}" location="{location}">{base}{path}</url>'
                        for base, priority, location in urls)
        entries.append(f'<file name="{path}"><size>{len(data)}</size>'
                       f'<hash type="sha-256">{digest}</hash>{links}</file>')
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<metalink xmlns="urn:ietf:params:xml:ns:metalink">' + "".join(entries)
            + "</metalink>")


def test_metalink_gives_mirrors_by_priority_and_hashes():
    doc = metalink({"a/x.bin": b"x", "y.bin": b"y"},
                   [("https://second.example/r/", 2, "de"), ("https://first.example/r/", 1, "fr"),
                    ("ftp://ignored.example/r/", 1, "")])
    found = parse_metalink(doc)
    assert [(m.base, m.priority, m.location) for m in found.mirrors] == [
        ("https://first.example/r/", 1, "fr"), ("https://second.example/r/", 2, "de")]
    assert found.hashes["a/x.bin"] == {"sha256": sha256(b"x")}
    with pytest.raises(MetalinkError, match="not a Metalink 4"):
        parse_metalink("<metalink/>")
    with pytest.raises(MetalinkError, match="well-formed"):
        parse_metalink("<metalink")


async def test_a_metalink_mirror_list_drives_the_choice_of_mirror(upstream, mirror,
                                                                   make_factory, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/repo/"  # the primary is down
    live = serve_files(mirror, FILES)
    other_dead = f"http://127.0.0.1:{free_port()}/repo/"
    listing = upstream.add("mirrors.meta4", metalink(
        FILES, [(other_dead, 2, "de"), (live, 1, "fr")]).encode())
    settings = LibrarySettings(address_policy=LOOPBACK_ALLOWED, working_directory=tmp_path,
                               mirror_ranking=False)
    factory = make_factory(dead, mirrorlist_url=listing, settings=settings, max_retries=0)
    await download_all(factory, dead, FILES)
    assert served(mirror) == len(FILES)
    assert factory.context.mirrors.bases == [dead, live, other_dead]
    assert factory.context.mirrorlist_hashes["pool/00.bin"]["sha256"] == sha256(
        FILES["pool/00.bin"])


@pytest.mark.django_db(transaction=True)
def test_a_sync_refuses_a_metalink_that_disagrees_with_the_manifest(threaded_upstream):
    from pulp_downloads.models import Remote
    from pulp_downloads.sync import SyncError, sync_remote

    files = {"a.bin": os.urandom(1000), "b.bin": os.urandom(1000)}
    url = threaded_upstream.add_repo("r", files)
    base = url.rsplit("/", 1)[0] + "/"
    listing = threaded_upstream.add("r.meta4", metalink(files, [(base, 1, "")], wrong="b.bin")
                                    .encode())
    remote = Remote.objects.create(name="ml", url=url, mirrorlist_url=listing)
    with pytest.raises(SyncError, match="b.bin"):
        sync_remote(remote)
    remote.mirrorlist_url = threaded_upstream.add(
        "ok.meta4", metalink(files, [(base, 1, "")]).encode())
    remote.save()
    assert sync_remote(remote).downloaded == 2


async def test_a_mirror_list_longer_than_the_cap_gives_exactly_the_cap_and_a_warning(
        upstream, make_factory, tmp_path, caplog):
    base = serve_files(upstream, FILES)
    listed = [f"http://127.0.0.1:{free_port()}/m{i}/" for i in range(MAX_MIRRORS + 500)]
    listing = upstream.add("mirrors.txt", "\n".join(listed).encode())
    settings = LibrarySettings(address_policy=LOOPBACK_ALLOWED, working_directory=tmp_path,
                               mirror_ranking=False)  # the primary first: no mirror is asked
    factory = make_factory(base, mirrorlist_url=listing, settings=settings)
    with caplog.at_level(logging.WARNING, logger="pulp_downloads.download.mirrors"):
        await download_all(factory, base, dict(list(FILES.items())[:1]))
    assert factory.context.mirrors.bases == [base, *listed[:MAX_MIRRORS]]
    assert [r.getMessage() for r in caplog.records if "left out" in r.getMessage()] == [
        f"500 mirror(s) left out: a remote uses at most {MAX_MIRRORS} mirrors (MAX_MIRRORS)"]


def test_adding_200000_mirrors_keeps_the_first_of_each_in_order():
    mirrors = [f"https://m{i}.example/repo/" for i in range(200_000)]
    given = []
    for i, mirror in enumerate(mirrors):  # each new one (in either spelling), then a repeat
        given += [mirror if i % 2 else mirror.rstrip("/"), mirrors[i // 2]]
    mirror_set = MirrorSet(mirrors[7] + "PULP_MANIFEST", [], 60, max_mirrors=1_000_000)
    mirror_set.add(given)
    assert mirror_set.bases == [mirrors[7], *mirrors[:7], *mirrors[8:]]


def test_mirrors_of_the_other_kind_are_left_out_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="pulp_downloads.download.mirrors"):
        remote = MirrorSet("https://p.test/r/PULP_MANIFEST",
                           ["file:///srv/r/", "http://m.test/r/"], 60)
        local = MirrorSet("file:///srv/r/PULP_MANIFEST", ["https://m.test/r/", "file:///x/"], 60)
    assert remote.bases == ["https://p.test/r/", "http://m.test/r/"]
    assert local.bases == ["file:///srv/r/", "file:///x/"]
    assert [r.getMessage() for r in caplog.records] == [
        "1 mirror(s) left out: a file:// mirror cannot serve an http(s) URL, nor the reverse"] * 2
