/* The C floor of one trivial ACL call: aclrtStreamQuery on an idle stream, called directly.
 * bench/test_bench_acl_layer.py builds this and compares it with fastexec's Stream.query().
 *
 * usage: acl_call_cost [CALLS] [ROUNDS]     (default 1000000 calls, 5 rounds)
 * Prints one line per round and, last, "ns/call: X" for the best round.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <acl/acl.h>

#include "acl_check.h"


static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long calls = argc > 1 ? atol(argv[1]) : 1000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (calls < 1 || rounds < 1) {
        fprintf(stderr, "usage: %s [CALLS >= 1] [ROUNDS >= 1]\n", argv[0]);
        return 2;
    }
    OK(aclInit(NULL));
    OK(aclrtSetDevice(0));
    aclrtStream stream;
    OK(aclrtCreateStream(&stream));
    OK(aclrtSynchronizeStream(stream));

    aclrtStreamStatus status = ACL_STREAM_STATUS_RESERVED;
    for (long i = 0; i < 10000; i++) OK(aclrtStreamQuery(stream, &status)); /* warm-up */

    double best = 0;
    long not_complete = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = now_ns();
        for (long i = 0; i < calls; i++) {
            aclError e = aclrtStreamQuery(stream, &status);
            /* Checked, as a binding must; the compiler cannot drop the call (external function). */
            if (e != ACL_SUCCESS) OK(e);
            not_complete += status != ACL_STREAM_STATUS_COMPLETE;
        }
        double ns = (now_ns() - t0) / (double)calls;
        printf("round %d: %ld calls, %.2f ns/call\n", r + 1, calls, ns);
        if (r == 0 || ns < best) best = ns;
    }
    if (not_complete) {
        fprintf(stderr, "acl_call_cost: the idle stream reported NOT_READY %ld times\n", not_complete);
        return 1;
    }
    printf("ns/call: %.2f\n", best);

    OK(aclrtDestroyStream(stream));
    OK(aclrtResetDevice(0));
    OK(aclFinalize());
    return 0;
}
