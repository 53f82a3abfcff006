# The C API (include/fastexec/fastexec.h): a versioned function table over the executor, exported
# as the capsule fastexec._core._C_API. Included by fastexec/_core.pyx.
#
# Every function returns a status and never raises. Apart from from_object (called with the GIL,
# since it takes a Python object), open and close (which take the GIL themselves), they run
# without the GIL under the executor's lock, working on its C state directly.

from cpython.pycapsule cimport PyCapsule_New
from cpython.ref cimport Py_DECREF, Py_INCREF
from libc.stdio cimport snprintf
from libc.stdlib cimport malloc

cdef extern from "fastexec/fastexec.h":
    enum:
        FASTEXEC_C_API_VERSION
        FASTEXEC_OK
        FASTEXEC_ERR_INVALID_ARGUMENT
        FASTEXEC_ERR_CLOSED
        FASTEXEC_ERR_BUSY
        FASTEXEC_ERR_UNKNOWN_TICKET
        FASTEXEC_ERR_BATCH_FAILED
        FASTEXEC_ERR_ACL
        FASTEXEC_ERR_STATE
        FASTEXEC_ERR_PYTHON
    ctypedef struct fastexec_executor:
        pass
    ctypedef struct fastexec_tensor_info:
        const char* name
        int32_t dtype
        int32_t format
        size_t ndims
        const int64_t* dims
        size_t nbytes
    ctypedef struct fastexec_stats:
        uint64_t batches
        double wall_s
        double h2d_mean_ms
        double execute_mean_ms
        double d2h_mean_ms
        double samples_per_s
    ctypedef struct fastexec_api:
        uint32_t version
        uint32_t size
        int (*from_object)(void*, fastexec_executor**) noexcept
        int (*open)(const char*, int32_t, int32_t, int32_t, fastexec_executor**) noexcept nogil
        int (*close)(fastexec_executor*) noexcept nogil
        int (*batch_size)(fastexec_executor*, uint64_t*) noexcept nogil
        int (*num_tensors)(fastexec_executor*, int, size_t*) noexcept nogil
        int (*tensor_info)(fastexec_executor*, int, size_t, fastexec_tensor_info*) noexcept nogil
        int (*submit)(fastexec_executor*, const void* const*, uint64_t, int64_t*) noexcept nogil
        int (*acquire)(fastexec_executor*, void**, int64_t*) noexcept nogil
        int (*commit)(fastexec_executor*, int64_t, uint64_t) noexcept nogil
        int (*wait)(fastexec_executor*, int64_t, const void* const**, uint64_t*) noexcept nogil
        int (*release)(fastexec_executor*, int64_t) noexcept nogil
        int (*stats)(fastexec_executor*, fastexec_stats*) noexcept nogil
        const char* (*last_error)() noexcept nogil

cdef extern from *:
    """
    static __thread char fx_capi_error[1024];
    """
    char fx_capi_error[1024]

cdef enum:
    SLOT_IDLE = 0          # free, or a Python-side batch
    SLOT_C_RESERVED = 1    # acquired, not committed
    SLOT_C_INFLIGHT = 2
    SLOT_C_WAITED = 3      # outputs held by the caller
    SLOT_C_FAILED = 4      # waited, its device work failed
    SLOT_C_RELEASED = 5    # done with, waiting for the older batches before the slot is reused


cdef struct CHandle:
    void* ex                        # the Executor (a reference owned by the handle)
    bint owns                       # made by open(): close the executor and model too
    bint closed
    size_t n_in, n_out
    fastexec_tensor_info* infos     # n_in inputs then n_out outputs
    char* strings                   # names, NUL-separated
    int64_t* dims


cdef int _fail_with(int status, const char* text) noexcept nogil:
    snprintf(fx_capi_error, sizeof(fx_capi_error), "%s", text)
    return status


cdef int _fail_acl(int status, const char* what, int64_t ticket, aclError rc, const char* api) noexcept nogil:
    cdef const char* msg = aclGetRecentErrMsg()
    if api == NULL:
        api = b"ACL"
    if msg == NULL:
        msg = b"(no message)"
    snprintf(fx_capi_error, sizeof(fx_capi_error), "%s %lld: %s failed with ACL error %d: %s", what, <long long>ticket,
             api, rc, msg)
    return status


cdef const char* _last_error() noexcept nogil:
    return fx_capi_error


cdef inline CHandle* _handle(fastexec_executor* h) noexcept nogil:
    return <CHandle*>h


cdef int _usable(fastexec_executor* h) noexcept nogil:
    cdef CHandle* c = _handle(h)
    if c == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "the executor handle is NULL")
    if c.closed:
        return _fail_with(FASTEXEC_ERR_CLOSED, "the executor handle has been closed")
    if not (<Executor>c.ex).is_open:
        return _fail_with(FASTEXEC_ERR_CLOSED, "the executor has been closed")
    return FASTEXEC_OK


cdef int _from_object(void* obj, fastexec_executor** out) noexcept:
    """GIL held. A handle on a Python fastexec.Executor."""
    cdef CHandle* c
    cdef Executor ex
    cdef size_t i, n, nd = 0, chars = 0
    if obj == NULL or out == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "from_object: NULL argument")
    try:
        if not isinstance(<object>obj, Executor):
            return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "from_object: the object is not a fastexec.Executor")
        ex = <Executor>obj
        if not ex.is_open:
            return _fail_with(FASTEXEC_ERR_CLOSED, "from_object: the executor is closed")
        specs = list(ex.in_specs) + list(ex.out_specs)
        for sp in specs:
            nd += len(sp.shape)
            chars += len(sp.name.encode()) + 1
        c = <CHandle*>calloc(1, sizeof(CHandle))
        c.infos = <fastexec_tensor_info*>calloc(len(specs), sizeof(fastexec_tensor_info))
        c.strings = <char*>malloc(chars)
        c.dims = <int64_t*>malloc(max(nd, 1) * sizeof(int64_t))
        c.n_in = ex.n_in
        c.n_out = ex.n_out
        nd = chars = 0
        for i, sp in enumerate(specs):
            name = sp.name.encode()
            memcpy(c.strings + chars, <const char*>name, len(name) + 1)
            c.infos[i].name = c.strings + chars
            chars += len(name) + 1
            c.infos[i].dtype = _ACL_DTYPES[sp.dtype]
            c.infos[i].format = _FORMAT_CODES.get(sp.format, -1)
            c.infos[i].ndims = len(sp.shape)
            c.infos[i].dims = c.dims + nd
            for d in sp.shape:
                c.dims[nd] = d
                nd += 1
            c.infos[i].nbytes = sp.nbytes
        Py_INCREF(ex)
        c.ex = <void*>ex
        out[0] = <fastexec_executor*>c
        return FASTEXEC_OK
    except BaseException as exc:
        msg = f"from_object: {type(exc).__name__}: {exc}".encode(errors="replace")
        return _fail_with(FASTEXEC_ERR_PYTHON, msg)


cdef int _open(const char* path, int32_t device, int32_t depth, int32_t instances, fastexec_executor** out) noexcept nogil:
    cdef int status
    if path == NULL or out == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "open: NULL argument")
    with gil:
        try:
            model = Model(path.decode(), device=device)
            try:
                ex = Executor(model, depth=depth if depth > 0 else None, instances=instances if instances > 0 else 1)
            except BaseException:
                model.close()
                raise
            (<Executor>ex).owns_models[0] = True
        except BaseException as exc:
            msg = f"open: {type(exc).__name__}: {exc}".encode(errors="replace")
            return _fail_with(FASTEXEC_ERR_PYTHON, msg)
        status = _from_object(<void*>ex, out)
        if status == FASTEXEC_OK:
            _handle(out[0]).owns = True
        else:
            ex.close()
        return status


cdef int _close(fastexec_executor* h) noexcept nogil:
    """Release the batches the C side still holds, then the handle (and what open() made)."""
    cdef CHandle* c = _handle(h)
    cdef void* exv
    if c == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "close: the executor handle is NULL")
    if c.closed:
        return _fail_with(FASTEXEC_ERR_CLOSED, "close: the handle is already closed")
    exv = c.ex
    PyThread_acquire_lock((<Executor>exv).lock, WAIT_LOCK)
    if (<Executor>exv).is_open:
        _release_all(exv)
    PyThread_release_lock((<Executor>exv).lock)
    c.closed = True
    with gil:
        try:
            if c.owns:
                (<Executor>exv).close()
        except BaseException:
            pass
        Py_DECREF(<object>exv)
    free(c.infos)
    free(c.strings)
    free(c.dims)
    free(c)
    return FASTEXEC_OK


cdef void _release_all(void* exv) noexcept nogil:
    """Lock held: wait for and release every C batch still held."""
    cdef int64_t k
    cdef Slot* s
    for k in range((<Executor>exv).collected, (<Executor>exv).submitted):
        s = (<Executor>exv)._slot(k)
        if s.state == SLOT_C_INFLIGHT:
            aclrtSynchronizeEvent(s.ev[EV_D2H_END])
        if s.state != SLOT_IDLE and s.state != SLOT_C_RELEASED:
            s.state = SLOT_C_RELEASED
            (<Executor>exv).c_active = (<Executor>exv).c_active - 1
    _advance(exv)


cdef void _advance(void* exv) noexcept nogil:
    """Lock held: free released slots in order."""
    cdef Slot* s
    while (<Executor>exv).collected < (<Executor>exv).submitted:
        s = (<Executor>exv)._slot((<Executor>exv).collected)
        if s.state != SLOT_C_RELEASED:
            break
        s.state = SLOT_IDLE
        (<Executor>exv).collected = (<Executor>exv).collected + 1
    (<Executor>exv)._mark_idle_if_drained()


cdef int _batch_size(fastexec_executor* h, uint64_t* out) noexcept nogil:
    cdef int st = _usable(h)
    if st:
        return st
    if out == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "batch_size: out is NULL")
    out[0] = (<Executor>_handle(h).ex).batch_size
    return FASTEXEC_OK


cdef int _num_tensors(fastexec_executor* h, int is_output, size_t* out) noexcept nogil:
    cdef int st = _usable(h)
    if st:
        return st
    if out == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "num_tensors: out is NULL")
    out[0] = _handle(h).n_out if is_output else _handle(h).n_in
    return FASTEXEC_OK


cdef int _tensor_info(fastexec_executor* h, int is_output, size_t index, fastexec_tensor_info* out) noexcept nogil:
    cdef int st = _usable(h)
    cdef CHandle* c = _handle(h)
    if st:
        return st
    if out == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "tensor_info: out is NULL")
    if index >= (c.n_out if is_output else c.n_in):
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "tensor_info: index out of range")
    out[0] = c.infos[(c.n_in if is_output else 0) + index]
    return FASTEXEC_OK


cdef int _claim(void* exv, int64_t* k) noexcept nogil:
    """Lock held: the next slot for a C batch, or a status."""
    if (<Executor>exv).submitted > (<Executor>exv).collected and (<Executor>exv).c_active == 0:
        return _fail_with(FASTEXEC_ERR_STATE, "the executor has Python-side batches in flight; collect them first")
    if (<Executor>exv).submitted - (<Executor>exv).collected >= (<Executor>exv).depth * (<Executor>exv).n_instances:
        return _fail_with(FASTEXEC_ERR_BUSY, "no free slot: wait for and release the oldest batch first")
    k[0] = (<Executor>exv).submitted
    return FASTEXEC_OK


cdef int _submit(fastexec_executor* h, const void* const* inputs, uint64_t rows, int64_t* ticket) noexcept nogil:
    cdef int st = _usable(h)
    cdef void* exv
    cdef int64_t k
    cdef aclError rc
    cdef size_t i
    if st:
        return st
    exv = _handle(h).ex
    if inputs == NULL or ticket == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "submit: inputs and ticket must not be NULL")
    for i in range(_handle(h).n_in):
        if inputs[i] == NULL:
            return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "submit: an input pointer is NULL")
    if rows < 1 or rows > (<Executor>exv).batch_size:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "submit: rows must be from 1 to the batch size")
    PyThread_acquire_lock((<Executor>exv).lock, WAIT_LOCK)
    st = _claim(exv, &k)
    if st == FASTEXEC_OK:
        if (<Executor>exv).device.activate_nogil():
            st = _fail_with(FASTEXEC_ERR_ACL, "submit: cannot make the device's context current")
        else:
            (<Executor>exv)._stage((<Executor>exv)._slot(k), <const char**>inputs, rows)
            rc = (<Executor>exv)._enqueue(k)
            if rc:
                (<Executor>exv)._abandon(k)
                st = _fail_acl(FASTEXEC_ERR_ACL, "submit batch", k, rc, (<Executor>exv).err_api)
            else:
                (<Executor>exv)._slot(k).state = SLOT_C_INFLIGHT
                (<Executor>exv).submitted = (<Executor>exv).submitted + 1
                (<Executor>exv).c_active = (<Executor>exv).c_active + 1
                ticket[0] = k
    PyThread_release_lock((<Executor>exv).lock)
    return st


cdef int _acquire(fastexec_executor* h, void** inputs, int64_t* ticket) noexcept nogil:
    cdef int st = _usable(h)
    cdef void* exv
    cdef int64_t k
    cdef size_t i
    if st:
        return st
    exv = _handle(h).ex
    if inputs == NULL or ticket == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "acquire: inputs and ticket must not be NULL")
    PyThread_acquire_lock((<Executor>exv).lock, WAIT_LOCK)
    st = _claim(exv, &k)
    if st == FASTEXEC_OK:
        for i in range((<Executor>exv).n_in):
            inputs[i] = (<Executor>exv)._slot(k).in_hosts[i]
        (<Executor>exv)._slot(k).state = SLOT_C_RESERVED
        (<Executor>exv).submitted = (<Executor>exv).submitted + 1
        (<Executor>exv).c_active = (<Executor>exv).c_active + 1
        ticket[0] = k
    PyThread_release_lock((<Executor>exv).lock)
    return st


cdef Slot* _ticket_slot(void* exv, int64_t k, int want) noexcept nogil:
    """Lock held: the slot of ticket k if it is in state `want` (-1: any C state), else NULL."""
    cdef Slot* s
    if k < (<Executor>exv).collected or k >= (<Executor>exv).submitted:
        return NULL
    s = (<Executor>exv)._slot(k)
    if want >= 0 and s.state != want:
        return NULL
    if want < 0 and (s.state == SLOT_IDLE or s.state == SLOT_C_RELEASED):
        return NULL
    return s


cdef int _commit(fastexec_executor* h, int64_t ticket, uint64_t rows) noexcept nogil:
    cdef int st = _usable(h)
    cdef void* exv
    cdef Slot* s
    cdef aclError rc
    if st:
        return st
    exv = _handle(h).ex
    if rows > (<Executor>exv).batch_size:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "commit: rows must be from 0 to the batch size")
    PyThread_acquire_lock((<Executor>exv).lock, WAIT_LOCK)
    s = _ticket_slot(exv, ticket, SLOT_C_RESERVED)
    if s == NULL:
        st = _fail_with(FASTEXEC_ERR_UNKNOWN_TICKET, "commit: the ticket is not an acquired, uncommitted batch")
    elif rows == 0:
        s.state = SLOT_C_RELEASED
        (<Executor>exv).c_active = (<Executor>exv).c_active - 1
        _advance(exv)
    elif (<Executor>exv).device.activate_nogil():
        st = _fail_with(FASTEXEC_ERR_ACL, "commit: cannot make the device's context current")
    else:
        s.rows = rows
        s.t_stage = 0
        rc = (<Executor>exv)._enqueue(ticket)
        if rc:
            (<Executor>exv)._abandon(ticket)
            s.state = SLOT_C_RELEASED
            (<Executor>exv).c_active = (<Executor>exv).c_active - 1
            _advance(exv)
            st = _fail_acl(FASTEXEC_ERR_ACL, "commit batch", ticket, rc, (<Executor>exv).err_api)
        else:
            s.state = SLOT_C_INFLIGHT
    PyThread_release_lock((<Executor>exv).lock)
    return st


cdef int _wait_batch(fastexec_executor* h, int64_t ticket, const void* const** outputs, uint64_t* rows) noexcept nogil:
    cdef int st = _usable(h)
    cdef void* exv
    cdef Slot* s
    cdef aclError rc
    if st:
        return st
    exv = _handle(h).ex
    if outputs == NULL or rows == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "wait: outputs and rows must not be NULL")
    PyThread_acquire_lock((<Executor>exv).lock, WAIT_LOCK)
    s = _ticket_slot(exv, ticket, -1)
    if s == NULL or s.state == SLOT_C_RESERVED:
        PyThread_release_lock((<Executor>exv).lock)
        return _fail_with(FASTEXEC_ERR_UNKNOWN_TICKET, "wait: the ticket is not a committed batch held by the C side")
    PyThread_release_lock((<Executor>exv).lock)
    aclrtSynchronizeEvent(s.ev[EV_D2H_END])     # outside the lock: the slot stays ours until release
    PyThread_acquire_lock((<Executor>exv).lock, WAIT_LOCK)
    if s.state == SLOT_C_INFLIGHT:
        rc = (<Executor>exv)._wait(s)
        if rc:
            s.state = SLOT_C_FAILED
            _fail_acl(FASTEXEC_ERR_BATCH_FAILED, "batch", ticket, rc, (<Executor>exv).err_api)
        else:
            s.state = SLOT_C_WAITED
    if s.state == SLOT_C_FAILED:
        st = FASTEXEC_ERR_BATCH_FAILED
    else:
        outputs[0] = <const void* const*>s.out_hosts
        rows[0] = s.rows
    PyThread_release_lock((<Executor>exv).lock)
    return st


cdef int _release(fastexec_executor* h, int64_t ticket) noexcept nogil:
    cdef int st = _usable(h)
    cdef void* exv
    cdef Slot* s
    if st:
        return st
    exv = _handle(h).ex
    PyThread_acquire_lock((<Executor>exv).lock, WAIT_LOCK)
    s = _ticket_slot(exv, ticket, -1)
    if s == NULL or (s.state != SLOT_C_WAITED and s.state != SLOT_C_FAILED):
        st = _fail_with(FASTEXEC_ERR_UNKNOWN_TICKET, "release: the ticket is not a waited batch held by the C side")
    else:
        s.state = SLOT_C_RELEASED
        (<Executor>exv).c_active = (<Executor>exv).c_active - 1
        _advance(exv)
    PyThread_release_lock((<Executor>exv).lock)
    return st


cdef int _stats(fastexec_executor* h, fastexec_stats* out) noexcept nogil:
    cdef int st = _usable(h)
    cdef void* exv
    cdef double wall
    if st:
        return st
    if out == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "stats: out is NULL")
    exv = _handle(h).ex
    PyThread_acquire_lock((<Executor>exv).lock, WAIT_LOCK)
    wall = (<Executor>exv).wall + (fx_now() - (<Executor>exv).active_since if (<Executor>exv).active_since != 0 else 0)
    out.batches = (<Executor>exv).batches
    out.wall_s = wall
    out.h2d_mean_ms = (<Executor>exv).series[SERIES_H2D].total / (<Executor>exv).series[SERIES_H2D].count if (<Executor>exv).series[SERIES_H2D].count else 0
    out.execute_mean_ms = (<Executor>exv).series[SERIES_EXECUTE].total / (<Executor>exv).series[SERIES_EXECUTE].count if (<Executor>exv).series[SERIES_EXECUTE].count else 0
    out.d2h_mean_ms = (<Executor>exv).series[SERIES_D2H].total / (<Executor>exv).series[SERIES_D2H].count if (<Executor>exv).series[SERIES_D2H].count else 0
    out.samples_per_s = (<Executor>exv).batches * (<Executor>exv).batch_size / wall if wall > 0 else 0
    PyThread_release_lock((<Executor>exv).lock)
    return FASTEXEC_OK


# numpy dtype -> aclDataType, format name -> aclFormat, for tensor_info
_ACL_DTYPES = {v: k for k, v in _DTYPES.items()}
_FORMAT_CODES = {v: k for k, v in _FORMATS.items()}

cdef fastexec_api _api
_api.version = FASTEXEC_C_API_VERSION
_api.size = sizeof(fastexec_api)
_api.from_object = _from_object
_api.open = _open
_api.close = _close
_api.batch_size = _batch_size
_api.num_tensors = _num_tensors
_api.tensor_info = _tensor_info
_api.submit = _submit
_api.acquire = _acquire
_api.commit = _commit
_api.wait = _wait_batch
_api.release = _release
_api.stats = _stats
_api.last_error = _last_error

_C_API = PyCapsule_New(&_api, b"fastexec._core._C_API", NULL)
