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
    cdef readonly list inputs
    cdef readonly list outputs
    cdef readonly tuple dynamic_batch
    cdef readonly long dynamic_input_index
    cdef readonly long batch_size
    cdef _describe(self)
