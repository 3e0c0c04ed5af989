"""Each speed mechanism of the sync, measured with and without it in one run.

A full sync (fresh process, fresh SQLite database and media root) of each set, once with
everything on and once with one mechanism turned off (by patching it out in the child):

- ``topdir``: the ext4 top-directory hint on the artifact and working directories;
- ``helper``: the store helper process writing small files (off: written in-process);
- ``syncfs``: one ``syncfs()`` per batch (off: one ``fsync()`` per file and directory);
- ``lanes_only`` / ``combined_only``: the process-wide count of streaming downloads that
  chooses a download's pipeline mode (off: always one lane per consumer, or always one
  combined hand-off per block);
- ``one_pool``: the separate hashing, durability and flush thread pools (off: one pool of
  32 threads for all of them).

``--before DIR`` adds the sync of another checkout (e.g. ``git worktree add DIR COMMIT``),
everything on, to the rotation: an A/B of two versions of the code on the same corpus.

Measured and removed (under 10 % on every set): dropping a stored file's pages from the page
cache once on disk (2026-12-02), ``gc.freeze()`` of the heap a sync starts with, and placing
local files from the event loop in slices instead of 8 threads.

Runs are interleaved (one run of every variant, then the next round), so drift hits every
variant alike. Prints one JSON line per set and variant: the median of ``--repeat`` runs and
the gain of the mechanism (median without / median with - 1). Sets: 2,000 x 16 KiB,
200 x 1 MiB, 1 x 200 MiB; ``--data /tmp/peers/data`` runs on the corpus of
``../shared/peers/run.sh``.
Usage: .venv/bin/python bench/mechanisms.py [--repeat 3] [--sets tiny,small,big]
       [--variants all_on,helper,...] [--before DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.download_throughput import (add_set_arguments, prepare_sets,  # noqa: E402
                                       project_env, stop_server)

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("all_on", "topdir", "helper", "syncfs", "lanes_only",
            "combined_only", "one_pool")
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
elif off == "helper":
    from pulp_downloads.storage.helper import StoreHelper
    async def no_helper(*args, **kwargs):
        raise OSError("turned off")
    StoreHelper.start = no_helper
elif off == "syncfs":  # the setting reaches the helper process too
    from django.conf import settings
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "FLUSH_WITH_SYNCFS": False}
elif off == "lanes_only":
    import pulp_downloads.download.pipeline as pipeline
    pipeline.CPUS = 1 << 30  # never more streams than cores: never the combined mode
elif off == "combined_only":
    import pulp_downloads.download.pipeline as pipeline
    pipeline.CPUS = -1  # always more streams than cores: always the combined mode
elif off == "one_pool":
    from concurrent.futures import ThreadPoolExecutor
    import pulp_downloads.download.executors as executors
    import pulp_downloads.storage.batch as batch
    import pulp_downloads.storage.durability as durability
    import pulp_downloads.storage.store as store
    shared = ThreadPoolExecutor(32, thread_name_prefix="bench-one-pool")
    executors._pool = lambda name, workers: shared
    def flush_on_shared(paths, *, use_syncfs=True, executor=None):
        return durability.flush_files(paths, use_syncfs=use_syncfs, executor=shared)
    batch.flush_files = store.flush_files = flush_on_shared
from pulp_downloads.models import Artifact, Remote
from pulp_downloads.sync import sync_remote
remote = Remote.objects.create(name="bench", url=sys.argv[1], download_concurrency=int(sys.argv[2]))
started = time.perf_counter()
summary = sync_remote(remote)
elapsed = time.perf_counter() - started
assert Artifact.objects.count() == summary.downloaded
print(json.dumps({"s": elapsed}))
"""


def sync_once(url: str, concurrency: int, off: str, scratch: Path, root: Path = ROOT,
              python: str = sys.executable, **env_extra: str) -> float:
    """Seconds of one full sync of ``url`` by the checkout at ``root`` (run by ``python``)
    in a fresh process, database and media root, with mechanism ``off`` turned off
    (``"all_on"``: none) and ``env_extra`` added to its environment."""
    run = Path(tempfile.mkdtemp(prefix="mech-", dir=scratch))
    env = project_env(run, **env_extra)
    try:
        out = subprocess.run([python, "-c", CHILD, url, str(concurrency), off],
                             cwd=root, env=env, check=True, capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])["s"]
    finally:
        shutil.rmtree(run, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_set_arguments(parser, repeat=3, data="/tmp/pulp-downloads-bench/mech-data")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated variants (all_on is always run)")
    parser.add_argument("--before", type=Path,
                        help="another checkout whose full sync joins the rotation")
    args = parser.parse_args()
    variants = ["all_on", *(v for v in args.variants.split(",") if v and v != "all_on")]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"--variants: unknown {', '.join(sorted(unknown))}")
    if args.before:
        variants.append("before")
    sets, scratch, (server, base, kind) = prepare_sets(args, SETS, "mech-server")
    print(json.dumps({"server": kind, "cpus": os.cpu_count(), "repeat": args.repeat}), flush=True)
    try:
        for name in sets:
            url = f"{base}/{name}/PULP_MANIFEST"
            times: dict[str, list[float]] = {variant: [] for variant in variants}
            for _ in range(args.repeat):  # interleaved, so that drift hits every variant
                for variant in variants:
                    if variant == "before":
                        elapsed = sync_once(url, args.concurrency, "all_on", scratch, args.before)
                    else:
                        elapsed = sync_once(url, args.concurrency, variant, scratch)
                    times[variant].append(elapsed)
            medians = {variant: statistics.median(runs) for variant, runs in times.items()}
            for variant in variants:
                line = {"set": name, "off": variant, "median_s": round(medians[variant], 3),
                        "runs_s": [round(t, 3) for t in times[variant]]}
                if variant != "all_on":
                    line["gain_of_mechanism"] = round(medians[variant] / medians["all_on"] - 1, 3)
                print(json.dumps(line), flush=True)
    finally:
        stop_server(server, scratch / "mech-server")


if __name__ == "__main__":
    main()
