"""Two checkouts side by side on one corpus: interleaved full syncs, medians and ratios.

Each round measures the machine's hash ceiling for the chosen digests, then runs, in an
order that rotates from round to round, a full sync (fresh process, SQLite database and
media root) by this checkout, by ``--other DIR`` when given, and the plain aiohttp loop
with the same digests (``bench/download_throughput.py``'s ``plain``: one session, hashlib
per chunk, a temporary file per download). Drift on a noisy machine then hits every
variant alike. After ``--repeat`` rounds it prints, per set, each variant's median and
runs, and one summary line:

- ``this_over_other``: the other checkout's median time / this checkout's (> 1: faster);
- ``this_over_plain``: the plain loop's median time / this checkout's;
- ``ceiling_MB_s``: the median of the rounds' hash ceilings: for a set of many files, all
  cores hashing (cores / the sum over digests of seconds per MB); for one file, the slowest
  digest on one core (a digest is one sequential stream), capped by the former;
- ``this_of_ceiling``: this checkout's MB/s at its median / that ceiling.

Sets: tiny (2,000 x 16 KiB), small (200 x 1 MiB), big (1 x 200 MiB); the corpus is made
once under ``--data`` (the same as ``mechanisms.py``'s). ``--out FILE`` also appends every
line to FILE (keep the figures quoted in docs/performance.md under ``bench/figures/``).

Usage: .venv/bin/python bench/ab.py [--other DIR] [--repeat 3] [--sets tiny,small,big]
       [--checksums sha224,sha256,sha384,sha512] [--no-plain] [--out FILE]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.download_throughput import (add_set_arguments, make_corpus,  # noqa: E402
                                       prepare_sets, stop_server)
from bench.mechanisms import SETS, sync_once  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FOUR = "sha224,sha256,sha384,sha512"
PLAIN_CHILD = """
import asyncio, json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from bench.download_throughput import plain
base, name, index, algs, conc, work = sys.argv[2:8]
files = json.loads(Path(index).read_text())[name]
print(json.dumps({"s": asyncio.run(plain(base, name, files, tuple(algs.split(",")),
                                         int(conc), Path(work)))}))
"""


def hash_ceiling(algorithms: list[str], seconds: float = 0.4) -> dict[str, float]:
    """The best MB/s any downloader can reach here for ``algorithms``, from each digest's
    one-core speed on an in-memory buffer: ``{"many_files": ..., "one_file": ...}``."""
    buffer = os.urandom(1 << 20)
    speeds = {}
    for name in algorithms:
        digest, blocks, started = hashlib.new(name), 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            digest.update(buffer)
            blocks += 1
        speeds[name] = blocks * len(buffer) / 1e6 / (time.perf_counter() - started)
    many_files = (os.cpu_count() or 1) / sum(1 / speed for speed in speeds.values())
    return {"many_files": many_files, "one_file": min(many_files, min(speeds.values()))}


def plain_once(base: str, name: str, index: Path, checksums: str, concurrency: int,
               scratch: Path) -> float:
    """Seconds of the plain aiohttp loop over set ``name``, in a fresh process."""
    work = Path(tempfile.mkdtemp(prefix="plain-", dir=scratch))
    try:
        out = subprocess.run([sys.executable, "-c", PLAIN_CHILD, str(ROOT), base, name,
                              str(index), checksums, str(concurrency), str(work)],
                             check=True, capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])["s"]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def describe(checkout: Path) -> str:
    """The commit a checkout is at (with ``-dirty`` when it has changes)."""
    out = subprocess.run(["git", "-C", str(checkout), "describe", "--always", "--dirty"],
                         capture_output=True, text=True)
    return out.stdout.strip() or str(checkout)


def other_python(checkout: Path) -> str:
    """The other checkout's own interpreter when it has a venv, else this one."""
    candidate = checkout / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_set_arguments(parser, repeat=3, data="/tmp/pulp-downloads-bench/mech-data")
    parser.add_argument("--other", type=Path, help="the checkout to compare with")
    parser.add_argument("--checksums", default=FOUR,
                        help=f"digests computed by every variant (default {FOUR})")
    parser.add_argument("--no-plain", action="store_true", help="leave out the plain loop")
    parser.add_argument("--out", type=Path, help="also append every line to this file")
    args = parser.parse_args()
    if args.repeat < 3:
        parser.error("--repeat: at least 3 runs each way give a median worth quoting")
    if args.other and not (args.other / "pulp_downloads").is_dir():
        parser.error(f"--other: {args.other} is not a checkout of pulp_downloads")
    algorithms = args.checksums.split(",")
    unknown = [name for name in algorithms if name not in hashlib.algorithms_available]
    if unknown:
        parser.error(f"--checksums: unknown digest {', '.join(unknown)}")

    out_file = args.out.open("a") if args.out else None

    def emit(line: dict) -> None:
        text = json.dumps(line)
        print(text, flush=True)
        if out_file:
            out_file.write(text + "\n")
            out_file.flush()

    sets, scratch, (server, base, kind) = prepare_sets(args, SETS, "ab-server")
    index_path = Path(args.data) / "index.json"
    index = make_corpus(Path(args.data), sets)
    emit({"ab": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "server": kind, "cpus": os.cpu_count(),
          "repeat": args.repeat, "checksums": args.checksums, "this": describe(ROOT),
          **({"other": describe(args.other)} if args.other else {})})
    env = {"PULP_DOWNLOADS_CHECKSUMS": args.checksums}
    variants: dict[str, Callable[[str], float]] = {
        "this": lambda name: sync_once(f"{base}/{name}/PULP_MANIFEST", args.concurrency,
                                       "all_on", scratch, **env)}
    if args.other:
        variants["other"] = lambda name: sync_once(
            f"{base}/{name}/PULP_MANIFEST", args.concurrency, "all_on", scratch,
            args.other.resolve(), other_python(args.other), **env)
    if not args.no_plain:
        variants["plain"] = lambda name: plain_once(base, name, index_path, args.checksums,
                                                    args.concurrency, scratch)
    times = {name: {variant: [] for variant in variants} for name in sets}
    ceilings: list[dict[str, float]] = []
    try:
        for round_number in range(args.repeat):
            ceilings.append(hash_ceiling(algorithms))
            order = list(variants)
            order = order[round_number % len(order):] + order[:round_number % len(order)]
            for name in sets:
                for variant in order:
                    times[name][variant].append(variants[variant](name))
    finally:
        stop_server(server, scratch / "ab-server")
    for name in sets:
        megabytes = sum(size for _, size in index[name].values()) / 1e6
        medians = {variant: statistics.median(runs) for variant, runs in times[name].items()}
        for variant, runs in times[name].items():
            emit({"set": name, "variant": variant, "median_s": round(medians[variant], 3),
                  "MB_s": round(megabytes / medians[variant], 1),
                  "files_s": round(len(index[name]) / medians[variant], 1),
                  "runs_s": [round(t, 3) for t in runs]})
        shape = "one_file" if len(index[name]) == 1 else "many_files"
        ceiling = statistics.median(c[shape] for c in ceilings)
        summary = {"set": name, "summary": True, "ceiling_MB_s": round(ceiling),
                   "this_of_ceiling": round(megabytes / medians["this"] / ceiling, 2)}
        for variant in ("other", "plain"):
            if variant in medians:
                summary[f"this_over_{variant}"] = round(medians[variant] / medians["this"], 2)
        emit(summary)
    if out_file:
        out_file.close()


if __name__ == "__main__":
    main()
