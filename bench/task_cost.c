/* The emulator's host CPU per stream task, from enqueue to completion.
 *
 * For each kind of task (a 64-byte host-to-device and device-to-host copy, an event record, a
 * wait on an event that has already completed, an execution of the `tiny` model) and each of
 * two patterns it measures the CPU time of the whole process (the calling thread and every
 * stream worker: CLOCK_PROCESS_CPUTIME_ID) divided by the number of tasks:
 *   burst   BURST tasks enqueued back to back, then one aclrtSynchronizeStream: the worker is
 *           busy, so this is the cost of dispatch itself;
 *   single  one task, then aclrtSynchronizeStream, repeated: every task finds the worker idle,
 *           so this adds the two wake-ups of a round trip (worker, then host).
 * It also reports the calling thread's share (CLOCK_THREAD_CPUTIME_ID), wall time and context
 * switches per task (getrusage; on Linux RUSAGE_SELF sums every thread). Both emulator modes are
 * measured in one run: fast mode (no modelled durations) and real timing (launch latency, copy
 * and compute durations slept on the emulated timeline; a 64-byte copy lasts ~10 us, the tiny
 * model 5 us), where CPU time, not wall time, is the figure of interest.
 *
 * usage: task_cost MODEL [TASKS] [BURST]      (python bench/task_cost.py builds and runs it)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <acl/acl.h>
#include <fastexec/acl_emulator.h>

#include "acl_check.h"

typedef enum { K_H2D, K_D2H, K_RECORD, K_WAIT, K_EXEC, K_KINDS } kind;
static const char *const kind_names[K_KINDS] = {"copy h2d", "copy d2h", "record", "wait", "execute"};

typedef struct {
    aclrtStream stream, other;
    aclrtEvent ev, done_ev;
    void *dev, *host;
    uint32_t model;
    aclmdlDataset *in, *out;
} rig;

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long switches(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_nvcsw + ru.ru_nivcsw;
}

static void enqueue(rig *r, kind k)
{
    switch (k) {
    case K_H2D: OK(aclrtMemcpyAsync(r->dev, 64, r->host, 64, ACL_MEMCPY_HOST_TO_DEVICE, r->stream)); break;
    case K_D2H: OK(aclrtMemcpyAsync(r->host, 64, r->dev, 64, ACL_MEMCPY_DEVICE_TO_HOST, r->stream)); break;
    case K_RECORD: OK(aclrtRecordEvent(r->ev, r->stream)); break;
    case K_WAIT: OK(aclrtStreamWaitEvent(r->stream, r->done_ev)); break;
    case K_EXEC: OK(aclmdlExecuteAsync(r->model, r->in, r->out, r->stream)); break;
    default: break;
    }
}

typedef struct {
    double cpu_us, host_us, wall_us, csw;
} figures;

/* `tasks` tasks of kind k in groups of `burst`, each group followed by one stream sync. */
static figures measure(rig *r, kind k, int tasks, int burst)
{
    for (int i = 0; i < burst; i++) enqueue(r, k);   /* warm-up: task records, page faults */
    OK(aclrtSynchronizeStream(r->stream));
    long csw0 = switches();
    double p0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), h0 = clock_s(CLOCK_THREAD_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC);
    int done = 0;
    while (done < tasks) {
        for (int i = 0; i < burst && done < tasks; i++, done++) enqueue(r, k);
        OK(aclrtSynchronizeStream(r->stream));
    }
    double w1 = clock_s(CLOCK_MONOTONIC), h1 = clock_s(CLOCK_THREAD_CPUTIME_ID), p1 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    long csw1 = switches();
    figures f = {(p1 - p0) * 1e6 / tasks, (h1 - h0) * 1e6 / tasks, (w1 - w0) * 1e6 / tasks, (double)(csw1 - csw0) / tasks};
    return f;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [TASKS] [BURST]\n", argv[0]);
        return 2;
    }
    int tasks = argc > 2 ? atoi(argv[2]) : 20000;
    int burst = argc > 3 ? atoi(argv[3]) : 64;
    if (tasks < 1 || burst < 1) {
        fprintf(stderr, "task_cost: TASKS and BURST must be >= 1\n");
        return 2;
    }
    OK(aclInit(NULL));
    OK(aclrtSetDevice(0));
    rig r;
    memset(&r, 0, sizeof r);
    OK(aclrtCreateStream(&r.stream));
    OK(aclrtCreateStream(&r.other));
    OK(aclrtCreateEvent(&r.ev));
    OK(aclrtCreateEvent(&r.done_ev));
    OK(aclrtRecordEvent(r.done_ev, r.other));   /* completed once: every wait on it is satisfied */
    OK(aclrtSynchronizeEvent(r.done_ev));
    OK(aclrtMalloc(&r.dev, 4096, ACL_MEM_MALLOC_HUGE_FIRST));
    OK(aclrtMallocHost(&r.host, 4096));
    memset(r.host, 0, 4096);

    OK(aclmdlLoadFromFile(argv[1], &r.model));
    aclmdlDesc *desc = aclmdlCreateDesc();
    OK(aclmdlGetDesc(desc, r.model));
    size_t in_bytes = aclmdlGetInputSizeByIndex(desc, 0), out_bytes = aclmdlGetOutputSizeByIndex(desc, 0);
    void *dev_in, *dev_out;
    OK(aclrtMalloc(&dev_in, in_bytes, ACL_MEM_MALLOC_HUGE_FIRST));
    OK(aclrtMalloc(&dev_out, out_bytes, ACL_MEM_MALLOC_HUGE_FIRST));
    OK(aclrtMemset(dev_in, in_bytes, 0, in_bytes));
    aclDataBuffer *b_in = aclCreateDataBuffer(dev_in, in_bytes), *b_out = aclCreateDataBuffer(dev_out, out_bytes);
    r.in = aclmdlCreateDataset();
    r.out = aclmdlCreateDataset();
    OK(aclmdlAddDatasetBuffer(r.in, b_in));
    OK(aclmdlAddDatasetBuffer(r.out, b_out));

    fxemuCounters c0, c1;
    OK(fxemuGetCounters(&c0));
    printf("emulator host CPU per stream task: %d tasks per case, bursts of %d (process CPU = host thread + stream workers)\n", tasks, burst);
    printf("%-6s %-7s %-9s %10s %10s %10s %10s %8s\n", "mode", "pattern", "task", "cpu us", "host us", "workers us", "wall us", "csw");
    for (int fast = 1; fast >= 0; fast--) {
        fxemuSetFastMode(fast);
        for (int pattern = 0; pattern < 2; pattern++) {
            for (int k = 0; k < K_KINDS; k++) {
                int n = pattern ? tasks / 4 : tasks;   /* round trips are slow: fewer of them */
                if (!fast && k == K_EXEC) n /= 2;
                figures f = measure(&r, (kind)k, n > 0 ? n : 1, pattern ? 1 : burst);
                printf("%-6s %-7s %-9s %10.2f %10.2f %10.2f %10.2f %8.2f\n", fast ? "fast" : "timed", pattern ? "single" : "burst", kind_names[k],
                       f.cpu_us, f.host_us, f.cpu_us - f.host_us, f.wall_us, f.csw);
            }
        }
    }
    OK(fxemuGetCounters(&c1));
    printf("overruns %llu\n", (unsigned long long)(c1.overruns - c0.overruns));

    OK(aclmdlDestroyDataset(r.in));
    OK(aclmdlDestroyDataset(r.out));
    OK(aclDestroyDataBuffer(b_in));
    OK(aclDestroyDataBuffer(b_out));
    OK(aclrtFree(dev_in));
    OK(aclrtFree(dev_out));
    OK(aclmdlDestroyDesc(desc));
    OK(aclmdlUnload(r.model));
    OK(aclrtFree(r.dev));
    OK(aclrtFreeHost(r.host));
    OK(aclrtDestroyEvent(r.ev));
    OK(aclrtDestroyEvent(r.done_ev));
    OK(aclrtDestroyStream(r.stream));
    OK(aclrtDestroyStream(r.other));
    OK(aclrtResetDevice(0));
    OK(aclFinalize());
    return 0;
}
