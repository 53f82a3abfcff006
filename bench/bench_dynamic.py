"""Dynamic models per gear and shape: modelled against measured execute time, throughput and drains.

    python bench/bench_dynamic.py [--batches 400] [--depth 4] [--json FILE]

Runs on the emulator with real modelled durations (default profile), in this process:
- every gear of `dynamic-batch`, `dynamic-hw` and `dynamic-dims`, and the lower bounds, a middle
  shape and the upper bounds of `dynamic-shape`: `--batches` batches of that gear or shape
  streamed through imap(); the modelled execute time (ModelDef.exec_ns) against the measured
  median of the execute stage, samples/s end to end, and the drains stats() counted;
- streams of mixed gears on `dynamic-batch`: one gear throughout, two gears in two long runs,
  and two gears alternating batch by batch (one instance, and two: batch k goes to instance
  k % 2, so each instance keeps one gear); the drains each pays (a drain waits for the
  instance's batches in flight before its gear changes) and its throughput.
Prints a Markdown table (docs/bench.md has one).
"""
import argparse
import json
import sys
import time


def _batch(np, model_def, shapes, rng):
    return [rng.integers(0, 100, s).astype(t.dtype) for t, s in zip(model_def.inputs, shapes)]


def measure_case(fastexec, emulator, np, name, shapes_list, batches, depth, rng, instances=1):
    """Stream `batches` batches cycling over `shapes_list` (one entry: one gear or shape)."""
    from fastexec.emulator.samples import SAMPLES

    md = SAMPLES[name]
    data = [_batch(np, md, s, rng) for s in shapes_list]
    with fastexec.Executor(emulator.sample_model(name), depth=depth, instances=instances) as ex:
        for _ in ex.imap([data[0]] * 20):          # warm-up
            pass
        ex.reset_stats()
        stream = [data[k % len(data)] for k in range(batches)]
        t0 = time.perf_counter()
        for _ in ex.imap(stream):
            pass
        wall = time.perf_counter() - t0
        st = ex.stats()
    samples = sum(b[0].shape[0] for b in stream)
    return {"execute_p50_ms": st["execute"]["p50_ms"], "samples_per_s": samples / wall,
            "batches_per_s": batches / wall, "drains": st["drains"], "gear_sets": st["gear_sets"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=400, help="batches per row (default: 400)")
    parser.add_argument("--depth", type=int, default=4, help="executor depth (default: 4)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)

    import numpy as np

    import fastexec
    from fastexec import emulator
    from fastexec.emulator.samples import SAMPLES

    if emulator.profile()["fast"]:
        print("note: the emulator is in fast mode (FASTEXEC_EMU_FAST=1): no modelled time", file=sys.stderr)
    rng = np.random.default_rng(0)
    rows = []
    overruns0 = emulator.counters()["overruns"]
    for name in ("dynamic-batch", "dynamic-hw", "dynamic-dims", "dynamic-shape"):
        md = SAMPLES[name]
        if md.dynamic_shape:
            lo, hi = md.dyn_values()
            cases = [lo, tuple((a + b) // 2 for a, b in zip(lo, hi)), hi]
        else:
            cases = md.dyn_values()
        for values in cases:
            shapes = md.shapes_of(values)[0]
            r = measure_case(fastexec, emulator, np, name, [shapes], args.batches, args.depth, rng)
            r.update(model=name, case=" ".join("x".join(map(str, s)) for s in shapes),
                     modelled_ms=md.exec_ns(shapes) / 1e6)
            rows.append(r)
    md = SAMPLES["dynamic-batch"]
    one, full = md.shapes_of((1,))[0], md.shapes_of((8,))[0]
    half = args.batches // 2
    streams = {
        "1 row throughout": [one],
        "1 row x N/2, then 8 rows x N/2": None,
        "1 and 8 rows alternating": [one, full],
        "1 and 8 rows alternating, instances=2": [one, full],
    }
    stream_rows = []
    for label, shapes_list in streams.items():
        if shapes_list is None:   # two long runs: one gear change
            data = [_batch(np, md, one, rng), _batch(np, md, full, rng)]
            with fastexec.Executor(emulator.sample_model("dynamic-batch"), depth=args.depth) as ex:
                for _ in ex.imap([data[0]] * 20):
                    pass
                ex.reset_stats()
                stream = [data[0]] * half + [data[1]] * half
                t0 = time.perf_counter()
                for _ in ex.imap(stream):
                    pass
                wall = time.perf_counter() - t0
                st = ex.stats()
            r = {"samples_per_s": sum(b[0].shape[0] for b in stream) / wall, "batches_per_s": len(stream) / wall,
                 "drains": st["drains"], "gear_sets": st["gear_sets"], "execute_p50_ms": st["execute"]["p50_ms"]}
        else:
            r = measure_case(fastexec, emulator, np, "dynamic-batch", shapes_list, args.batches, args.depth, rng,
                             instances=2 if "instances=2" in label else 1)
        r["stream"] = label
        stream_rows.append(r)
    overruns = emulator.counters()["overruns"] - overruns0

    print(f"Per gear / shape ({args.batches} batches each, depth {args.depth}, imap, profile {emulator.profile()['name']}):\n")
    print("| model | gear / shape (inputs) | modelled execute ms | measured execute p50 ms | samples/s | batches/s | drains |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} | {r['case']} | {r['modelled_ms']:.4f} | {r['execute_p50_ms']:.4f} | "
              f"{r['samples_per_s']:.0f} | {r['batches_per_s']:.0f} | {r['drains']} |")
    print(f"\nStreams of `dynamic-batch` ({args.batches} batches each):\n")
    print("| stream | drains | gear settings | samples/s | batches/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in stream_rows:
        print(f"| {r['stream']} | {r['drains']} | {r['gear_sets']} | {r['samples_per_s']:.0f} | {r['batches_per_s']:.0f} |")
    if overruns:
        print(f"\nnote: {overruns} emulator task(s) overran their modelled time (a busy host)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gears": rows, "streams": stream_rows, "overruns": overruns}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
