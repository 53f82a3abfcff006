"""The executor against its bound, a naive synchronous loop and the C loop floor.

    python bench/bench_executor.py [--batches 500] [--samples resnet50-int8,balanced,...] [--depths 2,3,4]
                                   [--modes serial,overlap]

Each sample runs in its own process under the emulator profile it is sized for (`balanced`:
slow-link), with real modelled durations. All ratios in a row come from one process run:
- bound: from the executor's device events, batch_size / mean(h2d + execute + d2h) in serial
  mode, batch_size / max(mean stage) in overlap mode (one engine of each kind);
- x serial: the overlap row's throughput over the serial row's at the same depth;
- naive: fastexec.naive_run, the per-batch allocate / sync copy / aclmdlExecute loop;
- C loop: bench/acl_loop.c, ACL called directly with the executor's per-batch sequence, in the
  row's mode (`--mode overlap` for overlap rows: the same three streams and six events), so
  "of C" is the cost of the binding and nothing else.
Last, the overhead row: the `tiny` sample in the emulator's fast mode (no modelled time), where
the executor's throughput against the C loop's is the cost of the binding itself.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROFILES = {"balanced": "slow-link"}


def measure(sample: str, batches: int, depths: list, modes: list) -> dict:
    """In this process: executor (per depth) and naive loop on one sample."""
    import numpy as np

    import fastexec
    from fastexec import emulator

    rows = {}
    with fastexec.Device(0) as dev:
        with fastexec.Model(emulator.sample_model(sample), device=dev) as model:
            B = model.batch_size
            rng = np.random.default_rng(0)
            inputs = [rng.integers(0, 100, (B * batches,) + tuple(s.shape[1:])).astype(s.dtype) for s in model.inputs]
            for mode, depth in [(m, d) for m in modes for d in depths]:
                with fastexec.Executor(model, depth=depth, mode=mode) as ex:
                    out = ex.run([x[:B * 20] for x in inputs])          # warm-up, and output pages touched
                    out = [np.empty((B * batches,) + tuple(s.shape[1:]), s.dtype) for s in ex.outputs]
                    for o in out:
                        o.fill(0)
                    before = ex.stats()["batches"]
                    t0 = time.perf_counter()
                    ex.run(inputs, out=out)
                    wall = time.perf_counter() - t0
                    st = ex.stats()
                    assert st["batches"] - before == batches
                    rows[f"{mode}:{depth}"] = {"samples_per_s": B * batches / wall, "bound_samples_per_s": st["bound"]["samples_per_s"],
                                   "h2d_ms": st["h2d"]["mean_ms"], "execute_ms": st["execute"]["mean_ms"],
                                   "d2h_ms": st["d2h"]["mean_ms"]}
        with fastexec.Model(emulator.sample_model(sample), device=dev) as naive_model:
            n = min(batches, 200)
            t0 = time.perf_counter()
            fastexec.naive_run(naive_model, [x[:B * n] for x in inputs])
            naive = B * n / (time.perf_counter() - t0)
    return {"sample": sample, "batch_size": B, "executor": rows, "naive_samples_per_s": naive,
            "overruns": emulator.counters()["overruns"]}


def build_c_loop(out_dir: str) -> str:
    from fastexec import emulator

    exe = os.path.join(out_dir, "acl_loop")
    subprocess.run([os.environ.get("CC", "cc"), "-std=c11", "-O2", *emulator.cflags(), str(Path(__file__).with_name("acl_loop.c")),
                    "-o", exe, *emulator.libs()], check=True)
    return exe


def c_loop(exe: str, sample: str, batches: int, depth: int, env: dict, mode: str = "serial") -> float:
    from fastexec import emulator

    out = subprocess.run([exe, emulator.sample_model(sample), str(batches), str(depth), "--mode", mode], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(re.search(r"throughput ([0-9.]+) samples/s", out).group(1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--samples", default="resnet50-int8,balanced,dynamic-batch,multi-io")
    parser.add_argument("--depths", default="2,3,4")
    parser.add_argument("--modes", default="serial,overlap")
    parser.add_argument("--measure", help=argparse.SUPPRESS)   # internal: one sample, JSON out
    args = parser.parse_args(argv)
    depths = [int(d) for d in args.depths.split(",")]
    modes = args.modes.split(",")
    if args.measure:
        print(json.dumps(measure(args.measure, args.batches, depths, modes)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_c_loop(tmp)
        print(f"{'sample':<15}{'mode':>8}{'depth':>6}{'executor/s':>12}{'bound/s':>10}{'of bound':>9}{'x serial':>9}"
              f"{'naive/s':>10}{'speedup':>9}{'C loop/s':>10}{'of C':>7}   stages h2d/exec/d2h ms")
        for sample in args.samples.split(","):
            env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_EMU_")}
            env["FASTEXEC_BACKEND"] = "emulator"
            if sample in PROFILES:
                env["FASTEXEC_EMU_PROFILE"] = PROFILES[sample]
            res = json.loads(subprocess.run([sys.executable, __file__, "--measure", sample, "--batches", str(args.batches),
                                             "--depths", args.depths, "--modes", args.modes],
                                            env=env, check=True, capture_output=True, text=True).stdout)
            floors = {(mode, depth): c_loop(exe, sample, args.batches, depth, env, mode) for mode in modes for depth in depths}
            for mode in modes:
                for depth in depths:
                    r = res["executor"][f"{mode}:{depth}"]
                    serial = res["executor"].get(f"serial:{depth}")
                    vs_serial = f"{r['samples_per_s'] / serial['samples_per_s']:>9.2f}" if serial else f"{'-':>9}"
                    print(f"{sample:<15}{mode:>8}{depth:>6}{r['samples_per_s']:>12.1f}{r['bound_samples_per_s']:>10.1f}"
                          f"{r['samples_per_s'] / r['bound_samples_per_s']:>9.3f}{vs_serial}{res['naive_samples_per_s']:>10.1f}"
                          f"{r['samples_per_s'] / res['naive_samples_per_s']:>9.2f}{floors[mode, depth]:>10.1f}"
                          f"{r['samples_per_s'] / floors[mode, depth]:>7.3f}   {r['h2d_ms']:.3f}/{r['execute_ms']:.3f}/{r['d2h_ms']:.3f}")
            if res["overruns"]:
                print(f"  note: {res['overruns']} emulator task(s) overran their modelled time in the {sample} run")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_EMU_")}
        env.update(FASTEXEC_BACKEND="emulator", FASTEXEC_EMU_FAST="1")
        n = 20 * args.batches
        res = json.loads(subprocess.run([sys.executable, __file__, "--measure", "tiny", "--batches", str(n), "--depths", "2",
                                         "--modes", "serial"], env=env, check=True, capture_output=True, text=True).stdout)
        ex = res["executor"]["serial:2"]["samples_per_s"]
        floor = c_loop(exe, "tiny", n, 2, env)
        print(f"\noverhead: tiny, fast mode, serial, depth 2, {n} batches: executor {ex:.0f} batches/s, C loop {floor:.0f} batches/s, "
              f"executor/C loop {ex / floor:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
