"""Content serving: time to first byte and throughput of a 200 MiB file streamed through the
content app (uvicorn) versus fetched directly from the upstream, in one run.

The upstream is a loopback nginx (or aiohttp's static server) serving the corpus of
bench/download_throughput.py; the content app runs in its own process with a fresh SQLite
database, a ``streamed`` remote and an ``on_demand`` one for the same repository.
Usage: .venv/bin/python bench/content_streaming.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.download_throughput import free_port, make_corpus, project_env, start_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


async def fetch(url: str) -> tuple[float, float, int]:
    """(seconds to first byte, total seconds, bytes) for one GET."""
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        started = time.perf_counter()
        async with session.get(url) as response:
            response.raise_for_status()
            first = None
            size = 0
            async for chunk in response.content.iter_any():
                if first is None:
                    first = time.perf_counter() - started
                size += len(chunk)
        return first or 0.0, time.perf_counter() - started, size


def manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per path, the best kept (default 3)")
    parser.add_argument("--data", default=os.environ.get("BENCH_DATA", "/tmp/pulp-downloads-bench/data"),
                        help="where the 200 MiB file is generated once (env BENCH_DATA)")
    parser.add_argument("--scratch", default=str(ROOT / "var" / "bench"),
                        help="where run directories (database, media) go; removed after")
    args = parser.parse_args()

    data = Path(args.data)
    make_corpus(data, {"small": (200, 1 << 20), "big": (1, 200 << 20)})
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    run = Path(tempfile.mkdtemp(prefix="content-", dir=scratch))
    upstream, base, kind = start_server(data, run / "upstream")
    env = project_env(run, SERVE_STATIC="1")
    manage(env, "migrate", "--noinput")
    for policy in ("streamed", "on_demand"):
        manage(env, "remote", "create", policy, f"{base}/big/PULP_MANIFEST", "--policy", policy)
        manage(env, "sync_remote", policy, "--progress", "none")
    port = free_port()
    app = subprocess.Popen([sys.executable, "-m", "uvicorn", "settings.asgi:application",
                            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                           cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                asyncio.run(fetch(f"http://127.0.0.1:{port}/status/"))
                break
            except aiohttp.ClientError:
                time.sleep(0.2)
        print(json.dumps({"upstream": kind, "cpus": os.cpu_count()}), flush=True)
        direct_url = f"{base}/big/f00000.bin"
        app_url = f"http://127.0.0.1:{port}/content/streamed/f00000.bin"
        best = {}
        for _ in range(args.repeat):
            for label, url in (("direct", direct_url), ("content_app_streamed", app_url)):
                first, total, size = asyncio.run(fetch(url))
                current = best.get(label)
                if current is None or total < current[1]:
                    best[label] = (first, total, size)
        first, total, size = asyncio.run(
            fetch(f"http://127.0.0.1:{port}/content/on_demand/f00000.bin"))
        best["content_app_on_demand_first"] = (first, total, size)
        time.sleep(1)
        best["content_app_on_demand_stored"] = asyncio.run(
            fetch(f"http://127.0.0.1:{port}/content/on_demand/f00000.bin"))
        for label, (first, total, size) in best.items():
            print(json.dumps({"path": label, "ttfb_ms": round(first * 1000, 1),
                              "MB_s": round(size / 1e6 / total, 1),
                              "ratio_vs_direct": round(best["direct"][1] / total, 2)}), flush=True)
    finally:
        app.send_signal(signal.SIGTERM)
        app.wait(10)
        upstream.send_signal(signal.SIGTERM)
        upstream.wait(10)
        shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
