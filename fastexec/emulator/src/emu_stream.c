/* Streams (one worker thread each, tasks in order), events, callbacks and host functions. */
#include "emu.h"

#include <stdlib.h>

static pthread_mutex_t streams_mu = PTHREAD_MUTEX_INITIALIZER;
static emu_stream *all_streams;   /* guarded by streams_mu */

/* ================================================================ reports (callbacks) */

typedef struct report {
    struct report *next;
    aclrtCallback fn;
    void *data;
    int block;
    int done;
    emu_stream *stream;
} report;

typedef struct subscriber {
    struct subscriber *next;
    uint64_t tid;
    int streams;                 /* streams subscribed */
    report *head, *tail;
} subscriber;

static pthread_mutex_t report_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t report_cv;       /* new reports, and completed blocking reports */
static pthread_once_t report_cv_once = PTHREAD_ONCE_INIT;
static subscriber *subscribers;

static void init_cond_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
}

static void report_cv_init(void) { init_cond_monotonic(&report_cv); }

static subscriber *find_subscriber(uint64_t tid)
{
    for (subscriber *s = subscribers; s; s = s->next)
        if (s->tid == tid) return s;
    return NULL;
}

/* Deliver a callback to the subscribed thread; for a blocking one wait until it has run. */
static void deliver_report(emu_stream *s, emu_task *t)
{
    pthread_once(&report_cv_once, report_cv_init);
    report r = {.fn = t->u.callback.fn, .data = t->u.callback.data, .block = t->u.callback.block, .stream = s};
    report *heap = NULL;
    pthread_mutex_lock(&report_mu);
    subscriber *sub = s->has_subscriber ? find_subscriber(s->subscriber) : NULL;
    if (!sub) {
        pthread_mutex_unlock(&report_mu);
        t->fail_code = ACL_ERROR_RT_STREAM_NO_CB_REG;   /* unsubscribed while the callback was queued */
        return;
    }
    report *rp = &r;
    if (!r.block) {
        heap = malloc(sizeof *heap);
        *heap = r;
        rp = heap;
    }
    if (sub->tail) sub->tail->next = rp; else sub->head = rp;
    sub->tail = rp;
    pthread_cond_broadcast(&report_cv);
    while (r.block && !r.done) pthread_cond_wait(&report_cv, &report_mu);
    pthread_mutex_unlock(&report_mu);
}

EMU_API aclError aclrtSubscribeReport(uint64_t threadId, aclrtStream stream)
{
    EMU_ENTER("aclrtSubscribeReport");
    emu_stream *s;
    aclError rc = emu_resolve_stream(stream, &s, "aclrtSubscribeReport");
    if (rc) return rc;
    pthread_mutex_lock(&report_mu);
    if (s->has_subscriber) {
        pthread_mutex_unlock(&report_mu);
        return emu_fail(ACL_ERROR_REPEAT_SUBSCRIBE, "aclrtSubscribeReport: the stream already has a report thread");
    }
    subscriber *sub = find_subscriber(threadId);
    if (!sub) {
        sub = calloc(1, sizeof *sub);
        sub->tid = threadId;
        sub->next = subscribers;
        subscribers = sub;
    }
    sub->streams++;
    s->has_subscriber = 1;
    s->subscriber = threadId;
    pthread_mutex_unlock(&report_mu);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtUnSubscribeReport(uint64_t threadId, aclrtStream stream)
{
    EMU_ENTER("aclrtUnSubscribeReport");
    emu_stream *s;
    aclError rc = emu_resolve_stream(stream, &s, "aclrtUnSubscribeReport");
    if (rc) return rc;
    pthread_mutex_lock(&report_mu);
    if (!s->has_subscriber || s->subscriber != threadId) {
        pthread_mutex_unlock(&report_mu);
        return emu_fail(ACL_ERROR_RT_STREAM_SUBSCRIBE, "aclrtUnSubscribeReport: thread %llu is not subscribed to this stream", (unsigned long long)threadId);
    }
    s->has_subscriber = 0;
    subscriber **pp = &subscribers;
    while (*pp && (*pp)->tid != threadId) pp = &(*pp)->next;
    if (*pp && --(*pp)->streams == 0 && !(*pp)->head) {
        subscriber *dead = *pp;
        *pp = dead->next;
        free(dead);
    }
    pthread_mutex_unlock(&report_mu);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtProcessReport(int32_t timeout)
{
    EMU_ENTER("aclrtProcessReport");
    if (timeout == 0 || timeout < -1) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtProcessReport: timeout must be -1 or > 0 (got %d)", timeout);
    pthread_once(&report_cv_once, report_cv_init);
    uint64_t me = (uint64_t)pthread_self();
    struct timespec deadline = emu_deadline_ms(timeout);
    pthread_mutex_lock(&report_mu);
    subscriber *sub = find_subscriber(me);
    if (!sub) {
        pthread_mutex_unlock(&report_mu);
        return emu_fail(ACL_ERROR_RT_THREAD_SUBSCRIBE, "aclrtProcessReport: the calling thread is not subscribed to any stream (aclrtSubscribeReport)");
    }
    while (!sub->head) {
        int w = timeout < 0 ? pthread_cond_wait(&report_cv, &report_mu) : pthread_cond_timedwait(&report_cv, &report_mu, &deadline);
        sub = find_subscriber(me);
        if (!sub) {
            pthread_mutex_unlock(&report_mu);
            return emu_fail(ACL_ERROR_RT_THREAD_SUBSCRIBE, "aclrtProcessReport: the calling thread was unsubscribed");
        }
        if (w && !sub->head) {
            pthread_mutex_unlock(&report_mu);
            return emu_fail(ACL_ERROR_RT_REPORT_TIMEOUT, "aclrtProcessReport: no callback arrived within %d ms", timeout);
        }
    }
    report *list = sub->head;
    sub->head = sub->tail = NULL;
    pthread_mutex_unlock(&report_mu);
    while (list) {
        report *r = list;
        list = r->next;
        r->fn(r->data);
        if (r->block) {
            pthread_mutex_lock(&report_mu);
            r->done = 1;   /* r lives on the waiting worker's stack */
            pthread_cond_broadcast(&report_cv);
            pthread_mutex_unlock(&report_mu);
        } else {
            free(r);
        }
    }
    return ACL_SUCCESS;
}

/* ================================================================ tasks and workers */

emu_task *emu_task_new(emu_task_kind kind)
{
    emu_task *t = calloc(1, sizeof *t);
    t->kind = kind;
    t->submit_ns = emu_now_ns();
    return t;
}

void emu_stream_push(emu_stream *s, emu_task *t, const char *api)
{
    emu_fault_task(api, &t->fail_code, &t->stall_ms);
    for (int i = 0; i < t->n_holds; i++) emu_mem_hold(t->holds[i]);
    pthread_mutex_lock(&s->mu);
    if (s->tail) s->tail->next = t; else s->head = t;
    s->tail = t;
    s->submitted++;
    pthread_cond_signal(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
}

static uint64_t launch_ns(void) { return emu_profile.fast ? 0 : (uint64_t)(emu_profile.launch_us * 1e3); }

static void record_error(emu_stream *s, aclError err)
{
    pthread_mutex_lock(&s->mu);
    if (!s->err_sync) s->err_sync = err;
    if (!s->err_event) s->err_event = err;
    pthread_mutex_unlock(&s->mu);
}

static void run_engine_task(emu_stream *s, emu_task *t, int engine, uint64_t dur)
{
    uint64_t earliest = t->submit_ns + launch_ns();
    if (s->ready_at > earliest) earliest = s->ready_at;
    emu_engine *e = &s->dev->engines[engine];
    emu_engine_slot slot;
    emu_engine_begin(&slot, e, earliest, dur);
    if (t->fail_code == ACL_SUCCESS) {
        switch (t->kind) {
        case EMU_T_COPY: memmove(t->u.copy.dst, t->u.copy.src, t->u.copy.n); break;
        case EMU_T_MEMSET: memset(t->u.memset.dst, t->u.memset.value, t->u.memset.n); break;
        case EMU_T_EXEC: emu_exec_task_run(s, t); break;
        default: break;
        }
    }
    s->ready_at = emu_engine_end(&slot, 1);
}

/* Drop a snapshot reference; caller holds the event's mutex. */
static void snapshot_unref(emu_snapshot *snap)
{
    if (snap && --snap->refs == 0) free(snap);
}

static void run_record(emu_stream *s, emu_task *t)
{
    emu_event *ev = t->u.record.ev;
    uint64_t ts = t->submit_ns + launch_ns(); /* a record is a task: it takes effect after the launch latency too */
    if (s->ready_at > ts) ts = s->ready_at;
    s->ready_at = ts;
    /* The event completes and the stream counts the record as done in one step, so a host that
     * sees the event complete also sees the stream reach it. */
    pthread_mutex_lock(&s->mu);
    aclError err = s->err_event;
    s->err_event = ACL_SUCCESS;
    pthread_mutex_lock(&ev->mu);
    emu_snapshot *snap = t->u.record.snap;
    snap->done = 1;
    snap->ts = ts;
    snap->err = err;
    snapshot_unref(snap);
    s->completed++;
    pthread_cond_broadcast(&ev->cv);
    pthread_cond_broadcast(&s->cv_done);
    pthread_mutex_unlock(&ev->mu);
    pthread_mutex_unlock(&s->mu);
}

static void run_wait(emu_stream *s, emu_task *t)
{
    emu_event *ev = t->u.wait.ev;
    pthread_mutex_lock(&ev->mu);
    emu_snapshot *snap = t->u.wait.snap;
    while (!snap->done) pthread_cond_wait(&ev->cv, &ev->mu);
    uint64_t ts = snap->ts;
    snapshot_unref(snap);
    pthread_mutex_unlock(&ev->mu);
    if (ts > s->ready_at) s->ready_at = ts;
}

static void run_task(emu_stream *s, emu_task *t)
{
    if (t->stall_ms) {
        emu_sleep_until(emu_now_ns() + (uint64_t)t->stall_ms * 1000000ull);
        s->ready_at = emu_now_ns();
    }
    switch (t->kind) {
    case EMU_T_COPY:
        run_engine_task(s, t, t->u.copy.dir == ACL_MEMCPY_DEVICE_TO_HOST ? EMU_ENGINE_D2H : EMU_ENGINE_H2D, emu_copy_ns(t->u.copy.dir, t->u.copy.n));
        break;
    case EMU_T_MEMSET:
        run_engine_task(s, t, EMU_ENGINE_H2D, emu_copy_ns(ACL_MEMCPY_DEVICE_TO_DEVICE, t->u.memset.n));
        break;
    case EMU_T_EXEC:
        run_engine_task(s, t, EMU_ENGINE_COMPUTE, emu_exec_duration_ns(t->u.exec.model, t->u.exec.batch));
        break;
    case EMU_T_RECORD:
        atomic_fetch_add(&emu_live.tasks_run, 1); /* counted before the record completes, like the stream */
        run_record(s, t);
        break;
    case EMU_T_WAIT: run_wait(s, t); break;
    case EMU_T_CALLBACK: deliver_report(s, t); break;
    case EMU_T_HOSTFUNC: t->u.hostfunc.fn(t->u.hostfunc.args); break;
    case EMU_T_STALL: emu_sleep_until(emu_now_ns() + (uint64_t)t->u.stall.ms * 1000000ull); s->ready_at = emu_now_ns(); break;
    }
    if (t->fail_code != ACL_SUCCESS) {
        emu_exception_task_failed(s, t);
        record_error(s, t->fail_code);
    }
    if (t->kind == EMU_T_EXEC) emu_exec_task_done(t, t->fail_code);
    if (t->kind == EMU_T_RECORD) emu_event_unref(t->u.record.ev);
    if (t->kind == EMU_T_WAIT) emu_event_unref(t->u.wait.ev);
    for (int i = 0; i < t->n_holds; i++) emu_mem_release(t->holds[i]);
    if (t->kind != EMU_T_RECORD) atomic_fetch_add(&emu_live.tasks_run, 1);
}

static void *worker(void *arg)
{
    emu_stream *s = arg;
    emu_precise_timers();
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stopping) pthread_cond_wait(&s->cv_work, &s->mu);
        if (!s->head) break;
        emu_task *t = s->head;
        s->head = t->next;
        if (!s->head) s->tail = NULL;
        pthread_mutex_unlock(&s->mu);
        int counted = t->kind == EMU_T_RECORD; /* run_record counts itself */
        run_task(s, t);
        free(t);
        pthread_mutex_lock(&s->mu);
        if (!counted) s->completed++;
        pthread_cond_broadcast(&s->cv_done);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

aclError emu_stream_create(emu_context *ctx, uint32_t flags, int is_default, emu_stream **out)
{
    static atomic_uint next_id;
    emu_stream *s = calloc(1, sizeof *s);
    s->id = atomic_fetch_add(&next_id, 1);
    s->ctx = ctx;
    s->dev = ctx->dev;
    s->is_default = is_default;
    s->flags = flags;
    s->sync_timeout_ms = -1;
    s->event_timeout_ms = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv_work, NULL);
    init_cond_monotonic(&s->cv_done);
    if (pthread_create(&s->thread, NULL, worker, s) != 0) {
        free(s);
        return emu_fail(ACL_ERROR_RT_NO_STREAM_RESOURCE, "aclrtCreateStream: cannot start the stream's worker thread");
    }
    emu_handle_add(s, EMU_H_STREAM);
    pthread_mutex_lock(&streams_mu);
    s->next_all = all_streams;
    all_streams = s;
    pthread_mutex_unlock(&streams_mu);
    *out = s;
    return ACL_SUCCESS;
}

void emu_stream_destroy(emu_stream *s)
{
    emu_handle_remove(s, EMU_H_STREAM);
    pthread_mutex_lock(&streams_mu);
    emu_stream **pp = &all_streams;
    while (*pp && *pp != s) pp = &(*pp)->next_all;
    if (*pp) *pp = s->next_all;
    pthread_mutex_unlock(&streams_mu);
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);   /* the worker drains the queue first */
    if (s->has_subscriber) {
        pthread_mutex_lock(&report_mu);
        subscriber **sp = &subscribers;
        while (*sp && (*sp)->tid != s->subscriber) sp = &(*sp)->next;
        if (*sp && --(*sp)->streams == 0 && !(*sp)->head) {
            subscriber *dead = *sp;
            *sp = dead->next;
            free(dead);
        }
        pthread_mutex_unlock(&report_mu);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv_work);
    pthread_cond_destroy(&s->cv_done);
    free(s);
}

void emu_context_drop_streams(emu_context *ctx)
{
    for (;;) {
        pthread_mutex_lock(&streams_mu);
        emu_stream *s = all_streams;
        while (s && s->ctx != ctx) s = s->next_all;
        pthread_mutex_unlock(&streams_mu);
        if (!s) return;
        if (!s->is_default) atomic_fetch_sub(&emu_live.streams, 1);
        emu_stream_destroy(s);
    }
}

aclError emu_stream_sync(emu_stream *s, int32_t timeout_ms, const char *api)
{
    struct timespec deadline = emu_deadline_ms(timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&s->mu);
    uint64_t target = s->submitted;
    while (s->completed < target) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&s->cv_done, &s->mu);
        } else if (timeout_ms == 0 || pthread_cond_timedwait(&s->cv_done, &s->mu, &deadline) != 0) {
            if (s->completed >= target) break;
            pthread_mutex_unlock(&s->mu);
            return emu_fail(ACL_ERROR_RT_STREAM_SYNC_TIMEOUT, "%s: stream synchronization timed out after %d ms (%llu task(s) still queued)", api, timeout_ms,
                            (unsigned long long)(target - s->completed));
        }
    }
    aclError err = s->err_sync;
    s->err_sync = ACL_SUCCESS;
    pthread_mutex_unlock(&s->mu);
    if (err) return emu_fail(err, "%s: a task queued on the stream failed with error %d", api, err);
    return ACL_SUCCESS;
}

/* ================================================================ stream API */

static aclError create_stream(aclrtStream *stream, uint32_t flags, const char *api)
{
    if (!stream) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: stream is NULL", api);
    emu_context *ctx;
    aclError ctx_rc = emu_require_context(&ctx, api);
    if (ctx_rc) return ctx_rc;
    emu_stream *s;
    aclError rc = emu_stream_create(ctx, flags, 0, &s);
    if (rc) return rc;
    atomic_fetch_add(&emu_live.streams, 1);
    *stream = s;
    return ACL_SUCCESS;
}

EMU_API aclError aclrtCreateStream(aclrtStream *stream)
{
    EMU_ENTER("aclrtCreateStream");
    return create_stream(stream, 0, "aclrtCreateStream");
}

EMU_API aclError aclrtCreateStreamWithConfig(aclrtStream *stream, uint32_t priority, uint32_t flag)
{
    EMU_ENTER("aclrtCreateStreamWithConfig");
    (void)priority; /* documented as reserved */
    uint32_t known = ACL_STREAM_FAST_LAUNCH | ACL_STREAM_FAST_SYNC | ACL_STREAM_PERSISTENT | ACL_STREAM_HUGE | ACL_STREAM_CPU_SCHEDULE |
                     ACL_STREAM_DEVICE_USE_ONLY;
    if (flag & ~known) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtCreateStreamWithConfig: unknown flag bits 0x%x", flag & ~known);
    return create_stream(stream, flag, "aclrtCreateStreamWithConfig");
}

EMU_API aclError aclrtDestroyStream(aclrtStream stream)
{
    EMU_ENTER("aclrtDestroyStream");
    aclError rc = emu_check_handle(stream, EMU_H_STREAM, "aclrtDestroyStream");
    if (rc) return rc;
    emu_stream *s = stream;
    if (s->is_default) return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtDestroyStream: %p is a context's default stream", stream);
    atomic_fetch_sub(&emu_live.streams, 1);
    emu_stream_destroy(s);
    return ACL_SUCCESS;
}

static int sync_returns_at_once(emu_stream *s)
{
    return s->flags & (ACL_STREAM_PERSISTENT | ACL_STREAM_DEVICE_USE_ONLY | ACL_STREAM_CPU_SCHEDULE);
}

EMU_API aclError aclrtSynchronizeStream(aclrtStream stream)
{
    EMU_ENTER("aclrtSynchronizeStream");
    emu_stream *s;
    aclError rc = emu_resolve_stream(stream, &s, "aclrtSynchronizeStream");
    if (rc) return rc;
    if (sync_returns_at_once(s)) return ACL_SUCCESS;
    return emu_stream_sync(s, s->sync_timeout_ms, "aclrtSynchronizeStream");
}

EMU_API aclError aclrtSynchronizeStreamWithTimeout(aclrtStream stream, int32_t timeout)
{
    EMU_ENTER("aclrtSynchronizeStreamWithTimeout");
    if (timeout < -1) return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtSynchronizeStreamWithTimeout: timeout must be >= -1 (got %d)", timeout);
    emu_stream *s;
    aclError rc = emu_resolve_stream(stream, &s, "aclrtSynchronizeStreamWithTimeout");
    if (rc) return rc;
    if (sync_returns_at_once(s)) return ACL_SUCCESS;
    return emu_stream_sync(s, timeout, "aclrtSynchronizeStreamWithTimeout");
}

EMU_API aclError aclrtStreamQuery(aclrtStream stream, aclrtStreamStatus *status)
{
    EMU_ENTER("aclrtStreamQuery");
    if (!status) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtStreamQuery: status is NULL");
    emu_stream *s;
    aclError rc = emu_resolve_stream(stream, &s, "aclrtStreamQuery");
    if (rc) return rc;
    pthread_mutex_lock(&s->mu);
    *status = s->completed == s->submitted ? ACL_STREAM_STATUS_COMPLETE : ACL_STREAM_STATUS_NOT_READY;
    pthread_mutex_unlock(&s->mu);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtCtxGetCurrentDefaultStream(aclrtStream *stream)
{
    EMU_ENTER("aclrtCtxGetCurrentDefaultStream");
    if (!stream) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtCtxGetCurrentDefaultStream: stream is NULL");
    emu_context *ctx;
    aclError ctx_rc = emu_require_context(&ctx, "aclrtCtxGetCurrentDefaultStream");
    if (ctx_rc) return ctx_rc;
    *stream = ctx->default_stream;
    return ACL_SUCCESS;
}

EMU_API aclError aclrtSynchronizeDevice(void)
{
    EMU_ENTER("aclrtSynchronizeDevice");
    emu_context *ctx;
    aclError ctx_rc = emu_require_context(&ctx, "aclrtSynchronizeDevice");
    if (ctx_rc) return ctx_rc;
    aclError first = ACL_SUCCESS;
    for (;;) {
        /* Streams may be created meanwhile; one pass over a snapshot is what the API promises. */
        pthread_mutex_lock(&streams_mu);
        size_t n = 0;
        for (emu_stream *s = all_streams; s; s = s->next_all) n += s->dev == ctx->dev;
        emu_stream **snap = calloc(n ? n : 1, sizeof *snap);
        size_t i = 0;
        for (emu_stream *s = all_streams; s; s = s->next_all)
            if (s->dev == ctx->dev) snap[i++] = s;
        pthread_mutex_unlock(&streams_mu);
        for (i = 0; i < n; i++) {
            if (!emu_handle_live(snap[i], EMU_H_STREAM)) continue;
            aclError rc = emu_stream_sync(snap[i], -1, "aclrtSynchronizeDevice");
            if (rc && !first) first = rc;
        }
        free(snap);
        return first;
    }
}

EMU_API aclError fxemuStallStream(aclrtStream stream, uint32_t ms)
{
    EMU_ENTER("fxemuStallStream");
    emu_stream *s;
    aclError rc = emu_resolve_stream(stream, &s, "fxemuStallStream");
    if (rc) return rc;
    emu_task *t = emu_task_new(EMU_T_STALL);
    t->u.stall.ms = ms;
    emu_stream_push(s, t, "fxemuStallStream");
    return ACL_SUCCESS;
}

/* ================================================================ events */

static aclError create_event(aclrtEvent *event, uint32_t flags, const char *api)
{
    if (!event) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: event is NULL", api);
    emu_event *ev = calloc(1, sizeof *ev);
    pthread_mutex_init(&ev->mu, NULL);
    init_cond_monotonic(&ev->cv);
    ev->flags = flags;
    ev->refs = 1;
    emu_handle_add(ev, EMU_H_EVENT);
    atomic_fetch_add(&emu_live.events, 1);
    *event = ev;
    return ACL_SUCCESS;
}

void emu_event_unref(emu_event *ev)
{
    pthread_mutex_lock(&ev->mu);
    int left = --ev->refs;
    if (!left) snapshot_unref(ev->latest);
    pthread_mutex_unlock(&ev->mu);
    if (left) return;
    pthread_mutex_destroy(&ev->mu);
    pthread_cond_destroy(&ev->cv);
    free(ev);
}

EMU_API aclError aclrtCreateEvent(aclrtEvent *event)
{
    EMU_ENTER("aclrtCreateEvent");
    return create_event(event, ACL_EVENT_SYNC | ACL_EVENT_TIME_LINE, "aclrtCreateEvent");
}

EMU_API aclError aclrtCreateEventWithFlag(aclrtEvent *event, uint32_t flag)
{
    EMU_ENTER("aclrtCreateEventWithFlag");
    uint32_t known = ACL_EVENT_SYNC | ACL_EVENT_CAPTURE_STREAM_PROGRESS | ACL_EVENT_TIME_LINE | ACL_EVENT_DEVICE_USE_ONLY | ACL_EVENT_EXTERNAL |
                     ACL_EVENT_IPC;
    if (flag & ~known) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtCreateEventWithFlag: unknown flag bits 0x%x", flag & ~known);
    if ((flag & (ACL_EVENT_EXTERNAL | ACL_EVENT_IPC)) && (flag & ~(uint32_t)(ACL_EVENT_EXTERNAL | ACL_EVENT_IPC)))
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtCreateEventWithFlag: ACL_EVENT_EXTERNAL and ACL_EVENT_IPC cannot be combined with other flags");
    if ((flag & ACL_EVENT_EXTERNAL) && (flag & ACL_EVENT_IPC))
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtCreateEventWithFlag: ACL_EVENT_EXTERNAL and ACL_EVENT_IPC cannot be combined");
    return create_event(event, flag, "aclrtCreateEventWithFlag");
}

EMU_API aclError aclrtDestroyEvent(aclrtEvent event)
{
    EMU_ENTER("aclrtDestroyEvent");
    aclError rc = emu_check_handle(event, EMU_H_EVENT, "aclrtDestroyEvent");
    if (rc) return rc;
    emu_handle_remove(event, EMU_H_EVENT);
    atomic_fetch_sub(&emu_live.events, 1);
    emu_event_unref(event);   /* queued records and waits keep it until they run */
    return ACL_SUCCESS;
}

EMU_API aclError aclrtRecordEvent(aclrtEvent event, aclrtStream stream)
{
    EMU_ENTER("aclrtRecordEvent");
    aclError rc = emu_check_handle(event, EMU_H_EVENT, "aclrtRecordEvent");
    if (rc) return rc;
    emu_stream *s;
    rc = emu_resolve_stream(stream, &s, "aclrtRecordEvent");
    if (rc) return rc;
    emu_event *ev = event;
    emu_task *t = emu_task_new(EMU_T_RECORD);
    emu_snapshot *snap = calloc(1, sizeof *snap);
    snap->refs = 2; /* the event's latest + the record task */
    pthread_mutex_lock(&s->mu);
    snap->timeout_ms = s->event_timeout_ms; /* sticky exec-config timeout of the stream */
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&ev->mu);
    ev->refs++;
    snapshot_unref(ev->latest);
    ev->latest = snap;
    t->u.record.ev = ev;
    t->u.record.snap = snap;
    pthread_mutex_unlock(&ev->mu);
    emu_stream_push(s, t, "aclrtRecordEvent");
    return ACL_SUCCESS;
}

EMU_API aclError aclrtStreamWaitEvent(aclrtStream stream, aclrtEvent event)
{
    EMU_ENTER("aclrtStreamWaitEvent");
    aclError rc = emu_check_handle(event, EMU_H_EVENT, "aclrtStreamWaitEvent");
    if (rc) return rc;
    emu_stream *s;
    rc = emu_resolve_stream(stream, &s, "aclrtStreamWaitEvent");
    if (rc) return rc;
    emu_event *ev = event;
    if (!(ev->flags & ACL_EVENT_SYNC))
        return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtStreamWaitEvent: the event was created without ACL_EVENT_SYNC");
    pthread_mutex_lock(&ev->mu);
    emu_snapshot *snap = ev->latest;
    if (snap) {
        ev->refs++;
        snap->refs++;
    }
    pthread_mutex_unlock(&ev->mu);
    if (!snap) return ACL_SUCCESS;   /* never recorded: nothing to wait for */
    emu_task *t = emu_task_new(EMU_T_WAIT);
    t->u.wait.ev = ev;
    t->u.wait.snap = snap;
    emu_stream_push(s, t, "aclrtStreamWaitEvent");
    return ACL_SUCCESS;
}

static aclError sync_event(emu_event *ev, int32_t timeout_ms, const char *api)
{
    pthread_mutex_lock(&ev->mu);
    emu_snapshot *snap = ev->latest;
    if (!snap) { /* never recorded: nothing to wait for */
        pthread_mutex_unlock(&ev->mu);
        return ACL_SUCCESS;
    }
    snap->refs++;
    aclError rc = ACL_SUCCESS;
    if (timeout_ms < 0) timeout_ms = snap->timeout_ms;
    struct timespec deadline = emu_deadline_ms(timeout_ms > 0 ? timeout_ms : 0);
    while (!snap->done) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&ev->cv, &ev->mu);
        } else if (timeout_ms == 0 || pthread_cond_timedwait(&ev->cv, &ev->mu, &deadline) != 0) {
            if (snap->done) break;
            rc = emu_fail(ACL_ERROR_RT_EVENT_SYNC_TIMEOUT, "%s: the event did not complete within %d ms", api, timeout_ms);
            break;
        }
    }
    aclError err = snap->done ? snap->err : ACL_SUCCESS;
    snapshot_unref(snap);
    pthread_mutex_unlock(&ev->mu);
    if (rc) return rc;
    if (err) return emu_fail(err, "%s: a task before the event's record failed with error %d", api, err);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtSynchronizeEvent(aclrtEvent event)
{
    EMU_ENTER("aclrtSynchronizeEvent");
    aclError rc = emu_check_handle(event, EMU_H_EVENT, "aclrtSynchronizeEvent");
    if (rc) return rc;
    return sync_event(event, -1, "aclrtSynchronizeEvent");
}

EMU_API aclError aclrtSynchronizeEventWithTimeout(aclrtEvent event, int32_t timeout)
{
    EMU_ENTER("aclrtSynchronizeEventWithTimeout");
    if (timeout < -1) return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtSynchronizeEventWithTimeout: timeout must be >= -1 (got %d)", timeout);
    aclError rc = emu_check_handle(event, EMU_H_EVENT, "aclrtSynchronizeEventWithTimeout");
    if (rc) return rc;
    /* An explicit -1 waits forever, whatever the sticky exec-config timeout says. */
    return sync_event(event, timeout == -1 ? INT32_MAX : timeout, "aclrtSynchronizeEventWithTimeout");
}

EMU_API aclError aclrtQueryEventStatus(aclrtEvent event, aclrtEventRecordedStatus *status)
{
    EMU_ENTER("aclrtQueryEventStatus");
    if (!status) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtQueryEventStatus: status is NULL");
    aclError rc = emu_check_handle(event, EMU_H_EVENT, "aclrtQueryEventStatus");
    if (rc) return rc;
    emu_event *ev = event;
    pthread_mutex_lock(&ev->mu);
    int complete = ev->latest && ev->latest->done;
    pthread_mutex_unlock(&ev->mu);
    *status = complete ? ACL_EVENT_RECORDED_STATUS_COMPLETE : ACL_EVENT_RECORDED_STATUS_NOT_READY;
    return ACL_SUCCESS;
}

EMU_API aclError aclrtEventElapsedTime(float *ms, aclrtEvent startEvent, aclrtEvent endEvent)
{
    EMU_ENTER("aclrtEventElapsedTime");
    if (!ms) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtEventElapsedTime: ms is NULL");
    aclError rc = emu_check_handle(startEvent, EMU_H_EVENT, "aclrtEventElapsedTime");
    if (!rc) rc = emu_check_handle(endEvent, EMU_H_EVENT, "aclrtEventElapsedTime");
    if (rc) return rc;
    emu_event *ev[2] = {startEvent, endEvent};
    uint64_t ts[2];
    for (int i = 0; i < 2; i++) {
        const char *which = i ? "endEvent" : "startEvent";
        if (!(ev[i]->flags & ACL_EVENT_TIME_LINE))
            return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtEventElapsedTime: %s was created without ACL_EVENT_TIME_LINE", which);
        pthread_mutex_lock(&ev[i]->mu);
        int rec = ev[i]->latest != NULL, done = rec && ev[i]->latest->done;
        ts[i] = done ? ev[i]->latest->ts : 0;
        pthread_mutex_unlock(&ev[i]->mu);
        if (!rec) return emu_fail(ACL_ERROR_RT_EVENT_TIMESTAMP_INVALID, "aclrtEventElapsedTime: %s was never recorded", which);
        if (!done) return emu_fail(ACL_ERROR_RT_EVENT_NOT_COMPLETE, "aclrtEventElapsedTime: %s has not completed (synchronize it first)", which);
    }
    if (ts[1] < ts[0]) return emu_fail(ACL_ERROR_RT_EVENT_TIMESTAMP_REVERSAL, "aclrtEventElapsedTime: endEvent completed before startEvent");
    *ms = (float)((double)(ts[1] - ts[0]) / 1e6);
    return ACL_SUCCESS;
}

/* ================================================================ callbacks, host functions */

EMU_API aclError aclrtLaunchCallback(aclrtCallback fn, void *userData, aclrtCallbackBlockType blockType, aclrtStream stream)
{
    EMU_ENTER("aclrtLaunchCallback");
    if (!fn) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtLaunchCallback: fn is NULL");
    if (blockType != ACL_CALLBACK_NO_BLOCK && blockType != ACL_CALLBACK_BLOCK)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtLaunchCallback: unknown block type %d", (int)blockType);
    emu_stream *s;
    aclError rc = emu_resolve_stream(stream, &s, "aclrtLaunchCallback");
    if (rc) return rc;
    pthread_mutex_lock(&report_mu);
    int subscribed = s->has_subscriber;
    pthread_mutex_unlock(&report_mu);
    if (!subscribed)
        return emu_fail(ACL_ERROR_RT_STREAM_NO_CB_REG, "aclrtLaunchCallback: no thread is subscribed to this stream (aclrtSubscribeReport)");
    if (s->used_hostfunc)
        return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtLaunchCallback: the stream already runs host functions; the two must not be mixed on one stream");
    s->used_callback = 1;
    emu_task *t = emu_task_new(EMU_T_CALLBACK);
    t->u.callback.fn = fn;
    t->u.callback.data = userData;
    t->u.callback.block = blockType == ACL_CALLBACK_BLOCK;
    emu_stream_push(s, t, "aclrtLaunchCallback");
    return ACL_SUCCESS;
}

EMU_API aclError aclrtLaunchHostFunc(aclrtStream stream, aclrtHostFunc fn, void *args)
{
    EMU_ENTER("aclrtLaunchHostFunc");
    if (!fn) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtLaunchHostFunc: fn is NULL");
    emu_stream *s;
    aclError rc = emu_resolve_stream(stream, &s, "aclrtLaunchHostFunc");
    if (rc) return rc;
    if (s->used_callback)
        return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtLaunchHostFunc: the stream already runs aclrtLaunchCallback callbacks; the two must not be mixed on one stream");
    s->used_hostfunc = 1;
    emu_task *t = emu_task_new(EMU_T_HOSTFUNC);
    t->u.hostfunc.fn = fn;
    t->u.hostfunc.args = args;
    emu_stream_push(s, t, "aclrtLaunchHostFunc");
    return ACL_SUCCESS;
}
