"""Content serving: time to first byte and throughput of a 200 MiB file streamed through the
content app (uvicorn) versus fetched directly from the upstream, in one run.

The upstream is a loopback nginx (or aiohttp's static server) serving the corpus of
bench/download_throughput.py; the content app runs in its own process with a fresh SQLite
database, a ``streamed`` remote and an ``on_demand`` one for the same repository, under each
server of ``--servers`` (uvicorn, granian).
Usage: .venv/bin/python bench/content_streaming.py [--repeat 3] [--servers uvicorn,granian]
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
from bench.app_server import SERVERS, app_server_command  # noqa: E402
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
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="comma-separated ASGI servers to run the app under "
                             f"(default {','.join(SERVERS)})")
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
    servers = args.servers.split(",")
    for server in servers:  # remotes of its own: on_demand stores the file once per remote
        for policy in ("streamed", "on_demand"):
            name = f"{policy}-{server}"
            manage(env, "remote", "create", name, f"{base}/big/PULP_MANIFEST", "--policy",
                   policy)
            manage(env, "sync_remote", name, "--progress", "none")
    print(json.dumps({"upstream": kind, "cpus": os.cpu_count()}), flush=True)
    try:
        for server in servers:
            measure(server, base, env, args.repeat)
    finally:
        upstream.send_signal(signal.SIGTERM)
        upstream.wait(10)
        shutil.rmtree(run, ignore_errors=True)


def measure(server: str, base: str, env: dict, repeat: int) -> None:
    """Print the figures of the content app under ``server`` beside the upstream's."""
    port = free_port()
    app = subprocess.Popen(app_server_command(server, port), cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                asyncio.run(fetch(f"http://127.0.0.1:{port}/status/"))
                break
            except aiohttp.ClientError:
                time.sleep(0.2)
        direct_url = f"{base}/big/f00000.bin"
        content = f"http://127.0.0.1:{port}/content"
        app_url = f"{content}/streamed-{server}/f00000.bin"
        best = {}
        for _ in range(repeat):
            for label, url in (("direct", direct_url), ("content_app_streamed", app_url)):
                first, total, size = asyncio.run(fetch(url))
                current = best.get(label)
                if current is None or total < current[1]:
                    best[label] = (first, total, size)
        on_demand = f"{content}/on_demand-{server}/f00000.bin"
        best["content_app_on_demand_first"] = asyncio.run(fetch(on_demand))
        time.sleep(1)
        best["content_app_on_demand_stored"] = asyncio.run(fetch(on_demand))
        for label, (first, total, size) in best.items():
            print(json.dumps({"path": label, "server": server,
                              "ttfb_ms": round(first * 1000, 1),
                              "MB_s": round(size / 1e6 / total, 1),
                              "ratio_vs_direct": round(best["direct"][1] / total, 2)}),
                  flush=True)
    finally:
        app.send_signal(signal.SIGTERM)
        app.wait(10)


if __name__ == "__main__":
    main()
