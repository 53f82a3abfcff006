"""The pipeline core (issue 12): one test per defect reproduced on the executor before the
rewrite, each asserting the new core's contract.

Scenarios that crashed, hung or deadlocked the old executor run in child processes with a
timeout (the child prints JSON lines; the parent asserts on them and on the exit code), so the
suite itself never crashes or hangs. Other cases run here under `no_leaks`. Device failures come
from the emulator's fault injection (rules added at run time through fxemuAddFault, so their N
counts from the moment they are added, after the executor's warm-up), busy streams from its
stall rules, never from sleeps. Time assertions are ratios of a known stall or run length,
marked `timing`. Every case ends with the emulator's live counters back at their baseline.

The helpers above the tests are imported by the children (``import test_pipeline_core``).
"""
import json
import os
import pathlib
import select
import signal
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time

import numpy as np
import pytest

import fastexec
from fastexec import emulator
from fastexec.emulator.model_file import ModelDef, TensorDef, write_model
from fastexec.emulator.samples import SAMPLES

# One copy of the shared helpers (the children use them as P.add_fault, P.live, ...).
from test_executor import LIVE, add_fault, clear_faults, expected_of, fault, live  # noqa: F401

TESTS_DIR = pathlib.Path(__file__).resolve().parent
MODES = ("overlap", "serial")
EXEC_FAULT = 507011      # ACL_ERROR_RT_MODEL_EXECUTE
DESTROY_FAULT = 507899   # ACL_ERROR_RT_DRV_INTERNAL_ERROR
OK, ERR_CLOSED = 0, 2    # fastexec_status values of the C API

# A model of our own: distinctive tensor names (for error messages), the same dtype and shape in
# and out (so an output array can alias an input), 1.2 ms of compute (3000 batches take 3.6 s
# with real timing) and tiny copies.
CORE = ModelDef(
    name="core",
    inputs=(TensorDef("pixels", "float32", "ND", (4, 16)),),
    outputs=(TensorDef("scores", "float32", "ND", (4, 16)),),
    kernel="affine",
    scale=2.0,
    bias=0.5,
    compute_us=1200.0,
)


# ---------------------------------------------------------------- helpers (also used by children)


def make_inputs(mdef, n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for td in mdef.inputs:
        shape = (n,) + tuple(td.dims[1:])
        dt = np.dtype(td.dtype)
        if dt.kind == "u":
            out.append(rng.integers(0, 256, shape, dtype=dt))
        elif dt.kind == "i":
            out.append(rng.integers(-1000, 1000, shape, dtype=dt))
        else:
            out.append(rng.uniform(-8, 8, shape).astype(dt))
    return out


def split(arrays, b):
    n = arrays[0].shape[0]
    return [[a[s:s + b] for a in arrays] for s in range(0, n, b)]


def same(got, want):
    """Whether `got` (a list of arrays) equals `want` exactly: count, dtype, shape and bits."""
    if not isinstance(got, (list, tuple)) or len(got) != len(want):
        return False
    return all(isinstance(g, np.ndarray) and g.dtype == w.dtype and g.shape == w.shape and g.tobytes() == w.tobytes()
               for g, w in zip(got, want))


def assert_same(got, want, what):
    assert isinstance(got, (list, tuple)) and len(got) == len(want), f"{what}: got {type(got).__name__} of {len(got)}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert isinstance(g, np.ndarray), f"{what}: output {i} is a {type(g).__name__}"
        assert (g.dtype, g.shape) == (w.dtype, w.shape), f"{what}: output {i} is {g.dtype}{g.shape}, expected {w.dtype}{w.shape}"
        assert g.tobytes() == w.tobytes(), f"{what}: output {i} differs from the reference"


def rows_ok(outputs, want, b, k):
    """Whether rows of batch k of whole-array `outputs` equal the reference."""
    sl = slice(k * b, (k + 1) * b)
    return all(np.array_equal(o[sl], w[sl]) for o, w in zip(outputs, want))


def exc_info(e):
    """A JSON-able description of an exception (and of the error a BatchError carries)."""
    d = {"type": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__], "msg": str(e)[:500]}
    for attr in ("index", "code", "api"):
        v = getattr(e, attr, None)
        if isinstance(v, (int, str)) or v is None:
            d[attr] = v
    inner = getattr(e, "error", None)
    if isinstance(inner, BaseException):
        d["error"] = exc_info(inner)
    return d


def emit(**kw):
    print(json.dumps(kw), flush=True)


def child_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_")}
    env.update(FASTEXEC_BACKEND="emulator", FASTEXEC_EMU_FAST="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


CHILD_PRELUDE = f"""
import json, os, sys, time, threading
sys.path.insert(0, {str(TESTS_DIR)!r})
import numpy as np
import fastexec
from fastexec import emulator
from fastexec.emulator.samples import SAMPLES
import test_pipeline_core as P
from test_pipeline_core import emit, exc_info
import faulthandler
faulthandler.enable()
"""


def child_argv(body, *args):
    return [sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(body), *map(str, args)]


def run_child(body, *args, timeout=60, **env):
    """Runs `body` in a fresh interpreter; a hang becomes a failed assertion, not a hung suite."""
    try:
        return subprocess.run(child_argv(body, *args), capture_output=True, text=True, env=child_env(**env),
                              timeout=timeout, cwd=str(TESTS_DIR))
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        pytest.fail(f"the child hung: killed after {timeout} s\nstdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}")


def spawn_child(body, *args, **env):
    return subprocess.Popen(child_argv(body, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(**env), cwd=str(TESTS_DIR))


def finish(proc, timeout):
    """communicate() with a timeout that kills the child and fails the test."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the child hung: killed after {timeout} s\nstdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def finish_all(procs, timeout):
    """finish() for children running side by side: every one is waited for (or killed) before
    anything is asserted, so no child outlives the test."""
    deadline = time.monotonic() + timeout
    done, hung = {}, []
    for key, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            done[key] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            hung.append(f"{key}: stdout:\n{out[-1500:]}\nstderr:\n{err[-1500:]}")
    if hung:
        pytest.fail(f"child(ren) hung, killed after {timeout} s:\n" + "\n".join(hung))
    return done


def read_line(proc, timeout):
    """The child's next stdout line, waiting at most `timeout` s for it."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the child printed nothing within {timeout} s\nstdout:\n{out[-2000:]}\nstderr:\n{err[-3000:]}")
    line = proc.stdout.readline()
    if not line:
        out, err = proc.communicate()
        pytest.fail(f"the child exited (code {proc.returncode}) before reporting\nstderr:\n{err[-3000:]}")
    return json.loads(line)


def records(proc):
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def how_it_died(proc):
    if proc.returncode < 0:
        return f"killed by signal {signal.Signals(-proc.returncode).name}"
    return f"exited with code {proc.returncode}"


def child_records(proc, what):
    """The child's JSON lines; fails (naming the last step it reported) unless it exited cleanly."""
    recs = records(proc)
    if proc.returncode != 0:
        pytest.fail(f"{what}: the child {how_it_died(proc)}; last report {recs[-1] if recs else None}\n"
                    f"stderr:\n{proc.stderr[-3000:]}")
    return recs


def assert_live_zero(rec, what):
    assert rec["live"] == {k: 0 for k in LIVE}, f"{what}: emulator resources left: " + \
        str({k: v for k, v in rec["live"].items() if v})
    assert rec["findings"] == 0, f"{what}: the emulator's checked mode reported {rec['findings']} finding(s)"


def final_record():
    """For children: the live counters and findings at the end."""
    emit(live=live(), findings=emulator.counters()["findings"])


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def core_path(tmp_path_factory):
    return str(write_model(tmp_path_factory.mktemp("core-model") / "core.om", CORE))


@pytest.fixture(scope="module")
def ext_dir(tmp_path_factory):
    """tests/capi/race_ext.c built against the installed fastexec (as tests/test_capi.py builds its probe)."""
    d = tmp_path_factory.mktemp("race-ext")
    src = TESTS_DIR / "capi" / "race_ext.c"
    out = d / ("race_ext" + sysconfig.get_config_var("EXT_SUFFIX"))
    cmd = ["cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}",
           f"-I{fastexec.get_include()}", str(src), "-o", str(out), "-pthread"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    return str(d)


def sample(name):
    return emulator.sample_model(name)


# ---------------------------------------------------------------- 1, 2: the C API racing Python


RACE_CHILD = """
sys.path.insert(0, sys.argv[1])
import race_ext
mdef = SAMPLES["tiny"]
x = P.make_inputs(mdef, 1, seed=3)
want = P.expected_of(mdef, x)
with fastexec.Device(0) as dev:
    base = P.live()
    for i in range(30):
        mode = P.MODES[i % 2]
        instances = 2 if i % 3 == 0 else 1
        threads = (1, 2, 4)[i % 3]
        gap_us = (0, 50, 200)[(i // 3) % 3]
        emit(race=i, mode=mode, instances=instances, threads=threads, gap_us=gap_us, step="start")
        m = fastexec.Model(emulator.sample_model("tiny"), device=dev)
        ex = fastexec.Executor(m, mode=mode, instances=instances)
        race_ext.start(ex, threads, [a.tobytes() for a in x], 1, [w.tobytes() for w in want], gap_us)
        emit(race=i, step="close")
        try:
            ex.close()
            first = None
        except Exception as e:
            first = exc_info(e)
        emit(race=i, step="join")
        res = race_ext.join()
        emit(race=i, step="second close")
        try:
            ex.close()
            second = None
        except Exception as e:
            second = exc_info(e)
        closed = ex.closed
        del ex
        try:
            m.close()
            model_close = None
        except Exception as e:
            model_close = exc_info(e)
        emit(race=i, step="done", threads=threads, res=res, first=first, second=second, closed=closed, model_close=model_close,
             live=P.live(), base=base)
P.final_record()
"""


def test_close_races_c_submits(ext_dir):
    """Defect: a C thread submitting while Python calls Executor.close() segfaulted (10 of 10; the
    close went through whenever no C batch was held at that instant, and freed the slots under
    the threads), and was refused whenever one was. 30 races (both modes, one and two instances,
    1, 2 or 4 native threads looping submit/wait/release on a from_object handle) while Python
    closes the executor: close() succeeds, every C call ends in FASTEXEC_OK or
    FASTEXEC_ERR_CLOSED, every waited batch is correct, fx->close succeeds, the process never
    crashes, and the counters are back at baseline after each race."""
    proc = run_child(RACE_CHILD, ext_dir, timeout=120)
    recs = records(proc)
    done = [r for r in recs if r.get("step") == "done"]
    if proc.returncode != 0:
        steps = [r for r in recs if "race" in r]
        pytest.fail(f"the child {how_it_died(proc)} during race {steps[-1] if steps else None} "
                    f"({len(done)} of 30 races finished)\nstderr:\n{proc.stderr[-3000:]}")
    assert len(done) == 30
    allowed = {str(OK), str(ERR_CLOSED)}
    for r in done:
        ctx = f"race {r['race']}"
        res = r["res"]
        for call in ("submit", "wait", "release"):
            assert set(res[call]) <= allowed, f"{ctx}: {call} returned statuses {res[call]} ({res['last_error']})"
        assert res["mismatches"] == 0, f"{ctx}: {res['mismatches']} batch(es) with wrong outputs"
        assert res["batches"] >= r["threads"], f"{ctx}: the threads ran {res['batches']} batches before the close"
        assert res["close"] == OK, f"{ctx}: fx->close returned {res['close']}"
        # the close does not wait for the C side to stop submitting, nor refuse because it holds batches
        assert r["first"] is None, f"{ctx}: close() racing the C threads raised {r['first']}"
        assert r["second"] is None, f"{ctx}: close() again after the join raised {r['second']}"
        assert r["closed"] and r["model_close"] is None, ctx
        assert r["live"] == r["base"], f"{ctx}: counters {r['live']}, baseline {r['base']}"
    # the threads were still running when the close went through: (almost) every race saw it
    assert sum(r["res"][c].get(str(ERR_CLOSED), 0) for r in done for c in ("submit", "wait", "release")) > 0
    assert_live_zero(recs[-1], "after 30 races")


GIL_CHILD = """
sys.path.insert(0, sys.argv[1])
import race_ext
faulthandler.dump_traceback_later(20, exit=True)
mdef = SAMPLES["multi-io"]
x = P.make_inputs(mdef, 2, seed=4)
want = P.expected_of(mdef, x)
with fastexec.Device(0) as dev:
    m = fastexec.Model(emulator.sample_model("multi-io"), device=dev)
    ex = fastexec.Executor(m, depth=4)
    stop = threading.Event()
    running = threading.Event()
    py = {"iterations": 0, "bad": 0, "errors": []}

    def python_side():
        try:
            while not stop.is_set():
                st = ex.stats()
                assert st["batches"] >= 0
                outs = ex.result(ex.submit(x))
                if not P.same(outs, want):
                    py["bad"] += 1
                py["iterations"] += 1
                running.set()
        except Exception as e:
            py["errors"].append(exc_info(e))
        finally:
            running.set()

    th = threading.Thread(target=python_side, daemon=True)
    th.start()
    running.wait(10)
    emit(step="C loop with the GIL held")
    res = race_ext.gil_loop(ex, 400, [a.tobytes() for a in x], 2, [w.tobytes() for w in want])
    emit(step="C loop done")
    stop.set()
    th.join(10)
    emit(step="done", c=res, py=py, alive=th.is_alive())
    ex.close()
    m.close()
P.final_record()
"""


def test_c_calls_with_gil_held_race_python_methods(ext_dir):
    """Defect: a C API call made with the GIL held (here fx->stats, fx->submit/wait/release in a
    loop from a C function Python called without releasing the GIL) racing Executor.stats() and
    submit()/result() on another Python thread deadlocked; C and Python batches could not be in
    flight together (FASTEXEC_ERR_STATE). Now: no deadlock, every C call returns FASTEXEC_OK,
    every batch on both sides is correct."""
    proc = run_child(GIL_CHILD, ext_dir, timeout=40)
    recs = records(proc)
    if proc.returncode != 0:
        how = "deadlocked (faulthandler's 20 s timeout fired)" if "Timeout" in proc.stderr else how_it_died(proc)
        pytest.fail(f"the child {how}; last step {recs[-1] if recs else None}\nstderr:\n{proc.stderr[-3000:]}")
    rec = next(r for r in recs if r.get("step") == "done")
    c, py = rec["c"], rec["py"]
    for call in ("stats", "submit", "wait", "release"):
        assert set(c[call]) == {str(OK)}, f"C {call} returned statuses {c[call]} ({c['last_error']})"
    assert c["batches"] == 400 and c["mismatches"] == 0 and c["close"] == OK, c
    assert py["errors"] == [], f"the Python thread failed: {py['errors']}"
    assert py["bad"] == 0 and py["iterations"] >= 1 and not rec["alive"], rec
    assert_live_zero(recs[-1], "after the GIL race")


def test_c_api_version_is_5(ext_dir):
    """Version 2: FASTEXEC_ERR_STATE is gone, Python and C batches share the pipeline; version 3:
    fastexec_stats carries every series (min, max, percentiles), the calibration and the bound;
    version 4: open_devices, an executor over several devices; version 5: submit_shaped,
    acquire_shaped and output_dims for dynamic HW / dims / shape models. fastexec_import() hands
    out version 5."""
    sys.path.insert(0, ext_dir)
    try:
        import race_ext
    finally:
        sys.path.remove(ext_dir)
    assert race_ext.api_version() == 5


# ---------------------------------------------------------------- 3: lifetime


DOUBLE_CLOSE_CHILD = """
mdef = SAMPLES["tiny"]
x = P.make_inputs(mdef, 3, seed=5)
want = P.expected_of(mdef, x)
for mode in P.MODES:
    with fastexec.Device(0) as dev:
        m = fastexec.Model(emulator.sample_model("tiny"), device=dev)
        ex = fastexec.Executor(m, mode=mode)
        ok = P.same(ex.run(x), want)
        P.add_fault(f"call:aclrtDestroyStream:1:{P.DESTROY_FAULT}")
        emit(mode=mode, step="first close")
        try:
            ex.close()
            first = None
        except Exception as e:
            first = exc_info(e)
        P.clear_faults()
        after_first = P.live()
        emit(mode=mode, step="second close")
        try:
            ex.close()
            second = None
        except Exception as e:
            second = exc_info(e)
        emit(mode=mode, step="third close")
        try:
            ex.close()
            third = None
        except Exception as e:
            third = exc_info(e)
        m.close()
    emit(mode=mode, step="done", ok=ok, first=first, second=second, third=third, after_first=after_first, live=P.live())
P.final_record()
"""


def test_close_retried_after_destroy_stream_failure():
    """Defect: close() after an injected aclrtDestroyStream failure, called again, segfaulted
    (slots freed, pointers not cleared). With call:aclrtDestroyStream:1 (the emulator returns the
    code and destroys nothing), the first close() raises that AclError; the second closes what is
    left (the stream included) without error; a third is a no-op; counters back to zero."""
    proc = run_child(DOUBLE_CLOSE_CHILD, timeout=60)
    recs = child_records(proc, "double close")
    done = [r for r in recs if r.get("step") == "done"]
    assert [r["mode"] for r in done] == list(MODES)
    for r in done:
        ctx = f"{r['mode']} mode"
        assert r["ok"], ctx
        first = r["first"]
        assert first is not None, f"{ctx}: the first close() ignored the failed aclrtDestroyStream"
        assert "AclError" in first["mro"] and first["code"] == DESTROY_FAULT and first["api"] == "aclrtDestroyStream", \
            f"{ctx}: {first}"
        assert r["after_first"]["streams"] >= 1, f"{ctx}: the emulator kept the stream it failed to destroy"
        assert r["second"] is None, f"{ctx}: the retried close() raised {r['second']}"
        assert r["third"] is None, f"{ctx}: a third close() raised {r['third']}"
    assert_live_zero(recs[-1], "after the retried close")


CYCLE_CHILD = """
import gc, warnings
mdef = SAMPLES["multi-io"]
x = P.make_inputs(mdef, 4, seed=6)
want = P.expected_of(mdef, x)

class Mine(fastexec.Executor):
    pass

with fastexec.Device(0) as dev:
    m = fastexec.Model(emulator.sample_model("multi-io"), device=dev)
    for mode in P.MODES:
        e = Mine(m, mode=mode)
        ok = P.same(e.run(x), want)
        e.me = e            # a reference cycle: only the cycle collector frees it
        e.submit([a[:2] for a in x])   # a batch still in flight when it is collected
        del e
        emit(mode=mode, step="collect")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
        emit(mode=mode, step="collected", ok=ok,
             warnings=[[w.category.__name__, str(w.message)] for w in caught])
    m.close()
P.final_record()
"""


def test_cyclic_executor_subclass_collected():
    """Defect: an Executor subclass in a reference cycle, collected by the cycle GC, segfaulted in
    __dealloc__ (tp_clear had cleared what it used). Now: gc.collect() frees it with a
    ResourceWarning (it was never closed) and no crash, in both modes; counters back to zero once
    the model and device are closed."""
    proc = run_child(CYCLE_CHILD, timeout=60)
    recs = records(proc)
    if proc.returncode != 0:
        steps = [r for r in recs if "step" in r]
        pytest.fail(f"the child {how_it_died(proc)} at {steps[-1] if steps else None}\nstderr:\n{proc.stderr[-3000:]}")
    done = [r for r in recs if r.get("step") == "collected"]
    assert [r["mode"] for r in done] == list(MODES)
    for r in done:
        assert r["ok"], r["mode"]
        assert any(cat == "ResourceWarning" for cat, _ in r["warnings"]), f"{r['mode']}: no ResourceWarning: {r['warnings']}"
    assert_live_zero(recs[-1], "after collecting the executors")


# ---------------------------------------------------------------- 4: interrupts and timeouts


SIGINT_RUN_CHILD = """
path = sys.argv[1]
mdef = P.CORE
n_batches = 3000
x = P.make_inputs(mdef, n_batches * 4, seed=7)
want = P.expected_of(mdef, x)
with fastexec.Device(0) as dev:
    m = fastexec.Model(path, device=dev)
    ex = fastexec.Executor(m)
    Interrupted = getattr(fastexec, "Interrupted", None)
    emit(started=time.monotonic(), expected_s=n_batches * 1.2e-3)
    rec = {}
    try:
        ex.run(x)
        rec["finished"] = time.monotonic()
    except KeyboardInterrupt as e:
        rec["caught"] = time.monotonic()
        rec["exc"] = exc_info(e)
        rec["is_interrupted"] = Interrupted is not None and isinstance(e, Interrupted)
        completed = getattr(e, "completed", None)
        outputs = getattr(e, "outputs", None)
        rec["completed_is_list"] = isinstance(completed, list)
        if isinstance(completed, list):
            rec["n_completed"] = len(completed)
            rec["completed_sorted_unique"] = completed == sorted(set(completed))
            rec["completed_in_range"] = all(isinstance(k, int) and 0 <= k < n_batches for k in completed)
            rec["outputs_shape_ok"] = isinstance(outputs, list) and len(outputs) == 1 and \\
                isinstance(outputs[0], np.ndarray) and outputs[0].shape == want[0].shape
            if rec["outputs_shape_ok"] and rec["completed_in_range"]:
                rec["bad_rows"] = [k for k in completed if not P.rows_ok(outputs, want, 4, k)][:10]
    emit(**rec)
    small = [a[:6] for a in x]
    emit(after_ok=P.same(ex.run(small), [w[:6] for w in want]))
    ex.close()
    m.close()
P.final_record()
"""


def interrupt_child(body, args, wait_s, env):
    """Starts the child, waits for its first line, then `wait_s` more (a fraction of the run's
    known length, so that the work is mid-way), sends SIGINT; returns (first line, t_kill, proc)."""
    proc = spawn_child(body, *args, **env)
    first = read_line(proc, 30)
    time.sleep(wait_s)   # not synchronisation: the child said it started; this puts the signal mid-run
    t_kill = time.monotonic()
    proc.send_signal(signal.SIGINT)
    return first, t_kill, finish(proc, 60)


def check_delay(rec, t_kill, what):
    assert "caught" in rec, f"{what}: the call ran to its end without seeing the interrupt: {rec}"
    delay = rec["caught"] - t_kill
    assert delay < 0.5, f"{what}: KeyboardInterrupt seen {delay:.3f} s after SIGINT (must be < 0.5 s)"
    return delay


@pytest.mark.timing
def test_sigint_during_run(core_path):
    """Defect: Ctrl-C during Executor.run() was seen only when the whole run ended (3-4 s for
    3000 batches). With real timing, 3000 batches of 1.2 ms (3.6 s), SIGINT about a quarter in:
    the child sees fastexec.Interrupted (a KeyboardInterrupt) within 0.5 s; .completed is the
    sorted list of batches whose rows of .outputs are valid, and those rows are correct; the
    executor then runs a small batch correctly; counters back to zero."""
    first, t_kill, proc = interrupt_child(SIGINT_RUN_CHILD, [core_path], 3000 * 1.2e-3 / 4, {"FASTEXEC_EMU_FAST": "0"})
    recs = child_records(proc, "SIGINT during run()")
    rec = next(r for r in recs if "caught" in r or "finished" in r)
    check_delay(rec, t_kill, "run()")
    assert rec["is_interrupted"], f"run() raised {rec['exc']['mro']}, not fastexec.Interrupted"
    assert "KeyboardInterrupt" in rec["exc"]["mro"]
    assert rec["completed_is_list"], "Interrupted.completed must be a list of batch indexes"
    assert rec["completed_sorted_unique"] and rec["completed_in_range"], rec
    assert 0 < rec["n_completed"] < 3000, f"{rec['n_completed']} batches completed: not interrupted mid-way"
    assert rec["outputs_shape_ok"], "Interrupted.outputs must be the run's output arrays"
    assert rec["bad_rows"] == [], f"rows of completed batches {rec['bad_rows']} differ from the reference"
    assert next(r for r in recs if "after_ok" in r)["after_ok"], "the executor gives wrong outputs after the interrupt"
    assert_live_zero(recs[-1], "after the interrupted run")


SIGINT_IMAP_CHILD = """
path = sys.argv[1]
mdef = P.CORE
n_batches = 3000
x = P.make_inputs(mdef, n_batches * 4, seed=8)
want = P.expected_of(mdef, x)
batches = P.split(x, 4)
wants = P.split(want, 4)
with fastexec.Device(0) as dev:
    m = fastexec.Model(path, device=dev)
    ex = fastexec.Executor(m)
    Interrupted = getattr(fastexec, "Interrupted", None)
    got = []
    emit(started=time.monotonic(), expected_s=n_batches * 1.2e-3)
    rec = {}
    try:
        for outs in ex.imap(iter(batches)):
            got.append(outs)
        rec["finished"] = time.monotonic()
    except KeyboardInterrupt as e:
        rec["caught"] = time.monotonic()
        rec["exc"] = exc_info(e)
        rec["is_interrupted"] = Interrupted is not None and isinstance(e, Interrupted)
        completed = getattr(e, "completed", None)
        rec["completed_is_list"] = isinstance(completed, list)
        if isinstance(completed, list):
            pairs = [c for c in completed if isinstance(c, tuple) and len(c) == 2 and isinstance(c[0], int)]
            rec["all_pairs"] = len(pairs) == len(completed)
            idx = [k for k, _ in pairs]
            rec["completed_idx"] = idx[:50]
            rec["idx_ok"] = idx == sorted(set(idx)) and all(len(got) <= k < n_batches for k in idx)
            rec["bad_completed"] = [k for k, o in pairs if not (0 <= k < n_batches and P.same(o, wants[k]))][:10]
    rec["yielded"] = len(got)
    rec["bad_yielded"] = [k for k, o in enumerate(got) if not P.same(o, wants[k])][:10]
    emit(**rec)
    emit(after_ok=P.same(ex.run([a[:6] for a in x]), [w[:6] for w in want]))
    ex.close()
    m.close()
P.final_record()
"""


@pytest.mark.timing
def test_sigint_during_imap(core_path):
    """Defect: an interrupted imap lost the batches it had finished (a plain KeyboardInterrupt).
    With real timing over 3000 batches, SIGINT about a quarter in: fastexec.Interrupted within
    0.5 s; every yielded batch correct; .completed lists (index, outputs) of the batches finished
    but not yet yielded, in order, each correct; the executor works afterwards."""
    first, t_kill, proc = interrupt_child(SIGINT_IMAP_CHILD, [core_path], 3000 * 1.2e-3 / 4, {"FASTEXEC_EMU_FAST": "0"})
    recs = child_records(proc, "SIGINT during imap")
    rec = next(r for r in recs if "yielded" in r)
    check_delay(rec, t_kill, "imap")
    assert rec["is_interrupted"], f"imap raised {rec['exc']['mro']}, not fastexec.Interrupted"
    assert 0 < rec["yielded"] < 3000 and rec["bad_yielded"] == [], rec
    assert rec["completed_is_list"] and rec["all_pairs"], "Interrupted.completed must be a list of (index, outputs)"
    assert rec["idx_ok"], f"completed indexes {rec['completed_idx']} (after {rec['yielded']} yielded)"
    assert rec["bad_completed"] == [], f"completed batches {rec['bad_completed']} have wrong outputs"
    assert next(r for r in recs if "after_ok" in r)["after_ok"]
    assert_live_zero(recs[-1], "after the interrupted imap")


SIGINT_RESULT_CHILD = """
mdef = SAMPLES["tiny"]
x = P.make_inputs(mdef, 1, seed=9)
want = P.expected_of(mdef, x)
with fastexec.Device(0) as dev:
    m = fastexec.Model(emulator.sample_model("tiny"), device=dev)
    ex = fastexec.Executor(m)
    Interrupted = getattr(fastexec, "Interrupted", None)
    P.add_fault("stall:aclmdlExecuteAsync:1:5000")
    t = ex.submit(x)
    emit(waiting=time.monotonic())
    rec = {}
    try:
        ex.result(t)
        rec["finished"] = time.monotonic()
    except KeyboardInterrupt as e:
        rec["caught"] = time.monotonic()
        rec["exc"] = exc_info(e)
        rec["is_interrupted"] = Interrupted is not None and isinstance(e, Interrupted)
    emit(**rec)
    P.clear_faults()
    try:
        rec = {"ticket_ok": P.same(ex.result(t), want)}
    except Exception as e:
        rec = {"ticket_ok": False, "ticket_exc": exc_info(e)}
    rec["after_ok"] = P.same(ex.result(ex.submit(x)), want)
    emit(**rec)
    ex.close()
    m.close()
P.final_record()
"""


@pytest.mark.timing
def test_sigint_during_result_of_stalled_batch():
    """Defect: result() on a stalled batch could not be interrupted. The batch's execute holds
    its stream for 5 s; SIGINT a tenth of that after the child is waiting: fastexec.Interrupted
    within 0.5 s; the ticket stays valid (a later result() returns the correct outputs) and the
    executor works afterwards."""
    first, t_kill, proc = interrupt_child(SIGINT_RESULT_CHILD, [], 0.5, {})
    recs = child_records(proc, "SIGINT during result()")
    rec = next(r for r in recs if "caught" in r or "finished" in r)
    check_delay(rec, t_kill, "result()")
    assert rec["is_interrupted"], f"result() raised {rec['exc']['mro']}, not fastexec.Interrupted"
    after = next(r for r in recs if "after_ok" in r)
    assert after["ticket_ok"], f"the interrupted ticket: {after.get('ticket_exc')}"
    assert after["after_ok"]
    assert_live_zero(recs[-1], "after the interrupted result()")


@pytest.mark.timing
def test_timeouts_of_result_run_and_their_tickets(device):
    """result(ticket, timeout=...), run(..., timeout=...) and close(timeout=...) exist (they did
    not). A batch whose execute stalls 3 s: result(t, timeout=0.1) raises a TimeoutError well
    before the stall ends and the ticket stays valid; run(x, timeout=0.2) queued behind the same
    stall raises as quickly a TimeoutError (or a BatchError carrying one); once the stall has
    passed, result(t) returns the batch's outputs and run(x, timeout=30) the whole arrays."""
    stall_s = 3.0
    mdef = SAMPLES["multi-io"]
    x = make_inputs(mdef, 6, seed=10)
    want = expected_of(mdef, x)
    with fastexec.Model(sample("multi-io"), device=device) as m, fastexec.Executor(m) as ex:
        b0, w0 = [a[:2] for a in x], [w[:2] for w in want]
        with fault(f"stall:aclmdlExecuteAsync:1:{int(stall_s * 1000)}"):
            t0 = time.monotonic()
            t = ex.submit(b0)
            with pytest.raises(TimeoutError):
                ex.result(t, timeout=0.1)
            assert time.monotonic() - t0 < stall_s / 3, "result(timeout=0.1) waited for the stall"
            t1 = time.monotonic()
            with pytest.raises((TimeoutError, fastexec.BatchError)) as ei:
                ex.run(x, timeout=0.2)
            assert time.monotonic() - t1 < stall_s / 3, "run(timeout=0.2) waited for the stall"
            e = ei.value
            assert isinstance(e, TimeoutError) or isinstance(e.error, TimeoutError), repr(e)
        assert_same(ex.result(t), w0, "result() of the ticket that timed out once")
        assert time.monotonic() - t0 >= stall_s * 0.9, "the outputs came before the stall ended"
        assert_same(ex.run(x, timeout=30), want, "run(timeout=30)")
        ex.close(timeout=30)
        assert ex.closed


# ---------------------------------------------------------------- 5, 6: exec-config timeouts


EXEC_TIMEOUT_CHILD = """
mode, timeouts = sys.argv[1], json.loads(sys.argv[2])
stall_ms = 3000
assert emulator.profile()["name"] == "ipv350", emulator.profile()["name"]
mdef = SAMPLES["multi-io"]
x = P.make_inputs(mdef, 12, seed=11)
want = P.expected_of(mdef, x)
batches, wants = P.split(x, 2), P.split(want, 2)

def usable_again(call, want_out, deadline):
    # after the stall: a batch that works (attempts queued behind the stall may time out too)
    attempts = []
    while time.monotonic() < deadline:
        try:
            return {"usable": P.same(call(), want_out), "failed_attempts": attempts}
        except fastexec.BatchError as e:
            attempts.append(exc_info(e)["type"])
        except Exception as e:
            return {"usable": False, "failed_attempts": attempts, "exc": exc_info(e)}
    return {"usable": False, "failed_attempts": attempts, "exc": "deadline"}

with fastexec.Device(0) as dev, fastexec.ExecConfig(**timeouts) as cfg:
    m = fastexec.Model(emulator.sample_model("multi-io"), device=dev)
    ex = fastexec.Executor(m, config=cfg, mode=mode, depth=4)
    # submit/result: the 2nd of 4 batches stalls
    P.add_fault(f"stall:aclmdlExecuteAsyncV2:2:{stall_ms}")
    t0 = time.monotonic()
    tickets = [ex.submit(b) for b in batches[:4]]
    results = []
    for k, t in enumerate(tickets):
        try:
            results.append({"ok": P.same(ex.result(t), wants[k])})
        except Exception as e:
            results.append({"exc": exc_info(e)})
        results[-1]["t"] = time.monotonic() - t0
    P.clear_faults()
    emit(phase="submit", tickets=tickets, results=results)
    emit(phase="submit-after", **usable_again(lambda: ex.result(ex.submit(batches[5])), wants[5], t0 + 3 * stall_ms / 1e3))
    # run(): its 2nd batch stalls
    P.add_fault(f"stall:aclmdlExecuteAsyncV2:2:{stall_ms}")
    t0 = time.monotonic()
    rec = {}
    try:
        ex.run([a[:8] for a in x])   # 4 batches: as many as the slots
        rec["raised"] = None
    except Exception as e:
        rec["raised"] = exc_info(e)
        completed = getattr(e, "completed", None)
        outputs = getattr(e, "outputs", None)
        rec["completed"] = completed if isinstance(completed, list) else repr(completed)
        if isinstance(completed, list) and isinstance(outputs, list):
            rec["rows_ok"] = [P.rows_ok(outputs, want, 2, k) for k in completed if isinstance(k, int)]
    rec["t"] = time.monotonic() - t0
    P.clear_faults()
    emit(phase="run", **rec)
    emit(phase="run-after", **usable_again(lambda: ex.run(x), want, t0 + 3 * stall_ms / 1e3))
    ex.close()
    m.close()
P.final_record()
"""


EXEC_TIMEOUTS = {"stream": {"stream_sync_timeout_ms": 200},
                 "stream+event": {"stream_sync_timeout_ms": 200, "event_sync_timeout_ms": 200}}


@pytest.mark.timing
def test_exec_config_timeout_in_every_mode():
    """Defect: with ExecConfig(stream_sync_timeout_ms=200), a stalled execute was never timed
    out in overlap mode (the wait was on the copy-out stream's event), and in serial mode it took
    up to 3x (with the event timeout too; never with the stream timeout alone). ipv350 profile,
    a 3 s stall on one aclmdlExecuteAsyncV2, both modes, the stream timeout alone and with the
    event timeout (four children side by side): the stalled batch raises BatchError(index=its
    index) with an AclTimeoutError before a third of the stall; the batches queued behind it on
    that instance each raise BatchError with their own index before the stall ends (none lost);
    run() of 4 batches (as many as the slots) raises BatchError(index=1) with the AclTimeoutError
    as quickly, batch 0 in .completed with correct rows; once the stall has passed the executor gives correct outputs again."""
    stall_s = 3.0
    procs = {(mode, cfg): spawn_child(EXEC_TIMEOUT_CHILD, mode, json.dumps(EXEC_TIMEOUTS[cfg]), FASTEXEC_EMU_PROFILE="ipv350")
             for mode in MODES for cfg in EXEC_TIMEOUTS}
    for (mode, cfg), proc in finish_all(procs, 90).items():
        ctx = f"{mode} mode, {cfg} timeout"
        recs = child_records(proc, ctx)
        by = {r["phase"]: r for r in recs if "phase" in r}
        sub = by["submit"]
        tickets, res = sub["tickets"], sub["results"]
        assert res[0].get("ok"), f"{ctx}: batch 0 (before the stall): {res[0]}"
        stalled = res[1].get("exc")
        assert stalled is not None, f"{ctx}: the stalled batch was not timed out (result after {res[1]['t']:.2f} s)"
        assert stalled["type"] == "BatchError" and stalled["index"] == tickets[1], f"{ctx}: {stalled}"
        assert "AclTimeoutError" in stalled["error"]["mro"], f"{ctx}: {stalled['error']}"
        assert res[1]["t"] < stall_s / 3, f"{ctx}: the stalled batch failed after {res[1]['t']:.2f} s"
        for k in (2, 3):
            e = res[k].get("exc")
            assert e is not None and e["type"] == "BatchError" and e["index"] == tickets[k], \
                f"{ctx}: batch {k}, queued behind the stalled one: {res[k]}"
            assert "FastexecError" in e["error"]["mro"], f"{ctx}: batch {k}: {e['error']}"
            assert res[k]["t"] < stall_s * 2 / 3, f"{ctx}: batch {k} reported after {res[k]['t']:.2f} s"
        assert by["submit-after"]["usable"], f"{ctx}: not usable after the stall: {by['submit-after']}"
        run = by["run"]
        assert run["raised"] is not None, f"{ctx}: run() returned after {run['t']:.2f} s despite the stall"
        assert run["raised"]["type"] == "BatchError" and run["raised"]["index"] == 1, f"{ctx}: run(): {run['raised']}"
        assert "AclTimeoutError" in run["raised"]["error"]["mro"], f"{ctx}: run(): {run['raised']['error']}"
        assert run["t"] < stall_s / 3, f"{ctx}: run() failed after {run['t']:.2f} s"
        assert run["completed"] == [0] and run.get("rows_ok") == [True], f"{ctx}: run(): completed {run['completed']}"
        assert by["run-after"]["usable"], f"{ctx}: run() not usable after the stall: {by['run-after']}"
        assert_live_zero(recs[-1], ctx)


CLOSE_AFTER_TIMEOUT_CHILD = """
mode, variant = sys.argv[1], sys.argv[2]
stall_ms = 3000
assert emulator.profile()["name"] == "ipv350" and emulator.profile()["checked"]
mdef = SAMPLES["multi-io"]
x = P.make_inputs(mdef, 6, seed=12)
want = P.expected_of(mdef, x)
batches, wants = P.split(x, 2), P.split(want, 2)
with fastexec.Device(0) as dev, fastexec.ExecConfig(stream_sync_timeout_ms=200, event_sync_timeout_ms=200) as cfg:
    m = fastexec.Model(emulator.sample_model("multi-io"), device=dev)
    with_model = P.live()
    ex = fastexec.Executor(m, config=cfg, mode=mode, depth=4)
    P.add_fault(f"stall:aclmdlExecuteAsyncV2:2:{stall_ms}")
    t0 = time.monotonic()
    tickets = [ex.submit(b) for b in batches]
    rec = {"first_ok": P.same(ex.result(tickets[0]), wants[0])}
    try:
        ex.result(tickets[1])
        rec["stalled"] = None
    except Exception as e:
        rec["stalled"] = exc_info(e)
    rec["stalled_t"] = time.monotonic() - t0
    P.clear_faults()
    emit(step="timed out", **rec)
    if variant == "close-timeout":
        t1 = time.monotonic()
        try:
            ex.close(timeout=0.1)
            rec = {"raised": None}
        except Exception as e:
            rec = {"raised": exc_info(e)}
        rec["t"] = time.monotonic() - t1
        rec["since_submit"] = time.monotonic() - t0
        rec["kept"] = P.live()
        rec["with_model"] = with_model
        rec["findings"] = emulator.counters()["findings"]
        emit(step="close(timeout=0.1)", **rec)
    emit(step="close")
    ex.close()
    emit(step="closed", findings=emulator.counters()["findings"], since_submit=time.monotonic() - t0)
    m.close()
P.final_record()
"""


@pytest.mark.timing
def test_close_after_timed_out_batch_keeps_memory():
    """Defect: close() after a timed-out batch freed buffers that queued work still used (checked
    mode reported it; on a card, DMA into freed memory). ipv350, ExecConfig stream and event
    timeouts of 200 ms (the event timeout is what made the old serial mode time out at all), a 3 s
    stall, checked mode on, both modes, children side by side: after the timed-out batch, close() frees
    nothing still in use (no finding) and everything in the end; close(timeout=0.1) while the
    stall holds raises a TimeoutError well before it ends and keeps the memory; a later close()
    frees everything. Counters back to zero, no finding, in every case."""
    stall_s = 3.0
    cases = [("overlap", "close"), ("serial", "close"), ("overlap", "close-timeout"), ("serial", "close-timeout")]
    procs = {c: spawn_child(CLOSE_AFTER_TIMEOUT_CHILD, *c, FASTEXEC_EMU_PROFILE="ipv350", FASTEXEC_EMU_CHECKED="1")
             for c in cases}
    for (mode, variant), proc in finish_all(procs, 60).items():
        ctx = f"{mode} mode, {variant}"
        recs = child_records(proc, ctx)
        by = {r["step"]: r for r in recs if "step" in r}
        timed = by["timed out"]
        assert timed["first_ok"], ctx
        assert timed["stalled"] is not None and timed["stalled"]["type"] == "BatchError", \
            f"{ctx}: the stalled batch was not timed out ({timed['stalled_t']:.2f} s): {timed['stalled']}"
        assert "AclTimeoutError" in timed["stalled"]["error"]["mro"], ctx
        if variant == "close-timeout":
            c = by["close(timeout=0.1)"]
            assert c["raised"] is not None and "TimeoutError" in c["raised"]["mro"], f"{ctx}: close(timeout=0.1): {c['raised']}"
            assert c["t"] < stall_s / 3 and c["since_submit"] < stall_s, f"{ctx}: close(timeout=0.1) took {c['t']:.2f} s"
            for k in ("device_allocations", "host_allocations"):
                assert c["kept"][k] > c["with_model"][k], f"{ctx}: close(timeout=0.1) freed the {k} of queued work"
            assert c["findings"] == 0, f"{ctx}: checked-mode finding at close(timeout=0.1)"
        assert by["closed"]["findings"] == 0, f"{ctx}: close() freed memory that queued work used (checked mode)"
        assert_live_zero(recs[-1], ctx)


# ---------------------------------------------------------------- 7: imap and fastexec run lose nothing


def drain(iterator):
    """(the batches yielded, the exception that ended the iteration or None)."""
    got = []
    try:
        for outs in iterator:
            got.append(outs)
    except Exception as e:
        return got, e
    return got, None


def imap_case(n_batches=5, seed=13):
    mdef = SAMPLES["multi-io"]
    x = make_inputs(mdef, 2 * n_batches, seed=seed)
    return x, split(x, 2), split(expected_of(mdef, x), 2)


def assert_first_two_then_batch_error(got, exc, wants, what):
    assert len(got) == 2, f"{what}: imap yielded {len(got)} batch(es) before the failure at batch 2, not 2"
    for k in range(2):
        assert_same(got[k], wants[k], f"{what}: yielded batch {k}")
    assert isinstance(exc, fastexec.BatchError), f"{what}: imap raised {type(exc).__name__}: {exc}, not a BatchError"
    assert exc.index == 2, f"{what}: BatchError.index is {exc.index}, not 2"
    return exc.error


@pytest.mark.parametrize("mode", MODES)
def test_imap_call_failure_at_batch_2(device, mode):
    """Defect: imap lost every finished batch and raised a plain AclError without an index when
    a batch failed to queue. The 3rd aclmdlExecuteAsync call (batch 2; the rule is added after
    the warm-up) fails: batches 0 and 1 are yielded correct, then BatchError(index=2) carrying
    the AclError (code, api aclmdlExecuteAsync); the executor works after."""
    x, batches, wants = imap_case()
    with fastexec.Model(sample("multi-io"), device=device) as m, fastexec.Executor(m, mode=mode) as ex:
        with fault(f"call:aclmdlExecuteAsync:3:{EXEC_FAULT}"):
            got, exc = drain(ex.imap(batches))
        err = assert_first_two_then_batch_error(got, exc, wants, f"{mode} mode")
        assert isinstance(err, fastexec.AclError) and err.code == EXEC_FAULT and err.api == "aclmdlExecuteAsync", repr(err)
        assert_same(ex.run(x), [np.concatenate(w) for w in zip(*wants)], "run after the failed imap")


@pytest.mark.parametrize("mode", MODES)
def test_imap_bad_batch_at_2(device, mode):
    """Defect: a bad batch (wrong dtype) at position 2 made imap raise the TypeError itself,
    losing batches 0 and 1. Now: 0 and 1 yielded, then BatchError(index=2) whose .error is the
    validation error (TypeError or ValueError)."""
    x, batches, wants = imap_case()
    batches[2] = [batches[2][0].astype(np.float64), batches[2][1]]
    with fastexec.Model(sample("multi-io"), device=device) as m, fastexec.Executor(m, mode=mode) as ex:
        got, exc = drain(ex.imap(batches))
        err = assert_first_two_then_batch_error(got, exc, wants, f"{mode} mode")
        assert isinstance(err, (TypeError, ValueError)), repr(err)
        assert_same(ex.run(x), [np.concatenate(w) for w in zip(*wants)], "run after the failed imap")


class SourceFailed(Exception):
    pass


@pytest.mark.parametrize("mode", MODES)
def test_imap_iterator_raising_at_2(device, mode):
    """Defect: an exception from the user's iterator at position 2 escaped imap bare, losing
    batches 0 and 1. Now: 0 and 1 yielded, then BatchError(index=2) whose .error is the very
    exception the iterator raised."""
    x, batches, wants = imap_case()
    boom = SourceFailed("the source broke at batch 2")

    def source():
        yield batches[0]
        yield batches[1]
        raise boom

    with fastexec.Model(sample("multi-io"), device=device) as m, fastexec.Executor(m, mode=mode) as ex:
        got, exc = drain(ex.imap(source()))
        err = assert_first_two_then_batch_error(got, exc, wants, f"{mode} mode")
        assert err is boom, repr(err)
        assert_same(ex.run(x), [np.concatenate(w) for w in zip(*wants)], "run after the failed imap")


INTERLEAVED_CHILD = """
faulthandler.dump_traceback_later(30, exit=True)
mdef = SAMPLES["multi-io"]
x = P.make_inputs(mdef, 10, seed=14)
want = P.expected_of(mdef, x)
batches, wants = P.split(x, 2), P.split(want, 2)
other_x = P.make_inputs(mdef, 1, seed=15)
other_want = P.expected_of(mdef, other_x)
for mode in P.MODES:
    for how in ("device", "bad batch"):
        with fastexec.Device(0) as dev:
            m = fastexec.Model(emulator.sample_model("multi-io"), device=dev)
            ex = fastexec.Executor(m, mode=mode, depth=4)
            go, done = threading.Semaphore(0), threading.Semaphore(0)
            other = {"ok": 0, "bad": [], "stop": False}

            def other_thread():
                while True:
                    go.acquire()
                    if other["stop"]:
                        return
                    try:
                        if not P.same(ex.result(ex.submit(other_x)), other_want):
                            other["bad"].append("wrong outputs")
                        else:
                            other["ok"] += 1
                    except Exception as e:
                        other["bad"].append(exc_info(e))
                    done.release()

            th = threading.Thread(target=other_thread, daemon=True)
            th.start()

            def source():
                # before handing imap batch k, another thread submits (and collects) a batch of
                # its own: the aclmdlExecuteAsync calls alternate other, imap, other, imap, ...
                for k, b in enumerate(batches):
                    go.release()
                    done.acquire()
                    if how == "bad batch" and k == 2:
                        b = [b[0], b[1].astype(np.float32)]
                    yield b

            rule = f"task:aclmdlExecuteAsync:6:{P.EXEC_FAULT}" if how == "device" else None
            if rule:
                P.add_fault(rule)   # the 6th execute from here: imap's batch 2
            got, exc = P.drain(ex.imap(source()))
            P.clear_faults()
            other["stop"] = True
            go.release()
            th.join(10)
            emit(mode=mode, how=how, yielded=len(got), yielded_ok=[P.same(g, wants[k]) for k, g in enumerate(got)],
                 exc=exc_info(exc) if exc is not None else None, other=other,
                 after_ok=P.same(ex.run(x), want))
            ex.close()
            m.close()
P.final_record()
"""


def test_imap_index_with_interleaved_submits():
    """Defect: with other submit() calls interleaved from another thread, imap's
    BatchError.index was wrong (it counted every ticket). Another thread submits and collects a
    batch before each of imap's batches; imap's batch 2 fails (on the device, then as a bad
    batch): BatchError.index is 2 (the batches of that imap call), after 0 and 1 were yielded;
    the other thread's batches are all correct."""
    proc = run_child(INTERLEAVED_CHILD, timeout=60)
    recs = child_records(proc, "interleaved imap")
    done = [r for r in recs if "how" in r]
    assert len(done) == 4
    for r in done:
        ctx = f"{r['mode']} mode, {r['how']}"
        assert r["exc"] is not None and r["exc"]["type"] == "BatchError", f"{ctx}: imap raised {r['exc']}"
        assert r["exc"]["index"] == 2, f"{ctx}: BatchError.index is {r['exc']['index']}, not 2"
        assert r["yielded"] == 2 and all(r["yielded_ok"]), f"{ctx}: yielded {r['yielded']} ({r['yielded_ok']})"
        if r["how"] == "device":
            assert r["exc"]["error"]["code"] == EXEC_FAULT, f"{ctx}: {r['exc']['error']}"
        else:
            assert {"TypeError", "ValueError"} & set(r["exc"]["error"]["mro"]), f"{ctx}: {r['exc']['error']}"
        assert r["other"]["bad"] == [] and r["other"]["ok"] >= 3, f"{ctx}: the other thread: {r['other']}"
        assert r["after_ok"], ctx
    assert_live_zero(recs[-1], "after the interleaved imaps")


def test_cli_run_writes_every_good_file(tmp_path):
    """Defect: `fastexec run` inherited imap's loss: with 4 input files of which one fails to
    queue it wrote 0 of the 3 good files. Model `tiny` (one sample, one batch, per file), the 4th
    aclmdlExecuteAsync call failing (after the warm-up; no calibration batches). The reader
    threads queue batches in whichever order they finish reading, so which file that is may
    vary: a non-zero exit, exactly one file not written and named by the error, the other three
    written and correct."""
    folder = tmp_path / "in"
    folder.mkdir()
    data = {}
    for i in range(4):
        stem = f"sample_{i}"
        data[stem] = np.random.default_rng(20 + i).standard_normal((1, 16)).astype(np.float32)
        np.save(folder / f"{stem}.npy", data[stem])
    out = tmp_path / "out"
    env = child_env(FASTEXEC_EMU_FAULTS=f"call:aclmdlExecuteAsync:4:{EXEC_FAULT}")
    try:
        proc = subprocess.run([sys.executable, "-m", "fastexec.cli", "run", "tiny", "--input", str(folder),
                               "--output", str(out), "--no-progress", "--calibration-batches", "0"],
                              capture_output=True, text=True, env=env, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("fastexec run hung")
    assert proc.returncode > 0, (proc.returncode, proc.stdout, proc.stderr)
    written = sorted(p.name for p in (out / "y").glob("*")) if (out / "y").is_dir() else []
    missing = sorted(set(f"{stem}.npy" for stem in data) - set(written))
    assert len(written) == 3 and len(missing) == 1, \
        f"written: {written}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    for name in written:
        stem = name[:-4]
        y = np.load(out / "y" / name, allow_pickle=False)
        assert y.dtype == np.float32 and y.tobytes() == data[stem].tobytes(), name   # identity model
    failed = missing[0][:-4]
    assert f"error: {failed}: not written, its batch failed" in proc.stderr, \
        f"the error does not name the failed file {failed}:\n{proc.stderr}"


# ---------------------------------------------------------------- 8: the executor holds its model and device


IN_USE_CHILD = """
what = sys.argv[1]
mdef = SAMPLES["multi-io"]
x = P.make_inputs(mdef, 4, seed=16)
want = P.expected_of(mdef, x)
InUseError = getattr(fastexec, "InUseError", None)
emit(has_in_use=InUseError is not None,
     bases=[c.__name__ for c in InUseError.__mro__] if InUseError is not None else None)
dev = fastexec.Device(0)
m = fastexec.Model(emulator.sample_model("multi-io"), device=dev)
ex = fastexec.Executor(m, instances=2)
target = m if what == "model" else dev
try:
    target.close()
    rec = {"raised": None}
except Exception as e:
    rec = {"raised": exc_info(e), "is_in_use": InUseError is not None and isinstance(e, InUseError)}
rec["target_closed"] = target.closed
try:
    rec["still_ok"] = P.same(ex.run(x), want)
except Exception as e:
    rec["still_ok"] = exc_info(e)
emit(step="refused", **rec)
rec = {}
for name, obj in (("executor", ex), ("model", m), ("device", dev)):
    try:
        obj.close()
        rec[name] = None
    except Exception as e:
        rec[name] = exc_info(e)
emit(step="closed", **rec)
P.final_record()
"""


@pytest.mark.parametrize("what", ["model", "device"])
def test_model_and_device_close_refused_under_executor(what):
    """Defect: Model.close() and Device.close() succeeded under a live executor (which then
    could never close; everything leaked). Now refused with fastexec.InUseError (a FastexecError
    and a RuntimeError) whose message names the executor; the executor keeps working; after
    Executor.close() the model and device close normally; counters back to zero."""
    proc = run_child(IN_USE_CHILD, what, timeout=60)
    recs = child_records(proc, f"{what}.close() under an executor")
    head = recs[0]
    rec = next(r for r in recs if r.get("step") == "refused")
    assert rec["raised"] is not None, f"{what}.close() succeeded under a live executor"
    assert head["has_in_use"], f"fastexec.InUseError does not exist ({what}.close() raised {rec['raised']})"
    assert "FastexecError" in head["bases"] and "RuntimeError" in head["bases"], head["bases"]
    assert rec["is_in_use"], f"{what}.close() raised {rec['raised']['mro']}, not InUseError"
    assert "executor" in rec["raised"]["msg"].lower(), f"the message does not name the executor: {rec['raised']['msg']}"
    assert not rec["target_closed"] and rec["still_ok"] is True, rec
    closed = next(r for r in recs if r.get("step") == "closed")
    assert closed == {"step": "closed", "executor": None, "model": None, "device": None}, closed
    assert_live_zero(recs[-1], f"after closing the executor, then the {what}")


# ---------------------------------------------------------------- 9: staged() and result() from any thread


def in_thread(fn, timeout=10):
    """Runs fn() on a fresh thread; returns its result or re-raises its exception here."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:   # noqa: BLE001 - handed to the caller
            box["error"] = e

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(timeout)
    assert not th.is_alive(), f"the thread is still running after {timeout} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.mark.parametrize("mode", MODES)
def test_staged_and_result_from_fresh_threads(device, mode):
    """Defect: staged() and result() from a thread that never touched the device failed with
    ACL_ERROR_RT_CONTEXT_NULL. A fresh thread fills a staged() block (3 of 4 rows), another
    fresh thread takes result(ticket): the outputs are correct."""
    mdef = SAMPLES["resnet50-int8"]
    x = make_inputs(mdef, 3, seed=17)
    want = expected_of(mdef, x)
    with fastexec.Model(sample("resnet50-int8"), device=device) as m, fastexec.Executor(m, mode=mode) as ex:

        def stage():
            with ex.staged() as b:
                b.inputs[0][:3] = x[0]
                b.rows = 3
            return b.ticket

        ticket = in_thread(stage)
        assert ticket is not None
        assert_same(in_thread(lambda: ex.result(ticket)), want, "result() on a fresh thread")


@pytest.mark.parametrize("mode", MODES)
def test_several_staged_blocks_open_at_once(device, mode):
    """Defect: staged() held the executor's lock for the whole block, so only one slot could be
    filled at a time. Three fresh threads each enter a staged() block and wait (barrier) until
    all three are inside before filling and leaving; the three batches are correct."""
    mdef = SAMPLES["multi-io"]
    x = make_inputs(mdef, 6, seed=18)
    batches, wants = split(x, 2), split(expected_of(mdef, x), 2)
    inside = threading.Barrier(3, timeout=3)
    with fastexec.Model(sample("multi-io"), device=device) as m, fastexec.Executor(m, mode=mode, depth=4) as ex:
        box, errors = {}, []

        def fill(k):
            try:
                with ex.staged() as b:
                    inside.wait()
                    for view, a in zip(b.inputs, batches[k]):
                        view[:2] = a
                    b.rows = 2
                box[k] = b.ticket
            except BaseException as e:   # noqa: BLE001 - reported below
                errors.append(f"thread {k}: {type(e).__name__}: {e}")

        threads = [threading.Thread(target=fill, args=(k,), daemon=True) for k in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(15)
        assert not any(th.is_alive() for th in threads), "a staged() thread is stuck"
        assert errors == [], errors
        assert len(set(box.values())) == 3, box
        for k in range(3):
            assert_same(ex.result(box[k]), wants[k], f"staged batch {k}")


# ---------------------------------------------------------------- 10: out= aliasing an input


def test_out_aliasing_an_input_is_rejected(device, core_path):
    """Defect: run(x, out=...) with an output array overlapping an input's memory was accepted
    and silently gave wrong rows. Now a ValueError naming `out` and the input; a separate out=
    array still works."""
    x = make_inputs(CORE, 10, seed=19)[0]
    want = expected_of(CORE, [x])
    with fastexec.Model(core_path, device=device) as m, fastexec.Executor(m) as ex:
        same_array = x.copy()
        viewed = x.copy()
        base = np.concatenate([x, np.zeros((1, 16), np.float32)])
        cases = [("the input itself", same_array, same_array),
                 ("a view of the input", viewed, viewed.reshape(160)[:].reshape(10, 16)),
                 ("overlapping, one row on", base[:10], base[1:])]
        for what, inp, out in cases:
            assert np.shares_memory(inp, out)
            inp_before = inp.copy()
            with pytest.raises(ValueError) as ei:
                ex.run(inp, out=[out])
            msg = str(ei.value)
            assert "out" in msg and "pixels" in msg, f"{what}: the message does not name out and 'pixels': {msg}"
            assert inp.tobytes() == inp_before.tobytes(), f"{what}: the input was written to"
        dst = np.empty_like(x)
        got = ex.run(x, out=[dst])
        assert got[0] is dst
        assert_same([dst], want, "out= a separate array")


# ---------------------------------------------------------------- 11: fork


FORK_CHILD = """
import select, signal, warnings
warnings.simplefilter("ignore", DeprecationWarning)   # fork with threads (the emulator's stream workers)
mdef = SAMPLES["tiny"]
x = P.make_inputs(mdef, 1, seed=21)
want = P.expected_of(mdef, x)
with fastexec.Device(0) as dev:
    m = fastexec.Model(emulator.sample_model("tiny"), device=dev)
    ex = fastexec.Executor(m)
    ok_before = P.same(ex.run(x), want)
    calls = {"submit": lambda: ex.submit(x), "run": lambda: ex.run(x), "close": lambda: ex.close()}
    children = {}
    for op, call in calls.items():
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                call()
                rec = {"raised": None}
            except BaseException as e:
                rec = {"raised": exc_info(e), "is_fastexec": isinstance(e, fastexec.FastexecError)}
            os.write(w, json.dumps(rec).encode())
            os._exit(0)
        os.close(w)
        children[op] = (pid, r)
    deadline = time.monotonic() + 10
    results = {}
    for op, (pid, r) in children.items():
        ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
        data = b""
        if ready:
            while True:
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                data += chunk
        if data:
            results[op] = json.loads(data)
            os.waitpid(pid, 0)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            results[op] = {"hung": True}
        os.close(r)
    emit(ok_before=ok_before, results=results, ok_after=P.same(ex.run(x), want))
    ex.close()
    m.close()
P.final_record()
"""


def test_forked_child_gets_an_error_not_a_hang():
    """Defect: a forked child that used an inherited executor hung. Three forked children call
    submit(), run() and close() on the parent's executor: each gets a FastexecError whose
    message mentions fork, within 10 s (killed otherwise); the parent's executor is unaffected."""
    proc = run_child(FORK_CHILD, timeout=60)
    recs = child_records(proc, "fork")
    rec = next(r for r in recs if "results" in r)
    assert rec["ok_before"] and rec["ok_after"], rec
    for op in ("submit", "run", "close"):
        res = rec["results"][op]
        assert not res.get("hung"), f"{op}() in a forked child hung"
        assert res["raised"] is not None, f"{op}() in a forked child worked on the parent's executor"
        assert res["is_fastexec"], f"{op}() in a forked child raised {res['raised']['mro']}"
        assert "fork" in res["raised"]["msg"].lower(), f"{op}(): the message does not mention fork: {res['raised']['msg']}"
    assert_live_zero(recs[-1], "after the forks")
