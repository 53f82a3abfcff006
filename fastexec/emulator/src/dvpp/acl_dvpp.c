/* libacl_dvpp.so of the emulator: the DVPP memory API. CANN ships these functions in a library
 * of their own; here they forward to libascendcl.so (linked with rpath $ORIGIN), which owns
 * the emulated device memory. */
#include "acl/ops/acl_dvpp.h"
#include "fastexec/acl_emulator.h"

ACL_FUNC_VISIBILITY aclError acldvppMalloc(void **devPtr, size_t size) { return fxemuDvppMalloc(devPtr, size); }

ACL_FUNC_VISIBILITY aclError acldvppFree(void *devPtr) { return fxemuDvppFree(devPtr); }
