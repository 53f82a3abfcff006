/*
 * fastexec: umbrella for the AscendCL base declarations.
 */
#ifndef FASTEXEC_ACL_ACL_BASE_H
#define FASTEXEC_ACL_ACL_BASE_H

#include "acl_base_rt.h"
#include "acl_base_mdl.h"
#include "error_codes/rt_error_codes.h"
#include "error_codes/ge_error_codes.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* FASTEXEC_ACL_ACL_BASE_H */
