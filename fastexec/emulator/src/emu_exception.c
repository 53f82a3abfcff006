/* Device task exceptions: the exception-info callback and its getters, and the record of
 * failed tasks that aclmdlCreateAndGetOpDesc reads. */
#include "emu.h"

#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Layout private to the emulator (the ABI only passes pointers to it). */
struct rtExceptionInfo {
    uint32_t taskid;
    uint32_t streamid;
    uint32_t tid;
    uint32_t deviceid;
    uint32_t retcode;
};

#define NO_INFO 0xFFFFFFFFu   /* what the getters return for a NULL info */

static _Atomic(aclrtExceptionInfoCallback) callback;

EMU_API aclError aclrtSetExceptionInfoCallback(aclrtExceptionInfoCallback cb)
{
    EMU_ENTER("aclrtSetExceptionInfoCallback");
    atomic_store(&callback, cb);
    return ACL_SUCCESS;
}

EMU_API uint32_t aclrtGetTaskIdFromExceptionInfo(const aclrtExceptionInfo *info) { return info ? info->taskid : NO_INFO; }
EMU_API uint32_t aclrtGetStreamIdFromExceptionInfo(const aclrtExceptionInfo *info) { return info ? info->streamid : NO_INFO; }
EMU_API uint32_t aclrtGetThreadIdFromExceptionInfo(const aclrtExceptionInfo *info) { return info ? info->tid : NO_INFO; }
EMU_API uint32_t aclrtGetDeviceIdFromExceptionInfo(const aclrtExceptionInfo *info) { return info ? info->deviceid : NO_INFO; }
EMU_API uint32_t aclrtGetErrorCodeFromExceptionInfo(const aclrtExceptionInfo *info) { return info ? info->retcode : NO_INFO; }

/* The most recent failed tasks, newest first out of a ring. */
typedef struct {
    int used;
    uint32_t device, stream, task;
    char op[ACL_MAX_TENSOR_NAME_LEN];
    emu_op_tensor *in, *out;
    size_t n_in, n_out;
} failed_task;

#define KEEP_FAILED 64
static pthread_mutex_t failed_mu = PTHREAD_MUTEX_INITIALIZER;
static failed_task failed[KEEP_FAILED];
static size_t failed_next;

static const char *task_api(emu_task_kind k)
{
    switch (k) {
    case EMU_T_COPY: return "MemcpyAsync";
    case EMU_T_MEMSET: return "MemsetAsync";
    case EMU_T_EXEC: return "ModelExecute";
    case EMU_T_RECORD: return "EventRecord";
    case EMU_T_WAIT: return "StreamWaitEvent";
    case EMU_T_CALLBACK: return "Callback";
    case EMU_T_HOSTFUNC: return "HostFunc";
    case EMU_T_STALL: return "Stall";
    }
    return "Task";
}

static emu_op_tensor *bytes_tensor(size_t n)
{
    emu_op_tensor *t = calloc(1, sizeof *t);
    t->dtype = ACL_UINT8;
    t->format = ACL_FORMAT_ND;
    t->ndims = 1;
    t->dims[0] = (int64_t)n;
    return t;
}

void emu_exception_task_failed(emu_stream *s, emu_task *t)
{
    failed_task rec = {.used = 1, .device = (uint32_t)s->dev->id, .stream = s->id};
    pthread_mutex_lock(&s->mu);
    rec.task = (uint32_t)s->completed;   /* tasks of the stream before this one */
    pthread_mutex_unlock(&s->mu);
    if (t->kind == EMU_T_EXEC) {
        emu_exec_describe(t, rec.op, sizeof rec.op, &rec.in, &rec.n_in, &rec.out, &rec.n_out);
    } else {
        snprintf(rec.op, sizeof rec.op, "%s", task_api(t->kind));
        if (t->kind == EMU_T_COPY) {
            rec.in = bytes_tensor(t->u.copy.n);
            rec.out = bytes_tensor(t->u.copy.n);
            rec.n_in = rec.n_out = 1;
        } else if (t->kind == EMU_T_MEMSET) {
            rec.out = bytes_tensor(t->u.memset.n);
            rec.n_out = 1;
        }
    }
    pthread_mutex_lock(&failed_mu);
    failed_task *slot = &failed[failed_next++ % KEEP_FAILED];
    free(slot->in);
    free(slot->out);
    *slot = rec;
    pthread_mutex_unlock(&failed_mu);

    aclrtExceptionInfoCallback cb = atomic_load(&callback);
    if (!cb) return;
    aclrtExceptionInfo info = {.taskid = rec.task, .streamid = rec.stream, .tid = (uint32_t)syscall(SYS_gettid), .deviceid = rec.device,
                               .retcode = (uint32_t)t->fail_code};
    cb(&info);
}

static aclTensorDesc *descs_of(const emu_op_tensor *t, size_t n)
{
    aclTensorDesc *a = emu_tensor_desc_array(n);
    for (size_t i = 0; i < n; i++) emu_tensor_desc_set(&a[i], t[i].dtype, t[i].format, t[i].ndims, t[i].dims);
    return a;
}

EMU_API aclError aclmdlCreateAndGetOpDesc(uint32_t deviceId, uint32_t streamId, uint32_t taskId, char *opName, size_t opNameLen,
                                          aclTensorDesc **inputDesc, size_t *numInputs, aclTensorDesc **outputDesc, size_t *numOutputs)
{
    EMU_ENTER("aclmdlCreateAndGetOpDesc");
    if (!opName || !inputDesc || !numInputs || !outputDesc || !numOutputs || opNameLen == 0)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlCreateAndGetOpDesc: opName (with opNameLen > 0), inputDesc, numInputs, outputDesc and numOutputs must be set");
    pthread_mutex_lock(&failed_mu);
    const failed_task *hit = NULL;
    for (size_t k = 1; k <= KEEP_FAILED && !hit; k++) {
        const failed_task *f = &failed[(failed_next - k) % KEEP_FAILED];
        if (f->used && f->device == deviceId && f->stream == streamId && f->task == taskId) hit = f;
    }
    if (!hit) {
        pthread_mutex_unlock(&failed_mu);
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlCreateAndGetOpDesc: no failed task with device %u, stream %u, task %u (the emulator keeps the last %d)",
                        deviceId, streamId, taskId, KEEP_FAILED);
    }
    if (strlen(hit->op) >= opNameLen) {
        size_t need = strlen(hit->op) + 1;
        pthread_mutex_unlock(&failed_mu);
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlCreateAndGetOpDesc: opNameLen %zu is too small for the operator name (%zu bytes)", opNameLen, need);
    }
    snprintf(opName, opNameLen, "%s", hit->op);
    *inputDesc = descs_of(hit->in, hit->n_in);
    *numInputs = hit->n_in;
    *outputDesc = descs_of(hit->out, hit->n_out);
    *numOutputs = hit->n_out;
    pthread_mutex_unlock(&failed_mu);
    return ACL_SUCCESS;
}
