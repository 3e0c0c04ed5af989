"""Charts for docs/performance.md, drawn from the JSON lines the benchmarks print.

  .venv/bin/python bench/charts.py --peers bench/figures/peers.jsonl \\
      --scaling bench/figures/scaling.jsonl --content bench/figures/content-load.jsonl \\
      --out docs/images

- ``--peers``: the output of ``../shared/peers/run.sh`` (with ``PROJECT=``): files/s of the
  2,000 x 16 KiB set and MB/s of the 200 x 1 MiB and 1 x 200 MiB sets, every peer computing
  the four default digests, as ``peers.png``.
- ``--scaling``: the output of ``bench/sync_throughput.py --counts ...``: files/s and peak
  memory of the full sync as the file count grows, beside the plain aiohttp loop, as
  ``scaling.png``.
- ``--content``: the output of ``bench/content_load.py --connections 1,8,64``: requests/s of
  the content app by client concurrency beside nginx serving the same files, as
  ``content-load.png``.
Each input is optional; a chart is drawn for each one given.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OURS = "#1f6feb"
PEER = "#8c959f"


def _save(figure, target: Path) -> Path:
    figure.tight_layout()
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target


def _plain_axes(axis, *, grid: bool = True) -> None:
    """No top and right frame; a light grid."""
    axis.spines[["top", "right"]].set_visible(False)
    if grid:
        axis.grid(alpha=0.3)


def read_lines(path: Path) -> list[dict]:
    """The JSON objects of a benchmark's output (other lines are skipped)."""
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


FOUR = {"sha224", "sha256", "sha384", "sha512"}


def peer_label(peer: str) -> str | None:
    """The chart's name for a peer of run.sh, or ``None`` when the chart leaves it out: the
    comparison is between syncs computing the four default digests (aria2c, which checks
    sha-256 only, is drawn for reference)."""
    name, _, digests = peer.partition("[")
    algorithms = set(digests.rstrip("]").split(",")) - {"md5", "sha1"}
    if peer == "pulp_downloads full sync":
        return "pulp_downloads (full sync)"
    if name == "pulpcore-3.123" and algorithms == FOUR:
        return "pulpcore 3.123"
    if name == "plain-aiohttp" and algorithms == FOUR:
        return "plain aiohttp loop (no storing)"
    if name == "aria2c":
        return "aria2c (sha-256 only)"
    return None


ORDER = ("pulp_downloads (full sync)", "pulpcore 3.123", "plain aiohttp loop (no storing)",
         "aria2c (sha-256 only)")
SETS = (("tiny", "2,000 x 16 KiB", "files_s", "files/s"),
        ("small", "200 x 1 MiB", "MB_s", "MB/s"),
        ("big", "1 x 200 MiB", "MB_s", "MB/s"))


def peers_chart(rows: list[dict], out: Path) -> Path:
    """Horizontal bars per set: each peer's best figure, ours highlighted."""
    best: dict[tuple[str, str], float] = {}
    for row in rows:
        label = peer_label(row.get("peer", ""))
        if label is None:
            continue
        for set_name, _, metric, _ in SETS:
            if row.get("set") == set_name and metric in row:
                key = (set_name, label)
                best[key] = max(best.get(key, 0.0), float(row[metric]))
    figure, axes = plt.subplots(1, len(SETS), figsize=(13, 3.4))
    for axis, (set_name, title, _, unit) in zip(axes, SETS):
        labels = [label for label in ORDER if (set_name, label) in best]
        values = [best[(set_name, label)] for label in labels]
        colours = [OURS if label.startswith("pulp_downloads") else PEER for label in labels]
        bars = axis.barh(labels, values, color=colours)
        axis.bar_label(bars, labels=[f"{value:,.0f}" for value in values], padding=3)
        axis.set_title(f"{title} ({unit})")
        axis.invert_yaxis()
        axis.set_xlim(0, max(values, default=1) * 1.25)
        _plain_axes(axis, grid=False)
    figure.suptitle("Syncing from one loopback nginx, 10 at once, four SHA-2 digests "
                    "(aria2c: sha-256 only)")
    return _save(figure, out / "peers.png")


def scaling_chart(rows: list[dict], out: Path) -> Path:
    """Files/s and peak RSS by file count."""
    rows = sorted((row for row in rows if "sync_files_s" in row), key=lambda row: row["files"])
    counts = [row["files"] for row in rows]
    figure, (speed, memory) = plt.subplots(1, 2, figsize=(11, 3.6))
    speed.plot(counts, [row["sync_files_s"] for row in rows], "o-", color=OURS,
               label="pulp_downloads full sync")
    speed.plot(counts, [row["plain_files_s"] for row in rows], "o--", color=PEER,
               label="plain aiohttp loop (no database, no storing)")
    speed.set_xscale("log")
    speed.set_xlabel("files in the remote (16 KiB each)")
    speed.set_ylabel("files/s")
    speed.set_ylim(bottom=0)
    speed.legend(loc="lower right")
    speed.set_title("Throughput as the remote grows")
    memory.plot(counts, [row["sync_peak_rss_MB"] for row in rows], "o-", color=OURS)
    memory.set_xscale("log")
    memory.set_xlabel("files in the remote (16 KiB each)")
    memory.set_ylabel("peak RSS of the sync process (MB)")
    memory.set_ylim(bottom=0)
    memory.set_title("Memory as the remote grows")
    for axis in (speed, memory):
        _plain_axes(axis)
    return _save(figure, out / "scaling.png")


def content_chart(rows: list[dict], out: Path) -> Path:
    """Requests/s by client concurrency, per set, server and worker count, beside nginx
    direct."""
    series: dict[tuple[str, str, int], dict[int, float]] = defaultdict(dict)
    for row in rows:
        if "peer" in row and "req_s" in row:
            peer = row["peer"]
            if "direct" not in peer:  # rows before --servers came from uvicorn
                peer = row.get("server", "uvicorn")
            key = (row["set"], peer, row["workers"])
            series[key][row["connections"]] = row["req_s"]
    sets = sorted({key[0] for key in series}, key=lambda name: name != "tiny")
    figure, axes = plt.subplots(1, len(sets), figsize=(6 * len(sets), 3.8), squeeze=False)
    for axis, set_name in zip(axes[0], sets):
        for (name, peer, workers), points in sorted(series.items()):
            if name != set_name:
                continue
            direct = "direct" in peer
            if direct and workers != min(k[2] for k in series if k[0] == set_name):
                continue  # nginx does not depend on the app's workers
            xs = sorted(points)
            label = ("nginx direct" if direct else
                     f"content app, {peer}, {workers} worker{'s' if workers > 1 else ''}")
            axis.plot(xs, [points[x] for x in xs], "o--" if direct else "o-",
                      color=PEER if direct else None, label=label)
        axis.set_xscale("log", base=2)
        ticks = sorted({x for key, points in series.items() if key[0] == set_name
                        for x in points})
        axis.set_xticks(ticks, [str(tick) for tick in ticks])
        axis.set_xlabel("concurrent clients")
        axis.set_ylabel("requests/s")
        axis.set_ylim(bottom=0)
        axis.set_title({"tiny": "stored 16 KiB files", "small": "stored 1 MiB files"}
                       .get(set_name, set_name))
        axis.legend()
        _plain_axes(axis)
    return _save(figure, out / "content-load.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peers", type=Path, help="JSON lines of ../shared/peers/run.sh")
    parser.add_argument("--scaling", type=Path,
                        help="JSON lines of bench/sync_throughput.py --counts ...")
    parser.add_argument("--content", type=Path, help="JSON lines of bench/content_load.py")
    parser.add_argument("--out", type=Path, default=Path("docs/images"),
                        help="directory the PNG files go to (default docs/images)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for source, draw in ((args.peers, peers_chart), (args.scaling, scaling_chart),
                         (args.content, content_chart)):
        if source is not None:
            print(draw(read_lines(source), args.out))


if __name__ == "__main__":
    main()
