# The C API (include/fastexec/fastexec.h): a versioned function table over the executor, exported
# as the capsule fastexec._core._C_API. Included by fastexec/_core.pyx.
#
# Every function returns a status and never raises. Apart from from_object (called with the GIL,
# since it takes a Python object), open and close (which take the GIL themselves), each is a
# thin call into the pipeline core (pipeline.pxi), without the GIL: a caller holding it gives it
# up for the call. C batches are owned by their handle and may be in flight beside Python ones.

from cpython.pycapsule cimport PyCapsule_New
from cpython.ref cimport Py_DECREF, Py_INCREF
from libc.stdio cimport snprintf
from libc.stdlib cimport malloc
from libc.string cimport memcmp

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
    ctypedef struct fastexec_series:
        uint64_t count
        double mean_ms, min_ms, max_ms, p50_ms, p90_ms, p95_ms, p99_ms
    ctypedef struct fastexec_stats:
        uint64_t batches
        double wall_s
        double h2d_mean_ms
        double execute_mean_ms
        double d2h_mean_ms
        double samples_per_s
        fastexec_series h2d, execute, d2h, end_to_end, host_staging, host_enqueue
        uint64_t calibration_batches
        double calibration_h2d_ms, calibration_execute_ms, calibration_d2h_ms
        double bound_period_ms, bound_samples_per_s, efficiency, compute_only_samples_per_s, device_utilization
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
        int (*open_devices)(const char*, const int32_t*, size_t, int32_t, int32_t, fastexec_executor**) noexcept nogil
        int (*submit_shaped)(fastexec_executor*, const void* const*, const int64_t* const*, int64_t*) noexcept nogil
        int (*acquire_shaped)(fastexec_executor*, const int64_t* const*, void**, int64_t*) noexcept nogil
        int (*output_dims)(fastexec_executor*, int64_t, size_t, int64_t*) noexcept nogil

cdef extern from *:
    """
    static __thread char fx_capi_error[1024];
    """
    char fx_capi_error[1024]

cdef extern from "Python.h":
    ctypedef struct PyThreadState:
        pass
    int PyGILState_Check() nogil
    PyThreadState* PyEval_SaveThread() nogil
    void PyEval_RestoreThread(PyThreadState*) nogil


cdef struct CHandle:
    void* ex                        # the Executor (a reference owned by the handle)
    Pipeline* p                     # its pipeline core (alive as long as the Executor)
    bint owns                       # made by open(): close the executor and model too
    bint closed
    size_t n_in, n_out
    fastexec_tensor_info* infos     # n_in inputs then n_out outputs
    char* strings                   # names, NUL-separated
    int64_t* dims
    # the profile of a dynamic HW / dims / shape model, for checking a batch's dims without the GIL
    int n_gears
    int64_t* gear_dims              # n_gears x n_in x MAX_SHAPE_DIMS: each input's shape at the gear
    int64_t* ranges                 # dynamic shape: n_in x MAX_SHAPE_DIMS x (min, max)
    char* allowed                   # Profile.allowed(): the gears or ranges, for messages


cdef inline PyThreadState* _gil_off() noexcept nogil:
    """A call made with the GIL held gives it up while it runs (it may wait)."""
    return PyEval_SaveThread() if PyGILState_Check() else NULL


cdef inline void _gil_on(PyThreadState* ts) noexcept nogil:
    if ts != NULL:
        PyEval_RestoreThread(ts)


cdef int _fail_with(int status, const char* text) noexcept nogil:
    snprintf(fx_capi_error, sizeof(fx_capi_error), "%s", text)
    return status


cdef int _fail_status(int status, const char* what, int64_t ticket, const Status* st) noexcept nogil:
    cdef const char* api = st.api
    cdef const char* msg = st.message
    if api == NULL:
        api = "ACL"
    if msg[0] == 0:
        msg = "(no message)"
    snprintf(fx_capi_error, sizeof(fx_capi_error), "%s %lld: %s failed with ACL error %d: %s", what,
             <long long>ticket, api, st.code, msg)
    return status


cdef const char* _last_error() noexcept nogil:
    return fx_capi_error


# submit / acquire take batches of rows; a batch of a dynamic HW / dims / shape model has shapes.
cdef const char* _SHAPED_NEEDS_DIMS = ("a dynamic HW / dims / shape model's batches have shapes: use submit_shaped / "
                                       "acquire_shaped, which take each input's dims")
cdef const char* _ROWS_ONLY = ("this model's batches are rows (a static or dynamic-batch model): use submit / acquire "
                               "(submit_shaped / acquire_shaped are for dynamic HW / dims / shape models)")


cdef int _usable(fastexec_executor* h) noexcept nogil:
    cdef CHandle* c = <CHandle*>h
    if c == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "the executor handle is NULL")
    if c.closed:
        return _fail_with(FASTEXEC_ERR_CLOSED, "the executor handle has been closed")
    if c.p.pid != fx_pid():
        return _fail_with(FASTEXEC_ERR_CLOSED, "the executor belongs to the parent process; a forked child cannot use it")
    if c.p.closing or c.p.insts == NULL:
        return _fail_with(FASTEXEC_ERR_CLOSED, "the executor has been closed")
    return FASTEXEC_OK


cdef int _status_of(int r, const char* unknown) noexcept nogil:
    """The C API status for a core result other than PL_OK; `unknown`: the message for PL_UNKNOWN."""
    if r == PL_BUSY:
        return _fail_with(FASTEXEC_ERR_BUSY, "no free slot: wait for and release the oldest batch first")
    if r == PL_CLOSED:
        return _fail_with(FASTEXEC_ERR_CLOSED, "the executor has been closed")
    return _fail_with(FASTEXEC_ERR_UNKNOWN_TICKET, unknown)


cdef int _from_object(void* obj, fastexec_executor** out) noexcept:
    """GIL held. A handle on a Python fastexec.Executor."""
    cdef CHandle* c
    cdef Executor ex
    cdef size_t i, nd = 0, chars = 0
    if obj == NULL or out == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "from_object: NULL argument")
    try:
        if not isinstance(<object>obj, Executor):
            return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "from_object: the object is not a fastexec.Executor")
        ex = <Executor>obj
        if not ex.is_open:
            return _fail_with(FASTEXEC_ERR_CLOSED, "from_object: the executor is closed")
        ex._check_process()
        specs = list(ex.in_specs) + list(ex.out_specs)
        for sp in specs:
            nd += len(sp.shape)
            chars += len(sp.name.encode()) + 1
        c = <CHandle*>calloc(1, sizeof(CHandle))
        if c == NULL:
            raise MemoryError()
        c.infos = <fastexec_tensor_info*>calloc(len(specs), sizeof(fastexec_tensor_info))
        c.strings = <char*>malloc(chars)
        c.dims = <int64_t*>malloc(max(nd, 1) * sizeof(int64_t))
        if c.infos == NULL or c.strings == NULL or c.dims == NULL or _profile_tables(c, ex):
            _free_handle(c)
            raise MemoryError()
        c.n_in = ex.n_in
        c.n_out = ex.n_out
        c.p = ex.p
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


cdef int _profile_tables(CHandle* c, Executor ex) except -1:
    """GIL held. A shaped model's gears or ranges and their text into the handle; -1: no memory."""
    cdef int g, i, d
    profile = ex.profile
    if not profile.shaped:
        return 0
    text = profile.allowed().encode(errors="replace")
    c.allowed = <char*>malloc(len(text) + 1)
    c.n_gears = len(profile.gears)
    c.gear_dims = <int64_t*>calloc(max(c.n_gears, 1) * max(ex.n_in, 1) * MAX_SHAPE_DIMS, sizeof(int64_t))
    c.ranges = <int64_t*>calloc(max(ex.n_in, 1) * MAX_SHAPE_DIMS * 2, sizeof(int64_t))
    if c.allowed == NULL or c.gear_dims == NULL or c.ranges == NULL:
        return -1
    memcpy(c.allowed, <const char*>text, len(text) + 1)
    for g, gear in enumerate(profile.gears):
        for i, shape in enumerate(gear):
            for d, v in enumerate(shape):
                c.gear_dims[(g * ex.n_in + i) * MAX_SHAPE_DIMS + d] = v
    for i, rng in enumerate(profile.ranges):
        for d, (lo, hi) in enumerate(rng or ()):
            c.ranges[(i * MAX_SHAPE_DIMS + d) * 2] = lo
            c.ranges[(i * MAX_SHAPE_DIMS + d) * 2 + 1] = hi
    return 0


cdef void _free_handle(CHandle* c) noexcept nogil:
    free(c.infos)
    free(c.strings)
    free(c.dims)
    free(c.gear_dims)
    free(c.ranges)
    free(c.allowed)
    free(c)


cdef int _open(const char* path, int32_t device, int32_t depth, int32_t instances, fastexec_executor** out) noexcept nogil:
    return _open_devices(path, &device, 1, depth, instances, out)


cdef int _open_devices(const char* path, const int32_t* devices, size_t n_devices, int32_t depth, int32_t instances,
                       fastexec_executor** out) noexcept nogil:
    """An executor of its own on `devices` (instances per device), closed with the handle."""
    cdef int status
    cdef size_t i
    if path == NULL or out == NULL or devices == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "open: NULL argument")
    if n_devices < 1 or n_devices > 64:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "open: n_devices must be from 1 to 64")
    with gil:
        try:
            ids = [devices[i] for i in range(n_devices)]
            ex = Executor(path.decode(), depth=depth if depth > 0 else None, instances=instances if instances > 0 else 1,
                          devices=ids)
        except BaseException as exc:
            msg = f"open: {type(exc).__name__}: {exc}".encode(errors="replace")
            return _fail_with(FASTEXEC_ERR_PYTHON, msg)
        status = _from_object(<void*>ex, out)
        if status == FASTEXEC_OK:
            (<CHandle*>out[0]).owns = True
        else:
            ex.close()
        return status


cdef int _close(fastexec_executor* h) noexcept nogil:
    """Give back every batch the handle still holds, then the handle (and what open() made)."""
    cdef CHandle* c = <CHandle*>h
    cdef void* exv
    if c == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "close: the executor handle is NULL")
    if c.closed:
        return _fail_with(FASTEXEC_ERR_CLOSED, "close: the handle is already closed")
    c.closed = True
    if c.p.pid == fx_pid():
        pl_disown_all(c.p, <intptr_t>c)
    exv = c.ex
    with gil:
        try:
            if c.owns:
                (<Executor>exv).close()
        except BaseException:
            pass
        Py_DECREF(<object>exv)
    _free_handle(c)
    return FASTEXEC_OK


cdef int _batch_size(fastexec_executor* h, uint64_t* out) noexcept nogil:
    cdef int st = _usable(h)
    if st:
        return st
    if out == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "batch_size: out is NULL")
    out[0] = (<CHandle*>h).p.batch_size
    return FASTEXEC_OK


cdef int _num_tensors(fastexec_executor* h, int is_output, size_t* out) noexcept nogil:
    cdef int st = _usable(h)
    if st:
        return st
    if out == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "num_tensors: out is NULL")
    out[0] = (<CHandle*>h).n_out if is_output else (<CHandle*>h).n_in
    return FASTEXEC_OK


cdef int _tensor_info(fastexec_executor* h, int is_output, size_t index, fastexec_tensor_info* out) noexcept nogil:
    cdef int st = _usable(h)
    cdef CHandle* c = <CHandle*>h
    if st:
        return st
    if out == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "tensor_info: out is NULL")
    if index >= (c.n_out if is_output else c.n_in):
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "tensor_info: index out of range")
    out[0] = c.infos[(c.n_in if is_output else 0) + index]
    return FASTEXEC_OK


cdef int _reserve_c(CHandle* c, int64_t* k) noexcept nogil:
    """A slot for a C batch, without waiting (FASTEXEC_ERR_BUSY when the next one is taken)."""
    cdef Waiter w
    cdef int64_t victim
    cdef int r
    waiter_init(&w, -1, False)
    r = pl_reserve(c.p, <intptr_t>c, True, &w, k, &victim)
    return _status_of(r, "reserve: no slot") if r else FASTEXEC_OK


cdef int _enqueue_c(CHandle* c, int64_t k, const char* what) noexcept nogil:
    cdef Status err
    if pl_enqueue(c.p, k, &err):
        return _fail_status(FASTEXEC_ERR_ACL, what, k, &err)
    return FASTEXEC_OK


cdef int _submit_impl(fastexec_executor* h, const void* const* inputs, uint64_t rows, int64_t* ticket) noexcept nogil:
    cdef int st = _usable(h)
    cdef CHandle* c = <CHandle*>h
    cdef int64_t k
    cdef size_t i
    if st:
        return st
    if inputs == NULL or ticket == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "submit: inputs and ticket must not be NULL")
    if c.p.dyn_kind >= DYN_HW:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, _SHAPED_NEEDS_DIMS)
    for i in range(c.n_in):
        if inputs[i] == NULL:
            return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "submit: an input pointer is NULL")
    if rows < 1 or rows > c.p.batch_size:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "submit: rows must be from 1 to the batch size")
    st = _reserve_c(c, &k)
    if st:
        return st
    pl_stage(c.p, pl_slot(c.p, k), <const char**>inputs, rows)
    st = _enqueue_c(c, k, "submit batch")
    if st == FASTEXEC_OK:
        ticket[0] = k
    return st


cdef int _acquire_impl(fastexec_executor* h, void** inputs, int64_t* ticket) noexcept nogil:
    cdef int st = _usable(h)
    cdef CHandle* c = <CHandle*>h
    cdef int64_t k
    cdef size_t i
    if st:
        return st
    if inputs == NULL or ticket == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "acquire: inputs and ticket must not be NULL")
    if c.p.dyn_kind >= DYN_HW:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, _SHAPED_NEEDS_DIMS)
    st = _reserve_c(c, &k)
    if st:
        return st
    for i in range(c.n_in):
        inputs[i] = pl_slot(c.p, k).in_hosts[i]
    ticket[0] = k
    return FASTEXEC_OK


cdef int _commit_impl(fastexec_executor* h, int64_t ticket, uint64_t rows) noexcept nogil:
    cdef int st = _usable(h)
    cdef CHandle* c = <CHandle*>h
    cdef Slot* s
    cdef bint mine
    if st:
        return st
    if rows > c.p.batch_size and c.p.dyn_kind < DYN_HW:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "commit: rows must be from 0 to the batch size")
    if ticket < 0:
        return _status_of(PL_UNKNOWN, "commit: the ticket is not an acquired, uncommitted batch of this handle")
    pthread_mutex_lock(&c.p.mu)
    s = pl_slot(c.p, ticket) if c.p.insts != NULL else NULL
    mine = s != NULL and s.ticket == ticket and s.owner == <intptr_t>c and s.state == SLOT_RESERVED
    pthread_mutex_unlock(&c.p.mu)
    if not mine:
        return _status_of(PL_UNKNOWN, "commit: the ticket is not an acquired, uncommitted batch of this handle")
    if rows == 0:
        pl_unreserve(c.p, s)
        return FASTEXEC_OK
    if c.p.dyn_kind < DYN_HW:      # (a shaped batch runs at the dims acquire_shaped gave it)
        s.rows = rows
    s.t_stage = 0
    return _enqueue_c(c, ticket, "commit batch")


cdef int _wait_impl(fastexec_executor* h, int64_t ticket, const void* const** outputs, uint64_t* rows) noexcept nogil:
    cdef int st = _usable(h)
    cdef CHandle* c = <CHandle*>h
    cdef Waiter w
    cdef Slot* s
    cdef int r
    if st and not (st == FASTEXEC_ERR_CLOSED and c != NULL and not c.closed and c.p.insts != NULL
                   and c.p.pid == fx_pid()):
        return st                   # (a closing executor still hands back the batches it holds)
    if outputs == NULL or rows == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "wait: outputs and rows must not be NULL")
    if ticket < 0:
        return _status_of(PL_UNKNOWN, "wait: the ticket is not a committed batch held by this handle")
    waiter_init(&w, -1, False)
    r = pl_wait(c.p, ticket, <intptr_t>c, &w)
    if r:
        return _status_of(r, "wait: the ticket is not a committed batch held by this handle")
    s = pl_slot(c.p, ticket)
    if s.status.code:
        return _fail_status(FASTEXEC_ERR_BATCH_FAILED, "batch", ticket, &s.status)
    outputs[0] = <const void* const*>s.out_hosts
    rows[0] = s.rows
    return FASTEXEC_OK


cdef int _release_impl(fastexec_executor* h, int64_t ticket) noexcept nogil:
    cdef CHandle* c = <CHandle*>h
    if c == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "the executor handle is NULL")
    if c.closed:
        return _fail_with(FASTEXEC_ERR_CLOSED, "the executor handle has been closed")
    if c.p.pid != fx_pid():
        return _fail_with(FASTEXEC_ERR_CLOSED, "the executor belongs to the parent process; a forked child cannot use it")
    if ticket < 0 or pl_release_ticket(c.p, ticket, <intptr_t>c):
        return _status_of(PL_UNKNOWN, "release: the ticket is not a waited batch held by this handle")
    return FASTEXEC_OK


cdef int _shape_text(char* out, size_t cap, const int64_t* dims, int nd) noexcept nogil:
    """`(d0, d1, ...)` as Python writes a shape; the characters written."""
    cdef int n = snprintf(out, cap, "(")
    cdef int j
    for j in range(nd):
        if <size_t>n < cap:
            n += snprintf(out + n, cap - n, "%lld%s", <long long>dims[j], ", " if j + 1 < nd else ("," if nd == 1 else ""))
    if <size_t>n < cap:
        n += snprintf(out + n, cap - n, ")")
    return n


cdef int _check_dims(CHandle* c, const char* what, const int64_t* const* dims, int64_t* flat, int* gear) noexcept nogil:
    """The dims of a shaped batch (dims[i]: input i's ndims values) checked against the profile,
    as Profile.match does: into `flat` (n_in x MAX_SHAPE_DIMS) with the gear (-1 for a dynamic
    shape); else FASTEXEC_ERR_INVALID_ARGUMENT naming the input, its shape and the gears or
    ranges allowed. Nothing is reserved yet."""
    cdef Pipeline* p = c.p
    cdef char shape[400]
    cdef int i, j, g, nd
    cdef bint fits, anywhere
    cdef int64_t lo, hi
    if p.dyn_kind < DYN_HW:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, _ROWS_ONLY)
    for i in range(p.n_in):
        if dims[i] == NULL:
            snprintf(fx_capi_error, sizeof(fx_capi_error), "%s: the dims of input '%s' are NULL", what, c.infos[i].name)
            return FASTEXEC_ERR_INVALID_ARGUMENT
        for j in range(p.in_ndims[i]):
            flat[i * MAX_SHAPE_DIMS + j] = dims[i][j]
    if p.dyn_kind == DYN_SHAPE:
        gear[0] = -1
        for i in range(p.n_in):
            nd = p.in_ndims[i]
            for j in range(nd):
                lo = c.ranges[(i * MAX_SHAPE_DIMS + j) * 2]
                hi = c.ranges[(i * MAX_SHAPE_DIMS + j) * 2 + 1]
                if not lo <= dims[i][j] <= hi:
                    _shape_text(shape, sizeof(shape), dims[i], nd)
                    snprintf(fx_capi_error, sizeof(fx_capi_error), "%s: input '%s': shape %s is outside the model's range: "
                             "dim %d must be in %lld..%lld (%s)", what, c.infos[i].name, shape, j, <long long>lo,
                             <long long>hi, c.allowed)
                    return FASTEXEC_ERR_INVALID_ARGUMENT
        return FASTEXEC_OK
    for g in range(c.n_gears):
        fits = True
        for i in range(p.n_in):
            if memcmp(&c.gear_dims[(g * p.n_in + i) * MAX_SHAPE_DIMS], dims[i], p.in_ndims[i] * sizeof(int64_t)):
                fits = False
                break
        if fits:
            gear[0] = g
            return FASTEXEC_OK
    for i in range(p.n_in):        # the first input whose shape is in no gear
        anywhere = False
        for g in range(c.n_gears):
            if not memcmp(&c.gear_dims[(g * p.n_in + i) * MAX_SHAPE_DIMS], dims[i], p.in_ndims[i] * sizeof(int64_t)):
                anywhere = True
                break
        if not anywhere:
            _shape_text(shape, sizeof(shape), dims[i], p.in_ndims[i])
            snprintf(fx_capi_error, sizeof(fx_capi_error), "%s: input '%s': shape %s is no gear of the model (%s)", what,
                     c.infos[i].name, shape, c.allowed)
            return FASTEXEC_ERR_INVALID_ARGUMENT
    nd = snprintf(fx_capi_error, sizeof(fx_capi_error), "%s: inputs ", what)
    for i in range(p.n_in):
        if <size_t>nd < sizeof(fx_capi_error):
            _shape_text(shape, sizeof(shape), dims[i], p.in_ndims[i])
            nd += snprintf(fx_capi_error + nd, sizeof(fx_capi_error) - nd, "%s'%s' %s", ", " if i else "",
                           c.infos[i].name, shape)
    if <size_t>nd < sizeof(fx_capi_error):
        snprintf(fx_capi_error + nd, sizeof(fx_capi_error) - nd,
                 ": each shape is in some gear, but no one gear has them all (%s)", c.allowed)
    return FASTEXEC_ERR_INVALID_ARGUMENT


cdef int _shape_reserved(CHandle* c, int64_t k, const int64_t* flat, int gear, const char* what) noexcept nogil:
    """pl_shape for the reserved C batch k, its rows its first input's dim 0; a failure gives
    the slot back."""
    cdef Slot* s = pl_slot(c.p, k)
    cdef const char* api = ""
    cdef Status err
    cdef aclError rc = pl_shape(c.p, s, gear, flat, &api)
    if rc:
        pl_unreserve(c.p, s)
        status_set(&err, rc, api, NULL)
        return _fail_status(FASTEXEC_ERR_ACL, what, k, &err)
    s.rows = flat[0] if c.p.in_ndims[0] else 1
    return FASTEXEC_OK


cdef int _submit_shaped_impl(fastexec_executor* h, const void* const* inputs, const int64_t* const* dims,
                             int64_t* ticket) noexcept nogil:
    cdef int st = _usable(h)
    cdef CHandle* c = <CHandle*>h
    cdef int64_t flat[MAX_IO * MAX_SHAPE_DIMS]
    cdef int64_t k
    cdef int gear
    cdef size_t i
    if st:
        return st
    if inputs == NULL or dims == NULL or ticket == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "submit_shaped: inputs, dims and ticket must not be NULL")
    for i in range(c.n_in):
        if inputs[i] == NULL:
            return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "submit_shaped: an input pointer is NULL")
    st = _check_dims(c, "submit_shaped", dims, flat, &gear)
    if st:
        return st
    st = _reserve_c(c, &k)
    if st:
        return st
    st = _shape_reserved(c, k, flat, gear, "submit_shaped batch")
    if st:
        return st
    pl_stage(c.p, pl_slot(c.p, k), <const char**>inputs, pl_slot(c.p, k).rows)
    st = _enqueue_c(c, k, "submit_shaped batch")
    if st == FASTEXEC_OK:
        ticket[0] = k
    return st


cdef int _acquire_shaped_impl(fastexec_executor* h, const int64_t* const* dims, void** inputs,
                              int64_t* ticket) noexcept nogil:
    cdef int st = _usable(h)
    cdef CHandle* c = <CHandle*>h
    cdef int64_t flat[MAX_IO * MAX_SHAPE_DIMS]
    cdef int64_t k
    cdef int gear
    cdef size_t i
    if st:
        return st
    if inputs == NULL or dims == NULL or ticket == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "acquire_shaped: dims, inputs and ticket must not be NULL")
    st = _check_dims(c, "acquire_shaped", dims, flat, &gear)
    if st:
        return st
    st = _reserve_c(c, &k)
    if st:
        return st
    st = _shape_reserved(c, k, flat, gear, "acquire_shaped batch")
    if st:
        return st
    for i in range(c.n_in):
        inputs[i] = pl_slot(c.p, k).in_hosts[i]
    ticket[0] = k
    return FASTEXEC_OK


cdef int _output_dims_impl(fastexec_executor* h, int64_t ticket, size_t index, int64_t* dims) noexcept nogil:
    """The real dims of output `index` of a waited batch this handle holds."""
    cdef int st = _usable(h)
    cdef CHandle* c = <CHandle*>h
    cdef Slot* s
    cdef bint held
    cdef int j
    if st and not (st == FASTEXEC_ERR_CLOSED and c != NULL and not c.closed and c.p.insts != NULL
                   and c.p.pid == fx_pid()):
        return st
    if dims == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "output_dims: dims is NULL")
    if index >= c.n_out:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "output_dims: index out of range")
    if ticket < 0:
        return _status_of(PL_UNKNOWN, "output_dims: the ticket is not a waited batch held by this handle")
    pthread_mutex_lock(&c.p.mu)
    s = pl_slot(c.p, ticket)
    held = s.ticket == ticket and s.owner == <intptr_t>c and s.state == SLOT_HELD
    if held:
        for j in range(c.p.out_ndims[index]):
            if c.p.dyn_kind >= DYN_HW:
                dims[j] = s.out_shape[index * MAX_SHAPE_DIMS + j]
            else:
                dims[j] = <int64_t>s.rows if j == 0 else c.infos[c.n_in + index].dims[j]
    pthread_mutex_unlock(&c.p.mu)
    if not held:
        return _status_of(PL_UNKNOWN, "output_dims: the ticket is not a waited batch held by this handle")
    return FASTEXEC_OK


cdef void _series_out(const Series* s, fastexec_series* o) noexcept nogil:
    o.count = s.count
    o.mean_ms = series_mean(s)
    o.min_ms = s.min if s.count else 0
    o.max_ms = s.max if s.count else 0
    o.p50_ms = series_quantile(s, 0.50)
    o.p90_ms = series_quantile(s, 0.90)
    o.p95_ms = series_quantile(s, 0.95)
    o.p99_ms = series_quantile(s, 0.99)


cdef int _stats_impl(fastexec_executor* h, fastexec_stats* out) noexcept nogil:
    cdef int st = _usable(h)
    cdef Pipeline* p
    cdef Stats* t
    cdef double wall, hh, c, d, period
    cdef int n_dev
    if st:
        return st
    if out == NULL:
        return _fail_with(FASTEXEC_ERR_INVALID_ARGUMENT, "stats: out is NULL")
    p = (<CHandle*>h).p
    memset(out, 0, sizeof(fastexec_stats))
    pthread_mutex_lock(&p.mu)
    t = p.stats
    wall = stats_wall(t)
    out.batches = t.batches
    out.wall_s = wall
    out.h2d_mean_ms = series_mean(&t.series[SERIES_H2D])
    out.execute_mean_ms = series_mean(&t.series[SERIES_EXECUTE])
    out.d2h_mean_ms = series_mean(&t.series[SERIES_D2H])
    out.samples_per_s = t.batches * p.batch_size / wall if wall > 0 else 0
    _series_out(&t.series[SERIES_H2D], &out.h2d)
    _series_out(&t.series[SERIES_EXECUTE], &out.execute)
    _series_out(&t.series[SERIES_D2H], &out.d2h)
    _series_out(&t.series[SERIES_E2E], &out.end_to_end)
    _series_out(&t.series[SERIES_STAGING], &out.host_staging)
    _series_out(&t.series[SERIES_ENQUEUE], &out.host_enqueue)
    out.calibration_batches = t.cal_batches
    out.calibration_h2d_ms = t.cal_ms[0]
    out.calibration_execute_ms = t.cal_ms[1]
    out.calibration_d2h_ms = t.cal_ms[2]
    if t.cal_batches:
        hh, c, d = t.cal_ms[0], t.cal_ms[1], t.cal_ms[2]
    else:
        hh, c, d = out.h2d_mean_ms, out.execute_mean_ms, out.d2h_mean_ms
    n_dev = p.n_devices if p.n_devices > 0 else 1
    if t.cal_batches or t.batches:
        period = bound_period_ms(hh, c, d, p.n_inst // n_dev, n_dev, p.plan.n_streams == N_STAGES)
        if period > 0:
            out.bound_period_ms = period
            out.bound_samples_per_s = p.batch_size * 1e3 / period
            out.efficiency = out.samples_per_s / out.bound_samples_per_s
        if c > 0:
            out.compute_only_samples_per_s = n_dev * p.batch_size * 1e3 / c
        if wall > 0:
            out.device_utilization = t.batches * c / 1e3 / wall / n_dev
    pthread_mutex_unlock(&p.mu)
    return FASTEXEC_OK


# The table's entries: each gives up the GIL, if its caller holds it, for the whole call.

cdef int _submit(fastexec_executor* h, const void* const* inputs, uint64_t rows, int64_t* ticket) noexcept nogil:
    cdef PyThreadState* ts = _gil_off()
    cdef int st = _submit_impl(h, inputs, rows, ticket)
    _gil_on(ts)
    return st


cdef int _acquire(fastexec_executor* h, void** inputs, int64_t* ticket) noexcept nogil:
    cdef PyThreadState* ts = _gil_off()
    cdef int st = _acquire_impl(h, inputs, ticket)
    _gil_on(ts)
    return st


cdef int _commit(fastexec_executor* h, int64_t ticket, uint64_t rows) noexcept nogil:
    cdef PyThreadState* ts = _gil_off()
    cdef int st = _commit_impl(h, ticket, rows)
    _gil_on(ts)
    return st


cdef int _wait_batch(fastexec_executor* h, int64_t ticket, const void* const** outputs, uint64_t* rows) noexcept nogil:
    cdef PyThreadState* ts = _gil_off()
    cdef int st = _wait_impl(h, ticket, outputs, rows)
    _gil_on(ts)
    return st


cdef int _release(fastexec_executor* h, int64_t ticket) noexcept nogil:
    cdef PyThreadState* ts = _gil_off()
    cdef int st = _release_impl(h, ticket)
    _gil_on(ts)
    return st


cdef int _stats(fastexec_executor* h, fastexec_stats* out) noexcept nogil:
    cdef PyThreadState* ts = _gil_off()
    cdef int st = _stats_impl(h, out)
    _gil_on(ts)
    return st


cdef int _submit_shaped(fastexec_executor* h, const void* const* inputs, const int64_t* const* dims,
                        int64_t* ticket) noexcept nogil:
    cdef PyThreadState* ts = _gil_off()
    cdef int st = _submit_shaped_impl(h, inputs, dims, ticket)
    _gil_on(ts)
    return st


cdef int _acquire_shaped(fastexec_executor* h, const int64_t* const* dims, void** inputs, int64_t* ticket) noexcept nogil:
    cdef PyThreadState* ts = _gil_off()
    cdef int st = _acquire_shaped_impl(h, dims, inputs, ticket)
    _gil_on(ts)
    return st


cdef int _output_dims(fastexec_executor* h, int64_t ticket, size_t index, int64_t* dims) noexcept nogil:
    cdef PyThreadState* ts = _gil_off()
    cdef int st = _output_dims_impl(h, ticket, index, dims)
    _gil_on(ts)
    return st


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
_api.open_devices = _open_devices
_api.submit_shaped = _submit_shaped
_api.acquire_shaped = _acquire_shaped
_api.output_dims = _output_dims

_C_API = PyCapsule_New(&_api, b"fastexec._core._C_API", NULL)
