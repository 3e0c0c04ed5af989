"""Each speed mechanism of the sync, measured with and without it in one run.

A full sync (fresh process, fresh SQLite database and media root) of each set, once with
everything on and once with one mechanism turned off (by patching it out in the child):

- ``topdir``: the ext4 top-directory hint on the artifact and working directories;
- ``drop_cache``: dropping a stored file's pages from the page cache once on disk;
- ``helper``: the store helper process writing small files (off: written in-process);

Measured and removed since (under 10 % on every set): ``gc.freeze()`` of the heap a sync
starts with, and placing local files from the event loop in slices instead of 8 threads.

Prints one JSON line per set and variant: the best time of ``--repeat`` runs and the gain of
the mechanism (time without / time with - 1). Sets: 2,000 x 16 KiB, 200 x 1 MiB, 1 x 200 MiB.
Usage: .venv/bin/python bench/mechanisms.py [--repeat 3] [--sets tiny,small,big]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.download_throughput import (add_set_arguments, prepare_sets,  # noqa: E402
                                       project_env, stop_server)

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("all_on", "topdir", "drop_cache", "helper")
SETS = {"tiny": (2000, 16 * 1024), "small": (200, 1 << 20), "big": (1, 200 << 20)}

CHILD = """
import json, sys, time
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
off = sys.argv[3]
if off == "topdir":
    import pulp_downloads.storage.directories as directories
    directories.mark_top_directory = lambda path: False
elif off == "drop_cache":
    import pulp_downloads.download.writers as writers
    writers.drop_cached_pages = lambda fd, end=0: None
elif off == "helper":
    from pulp_downloads.storage.helper import StoreHelper
    async def no_helper(*args, **kwargs):
        raise OSError("turned off")
    StoreHelper.start = no_helper
from pulp_downloads.models import Artifact, Remote
from pulp_downloads.sync import sync_remote
remote = Remote.objects.create(name="bench", url=sys.argv[1], download_concurrency=int(sys.argv[2]))
started = time.perf_counter()
summary = sync_remote(remote)
elapsed = time.perf_counter() - started
assert Artifact.objects.count() == summary.downloaded
print(json.dumps({"s": elapsed}))
"""


def sync_once(url: str, concurrency: int, off: str, scratch: Path) -> float:
    run = Path(tempfile.mkdtemp(prefix="mech-", dir=scratch))
    env = project_env(run)
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, url, str(concurrency), off],
                             cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])["s"]
    finally:
        shutil.rmtree(run, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_set_arguments(parser, repeat=3, data="/tmp/pulp-downloads-bench/mech-data")
    args = parser.parse_args()
    sets, scratch, (server, base, kind) = prepare_sets(args, SETS, "mech-server")
    print(json.dumps({"server": kind, "cpus": os.cpu_count()}), flush=True)
    try:
        for name in sets:
            url = f"{base}/{name}/PULP_MANIFEST"
            best = {variant: float("inf") for variant in VARIANTS}
            for _ in range(args.repeat):  # interleaved, so that drift hits every variant
                for variant in VARIANTS:
                    best[variant] = min(best[variant], sync_once(url, args.concurrency,
                                                                 variant, scratch))
            for variant in VARIANTS:
                line = {"set": name, "off": variant, "s": round(best[variant], 3)}
                if variant != "all_on":
                    line["gain_of_mechanism"] = round(best[variant] / best["all_on"] - 1, 3)
                print(json.dumps(line), flush=True)
    finally:
        stop_server(server, scratch / "mech-server")


if __name__ == "__main__":
    main()
