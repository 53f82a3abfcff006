# The pipeline's trace: what each batch did when, on the device and on the host. Included by
# fastexec/_core.pyx; the C state (Trace, TraceRecord, TraceSpan) is in fastexec/_pipeline.pxd.
#
# Every front end feeds it through the core (pipeline.pxi): pl_stage, pl_enqueue, pl_wait and
# pl_release_ticket note their host times in the slot; when a batch completes, pl_wait reads the
# device clock of the events the batch recorded anyway (aclrtEventGetTimestamp, the only ACL
# calls tracing adds) and pushes one record into a ring of the last `capacity` batches. With
# tracing off nothing is read and nothing is pushed.
#
# One clock: host times are CLOCK_MONOTONIC; device times are the device's clock in us. At start
# the device clock is placed on the host clock: an event is recorded on an idle stream and
# synchronised between two host clock reads, five times; the tightest bracket gives the offset
# (its half width is the uncertainty). The export (fastexec/tracing.py) raises the offset, when
# needed, so that no batch's copy-in starts before the host call that queued it began.

from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset

cdef extern from *:
    """
    #include <sys/syscall.h>
    #include <unistd.h>
    /* The calling thread's kernel id (threading.get_native_id()), read once per thread. */
    static long fx_gettid(void)
    {
        static __thread long tid;
        if (!tid) tid = (long)syscall(SYS_gettid);
        return tid;
    }
    """
    long fx_gettid() nogil

HOST_SPAN_NAMES = ("stage", "enqueue", "wait", "collect")
PIPELINE_SPAN_NAMES = ("drain", "stop drain", "gear drain")


cdef inline bint trace_on(Pipeline* p) noexcept nogil:
    return p.trace != NULL and p.trace.on


cdef void trace_device_times(Pipeline* p, Slot* s, uint64_t* us) noexcept nogil:
    """Outside the mutex, the batch complete: each stage's start and end on the device clock
    (us; 0 where the runtime gave none). A stage on the stream of the stage before it starts
    where that one ended, as in _record_times."""
    cdef int stage
    for stage in range(N_STAGES):
        if stage > 0 and p.plan.stream_of[stage] == p.plan.stream_of[stage - 1]:
            us[2 * stage] = us[2 * stage - 1]
        elif aclrtEventGetTimestamp(s.ev[2 * stage], &us[2 * stage]) != ACL_SUCCESS:
            us[2 * stage] = 0
        if aclrtEventGetTimestamp(s.ev[2 * stage + 1], &us[2 * stage + 1]) != ACL_SUCCESS:
            us[2 * stage + 1] = 0


cdef void trace_push(Pipeline* p, Slot* s, bint failed, const uint64_t* dev_us, double wait0,
                     double wait1) noexcept nogil:
    """Mutex held, tracing on: the record of the batch in s, which just finished (dev_us NULL:
    no device times)."""
    cdef Trace* t = p.trace
    cdef TraceRecord* r = &t.recs[t.head % t.capacity]
    cdef int i
    r.ticket = s.ticket
    r.instance = <int>(s.ticket % p.n_inst)
    r.slot = <int>((s.ticket // p.n_inst) % p.depth)
    r.rows = s.rows
    r.failed = failed
    r.submit_tid = s.submit_tid
    r.collect_tid = fx_gettid()
    if s.t_stage0 != 0:
        r.host[2 * SPAN_STAGE] = s.t_stage0
        r.host[2 * SPAN_STAGE + 1] = s.t_stage1
    else:                               # staged() / C API: the caller wrote the inputs in place
        r.host[2 * SPAN_STAGE] = s.t_reserved
        r.host[2 * SPAN_STAGE + 1] = s.t_enqueue0
    r.host[2 * SPAN_ENQUEUE] = s.t_enqueue0
    r.host[2 * SPAN_ENQUEUE + 1] = s.t_queued
    r.host[2 * SPAN_WAIT] = wait0
    r.host[2 * SPAN_WAIT + 1] = wait1
    r.host[2 * SPAN_COLLECT] = 0
    r.host[2 * SPAN_COLLECT + 1] = 0
    for i in range(2 * N_STAGES):
        r.dev_us[i] = dev_us[i] if dev_us != NULL else 0
    s.trace_at = t.head
    t.head += 1


cdef void trace_collected(Pipeline* p, Slot* s) noexcept nogil:
    """Mutex held: the consumer gives back the slot it held since s.t_held."""
    cdef Trace* t = p.trace
    cdef TraceRecord* r
    if not trace_on(p) or s.trace_at < 0 or s.trace_at < t.head - t.capacity or s.t_held == 0:
        return
    r = &t.recs[s.trace_at % t.capacity]
    if r.ticket != s.ticket:
        return
    r.host[2 * SPAN_COLLECT] = s.t_held
    r.host[2 * SPAN_COLLECT + 1] = fx_now()
    r.collect_tid = fx_gettid()
    s.trace_at = -1


cdef void trace_span(Pipeline* p, int kind, double t0, double t1) noexcept nogil:
    """Mutex held: a pipeline-level host span (a drain), kept in a ring of TRACE_SPANS."""
    cdef TraceSpan* sp
    if not trace_on(p):
        return
    sp = &p.trace.spans[p.trace.span_head % TRACE_SPANS]
    sp.kind = kind
    sp.tid = fx_gettid()
    sp.t0 = t0
    sp.t1 = t1
    p.trace.span_head += 1


cdef tuple _clock_offset(Pipeline* p):
    """(offset_s, uncertainty_s) placing the device clock on the host clock: the tightest of five
    brackets around a record on a stream of its own, synchronised at once."""
    cdef aclrtStream st = NULL
    cdef aclrtEvent ev = NULL
    cdef uint64_t us = 0
    cdef double t0, t1, best_err = -1, best = 0
    cdef int i
    cdef aclError rc
    check(pl_activate(&p.insts[0]), "aclrtSetCurrentContext")   # the first device's clock
    check(aclrtCreateStream(&st), "aclrtCreateStream")
    try:
        check(aclrtCreateEvent(&ev), "aclrtCreateEvent")
        for i in range(5):
            with nogil:
                t0 = fx_now()
                rc = aclrtRecordEvent(ev, st)
                if rc == ACL_SUCCESS:
                    rc = aclrtSynchronizeEvent(ev)
                t1 = fx_now()
            check(rc, "aclrtRecordEvent")
            rc = aclrtEventGetTimestamp(ev, &us)
            if rc == FX_ACL_SYMBOL_MISSING:
                raise AclFunctionNotFoundError("aclrtEventGetTimestamp", _library_info.get("library", "the ACL library"))
            check(rc, "aclrtEventGetTimestamp")
            if best_err < 0 or (t1 - t0) / 2 < best_err:
                best_err = (t1 - t0) / 2
                best = (t0 + t1) / 2 - us * 1e-6
    finally:
        if ev != NULL:
            aclrtDestroyEvent(ev)
        aclrtDestroyStream(st)
    return best, best_err


cdef int trace_start(Pipeline* p, int capacity) except -1:
    """Start (or restart) tracing into an empty ring of `capacity` batches."""
    offset, err = _clock_offset(p)
    cdef Trace* fresh = <Trace*>calloc(1, sizeof(Trace))
    cdef Trace* old
    if fresh == NULL:
        raise MemoryError()
    fresh.recs = <TraceRecord*>calloc(capacity, sizeof(TraceRecord))
    if fresh.recs == NULL:
        free(fresh)
        raise MemoryError(f"trace: no memory for {capacity} batch records")
    fresh.capacity = capacity
    fresh.offset_s = offset
    fresh.offset_err_s = err
    fresh.origin = fx_now()
    fresh.on = True
    with nogil:
        pthread_mutex_lock(&p.mu)
        old = p.trace
        p.trace = fresh
        pthread_mutex_unlock(&p.mu)
    trace_free(old)
    return 0


cdef void trace_stop(Pipeline* p) noexcept nogil:
    """Stop recording; what was kept stays readable."""
    pthread_mutex_lock(&p.mu)
    if p.trace != NULL:
        p.trace.on = False
    pthread_mutex_unlock(&p.mu)


cdef void trace_free(Trace* t) noexcept nogil:
    if t != NULL:
        free(t.recs)
        free(t)


cdef object trace_export(Pipeline* p, bint clear):
    """The kept records (oldest first) as a dict of numpy arrays, plus the pipeline-level spans
    and the clock facts; `clear`: they are not returned again."""
    cdef Trace* t
    cdef int64_t first, n = 0, i, j, sfirst, sn = 0
    cdef int rc
    cdef TraceRecord* r
    cdef TraceRecord* copy = NULL
    cdef TraceSpan spans[TRACE_SPANS]
    cdef int64_t dropped = 0
    cdef double origin, offset, err
    cdef bint on
    cdef int cap = 0
    cdef double[:, ::1] hv
    cdef double[:, ::1] dv
    cdef int64_t[:, ::1] iv
    with nogil:
        pthread_mutex_lock(&p.mu)
        t = p.trace
        n = 0
        if t != NULL:
            first = t.head - t.capacity if t.head - t.capacity > t.tail else t.tail
            dropped = first - t.tail
            n = t.head - first
            copy = <TraceRecord*>calloc(n if n > 0 else 1, sizeof(TraceRecord))
            if copy != NULL:
                for i in range(n):
                    memcpy(&copy[i], &t.recs[(first + i) % t.capacity], sizeof(TraceRecord))
                sfirst = t.span_head - TRACE_SPANS if t.span_head - TRACE_SPANS > t.span_tail else t.span_tail
                sn = t.span_head - sfirst
                for i in range(sn):
                    spans[i] = t.spans[(sfirst + i) % TRACE_SPANS]
                if clear:
                    t.tail = t.head
                    t.span_tail = t.span_head
            origin = t.origin
            offset = t.offset_s
            err = t.offset_err_s
            on = t.on
            cap = t.capacity
        pthread_mutex_unlock(&p.mu)
    if t == NULL:
        return None
    if copy == NULL:
        raise MemoryError()
    try:
        host = np.zeros((n, 2 * N_SPANS), np.float64)
        dev = np.zeros((n, 2 * N_STAGES), np.float64)
        ints = np.zeros((n, 7), np.int64)
        hv = host
        dv = dev
        iv = ints
        for i in range(n):
            r = &copy[i]
            iv[i, 0] = r.ticket
            iv[i, 1] = r.instance
            iv[i, 2] = r.slot
            iv[i, 3] = r.rows
            iv[i, 4] = r.failed
            iv[i, 5] = r.submit_tid
            iv[i, 6] = r.collect_tid
            for j in range(2 * N_SPANS):
                hv[i, j] = r.host[j]
            for j in range(2 * N_STAGES):
                dv[i, j] = <double>r.dev_us[j]
    finally:
        free(copy)
    return {
        "ticket": ints[:, 0].copy(), "instance": ints[:, 1].copy(), "slot": ints[:, 2].copy(),
        "rows": ints[:, 3].copy(), "failed": ints[:, 4].astype(bool), "submit_thread": ints[:, 5].copy(),
        "collect_thread": ints[:, 6].copy(), "host_s": host, "device_us": dev,
        "spans": [(PIPELINE_SPAN_NAMES[spans[i].kind], spans[i].tid, spans[i].t0, spans[i].t1) for i in range(sn)],
        "dropped": int(dropped), "origin_s": origin, "offset_s": offset, "offset_uncertainty_s": err,
        "recording": bool(on), "capacity": cap,
    }
