"""The full sync pipeline (manifest -> downloads -> Artifact rows and durable files) beside the
plain aiohttp loop computing the same four digests, in one run, on one loopback server.

Sets: 2,000 x 16 KiB ("tiny"), 200 x 1 MiB ("small"), and 20,000 x 16 KiB ("tiny20k", for
memory: peak RSS must stay flat as the file count grows). Each sync runs in a fresh process
with a fresh SQLite database and media root (like ../shared/peers/project_peer.py), so its
peak RSS is its own. Usage: .venv/bin/python bench/sync_throughput.py [--repeat 3] [--no-20k]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.download_throughput import (FOUR, make_corpus, plain, project_env,  # noqa: E402
                                       start_server, stop_server)

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import json, os, resource, sys, time
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from pulp_downloads.models import Artifact, Remote
from pulp_downloads.sync import sync_remote
remote = Remote.objects.create(name="bench", url=sys.argv[1], download_concurrency=int(sys.argv[2]))
started = time.perf_counter()
summary = sync_remote(remote)
elapsed = time.perf_counter() - started
assert Artifact.objects.count() == summary.downloaded
print(json.dumps({"s": elapsed, "files": summary.downloaded, "bytes": summary.bytes_downloaded,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def project_sync(manifest_url: str, conc: int, scratch: Path) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix="sync-", dir=scratch))
    # As deployed: with DEBUG on, Django keeps the text of the last 9,000 queries, which
    # would be measured as the sync's memory.
    env = project_env(run_dir)
    out = subprocess.run([sys.executable, "-c", CHILD, manifest_url, str(conc)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=1800)
    shutil.rmtree(run_dir, ignore_errors=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per set, the best kept (sets over 5,000 files run once)")
    parser.add_argument("--concurrency", type=int, default=10,
                        help="downloads at once (default 10)")
    parser.add_argument("--data", default=os.environ.get("BENCH_DATA", "/tmp/pulp-downloads-bench/sync-data"),
                        help="where the corpus is generated once (env BENCH_DATA)")
    parser.add_argument("--scratch", default=os.environ.get("BENCH_SCRATCH", str(ROOT / "var" / "bench")),
                        help="where run directories (database, media) go; removed after each "
                             "run (env BENCH_SCRATCH)")
    parser.add_argument("--no-20k", action="store_true", help="skip the 20,000-file memory run")
    parser.add_argument("--counts", default="",
                        help="comma-separated file counts of 16 KiB files (e.g. "
                             "500,2000,8000,20000) to measure how the sync scales, instead of "
                             "the default sets; bench/charts.py draws the result")
    args = parser.parse_args()

    if args.counts:
        sets = {f"tiny{count}": (count, 16 << 10)
                for count in sorted(int(c) for c in args.counts.split(",") if c)}
    else:
        sets = {"tiny": (2000, 16 << 10), "small": (200, 1 << 20)}
        if not args.no_20k:
            sets["tiny20k"] = (20000, 16 << 10)
    data = Path(args.data)
    index = make_corpus(data, sets)
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    run = Path(tempfile.mkdtemp(prefix="run-", dir=scratch))
    work = run / "plain-work"
    work.mkdir()
    server, base, kind = start_server(data, run / "server")
    print(json.dumps({"server": kind, "cpus": os.cpu_count()}), flush=True)
    try:
        for name in sets:
            files = index[name]
            total = sum(n for _, n in files.values())
            repeat = 1 if len(files) > 5000 else args.repeat
            best_plain, best_sync, rss = float("inf"), float("inf"), 0.0
            for _ in range(repeat):
                best_plain = min(best_plain, asyncio.run(
                    plain(base, name, files, FOUR, args.concurrency, work)))
                result = project_sync(f"{base}/{name}/PULP_MANIFEST", args.concurrency, scratch)
                best_sync = min(best_sync, result["s"])
                rss = max(rss, result["peak_rss_mb"])
            print(json.dumps({
                "set": name, "files": len(files),
                "plain_files_s": round(len(files) / best_plain, 1),
                "plain_MB_s": round(total / 1e6 / best_plain, 1),
                "sync_files_s": round(len(files) / best_sync, 1),
                "sync_MB_s": round(total / 1e6 / best_sync, 1),
                "ratio_sync_over_plain": round(best_plain / best_sync, 2),
                "sync_peak_rss_MB": round(rss, 1),
            }), flush=True)
    finally:
        stop_server(server, run)


if __name__ == "__main__":
    main()
