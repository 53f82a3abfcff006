# The cimport contract of fastexec._core: field layouts and C-level methods of the runtime
# objects (runtime.pxi), for the executor and the C API built into the same extension.
from libc.stdint cimport int32_t, uint32_t, uint64_t

from fastexec._acl.acl_base cimport *
from fastexec._acl.acl_rt cimport *
from fastexec._acl.acl_mdl cimport *


cdef class Device:
    cdef readonly int id
    cdef aclrtContext ctx
    cdef bint is_open
    cdef int children
    cdef int activate(self) except -1 nogil
    cdef int activate_nogil(self) noexcept nogil


cdef class DeviceChild:
    cdef readonly Device device
    cdef bint is_open
    cdef int attach(self, Device device) except -1
    cdef int opened(self) except -1
    cdef int release(self) except -1
    cdef bint dealloc_open(self) noexcept
    cdef int ensure_open(self) except -1 nogil


cdef class Stream(DeviceChild):
    cdef aclrtStream handle


cdef class Event(DeviceChild):
    cdef aclrtEvent handle


cdef class DeviceBuffer(DeviceChild):
    cdef void* ptr
    cdef readonly size_t nbytes


cdef class PinnedBuffer(DeviceChild):
    cdef void* ptr
    cdef readonly size_t nbytes
    cdef int exports


cdef class ExecConfig:
    cdef aclmdlExecConfigHandle* handle
    cdef dict values


cdef class Model(DeviceChild):
    cdef readonly uint32_t model_id
    cdef aclmdlDesc* desc
    cdef bint owns_device
    cdef readonly str source
    cdef object origin            # the path or bytes it was loaded from (to load it again)
    cdef readonly list inputs
    cdef readonly list outputs
    cdef readonly tuple dynamic_batch
    cdef readonly long dynamic_input_index
    cdef readonly long batch_size
    cdef _describe(self)


# ---------------------------------------------------------------- executor (executor.pxi)

from cpython.pythread cimport PyThread_type_lock
from libc.stdint cimport int64_t

cdef enum:
    STATS_WINDOW = 16384
    EV_H2D_START = 0                # a slot's events, recorded in this order on its streams
    EV_H2D_END = 1
    EV_EXEC_START = 2
    EV_EXEC_END = 3
    EV_D2H_START = 4
    EV_D2H_END = 5
    N_EVENTS = 6


cdef struct Series:
    double window[STATS_WINDOW]     # the last STATS_WINDOW samples, in ms
    uint64_t count
    double total


cdef struct IOBuf:
    void* dev
    void* host
    size_t nbytes                   # at the model's batch size
    aclDataBuffer* buf


cdef struct Slot:
    IOBuf* ins
    IOBuf* outs
    void* dyn_dev                   # the dynamic-batch tensor, for dynamic models
    aclDataBuffer* dyn_buf
    aclmdlDataset* in_ds
    aclmdlDataset* out_ds
    aclrtEvent ev[N_EVENTS]
    int n_events
    int64_t run_index               # run(): its batch number within the call
    int state                       # C API state of the slot's batch (SLOT_* in capi.pxi), 0 otherwise
    void** in_hosts                 # the pinned input / output pointers, as arrays for the C API
    void** out_hosts
    uint64_t rows                   # valid rows of that batch
    double t_submit
    double t_stage
    double t_enqueue


cdef struct Inst:
    aclrtStream stream              # execute (and, in serial mode, the copies)
    aclrtStream in_stream           # copy-in (overlap mode; else the same as stream)
    aclrtStream out_stream          # copy-out (overlap mode; else the same as stream)
    bint has_stream
    bint has_in_stream
    bint has_out_stream
    uint32_t model_id
    Slot* slots


cdef class Executor:
    cdef readonly Device device
    cdef readonly list models
    cdef list owns_models
    cdef readonly int depth
    cdef int n_instances
    cdef readonly ExecConfig config
    cdef bint use_v2
    cdef bint overlap
    cdef int n_in
    cdef int n_out
    cdef readonly uint64_t batch_size
    cdef list in_specs
    cdef list out_specs
    cdef list in_names
    cdef long dynamic_index
    cdef Inst* insts
    cdef PyThread_type_lock lock
    cdef int64_t submitted
    cdef int64_t collected
    cdef bint is_open
    cdef dict done
    cdef Series* series
    cdef double active_since
    cdef double wall
    cdef uint64_t batches
    cdef const char* err_api
    cdef unsigned long staging_owner   # thread inside a staged() block (holding the lock), or 0
    cdef int c_active                  # C API batches not yet released

    cdef _describe(self, Model m)
    cdef _allocate(self)
    cdef list _arrays(self, inputs, bint whole)
    cdef int _check_open(self) except -1
    cdef int _check_no_c(self) except -1
    cdef Slot* _slot(self, int64_t k) noexcept nogil
    cdef aclError _enqueue(self, int64_t k) noexcept nogil
    cdef aclError _fail(self, aclError rc, const char* api) noexcept nogil
    cdef aclError _abandon(self, int64_t k) noexcept nogil
    cdef aclError _wait(self, Slot* s) noexcept nogil
    cdef void _stage(self, Slot* s, const char** src, uint64_t rows) noexcept nogil
    cdef void _mark_idle_if_drained(self) noexcept nogil
    cdef int _lock(self) except -1
    cdef void _unlock(self) noexcept
    cdef int _collect_one(self) except -1
    cdef list _outputs_of(self, Slot* s)
    cdef int64_t _reserve(self) except -1
    cdef int64_t _stage_begin(self) except -1
    cdef int64_t _run_loop(self, int64_t n_batches, uint64_t n, const char** src, char** dst, aclError* err,
                           unsigned char* ok) noexcept nogil
    cdef void _copy_out(self, Slot* s, int64_t b, char** dst) noexcept nogil
