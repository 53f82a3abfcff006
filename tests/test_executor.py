"""The pipelined Executor (fastexec/executor.pxi) and naive_run, driven against the bundled
emulator (FASTEXEC_BACKEND=emulator, FASTEXEC_EMU_FAST=1 in this process).

Every output is compared with the numpy reference of the sample kernels
(fastexec.emulator.model_file.reference_outputs), computed batch by batch on the zero-padded
batch the executor runs and trimmed to the valid rows. Every test that creates resources runs
under `no_leaks` (directly or through `device`): the emulator's live counters are back at
baseline and its checked mode reported nothing. Device failures come from the emulator's fault
injection, busy streams from its stall rules, never from sleeps. Other profiles (ipv350 for
aclmdlExecuteAsyncV2, slow-link and real timing for the GIL and stats checks), the
10,000-batch memory check and cases that can crash the interpreter run in subprocesses, which
print the emulator's live counters for the parent to assert on.

The helpers above the tests are imported by those subprocesses (``import test_executor``).
"""
import contextlib
import ctypes
import functools
import gc
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import threading
import traceback
import tracemalloc

import numpy as np
import pytest

import fastexec
from fastexec import emulator
from fastexec.emulator.model_file import reference_outputs
from fastexec.emulator.samples import SAMPLES

# The samples every front end runs whole arrays of (static and dynamic-batch, no AIPP); the
# dynamic HW, dims and shape samples have their own tests (tests/test_dynamic.py), the AIPP ones
# theirs (tests/test_aipp.py).
NAMES = tuple(n for n in SAMPLES if SAMPLES[n].profile in (None, "dynamic_batch") and not SAMPLES[n].aipp)
TESTS_DIR = str(pathlib.Path(__file__).resolve().parent)
LIVE = ("device_allocations", "host_allocations", "registered_ranges", "streams", "events", "contexts",
        "devices_set", "models", "datasets", "data_buffers", "model_descs", "exec_configs")
SERIES = ("h2d", "execute", "d2h", "end_to_end", "host_staging")
PERCENTILES = ("p50_ms", "p90_ms", "p95_ms", "p99_ms")
# (depth, instances): every depth 1..4 with one and two instances, and three instances at depth 1.
CONFIGS = tuple((d, 1) for d in (1, 2, 3, 4)) + tuple((d, 2) for d in (1, 2, 3, 4)) + ((1, 3),)
FAULT_CODE = 507011   # ACL_ERROR_RT_MODEL_EXECUTE


# ---------------------------------------------------------------- helpers


def live():
    c = emulator.counters()
    return {k: c[k] for k in LIVE}


@functools.lru_cache(maxsize=None)
def _emu():
    """The emulator library this process has loaded (dlopen of the same path: the same instance)."""
    lib = ctypes.CDLL(emulator.library_path())
    lib.fxemuAddFault.argtypes = [ctypes.c_char_p]
    lib.fxemuAddFault.restype = ctypes.c_int
    lib.fxemuClearFaults.argtypes = []
    lib.fxemuClearFaults.restype = None
    return lib


def add_fault(rule):
    rc = _emu().fxemuAddFault(rule.encode())
    assert rc == 0, f"the emulator refused the fault rule {rule!r} ({rc})"


def clear_faults():
    _emu().fxemuClearFaults()


@contextlib.contextmanager
def fault(*rules):
    """Fault rules in force for the block (their N counts from here); all rules dropped after."""
    try:
        for rule in rules:
            add_fault(rule)
        yield
    finally:
        clear_faults()


def batch_of(name):
    return SAMPLES[name].max_batch


def n_rows(name):
    """Ten full batches and a partial one (B - 1 rows; `tiny` has B = 1, so no partial batch)."""
    b = batch_of(name)
    return 10 * b + (b - 1 if b > 1 else 1)


def random_array(rng, dtype, shape):
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if dtype.kind == "i":
        return rng.integers(-100_000, 100_000, shape, dtype=dtype)   # 3 * x - 1 stays in int32
    if dtype == np.float16:
        return rng.uniform(-8, 8, shape).astype(np.float16)
    return (rng.standard_normal(shape) * 10).astype(dtype)


def make_inputs(name, n, seed=0):
    rng = np.random.default_rng(seed)
    return [random_array(rng, td.dtype, (n,) + tuple(td.dims[1:])) for td in SAMPLES[name].inputs]


def expected_outputs(name, inputs):
    """The reference outputs of sample `name` for N rows (see expected_of)."""
    return expected_of(SAMPLES[name], inputs)


def expected_of(model, inputs):
    """The reference outputs for N rows: each batch zero-padded to the executor's batch (the
    model's batch, or its largest gear), computed, and trimmed to its valid rows."""
    b = model.max_batch
    n = inputs[0].shape[0]
    outs = [[] for _ in model.outputs]
    for start in range(0, n, b):
        rows = min(b, n - start)
        padded = []
        for a in inputs:
            p = np.zeros((b,) + a.shape[1:], a.dtype)
            p[:rows] = a[start:start + rows]
            padded.append(p)
        for i, y in enumerate(reference_outputs(model, padded, batch=b)):
            outs[i].append(y[:rows])
    return [np.concatenate(o) for o in outs]


@functools.lru_cache(maxsize=None)
def sample_case(name):
    """(inputs, expected) for `name`, read-only (the executor must not write into inputs)."""
    inputs = make_inputs(name, n_rows(name))
    expected = expected_outputs(name, inputs)
    for a in inputs + expected:
        a.setflags(write=False)
    return inputs, expected


def split(arrays, b):
    n = arrays[0].shape[0]
    return [[a[s:s + b] for a in arrays] for s in range(0, n, b)]


def assert_outputs_equal(got, expected, what=""):
    assert len(got) == len(expected), f"{what}: {len(got)} outputs, expected {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        assert isinstance(g, np.ndarray), f"{what}: output {i} is a {type(g).__name__}"
        assert g.dtype == e.dtype and g.shape == e.shape, f"{what}: output {i} is {g.dtype}{g.shape}, expected {e.dtype}{e.shape}"
        if not np.array_equal(g, e, equal_nan=True):
            same = (g == e) | (np.isnan(g) & np.isnan(e)) if g.dtype.kind == "f" else g == e
            bad = np.argwhere(~same)
            raise AssertionError(f"{what}: output {i} differs from the reference at {len(bad)} element(s), first {bad[:3].tolist()}")


def outputs_match_rows(outputs, expected, b, batch):
    """Whether rows of batch `batch` of whole-array outputs equal the reference."""
    sl = slice(batch * b, (batch + 1) * b)
    return all(np.array_equal(o[sl], e[sl], equal_nan=True) for o, e in zip(outputs, expected))


def check_all_paths(ex, name):
    """run (list, dict, single array, one row), imap, submit/result (all queued, then results
    out of order; and one at a time) and staged(): every batch equals the reference, the partial
    last batch included. Returns the number of batches run."""
    inputs, expected = sample_case(name)
    b = ex.batch_size
    assert b == batch_of(name)
    names = [s.name for s in ex.inputs]
    batches = split(inputs, b)
    exp_batches = split(expected, b)
    nb = len(batches)
    ran = 0

    assert_outputs_equal(ex.run(list(inputs)), expected, "run(list)")
    assert_outputs_equal(ex.run(dict(zip(names, inputs))), expected, "run(dict)")
    ran += 2 * nb
    if len(inputs) == 1:
        assert_outputs_equal(ex.run(inputs[0]), expected, "run(array)")
        ran += nb
    assert_outputs_equal(ex.run([a[:1] for a in inputs]), [e[:1] for e in expected], "run(1 row)")
    ran += 1

    got = list(ex.imap(dict(zip(names, bt)) for bt in batches))
    assert len(got) == nb, f"imap yielded {len(got)} batches of {nb}"
    for k, (g, e) in enumerate(zip(got, exp_batches)):
        assert_outputs_equal(g, e, f"imap batch {k}")
    ran += nb

    tickets = [ex.submit(bt[0] if len(bt) == 1 else tuple(bt)) for bt in batches]
    assert len(set(tickets)) == nb
    results = {t: ex.result(t) for t in reversed(tickets)}
    for k, t in enumerate(tickets):
        assert_outputs_equal(results[t], exp_batches[k], f"submit/result batch {k}")
    for k, bt in enumerate(batches):
        assert_outputs_equal(ex.result(ex.submit(list(bt))), exp_batches[k], f"submit+result batch {k}")
    ran += 2 * nb

    tickets = []
    for bt in batches:
        with ex.staged() as sb:
            assert len(sb.inputs) == len(bt)
            for view, a in zip(sb.inputs, bt):
                assert view.shape == (b,) + a.shape[1:] and view.dtype == a.dtype
                view[:len(a)] = a
            sb.rows = len(bt[0])
        assert sb.ticket is not None
        tickets.append(sb.ticket)
    for k, t in enumerate(tickets):
        assert_outputs_equal(ex.result(t), exp_batches[k], f"staged batch {k}")
    ran += nb
    return ran


def run_child(code, timeout=120, args=(), **env_extra):
    """Run `code` in a fresh interpreter on the emulator (fast mode unless overridden)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_")}
    env.update(FASTEXEC_BACKEND="emulator", FASTEXEC_EMU_FAST="1")
    env.update(env_extra)
    return subprocess.run([sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code), *args], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=TESTS_DIR)


def child_lines(proc):
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def child_result(proc):
    """The child's last JSON line; fails with its output if it did not exit cleanly."""
    assert proc.returncode == 0, f"child exited with {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    return child_lines(proc)[-1]


def child_code(body):
    return CHILD_PRELUDE + textwrap.dedent(body)


CHILD_PRELUDE = f"""
import json, os, sys
sys.path.insert(0, {TESTS_DIR!r})
import numpy as np
import fastexec
from fastexec import emulator
import test_executor as T
if os.environ.get("FXTEST_EXECUTOR_MODE"):
    fastexec.Executor = T.with_mode(os.environ["FXTEST_EXECUTOR_MODE"])
"""


def with_mode(mode):
    """fastexec.Executor, defaulting to `mode` instead of the library's default."""
    import fastexec._core

    real = fastexec._core.Executor

    def make(*args, **kwargs):
        kwargs.setdefault("mode", mode)
        return real(*args, **kwargs)

    return make


@pytest.fixture(autouse=True, params=["overlap", "serial"])
def executor_mode(request, monkeypatch):
    """Every test of this file runs in both pipeline modes (child processes too)."""
    monkeypatch.setattr(fastexec, "Executor", with_mode(request.param))
    monkeypatch.setenv("FXTEST_EXECUTOR_MODE", request.param)
    return request.param


@pytest.fixture
def model_of(device):
    """model_of(name): a Model of sample `name` on the test's device, closed after the test."""
    models = []

    def make(name):
        m = fastexec.Model(emulator.sample_model(name), device=device)
        models.append(m)
        return m

    yield make
    for m in models:
        m.close()


# ---------------------------------------------------------------- correctness


@pytest.mark.parametrize("depth,instances", CONFIGS, ids=[f"depth{d}-x{i}" for d, i in CONFIGS])
@pytest.mark.parametrize("name", NAMES)
def test_outputs_equal_reference(model_of, name, depth, instances):
    with fastexec.Executor(model_of(name), depth=depth, instances=instances) as ex:
        assert ex.instances == instances and ex.depth == depth
        check_all_paths(ex, name)


def test_outputs_equal_reference_v2_ipv350():
    """aclmdlExecuteAsyncV2 (an ExecConfig) under the ipv350 profile: every sample, every config."""
    proc = run_child(child_code("""
        assert emulator.profile()["name"] == "ipv350"
        cases, failures = 0, []
        with fastexec.Device(0) as dev, fastexec.ExecConfig(stream_sync_timeout_ms=60000, event_sync_timeout_ms=60000) as cfg:
            for name in T.NAMES:
                for depth, instances in T.CONFIGS:
                    try:
                        with fastexec.Model(emulator.sample_model(name), device=dev) as m, \\
                                fastexec.Executor(m, depth=depth, config=cfg, instances=instances) as ex:
                            assert ex.stats()["execute_api"] == "aclmdlExecuteAsyncV2"
                            T.check_all_paths(ex, name)
                        cases += 1
                    except Exception as e:
                        failures.append(f"{name} depth={depth} instances={instances}: {type(e).__name__}: {e}")
        c = emulator.counters()
        print(json.dumps({"cases": cases, "failures": failures, "live": T.live(), "findings": c["findings"]}))
    """), FASTEXEC_EMU_PROFILE="ipv350")
    res = child_result(proc)
    assert res["failures"] == []
    assert res["cases"] == len(NAMES) * len(CONFIGS)
    assert set(res["live"].values()) == {0}, res["live"]
    assert res["findings"] == 0


def test_v2_on_default_profile_fails_in_constructor(model_of):
    m = model_of("multi-io")
    with fastexec.ExecConfig(stream_sync_timeout_ms=60000) as cfg:
        with pytest.raises(fastexec.AclNotAvailableError) as ei:
            fastexec.Executor(m, config=cfg)
    assert ei.value.code == 200001
    assert "aclmdlExecuteAsyncV2" in str(ei.value)
    # the model is untouched: a V1 executor on it works
    inputs, expected = sample_case("multi-io")
    with fastexec.Executor(m) as ex:
        assert_outputs_equal(ex.run(inputs), expected, "V1 after a refused V2")


def test_constructor_arguments(model_of):
    m = model_of("tiny")
    for kwargs, word in (({"depth": 0}, "depth"), ({"depth": 65}, "depth"), ({"instances": 0}, "instances"),
                         ({"instances": 65}, "instances")):
        with pytest.raises(ValueError, match=word):
            fastexec.Executor(m, **kwargs)
    closed = fastexec.Model(emulator.sample_model("tiny"), device=m.device)
    closed.close()
    with pytest.raises(fastexec.ClosedError):
        fastexec.Executor(closed)


def test_imap_of_nothing(model_of):
    with fastexec.Executor(model_of("tiny")) as ex:
        assert list(ex.imap([])) == []
        assert ex.stats()["batches"] == 0


def test_result_of_unknown_or_taken_ticket(model_of):
    with fastexec.Executor(model_of("tiny")) as ex:
        x = np.ones((1, 16), np.float32)
        t = ex.submit(x)
        assert_outputs_equal(ex.result(t), [x])
        with pytest.raises(ValueError, match="ticket"):
            ex.result(t)
        with pytest.raises(ValueError, match="ticket"):
            ex.result(t + 1000)


# ---------------------------------------------------------------- run(..., out=...)


def test_run_out_list_and_dict(model_of):
    inputs, expected = sample_case("multi-io")
    n = inputs[0].shape[0]
    with fastexec.Executor(model_of("multi-io"), depth=3) as ex:
        out = [np.full((n, 64), -7, np.int32), np.full((n, 32), -7, np.float16)]
        got = ex.run(inputs, out=out)
        assert got[0] is out[0] and got[1] is out[1]
        assert_outputs_equal(out, expected, "run(out=list)")
        out = {"b_out": np.zeros((n, 32), np.float16), "a_out": np.zeros((n, 64), np.int32)}   # by name, any order
        got = ex.run(inputs, out=out)
        assert got[0] is out["a_out"] and got[1] is out["b_out"]
        assert_outputs_equal(got, expected, "run(out=dict)")


def test_run_out_single_array(model_of):
    inputs, expected = sample_case("balanced")
    with fastexec.Executor(model_of("balanced")) as ex:
        out = np.zeros_like(expected[0])
        got = ex.run(inputs[0], out=out)
        assert got[0] is out
        assert_outputs_equal([out], expected, "run(out=array)")


def _bad_outs(n):
    a, b = np.zeros((n, 64), np.int32), np.zeros((n, 32), np.float16)
    ro = np.zeros((n, 64), np.int32)
    ro.setflags(write=False)
    return {
        "dtype": ([a.astype(np.int64), b], ["a_out", "int32", "int64"]),
        "rows": ([a, np.zeros((n + 1, 32), np.float16)], ["b_out", f"({n}, 32)", f"({n + 1}, 32)"]),
        "sample shape": ([np.zeros((n, 63), np.int32), b], ["a_out", f"({n}, 64)", f"({n}, 63)"]),
        "count": ([a], ["a_out, b_out", "got 1"]),
        "single array": (a, ["a_out, b_out", "got 1"]),
        "non-contiguous": ([np.zeros((2 * n, 64), np.int32)[::2], b], ["a_out", "C-contiguous"]),
        "read-only": ([ro, b], ["a_out", "writable"]),
        "not an array": ([a.tolist(), b], ["a_out", "list"]),
        "unknown name": ({"a_out": a, "b_out": b, "c_out": b}, ["c_out", "a_out, b_out"]),
        "missing name": ({"a_out": a}, ["b_out"]),
    }


@pytest.mark.parametrize("case", list(_bad_outs(1)))
def test_run_out_rejected(model_of, case):
    inputs, expected = sample_case("multi-io")
    n = inputs[0].shape[0]
    out, fragments = _bad_outs(n)[case]
    given = [a for a in (out.values() if isinstance(out, dict) else out if isinstance(out, list) else [out])
             if isinstance(a, np.ndarray)]
    snapshot = [a.copy() for a in given]
    with fastexec.Executor(model_of("multi-io")) as ex:
        assert_rejected(lambda: ex.run(inputs, out=out), ValueError, fragments)
        for s, a in zip(snapshot, given):
            assert np.array_equal(s, a), "a rejected out= array was written to"
        assert_outputs_equal(ex.run(inputs), expected, "run after a rejected out=")


# ---------------------------------------------------------------- input validation


def assert_rejected(call, exc_type, fragments):
    """`call` raises exc_type whose message holds every fragment, and touches no device state:
    no task ran and no resource was created or freed."""
    before = emulator.counters()
    with pytest.raises(exc_type) as ei:
        call()
    after = emulator.counters()
    msg = str(ei.value)
    for f in fragments:
        assert f in msg, f"message {msg!r} does not mention {f!r}"
    assert after["tasks_run"] == before["tasks_run"], "a rejected call ran device tasks"
    assert {k: after[k] for k in LIVE} == {k: before[k] for k in LIVE}
    return ei.value


def _bad_inputs():
    """multi-io: a int32 (N, 64), b float16 (N, 32), batch 2. name -> (inputs, exception, fragments)."""
    a, b = make_inputs("multi-io", 2, seed=5)
    a3, b3 = make_inputs("multi-io", 3, seed=6)
    return {
        "count": ([a], ValueError, ["a, b", "2", "got 1"]),
        "count tuple": ((a, b, b), ValueError, ["a, b", "2", "got 3"]),
        "unknown name": ({"a": a, "b": b, "c": a}, ValueError, ["'c'", "a, b"]),
        "missing name": ({"a": a}, ValueError, ["'b'", "a, b"]),
        "single array": (a, ValueError, ["2 inputs", "a, b", "ndarray"]),
        "dtype": ([a.astype(np.int64), b], TypeError, ["'a'", "int32", "int64"]),
        "dtype second": ([a, b.astype(np.float32)], TypeError, ["'b'", "float16", "float32"]),
        "sample shape": ([np.zeros((2, 63), np.int32), b], ValueError, ["'a'", "(N, 64)", "(2, 63)"]),
        "ndim": ([a.reshape(2, 8, 8), b], ValueError, ["'a'", "(N, 64)", "(2, 8, 8)"]),
        "non-contiguous": ([np.zeros((4, 64), np.int32)[::2], b], ValueError, ["'a'", "C-contiguous"]),
        "empty": ([a[:0], b[:0]], ValueError, ["'a'", "empty"]),
        "too many rows": ([a3, b3], ValueError, ["'a'", "at most 2", "got 3"]),
        "rows mismatch": ([a, b[:1]], ValueError, ["'b'", "1 rows", "'a'", "2"]),
        "not an array": ([a.tolist(), b], TypeError, ["'a'", "numpy array", "list"]),
        "not an array second": ([a, None], TypeError, ["'b'", "numpy array", "NoneType"]),
    }


BAD_INPUTS = _bad_inputs()


# run() splits any number of rows into batches, so "too many rows" is rejected only per batch.
REJECTION_CASES = [(case, method) for case in BAD_INPUTS for method in ("run", "submit", "imap")
                   if not (method == "run" and case == "too many rows")]


@pytest.mark.parametrize("case,method", REJECTION_CASES)
def test_inputs_rejected(model_of, case, method):
    inputs, exc_type, fragments = BAD_INPUTS[case]
    good, expected = sample_case("multi-io")
    with fastexec.Executor(model_of("multi-io"), depth=2, instances=2) as ex:
        call = {"run": lambda: ex.run(inputs), "submit": lambda: ex.submit(inputs),
                "imap": lambda: next(ex.imap([inputs]))}[method]
        for _ in range(2):   # rejected twice in a row, then a correct call works
            if method == "imap":   # imap names the batch: BatchError(index=0) carrying the rejection
                err = assert_rejected(call, fastexec.BatchError, fragments)
                assert err.index == 0 and isinstance(err.error, exc_type) and err.completed == []
            else:
                assert_rejected(call, exc_type, fragments)
        assert_outputs_equal(ex.run(good), expected, f"run after a rejected {method}")
        assert_outputs_equal(ex.result(ex.submit([g[:2] for g in good])), [e[:2] for e in expected],
                             f"submit after a rejected {method}")
        assert ex.stats()["batches"] == len(split(good, 2)) + 1


def test_staged_rejects_bad_rows_and_exceptions(model_of):
    inputs, expected = sample_case("multi-io")
    with fastexec.Executor(model_of("multi-io"), depth=2) as ex:
        for rows in (0, 3):
            def call():
                with ex.staged() as sb:
                    sb.inputs[0][:] = 1
                    sb.rows = rows
            assert_rejected(call, ValueError, ["rows", "1..2", str(rows)])

        def raising():
            with ex.staged() as sb:
                sb.inputs[0][:] = 1
                raise KeyError("user error inside the block")
        assert_rejected(raising, KeyError, ["user error"])
        assert_outputs_equal(ex.run(inputs), expected, "run after rejected staged batches")
        assert ex.stats()["batches"] == len(split(inputs, 2))


def test_abandoned_imap_leaves_nothing_behind(model_of):
    """An imap that stops early (a rejected batch, or the generator closed) must not leave the
    results of its in-flight batches held by the executor for ever."""
    with fastexec.Executor(model_of("tiny"), depth=2) as ex:
        x = np.arange(16, dtype=np.float32).reshape(1, 16)
        bad = np.zeros((2, 16), np.float32)

        def abandon():
            it = ex.imap([x, x, x, bad, x])
            try:
                for _ in it:
                    pass
            except fastexec.BatchError as exc:
                assert exc.index == 3 and isinstance(exc.error, ValueError)
            it = ex.imap([x] * 5)
            next(it)
            it.close()

        abandon()
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            for _ in range(300):
                abandon()
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        assert grown < 32_000, f"300 abandoned imaps left {grown} bytes held"
        assert [o[0].tolist() for o in ex.imap([x, 2 * x, 3 * x])] == [x.tolist(), (2 * x).tolist(), (3 * x).tolist()]


# ---------------------------------------------------------------- failures inside device work


FAULT_RUN_CHILD = child_code("""
    import faulthandler
    faulthandler.dump_traceback_later(10, exit=True)   # a hang ends the child (healthy: well under 1 s)
    name = "multi-io"
    where = sys.argv[1]
    inputs, expected = T.sample_case(name)
    b = T.batch_of(name)
    nb = len(T.split(inputs, b))
    pos = {"first": 0, "middle": nb // 2, "last": nb - 1}[where]
    with fastexec.Device(0) as dev:
        for depth, instances in T.CONFIGS:
            print(json.dumps({"start": [depth, instances]}), flush=True)
            rec = {"depth": depth, "instances": instances, "pos": pos, "nb": nb}
            with fastexec.Model(emulator.sample_model(name), device=dev) as m, \\
                    fastexec.Executor(m, depth=depth, instances=instances) as ex:
                with T.fault(f"task:aclmdlExecuteAsync:{pos + 1}:{T.FAULT_CODE}"):
                    try:
                        ex.run(inputs)
                        rec["raised"] = None
                    except fastexec.BatchError as e:
                        rec["raised"] = "BatchError"
                        rec["index"] = e.index
                        rec["error"] = [type(e.error).__name__, isinstance(e.error, fastexec.AclError), getattr(e.error, "code", None)]
                        rec["completed"] = list(e.completed)
                        rec["rows_ok"] = [T.outputs_match_rows(e.outputs, expected, b, k) for k in e.completed]
                    except Exception as e:
                        rec["raised"] = f"{type(e).__name__}: {e}"
                got = ex.run(inputs)
                rec["after_ok"] = all(np.array_equal(g, x, equal_nan=True) for g, x in zip(got, expected))
            print(json.dumps(rec), flush=True)
    c = emulator.counters()
    print(json.dumps({"live": T.live(), "findings": c["findings"]}))
""")


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_run_batch_failure(where):
    """A device failure in one batch of run(): BatchError naming it, every other batch
    completed and correct, the executor usable after. In a subprocess: a failure here has
    crashed the interpreter."""
    proc = run_child(FAULT_RUN_CHILD, timeout=60, args=[where])
    lines = child_lines(proc)
    if proc.returncode != 0:
        started = [ln["start"] for ln in lines if "start" in ln]
        how = "hung (killed after 10 s)" if "Timeout" in proc.stderr else f"died (exit {proc.returncode})"
        pytest.fail(f"the child {how} in run() with a failing batch at the {where} position, "
                    f"during (depth, instances) = {started[-1] if started else None}\n{proc.stderr[-2500:]}")
    recs = [ln for ln in lines if "depth" in ln]
    assert len(recs) == len(CONFIGS)
    for rec in recs:
        ctx = f"depth={rec['depth']} instances={rec['instances']} failing batch {rec['pos']}"
        assert rec["raised"] == "BatchError", ctx
        assert rec["index"] == rec["pos"], ctx
        assert rec["error"] == ["AclError", True, FAULT_CODE], ctx
        assert rec["completed"] == [k for k in range(rec["nb"]) if k != rec["pos"]], ctx
        assert all(rec["rows_ok"]), ctx
        assert rec["after_ok"], ctx
    assert set(lines[-1]["live"].values()) == {0}
    assert lines[-1]["findings"] == 0


@pytest.mark.parametrize("depth,instances", CONFIGS, ids=[f"depth{d}-x{i}" for d, i in CONFIGS])
def test_imap_batch_failure(model_of, depth, instances):
    name = "multi-io"
    inputs, expected = sample_case(name)
    batches, exp = split(inputs, 2), split(expected, 2)
    nb = len(batches)
    window = depth * instances
    with fastexec.Executor(model_of(name), depth=depth, instances=instances) as ex:
        for pos in (0, nb // 2, nb - 1):
            yielded = []
            with fault(f"task:aclmdlExecuteAsync:{pos + 1}:{FAULT_CODE}"):
                with pytest.raises(fastexec.BatchError) as ei:
                    for outs in ex.imap(batches):
                        yielded.append(outs)
            e = ei.value
            assert e.index == pos
            assert isinstance(e.error, fastexec.AclError) and e.error.code == FAULT_CODE
            assert len(yielded) == pos, "imap must yield every batch before the failed one"
            for k, outs in enumerate(yielded):
                assert_outputs_equal(outs, exp[k], f"imap batch {k} before the failure at {pos}")
            assert [k for k, _ in e.completed] == list(range(pos + 1, min(pos + window, nb))), \
                "completed: the later in-flight batches, in order"
            for k, outs in e.completed:
                assert_outputs_equal(outs, exp[k], f"completed batch {k} after the failure at {pos}")
            assert_outputs_equal(ex.run(inputs), expected, f"run after a failure at {pos}")


@pytest.mark.parametrize("depth,instances", CONFIGS, ids=[f"depth{d}-x{i}" for d, i in CONFIGS])
def test_submit_batch_failure(model_of, depth, instances):
    name = "multi-io"
    inputs, expected = sample_case(name)
    batches, exp = split(inputs, 2), split(expected, 2)
    with fastexec.Executor(model_of(name), depth=depth, instances=instances) as ex:
        for pos in (0, 5):
            with fault(f"task:aclmdlExecuteAsync:{pos + 1}:{FAULT_CODE}"):
                tickets = [ex.submit(bt) for bt in batches]   # more than depth x instances: some collected early
            for k in [1, 0, *range(2, len(tickets))]:
                if k == pos:
                    with pytest.raises(fastexec.BatchError) as ei:
                        ex.result(tickets[k])
                    assert isinstance(ei.value.error, fastexec.AclError) and ei.value.error.code == FAULT_CODE
                    with pytest.raises(ValueError, match="ticket"):   # reported once
                        ex.result(tickets[k])
                else:
                    assert_outputs_equal(ex.result(tickets[k]), exp[k], f"ticket of batch {k}, failure at {pos}")
            assert_outputs_equal(ex.run(inputs), expected, "run after a failed ticket")


def test_submit_batch_error_index_is_the_ticket(model_of):
    """BatchError.index is 'the ticket for submit/result' (fastexec/errors.py)."""
    x = np.ones((1, 16), np.float32)
    with fastexec.Executor(model_of("tiny"), depth=2) as ex:
        with fault(f"task:aclmdlExecuteAsync:2:{FAULT_CODE}"):
            tickets = [ex.submit(x) for _ in range(3)]
        results = []
        for t in tickets:
            try:
                results.append(ex.result(t))
            except fastexec.BatchError as e:
                results.append(e)
        assert isinstance(results[1], fastexec.BatchError)
        assert results[1].index == tickets[1]


@pytest.mark.parametrize("depth,instances", CONFIGS, ids=[f"depth{d}-x{i}" for d, i in CONFIGS])
def test_submit_call_failure(model_of, depth, instances):
    """A refused aclmdlExecuteAsync call: submit raises the AclError at once; nothing half done."""
    name = "multi-io"
    inputs, expected = sample_case(name)
    batches, exp = split(inputs, 2), split(expected, 2)
    with fastexec.Executor(model_of(name), depth=depth, instances=instances) as ex:
        with fault(f"call:aclmdlExecuteAsync:2:{FAULT_CODE}"):
            t0 = ex.submit(batches[0])
            with pytest.raises(fastexec.AclError) as ei:
                ex.submit(batches[1])
            assert not isinstance(ei.value, fastexec.BatchError)
            assert ei.value.code == FAULT_CODE and ei.value.api == "aclmdlExecuteAsync"
            t1 = ex.submit(batches[1])
        assert_outputs_equal(ex.result(t1), exp[1], "the batch submitted again")
        assert_outputs_equal(ex.result(t0), exp[0], "the batch before the refused call")
        assert_outputs_equal(ex.run(inputs), expected, "run after a refused call")
        assert ex.stats()["batches"] == 2 + len(batches)


# ---------------------------------------------------------------- close


def test_close_is_idempotent_and_drains(model_of):
    name = "multi-io"
    inputs, expected = sample_case(name)
    batches = split(inputs, 2)
    m = model_of(name)
    ex = fastexec.Executor(m, depth=3)
    before = emulator.counters()["tasks_run"]
    ex.result(ex.submit(batches[0]))
    per_batch = emulator.counters()["tasks_run"] - before
    before = emulator.counters()["tasks_run"]
    # the last batch's execute holds its stream for 30 ms: it is still queued when close() runs
    # (freeing its buffers early would be a checked-mode finding, caught by no_leaks)
    with fault("stall:aclmdlExecuteAsync:5:30"):
        for bt in batches[:5]:
            ex.submit(bt)
        ex.close()
    assert emulator.counters()["tasks_run"] - before == 5 * per_batch, "close() must let every queued batch run"
    assert ex.closed
    ex.close()
    assert ex.closed
    assert not m.closed, "an Executor does not close a Model it was given"
    with fastexec.Executor(m) as ex2:
        assert_outputs_equal(ex2.run(inputs), expected, "a new executor on the same model")


def test_methods_after_close_raise_closed_error(model_of):
    inputs, expected = sample_case("multi-io")
    batch = [a[:2] for a in inputs]
    ex = fastexec.Executor(model_of("multi-io"))
    ex.result(ex.submit(batch))
    pending = ex.staged()
    ex.close()
    calls = {
        "run": lambda: ex.run(inputs),
        "run(out=)": lambda: ex.run(inputs, out=[np.empty_like(e) for e in expected]),
        "submit": lambda: ex.submit(batch),
        "imap": lambda: next(ex.imap([batch])),
        "staged": lambda: ex.staged(),
        "staged obtained before close": lambda: pending.__enter__(),
    }
    wrong = []
    for what, call in calls.items():
        try:
            call()
            wrong.append(f"{what}: no exception")
        except fastexec.ClosedError:
            pass
        except Exception as e:
            wrong.append(f"{what}: {type(e).__name__}: {e}")
    assert wrong == []


def test_stats_after_close_raises_closed_error(model_of):
    ex = fastexec.Executor(model_of("tiny"))
    ex.close()
    with pytest.raises(fastexec.ClosedError):
        ex.stats()


def test_result_after_close_raises_closed_error():
    """result() of a ticket taken before close and of one still in flight at close. In a
    subprocess: the second has crashed the interpreter."""
    proc = run_child(child_code("""
        import faulthandler
        faulthandler.dump_traceback_later(10, exit=True)
        x = np.ones((1, 16), np.float32)
        ex = fastexec.Executor(emulator.sample_model("tiny"), depth=2)
        taken = ex.submit(x)
        ex.result(taken)
        in_flight = ex.submit(x)
        ex.close()
        for what, t in (("taken", taken), ("in flight", in_flight)):
            print(json.dumps({"start": what}), flush=True)
            try:
                ex.result(t)
                print(json.dumps({what: None}), flush=True)
            except Exception as e:
                print(json.dumps({what: type(e).__name__}), flush=True)
        print(json.dumps({"live": T.live()}))
    """), timeout=60)
    lines = child_lines(proc)
    outcome = {k: v for ln in lines for k, v in ln.items() if k in ("taken", "in flight")}
    started = [ln["start"] for ln in lines if "start" in ln]
    assert proc.returncode == 0, f"the child died (exit {proc.returncode}) in result() of the {started[-1]} ticket " \
                                 f"after close; outcomes so far {outcome}\n{proc.stderr[-2000:]}"
    assert outcome == {"taken": "ClosedError", "in flight": "ClosedError"}
    assert set(lines[-1]["live"].values()) == {0}


def test_context_manager_closes_executor_not_given_model(model_of):
    inputs, expected = sample_case("dynamic-batch")
    m = model_of("dynamic-batch")
    with fastexec.Executor(m, instances=2) as ex:
        assert_outputs_equal(ex.run(inputs), expected, "run")
        models = list(ex.models)
    assert ex.closed
    assert not models[0].closed and models[1].closed, "the executor closes the model it loaded itself, only that"
    with pytest.raises(fastexec.ClosedError):
        ex.run(inputs)


def _close_left_over(models, device):
    """After a failed close(): release what it left, so that the failure does not spill into
    the next test."""
    for mm in reversed(models):
        with contextlib.suppress(Exception):
            mm.close()
    if not device.closed:
        with contextlib.suppress(Exception):
            device.close()


def test_executor_from_path_owns_model_and_device(no_leaks):
    inputs, expected = sample_case("multi-io")
    before = live()
    with fastexec.Executor(emulator.sample_model("multi-io")) as ex:
        models, device = list(ex.models), ex.device
        assert len(models) == 1 and not models[0].closed
        assert_outputs_equal(ex.run(inputs), expected, "run")
    assert models[0].closed and device.closed
    assert live() == before
    with open(emulator.sample_model("tiny"), "rb") as f:
        data = f.read()
    with fastexec.Executor(data) as ex:   # bytes, too
        x = np.ones((1, 16), np.float32)
        assert_outputs_equal(ex.run(x), [x], "from bytes")
        models, device = list(ex.models), ex.device
    assert models[0].closed and device.closed
    assert live() == before


def test_executor_from_path_with_instances_closes_everything(no_leaks):
    inputs, expected = sample_case("multi-io")
    before = live()
    ex = fastexec.Executor(emulator.sample_model("multi-io"), instances=2)
    models, device = list(ex.models), ex.device
    try:
        assert len(models) == 2 and all(mm.device is device for mm in models)
        assert_outputs_equal(ex.run(inputs), expected, "run")
        ex.close()
        assert ex.closed
        assert all(mm.closed for mm in models) and device.closed
        assert live() == before
    finally:
        _close_left_over(models, device)


# ACL calls the constructor makes (the first one, and a later one for those it makes many of).
CONSTRUCTION_CALLS = [("aclrtCreateStream", 1), ("aclrtMalloc", 1), ("aclrtMalloc", 5), ("aclrtMallocHost", 3),
                      ("aclmdlAddDatasetBuffer", 4), ("aclrtCreateEvent", 1), ("aclrtCreateEvent", 9),
                      ("aclmdlExecuteAsync", 1)]


@pytest.mark.parametrize("api,nth", CONSTRUCTION_CALLS, ids=[f"{a}-{n}" for a, n in CONSTRUCTION_CALLS])
def test_construction_is_all_or_nothing(model_of, api, nth):
    """The constructor failing at any ACL call (the warm-up's execute included) raises that
    call's error and leaves nothing behind: no stream, buffer, event or dataset, and the Model
    is no longer held (it closes)."""
    m = model_of("multi-io")
    before = live()
    with fault(f"call:{api}:{nth}:{FAULT_CODE}"):
        with pytest.raises(fastexec.AclError) as ei:
            fastexec.Executor(m, depth=2, instances=1)
    assert ei.value.code == FAULT_CODE and ei.value.api == api
    gc.collect()
    assert live() == before
    m.close()
    assert m.closed


def test_construction_refuses_a_closed_exec_config(device, no_leaks):
    cfg = None
    try:
        cfg = fastexec.ExecConfig(stream_sync_timeout_ms=100)
    except fastexec.AclNotAvailableError:
        pytest.skip("this runtime has no exec configs")
    cfg.close()
    before = live()
    with pytest.raises(fastexec.ClosedError, match="ExecConfig is closed"):
        fastexec.Executor(emulator.sample_model("tiny"), config=cfg)
    assert live() == before


def test_extra_instances_load_from_the_executors_own_source(device, no_leaks):
    """The executor keeps the source it needs for more instances; a Model loaded from bytes keeps
    no copy of them, so instances > 1 of such a Model asks for the bytes."""
    with open(emulator.sample_model("tiny"), "rb") as f:
        data = f.read()
    x = np.arange(16, dtype=np.float32).reshape(1, 16)
    with fastexec.Model(data, device=device) as m:
        with pytest.raises(ValueError, match="loaded from bytes"):
            fastexec.Executor(m, instances=2)
        assert not m.closed
    with fastexec.Executor(data, instances=2) as ex:
        assert len(ex.models) == 2
        assert_outputs_equal(ex.run(np.concatenate([x, 2 * x])), [np.concatenate([x, 2 * x])], "two instances from bytes")


# ---------------------------------------------------------------- threads


def _threads(target, args_list):
    errors = []
    barrier = threading.Barrier(len(args_list))

    def wrap(*args):
        try:
            target(barrier, *args)
        except BaseException:
            barrier.abort()
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=wrap, args=args) for args in args_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_threads_share_one_executor(model_of):
    name = "multi-io"
    rounds, n = 3, 2 * 40 + 1   # 41 batches per round, the last partial
    with fastexec.Executor(model_of(name), depth=3, instances=2) as ex:
        def worker(barrier, seed):
            inputs = make_inputs(name, n, seed)
            expected = expected_outputs(name, inputs)
            bs, es = split(inputs, 2), split(expected, 2)
            barrier.wait(timeout=60)
            for r in range(rounds):
                for start in range(0, len(bs), 4):
                    tickets = [(k, ex.submit(bs[k])) for k in range(start, min(start + 4, len(bs)))]
                    for k, t in reversed(tickets):
                        assert_outputs_equal(ex.result(t), es[k], f"thread {seed} round {r} batch {k}")
                with ex.staged() as sb:
                    for view, a in zip(sb.inputs, bs[r]):
                        view[:] = a
                assert_outputs_equal(ex.result(sb.ticket), es[r], f"thread {seed} round {r} staged")
                rows = 2 * (5 + r) + 1
                assert_outputs_equal(ex.run([a[:rows] for a in inputs]), [e[:rows] for e in expected],
                                     f"thread {seed} run round {r}")

        _threads(worker, [(seed,) for seed in (11, 12, 13, 14)])
        per_thread = sum(41 + 1 + (2 * (5 + r) + 1 + 1) // 2 for r in range(rounds))
        assert ex.stats()["batches"] == 4 * per_thread


def test_threads_submit_on_one_collect_on_another(model_of):
    """A producer thread submits, a consumer thread (which never submitted) takes the results."""
    import queue
    name = "dynamic-batch"
    inputs, expected = sample_case(name)
    bs, es = split(inputs, 8), split(expected, 8)
    rounds = 20
    tickets = queue.Queue()
    with fastexec.Executor(model_of(name), depth=2, instances=2) as ex:
        def producer(barrier):
            barrier.wait(timeout=60)
            for r in range(rounds):
                for k, bt in enumerate(bs):
                    tickets.put((k, ex.submit(bt)))
            tickets.put(None)

        def consumer(barrier):
            barrier.wait(timeout=60)
            taken = 0
            while (item := tickets.get(timeout=60)) is not None:
                k, t = item
                assert_outputs_equal(ex.result(t), es[k], f"ticket {t} (batch {k})")
                taken += 1
            assert taken == rounds * len(bs)

        _threads(lambda barrier, role: (producer if role == "p" else consumer)(barrier), [("p",), ("c",)])
        assert ex.stats()["batches"] == rounds * len(bs)


def test_threads_each_with_own_executor(device):
    names = ("multi-io", "dynamic-batch", "tiny", "resnet50-int8")

    def worker(barrier, k):
        name = names[k]
        inputs, expected = sample_case(name)
        b = batch_of(name)
        with fastexec.Model(emulator.sample_model(name), device=device) as m, \
                fastexec.Executor(m, depth=k + 1) as ex:
            barrier.wait(timeout=60)
            for r in range(5):
                assert_outputs_equal(ex.run(inputs), expected, f"{name} run round {r}")
                got = list(ex.imap(split(inputs, b)))
                assert_outputs_equal([np.concatenate(o) for o in zip(*got)], expected, f"{name} imap round {r}")
                tickets = [ex.submit(bt) for bt in split(inputs, b)]
                got = [ex.result(t) for t in tickets]
                assert_outputs_equal([np.concatenate(o) for o in zip(*got)], expected, f"{name} submit round {r}")

    _threads(worker, [(k,) for k in range(4)])


# ---------------------------------------------------------------- GIL


@pytest.mark.timing
def test_gil_released_during_run():
    """While another thread runs a long sequence of batches (real durations: slow-link profile,
    `balanced`, ~1 ms per stage), a pure-Python thread keeps running: the longest time it is
    kept off the GIL is a small fraction of the run (a run() that held the GIL would keep it
    off for the whole run). A ratio within one run, so the machine's load does not decide it."""
    proc = run_child(child_code("""
        import threading, time
        prof = emulator.profile()
        assert prof["name"] == "slow-link" and not prof["fast"]
        name = "balanced"
        with fastexec.Executor(emulator.sample_model(name), depth=3) as ex:
            x = T.make_inputs(name, 400 * ex.batch_size, seed=3)
            out = [np.empty_like(x[0])]
            ex.run([a[:40 * ex.batch_size] for a in x])     # warm-up
            started, finished = threading.Event(), threading.Event()
            span = {}

            def runner():
                started.wait()
                t0 = time.perf_counter()
                ex.run(x, out=out)
                span["run"] = (t0, time.perf_counter())
                finished.set()

            th = threading.Thread(target=runner)
            th.start()
            stamps = []
            started.set()
            while not finished.is_set():
                stamps.append(time.perf_counter())
            th.join()
            t0, t1 = span["run"]
            inside = [t for t in stamps if t0 <= t <= t1]
            gaps = [b - a for a, b in zip(inside, inside[1:])]
            edges = [inside[0] - t0, t1 - inside[-1]] if inside else [t1 - t0]
            expected = T.expected_outputs(name, x)
            ok = bool(np.array_equal(out[0], expected[0]))
        print(json.dumps({"run_s": t1 - t0, "max_gap_s": max(gaps + edges), "stamps": len(inside), "ok": ok,
                          "live": T.live()}))
    """), FASTEXEC_EMU_FAST="0", FASTEXEC_EMU_PROFILE="slow-link")
    res = child_result(proc)
    print(f"GIL: run() {res['run_s']:.2f} s, the other thread's longest wait {res['max_gap_s'] * 1e3:.1f} ms, "
          f"{res['stamps']} iterations")
    assert res["ok"], "run() outputs differ from the reference"
    assert set(res["live"].values()) == {0}
    assert res["stamps"] > 100
    assert res["max_gap_s"] < res["run_s"] / 4, res


# ---------------------------------------------------------------- stats


def check_stats_shape(s, batches, batch_size):
    assert s["batches"] == batches
    assert isinstance(s["wall_s"], float) and s["wall_s"] > 0
    for key in SERIES:
        d = s[key]
        assert d["count"] == batches, key
        for f in ("mean_ms",) + PERCENTILES:
            assert isinstance(d[f], float) and d[f] >= 0, (key, f, d[f])
        assert d["p50_ms"] <= d["p90_ms"] <= d["p95_ms"] <= d["p99_ms"], (key, d)
    tp = s["throughput"]
    assert tp["batches_per_s"] == pytest.approx(batches / s["wall_s"])
    assert tp["samples_per_s"] == pytest.approx(batches * batch_size / s["wall_s"])
    bound = s["bound"]
    h, c, d = s["h2d"]["mean_ms"], s["execute"]["mean_ms"], s["d2h"]["mean_ms"]
    # one engine of each kind per device: overlap is bound by the slowest stage, serial by the
    # sum spread over the instances' streams (never below the slowest stage)
    k = s["instances"]
    period = max(h, c, d) if s["mode"] == "overlap" else max((h + c + d) / k, h, c, d)
    assert bound["period_ms"] == pytest.approx(period)
    assert bound["samples_per_s"] == pytest.approx(batch_size * 1e3 / period)
    assert isinstance(bound["efficiency"], float) and bound["efficiency"] > 0


@pytest.mark.parametrize("instances", [1, 2])
def test_stats_counts_every_batch_after_construction(model_of, instances):
    name = "multi-io"
    with fastexec.Executor(model_of(name), depth=2, instances=instances) as ex:
        assert ex.stats()["batches"] == 0, "the warm-up is not counted"
        ran = check_all_paths(ex, name)
        s = ex.stats()
        check_stats_shape(s, ran, 2)
        assert s["depth"] == 2 and s["instances"] == instances and s["batch_size"] == 2
        assert s["execute_api"] == "aclmdlExecuteAsync"


def test_stats_before_any_batch(model_of):
    with fastexec.Executor(model_of("tiny")) as ex:
        s = ex.stats()
    assert s["batches"] == 0 and s["wall_s"] == 0
    for key in SERIES:
        assert s[key]["count"] == 0 and s[key]["mean_ms"] is None
    assert s["throughput"] == {"samples_per_s": None, "batches_per_s": None}
    assert "bound" in s, "stats() has no 'bound' before the first batch"
    assert s["bound"]["period_ms"] is None and s["bound"]["efficiency"] is None


@pytest.mark.timing
def test_stats_real_timing():
    """With modelled durations, the execute stage is the model's compute time."""
    proc = run_child(child_code("""
        out = {}
        for name, rows in (("resnet50-int8", 8 * 30 + 3), ("dynamic-batch", 8 * 30 + 5)):
            with fastexec.Executor(emulator.sample_model(name), depth=2) as ex:
                x = T.make_inputs(name, rows, seed=4)
                before = emulator.counters()["overruns"]
                got = ex.run(x)
                overruns = emulator.counters()["overruns"] - before
                ok = all(np.array_equal(g, e, equal_nan=True) for g, e in zip(got, T.expected_outputs(name, x)))
                out[name] = {"stats": ex.stats(), "ok": ok, "overruns": overruns}
        c = emulator.counters()
        print(json.dumps({"runs": out, "overruns": c["overruns"], "live": T.live()}))
    """), FASTEXEC_EMU_FAST="0")
    res = child_result(proc)
    assert set(res["live"].values()) == {0}
    for name, r in res["runs"].items():
        s, model = r["stats"], SAMPLES[name]
        assert r["ok"], name
        check_stats_shape(s, 31, model.max_batch)
        compute_ms = (model.compute_us + model.per_sample_us * model.max_batch) / 1e3
        print(f"{name}: execute mean {s['execute']['mean_ms']:.4f} ms (model {compute_ms} ms), "
              f"h2d {s['h2d']['mean_ms']:.4f} ms, d2h {s['d2h']['mean_ms']:.4f} ms, "
              f"efficiency {s['bound']['efficiency']:.3f}")
        # Medians: a batch whose host thread was preempted between two calls (a loaded machine)
        # stretches its own stage, not the typical one.
        assert s["execute"]["p50_ms"] == pytest.approx(compute_ms, abs=0.02), name
        assert s["end_to_end"]["p50_ms"] >= compute_ms, name
        # copies: latency + bytes / bandwidth of the default profile (10 us, 24 GB/s each way). In
        # overlap mode the copy-in stream is idle when a batch arrives, so its stage also holds
        # the host's gap between recording the start event and queueing the copy.
        # When the real copies took longer than modelled (the emulator counts those tasks as
        # overruns: a busy or slow host), the events show the real time, so only a lower bound holds.
        slack = 0.025 if s["mode"] == "overlap" else 0.01
        for stage, td in (("h2d", model.inputs[0]), ("d2h", model.outputs[0])):
            modelled = 0.010 + td.nbytes(model.max_batch) / 24e6
            if r["overruns"] == 0:
                assert s[stage]["p50_ms"] == pytest.approx(modelled, abs=slack), (name, stage)
            else:
                assert s[stage]["p50_ms"] >= modelled - slack, (name, stage, r["overruns"])


# ---------------------------------------------------------------- memory


def test_memory_flat_over_10000_batches():
    proc = run_child(child_code("""
        import os
        PAGE = os.sysconf("SC_PAGE_SIZE")

        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * PAGE

        res = {}
        x = np.arange(16, dtype=np.float32).reshape(1, 16)
        with fastexec.Executor(emulator.sample_model("tiny"), depth=2) as ex:
            marks = {}
            for i in range(1, 10001):
                out = ex.result(ex.submit(x + i))
                assert out[0][0, 0] == i, (i, out)
                if i in (2000, 10000):
                    marks[i] = rss()
            res["submit/result"] = marks
            marks = {}
            for i, out in enumerate(ex.imap(x + k for k in range(1, 10001)), 1):
                assert out[0][0, 0] == i, (i, out)
                if i in (2000, 10000):
                    marks[i] = rss()
            res["imap"] = marks
            xs = x + np.arange(2000, dtype=np.float32)[:, None]
            o = [np.empty_like(xs)]
            marks = {}
            for call in range(1, 6):
                ex.run(xs, out=o)
                assert np.array_equal(o[0], xs)
                marks[2000 * call] = rss()
            res["run(out=)"] = {k: marks[k] for k in (2000, 10000)}
            batches = ex.stats()["batches"]
        print(json.dumps({"marks": res, "batches": batches, "live": T.live()}))
    """))
    res = child_result(proc)
    assert res["batches"] == 30000
    assert set(res["live"].values()) == {0}
    for path, marks in res["marks"].items():
        grown = marks["10000"] - marks["2000"]
        print(f"{path}: RSS {marks['2000'] / 2**20:.1f} MiB at batch 2000, {marks['10000'] / 2**20:.1f} MiB at "
              f"batch 10000 ({grown / 2**10:+.0f} KiB)")
        assert grown < 3 * 2**20, (path, marks)


# ---------------------------------------------------------------- naive_run


@pytest.mark.parametrize("name", NAMES)
def test_naive_run_matches_executor(model_of, name):
    inputs, expected = sample_case(name)
    with fastexec.Executor(model_of(name), depth=2) as ex:
        got_ex = ex.run(inputs)
    got_naive = fastexec.naive_run(model_of(name), inputs)   # a separate Model: no sync/async mixing
    assert_outputs_equal(got_naive, got_ex, "naive_run vs Executor.run")
    assert_outputs_equal(got_naive, expected, "naive_run vs the reference")


def test_model_execute_checks_its_buffers(model_of, no_leaks):
    """Model.execute (the synchronous call naive_run is built on) names the tensor it refuses."""
    m = model_of("multi-io")
    dev = m.device
    ins = [fastexec.DeviceBuffer(dev, s.nbytes) for s in m.inputs]
    outs = [fastexec.DeviceBuffer(dev, s.nbytes) for s in m.outputs]
    small = fastexec.DeviceBuffer(dev, 8)
    try:
        with pytest.raises(ValueError, match=r"expected 2 inputs \(a, b\), got 1"):
            m.execute(ins[:1], outs)
        with pytest.raises(ValueError, match=r"'b_out' needs a DeviceBuffer of at least 128 bytes, got 8 bytes"):
            m.execute(ins, [outs[0], small])
        m.execute(ins, outs)
    finally:
        for b in ins + outs + [small]:
            b.close()


def test_mixing_sync_and_async_on_one_model_is_refused():
    """ACL forbids one model executing both ways: a checked-mode finding (500002), so this test
    checks the live counters itself and expects exactly its two deliberate findings."""
    inputs, expected = sample_case("multi-io")
    before = emulator.counters()
    with fastexec.Device(0) as dev:
        with fastexec.Model(emulator.sample_model("multi-io"), device=dev) as m:
            with fastexec.Executor(m) as ex:          # async (the warm-up) first
                with pytest.raises(fastexec.AclError) as ei:
                    fastexec.naive_run(m, inputs)
                assert ei.value.code == 500002
                assert_outputs_equal(ex.run(inputs), expected, "the executor after the refused naive_run")
        with fastexec.Model(emulator.sample_model("multi-io"), device=dev) as m:
            assert_outputs_equal(fastexec.naive_run(m, inputs), expected, "naive_run")   # sync first
            with pytest.raises(fastexec.AclError) as ei:
                fastexec.Executor(m)
            assert ei.value.code == 500002
    gc.collect()
    after = emulator.counters()
    assert {k: after[k] for k in LIVE} == {k: before[k] for k in LIVE}
    assert after["findings"] - before["findings"] == 2


def test_calls_inside_a_staged_block(model_of):
    """A staged block reserves a slot, it holds no lock: the executor's other methods work inside
    it, and a call that would need the block's own slot raises instead of waiting for itself."""
    inputs, expected = sample_case("multi-io")
    with fastexec.Executor(model_of("multi-io"), depth=2) as ex:
        B = ex.batch_size
        with ex.staged() as batch:
            inner = ex.result(ex.submit([a[:B] for a in inputs]))
            assert ex.stats()["batches"] == 1
            for view, a in zip(batch.inputs, inputs):
                view[:] = a[:B]
        assert_outputs_equal(inner, [e[:B] for e in expected], "submit inside a staged block")
        assert_outputs_equal(ex.result(batch.ticket), [e[:B] for e in expected], "the staged batch")
    with fastexec.Executor(model_of("multi-io"), depth=1) as ex:
        with ex.staged() as batch:
            with pytest.raises(fastexec.FastexecError, match="this thread's own staged"):
                ex.submit([a[:B] for a in inputs])
            with pytest.raises(fastexec.FastexecError, match="inside a staged"):
                ex.close()
            for view, a in zip(batch.inputs, inputs):
                view[:] = a[:B]
        assert_outputs_equal(ex.result(batch.ticket), [e[:B] for e in expected], "staged after refused calls")
