"""The ``fastexec`` command (stdlib argparse).

    fastexec [--version] [-h]
    fastexec info [--check]
    fastexec inspect MODEL [--json]
    fastexec run [MODEL] --input PATH... --output DIR [--force | --resume] [--outfmt F] [--json FILE] ...
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


def _device_ids(text):
    """--device: one id, or several separated by commas (distinct)."""
    ids = [_nonnegative_int(part.strip()) for part in text.split(",")]
    if len(set(ids)) != len(ids):
        raise argparse.ArgumentTypeError(f"lists a device twice (got {text!r})")
    return ids


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


def _outfmt(text):
    value = text.lower()
    if value not in ("npy", "bin", "txt"):
        raise argparse.ArgumentTypeError(f"must be npy, bin or txt (got {text!r})")
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
    b.add_argument("--instances", type=_positive_int, default=1,
                   help="model instances per device, one stream each (default: 1)")
    b.add_argument("--mode", choices=["overlap", "serial"], default="overlap",
                   help="overlap (default): copy-in, execute and copy-out on three streams, so stages of "
                        "different batches overlap; serial: back to back on one stream")
    b.add_argument("--device", type=_device_ids, default=[0], metavar="ID[,ID...]",
                   help="device id, or several separated by commas: one executor spreads the batches over them, "
                        "each with its own engines and instances (default: 0)")
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
    b.add_argument("--trace", metavar="FILE",
                   help="write every measured batch's timeline (device stages per stream, host steps) as Chrome "
                        "trace event JSON, for Perfetto or chrome://tracing (docs/executor.md)")
    b.add_argument("--plot", metavar="FILE.png",
                   help="draw the stage occupancy of a window of measured batches and a latency histogram as a "
                        "PNG (needs matplotlib: pip install fastexec[plot])")
    b.add_argument("--plot-batches", type=_positive_int, default=16, metavar="N",
                   help="batches in the --plot window: the N consecutive ones that took the least time (default: 16)")
    _acl_json_option(b)
    b.add_argument("--aipp-config", metavar="FILE", help="the dynamic AIPP parameters of a model with a dynamic AIPP input: an ATC AIPP config file "
                        "(aipp_op { key : value ... }, as ais_bench's --aipp_config and ATC's --insert_op_conf take)")
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
                       description="Run a model over .npy/.npz/.bin inputs through the pipelined executor, the files "
                                   "read and written on threads beside the device, and write one file per input file "
                                   "and model output: OUT/<output name>/<input stem>.npy (or .bin, .txt), and a "
                                   "manifest, OUT/" + MANIFEST + " (docs/cli.md).")
    r.add_argument("model", nargs="?", default=DEFAULT_MODEL,
                   help=f"a .om file, or the name of a bundled emulator sample (default: {DEFAULT_MODEL}, as for bench)")
    r.add_argument("--input", "-i", nargs="+", required=True, metavar="PATH",
                   help="one source per model input, by position or as NAME=PATH: a .npy file, a folder of .npy or "
                        ".bin files (sorted by name); or one .npz holding every input")
    r.add_argument("--output", "-o", required=True, metavar="DIR",
                   help="where to write the outputs: a new or empty folder")
    r.add_argument("--force", action="store_true",
                   help="first remove what an earlier run's manifest in DIR lists (refused if DIR holds anything else)")
    r.add_argument("--resume", action="store_true",
                   help="continue the run whose manifest is in DIR: skip the inputs it lists as complete (refused if "
                        "the model, inputs, --limit or --outfmt differ)")
    r.add_argument("--outfmt", type=_outfmt, default="npy", metavar="{npy,bin,txt}",
                   help="output files: npy (default), bin (raw bytes) or txt (text, one row per line); ais_bench's "
                        "NPY/BIN/TXT accepted")
    r.add_argument("--json", metavar="FILE",
                   help="write the run's summary as JSON (bench's figures plus `files`, the input-to-output map; "
                        "docs/cli.md); '-': to stdout")
    r.add_argument("--limit", type=_positive_int, help="only the first N input files")
    r.add_argument("--depth", type=_positive_int,
                   help="slots per instance (default: the mode's plus one per reader thread, which fill slots)")
    r.add_argument("--instances", type=_positive_int, default=1, help="model instances per device (default: 1)")
    r.add_argument("--mode", choices=["overlap", "serial"], default="overlap", help="pipeline mode (default: overlap)")
    r.add_argument("--device", type=_device_ids, default=[0], metavar="ID[,ID...]",
                   help="device id, or several separated by commas to spread the batches over (default: 0)")
    r.add_argument("--trace", metavar="FILE",
                   help="write every batch's timeline as Chrome trace event JSON (docs/executor.md)")
    _acl_json_option(r)
    r.add_argument("--aipp-config", metavar="FILE", help="the dynamic AIPP parameters of a model with a dynamic AIPP input: an ATC AIPP config file "
                        "(aipp_op { key : value ... }, as ais_bench's --aipp_config and ATC's --insert_op_conf take)")
    r.add_argument("--calibration-batches", type=_nonnegative_int, default=50, metavar="N",
                   help="batches of zeros run one at a time first, for the bound the summary compares with "
                        "(default: 50; 0: the bound from the run's own stage times)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _acl_json_option(p):
    p.add_argument("--acl-json", metavar="PATH",
                   help="the acl.json aclInit reads (dump, profiler, ... sections), like FASTEXEC_ACL_CONFIG; "
                        "aclInit runs once per process (docs/executor.md, \"ACL configuration\")")


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
    except KeyboardInterrupt as exc:
        what = "terminated" if _terminated(exc) else "interrupted"
        print(f"fastexec: {what} (only complete output files were written)", file=sys.stderr)
        return 143 if what == "terminated" else 130
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


def _aipp_config(path):
    """The AippConfig of --aipp-config FILE (None without it); a bad file is a usage error."""
    if path is None:
        return None
    from .aipp import AippError, parse_aipp_config

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise UsageError(f"--aipp-config: cannot read {path}: {exc.strerror or exc}") from None
    try:
        return parse_aipp_config(text, path)
    except AippError as exc:
        raise UsageError(f"--aipp-config: {exc}") from None


def _check_aipp(model, cfg, compare=()):
    """Usage errors for --aipp-config and the model's AIPP, before any device work."""
    if model.aipp_input_index >= 0 and cfg is None:
        raise UsageError(f"{model.source} has a dynamic AIPP input: give its parameters with --aipp-config FILE")
    if model.aipp_input_index < 0 and cfg is not None:
        raise UsageError(f"--aipp-config: {model.source} has no dynamic AIPP input")
    if cfg is not None and "naive" in compare:
        raise UsageError("--compare naive runs Model.execute, which does not drive dynamic AIPP")


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

    for path, what in ((args.json, "--json"), (args.export_times, "--export-times"), (args.trace, "--trace"),
                       (args.plot, "--plot")):
        if path is not None:
            _check_writable(path, what)
    for path, what in ((args.export_times, "--export-times"), (args.trace, "--trace"), (args.plot, "--plot")):
        if path == "-":
            raise UsageError(f"{what}: a file name is needed ('-' is for --json)")
    if args.plot is not None:
        from . import plot

        plot.require()                    # before any work: a clear message if matplotlib is missing
    _init_acl(args)
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
    aipp = _aipp_config(args.aipp_config)
    with fastexec.Device(args.device[0]) as device, fastexec.Model(path, device=device) as model:
        _check_aipp(model, aipp, args.compare)
        dynamic, batch = _dynamic_batch(model, np, args)
        if dynamic is not None and "naive" in args.compare:
            raise UsageError("--compare naive runs full batches at the model's largest gear; it does not take "
                             "--dym-batch, --dym-hw, --dym-dims or --dym-shape")
        if options:
            config = fastexec.ExecConfig(**options)
        try:
            with fastexec.Executor(model, depth=args.depth, config=config, instances=args.instances, mode=args.mode,
                                   devices=args.device, aipp=aipp, output_size=args.output_size) as ex:
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
        **_facts(args, started, emu),
        "model": {"path": os.path.abspath(path), "batch_size": result.pop("batch_size"),
                  "inputs": [_spec(s) for s in result.pop("inputs")], "outputs": [_spec(s) for s in result.pop("outputs")]},
        "settings": {"device": args.device[0], "devices": args.device, "depth": depth, "instances": args.instances,
                     "mode": args.mode,
                     "warmup_batches": args.warmup, "calibration_batches": args.calibration_batches,
                     "batches": args.batches, "duration_s": duration,
                     "exec_config": options, "execute_api": "aclmdlExecuteAsyncV2" if options else "aclmdlExecuteAsync",
                     "aipp_config": os.path.abspath(args.aipp_config) if args.aipp_config else None,
                     "dynamic": dynamic},
    })
    result["warnings"] = _warnings(result)
    _print_summary(result, out)
    if args.json:
        _write_json(args.json, result)
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
    traced = args.trace is not None or args.plot is not None
    pieces = []
    if traced:
        ex.start_trace(TRACE_RING)
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
            if traced:
                pieces.append(ex.trace_records(clear=True))
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
    trace_facts = None
    if traced:
        ex.stop_trace()
        pieces.append(ex.trace_records(clear=True))
        trace_facts = _write_trace(args, pieces, st)
    wall = st["wall_s"]
    return {
        "batch_size": ex.batch_size, "inputs": ex.inputs, "outputs": ex.outputs, "interrupted": interrupted,
        "batches": st["batches"], "samples": st["batches"] * B, "wall_s": wall,
        **_figures(st, st["batches"] * B, wall, calibration, B / ex.batch_size),
        "stability": _stability(marks, B),
        "emulator_overruns": emu.counters()["overruns"] - overruns0 if emu is not None else None,
        "export_times": ({"path": os.path.abspath(args.export_times), "batches": exported, "dropped": dropped}
                         if args.export_times else None),
        "trace": trace_facts,
    }


TRACE_RING = 4096                   # batches the executor keeps between two drains (one chunk each)
RUN_TRACE_RING = 1 << 20            # `run` reads the trace once, at the end: the most the core keeps


def _write_trace(args, pieces, st) -> dict:
    """Write --trace and --plot from the drained trace records; the facts for the results."""
    from . import tracing

    records = tracing.merge(pieces)
    trace = tracing.chrome_trace(records)
    facts = tracing.summary(trace)
    facts["batches"] = int(len(records["ticket"]))
    facts["dropped"] = records["dropped"]
    if args.trace is not None:
        facts["events_written"] = tracing.write(args.trace, trace)
        facts["path"] = os.path.abspath(args.trace)
    if getattr(args, "plot", None) is not None:
        from . import plot

        plot.timeline_png(trace, args.plot, batches=args.plot_batches, title=os.path.basename(args.model))
        facts["plot"] = os.path.abspath(args.plot)
    return facts


def _figures(st, samples, wall, calibration, scale=1.0) -> dict:
    """The figures bench and run report alike, from Executor.stats() over `samples` samples in
    `wall` seconds: throughput, device utilisation, per-stage latencies, gear drains, the
    calibration and the bound (its efficiency: the throughput's fraction of it). `scale`: the
    samples of a measured batch over the model's batch size (bench's --dym gears and shapes),
    for the rates stats() gives per full batch."""
    b = st["bound"]
    batches = st["batches"]
    sps = samples / wall if wall else None
    bound_sps = b["samples_per_s"] * scale if b["samples_per_s"] else b["samples_per_s"]
    compute_sps = b["compute_only_samples_per_s"]
    return {
        "throughput": {"samples_per_s": sps, "batches_per_s": batches / wall if wall else None,
                       "compute_only_samples_per_s": compute_sps * scale if compute_sps else compute_sps},
        "drains": st["drains"],
        "device_utilization": b["device_utilization"],
        "latency_ms": {name: _stats_row(st[name]) for name in ("h2d", "execute", "d2h", "end_to_end", "host_enqueue",
                                                                "host_staging")},
        "calibration": calibration,
        "bound": {"period_ms": b["period_ms"], "samples_per_s": bound_sps,
                  "efficiency": sps / bound_sps if sps is not None and bound_sps else None,
                  "source": b["source"], "engines": {kind: len(st["devices"]) for kind in ("h2d", "compute", "d2h")}},
    }


def _facts(args, started, emu) -> dict:
    """Tool, command line, host and backend facts, for bench's and run's JSON."""
    import fastexec

    info = fastexec.backend_info()
    facts = {"tool": {"name": "fastexec", "version": fastexec.__version__}, "started_at": started,
             "argv": ["fastexec"] + list(args.argv), "host": _host_facts(),
             "backend": {"library": info["library"], "emulator": info["emulator"], "soc": info["soc"],
                         "device_count": info["device_count"]}}
    if emu is not None:
        prof = emu.profile()
        facts["backend"]["emulator_profile"] = prof["name"]
        facts["backend"]["emulator_fast_mode"] = prof["fast"]
    return facts


def _write_json(path, result) -> None:
    text = json.dumps(result, indent=2) + "\n"
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        with open(path, "w") as f:
            f.write(text)


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
        n_dev = r["bound"]["engines"]["compute"]       # the host queues for every device in turn
        if enq is not None and compute and enq > 0.8 * compute / n_dev:
            per = f" per device ({n_dev} devices: {compute / n_dev:.4f} ms per batch)" if n_dev > 1 else ""
            w.append(f"enqueue-bound: the host takes {enq:.4f} ms to queue a batch, more than 80% of its "
                     f"{compute:.4f} ms of compute{per}; the host, not the device, sets the pace")
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
      f"instances {s['instances']}, mode {s['mode']}"
      + (f", devices {','.join(map(str, s['devices']))}" if len(s.get("devices", ())) > 1 else ""))
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
        n_dev = b["engines"]["compute"]
        if n_dev > 1:
            what += f", / {n_dev} devices"
        engines = "one engine of each kind" + (" per device" if n_dev > 1 else "")
        if b["samples_per_s"] and b["efficiency"] is not None:
            p(f"bound      {b['samples_per_s']:.1f} samples/s (period {b['period_ms']:.4f} ms = {what}, {engines}, "
              f"from the {b['source']}); reached {100 * b['efficiency']:.1f}%")
        else:
            p("bound      none: the stage times are 0 (fast mode?)")
        if t["compute_only_samples_per_s"] and r["device_utilization"] is not None:
            p(f"compute    {t['compute_only_samples_per_s']:.1f} samples/s compute only; compute engine"
              f"{'s' if n_dev > 1 else ''} busy {100 * r['device_utilization']:.1f}% of the run"
              + (" (mean over the devices)" if n_dev > 1 else ""))
        cols = ("mean", "min", "p50", "p90", "p95", "p99", "max")
        p(f"{'latency ms':<14}" + "".join(f"{c:>10}" for c in cols))
        for name in ("h2d", "execute", "d2h", "host_enqueue", "end_to_end"):
            row = r["latency_ms"][name]
            p(f"{name:<14}" + "".join(f"{row[k]:>10.4f}" for k in cols))
    p(f"stability  {r['stability']['verdict']}")
    tr = r.get("trace")
    if tr:
        where = [x for x in (tr.get("path"), tr.get("plot")) if x]
        share = tr["copy_ins_overlapping_execution"]
        p(f"trace      {tr['batches']} batches ({', '.join(f'{n} {k}' for k, n in tr['events'].items())})"
          + (f"; copy-ins overlapping an execution {100 * share:.1f}%" if share is not None else "")
          + (f"; written to {', '.join(where)}" if where else ""))
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
                "inputs": [_spec(s) for s in model.inputs], "outputs": [_spec(s) for s in model.outputs],
                "aipp": {name: _aipp_json(a) for name, a in model.aipp.items()}}
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
    for name, a in desc["aipp"].items():
        print(f"aipp   {name}: {_aipp_line(a)}")
    return 0


def _aipp_json(a: dict) -> dict:
    out = dict(a)
    if "output" in out:
        out["output"] = dict(out["output"], dims=list(out["output"]["dims"]), dtype=str(out["output"]["dtype"]))
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def _aipp_line(a: dict) -> str:
    """One input's AIPP in a line of `fastexec inspect`."""
    if a["mode"] == "dynamic":
        return (f"dynamic AIPP (parameters set at run time: --aipp-config), raw input up to "
                f"{a['max_src_image_size']} bytes per batch")
    parts = [f"static AIPP {a['input_format']} {a['src_image_size_w']}x{a['src_image_size_h']}"]
    if a["crop"]:
        parts.append(f"crop {a['crop_size_w']}x{a['crop_size_h']} at ({a['load_start_pos_w']}, {a['load_start_pos_h']})")
    if a["padding"]:
        parts.append(f"padding top {a['top_padding_size']} bottom {a['bottom_padding_size']} left "
                     f"{a['left_padding_size']} right {a['right_padding_size']}")
    if a["csc_switch"]:
        parts.append("csc " + ",".join(map(str, a["matrix"])) + f" in-bias {','.join(map(str, a['input_bias']))}"
                     f" out-bias {','.join(map(str, a['output_bias']))}")
    if a["rbuv_swap_switch"]:
        parts.append("rbuv swap")
    parts.append(f"mean {','.join(map(str, a['mean_chn']))} min {','.join(f'{v:g}' for v in a['min_chn'])} "
                 f"var_reci {','.join(f'{v:g}' for v in a['var_reci_chn'])}")
    out = a["output"]
    parts.append(f"-> {out['dtype']} {out['format']} ({', '.join(map(str, out['dims']))})")
    return "; ".join(parts)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a run stops as on Ctrl-C (exit 143)."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _terminated(exc) -> bool:
    """Whether a KeyboardInterrupt came from SIGTERM (the executor's waits wrap it in Interrupted)."""
    return any(isinstance(e, Terminated) for e in (exc, exc.__cause__, exc.__context__))


# the options whose values decide what a run writes: --resume refuses to continue when one differs
RESUME_OPTIONS = ("inputs", "limit", "outfmt")
HOST_BOUND = 0.85           # under this fraction of the bound, the summary says which side set the pace


def run_files(args) -> int:
    import signal

    import fastexec
    from fastexec._core import DEFAULT_DEPTH

    from . import batchfiles, filestream

    for out_path, what in ((args.json, "--json"), (args.trace, "--trace")):
        if out_path is not None:
            _check_writable(out_path, what)
    if args.trace == "-":
        raise UsageError("--trace: a file name is needed ('-' is for --json)")
    if args.resume and args.force:
        raise UsageError("--resume and --force: choose one (continue the earlier run, or replace it)")
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    previous = batchfiles.read_manifest(args.output, MANIFEST) if args.resume else None
    if previous is None:
        batchfiles.prepare_output(args.output, args.force, MANIFEST)      # before any work
    _init_acl(args)
    path = _resolve_model(args.model)
    aipp = _aipp_config(args.aipp_config)
    emu = None
    if fastexec.backend_info()["emulator"]:
        from . import emulator as emu
    options = {"inputs": list(args.input), "limit": args.limit, "outfmt": args.outfmt, "depth": args.depth,
               "instances": args.instances, "mode": args.mode, "device": args.device[0], "devices": args.device,
               "aipp_config": os.path.abspath(args.aipp_config) if args.aipp_config else None}
    depth = args.depth or DEFAULT_DEPTH[args.mode] + filestream.READERS
    t_setup = time.perf_counter()
    with fastexec.Device(args.device[0]) as device, fastexec.Model(path, device=device) as model:
        _check_aipp(model, aipp)
        units = batchfiles.plan(model.inputs, args.input, args.limit)      # all checks before device work
        out_dirs = batchfiles.output_dirs(args.output, model.outputs)
        ext = "." + args.outfmt
        done = set()
        if previous is not None:
            done = batchfiles.resumable(args.output, previous, os.path.abspath(path), options, RESUME_OPTIONS,
                                        units, out_dirs, ext)
        manifest = {"schema": "fastexec.run/2", "tool": {"name": "fastexec", "version": fastexec.__version__},
                    "started_at": started, "argv": ["fastexec"] + list(args.argv), "model": os.path.abspath(path),
                    "options": options, "complete": False,
                    "folders": sorted(os.path.relpath(d, args.output) for d in out_dirs),
                    "files": batchfiles.planned_files(args.output, units, out_dirs, ext),
                    "completed": sorted(units[i].stem for i in done)}
        if previous is not None:
            manifest["resumed"] = previous.get("resumed", []) + [{"started_at": previous.get("started_at"),
                                                                    "completed": len(done)}]
        batchfiles.write_manifest(args.output, MANIFEST, manifest)      # lists what this run may write
        todo = [i for i in range(len(units)) if i not in done]
        bar = _progress(args, sum(units[i].rows for i in todo), unit="sample")
        error = None
        old_term = signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            with fastexec.Executor(model, depth=depth, instances=args.instances, mode=args.mode, devices=args.device,
                                   aipp=aipp) as ex:
                calibration = ex.calibrate(args.calibration_batches) if args.calibration_batches else None
                ex.reset_stats()
                if args.trace is not None:
                    ex.start_trace(RUN_TRACE_RING)
                overruns0 = emu.counters()["overruns"] if emu is not None else None
                setup_s = time.perf_counter() - t_setup
                try:
                    fig = filestream.stream(ex, units, model.inputs, out_dirs, args.outfmt, todo, bar)
                except (KeyboardInterrupt, batchfiles.InputFileError, filestream.OutputFileError) as exc:
                    fig, error = getattr(exc, "figures", None), exc
                st = ex.stats()
                trace_facts = None
                if args.trace is not None:
                    ex.stop_trace()
                    trace_facts = _write_trace(args, [ex.trace_records()], st)
                model_desc = {"path": os.path.abspath(path), "batch_size": ex.batch_size,
                              "inputs": [_spec(s) for s in ex.inputs], "outputs": [_spec(s) for s in ex.outputs]}
                overruns = emu.counters()["overruns"] - overruns0 if emu is not None else None
                depth = ex.depth
        finally:
            signal.signal(signal.SIGTERM, old_term)
            if bar is not None:
                bar.close()
        if fig is None:             # stopped before streaming began
            raise error
        written = set(fig["completed"])
        manifest["completed"] = sorted(units[i].stem for i in done | written)
        manifest.update({"complete": error is None, "files_written": len(written) * len(out_dirs),
                         "failed": [units[ui].stem for ui, _ in fig["failed"]]})
        if error is not None:
            manifest["stopped"] = _message(error) if not isinstance(error, KeyboardInterrupt) else \
                ("terminated (SIGTERM)" if _terminated(error) else "interrupted (Ctrl-C)")
        batchfiles.write_manifest(args.output, MANIFEST, manifest)
    summary = {"schema": "fastexec.run-summary/1", **_facts(args, started, emu),
               "model": model_desc,
               "settings": {"device": args.device[0], "devices": args.device, "depth": depth,
                            "instances": args.instances, "mode": args.mode,
                            "aipp_config": options["aipp_config"], "calibration_batches": args.calibration_batches, "outfmt": args.outfmt,
                            "readers": fig["readers"], "writers": fig["writers"], "execute_api": st["execute_api"]},
               "interrupted": isinstance(error, KeyboardInterrupt), "error": None if error is None else _message(error),
               "files_in": len(units), "files_skipped": len(done), "files_written": len(written) * len(out_dirs),
               "batches": fig["batches"], "samples": fig["samples"], "setup_s": setup_s, "wall_s": fig["wall_s"],
               **_figures(st, fig["samples"], fig["wall_s"], calibration),
               "emulator_overruns": overruns, "trace": trace_facts}
    summary["io"] = _io_figures(fig, summary)
    summary["warnings"] = _run_warnings(summary)
    summary["files"] = batchfiles.file_map(args.output, units, out_dirs, ext, done, written,
                                           {ui for ui, _ in fig["failed"]})
    _print_run_summary(summary, args.output, sys.stderr if args.json == "-" else sys.stdout)
    if trace_facts is not None:
        print(f"trace       {trace_facts['batches']} batches written to {trace_facts['path']}",
              file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json:
        _write_json(args.json, summary)
    for ui, exc in fig["failed"]:
        print(f"fastexec run: error: {units[ui].stem}: not written, its batch failed: {_message(exc)}", file=sys.stderr)
    if error is not None:
        raise error
    return 1 if fig["failed"] else 0


def _io_figures(fig, summary) -> dict:
    """How busy the file threads and the device were over the run's wall time."""
    wall = fig["wall_s"] or None
    cal = summary["calibration"]
    execute_ms = cal["execute_ms"] if cal else summary["latency_ms"]["execute"]["mean"]
    device_s = summary["batches"] * execute_ms / 1e3 if execute_ms is not None else None
    return {"readers": fig["readers"], "read_busy_s": fig["read_busy_s"],
            "reader_utilization": fig["read_busy_s"] / fig["readers"] / wall if wall else None,
            "slot_wait_s": fig["slot_wait_s"],
            "writers": fig["writers"], "write_busy_s": fig["write_busy_s"],
            "writer_utilization": fig["write_busy_s"] / fig["writers"] / wall if wall else None,
            "result_wait_s": fig["result_wait_s"],
            "device_busy_s": device_s, "device_utilization": device_s / wall if wall and device_s is not None else None}


def _run_warnings(r) -> list:
    w = []
    io, eff = r["io"], r["bound"]["efficiency"]
    if r["batches"] < SHORT_RUN_BATCHES:
        w.append(f"too short: {r['batches']} batches (under {SHORT_RUN_BATCHES}); the comparison with the bound "
                 "does not mean much")
    if eff is not None and eff < HOST_BOUND and io["device_utilization"] is not None:
        busiest = max(("readers were", io["reader_utilization"] or 0), ("writer was", io["writer_utilization"] or 0),
                      key=lambda x: x[1])
        if busiest[1] > io["device_utilization"]:
            w.append(f"host-bound: the {busiest[0]} busy {100 * busiest[1]:.0f}% of the run, the device "
                     f"{100 * io['device_utilization']:.0f}% (reading {io['read_busy_s']:.3f} s over {io['readers']} "
                     f"threads, writing {io['write_busy_s']:.3f} s, device {io['device_busy_s']:.3f} s in "
                     f"{r['wall_s']:.3f} s): the files, not the device, set the pace")
        else:
            w.append(f"neither the device ({100 * io['device_utilization']:.0f}% busy) nor the file threads "
                     f"(readers {100 * (io['reader_utilization'] or 0):.0f}%, writer "
                     f"{100 * (io['writer_utilization'] or 0):.0f}%) were saturated: the host's CPUs were shared "
                     "(other processes, or the Python threads waiting on each other)")
    if r.get("emulator_overruns"):
        w.append(f"the emulator reported {r['emulator_overruns']} overruns: the host's real work took longer than "
                 "the modelled device time")
    return w


def _print_run_summary(r, out_dir, out) -> None:
    def p(text=""):
        print(text, file=out)

    t, b = r["throughput"], r["bound"]
    p(f"model       {r['model']['path']}")
    skipped = f", {r['files_skipped']} skipped (complete in the manifest)" if r["files_skipped"] else ""
    p(f"processed   {r['files_in'] - r['files_skipped']} input file(s){skipped}, {r['samples']} samples, "
      f"{r['batches']} batches in {r['wall_s']:.3f} s" + ("  (interrupted)" if r["interrupted"] else ""))
    files_per_s = (r["files_in"] - r["files_skipped"]) / r["wall_s"] if r["wall_s"] else 0
    line = f"throughput  {t['samples_per_s'] or 0:.1f} samples/s, {files_per_s:.1f} files/s end to end"
    if b["samples_per_s"] and b["efficiency"] is not None:
        line += f"; {100 * b['efficiency']:.1f}% of the device bound ({b['samples_per_s']:.1f} samples/s, {b['source']})"
    p(line)
    io = r["io"]
    p(f"file i/o    readers busy {io['read_busy_s']:.3f} s ({io['readers']} threads), writer busy "
      f"{io['write_busy_s']:.3f} s, device busy {io['device_busy_s'] or 0:.3f} s")
    p(f"wrote       {r['files_written']} file(s) under {os.path.abspath(out_dir)} (listed in {MANIFEST})")
    for w in r["warnings"]:
        p(f"warning: {w}")


def _init_acl(args) -> None:
    """--acl-json: the process's aclInit configuration, before anything initialises ACL."""
    if getattr(args, "acl_json", None) is None:
        return
    if not os.path.isfile(args.acl_json):
        raise UsageError(f"--acl-json {args.acl_json}: no such file")
    import fastexec

    fastexec.init(acl_config=args.acl_json)


if __name__ == "__main__":
    sys.exit(main())
