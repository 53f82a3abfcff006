/*
 * fastexec: AscendCL DVPP API (subset): DVPP device memory only. On CANN these functions
 * live in libacl_dvpp.so; link with -lacl_dvpp. Compiles as C and as C++.
 */
#ifndef FASTEXEC_ACL_OPS_ACL_DVPP_H
#define FASTEXEC_ACL_OPS_ACL_DVPP_H

#include <stddef.h>
#include "../acl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Device memory usable by the DVPP engines (128-byte aligned); free with acldvppFree. */
ACL_FUNC_VISIBILITY aclError acldvppMalloc(void **devPtr, size_t size);
ACL_FUNC_VISIBILITY aclError acldvppFree(void *devPtr);

#ifdef __cplusplus
}
#endif

#endif /* FASTEXEC_ACL_OPS_ACL_DVPP_H */
