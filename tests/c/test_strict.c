/* The emulator's cost model (pageable copies, allocation cost: profile values) and its
 * CANN-strict mode (FASTEXEC_EMU_STRICT=1): frees take effect at once and poison the memory,
 * a queued task that then uses it is a use-after-free finding, the APIs CANN's runtime runs
 * only with a current context require one, and destroyed handles and contexts are never
 * found again at a reused address. Each strict behaviour is checked beside the default's.
 *
 * A gate keeps a stream's later tasks queued until the test opens it: a host function
 * (aclrtLaunchHostFunc, which blocks the tasks behind it) waiting on a condition variable. */
#include "emu_test.h"

#include <sys/mman.h>

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
} gate;

static void gate_wait(void *arg)
{
    gate *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_init(gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = 0;
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static fxemuCounters counters(void)
{
    fxemuCounters c;
    CHECK_OK(fxemuGetCounters(&c));
    return c;
}

static fxemuProfile profile(void)
{
    fxemuProfile p;
    CHECK_OK(fxemuGetProfile(&p));
    return p;
}

static int all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v) return 0;
    return 1;
}

#define N 4096

/* ================================================================ profile values */

TEST(profile_default_cost_model)
{
    fxemuProfile p = profile();
    CHECK(p.h2d_pageable_gbps == 4.0);
    CHECK(p.d2h_pageable_gbps == 1.6);
    CHECK(p.alloc_us == 0.0);
    CHECK(p.strict == 0);
}

TEST_ENV(profile_env_strict_and_alloc, "FASTEXEC_EMU_STRICT=1 FASTEXEC_EMU_ALLOC_US=250")
{
    fxemuProfile p = profile();
    CHECK(p.strict == 1);
    CHECK(p.alloc_us == 250.0);
    CHECK(p.checked == 1);
}

TEST_ENV(profile_env_alloc_invalid_ignored, "FASTEXEC_EMU_ALLOC_US=-3")
{
    CHECK(profile().alloc_us == 0.0);
}

/* ================================================================ frees */

/* A D2H copy of device memory queued behind a gate; the block is freed before the gate opens. */
static void free_device_while_copy_queued(int strict, int checked)
{
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    void *dev, *src, *dst;
    CHECK_OK(aclrtMallocHost(&src, N));
    CHECK_OK(aclrtMallocHost(&dst, N));
    memset(src, 0x11, N);
    memset(dst, 0, N);
    CHECK_OK(aclrtMalloc(&dev, N, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_OK(aclrtMemcpy(dev, N, src, N, ACL_MEMCPY_HOST_TO_DEVICE));
    gate g;
    gate_init(&g);
    CHECK_OK(aclrtLaunchHostFunc(s, gate_wait, &g));
    CHECK_OK(aclrtMemcpyAsync(dst, N, dev, N, ACL_MEMCPY_DEVICE_TO_HOST, s));
    size_t free0, total;
    CHECK_OK(aclrtGetMemInfo(ACL_HBM_MEM, &free0, &total));
    if (strict) {
        CHECK_OK(aclrtFree(dev));   /* at once, as on CANN */
        fxemuCounters c = counters();
        CHECK_EQ_U64(c.device_allocations, 0);
        CHECK_EQ_U64(c.device_bytes, 0);
        size_t free1;
        CHECK_OK(aclrtGetMemInfo(ACL_HBM_MEM, &free1, &total));
        CHECK_EQ_U64(free1, total);
        /* the address means nothing any more: a new copy from it is refused (it is not device memory) */
        CHECK_CODE(aclrtMemcpy(dst, N, dev, N, ACL_MEMCPY_DEVICE_TO_HOST), ACL_ERROR_RT_PARAM_INVALID);
        CHECK_CODE(aclrtFree(dev), ACL_ERROR_RT_PARAM_INVALID);   /* a double free */
    } else {
        CHECK_CODE(aclrtFree(dev), FXEMU_ERR_FREE_IN_USE);   /* checked mode refuses it, the block stays */
        CHECK_EQ_U64(counters().device_allocations, 1);
    }
    gate_open(&g);
    CHECK_OK(aclrtSynchronizeStream(s));
    fxemuCounters c = counters();
    if (strict) {
        CHECK(all_bytes(dst, N, FXEMU_POISON_BYTE));   /* the copy read freed memory */
        CHECK_EQ_U64(c.findings_by_kind[FXEMU_FINDING_USE_AFTER_FREE], checked ? 1 : 0);
        CHECK_EQ_U64(c.findings, checked ? 1 : 0);
        if (checked) {
            char last[1024];
            CHECK_OK(fxemuLastFinding(last, sizeof last));
            CHECK(strstr(last, "freed after it was queued") != NULL);
            CHECK(strstr(last, "device memory") != NULL);
        }
        expect_findings(checked ? 1 : 0);
    } else {
        CHECK(all_bytes(dst, N, 0x11));
        CHECK_EQ_U64(c.findings_by_kind[FXEMU_FINDING_FREE_IN_USE], 1);
        CHECK_EQ_U64(c.findings_by_kind[FXEMU_FINDING_USE_AFTER_FREE], 0);
        expect_findings(1);
        CHECK_OK(aclrtFree(dev));
    }
    CHECK_EQ_U64(counters().device_allocations, 0);
    CHECK_OK(aclrtFreeHost(src));
    CHECK_OK(aclrtFreeHost(dst));
    CHECK_OK(aclrtDestroyStream(s));
    teardown();
}

TEST_ENV(strict_free_is_immediate_and_poisons, "FASTEXEC_EMU_STRICT=1") { free_device_while_copy_queued(1, 1); }
TEST_ENV(strict_unchecked_poisons_without_finding, "FASTEXEC_EMU_STRICT=1 FASTEXEC_EMU_CHECKED=0") { free_device_while_copy_queued(1, 0); }
TEST(default_free_in_use_refused) { free_device_while_copy_queued(0, 1); }

TEST_ENV(strict_free_host_while_h2d_queued, "FASTEXEC_EMU_STRICT=1")
{
    /* Pinned memory freed before the H2D copy from it runs: the device receives the poison. */
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    void *dev, *src, *back;
    CHECK_OK(aclrtMalloc(&dev, N, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_OK(aclrtMallocHost(&src, N));
    CHECK_OK(aclrtMallocHost(&back, N));
    memset(src, 0x22, N);
    gate g;
    gate_init(&g);
    CHECK_OK(aclrtLaunchHostFunc(s, gate_wait, &g));
    CHECK_OK(aclrtMemcpyAsync(dev, N, src, N, ACL_MEMCPY_HOST_TO_DEVICE, s));
    CHECK_OK(aclrtFreeHost(src));
    CHECK_EQ_U64(counters().host_allocations, 1);   /* only `back` is left */
    gate_open(&g);
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK_OK(aclrtMemcpy(back, N, dev, N, ACL_MEMCPY_DEVICE_TO_HOST));
    CHECK(all_bytes(back, N, FXEMU_POISON_BYTE));
    fxemuCounters c = counters();
    CHECK_EQ_U64(c.findings_by_kind[FXEMU_FINDING_USE_AFTER_FREE], 1);
    expect_findings(1);
    CHECK_OK(aclrtFree(dev));
    CHECK_OK(aclrtFreeHost(back));
    CHECK_OK(aclrtDestroyStream(s));
    teardown();
}

TEST_ENV(strict_free_model_output_while_execution_queued, "FASTEXEC_EMU_STRICT=1")
{
    /* A model execution whose input is freed before it runs reads the poison; its output block
     * (freed too) takes the write, and the finding names both. */
    setup();
    uint32_t id;
    CHECK_OK(aclmdlLoadFromFile(sample("tiny"), &id));
    aclmdlDesc *desc = aclmdlCreateDesc();
    CHECK_OK(aclmdlGetDesc(desc, id));
    size_t in_n = aclmdlGetInputSizeByIndex(desc, 0), out_n = aclmdlGetOutputSizeByIndex(desc, 0);
    void *in, *out;
    CHECK_OK(aclrtMalloc(&in, in_n, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_OK(aclrtMalloc(&out, out_n, ACL_MEM_MALLOC_HUGE_FIRST));
    aclmdlDataset *din = aclmdlCreateDataset(), *dout = aclmdlCreateDataset();
    aclDataBuffer *bin = aclCreateDataBuffer(in, in_n), *bout = aclCreateDataBuffer(out, out_n);
    CHECK_OK(aclmdlAddDatasetBuffer(din, bin));
    CHECK_OK(aclmdlAddDatasetBuffer(dout, bout));
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    gate g;
    gate_init(&g);
    CHECK_OK(aclrtLaunchHostFunc(s, gate_wait, &g));
    CHECK_OK(aclmdlExecuteAsync(id, din, dout, s));
    CHECK_OK(aclrtFree(in));
    CHECK_OK(aclrtFree(out));
    CHECK_EQ_U64(counters().device_allocations, 0);
    gate_open(&g);
    CHECK_OK(aclrtSynchronizeStream(s));
    fxemuCounters c = counters();
    CHECK_EQ_U64(c.findings_by_kind[FXEMU_FINDING_USE_AFTER_FREE], 2);
    char last[1024];
    CHECK_OK(fxemuLastFinding(last, sizeof last));
    CHECK(strstr(last, "model execution") != NULL);
    expect_findings(2);
    CHECK_OK(aclDestroyDataBuffer(bin));
    CHECK_OK(aclDestroyDataBuffer(bout));
    CHECK_OK(aclmdlDestroyDataset(din));
    CHECK_OK(aclmdlDestroyDataset(dout));
    CHECK_OK(aclmdlDestroyDesc(desc));
    CHECK_OK(aclmdlUnload(id));
    CHECK_OK(aclrtDestroyStream(s));
    teardown();
}

TEST_ENV(strict_free_not_in_use_is_plain, "FASTEXEC_EMU_STRICT=1")
{
    /* Nothing queued: a free is a free, with no finding. */
    setup();
    void *dev;
    CHECK_OK(aclrtMalloc(&dev, N, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_OK(aclrtFree(dev));
    CHECK_EQ_U64(counters().device_allocations, 0);
    teardown();
}

/* ================================================================ current context */

typedef struct {
    aclrtStream stream;       /* a stream of the main thread's context */
    aclrtEvent event;
    void *dev;
    aclError create_event, malloc_host, create_stream, sync_stream, record, wait, memcpy_async, destroy_stream;
    aclError sync_event, destroy_event, free_dev;
} no_ctx_arg;

static void *no_ctx_worker(void *arg)
{
    /* This thread never sets a device or context. */
    no_ctx_arg *a = arg;
    aclrtEvent ev = NULL;
    void *host = NULL;
    aclrtStream st = NULL;
    char buf[64];
    a->create_event = aclrtCreateEvent(&ev);
    a->malloc_host = aclrtMallocHost(&host, 64);
    a->create_stream = aclrtCreateStream(&st);
    a->sync_stream = aclrtSynchronizeStream(a->stream);
    a->record = aclrtRecordEvent(a->event, a->stream);
    a->wait = aclrtStreamWaitEvent(a->stream, a->event);
    a->memcpy_async = aclrtMemcpyAsync(a->dev, 64, buf, 64, ACL_MEMCPY_HOST_TO_DEVICE, a->stream);
    a->destroy_stream = aclrtDestroyStream(a->stream);
    a->sync_event = aclrtSynchronizeEvent(a->event);
    if (ev) CHECK_OK(aclrtDestroyEvent(ev));
    if (host) CHECK_OK(aclrtFreeHost(host));
    return NULL;
}

static no_ctx_arg run_without_context(void)
{
    no_ctx_arg a;
    memset(&a, 0, sizeof a);
    CHECK_OK(aclrtCreateStream(&a.stream));
    CHECK_OK(aclrtCreateEvent(&a.event));
    CHECK_OK(aclrtMalloc(&a.dev, 64, ACL_MEM_MALLOC_HUGE_FIRST));
    pthread_t th;
    CHECK(pthread_create(&th, NULL, no_ctx_worker, &a) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    return a;
}

TEST_ENV(strict_apis_need_current_context, "FASTEXEC_EMU_STRICT=1")
{
    setup();
    no_ctx_arg a = run_without_context();
    CHECK_CODE(a.create_event, ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_CODE(a.malloc_host, ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_CODE(a.create_stream, ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_CODE(a.sync_stream, ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_CODE(a.record, ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_CODE(a.wait, ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_CODE(a.memcpy_async, ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_CODE(a.destroy_stream, ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_OK(a.sync_event);   /* CANN synchronizes an event through the event's own context */
    CHECK_OK(aclrtSynchronizeStream(a.stream));
    CHECK_OK(aclrtFree(a.dev));
    CHECK_OK(aclrtDestroyEvent(a.event));
    CHECK_OK(aclrtDestroyStream(a.stream));
    teardown();
}

TEST(default_apis_without_context)
{
    /* The default mode's leniency, which strict mode removes: a given stream is enough. */
    setup();
    no_ctx_arg a = run_without_context();
    CHECK_OK(a.create_event);
    CHECK_OK(a.malloc_host);
    CHECK_CODE(a.create_stream, ACL_ERROR_RT_CONTEXT_NULL);   /* required in both modes */
    CHECK_OK(a.sync_stream);
    CHECK_OK(a.record);
    CHECK_OK(a.wait);
    CHECK_OK(a.memcpy_async);
    CHECK_OK(a.destroy_stream);
    CHECK_OK(a.sync_event);
    CHECK_OK(aclrtFree(a.dev));
    CHECK_OK(aclrtDestroyEvent(a.event));
    teardown();
}

TEST_ENV(strict_stream_of_other_context, "FASTEXEC_EMU_STRICT=1 FASTEXEC_EMU_DEVICES=2")
{
    /* A stream used while another context is current: ACL_ERROR_RT_STREAM_CONTEXT. */
    CHECK_OK(aclInit(NULL));
    aclrtContext c0, c1;
    CHECK_OK(aclrtCreateContext(&c0, 0));
    aclrtStream s0;
    CHECK_OK(aclrtCreateStream(&s0));
    aclrtEvent ev;
    CHECK_OK(aclrtCreateEvent(&ev));
    CHECK_OK(aclrtCreateContext(&c1, 1));   /* now current */
    CHECK_FAIL_MSG(aclrtSynchronizeStream(s0), ACL_ERROR_RT_STREAM_CONTEXT, "not to the calling thread's current context");
    CHECK_CODE(aclrtRecordEvent(ev, s0), ACL_ERROR_RT_STREAM_CONTEXT);
    CHECK_CODE(aclrtDestroyStream(s0), ACL_ERROR_RT_STREAM_CONTEXT);
    CHECK_OK(aclrtSetCurrentContext(c0));
    CHECK_OK(aclrtRecordEvent(ev, s0));
    CHECK_OK(aclrtSynchronizeStream(s0));
    CHECK_OK(aclrtDestroyStream(s0));
    CHECK_OK(aclrtDestroyEvent(ev));
    CHECK_OK(aclrtDestroyContext(c0));
    CHECK_OK(aclrtDestroyContext(c1));
    CHECK_OK(aclFinalize());
}

/* ================================================================ generations */

typedef struct {
    pthread_barrier_t *bar;
    aclrtContext ctx;
    aclError rc_after;
} stale_arg;

static void *stale_worker(void *arg)
{
    stale_arg *a = arg;
    CHECK_OK(aclrtSetCurrentContext(a->ctx));
    pthread_barrier_wait(a->bar);   /* the main thread destroys the context and makes new ones */
    pthread_barrier_wait(a->bar);
    aclrtContext cur = NULL;
    a->rc_after = aclrtGetCurrentContext(&cur);
    return NULL;
}

/* The worker's current context is destroyed; the main thread then creates contexts until one
 * lands at the old address (glibc reuses the chunk at once; strict mode never does). */
static void stale_context(int strict)
{
    CHECK_OK(aclInit(NULL));
    aclrtContext c1, c2 = NULL;
    CHECK_OK(aclrtCreateContext(&c1, 0));
    pthread_barrier_t bar;
    CHECK(pthread_barrier_init(&bar, NULL, 2) == 0);
    stale_arg a = {&bar, c1, ACL_SUCCESS};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, stale_worker, &a) == 0);
    pthread_barrier_wait(&bar);
    CHECK_OK(aclrtDestroyContext(c1));
    int reused = 0;
    for (int i = 0; i < 16 && !reused; i++) {
        CHECK_OK(aclrtCreateContext(&c2, 0));
        reused = c2 == c1;
        if (!reused) CHECK_OK(aclrtDestroyContext(c2));
    }
    if (strict) CHECK(!reused);
    pthread_barrier_wait(&bar);
    CHECK(pthread_join(th, NULL) == 0);
    CHECK(pthread_barrier_destroy(&bar) == 0);
    CHECK_CODE(a.rc_after, ACL_ERROR_RT_CONTEXT_NULL);   /* not the new context at the same address */
    if (reused) CHECK_OK(aclrtDestroyContext(c2));
    CHECK_OK(aclFinalize());
}

TEST(stale_context_not_found_at_reused_address) { stale_context(0); }
TEST_ENV(strict_stale_context_address_not_reused, "FASTEXEC_EMU_STRICT=1") { stale_context(1); }

TEST_ENV(strict_destroyed_handles_not_aliased, "FASTEXEC_EMU_STRICT=1")
{
    /* Destroyed events and streams keep their addresses to themselves: a stale handle is reported
     * as destroyed, never taken for the object created after it. */
    setup();
    aclrtEvent e1, e2;
    aclrtStream s1, s2;
    CHECK_OK(aclrtCreateEvent(&e1));
    CHECK_OK(aclrtDestroyEvent(e1));
    CHECK_OK(aclrtCreateEvent(&e2));
    CHECK(e1 != e2);
    CHECK_OK(aclrtCreateStream(&s1));
    CHECK_OK(aclrtDestroyStream(s1));
    CHECK_OK(aclrtCreateStream(&s2));
    CHECK(s1 != s2);
    CHECK_CODE(aclrtRecordEvent(e1, s2), FXEMU_ERR_DESTROYED_HANDLE);
    CHECK_CODE(aclrtSynchronizeStream(s1), FXEMU_ERR_DESTROYED_HANDLE);
    CHECK_EQ_U64(counters().findings_by_kind[FXEMU_FINDING_DESTROYED_HANDLE], 2);
    expect_findings(2);
    CHECK_OK(aclrtDestroyEvent(e2));
    CHECK_OK(aclrtDestroyStream(s2));
    teardown();
}

/* ================================================================ cost model, timed */

/* Best of `reps` synchronous copies of n bytes between dev and host, in ms (the least disturbed
 * by other processes; the modelled part does not vary). */
static double copy_ms(void *dev, void *host, size_t n, aclrtMemcpyKind kind, int reps)
{
    double t[16];
    for (int i = 0; i < reps; i++) {
        double t0 = now_ms();
        if (kind == ACL_MEMCPY_HOST_TO_DEVICE) CHECK_OK(aclrtMemcpy(dev, n, host, n, kind));
        else CHECK_OK(aclrtMemcpy(host, n, dev, n, kind));
        t[i] = now_ms() - t0;
    }
    double best = t[0];
    for (int i = 1; i < reps; i++) best = t[i] < best ? t[i] : best;
    return best;
}

TEST_ENV(timing_pageable_copies_slower, "FASTEXEC_EMU_FAST=0")
{
    /* 4 MiB: pinned 10 us + 175 us at 24 GB/s; pageable 10 us + 1049 us (H2D, 4.0 GB/s) and
     * 10 us + 2621 us (D2H, 1.6 GB/s). Ratios within one run. */
    setup();
    size_t n = 4u << 20;
    void *dev, *pinned, *pageable = malloc(n);
    CHECK_OK(aclrtMalloc(&dev, n, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_OK(aclrtMallocHost(&pinned, n));
    memset(pinned, 1, n);
    memset(pageable, 1, n);
    copy_ms(dev, pinned, n, ACL_MEMCPY_HOST_TO_DEVICE, 3);   /* warm */
    copy_ms(dev, pageable, n, ACL_MEMCPY_HOST_TO_DEVICE, 3);
    double h_pin = copy_ms(dev, pinned, n, ACL_MEMCPY_HOST_TO_DEVICE, 7);
    double h_page = copy_ms(dev, pageable, n, ACL_MEMCPY_HOST_TO_DEVICE, 7);
    double d_pin = copy_ms(dev, pinned, n, ACL_MEMCPY_DEVICE_TO_HOST, 7);
    double d_page = copy_ms(dev, pageable, n, ACL_MEMCPY_DEVICE_TO_HOST, 7);
    fprintf(stderr, "4 MiB: H2D pinned %.3f ms pageable %.3f ms; D2H pinned %.3f ms pageable %.3f ms\n", h_pin, h_page, d_pin, d_page);
    /* Model: 5.7x and 14.2x. A pinned 4 MiB memmove can itself take longer than its modelled
     * 175 us on a loaded VM (the task then overruns and lasts as long as the memmove), which only
     * lowers the ratios; the pageable copies are model-bound. */
    CHECK(h_page / h_pin < 8.0 && d_page / d_pin < 20.0);
    CHECK(h_page > 1.0 && d_page > 2.5);   /* at least the modelled 1.059 ms and 2.631 ms */
    /* The lower bounds of the ratios hold when the pinned copies kept near their modelled
     * 0.185 ms; a busy machine's slower memmove is the host's time, not the model's. */
    if (h_pin < 0.3) CHECK(h_page / h_pin >= 2.5);
    else fprintf(stderr, "H2D pinned copy host-bound (%.3f ms): its ratio's lower bound not checked\n", h_pin);
    if (d_pin < 0.3) CHECK(d_page / d_pin >= 5.0);
    else fprintf(stderr, "D2H pinned copy host-bound (%.3f ms): its ratio's lower bound not checked\n", d_pin);
    CHECK_OK(aclrtFree(dev));
    CHECK_OK(aclrtFreeHost(pinned));
    free(pageable);
    teardown();
}

TEST_ENV(timing_allocation_cost, "FASTEXEC_EMU_FAST=0 FASTEXEC_EMU_ALLOC_US=1000 FASTEXEC_EMU_PROFILE=slow-link")
{
    /* aclrtMalloc and aclrtFree each cost 1 ms; against a 1 MB pinned copy on slow-link
     * (10 us + 1 ms) in the same run. */
    setup();
    size_t n = 1000000;
    void *dev, *pinned;
    CHECK_OK(aclrtMalloc(&dev, n, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_OK(aclrtMallocHost(&pinned, n));
    double copy = copy_ms(dev, pinned, n, ACL_MEMCPY_HOST_TO_DEVICE, 7);
    double t[7];
    for (int i = 0; i < 7; i++) {
        void *p;
        double t0 = now_ms();
        CHECK_OK(aclrtMalloc(&p, 64, ACL_MEM_MALLOC_HUGE_FIRST));
        CHECK_OK(aclrtFree(p));
        t[i] = now_ms() - t0;
    }
    double best = t[0];
    for (int i = 1; i < 7; i++) best = t[i] < best ? t[i] : best;
    fprintf(stderr, "malloc+free %.3f ms, 1 MB copy %.3f ms\n", best, copy);
    CHECK(best / copy > 1.7 && best / copy < 3.0);   /* model: 2.0 / 1.01 */
    CHECK_OK(aclrtFree(dev));
    CHECK_OK(aclrtFreeHost(pinned));
    teardown();
}

TEST_ENV(timing_sync_calls_keep_short_models, "FASTEXEC_EMU_FAST=0")
{
    /* A synchronous 64-byte copy models 5 us of launch + 10 us of latency. Its caller polls the
     * clock through such a short wait and returns at once when the end has passed, instead of a
     * clock_nanosleep that costs ~22 us even for a past deadline and wakes 30-50 us late. */
    setup();
    void *dev, *pinned;
    CHECK_OK(aclrtMalloc(&dev, 64, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_OK(aclrtMallocHost(&pinned, 64));
    const int n = 2000;
    double best = 1e9;
    for (int attempt = 0; attempt < 3; attempt++) {
        double t0 = now_ms();
        for (int i = 0; i < n; i++) CHECK_OK(aclrtMemcpy(dev, 64, pinned, 64, ACL_MEMCPY_HOST_TO_DEVICE));
        double per_us = (now_ms() - t0) * 1e3 / n;
        best = per_us < best ? per_us : best;
    }
    fprintf(stderr, "synchronous 64-byte copy: %.2f us each (model 15 us)\n", best);
    CHECK(best >= 15.0 && best / 15.0 < 1.6);
    CHECK_OK(aclrtFree(dev));
    CHECK_OK(aclrtFreeHost(pinned));
    teardown();
}
