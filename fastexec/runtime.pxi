# Runtime objects: one owner class per ACL resource. Included by fastexec/_core.pyx.
#
# Ownership rules, common to every class here:
# - close() is idempotent; `with` closes; methods of a closed object raise ClosedError.
# - Children hold a reference to their Device, so a device outlives its streams, buffers, models.
# - An object garbage-collected while open is closed then, with a ResourceWarning; nothing is
#   freed once the interpreter is shutting down (the process releases device resources).
# - Calls on another thread make the device's context current on that thread first.

import atexit
import math
import warnings

cimport cython
from collections import namedtuple

cimport numpy as cnp
import numpy as np

from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_FillInfo
from libc.stdint cimport int32_t, intptr_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset

cnp.import_array()

cdef extern from *:
    """
    /* The ACL context this thread last made current through fastexec. */
    static __thread void *fx_current_context = NULL;
    """
    void* fx_current_context

cdef bint _interpreter_alive = True


def _at_exit():
    global _interpreter_alive
    _interpreter_alive = False


atexit.register(_at_exit)


cdef inline bint _can_free() noexcept:
    return _interpreter_alive


cdef void _warn_unclosed(str what) noexcept:
    try:
        warnings.warn(f"unclosed {what}; call close() or use it as a context manager", ResourceWarning, stacklevel=2)
    except BaseException:
        pass


# ACL data types that numpy represents.
_DTYPES = {
    ACL_FLOAT: np.dtype(np.float32), ACL_FLOAT16: np.dtype(np.float16), ACL_DOUBLE: np.dtype(np.float64),
    ACL_INT8: np.dtype(np.int8), ACL_INT16: np.dtype(np.int16), ACL_INT32: np.dtype(np.int32), ACL_INT64: np.dtype(np.int64),
    ACL_UINT8: np.dtype(np.uint8), ACL_UINT16: np.dtype(np.uint16), ACL_UINT32: np.dtype(np.uint32),
    ACL_UINT64: np.dtype(np.uint64), ACL_BOOL: np.dtype(np.bool_),
}
_FORMATS = {
    ACL_FORMAT_UNDEFINED: "UNDEFINED", ACL_FORMAT_NCHW: "NCHW", ACL_FORMAT_NHWC: "NHWC", ACL_FORMAT_ND: "ND",
    ACL_FORMAT_NC1HWC0: "NC1HWC0", ACL_FORMAT_FRACTAL_Z: "FRACTAL_Z", ACL_FORMAT_NC1HWC0_C04: "NC1HWC0_C04",
    ACL_FORMAT_HWCN: "HWCN", ACL_FORMAT_NDHWC: "NDHWC", ACL_FORMAT_FRACTAL_NZ: "FRACTAL_NZ", ACL_FORMAT_NCDHW: "NCDHW",
    ACL_FORMAT_NDC1HWC0: "NDC1HWC0", ACL_FRACTAL_Z_3D: "FRACTAL_Z_3D", ACL_FORMAT_NC: "NC", ACL_FORMAT_NCL: "NCL",
}

TensorSpec = namedtuple("TensorSpec", ["name", "shape", "dtype", "format", "nbytes", "shape_range"], defaults=(None,))
TensorSpec.__doc__ = """One model input or output: name, shape (-1 marks a dynamic dim), numpy dtype, ACL format
name, bytes at the largest batch / gear / range bound, and shape_range: a (min, max) per dim ((d, d) for a
fixed dim) over the model's gears or ranges; None for an output whose dynamic dims the runtime cannot bound."""


# ================================================================ Device

cdef class Device:
    """An Ascend device: ACL initialised for the process, the device set, its context current
    on every thread that uses it through fastexec. ``Device(0)``; close() resets the device."""

    def __cinit__(self):
        self.ctx = NULL
        self.is_open = False
        self.children = 0

    def __init__(self, int device_id=0):
        ensure_initialized()
        cdef aclrtContext ctx
        check(aclrtSetDevice(device_id), "aclrtSetDevice")
        rc = aclrtGetCurrentContext(&ctx)
        if rc != ACL_SUCCESS:
            aclrtResetDevice(device_id)
            check(rc, "aclrtGetCurrentContext")
        self.id = device_id
        self.ctx = ctx
        self.is_open = True
        fx_current_context_set(ctx)

    cdef int activate(self) except -1 nogil:
        if not self.is_open:
            with gil:
                raise ClosedError(f"Device {self.id} is closed")
        if fx_current_context != self.ctx:
            check(aclrtSetCurrentContext(self.ctx), "aclrtSetCurrentContext")
            fx_current_context_set(self.ctx)
        return 0

    cdef int activate_nogil(self) noexcept nogil:
        """activate() for callers that cannot raise (the C API): 0, or -1 if closed or failed."""
        if not self.is_open:
            return -1
        if fx_current_context != self.ctx:
            if aclrtSetCurrentContext(self.ctx) != ACL_SUCCESS:
                return -1
            fx_current_context_set(self.ctx)
        return 0

    @property
    def closed(self):
        return not self.is_open

    def memory_info(self):
        """(free, total) device memory in bytes."""
        cdef size_t free_b = 0, total = 0
        self.activate()
        check(aclrtGetMemInfo(ACL_HBM_MEM, &free_b, &total), "aclrtGetMemInfo")
        return free_b, total

    def close(self):
        """Reset the device (ACL reference-counts aclrtSetDevice). Refused while streams,
        buffers or models created on it are still open."""
        if not self.is_open:
            return
        if self.executors:
            raise InUseError(f"Device {self.id} is used by {self.executors} open Executor(s); close them first")
        if self.children:
            raise InUseError(f"Device {self.id} still has {self.children} open stream(s), buffer(s) or model(s); close them first")
        self.is_open = False
        if fx_current_context == self.ctx:
            fx_current_context_set(NULL)
        check(aclrtResetDevice(self.id), "aclrtResetDevice")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __dealloc__(self):
        if self.is_open:
            _warn_unclosed(f"Device({self.id})")
            if _can_free():
                aclrtResetDevice(self.id)

    def __repr__(self):
        return f"<fastexec.Device {self.id}{' closed' if not self.is_open else ''}>"


cdef inline void fx_current_context_set(aclrtContext ctx) noexcept nogil:
    global fx_current_context
    fx_current_context = ctx


cdef inline void _switch_context(aclrtContext ctx) noexcept nogil:
    """For destructors: make `ctx` current, ignoring failure."""
    if aclrtSetCurrentContext(ctx) == ACL_SUCCESS:
        fx_current_context_set(ctx)


@cython.no_gc_clear   # __dealloc__ needs self.device
cdef class DeviceChild:
    """Base of objects created on a Device: keeps it alive and counted."""

    def __cinit__(self):
        self.device = None
        self.is_open = False

    cdef int attach(self, Device device) except -1:
        if device is None:
            raise TypeError("a Device is required")
        device.activate()
        self.device = device
        return 0

    cdef int opened(self) except -1:
        self.is_open = True
        self.device.children += 1
        return 0

    cdef int release(self) except -1:
        """Mark closed once the resource has been freed."""
        self.is_open = False
        self.device.children -= 1
        return 0

    cdef bint dealloc_open(self) noexcept:
        """For __dealloc__: whether the object is still open; if so it is counted closed and a
        ResourceWarning issued, and True is returned only if it may and must be freed now."""
        if not self.is_open or self.device is None:
            return False
        self.is_open = False
        self.device.children -= 1
        _warn_unclosed(type(self).__name__)
        if _can_free() and self.device.is_open:
            _switch_context(self.device.ctx)
            return True
        return False

    cdef int ensure_open(self) except -1 nogil:
        if not self.is_open:
            with gil:
                raise ClosedError(f"{type(self).__name__} is closed")
        return self.device.activate()

    @property
    def closed(self):
        return not self.is_open

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ================================================================ Stream

@cython.no_gc_clear   # __dealloc__ needs self.device
cdef class Stream(DeviceChild):
    """An ACL stream: tasks run in order. ``Stream(device)``."""

    def __init__(self, Device device not None):
        self.attach(device)
        check(aclrtCreateStream(&self.handle), "aclrtCreateStream")
        self.opened()

    def synchronize(self, timeout_ms=None):
        """Wait for every task queued so far (the GIL is released). With a timeout in ms,
        raises AclTimeoutError if they are not done in time."""
        cdef int32_t t = -1 if timeout_ms is None else timeout_ms
        cdef aclError rc
        self.ensure_open()
        with nogil:
            rc = aclrtSynchronizeStream(self.handle) if t == -1 else aclrtSynchronizeStreamWithTimeout(self.handle, t)
        check(rc, "aclrtSynchronizeStream" if t == -1 else "aclrtSynchronizeStreamWithTimeout")

    def query(self):
        """True when every queued task has completed."""
        cdef aclrtStreamStatus status
        self.ensure_open()
        check(aclrtStreamQuery(self.handle, &status), "aclrtStreamQuery")
        return status == ACL_STREAM_STATUS_COMPLETE

    @property
    def handle_address(self):
        return <size_t>self.handle

    def close(self):
        """Wait for the queued tasks, then destroy the stream."""
        cdef aclError rc
        if not self.is_open:
            return
        self.device.activate()
        with nogil:
            rc = aclrtDestroyStream(self.handle)
        check(rc, "aclrtDestroyStream")
        self.release()

    def __dealloc__(self):
        if self.dealloc_open():
            aclrtDestroyStream(self.handle)


# ================================================================ Event

@cython.no_gc_clear   # __dealloc__ needs self.device
cdef class Event(DeviceChild):
    """An ACL event: records a point of a stream; waits on it; times the device between two."""

    def __init__(self, Device device not None):
        self.attach(device)
        check(aclrtCreateEvent(&self.handle), "aclrtCreateEvent")
        self.opened()

    def record(self, Stream stream not None):
        """Capture the work queued on `stream` so far."""
        self.ensure_open()
        stream.ensure_open()
        check(aclrtRecordEvent(self.handle, stream.handle), "aclrtRecordEvent")

    def wait(self, Stream stream not None):
        """Make later tasks on `stream` wait for this event (no host wait)."""
        self.ensure_open()
        stream.ensure_open()
        check(aclrtStreamWaitEvent(stream.handle, self.handle), "aclrtStreamWaitEvent")

    def synchronize(self, timeout_ms=None):
        """Wait until the recorded work has completed (the GIL is released)."""
        cdef int32_t t = -1 if timeout_ms is None else timeout_ms
        cdef aclError rc
        self.ensure_open()
        with nogil:
            rc = aclrtSynchronizeEvent(self.handle) if t == -1 else aclrtSynchronizeEventWithTimeout(self.handle, t)
        check(rc, "aclrtSynchronizeEvent" if t == -1 else "aclrtSynchronizeEventWithTimeout")

    def query(self):
        """True when the recorded work has completed (False before the first record)."""
        cdef aclrtEventRecordedStatus status
        self.ensure_open()
        check(aclrtQueryEventStatus(self.handle, &status), "aclrtQueryEventStatus")
        return status == ACL_EVENT_RECORDED_STATUS_COMPLETE

    def elapsed_ms(self, Event start not None):
        """Device time in ms from `start` to this event; both must have completed."""
        cdef float ms = 0
        self.ensure_open()
        start.ensure_open()
        check(aclrtEventElapsedTime(&ms, start.handle, self.handle), "aclrtEventElapsedTime")
        return ms

    def close(self):
        if not self.is_open:
            return
        self.device.activate()
        check(aclrtDestroyEvent(self.handle), "aclrtDestroyEvent")
        self.release()

    def __dealloc__(self):
        if self.dealloc_open():
            aclrtDestroyEvent(self.handle)


# ================================================================ memory

cdef inline const unsigned char[::1] _bytes_view(object obj, str what):
    try:
        return memoryview(obj).cast("B")
    except TypeError:
        raise TypeError(f"{what} must support the buffer protocol and be C-contiguous (got {type(obj).__name__})") from None


@cython.no_gc_clear   # __dealloc__ needs self.device
cdef class DeviceBuffer(DeviceChild):
    """Device memory (aclrtMalloc). ``DeviceBuffer(device, nbytes)``."""

    def __init__(self, Device device not None, size_t nbytes):
        if nbytes == 0:
            raise ValueError("DeviceBuffer: nbytes must be greater than 0")
        self.attach(device)
        check(aclrtMalloc(&self.ptr, nbytes, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
        self.nbytes = nbytes
        self.opened()

    @property
    def address(self):
        return <size_t>self.ptr

    def copy_from_host(self, src, Stream stream=None):
        """Copy a host buffer (bytes-like, numpy array, PinnedBuffer) into this buffer. With a
        stream the copy is queued (overlapping only from pinned memory); otherwise synchronous."""
        self.ensure_open()
        cdef const unsigned char[::1] view = _bytes_view(src, "src")
        cdef size_t n = view.shape[0]
        cdef aclError rc
        if n > self.nbytes:
            raise ValueError(f"DeviceBuffer.copy_from_host: source holds {n} bytes, the buffer {self.nbytes}")
        if n == 0:
            return
        if stream is None:
            with nogil:
                rc = aclrtMemcpy(self.ptr, self.nbytes, &view[0], n, ACL_MEMCPY_HOST_TO_DEVICE)
            check(rc, "aclrtMemcpy")
        else:
            stream.ensure_open()
            check(aclrtMemcpyAsync(self.ptr, self.nbytes, &view[0], n, ACL_MEMCPY_HOST_TO_DEVICE, stream.handle), "aclrtMemcpyAsync")

    def copy_to_host(self, dst, Stream stream=None):
        """Copy the start of this buffer into a writable host buffer (len(dst) bytes)."""
        cdef unsigned char[::1] view
        cdef aclError rc
        self.ensure_open()
        try:
            view = memoryview(dst).cast("B")
        except (TypeError, BufferError):
            raise TypeError(f"dst must be a writable, C-contiguous buffer (got {type(dst).__name__})") from None
        cdef size_t n = view.shape[0]
        if n > self.nbytes:
            raise ValueError(f"DeviceBuffer.copy_to_host: destination holds {n} bytes, the buffer only {self.nbytes}")
        if n == 0:
            return
        if stream is None:
            with nogil:
                rc = aclrtMemcpy(&view[0], n, self.ptr, n, ACL_MEMCPY_DEVICE_TO_HOST)
            check(rc, "aclrtMemcpy")
        else:
            stream.ensure_open()
            check(aclrtMemcpyAsync(&view[0], n, self.ptr, n, ACL_MEMCPY_DEVICE_TO_HOST, stream.handle), "aclrtMemcpyAsync")

    def close(self):
        """Free the memory (refused by the runtime while queued work still uses it)."""
        if not self.is_open:
            return
        self.device.activate()
        check(aclrtFree(self.ptr), "aclrtFree")
        self.release()

    def __dealloc__(self):
        if self.dealloc_open():
            aclrtFree(self.ptr)


@cython.no_gc_clear   # __dealloc__ needs self.device
cdef class PinnedBuffer(DeviceChild):
    """Page-locked host memory (aclrtMallocHost) for copies that overlap device work. Supports
    the buffer protocol: ``numpy.frombuffer(buf, dtype)`` views it without copying."""

    def __init__(self, Device device not None, size_t nbytes):
        if nbytes == 0:
            raise ValueError("PinnedBuffer: nbytes must be greater than 0")
        self.attach(device)
        check(aclrtMallocHost(&self.ptr, nbytes), "aclrtMallocHost")
        self.nbytes = nbytes
        self.exports = 0
        self.opened()

    @property
    def address(self):
        return <size_t>self.ptr

    def __len__(self):
        return self.nbytes

    def __getbuffer__(self, Py_buffer* buffer, int flags):
        if not self.is_open:
            raise ClosedError("PinnedBuffer is closed")
        PyBuffer_FillInfo(buffer, self, self.ptr, self.nbytes, 0, flags)
        self.exports += 1

    def __releasebuffer__(self, Py_buffer* buffer):
        self.exports -= 1

    def close(self):
        """Free the memory; refused while views of it (numpy arrays, memoryviews) exist."""
        if self.is_open and self.exports:
            raise BufferError(f"PinnedBuffer has {self.exports} live view(s); delete them before closing")
        if not self.is_open:
            return
        self.device.activate()
        check(aclrtFreeHost(self.ptr), "aclrtFreeHost")
        self.release()

    def __dealloc__(self):
        if self.dealloc_open():
            aclrtFreeHost(self.ptr)


# ================================================================ ExecConfig

_EXEC_OPTIONS = {
    "stream_sync_timeout_ms": (ACL_MDL_STREAM_SYNC_TIMEOUT, "int32"),
    "event_sync_timeout_ms": (ACL_MDL_EVENT_SYNC_TIMEOUT, "int32"),
    "work_addr": (ACL_MDL_WORK_ADDR_PTR, "pointer"),
    "work_size": (ACL_MDL_WORK_SIZET, "size"),
    "mpaimid": (ACL_MDL_MPAIMID_SIZET, "size"),
    "aicqos": (ACL_MDL_AICQOS_SIZET, "size"),
    "aicost": (ACL_MDL_AICOST_SIZET, "size"),
    "mec_timethr": (ACL_MDL_MEC_TIMETHR_SIZET, "size"),
}


cdef class ExecConfig:
    """Options for aclmdlExecuteV2 / aclmdlExecuteAsyncV2 (aclmdlSetExecConfigOpt).

    ``ExecConfig(stream_sync_timeout_ms=100, event_sync_timeout_ms=100)``; timeouts are in ms,
    -1 waits forever. The other options (``work_addr``, ``work_size``, ...) are accepted only by
    runtimes that support them (IPV350); elsewhere setting one raises AclInvalidParamError.
    """

    def __cinit__(self):
        self.handle = NULL
        self.values = {}

    def __init__(self, **options):
        ensure_initialized()
        if not symbol_available(b"aclmdlCreateExecConfigHandle"):
            raise AclFunctionNotFoundError("aclmdlCreateExecConfigHandle", _library_info.get("library", "the ACL library"))
        self.handle = aclmdlCreateExecConfigHandle()
        if self.handle == NULL:
            raise AclError(500000, "aclmdlCreateExecConfigHandle", "the runtime returned no handle")
        try:
            for name, value in options.items():
                self.set(name, value)
        except BaseException:
            self.close()
            raise

    def set(self, str name, value):
        """Set one option by name (see the class docstring)."""
        cdef int32_t i32
        cdef size_t sz
        cdef void* ptr
        if self.handle == NULL:
            raise ClosedError("ExecConfig is closed")
        self._check_unused("set()")
        try:
            attr, kind = _EXEC_OPTIONS[name]
        except KeyError:
            raise ValueError(f"ExecConfig: unknown option {name!r}; expected one of {', '.join(_EXEC_OPTIONS)}") from None
        if kind == "int32":
            if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= 2**31 - 1:
                raise ValueError(f"ExecConfig: {name} must be an int from -1 to 2**31-1 (got {value!r})")
            i32 = value
            check(aclmdlSetExecConfigOpt(self.handle, attr, &i32, sizeof(i32)), "aclmdlSetExecConfigOpt")
        elif isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
            raise ValueError(f"ExecConfig: {name} must be an int from 0 to 2**64-1 (got {value!r})")
        elif kind == "pointer":
            ptr = <void*><size_t>value
            check(aclmdlSetExecConfigOpt(self.handle, attr, &ptr, sizeof(ptr)), "aclmdlSetExecConfigOpt")
        else:
            sz = value
            check(aclmdlSetExecConfigOpt(self.handle, attr, &sz, sizeof(sz)), "aclmdlSetExecConfigOpt")
        self.values[name] = value

    @property
    def options(self):
        return dict(self.values)

    cdef int _check_unused(self, str what) except -1:
        if self.users:
            raise InUseError(f"ExecConfig.{what}: {self.users} open Executor(s) execute with it; close them first")
        return 0

    def close(self):
        """Destroy the handle. Refused while an open Executor executes with it."""
        if self.handle != NULL:
            self._check_unused("close()")
            h = self.handle
            self.handle = NULL
            check(aclmdlDestroyExecConfigHandle(h), "aclmdlDestroyExecConfigHandle")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __dealloc__(self):
        if self.handle != NULL:
            _warn_unclosed("ExecConfig")
            if _can_free():
                aclmdlDestroyExecConfigHandle(self.handle)

    def __repr__(self):
        return f"ExecConfig({', '.join(f'{k}={v!r}' for k, v in self.values.items())})"


# ================================================================ Model

@cython.no_gc_clear   # __dealloc__ needs self.device
cdef class Model(DeviceChild):
    """A loaded offline model. ``Model(path_or_bytes, device=0)``; `device` is a Device or a
    device id (then the model opens and closes its own Device).

    ``inputs`` / ``outputs``: lists of TensorSpec; ``dynamic_batch``: the batch gears (empty for
    a static model); ``dynamic_hw``: the (height, width) gears; ``dynamic_dims``: the gears of a
    dynamic-dims model, each a dict input name -> shape; ``dynamic_kind``: "dynamic_batch",
    "dynamic_hw", "dynamic_dims", "dynamic_shape" (-1 dims within TensorSpec.shape_range) or
    None; ``batch_size``: the static batch (or the largest gear, or the range's upper bound); ``aipp``: per
    input name, its AIPP (a static input shows its raw image: uint8 NHWC in the byte layout of
    aclmdlGetInputDimsV2, e.g. n,h*3/2,w,1 for YUV420SP_U8 frames).
    """

    def __init__(self, source, device=0):
        cdef Device dev
        cdef const unsigned char[::1] data
        cdef bytes path
        cdef const char* cpath
        cdef aclError rc
        if isinstance(device, Device):
            dev = device
        else:
            dev = Device(device)
            self.owns_device = True
        self.attach(dev)
        try:
            if isinstance(source, (bytes, bytearray, memoryview)):
                data = _bytes_view(source, "model data")
                if data.shape[0] == 0:
                    raise ValueError("Model: the model data is empty")
                with nogil:
                    rc = aclmdlLoadFromMem(&data[0], data.shape[0], &self.model_id)
                check(rc, "aclmdlLoadFromMem")
                self.source = f"<{data.shape[0]} bytes>"
                self.origin = None
            else:
                path = os.fsencode(source)
                cpath = path
                with nogil:
                    rc = aclmdlLoadFromFile(cpath, &self.model_id)
                check(rc, "aclmdlLoadFromFile")
                self.source = os.fsdecode(path)
                self.origin = self.source
            self.opened()
            self.desc = aclmdlCreateDesc()
            if self.desc == NULL:
                raise AclError(500000, "aclmdlCreateDesc", "the runtime returned no description")
            check(aclmdlGetDesc(self.desc, self.model_id), "aclmdlGetDesc")
            self._describe()
        except BaseException:
            self.close()
            raise

    cdef _describe(self):
        cdef aclmdlIODims dims
        cdef aclmdlBatch batch
        cdef aclmdlHW hw
        cdef aclmdlIODimsRange rng
        cdef size_t n_dims_gears = 0
        cdef aclmdlIODims* gear_dims = NULL
        check(aclmdlGetDynamicBatch(self.desc, &batch), "aclmdlGetDynamicBatch")
        self.dynamic_batch = tuple(batch.batch[i] for i in range(batch.batchCount))
        self.dynamic_input_index = -1
        self._describe_aipp()
        names = [aclmdlGetInputNameByIndex(self.desc, i).decode() for i in range(aclmdlGetNumInputs(self.desc))]
        hidden = ACL_DYNAMIC_TENSOR_NAME.decode() in names
        self.dynamic_hw = []
        if hidden and not self.dynamic_batch and not fx_acl_is_missing(b"aclmdlGetDynamicHW"):
            check(aclmdlGetDynamicHW(self.desc, <size_t>-1, &hw), "aclmdlGetDynamicHW")
            self.dynamic_hw = [(int(hw.hw[i][0]), int(hw.hw[i][1])) for i in range(hw.hwCount)]
        if hidden and not self.dynamic_batch and not self.dynamic_hw and not fx_acl_is_missing(b"aclmdlGetInputDynamicGearCount"):
            check(aclmdlGetInputDynamicGearCount(self.desc, <size_t>-1, &n_dims_gears), "aclmdlGetInputDynamicGearCount")
        inputs = []
        for i, name in enumerate(names):
            if hidden and name == ACL_DYNAMIC_TENSOR_NAME.decode():
                self.dynamic_input_index = i
                continue
            if i == self.aipp_input_index:
                continue
            if self.aipp.get(name, {}).get("mode") == "static":   # the raw image's byte layout
                check(aclmdlGetInputDimsV2(self.desc, i, &dims), "aclmdlGetInputDimsV2")
            else:
                check(aclmdlGetInputDims(self.desc, i, &dims), "aclmdlGetInputDims")
            shape = tuple(dims.dims[d] for d in range(dims.dimCount))
            shape_range = tuple((d, d) for d in shape)
            if any(d < 0 for d in shape) and not fx_acl_is_missing(b"aclmdlGetInputDimsRange"):
                check(aclmdlGetInputDimsRange(self.desc, i, &rng), "aclmdlGetInputDimsRange")
                shape_range = tuple((int(rng.range[d][0]), int(rng.range[d][1])) for d in range(rng.rangeCount))
            dtype = _dtype_of(aclmdlGetInputDataType(self.desc, i))
            nbytes = aclmdlGetInputSizeByIndex(self.desc, i)
            if nbytes == 0 and shape_range and all(hi > 0 for _, hi in shape_range):
                nbytes = math.prod(hi for _, hi in shape_range) * dtype.itemsize   # the ranges' upper bounds
            inputs.append(TensorSpec(name, shape, dtype, _FORMATS.get(aclmdlGetInputFormat(self.desc, i), "UNDEFINED"),
                                     nbytes, shape_range))
        outputs = []
        for i in range(aclmdlGetNumOutputs(self.desc)):
            check(aclmdlGetOutputDims(self.desc, i, &dims), "aclmdlGetOutputDims")
            shape = tuple(dims.dims[d] for d in range(dims.dimCount))
            outputs.append(TensorSpec(aclmdlGetOutputNameByIndex(self.desc, i).decode(), shape,
                                      _dtype_of(aclmdlGetOutputDataType(self.desc, i)),
                                      _FORMATS.get(aclmdlGetOutputFormat(self.desc, i), "UNDEFINED"),
                                      aclmdlGetOutputSizeByIndex(self.desc, i),
                                      None if any(d < 0 for d in shape) else tuple((d, d) for d in shape)))
        self.dynamic_dims = []
        if n_dims_gears:
            gear_dims = <aclmdlIODims*>calloc(n_dims_gears, sizeof(aclmdlIODims))
            if gear_dims == NULL:
                raise MemoryError()
            try:
                check(aclmdlGetInputDynamicDims(self.desc, <size_t>-1, gear_dims, n_dims_gears), "aclmdlGetInputDynamicDims")
                for g in range(n_dims_gears):
                    flat = [gear_dims[g].dims[d] for d in range(gear_dims[g].dimCount)]
                    gear, at = {}, 0
                    for spec in inputs:     # every input's dims, concatenated
                        gear[spec.name] = tuple(flat[at:at + len(spec.shape)])
                        at += len(spec.shape)
                    self.dynamic_dims.append(gear)
            finally:
                free(gear_dims)
        if self.dynamic_batch:
            self.dynamic_kind = "dynamic_batch"
        elif self.dynamic_hw:
            self.dynamic_kind = "dynamic_hw"
        elif self.dynamic_dims:
            self.dynamic_kind = "dynamic_dims"
        elif any(d < 0 for spec in inputs for d in spec.shape):
            self.dynamic_kind = "dynamic_shape"
        else:
            self.dynamic_kind = None
        self.inputs = inputs
        self.outputs = outputs
        first = inputs[0].shape[0] if inputs and inputs[0].shape else 1
        if self.dynamic_batch:
            self.batch_size = max(self.dynamic_batch)
        elif self.dynamic_kind is not None and inputs and inputs[0].shape_range:
            self.batch_size = inputs[0].shape_range[0][1]
        else:
            self.batch_size = first

    cdef _describe_aipp(self):
        """self.aipp: {input name: {"mode": "static", ...aclmdlGetFirstAippInfo's parameters} or
        {"mode": "dynamic", "max_src_image_size": bytes}}, and the dynamic AIPP parameter input."""
        cdef aclmdlInputAippType kind
        cdef size_t attached
        cdef aclAippInfo* info
        self.aipp = {}
        self.aipp_input_index = -1
        if not symbol_available(b"aclmdlGetAippType"):
            return
        for i in range(aclmdlGetNumInputs(self.desc)):
            check(aclmdlGetAippType(self.model_id, i, &kind, &attached), "aclmdlGetAippType")
            name = aclmdlGetInputNameByIndex(self.desc, i).decode()
            if kind == ACL_DYNAMIC_AIPP_NODE:
                self.aipp_input_index = i
            elif kind == ACL_DATA_WITH_DYNAMIC_AIPP:
                self.aipp[name] = {"mode": "dynamic", "max_src_image_size": aclmdlGetInputSizeByIndex(self.desc, i),
                                   "parameters_input": attached}
            elif kind == ACL_DATA_WITH_STATIC_AIPP:
                info = <aclAippInfo*>calloc(1, sizeof(aclAippInfo))
                if info == NULL:
                    raise MemoryError()
                try:
                    check(aclmdlGetFirstAippInfo(self.model_id, i, info), "aclmdlGetFirstAippInfo")
                    self.aipp[name] = _static_aipp_info(info)
                finally:
                    free(info)

    @property
    def id(self):
        return self.model_id

    def execute(self, inputs, outputs):
        """Synchronous aclmdlExecute over DeviceBuffers, one per input and one per output in
        model order, each at least the tensor's size; the datasets are made for the call (a
        dynamic batch / HW / dims model runs at its largest gear; a dynamic-shape model needs the
        Executor, which gives each batch its shape). Waits with the GIL released. Not for a
        model an Executor runs (ACL forbids mixing synchronous and asynchronous execution)."""
        self.ensure_open()
        if self.aipp_input_index >= 0:
            raise FastexecError("Model.execute: this model has dynamic AIPP; run it with Executor(model, aipp=AippConfig(...))")
        if self.dynamic_kind == "dynamic_shape":
            raise FastexecError("Model.execute: a dynamic-shape model needs each input's shape; run it with an Executor")
        inputs, outputs = list(inputs), list(outputs)
        for kind, bufs, specs in (("inputs", inputs, self.inputs), ("outputs", outputs, self.outputs)):
            if len(bufs) != len(specs):
                raise ValueError(f"Model.execute: expected {len(specs)} {kind} ({', '.join(t.name for t in specs)}), "
                                 f"got {len(bufs)}")
            for spec, b in zip(specs, bufs):
                if not isinstance(b, DeviceBuffer) or (<DeviceBuffer>b).nbytes < spec.nbytes:
                    got = f"{(<DeviceBuffer>b).nbytes} bytes" if isinstance(b, DeviceBuffer) else type(b).__name__
                    raise ValueError(f"Model.execute: '{spec.name}' needs a DeviceBuffer of at least {spec.nbytes} bytes, "
                                     f"got {got}")
        cdef aclmdlDataset* ds_in = aclmdlCreateDataset()
        cdef aclmdlDataset* ds_out = aclmdlCreateDataset()
        cdef void* dyn = NULL
        cdef aclError rc
        try:
            if ds_in == NULL or ds_out == NULL:
                raise AclError(500000, "aclmdlCreateDataset", "the runtime returned no dataset")
            for b in inputs:
                _add_buffer(ds_in, (<DeviceBuffer>b).ptr, (<DeviceBuffer>b).nbytes)
            if self.dynamic_input_index >= 0:   # the hidden gear tensor, set per call as the samples do
                dyn_bytes = max(8, aclmdlGetInputSizeByIndex(self.desc, self.dynamic_input_index))
                check(aclrtMalloc(&dyn, dyn_bytes, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
                _add_buffer(ds_in, dyn, dyn_bytes)
                self._set_largest_gear(<intptr_t>ds_in, aclmdlGetDatasetNumBuffers(ds_in) - 1)
            for b in outputs:
                _add_buffer(ds_out, (<DeviceBuffer>b).ptr, (<DeviceBuffer>b).nbytes)
            with nogil:
                rc = aclmdlExecute(self.model_id, ds_in, ds_out)
            check(rc, "aclmdlExecute")
        finally:
            _destroy_dataset(ds_in)
            _destroy_dataset(ds_out)
            if dyn != NULL:
                aclrtFree(dyn)

    def _set_largest_gear(self, ds, size_t index):
        """Set a gear model's largest gear on one of its input datasets (the hidden tensor at `index`)."""
        cdef aclmdlIODims dims
        cdef aclmdlDataset* d = <aclmdlDataset*><intptr_t>ds
        if self.dynamic_batch:
            check(aclmdlSetDynamicBatchSize(self.model_id, d, index, max(self.dynamic_batch)), "aclmdlSetDynamicBatchSize")
        elif self.dynamic_hw:
            h, w = self.dynamic_hw[-1]
            check(aclmdlSetDynamicHWSize(self.model_id, d, index, h, w), "aclmdlSetDynamicHWSize")
        elif self.dynamic_dims:
            memset(&dims, 0, sizeof(dims))
            flat = [v for spec in self.inputs for v in self.dynamic_dims[-1][spec.name]]
            dims.dimCount = len(flat)
            for i, v in enumerate(flat):
                dims.dims[i] = v
            check(aclmdlSetInputDynamicDims(self.model_id, d, index, &dims), "aclmdlSetInputDynamicDims")

    def close(self):
        """Unload the model (waits for its queued executions). Refused while an open Executor
        uses it."""
        cdef aclError rc
        if self.users:
            raise InUseError(f"{self!r} is used by {self.users} open Executor(s); close them first")
        if self.desc != NULL:
            aclmdlDestroyDesc(self.desc)
            self.desc = NULL
        if self.is_open:
            self.device.activate()
            with nogil:
                rc = aclmdlUnload(self.model_id)
            check(rc, "aclmdlUnload")
            self.release()
        if self.owns_device and self.device is not None and self.device.is_open:
            self.device.close()

    def __dealloc__(self):
        if self.desc != NULL and _can_free():
            aclmdlDestroyDesc(self.desc)
        if self.dealloc_open():
            aclmdlUnload(self.model_id)
        if self.owns_device and self.device is not None and self.device.is_open:
            self.device.is_open = False   # the model's own device goes with it, without a second warning
            if _can_free():
                aclrtResetDevice(self.device.id)

    def __repr__(self):
        return (f"<fastexec.Model {self.source!r} id={self.model_id} inputs={[t.name for t in self.inputs]} "
                f"outputs={[t.name for t in self.outputs]}{' closed' if not self.is_open else ''}>")


cdef int _add_buffer(aclmdlDataset* ds, void* ptr, size_t nbytes) except -1:
    cdef aclDataBuffer* buf = aclCreateDataBuffer(ptr, nbytes)
    if buf == NULL:
        raise AclError(500000, "aclCreateDataBuffer", "the runtime returned no data buffer")
    rc = aclmdlAddDatasetBuffer(ds, buf)
    if rc:
        aclDestroyDataBuffer(buf)
        check(rc, "aclmdlAddDatasetBuffer")
    return 0


cdef void _destroy_dataset(aclmdlDataset* ds) noexcept:
    """A dataset made for one call, with its data buffers."""
    cdef size_t j
    if ds == NULL:
        return
    for j in range(aclmdlGetDatasetNumBuffers(ds)):
        aclDestroyDataBuffer(aclmdlGetDatasetBuffer(ds, j))
    aclmdlDestroyDataset(ds)


cdef dict _static_aipp_info(const aclAippInfo* a):
    """aclmdlGetFirstAippInfo's parameters, named as ATC's aipp_op names them."""
    from fastexec.aipp import INPUT_FORMATS
    names = {v: k for k, v in INPUT_FORMATS.items()}
    out = {"mode": "static", "input_format": names.get(<int>a.inputFormat, str(<int>a.inputFormat)),
           "src_image_size_w": a.srcImageSizeW, "src_image_size_h": a.srcImageSizeH, "crop": bool(a.cropSwitch)}
    if a.cropSwitch:
        out.update(load_start_pos_w=a.loadStartPosW, load_start_pos_h=a.loadStartPosH, crop_size_w=a.cropSizeW,
                   crop_size_h=a.cropSizeH)
    out["padding"] = bool(a.paddingSwitch)
    if a.paddingSwitch:
        out.update(left_padding_size=a.leftPaddingSize, right_padding_size=a.rightPaddingSize,
                   top_padding_size=a.topPaddingSize, bottom_padding_size=a.bottomPaddingSize)
    out.update(csc_switch=bool(a.cscSwitch), rbuv_swap_switch=bool(a.rbuvSwapSwitch), ax_swap_switch=bool(a.axSwapSwitch))
    if a.cscSwitch:
        out["matrix"] = (a.matrixR0C0, a.matrixR0C1, a.matrixR0C2, a.matrixR1C0, a.matrixR1C1, a.matrixR1C2,
                         a.matrixR2C0, a.matrixR2C1, a.matrixR2C2)
        out["output_bias"] = (a.outputBias0, a.outputBias1, a.outputBias2)
        out["input_bias"] = (a.inputBias0, a.inputBias1, a.inputBias2)
    out["mean_chn"] = (a.meanChn0, a.meanChn1, a.meanChn2, a.meanChn3)
    out["min_chn"] = (a.minChn0, a.minChn1, a.minChn2, a.minChn3)
    out["var_reci_chn"] = (a.varReciChn0, a.varReciChn1, a.varReciChn2, a.varReciChn3)
    out["output"] = {"dims": tuple(a.outDims[0].aippOutdims.dims[d] for d in range(a.outDims[0].aippOutdims.dimCount)),
                     "format": _FORMATS.get(a.srcFormat, "UNDEFINED"), "dtype": _DTYPES.get(a.srcDatatype)}
    return out


cdef object _dtype_of(aclDataType t):
    dt = _DTYPES.get(t)
    if dt is None:
        raise FastexecError(f"ACL data type {<int>t} has no numpy equivalent")
    return dt
