/* The ACL function table: every ACL function fastexec calls, resolved with dlsym at run time.
 *
 * Field types come from the project's declaration of the ABI (include/acl/acl.h) through
 * __typeof__. The Cython declarations (acl_*.pxd) name each function's C symbol as its table
 * field ("fx_acl.aclrtMalloc"), so Cython code calls aclrtMalloc(...) and the call goes through
 * the table. The table is defined in acl_api.c, which only the fastexec._core extension links:
 * one owner, one copy.
 *
 * Optional symbols (absent from some CANN builds) resolve to stubs that return
 * FX_ACL_SYMBOL_MISSING (or NULL for functions returning pointers); nothing calls NULL.
 */
#ifndef FASTEXEC_ACL_API_H
#define FASTEXEC_ACL_API_H

#include <stddef.h>

#include "acl/acl.h"

/* Returned by the stub of a missing optional symbol; no ACL code uses it. */
#define FX_ACL_SYMBOL_MISSING 999999

#define FX_ACL_REQUIRED(X)                                                                                      \
    X(aclInit) X(aclFinalize) X(aclGetRecentErrMsg)                                                            \
    X(aclrtSetDevice) X(aclrtResetDevice) X(aclrtGetDevice) X(aclrtGetDeviceCount) X(aclrtGetRunMode)          \
    X(aclrtCreateContext) X(aclrtDestroyContext) X(aclrtSetCurrentContext) X(aclrtGetCurrentContext)           \
    X(aclrtCreateStream) X(aclrtDestroyStream) X(aclrtSynchronizeStream) X(aclrtStreamQuery)                   \
    X(aclrtCreateEvent) X(aclrtCreateEventWithFlag) X(aclrtDestroyEvent) X(aclrtRecordEvent)                   \
    X(aclrtStreamWaitEvent) X(aclrtSynchronizeEvent) X(aclrtQueryEventStatus) X(aclrtEventElapsedTime)         \
    X(aclrtMalloc) X(aclrtFree) X(aclrtMallocHost) X(aclrtFreeHost) X(aclrtMemcpy) X(aclrtMemcpyAsync)         \
    X(aclrtMemset) X(aclrtMemsetAsync) X(aclrtGetMemInfo)                                                      \
    X(aclCreateDataBuffer) X(aclDestroyDataBuffer) X(aclUpdateDataBuffer) X(aclGetDataBufferAddr)              \
    X(aclGetDataBufferSizeV2) X(aclDataTypeSize)                                                               \
    X(aclmdlCreateDataset) X(aclmdlDestroyDataset) X(aclmdlAddDatasetBuffer) X(aclmdlGetDatasetNumBuffers)     \
    X(aclmdlGetDatasetBuffer) X(aclmdlLoadFromFile) X(aclmdlLoadFromMem) X(aclmdlUnload)                       \
    X(aclmdlCreateDesc) X(aclmdlDestroyDesc) X(aclmdlGetDesc) X(aclmdlGetNumInputs) X(aclmdlGetNumOutputs)     \
    X(aclmdlGetInputSizeByIndex) X(aclmdlGetOutputSizeByIndex) X(aclmdlGetInputDims) X(aclmdlGetOutputDims)    \
    X(aclmdlGetInputNameByIndex) X(aclmdlGetOutputNameByIndex) X(aclmdlGetInputDataType)                       \
    X(aclmdlGetOutputDataType) X(aclmdlGetInputFormat) X(aclmdlGetOutputFormat) X(aclmdlGetInputIndexByName)   \
    X(aclmdlGetOutputIndexByName) X(aclmdlGetDynamicBatch) X(aclmdlSetDynamicBatchSize) X(aclmdlExecute)       \
    X(aclmdlExecuteAsync)

#define FX_ACL_OPTIONAL(X)                                                                                      \
    X(aclrtGetSocName) X(aclrtSynchronizeStreamWithTimeout) X(aclrtSynchronizeEventWithTimeout)                \
    X(aclrtCreateStreamWithConfig) X(aclrtMallocAlign32) X(aclrtHostRegister) X(aclrtHostUnregister)           \
    X(aclrtLaunchHostFunc) X(aclmdlQuerySize) X(aclmdlExecuteV2) X(aclmdlExecuteAsyncV2)                       \
    X(aclmdlCreateExecConfigHandle) X(aclmdlSetExecConfigOpt) X(aclmdlDestroyExecConfigHandle)                  \
    X(aclrtEventGetTimestamp) X(aclmdlInitDump) X(aclmdlSetDump) X(aclmdlFinalizeDump)                                    \
    X(aclmdlGetInputDimsV2) X(aclmdlGetAippType) X(aclmdlGetFirstAippInfo) X(aclmdlCreateAIPP)                  \
    X(aclmdlDestroyAIPP) X(aclmdlGetAippDataSize) X(aclmdlSetAIPPInputFormat) X(aclmdlSetAIPPCscParams)         \
    X(aclmdlSetAIPPRbuvSwapSwitch) X(aclmdlSetAIPPAxSwapSwitch) X(aclmdlSetAIPPSrcImageSize)                    \
    X(aclmdlSetAIPPCropParams) X(aclmdlSetAIPPPaddingParams) X(aclmdlSetAIPPDtcPixelMean)                        \
    X(aclmdlSetAIPPDtcPixelMin) X(aclmdlSetAIPPPixelVarReci) X(aclmdlSetInputAIPP)                                            \
    X(aclmdlGetDynamicHW) X(aclmdlSetDynamicHWSize) X(aclmdlGetInputDynamicGearCount)                          \
    X(aclmdlGetInputDynamicDims) X(aclmdlSetInputDynamicDims) X(aclmdlGetInputDimsRange)                       \
    X(aclmdlGetCurOutputDims) X(aclmdlSetDatasetTensorDesc) X(aclmdlGetDatasetTensorDesc)                      \
    X(aclCreateTensorDesc) X(aclDestroyTensorDesc) X(aclGetTensorDescNumDims) X(aclGetTensorDescDimV2)

#define FX_ACL_FIELD(name) __typeof__(&name) name;
typedef struct {
    FX_ACL_REQUIRED(FX_ACL_FIELD)
    FX_ACL_OPTIONAL(FX_ACL_FIELD)
} fx_acl_table;
#undef FX_ACL_FIELD

extern fx_acl_table fx_acl;

/* Resolve every symbol from `handles` (searched in order). Returns the number of required
 * symbols missing; their names, space separated, go to `missing`. */
int fx_acl_resolve(void *const *handles, int n_handles, char *missing, size_t missing_len);
/* Space-separated names of the optional symbols that resolved to stubs ("" if none). */
const char *fx_acl_missing_optional(void);
/* 1 if `name` is an optional symbol that resolved to a stub. */
int fx_acl_is_missing(const char *name);
/* Path of the file aclInit was resolved from ("" before resolution). */
const char *fx_acl_library_path(void);

#endif
