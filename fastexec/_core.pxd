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
    cdef int executors              # open Executors on it
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
    cdef int users                # open Executors using it
    cdef int _check_unused(self, str what) except -1


cdef class Model(DeviceChild):
    cdef readonly uint32_t model_id
    cdef aclmdlDesc* desc
    cdef bint owns_device
    cdef readonly str source
    cdef object origin            # the path it was loaded from (None when loaded from bytes)
    cdef int users                # open Executors using it
    cdef readonly list inputs
    cdef readonly list outputs
    cdef readonly tuple dynamic_batch
    cdef readonly list dynamic_hw
    cdef readonly list dynamic_dims
    cdef readonly object dynamic_kind
    cdef readonly long dynamic_input_index
    cdef readonly long aipp_input_index   # the dynamic AIPP parameter input (ACL_DYNAMIC_AIPP_NAME), or -1
    cdef readonly dict aipp               # per input name: its AIPP (Model.aipp)
    cdef readonly long batch_size
    cdef _describe(self)
    cdef _describe_aipp(self)


cdef class AippParams:
    cdef aclmdlAIPP* handle
    cdef readonly object config
    cdef readonly uint64_t batch
    cdef _fill(self, config, list entries)


# ---------------------------------------------------------------- executor (executor.pxi)

from fastexec._pipeline cimport *


cdef class Executor:
    cdef Pipeline* p                # the pipeline core's C state
    cdef readonly Device device
    cdef readonly list models
    cdef list owns_models
    cdef object source              # what further instances are loaded from (a path or bytes), or None
    cdef str label                  # the model's source, for repr()
    cdef readonly int depth
    cdef int n_instances            # in all: per_device x devices
    cdef int per_device             # instances per device
    cdef list device_ids            # the devices batches are spread over (instance i on device_ids[i % D])
    cdef list used_devices          # their Device objects, each counting this executor as a user
    cdef readonly ExecConfig config
    cdef bint overlap
    cdef int n_in
    cdef int n_out
    cdef readonly uint64_t batch_size
    cdef list in_specs
    cdef list out_specs
    cdef object profile             # fastexec._profile.Profile: the shapes a batch may have
    cdef list out_names             # bytes the pipeline's out_name pointers point into
    cdef dict done                  # finished Python batches moved out of their slots, by ticket
    cdef readonly object aipp       # the AippConfig of a dynamic AIPP model (None otherwise)
    cdef AippParams aipp_params     # it, as the aclmdlAIPP every slot's AIPP input starts with
    cdef bint is_open               # taking new batches
    cdef bint attached              # counted as a user of its device and models

    cdef _build(self, Model first)
    cdef _setup_aipp(self, Model first)
    cdef _allocate(self, int i)
    cdef int _check_process(self) except -1
    cdef int _usable(self) except -1
    cdef int _raise_wait(self, int r, Waiter* w, str what, completed=*, outputs=*) except -1
    cdef int64_t _reserve(self, intptr_t owner, Waiter* w, str what) except -1
    cdef int _collect(self, int64_t k, Waiter* w, str what) except -1
    cdef object _take(self, int64_t k, bint store)
    cdef int _enqueue(self, int64_t k) except -1
    cdef int _shape_slot(self, int64_t k, tuple shapes, object match) except -1
    cdef int _stage_shaped(self, int64_t k, list arrays, tuple shapes, object match) except -1
    cdef int _output_table(self, int i) except -1
    cdef _teardown(self)
    cdef _uncount(self)
    cdef _detach(self)
