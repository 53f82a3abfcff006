"""The runtime objects of the Cython ACL layer (fastexec/runtime.pxi): Device, Stream, Event,
DeviceBuffer, PinnedBuffer, ExecConfig, Model and TensorSpec, driven through their real code
paths against the bundled emulator (FASTEXEC_BACKEND=emulator, FASTEXEC_EMU_FAST=1).

Every resource test runs under `no_leaks` (directly or through `device`): the emulator's live
counters are back at baseline and checked mode reported nothing. Streams are held busy with the
emulator's fxemuStallStream, never with sleeps. Configurations other than the default profile,
interpreter exit and crash-prone cases run in subprocesses.
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
import warnings

import numpy as np
import pytest

import fastexec
from fastexec import emulator
from fastexec.emulator.model_file import FORMATS, ModelDef, TensorDef, visible_input, write_model
from fastexec.emulator.samples import SAMPLES

LIVE = ("device_allocations", "host_allocations", "registered_ranges", "streams", "events", "contexts",
        "devices_set", "models", "datasets", "data_buffers", "model_descs", "exec_configs")


# ---------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=None)
def _emu():
    """The emulator library this process has loaded (dlopen of the same path: the same instance)."""
    lib = ctypes.CDLL(emulator.library_path())
    lib.fxemuStallStream.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.fxemuStallStream.restype = ctypes.c_int
    lib.aclrtGetCurrentContext.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    lib.aclrtGetCurrentContext.restype = ctypes.c_int
    return lib


def stall(stream, ms):
    """Hold `stream` busy for `ms` milliseconds (a queued emulator task, not a host sleep)."""
    assert _emu().fxemuStallStream(stream.handle_address, ms) == 0


def current_context():
    """(rc, context address) of the calling thread, asked of the emulator directly."""
    ctx = ctypes.c_void_p()
    rc = _emu().aclrtGetCurrentContext(ctypes.byref(ctx))
    return rc, ctx.value


def live():
    c = emulator.counters()
    return {k: c[k] for k in LIVE}


def malloc_footprint(nbytes):
    """What aclrtMalloc takes from the device: the size rounded up to 32 bytes, plus 32 of padding."""
    return (nbytes + 31) // 32 * 32 + 32


def run_child(code, **env_extra):
    """Run `code` in a fresh interpreter on the emulator; returns the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_")}
    env.update(FASTEXEC_BACKEND="emulator", FASTEXEC_EMU_FAST="1")
    env.update(env_extra)
    return subprocess.run([sys.executable, "-X", "dev", "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=120)


def assert_clean_exit(proc):
    detail = f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, detail
    for bad in ("Traceback", "Fatal Python error", "Segmentation fault", "Exception ignored"):
        assert bad not in proc.stderr, detail


@pytest.fixture
def stack(device):
    """An ExitStack closed before the `device` fixture closes its device."""
    with contextlib.ExitStack() as s:
        yield s


def _closed(obj):
    obj.close()
    return obj


# ================================================================ Device


def test_device_open_close_repr(no_leaks):
    base = live()
    dev = fastexec.Device(0)
    assert dev.id == 0 and dev.closed is False
    assert repr(dev) == "<fastexec.Device 0>"
    assert live()["devices_set"] == base["devices_set"] + 1
    dev.close()
    assert dev.closed is True
    assert repr(dev) == "<fastexec.Device 0 closed>"
    assert live() == base
    dev.close()  # idempotent
    assert dev.closed is True and live() == base


def test_device_context_manager_and_reopen(no_leaks):
    base = live()
    for _ in range(3):  # aclInit happens once per process; devices open and close repeatedly
        with fastexec.Device(0) as dev:
            assert isinstance(dev, fastexec.Device)
            assert live()["devices_set"] == base["devices_set"] + 1
            assert dev.memory_info()[1] > 0
        assert dev.closed
        dev.close()
        assert live() == base
    assert fastexec.backend_info()["emulator"] is True


def test_two_device_objects_share_the_reference_counted_device(no_leaks):
    d1, d2 = fastexec.Device(0), fastexec.Device(0)
    d1.close()
    with fastexec.Stream(d2) as s:  # d2 still has a device and a context
        s.synchronize()
        assert s.query()
    assert d2.memory_info()[0] > 0
    d2.close()


def test_memory_info_drops_by_the_rounded_allocation(device):
    free0, total0 = device.memory_info()
    assert 0 < free0 <= total0
    for nbytes in (1, 32, 100, 4096, 1 << 20):
        with fastexec.DeviceBuffer(device, nbytes) as buf:
            free1, total1 = device.memory_info()
            assert total1 == total0
            assert free0 - free1 == malloc_footprint(nbytes), nbytes
            assert buf.nbytes == nbytes
        assert device.memory_info() == (free0, total0)


@pytest.mark.parametrize("bad_id", [1, 7, -1])
def test_invalid_device_id(no_leaks, bad_id):
    base = live()
    with pytest.raises(fastexec.AclError) as info:
        fastexec.Device(bad_id)
    err = info.value
    assert err.code == 107001
    assert err.name == "ACL_ERROR_RT_INVALID_DEVICEID"
    assert err.api == "aclrtSetDevice"
    assert "aclrtSetDevice" in str(err) and "107001" in str(err)
    assert live() == base


def test_device_close_refused_while_children_are_open(no_leaks):
    dev = fastexec.Device(0)
    stream = fastexec.Stream(dev)
    buf = fastexec.DeviceBuffer(dev, 64)
    with pytest.raises(fastexec.FastexecError, match=r"\b2 open\b"):
        dev.close()
    assert not dev.closed
    assert stream.query()  # the refusal changed nothing
    buf.close()
    with pytest.raises(fastexec.FastexecError, match=r"\b1 open\b"):
        dev.close()
    stream.close()
    dev.close()
    assert dev.closed


def test_children_keep_their_device_alive(no_leaks):
    base = live()

    def make_stream():
        return fastexec.Stream(fastexec.Device(0))  # the only reference to the Device is the stream's

    stream = make_stream()
    gc.collect()
    assert live()["devices_set"] == base["devices_set"] + 1
    stall(stream, 1)
    stream.synchronize()
    assert stream.query() is True
    with fastexec.DeviceBuffer(stream.device, 16) as buf:
        buf.copy_from_host(b"0123456789abcdef", stream=stream)
        out = bytearray(16)
        buf.copy_to_host(out, stream=stream)
        stream.synchronize()
        assert out == b"0123456789abcdef"
    dev = stream.device
    assert isinstance(dev, fastexec.Device) and not dev.closed
    stream.close()
    dev.close()
    assert live() == base


def test_every_kind_of_child_keeps_its_device_alive(no_leaks):
    base = live()
    orphans = [fastexec.Event(fastexec.Device(0)), fastexec.DeviceBuffer(fastexec.Device(0), 32),
               fastexec.PinnedBuffer(fastexec.Device(0), 32),
               fastexec.Model(emulator.sample_model("multi-io"), device=fastexec.Device(0))]
    gc.collect()
    event, buf, pinned, model = orphans
    with fastexec.Stream(event.device) as s:
        np.frombuffer(pinned, np.uint8)[:] = np.arange(32, dtype=np.uint8)
        buf.copy_from_host(pinned, stream=s)
        event.record(s)
        event.synchronize()
        back = bytearray(32)
        buf.copy_to_host(back)
        assert back == bytes(range(32))
    assert [t.name for t in model.inputs] == ["a", "b"]
    for obj in orphans:
        dev = obj.device
        assert not dev.closed
        obj.close()
        dev.close()
    assert live() == base


# ================================================================ use after close, double close, bad arguments


def _src(n=16):
    return np.arange(n, dtype=np.uint8)


# Each case: (class name expected in the message, callable(device, stack) doing one use of a closed object).
USE_AFTER_CLOSE = {
    "Device.memory_info": ("Device", lambda d, st: _closed(fastexec.Device(0)).memory_info()),
    "Stream(closed Device)": ("Device", lambda d, st: fastexec.Stream(_closed(fastexec.Device(0)))),
    "Event(closed Device)": ("Device", lambda d, st: fastexec.Event(_closed(fastexec.Device(0)))),
    "DeviceBuffer(closed Device)": ("Device", lambda d, st: fastexec.DeviceBuffer(_closed(fastexec.Device(0)), 16)),
    "PinnedBuffer(closed Device)": ("Device", lambda d, st: fastexec.PinnedBuffer(_closed(fastexec.Device(0)), 16)),
    "Model(closed Device)": ("Device", lambda d, st: fastexec.Model(emulator.sample_model("tiny"),
                                                                     device=_closed(fastexec.Device(0)))),
    "Stream.synchronize": ("Stream", lambda d, st: _closed(fastexec.Stream(d)).synchronize()),
    "Stream.synchronize(timeout)": ("Stream", lambda d, st: _closed(fastexec.Stream(d)).synchronize(timeout_ms=10)),
    "Stream.query": ("Stream", lambda d, st: _closed(fastexec.Stream(d)).query()),
    "Event.record(closed Stream)": ("Stream", lambda d, st: st.enter_context(fastexec.Event(d)).record(
        _closed(fastexec.Stream(d)))),
    "Event.wait(closed Stream)": ("Stream", lambda d, st: st.enter_context(fastexec.Event(d)).wait(
        _closed(fastexec.Stream(d)))),
    "DeviceBuffer.copy_from_host(closed Stream)": ("Stream", lambda d, st: st.enter_context(
        fastexec.DeviceBuffer(d, 16)).copy_from_host(_src(), stream=_closed(fastexec.Stream(d)))),
    "DeviceBuffer.copy_to_host(closed Stream)": ("Stream", lambda d, st: st.enter_context(
        fastexec.DeviceBuffer(d, 16)).copy_to_host(bytearray(16), stream=_closed(fastexec.Stream(d)))),
    "Event.record": ("Event", lambda d, st: _closed(fastexec.Event(d)).record(st.enter_context(fastexec.Stream(d)))),
    "Event.wait": ("Event", lambda d, st: _closed(fastexec.Event(d)).wait(st.enter_context(fastexec.Stream(d)))),
    "Event.synchronize": ("Event", lambda d, st: _closed(fastexec.Event(d)).synchronize()),
    "Event.synchronize(timeout)": ("Event", lambda d, st: _closed(fastexec.Event(d)).synchronize(timeout_ms=10)),
    "Event.query": ("Event", lambda d, st: _closed(fastexec.Event(d)).query()),
    "Event.elapsed_ms(self closed)": ("Event", lambda d, st: _closed(fastexec.Event(d)).elapsed_ms(
        st.enter_context(fastexec.Event(d)))),
    "Event.elapsed_ms(start closed)": ("Event", lambda d, st: st.enter_context(fastexec.Event(d)).elapsed_ms(
        _closed(fastexec.Event(d)))),
    "DeviceBuffer.copy_from_host": ("DeviceBuffer", lambda d, st: _closed(fastexec.DeviceBuffer(d, 16)).copy_from_host(
        _src())),
    "DeviceBuffer.copy_from_host(stream)": ("DeviceBuffer", lambda d, st: _closed(fastexec.DeviceBuffer(d, 16))
                                            .copy_from_host(_src(), stream=st.enter_context(fastexec.Stream(d)))),
    "DeviceBuffer.copy_to_host": ("DeviceBuffer", lambda d, st: _closed(fastexec.DeviceBuffer(d, 16)).copy_to_host(
        bytearray(16))),
    "DeviceBuffer.copy_to_host(stream)": ("DeviceBuffer", lambda d, st: _closed(fastexec.DeviceBuffer(d, 16))
                                          .copy_to_host(bytearray(16), stream=st.enter_context(fastexec.Stream(d)))),
    "PinnedBuffer memoryview": ("PinnedBuffer", lambda d, st: memoryview(_closed(fastexec.PinnedBuffer(d, 16)))),
    "PinnedBuffer np.frombuffer": ("PinnedBuffer", lambda d, st: np.frombuffer(_closed(fastexec.PinnedBuffer(d, 16)),
                                                                                np.uint8)),
    "PinnedBuffer as copy source": ("PinnedBuffer", lambda d, st: st.enter_context(fastexec.DeviceBuffer(d, 16))
                                    .copy_from_host(_closed(fastexec.PinnedBuffer(d, 16)))),
    "PinnedBuffer as copy destination": ("PinnedBuffer", lambda d, st: st.enter_context(fastexec.DeviceBuffer(d, 16))
                                         .copy_to_host(_closed(fastexec.PinnedBuffer(d, 16)))),
    "ExecConfig.set": ("ExecConfig", lambda d, st: _closed(fastexec.ExecConfig()).set("stream_sync_timeout_ms", 5)),
}


@pytest.mark.parametrize("case", list(USE_AFTER_CLOSE))
def test_use_after_close_raises_closed_error(device, stack, case):
    cls_name, use = USE_AFTER_CLOSE[case]
    with pytest.raises(fastexec.ClosedError) as info:
        use(device, stack)
    assert isinstance(info.value, RuntimeError)
    assert isinstance(info.value, fastexec.FastexecError)
    assert cls_name in str(info.value) and "closed" in str(info.value)


FACTORIES = {
    "Device": lambda d: fastexec.Device(0),
    "Stream": lambda d: fastexec.Stream(d),
    "Event": lambda d: fastexec.Event(d),
    "DeviceBuffer": lambda d: fastexec.DeviceBuffer(d, 64),
    "PinnedBuffer": lambda d: fastexec.PinnedBuffer(d, 64),
    "ExecConfig": lambda d: fastexec.ExecConfig(stream_sync_timeout_ms=10),
    "Model": lambda d: fastexec.Model(emulator.sample_model("tiny"), device=d),
    "Model(device=0)": lambda d: fastexec.Model(emulator.sample_model("tiny"), device=0),
}


@pytest.mark.parametrize("kind", list(FACTORIES))
def test_double_close_is_a_no_op(device, kind):
    base = live()
    obj = FACTORIES[kind](device)
    obj.close()
    after_first = live()
    obj.close()
    obj.close()
    assert live() == after_first == base
    if hasattr(obj, "closed"):
        assert obj.closed is True


@pytest.mark.parametrize("kind", list(FACTORIES))
def test_context_manager_closes(device, kind):
    base = live()
    with FACTORIES[kind](device) as obj:
        if kind != "Device":  # a second Device(0) only raises ACL's reference count
            assert live() != base
    assert live() == base
    obj.close()  # and a close after the `with` is a no-op
    assert live() == base


BAD_ARGUMENTS = {
    "Stream(None)": lambda d: fastexec.Stream(None),
    "Stream(int)": lambda d: fastexec.Stream(0),
    "Event(None)": lambda d: fastexec.Event(None),
    "DeviceBuffer(None, n)": lambda d: fastexec.DeviceBuffer(None, 16),
    "PinnedBuffer('0', n)": lambda d: fastexec.PinnedBuffer("0", 16),
    "Event.record(None)": lambda d: _with(fastexec.Event(d), lambda e: e.record(None)),
    "Event.record(Event)": lambda d: _with(fastexec.Event(d), lambda e: e.record(e)),
    "Event.wait(None)": lambda d: _with(fastexec.Event(d), lambda e: e.wait(None)),
    "Event.elapsed_ms(Stream)": lambda d: _with(fastexec.Event(d), lambda e: _with(
        fastexec.Stream(d), lambda s: e.elapsed_ms(s))),
    "copy_from_host(stream=Event)": lambda d: _with(fastexec.DeviceBuffer(d, 16), lambda b: _with(
        fastexec.Event(d), lambda e: b.copy_from_host(b"x", stream=e))),
    "copy_from_host(int)": lambda d: _with(fastexec.DeviceBuffer(d, 16), lambda b: b.copy_from_host(12)),
    "copy_to_host(None)": lambda d: _with(fastexec.DeviceBuffer(d, 16), lambda b: b.copy_to_host(None)),
}


def _with(obj, fn):
    with obj:
        return fn(obj)


@pytest.mark.parametrize("case", list(BAD_ARGUMENTS))
def test_wrong_handles_are_type_errors(device, case):
    with pytest.raises(TypeError):
        BAD_ARGUMENTS[case](device)


# ================================================================ Stream


def test_stream_synchronize_and_query(device):
    with fastexec.Stream(device) as s:
        assert s.query() is True  # idle
        s.synchronize()
        assert s.handle_address != 0
        assert s.device is device
        stall(s, 300)
        assert s.query() is False  # held by the stall
        with pytest.raises(fastexec.AclTimeoutError) as info:
            s.synchronize(timeout_ms=5)
        assert info.value.code == 507046 and info.value.api == "aclrtSynchronizeStreamWithTimeout"
        assert isinstance(info.value, TimeoutError)
        s.synchronize()
        assert s.query() is True


def test_stream_synchronize_with_timeout_on_idle_stream(device):
    with fastexec.Stream(device) as s:
        s.synchronize(timeout_ms=1000)
        s.synchronize(timeout_ms=-1)
        assert s.query()


def test_stream_close_waits_for_queued_work(device):
    s = fastexec.Stream(device)
    stall(s, 100)
    ev = fastexec.Event(device)
    ev.record(s)
    s.close()  # waits for the stall, then destroys the stream
    assert ev.query() is True
    ev.close()


# ================================================================ Event


def test_event_record_synchronize_query(device):
    with fastexec.Stream(device) as s, fastexec.Event(device) as ev:
        assert ev.query() is False  # never recorded
        stall(s, 300)
        ev.record(s)
        assert ev.query() is False
        ev.synchronize()
        assert ev.query() is True
        assert s.query() is True
        ev.record(s)  # re-record on an idle stream
        ev.synchronize(timeout_ms=1000)
        assert ev.query() is True


def test_event_synchronize_timeout(device):
    with fastexec.Stream(device) as s, fastexec.Event(device) as ev:
        stall(s, 300)
        ev.record(s)
        with pytest.raises(fastexec.AclTimeoutError) as info:
            ev.synchronize(timeout_ms=5)
        assert info.value.code == 507047
        ev.synchronize()
        assert ev.query()


def test_event_elapsed_ms(device):
    with fastexec.Stream(device) as s, fastexec.Event(device) as start, fastexec.Event(device) as end:
        start.record(s)
        stall(s, 20)
        end.record(s)
        end.synchronize()
        ms = end.elapsed_ms(start)
        assert isinstance(ms, float)
        assert ms >= 0.0
        assert start.elapsed_ms(start) == 0.0


def test_event_elapsed_before_completion_raises_emulator_code(device):
    with fastexec.Stream(device) as s, fastexec.Event(device) as start, fastexec.Event(device) as end:
        with pytest.raises(fastexec.AclError) as info:
            end.elapsed_ms(start)  # neither recorded
        assert info.value.code == 107006 and info.value.name == "ACL_ERROR_RT_EVENT_TIMESTAMP_INVALID"
        start.record(s)
        stall(s, 300)
        end.record(s)
        with pytest.raises(fastexec.AclError) as info:
            end.elapsed_ms(start)
        err = info.value
        assert err.code == 507006
        assert err.name == "ACL_ERROR_RT_EVENT_NOT_COMPLETE"
        assert err.api == "aclrtEventElapsedTime"
        assert "not completed" in err.message
        end.synchronize()
        assert end.elapsed_ms(start) >= 0.0


def test_event_wait_orders_another_stream(device):
    with fastexec.Stream(device) as producer, fastexec.Stream(device) as consumer, fastexec.Event(device) as ev, \
            fastexec.Event(device) as done:
        stall(producer, 300)
        ev.record(producer)
        ev.wait(consumer)  # no host wait
        done.record(consumer)
        assert consumer.query() is False and done.query() is False
        done.synchronize()
        assert ev.query() is True and producer.query() is True


# ================================================================ DeviceBuffer

DTYPES = [np.float32, np.float16, np.float64, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
          np.uint64, np.bool_]


def _data(dtype, n=1000, seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, n).astype(np.bool_)
    if dtype.kind == "f":
        return rng.standard_normal(n).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("ordered", [False, True], ids=["sync", "stream"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: np.dtype(t).name)
def test_device_buffer_round_trip_numpy(device, dtype, ordered):
    src = _data(dtype).reshape(10, 100)
    with fastexec.Stream(device) as s, fastexec.DeviceBuffer(device, src.nbytes) as buf:
        assert buf.nbytes == src.nbytes and buf.address != 0
        out = np.zeros_like(src)
        stream = s if ordered else None
        buf.copy_from_host(src, stream=stream)
        buf.copy_to_host(out, stream=stream)
        s.synchronize()
        assert out.tobytes() == src.tobytes()


@pytest.mark.parametrize("ordered", [False, True], ids=["sync", "stream"])
@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "pinned"])
def test_device_buffer_round_trip_other_sources(device, kind, ordered):
    payload = bytes(range(256)) * 4
    with contextlib.ExitStack() as st:
        s = st.enter_context(fastexec.Stream(device))
        buf = st.enter_context(fastexec.DeviceBuffer(device, len(payload)))
        if kind == "pinned":
            src = st.enter_context(fastexec.PinnedBuffer(device, len(payload)))
            view = np.frombuffer(src, np.uint8)
            view[:] = np.frombuffer(payload, np.uint8)
            del view
        else:
            src = {"bytes": payload, "bytearray": bytearray(payload), "memoryview": memoryview(payload)}[kind]
        stream = s if ordered else None
        buf.copy_from_host(src, stream=stream)
        back = bytearray(len(payload))
        buf.copy_to_host(back, stream=stream)
        pinned_back = st.enter_context(fastexec.PinnedBuffer(device, len(payload)))
        buf.copy_to_host(pinned_back, stream=stream)
        s.synchronize()
        assert bytes(back) == payload
        assert bytes(memoryview(pinned_back)) == payload


def test_device_buffer_partial_copies_touch_only_the_start(device):
    with fastexec.DeviceBuffer(device, 64) as buf:
        buf.copy_from_host(bytes([7]) * 64)
        buf.copy_from_host(b"abcd")  # a smaller source writes the start
        head = bytearray(8)
        buf.copy_to_host(head)  # a smaller destination reads the start
        assert head == b"abcd" + bytes([7]) * 4
        whole = bytearray(64)
        buf.copy_to_host(whole)
        assert whole == b"abcd" + bytes([7]) * 60
        buf.copy_from_host(b"")  # empty copies are no-ops
        buf.copy_to_host(bytearray())
        buf.copy_to_host(whole)
        assert whole[:4] == b"abcd"


def test_device_buffer_size_checks(device):
    with fastexec.DeviceBuffer(device, 64) as buf:
        with pytest.raises(ValueError, match=r"(?s)\b65\b.*\b64\b"):
            buf.copy_from_host(bytes(65))
        with pytest.raises(ValueError, match=r"(?s)\b128\b.*\b64\b"):
            buf.copy_from_host(np.zeros(32, np.float32))
        with pytest.raises(ValueError, match=r"(?s)\b100\b.*\b64\b"):
            buf.copy_to_host(np.zeros(100, np.uint8))
        with fastexec.Stream(device) as s:
            with pytest.raises(ValueError, match=r"(?s)\b65\b.*\b64\b"):
                buf.copy_from_host(bytearray(65), stream=s)
            with pytest.raises(ValueError, match=r"(?s)\b72\b.*\b64\b"):
                buf.copy_to_host(bytearray(72), stream=s)
        data = bytes(range(64))
        buf.copy_from_host(data)  # still usable
        out = bytearray(64)
        buf.copy_to_host(out)
        assert out == data


@pytest.mark.parametrize("cls", [fastexec.DeviceBuffer, fastexec.PinnedBuffer], ids=lambda c: c.__name__)
def test_zero_size_buffer_is_a_value_error(no_leaks, cls):
    base = live()
    with fastexec.Device(0) as dev:
        with pytest.raises(ValueError, match="greater than 0"):
            cls(dev, 0)
    assert live() == base


def test_device_buffer_too_large_is_a_memory_error(device):
    base = live()
    with pytest.raises(fastexec.AclMemoryError) as info:
        fastexec.DeviceBuffer(device, 1 << 50)
    assert info.value.code == 207001 and isinstance(info.value, MemoryError)
    assert live() == base


def test_non_contiguous_arrays_are_refused_clearly(device):
    grid = np.arange(64, dtype=np.float32).reshape(8, 8)
    with fastexec.DeviceBuffer(device, grid.nbytes) as buf:
        for bad in (grid[:, ::2], grid.T, grid[::2]):
            with pytest.raises((TypeError, ValueError), match="contiguous"):
                buf.copy_from_host(bad)
        out = np.zeros((8, 8), np.float32)
        with pytest.raises((TypeError, ValueError), match="contiguous"):
            buf.copy_to_host(out[:, ::2])
        with pytest.raises((TypeError, ValueError), match="contiguous"):
            buf.copy_to_host(out.T)
        buf.copy_from_host(np.ascontiguousarray(grid[:, ::2]))  # the contiguous copy works
        half = np.zeros((8, 4), np.float32)
        buf.copy_to_host(half)
        assert np.array_equal(half, grid[:, ::2])


def test_copy_to_read_only_destination_is_refused(device):
    with fastexec.DeviceBuffer(device, 16) as buf:
        buf.copy_from_host(bytes(range(16)))
        frozen = np.zeros(16, np.uint8)
        frozen.flags.writeable = False
        for dst in (bytes(16), frozen):
            with pytest.raises((TypeError, ValueError, BufferError), match="writable|read-only"):
                buf.copy_to_host(dst)
        assert not frozen.any()


# ================================================================ PinnedBuffer


def test_pinned_buffer_is_viewed_without_copying(device):
    n = 4096
    with fastexec.PinnedBuffer(device, n) as pb, fastexec.DeviceBuffer(device, n) as buf, \
            fastexec.Stream(device) as s:
        assert len(pb) == n and pb.nbytes == n and pb.address != 0
        arr = np.frombuffer(pb, np.float32)
        assert arr.shape == (n // 4,) and arr.flags.writeable
        assert arr.__array_interface__["data"][0] == pb.address
        other = np.frombuffer(pb, np.uint8)
        assert np.shares_memory(arr, other)
        mv = memoryview(pb)
        assert mv.nbytes == n and not mv.readonly

        # numpy writes are what the device copy reads
        arr[:] = np.arange(n // 4, dtype=np.float32) * 0.5
        buf.copy_from_host(pb, stream=s)
        s.synchronize()
        check = np.empty(n // 4, np.float32)
        buf.copy_to_host(check)
        assert np.array_equal(check, np.arange(n // 4, dtype=np.float32) * 0.5)

        # and the device copy's writes are what numpy sees
        buf.copy_from_host(np.full(n // 4, -3.25, np.float32))
        buf.copy_to_host(pb, stream=s)
        s.synchronize()
        assert np.all(arr == -3.25) and np.all(other.view(np.float32) == -3.25)
        assert bytes(mv[:4]) == np.float32(-3.25).tobytes()
        del arr, other, mv


def test_pinned_buffer_close_refused_while_viewed(device):
    base = live()
    pb = fastexec.PinnedBuffer(device, 256)
    view = np.frombuffer(pb, np.uint8)
    with pytest.raises(BufferError, match=r"\b1 live view"):
        pb.close()
    assert not pb.closed
    mv = memoryview(pb)
    with pytest.raises(BufferError, match=r"\b2 live view"):
        pb.close()
    view[:] = 9  # still usable
    assert mv[0] == 9
    del view
    mv.release()
    pb.close()
    assert pb.closed
    assert live() == base
    with pytest.raises(fastexec.ClosedError):
        np.frombuffer(pb, np.uint8)


# ================================================================ ResourceWarning for objects never closed


@pytest.mark.parametrize("kind", list(FACTORIES))
def test_resource_warning_for_unclosed_objects(device, kind):
    base = live()
    cls_name = kind.split("(")[0]
    with pytest.warns(ResourceWarning, match=f"unclosed {cls_name}"):
        obj = FACTORIES[kind](device)
        if kind != "Device":
            assert live() != base
        del obj
        gc.collect()
    assert live() == base  # the dealloc freed it


def test_resource_warning_for_unclosed_device(no_leaks):
    base = live()
    with pytest.warns(ResourceWarning, match=r"unclosed Device\(0\)"):
        fastexec.Device(0)
        gc.collect()
    assert live() == base


def test_resource_warning_for_unclosed_children_and_device_together(no_leaks):
    base = live()
    with pytest.warns(ResourceWarning) as record:
        dev = fastexec.Device(0)
        objs = [fastexec.Stream(dev), fastexec.Event(dev), fastexec.DeviceBuffer(dev, 64),
                fastexec.PinnedBuffer(dev, 64), fastexec.Model(emulator.sample_model("tiny"), device=dev)]
        del dev, objs
        gc.collect()
    messages = " ".join(str(w.message) for w in record)
    for name in ("Stream", "Event", "DeviceBuffer", "PinnedBuffer", "Model", "Device(0)"):
        assert f"unclosed {name}" in messages
    assert live() == base


def test_children_collected_in_a_reference_cycle_are_freed(no_leaks):
    # A child in a reference cycle is cleared by the cyclic GC (tp_clear) before its dealloc runs.
    # Runs in a subprocess: a failure here may be a crash.
    proc = run_child("""
        import gc, warnings
        import fastexec
        from fastexec import emulator
        warnings.simplefilter("ignore", ResourceWarning)

        class Holder:
            pass

        dev = fastexec.Device(0)
        h = Holder()
        h.me = h
        h.objs = [fastexec.Stream(dev), fastexec.Event(dev), fastexec.DeviceBuffer(dev, 64),
                  fastexec.PinnedBuffer(dev, 64), fastexec.Model(emulator.sample_model("tiny"), device=dev)]
        del h
        gc.collect()
        c = emulator.counters()
        leaked = {k: c[k] for k in ("streams", "events", "device_allocations", "host_allocations", "models",
                                    "model_descs") if c[k]}
        assert leaked == {}, leaked
        assert c["findings"] == 0, c
        dev.close()          # every child released its count on the device
        c = emulator.counters()
        assert c["devices_set"] == 0, c
        print("ok")
    """)
    assert_clean_exit(proc)
    assert proc.stdout.strip() == "ok"


def test_failed_constructors_leave_nothing_and_warn_nothing(device):
    base = live()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with pytest.raises(ValueError):
            fastexec.ExecConfig(stream_sync_timeout_ms=5, bogus=1)
        with pytest.raises(ValueError):
            fastexec.ExecConfig(stream_sync_timeout_ms=-5)
        with pytest.raises(fastexec.AclError):
            fastexec.Model(b"not a model", device=device)
        with pytest.raises(fastexec.AclError):
            fastexec.Model("/nonexistent/model.om", device=0)
        with pytest.raises(ValueError):
            fastexec.Model(b"", device=0)
        with pytest.raises(ValueError):
            fastexec.DeviceBuffer(device, 0)
        with pytest.raises(fastexec.AclError):
            fastexec.Device(3)
        gc.collect()
    assert [str(w.message) for w in record if issubclass(w.category, ResourceWarning)] == []
    assert live() == base


# ================================================================ close() whose free fails must not lose the resource


def test_failed_free_keeps_the_buffer_open_until_it_can_be_freed():
    # Freeing memory that a queued copy still uses is refused by the runtime (checked mode:
    # ACL_ERROR_RT_MEMORY_FREE 207002, "block kept"). close() must then leave the object open, so
    # that a close() after synchronize frees it; otherwise the block is lost for good. Runs in a
    # subprocess: the checked-mode finding is deliberate, and a lost block would outlive the test.
    proc = run_child("""
        import ctypes, json
        import fastexec
        from fastexec import emulator
        lib = ctypes.CDLL(emulator.library_path())
        lib.fxemuStallStream.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        out = {"errors": {}, "closed_after_error": {}}
        dev = fastexec.Device(0)
        s = fastexec.Stream(dev)
        pinned = fastexec.PinnedBuffer(dev, 64)
        buf = fastexec.DeviceBuffer(dev, 64)
        assert lib.fxemuStallStream(s.handle_address, 200) == 0
        buf.copy_from_host(pinned, stream=s)
        for name, obj in (("DeviceBuffer", buf), ("PinnedBuffer", pinned)):
            try:
                obj.close()
            except fastexec.AclError as exc:
                out["errors"][name] = exc.code
                out["closed_after_error"][name] = obj.closed
        s.synchronize()
        buf.close()
        pinned.close()
        s.close()
        dev.close()
        c = emulator.counters()
        out["leaked"] = {k: c[k] for k in ("device_allocations", "host_allocations", "streams", "devices_set") if c[k]}
        print(json.dumps(out))
    """)
    assert_clean_exit(proc)
    out = json.loads(proc.stdout)
    assert set(out["errors"].values()) <= {207002}
    assert out["closed_after_error"] == {name: False for name in out["errors"]}, \
        "close() failed but marked the object closed"
    assert out["leaked"] == {}


# ================================================================ objects left open at interpreter exit

EXIT_SCRIPT = """
    import numpy as np
    import fastexec
    from fastexec import emulator

    dev = fastexec.Device(0)
    stream = fastexec.Stream(dev)
    event = fastexec.Event(dev)
    buf = fastexec.DeviceBuffer(dev, 1024)
    pinned = fastexec.PinnedBuffer(dev, 1024)
    view = np.frombuffer(pinned, np.uint8)        # a live view at exit, too
    view[:] = 5
    config = fastexec.ExecConfig(stream_sync_timeout_ms=100)
    model = fastexec.Model(emulator.sample_model("tiny"), device=dev)
    own = fastexec.Model(emulator.sample_model("dynamic-batch"), device=0)
    buf.copy_from_host(pinned, stream=stream)
    event.record(stream)
    {extra}
    print("done", flush=True)
"""

CYCLE = """
    class Holder:
        pass
    h = Holder()
    h.me = h
    h.all = [dev, stream, event, buf, pinned, view, config, model, own]
    del dev, stream, event, buf, pinned, view, config, model, own
"""


@pytest.mark.parametrize("extra", ["", CYCLE, "stall = __import__('ctypes').CDLL(emulator.library_path())"
                                                ".fxemuStallStream; stall.argtypes = [__import__('ctypes').c_void_p, "
                                                "__import__('ctypes').c_uint32]; stall(stream.handle_address, 50)"],
                         ids=["globals", "cycle", "busy-stream"])
def test_objects_left_open_at_interpreter_exit(extra):
    proc = run_child(EXIT_SCRIPT.replace("{extra}", textwrap.dedent(extra).replace("\n", "\n    ")))
    assert_clean_exit(proc)
    assert proc.stdout.strip() == "done"


# ================================================================ Model


def _tensor_spec(md: ModelDef, output: bool, k: int):
    """The TensorSpec the runtime should give: bytes at the largest gear / range bound; each
    dim's range over the gears (inputs; an output's only when it has no dynamic dim)."""
    t = md.outputs[k] if output else visible_input(md, k)   # an AIPP input shows its raw image
    shapes = [(outs if output else ins)[k] for ins, outs in md.profile_shapes()]
    if md.profile in (None, "dynamic_batch"):
        shapes = [(md.max_batch if d == -1 else d for d in t.dims) for _ in (0,)]
        shapes = [tuple(s) for s in shapes] + ([tuple(g if d == -1 else d for d in t.dims) for g in md.dynamic_batch])
    nbytes = max(int(np.prod(s)) for s in shapes) * np.dtype(t.dtype).itemsize
    rng = tuple((min(s[j] for s in shapes), max(s[j] for s in shapes)) for j in range(len(t.dims)))
    if output and -1 in t.dims:
        rng = None
    return fastexec.TensorSpec(t.name, tuple(t.dims), np.dtype(t.dtype), t.format, nbytes, rng)


def _check_model_matches(model, md: ModelDef):
    assert model.inputs == [_tensor_spec(md, False, k) for k in range(len(md.inputs))]
    assert model.outputs == [_tensor_spec(md, True, k) for k in range(len(md.outputs))]
    assert model.dynamic_kind == md.profile
    assert model.dynamic_hw == list(md.dynamic_hw)
    assert model.dynamic_dims == [dict(zip([t.name for t in md.inputs], ins)) for ins, _ in md.profile_shapes()] \
        if md.dynamic_dims else model.dynamic_dims == []
    for spec in model.inputs + model.outputs:
        assert isinstance(spec, fastexec.TensorSpec)
        assert isinstance(spec.dtype, np.dtype)
        assert isinstance(spec.shape, tuple) and all(isinstance(d, int) for d in spec.shape)
        assert isinstance(spec.nbytes, int)
    assert model.dynamic_batch == tuple(md.dynamic_batch)
    assert model.batch_size == md.max_batch


SOURCE_KINDS = {
    "str": lambda p: str(p),
    "Path": lambda p: pathlib.Path(p),
    "bytes": lambda p: pathlib.Path(p).read_bytes(),
    "bytearray": lambda p: bytearray(pathlib.Path(p).read_bytes()),
}


@pytest.mark.parametrize("source", list(SOURCE_KINDS))
@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_sample_loads_and_describes_itself(device, name, source):
    base = live()
    md = SAMPLES[name]
    with fastexec.Model(SOURCE_KINDS[source](emulator.sample_model(name)), device=device) as model:
        assert live()["models"] == base["models"] + 1
        assert model.device is device and not model.closed
        assert isinstance(model.id, int)
        _check_model_matches(model, md)
        assert name in repr(model) or source in ("bytes", "bytearray")
        assert [t.name for t in md.inputs] == [t.name for t in model.inputs]
        assert "ascend_mbatch_shape_data" not in [t.name for t in model.inputs]
        with pytest.raises(fastexec.FastexecError, match=r"\b1 open\b"):
            device.close()  # the model is a child of the device
    assert model.closed and "closed" in repr(model)
    assert live() == base


def test_dynamic_batch_sample_details(device):
    with fastexec.Model(emulator.sample_model("dynamic-batch"), device=device) as model:
        assert model.dynamic_batch == (1, 2, 4, 8)
        assert model.batch_size == 8
        (images,) = model.inputs
        (scores,) = model.outputs
        assert images.shape == (-1, 3, 16, 16) and images.nbytes == 8 * 3 * 16 * 16 * 4
        assert scores.shape == (-1, 10) and scores.nbytes == 8 * 10 * 4
        assert images.dtype == np.float32 and images.format == "NCHW" and scores.format == "ND"
    for name in set(SAMPLES) - {"dynamic-batch"}:
        with fastexec.Model(emulator.sample_model(name), device=device) as model:
            assert model.dynamic_batch == ()
            assert model.dynamic_kind == SAMPLES[name].profile


def test_every_dtype_and_format_maps_to_numpy(device, tmp_path):
    dtypes = ["float32", "float16", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
              "uint64", "bool"]
    formats = list(FORMATS)
    inputs = tuple(TensorDef(f"in_{d}", d, formats[i % len(formats)], (3, i + 1, 2)) for i, d in enumerate(dtypes))
    outputs = tuple(TensorDef(f"out_{d}", d, formats[(i + 5) % len(formats)], (3, 2 * (i + 1)))
                    for i, d in enumerate(dtypes))
    md = ModelDef(name="all-dtypes", inputs=inputs, outputs=outputs, kernel="identity", compute_us=1)
    path = tmp_path / "all-dtypes.om"
    write_model(path, md)
    with fastexec.Model(path, device=device) as model:
        _check_model_matches(model, md)
        assert [s.dtype for s in model.inputs] == [np.dtype(d) for d in dtypes]
        assert {s.format for s in model.inputs + model.outputs} == set(formats)


def test_dynamic_custom_model(device, tmp_path):
    md = ModelDef(name="dyn", inputs=(TensorDef("x", "int16", "NHWC", (-1, 4, 4, 3)),),
                  outputs=(TensorDef("y", "int16", "NHWC", (-1, 4, 4, 3)),), kernel="identity", compute_us=1,
                  dynamic_batch=(3, 5, 32))
    write_model(tmp_path / "dyn.om", md)
    with fastexec.Model(str(tmp_path / "dyn.om"), device=device) as model:
        _check_model_matches(model, md)
        assert model.inputs[0].nbytes == 32 * 4 * 4 * 3 * 2
        assert model.batch_size == 32


def test_model_with_device_id_owns_its_device(no_leaks):
    base = live()
    model = fastexec.Model(emulator.sample_model("multi-io"), device=0)
    assert live()["devices_set"] == base["devices_set"] + 1
    assert isinstance(model.device, fastexec.Device) and not model.device.closed
    with pytest.raises(fastexec.FastexecError):
        model.device.close()  # refused: the model is open on it
    _check_model_matches(model, SAMPLES["multi-io"])
    model.close()
    assert model.device.closed
    assert live() == base
    with fastexec.Model(emulator.sample_model("tiny")) as default:  # device=0 is the default
        assert default.device.id == 0
    assert live() == base


def test_model_missing_file(no_leaks, tmp_path):
    base = live()
    for device in (0, None):
        with contextlib.ExitStack() as st:
            dev = 0 if device == 0 else st.enter_context(fastexec.Device(0))
            with pytest.raises(fastexec.AclError) as info:
                fastexec.Model(tmp_path / "missing.om", device=dev)
            err = info.value
            assert err.code == 145002
            assert err.name == "ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID"
            assert err.api == "aclmdlLoadFromFile"
        assert live() == base


@pytest.mark.parametrize("data", [b"not a model at all", b"fastexec-emulator-model 1\nname a/b\n",
                                  b"fastexec-emulator-model 1\nname x\ncompute_us 1\n"],
                         ids=["garbage", "bad-name", "no-inputs"])
def test_model_corrupt_bytes(device, data):
    base = live()
    with pytest.raises(fastexec.AclError) as info:
        fastexec.Model(data, device=device)
    err = info.value
    assert err.code == 100013 and err.name == "ACL_ERROR_PARSE_MODEL" and err.api == "aclmdlLoadFromMem"
    now = live()  # before any gc: nothing half-built survives the exception
    assert now["models"] == base["models"] and now["model_descs"] == base["model_descs"]
    assert now == base
    with fastexec.Model(emulator.sample_model("tiny"), device=device) as ok:  # the device is still usable
        assert ok.inputs[0].name == "x"


def test_model_corrupt_file_and_own_device(no_leaks, tmp_path):
    base = live()
    path = tmp_path / "bad.om"
    path.write_bytes(b"fastexec-emulator-model 2\n")
    with pytest.raises(fastexec.AclError) as info:
        fastexec.Model(path, device=0)
    assert info.value.code == 100013 and info.value.api == "aclmdlLoadFromFile"
    assert live() == base


def test_model_empty_bytes(device):
    base = live()
    for empty in (b"", bytearray(), memoryview(b"")):
        with pytest.raises(ValueError, match="empty"):
            fastexec.Model(empty, device=device)
    with pytest.raises(ValueError, match="empty"):
        fastexec.Model(b"", device=0)
    assert live() == base


def test_model_bad_device_id(no_leaks):
    base = live()
    with pytest.raises(fastexec.AclError) as info:
        fastexec.Model(emulator.sample_model("tiny"), device=4)
    assert info.value.code == 107001
    assert live() == base


# ================================================================ ExecConfig

WORK_OPTIONS = ["work_addr", "work_size", "mpaimid", "aicqos", "aicost", "mec_timethr"]


def test_exec_config_options_set_and_read_back(no_leaks):
    base = live()
    with fastexec.ExecConfig(stream_sync_timeout_ms=100, event_sync_timeout_ms=-1) as cfg:
        assert live()["exec_configs"] == base["exec_configs"] + 1
        assert cfg.options == {"stream_sync_timeout_ms": 100, "event_sync_timeout_ms": -1}
        cfg.set("event_sync_timeout_ms", 0)
        cfg.set("stream_sync_timeout_ms", 2**31 - 1)
        assert cfg.options == {"stream_sync_timeout_ms": 2**31 - 1, "event_sync_timeout_ms": 0}
        snapshot = cfg.options
        snapshot["stream_sync_timeout_ms"] = 1
        assert cfg.options["stream_sync_timeout_ms"] == 2**31 - 1  # a copy
        assert "stream_sync_timeout_ms=2147483647" in repr(cfg)
    assert live() == base
    with fastexec.ExecConfig() as empty:
        assert empty.options == {}
    assert live() == base


def test_exec_config_unknown_option(no_leaks):
    with fastexec.ExecConfig() as cfg:
        with pytest.raises(ValueError) as info:
            cfg.set("colour", 1)
        text = str(info.value)
        assert "colour" in text
        for name in ["stream_sync_timeout_ms", "event_sync_timeout_ms"] + WORK_OPTIONS:
            assert name in text
        assert cfg.options == {}
    with pytest.raises(ValueError, match="stream_sync_timeout_ms"):
        fastexec.ExecConfig(colour=1)


@pytest.mark.parametrize("value", [-2, -100, 2**31, 2**40, 1.5, "10", None])
@pytest.mark.parametrize("name", ["stream_sync_timeout_ms", "event_sync_timeout_ms"])
def test_exec_config_out_of_range_timeout(no_leaks, name, value):
    with fastexec.ExecConfig(**{name: 7}) as cfg:
        with pytest.raises(ValueError, match=name):
            cfg.set(name, value)
        assert cfg.options == {name: 7}


@pytest.mark.parametrize("name", WORK_OPTIONS)
def test_exec_config_work_options_refused_on_default_profile(no_leaks, name):
    assert emulator.profile()["name"] == "atlas-300i-pro"
    with fastexec.ExecConfig(stream_sync_timeout_ms=1) as cfg:
        with pytest.raises(fastexec.AclInvalidParamError) as info:
            cfg.set(name, 4096)
        assert info.value.code == 100000 and info.value.api == "aclmdlSetExecConfigOpt"
        assert isinstance(info.value, ValueError)
        assert cfg.options == {"stream_sync_timeout_ms": 1}
    with pytest.raises(fastexec.AclInvalidParamError):
        fastexec.ExecConfig(**{name: 4096})


def test_exec_config_close_idempotent(no_leaks):
    base = live()
    cfg = fastexec.ExecConfig(stream_sync_timeout_ms=3)
    cfg.close()
    cfg.close()
    assert live() == base
    assert cfg.options == {"stream_sync_timeout_ms": 3}
    with pytest.raises(fastexec.ClosedError, match="ExecConfig"):
        cfg.set("event_sync_timeout_ms", 1)


IPV350_SCRIPT = """
    import json
    import fastexec
    from fastexec import emulator
    out = {"profile": emulator.profile()["name"]}
    with fastexec.Device(0) as dev, fastexec.DeviceBuffer(dev, 1 << 20) as work:
        with fastexec.ExecConfig(work_size=1 << 20, work_addr=work.address, stream_sync_timeout_ms=50) as cfg:
            for i, name in enumerate(("mpaimid", "aicqos", "aicost", "mec_timethr")):
                cfg.set(name, i + 1)
            out["options"] = cfg.options
            out["work_addr_ok"] = cfg.options["work_addr"] == work.address
            out["exec_configs_open"] = emulator.counters()["exec_configs"]
            {extra}
    c = emulator.counters()
    out["leaked"] = {k: c[k] for k in ("exec_configs", "device_allocations", "devices_set") if c[k]}
    print(json.dumps(out))
"""


def test_exec_config_work_options_accepted_under_ipv350():
    proc = run_child(IPV350_SCRIPT.replace("{extra}", ""), FASTEXEC_EMU_PROFILE="ipv350")
    assert_clean_exit(proc)
    out = json.loads(proc.stdout)
    assert out["profile"] == "ipv350"
    opts = out["options"]
    assert opts["work_size"] == 1 << 20 and out["work_addr_ok"]
    assert opts["stream_sync_timeout_ms"] == 50
    assert [opts[k] for k in ("mpaimid", "aicqos", "aicost", "mec_timethr")] == [1, 2, 3, 4]
    assert out["exec_configs_open"] == 1
    assert out["leaked"] == {}


def test_exec_config_size_options_reject_bad_values_under_ipv350():
    extra = """
            bad = {}
            for value in (-1, 1.5, 2**64):
                try:
                    cfg.set("work_size", value)
                    bad[repr(value)] = "accepted"
                except (TypeError, ValueError, OverflowError) as exc:
                    bad[repr(value)] = "ok"
                except Exception as exc:
                    bad[repr(value)] = type(exc).__name__
            out["bad"] = bad
            out["after"] = cfg.options["work_size"]"""
    proc = run_child(IPV350_SCRIPT.replace("{extra}", textwrap.dedent(extra).strip().replace("\n", "\n            ")),
                     FASTEXEC_EMU_PROFILE="ipv350")
    assert_clean_exit(proc)
    out = json.loads(proc.stdout)
    # Sizes are non-negative integers: a float is refused, not silently truncated (and then
    # reported back by .options as the float), and out-of-range values are refused.
    assert out["bad"] == {"-1": "ok", "1.5": "ok", repr(2**64): "ok"}, out["bad"]
    assert out["after"] == 1 << 20


# ================================================================ threads


def test_threads_share_one_device(device):
    n_threads, iterations = 4, 100
    barrier = threading.Barrier(n_threads)
    errors = []
    done = [0] * n_threads

    def work(tid):
        try:
            barrier.wait()
            rng = np.random.default_rng(tid)
            for i in range(iterations):
                n = 64 + 16 * tid + i  # int32 elements; sizes differ per thread and iteration
                data = rng.integers(-2**31, 2**31 - 1, n, dtype=np.int32)
                with fastexec.Stream(device) as s, fastexec.Event(device) as ev, \
                        fastexec.DeviceBuffer(device, data.nbytes) as db, \
                        fastexec.PinnedBuffer(device, data.nbytes) as src, \
                        fastexec.PinnedBuffer(device, data.nbytes) as dst:
                    sv = np.frombuffer(src, np.int32)
                    dv = np.frombuffer(dst, np.int32)
                    sv[:] = data
                    dv[:] = 0
                    db.copy_from_host(src, stream=s)
                    db.copy_to_host(dst, stream=s)
                    ev.record(s)
                    ev.synchronize()
                    assert ev.query()
                    ok = np.array_equal(dv, data)
                    out = np.empty_like(data)
                    db.copy_to_host(out)  # synchronous
                    ok = ok and np.array_equal(out, data)
                    db.copy_from_host(data[::-1].copy())
                    db.copy_to_host(out)
                    ok = ok and np.array_equal(out, data[::-1])
                    del sv, dv
                    assert ok, f"thread {tid} iteration {i}: data mismatch"
                done[tid] += 1
        except BaseException:
            errors.append(traceback.format_exc())

    base = live()
    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert done == [iterations] * n_threads
    assert live() == base


@pytest.mark.parametrize("first_call", ["Stream.query", "Stream.synchronize", "DeviceBuffer", "Device.memory_info",
                                        "Event.record", "Model"])
def test_fresh_thread_gets_the_device_context(device, first_call):
    rc, main_ctx = current_context()
    assert rc == 0 and main_ctx
    stream = fastexec.Stream(device)
    result = {}

    def work():
        try:
            result["before"] = current_context()[0]
            if first_call == "Stream.query":
                result["value"] = stream.query()
            elif first_call == "Stream.synchronize":
                stream.synchronize()
            elif first_call == "DeviceBuffer":
                with fastexec.DeviceBuffer(device, 64) as buf:
                    buf.copy_from_host(bytes(range(64)), stream=stream)
                    back = bytearray(64)
                    buf.copy_to_host(back, stream=stream)
                    stream.synchronize()
                    result["value"] = bytes(back) == bytes(range(64))
            elif first_call == "Device.memory_info":
                result["value"] = device.memory_info()[1] > 0
            elif first_call == "Event.record":
                with fastexec.Event(device) as ev:
                    ev.record(stream)
                    ev.synchronize()
                    result["value"] = ev.query()
            else:
                with fastexec.Model(emulator.sample_model("tiny"), device=device) as m:
                    result["value"] = m.inputs[0].nbytes == 64
            result["after"] = current_context()
        except BaseException:
            result["error"] = traceback.format_exc()

    t = threading.Thread(target=work)
    t.start()
    t.join()
    stream.close()
    assert "error" not in result, result.get("error")
    assert result["before"] != 0  # the thread had no context of its own
    assert result["after"] == (0, main_ctx)  # fastexec made the device's context current
    assert result.get("value", True) is True
