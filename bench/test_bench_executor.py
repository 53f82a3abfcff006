"""pytest-benchmark suite: the pipelined executor against the naive synchronous loop, grouped
by sample so the two compare side by side, on the emulator with real modelled durations.

    python -m pytest bench/test_bench_executor.py --benchmark-columns=mean,stddev,rounds

`python bench/bench_executor.py` prints the full table (bound, C loop floor, both samples).
"""
import ctypes
import os

os.environ.setdefault("FASTEXEC_BACKEND", "emulator")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import fastexec  # noqa: E402
from fastexec import emulator  # noqa: E402

BATCHES = 50
SAMPLES = ["resnet50-int8", "dynamic-batch"]


@pytest.fixture
def real_timing():
    """Modelled durations on (whatever FASTEXEC_EMU_FAST said), restored afterwards."""
    lib = ctypes.CDLL(emulator.library_path())
    was_fast = emulator.profile()["fast"]
    lib.fxemuSetFastMode(0)
    yield
    lib.fxemuSetFastMode(int(was_fast))


def _inputs(model, batches):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 100, (model.batch_size * batches,) + tuple(s.shape[1:])).astype(s.dtype) for s in model.inputs]


@pytest.mark.parametrize("sample", SAMPLES)
def test_naive_loop(benchmark, real_timing, sample):
    benchmark.group = sample
    with fastexec.Device(0) as dev, fastexec.Model(emulator.sample_model(sample), device=dev) as model:
        inputs = _inputs(model, BATCHES)
        benchmark.extra_info["samples"] = model.batch_size * BATCHES
        benchmark.pedantic(fastexec.naive_run, args=(model, inputs), rounds=3, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("sample", SAMPLES)
def test_executor_run(benchmark, real_timing, sample, depth):
    benchmark.group = sample
    with fastexec.Device(0) as dev, fastexec.Model(emulator.sample_model(sample), device=dev) as model:
        with fastexec.Executor(model, depth=depth) as ex:
            inputs = _inputs(model, BATCHES)
            out = ex.run(inputs)
            benchmark.extra_info["samples"] = model.batch_size * BATCHES
            benchmark.pedantic(ex.run, args=(inputs,), kwargs={"out": out}, rounds=3, iterations=1, warmup_rounds=1)
            st = ex.stats()
            benchmark.extra_info["bound_efficiency"] = st["bound"]["efficiency"]
