"""The full sync into object storage (S3 served by rclone on loopback) beside the same sync
into the local filesystem, in one run, on the peers' sets.

Each sync runs in a fresh process with a fresh SQLite database (and a fresh bucket or media
root) and reports its time and peak RSS. Sets: 2,000 x 16 KiB, 200 x 1 MiB, 1 x 200 MiB.
Usage: .venv/bin/python bench/sync_s3.py [--repeat 2] [--sets tiny,small,big]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.download_throughput import (add_set_arguments, free_port,  # noqa: E402
                                       prepare_sets, project_env, stop_server, wait_for_port)
from bench.sync_throughput import CHILD  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SETS = {"tiny": (2000, 16 * 1024), "small": (200, 1 << 20), "big": (1, 200 << 20)}
KEY, SECRET = "bench-key", "bench-secret"


def start_s3(directory: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "rclone"), "serve", "s3", "--auth-key",
         f"{KEY},{SECRET}", "--addr", f"127.0.0.1:{port}", "--config", os.devnull,
         str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return process, f"http://127.0.0.1:{port}"


def sync_once(url: str, concurrency: int, scratch: Path, s3: tuple[str, Path] | None) -> dict:
    run = Path(tempfile.mkdtemp(prefix="s3sync-", dir=scratch))
    env = project_env(run)
    bucket = None
    if s3 is not None:
        import boto3
        from botocore.config import Config

        endpoint, directory = s3
        bucket = f"bench-{run.name.lower().replace('_', '-')}"
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY,
                     aws_secret_access_key=SECRET, region_name="us-east-1",
                     config=Config(s3={"addressing_style": "path"})).create_bucket(Bucket=bucket)
        env.update(PULP_DOWNLOADS_STORAGE="s3", AWS_STORAGE_BUCKET_NAME=bucket,
                   AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
                   AWS_S3_ENDPOINT_URL=endpoint, AWS_S3_REGION_NAME="us-east-1",
                   AWS_S3_ADDRESSING_STYLE="path")
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, url, str(concurrency)], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=1800)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(run, ignore_errors=True)
        if bucket is not None:
            shutil.rmtree(s3[1] / bucket, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_set_arguments(parser, repeat=2, data="/tmp/pulp-downloads-bench/mech-data")
    args = parser.parse_args()
    sets, scratch, (server, base, kind) = prepare_sets(args, SETS, "s3-bench-server")
    s3_dir = Path(tempfile.mkdtemp(prefix="s3-", dir=scratch))
    s3_server, endpoint = start_s3(s3_dir)
    print(json.dumps({"server": kind, "s3": "rclone serve s3", "cpus": os.cpu_count()}),
          flush=True)
    try:
        for name, (count, size) in sets.items():
            url = f"{base}/{name}/PULP_MANIFEST"
            best = {"filesystem": (float("inf"), 0.0), "s3": (float("inf"), 0.0)}
            for _ in range(args.repeat):  # interleaved
                for kind_, s3 in (("filesystem", None), ("s3", (endpoint, s3_dir))):
                    result = sync_once(url, args.concurrency, scratch, s3)
                    seconds, rss = best[kind_]
                    best[kind_] = (min(seconds, result["s"]), max(rss, result["peak_rss_mb"]))
            total = count * size
            line = {"set": name}
            for kind_, (seconds, rss) in best.items():
                line[f"{kind_}_MB_s"] = round(total / 1e6 / seconds, 1)
                line[f"{kind_}_files_s"] = round(count / seconds, 1)
                line[f"{kind_}_peak_rss_MB"] = round(rss, 1)
            line["ratio_s3_over_filesystem"] = round(best["filesystem"][0] / best["s3"][0], 2)
            print(json.dumps(line), flush=True)
    finally:
        s3_server.send_signal(signal.SIGTERM)
        s3_server.wait(10)
        shutil.rmtree(s3_dir, ignore_errors=True)
        stop_server(server, scratch / "s3-bench-server")


if __name__ == "__main__":
    main()
