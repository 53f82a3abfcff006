/* Streams (one worker thread each, tasks in order), events, callbacks and host functions. */
#include "emu.h"

#include <sched.h>
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

/* ================================================================ dispatch tuning */

/* On the 2-vCPU development VM a kernel round trip is dear: one clock_nanosleep costs ~22 us of
 * CPU however short it is, even when its deadline has already passed, and wakes ~30-50 us late;
 * a futex wake-up of a thread blocked on an idle vCPU costs the waker ~13 us (docs/emulator.md,
 * "Dispatch cost"). So:
 *  - a deadline already passed costs nothing; a modelled wait shorter than SLEEP_MIN polls the
 *    clock, yielding the core at every turn so that a runnable thread (the host, another worker)
 *    is not kept off it; a longer one sleeps on its absolute deadline;
 *  - an idle worker, a host in a synchronisation and a stream waiting on another stream's event
 *    poll (yielding) for up to POLL before they block on a condition variable, and whoever
 *    completes work wakes only threads that did block.
 * FASTEXEC_EMU_POLL_US overrides POLL (0: block at once). */
#define SLEEP_MIN_NS 100000ull
#define POLL_DEFAULT_NS 20000ull

static uint64_t poll_ns = POLL_DEFAULT_NS;
static pthread_once_t tuning_once = PTHREAD_ONCE_INIT;

static void tuning_init(void)
{
    const char *v = getenv("FASTEXEC_EMU_POLL_US");
    if (v && *v) {
        char *end;
        unsigned long long us = strtoull(v, &end, 10);
        if (*end == '\0' && us <= 1000000ull) poll_ns = us * 1000ull;
        else fprintf(stderr, "fastexec emulator: ignoring FASTEXEC_EMU_POLL_US=%s (expected 0..1000000)\n", v);
    }
}

static inline void relax(void) { sched_yield(); }

void emu_worker_wait_until(uint64_t deadline_ns)
{
    uint64_t now = emu_now_ns();
    if (now >= deadline_ns) return;
    if (deadline_ns - now >= SLEEP_MIN_NS) {
        emu_sleep_until(deadline_ns);
        return;
    }
    while (emu_now_ns() < deadline_ns) relax();
}

/* Poll `*v >= target` for at most `limit_ns`; returns whether it became true. */
static int poll_counter(atomic_uint_fast64_t *v, uint64_t target, uint64_t limit_ns)
{
    if (atomic_load(v) >= target) return 1;
    if (!limit_ns) return 0;
    uint64_t until = emu_now_ns() + limit_ns;
    do {
        relax();
        if (atomic_load(v) >= target) return 1;
    } while (emu_now_ns() < until);
    return 0;
}

static int poll_flag(atomic_int *flag, uint64_t limit_ns)
{
    if (atomic_load(flag)) return 1;
    if (!limit_ns) return 0;
    uint64_t until = emu_now_ns() + limit_ns;
    do {
        relax();
        if (atomic_load(flag)) return 1;
    } while (emu_now_ns() < until);
    return 0;
}

/* ================================================================ task records */

/* Each thread that enqueues keeps a cache of task records; a push refills it with the records
 * its stream's worker has finished, so in a steady state no task allocates. The cache is freed
 * when the thread exits. */
#define CACHE_MAX 4096u

static _Thread_local emu_task *tl_cache;
static _Thread_local unsigned tl_cached;
static _Thread_local int tl_registered;
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;

static void free_task_list(emu_task *t)
{
    while (t) {
        emu_task *next = t->next;
        free(t);
        t = next;
    }
}

static void cache_release(void *unused)
{
    (void)unused;
    free_task_list(tl_cache);
    tl_cache = NULL;
    tl_cached = 0;
}

static void cache_key_init(void) { pthread_key_create(&cache_key, cache_release); }

emu_task *emu_task_new(emu_task_kind kind)
{
    emu_task *t = tl_cache;
    if (t) {
        tl_cache = t->next;
        tl_cached--;
    } else {
        t = malloc(sizeof *t);
        if (!tl_registered) {   /* so that the thread's cache is freed when it exits */
            pthread_once(&cache_key_once, cache_key_init);
            pthread_setspecific(cache_key, &tl_registered);
            tl_registered = 1;
        }
    }
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->submit_ns = emu_now_ns();
    return t;
}

void emu_stream_push(emu_stream *s, emu_task *t, const char *api)
{
    emu_fault_task(api, s->dev->phys_id, &t->fail_code, &t->stall_ms);
    for (int i = 0; i < t->n_holds; i++) emu_mem_hold(t->holds[i]);
    t->next = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->tail) s->tail->next = t; else s->head = t;
    s->tail = t;
    atomic_fetch_add(&s->submitted, 1);
    emu_task *spare = s->recycled, *spare_tail = s->recycled_tail;
    unsigned n_spare = s->n_recycled;
    s->recycled = s->recycled_tail = NULL;
    s->n_recycled = 0;
    if (s->worker_blocked) {   /* the only wake-up: a busy or polling worker finds the task itself */
        s->worker_blocked = 0;
        pthread_cond_signal(&s->cv_work);
    }
    pthread_mutex_unlock(&s->mu);
    if (!spare) return;
    if (tl_cached + n_spare > CACHE_MAX) {
        free_task_list(spare);
        return;
    }
    spare_tail->next = tl_cache;
    tl_cache = spare;
    tl_cached += n_spare;
}

/* ================================================================ running tasks */

static uint64_t launch_ns(void) { return emu_profile.fast ? 0 : (uint64_t)(emu_profile.launch_us * 1e3); }

static void record_error(emu_stream *s, aclError err)
{
    if (!s->err_event) s->err_event = err;
    pthread_mutex_lock(&s->mu);
    if (!s->err_sync) s->err_sync = err;
    pthread_mutex_unlock(&s->mu);
}

/* Wake the hosts blocked in a synchronisation once the lowest target among them is reached. */
static void wake_syncs(emu_stream *s, uint64_t completed)
{
    if (completed < atomic_load(&s->wake_at)) return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->wake_at, UINT64_MAX);   /* the ones still short of their target lower it again */
    pthread_cond_broadcast(&s->cv_done);
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
    if (emu_profiler_on()) {
        const char *name = t->kind == EMU_T_EXEC ? "execute" : t->kind == EMU_T_MEMSET ? "memset"
                         : t->u.copy.dir == ACL_MEMCPY_DEVICE_TO_DEVICE ? "d2d" : engine == EMU_ENGINE_D2H ? "d2h" : "h2d";
        emu_profiler_task(s, name, name, slot.start, s->ready_at);
    }
}

/* Drop a snapshot reference; caller holds the event's mutex. The event keeps one dead snapshot
 * for its next record, so that re-recording an event does not allocate. */
static void snapshot_unref(emu_event *ev, emu_snapshot *snap)
{
    if (!snap || --snap->refs) return;
    if (!ev->spare) ev->spare = snap;
    else free(snap);
}

static void run_record(emu_stream *s, emu_task *t)
{
    emu_event *ev = t->u.record.ev;
    uint64_t ts = t->submit_ns + launch_ns(); /* a record is a task: it takes effect after the launch latency too */
    if (s->ready_at > ts) ts = s->ready_at;
    s->ready_at = ts;
    aclError err = s->err_event;
    s->err_event = ACL_SUCCESS;
    /* The stream counts the record as done before the event completes, both under the event's
     * mutex: a host that sees the event complete also sees the stream reach it, and a host that
     * sees the stream reach it and then looks at the event (under its mutex) sees it complete. */
    pthread_mutex_lock(&ev->mu);
    emu_snapshot *snap = t->u.record.snap;
    snap->ts = ts;
    snap->err = err;
    uint64_t completed = atomic_fetch_add(&s->completed, 1) + 1;
    atomic_store(&snap->done, 1);
    snapshot_unref(ev, snap);
    if (ev->waiters) pthread_cond_broadcast(&ev->cv);
    pthread_mutex_unlock(&ev->mu);
    wake_syncs(s, completed);
}

/* Wait until `snap` (holding a reference on it) is done: poll for up to `poll_limit`, then block
 * on the event, until `deadline` when given. Returns 0 when done, ETIMEDOUT otherwise; the
 * caller holds the event's mutex on return either way. */
static int wait_snapshot(emu_event *ev, emu_snapshot *snap, uint64_t poll_limit, const struct timespec *deadline)
{
    poll_flag(&snap->done, poll_limit);
    pthread_mutex_lock(&ev->mu);
    int rc = 0;
    while (!atomic_load(&snap->done) && rc == 0) {
        ev->waiters++;
        rc = deadline ? pthread_cond_timedwait(&ev->cv, &ev->mu, deadline) : pthread_cond_wait(&ev->cv, &ev->mu);
        ev->waiters--;
    }
    return atomic_load(&snap->done) ? 0 : rc;
}

static void run_wait(emu_stream *s, emu_task *t)
{
    emu_event *ev = t->u.wait.ev;
    emu_snapshot *snap = t->u.wait.snap;
    wait_snapshot(ev, snap, poll_ns, NULL);
    uint64_t ts = snap->ts;
    snapshot_unref(ev, snap);
    pthread_mutex_unlock(&ev->mu);
    if (ts > s->ready_at) s->ready_at = ts;
}

static void run_task(emu_stream *s, emu_task *t)
{
    if (t->stall_ms) {
        emu_sleep_until(emu_now_ns() + (uint64_t)t->stall_ms * 1000000ull);
        s->ready_at = emu_now_ns();
    }
    if (emu_profile.strict && t->n_holds) emu_mem_check_task(s, t);
    switch (t->kind) {
    case EMU_T_COPY:
        run_engine_task(s, t, t->u.copy.dir == ACL_MEMCPY_DEVICE_TO_HOST ? EMU_ENGINE_D2H : EMU_ENGINE_H2D, emu_copy_ns(t->u.copy.dir, t->u.copy.n, 0));
        break;
    case EMU_T_MEMSET:
        run_engine_task(s, t, EMU_ENGINE_H2D, emu_copy_ns(ACL_MEMCPY_DEVICE_TO_DEVICE, t->u.memset.n, 0));
        break;
    case EMU_T_EXEC:
        run_engine_task(s, t, EMU_ENGINE_COMPUTE, emu_exec_duration_ns(t->u.exec.model, &t->u.exec.vals));
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
    if (t->kind != EMU_T_RECORD) {
        atomic_fetch_add(&emu_live.tasks_run, 1);
        wake_syncs(s, atomic_fetch_add(&s->completed, 1) + 1);   /* run_record published itself */
    }
}

static void *worker(void *arg)
{
    emu_stream *s = arg;
    emu_precise_timers();
    emu_task *run = NULL;                      /* taken from the queue, not yet run */
    emu_task *done = NULL, *done_tail = NULL;  /* run, to hand back to the stream */
    unsigned n_done = 0;
    uint64_t taken = 0;                        /* tasks taken so far */
    for (;;) {
        if (!run) {
            /* Idle: look for new tasks without the lock for a while before blocking. */
            poll_counter(&s->submitted, taken + 1, atomic_load(&s->stopping) ? 0 : poll_ns);
            pthread_mutex_lock(&s->mu);
            if (done) {
                if (!s->recycled) s->recycled_tail = done_tail;
                done_tail->next = s->recycled;
                s->recycled = done;
                s->n_recycled += n_done;
                done = done_tail = NULL;
                n_done = 0;
            }
            while (!s->head && !atomic_load(&s->stopping)) {
                s->worker_blocked = 1;
                pthread_cond_wait(&s->cv_work, &s->mu);
            }
            s->worker_blocked = 0;
            run = s->head;
            s->head = s->tail = NULL;
            taken = atomic_load(&s->submitted);
            pthread_mutex_unlock(&s->mu);
            if (!run) break;   /* stopping, and drained */
        }
        emu_task *t = run;
        run = t->next;
        run_task(s, t);
        t->next = done;
        done = t;
        if (!done_tail) done_tail = t;
        n_done++;
    }
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
    atomic_init(&s->submitted, 0);
    atomic_init(&s->completed, 0);
    atomic_init(&s->wake_at, UINT64_MAX);
    atomic_init(&s->stopping, 0);
    pthread_once(&tuning_once, tuning_init);
    /* Held for a few instructions at a time by hosts and the worker: a contended lock spins a
     * little before it sleeps. */
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&s->mu, &attr);
    pthread_mutexattr_destroy(&attr);
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
    atomic_store(&s->stopping, 1);
    pthread_cond_signal(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);   /* the worker drains the queue first */
    free_task_list(s->recycled);
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
    emu_handle_free(s);
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
    uint64_t target = atomic_load(&s->submitted);
    if (!poll_counter(&s->completed, target, timeout_ms == 0 ? 0 : poll_ns)) {
        struct timespec deadline = emu_deadline_ms(timeout_ms > 0 ? timeout_ms : 0);
        pthread_mutex_lock(&s->mu);
        for (;;) {
            if (atomic_load(&s->wake_at) > target) atomic_store(&s->wake_at, target);
            if (atomic_load(&s->completed) >= target) break;   /* (after the store: see wake_syncs) */
            if (timeout_ms < 0) {
                pthread_cond_wait(&s->cv_done, &s->mu);
            } else if (timeout_ms == 0 || pthread_cond_timedwait(&s->cv_done, &s->mu, &deadline) != 0) {
                uint64_t completed = atomic_load(&s->completed);
                if (completed >= target) break;
                pthread_mutex_unlock(&s->mu);
                return emu_fail(ACL_ERROR_RT_STREAM_SYNC_TIMEOUT, "%s: stream synchronization timed out after %d ms (%llu task(s) still queued)", api,
                                timeout_ms, (unsigned long long)(target - completed));
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&s->mu);
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
    rc = emu_strict_context(s, "aclrtDestroyStream");   /* CANN: ApiImpl::StreamDestroy */
    if (rc) return rc;
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
    uint64_t submitted = atomic_load(&s->submitted);
    *status = atomic_load(&s->completed) >= submitted ? ACL_STREAM_STATUS_COMPLETE : ACL_STREAM_STATUS_NOT_READY;
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
    aclError ctx_rc = emu_strict_context(NULL, api);   /* CANN: ApiImpl::EventCreate */
    if (ctx_rc) return ctx_rc;
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
    if (!left) snapshot_unref(ev, ev->latest);
    pthread_mutex_unlock(&ev->mu);
    if (left) return;
    free(ev->spare);
    pthread_mutex_destroy(&ev->mu);
    pthread_cond_destroy(&ev->cv);
    emu_handle_free(ev);
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
    pthread_mutex_lock(&s->mu);
    int32_t timeout_ms = s->event_timeout_ms; /* sticky exec-config timeout of the stream */
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&ev->mu);
    emu_snapshot *snap = ev->spare ? ev->spare : malloc(sizeof *snap);
    ev->spare = NULL;
    memset(snap, 0, sizeof *snap);
    atomic_init(&snap->done, 0);
    snap->refs = 2; /* the event's latest + the record task */
    snap->timeout_ms = timeout_ms;
    ev->refs++;
    snapshot_unref(ev, ev->latest);
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
    if (timeout_ms < 0) timeout_ms = snap->timeout_ms;
    pthread_mutex_unlock(&ev->mu);
    struct timespec deadline = emu_deadline_ms(timeout_ms > 0 ? timeout_ms : 0);
    aclError rc = ACL_SUCCESS;
    if (timeout_ms == 0) {
        pthread_mutex_lock(&ev->mu);
        if (!atomic_load(&snap->done)) rc = emu_fail(ACL_ERROR_RT_EVENT_SYNC_TIMEOUT, "%s: the event did not complete within %d ms", api, timeout_ms);
    } else if (wait_snapshot(ev, snap, poll_ns, timeout_ms < 0 ? NULL : &deadline) != 0) {
        rc = emu_fail(ACL_ERROR_RT_EVENT_SYNC_TIMEOUT, "%s: the event did not complete within %d ms", api, timeout_ms);
    }
    aclError err = atomic_load(&snap->done) ? snap->err : ACL_SUCCESS;
    snapshot_unref(ev, snap);
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
    int complete = ev->latest && atomic_load(&ev->latest->done);
    pthread_mutex_unlock(&ev->mu);
    *status = complete ? ACL_EVENT_RECORDED_STATUS_COMPLETE : ACL_EVENT_RECORDED_STATUS_NOT_READY;
    return ACL_SUCCESS;
}

/* When an event's latest record completed (ns); fails if it was never recorded or is not done. */
static aclError completed_at(emu_event *ev, const char *which, const char *api, uint64_t *ts)
{
    pthread_mutex_lock(&ev->mu);
    int rec = ev->latest != NULL, done = rec && atomic_load(&ev->latest->done);
    *ts = done ? ev->latest->ts : 0;
    pthread_mutex_unlock(&ev->mu);
    if (!rec) return emu_fail(ACL_ERROR_RT_EVENT_TIMESTAMP_INVALID, "%s: %s was never recorded", api, which);
    if (!done) return emu_fail(ACL_ERROR_RT_EVENT_NOT_COMPLETE, "%s: %s has not completed (synchronize it first)", api, which);
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
        rc = completed_at(ev[i], which, "aclrtEventElapsedTime", &ts[i]);
        if (rc) return rc;
    }
    if (ts[1] < ts[0]) return emu_fail(ACL_ERROR_RT_EVENT_TIMESTAMP_REVERSAL, "aclrtEventElapsedTime: endEvent completed before startEvent");
    *ms = (float)((double)(ts[1] - ts[0]) / 1e6);
    return ACL_SUCCESS;
}

/* The emulated device clock is CLOCK_MONOTONIC (emu_now_ns): the time since the machine booted,
 * the emulator's "since the AI processor started". A record's time is when its stream reached it. */
EMU_API aclError aclrtEventGetTimestamp(aclrtEvent event, uint64_t *timestamp)
{
    EMU_ENTER("aclrtEventGetTimestamp");
    if (!timestamp) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtEventGetTimestamp: timestamp is NULL");
    aclError rc = emu_check_handle(event, EMU_H_EVENT, "aclrtEventGetTimestamp");
    if (rc) return rc;
    uint64_t ts;
    rc = completed_at(event, "the event", "aclrtEventGetTimestamp", &ts);
    if (rc) return rc;
    *timestamp = ts / 1000u;
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
