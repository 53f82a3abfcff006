# Declarations of <acl/acl_rt.h>: init, devices, contexts, streams, events, memory.
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from fastexec._acl.acl_base cimport aclError, aclrtStream, aclrtEvent, aclrtContext

cdef extern from "acl/acl.h" nogil:
    ctypedef enum aclrtRunMode:
        ACL_DEVICE
        ACL_HOST
    ctypedef enum aclrtMemMallocPolicy:
        ACL_MEM_MALLOC_HUGE_FIRST
        ACL_MEM_MALLOC_HUGE_ONLY
        ACL_MEM_MALLOC_NORMAL_ONLY
    ctypedef enum aclrtMemcpyKind:
        ACL_MEMCPY_HOST_TO_HOST
        ACL_MEMCPY_HOST_TO_DEVICE
        ACL_MEMCPY_DEVICE_TO_HOST
        ACL_MEMCPY_DEVICE_TO_DEVICE
        ACL_MEMCPY_DEFAULT
    ctypedef enum aclrtEventRecordedStatus:
        ACL_EVENT_RECORDED_STATUS_NOT_READY
        ACL_EVENT_RECORDED_STATUS_COMPLETE
    ctypedef enum aclrtStreamStatus:
        ACL_STREAM_STATUS_COMPLETE
        ACL_STREAM_STATUS_NOT_READY
    ctypedef enum aclrtMemAttr:
        ACL_DDR_MEM
        ACL_HBM_MEM
    ctypedef enum aclrtHostRegisterType:
        ACL_HOST_REGISTER_MAPPED
    ctypedef void (*aclrtHostFunc)(void* args)
    enum:
        ACL_EVENT_SYNC
        ACL_EVENT_TIME_LINE
        ACL_STREAM_FAST_LAUNCH
        ACL_STREAM_FAST_SYNC

cdef extern from "acl_api.h" nogil:
    aclError aclInit "fx_acl.aclInit"(const char* configPath)
    aclError aclFinalize "fx_acl.aclFinalize"()
    aclError aclrtSetDevice "fx_acl.aclrtSetDevice"(int32_t deviceId)
    aclError aclrtResetDevice "fx_acl.aclrtResetDevice"(int32_t deviceId)
    aclError aclrtGetDevice "fx_acl.aclrtGetDevice"(int32_t* deviceId)
    aclError aclrtGetDeviceCount "fx_acl.aclrtGetDeviceCount"(uint32_t* count)
    aclError aclrtGetRunMode "fx_acl.aclrtGetRunMode"(aclrtRunMode* runMode)
    aclError aclrtCreateContext "fx_acl.aclrtCreateContext"(aclrtContext* context, int32_t deviceId)
    aclError aclrtDestroyContext "fx_acl.aclrtDestroyContext"(aclrtContext context)
    aclError aclrtSetCurrentContext "fx_acl.aclrtSetCurrentContext"(aclrtContext context)
    aclError aclrtGetCurrentContext "fx_acl.aclrtGetCurrentContext"(aclrtContext* context)

    aclError aclrtCreateStream "fx_acl.aclrtCreateStream"(aclrtStream* stream)
    aclError aclrtCreateStreamWithConfig "fx_acl.aclrtCreateStreamWithConfig"(aclrtStream* stream, uint32_t priority, uint32_t flag)
    aclError aclrtDestroyStream "fx_acl.aclrtDestroyStream"(aclrtStream stream)
    aclError aclrtSynchronizeStream "fx_acl.aclrtSynchronizeStream"(aclrtStream stream)
    aclError aclrtSynchronizeStreamWithTimeout "fx_acl.aclrtSynchronizeStreamWithTimeout"(aclrtStream stream, int32_t timeout)
    aclError aclrtStreamQuery "fx_acl.aclrtStreamQuery"(aclrtStream stream, aclrtStreamStatus* status)

    aclError aclrtCreateEvent "fx_acl.aclrtCreateEvent"(aclrtEvent* event)
    aclError aclrtCreateEventWithFlag "fx_acl.aclrtCreateEventWithFlag"(aclrtEvent* event, uint32_t flag)
    aclError aclrtDestroyEvent "fx_acl.aclrtDestroyEvent"(aclrtEvent event)
    aclError aclrtRecordEvent "fx_acl.aclrtRecordEvent"(aclrtEvent event, aclrtStream stream)
    aclError aclrtStreamWaitEvent "fx_acl.aclrtStreamWaitEvent"(aclrtStream stream, aclrtEvent event)
    aclError aclrtSynchronizeEvent "fx_acl.aclrtSynchronizeEvent"(aclrtEvent event)
    aclError aclrtSynchronizeEventWithTimeout "fx_acl.aclrtSynchronizeEventWithTimeout"(aclrtEvent event, int32_t timeout)
    aclError aclrtQueryEventStatus "fx_acl.aclrtQueryEventStatus"(aclrtEvent event, aclrtEventRecordedStatus* status)
    aclError aclrtEventElapsedTime "fx_acl.aclrtEventElapsedTime"(float* ms, aclrtEvent startEvent, aclrtEvent endEvent)
    aclError aclrtEventGetTimestamp "fx_acl.aclrtEventGetTimestamp"(aclrtEvent event, uint64_t* timestamp)
    aclError aclrtLaunchHostFunc "fx_acl.aclrtLaunchHostFunc"(aclrtStream stream, aclrtHostFunc fn, void* args)

    aclError aclrtMalloc "fx_acl.aclrtMalloc"(void** devPtr, size_t size, aclrtMemMallocPolicy policy)
    aclError aclrtMallocAlign32 "fx_acl.aclrtMallocAlign32"(void** devPtr, size_t size, aclrtMemMallocPolicy policy)
    aclError aclrtFree "fx_acl.aclrtFree"(void* devPtr)
    aclError aclrtMallocHost "fx_acl.aclrtMallocHost"(void** hostPtr, size_t size)
    aclError aclrtFreeHost "fx_acl.aclrtFreeHost"(void* hostPtr)
    aclError aclrtMemcpy "fx_acl.aclrtMemcpy"(void* dst, size_t destMax, const void* src, size_t count, aclrtMemcpyKind kind)
    aclError aclrtMemcpyAsync "fx_acl.aclrtMemcpyAsync"(void* dst, size_t destMax, const void* src, size_t count, aclrtMemcpyKind kind, aclrtStream stream)
    aclError aclrtMemset "fx_acl.aclrtMemset"(void* devPtr, size_t maxCount, int32_t value, size_t count)
    aclError aclrtMemsetAsync "fx_acl.aclrtMemsetAsync"(void* devPtr, size_t maxCount, int32_t value, size_t count, aclrtStream stream)
    aclError aclrtGetMemInfo "fx_acl.aclrtGetMemInfo"(aclrtMemAttr attr, size_t* free, size_t* total)
    aclError aclrtHostRegister "fx_acl.aclrtHostRegister"(void* ptr, uint64_t size, aclrtHostRegisterType type, void** devPtr)
    aclError aclrtHostUnregister "fx_acl.aclrtHostUnregister"(void* ptr)
