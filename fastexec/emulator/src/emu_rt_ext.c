/* The rest of the runtime API over the stream machinery: variants of stream and event calls,
 * event reset and status queries, failure mode and priorities, operator timeouts, host-function
 * subscriptions, device synchronisation with a timeout, stream config handles. */
#include "emu.h"

#include <stdlib.h>

/* ================================================================ streams */

EMU_API aclError aclrtDestroyStreamForce(aclrtStream stream)
{
    EMU_ENTER("aclrtDestroyStreamForce");
    /* The emulator's streams always run their queued tasks before they go (nothing is aborted). */
    return aclrtDestroyStream(stream);
}

EMU_API aclError aclrtSetStreamFailureMode(aclrtStream stream, uint64_t mode)
{
    EMU_ENTER("aclrtSetStreamFailureMode");
    if (!stream) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtSetStreamFailureMode: stream is NULL (the default stream's mode cannot be set)");
    aclError rc = emu_check_handle(stream, EMU_H_STREAM, "aclrtSetStreamFailureMode");
    if (rc) return rc;
    if (mode != ACL_CONTINUE_ON_FAILURE && mode != ACL_STOP_ON_FAILURE)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtSetStreamFailureMode: mode must be ACL_CONTINUE_ON_FAILURE (0) or ACL_STOP_ON_FAILURE (1), got %llu",
                        (unsigned long long)mode);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtStreamGetPriority(aclrtStream stream, uint32_t *priority)
{
    EMU_ENTER("aclrtStreamGetPriority");
    if (!priority) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtStreamGetPriority: priority is NULL");
    emu_stream *s;
    aclError rc = emu_resolve_stream(stream, &s, "aclrtStreamGetPriority");
    if (rc) return rc;
    *priority = 0;   /* aclrtCreateStreamWithConfig's priority is reserved: every stream has the highest */
    return ACL_SUCCESS;
}

EMU_API aclError aclrtSetStreamConfigOpt(aclrtStreamConfigHandle *handle, aclrtStreamConfigAttr attr, const void *attrValue, size_t valueSize)
{
    EMU_ENTER("aclrtSetStreamConfigOpt");
    if (!handle || !attrValue) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtSetStreamConfigOpt: handle and attrValue must not be NULL");
    size_t want;
    void *field;
    switch (attr) {
    case ACL_RT_STREAM_WORK_ADDR_PTR: want = sizeof(void *); field = &handle->workptr; break;
    case ACL_RT_STREAM_WORK_SIZE: want = sizeof(size_t); field = &handle->workSize; break;
    case ACL_RT_STREAM_FLAG: want = sizeof(size_t); field = &handle->flag; break;
    case ACL_RT_STREAM_PRIORITY: want = sizeof(uint32_t); field = &handle->priority; break;
    default: return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtSetStreamConfigOpt: unknown attribute %d", (int)attr);
    }
    if (valueSize != want)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtSetStreamConfigOpt: attribute %d takes %zu bytes (valueSize %zu)", (int)attr, want, valueSize);
    memcpy(field, attrValue, want);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtSynchronizeDeviceWithTimeout(int32_t timeout)
{
    EMU_ENTER("aclrtSynchronizeDeviceWithTimeout");
    if (timeout < -1) return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtSynchronizeDeviceWithTimeout: timeout must be >= -1 (got %d)", timeout);
    if (timeout == -1) return aclrtSynchronizeDevice();
    emu_context *ctx;
    aclError rc = emu_require_context(&ctx, "aclrtSynchronizeDeviceWithTimeout");
    if (rc) return rc;
    size_t n = emu_handle_collect(EMU_H_STREAM, NULL, 0);
    void **all = calloc(n ? n : 1, sizeof *all);
    n = emu_handle_collect(EMU_H_STREAM, all, n);
    uint64_t deadline = emu_now_ns() + (uint64_t)timeout * 1000000ull;
    aclError first = ACL_SUCCESS;
    for (size_t i = 0; i < n; i++) {
        emu_stream *s = all[i];
        if (!emu_handle_live(s, EMU_H_STREAM) || s->dev != ctx->dev) continue;
        uint64_t now = emu_now_ns();
        int32_t left = now >= deadline ? 0 : (int32_t)((deadline - now + 999999) / 1000000);
        rc = emu_stream_sync(s, left, "aclrtSynchronizeDeviceWithTimeout");
        if (rc == ACL_ERROR_RT_STREAM_SYNC_TIMEOUT) {
            first = rc;
            break;
        }
        if (rc && !first) first = rc;
    }
    free(all);
    return first;
}

/* ================================================================ events */

EMU_API aclError aclrtCreateEventExWithFlag(aclrtEvent *event, uint32_t flag)
{
    EMU_ENTER("aclrtCreateEventExWithFlag");
    /* The emulator's events already behave as the "new mode" ones: re-recording replaces the snapshot. */
    return aclrtCreateEventWithFlag(event, flag);
}

EMU_API aclError aclrtRecordEventWithFlag(aclrtEvent event, aclrtStream stream, uint32_t flag)
{
    EMU_ENTER("aclrtRecordEventWithFlag");
    if (flag != 0 && flag != 1)   /* ACL_EVENT_RECORD_DEFAULT / ACL_EVENT_RECORD_EXTERNAL */
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtRecordEventWithFlag: flag must be 0 (default) or 1 (external), got %u", flag);
    return aclrtRecordEvent(event, stream);
}

EMU_API aclError aclrtStreamWaitEventWithTimeout(aclrtStream stream, aclrtEvent event, int32_t timeout)
{
    EMU_ENTER("aclrtStreamWaitEventWithTimeout");
    if (timeout < -1) return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtStreamWaitEventWithTimeout: timeout must be >= -1 (got %d)", timeout);
    return aclrtStreamWaitEvent(stream, event);
}

EMU_API aclError aclrtResetEvent(aclrtEvent event, aclrtStream stream)
{
    EMU_ENTER("aclrtResetEvent");
    aclError rc = emu_check_handle(event, EMU_H_EVENT, "aclrtResetEvent");
    if (rc) return rc;
    emu_stream *s;
    rc = emu_resolve_stream(stream, &s, "aclrtResetEvent");
    if (rc) return rc;
    emu_event *ev = event;
    if (!(ev->flags & ACL_EVENT_SYNC))
        return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtResetEvent: the event was created without ACL_EVENT_SYNC (use aclrtCreateEventWithFlag)");
    /* Back to "never recorded". Waits already queued keep the snapshot they hold. */
    pthread_mutex_lock(&ev->mu);
    emu_snapshot *snap = ev->latest;
    ev->latest = NULL;
    if (snap && --snap->refs == 0) free(snap);
    pthread_mutex_unlock(&ev->mu);
    return ACL_SUCCESS;
}

/* -1 never recorded, 0 pending, 1 complete. */
static int event_state(emu_event *ev)
{
    pthread_mutex_lock(&ev->mu);
    int st = !ev->latest ? -1 : ev->latest->done;
    pthread_mutex_unlock(&ev->mu);
    return st;
}

EMU_API aclError aclrtQueryEvent(aclrtEvent event, aclrtEventStatus *status)
{
    EMU_ENTER("aclrtQueryEvent");
    if (!status) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtQueryEvent: status is NULL");
    aclError rc = emu_check_handle(event, EMU_H_EVENT, "aclrtQueryEvent");
    if (rc) return rc;
    *status = event_state(event) == 1 ? ACL_EVENT_STATUS_COMPLETE : ACL_EVENT_STATUS_NOT_READY;
    return ACL_SUCCESS;
}

EMU_API aclError aclrtQueryEventWaitStatus(aclrtEvent event, aclrtEventWaitStatus *status)
{
    EMU_ENTER("aclrtQueryEventWaitStatus");
    if (!status) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtQueryEventWaitStatus: status is NULL");
    aclError rc = emu_check_handle(event, EMU_H_EVENT, "aclrtQueryEventWaitStatus");
    if (rc) return rc;
    /* A wait on a never-recorded event does not block. */
    *status = event_state(event) != 0 ? ACL_EVENT_WAIT_STATUS_COMPLETE : ACL_EVENT_WAIT_STATUS_NOT_READY;
    return ACL_SUCCESS;
}

/* ================================================================ operator timeouts */

static _Atomic uint64_t op_wait_timeout_s, op_execute_timeout_us;

EMU_API aclError aclrtSetOpWaitTimeout(uint32_t timeout)
{
    EMU_ENTER("aclrtSetOpWaitTimeout");
    atomic_store(&op_wait_timeout_s, timeout);   /* recorded; the emulator runs no operators that wait */
    return ACL_SUCCESS;
}

EMU_API aclError aclrtSetOpExecuteTimeOut(uint32_t timeout)
{
    EMU_ENTER("aclrtSetOpExecuteTimeOut");
    atomic_store(&op_execute_timeout_us, (uint64_t)timeout * 1000000ull);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtSetOpExecuteTimeOutV2(uint64_t timeout, uint64_t *actualTimeout)
{
    EMU_ENTER("aclrtSetOpExecuteTimeOutV2");
    if (!actualTimeout) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtSetOpExecuteTimeOutV2: actualTimeout is NULL");
    atomic_store(&op_execute_timeout_us, timeout);
    *actualTimeout = timeout;   /* the emulated timer has microsecond resolution */
    return ACL_SUCCESS;
}

/* ================================================================ host-function subscriptions */

/* aclrtLaunchHostFunc runs functions on the stream's own worker, so a subscribed thread never
 * has any to run: aclrtProcessHostFunc waits for its timeout (or for the unsubscription). */
typedef struct hf_sub {
    struct hf_sub *next;
    uint64_t tid;
    emu_stream *stream;
} hf_sub;

static pthread_mutex_t hf_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hf_cv;
static pthread_once_t hf_once = PTHREAD_ONCE_INIT;
static hf_sub *hf_subs;

static void hf_init(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&hf_cv, &a);
    pthread_condattr_destroy(&a);
}

static int hf_subscribed(uint64_t tid)
{
    for (hf_sub *x = hf_subs; x; x = x->next)
        if (x->tid == tid && emu_handle_live(x->stream, EMU_H_STREAM)) return 1;
    return 0;
}

EMU_API aclError aclrtSubscribeHostFunc(uint64_t hostFuncThreadId, aclrtStream exeStream)
{
    EMU_ENTER("aclrtSubscribeHostFunc");
    emu_stream *s;
    aclError rc = emu_resolve_stream(exeStream, &s, "aclrtSubscribeHostFunc");
    if (rc) return rc;
    pthread_once(&hf_once, hf_init);
    pthread_mutex_lock(&hf_mu);
    for (hf_sub *x = hf_subs; x; x = x->next) {
        if (x->stream == s) {
            pthread_mutex_unlock(&hf_mu);
            return emu_fail(ACL_ERROR_REPEAT_SUBSCRIBE, "aclrtSubscribeHostFunc: the stream already has a host-function thread");
        }
    }
    hf_sub *x = calloc(1, sizeof *x);
    x->tid = hostFuncThreadId;
    x->stream = s;
    x->next = hf_subs;
    hf_subs = x;
    pthread_mutex_unlock(&hf_mu);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtUnSubscribeHostFunc(uint64_t hostFuncThreadId, aclrtStream exeStream)
{
    EMU_ENTER("aclrtUnSubscribeHostFunc");
    emu_stream *s;
    aclError rc = emu_resolve_stream(exeStream, &s, "aclrtUnSubscribeHostFunc");
    if (rc) return rc;
    pthread_once(&hf_once, hf_init);
    pthread_mutex_lock(&hf_mu);
    hf_sub **pp = &hf_subs;
    while (*pp && !((*pp)->stream == s && (*pp)->tid == hostFuncThreadId)) pp = &(*pp)->next;
    if (!*pp) {
        pthread_mutex_unlock(&hf_mu);
        return emu_fail(ACL_ERROR_RT_STREAM_SUBSCRIBE, "aclrtUnSubscribeHostFunc: thread %llu is not subscribed to this stream", (unsigned long long)hostFuncThreadId);
    }
    hf_sub *dead = *pp;
    *pp = dead->next;
    free(dead);
    pthread_cond_broadcast(&hf_cv);
    pthread_mutex_unlock(&hf_mu);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtProcessHostFunc(int32_t timeout)
{
    EMU_ENTER("aclrtProcessHostFunc");
    if (timeout == 0 || timeout < -1) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtProcessHostFunc: timeout must be -1 or > 0 (got %d)", timeout);
    pthread_once(&hf_once, hf_init);
    uint64_t me = (uint64_t)pthread_self();
    struct timespec deadline = emu_deadline_ms(timeout);
    pthread_mutex_lock(&hf_mu);
    for (;;) {
        if (!hf_subscribed(me)) {
            pthread_mutex_unlock(&hf_mu);
            return emu_fail(ACL_ERROR_RT_THREAD_SUBSCRIBE, "aclrtProcessHostFunc: the calling thread is not subscribed to any stream (aclrtSubscribeHostFunc)");
        }
        int w = timeout < 0 ? pthread_cond_wait(&hf_cv, &hf_mu) : pthread_cond_timedwait(&hf_cv, &hf_mu, &deadline);
        if (w && hf_subscribed(me)) {
            pthread_mutex_unlock(&hf_mu);
            return emu_fail(ACL_ERROR_RT_REPORT_TIMEOUT, "aclrtProcessHostFunc: no host function arrived within %d ms (the emulator runs them on the stream's worker)", timeout);
        }
    }
}
