# The Executor: the Python front ends over the pipeline core (pipeline.pxi). Included by
# fastexec/_core.pyx.
#
# One stream plan per executor, one set of streams per model instance, `depth` slots per
# instance, each with device and pinned host buffers per input and output, the datasets and
# six events, all created once. Batch (ticket) k goes to instance k % K, slot (k // K) % depth.
# With several devices, instance i runs on device i % D of the executor's list (its context,
# streams, memory and model there), so consecutive batches go to different devices.
# run(), imap(), submit()/result(), staged() and the C API (capi.pxi) all reserve, stage,
# enqueue, wait and release through the same core calls.

from collections import deque

cimport cython
from libc.stdint cimport int64_t, intptr_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

from fastexec._inputs import check_model, check_same_model, order_inputs, output_arrays
from fastexec._profile import Profile
from fastexec.errors import BatchError, InUseError, Interrupted, WaitTimeout

MODES = ("overlap", "serial")
# Slots per instance when none is given: in overlap mode three batches occupy the three stages
# and a fourth lets the host stage the next one without stalling a copy engine (measured on
# `balanced`: 0.95 of the slowest-stage bound at depth 3, 0.996 at 4); serial mode needs two.
DEFAULT_DEPTH = {"overlap": 4, "serial": 2}
# After Ctrl-C, how long the batches already on the device are waited for (s).
cdef double INTERRUPT_DRAIN_S = 0.25


cdef Plan _plan(bint overlap) noexcept:
    """Serial: the three stages on the instance's one stream. Overlap: copy-in, execute and
    copy-out each on a stream of its own, linked by events (trtexec's layout)."""
    cdef Plan plan
    cdef int i
    plan.n_streams = N_STAGES if overlap else 1
    for i in range(N_STAGES):
        plan.stream_of[i] = i if overlap else 0
    return plan


def _device_list(devices, model_device):
    """The executor's device ids: `devices` (an int or a sequence of distinct ints >= 0; None:
    the given Model's device, or 0), checked to hold the Model's device when one is given."""
    if devices is None:
        return [model_device if model_device is not None else 0]
    if isinstance(devices, int) and not isinstance(devices, bool):
        devices = [devices]
    try:
        ids = list(devices)
    except TypeError:
        raise TypeError(f"Executor: devices must be a list of device ids (got {type(devices).__name__})") from None
    if not ids or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0 for d in ids):
        raise ValueError(f"Executor: devices must be a non-empty list of device ids >= 0 (got {devices!r})")
    ids = [int(d) for d in ids]
    if len(set(ids)) != len(ids):
        raise ValueError(f"Executor: devices lists a device twice (got {ids}); use instances= for several "
                         "instances per device")
    if model_device is not None and model_device not in ids:
        raise ValueError(f"Executor: the Model is loaded on device {model_device}, which is not in devices={ids}; "
                         f"add it, or pass the model's path or bytes to load it on those devices")
    return ids


cdef double _seconds(timeout, str what) except? -2:
    """A timeout argument in seconds (None: none) as the Waiter wants it (-1: none)."""
    if timeout is None:
        return -1
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise ValueError(f"{what}: timeout must be None or a number of seconds >= 0 (got {timeout!r})")
    return float(timeout)


@cython.no_gc_clear   # __dealloc__ needs the pipeline and the counts on its device and models
cdef class Executor:
    """Runs a model through a pipeline that keeps the device busy.

    ``Executor(model, depth=None, config=None, instances=1, mode="overlap", devices=None, trace=0,
    aipp=None, output_size=None)``: `model` is a Model (or a path or bytes, loaded on each
    device); `depth` slots per instance (default 4 in overlap mode, 2 in serial mode); `config`
    an ExecConfig to execute with aclmdlExecuteAsyncV2 (its stream_sync_timeout_ms is then every batch's deadline, from the
    moment it is queued); `instances` loads the model that many times per device and spreads
    batches over them, keeping output order; `devices` the device ids to run on (default: the
    Model's device, or 0), batch k on device devices[k % len(devices)], each device with its own
    instances (a given Model's device must be in the list; the other devices load the model
    from the same path or bytes); `mode`: "overlap" puts copy-in, execute and copy-out of each
    instance on three streams ordered by events, so the three stages of different batches run
    at once on the device's copy and compute engines; "serial" runs them back to back on one
    stream. `aipp`: the :class:`fastexec.AippConfig` of a model with dynamic AIPP (required for
    one, refused otherwise), set once in every slot; ``submit(..., aipp=...)`` gives one batch its
    own. A model with static AIPP needs nothing: its input is the raw image.
    `output_size`: bytes of each output buffer of a dynamic-shape model (one int, or one per
    output), where the model gives none or a smaller one than a batch needs.

    Dynamic models (``Model.dynamic_kind``): a batch may have any shape the profile allows. A
    dynamic-batch batch of r rows runs at the smallest gear >= r (``run()``: full batches at the
    largest gear, the tail at the smallest holding it); a dynamic HW / dims batch must have one
    gear's shapes, a dynamic-shape batch shapes within the ranges; outputs come back with their
    real dims. An instance changes its gear only when nothing of it is in flight (a drain,
    counted in ``stats()["drains"]``); batches of the instance's gear never wait.

    Ways in: ``run(inputs)`` (whole arrays, the loop in C with the GIL released),
    ``imap(batches)`` (ordered streaming), ``submit(inputs)`` / ``result(ticket)``, the zero-copy
    ``staged()``, and the C API. Inputs are a list in input order, a dict by name, or one array
    for a single-input model; axis 0 is the batch axis. All of them may be used at once, from
    any threads. Waits are interruptible (Ctrl-C raises :class:`fastexec.Interrupted`) and take
    ``timeout=``. While the executor is open, its Device and Models refuse to close.
    `trace`: keep the timeline of the last `trace` batches from the start (see start_trace()).
    """

    def __cinit__(self):
        self.p = NULL
        self.is_open = False
        self.attached = False
        self.models = []
        self.owns_models = []
        self.used_devices = []
        self.device_ids = []
        self.done = {}

    def __init__(self, model, depth=None, ExecConfig config=None, int instances=1, str mode="overlap", devices=None,
                 trace=0, aipp=None, output_size=None):
        if mode not in MODES:
            raise ValueError(f"Executor: mode must be one of {', '.join(MODES)} (got {mode!r})")
        if depth is None:
            depth = DEFAULT_DEPTH[mode]
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1 or depth > 64:
            raise ValueError(f"Executor: depth must be 1..64 (got {depth!r})")
        if instances < 1 or instances > 64:
            raise ValueError(f"Executor: instances must be 1..64 (got {instances})")
        _trace_keep(trace, "Executor(trace=...)", allow_zero=True)
        device_ids = _device_list(devices, model.device.id if isinstance(model, Model) else None)
        if config is not None:
            if config.handle == NULL:
                raise ClosedError("Executor: the ExecConfig is closed")
            ensure_initialized()
            if not symbol_available(b"aclmdlExecuteAsyncV2"):
                raise AclFunctionNotFoundError("aclmdlExecuteAsyncV2", _library_info.get("library", "the ACL library"))
        cdef Model first
        if isinstance(model, Model):
            first = model
            if not first.is_open:
                raise ClosedError("Executor: the Model is closed")
            self.source = first.origin
            owned = False
        else:
            first = Model(model, device=device_ids[0])
            self.source = model
            owned = True
        self.label = first.source
        self.device = first.device
        self.device_ids = device_ids
        self.depth = depth
        self.overlap = mode == "overlap"
        self.per_device = instances
        self.n_instances = instances * len(device_ids)
        self.config = config
        # instance i on device device_ids[i % D]; the given (or first) model is its device's first instance
        self.models = [None] * self.n_instances
        self.owns_models = [True] * self.n_instances
        self.models[device_ids.index(first.device.id)] = first
        self.owns_models[device_ids.index(first.device.id)] = owned
        self.aipp = aipp
        try:
            self.profile = Profile(first, output_size)
            self._build(first)
            self.is_open = True
            self._warm_up()
            if trace:
                self.start_trace(trace)
        except BaseException:
            self.is_open = False
            self._teardown()
            raise

    # ------------------------------------------------------------ construction

    cdef _build(self, Model first):
        cdef Pipeline* p
        cdef Model m
        cdef int i
        if self.profile.shaped:
            self.profile.check_model()
            in_rows, out_rows = [0] * len(first.inputs), [0] * len(first.outputs)
        else:
            in_rows, out_rows = check_model(first, first.batch_size)
        self.batch_size = first.batch_size
        self.in_specs = list(first.inputs)
        self.out_specs = list(first.outputs)
        self.n_in = len(self.in_specs)
        self.n_out = len(self.out_specs)
        if pl_create(&self.p, self.n_instances, self.depth, self.n_in, self.n_out):
            raise MemoryError()
        p = self.p
        p.batch_size = self.batch_size
        for i in range(self.n_in):
            p.in_row[i] = in_rows[i]
            p.in_bytes[i] = self.in_specs[i].nbytes
        for i in range(self.n_out):
            p.out_row[i] = out_rows[i]
            p.out_bytes[i] = self.profile.output_sizes[i] if self.profile.shaped else self.out_specs[i].nbytes
        p.dynamic = first.dynamic_input_index >= 0
        self._setup_aipp(first)
        self._describe_profile(first)
        p.plan = _plan(self.overlap)
        p.sliced_sync = (symbol_available(b"aclrtSynchronizeEventWithTimeout")
                         and symbol_available(b"aclrtSynchronizeStreamWithTimeout"))
        if self.config is not None:
            p.config = self.config.handle
            timeout_ms = self.config.values.get("stream_sync_timeout_ms", -1)
            p.batch_timeout = timeout_ms / 1e3 if timeout_ms > 0 else 0
        first.users += 1
        n_dev = len(self.device_ids)
        p.n_devices = n_dev
        for i in range(self.n_instances):
            if self.models[i] is not None:
                continue
            if self.source is None:
                raise ValueError("Executor: instances > 1 or several devices load the model again, but this Model was "
                                 "loaded from bytes and keeps no copy; pass the bytes (Executor(data, ...)) or a path")
            on = self.models[i % n_dev]      # the device's first instance, loaded before (None: not yet)
            m = Model(self.source, device=self.device_ids[i % n_dev] if on is None else (<Model>on).device)
            self.models[i] = m
            m.users += 1
            check_same_model(first, m, i)
        self.used_devices = [(<Model>self.models[i]).device for i in range(n_dev)]
        for dev in self.used_devices:
            (<Device>dev).executors += 1
        if self.config is not None:
            self.config.users += 1
        self.attached = True
        for i in range(self.n_instances):
            self._allocate(i)

    cdef _setup_aipp(self, Model first):
        """A dynamic AIPP model: its parameter input, and the executor's parameters checked and
        made (every slot starts with them)."""
        if first.aipp_input_index < 0:
            if self.aipp is not None:
                raise ValueError(f"Executor: aipp= is for models with dynamic AIPP; {first.source!r} has none "
                                 f"({'its AIPP is static' if first.aipp else 'no AIPP'})")
            return
        if self.aipp is None:
            raise ValueError(f"Executor: {first.source!r} has a dynamic AIPP input: pass its parameters as "
                             "aipp=fastexec.AippConfig(...)")
        if first.aipp_input_index != self.n_in + (1 if self.p.dynamic else 0):
            raise FastexecError(f"Executor: the dynamic AIPP parameter input is input {first.aipp_input_index}; the "
                                "executor supports it after the data inputs (and the dynamic-batch input)")
        self.aipp_params = self._aipp_params(self.aipp, "Executor")
        self.p.aipp_index = first.aipp_input_index
        self.p.aipp = self.aipp_params.handle

    def _aipp_params(self, cfg, what):
        """AippParams of `cfg` for this model, after the checks that need no device (ranges were
        checked when the AippConfig was made; the output size aclmdlSetInputAIPP checks)."""
        from fastexec.aipp import AippConfig
        if not isinstance(cfg, AippConfig):
            raise TypeError(f"{what}: aipp must be a fastexec.AippConfig, got {type(cfg).__name__}")
        first = next(m for m in self.models if m is not None)
        info = next(v for v in first.aipp.values() if v["mode"] == "dynamic")
        cfg.check(self.batch_size, max_src_image_size=info["max_src_image_size"])
        return AippParams(cfg, self.batch_size)

    def _describe_profile(self, Model first):
        """The pipeline's view of the model's profile: its kind, each tensor's dims and item
        size, and the gears with each input's bytes at them."""
        cdef Pipeline* p = self.p
        cdef int i, g, j
        kinds = {None: DYN_NONE, "dynamic_batch": DYN_BATCH, "dynamic_hw": DYN_HW, "dynamic_dims": DYN_DIMS,
                 "dynamic_shape": DYN_SHAPE}
        p.dyn_kind = kinds[first.dynamic_kind]
        self.out_names = [spec.name.encode() for spec in self.out_specs]
        for i in range(self.n_in):
            p.in_ndims[i] = len(self.in_specs[i].shape)
            p.in_item[i] = self.in_specs[i].dtype.itemsize
        for i in range(self.n_out):
            p.out_ndims[i] = len(self.out_specs[i].shape)
            p.out_item[i] = self.out_specs[i].dtype.itemsize
            p.out_name[i] = <const char*>(<bytes>self.out_names[i])
        if p.dyn_kind == DYN_BATCH:
            gears = sorted(first.dynamic_batch)
        elif p.dyn_kind in (DYN_HW, DYN_DIMS):
            gears = self.profile.gears
        else:
            return
        p.n_gears = len(gears)
        p.gear_rows = <uint64_t*>calloc(p.n_gears, sizeof(uint64_t))
        p.gear_in_bytes = <size_t*>calloc(p.n_gears * max(self.n_in, 1), sizeof(size_t))
        p.gear_out_bytes = <size_t*>calloc(p.n_gears * max(self.n_out, 1), sizeof(size_t))
        p.gear_out_shape = <int64_t*>calloc(p.n_gears * max(self.n_out, 1) * MAX_SHAPE_DIMS, sizeof(int64_t))
        p.gear_nvals = 2 if p.dyn_kind == DYN_HW else sum(len(s.shape) for s in self.in_specs)
        p.gear_vals = <int64_t*>calloc(p.n_gears * max(p.gear_nvals, 1), sizeof(int64_t))
        if (p.gear_rows == NULL or p.gear_in_bytes == NULL or p.gear_out_bytes == NULL or p.gear_out_shape == NULL
                or p.gear_vals == NULL):
            raise MemoryError()
        for g, gear in enumerate(gears):
            if p.dyn_kind == DYN_BATCH:
                p.gear_rows[g] = gear
                for i in range(self.n_in):
                    p.gear_in_bytes[g * self.n_in + i] = gear * p.in_row[i]
                for i in range(self.n_out):
                    p.gear_out_bytes[g * self.n_out + i] = gear * p.out_row[i]
                continue
            p.gear_rows[g] = gear[0][0] if gear[0] else 1
            vals = list(first.dynamic_hw[g]) if p.dyn_kind == DYN_HW else [d for shape in gear for d in shape]
            for j, v in enumerate(vals):
                p.gear_vals[g * p.gear_nvals + j] = v
            for i, shape in enumerate(gear):
                p.gear_in_bytes[g * self.n_in + i] = math.prod(shape) * self.in_specs[i].dtype.itemsize

    cdef int _output_table(self, int i) except -1:
        """Dynamic HW / dims: each output's dims and bytes at every gear, read with
        aclmdlGetCurOutputDims after setting the gear on instance i's first slot (nothing is in
        flight yet); the slot and the model end at the largest gear, as they started."""
        cdef Pipeline* p = self.p
        cdef Inst* inst = &p.insts[i]
        cdef Slot* s = &inst.slots[0]
        cdef Model m = self.models[i]
        cdef aclmdlIODims dims
        cdef const char* api
        cdef int g, o, d
        for g in range(p.n_gears):
            s.gear = g
            check(_set_gear(p, inst, s, &api), api)
            for o in range(self.n_out):
                check(aclmdlGetCurOutputDims(m.desc, o, &dims), "aclmdlGetCurOutputDims")
                shape = tuple(dims.dims[d] for d in range(dims.dimCount))
                if len(shape) != p.out_ndims[o] or any(v < 0 for v in shape):
                    raise FastexecError(f"Executor: the runtime gives output '{self.out_specs[o].name}' dims {shape} at "
                                        f"gear {g}; expected {p.out_ndims[o]} known dims")
                nbytes = math.prod(shape) * self.out_specs[o].dtype.itemsize
                if nbytes > p.out_bytes[o]:
                    raise FastexecError(f"Executor: output '{self.out_specs[o].name}' holds {nbytes} bytes at gear {g}, "
                                        f"more than the {p.out_bytes[o]} the model gives it")
                p.gear_out_bytes[g * self.n_out + o] = nbytes
                for d in range(len(shape)):
                    p.gear_out_shape[(g * self.n_out + o) * MAX_SHAPE_DIMS + d] = shape[d]
        s.ds_gear = p.n_gears - 1
        return 0

    cdef _allocate(self, int i):
        """Instance i: its streams and slots (every pointer stored as soon as it exists, so a
        failure part-way leaves nothing that close cannot free)."""
        cdef Inst* inst = &self.p.insts[i]
        cdef Slot* slot
        cdef int j, s
        cdef Model m = self.models[i]
        cdef const char* api = ""
        m.device.activate()
        inst.ctx = m.device.ctx
        inst.device = m.device.id
        inst.model_id = m.model_id
        inst.gear = -1
        for j in range(self.p.plan.n_streams):
            check(aclrtCreateStream(&inst.streams[j]), "aclrtCreateStream")
            inst.n_streams = j + 1
        for s in range(self.depth):
            slot = &inst.slots[s]
            slot.ins = <IOBuf*>calloc(max(self.n_in, 1), sizeof(IOBuf))
            slot.outs = <IOBuf*>calloc(max(self.n_out, 1), sizeof(IOBuf))
            slot.in_hosts = <void**>calloc(max(self.n_in, 1), sizeof(void*))
            slot.out_hosts = <void**>calloc(max(self.n_out, 1), sizeof(void*))
            slot.in_n = <size_t*>calloc(max(self.n_in, 1), sizeof(size_t))
            slot.out_n = <size_t*>calloc(max(self.n_out, 1), sizeof(size_t))
            slot.in_shape = <int64_t*>calloc(max(self.n_in, 1) * MAX_SHAPE_DIMS, sizeof(int64_t))
            slot.out_shape = <int64_t*>calloc(max(self.n_out, 1) * MAX_SHAPE_DIMS, sizeof(int64_t))
            if (slot.ins == NULL or slot.outs == NULL or slot.in_hosts == NULL or slot.out_hosts == NULL
                    or slot.in_n == NULL or slot.out_n == NULL or slot.in_shape == NULL or slot.out_shape == NULL):
                raise MemoryError()
            slot.gear = -1
            slot.ds_gear = -1
            slot.in_ds = aclmdlCreateDataset()
            if slot.in_ds == NULL:
                raise AclError(500000, "aclmdlCreateDataset", "the runtime returned no dataset")
            slot.out_ds = aclmdlCreateDataset()
            if slot.out_ds == NULL:
                raise AclError(500000, "aclmdlCreateDataset", "the runtime returned no dataset")
            for j in range(self.n_in):
                _alloc_io(&slot.ins[j], self.p.in_bytes[j])
                slot.in_hosts[j] = slot.ins[j].host
                slot.in_n[j] = self.p.in_bytes[j]
                check(aclmdlAddDatasetBuffer(slot.in_ds, slot.ins[j].buf), "aclmdlAddDatasetBuffer")
            if self.p.dynamic:
                # The hidden gear tensor follows the data inputs. Each slot's dataset starts at
                # the largest gear; pl_enqueue changes it per batch (see _gear_begin).
                dyn_bytes = max(8, aclmdlGetInputSizeByIndex(m.desc, m.dynamic_input_index))
                check(aclrtMalloc(&slot.dyn_dev, dyn_bytes, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
                slot.dyn_buf = aclCreateDataBuffer(slot.dyn_dev, dyn_bytes)
                if slot.dyn_buf == NULL:
                    raise AclError(500000, "aclCreateDataBuffer", "the runtime returned no data buffer")
                check(aclmdlAddDatasetBuffer(slot.in_ds, slot.dyn_buf), "aclmdlAddDatasetBuffer")
                slot.gear = self.p.n_gears - 1
                check(_set_gear(self.p, inst, slot, &api), api)
                slot.ds_gear = slot.gear
                inst.gear = slot.gear
            if self.p.aipp_index >= 0:
                # The dynamic AIPP parameters: the executor's, set once; a batch with its own sets them
                # in the core (pl_enqueue), and the next batch without puts the executor's back.
                size = aclmdlGetInputSizeByIndex(m.desc, self.p.aipp_index)
                check(aclrtMalloc(&slot.aipp_dev, size, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
                slot.aipp_buf = aclCreateDataBuffer(slot.aipp_dev, size)
                if slot.aipp_buf == NULL:
                    raise AclError(500000, "aclCreateDataBuffer", "the runtime returned no data buffer")
                check(aclmdlAddDatasetBuffer(slot.in_ds, slot.aipp_buf), "aclmdlAddDatasetBuffer")
                check(aclmdlSetInputAIPP(inst.model_id, slot.in_ds, self.p.aipp_index, self.p.aipp), "aclmdlSetInputAIPP")
            for j in range(self.n_out):
                _alloc_io(&slot.outs[j], self.p.out_bytes[j])
                slot.out_hosts[j] = slot.outs[j].host
                slot.out_n[j] = self.p.out_bytes[j]
                check(aclmdlAddDatasetBuffer(slot.out_ds, slot.outs[j].buf), "aclmdlAddDatasetBuffer")
            for j in range(N_EVENTS):
                check(aclrtCreateEvent(&slot.ev[j]), "aclrtCreateEvent")
                slot.n_events = j + 1
        if i == 0 and (self.p.dyn_kind == DYN_HW or self.p.dyn_kind == DYN_DIMS):
            self._output_table(i)

    def _warm_up(self):
        """One batch of zeros through every instance: surfaces a runtime that refuses the
        execute call (e.g. aclmdlExecuteAsyncV2 on an SoC without it) here, not mid-run."""
        if self.profile.shaped:
            zeros = [np.zeros(shape, dtype=s.dtype) for s, shape in zip(self.in_specs, self.profile.warm_up_shapes())]
        else:
            zeros = [np.zeros((self.batch_size,) + tuple(s.shape[1:]), dtype=s.dtype) for s in self.in_specs]
        tickets = [self.submit(zeros) for _ in range(self.n_instances)]
        for t in tickets:
            try:
                self.result(t)
            except BatchError as exc:
                raise exc.error from None
        self.reset_stats()

    # ------------------------------------------------------------ properties

    @property
    def inputs(self):
        return list(self.in_specs)

    @property
    def outputs(self):
        return list(self.out_specs)

    @property
    def instances(self):
        """Model instances per device."""
        return self.per_device

    @property
    def devices(self):
        """The device ids batches are spread over, in order (batch k on devices[k % len(devices)])."""
        return list(self.device_ids)

    @property
    def mode(self):
        return "overlap" if self.overlap else "serial"

    @property
    def closed(self):
        return not self.is_open

    # ------------------------------------------------------------ shared steps

    cdef int _check_process(self) except -1:
        if self.p != NULL and self.p.pid != fx_pid():
            raise FastexecError(f"this Executor was created in process {self.p.pid}; the forked child {fx_pid()} cannot "
                                "use it (the device belongs to the parent): create a new Executor in the child")
        return 0

    cdef int _usable(self) except -1:
        self._check_process()
        if not self.is_open:
            raise ClosedError("Executor is closed")
        return 0

    cdef int _raise_wait(self, int r, Waiter* w, str what, completed=(), outputs=None) except -1:
        """Raise what a core call's result `r` (not PL_OK) stands for."""
        if r == PL_INTERRUPTED:
            exc = waiter_exception(w)
            if isinstance(exc, KeyboardInterrupt):
                raise Interrupted(f"{what} interrupted", completed, outputs) from exc
            raise exc
        if r == PL_EXPIRED:
            raise WaitTimeout(f"{what}: not done within the timeout; nothing is lost (batches still on the device stay "
                              "queued, tickets stay valid)", completed, outputs)
        if r == PL_CLOSED:
            raise ClosedError(f"{what}: the executor is closed")
        if r == PL_BUSY:
            raise FastexecError(f"{what}: the slot needed is reserved by this thread's own staged() block; "
                                "leave that block first")
        raise FastexecError(f"{what}: unexpected pipeline state {r}")

    cdef int64_t _reserve(self, intptr_t owner, Waiter* w, str what) except -1:
        """A reserved slot's ticket; moves finished Python batches out of the way."""
        cdef int64_t k = -1, victim = -1
        cdef int r
        while True:
            with nogil:
                r = pl_reserve(self.p, owner, False, w, &k, &victim)
            if r == PL_OK:
                return k
            if r == PL_COLLECT:
                self._collect(victim, w, what)
                continue
            self._raise_wait(r, w, what)

    cdef int _collect(self, int64_t k, Waiter* w, str what) except -1:
        """Move Python batch k (submitted, not yet taken) out of its slot into `done`."""
        cdef int r
        with nogil:
            r = pl_wait(self.p, k, OWNER_PYTHON, w)
        if r == PL_OK:
            self._take(k, True)
        elif r != PL_UNKNOWN:       # (another thread took it meanwhile)
            self._raise_wait(r, w, what)
        return 0

    cdef object _take(self, int64_t k, bint store):
        """The held slot of batch k: its outputs (or BatchError), the slot given back. With
        `store`, kept in `done` before the slot is released (so a result() that finds the slot
        gone finds the batch there)."""
        cdef Slot* s = pl_slot(self.p, k)
        cdef list outs
        cdef int i
        cdef cnp.ndarray arr
        try:
            if s.status.code:
                value = BatchError(k, status_error(&s.status))
            else:
                outs = []
                for i in range(self.n_out):
                    spec = self.out_specs[i]
                    if self.profile.shaped:   # the batch's real dims
                        shape = tuple(s.out_shape[i * MAX_SHAPE_DIMS + d] for d in range(self.p.out_ndims[i]))
                        arr = np.empty(shape, dtype=spec.dtype)
                        memcpy(cnp.PyArray_DATA(arr), s.outs[i].host, arr.nbytes)
                    else:
                        arr = np.empty((s.rows,) + tuple(spec.shape[1:]), dtype=spec.dtype)
                        memcpy(cnp.PyArray_DATA(arr), s.outs[i].host, s.rows * self.p.out_row[i])
                    outs.append(arr)
                value = outs
            if store:
                self.done[k] = value
        finally:
            with nogil:
                pl_release_ticket(self.p, k, OWNER_PYTHON)
        return value

    cdef int _enqueue(self, int64_t k) except -1:
        cdef Status err
        cdef int r
        with nogil:
            r = pl_enqueue(self.p, k, &err)
        if r:
            raise status_error(&err)
        return 0

    # ------------------------------------------------------------ one batch: submit / result / staged

    cdef int _shape_slot(self, int64_t k, tuple shapes, object match) except -1:
        """Give the reserved batch k of a dynamic HW / dims / shape model its gear or input
        shapes (`match`: what Profile.match_shapes(shapes) returned) and its rows."""
        cdef Slot* s = pl_slot(self.p, k)
        cdef int64_t dims[MAX_IO * MAX_SHAPE_DIMS]
        cdef const char* api = ""
        cdef aclError rc
        cdef int i, d
        if self.p.dyn_kind == DYN_SHAPE:
            for i in range(self.n_in):
                for d in range(len(shapes[i])):
                    dims[i * MAX_SHAPE_DIMS + d] = shapes[i][d]
        rc = pl_shape(self.p, s, match if self.p.dyn_kind != DYN_SHAPE else -1, dims, &api)
        if rc:
            check(rc, api)
        s.rows = shapes[0][0] if shapes[0] else 1
        return 0

    cdef int _stage_shaped(self, int64_t k, list arrays, tuple shapes, object match) except -1:
        """The reserved batch k of a dynamic HW / dims / shape model: its gear or shape, then its
        inputs (`shapes` and `match`: the arrays' shapes and what the caller's
        Profile.match_shapes of them returned, before the slot was taken)."""
        cdef Slot* s = pl_slot(self.p, k)
        cdef const char* src[MAX_IO]
        cdef int i
        self._shape_slot(k, shapes, match)
        for i in range(self.n_in):
            src[i] = <const char*>cnp.PyArray_DATA(<cnp.ndarray>arrays[i])
        with nogil:
            pl_stage(self.p, s, src, s.rows)
        return 0

    def submit(self, inputs, aipp=None):
        """Queue one batch (at most batch_size rows; for a dynamic HW / dims / shape model, any
        shapes the profile allows); returns a ticket for result(). `aipp`: this batch's own
        AippConfig (a dynamic AIPP model; the executor's otherwise), refused before anything is
        queued when the runtime refuses it."""
        self._usable()
        cdef Waiter w
        cdef int64_t t
        if self.profile.shaped:
            arrays = order_inputs(self.in_specs, inputs, self.batch_size, False, True)
            shapes = tuple(tuple(int(d) for d in a.shape) for a in arrays)
            match = self.profile.match_shapes(shapes)       # a bad shape fails before a slot is taken
            waiter_init(&w, -1, True)
            t = self._reserve(OWNER_PYTHON, &w, "submit()")
            try:
                self._stage_shaped(t, arrays, shapes, match)
            except BaseException:
                with nogil:
                    pl_unreserve(self.p, pl_slot(self.p, t))
                raise
            self._enqueue(t)
            return t
        arrays = order_inputs(self.in_specs, inputs, self.batch_size, False)
        cdef AippParams own = None
        if aipp is not None:
            if self.p.aipp_index < 0:
                raise ValueError("submit(): aipp= is for models with dynamic AIPP; this one has none")
            own = self._aipp_params(aipp, "submit()")
        cdef const char* src[MAX_IO]
        cdef int i
        cdef uint64_t rows = arrays[0].shape[0]
        for i in range(self.n_in):
            src[i] = <const char*>cnp.PyArray_DATA(<cnp.ndarray>arrays[i])
        waiter_init(&w, -1, True)
        cdef int64_t k = self._reserve(OWNER_PYTHON, &w, "submit()")
        with nogil:
            pl_stage(self.p, pl_slot(self.p, k), src, rows)
        if own is not None:
            pl_slot(self.p, k).aipp_next = own.handle     # used (copied) by pl_enqueue, in this call
        self._enqueue(k)
        return k

    def result(self, ticket, timeout=None):
        """The outputs of a submitted batch (a list, one array per output), waited for with the
        GIL released. Raises BatchError if its device work failed, WaitTimeout after `timeout`
        seconds (the ticket stays valid), Interrupted on Ctrl-C (likewise)."""
        self._check_process()
        if self.p == NULL or self.p.insts == NULL:
            raise ClosedError("Executor is closed")
        if isinstance(ticket, bool) or not isinstance(ticket, int):
            raise TypeError(f"result(): the ticket must be an int from submit(), got {type(ticket).__name__}")
        cdef int64_t k = ticket
        cdef Waiter w
        cdef int r
        waiter_init(&w, _seconds(timeout, "result()"), True)
        while True:
            out = self.done.pop(k, None)
            if out is not None:
                break
            with nogil:
                r = pl_wait(self.p, k, OWNER_PYTHON, &w)
            if r == PL_OK:
                out = self._take(k, False)
                break
            if r == PL_UNKNOWN:
                out = self.done.pop(k, None)
                if out is None:
                    raise ValueError(f"unknown ticket {ticket!r} (never submitted, or its result was already taken)")
                break
            self._raise_wait(r, &w, f"result({k})")
        if isinstance(out, BatchError):
            raise out
        return out

    def staged(self, shapes=None):
        """Zero-copy submission: ``with ex.staged() as batch:`` reserves a slot and gives
        ``batch.inputs``, numpy views of its pinned input buffers (batch_size rows each), to fill
        in place; leaving the block queues the batch (``batch.rows`` rows, all by default) and
        sets ``batch.ticket``; an exception in the block gives the slot back unqueued. The views
        must not be used after the block. Several blocks may be open at once, on any threads.

        A dynamic HW / dims / shape model's batch needs ``shapes=`` (a dict input name -> shape,
        or a list in input order): checked against the profile before a slot is taken
        (ValueError naming the input, the shape and the allowed gears or ranges); the views
        then have exactly those shapes, the batch is queued at them (``batch.rows`` is the
        first input's dim 0 and stays so) and result() gives the outputs at their real dims."""
        self._usable()
        if not self.profile.shaped:
            if shapes is not None:
                raise ValueError(f"staged(): shapes= is for dynamic HW / dims / shape models; this one "
                                 f"({self.profile.kind or 'static'}) takes rows (set batch.rows)")
            return StagedBatch(self, None, None)
        if shapes is None:
            raise ValueError(f"staged(): a {self.profile.kind} model's batch needs shapes= (input name -> shape; "
                             f"{self.profile.allowed()})")
        ordered = self.profile.order_shapes(shapes, "staged()")
        return StagedBatch(self, ordered, self.profile.match_shapes(ordered))

    # ------------------------------------------------------------ streaming: imap

    def imap(self, batches):
        """Ordered streaming: yields the outputs of each batch of `batches` (an iterable of
        inputs, each at most batch_size rows), keeping up to depth x instances in flight.

        Batch k failing in any way (device, queueing, bad input, the iterator raising) raises
        BatchError(index=k) once every earlier batch has been yielded; indexes count this call's
        batches. A device failure's BatchError.completed holds the later batches that were in
        flight; Ctrl-C raises Interrupted whose ``completed`` holds the finished batches not
        yet yielded."""
        self._usable()
        window = self.p.window
        pending = deque()           # (index, ticket)
        failure = None
        index = 0
        it = iter(batches)
        try:
            while True:
                # Signal handlers run here, not in the consumer's loop, so that Ctrl-C becomes
                # an Interrupted that keeps the finished batches (Cython code never runs them).
                PyErr_CheckSignals()
                try:
                    batch = next(it)
                except StopIteration:
                    break
                except Exception as exc:
                    failure = (index, exc)
                    break
                try:
                    t = self.submit(batch)
                except (KeyboardInterrupt, ClosedError):
                    raise
                except Exception as exc:
                    failure = (index, exc)
                    break
                pending.append((index, t))
                index += 1
                if len(pending) >= window:
                    yield self._imap_next(pending)
            while pending:
                yield self._imap_next(pending)
            if failure is not None:
                raise BatchError(failure[0], failure[1]) from failure[1]
        except Interrupted:
            raise
        except KeyboardInterrupt as exc:
            raise Interrupted("imap() interrupted", self._imap_drain(pending), None) from exc
        finally:
            for _, t in pending:     # the consumer stopped early, or a failure: nothing waits for these
                self._disown(t)

    def _imap_next(self, pending):
        index, t = pending.popleft()
        try:
            outs = self.result(t)
        except BatchError as exc:
            completed = []
            while pending:
                later, lt = pending.popleft()
                try:
                    completed.append((later, self.result(lt)))
                except BatchError as other:
                    completed.append((later, BatchError(later, other.error)))
            raise BatchError(index, exc.error, completed) from None
        except Interrupted:
            pending.appendleft((index, t))
            raise
        try:
            PyErr_CheckSignals()    # here rather than in the consumer's loop, once the batch is safe
        except KeyboardInterrupt as exc:
            raise Interrupted("imap() interrupted", [(index, outs)] + self._imap_drain(pending), None) from exc
        return outs

    def _imap_drain(self, pending):
        """After Ctrl-C: the pending batches that finish within INTERRUPT_DRAIN_S."""
        completed = []
        deadline = fx_now() + INTERRUPT_DRAIN_S
        while pending:
            index, t = pending[0]
            try:
                completed.append((index, self.result(t, timeout=max(0.0, deadline - fx_now()))))
            except BatchError as exc:
                completed.append((index, BatchError(index, exc.error)))
            except (WaitTimeout, KeyboardInterrupt):
                break
            pending.popleft()
        return completed

    def _disown(self, int64_t t):
        self.done.pop(t, None)
        if self.p != NULL:
            with nogil:
                pl_disown(self.p, t, OWNER_PYTHON)

    # ------------------------------------------------------------ whole arrays: run

    def run(self, inputs, out=None, timeout=None):
        """Run whole arrays (split along axis 0 into batches; the last one padded, its outputs
        trimmed). The loop runs in C with the GIL released but for a signal check every 50 ms.
        Returns one array per output.

        `out`: arrays to write the outputs into (a list in output order, or a dict by name),
        each C-contiguous with N rows, not overlapping the inputs. A failed batch raises
        BatchError (the first by index; ``completed`` lists the batches whose output rows are
        valid, ``outputs`` holds the arrays); Ctrl-C raises Interrupted and `timeout` (seconds)
        WaitTimeout, with the same ``completed`` and ``outputs``, after the batches on the
        device finished (or INTERRUPT_DRAIN_S passed)."""
        self._usable()
        if self.profile.shaped:
            return self._run_shaped(inputs, out, timeout)
        arrays = order_inputs(self.in_specs, inputs, self.batch_size, True)
        cdef uint64_t n = arrays[0].shape[0]
        outputs = output_arrays(self.out_specs, out, n, self.in_specs, arrays)
        cdef RunJob job
        cdef Waiter w
        cdef int i, r
        memset(&job, 0, sizeof(RunJob))
        job.n = n
        job.n_batches = (n + self.batch_size - 1) // self.batch_size
        job.failed = -1
        for i in range(self.n_in):
            job.src[i] = <const char*>cnp.PyArray_DATA(<cnp.ndarray>arrays[i])
        for i in range(self.n_out):
            job.dst[i] = <char*>cnp.PyArray_DATA(<cnp.ndarray>outputs[i])
        job.ok = <unsigned char*>calloc(job.n_batches, 1)
        job.ring_ticket = <int64_t*>malloc(self.p.window * sizeof(int64_t))
        job.ring_batch = <int64_t*>malloc(self.p.window * sizeof(int64_t))
        try:
            if job.ok == NULL or job.ring_ticket == NULL or job.ring_batch == NULL:
                raise MemoryError()
            waiter_init(&w, _seconds(timeout, "run()"), True)
            while True:
                with nogil:
                    r = run_job(self.p, &job, &w)
                if r != PL_COLLECT:
                    break
                try:
                    self._collect(job.victim, &w, "run()")
                except BaseException:
                    r = PL_CLOSED
                    if w.exc != NULL:
                        r = PL_INTERRUPTED
                    break
            if r != PL_OK:
                with nogil:
                    run_drain(self.p, &job, w.deadline if r == PL_EXPIRED else fx_now() + INTERRUPT_DRAIN_S)
            completed = [b for b in range(job.n_batches) if job.ok[b]] if r != PL_OK or job.failed >= 0 else None
            if r != PL_OK:
                self._raise_wait(r, &w, "run()", completed, outputs)
            if job.failed >= 0:
                raise BatchError(job.failed, status_error(&job.failure), completed, outputs)
        finally:
            free(job.ok)
            free(job.ring_ticket)
            free(job.ring_batch)
        return outputs

    def _run_shaped(self, inputs, out, timeout):
        """run() of a dynamic HW / dims / shape model: the inputs are one batch whose shapes the
        profile allows (its gear's or within the ranges); its outputs, written into `out` if given."""
        t = self.submit(inputs)
        outs = self.result(t, timeout=timeout)
        if out is None:
            return outs
        names = [s.name for s in self.out_specs]
        given = [out[n] for n in names] if isinstance(out, dict) else ([out] if isinstance(out, np.ndarray) else list(out))
        if len(given) != len(outs):
            raise ValueError(f"out: expected {len(outs)} array(s) ({', '.join(names)}), got {len(given)}")
        for name, dst, src in zip(names, given, outs):
            if not isinstance(dst, np.ndarray) or dst.shape != src.shape or dst.dtype != src.dtype:
                got = f"{dst.dtype} {dst.shape}" if isinstance(dst, np.ndarray) else type(dst).__name__
                raise ValueError(f"out '{name}': expected a {src.dtype} array of shape {src.shape} (this batch's real "
                                 f"dims), got {got}")
            dst[...] = src
        return given

    # ------------------------------------------------------------ stats, close

    def reset_stats(self):
        """Start the figures of stats() afresh (e.g. after a warm-up), and empty the log of raw
        times. The calibration (calibrate()) and whether times are recorded (record_times())
        stay as they were."""
        self._usable()
        with nogil:
            pthread_mutex_lock(&self.p.mu)
            stats_reset(self.p.stats, self.p.in_flight != 0)
            pthread_mutex_unlock(&self.p.mu)

    def stats(self):
        """Figures since construction or reset_stats() (the warm-up excluded), over every batch
        in constant memory: batches, wall_s (time with batches on the device); per-stage device
        times from events (h2d, execute, d2h), end-to-end batch latency, host staging and host
        enqueue time, each with count, mean, min, max and p50/p90/p95/p99 in ms (percentiles from
        a log-bucket histogram, to ~0.5 %); throughput; `calibration` (calibrate()'s uncontended
        stage times, or None); and `bound`: its period (the slowest stage in overlap mode; in
        serial mode also the three stages' sum per instance, one engine of each kind shared by
        the instances) from the calibration when there is one (`source` says which), the
        fraction of it reached, compute-only samples/s and the compute engine's utilisation."""
        self._usable()
        cdef Stats* snap = <Stats*>malloc(sizeof(Stats))
        if snap == NULL:
            raise MemoryError()
        try:
            with nogil:
                pthread_mutex_lock(&self.p.mu)
                memcpy(snap, self.p.stats, sizeof(Stats))
                pthread_mutex_unlock(&self.p.mu)
            out = stats_report(snap, self.batch_size, self.per_device, len(self.device_ids), self.overlap)
        finally:
            free(snap)
        out.update({"batch_size": int(self.batch_size), "depth": self.depth, "instances": self.per_device,
                    "devices": list(self.device_ids),
                    "mode": self.mode, "execute_api": "aclmdlExecuteAsyncV2" if self.config is not None
                    else "aclmdlExecuteAsync"})
        return out

    def calibrate(self, batches=50, inputs=None):
        """calibrate(batches=50, inputs=None) -> dict

        Measure the uncontended stage times (trtexec's separate profile run): `batches`
        full batches of zeros, one at a time, so each copy and compute engine serves one batch
        with nothing else in flight. The median h2d, execute and d2h times (medians, as trtexec
        reports: a host hiccup in a few batches does not move them) become the basis of
        stats()'s bound, compute-only throughput and utilisation, until the next calibrate().
        The other figures are left as they were (calibration batches are not counted). Call it
        while no other batches are in flight. Returns stats()["calibration"]. `inputs`: the batch
        to measure instead (e.g. one gear or shape of a dynamic model; default: zeros of a full
        batch, or of a dynamic HW / dims model's last gear, a dynamic shape's lower bounds)."""
        self._usable()
        if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
            raise ValueError(f"calibrate(): batches must be an int >= 1 (got {batches!r})")
        cdef Stats* snap = <Stats*>malloc(sizeof(Stats))
        cdef double h, c, d
        cdef int i
        if snap == NULL:
            raise MemoryError()
        try:
            with nogil:
                pthread_mutex_lock(&self.p.mu)
                memcpy(snap, self.p.stats, sizeof(Stats))
                stats_reset(self.p.stats, self.p.in_flight != 0)
                pthread_mutex_unlock(&self.p.mu)
            try:
                if inputs is not None:
                    x = inputs
                elif self.profile.shaped:
                    x = [np.zeros(shape, s.dtype) for s, shape in zip(self.in_specs, self.profile.warm_up_shapes())]
                else:
                    x = [np.zeros((self.batch_size,) + tuple(s.shape[1:]), s.dtype) for s in self.in_specs]
                outs = self.run(x)
                for i in range(batches - 1):
                    self.run(x, out=outs)
            finally:
                with nogil:
                    pthread_mutex_lock(&self.p.mu)
                    h = series_quantile(&self.p.stats.series[SERIES_H2D], 0.5)
                    c = series_quantile(&self.p.stats.series[SERIES_EXECUTE], 0.5)
                    d = series_quantile(&self.p.stats.series[SERIES_D2H], 0.5)
                    i = <int>self.p.stats.series[SERIES_EXECUTE].count
                    memcpy(self.p.stats, snap, sizeof(Stats))
                    pthread_mutex_unlock(&self.p.mu)
            with nogil:
                pthread_mutex_lock(&self.p.mu)
                self.p.stats.cal_batches = i
                self.p.stats.cal_ms[0] = h
                self.p.stats.cal_ms[1] = c
                self.p.stats.cal_ms[2] = d
                pthread_mutex_unlock(&self.p.mu)
        finally:
            free(snap)
        return {"batches": i, "h2d_ms": h, "execute_ms": c, "d2h_ms": d}

    def record_times(self, bint enable=True):
        """Keep (or stop keeping) every batch's raw times from now on, for take_times(). The
        core holds up to 4096 per series between two take_times() calls; more are counted as
        dropped."""
        self._usable()
        cdef int i
        with nogil:
            pthread_mutex_lock(&self.p.mu)
            for i in range(N_SERIES):
                self.p.stats.series[i].logging = enable
            pthread_mutex_unlock(&self.p.mu)

    def take_times(self):
        """The raw per-batch times (ms) recorded since the last call, as a dict of float64
        arrays by series name (row j of every array is the same batch, in completion order),
        plus "dropped": how many batches found the log full."""
        self._usable()
        cdef Stats* snap = <Stats*>malloc(sizeof(Stats))
        cdef int i
        if snap == NULL:
            raise MemoryError()
        try:
            with nogil:
                pthread_mutex_lock(&self.p.mu)
                for i in range(N_SERIES):
                    snap.series[i].log_n = self.p.stats.series[i].log_n
                    snap.series[i].log_dropped = self.p.stats.series[i].log_dropped
                    memcpy(snap.series[i].log, self.p.stats.series[i].log,
                           self.p.stats.series[i].log_n * sizeof(double))
                    self.p.stats.series[i].log_n = 0
                    self.p.stats.series[i].log_dropped = 0
                pthread_mutex_unlock(&self.p.mu)
            out = {}
            for i in range(N_SERIES):
                n = snap.series[i].log_n
                out[SERIES_NAMES[i]] = (np.asarray(<double[:n]>snap.series[i].log).copy() if n
                                        else np.zeros(0, np.float64))
            out["dropped"] = int(snap.series[0].log_dropped)
        finally:
            free(snap)
        return out

    # ------------------------------------------------------------ the trace (trace.pxi)

    def start_trace(self, keep=4096):
        """Record, for every batch that completes from now on, whatever front end queued it,
        each stage's start and end on the device (from the timestamps of the events the pipeline
        records anyway) and its host spans (staging, enqueue, the consumer's wait, collection),
        plus the pipeline's drains, keeping the last `keep` batches (1..1048576). Starting again
        empties the ring. Costs, per batch, one device-clock read per event and a few host
        clock reads; nothing at all when tracing is off. Needs aclrtEventGetTimestamp."""
        self._usable()
        keep = _trace_keep(keep, "start_trace()")
        trace_start(self.p, keep)

    def stop_trace(self):
        """Stop recording; the batches kept stay readable with trace()."""
        self._check_process()
        if self.p != NULL:
            with nogil:
                trace_stop(self.p)

    def trace_records(self, clear=False):
        """The kept batches (oldest first, the last `keep` since start_trace()) as numpy arrays:
        ticket, instance, slot, rows, failed, submit_thread, collect_thread (kernel thread ids),
        host_s (n x 8: stage, enqueue, wait, collect start/end, monotonic seconds, 0 = none),
        device_us (n x 6: h2d, execute, d2h start/end on the device clock), plus `spans` (the
        pipeline's drains), `dropped` (batches overwritten unread) and the clock facts.
        `clear`: what is returned now is not returned again (for draining a long run).
        None if tracing was never started. Readable after close()."""
        self._check_process()
        if self.p == NULL:
            return None
        return _trace_with_plan(trace_export(self.p, bool(clear)), self.p, self.depth)

    def trace(self, clear=False):
        """The kept batches as a Chrome trace event dict (``traceEvents``; open the JSON in
        Perfetto or chrome://tracing): one track per stream, one per host thread; complete
        events named "h2d 17", "execute 17", "d2h 17", "stage 17", ... (17: the batch's
        ticket) with ts/dur in us on the host's monotonic clock, from the start of tracing.
        See docs/executor.md ("Traces")."""
        from fastexec import tracing
        records = self.trace_records(clear)
        if records is None:
            raise FastexecError("trace(): tracing was never started (start_trace(), or Executor(trace=N))")
        return tracing.chrome_trace(records)

    def write_trace(self, path, clear=False):
        """Write trace() as JSON to `path`; returns the number of events written."""
        from fastexec import tracing
        return tracing.write(path, self.trace(clear))

    def close(self, timeout=None):
        """Stop taking batches, wait for the ones on the device (and for the C API and other
        threads to give back what they hold), then free everything. Idempotent, and safe to call
        again after it failed. Past `timeout` seconds (or on Ctrl-C) it raises WaitTimeout (or
        Interrupted) and keeps the memory the device may still use; call close() again later."""
        cdef Waiter w
        cdef Status err
        cdef int r
        if self.p == NULL:
            self._detach()
            return
        self._check_process()
        self.is_open = False
        waiter_init(&w, _seconds(timeout, "close()"), True)
        with nogil:
            r = pl_drain(self.p, fx_thread_id(), &w)
        if r == PL_BUSY:
            raise FastexecError("close(): this thread is inside a staged() block of the executor; leave it first")
        if r != PL_OK:
            self._raise_wait(r, &w, "close()")
        status_clear(&err)
        with nogil:
            pl_free_resources(self.p, &err)
        if err.code:
            raise status_error(&err)
        self.done = {}
        if self.aipp_params is not None:
            self.aipp_params.close()
        self._detach()

    cdef _teardown(self):
        """After a failed construction: free whatever exists, without waiting for signals."""
        cdef Waiter w
        cdef Status err
        if self.p != NULL:
            waiter_init(&w, -1, False)
            status_clear(&err)
            with nogil:
                pl_drain(self.p, 0, &w)
                pl_free_resources(self.p, &err)
        try:
            self._detach()
        except BaseException:
            pass

    cdef _uncount(self):
        """Stop counting as a user of the device, the exec config and the models (C state only)."""
        cdef Model m
        if self.attached:
            self.attached = False
            for dev in self.used_devices:
                (<Device>dev).executors -= 1
            if self.config is not None:
                self.config.users -= 1
        for m in self.models:
            if m is not None and m.users > 0:
                m.users -= 1

    cdef _detach(self):
        """Stop counting as a user of the device and models; close the models it loaded."""
        cdef Model m
        self._uncount()
        models, owned = self.models, self.owns_models
        self.models, self.owns_models = [], []
        first = None
        for m, own in reversed(list(zip(models, owned))):    # a device's first model may own it: last
            if own and m is not None:
                try:
                    m.close()
                except BaseException as exc:
                    first = first or exc
        if first is not None:
            raise first

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "open" if self.is_open else ("closing" if self.p != NULL and self.p.insts != NULL else "closed")
        where = f" devices={','.join(map(str, self.device_ids))}" if len(self.device_ids) > 1 else ""
        return (f"<fastexec.Executor {self.label!r} mode={self.mode} depth={self.depth} instances={self.per_device}"
                f"{where} batch={self.batch_size} {state}>")

    def __dealloc__(self):
        cdef Waiter w
        cdef Status err
        self._uncount()
        if self.p == NULL:
            return
        if self.p.insts != NULL and self.p.pid == fx_pid() and _can_free():
            _warn_unclosed("Executor")
            waiter_init(&w, -1, False)
            status_clear(&err)
            with nogil:
                pl_drain(self.p, 0, &w)
                pl_free_resources(self.p, &err)
        if self.p.pid == fx_pid():
            pl_destroy(self.p)      # (a forked child leaves the parent's memory alone)
        self.p = NULL


cdef class StagedBatch:
    """A reserved slot's pinned input buffers, for the caller to fill (Executor.staged())."""

    cdef Executor ex
    cdef int64_t k
    cdef public object inputs
    cdef public object rows
    cdef readonly object ticket
    cdef bint entered

    cdef tuple shapes                # a shaped model's input shapes (None: rows), checked
    cdef object match               # what Profile.match_shapes gave for them

    def __init__(self, Executor ex, shapes, match):
        self.ex = ex
        self.ticket = None
        self.shapes = shapes
        self.match = match

    def __enter__(self):
        cdef Slot* s
        cdef Waiter w
        if self.entered:
            raise FastexecError("staged batch: the block is already entered")
        self.ex._usable()
        waiter_init(&w, -1, True)
        self.k = self.ex._reserve(OWNER_PYTHON, &w, "staged()")
        s = pl_slot(self.ex.p, self.k)
        if self.shapes is not None:
            try:
                self.ex._shape_slot(self.k, self.shapes, self.match)
            except BaseException:
                with nogil:
                    pl_unreserve(self.ex.p, s)
                raise
        self.entered = True
        views = []
        for i in range(self.ex.n_in):
            spec = self.ex.in_specs[i]
            if self.shapes is not None:
                shape = self.shapes[i]
                count = s.in_n[i] // spec.dtype.itemsize
            else:
                shape = (self.ex.batch_size,) + tuple(spec.shape[1:])
                count = self.ex.batch_size * (self.ex.p.in_row[i] // spec.dtype.itemsize)
            views.append(np.frombuffer(<char[:s.ins[i].nbytes]><char*>s.ins[i].host, dtype=spec.dtype,
                                       count=count).reshape(shape))
        self.inputs = views
        self.rows = s.rows if self.shapes is not None else self.ex.batch_size
        return self

    def __exit__(self, exc_type, exc, tb):
        cdef Slot* s
        if not self.entered:
            return False
        self.entered = False
        self.inputs = None
        s = pl_slot(self.ex.p, self.k)
        rows = self.rows
        if exc_type is None and self.shapes is not None and rows != s.rows:
            with nogil:
                pl_unreserve(self.ex.p, s)
            raise ValueError(f"staged batch: a shaped batch runs at its shapes {list(self.shapes)}; rows must stay "
                             f"{s.rows} (got {rows!r})")
        if exc_type is None and self.shapes is None and (isinstance(rows, bool) or not isinstance(rows, int)
                                                         or not 1 <= rows <= self.ex.batch_size):
            with nogil:
                pl_unreserve(self.ex.p, s)
            raise ValueError(f"staged batch: rows must be an int in 1..{self.ex.batch_size} (got {rows!r})")
        if exc_type is not None:
            with nogil:
                pl_unreserve(self.ex.p, s)
            return False
        s.rows = rows
        s.t_stage = 0
        self.ex._enqueue(self.k)
        self.ticket = self.k
        return False


# ---------------------------------------------------------------- run(): the loop in C

cdef struct RunJob:
    int64_t n_batches
    int64_t next_b                  # next batch to queue
    uint64_t n                      # rows in all
    const char* src[MAX_IO]
    char* dst[MAX_IO]
    unsigned char* ok               # per batch: its output rows are valid
    int64_t* ring_ticket            # batches in flight, oldest first (a ring of `window`)
    int64_t* ring_batch
    int head
    int count
    int64_t failed                  # the first failed batch, or -1
    Status failure
    int64_t victim                  # PL_COLLECT: the Python batch in the way


cdef inline void _run_failed(RunJob* j, int64_t b, const Status* st) noexcept nogil:
    if j.failed < 0 or b < j.failed:
        j.failed = b
        memcpy(&j.failure, st, sizeof(Status))


cdef void _run_take(Pipeline* p, RunJob* j) noexcept nogil:
    """The oldest batch of the job is held: copy its rows out, give the slot back."""
    cdef int64_t k = j.ring_ticket[j.head], b = j.ring_batch[j.head]
    cdef Slot* s = pl_slot(p, k)
    cdef int i
    if s.status.code:
        _run_failed(j, b, &s.status)
    else:
        for i in range(p.n_out):
            memcpy(j.dst[i] + b * p.batch_size * p.out_row[i], s.outs[i].host, s.rows * p.out_row[i])
        j.ok[b] = 1
    pl_release_ticket(p, k, <intptr_t>j)
    j.head = (j.head + 1) % p.window
    j.count -= 1


cdef int run_job(Pipeline* p, RunJob* j, Waiter* w) noexcept nogil:
    """Queue every batch of the job and take each back in order, up to `window` in flight.
    PL_OK when all are done (failed ones recorded in the job); PL_COLLECT (a finished Python
    batch is in the way: move it out and call again); else why it stopped."""
    cdef intptr_t owner = <intptr_t>j
    cdef int64_t k, victim
    cdef uint64_t rows, B = p.batch_size
    cdef const char* srcs[MAX_IO]
    cdef Status err
    cdef int i, r
    while j.next_b < j.n_batches or j.count:
        if j.next_b < j.n_batches and j.count < p.window:
            r = pl_reserve(p, owner, j.count > 0, w, &k, &j.victim)
            if r == PL_OK:
                rows = B if <uint64_t>(j.next_b + 1) * B <= j.n else j.n - <uint64_t>j.next_b * B
                for i in range(p.n_in):
                    srcs[i] = j.src[i] + j.next_b * B * p.in_row[i]
                pl_stage(p, pl_slot(p, k), srcs, rows)
                if pl_enqueue(p, k, &err):
                    _run_failed(j, j.next_b, &err)
                else:
                    j.ring_ticket[(j.head + j.count) % p.window] = k
                    j.ring_batch[(j.head + j.count) % p.window] = j.next_b
                    j.count += 1
                j.next_b += 1
                continue
            if r != PL_BUSY:
                return r
        r = pl_wait(p, j.ring_ticket[j.head], owner, w)
        if r:
            return r
        _run_take(p, j)
        if _interrupted(w):
            return PL_INTERRUPTED
    return PL_OK


cdef void run_drain(Pipeline* p, RunJob* j, double deadline) noexcept nogil:
    """After a stop: take the job's batches that finish by `deadline`; the rest are left to the
    device (their slots retire when it is done), never freed under it."""
    cdef Waiter w
    cdef intptr_t owner = <intptr_t>j
    cdef double t0 = fx_now()
    waiter_init(&w, -1, False)
    w.deadline = deadline if deadline > 0 else fx_now()
    while j.count:
        if pl_wait(p, j.ring_ticket[j.head], owner, &w) != PL_OK:
            break
        _run_take(p, j)
    while j.count:
        pl_disown(p, j.ring_ticket[j.head], owner)
        j.head = (j.head + 1) % p.window
        j.count -= 1
    pthread_mutex_lock(&p.mu)
    trace_span(p, PSPAN_STOP_DRAIN, t0, fx_now())
    pthread_mutex_unlock(&p.mu)


cdef int _alloc_io(IOBuf* io, size_t nbytes) except -1:
    io.nbytes = nbytes
    check(aclrtMalloc(&io.dev, nbytes, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
    check(aclrtMallocHost(&io.host, nbytes), "aclrtMallocHost")
    io.buf = aclCreateDataBuffer(io.dev, nbytes)
    if io.buf == NULL:
        raise AclError(500000, "aclCreateDataBuffer", "the runtime returned no data buffer")
    return 0


cdef object _trace_with_plan(object records, Pipeline* p, int depth):
    """The export plus what the stream layout needs: which stream each stage ran on."""
    if records is None:
        return None
    records["streams_per_instance"] = p.plan.n_streams
    records["stream_of_stage"] = [p.plan.stream_of[i] for i in range(N_STAGES)]
    records["instances"] = p.n_inst
    records["depth"] = depth
    return records


def _trace_keep(keep, what, allow_zero=False):
    """A valid ring size (batches) or ValueError naming the argument."""
    low = 0 if allow_zero else 1
    if isinstance(keep, bool) or not isinstance(keep, int) or not low <= keep <= TRACE_MAX:
        raise ValueError(f"{what}: the batches to keep must be an int in {low}..{TRACE_MAX} (got {keep!r})")
    return keep
