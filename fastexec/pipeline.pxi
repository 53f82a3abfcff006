# The pipeline core: one mechanism under every front end. Included by fastexec/_core.pyx; its
# C state is declared in fastexec/_pipeline.pxd.
#
# Every batch goes through the same four calls, whoever submits it (run, imap, submit/result,
# staged, the C API):
#   pl_reserve  the next ticket and its slot (FREE -> RESERVED), waiting for the slot if needed;
#   pl_stage    copy its rows into the slot's pinned inputs (or the caller wrote them in place);
#               a dynamic HW / dims / shape batch gives its gear or shape first (pl_shape);
#   pl_enqueue  queue it by the stream plan (RESERVED -> QUEUED);
#   pl_wait     wait for it and hold the slot (QUEUED -> DONE | FAILED -> HELD), then
#   pl_release_ticket  give the slot back (HELD -> FREE, or RETIRING while the device may still use it).
#
# Locking: `mu` guards only the C state here. It is held for short, GIL-free sections; never
# while Python runs, while the GIL is being taken, or while the device is waited for. Waits are
# sliced: between slices the caller's deadline, the batch's exec-config deadline and (for
# Python callers) pending signals are checked, the signals with the mutex released.

from libc.stdint cimport int32_t, int64_t, intptr_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.stdio cimport snprintf
from libc.string cimport memcpy, memset
from cpython.ref cimport PyObject, Py_XDECREF, Py_INCREF
from cpython.exc cimport PyErr_CheckSignals

cdef extern from *:
    """
    #include <pthread.h>
    #include <stdio.h>
    #include <string.h>
    #include <time.h>
    #include <unistd.h>

    static double fx_now(void)
    {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }

    /* A mutex and a condition variable timed on CLOCK_MONOTONIC. 0 on success. */
    static int fx_sync_init(pthread_mutex_t *mu, pthread_cond_t *cv)
    {
        pthread_condattr_t attr;
        if (pthread_mutex_init(mu, NULL)) return -1;
        if (pthread_condattr_init(&attr)) { pthread_mutex_destroy(mu); return -1; }
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        int rc = pthread_cond_init(cv, &attr);
        pthread_condattr_destroy(&attr);
        if (rc) pthread_mutex_destroy(mu);
        return rc ? -1 : 0;
    }

    static void fx_sync_destroy(pthread_mutex_t *mu, pthread_cond_t *cv)
    {
        pthread_cond_destroy(cv);
        pthread_mutex_destroy(mu);
    }

    static void fx_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, double until)
    {
        struct timespec ts;
        ts.tv_sec = (time_t)until;
        ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec += 1; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(cv, mu, &ts);
    }

    static void fx_sleep(double seconds)
    {
        struct timespec ts;
        ts.tv_sec = (time_t)seconds;
        ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
        nanosleep(&ts, NULL);
    }

    static unsigned long fx_thread_id(void) { return (unsigned long)pthread_self(); }
    static long fx_pid(void) { return (long)getpid(); }

    static void fx_status_set(char *dst, size_t n, const char *text)
    {
        snprintf(dst, n, "%s", text ? text : "");
    }
    """
    double fx_now() nogil
    int fx_sync_init(pthread_mutex_t* mu, pthread_cond_t* cv) nogil
    void fx_sync_destroy(pthread_mutex_t* mu, pthread_cond_t* cv) nogil
    void fx_cond_wait_until(pthread_cond_t* cv, pthread_mutex_t* mu, double until) nogil
    void fx_sleep(double seconds) nogil
    unsigned long fx_thread_id() nogil
    long fx_pid() nogil
    void fx_status_set(char* dst, size_t n, const char* text) nogil

cdef extern from "<pthread.h>" nogil:
    int pthread_mutex_lock(pthread_mutex_t* mu)
    int pthread_mutex_unlock(pthread_mutex_t* mu)
    int pthread_cond_broadcast(pthread_cond_t* cv)

cdef enum:
    SLICE_MS = 50                        # longest uninterrupted wait
    FX_STREAM_SYNC_TIMEOUT = 507046      # ACL_ERROR_RT_STREAM_SYNC_TIMEOUT
    FX_EVENT_SYNC_TIMEOUT = 507047       # ACL_ERROR_RT_EVENT_SYNC_TIMEOUT
    FX_GE_FAILURE = 500002               # ACL_ERROR_GE_FAILURE (a dynamic shape the runtime did not describe)

DEF SLICE_S = 0.05


# ---------------------------------------------------------------- waiting

cdef inline void waiter_init(Waiter* w, double timeout, bint signals) noexcept nogil:
    """`timeout` in seconds from now; None-like values (< 0) mean no deadline."""
    w.deadline = fx_now() + timeout if timeout >= 0 else 0
    w.signals = signals
    w.next_check = 0
    w.exc = NULL


cdef object waiter_exception(Waiter* w):
    """The exception a signal handler raised during the wait (and forget it)."""
    cdef object exc = <object>w.exc
    Py_XDECREF(w.exc)
    w.exc = NULL
    return exc


cdef bint _interrupted(Waiter* w) noexcept nogil:
    """Run pending signal handlers (at most once a slice); True if one raised. Never called
    with the mutex held."""
    cdef double now
    if not w.signals:
        return False
    now = fx_now()
    if now < w.next_check:
        return False
    w.next_check = now + SLICE_S
    with gil:
        try:
            PyErr_CheckSignals()
        except BaseException as exc:
            Py_INCREF(exc)
            Py_XDECREF(w.exc)
            w.exc = <PyObject*>exc
            return True
    return False


cdef int _wait_handle(Pipeline* p, void* handle, bint is_event, double deadline, Waiter* w,
                      aclError* rc) noexcept nogil:
    """Wait for an event or a stream until `deadline` (0: none): PL_OK with the synchronisation's
    result in rc, PL_EXPIRED, or PL_INTERRUPTED. Sliced with the *WithTimeout calls, or, where
    the library has none, a query loop."""
    cdef double left, until
    cdef int32_t ms
    cdef aclError r
    cdef aclrtEventRecordedStatus est
    cdef aclrtStreamStatus sst
    cdef double nap
    if deadline == 0 and not w.signals:
        rc[0] = aclrtSynchronizeEvent(handle) if is_event else aclrtSynchronizeStream(handle)
        return PL_OK
    while True:
        ms = SLICE_MS
        if deadline != 0:
            left = deadline - fx_now()
            if left <= 0:
                ms = 0              # one last look
            elif left * 1000 < ms:
                ms = <int32_t>(left * 1000) + 1
        if p.sliced_sync:
            r = aclrtSynchronizeEventWithTimeout(handle, ms) if is_event else aclrtSynchronizeStreamWithTimeout(handle, ms)
            if r != FX_EVENT_SYNC_TIMEOUT and r != FX_STREAM_SYNC_TIMEOUT:
                rc[0] = r
                return PL_OK
        else:
            until = fx_now() + ms * 1e-3
            nap = 20e-6
            while True:
                if is_event:
                    r = aclrtQueryEventStatus(handle, &est)
                    if r or est == ACL_EVENT_RECORDED_STATUS_COMPLETE:
                        rc[0] = r if r else aclrtSynchronizeEvent(handle)
                        return PL_OK
                else:
                    r = aclrtStreamQuery(handle, &sst)
                    if r or sst == ACL_STREAM_STATUS_COMPLETE:
                        rc[0] = r if r else aclrtSynchronizeStream(handle)
                        return PL_OK
                if fx_now() >= until:
                    break
                fx_sleep(nap)
                nap = min(nap * 2, 1e-3)
        if deadline != 0 and fx_now() >= deadline:
            return PL_EXPIRED
        if _interrupted(w):
            return PL_INTERRUPTED


cdef int _wait_device(Pipeline* p, Slot* s, int64_t k, double deadline, Waiter* w, aclError* rc) noexcept nogil:
    """Wait until the device is done with slot s (its batch k): its last event, or, for a batch
    that failed half-queued, every stream of its instance."""
    cdef Inst* inst = &p.insts[k % p.n_inst]
    cdef int i, r
    if s.recorded:
        return _wait_handle(p, s.ev[EV_D2H_END], True, deadline, w, rc)
    rc[0] = pl_activate(inst)
    if rc[0]:
        return PL_OK
    for i in range(inst.n_streams):
        r = _wait_handle(p, inst.streams[i], False, deadline, w, rc)
        if r:
            return r
    rc[0] = ACL_SUCCESS
    return PL_OK


cdef int _cond_wait(Pipeline* p, Waiter* w) noexcept nogil:
    """Mutex held: wait a slice for a slot to change. PL_OK, PL_EXPIRED or PL_INTERRUPTED,
    the mutex held again on return (signal handlers run with it released)."""
    cdef double now = fx_now(), until = now + SLICE_S
    cdef bint hit
    if w.deadline != 0:
        if now >= w.deadline:
            return PL_EXPIRED
        until = min(until, w.deadline)
    fx_cond_wait_until(&p.changed, &p.mu, until)
    if w.signals and fx_now() >= w.next_check:
        pthread_mutex_unlock(&p.mu)
        hit = _interrupted(w)
        pthread_mutex_lock(&p.mu)
        if hit:
            return PL_INTERRUPTED
    return PL_OK


# ---------------------------------------------------------------- status records

cdef void status_set(Status* st, aclError code, const char* api, const char* message) noexcept nogil:
    """Record a failure; `message` NULL: the runtime's message, read on this thread now."""
    st.code = code
    st.api = api
    st.behind = -1
    fx_status_set(st.message, STATUS_MESSAGE, message if message != NULL else aclGetRecentErrMsg())


cdef inline void status_clear(Status* st) noexcept nogil:
    st.code = ACL_SUCCESS
    st.api = NULL
    st.behind = -1
    st.message[0] = 0


cdef object status_error(const Status* st):
    """The exception a status record stands for."""
    name = st.api.decode() if st.api != NULL else "ACL"
    if st.code == FX_ACL_SYMBOL_MISSING:
        return AclFunctionNotFoundError(name, _library_info.get("library", "the ACL library"))
    return error_for(st.code, name, st.message.decode(errors="replace").strip())


# ---------------------------------------------------------------- slots

cdef inline Slot* pl_slot(Pipeline* p, int64_t k) noexcept nogil:
    return &p.insts[k % p.n_inst].slots[(k // p.n_inst) % p.depth]


cdef inline void _changed(Pipeline* p) noexcept nogil:
    pthread_cond_broadcast(&p.changed)


cdef inline aclError pl_activate(Inst* inst) noexcept nogil:
    """Make the context of the instance's device current on this thread (a compare when it
    already is). Every call that needs a context (queueing, stream waits and queries, freeing)
    makes its instance's current first: consecutive batches run on different devices."""
    cdef aclError rc
    if fx_current_context != inst.ctx:
        rc = aclrtSetCurrentContext(inst.ctx)
        if rc:
            return rc
        fx_current_context_set(inst.ctx)
    return ACL_SUCCESS


cdef void _device_started(Pipeline* p, double now) noexcept nogil:
    if p.in_flight == 0:
        p.stats.active_since = now
    p.in_flight += 1


cdef void _device_stopped(Pipeline* p) noexcept nogil:
    p.in_flight -= 1
    if p.in_flight == 0 and p.stats.active_since != 0:
        p.stats.wall += fx_now() - p.stats.active_since
        p.stats.active_since = 0


cdef int _retire(Pipeline* p, Slot* s, int64_t k, Waiter* w) noexcept nogil:
    """Mutex held: free a slot nobody will take, once the device is done with it."""
    cdef aclError rc
    cdef int r = PL_OK
    if s.state == SLOT_QUEUED or s.device_busy:
        s.waiters += 1
        pthread_mutex_unlock(&p.mu)
        r = _wait_device(p, s, k, w.deadline, w, &rc)
        pthread_mutex_lock(&p.mu)
        s.waiters -= 1
        if r:
            return r
        if s.state == SLOT_QUEUED:
            _device_stopped(p)
    s.state = SLOT_FREE
    s.device_busy = False
    s.owner = OWNER_NOBODY
    _changed(p)
    return PL_OK


cdef bint _retirable(Slot* s) noexcept nogil:
    if s.waiters:
        return False
    if s.state == SLOT_RETIRING:
        return True
    return s.owner == OWNER_NOBODY and (s.state == SLOT_QUEUED or s.state == SLOT_DONE or s.state == SLOT_FAILED)


cdef bint _device_done(Slot* s, int64_t k, Pipeline* p) noexcept nogil:
    """Without waiting: whether the device is done with slot s."""
    cdef aclrtEventRecordedStatus est
    cdef aclrtStreamStatus sst
    cdef Inst* inst
    cdef int i
    if s.state != SLOT_QUEUED and not s.device_busy:
        return True
    if s.recorded:
        return aclrtQueryEventStatus(s.ev[EV_D2H_END], &est) == ACL_SUCCESS and est == ACL_EVENT_RECORDED_STATUS_COMPLETE
    inst = &p.insts[k % p.n_inst]
    if pl_activate(inst):
        return False
    for i in range(inst.n_streams):
        if aclrtStreamQuery(inst.streams[i], &sst) != ACL_SUCCESS or sst != ACL_STREAM_STATUS_COMPLETE:
            return False
    return True


cdef int pl_reserve(Pipeline* p, intptr_t owner, bint try_only, Waiter* w, int64_t* ticket,
                    int64_t* victim) noexcept nogil:
    """Take the next ticket and its slot (RESERVED, owned by `owner`). PL_OK; PL_BUSY (try_only
    and the slot is not free); PL_COLLECT (the slot holds the unfinished or untaken Python batch
    *victim: move it out, then call again); PL_CLOSED, PL_EXPIRED, PL_INTERRUPTED."""
    cdef Slot* s
    cdef int64_t k
    cdef int r
    pthread_mutex_lock(&p.mu)
    while True:
        if p.closing or p.insts == NULL:
            r = PL_CLOSED
            break
        k = p.next_ticket
        s = pl_slot(p, k)
        if s.state == SLOT_RESERVED and s.reserver == fx_thread_id() and not try_only:
            r = PL_BUSY               # held by the caller's own staged() block: it would wait for itself
            break
        if s.state == SLOT_FREE:
            s.state = SLOT_RESERVED
            s.ticket = k
            s.owner = owner
            s.reserver = fx_thread_id()
            s.rows = 0
            s.gear = -1
            s.t_stage = 0
            s.t_stage0 = 0
            s.t_held = 0
            s.trace_at = -1
            s.t_reserved = fx_now() if trace_on(p) else 0
            s.aipp_next = NULL
            status_clear(&s.status)
            p.next_ticket = k + 1
            ticket[0] = k
            r = PL_OK
            break
        if _retirable(s):
            if try_only and not _device_done(s, s.ticket, p):
                r = PL_BUSY
                break
            r = _retire(p, s, s.ticket, w)
            if r:
                break
            continue
        if try_only:
            r = PL_BUSY
            break
        if s.owner == OWNER_PYTHON and s.waiters == 0 and (
                s.state == SLOT_QUEUED or s.state == SLOT_DONE or s.state == SLOT_FAILED):
            victim[0] = s.ticket
            r = PL_COLLECT
            break
        r = _cond_wait(p, w)      # reserved, held, or privately owned: its owner gives it back
        if r:
            break
    pthread_mutex_unlock(&p.mu)
    return r


cdef void pl_unreserve(Pipeline* p, Slot* s) noexcept nogil:
    """Give back a reserved slot unqueued (its ticket is then unknown)."""
    pthread_mutex_lock(&p.mu)
    _disown_locked(s)
    _changed(p)
    pthread_mutex_unlock(&p.mu)


cdef inline int pl_batch_gear(Pipeline* p, uint64_t rows) noexcept nogil:
    """Dynamic batch: the smallest gear holding `rows` (rows <= the largest gear)."""
    cdef int g = 0
    while g < p.n_gears - 1 and p.gear_rows[g] < rows:
        g += 1
    return g


cdef void pl_stage(Pipeline* p, Slot* s, const char** src, uint64_t rows) noexcept nogil:
    """Copy `rows` rows of each input into the reserved slot's pinned buffers, zero-padding the
    rest of the batch (of its gear, for a dynamic batch). A dynamic HW / dims / shape batch
    copies the bytes of the shape pl_shape gave it."""
    cdef double t0 = fx_now()
    cdef int i
    cdef size_t n, pad
    cdef uint64_t gear_rows = p.gear_rows[pl_batch_gear(p, rows)] if p.dyn_kind == DYN_BATCH else 0
    for i in range(p.n_in):
        if p.dyn_kind == DYN_NONE or p.dyn_kind == DYN_BATCH:
            n = rows * p.in_row[i]
            pad = gear_rows * p.in_row[i] if p.dyn_kind == DYN_BATCH else s.ins[i].nbytes
        else:
            n = pad = s.in_n[i]
        memcpy(s.ins[i].host, src[i], n)
        if n < pad:
            memset(<char*>s.ins[i].host + n, 0, pad - n)
    s.rows = rows
    s.t_stage1 = fx_now()
    s.t_stage0 = t0
    s.t_stage = s.t_stage1 - t0


cdef inline size_t _dims_bytes(const int64_t* dims, int nd, size_t item) noexcept nogil:
    cdef size_t n = item
    cdef int j
    for j in range(nd):
        n *= <size_t>dims[j]
    return n


cdef aclError pl_shape(Pipeline* p, Slot* s, int gear, const int64_t* in_dims, const char** api) noexcept nogil:
    """A dynamic HW / dims batch's gear, or a dynamic-shape batch's input dims (n_in x
    MAX_SHAPE_DIMS), for the reserved slot: the bytes it copies each way (and a gear's output
    dims), and for a dynamic shape the input dataset's tensor descriptions (per dataset: no
    model state). Called before pl_stage."""
    cdef int i
    cdef aclTensorDesc* d
    cdef aclError rc
    if p.dyn_kind == DYN_HW or p.dyn_kind == DYN_DIMS:
        s.gear = gear
        for i in range(p.n_in):
            s.in_n[i] = p.gear_in_bytes[gear * p.n_in + i]
        for i in range(p.n_out):
            s.out_n[i] = p.gear_out_bytes[gear * p.n_out + i]
            memcpy(&s.out_shape[i * MAX_SHAPE_DIMS], &p.gear_out_shape[(gear * p.n_out + i) * MAX_SHAPE_DIMS],
                   MAX_SHAPE_DIMS * sizeof(int64_t))
        return ACL_SUCCESS
    for i in range(p.n_in):
        memcpy(&s.in_shape[i * MAX_SHAPE_DIMS], &in_dims[i * MAX_SHAPE_DIMS], MAX_SHAPE_DIMS * sizeof(int64_t))
        s.in_n[i] = _dims_bytes(&in_dims[i * MAX_SHAPE_DIMS], p.in_ndims[i], p.in_item[i])
        api[0] = "aclCreateTensorDesc"
        d = aclCreateTensorDesc(ACL_DT_UNDEFINED, p.in_ndims[i], &in_dims[i * MAX_SHAPE_DIMS], ACL_FORMAT_UNDEFINED)
        if d == NULL:
            return FX_GE_FAILURE
        api[0] = "aclmdlSetDatasetTensorDesc"
        rc = aclmdlSetDatasetTensorDesc(s.in_ds, d, i)
        aclDestroyTensorDesc(d)
        if rc:
            return rc
    for i in range(p.n_out):
        s.out_n[i] = s.outs[i].nbytes   # the real size is known once it ran
    return ACL_SUCCESS


cdef aclError _queue_stage(Pipeline* p, Inst* inst, Slot* s, int stage, aclrtStream st, const char** api) noexcept nogil:
    cdef aclError rc = ACL_SUCCESS
    cdef int i
    if stage == 0:
        api[0] = "aclrtMemcpyAsync"
        for i in range(p.n_in):
            rc = aclrtMemcpyAsync(s.ins[i].dev, s.ins[i].nbytes, s.ins[i].host, s.in_n[i],
                                  ACL_MEMCPY_HOST_TO_DEVICE, st)
            if rc:
                return rc
    elif stage == 1:
        if p.config != NULL:
            api[0] = "aclmdlExecuteAsyncV2"
            rc = aclmdlExecuteAsyncV2(inst.model_id, s.in_ds, s.out_ds, st, p.config)
        else:
            api[0] = "aclmdlExecuteAsync"
            rc = aclmdlExecuteAsync(inst.model_id, s.in_ds, s.out_ds, st)
    else:
        api[0] = "aclrtMemcpyAsync"
        for i in range(p.n_out):
            rc = aclrtMemcpyAsync(s.outs[i].host, s.outs[i].nbytes, s.outs[i].dev, s.out_n[i],
                                  ACL_MEMCPY_DEVICE_TO_HOST, st)
            if rc:
                return rc
    return rc


cdef aclError _apply_aipp(Pipeline* p, Inst* inst, Slot* s, const char** api) noexcept nogil:
    """Put the reserved batch's dynamic AIPP parameters (its own, else the executor's) in its slot's
    AIPP input. aclmdlSetInputAIPP validates, then copies synchronously: the slot's previous batch
    is done with that memory, and a refused set leaves it as it was."""
    cdef const aclmdlAIPP* want = s.aipp_next
    cdef aclError rc
    s.aipp_next = NULL
    if p.aipp_index < 0:
        return ACL_SUCCESS
    if want == NULL:
        if not s.aipp_own:
            return ACL_SUCCESS         # it holds the executor's parameters already
        want = p.aipp
    api[0] = "aclmdlSetInputAIPP"
    rc = aclmdlSetInputAIPP(inst.model_id, s.in_ds, p.aipp_index, want)
    if rc == ACL_SUCCESS:
        s.aipp_own = want != p.aipp
    return rc


cdef int pl_enqueue(Pipeline* p, int64_t k, Status* err) noexcept nogil:
    """Queue the reserved batch k by the stream plan: PL_OK (QUEUED), or PL_FAILED with `err`
    set and the slot given back (retired once the device is done with what was queued)."""
    cdef Inst* inst = &p.insts[k % p.n_inst]
    cdef Slot* s = pl_slot(p, k)
    cdef aclError rc
    cdef const char* api = "aclrtSetCurrentContext"
    cdef aclrtStream st
    cdef int stage, here
    cdef double t0 = fx_now(), now
    cdef int gear_role = GEAR_NONE
    cdef int i
    s.recorded = False
    rc = pl_activate(inst)
    if rc == ACL_SUCCESS:
        rc = _apply_aipp(p, inst, s, &api)
    if rc:
        status_set(err, rc, api, NULL)
        pl_unreserve(p, s)
        return PL_FAILED
    if p.dyn_kind == DYN_BATCH:
        s.gear = pl_batch_gear(p, s.rows)
        for i in range(p.n_in):
            s.in_n[i] = p.gear_in_bytes[s.gear * p.n_in + i]
        for i in range(p.n_out):
            s.out_n[i] = p.gear_out_bytes[s.gear * p.n_out + i]
    if p.dynamic:
        rc = _gear_begin(p, inst, s, &api, &gear_role)
        if rc:
            _gear_end(p, inst, gear_role)
            status_set(err, rc, api, NULL)
            pl_unreserve(p, s)
            return PL_FAILED
    for stage in range(N_STAGES):
        here = p.plan.stream_of[stage]
        st = inst.streams[here]
        if stage == 0 or here != p.plan.stream_of[stage - 1]:
            if stage > 0:
                api = "aclrtStreamWaitEvent"
                rc = aclrtStreamWaitEvent(st, s.ev[2 * stage - 1])
                if rc:
                    break
            api = "aclrtRecordEvent"
            rc = aclrtRecordEvent(s.ev[2 * stage], st)
            if rc:
                break
        rc = _queue_stage(p, inst, s, stage, st, &api)
        if rc:
            break
        api = "aclrtRecordEvent"
        rc = aclrtRecordEvent(s.ev[2 * stage + 1], st)
        if rc:
            break
    now = fx_now()
    pthread_mutex_lock(&p.mu)
    if rc:
        status_set(err, rc, api, NULL)
        s.state = SLOT_RETIRING       # what was queued may still use the slot's memory
        s.device_busy = True
        s.owner = OWNER_NOBODY
    else:
        s.recorded = True
        s.t_enqueue = now - t0
        s.t_queued = now
        s.t_enqueue0 = t0
        if trace_on(p):
            s.submit_tid = fx_gettid()
        s.deadline = now + p.batch_timeout if p.batch_timeout > 0 else 0
        s.state = SLOT_QUEUED
        _device_started(p, now)
    _gear_end_locked(p, inst, gear_role)
    _changed(p)
    pthread_mutex_unlock(&p.mu)
    return PL_FAILED if rc else PL_OK


cdef enum:
    GEAR_NONE = 0                   # the batch needs no gear (or it failed before taking a role)
    GEAR_KEPT = 1                   # queued at the instance's gear (counted in inst.enqueuing)
    GEAR_SWITCHED = 2               # changed the instance's gear (inst.switching)
    GEAR_DRAINED = 3                # changed it after waiting for the instance's batches in flight


cdef aclError _set_gear(Pipeline* p, Inst* inst, Slot* s, const char** api) noexcept nogil:
    """Set the slot's gear on its input dataset (the hidden tensor follows the data inputs)."""
    cdef aclmdlIODims dims
    cdef int g = s.gear
    cdef int j
    if p.dyn_kind == DYN_BATCH:
        api[0] = "aclmdlSetDynamicBatchSize"
        return aclmdlSetDynamicBatchSize(inst.model_id, s.in_ds, p.n_in, p.gear_rows[g])
    if p.dyn_kind == DYN_HW:
        api[0] = "aclmdlSetDynamicHWSize"
        return aclmdlSetDynamicHWSize(inst.model_id, s.in_ds, p.n_in, <uint64_t>p.gear_vals[2 * g], <uint64_t>p.gear_vals[2 * g + 1])
    memset(&dims, 0, sizeof(dims))
    dims.dimCount = p.gear_nvals
    for j in range(p.gear_nvals):
        dims.dims[j] = p.gear_vals[g * p.gear_nvals + j]
    api[0] = "aclmdlSetInputDynamicDims"
    return aclmdlSetInputDynamicDims(inst.model_id, s.in_ds, p.n_in, &dims)


cdef aclError _gear_begin(Pipeline* p, Inst* inst, Slot* s, const char** api, int* role) noexcept nogil:
    """Before queueing batch s on `inst`: ACL keeps a model's gear model-global and sets it with
    a synchronous copy, so the instance's gear changes only when nothing of it is in flight (a
    drain) and by one thread at a time; batches at the instance's gear queue side by side. The
    slot's dataset is set to the batch's gear when it carries another. `role` says what to undo."""
    cdef bint busy = False
    cdef int j
    cdef Slot* o
    cdef aclError rc
    cdef double t0
    pthread_mutex_lock(&p.mu)
    while True:
        if inst.switching or (s.gear != inst.gear and inst.enqueuing):
            fx_cond_wait_until(&p.changed, &p.mu, fx_now() + SLICE_S)
            continue
        if s.gear == inst.gear:
            inst.enqueuing += 1
            role[0] = GEAR_KEPT
        else:
            inst.switching = 1
            role[0] = GEAR_SWITCHED
            for j in range(p.depth):
                o = &inst.slots[j]
                if o != s and (o.state == SLOT_QUEUED or o.device_busy) and not _device_done(o, o.ticket, p):
                    busy = True
        break
    pthread_mutex_unlock(&p.mu)
    if busy:
        role[0] = GEAR_DRAINED
        t0 = fx_now()
        for j in range(inst.n_streams):
            api[0] = "aclrtSynchronizeStream"
            rc = aclrtSynchronizeStream(inst.streams[j])
            if rc:
                return rc
        pthread_mutex_lock(&p.mu)
        trace_span(p, PSPAN_GEAR_DRAIN, t0, fx_now())
        pthread_mutex_unlock(&p.mu)
    if s.ds_gear != s.gear or role[0] != GEAR_KEPT:   # a switch sets the model's gear even if the dataset has it
        rc = _set_gear(p, inst, s, api)
        if rc:
            return rc
        s.ds_gear = s.gear
        pthread_mutex_lock(&p.mu)
        p.stats.gear_sets += 1
        pthread_mutex_unlock(&p.mu)
    if role[0] != GEAR_KEPT:
        inst.gear = s.gear
    return ACL_SUCCESS


cdef void _gear_end_locked(Pipeline* p, Inst* inst, int role) noexcept nogil:
    """Mutex held: the batch is queued (or failed): undo _gear_begin's role."""
    if role == GEAR_KEPT:
        inst.enqueuing -= 1
    elif role != GEAR_NONE:
        inst.switching = 0
        if role == GEAR_DRAINED:
            p.stats.drains += 1


cdef void _gear_end(Pipeline* p, Inst* inst, int role) noexcept nogil:
    pthread_mutex_lock(&p.mu)
    _gear_end_locked(p, inst, role)
    _changed(p)
    pthread_mutex_unlock(&p.mu)


cdef void _record_times(Pipeline* p, Slot* s, float* ms) noexcept nogil:
    """Outside the mutex, the batch complete: each stage's device time from its events."""
    cdef int stage, start
    for stage in range(N_STAGES):
        start = 2 * stage
        if stage > 0 and p.plan.stream_of[stage] == p.plan.stream_of[stage - 1]:
            start = 2 * stage - 1     # it started where the previous stage ended
        if aclrtEventElapsedTime(&ms[stage], s.ev[start], s.ev[2 * stage + 1]) != ACL_SUCCESS:
            ms[stage] = 0


cdef aclError _stage_errors(Pipeline* p, Slot* s, const char** api) noexcept nogil:
    """The batch complete: the first task error of its earlier stages (a stage's end event
    reports the errors of the tasks recorded since the event before it)."""
    cdef int stage
    cdef aclError rc
    for stage in range(N_STAGES - 1):
        rc = aclrtSynchronizeEvent(s.ev[2 * stage + 1])
        if rc:
            api[0] = "aclrtSynchronizeEvent"
            return rc
    return ACL_SUCCESS


cdef void _finish(Pipeline* p, Slot* s, aclError rc, const char* api, const float* ms) noexcept nogil:
    """Mutex held: the batch in s completed (rc: its first error)."""
    cdef Stats* t = p.stats
    if rc:
        status_set(&s.status, rc, api, NULL)
        s.state = SLOT_FAILED
    else:
        s.state = SLOT_DONE
        series_add(&t.series[SERIES_H2D], ms[0])
        series_add(&t.series[SERIES_EXECUTE], ms[1])
        series_add(&t.series[SERIES_D2H], ms[2])
        series_add(&t.series[SERIES_E2E], (fx_now() - s.t_queued) * 1e3)
        series_add(&t.series[SERIES_STAGING], s.t_stage * 1e3)
        series_add(&t.series[SERIES_ENQUEUE], s.t_enqueue * 1e3)
        t.batches += 1
        t.samples += s.rows
    _device_stopped(p)
    _changed(p)


cdef void _time_out(Pipeline* p, Slot* s, int64_t k) noexcept nogil:
    """Mutex held: batch k passed its exec-config deadline. It fails, and so does every batch
    queued behind it on its instance's streams; their memory stays theirs until the device is
    done with it."""
    cdef Inst* inst = &p.insts[k % p.n_inst]
    cdef Slot* o
    cdef int j
    cdef char text[STATUS_MESSAGE]
    cdef const char* api = "aclmdlExecuteAsyncV2" if p.config != NULL else "aclmdlExecuteAsync"
    snprintf(text, STATUS_MESSAGE, "batch %lld did not finish within the ExecConfig's stream_sync_timeout_ms=%.0f "
             "(queued %.0f ms ago); its memory is kept until the device is done with it",
             <long long>k, p.batch_timeout * 1e3, (fx_now() - s.t_queued) * 1e3)
    status_set(&s.status, FX_STREAM_SYNC_TIMEOUT, api, text)
    s.state = SLOT_FAILED
    s.device_busy = True
    _device_stopped(p)
    for j in range(p.depth):
        o = &inst.slots[j]
        if o.state == SLOT_QUEUED and o.ticket > k:
            snprintf(text, STATUS_MESSAGE, "batch %lld was queued behind batch %lld, which did not finish within the "
                     "ExecConfig's stream_sync_timeout_ms=%.0f", <long long>o.ticket, <long long>k, p.batch_timeout * 1e3)
            status_set(&o.status, FX_STREAM_SYNC_TIMEOUT, api, text)
            o.status.behind = k
            o.state = SLOT_FAILED
            o.device_busy = True
            _device_stopped(p)
    _changed(p)


cdef aclError _real_output_shapes(Pipeline* p, Slot* s, char* message, const char** api) noexcept nogil:
    """A dynamic-shape batch ran: each output's real dims from the output dataset's tensor
    descriptions; an output larger than its buffer fails the batch (never a truncation)."""
    cdef aclTensorDesc* d
    cdef size_t nd, j, n
    cdef int i
    cdef int64_t v
    for i in range(p.n_out):
        api[0] = "aclmdlGetDatasetTensorDesc"
        d = aclmdlGetDatasetTensorDesc(s.out_ds, i)
        if d == NULL:
            return FX_GE_FAILURE
        nd = aclGetTensorDescNumDims(d)
        if nd != <size_t>p.out_ndims[i]:
            snprintf(message, STATUS_MESSAGE, "output '%s' came back with %zu dims, the model describes %d",
                     p.out_name[i], nd, p.out_ndims[i])
            return FX_GE_FAILURE
        n = p.out_item[i]
        for j in range(nd):
            if aclGetTensorDescDimV2(d, j, &v) or v < 0:
                return FX_GE_FAILURE
            s.out_shape[i * MAX_SHAPE_DIMS + j] = v
            n *= <size_t>v
        if n > s.outs[i].nbytes:
            snprintf(message, STATUS_MESSAGE, "output '%s' of this batch holds %zu bytes, more than its %zu-byte buffer; "
                     "give the Executor a larger output_size=", p.out_name[i], n, s.outs[i].nbytes)
            return FX_GE_FAILURE
    return ACL_SUCCESS


cdef int pl_wait(Pipeline* p, int64_t k, intptr_t owner, Waiter* w) noexcept nogil:
    """Wait for batch k of `owner` and hold its slot (HELD; its status says whether it failed):
    PL_OK; PL_UNKNOWN (k is in no slot, is another owner's, or is not queued); PL_EXPIRED (the
    caller's deadline: k stays queued); PL_INTERRUPTED; PL_CLOSED."""
    cdef Slot* s
    cdef int r
    cdef aclError rc
    cdef const char* api
    cdef double deadline, wait0 = 0, wait1 = 0
    cdef float ms[N_STAGES]
    cdef uint64_t dev_us[2 * N_STAGES]
    cdef bint tracing
    cdef char too_large[STATUS_MESSAGE]
    pthread_mutex_lock(&p.mu)
    while True:
        if p.insts == NULL:
            r = PL_CLOSED
            break
        s = pl_slot(p, k)
        if (s.ticket != k or s.owner != owner or s.state == SLOT_FREE or s.state == SLOT_RESERVED
                or s.state == SLOT_RETIRING):
            r = PL_UNKNOWN
            break
        if s.state == SLOT_DONE or s.state == SLOT_FAILED:
            s.state = SLOT_HELD
            if trace_on(p):
                s.t_held = fx_now()
            r = PL_OK
            break
        if s.state == SLOT_HELD:
            if owner != OWNER_PYTHON:
                r = PL_OK              # a C handle waiting again for a batch it holds
                break
            r = _cond_wait(p, w)       # another Python thread is moving it out
            if r:
                break
            continue
        # queued: wait for the device
        deadline = s.deadline
        if w.deadline != 0 and (deadline == 0 or w.deadline < deadline):
            deadline = w.deadline
        s.waiters += 1
        tracing = trace_on(p)
        pthread_mutex_unlock(&p.mu)
        api = "aclrtSynchronizeEvent"
        if tracing:
            wait0 = fx_now()
        r = _wait_device(p, s, k, deadline, w, &rc)
        if tracing:
            wait1 = fx_now()
        too_large[0] = 0
        if r == PL_OK and rc == ACL_SUCCESS:
            rc = _stage_errors(p, s, &api)
            if rc == ACL_SUCCESS:
                _record_times(p, s, ms)
                if tracing:
                    trace_device_times(p, s, dev_us)
            if rc == ACL_SUCCESS and p.dyn_kind == DYN_SHAPE:
                rc = _real_output_shapes(p, s, too_large, &api)
        pthread_mutex_lock(&p.mu)
        s.waiters -= 1
        if s.state != SLOT_QUEUED or s.ticket != k:
            continue                   # another waiter finished it (or timed it out) meanwhile
        if r == PL_OK:
            _finish(p, s, rc, api, ms)
            if trace_on(p):
                trace_push(p, s, rc != ACL_SUCCESS, dev_us if tracing and rc == ACL_SUCCESS else NULL, wait0, wait1)
            if too_large[0]:
                status_set(&s.status, rc, api, too_large)
        elif r == PL_EXPIRED and s.deadline != 0 and fx_now() >= s.deadline:
            _time_out(p, s, k)
        else:
            break                      # the caller's deadline, or a signal
    pthread_mutex_unlock(&p.mu)
    return r


cdef int pl_release_ticket(Pipeline* p, int64_t k, intptr_t owner) noexcept nogil:
    """Give back the slot of batch k, held by `owner`: PL_OK, or PL_UNKNOWN if it holds no such batch."""
    cdef Slot* s
    cdef int r = PL_UNKNOWN
    pthread_mutex_lock(&p.mu)
    if p.insts != NULL:
        s = pl_slot(p, k)
        if s.ticket == k and s.owner == owner and s.state == SLOT_HELD:
            trace_collected(p, s)
            _disown_locked(s)
            _changed(p)
            r = PL_OK
    pthread_mutex_unlock(&p.mu)
    return r


cdef void pl_disown_all(Pipeline* p, intptr_t owner) noexcept nogil:
    """Every batch of `owner`: nobody will take it (see pl_disown)."""
    cdef int i, j
    cdef Slot* s
    pthread_mutex_lock(&p.mu)
    if p.insts != NULL:
        for i in range(p.n_inst):
            for j in range(p.depth):
                s = &p.insts[i].slots[j]
                if s.owner == owner:
                    _disown_locked(s)
        _changed(p)
    pthread_mutex_unlock(&p.mu)


cdef inline void _disown_locked(Slot* s) noexcept nogil:
    """Mutex held: its owner gives the slot up. Reserved: free again; held: free, or retiring
    while the device may still use it; queued or finished: whoever needs it retires it."""
    if s.state == SLOT_RESERVED:
        s.state = SLOT_FREE
    elif s.state == SLOT_HELD:
        s.state = SLOT_RETIRING if s.device_busy else SLOT_FREE
    s.owner = OWNER_NOBODY


cdef void pl_disown(Pipeline* p, int64_t k, intptr_t owner) noexcept nogil:
    """Nobody will take batch k's result: whoever needs its slot retires it."""
    cdef Slot* s
    pthread_mutex_lock(&p.mu)
    if p.insts != NULL:
        s = pl_slot(p, k)
        if s.ticket == k and s.owner == owner and s.state != SLOT_FREE and s.state != SLOT_RETIRING:
            _disown_locked(s)
            _changed(p)
    pthread_mutex_unlock(&p.mu)


cdef int pl_drain(Pipeline* p, unsigned long self_thread, Waiter* w) noexcept nogil:
    """Stop taking batches and wait until every slot is free: batches nobody will take are
    waited for and dropped; held, reserved and privately owned ones are waited for until their
    owners give them back. PL_OK, PL_EXPIRED, PL_INTERRUPTED, or PL_BUSY when a slot is reserved
    by the calling thread itself (it would wait for itself)."""
    cdef int i, j, r = PL_OK
    cdef bint all_free
    cdef Slot* s
    cdef double t0 = fx_now()
    pthread_mutex_lock(&p.mu)
    p.closing = True
    _changed(p)
    while p.insts != NULL:
        all_free = True
        for i in range(p.n_inst):
            for j in range(p.depth):
                s = &p.insts[i].slots[j]
                if s.state == SLOT_FREE:
                    continue
                all_free = False
                if s.state == SLOT_RESERVED and s.reserver == self_thread:
                    r = PL_BUSY
                    break
                if s.owner == OWNER_PYTHON and s.waiters == 0 and s.state != SLOT_HELD and s.state != SLOT_RESERVED:
                    s.owner = OWNER_NOBODY     # submitted, never taken: dropped
                if _retirable(s):
                    r = _retire(p, s, s.ticket, w)
                    if r:
                        break
            if r:
                break
        if r or all_free:
            break
        r = _cond_wait(p, w)
        if r:
            break
    trace_span(p, PSPAN_DRAIN, t0, fx_now())
    pthread_mutex_unlock(&p.mu)
    return r


cdef int pl_create(Pipeline** out, int n_inst, int depth, int n_in, int n_out) noexcept nogil:
    """An empty pipeline (no ACL resources yet). 0, or -1 out of memory."""
    cdef Pipeline* p = <Pipeline*>calloc(1, sizeof(Pipeline))
    cdef int i
    if p == NULL:
        return -1
    p.stats = <Stats*>calloc(1, sizeof(Stats))
    p.insts = <Inst*>calloc(n_inst, sizeof(Inst))
    if p.stats == NULL or p.insts == NULL or fx_sync_init(&p.mu, &p.changed):
        free(p.stats)
        free(p.insts)
        free(p)
        return -1
    p.n_inst = n_inst
    p.depth = depth
    p.window = n_inst * depth
    p.n_in = n_in
    p.n_out = n_out
    p.aipp_index = -1
    p.pid = fx_pid()
    for i in range(n_inst):
        p.insts[i].slots = <Slot*>calloc(depth, sizeof(Slot))
        if p.insts[i].slots == NULL:
            pl_destroy(p)
            return -1
    out[0] = p
    return 0


cdef void _free_io(IOBuf* io, Status* err) noexcept nogil:
    if io.buf != NULL and aclDestroyDataBuffer(io.buf) == ACL_SUCCESS:
        io.buf = NULL
    if io.dev != NULL and _freed(aclrtFree(io.dev), "aclrtFree", err):
        io.dev = NULL
    if io.host != NULL and _freed(aclrtFreeHost(io.host), "aclrtFreeHost", err):
        io.host = NULL


cdef inline bint _freed(aclError rc, const char* api, Status* err) noexcept nogil:
    if rc and err.code == ACL_SUCCESS:
        status_set(err, rc, api, NULL)
    return rc == ACL_SUCCESS


cdef void pl_free_resources(Pipeline* p, Status* err) noexcept nogil:
    """Free every ACL resource of the pipeline (all slots free). Each pointer is cleared once
    its resource is gone, so after a failure (the first one in `err`) a second call frees the
    rest. The slot arrays go only when everything in them has."""
    cdef int i, j, e
    cdef Inst* inst
    cdef Slot* s
    cdef aclError rc
    if p.insts == NULL:
        return
    for i in range(p.n_inst):
        inst = &p.insts[i]
        if inst.ctx == NULL:
            continue                  # (construction failed before this instance got a device)
        rc = pl_activate(inst)
        if rc:
            if err.code == ACL_SUCCESS:
                status_set(err, rc, "aclrtSetCurrentContext", NULL)
            continue
        for j in range(p.depth if inst.slots != NULL else 0):
            s = &inst.slots[j]
            for e in range(s.n_events):
                if s.ev[e] != NULL and _freed(aclrtDestroyEvent(s.ev[e]), "aclrtDestroyEvent", err):
                    s.ev[e] = NULL
            if s.in_ds != NULL and _freed(aclmdlDestroyDataset(s.in_ds), "aclmdlDestroyDataset", err):
                s.in_ds = NULL
            if s.out_ds != NULL and _freed(aclmdlDestroyDataset(s.out_ds), "aclmdlDestroyDataset", err):
                s.out_ds = NULL
            if s.ins != NULL:
                for e in range(p.n_in):
                    _free_io(&s.ins[e], err)
            if s.outs != NULL:
                for e in range(p.n_out):
                    _free_io(&s.outs[e], err)
            if s.dyn_buf != NULL and aclDestroyDataBuffer(s.dyn_buf) == ACL_SUCCESS:
                s.dyn_buf = NULL
            if s.dyn_dev != NULL and _freed(aclrtFree(s.dyn_dev), "aclrtFree", err):
                s.dyn_dev = NULL
            if s.aipp_buf != NULL and aclDestroyDataBuffer(s.aipp_buf) == ACL_SUCCESS:
                s.aipp_buf = NULL
            if s.aipp_dev != NULL and _freed(aclrtFree(s.aipp_dev), "aclrtFree", err):
                s.aipp_dev = NULL
        for e in range(inst.n_streams - 1, -1, -1):
            if inst.streams[e] != NULL and _freed(aclrtDestroyStream(inst.streams[e]), "aclrtDestroyStream", err):
                inst.streams[e] = NULL
    if err.code:
        return
    for i in range(p.n_inst):
        inst = &p.insts[i]
        if inst.slots != NULL:
            for j in range(p.depth):
                s = &inst.slots[j]
                free(s.ins)
                free(s.outs)
                free(s.in_hosts)
                free(s.out_hosts)
                free(s.in_n)
                free(s.out_n)
                free(s.in_shape)
                free(s.out_shape)
            free(inst.slots)
            inst.slots = NULL
    pthread_mutex_lock(&p.mu)
    free(p.insts)
    p.insts = NULL
    _changed(p)
    pthread_mutex_unlock(&p.mu)


cdef void pl_destroy(Pipeline* p) noexcept nogil:
    """Free the pipeline's own memory (its ACL resources must be gone, or abandoned)."""
    cdef int i
    if p == NULL:
        return
    if p.insts != NULL:
        for i in range(p.n_inst):
            free(p.insts[i].slots)
        free(p.insts)
    fx_sync_destroy(&p.mu, &p.changed)
    trace_free(p.trace)
    free(p.gear_rows)
    free(p.gear_vals)
    free(p.gear_in_bytes)
    free(p.gear_out_bytes)
    free(p.gear_out_shape)
    free(p.stats)
    free(p)
