/* For the benchmark programs: OK(call) exits with the call, its ACL error code and the
 * runtime's message when an ACL call fails. */
#ifndef FASTEXEC_BENCH_ACL_CHECK_H
#define FASTEXEC_BENCH_ACL_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#include <acl/acl.h>

#define OK(x)                                                                                  \
    do {                                                                                       \
        aclError e_ = (x);                                                                     \
        if (e_ != ACL_SUCCESS) {                                                               \
            const char *m_ = aclGetRecentErrMsg();                                             \
            fprintf(stderr, "%s failed with %d: %s\n", #x, e_, m_ ? m_ : "");                  \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

#endif
