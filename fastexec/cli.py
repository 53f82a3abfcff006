"""The ``fastexec`` command.

    fastexec info
    fastexec inspect MODEL [--json]
    fastexec run MODEL --input PATH... --output DIR [--limit N] [--depth D] [--instances K]
    fastexec bench [MODEL] [--batches N | --duration S] [--depth D] [--instances K] ...

Errors are one line on stderr and a non-zero exit status.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

BENCH_SCHEMA = "fastexec.bench/1"
DEFAULT_MODEL = "resnet50-int8"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0 (got {text})")
    return value


def _timeout(text):
    value = int(text)
    if value < -1:
        raise argparse.ArgumentTypeError(f"must be -1 (forever) or a number of ms >= 0 (got {value})")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fastexec", description="Run Ascend offline models at full speed.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    b = sub.add_parser("bench", help="measure a model's throughput and latency",
                       description="Measure a model's end-to-end throughput and per-stage latency through the "
                                   "pipelined executor, against the bound its stage times imply.")
    b.add_argument("model", nargs="?", default=DEFAULT_MODEL,
                   help=f"a .om file, or the name of a bundled emulator sample (default: {DEFAULT_MODEL})")
    amount = b.add_mutually_exclusive_group()
    amount.add_argument("--batches", type=_positive_int, help="measured batches (default: 500)")
    amount.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="measure for this long instead")
    b.add_argument("--warmup", type=int, default=20, metavar="BATCHES", help="batches before measuring (default: 20)")
    b.add_argument("--depth", type=_positive_int, help="slots per instance (default: 4 in overlap mode, 2 in serial)")
    b.add_argument("--instances", type=_positive_int, default=1, help="model instances, one stream each (default: 1)")
    b.add_argument("--mode", choices=["overlap", "serial"], default="overlap",
                   help="overlap (default): copy-in, execute and copy-out on three streams, so stages of "
                        "different batches overlap; serial: back to back on one stream")
    b.add_argument("--device", type=int, default=0, help="device id (default: 0)")
    b.add_argument("--stream-sync-timeout", type=_timeout, metavar="MS",
                   help="execute with aclmdlExecuteAsyncV2 and this ACL_MDL_STREAM_SYNC_TIMEOUT")
    b.add_argument("--event-sync-timeout", type=_timeout, metavar="MS",
                   help="execute with aclmdlExecuteAsyncV2 and this ACL_MDL_EVENT_SYNC_TIMEOUT")
    b.add_argument("--compare", choices=["naive"], action="append", default=[],
                   help="also run the naive synchronous loop (per-call allocation, sync copies, aclmdlExecute)")
    b.add_argument("--json", metavar="FILE", help="write the results as JSON (schema: docs/bench.md)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")

    sub.add_parser("info", help="the ACL runtime in use: backend, library, SoC, devices, memory",
                   description="Show which ACL runtime fastexec uses and the devices it sees.")

    i = sub.add_parser("inspect", help="a model's inputs, outputs and dynamic-batch gears",
                       description="Show a model's inputs and outputs (name, dtype, shape, format, bytes) and gears.")
    i.add_argument("model", help="a .om file, or the name of a bundled emulator sample")
    i.add_argument("--json", action="store_true", help="print JSON instead of a table")

    r = sub.add_parser("run", help="run a model over input files, write output files",
                       description="Run a model over .npy/.npz/.bin inputs through the pipelined executor and write "
                                   "one .npy per input file and model output: OUT/<output name>/<input stem>.npy "
                                   "(docs/cli.md).")
    r.add_argument("model", help="a .om file, or the name of a bundled emulator sample")
    r.add_argument("--input", "-i", nargs="+", required=True, metavar="PATH",
                   help="one source per model input, by position or as NAME=PATH: a .npy file, a folder of .npy or "
                        ".bin files (sorted by name); or one .npz holding every input")
    r.add_argument("--output", "-o", required=True, metavar="DIR", help="where to write the outputs")
    r.add_argument("--limit", type=_positive_int, help="only the first N input files")
    r.add_argument("--depth", type=_positive_int, help="slots per instance (default: the mode's)")
    r.add_argument("--instances", type=_positive_int, default=1, help="model instances (default: 1)")
    r.add_argument("--mode", choices=["overlap", "serial"], default="overlap", help="pipeline mode (default: overlap)")
    r.add_argument("--device", type=int, default=0, help="device id (default: 0)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv=None) -> int:
    import logging

    logging.basicConfig(format="fastexec: %(levelname)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return {"bench": bench, "info": info, "inspect": inspect, "run": run_files}[args.command](args)
    except KeyboardInterrupt:
        print("fastexec: interrupted (only complete output files were written)", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, whatever went wrong
        print(f"fastexec {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    return 0


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _resolve_model(name: str) -> str:
    if os.path.exists(name):
        if not os.path.isfile(name):
            raise FileNotFoundError(f"{name} is not a file")
        if not os.access(name, os.R_OK):
            raise PermissionError(f"{name} is not readable")
        return name
    from .emulator.samples import SAMPLES, sample_path

    if name in SAMPLES:
        return str(sample_path(name))
    raise FileNotFoundError(f"no model file {name!r} (and no bundled sample of that name: {', '.join(SAMPLES)})")


def _percentiles(series: dict) -> dict:
    keys = ("mean", "p50", "p90", "p95", "p99")
    return {k: series.get(f"{k}_ms") for k in keys}


def bench(args) -> int:
    import numpy as np

    import fastexec

    path = _resolve_model(args.model)
    info = fastexec.backend_info()
    config = None
    options = {}
    if args.stream_sync_timeout is not None:
        options["stream_sync_timeout_ms"] = args.stream_sync_timeout
    if args.event_sync_timeout is not None:
        options["event_sync_timeout_ms"] = args.event_sync_timeout
    batches = args.batches if args.batches or args.duration else 500
    with fastexec.Device(args.device) as device, fastexec.Model(path, device=device) as model:
        if options:
            config = fastexec.ExecConfig(**options)
        try:
            with fastexec.Executor(model, depth=args.depth, config=config, instances=args.instances, mode=args.mode) as ex:
                result = _measure(ex, np, args, batches)
                depth = ex.depth
        finally:
            if config is not None:
                config.close()
        if "naive" in args.compare:
            with fastexec.Model(path, device=device) as naive_model:
                result["compare"] = {"naive": _naive(naive_model, np, result, args)}
    result.update({
        "schema": BENCH_SCHEMA,
        "model": {"path": os.path.abspath(path), "batch_size": result.pop("batch_size"),
                  "inputs": [_spec(s) for s in result.pop("inputs")], "outputs": [_spec(s) for s in result.pop("outputs")]},
        "backend": {"library": info["library"], "emulator": info["emulator"], "soc": info["soc"],
                    "device_count": info["device_count"]},
        "settings": {"device": args.device, "depth": depth, "instances": args.instances, "mode": args.mode,
                     "warmup_batches": args.warmup, "batches": args.batches, "duration_s": args.duration,
                     "exec_config": options, "execute_api": "aclmdlExecuteAsyncV2" if options else "aclmdlExecuteAsync"},
    })
    if info["emulator"]:
        from . import emulator

        result["backend"]["emulator_profile"] = emulator.profile()["name"]
        result["backend"]["emulator_fast_mode"] = emulator.profile()["fast"]
    _print_summary(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0


def _spec(spec) -> dict:
    return {"name": spec.name, "shape": list(spec.shape), "dtype": str(spec.dtype), "format": spec.format, "bytes": spec.nbytes}


def _measure(ex, np, args, batches) -> dict:
    B = ex.batch_size
    chunk = 50
    rng = np.random.default_rng(0)
    inputs = [rng.integers(0, 100, (B * chunk,) + tuple(s.shape[1:])).astype(s.dtype) for s in ex.inputs]
    out = ex.run(inputs)                          # also touches the output pages once
    if args.warmup:
        ex.run([a[: B * min(args.warmup, chunk)] for a in inputs])
    ex.reset_stats()
    bar = _progress(args, None if args.duration is not None else batches)
    done = 0
    t0 = time.perf_counter()
    while True:
        if args.duration is not None:
            if time.perf_counter() - t0 >= args.duration:
                break
            n = chunk
        else:
            n = min(chunk, batches - done)
            if n <= 0:
                break
        if n == chunk:
            ex.run(inputs, out=out)
        else:
            ex.run([a[: B * n] for a in inputs])
        done += n
        if bar is not None:
            bar.update(n)
    if bar is not None:
        bar.close()
    st = ex.stats()
    wall = st["wall_s"]
    execute_mean = st["execute"]["mean_ms"]
    return {
        "batch_size": B, "inputs": ex.inputs, "outputs": ex.outputs,
        "batches": st["batches"], "samples": st["batches"] * B, "wall_s": wall,
        "throughput": {"samples_per_s": st["batches"] * B / wall, "batches_per_s": st["batches"] / wall,
                       "compute_only_samples_per_s": 1e3 * B / execute_mean if execute_mean else None},
        "latency_ms": {name: _percentiles(st[name]) for name in ("h2d", "execute", "d2h", "end_to_end", "host_enqueue",
                                                                  "host_staging")},
        "bound": {"period_ms": st["bound"]["period_ms"], "samples_per_s": st["bound"]["samples_per_s"],
                  "efficiency": st["bound"]["efficiency"]},
    }


def _progress(args, total, unit="batch"):
    if args.no_progress or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=f"{unit}es" if unit.endswith("ch") else f"{unit}s", unit=unit, leave=False)


def _naive(model, np, result, args) -> dict:
    import fastexec

    B = model.batch_size
    n = max(1, min(result["batches"], 200))
    rng = np.random.default_rng(0)
    inputs = [rng.integers(0, 100, (B * n,) + tuple(s.shape[1:])).astype(s.dtype) for s in model.inputs]
    fastexec.naive_run(model, [a[:B] for a in inputs])        # warm-up
    t0 = time.perf_counter()
    fastexec.naive_run(model, inputs)
    wall = time.perf_counter() - t0
    samples_per_s = B * n / wall
    return {"batches": n, "wall_s": wall, "samples_per_s": samples_per_s,
            "speedup": result["throughput"]["samples_per_s"] / samples_per_s}


def _print_summary(r: dict) -> None:
    m, t, b = r["model"], r["throughput"], r["bound"]
    backend = "emulator" if r["backend"]["emulator"] else "ascend"
    if r["backend"].get("emulator_profile"):
        backend += f" ({r['backend']['emulator_profile']}{', fast mode' if r['backend']['emulator_fast_mode'] else ''})"
    s = r["settings"]
    print(f"model      {m['path']}  (batch {m['batch_size']})")
    print(f"backend    {backend}, SoC {r['backend']['soc']}, {s['execute_api']}, depth {s['depth']}, "
          f"instances {s['instances']}, mode {s['mode']}")
    print(f"measured   {r['batches']} batches ({r['samples']} samples) in {r['wall_s']:.3f} s")
    print(f"throughput {t['samples_per_s']:.1f} samples/s, {t['batches_per_s']:.1f} batches/s end to end; "
          f"compute only {t['compute_only_samples_per_s']:.1f} samples/s")
    what = "the slowest stage" if s["mode"] == "overlap" else "h2d + execute + d2h"
    print(f"bound      {b['samples_per_s']:.1f} samples/s (period {b['period_ms']:.4f} ms = {what}); "
          f"reached {100 * b['efficiency']:.1f}%")
    print(f"{'latency ms':<14}{'mean':>10}{'p50':>10}{'p90':>10}{'p95':>10}{'p99':>10}")
    for name in ("h2d", "execute", "d2h", "host_enqueue", "end_to_end"):
        row = r["latency_ms"][name]
        print(f"{name:<14}" + "".join(f"{row[k]:>10.4f}" for k in ("mean", "p50", "p90", "p95", "p99")))
    naive = r.get("compare", {}).get("naive")
    if naive:
        print(f"naive loop {naive['samples_per_s']:.1f} samples/s over {naive['batches']} batches; "
              f"speedup {naive['speedup']:.2f}x")


# ---------------------------------------------------------------- info, inspect, run


def info(args) -> int:
    import fastexec

    bi = fastexec.backend_info()
    print(f"backend    {bi['backend']}{' (bundled emulator)' if bi['emulator'] else ''}")
    print(f"library    {bi['library']}")
    print(f"found by   {bi['found_by']}")
    print(f"SoC        {bi['soc']}")
    print(f"run mode   {bi['run_mode']}")
    if bi["missing_optional"]:
        print(f"missing    {', '.join(bi['missing_optional'])} (optional functions this library lacks)")
    if bi["emulator"]:
        from . import emulator

        p = emulator.profile()
        print(f"emulator   profile {p['name']}, H2D {p['h2d_gbps']:g} GB/s, D2H {p['d2h_gbps']:g} GB/s, "
              f"{'fast mode' if p['fast'] else 'modelled timing'}, checked mode {'on' if p['checked'] else 'off'}")
    print(f"devices    {bi['device_count']}")
    for d in range(bi["device_count"]):
        with fastexec.Device(d) as dev:
            free_b, total = dev.memory_info()
        print(f"  device {d}: {total / 2**30:.1f} GiB memory, {free_b / 2**30:.1f} GiB free")
    return 0


def inspect(args) -> int:
    import fastexec

    path = _resolve_model(args.model)
    with fastexec.Model(path) as model:
        desc = {"model": os.path.abspath(path), "batch_size": model.batch_size,
                "dynamic_batch": list(model.dynamic_batch),
                "inputs": [_spec(s) for s in model.inputs], "outputs": [_spec(s) for s in model.outputs]}
    if args.json:
        print(json.dumps(desc, indent=2))
        return 0
    print(f"model  {desc['model']}")
    print(f"batch  {desc['batch_size']}" + (f"  (dynamic batch gears: {', '.join(map(str, desc['dynamic_batch']))})"
                                            if desc["dynamic_batch"] else ""))
    rows = [(kind, t["name"], t["dtype"], "(" + ", ".join(map(str, t["shape"])) + ")", t["format"], str(t["bytes"]))
            for kind in ("input", "output") for t in desc[kind + "s"]]
    head = ("", "name", "dtype", "shape", "format", "bytes")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(c.ljust(w) if i < 5 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return 0


def run_files(args) -> int:
    import fastexec

    from . import batchfiles

    path = _resolve_model(args.model)
    with fastexec.Device(args.device) as device, fastexec.Model(path, device=device) as model:
        units = batchfiles.plan(model.inputs, args.input, args.limit)      # all checks before device work
        out_dirs = batchfiles.output_dirs(args.output, model.outputs)
        samples = sum(u.rows for u in units)
        bar = _progress(args, samples, unit="sample")
        t0 = time.perf_counter()
        try:
            with fastexec.Executor(model, depth=args.depth, instances=args.instances, mode=args.mode) as ex:
                counts = batchfiles.run(ex, units, model.inputs, out_dirs, bar)
                st = ex.stats()
        finally:
            if bar is not None:
                bar.close()
        wall = time.perf_counter() - t0
    print(f"model       {os.path.abspath(path)}")
    print(f"processed   {counts['files_in']} input file(s), {counts['samples']} samples, {st['batches']} batches "
          f"in {wall:.3f} s")
    print(f"throughput  {counts['samples'] / wall:.1f} samples/s, {counts['files_in'] / wall:.1f} files/s "
          f"(device pipeline {st['throughput']['samples_per_s'] or 0:.1f} samples/s, "
          f"{100 * (st['bound']['efficiency'] or 0):.1f}% of its bound)")
    print(f"wrote       {counts['files_out']} file(s) under {os.path.abspath(args.output)}")
    for stem, error in counts["failed"]:
        print(f"fastexec run: error: {stem}: not written, its batch failed: {_one_line(error)}", file=sys.stderr)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
