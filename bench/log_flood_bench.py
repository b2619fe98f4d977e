"""Benchmark: how much a job flooding its output slows the hand-offs of the others.

A chain of 30 jobs, each appending the time to a file and needing the one
before, runs once alone and once beside a job that prints `yes` for three
seconds. The figure is the chain's span, from its first job's stamp to its
last's, so the flooding job's own length does not count.

    python bench/log_flood_bench.py [--repeat 5] [--json] [--command PATH]

Every figure is the median of --repeat runs, alternating the two pipelines.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHAIN = 30
CONVEYOR = str(Path(sys.executable).with_name("conveyor"))


def write_spec(root: Path, *, flood: bool) -> None:
    lines = ["version: 1", "jobs:"]
    if flood:
        # `timeout` ends it with 124 (scripts run under `bash -e`): `|| true` keeps the Run green.
        lines += ["  flood:", "    run: timeout 3 yes conveyor || true"]
    for i in range(CHAIN):
        lines += [f"  c{i:02d}:", f"    run: date +%s%N >> stamps # {i}"]
        if i:
            lines.append(f"    needs: [c{i - 1:02d}]")
    (root / "conveyor.yaml").write_text("\n".join(lines) + "\n")


def chain_span(conveyor: str, *, flood: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_spec(root, flood=flood)
        done = subprocess.run(
            [conveyor, "run", "-q", "-j", "2"],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"conveyor run failed: {done.stderr.decode()[-2000:]}")
        stamps = [int(line) for line in (root / "stamps").read_text().split()]
        shutil.rmtree(root / ".conveyor", ignore_errors=True)
    return (max(stamps) - min(stamps)) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--command", default=CONVEYOR, help="the conveyor executable to measure")
    args = parser.parse_args()
    alone: list[float] = []
    beside: list[float] = []
    for _ in range(args.repeat):
        alone.append(chain_span(args.command, flood=False))
        beside.append(chain_span(args.command, flood=True))
    result = {
        "chain_jobs": CHAIN,
        "alone_s": alone,
        "beside_flood_s": beside,
        "median_alone_s": statistics.median(alone),
        "median_beside_flood_s": statistics.median(beside),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"chain of {CHAIN} jobs, medians of {args.repeat}")
    print(f"  alone                   {result['median_alone_s']:.3f} s")
    print(f"  beside a flooding job   {result['median_beside_flood_s']:.3f} s")


if __name__ == "__main__":
    main()
