"""Shared fixtures. Tests in this process use the bundled emulator in fast mode; tests of other
configurations run in subprocesses with their own environment."""
import gc
import os

import pytest

os.environ.setdefault("FASTEXEC_BACKEND", "emulator")
os.environ.setdefault("FASTEXEC_EMU_FAST", "1")

LIVE_COUNTERS = ("device_allocations", "host_allocations", "registered_ranges", "streams", "events", "contexts",
                 "devices_set", "models", "datasets", "data_buffers", "model_descs", "exec_configs", "aipp_sets")


@pytest.fixture
def no_leaks():
    """Fails the test if it leaves emulator resources behind or triggers checked-mode findings."""
    from fastexec import emulator

    before = emulator.counters()
    yield
    gc.collect()
    after = emulator.counters()
    leaked = {k: after[k] - before[k] for k in LIVE_COUNTERS if after[k] != before[k]}
    assert leaked == {}, f"emulator resources not released: {leaked}"
    assert after["findings"] == before["findings"], "the emulator's checked mode reported misuse"


@pytest.fixture
def device(no_leaks):
    import fastexec

    with fastexec.Device(0) as dev:
        yield dev
