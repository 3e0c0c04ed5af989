"""Content serving under load: many clients fetching random stored files, the content app
beside nginx serving the same files directly, in one run.

A loopback nginx serves the corpus; a fresh SQLite database and media root get an
``immediate`` remote per set, synced, then the content app runs under each server
(``--servers``: uvicorn, granian) with ``--workers N`` processes and ``wrk`` (one thread,
``--connections`` clients, ``--duration`` seconds) asks for random paths, first from nginx,
then from the content app. Prints one JSON line per figure (req/s, p50 and p99 latency,
MB/s) and the ratio to nginx.

Usage: .venv/bin/python bench/content_load.py [--sets tiny,small] [--workers 1,2]
       [--servers uvicorn,granian] [--connections 64] [--duration 5] [--mode app|x-accel]
``wrk`` comes from Debian (installed when missing, as ../shared/peers/run.sh does).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.app_server import SERVERS, app_server_command  # noqa: E402
from bench.download_throughput import (free_port, make_corpus, project_env,  # noqa: E402
                                       start_server, stop_server, wait_for_port)

ROOT = Path(__file__).resolve().parent.parent
SETS = {"tiny": (2000, 16 << 10), "small": (200, 1 << 20)}

WRK_SCRIPT = """
local paths = {}
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  math.randomseed(os.time())
end
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""

NGINX_FRONT = """
{user}
worker_processes 1;
daemon off;
pid {run}/front.pid;
error_log {run}/front-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  upstream app {{ server 127.0.0.1:{app_port}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port};
    location /content/ {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }}
    location /protected-artifacts/ {{
      internal;
      alias {media}/artifact/;
    }}
  }}
}}
"""


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        subprocess.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                       "apt-get install -y -qq wrk", shell=True, check=True,
                       stdout=subprocess.DEVNULL)
        wrk = shutil.which("wrk")
    return wrk


def _ms(text: str) -> float:
    text = text.replace("\u00b5s", "us").replace("\u03bcs", "us")
    match = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if match is None:
        return float("nan")
    number, unit = match.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def warm(base: str, paths: list[str], concurrency: int = 8) -> None:
    """Ask for every path once (unmeasured): the page cache and the app's path cache then
    hold them all, as on a server that has been answering for a while."""
    from concurrent.futures import ThreadPoolExecutor
    from urllib.request import urlopen

    def fetch(path: str) -> None:
        with urlopen(base + path, timeout=30) as reply:
            reply.read()

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(fetch, paths))


def run_wrk(wrk: str, base: str, paths_file: Path, script: Path, connections: int,
            duration: int) -> dict:
    out = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script),
         base, "--", str(paths_file)],
        capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    if "Requests/sec" not in out:
        raise RuntimeError(f"wrk printed no figures:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    # The latency distribution's lines ("    50%    4.26ms"), not a "+/- Stdev" column
    # such as "65.50%".
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"req_s": round(rps), "p50_ms": round(p50, 2), "p99_ms": round(p99, 2),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="tiny,small",
                        help="comma-separated sets of stored files: tiny (2,000 x 16 KiB), "
                             "small (200 x 1 MiB) (default: both)")
    parser.add_argument("--workers", default="1,2",
                        help="comma-separated worker process counts to measure (default 1,2)")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="comma-separated ASGI servers to run the app under "
                             f"(default {','.join(SERVERS)})")
    parser.add_argument("--connections", default="64",
                        help="comma-separated client counts, e.g. 1,8,64")
    parser.add_argument("--duration", type=int, default=5,
                        help="seconds of load per measurement (default 5)")
    parser.add_argument("--mode", choices=["app", "x-accel"], default="app",
                        help="app: the app sends the files; x-accel: nginx in front does")
    parser.add_argument("--data", default=os.environ.get("BENCH_DATA",
                                                         "/tmp/pulp-downloads-bench/data"),
                        help="where the corpus is generated once (env BENCH_DATA)")
    args = parser.parse_args()
    wrk = ensure_wrk()
    sets = [name for name in args.sets.split(",") if name]
    data = Path(args.data)
    index = make_corpus(data, {name: SETS[name] for name in sets})
    run = Path(tempfile.mkdtemp(prefix="content-load-"))
    upstream, base, kind = start_server(data, run / "upstream")
    env = project_env(run)
    if args.mode == "x-accel":
        env["PULP_DOWNLOADS_CONTENT_X_ACCEL_REDIRECT"] = "/protected-artifacts/"
    script = run / "random.lua"
    script.write_text(WRK_SCRIPT)
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT,
                       env=env, check=True, stdout=subprocess.DEVNULL)
        for name in sets:
            subprocess.run([sys.executable, "manage.py", "remote", "create", name,
                            f"{base}/{name}/PULP_MANIFEST"], cwd=ROOT, env=env, check=True,
                           stdout=subprocess.DEVNULL)
            subprocess.run([sys.executable, "manage.py", "sync_remote", name, "--progress",
                            "none"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        for server, workers in ((server, int(workers))
                                for server in args.servers.split(",")
                                for workers in args.workers.split(",")):
            app_port = free_port()
            app = subprocess.Popen(app_server_command(server, app_port, workers), cwd=ROOT,
                                   env=env)
            front = None
            try:
                wait_for_port(app_port, timeout=30)
                target = f"http://127.0.0.1:{app_port}"
                if args.mode == "x-accel":
                    port = free_port()
                    conf = run / "front.conf"
                    conf.write_text(NGINX_FRONT.format(
                        run=run, port=port, app_port=app_port, media=run / "media",
                        user="user root;" if os.geteuid() == 0 else ""))
                    front = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(run)])
                    wait_for_port(port, timeout=30)
                    target = f"http://127.0.0.1:{port}"
                for name in sets:
                    direct = run / f"direct-{name}.txt"
                    served = run / f"content-{name}.txt"
                    direct.write_text("".join(f"/{name}/{rel}\n" for rel in index[name]))
                    served.write_text("".join(f"/content/{name}/{rel}\n" for rel in index[name]))
                    size = SETS[name][1]
                    subprocess.run(["curl", "-sf", "-o", "/dev/null",
                                    f"{target}/content/{name}/{next(iter(index[name]))}"],
                                   check=True)  # warm up, and fail early when broken
                    app_paths = served.read_text().split()
                    for connections in (int(c) for c in args.connections.split(",")):
                        peer = run_wrk(wrk, base, direct, script, connections, args.duration)
                        # Every path once first: the app's path cache keeps entries for
                        # CONTENT_CACHE_TTL (30 s), so each measurement starts warm.
                        warm(target, app_paths)
                        ours = run_wrk(wrk, target, served, script, connections, args.duration)
                        for label, figures in ((f"{kind} direct", peer),
                                               ("content app", ours)):
                            print(json.dumps({
                                "peer": label, "server": server, "mode": args.mode,
                                "set": name, "workers": workers,
                                "connections": connections, **figures,
                                "MB_s": round(figures["req_s"] * size / 1e6, 1)}), flush=True)
                        print(json.dumps({"ratio": "content app / direct", "server": server,
                                          "set": name, "workers": workers,
                                          "connections": connections,
                                          "req_s": round(ours["req_s"] / peer["req_s"], 3)}),
                              flush=True)
            finally:
                if front is not None:
                    front.send_signal(signal.SIGQUIT)
                    front.wait(10)
                app.send_signal(signal.SIGTERM)
                app.wait(30)
    finally:
        stop_server(upstream, run / "upstream")
        shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
