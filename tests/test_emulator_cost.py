"""The emulator's cost model seen from Python: pageable copies at the ais_bench bandwidths, the
allocation cost, and the profile values that set them (docs/emulator.md, "Cost model")."""
import json
import os
import subprocess
import sys

import pytest

from fastexec import emulator


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_EMU_")}
    env["FASTEXEC_BACKEND"] = "emulator"
    env.update(extra)
    return env


def _run(code: str, **extra) -> str:
    proc = subprocess.run([sys.executable, "-c", code], env=_env(**extra), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# Synchronous aclrtMemcpy of 4 MiB from/to malloc'ed (pageable) and aclrtMallocHost (pinned)
# memory, through the emulator library with ctypes; warmed, then the best of 10 interleaved rounds
# (the least disturbed by other processes on the shared VM; the modelled part does not vary).
_COPY_RATIO = r"""
import ctypes, json, time
from fastexec import emulator
lib = ctypes.CDLL(emulator.library_path())
lib.aclrtMalloc.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t, ctypes.c_int]
lib.aclrtMallocHost.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t]
lib.aclrtMemcpy.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
lib.aclrtFree.argtypes = lib.aclrtFreeHost.argtypes = [ctypes.c_void_p]
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
n = 4 << 20
assert lib.aclInit(None) == 0 and lib.aclrtSetDevice(0) == 0
dev, pinned = ctypes.c_void_p(), ctypes.c_void_p()
assert lib.aclrtMalloc(ctypes.byref(dev), n, 0) == 0 and lib.aclrtMallocHost(ctypes.byref(pinned), n) == 0
pageable = libc.malloc(n)
ctypes.memset(pageable, 1, n); ctypes.memset(pinned, 1, n)
def one(host, kind):
    t0 = time.perf_counter()
    rc = lib.aclrtMemcpy(dev, n, host, n, 1) if kind == "h2d" else lib.aclrtMemcpy(host, n, dev, n, 2)
    assert rc == 0
    return time.perf_counter() - t0
times = {(h, k): [] for h in ("pageable", "pinned") for k in ("h2d", "d2h")}
for rnd in range(12):
    for (h, k), ts in times.items():
        t = one(pageable if h == "pageable" else pinned, k)
        if rnd >= 2:     # the first two rounds warm pages and caches
            ts.append(t)
med = {f"{h}_{k}": min(ts) for (h, k), ts in times.items()}
libc.free(pageable); lib.aclrtFree(dev); lib.aclrtFreeHost(pinned); lib.aclrtResetDevice(0); lib.aclFinalize()
print(json.dumps(med))
"""


@pytest.mark.timing
def test_pageable_4mb_copy_is_slower_than_pinned():
    med = json.loads(_run(_COPY_RATIO))
    h2d = med["pageable_h2d"] / med["pinned_h2d"]
    d2h = med["pageable_d2h"] / med["pinned_d2h"]
    print(f"4 MiB synchronous copy, pageable / pinned: H2D {h2d:.2f}x, D2H {d2h:.2f}x ({med})")
    # Model: pinned 10 us + 175 us (24 GB/s); pageable H2D 10 us + 1049 us (4.0 GB/s), D2H
    # 10 us + 2621 us (1.6 GB/s): 5.7x and 14.2x. On a loaded VM the pinned 4 MiB memmove itself
    # can outlast its 175 us (the task overruns), which lowers the ratios, never raises them.
    assert h2d <= 7.5 and d2h <= 18.0
    assert med["pageable_h2d"] >= 1.0e-3 and med["pageable_d2h"] >= 2.5e-3
    # The lower bounds hold when the pinned copies kept near their modelled 0.185 ms: a slower
    # memmove on a busy machine is the host's time, not the model's.
    if med["pinned_h2d"] < 0.3e-3:
        assert h2d >= 2.5, med
    if med["pinned_d2h"] < 0.3e-3:
        assert d2h >= 5.0, med


def test_profile_cost_model_defaults():
    p = json.loads(_run("import json; from fastexec import emulator as e; print(json.dumps(e.profile()))"))
    assert (p["h2d_pageable_gbps"], p["d2h_pageable_gbps"], p["alloc_us"], p["strict"]) == (4.0, 1.6, 0.0, False)


def test_profile_file_sets_cost_model_and_strict(tmp_path):
    f = tmp_path / "card.profile"
    f.write_text("base atlas-300i-pro\nh2d_pageable_gbps 3.5\nd2h_pageable_gbps 2.25\nalloc_us 40  # a guess\nstrict 1\n")
    p = json.loads(_run("import json; from fastexec import emulator as e; print(json.dumps(e.profile()))",
                        FASTEXEC_EMU_PROFILE=str(f)))
    assert (p["h2d_pageable_gbps"], p["d2h_pageable_gbps"], p["alloc_us"], p["strict"]) == (3.5, 2.25, 40.0, True)


def test_environment_overrides_alloc_and_strict(tmp_path):
    f = tmp_path / "card.profile"
    f.write_text("alloc_us 40\nstrict 1\n")
    code = "import json; from fastexec import emulator as e; p = e.profile(); print(p['alloc_us'], p['strict'])"
    assert _run(code, FASTEXEC_EMU_PROFILE=str(f), FASTEXEC_EMU_ALLOC_US="7.5", FASTEXEC_EMU_STRICT="0").split() == ["7.5", "False"]
    assert _run(code, FASTEXEC_EMU_STRICT="1").split() == ["0.0", "True"]


@pytest.mark.parametrize("line", ["strict 2", "alloc_us -1", "h2d_pageable_gbps 0"])
def test_bad_profile_values_refused(tmp_path, line):
    f = tmp_path / "bad.profile"
    f.write_text(line + "\n")
    proc = subprocess.run([sys.executable, "-c", "from fastexec import emulator as e; print(e.profile()['name'])"],
                          env=_env(FASTEXEC_EMU_PROFILE=str(f)), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.split() == ["atlas-300i-pro"]
    assert "bad profile line" in proc.stderr


def test_strict_read_of_freed_device_memory_gets_poison():
    """From Python, through fastexec's runtime objects: a device buffer freed while a copy out of
    it is queued (behind a stall) gives the copy the poison bytes, and checked mode counts it."""
    code = r"""
import numpy as np, fastexec
from fastexec import emulator
import ctypes
lib = ctypes.CDLL(emulator.library_path())
with fastexec.Device(0) as dev, fastexec.Stream(dev) as s:
    host = fastexec.PinnedBuffer(dev, 4096)
    back = fastexec.PinnedBuffer(dev, 4096)
    d = fastexec.DeviceBuffer(dev, 4096)
    np.frombuffer(host, np.uint8)[:] = 7
    d.copy_from_host(host, s); s.synchronize()
    lib.fxemuStallStream(ctypes.c_void_p(s.handle_address), 100)
    d.copy_to_host(back, s)
    d.close()                                # freed at once in strict mode
    after_free = emulator.counters()["device_allocations"]
    s.synchronize()
    vals = set(np.frombuffer(back, np.uint8).tolist())
    host.close(); back.close()
c = emulator.counters()
print(after_free, sorted(vals), c["findings_by_kind"][6])
"""
    out = _run(code, FASTEXEC_EMU_STRICT="1", FASTEXEC_EMU_FAST="1")
    assert out.split() == ["0", "[221]", "1"]
