"""Per-call cost of a trivial wrapped ACL call: fastexec's Stream.query() on an idle stream,
against the same aclrtStreamQuery called from C (bench/acl_call_cost.c, built here), on the
bundled emulator in fast mode. Measures, asserts nothing about speed.

    FASTEXEC_EMU_FAST=1 python -m pytest bench/test_bench_acl_layer.py -q

The C figure is recorded in the benchmark's extra_info, with the ratio, so one run gives both.
"""
import os

os.environ.setdefault("FASTEXEC_BACKEND", "emulator")
os.environ.setdefault("FASTEXEC_EMU_FAST", "1")

import re  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import fastexec  # noqa: E402

SOURCE = Path(__file__).with_name("acl_call_cost.c")
CALLS = 1_000_000
ITERATIONS = 10_000  # calls per timed round of Stream.query()
ROUNDS = 50


@pytest.fixture(scope="module")
def c_ns_per_call(tmp_path_factory):
    """Build acl_call_cost.c against the emulator and run it: ns per aclrtStreamQuery from C."""
    exe = tmp_path_factory.mktemp("acl-call-cost") / "acl_call_cost"
    py = shlex.quote(sys.executable)
    cc = os.environ.get("CC", "cc")
    cmd = (f"{cc} -O2 $({py} -m fastexec.emulator --cflags) {shlex.quote(str(SOURCE))} "
           f"-o {shlex.quote(str(exe))} $({py} -m fastexec.emulator --libs)")
    build = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    assert build.returncode == 0, f"{cmd}\n{build.stderr}"
    run = subprocess.run([str(exe), str(CALLS)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    match = re.search(r"^ns/call: ([0-9.]+)$", run.stdout, re.M)
    assert match, run.stdout
    return float(match.group(1)), run.stdout


@pytest.fixture
def idle_stream():
    with fastexec.Device(0) as dev, fastexec.Stream(dev) as stream:
        stream.synchronize()
        yield stream


@pytest.mark.benchmark(group="acl-call-overhead")
def test_stream_query_idle(benchmark, idle_stream, c_ns_per_call):
    c_ns, c_output = c_ns_per_call
    assert idle_stream.query() is True
    # Many calls per round, so the timer's own cost (~tens of ns) is amortised, as in the C loop.
    result = benchmark.pedantic(idle_stream.query, iterations=ITERATIONS, rounds=ROUNDS, warmup_rounds=2)
    assert result is True
    benchmark.extra_info["backend"] = "emulator, FASTEXEC_EMU_FAST=" + os.environ.get("FASTEXEC_EMU_FAST", "")
    benchmark.extra_info["c_aclrtStreamQuery_calls"] = CALLS
    benchmark.extra_info["c_aclrtStreamQuery_ns_per_call"] = c_ns
    benchmark.extra_info["c_rounds"] = [float(x) for x in re.findall(r"([0-9.]+) ns/call$", c_output, re.M)]
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None under --benchmark-disable
        py_min = stats.stats.min * 1e9
        py_median = stats.stats.median * 1e9
        benchmark.extra_info["python_Stream.query_min_ns"] = round(py_min, 2)
        benchmark.extra_info["python_Stream.query_median_ns"] = round(py_median, 2)
        benchmark.extra_info["ratio_median_python_over_c"] = round(py_median / c_ns, 2)
        benchmark.extra_info["overhead_median_ns"] = round(py_median - c_ns, 2)
        print(f"\nStream.query(): min {py_min:.1f} ns, median {py_median:.1f} ns per call; "
              f"aclrtStreamQuery from C: {c_ns:.1f} ns per call; ratio (median/C) {py_median / c_ns:.2f}")
