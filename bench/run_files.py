"""fastexec run over folders of files against the same samples as one array.

    python bench/run_files.py [--files 3000] [--repeat 3] [--busy 0] [--kinds npy,bin,npz,multi-io]
                              [--dir DIR] [--out-root DIR] [--json FILE]

For each kind of input it writes the data once (one-sample files, page cache warm), then runs
`fastexec run -i ... -o NEW --json` as a user would (its own process, modelled timing, the
default settings) `--repeat` times into fresh output folders, and reads from each summary the
end-to-end throughput (first file read to last output renamed), the calibrated device bound and
the file threads' busy times. Beside it, the single-array figure: Executor.run over the same
samples stacked into one array, in a process of its own, against the bound it calibrated.
`--busy N` runs N busy loops (`python -c "while True: pass"`) beside every measurement.
`--out-root DIR` puts the output folders there (e.g. /dev/shm, to see the run without the cost
of creating files on the data's file system).

Kinds: npy (resnet50-int8, one .npy per sample), bin (the same as raw .bin files), npz (one .npz
holding every sample), multi-io (two folders of one-sample .npy, one per input of multi-io).
Output folders are kept until the end (deleting thousands of files just before creating
thousands more makes ext4's inode allocator scan the recently freed ones: a cost of the
benchmark's own clean-up, not of the run).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

KINDS = {"npy": "resnet50-int8", "bin": "resnet50-int8", "npz": "resnet50-int8", "multi-io": "multi-io"}

SINGLE_ARRAY = r"""
import json, sys, time
import numpy as np
import fastexec
from fastexec import emulator
arrays = [np.load(p) for p in sys.argv[2:]]
with fastexec.Model(emulator.sample_model(sys.argv[1])) as m, fastexec.Executor(m) as ex:
    ex.calibrate(50)
    ex.run([a[: 8 * ex.batch_size] for a in arrays])
    ex.reset_stats()
    t0 = time.perf_counter()
    ex.run(arrays)
    wall = time.perf_counter() - t0
    bound = ex.stats()["bound"]["samples_per_s"]
print(json.dumps({"samples_per_s": len(arrays[0]) / wall, "bound_samples_per_s": bound}))
"""


def env():
    e = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_")}
    e["FASTEXEC_BACKEND"] = "emulator"
    return e


def make_data(kind, root: Path, n: int):
    """The inputs of `kind` (sources for --input) and the stacked arrays (saved, for the
    single-array run)."""
    import fastexec
    from fastexec import emulator

    with fastexec.Model(emulator.sample_model(KINDS[kind])) as m:
        specs = list(m.inputs)
    rng = np.random.default_rng(17)
    stacked = []
    for s in specs:
        shape = (n,) + tuple(s.shape[1:])
        dt = np.dtype(s.dtype)
        stacked.append(rng.integers(0, 256, shape).astype(dt) if dt.kind in "ui" else
                       rng.uniform(-4, 4, shape).astype(dt))
    sources = []
    if kind == "npz":
        np.savez(root / "all.npz", **{s.name: a for s, a in zip(specs, stacked)})
        sources = [str(root / "all.npz")]
    else:
        for s, a in zip(specs, stacked):
            d = root / f"in_{s.name}"
            d.mkdir()
            for i in range(n):
                if kind == "bin":
                    a[i].tofile(d / f"{i:05d}.bin")
                else:
                    np.save(d / f"{i:05d}.npy", a[i])
            sources.append(str(d))
    arrays = []
    for s, a in zip(specs, stacked):
        arrays.append(str(root / f"stacked_{s.name}.npy"))
        np.save(arrays[-1], a)
    for src in sources:                              # page cache warm
        for p in (Path(src).iterdir() if Path(src).is_dir() else [Path(src)]):
            p.read_bytes()
    return sources, arrays


def run_once(kind, sources, out: Path, summary: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "fastexec.cli", "run", KINDS[kind], "-i", *sources, "-o", str(out),
                           "--no-progress", "--json", str(summary)], env=env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"fastexec run failed ({proc.returncode}): {proc.stderr}")
    return json.loads(summary.read_text())


def single_array(kind, arrays) -> dict:
    out = subprocess.run([sys.executable, "-c", SINGLE_ARRAY, KINDS[kind], *arrays], env=env(), check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main(argv=None) -> int:
    os.environ.setdefault("FASTEXEC_BACKEND", "emulator")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=3000, help="samples (files per folder)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per kind (the median is reported)")
    parser.add_argument("--busy", type=int, default=0, help="busy loops beside every measurement")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--dir", help="where to write the data (default: a temporary folder, removed at the end)")
    parser.add_argument("--out-root", help="where the output folders go (default: beside the data)")
    parser.add_argument("--json", help="also write every figure as JSON")
    args = parser.parse_args(argv)
    root = Path(args.dir or tempfile.mkdtemp(prefix="fastexec-run-bench-"))
    out_root = Path(tempfile.mkdtemp(prefix="fastexec-run-bench-out-", dir=args.out_root)) if args.out_root else None
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    rows = []
    try:
        print(f"{args.files} samples per kind, {args.repeat} runs each (median), {args.busy} busy loop(s), "
              f"outputs in {out_root or root}, load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print("| input | model | run samples/s | of bound | min..max of bound | readers busy | writer busy "
              "| device busy | single array samples/s | of bound | summary says |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for kind in args.kinds.split(","):
            data = root / kind
            data.mkdir(parents=True, exist_ok=True)
            sources, arrays = make_data(kind, data, args.files)
            outs = out_root / kind if out_root else data
            outs.mkdir(parents=True, exist_ok=True)
            runs = [run_once(kind, sources, outs / f"out{r}", data / f"run{r}.json") for r in range(args.repeat)]
            single = single_array(kind, arrays)
            effs = sorted(r["bound"]["efficiency"] for r in runs)
            mid = sorted(runs, key=lambda r: r["bound"]["efficiency"])[len(runs) // 2]
            io = mid["io"]
            note = next(("host-bound (" + w.split("the ", 1)[1].split(" busy", 1)[0].rsplit(" ", 1)[0] + ")" if w.startswith("host")
                         else "CPU shared" for w in mid["warnings"] if w.startswith(("host-bound", "neither"))),
                        "device-bound")
            row = {"kind": kind, "model": KINDS[kind], "samples": mid["samples"],
                   "run_samples_per_s": mid["throughput"]["samples_per_s"],
                   "run_efficiency": statistics.median(effs), "run_efficiency_min": effs[0],
                   "run_efficiency_max": effs[-1], "bound_samples_per_s": mid["bound"]["samples_per_s"],
                   "read_busy_s": io["read_busy_s"], "write_busy_s": io["write_busy_s"],
                   "device_busy_s": io["device_busy_s"], "wall_s": mid["wall_s"],
                   "single_samples_per_s": single["samples_per_s"],
                   "single_efficiency": single["samples_per_s"] / single["bound_samples_per_s"],
                   "note": note, "warnings": mid["warnings"]}
            rows.append(row)
            print(f"| {kind} | {row['model']} | {row['run_samples_per_s']:.0f} | {100 * row['run_efficiency']:.1f}% "
                  f"| {100 * effs[0]:.0f}..{100 * effs[-1]:.0f}% | {io['read_busy_s']:.3f} s "
                  f"| {io['write_busy_s']:.3f} s | {io['device_busy_s']:.3f} s of {mid['wall_s']:.3f} s "
                  f"| {row['single_samples_per_s']:.0f} | {100 * row['single_efficiency']:.1f}% | {note} |", flush=True)
    finally:
        for p in busy:
            p.kill()
            p.wait()
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)
        if out_root:
            shutil.rmtree(out_root, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"files": args.files, "busy": args.busy, "out_root": args.out_root,
                                               "load_average_after": os.getloadavg(), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
