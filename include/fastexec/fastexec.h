/* fastexec C API: drive a pipelined fastexec Executor from C, from any thread, without the GIL.
 *
 * Use from a C extension module (or an application embedding Python), with no link-time
 * dependency on fastexec: include this header, call fastexec_import() once with the GIL held
 * (typically in the module's init function), then call through the returned table.
 *
 *     const fastexec_api *fx = fastexec_import();       // NULL with an ImportError set on failure
 *     fastexec_executor *ex;
 *     fx->from_object(py_executor, &ex);                  // GIL held: a Python fastexec.Executor
 *     // ... any thread, no GIL needed:
 *     int64_t t; fx->submit(ex, inputs, rows, &t);        // inputs copied into a slot's pinned memory
 *     const void *const *out; uint64_t n; fx->wait(ex, t, &out, &n);
 *     ... read out[i] (n rows of output i) ...
 *     fx->release(ex, t);                                 // the slot may be reused
 *     // a dynamic HW / dims / shape model: submit_shaped(ex, inputs, dims, &t), and after wait
 *     // output_dims(ex, t, i, d) gives output i's real dims
 *     fx->close(ex);
 *
 * Every function returns a fastexec_status and never raises; on failure fx->last_error()
 * gives this thread's message. A function called with the GIL held gives it up while it runs.
 * Batches are reused in order: a slot is free once the batch submitted depth x instances
 * (x devices) before it has been released (FASTEXEC_ERR_BUSY until then). C batches belong to the handle
 * that made them and may be in flight beside the executor's Python batches. Closing the
 * executor from Python waits until the handle's batches are released (submit and acquire then
 * fail with FASTEXEC_ERR_CLOSED; wait and release still work).
 */
#ifndef FASTEXEC_FASTEXEC_H
#define FASTEXEC_FASTEXEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever the table below changes; fastexec_import() refuses a mismatch. (Defining it
 * yourself before including this header only serves to test that refusal.) */
#ifndef FASTEXEC_C_API_VERSION
#define FASTEXEC_C_API_VERSION 5
#endif
#define FASTEXEC_C_API_CAPSULE "fastexec._core._C_API"

typedef enum {
    FASTEXEC_OK = 0,
    FASTEXEC_ERR_INVALID_ARGUMENT = 1, /* NULL pointer, index out of range, rows or dims out of range */
    FASTEXEC_ERR_CLOSED = 2,           /* the handle or its executor has been closed */
    FASTEXEC_ERR_BUSY = 3,             /* no free slot: wait for and release an earlier batch */
    FASTEXEC_ERR_UNKNOWN_TICKET = 4,   /* not a batch of this handle that can take this call */
    FASTEXEC_ERR_BATCH_FAILED = 5,     /* the device work of the batch failed (last_error says why) */
    FASTEXEC_ERR_ACL = 6,              /* an ACL call failed when queueing (last_error names it) */
    /* 7 was FASTEXEC_ERR_STATE in version 1: C and Python batches now share the executor */
    FASTEXEC_ERR_PYTHON = 8            /* creating or inspecting a Python object failed */
} fastexec_status;

typedef struct fastexec_executor fastexec_executor;

typedef struct {
    const char *name;       /* valid while the handle is open */
    int32_t dtype;          /* aclDataType */
    int32_t format;         /* aclFormat */
    size_t ndims;
    const int64_t *dims;    /* dims[0] is the batch axis (-1 for a dynamic batch) */
    size_t nbytes;          /* bytes of one full batch */
} fastexec_tensor_info;

/* One series of per-batch times over every batch since the statistics were last reset, in ms
 * (percentiles from a log-bucket histogram, to ~0.5 %). All 0 while count is 0. */
typedef struct {
    uint64_t count;
    double mean_ms, min_ms, max_ms;
    double p50_ms, p90_ms, p95_ms, p99_ms;
} fastexec_series;

/* What Executor.stats() reports (docs/bench.md explains each figure). */
typedef struct {
    uint64_t batches;
    double wall_s;                   /* time with batches on the device */
    double h2d_mean_ms, execute_mean_ms, d2h_mean_ms;
    double samples_per_s;            /* end to end: batches x batch size / wall_s */
    /* version 3 */
    fastexec_series h2d, execute, d2h; /* device stage times from events */
    fastexec_series end_to_end;      /* queued to seen done by the host */
    fastexec_series host_staging, host_enqueue;
    uint64_t calibration_batches;    /* 0: no calibrate() yet; the bound then uses the run's means */
    double calibration_h2d_ms, calibration_execute_ms, calibration_d2h_ms;
    double bound_period_ms;          /* 0 when there is nothing to build it from */
    double bound_samples_per_s;
    double efficiency;               /* samples_per_s / bound_samples_per_s */
    double compute_only_samples_per_s;
    double device_utilization;       /* batches x execute time / wall_s / devices: one compute engine per device */
} fastexec_stats;

typedef struct fastexec_api {
    uint32_t version; /* FASTEXEC_C_API_VERSION of the fastexec that made the table */
    uint32_t size;    /* sizeof(fastexec_api) there */
    /* Handles. from_object needs the GIL (it takes a Python fastexec.Executor, a PyObject*);
     * open takes it itself. close releases the handle (closing an executor that open made). */
    int (*from_object)(void *py_executor, fastexec_executor **out);
    int (*open)(const char *model_path, int32_t device, int32_t depth, int32_t instances, fastexec_executor **out);
    int (*close)(fastexec_executor *ex);
    /* Shape of the model. */
    int (*batch_size)(fastexec_executor *ex, uint64_t *out);
    int (*num_tensors)(fastexec_executor *ex, int is_output, size_t *out);
    int (*tensor_info)(fastexec_executor *ex, int is_output, size_t index, fastexec_tensor_info *out);
    /* One batch: copy `rows` rows of each input (inputs[i] holds rows x row bytes) into a slot
     * and queue it... */
    int (*submit)(fastexec_executor *ex, const void *const *inputs, uint64_t rows, int64_t *ticket);
    /* ...or reserve a slot and write its pinned inputs in place (batch_size rows each), then
     * queue it with commit (rows = 0 gives the slot back unqueued). */
    int (*acquire)(fastexec_executor *ex, void **inputs, int64_t *ticket);
    int (*commit)(fastexec_executor *ex, int64_t ticket, uint64_t rows);
    /* Wait for a batch; outputs[i] then points at its rows of output i (a shaped batch's: at the
     * dims output_dims gives), valid until release. */
    int (*wait)(fastexec_executor *ex, int64_t ticket, const void *const **outputs, uint64_t *rows);
    int (*release)(fastexec_executor *ex, int64_t ticket);
    int (*stats)(fastexec_executor *ex, fastexec_stats *out);
    /* This thread's message for its last failing call ("" if none). */
    const char *(*last_error)(void);
    /* version 4: open on several devices (ids devices[0..n_devices-1], distinct), `instances`
     * per device; batch k runs on devices[k % n_devices], outputs in ticket order as always.
     * open(path, d, ...) is open_devices(path, &d, 1, ...). */
    int (*open_devices)(const char *model_path, const int32_t *devices, size_t n_devices, int32_t depth,
                        int32_t instances, fastexec_executor **out);
    /* version 5: batches of a dynamic HW / dims / shape model, whose inputs have shapes (submit
     * and acquire refuse them). dims[i] points at input i's tensor_info ndims values: the shape
     * of this batch's input i, which must be one gear's (every input at the same gear) or within
     * the ranges; else FASTEXEC_ERR_INVALID_ARGUMENT naming the input, the shape and the gears
     * or ranges allowed, before any slot is taken. submit_shaped copies inputs[i] (exactly that
     * shape's bytes); acquire_shaped gives the slot's pinned inputs to write at that shape, then
     * commit(ticket, rows) queues it at those dims for any rows != 0 (0 gives the slot back).
     * wait's rows is the first input's dim 0. */
    int (*submit_shaped)(fastexec_executor *ex, const void *const *inputs, const int64_t *const *dims, int64_t *ticket);
    int (*acquire_shaped)(fastexec_executor *ex, const int64_t *const *dims, void **inputs, int64_t *ticket);
    /* The real dims of output `index` of a waited, unreleased batch (any model): `dims` receives
     * tensor_info(ex, 1, index).ndims values; outputs[index] of wait holds exactly those. */
    int (*output_dims)(fastexec_executor *ex, int64_t ticket, size_t index, int64_t *dims);
} fastexec_api;

#ifdef Py_PYTHON_H
/* Import fastexec's C API. Call with the GIL held. Returns NULL with ImportError set when
 * fastexec is missing or was built with another FASTEXEC_C_API_VERSION. */
static inline const fastexec_api *fastexec_import(void)
{
    PyObject *core = PyImport_ImportModule("fastexec._core");   /* the capsule's module */
    if (!core) return NULL;
    Py_DECREF(core);
    const fastexec_api *api = (const fastexec_api *)PyCapsule_Import(FASTEXEC_C_API_CAPSULE, 0);
    if (!api) return NULL;
    if (api->version != FASTEXEC_C_API_VERSION || api->size < sizeof(fastexec_api)) {
        PyErr_Format(PyExc_ImportError,
                     "fastexec C API version %u (table of %u bytes) does not match this header's version %d (%u bytes); "
                     "rebuild against fastexec.get_include() of the installed fastexec",
                     (unsigned)api->version, (unsigned)api->size, FASTEXEC_C_API_VERSION, (unsigned)sizeof(fastexec_api));
        return NULL;
    }
    return api;
}
#endif

#ifdef __cplusplus
}
#endif

#endif
