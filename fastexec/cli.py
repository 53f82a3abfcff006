"""The ``fastexec`` command (stdlib argparse).

    fastexec [--version] [-h]
    fastexec info [--check]
    fastexec inspect MODEL [--json]
    fastexec run MODEL --input PATH... --output DIR [--force] [--limit N] [--depth D] [--instances K]
    fastexec bench [MODEL] [--batches N | --duration S] [--depth D] [--instances K] [--json FILE|-] ...

Bad flags print the usage line and the message (exit 2); errors while working print the whole
message (exit 1); Ctrl-C exits 130.
"""
from __future__ import annotations

import argparse
import datetime
import difflib
import json
import os
import platform
import socket
import sys
import time

BENCH_SCHEMA = "fastexec.bench/2"
DEFAULT_MODEL = "resnet50-int8"
DEFAULT_DURATION_S = 3.0            # trtexec's default: three 1 s stability windows
CHUNK = 50                          # batches per Executor.run call while measuring

# stability (trtexec / perf_analyzer): windows of >= 1 s and >= 50 batches; the last three
# must agree within 10 %
WINDOW_S = 1.0
WINDOW_MIN_BATCHES = 50
STABLE_WINDOWS = 3
STABLE_SPREAD = 0.10
SHORT_RUN_S = 1.0
SHORT_RUN_BATCHES = 100


class UsageError(Exception):
    """A command line that cannot be run: printed with the command's usage line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, plus "did you mean" for unknown flags."""

    def error(self, message):
        if message.startswith("unrecognized arguments:"):
            message += _suggest_flags(self, message.split(":", 1)[1].split())
        super().error(message)


def _suggest_flags(parser, words) -> str:
    known = [o for a in parser._actions for o in a.option_strings]
    hints = []
    for w in words:
        if w.startswith("-"):
            close = difflib.get_close_matches(w.split("=", 1)[0], known, n=1, cutoff=0.6)
            if close:
                hints.append(f"{w}: did you mean {close[0]}?")
    return ("; " + "; ".join(hints)) if hints else ""


def _int(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _positive_int(text):
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def _nonnegative_int(text):
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {value})")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number greater than 0 (got {text})")
    return value


def _timeout(text):
    value = _int(text)
    if value < -1:
        raise argparse.ArgumentTypeError(f"must be -1 (forever) or a number of ms >= 0 (got {value})")
    return value


def _hw(text):
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected H,W (two integers), got {text!r}")
    return tuple(_positive_int(v) for v in parts)


def _named_shapes(text):
    """NAME:D1,D2[;NAME:...] -> {name: (d1, d2, ...)} in the order given."""
    shapes = {}
    for part in text.split(";"):
        name, sep, dims = part.rpartition(":")
        if not sep or not name or not dims:
            raise argparse.ArgumentTypeError(f"expected NAME:D1,D2[;NAME:...], got {part!r} in {text!r}")
        if name in shapes:
            raise argparse.ArgumentTypeError(f"input {name!r} is given twice in {text!r}")
        shapes[name] = tuple(_positive_int(d) for d in dims.split(","))
    return shapes


def _sizes(text):
    return [_positive_int(v) for v in text.split(",")]


def _version() -> str:
    from . import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fastexec", description="Run Ascend offline models at full speed.")
    parser.add_argument("--version", action="version", version=f"fastexec {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    b = sub.add_parser("bench", help="measure a model's throughput and latency",
                       description="Measure a model's end-to-end throughput and per-stage latency through the "
                                   "pipelined executor, against the bound its uncontended stage times imply "
                                   "(docs/bench.md explains every figure).")
    b.add_argument("model", nargs="?", default=DEFAULT_MODEL,
                   help=f"a .om file, or the name of a bundled emulator sample (default: {DEFAULT_MODEL})")
    amount = b.add_mutually_exclusive_group()
    amount.add_argument("--batches", type=_positive_int, help="measure this many batches")
    amount.add_argument("--duration", type=_positive_float, metavar="SECONDS",
                        help=f"measure for this long (default: {DEFAULT_DURATION_S:g} s)")
    b.add_argument("--warmup", type=_nonnegative_int, default=20, metavar="BATCHES",
                   help="batches run before measuring, not counted (default: 20)")
    b.add_argument("--calibration-batches", type=_nonnegative_int, default=50, metavar="N",
                   help="batches run one at a time to measure the uncontended stage times the bound is built "
                        "from (default: 50; 0: build it from the run's own, possibly contended, times)")
    b.add_argument("--depth", type=_positive_int, help="slots per instance (default: 4 in overlap mode, 2 in serial)")
    b.add_argument("--instances", type=_positive_int, default=1, help="model instances, one stream each (default: 1)")
    b.add_argument("--mode", choices=["overlap", "serial"], default="overlap",
                   help="overlap (default): copy-in, execute and copy-out on three streams, so stages of "
                        "different batches overlap; serial: back to back on one stream")
    b.add_argument("--device", type=_nonnegative_int, default=0, help="device id (default: 0)")
    b.add_argument("--stream-sync-timeout", type=_timeout, metavar="MS",
                   help="execute with aclmdlExecuteAsyncV2 and this ACL_MDL_STREAM_SYNC_TIMEOUT")
    b.add_argument("--event-sync-timeout", type=_timeout, metavar="MS",
                   help="execute with aclmdlExecuteAsyncV2 and this ACL_MDL_EVENT_SYNC_TIMEOUT")
    b.add_argument("--compare", choices=["naive"], action="append", default=[],
                   help="also run the naive synchronous loop (per-call allocation, sync copies, aclmdlExecute)")
    b.add_argument("--json", metavar="FILE", help="write the results as JSON (docs/bench.md); '-': to stdout, "
                                                  "the summary then goes to stderr")
    b.add_argument("--export-times", metavar="FILE",
                   help="write every measured batch's raw times (ms) as CSV")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    dym = b.add_argument_group("dynamic models (ais_bench's spellings --dymBatch, --dymHW, --dymDims, --dymShape and "
                               "--outputSize are accepted too)")
    shape = dym.add_mutually_exclusive_group()
    shape.add_argument("--dym-batch", "--dymBatch", type=_positive_int, metavar="N",
                       help="dynamic-batch model: batches of N rows (run at the smallest gear >= N)")
    shape.add_argument("--dym-hw", "--dymHW", type=_hw, metavar="H,W", help="dynamic-HW model: the height/width gear")
    shape.add_argument("--dym-dims", "--dymDims", type=_named_shapes, metavar="NAME:D1,D2[;NAME:...]",
                       help="dynamic-dims model: every input's shape of one gear")
    shape.add_argument("--dym-shape", "--dymShape", type=_named_shapes, metavar="NAME:D1,D2[;NAME:...]",
                       help="dynamic-shape model: every input's shape, within the model's ranges")
    dym.add_argument("--output-size", "--outputSize", type=_sizes, metavar="N[,N...]",
                     help="bytes of each output buffer (one value for all outputs, or one per output) where the model "
                          "gives none or too little (dynamic shapes)")

    inf = sub.add_parser("info", help="the ACL runtime in use: backend, library, SoC, devices, memory",
                         description="Show which ACL runtime fastexec uses and the devices it sees.")
    inf.add_argument("--check", action="store_true",
                     help="also run a quick self-test of the runtime: device, context, streams, events, pinned and "
                          "device memory, copies both ways (with their bandwidth)")
    inf.add_argument("--device", type=_nonnegative_int, default=0, help="device for --check (default: 0)")

    i = sub.add_parser("inspect", help="a model's inputs, outputs, dynamic gears and ranges",
                       description="Show a model's inputs and outputs (name, dtype, shape, format, bytes) and gears.")
    i.add_argument("model", help="a .om file, or the name of a bundled emulator sample")
    i.add_argument("--json", action="store_true", help="print JSON instead of a table")

    r = sub.add_parser("run", help="run a model over input files, write output files",
                       description="Run a model over .npy/.npz/.bin inputs through the pipelined executor and write "
                                   "one .npy per input file and model output: OUT/<output name>/<input stem>.npy, "
                                   "and a manifest, OUT/" + MANIFEST + " (docs/cli.md).")
    r.add_argument("model", help="a .om file, or the name of a bundled emulator sample")
    r.add_argument("--input", "-i", nargs="+", required=True, metavar="PATH",
                   help="one source per model input, by position or as NAME=PATH: a .npy file, a folder of .npy or "
                        ".bin files (sorted by name); or one .npz holding every input")
    r.add_argument("--output", "-o", required=True, metavar="DIR",
                   help="where to write the outputs: a new or empty folder")
    r.add_argument("--force", action="store_true",
                   help="first remove what an earlier run's manifest in DIR lists (refused if DIR holds anything else)")
    r.add_argument("--limit", type=_positive_int, help="only the first N input files")
    r.add_argument("--depth", type=_positive_int, help="slots per instance (default: the mode's)")
    r.add_argument("--instances", type=_positive_int, default=1, help="model instances (default: 1)")
    r.add_argument("--mode", choices=["overlap", "serial"], default="overlap", help="pipeline mode (default: overlap)")
    r.add_argument("--device", type=_nonnegative_int, default=0, help="device id (default: 0)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


MANIFEST = "fastexec-run.json"


def main(argv=None) -> int:
    import logging

    logging.basicConfig(format="fastexec: %(levelname)s: %(message)s")
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args, extra = parser.parse_known_args(argv)
    sub = parser._subparsers._group_actions[0].choices.get(args.command) if args.command else None
    if extra:
        (sub or parser).error("unrecognized arguments: " + " ".join(extra))
    if args.command is None:
        parser.print_help()
        return 0
    args.argv = argv
    try:
        return {"bench": bench, "info": info, "inspect": inspect, "run": run_files}[args.command](args)
    except UsageError as exc:
        sub.error(str(exc))
    except KeyboardInterrupt:
        print("fastexec: interrupted (only complete output files were written)", file=sys.stderr)
        return 130
    except Exception as exc:  # the whole message, whatever went wrong
        print(f"fastexec {args.command}: error: {_message(exc)}", file=sys.stderr)
        return 1
    return 0


def _message(exc: BaseException) -> str:
    """The error's type and its whole message (every line: a runtime that was not found lists
    every place tried)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_one_line = _message     # the name other modules used


def _check_writable(path: str, what: str) -> None:
    """Fail now, before any work, if `path` (a file to be written) cannot be."""
    if path == "-":
        return
    if os.path.isdir(path):
        raise UsageError(f"{what} {path}: is a folder")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{what} {path}: no folder {parent}")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UsageError(f"{what} {path}: not writable")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: cannot create files in {parent}")


def _resolve_model(name: str) -> str:
    if os.path.exists(name):
        if not os.path.isfile(name):
            raise FileNotFoundError(f"{name} is not a file")
        if not os.access(name, os.R_OK):
            raise PermissionError(f"{name} is not readable")
        _refuse_binary_on_emulator(name)
        return name
    from .emulator.samples import SAMPLES, sample_path

    if name in SAMPLES:
        return str(sample_path(name))
    close = difflib.get_close_matches(name, list(SAMPLES), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise FileNotFoundError(f"no model file {name!r} (and no bundled sample of that name: {', '.join(SAMPLES)}){hint}")


def _refuse_binary_on_emulator(path: str) -> None:
    with open(path, "rb") as f:
        head = f.read(4096)
    if b"\0" not in head:
        return
    import fastexec

    if fastexec.backend_info()["emulator"]:
        raise ValueError(f"{path} is a binary model (a real ATC-compiled .om, by the look of it); the bundled ACL "
                         "emulator runs only its own text model format (docs/model-format.md). A real model needs "
                         "the CANN runtime and an Ascend card (FASTEXEC_BACKEND=ascend).")


def _stats_row(series: dict) -> dict:
    keys = ("mean", "min", "p50", "p90", "p95", "p99", "max")
    return {k: series.get(f"{k}_ms") for k in keys}


def _host_facts() -> dict:
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def bench(args) -> int:
    import numpy as np

    import fastexec

    for path, what in ((args.json, "--json"), (args.export_times, "--export-times")):
        if path is not None:
            _check_writable(path, what)
    if args.export_times == "-":
        raise UsageError("--export-times: a file name is needed ('-' is for --json)")
    out = sys.stderr if args.json == "-" else sys.stdout
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    path = _resolve_model(args.model)
    info = fastexec.backend_info()
    emu = None
    if info["emulator"]:
        from . import emulator as emu
    config = None
    options = {}
    if args.stream_sync_timeout is not None:
        options["stream_sync_timeout_ms"] = args.stream_sync_timeout
    if args.event_sync_timeout is not None:
        options["event_sync_timeout_ms"] = args.event_sync_timeout
    duration = args.duration if args.batches is None else None
    if args.batches is None and duration is None:
        duration = DEFAULT_DURATION_S
    with fastexec.Device(args.device) as device, fastexec.Model(path, device=device) as model:
        dynamic, batch = _dynamic_batch(model, np, args)
        if dynamic is not None and "naive" in args.compare:
            raise UsageError("--compare naive runs full batches at the model's largest gear; it does not take "
                             "--dym-batch, --dym-hw, --dym-dims or --dym-shape")
        if options:
            config = fastexec.ExecConfig(**options)
        try:
            with fastexec.Executor(model, depth=args.depth, config=config, instances=args.instances, mode=args.mode,
                                   output_size=args.output_size) as ex:
                result = _measure(ex, np, args, args.batches, duration, emu, batch)
                depth = ex.depth
        finally:
            if config is not None:
                config.close()
        if "naive" in args.compare and not result["interrupted"] and result["batches"]:
            with fastexec.Model(path, device=device) as naive_model:
                result["compare"] = {"naive": _naive(naive_model, np, result, args)}
    result.update({
        "schema": BENCH_SCHEMA,
        "tool": {"name": "fastexec", "version": fastexec.__version__},
        "started_at": started,
        "argv": ["fastexec"] + list(args.argv),
        "host": _host_facts(),
        "model": {"path": os.path.abspath(path), "batch_size": result.pop("batch_size"),
                  "inputs": [_spec(s) for s in result.pop("inputs")], "outputs": [_spec(s) for s in result.pop("outputs")]},
        "backend": {"library": info["library"], "emulator": info["emulator"], "soc": info["soc"],
                    "device_count": info["device_count"]},
        "settings": {"device": args.device, "depth": depth, "instances": args.instances, "mode": args.mode,
                     "warmup_batches": args.warmup, "calibration_batches": args.calibration_batches,
                     "batches": args.batches, "duration_s": duration,
                     "exec_config": options, "execute_api": "aclmdlExecuteAsyncV2" if options else "aclmdlExecuteAsync",
                     "dynamic": dynamic},
    })
    if emu is not None:
        prof = emu.profile()
        result["backend"]["emulator_profile"] = prof["name"]
        result["backend"]["emulator_fast_mode"] = prof["fast"]
    result["warnings"] = _warnings(result)
    _print_summary(result, out)
    if args.json:
        text = json.dumps(result, indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            with open(args.json, "w") as f:
                f.write(text)
    return 130 if result["interrupted"] else 0


def _dynamic_batch(model, np, args):
    """(settings.dynamic, one batch) for --dym-batch / --dym-hw / --dym-dims / --dym-shape:
    what the JSON records of the gear or shape, and the batch every measured batch repeats;
    (None, None) without them. UsageError when the option does not fit the model."""
    kind = model.dynamic_kind
    names = [s.name for s in model.inputs]
    rng = np.random.default_rng(0)

    def batch_of(shapes):
        return [rng.integers(0, 100, shape).astype(s.dtype) for s, shape in zip(model.inputs, shapes)]

    if args.dym_batch is not None:
        if kind != "dynamic_batch":
            raise UsageError(f"--dym-batch: {model.source} is not a dynamic-batch model ({kind or 'static'})")
        n = args.dym_batch
        gears = sorted(model.dynamic_batch)
        if n > gears[-1]:
            raise UsageError(f"--dym-batch: {n} rows is more than the largest gear; the gears are {', '.join(map(str, gears))}")
        gear = next(g for g in gears if g >= n)
        shapes = [(n,) + tuple(s.shape[1:]) for s in model.inputs]
        return {"kind": kind, "samples_per_batch": n, "gear": gear,
                "shapes": {k: list(v) for k, v in zip(names, shapes)}}, batch_of(shapes)
    if args.dym_hw is not None:
        if kind != "dynamic_hw":
            raise UsageError(f"--dym-hw: {model.source} is not a dynamic-HW model ({kind or 'static'})")
        h, w = args.dym_hw
        if (h, w) not in model.dynamic_hw:
            raise UsageError(f"--dym-hw: {h},{w} is no gear of the model; the gears are "
                             + ", ".join(f"{a},{b}" for a, b in model.dynamic_hw))
        shapes = []
        for s in model.inputs:
            shape = list(s.shape)
            axes = [i for i, d in enumerate(shape) if d < 0]
            if axes:
                shape[axes[0]], shape[axes[-1]] = h, w
            shapes.append(tuple(shape))
        return {"kind": kind, "samples_per_batch": shapes[0][0], "gear": [h, w],
                "shapes": {k: list(v) for k, v in zip(names, shapes)}}, batch_of(shapes)
    given = args.dym_dims if args.dym_dims is not None else args.dym_shape
    if given is not None:
        option = "--dym-dims" if args.dym_dims is not None else "--dym-shape"
        want = "dynamic_dims" if args.dym_dims is not None else "dynamic_shape"
        if kind != want:
            raise UsageError(f"{option}: {model.source} is not a {want.replace('_', '-')} model ({kind or 'static'})")
        unknown = [k for k in given if k not in names]
        missing = [k for k in names if k not in given]
        if unknown or missing:
            raise UsageError(f"{option}: give a shape for every input ({', '.join(names)}); "
                             + (f"unknown {unknown[0]!r}" if unknown else f"missing {missing[0]!r}"))
        shapes = [given[k] for k in names]
        return {"kind": kind, "samples_per_batch": shapes[0][0] if shapes[0] else 1,
                "gear": None, "shapes": {k: list(v) for k, v in zip(names, shapes)}}, batch_of(shapes)
    if kind in ("dynamic_hw", "dynamic_dims", "dynamic_shape"):
        flag = {"dynamic_hw": "--dym-hw H,W", "dynamic_dims": "--dym-dims NAME:D1,D2[;...]",
                "dynamic_shape": "--dym-shape NAME:D1,D2[;...]"}[kind]
        raise UsageError(f"{model.source} is a {kind.replace('_', '-')} model: give the shape to measure with {flag}")
    return None, None


def _measure(ex, np, args, batches, duration, emu, batch=None) -> dict:
    """The measured run: CHUNK full batches per run() call, or, with a dynamic `batch` (its
    gear or shape), CHUNK copies of it per imap() call."""
    B = ex.batch_size if batch is None else (batch[0].shape[0] if batch[0].ndim else 1)
    if batch is None:
        rng = np.random.default_rng(0)
        inputs = [rng.integers(0, 100, (B * CHUNK,) + tuple(s.shape[1:])).astype(s.dtype) for s in ex.inputs]
        out = ex.run(inputs)                          # also touches the output pages once

        def run_chunk(n):
            if n == CHUNK:
                ex.run(inputs, out=out)
            else:
                ex.run([a[: B * n] for a in inputs])
    else:
        try:
            ex.run(batch)                             # a shape the model refuses fails here, named
        except ValueError as exc:
            raise UsageError(str(exc)) from None

        def run_chunk(n):
            for _ in ex.imap([batch] * n):
                pass
    left = args.warmup
    while left > 0:
        n = min(left, CHUNK)
        run_chunk(n)
        left -= n
    calibration = ex.calibrate(args.calibration_batches, inputs=batch) if args.calibration_batches else None
    times_file = None
    if args.export_times:
        times_file = open(args.export_times, "w")
    ex.reset_stats()
    if times_file is not None:
        ex.record_times(True)
    overruns0 = emu.counters()["overruns"] if emu is not None else None
    bar = _progress(args, None if duration is not None else batches)
    done = 0
    marks = []                                    # (seconds since start, batches done) after each chunk
    interrupted = False
    exported = dropped = 0
    t0 = time.perf_counter()
    try:
        while True:
            if duration is not None:
                if time.perf_counter() - t0 >= duration:
                    break
                n = CHUNK
            else:
                n = min(CHUNK, batches - done)
                if n <= 0:
                    break
            run_chunk(n)
            done += n
            marks.append((time.perf_counter() - t0, done))
            if times_file is not None:
                exported, dropped = _export(ex, times_file, exported, dropped)
            if bar is not None:
                bar.update(n)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    st = ex.stats()
    if times_file is not None:
        exported, dropped = _export(ex, times_file, exported, dropped)
        times_file.close()
    wall = st["wall_s"]
    b = st["bound"]
    return {
        "batch_size": ex.batch_size, "inputs": ex.inputs, "outputs": ex.outputs, "interrupted": interrupted,
        "batches": st["batches"], "samples": st["batches"] * B, "wall_s": wall,
        "throughput": {"samples_per_s": st["batches"] * B / wall if wall else None,
                       "batches_per_s": st["batches"] / wall if wall else None,
                       "compute_only_samples_per_s": (B * 1e3 / st["calibration"]["execute_ms"]
                                                      if batch is not None and st["calibration"]
                                                      and st["calibration"]["execute_ms"] else
                                                      b["compute_only_samples_per_s"])},
        "drains": st["drains"],
        "device_utilization": b["device_utilization"],
        "latency_ms": {name: _stats_row(st[name]) for name in ("h2d", "execute", "d2h", "end_to_end", "host_enqueue",
                                                                "host_staging")},
        "calibration": calibration,
        "bound": {"period_ms": b["period_ms"],
                  "samples_per_s": B * 1e3 / b["period_ms"] if b["period_ms"] else b["samples_per_s"],
                  "efficiency": b["efficiency"],
                  "source": b["source"], "engines": {"h2d": 1, "compute": 1, "d2h": 1}},
        "stability": _stability(marks, B),
        "emulator_overruns": emu.counters()["overruns"] - overruns0 if emu is not None else None,
        "export_times": ({"path": os.path.abspath(args.export_times), "batches": exported, "dropped": dropped}
                         if args.export_times else None),
    }


TIMES_COLUMNS = ("h2d", "execute", "d2h", "end_to_end", "host_staging", "host_enqueue")


def _export(ex, f, exported, dropped):
    t = ex.take_times()
    if exported == 0 and f.tell() == 0:
        f.write("batch," + ",".join(f"{c}_ms" for c in TIMES_COLUMNS) + "\n")
    cols = [t[c] for c in TIMES_COLUMNS]
    for j in range(len(cols[0])):
        f.write(f"{exported + j}," + ",".join(f"{c[j]:.6f}" for c in cols) + "\n")
    f.flush()
    return exported + len(cols[0]), dropped + t["dropped"]


def _stability(marks, batch_size) -> dict:
    """Cut the measured phase (chunk marks) into windows of >= WINDOW_S and >= WINDOW_MIN_BATCHES;
    stable when the last STABLE_WINDOWS windows' throughputs agree within STABLE_SPREAD."""
    windows = []
    t_start, b_start = 0.0, 0
    cut = WINDOW_S                    # windows end on a 1 s grid, so lateness does not accumulate
    for t, b in marks:
        if t >= cut and b - b_start >= WINDOW_MIN_BATCHES:
            windows.append({"start_s": t_start, "seconds": t - t_start, "batches": b - b_start,
                            "samples_per_s": (b - b_start) * batch_size / (t - t_start)})
            t_start, b_start = t, b
            while cut <= t:
                cut += WINDOW_S
    out = {"window_s": WINDOW_S, "window_min_batches": WINDOW_MIN_BATCHES, "windows": windows,
           "spread": None, "stable": None,
           "verdict": f"too few windows ({len(windows)} of at least {WINDOW_S:g} s and {WINDOW_MIN_BATCHES} batches; "
                      f"{STABLE_WINDOWS} needed): run longer to judge stability"}
    if len(windows) >= STABLE_WINDOWS:
        last = [w["samples_per_s"] for w in windows[-STABLE_WINDOWS:]]
        spread = (max(last) - min(last)) / (sum(last) / len(last))
        out["spread"] = spread
        out["stable"] = spread <= STABLE_SPREAD
        out["verdict"] = (f"{'stable' if out['stable'] else 'unstable'}: the last {STABLE_WINDOWS} windows agree within "
                          f"{100 * spread:.1f}% (limit {100 * STABLE_SPREAD:g}%)")
    return out


def _warnings(r) -> list:
    w = []
    lat, cal = r["latency_ms"], r["calibration"]
    if r["interrupted"]:
        w.append("interrupted: the figures cover only the batches measured before Ctrl-C")
    if r["wall_s"] < SHORT_RUN_S or r["batches"] < SHORT_RUN_BATCHES:
        w.append(f"too short: {r['batches']} batches in {r['wall_s']:.3f} s (under {SHORT_RUN_S:g} s or "
                 f"{SHORT_RUN_BATCHES} batches); its figures do not mean much")
    stages = ({"h2d": cal["h2d_ms"], "execute": cal["execute_ms"], "d2h": cal["d2h_ms"]} if cal else
              {k: lat[k]["mean"] for k in ("h2d", "execute", "d2h")} if r["batches"] else None)
    if stages:
        compute = stages["execute"]
        enq = lat["host_enqueue"]["mean"]
        if enq is not None and compute and enq > 0.8 * compute:
            w.append(f"enqueue-bound: the host takes {enq:.4f} ms to queue a batch, more than 80% of its "
                     f"{compute:.4f} ms of compute; the host, not the device, sets the pace")
        slowest = max(stages, key=stages.get)
        if slowest != "execute":
            w.append(f"copy-bound: {slowest} ({stages[slowest]:.4f} ms) is the slowest stage, not execute "
                     f"({compute:.4f} ms)")
    if r.get("emulator_overruns"):
        w.append(f"the emulator reported {r['emulator_overruns']} overruns: the host's real work took longer than "
                 "the modelled device time, so the run measured the host, not the model")
    if not r["stability"]["stable"]:
        w.append(r["stability"]["verdict"])
    if r.get("export_times") and r["export_times"]["dropped"]:
        w.append(f"--export-times: {r['export_times']['dropped']} batches' times were dropped (log full)")
    return w


def _spec(spec) -> dict:
    return {"name": spec.name, "shape": list(spec.shape), "dtype": str(spec.dtype), "format": spec.format, "bytes": spec.nbytes,
            "range": [list(r) for r in spec.shape_range] if spec.shape_range is not None else None}


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


def _print_summary(r: dict, out=sys.stdout) -> None:
    def p(text=""):
        print(text, file=out)

    m, t, b = r["model"], r["throughput"], r["bound"]
    backend = "emulator" if r["backend"]["emulator"] else "ascend"
    if r["backend"].get("emulator_profile"):
        backend += f" ({r['backend']['emulator_profile']}{', fast mode' if r['backend']['emulator_fast_mode'] else ''})"
    s = r["settings"]
    p(f"fastexec   {r['tool']['version']}, started {r['started_at']}")
    p(f"model      {m['path']}  (batch {m['batch_size']})")
    p(f"backend    {backend}, SoC {r['backend']['soc']}, {s['execute_api']}, depth {s['depth']}, "
      f"instances {s['instances']}, mode {s['mode']}")
    dyn = s.get("dynamic")
    if dyn:
        p(f"dynamic    {dyn['kind']}: {dyn['samples_per_batch']} samples per batch"
          + (f", gear {dyn['gear']}" if dyn["gear"] is not None else "")
          + ", shapes " + "; ".join(f"{k} ({', '.join(map(str, v))})" for k, v in dyn["shapes"].items())
          + f", {r.get('drains', 0)} drains")
    p(f"measured   {r['batches']} batches ({r['samples']} samples) in {r['wall_s']:.3f} s"
      + ("  (interrupted)" if r["interrupted"] else ""))
    if not r["batches"]:
        p("nothing measured")
    else:
        p(f"throughput {t['samples_per_s']:.1f} samples/s, {t['batches_per_s']:.1f} batches/s end to end")
        cal = r["calibration"]
        if cal:
            p(f"calibrated {cal['batches']} batches one at a time: h2d {cal['h2d_ms']:.4f}, execute "
              f"{cal['execute_ms']:.4f}, d2h {cal['d2h_ms']:.4f} ms (uncontended)")
        what = "the slowest stage" if s["mode"] == "overlap" else "the slowest stage, or h2d + execute + d2h per instance"
        if b["samples_per_s"] and b["efficiency"] is not None:
            p(f"bound      {b['samples_per_s']:.1f} samples/s (period {b['period_ms']:.4f} ms = {what}, one engine of "
              f"each kind, from the {b['source']}); reached {100 * b['efficiency']:.1f}%")
        else:
            p("bound      none: the stage times are 0 (fast mode?)")
        if t["compute_only_samples_per_s"] and r["device_utilization"] is not None:
            p(f"compute    {t['compute_only_samples_per_s']:.1f} samples/s compute only; compute engine busy "
              f"{100 * r['device_utilization']:.1f}% of the run")
        cols = ("mean", "min", "p50", "p90", "p95", "p99", "max")
        p(f"{'latency ms':<14}" + "".join(f"{c:>10}" for c in cols))
        for name in ("h2d", "execute", "d2h", "host_enqueue", "end_to_end"):
            row = r["latency_ms"][name]
            p(f"{name:<14}" + "".join(f"{row[k]:>10.4f}" for k in cols))
    p(f"stability  {r['stability']['verdict']}")
    naive = r.get("compare", {}).get("naive")
    if naive:
        p(f"naive loop {naive['samples_per_s']:.1f} samples/s over {naive['batches']} batches; "
          f"speedup {naive['speedup']:.2f}x")
    for w in r["warnings"]:
        p(f"warning: {w}")


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
    if args.check:
        return _self_test(args.device)
    return 0


def _self_test(device_id: int) -> int:
    """A quick check that the runtime works: each step printed with its result; exit 1 on the
    first failure (its whole message shown)."""
    import numpy as np

    import fastexec

    print(f"self-test  device {device_id}")
    nbytes = 16 << 20
    step = "open the device (aclrtSetDevice, a context)"
    try:
        with fastexec.Device(device_id) as dev:
            _ok(step)
            step = "create a stream and two events"
            with fastexec.Stream(dev) as stream, fastexec.Event(dev) as e0, fastexec.Event(dev) as e1:
                _ok(step)
                step = f"allocate {nbytes >> 20} MiB of pinned host memory and of device memory"
                with fastexec.PinnedBuffer(dev, nbytes) as pinned, fastexec.DeviceBuffer(dev, nbytes) as buf:
                    _ok(step)
                    host = np.frombuffer(pinned, dtype=np.uint8)
                    pattern = np.arange(nbytes, dtype=np.uint32).view(np.uint8)[:nbytes]
                    host[:] = pattern
                    step = "copy host to device (async, pinned, timed by events)"
                    e0.record(stream)
                    buf.copy_from_host(pinned, stream)
                    e1.record(stream)
                    stream.synchronize()
                    ms = e1.elapsed_ms(e0)
                    _ok(step, _bandwidth(nbytes, ms))
                    step = "copy device to host and compare"
                    host[:] = 0
                    e0.record(stream)
                    buf.copy_to_host(pinned, stream)
                    e1.record(stream)
                    stream.synchronize()
                    ms = e1.elapsed_ms(e0)
                    same = np.array_equal(host, pattern)
                    del host                      # the pinned buffer closes only when nothing views it
                    if not same:
                        raise RuntimeError("the bytes copied back differ from the bytes copied in")
                    _ok(step, _bandwidth(nbytes, ms))
                step = "free the memory, streams and events"
            _ok(step)
            step = "close the device"
        _ok(step)
    except Exception as exc:
        print(f"  FAILED  {step}: {_message(exc)}")
        return 1
    print("self-test  passed")
    return 0


def _ok(step, detail=""):
    print(f"  ok      {step}{': ' + detail if detail else ''}")


def _bandwidth(nbytes, ms) -> str:
    return f"{nbytes / (ms / 1e3) / 1e9:.2f} GB/s ({ms:.3f} ms)" if ms > 0 else f"{ms:.3f} ms"


def inspect(args) -> int:
    import fastexec

    path = _resolve_model(args.model)
    with fastexec.Model(path) as model:
        desc = {"model": os.path.abspath(path), "batch_size": model.batch_size,
                "dynamic_kind": model.dynamic_kind,
                "dynamic_batch": list(model.dynamic_batch),
                "dynamic_hw": [list(g) for g in model.dynamic_hw],
                "dynamic_dims": [{k: list(v) for k, v in g.items()} for g in model.dynamic_dims],
                "inputs": [_spec(s) for s in model.inputs], "outputs": [_spec(s) for s in model.outputs]}
    if args.json:
        print(json.dumps(desc, indent=2))
        return 0
    print(f"model  {desc['model']}")
    print(f"batch  {desc['batch_size']}" + (f"  (dynamic batch gears: {', '.join(map(str, desc['dynamic_batch']))})"
                                            if desc["dynamic_batch"] else ""))
    if desc["dynamic_hw"]:
        print("dynamic height/width gears: " + ", ".join(f"{h}x{w}" for h, w in desc["dynamic_hw"]))
    for k, gear in enumerate(desc["dynamic_dims"]):
        print(f"dynamic dims gear {k}: " + " ".join(f"{n} ({', '.join(map(str, v))})" for n, v in gear.items()))
    if desc["dynamic_kind"] == "dynamic_shape":
        print("dynamic shape: each -1 dim within the range shown")

    def ranges(t):
        if t["range"] is None:
            return "?"
        return "(" + ", ".join(str(lo) if lo == hi else f"{lo}..{hi}" for lo, hi in t["range"]) + ")"

    rows = [(kind, t["name"], t["dtype"], "(" + ", ".join(map(str, t["shape"])) + ")", ranges(t), t["format"], str(t["bytes"]))
            for kind in ("input", "output") for t in desc[kind + "s"]]
    head = ("", "name", "dtype", "shape", "range", "format", "bytes")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(c.ljust(w) if i < 6 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return 0


def run_files(args) -> int:
    import fastexec

    from . import batchfiles

    batchfiles.prepare_output(args.output, args.force, MANIFEST)      # before any work
    path = _resolve_model(args.model)
    with fastexec.Device(args.device) as device, fastexec.Model(path, device=device) as model:
        units = batchfiles.plan(model.inputs, args.input, args.limit)      # all checks before device work
        out_dirs = batchfiles.output_dirs(args.output, model.outputs)
        manifest = {"schema": "fastexec.run/1", "tool": {"name": "fastexec", "version": fastexec.__version__},
                    "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "argv": ["fastexec"] + list(args.argv), "model": os.path.abspath(path),
                    "options": {"inputs": list(args.input), "limit": args.limit, "depth": args.depth,
                                "instances": args.instances, "mode": args.mode, "device": args.device},
                    "complete": False,
                    "folders": sorted(os.path.relpath(d, args.output) for d in out_dirs),
                    "files": batchfiles.planned_files(args.output, units, out_dirs)}
        batchfiles.write_manifest(args.output, MANIFEST, manifest)      # lists what this run may write
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
    manifest.update({"complete": True, "files_written": counts["files_out"],
                     "failed": [stem for stem, _ in counts["failed"]]})
    batchfiles.write_manifest(args.output, MANIFEST, manifest)
    print(f"model       {os.path.abspath(path)}")
    print(f"processed   {counts['files_in']} input file(s), {counts['samples']} samples, {st['batches']} batches "
          f"in {wall:.3f} s")
    pipeline = f"device pipeline {st['throughput']['samples_per_s'] or 0:.1f} samples/s"
    if st["batches"] >= SHORT_RUN_BATCHES and st["bound"]["efficiency"] is not None:
        pipeline += f", {100 * st['bound']['efficiency']:.1f}% of its bound"
    else:
        pipeline += f"; too few batches (under {SHORT_RUN_BATCHES}) to compare with its bound"
    print(f"throughput  {counts['samples'] / wall:.1f} samples/s, {counts['files_in'] / wall:.1f} files/s ({pipeline})")
    print(f"wrote       {counts['files_out']} file(s) under {os.path.abspath(args.output)} (listed in {MANIFEST})")
    for stem, error in counts["failed"]:
        print(f"fastexec run: error: {stem}: not written, its batch failed: {_message(error)}", file=sys.stderr)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
