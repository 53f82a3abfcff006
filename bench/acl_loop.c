/* The C loop floor: a model driven through ACL directly, the way a careful C programmer
 * would, with no binding in between. Per batch k, in slot k % depth (round robin):
 *   wait for the slot's previous batch (event) -> copy the batch into the slot's pinned input
 *   -> H2D copies -> aclmdlExecuteAsync -> D2H copies, with the slot's timing events.
 * Serial mode (the default): everything on one stream, four events (before H2D, before execute,
 * before D2H, after D2H); the bound is batch / mean(h2d + execute + d2h).
 * Overlap mode: the executor's overlap plan, three streams linked by events and six events per
 * batch: H2D_START, copies, H2D_END on the copy-in stream; StreamWaitEvent(H2D_END), EXEC_START,
 * execute, EXEC_END on the execute stream; StreamWaitEvent(EXEC_END), D2H_START, copies, D2H_END
 * on the copy-out stream. Collection synchronizes D2H_END and reads the three stage times; the
 * bound is batch / max(mean h2d, mean execute, mean d2h), the slowest stage.
 *
 * usage: acl_loop MODEL [BATCHES] [DEPTH] [--mode serial|overlap]
 *        (python bench/acl_loop.py builds and runs it)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <acl/acl.h>

#include "acl_check.h"


#define MAX_IO 32
#define MAX_DEPTH 8

typedef struct {
    void *dev_in[MAX_IO], *host_in[MAX_IO], *dev_out[MAX_IO], *host_out[MAX_IO];
    aclDataBuffer *buf_in[MAX_IO], *buf_out[MAX_IO];
    aclmdlDataset *in, *out;
    aclrtEvent ev[6]; /* serial: before H2D, before execute, before D2H, after D2H; overlap: EV_* */
    int busy;
} slot;

enum { EV_H2D_START, EV_H2D_END, EV_EXEC_START, EV_EXEC_END, EV_D2H_START, EV_D2H_END, EV_OVERLAP };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int overlap = 0, bad = 0, n_pos = 0;
    const char *pos[3] = {NULL, NULL, NULL};   /* MODEL, BATCHES, DEPTH */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
            const char *m = argv[++i];
            overlap = strcmp(m, "overlap") == 0;
            bad |= !overlap && strcmp(m, "serial") != 0;
        } else if (n_pos < 3) {
            pos[n_pos++] = argv[i];
        } else {
            bad = 1;
        }
    }
    if (bad || n_pos < 1) {
        fprintf(stderr, "usage: %s MODEL [BATCHES] [DEPTH] [--mode serial|overlap]\n", argv[0]);
        return 2;
    }
    int batches = pos[1] ? atoi(pos[1]) : 500;
    int depth = pos[2] ? atoi(pos[2]) : 2;
    const char *model_path = pos[0];
    if (batches < 1 || depth < 1 || depth > MAX_DEPTH) {
        fprintf(stderr, "acl_loop: BATCHES must be >= 1 and DEPTH 1..%d\n", MAX_DEPTH);
        return 2;
    }
    OK(aclInit(NULL));
    OK(aclrtSetDevice(0));
    uint32_t model;
    OK(aclmdlLoadFromFile(model_path, &model));
    aclmdlDesc *desc = aclmdlCreateDesc();
    OK(aclmdlGetDesc(desc, model));
    size_t n_in = aclmdlGetNumInputs(desc), n_out = aclmdlGetNumOutputs(desc);
    size_t in_bytes[MAX_IO], out_bytes[MAX_IO];
    void *source[MAX_IO];
    for (size_t i = 0; i < n_in; i++) {
        in_bytes[i] = aclmdlGetInputSizeByIndex(desc, i);
        source[i] = malloc(in_bytes[i]);
        memset(source[i], 1, in_bytes[i]);
    }
    for (size_t i = 0; i < n_out; i++) out_bytes[i] = aclmdlGetOutputSizeByIndex(desc, i);
    aclmdlBatch gears;
    OK(aclmdlGetDynamicBatch(desc, &gears));
    aclmdlIODims dims;
    OK(aclmdlGetInputDims(desc, 0, &dims));
    uint64_t batch_size = gears.batchCount ? gears.batch[gears.batchCount - 1] : (uint64_t)dims.dims[0];
    size_t n_data_in = n_in - (gears.batchCount ? 1 : 0); /* the dynamic-batch tensor is set once per slot */

    aclrtStream stream, in_stream, out_stream;   /* overlap: copy-in, execute (stream), copy-out */
    OK(aclrtCreateStream(&stream));
    in_stream = out_stream = stream;
    if (overlap) {
        OK(aclrtCreateStream(&in_stream));
        OK(aclrtCreateStream(&out_stream));
    }
    int n_events = overlap ? EV_OVERLAP : 4;
    slot slots[MAX_DEPTH];
    memset(slots, 0, sizeof slots);
    for (int s = 0; s < depth; s++) {
        slot *sl = &slots[s];
        sl->in = aclmdlCreateDataset();
        sl->out = aclmdlCreateDataset();
        for (size_t i = 0; i < n_in; i++) {
            OK(aclrtMalloc(&sl->dev_in[i], in_bytes[i], ACL_MEM_MALLOC_HUGE_FIRST));
            OK(aclrtMallocHost(&sl->host_in[i], in_bytes[i]));
            sl->buf_in[i] = aclCreateDataBuffer(sl->dev_in[i], in_bytes[i]);
            OK(aclmdlAddDatasetBuffer(sl->in, sl->buf_in[i]));
        }
        for (size_t i = 0; i < n_out; i++) {
            OK(aclrtMalloc(&sl->dev_out[i], out_bytes[i], ACL_MEM_MALLOC_HUGE_FIRST));
            OK(aclrtMallocHost(&sl->host_out[i], out_bytes[i]));
            sl->buf_out[i] = aclCreateDataBuffer(sl->dev_out[i], out_bytes[i]);
            OK(aclmdlAddDatasetBuffer(sl->out, sl->buf_out[i]));
        }
        for (int e = 0; e < n_events; e++) OK(aclrtCreateEvent(&sl->ev[e]));
        if (gears.batchCount) { /* the dynamic-batch tensor is the last input */
            size_t idx;
            OK(aclmdlGetInputIndexByName(desc, ACL_DYNAMIC_TENSOR_NAME, &idx));
            OK(aclmdlSetDynamicBatchSize(model, sl->in, idx, batch_size));
        }
    }

    double sum_h2d = 0, sum_exec = 0, sum_d2h = 0;
    int timed = 0;
    double t0 = now_s();
    for (int k = 0; k < batches + depth; k++) {
        slot *sl = &slots[k % depth];
        if (sl->busy) { /* collect the batch that used this slot before */
            float h, c, d;
            if (overlap) {
                OK(aclrtSynchronizeEvent(sl->ev[EV_D2H_END]));
                OK(aclrtEventElapsedTime(&h, sl->ev[EV_H2D_START], sl->ev[EV_H2D_END]));
                OK(aclrtEventElapsedTime(&c, sl->ev[EV_EXEC_START], sl->ev[EV_EXEC_END]));
                OK(aclrtEventElapsedTime(&d, sl->ev[EV_D2H_START], sl->ev[EV_D2H_END]));
            } else {
                OK(aclrtSynchronizeEvent(sl->ev[3]));
                OK(aclrtEventElapsedTime(&h, sl->ev[0], sl->ev[1]));
                OK(aclrtEventElapsedTime(&c, sl->ev[1], sl->ev[2]));
                OK(aclrtEventElapsedTime(&d, sl->ev[2], sl->ev[3]));
            }
            sum_h2d += h;
            sum_exec += c;
            sum_d2h += d;
            timed++;
            sl->busy = 0;
        }
        if (k >= batches) continue;
        for (size_t i = 0; i < n_data_in; i++) memcpy(sl->host_in[i], source[i], in_bytes[i]);
        if (overlap) {
            OK(aclrtRecordEvent(sl->ev[EV_H2D_START], in_stream));
            for (size_t i = 0; i < n_data_in; i++)
                OK(aclrtMemcpyAsync(sl->dev_in[i], in_bytes[i], sl->host_in[i], in_bytes[i], ACL_MEMCPY_HOST_TO_DEVICE, in_stream));
            OK(aclrtRecordEvent(sl->ev[EV_H2D_END], in_stream));
            OK(aclrtStreamWaitEvent(stream, sl->ev[EV_H2D_END]));
            OK(aclrtRecordEvent(sl->ev[EV_EXEC_START], stream));
            OK(aclmdlExecuteAsync(model, sl->in, sl->out, stream));
            OK(aclrtRecordEvent(sl->ev[EV_EXEC_END], stream));
            OK(aclrtStreamWaitEvent(out_stream, sl->ev[EV_EXEC_END]));
            OK(aclrtRecordEvent(sl->ev[EV_D2H_START], out_stream));
            for (size_t i = 0; i < n_out; i++)
                OK(aclrtMemcpyAsync(sl->host_out[i], out_bytes[i], sl->dev_out[i], out_bytes[i], ACL_MEMCPY_DEVICE_TO_HOST, out_stream));
            OK(aclrtRecordEvent(sl->ev[EV_D2H_END], out_stream));
        } else {
            OK(aclrtRecordEvent(sl->ev[0], stream));
            for (size_t i = 0; i < n_data_in; i++)
                OK(aclrtMemcpyAsync(sl->dev_in[i], in_bytes[i], sl->host_in[i], in_bytes[i], ACL_MEMCPY_HOST_TO_DEVICE, stream));
            OK(aclrtRecordEvent(sl->ev[1], stream));
            OK(aclmdlExecuteAsync(model, sl->in, sl->out, stream));
            OK(aclrtRecordEvent(sl->ev[2], stream));
            for (size_t i = 0; i < n_out; i++)
                OK(aclrtMemcpyAsync(sl->host_out[i], out_bytes[i], sl->dev_out[i], out_bytes[i], ACL_MEMCPY_DEVICE_TO_HOST, stream));
            OK(aclrtRecordEvent(sl->ev[3], stream));
        }
        sl->busy = 1;
    }
    double wall = now_s() - t0;
    double mh = sum_h2d / timed, mc = sum_exec / timed, md = sum_d2h / timed;
    double slowest = mh > mc ? mh : mc;
    if (md > slowest) slowest = md;
    double period_ms = overlap ? slowest : mh + mc + md;
    double bound = 1000.0 * (double)batch_size / period_ms;
    double thr = (double)batch_size * batches / wall;
    if (overlap)
        printf("model %s  mode overlap  batches %d  depth %d  batch size %llu\n", model_path, batches, depth, (unsigned long long)batch_size);
    else
        printf("model %s  batches %d  depth %d  batch size %llu\n", model_path, batches, depth, (unsigned long long)batch_size);
    printf("stage means (device events): h2d %.4f ms  execute %.4f ms  d2h %.4f ms%s\n", mh, mc, md,
           overlap ? "  (bound: the slowest stage)" : "");
    printf("throughput %.1f samples/s (%.1f batches/s)  bound %.1f samples/s  efficiency %.3f\n", thr, batches / wall, bound, thr / bound);

    for (int s = 0; s < depth; s++) {
        slot *sl = &slots[s];
        for (size_t i = 0; i < n_in; i++) {
            OK(aclDestroyDataBuffer(sl->buf_in[i]));
            OK(aclrtFree(sl->dev_in[i]));
            OK(aclrtFreeHost(sl->host_in[i]));
        }
        for (size_t i = 0; i < n_out; i++) {
            OK(aclDestroyDataBuffer(sl->buf_out[i]));
            OK(aclrtFree(sl->dev_out[i]));
            OK(aclrtFreeHost(sl->host_out[i]));
        }
        OK(aclmdlDestroyDataset(sl->in));
        OK(aclmdlDestroyDataset(sl->out));
        for (int e = 0; e < n_events; e++) OK(aclrtDestroyEvent(sl->ev[e]));
    }
    for (size_t i = 0; i < n_in; i++) free(source[i]);
    OK(aclrtDestroyStream(stream));
    if (overlap) {
        OK(aclrtDestroyStream(in_stream));
        OK(aclrtDestroyStream(out_stream));
    }
    OK(aclmdlDestroyDesc(desc));
    OK(aclmdlUnload(model));
    OK(aclrtResetDevice(0));
    OK(aclFinalize());
    return 0;
}
