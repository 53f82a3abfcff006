# The pipelined executor. Included by fastexec/_core.pyx.
#
# One stream per model instance; `depth` slots per instance, each with device and pinned host
# buffers per input and output, the datasets, and four events (before H2D, before execute,
# before D2H, after D2H), all created once. Batch k goes to instance k % K, slot (k // K) % depth.
# Before a slot is reused its previous batch is collected (events synchronised, outputs copied
# out of pinned memory). On each stream, copy-in, execute and copy-out run back to back; the
# host stages batch k+1 while the device works on batch k.
#
# Locking: `lock` makes "stage + enqueue" and "collect" atomic across threads. It is only ever
# acquired with the GIL released; holding it, the GIL may be taken (never the reverse), so the
# two cannot deadlock.

from collections import deque

from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock, PyThread_free_lock,
                               PyThread_acquire_lock, PyThread_release_lock, PyThread_get_thread_ident, WAIT_LOCK)
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset

from fastexec.errors import BatchError

cdef extern from *:
    """
    #include <time.h>
    static double fx_now(void)
    {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }
    """
    double fx_now() nogil

MODES = ("overlap", "serial")
# Slots per instance when none is given: in overlap mode three batches occupy the three stages
# and a fourth lets the host stage the next one without stalling a copy engine (measured on
# `balanced`: 0.95 of the slowest-stage bound at depth 3, 0.996 at 4); serial mode needs two.
DEFAULT_DEPTH = {"overlap": 4, "serial": 2}

cdef enum:
    SERIES_H2D = 0
    SERIES_EXECUTE = 1
    SERIES_D2H = 2
    SERIES_E2E = 3
    SERIES_STAGING = 4
    SERIES_ENQUEUE = 5
    N_SERIES = 6

_SERIES_NAMES = ("h2d", "execute", "d2h", "end_to_end", "host_staging", "host_enqueue")


cdef inline void _series_add(Series* s, double v) noexcept nogil:
    # a ring of the last STATS_WINDOW samples: memory stays flat however long the executor runs
    s.window[s.count % STATS_WINDOW] = v
    s.count += 1
    s.total += v


cdef object _series_summary(Series* s):
    n = min(s.count, STATS_WINDOW)
    if n == 0:
        return {"mean_ms": None, "p50_ms": None, "p90_ms": None, "p95_ms": None, "p99_ms": None, "count": 0}
    values = np.asarray(<double[:n]>s.window).copy()
    p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99])
    return {"mean_ms": s.total / s.count, "p50_ms": float(p50), "p90_ms": float(p90), "p95_ms": float(p95),
            "p99_ms": float(p99), "count": int(s.count)}


cdef class Executor:
    """Runs a model through a pipeline that keeps the device busy.

    ``Executor(model, depth=None, config=None, instances=1, mode="overlap")``: `model` is a Model
    (or a path or bytes, loaded on device 0); `depth` slots per instance (default 4 in overlap
    mode, 2 in serial mode); `config` an ExecConfig to execute with aclmdlExecuteAsyncV2;
    `instances` loads the model that many times and spreads batches over them, keeping output
    order; `mode`: "overlap" puts copy-in, execute and copy-out of each instance on three
    streams ordered by events, so the three stages of different batches run at once on the
    device's copy and compute engines; "serial" runs them back to back on one stream.

    Three ways in: ``run(inputs)`` (whole arrays, the loop in C with the GIL released),
    ``imap(batches)`` (ordered streaming), ``submit(inputs)`` / ``result(ticket)`` and the
    zero-copy ``staged()``. Inputs are a list in input order, a dict by name, or one array for a
    single-input model; axis 0 is the batch axis.
    """

    def __cinit__(self):
        self.insts = NULL
        self.lock = NULL
        self.is_open = False
        self.series = NULL

    def __init__(self, model, depth=None, ExecConfig config=None, int instances=1, str mode="overlap"):
        if mode not in MODES:
            raise ValueError(f"Executor: mode must be one of {', '.join(MODES)} (got {mode!r})")
        if depth is None:
            depth = DEFAULT_DEPTH[mode]
        if not isinstance(depth, int) or depth < 1 or depth > 64:
            raise ValueError(f"Executor: depth must be 1..64 (got {depth})")
        if instances < 1 or instances > 64:
            raise ValueError(f"Executor: instances must be 1..64 (got {instances})")
        cdef Model first = model if isinstance(model, Model) else Model(model, device=0)
        if not first.is_open:
            raise ClosedError("Executor: the Model is closed")
        self.device = first.device
        self.depth = depth
        self.overlap = mode == "overlap"
        self.n_instances = instances
        self.config = config
        self.use_v2 = config is not None
        if self.use_v2:
            if config.handle == NULL:
                raise ClosedError("Executor: the ExecConfig is closed")
            if not symbol_available(b"aclmdlExecuteAsyncV2"):
                raise AclFunctionNotFoundError("aclmdlExecuteAsyncV2", _library_info.get("library", "the ACL library"))
        self.models = [first]
        self.owns_models = [not isinstance(model, Model)]
        self.done = {}
        self.lock = PyThread_allocate_lock()
        self.series = <Series*>calloc(N_SERIES, sizeof(Series))
        if self.lock == NULL or self.series == NULL:
            raise MemoryError()
        try:
            self._describe(first)
            for _ in range(instances - 1):
                self.models.append(Model(first.origin, device=self.device))
                self.owns_models.append(True)
            self._allocate()
            self.is_open = True
            self._warm_up()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ construction

    cdef _describe(self, Model m):
        self.batch_size = m.batch_size
        if self.batch_size < 1:
            raise FastexecError(f"Executor: cannot tell the batch size of {m.source} (axis 0 of input 0 is {self.batch_size})")
        self.in_specs = list(m.inputs)
        self.out_specs = list(m.outputs)
        self.dynamic_index = m.dynamic_input_index
        self.n_in = len(self.in_specs)
        self.n_out = len(self.out_specs)
        for kind, specs in (("input", self.in_specs), ("output", self.out_specs)):
            for spec in specs:
                if not spec.shape or spec.shape[0] not in (-1, self.batch_size):
                    raise FastexecError(f"Executor: {kind} '{spec.name}' has shape {spec.shape}; the executor needs the batch "
                                        f"({self.batch_size}) on axis 0 of every input and output")
                if spec.nbytes % self.batch_size:
                    raise FastexecError(f"Executor: {kind} '{spec.name}' holds {spec.nbytes} bytes, not a multiple of the batch {self.batch_size}")
        self.in_names = [s.name for s in self.in_specs]
        if self.n_in > 64 or self.n_out > 64:
            raise FastexecError(f"Executor: at most 64 inputs and 64 outputs (the model has {self.n_in} and {self.n_out})")

    cdef _allocate(self):
        cdef int i, j, s
        cdef Inst* inst
        cdef Slot* slot
        cdef Model m
        cdef size_t nbytes
        cdef size_t dyn_index
        self.insts = <Inst*>calloc(self.n_instances, sizeof(Inst))
        if self.insts == NULL:
            raise MemoryError()
        self.device.activate()
        for i in range(self.n_instances):
            m = self.models[i]
            inst = &self.insts[i]
            inst.model_id = m.model_id
            inst.slots = <Slot*>calloc(self.depth, sizeof(Slot))
            if inst.slots == NULL:
                raise MemoryError()
            check(aclrtCreateStream(&inst.stream), "aclrtCreateStream")
            inst.has_stream = True
            inst.in_stream = inst.out_stream = inst.stream
            if self.overlap:
                check(aclrtCreateStream(&inst.in_stream), "aclrtCreateStream")
                inst.has_in_stream = True
                check(aclrtCreateStream(&inst.out_stream), "aclrtCreateStream")
                inst.has_out_stream = True
            for s in range(self.depth):
                slot = &inst.slots[s]
                slot.ins = <IOBuf*>calloc(self.n_in, sizeof(IOBuf))
                slot.outs = <IOBuf*>calloc(self.n_out, sizeof(IOBuf))
                if slot.ins == NULL or slot.outs == NULL:
                    raise MemoryError()
                slot.in_ds = aclmdlCreateDataset()
                slot.out_ds = aclmdlCreateDataset()
                if slot.in_ds == NULL or slot.out_ds == NULL:
                    raise AclError(500000, "aclmdlCreateDataset", "the runtime returned no dataset")
                slot.in_hosts = <void**>calloc(self.n_in, sizeof(void*))
                slot.out_hosts = <void**>calloc(self.n_out, sizeof(void*))
                if slot.in_hosts == NULL or slot.out_hosts == NULL:
                    raise MemoryError()
                for j in range(self.n_in):
                    nbytes = self.in_specs[j].nbytes
                    _alloc_io(&slot.ins[j], nbytes)
                    slot.in_hosts[j] = slot.ins[j].host
                    check(aclmdlAddDatasetBuffer(slot.in_ds, slot.ins[j].buf), "aclmdlAddDatasetBuffer")
                if self.dynamic_index >= 0:
                    # The dynamic-batch tensor is the model's last input; the executor always runs the
                    # largest gear (a partial batch is padded), so it is set once per slot.
                    check(aclrtMalloc(&slot.dyn_dev, 8, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
                    slot.dyn_buf = aclCreateDataBuffer(slot.dyn_dev, 8)
                    if slot.dyn_buf == NULL:
                        raise AclError(500000, "aclCreateDataBuffer", "the runtime returned no data buffer")
                    check(aclmdlAddDatasetBuffer(slot.in_ds, slot.dyn_buf), "aclmdlAddDatasetBuffer")
                    dyn_index = aclmdlGetDatasetNumBuffers(slot.in_ds) - 1
                    check(aclmdlSetDynamicBatchSize(inst.model_id, slot.in_ds, dyn_index, self.batch_size), "aclmdlSetDynamicBatchSize")
                for j in range(self.n_out):
                    nbytes = self.out_specs[j].nbytes
                    _alloc_io(&slot.outs[j], nbytes)
                    slot.out_hosts[j] = slot.outs[j].host
                    check(aclmdlAddDatasetBuffer(slot.out_ds, slot.outs[j].buf), "aclmdlAddDatasetBuffer")
                for j in range(N_EVENTS):
                    check(aclrtCreateEvent(&slot.ev[j]), "aclrtCreateEvent")
                    slot.n_events = j + 1

    def _warm_up(self):
        """One batch of zeros through every instance: surfaces a runtime that refuses the
        execute call (e.g. aclmdlExecuteAsyncV2 on an SoC without it) here, not mid-run."""
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
        return self.n_instances

    @property
    def mode(self):
        return "overlap" if self.overlap else "serial"

    @property
    def closed(self):
        return not self.is_open

    # ------------------------------------------------------------ input handling

    cdef list _arrays(self, inputs, bint whole):
        """Validate and order inputs; returns C-contiguous arrays, one per model input."""
        if isinstance(inputs, dict):
            unknown = [k for k in inputs if k not in self.in_names]
            if unknown:
                raise ValueError(f"unknown input {unknown[0]!r}; the model's inputs are {', '.join(self.in_names)}")
            missing = [n for n in self.in_names if n not in inputs]
            if missing:
                raise ValueError(f"missing input {missing[0]!r}; the model's inputs are {', '.join(self.in_names)}")
            arrays = [inputs[n] for n in self.in_names]
        elif isinstance(inputs, (list, tuple)):
            arrays = list(inputs)
            if len(arrays) != self.n_in:
                raise ValueError(f"expected {self.n_in} input(s) ({', '.join(self.in_names)}), got {len(arrays)}")
        else:
            if self.n_in != 1:
                raise ValueError(f"the model has {self.n_in} inputs ({', '.join(self.in_names)}); pass a list or a dict, "
                                 f"got a single {type(inputs).__module__}.{type(inputs).__name__}")
            arrays = [inputs]
        rows = None
        out = []
        for spec, a in zip(self.in_specs, arrays):
            if not isinstance(a, np.ndarray):
                raise TypeError(f"input '{spec.name}': expected a numpy array, got {type(a).__name__}")
            sample = tuple(spec.shape[1:])
            if a.dtype != spec.dtype:
                raise TypeError(f"input '{spec.name}': expected dtype {spec.dtype}, got {a.dtype}")
            if a.ndim != len(spec.shape) or tuple(a.shape[1:]) != sample:
                want = "(N, " + ", ".join(map(str, sample)) + ")" if sample else "(N,)"
                raise ValueError(f"input '{spec.name}': expected shape {want}, got {tuple(a.shape)}")
            if not a.flags.c_contiguous:
                raise ValueError(f"input '{spec.name}': the array is not C-contiguous; pass numpy.ascontiguousarray(...)")
            n = a.shape[0]
            if n == 0:
                raise ValueError(f"input '{spec.name}': the batch is empty")
            if not whole and n > self.batch_size:
                raise ValueError(f"input '{spec.name}': a batch holds at most {self.batch_size} rows, got {n}")
            if rows is None:
                rows = n
            elif n != rows:
                raise ValueError(f"input '{spec.name}' has {n} rows but '{self.in_specs[0].name}' has {rows}")
            out.append(a)
        return out

    cdef int _check_open(self) except -1:
        if not self.is_open:
            raise ClosedError("Executor is closed")
        return 0

    cdef int _check_no_c(self) except -1:
        """Lock held. Python-side batches may not share the pipeline with C API batches."""
        if self.c_active:
            raise FastexecError(f"{self.c_active} batch(es) submitted through the C API are not released yet; "
                                "the executor's Python methods wait for the C side to release them")
        return 0

    # ------------------------------------------------------------ the pipeline (lock held)

    cdef inline Slot* _slot(self, int64_t k) noexcept nogil:
        return &self.insts[k % self.n_instances].slots[(k // self.n_instances) % self.depth]

    cdef aclError _enqueue(self, int64_t k) noexcept nogil:
        """Queue copy-in, execute and copy-out of the staged batch k. Serial mode: all on the
        instance's stream. Overlap mode: copy-in on its copy-in stream, execute on its stream
        after the copy-in's event, copy-out on its copy-out stream after the execute's event."""
        cdef Inst* inst = &self.insts[k % self.n_instances]
        cdef Slot* s = self._slot(k)
        cdef aclError rc
        cdef int i
        cdef double t0 = fx_now()
        rc = aclrtRecordEvent(s.ev[EV_H2D_START], inst.in_stream)
        if rc: return self._fail(rc, "aclrtRecordEvent")
        for i in range(self.n_in):
            rc = aclrtMemcpyAsync(s.ins[i].dev, s.ins[i].nbytes, s.ins[i].host, s.ins[i].nbytes, ACL_MEMCPY_HOST_TO_DEVICE, inst.in_stream)
            if rc: return self._fail(rc, "aclrtMemcpyAsync")
        rc = aclrtRecordEvent(s.ev[EV_H2D_END], inst.in_stream)
        if rc: return self._fail(rc, "aclrtRecordEvent")
        if self.overlap:   # (serially, the execute starts where the copy-in ended: no event of its own)
            rc = aclrtStreamWaitEvent(inst.stream, s.ev[EV_H2D_END])
            if rc: return self._fail(rc, "aclrtStreamWaitEvent")
            rc = aclrtRecordEvent(s.ev[EV_EXEC_START], inst.stream)
            if rc: return self._fail(rc, "aclrtRecordEvent")
        if self.use_v2:
            rc = aclmdlExecuteAsyncV2(inst.model_id, s.in_ds, s.out_ds, inst.stream, self.config.handle)
            if rc: return self._fail(rc, "aclmdlExecuteAsyncV2")
        else:
            rc = aclmdlExecuteAsync(inst.model_id, s.in_ds, s.out_ds, inst.stream)
            if rc: return self._fail(rc, "aclmdlExecuteAsync")
        rc = aclrtRecordEvent(s.ev[EV_EXEC_END], inst.stream)
        if rc: return self._fail(rc, "aclrtRecordEvent")
        if self.overlap:
            rc = aclrtStreamWaitEvent(inst.out_stream, s.ev[EV_EXEC_END])
            if rc: return self._fail(rc, "aclrtStreamWaitEvent")
            rc = aclrtRecordEvent(s.ev[EV_D2H_START], inst.out_stream)
            if rc: return self._fail(rc, "aclrtRecordEvent")
        for i in range(self.n_out):
            rc = aclrtMemcpyAsync(s.outs[i].host, s.outs[i].nbytes, s.outs[i].dev, s.outs[i].nbytes, ACL_MEMCPY_DEVICE_TO_HOST, inst.out_stream)
            if rc: return self._fail(rc, "aclrtMemcpyAsync")
        rc = aclrtRecordEvent(s.ev[EV_D2H_END], inst.out_stream)
        if rc: return self._fail(rc, "aclrtRecordEvent")
        s.t_submit = fx_now()
        s.t_enqueue = s.t_submit - t0
        if self.active_since == 0:
            self.active_since = s.t_submit
        return ACL_SUCCESS

    cdef inline aclError _fail(self, aclError rc, const char* api) noexcept nogil:
        self.err_api = api
        return rc

    cdef aclError _abandon(self, int64_t k) noexcept nogil:
        """After a failed enqueue: wait for whatever part of it was queued, so the slot is free again."""
        cdef Inst* inst = &self.insts[k % self.n_instances]
        aclrtSynchronizeStream(inst.in_stream)
        aclrtSynchronizeStream(inst.stream)
        aclrtSynchronizeStream(inst.out_stream)
        return ACL_SUCCESS

    cdef aclError _wait(self, Slot* s) noexcept nogil:
        """Wait for the batch in `s`; returns its first error (and the failing API in err_api)."""
        cdef aclError rc, first = ACL_SUCCESS
        cdef float ms[3]
        cdef int e
        # the start event of each stage: serially, a stage starts where the previous one ended
        cdef int start[3]
        start[0] = EV_H2D_START
        start[1] = EV_EXEC_START if self.overlap else EV_H2D_END
        start[2] = EV_D2H_START if self.overlap else EV_EXEC_END
        rc = aclrtSynchronizeEvent(s.ev[EV_D2H_END])
        if rc:
            first = self._fail(rc, "aclrtSynchronizeEvent")
        for e in range(EV_D2H_END):  # completed already: returns any task error captured by that record
            if not self.overlap and (e == EV_EXEC_START or e == EV_D2H_START):
                continue   # not recorded in serial mode
            rc = aclrtSynchronizeEvent(s.ev[e])
            if rc and not first:
                first = self._fail(rc, "aclrtSynchronizeEvent")
        if first:
            return first
        for e in range(3):   # (start, end) of h2d, execute, d2h
            if aclrtEventElapsedTime(&ms[e], s.ev[start[e]], s.ev[2 * e + 1]) != ACL_SUCCESS:
                ms[e] = 0
        _series_add(&self.series[SERIES_H2D], ms[0])
        _series_add(&self.series[SERIES_EXECUTE], ms[1])
        _series_add(&self.series[SERIES_D2H], ms[2])
        _series_add(&self.series[SERIES_E2E], (fx_now() - s.t_submit) * 1e3)
        _series_add(&self.series[SERIES_STAGING], s.t_stage * 1e3)
        _series_add(&self.series[SERIES_ENQUEUE], s.t_enqueue * 1e3)
        self.batches += 1
        return ACL_SUCCESS

    cdef void _stage(self, Slot* s, const char** src, uint64_t rows) noexcept nogil:
        """Copy `rows` rows of each input into the slot's pinned buffers, zero-padding the rest."""
        cdef double t0 = fx_now()
        cdef int i
        cdef size_t n
        for i in range(self.n_in):
            n = rows * (s.ins[i].nbytes // self.batch_size)
            memcpy(s.ins[i].host, src[i], n)
            if n < s.ins[i].nbytes:
                memset(<char*>s.ins[i].host + n, 0, s.ins[i].nbytes - n)
        s.rows = rows
        s.t_stage = fx_now() - t0

    cdef void _mark_idle_if_drained(self) noexcept nogil:
        if self.submitted == self.collected and self.active_since != 0:
            self.wall += fx_now() - self.active_since
            self.active_since = 0

    # ------------------------------------------------------------ streaming: submit / result

    cdef int _lock(self) except -1:
        if self.staging_owner == PyThread_get_thread_ident():
            raise FastexecError("this thread is inside an Executor.staged() block, which holds the executor; "
                                "leave the block before calling other methods of the executor")
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)
        return 0

    cdef void _unlock(self) noexcept:
        PyThread_release_lock(self.lock)

    cdef int _collect_one(self) except -1:
        """Lock held. Collect the oldest batch in flight into self.done (outputs or BatchError)."""
        self._check_no_c()
        cdef int64_t k = self.collected
        cdef Slot* s = self._slot(k)
        cdef aclError rc
        with nogil:
            rc = self._wait(s)
        if rc:
            self.done[k] = BatchError(k, _acl_error(rc, self.err_api))
        else:
            self.done[k] = self._outputs_of(s)
        self.collected += 1
        self._mark_idle_if_drained()
        return 0

    cdef list _outputs_of(self, Slot* s):
        cdef list outs = []
        cdef int i
        cdef cnp.ndarray arr
        for i in range(self.n_out):
            spec = self.out_specs[i]
            arr = np.empty((s.rows,) + tuple(spec.shape[1:]), dtype=spec.dtype)
            memcpy(cnp.PyArray_DATA(arr), s.outs[i].host, s.rows * (s.outs[i].nbytes // self.batch_size))
            outs.append(arr)
        return outs

    cdef int64_t _reserve(self) except -1:
        """Lock held. The next batch index, its slot freed (collecting the batch that used it)."""
        self._check_no_c()
        while self.submitted - self.collected >= self.depth * self.n_instances:
            self._collect_one()
        return self.submitted

    def submit(self, inputs):
        """Queue one batch (at most batch_size rows); returns a ticket for result()."""
        self._check_open()
        arrays = self._arrays(inputs, False)
        cdef const char* src[64]
        cdef int i
        cdef uint64_t rows = arrays[0].shape[0]
        cdef int64_t k
        cdef aclError rc
        for i in range(self.n_in):
            src[i] = <const char*>cnp.PyArray_DATA(<cnp.ndarray>arrays[i])
        self._lock()
        try:
            self._check_open()
            self.device.activate()
            k = self._reserve()
            with nogil:
                self._stage(self._slot(k), src, rows)
                rc = self._enqueue(k)
                if rc:
                    self._abandon(k)
                else:
                    self.submitted += 1
        finally:
            self._unlock()
        if rc:
            raise _acl_error(rc, self.err_api)
        return k

    def result(self, ticket):
        """The outputs of a submitted batch (a list, one array per output), waiting for it with
        the GIL released. Raises BatchError if its device work failed."""
        cdef int64_t k = ticket
        self._check_open()
        self._lock()
        try:
            self._check_open()
            if k in self.done:
                out = self.done.pop(k)
            elif self.collected <= k < self.submitted:
                while self.collected <= k:
                    self._collect_one()
                out = self.done.pop(k)
            else:
                raise ValueError(f"unknown ticket {ticket!r} (never submitted, or its result was already taken)")
        finally:
            self._unlock()
        if isinstance(out, BatchError):
            raise out
        return out

    def staged(self):
        """Zero-copy submission: ``with ex.staged() as batch:`` gives ``batch.inputs``, numpy
        views of a slot's pinned input buffers (batch_size rows each) to fill in place; leaving
        the block queues the batch (``batch.rows`` rows, all by default) and sets
        ``batch.ticket``. The views must not be used after the block, and the block holds the
        executor: other methods of it called inside raise FastexecError."""
        self._check_open()
        return StagedBatch(self)

    cdef int64_t _stage_begin(self) except -1:
        self._lock()
        try:
            self._check_open()
            return self._reserve()
        except BaseException:
            self._unlock()
            raise

    def imap(self, batches):
        """Ordered streaming: yields the outputs of each batch of `batches` (an iterable of
        inputs, each at most batch_size rows), keeping up to depth x instances in flight. On a
        failed batch raises BatchError whose ``completed`` holds the later batches that finished."""
        self._check_open()
        window = self.depth * self.n_instances
        pending = deque()
        base = None
        try:
            for batch in batches:
                t = self.submit(batch)
                if base is None:
                    base = t
                pending.append(t)
                if len(pending) >= window:
                    yield self._take(pending, base)
            while pending:
                yield self._take(pending, base)
        finally:
            # The consumer stopped early (or a batch failed): do not leave results behind.
            while pending and self.is_open:
                try:
                    self.result(pending.popleft())
                except BatchError:
                    pass

    def _take(self, pending, base):
        t = pending.popleft()
        try:
            return self.result(t)
        except BatchError as exc:
            completed = []
            for later in pending:
                try:
                    completed.append((later - base, self.result(later)))
                except BatchError as other:
                    completed.append((later - base, other))
            pending.clear()
            raise BatchError(t - base, exc.error, completed) from None

    # ------------------------------------------------------------ whole arrays: run

    def run(self, inputs, out=None):
        """Run whole arrays (split along axis 0 into batches; the last one padded, its outputs
        trimmed). The loop runs in C with the GIL released once. Returns one array per output.

        `out`: arrays to write the outputs into (a list in output order, or a dict by name),
        each C-contiguous with N rows; reusing them across calls saves allocating, and on
        machines where first-touch page faults are slow, a good deal of host time."""
        self._check_open()
        arrays = self._arrays(inputs, True)
        cdef uint64_t n = arrays[0].shape[0]
        cdef uint64_t B = self.batch_size
        cdef int64_t n_batches = (n + B - 1) // B
        outputs = self._out_arrays(out, n)
        cdef const char* src[64]
        cdef char* dst[64]
        cdef int i
        for i in range(self.n_in):
            src[i] = <const char*>cnp.PyArray_DATA(<cnp.ndarray>arrays[i])
        for i in range(self.n_out):
            dst[i] = <char*>cnp.PyArray_DATA(<cnp.ndarray>outputs[i])
        cdef int64_t failed = -1
        cdef aclError rc = ACL_SUCCESS, err = ACL_SUCCESS
        cdef const char* err_api = NULL
        cdef unsigned char* ok = <unsigned char*>calloc(n_batches, 1)   # per batch: its outputs are valid
        if ok == NULL:
            raise MemoryError()
        completed = []
        self._lock()
        try:
            self._check_open()
            self._check_no_c()
            self.device.activate()
            while self.collected < self.submitted:   # batches of submit() still in flight
                self._collect_one()
            with nogil:
                failed = self._run_loop(n_batches, n, src, dst, &err, ok)
            err_api = self.err_api
            if failed >= 0:
                completed = [b for b in range(n_batches) if ok[b]]
        finally:
            free(ok)
            self._unlock()
        if failed >= 0:
            raise BatchError(failed, _acl_error(err, err_api), completed, outputs)
        return outputs

    def _out_arrays(self, out, uint64_t n):
        if out is None:
            return [np.empty((n,) + tuple(s.shape[1:]), dtype=s.dtype) for s in self.out_specs]
        names = [s.name for s in self.out_specs]
        if isinstance(out, dict):
            unknown = [k for k in out if k not in names]
            if unknown or len(out) != len(names):
                raise ValueError(f"out: expected arrays for the outputs {', '.join(names)}, got {', '.join(map(str, out))}")
            out = [out[k] for k in names]
        elif isinstance(out, np.ndarray):
            out = [out]
        out = list(out)
        if len(out) != self.n_out:
            raise ValueError(f"out: expected {self.n_out} array(s) ({', '.join(names)}), got {len(out)}")
        for spec, a in zip(self.out_specs, out):
            want = (n,) + tuple(spec.shape[1:])
            if not isinstance(a, np.ndarray) or a.dtype != spec.dtype or a.shape != want:
                got = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
                raise ValueError(f"out '{spec.name}': expected a {spec.dtype} array of shape {want}, got {got}")
            if not a.flags.c_contiguous or not a.flags.writeable:
                raise ValueError(f"out '{spec.name}': the array must be C-contiguous and writable")
        return out

    cdef int64_t _run_loop(self, int64_t n_batches, uint64_t n, const char** src, char** dst, aclError* err,
                           unsigned char* ok) noexcept nogil:
        """The run() loop. Every batch is run and waited for, failed ones included; returns the index
        of the first failed batch (its error in `err`), or -1; ok[b] = 1 for each batch that worked."""
        cdef int64_t b, k, failed = -1
        cdef uint64_t B = self.batch_size, rows
        cdef const char* srcs[64]
        cdef int i
        cdef aclError rc
        b = 0
        while b < n_batches or self.collected < self.submitted:
            if b < n_batches and self.submitted - self.collected < self.depth * self.n_instances:
                k = self.submitted
                rows = B if (b + 1) * B <= n else n - b * B
                for i in range(self.n_in):
                    srcs[i] = src[i] + b * B * (self.insts[0].slots[0].ins[i].nbytes // B)
                self._stage(self._slot(k), srcs, rows)
                self._slot(k).run_index = b
                rc = self._enqueue(k)
                if rc:
                    self._abandon(k)
                    if failed < 0:
                        failed = b
                        err[0] = rc
                else:
                    self.submitted += 1
                b += 1
                continue
            # collect the oldest batch of this run
            k = self.collected
            rc = self._wait(self._slot(k))
            if rc:
                if failed < 0 or self._slot(k).run_index < failed:
                    failed = self._slot(k).run_index
                    err[0] = rc
            else:
                self._copy_out(self._slot(k), self._slot(k).run_index, dst)
                ok[self._slot(k).run_index] = 1
            self.collected += 1
            self._mark_idle_if_drained()
        return failed

    cdef void _copy_out(self, Slot* s, int64_t b, char** dst) noexcept nogil:
        cdef int i
        cdef size_t row
        for i in range(self.n_out):
            row = s.outs[i].nbytes // self.batch_size
            memcpy(dst[i] + b * self.batch_size * row, s.outs[i].host, s.rows * row)

    # ------------------------------------------------------------ stats, close

    def reset_stats(self):
        """Start the figures of stats() afresh (e.g. after a warm-up)."""
        self._check_open()
        self._lock()
        try:
            memset(self.series, 0, N_SERIES * sizeof(Series))
            self.batches = 0
            self.wall = 0
            self.active_since = fx_now() if self.submitted > self.collected else 0
        finally:
            self._unlock()

    def stats(self):
        """Figures since construction (the warm-up excluded): batches, wall_s (time with batches
        in flight), per-stage device times from events (h2d, execute, d2h), end-to-end batch
        latency, host staging and host enqueue time (each mean/p50/p90/p95/p99 in ms over the last 16384
        batches), throughput, and the serial bound (h2d + execute + d2h) with the fraction reached."""
        self._check_open()
        self._lock()
        try:
            wall = self.wall + (fx_now() - self.active_since if self.active_since else 0)
            out = {"batches": int(self.batches), "wall_s": wall, "batch_size": int(self.batch_size),
                   "depth": self.depth, "instances": self.n_instances, "mode": self.mode,
                   "execute_api": "aclmdlExecuteAsyncV2" if self.use_v2 else "aclmdlExecuteAsync"}
            for i in range(N_SERIES):
                out[_SERIES_NAMES[i]] = _series_summary(&self.series[i])
        finally:
            self._unlock()
        b = out["batches"]
        out["throughput"] = {"samples_per_s": b * self.batch_size / wall if wall > 0 else None,
                             "batches_per_s": b / wall if wall > 0 else None}
        out["bound"] = {"period_ms": None, "samples_per_s": None, "efficiency": None}
        if b:
            h, c, d = out["h2d"]["mean_ms"], out["execute"]["mean_ms"], out["d2h"]["mean_ms"]
            # The device has one engine of each kind, shared by the instances: a batch occupies
            # each engine for its stage, and in serial mode its stream for all three.
            period_ms = max(h, c, d) if self.overlap else max((h + c + d) / self.n_instances, h, c, d)
            out["bound"] = {"period_ms": period_ms,
                            "samples_per_s": self.batch_size * 1e3 / period_ms if period_ms > 0 else None,
                            "efficiency": (out["throughput"]["batches_per_s"] * period_ms / 1e3
                                           if period_ms > 0 and wall > 0 else None)}
        return out

    def close(self):
        """Wait for every queued batch and free everything (idempotent)."""
        cdef int i, s
        if self.lock == NULL:
            return
        self._lock()
        try:
            if self.is_open and self.c_active:
                raise FastexecError(f"{self.c_active} batch(es) submitted through the C API are not released; "
                                    "release them (or close the C handle) before closing the executor")
            self.is_open = False
            if self.insts != NULL:
                self.device.activate()
                for i in range(self.n_instances):
                    with nogil:
                        if self.insts[i].has_in_stream:
                            aclrtSynchronizeStream(self.insts[i].in_stream)
                        if self.insts[i].has_stream:
                            aclrtSynchronizeStream(self.insts[i].stream)
                        if self.insts[i].has_out_stream:
                            aclrtSynchronizeStream(self.insts[i].out_stream)
                    if self.insts[i].slots != NULL:
                        for s in range(self.depth):
                            _free_slot(&self.insts[i].slots[s], self.n_in, self.n_out)
                        free(self.insts[i].slots)
                    if self.insts[i].has_in_stream:
                        check(aclrtDestroyStream(self.insts[i].in_stream), "aclrtDestroyStream")
                    if self.insts[i].has_out_stream:
                        check(aclrtDestroyStream(self.insts[i].out_stream), "aclrtDestroyStream")
                    if self.insts[i].has_stream:
                        check(aclrtDestroyStream(self.insts[i].stream), "aclrtDestroyStream")
                free(self.insts)
                self.insts = NULL
            self.done = {}
        finally:
            self._unlock()
        models, self.models = self.models or [], []
        for m, owned in reversed(list(zip(models, self.owns_models or []))):   # model 0 may own the device
            if owned:
                m.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __dealloc__(self):
        if self.is_open:
            _warn_unclosed("Executor")
            if _can_free():
                try:
                    self.close()
                except BaseException:
                    pass
        if self.lock != NULL:
            PyThread_free_lock(self.lock)
        free(self.series)


cdef class StagedBatch:
    """A slot's pinned input buffers, reserved for the caller to fill (Executor.staged())."""

    cdef Executor ex
    cdef int64_t k
    cdef public object inputs
    cdef public object rows
    cdef readonly object ticket
    cdef bint entered

    def __init__(self, Executor ex):
        self.ex = ex
        self.ticket = None

    def __enter__(self):
        cdef Slot* s
        cdef cnp.npy_intp dims[33]
        self.k = self.ex._stage_begin()   # the lock stays held until __exit__
        self.ex.staging_owner = PyThread_get_thread_ident()
        self.entered = True
        s = self.ex._slot(self.k)
        views = []
        for i in range(self.ex.n_in):
            spec = self.ex.in_specs[i]
            shape = (self.ex.batch_size,) + tuple(spec.shape[1:])
            arr = np.frombuffer(<char[:s.ins[i].nbytes]><char*>s.ins[i].host, dtype=spec.dtype).reshape(shape)
            views.append(arr)
        self.inputs = views
        self.rows = self.ex.batch_size
        return self

    def __exit__(self, exc_type, exc, tb):
        cdef Slot* s
        cdef aclError rc = ACL_SUCCESS
        cdef uint64_t rows
        if not self.entered:
            return False
        self.entered = False
        self.inputs = None
        try:
            if exc_type is not None:
                return False
            rows = self.rows
            if rows < 1 or rows > self.ex.batch_size:
                raise ValueError(f"staged batch: rows must be 1..{self.ex.batch_size} (got {rows})")
            s = self.ex._slot(self.k)
            s.rows = rows
            s.t_stage = 0
            with nogil:
                rc = self.ex._enqueue(self.k)
                if rc:
                    self.ex._abandon(self.k)
                else:
                    self.ex.submitted += 1
            if rc:
                raise _acl_error(rc, self.ex.err_api)
            self.ticket = self.k
        finally:
            self.ex.staging_owner = 0
            self.ex._unlock()
        return False


cdef int _alloc_io(IOBuf* io, size_t nbytes) except -1:
    io.nbytes = nbytes
    check(aclrtMalloc(&io.dev, nbytes, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
    check(aclrtMallocHost(&io.host, nbytes), "aclrtMallocHost")
    io.buf = aclCreateDataBuffer(io.dev, nbytes)
    if io.buf == NULL:
        raise AclError(500000, "aclCreateDataBuffer", "the runtime returned no data buffer")
    return 0


cdef void _free_io(IOBuf* io) noexcept:
    if io.buf != NULL:
        aclDestroyDataBuffer(io.buf)
    if io.dev != NULL:
        aclrtFree(io.dev)
    if io.host != NULL:
        aclrtFreeHost(io.host)


cdef void _free_slot(Slot* s, int n_in, int n_out) noexcept:
    cdef int j
    for j in range(s.n_events):
        aclrtDestroyEvent(s.ev[j])
    if s.in_ds != NULL:
        aclmdlDestroyDataset(s.in_ds)
    if s.out_ds != NULL:
        aclmdlDestroyDataset(s.out_ds)
    if s.ins != NULL:
        for j in range(n_in):
            _free_io(&s.ins[j])
        free(s.ins)
    if s.outs != NULL:
        for j in range(n_out):
            _free_io(&s.outs[j])
        free(s.outs)
    free(s.in_hosts)
    free(s.out_hosts)
    if s.dyn_buf != NULL:
        aclDestroyDataBuffer(s.dyn_buf)
    if s.dyn_dev != NULL:
        aclrtFree(s.dyn_dev)


def naive_run(Model model not None, inputs):
    """The loop fastexec is measured against: how ACLLite and pyACL users run a model. Per
    batch, holding the GIL throughout: allocate device memory, build datasets, copy in with a
    synchronous aclrtMemcpy from pageable memory, aclmdlExecute, copy out, free everything.
    `inputs`: one C-contiguous array per model input with N rows; returns one array per output.
    The model must not be used by an Executor (ACL forbids mixing sync and async execution)."""
    cdef Device dev = model.device
    dev.activate()
    specs_in = [s for s in model.inputs]
    specs_out = [s for s in model.outputs]
    cdef uint64_t B = model.batch_size
    arrays = [np.ascontiguousarray(a) for a in inputs]
    n = arrays[0].shape[0]
    outputs = [np.empty((n,) + tuple(s.shape[1:]), dtype=s.dtype) for s in specs_out]
    cdef void* p
    cdef aclmdlDataset* ds_in
    cdef aclmdlDataset* ds_out
    cdef aclDataBuffer* buf
    cdef size_t nbytes, rows_bytes
    cdef cnp.ndarray host
    for start in range(0, n, B):
        rows = min(B, n - start)
        ds_in = aclmdlCreateDataset()
        ds_out = aclmdlCreateDataset()
        dev_in, dev_out = [], []
        try:
            for spec, a in zip(specs_in, arrays):
                nbytes = spec.nbytes
                check(aclrtMalloc(&p, nbytes, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
                dev_in.append(<size_t>p)
                host = np.zeros((B,) + tuple(spec.shape[1:]), dtype=spec.dtype)
                host[:rows] = a[start:start + rows]
                check(aclrtMemcpy(p, nbytes, cnp.PyArray_DATA(host), nbytes, ACL_MEMCPY_HOST_TO_DEVICE), "aclrtMemcpy")
                buf = aclCreateDataBuffer(p, nbytes)
                check(aclmdlAddDatasetBuffer(ds_in, buf), "aclmdlAddDatasetBuffer")
            if model.dynamic_input_index >= 0:   # the dynamic-batch tensor, set per call as the samples do
                check(aclrtMalloc(&p, 8, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
                dev_in.append(<size_t>p)
                buf = aclCreateDataBuffer(p, 8)
                check(aclmdlAddDatasetBuffer(ds_in, buf), "aclmdlAddDatasetBuffer")
                check(aclmdlSetDynamicBatchSize(model.model_id, ds_in, aclmdlGetDatasetNumBuffers(ds_in) - 1, B),
                      "aclmdlSetDynamicBatchSize")
            for spec in specs_out:
                nbytes = spec.nbytes
                check(aclrtMalloc(&p, nbytes, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
                dev_out.append(<size_t>p)
                buf = aclCreateDataBuffer(p, nbytes)
                check(aclmdlAddDatasetBuffer(ds_out, buf), "aclmdlAddDatasetBuffer")
            check(aclmdlExecute(model.model_id, ds_in, ds_out), "aclmdlExecute")
            for i, spec in enumerate(specs_out):
                host = np.empty((B,) + tuple(spec.shape[1:]), dtype=spec.dtype)
                check(aclrtMemcpy(cnp.PyArray_DATA(host), spec.nbytes, <void*><size_t>dev_out[i], spec.nbytes,
                                  ACL_MEMCPY_DEVICE_TO_HOST), "aclrtMemcpy")
                outputs[i][start:start + rows] = host[:rows]
        finally:
            for ds in (<size_t>ds_in, <size_t>ds_out):
                for j in range(aclmdlGetDatasetNumBuffers(<aclmdlDataset*>ds)):
                    aclDestroyDataBuffer(aclmdlGetDatasetBuffer(<aclmdlDataset*>ds, j))
                aclmdlDestroyDataset(<aclmdlDataset*>ds)
            for q in dev_in + dev_out:
                aclrtFree(<void*><size_t>q)
    return outputs
