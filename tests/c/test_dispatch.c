/* The emulator's task dispatch (docs/emulator.md, "Dispatch cost"): hosts and workers hand tasks
 * and completions over through atomics, poll before they block and wake only threads that did
 * block. These cases drive those paths from several threads and streams and check that nothing
 * completes early (the data would be wrong) or is never woken (the case would hang). Each runs
 * twice: with the default polling and with FASTEXEC_EMU_POLL_US=0, where every wait blocks at
 * once. Nothing sleeps to synchronise. timing_* cases run with modelled durations.
 */
#include "emu_test.h"

static void *host_buf(size_t n)
{
    void *p = NULL;
    CHECK_OK(aclrtMallocHost(&p, n));
    memset(p, 0, n);
    return p;
}

static void *dev_buf(size_t n)
{
    void *p = NULL;
    CHECK_OK(aclrtMalloc(&p, n, ACL_MEM_MALLOC_HUGE_FIRST));
    return p;
}

static void fill(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(seed * 2654435761u + i * 40503u);
}

static int filled(const unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(seed * 2654435761u + i * 40503u)) return 0;
    return 1;
}

/* ================================================================ three streams, events between */

/* Copy-in on one stream, a device-to-device copy on a second after the first's event, copy-out on
 * a third after the second's event, DEPTH slots round robin: the executor's overlap layout. */
static void pipeline(void)
{
    setup();
    enum { DEPTH = 3, BATCHES = 400, N = 4096 };
    aclrtStream st[3];
    for (int i = 0; i < 3; i++) CHECK_OK(aclrtCreateStream(&st[i]));
    unsigned char *in[DEPTH], *out[DEPTH];
    void *a[DEPTH], *b[DEPTH];
    aclrtEvent ev[DEPTH][3];
    int batch_in[DEPTH];
    for (int s = 0; s < DEPTH; s++) {
        in[s] = host_buf(N);
        out[s] = host_buf(N);
        a[s] = dev_buf(N);
        b[s] = dev_buf(N);
        for (int e = 0; e < 3; e++) CHECK_OK(aclrtCreateEvent(&ev[s][e]));
        batch_in[s] = -1;
    }
    int checked = 0;
    for (int k = 0; k < BATCHES + DEPTH; k++) {
        int s = k % DEPTH;
        if (batch_in[s] >= 0) {
            CHECK_OK(aclrtSynchronizeEvent(ev[s][2]));
            CHECK(filled(out[s], N, (unsigned)batch_in[s]));
            checked++;
            batch_in[s] = -1;
        }
        if (k >= BATCHES) continue;
        fill(in[s], N, (unsigned)k);
        CHECK_OK(aclrtMemcpyAsync(a[s], N, in[s], N, ACL_MEMCPY_HOST_TO_DEVICE, st[0]));
        CHECK_OK(aclrtRecordEvent(ev[s][0], st[0]));
        CHECK_OK(aclrtStreamWaitEvent(st[1], ev[s][0]));
        CHECK_OK(aclrtMemcpyAsync(b[s], N, a[s], N, ACL_MEMCPY_DEVICE_TO_DEVICE, st[1]));
        CHECK_OK(aclrtRecordEvent(ev[s][1], st[1]));
        CHECK_OK(aclrtStreamWaitEvent(st[2], ev[s][1]));
        CHECK_OK(aclrtMemcpyAsync(out[s], N, b[s], N, ACL_MEMCPY_DEVICE_TO_HOST, st[2]));
        CHECK_OK(aclrtRecordEvent(ev[s][2], st[2]));
        batch_in[s] = k;
    }
    CHECK_EQ_U64(checked, BATCHES);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(aclrtSynchronizeStream(st[i]));
        CHECK_EQ_U64(stream_status(st[i]), ACL_STREAM_STATUS_COMPLETE);
    }
    for (int s = 0; s < DEPTH; s++) {
        for (int e = 0; e < 3; e++) CHECK_OK(aclrtDestroyEvent(ev[s][e]));
        CHECK_OK(aclrtFreeHost(in[s]));
        CHECK_OK(aclrtFreeHost(out[s]));
        CHECK_OK(aclrtFree(a[s]));
        CHECK_OK(aclrtFree(b[s]));
    }
    for (int i = 0; i < 3; i++) CHECK_OK(aclrtDestroyStream(st[i]));
    teardown();
}

TEST(dispatch_pipeline_three_streams) { pipeline(); }

TEST_ENV(dispatch_pipeline_three_streams_blocking, "FASTEXEC_EMU_POLL_US=0") { pipeline(); }

/* ================================================================ threads sharing one stream */

enum { SHARE_THREADS = 4, SHARE_ROUNDS = 250, SHARE_N = 2048 };

typedef struct {
    aclrtContext ctx;
    aclrtStream stream;
    unsigned idx;
    int rounds_ok;
} share_arg;

/* Each thread queues its own copies and event on the shared stream and waits, alternately, for
 * its event and for the whole stream (whose target then includes the other threads' tasks). */
static void *share_thread(void *p)
{
    share_arg *arg = p;
    if (aclrtSetCurrentContext(arg->ctx) != ACL_SUCCESS) return NULL;
    unsigned char *src = NULL, *back = NULL;
    void *dev = NULL;
    aclrtEvent ev = NULL;
    if (aclrtMallocHost((void **)&src, SHARE_N) || aclrtMallocHost((void **)&back, SHARE_N) || aclrtMalloc(&dev, SHARE_N, ACL_MEM_MALLOC_HUGE_FIRST) ||
        aclrtCreateEvent(&ev))
        return NULL;
    for (unsigned r = 0; r < SHARE_ROUNDS; r++) {
        unsigned seed = arg->idx * 100000u + r;
        fill(src, SHARE_N, seed);
        memset(back, 0, SHARE_N);
        if (aclrtMemcpyAsync(dev, SHARE_N, src, SHARE_N, ACL_MEMCPY_HOST_TO_DEVICE, arg->stream)) break;
        if (aclrtMemcpyAsync(back, SHARE_N, dev, SHARE_N, ACL_MEMCPY_DEVICE_TO_HOST, arg->stream)) break;
        if (aclrtRecordEvent(ev, arg->stream)) break;
        aclError rc = (r & 1) ? aclrtSynchronizeStream(arg->stream) : aclrtSynchronizeEvent(ev);
        if (rc || !filled(back, SHARE_N, seed)) break;
        arg->rounds_ok++;
    }
    aclrtDestroyEvent(ev);
    aclrtFree(dev);
    aclrtFreeHost(src);
    aclrtFreeHost(back);
    return NULL;
}

static void share(void)
{
    setup();
    aclrtContext ctx;
    CHECK_OK(aclrtGetCurrentContext(&ctx));
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    pthread_t th[SHARE_THREADS];
    share_arg args[SHARE_THREADS];
    for (unsigned i = 0; i < SHARE_THREADS; i++) {
        args[i] = (share_arg){.ctx = ctx, .stream = s, .idx = i + 1};
        CHECK(pthread_create(&th[i], NULL, share_thread, &args[i]) == 0);
    }
    for (unsigned i = 0; i < SHARE_THREADS; i++) CHECK(pthread_join(th[i], NULL) == 0);
    for (unsigned i = 0; i < SHARE_THREADS; i++) CHECK_EQ_U64(args[i].rounds_ok, SHARE_ROUNDS);
    CHECK_OK(aclrtSynchronizeStream(s));
    fxemuCounters c;
    CHECK_OK(fxemuGetCounters(&c));
    CHECK(c.tasks_run >= SHARE_THREADS * SHARE_ROUNDS * 3);
    CHECK_OK(aclrtDestroyStream(s));
    teardown();
}

TEST(dispatch_threads_share_one_stream) { share(); }

TEST_ENV(dispatch_threads_share_one_stream_blocking, "FASTEXEC_EMU_POLL_US=0") { share(); }

/* ================================================================ a stalled stream */

/* A host blocked in a synchronisation is woken by its target, whatever polling says: the stream
 * is held for longer than any poll, and the waits must neither return early nor hang. */
TEST(dispatch_waits_outlast_the_poll)
{
    setup();
    enum { N = 1024 };
    aclrtStream s, t;
    CHECK_OK(aclrtCreateStream(&s));
    CHECK_OK(aclrtCreateStream(&t));
    unsigned char *src = host_buf(N), *back = host_buf(N);
    void *d = dev_buf(N), *d2 = dev_buf(N);
    fill(src, N, 7);
    aclrtEvent e;
    CHECK_OK(aclrtCreateEvent(&e));
    CHECK_OK(fxemuStallStream(s, 30));
    CHECK_OK(aclrtMemcpyAsync(d, N, src, N, ACL_MEMCPY_HOST_TO_DEVICE, s));
    CHECK_OK(aclrtRecordEvent(e, s));
    /* Stream t waits on the event (a worker blocked on another stream), then copies back. */
    CHECK_OK(aclrtStreamWaitEvent(t, e));
    CHECK_OK(aclrtMemcpyAsync(d2, N, d, N, ACL_MEMCPY_DEVICE_TO_DEVICE, t));
    CHECK_OK(aclrtMemcpyAsync(back, N, d2, N, ACL_MEMCPY_DEVICE_TO_HOST, t));
    CHECK_EQ_U64(stream_status(t), ACL_STREAM_STATUS_NOT_READY);
    CHECK_OK(aclrtSynchronizeStream(t));
    CHECK(filled(back, N, 7));
    CHECK_EQ_U64(event_status(e), ACL_EVENT_RECORDED_STATUS_COMPLETE);
    CHECK_EQ_U64(stream_status(s), ACL_STREAM_STATUS_COMPLETE);
    /* And a host blocked on an event. */
    memset(back, 0, N);
    CHECK_OK(fxemuStallStream(s, 30));
    CHECK_OK(aclrtMemcpyAsync(back, N, d, N, ACL_MEMCPY_DEVICE_TO_HOST, s));
    CHECK_OK(aclrtRecordEvent(e, s));
    CHECK_OK(aclrtSynchronizeEvent(e));
    CHECK(filled(back, N, 7));
    CHECK_EQ_U64(stream_status(s), ACL_STREAM_STATUS_COMPLETE);
    CHECK_OK(aclrtDestroyEvent(e));
    CHECK_OK(aclrtFree(d));
    CHECK_OK(aclrtFree(d2));
    CHECK_OK(aclrtFreeHost(src));
    CHECK_OK(aclrtFreeHost(back));
    CHECK_OK(aclrtDestroyStream(s));
    CHECK_OK(aclrtDestroyStream(t));
    teardown();
}

/* ================================================================ timing */

/* Short tasks are waited for by polling the clock, not by sleeping: a burst of 400 64-byte copies
 * (10 us each on the default profile) still spans 400 modelled copies on the event timeline
 * (an overrun could only lengthen it), and the host sees the burst end no earlier than that. */
TEST_ENV(timing_dispatch_short_tasks_keep_the_model, "FASTEXEC_EMU_FAST=0")
{
    setup();
    enum { COPIES = 400 };
    fxemuProfile prof;
    CHECK_OK(fxemuGetProfile(&prof));
    double copy_ms = prof.h2d_latency_us / 1e3 + 64.0 / (prof.h2d_gbps * 1e6);
    double model_ms = COPIES * copy_ms;
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    unsigned char *h = host_buf(64);
    void *d = dev_buf(64);
    aclrtEvent e0, e1;
    CHECK_OK(aclrtCreateEvent(&e0));
    CHECK_OK(aclrtCreateEvent(&e1));
    /* Best of 3 (a scheduling hiccup on a shared machine can only make an attempt longer). */
    float best = 1e9f;
    for (int attempt = 0; attempt < 3 && best > model_ms * 1.05; attempt++) {
        double t0 = now_ms();
        CHECK_OK(aclrtRecordEvent(e0, s));
        for (int i = 0; i < COPIES; i++) CHECK_OK(aclrtMemcpyAsync(d, 64, h, 64, ACL_MEMCPY_HOST_TO_DEVICE, s));
        CHECK_OK(aclrtRecordEvent(e1, s));
        CHECK_OK(aclrtSynchronizeStream(s));
        double wall = now_ms() - t0;
        float ms = elapsed_ms(e0, e1);
        printf("timing_dispatch_short_tasks_keep_the_model: attempt %d: events %.4f ms, wall %.3f ms, model %.4f ms\n", attempt, ms, wall, model_ms);
        CHECK(ms >= model_ms * 0.999);
        CHECK(wall >= model_ms * 0.999);
        if (ms < best) best = ms;
    }
    CHECK(best <= model_ms * 1.05);
    CHECK_OK(aclrtDestroyEvent(e0));
    CHECK_OK(aclrtDestroyEvent(e1));
    CHECK_OK(aclrtFree(d));
    CHECK_OK(aclrtFreeHost(h));
    CHECK_OK(aclrtDestroyStream(s));
    teardown();
}
