/* How precise is the emulator's timing model on this machine?
 *
 * 1. Raw timer: lateness of absolute CLOCK_MONOTONIC clock_nanosleep wake-ups (what a stream
 *    worker does at the end of every task), for several sleep lengths, with the other core idle
 *    and with it busy.
 * 2. End to end: a stream of N executions of a model with a fixed modelled compute time; the
 *    host's wall time vs N x the modelled time (the timeline should not drift), and the lateness
 *    of a host synchronize after one execution.
 *
 * Build and run: python bench/timer_precision.py
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <acl/acl.h>

#include "acl_check.h"
#include <fastexec/acl_emulator.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *label, uint64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
    printf("%-48s p50 %7.1f us   p90 %7.1f us   p99 %7.1f us   max %7.1f us\n", label, v[n / 2] / 1e3, v[n * 9 / 10] / 1e3,
           v[n * 99 / 100] / 1e3, v[n - 1] / 1e3);
}

static atomic_int spin_stop;
static void *spinner(void *arg)
{
    (void)arg;
    volatile uint64_t x = 0;
    while (!atomic_load(&spin_stop)) x++;
    return NULL;
}

static void raw_timer(const char *load)
{
    static const uint64_t lengths_us[] = {50, 200, 1000};
    enum { N = 2000 };
    uint64_t *late = malloc(N * sizeof *late);
    for (size_t k = 0; k < sizeof lengths_us / sizeof lengths_us[0]; k++) {
        for (int i = 0; i < N; i++) {
            uint64_t target = now_ns() + lengths_us[k] * 1000;
            struct timespec ts = {(time_t)(target / 1000000000ull), (long)(target % 1000000000ull)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            late[i] = now_ns() - target;
        }
        char label[96];
        snprintf(label, sizeof label, "sleep %4llu us, %s: lateness", (unsigned long long)lengths_us[k], load);
        report(label, late, N);
    }
    free(late);
}


static void end_to_end(void)
{
    static const char *model = "fastexec-emulator-model 1\nname timer\ninput x float32 ND 1,16\noutput y float32 ND 1,16\n"
                               "kernel identity\ncompute_us 1000\n";
    OK(aclInit(NULL));
    OK(aclrtSetDevice(0));
    uint32_t id;
    OK(aclmdlLoadFromMem(model, strlen(model), &id));
    aclrtStream s;
    OK(aclrtCreateStream(&s));
    void *din, *dout;
    OK(aclrtMalloc(&din, 64, ACL_MEM_MALLOC_HUGE_FIRST));
    OK(aclrtMalloc(&dout, 64, ACL_MEM_MALLOC_HUGE_FIRST));
    aclmdlDataset *in = aclmdlCreateDataset(), *out = aclmdlCreateDataset();
    aclDataBuffer *bi = aclCreateDataBuffer(din, 64), *bo = aclCreateDataBuffer(dout, 64);
    OK(aclmdlAddDatasetBuffer(in, bi));
    OK(aclmdlAddDatasetBuffer(out, bo));
    fxemuProfile p;
    OK(fxemuGetProfile(&p));

    /* A queue of N executions: the modelled timeline is N * (launch-free) 1 ms back to back. */
    enum { N = 1000 };
    OK(aclmdlExecuteAsync(id, in, out, s)); /* warm-up */
    OK(aclrtSynchronizeStream(s));
    uint64_t t0 = now_ns();
    for (int i = 0; i < N; i++) OK(aclmdlExecuteAsync(id, in, out, s));
    OK(aclrtSynchronizeStream(s));
    double wall_ms = (now_ns() - t0) / 1e6;
    printf("%d queued 1.000 ms executions: wall %.2f ms = %.4f ms each (modelled 1.000 + %.3f ms launch for the first)\n", N, wall_ms,
           wall_ms / N, p.launch_us / 1e3);

    /* One execution at a time: how late does the host see it complete? */
    enum { M = 300 };
    uint64_t late[M];
    for (int i = 0; i < M; i++) {
        uint64_t a = now_ns();
        OK(aclmdlExecuteAsync(id, in, out, s));
        OK(aclrtSynchronizeStream(s));
        uint64_t modelled = (uint64_t)(p.launch_us * 1e3) + 1000000ull;
        uint64_t took = now_ns() - a;
        late[i] = took > modelled ? took - modelled : 0;
    }
    report("single execution: sync lateness", late, M);
    fxemuCounters c;
    OK(fxemuGetCounters(&c));
    printf("overruns (real work past modelled end): %llu of %llu tasks\n", (unsigned long long)c.overruns, (unsigned long long)c.tasks_run);

    OK(aclDestroyDataBuffer(bi));
    OK(aclDestroyDataBuffer(bo));
    OK(aclmdlDestroyDataset(in));
    OK(aclmdlDestroyDataset(out));
    OK(aclrtFree(din));
    OK(aclrtFree(dout));
    OK(aclrtDestroyStream(s));
    OK(aclmdlUnload(id));
    OK(aclrtResetDevice(0));
    OK(aclFinalize());
}

int main(void)
{
    raw_timer("default slack, idle");
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* as the emulator's stream workers do */
    raw_timer("1 ns slack, idle");
    pthread_t t;
    pthread_create(&t, NULL, spinner, NULL);
    raw_timer("1 ns slack, other core busy");
    atomic_store(&spin_stop, 1);
    pthread_join(t, NULL);
    end_to_end();
    return 0;
}
