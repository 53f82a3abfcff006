"""The executor against the C loop floor with the same choreography, in one process run each.

    python bench/overlap_floor.py [SAMPLE] [BATCHES] [DEPTH] [--mode overlap|serial] [--repeat N]

Runs bench/acl_loop.c (ACL called directly: three streams linked by events and the same six
timing events per batch in overlap mode) and Executor.run on the same sample, batches and depth,
alternating N times, and prints each one's throughput and the ratio executor / C loop: the cost
of the binding and nothing else. Real modelled timing (FASTEXEC_EMU_FAST=0).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def c_loop(exe, sample, batches, depth, mode):
    from fastexec import emulator

    out = subprocess.run([exe, emulator.sample_model(sample), str(batches), str(depth), "--mode", mode], capture_output=True,
                         text=True, check=True, env={**os.environ, "FASTEXEC_EMU_FAST": "0"}).stdout
    return float(re.search(r"throughput ([\d.]+) samples/s", out).group(1))


EXECUTOR_CHILD = """
import sys, time, numpy as np, fastexec
from fastexec import emulator
sample, batches, depth, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with fastexec.Executor(emulator.sample_model(sample), depth=depth, mode=mode) as ex:
    B = ex.batch_size
    rng = np.random.default_rng(0)
    x = [rng.integers(0, 100, (B * batches,) + tuple(s.shape[1:])).astype(s.dtype) for s in ex.inputs]
    out = [np.zeros((B * batches,) + tuple(s.shape[1:]), s.dtype) for s in ex.outputs]
    ex.run([a[:B * 50] for a in x])
    t0 = time.perf_counter()
    ex.run(x, out=out)
    print(B * batches / (time.perf_counter() - t0))
"""


def executor(sample, batches, depth, mode):
    out = subprocess.run([sys.executable, "-c", EXECUTOR_CHILD, sample, str(batches), str(depth), mode],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "FASTEXEC_EMU_FAST": "0", "FASTEXEC_BACKEND": "emulator"}).stdout
    return float(out.split()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sample", nargs="?", default="multi-io")
    ap.add_argument("batches", nargs="?", type=int, default=20000)
    ap.add_argument("depth", nargs="?", type=int, default=4)
    ap.add_argument("--mode", choices=("overlap", "serial"), default="overlap")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    import acl_loop

    with tempfile.TemporaryDirectory() as tmp:
        exe = acl_loop.build(tmp)
        ratios = []
        for i in range(args.repeat):
            c = c_loop(exe, args.sample, args.batches, args.depth, args.mode)
            e = executor(args.sample, args.batches, args.depth, args.mode)
            ratios.append(e / c)
            print(f"run {i}: C loop {c:10.1f} samples/s  executor {e:10.1f} samples/s  executor / C loop {e / c:.3f}")
    ratios.sort()
    print(f"{args.sample} {args.mode} depth {args.depth}: executor / C loop median {ratios[len(ratios) // 2]:.3f} "
          f"(min {ratios[0]:.3f}, max {ratios[-1]:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
