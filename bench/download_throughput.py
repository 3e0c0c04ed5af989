"""Download-library throughput beside a plain aiohttp loop, in one run, on one loopback server.

Sets: 200 x 1 MiB ("small") and 1 x 200 MiB ("big"), downloaded with concurrency 10 by
  * plain[ALGS]   one aiohttp session, a semaphore, hashlib per chunk on the event loop
                  thread, a temporary file per download (the loop a library must approach);
  * library[ALGS] DownloaderFactory + HttpDownloader with the same digests, expected sha256
                  and size validated, a temporary file per download (no fsync, like plain).
  * pulpcore[ALGS] pulpcore 3.123's HttpDownloader (../shared/peers/pulpcore_peer.py), when
                  its venv exists (PEER_PY, default /tmp/peer-venv/bin/python; made by
                  ../shared/peers/run.sh).
ALGS is sha256 alone, then the four default digests. Each measurement is repeated (--repeat)
alternating the peers; the best run of each is reported, with the ratios.

The server is nginx when installed (as in ../shared/peers), else aiohttp's static server in a
separate process. Usage: .venv/bin/python bench/download_throughput.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulp_downloads.download import (  # noqa: E402
    AddressPolicy,
    DownloaderFactory,
    LibrarySettings,
    RemoteConfig,
)

FOUR = ("sha224", "sha256", "sha384", "sha512")
NGINX_CONF = """worker_processes 1; daemon off; pid {run}/nginx.pid; error_log {run}/error.log warn;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  default_type application/octet-stream; client_body_temp_path {run}/body;
  proxy_temp_path {run}/proxy; fastcgi_temp_path {run}/fcgi;
  server {{ listen 127.0.0.1:{port}; root {data}; }} }}
"""


def make_corpus(root: Path, sets: dict[str, tuple[int, int]]) -> dict[str, dict[str, tuple[str, int]]]:
    index_path = root / "index.json"
    if index_path.exists():
        index = json.loads(index_path.read_text())
        if all(len(index.get(name, {})) == count for name, (count, _) in sets.items()):
            return index
    index = {}
    for name, (count, size) in sets.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        files, lines = {}, []
        for i in range(count):
            rel = f"f{i:05d}.bin"
            data_hash, left = hashlib.sha256(), size
            with open(root / name / rel, "wb") as fh:
                while left:
                    chunk = os.urandom(min(left, 1 << 22))
                    fh.write(chunk)
                    data_hash.update(chunk)
                    left -= len(chunk)
            files[rel] = (data_hash.hexdigest(), size)
            lines.append(f"{rel},{data_hash.hexdigest()},{size}\n")
        (root / name / "PULP_MANIFEST").write_text("".join(lines))
        index[name] = files
    index_path.write_text(json.dumps(index))
    return index


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data: Path, run: Path) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    run.mkdir(parents=True, exist_ok=True)
    if shutil.which("nginx"):
        conf = run / "nginx.conf"
        conf.write_text(NGINX_CONF.format(run=run, port=port, data=data))
        proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(run)])
        kind = "nginx"
    else:
        code = ("import sys; from aiohttp import web; app = web.Application(); "
                "app.router.add_static('/', sys.argv[1]); web.run_app(app, host='127.0.0.1', "
                "port=int(sys.argv[2]), print=None, access_log=None)")
        proc = subprocess.Popen([sys.executable, "-c", code, str(data), str(port)])
        kind = "aiohttp-static"
    wait_for_port(port)
    return proc, f"http://127.0.0.1:{port}", kind


def wait_for_port(port: int, timeout: float = 10) -> None:
    """Return once something listens on 127.0.0.1:``port``; ``RuntimeError`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def prepare_sets(args, all_sets: dict, server_name: str):
    """For a benchmark given :func:`add_set_arguments`: the chosen sets (their corpus made
    if missing), the scratch directory, and a loopback server of the corpus started in it:
    ``(sets, scratch, (process, base_url, kind))``."""
    sets = {name: all_sets[name] for name in args.sets.split(",")}
    data = Path(args.data)
    make_corpus(data, sets)
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    return sets, scratch, start_server(data, scratch / server_name)


def project_env(run: Path, **extra: str) -> dict[str, str]:
    """The environment of a project process (``manage.py``, a sync child, uvicorn) with a
    fresh SQLite database and media root under ``run``, as deployed (``DEBUG`` off), its
    upstream on loopback allowed."""
    return dict(os.environ, DJANGO_SETTINGS_MODULE="settings",
                DATABASE_URL=f"sqlite:///{run}/db.sqlite3", MEDIA_ROOT=str(run / "media"),
                PULP_DOWNLOADS_LOG_LEVEL="WARNING", DEBUG="0",
                SECRET_KEY="bench-only-not-secret",
                PULP_DOWNLOADS_ALLOWED_NETWORKS="127.0.0.0/8", **extra)


def add_set_arguments(parser, repeat: int, data: str) -> None:
    """The options of a benchmark over the corpus sets: --repeat, --concurrency, --sets,
    --data (where the corpus is generated once) and --scratch (its run directories)."""
    parser.add_argument("--repeat", type=int, default=repeat,
                        help=f"runs per measurement, the best kept (default {repeat})")
    parser.add_argument("--concurrency", type=int, default=10,
                        help="downloads at once (default 10)")
    parser.add_argument("--sets", default="tiny,small,big",
                        help="comma-separated sets: tiny (2,000 x 16 KiB), small (200 x 1 MiB), "
                             "big (1 x 200 MiB)")
    parser.add_argument("--data", default=os.environ.get("BENCH_DATA", data),
                        help="where the corpus is generated once")
    parser.add_argument("--scratch", default=str(Path(__file__).resolve().parent.parent
                                                 / "var" / "bench"),
                        help="where run directories go (removed after each run)")


def stop_server(proc: subprocess.Popen, run: Path) -> None:
    """Stop a server from :func:`start_server` and remove its run directory."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    shutil.rmtree(run, ignore_errors=True)


async def plain(base: str, name: str, files: dict, algs: tuple[str, ...], conc: int, work: Path) -> float:
    async def one(session, sem, rel, digest, size):
        async with sem, session.get(f"{base}/{name}/{rel}", auto_decompress=False) as r:
            r.raise_for_status()
            hashers, n = [hashlib.new(a) for a in algs], 0
            with tempfile.NamedTemporaryFile(dir=work) as fh:
                async for chunk in r.content.iter_chunked(1 << 20):
                    fh.write(chunk)
                    n += len(chunk)
                    for h in hashers:
                        h.update(chunk)
            assert hashers[algs.index("sha256")].hexdigest() == digest and n == size, rel

    sem = asyncio.Semaphore(conc)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(one(session, sem, r, d, n) for r, (d, n) in files.items()))
        return time.perf_counter() - started


async def library(base: str, name: str, files: dict, algs: tuple[str, ...], conc: int, work: Path) -> float:
    config = RemoteConfig(url=f"{base}/{name}/PULP_MANIFEST", download_concurrency=conc)
    settings = LibrarySettings(allowed_checksums=algs, working_directory=work, fsync=False,
                               address_policy=AddressPolicy(allowed=["127.0.0.0/8"]))
    async with DownloaderFactory(config, settings=settings, events=None) as factory:
        downloaders = [factory.build(rel, expected_digests={"sha256": d}, expected_size=n)
                       for rel, (d, n) in files.items()]
        started = time.perf_counter()
        results = await asyncio.gather(*(d.run() for d in downloaders))
        elapsed = time.perf_counter() - started
    for result in results:
        result.path.unlink()
    return elapsed


PEERS_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "peers"


def pulpcore(base: str, name: str, algs: tuple[str, ...], conc: int, data: Path, work: Path) -> float | None:
    """Seconds pulpcore's downloader takes for the set, or None when it is not installed."""
    python = os.environ.get("PEER_PY", "/tmp/peer-venv/bin/python")
    script = PEERS_DIR / "pulpcore_peer.py"
    if not (os.access(python, os.X_OK) and script.exists()):
        return None
    env = dict(os.environ, DATA_DIR=str(data), WORK_DIR=str(work / "pulpcore"),
               PULP_ALLOWED_CONTENT_CHECKSUMS=json.dumps(list(algs)))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    out = subprocess.run([python, str(script), base, name, str(conc)], env=env,
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        print(json.dumps({"pulpcore_error": out.stderr[-500:]}), file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])["s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per measurement, the best kept (default 3)")
    parser.add_argument("--concurrency", type=int, default=10,
                        help="downloads at once (default 10)")
    parser.add_argument("--data", default=os.environ.get("BENCH_DATA", "/tmp/pulp-downloads-bench/data"),
                        help="where the corpus is generated once (env BENCH_DATA)")
    parser.add_argument("--big-mib", type=int, default=200,
                        help="size of the one big file in MiB (default 200)")
    parser.add_argument("--no-pulpcore", action="store_true", help="skip the pulpcore peer")
    args = parser.parse_args()

    data = Path(args.data)
    index = make_corpus(data, {"small": (200, 1 << 20), "big": (1, args.big_mib << 20)})
    run = Path(tempfile.mkdtemp(prefix="bench-run-"))
    work = run / "work"
    work.mkdir()
    server, base, kind = start_server(data, run)
    print(json.dumps({"server": kind, "base": base, "cpus": os.cpu_count()}), flush=True)
    try:
        for set_name in ("small", "big"):
            files = index[set_name]
            total = sum(n for _, n in files.values())
            for algs in (("sha256",), FOUR):
                best = {"plain": float("inf"), "library": float("inf"), "pulpcore": float("inf")}
                for _ in range(args.repeat):
                    for label, fn in (("plain", plain), ("library", library)):
                        elapsed = asyncio.run(fn(base, set_name, files, algs, args.concurrency, work))
                        best[label] = min(best[label], elapsed)
                    if not args.no_pulpcore:
                        elapsed = pulpcore(base, set_name, algs, args.concurrency, data, work)
                        if elapsed is not None:
                            best["pulpcore"] = min(best["pulpcore"], elapsed)
                row = {
                    "set": set_name, "digests": ",".join(algs),
                    "plain_MB_s": round(total / 1e6 / best["plain"], 1),
                    "library_MB_s": round(total / 1e6 / best["library"], 1),
                    "ratio_library_over_plain": round(best["plain"] / best["library"], 2),
                }
                if best["pulpcore"] != float("inf"):
                    row["pulpcore_MB_s"] = round(total / 1e6 / best["pulpcore"], 1)
                    row["ratio_library_over_pulpcore"] = round(best["pulpcore"] / best["library"], 2)
                print(json.dumps(row), flush=True)
    finally:
        stop_server(server, run)


if __name__ == "__main__":
    main()
