/*
 * fastexec: top-level AscendCL header (runtime + model subset).
 * ACL_MAJOR_VERSION / ACL_MINOR_VERSION / ACL_PATCH_VERSION (1.17.0) come
 * from acl_rt.h, where the runtime headers define them.
 */
#ifndef FASTEXEC_ACL_ACL_H
#define FASTEXEC_ACL_ACL_H

#include "acl_rt.h"
#include "acl_op.h"
#include "acl_mdl.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* FASTEXEC_ACL_ACL_H */
