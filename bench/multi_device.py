"""One executor over 1, 2 and 4 emulated devices: throughput, speedup and host CPU per batch.

    python bench/multi_device.py [SAMPLE] [BATCHES] [--rounds N] [--instances K] [--mode overlap|serial]

Runs Executor(path, devices=[0..D-1]).run over the same BATCHES batches (default: the
`compute-bound` sample, 5 ms of compute per batch and 2 KiB each way, 400 batches) for D = 1,
2 and 4, interleaved for N rounds (the median round is reported), with the emulator's real
modelled timing and four emulated devices (FASTEXEC_EMU_DEVICES=4 unless set). Each device has
its own copy and compute engines, so a compute-bound model should scale with D. Host CPU per
batch: the whole process's CPU time (time.process_time: the calling thread, the emulator's
stream workers, which poll briefly before they sleep) and the calling thread's alone
(time.thread_time), divided by the batches. Outputs are checked equal to the one-device run.
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("FASTEXEC_BACKEND", "emulator")
os.environ.setdefault("FASTEXEC_EMU_DEVICES", "4")
os.environ["FASTEXEC_EMU_FAST"] = "0"

import numpy as np  # noqa: E402

import fastexec  # noqa: E402
from fastexec import emulator  # noqa: E402

DEVICE_COUNTS = (1, 2, 4)


def one_run(path, devices, x, instances, mode):
    with fastexec.Executor(path, devices=list(range(devices)), instances=instances, mode=mode) as ex:
        ex.calibrate(10)
        ex.run([a[: ex.batch_size * 8 * devices] for a in x])          # warm: every slot once
        ex.reset_stats()
        overruns = emulator.counters()["overruns"]
        wall, cpu, thread = time.perf_counter(), time.process_time(), time.thread_time()
        out = ex.run(x)
        wall, cpu, thread = time.perf_counter() - wall, time.process_time() - cpu, time.thread_time() - thread
        st = ex.stats()
    batches = st["batches"]
    return {"wall_s": wall, "batches": batches, "samples_per_s": batches * ex.batch_size / wall,
            "cpu_ms_per_batch": cpu / batches * 1e3, "thread_ms_per_batch": thread / batches * 1e3,
            "efficiency": st["bound"]["efficiency"], "overruns": emulator.counters()["overruns"] - overruns,
            "out": out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sample", nargs="?", default="compute-bound", help="a bundled sample or a .om path")
    ap.add_argument("batches", nargs="?", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported (default: 3)")
    ap.add_argument("--instances", type=int, default=1, help="model instances per device (default: 1)")
    ap.add_argument("--mode", choices=("overlap", "serial"), default="overlap")
    args = ap.parse_args(argv)
    path = args.sample if os.path.exists(args.sample) else emulator.sample_model(args.sample)
    available = fastexec.backend_info()["device_count"]
    counts = [d for d in DEVICE_COUNTS if d <= available]
    with fastexec.Model(path) as m:
        specs, batch = m.inputs, m.batch_size
    rng = np.random.default_rng(0)
    x = [rng.integers(0, 100, (batch * args.batches,) + tuple(s.shape[1:])).astype(s.dtype) for s in specs]
    runs = {d: [] for d in counts}
    for _ in range(args.rounds):
        for d in counts:
            runs[d].append(one_run(path, d, x, args.instances, args.mode))
    reference = runs[1][0]["out"]
    same = all(np.array_equal(a, b, equal_nan=True) for rs in runs.values() for r in rs for a, b in zip(r["out"], reference))
    print(f"{os.path.basename(path)}: {args.batches} batches of {batch}, mode {args.mode}, {args.instances} instance(s) "
          f"per device, median of {args.rounds} interleaved rounds, {emulator.profile()['name']} x {available} devices")
    print(f"{'devices':>7} {'samples/s':>11} {'speedup':>8} {'of bound':>9} {'CPU ms/batch':>13} {'thread ms/batch':>16} "
          f"{'overruns':>9}")
    base = statistics.median(r["samples_per_s"] for r in runs[1])
    for d in counts:
        rs = runs[d]
        sps = statistics.median(r["samples_per_s"] for r in rs)
        print(f"{d:>7} {sps:>11.1f} {sps / base:>7.2f}x {statistics.median(r['efficiency'] for r in rs):>9.3f} "
              f"{statistics.median(r['cpu_ms_per_batch'] for r in rs):>13.4f} "
              f"{statistics.median(r['thread_ms_per_batch'] for r in rs):>16.4f} {sum(r['overruns'] for r in rs):>9}")
    print(f"outputs identical across device counts: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
