"""Benchmark: the engine's overhead on a wide DAG, side by side with GNU make.

The graph: 20 layers of 10 jobs, each `sleep 0.1`, every job needing two jobs
of the previous layer (critical path 2.0 s), run 10 at a time. Also 500 jobs
of `true` in a chain-free pipeline, to measure the engine's own cost per job,
and one `true` job, to measure what a Run costs besides its jobs.

    python bench/dag_bench.py [--repeat 5] [--json]

Every figure is the median of --repeat runs of the whole command, measured
here, in one session, alternating tools so machine noise hits both.
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
import time
from pathlib import Path

LAYERS, WIDTH, SLEEP = 20, 10, 0.1
# The command measured; --command points at another (an older checkout, say).
CONVEYOR = str(Path(sys.executable).with_name("conveyor"))


def name(layer: int, index: int) -> str:
    return f"j{layer:02d}_{index}"


def needs_of(layer: int, index: int) -> list[str]:
    if layer == 0:
        return []
    return [name(layer - 1, index), name(layer - 1, (index + 1) % WIDTH)]


def write_dag(root: Path) -> None:
    lines = ["version: 1", "jobs:"]
    make = [".PHONY: all", "all: " + " ".join(name(LAYERS - 1, i) for i in range(WIDTH))]
    for layer in range(LAYERS):
        for index in range(WIDTH):
            job, needs = name(layer, index), needs_of(layer, index)
            lines += [f"  {job}:", f"    run: sleep {SLEEP}"]
            if needs:
                lines.append(f"    needs: [{', '.join(needs)}]")
            make += [f".PHONY: {job}", f"{job}: {' '.join(needs)}", f"\tsleep {SLEEP}"]
    (root / "conveyor.yaml").write_text("\n".join(lines) + "\n")
    (root / "Makefile").write_text("\n".join(make) + "\n")


def write_trues(root: Path, count: int) -> None:
    lines = ["version: 1", "jobs:"]
    for i in range(count):
        # Distinct scripts: identical jobs would share one cache key.
        lines += [f"  t{i:03d}:", f"    run: true t{i:03d}"]
    (root / "conveyor.yaml").write_text("\n".join(lines) + "\n")


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.decode()[-2000:]}")
    return took


def median(values: list[float]) -> float:
    return statistics.median(values)


def bench_dag(repeat: int, conveyor: str) -> dict[str, object]:
    results: dict[str, list[float]] = {"make": [], "first": [], "cold": [], "rerun": []}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_dag(root)
            results["make"].append(timed(["make", "-s", f"-j{WIDTH}"], root))
            results["first"].append(timed([conveyor, "run", "-q", "-j", str(WIDTH)], root))
            shutil.rmtree(root / ".conveyor" / "cache")
            results["cold"].append(timed([conveyor, "run", "-q", "-j", str(WIDTH)], root))
            results["rerun"].append(timed([conveyor, "run", "-q", "-j", str(WIDTH)], root))
    med = {k: median(v) for k, v in results.items()}
    fastest = {k: min(v) for k, v in results.items()}
    return {
        "runs": results,
        "median_s": med,
        "fastest_s": fastest,
        "cold_vs_make": med["cold"] / med["make"],
        "first_vs_make": med["first"] / med["make"],
        # make's runs fall on steps a sleep apart (it sometimes sees a finished job
        # late), so its median moves by 0.1 s between rounds; fastest against fastest
        # is the steadier comparison.
        "fastest_cold_vs_make": fastest["cold"] / fastest["make"],
    }


def bench_trues(repeat: int, conveyor: str, count: int = 500) -> dict[str, object]:
    spawn, engine = [], []
    bash = shutil.which("bash") or "/bin/sh"
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_trues(root, count)
            timed([conveyor, "run", "-q", "-j", "1"], root)  # create the store
            shutil.rmtree(root / ".conveyor" / "cache")  # every job runs: a cold run
            engine.append(timed([conveyor, "run", "-q", "-j", "1"], root))
            start = time.perf_counter()
            for _ in range(count):
                subprocess.run([bash, "-c", "true t"], check=True)
            spawn.append(time.perf_counter() - start)
    per_job = median(engine) / count
    own = (median(engine) - median(spawn)) / count
    return {
        "jobs": count,
        "conveyor_s": engine,
        "bare_spawn_s": spawn,
        "per_job_ms": per_job * 1000,
        "engine_own_per_job_ms": own * 1000,
    }


def bench_fixed(repeat: int, conveyor: str) -> dict[str, object]:
    """What one Run costs besides its jobs: a cold run of one `true` job, beside make's.

    Start-up (the interpreter, imports, reading the spec, recording the Run)
    and the end (the last records, signing the event log's tree head) are
    paid once per Run; on the 200-job graph they add to the critical path.
    """
    results: dict[str, list[float]] = {"make": [], "conveyor": []}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "conveyor.yaml").write_text("version: 1\njobs:\n  one: {run: 'true'}\n")
            (root / "Makefile").write_text(".PHONY: one\none:\n\ttrue\n")
            timed([conveyor, "run", "-q"], root)  # create the store
            results["make"].append(timed(["make", "-s"], root))
            shutil.rmtree(root / ".conveyor" / "cache")
            results["conveyor"].append(timed([conveyor, "run", "-q"], root))
    return {
        "runs": results,
        "median_s": {k: median(v) for k, v in results.items()},
        "fastest_s": {k: min(v) for k, v in results.items()},
    }


def compile_bytecode() -> None:
    """Compile Conveyor's modules first, as installing a wheel does.

    An editable install under PYTHONDONTWRITEBYTECODE would otherwise compile
    every module from source on every start (about 80 ms), which no installed
    copy of Conveyor pays.
    """
    import conveyor

    package = Path(conveyor.__file__).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--command",
        default=CONVEYOR,
        help="the conveyor executable to measure (default: the one beside this Python); "
        "compile its modules first (python -m compileall) to compare like with like",
    )
    args = parser.parse_args()
    compile_bytecode()
    dag = bench_dag(args.repeat, args.command)
    trues = bench_trues(args.repeat, args.command)
    fixed = bench_fixed(args.repeat, args.command)
    if args.json:
        print(json.dumps({"dag": dag, "trues": trues, "fixed": fixed}, indent=2))
        return
    med = dag["median_s"]
    assert isinstance(med, dict)
    print(f"machine: {os.cpu_count()} CPUs; repeat {args.repeat}; medians")
    fastest = dag["fastest_s"]
    assert isinstance(fastest, dict)
    print(f"200-job DAG  make -j10          {med['make']:.3f} s  (fastest {fastest['make']:.3f} s)")
    first, cold = dag["first_vs_make"], dag["cold_vs_make"]
    print(f"             conveyor first run {med['first']:.3f} s  ({first:.3f}x make)")
    print(
        f"             conveyor cold      {med['cold']:.3f} s  ({cold:.3f}x make; fastest "
        f"{fastest['cold']:.3f} s, {dag['fastest_cold_vs_make']:.3f}x make's fastest)"
    )
    print(f"             conveyor re-run    {med['rerun']:.3f} s  (all cached)")
    print(
        f"500 x true   conveyor -j1 {trues['per_job_ms']:.2f} ms/job, "
        f"engine's own cost {trues['engine_own_per_job_ms']:.2f} ms/job"
    )
    once = fixed["median_s"]
    assert isinstance(once, dict)
    print(
        f"1 x true     conveyor run (cold) {once['conveyor'] * 1000:.0f} ms, "
        f"make {once['make'] * 1000:.0f} ms: the cost of a Run besides its jobs"
    )


if __name__ == "__main__":
    main()
