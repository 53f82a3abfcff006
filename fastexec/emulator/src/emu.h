/* Internal declarations shared by the emulator's translation units. */
#ifndef FASTEXEC_EMU_H
#define FASTEXEC_EMU_H

#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "acl/acl.h"
#include "fastexec/acl_emulator.h"
#include "model_file.h"

#define EMU_API ACL_FUNC_VISIBILITY

/* ---------------------------------------------------------------- time */
uint64_t emu_now_ns(void);
void emu_sleep_until(uint64_t deadline_ns);          /* stream workers (precise timers) */
void emu_sleep_until_caller(uint64_t deadline_ns);   /* a caller's thread (synchronous APIs) */
void emu_precise_timers(void);
/* Absolute CLOCK_MONOTONIC deadline for pthread_cond_timedwait, `ms` from now. */
struct timespec emu_deadline_ms(int64_t ms);

/* ---------------------------------------------------------------- errors */
/* Record the calling thread's message for aclGetRecentErrMsg and return `code`. */
aclError emu_fail(aclError code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A checked-mode finding: counted, remembered process-wide, and reported as emu_fail. */
aclError emu_finding(fxemuFindingKind kind, aclError code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------- config */
extern fxemuProfile emu_profile;            /* fast / checked may change at run time */
void emu_init_once(void);                   /* reads the environment; idempotent */
/* Modelled duration of a copy; `pageable`: the host side is neither pinned nor registered. */
uint64_t emu_copy_ns(aclrtMemcpyKind kind, size_t bytes, int pageable);
/* The profile's device allocation / free cost, spent on the calling thread (not in fast mode). */
void emu_alloc_cost(void);

/* ---------------------------------------------------------------- faults */
extern atomic_int emu_fault_rules;          /* number of active rules: fast path when 0 */
/* Called at the top of every API: returns a code to fail with, or ACL_SUCCESS. */
aclError emu_fault_call(const char *api);
/* Called when an API enqueues a task on a stream of (physical) device `device`: sets
 * *fail_code / *stall_ms when a rule fires. */
void emu_fault_task(const char *api, int32_t device, aclError *fail_code, uint32_t *stall_ms);

#define EMU_ENTER(api)                                                   \
    do {                                                                 \
        emu_init_once();                                                 \
        if (atomic_load_explicit(&emu_fault_rules, memory_order_relaxed)) { \
            aclError fault_ = emu_fault_call(api);                       \
            if (fault_ != ACL_SUCCESS) return fault_;                    \
        }                                                                \
    } while (0)

/* ---------------------------------------------------------------- handles */
typedef enum {
    EMU_H_CONTEXT = 1,
    EMU_H_STREAM,
    EMU_H_EVENT,
    EMU_H_DATABUFFER,
    EMU_H_DATASET,
    EMU_H_DESC,
    EMU_H_EXECCFG,
    EMU_H_TENSORDESC,
    EMU_H_LOADCFG,
    EMU_H_AIPP,
} emu_handle_kind;

/* Registers a live handle; returns its generation (unique per registration). */
uint64_t emu_handle_add(const void *p, emu_handle_kind kind);
/* Live, of `kind`, and still the registration of generation `gen` (not a new object at its address). */
int emu_handle_live_gen(const void *p, emu_handle_kind kind, uint64_t gen);
/* Frees a destroyed handle object's memory; strict mode quarantines it so its address is not reused soon. */
void emu_handle_free(void *p);
int emu_handle_remove(const void *p, emu_handle_kind kind);   /* 1 if it was live */
int emu_handle_live(const void *p, emu_handle_kind kind);
const char *emu_handle_kind_name(emu_handle_kind kind);
/* Validate a handle argument: NULL -> ACL_ERROR_INVALID_PARAM, not live -> destroyed-handle finding. */
aclError emu_check_handle(const void *p, emu_handle_kind kind, const char *api);
/* For the plain handle objects (data buffer, dataset, description, exec config): a zeroed,
 * registered and counted object of `size` bytes, or NULL when an injected call fault fires... */
void *emu_handle_new(size_t size, emu_handle_kind kind, const char *api);
/* ...and its end: validated, unregistered and uncounted; the caller frees it on success. */
aclError emu_handle_destroy(const void *p, emu_handle_kind kind, const char *api);
/* Up to `max` live handles of `kind` into out[]; returns how many there are. */
size_t emu_handle_collect(emu_handle_kind kind, void **out, size_t max);

/* ---------------------------------------------------------------- counters */
typedef struct {
    atomic_uint_fast64_t streams, events, contexts, datasets, data_buffers, model_descs, exec_configs,
        models, tasks_run, overruns, tensor_descs, load_configs, aipp_sets;
} emu_live_counters;
extern emu_live_counters emu_live;

/* ---------------------------------------------------------------- devices, contexts */
enum { EMU_ENGINE_COMPUTE = 0, EMU_ENGINE_H2D = 1, EMU_ENGINE_D2H = 2, EMU_ENGINES = 3 };

typedef struct {
    pthread_mutex_t mu;
    uint64_t free_at;      /* emulated time at which the engine's last reserved task ends */
} emu_engine;

typedef struct emu_context emu_context;
typedef struct emu_stream emu_stream;

typedef struct {
    int32_t id;                      /* logical id, as the application sees it (from 0) */
    int32_t phys_id;                 /* emulated physical id (ASCEND_RT_VISIBLE_DEVICES maps them) */
    aclrtFloatOverflowMode sat_mode; /* aclrtSetDeviceSatMode */
    emu_engine engines[EMU_ENGINES];
    uint64_t mem_used;               /* guarded by the memory lock */
    int set_count;                   /* aclrtSetDevice reference count; guarded by emu_global_mu */
    emu_context *default_ctx;
} emu_device;

struct emu_context {
    uint64_t gen;                 /* registry generation */
    emu_device *dev;
    int is_default;
    emu_stream *default_stream;
};

extern pthread_mutex_t emu_global_mu;       /* device reference counts, init state */
extern emu_device *emu_devices;
extern int emu_initialized;                 /* aclInit done and not finalized */

emu_context *emu_current_context(void);     /* NULL when none or destroyed */
/* The calling thread's current context in *out, or ACL_ERROR_RT_CONTEXT_NULL naming `api`. */
aclError emu_require_context(emu_context **out, const char *api);
/* Strict mode: the calling thread must have a current context (ACL_ERROR_RT_CONTEXT_NULL) and `s`,
 * when given, must belong to it (ACL_ERROR_RT_STREAM_CONTEXT), as CANN's runtime checks. */
aclError emu_strict_context(emu_stream *s, const char *api);
/* The stream an API should use: `s` validated, or the current context's default stream for NULL. */
aclError emu_resolve_stream(aclrtStream s, emu_stream **out, const char *api);

/* One task's use of an engine. emu_engine_begin reserves the interval [start, start + dur)
 * on the emulated timeline (start = max(earliest, engine free)) just before the real work;
 * emu_engine_end, just after it, lengthens the interval when the real work took longer than
 * the model (an overrun), then sleeps until the interval's end. The interval never depends on
 * when the thread woke up, so timer lateness does not accumulate. */
typedef struct {
    emu_engine *engine;
    uint64_t start, dur, work_t0;
} emu_engine_slot;
void emu_engine_begin(emu_engine_slot *slot, emu_engine *e, uint64_t earliest, uint64_t dur_ns);
uint64_t emu_engine_end(emu_engine_slot *slot, int on_worker);   /* returns the task's end */

/* ---------------------------------------------------------------- memory */
typedef enum { EMU_MEM_PAGEABLE = 0, EMU_MEM_PINNED, EMU_MEM_DEVICE, EMU_MEM_REGISTERED } emu_mem_kind;

typedef struct emu_alloc {
    char *base;
    size_t size;          /* bytes the caller may use (rounded size) */
    emu_mem_kind kind;
    emu_device *dev;
    int inflight;         /* queued tasks using it */
    int free_pending;     /* freed while in use with checked mode off: freed when inflight drops to 0 */
    int dvpp;             /* from acldvppMalloc: freed with acldvppFree */
    atomic_int freed;     /* strict mode: freed while in use: out of the table, poisoned, its memory
                             kept until the tasks holding it are done */
} emu_alloc;

/* Classify [p, p+n). Returns the allocation (or NULL for pageable host memory). Fails with
 * ACL_ERROR_RT_PARAM_INVALID when the range starts inside an allocation and runs past its end. */
aclError emu_mem_find(const void *p, size_t n, emu_alloc **out, const char *api, const char *what);
const char *emu_mem_kind_name(emu_mem_kind kind);
/* Pin allocations for a queued task / release them when it completes. */
void emu_mem_hold(emu_alloc *a);
void emu_mem_release(emu_alloc *a);
/* Synchronous copy with the timing model (calling thread); `pageable`: the host side is neither
 * pinned nor registered. */
void emu_timed_copy(emu_device *dev, void *dst, const void *src, size_t n, aclrtMemcpyKind dir, int pageable);

/* ---------------------------------------------------------------- streams, tasks */
typedef enum {
    EMU_T_COPY = 1,
    EMU_T_MEMSET,
    EMU_T_EXEC,
    EMU_T_RECORD,
    EMU_T_WAIT,
    EMU_T_CALLBACK,
    EMU_T_HOSTFUNC,
    EMU_T_STALL,
} emu_task_kind;

typedef struct emu_event emu_event;
typedef struct emu_snapshot emu_snapshot;
typedef struct emu_model emu_model;

typedef struct emu_task {
    struct emu_task *next;
    emu_task_kind kind;
    uint64_t submit_ns;
    aclError fail_code;       /* injected failure */
    uint32_t stall_ms;        /* injected stall before the task */
    emu_alloc *holds[2 * EMU_MAX_IO + 2];
    int n_holds;
    union {
        struct { void *dst; const void *src; size_t n; aclrtMemcpyKind dir; } copy;
        struct { void *dst; int value; size_t n; } memset;
        struct { emu_model *model; uint64_t batch; emu_dyn_values vals; void *in[EMU_MAX_IO]; void *out[EMU_MAX_IO]; const void *aipp; size_t aipp_len; } exec;
        struct { emu_event *ev; emu_snapshot *snap; } record;
        struct { emu_event *ev; emu_snapshot *snap; } wait;
        struct { aclrtCallback fn; void *data; int block; } callback;
        struct { aclrtHostFunc fn; void *args; } hostfunc;
        struct { uint32_t ms; } stall;
    } u;
} emu_task;

/* Dispatch (emu_stream.c). Hosts append tasks under the stream's mutex; the worker takes the
 * whole queue at once and runs it without any lock, publishing each completion with an atomic
 * counter. Nobody is woken unless it is blocked: an idle worker, a host in a synchronisation or a
 * stream waiting on an event first polls (yielding its core) for a short while, and only then
 * blocks and says so. Task records are recycled: the worker hands finished ones back to its
 * stream, the next push moves them to the pushing thread's cache, emu_task_new takes from there. */
struct emu_stream {
    uint32_t id;                 /* per process, from 0; reported in exception info */
    emu_context *ctx;
    emu_device *dev;
    int is_default;
    uint32_t flags;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;      /* a blocked idle worker waits here */
    pthread_cond_t cv_done;      /* hosts blocked in a synchronisation wait here */
    emu_task *head, *tail;       /* queued, not yet taken by the worker; guarded by mu */
    emu_task *recycled, *recycled_tail;  /* finished records for the next push; guarded by mu */
    unsigned n_recycled;
    int worker_blocked;          /* the worker sleeps on cv_work; guarded by mu */
    atomic_uint_fast64_t submitted;  /* written under mu */
    atomic_uint_fast64_t completed;  /* written by the worker only */
    atomic_uint_fast64_t wake_at;    /* lowest target of a host blocked on cv_done; UINT64_MAX: none */
    atomic_int stopping;
    uint64_t ready_at;           /* emulated end time of the last completed task; worker only */
    aclError err_sync;           /* first task error since the last synchronisation; guarded by mu */
    aclError err_event;          /* first task error since the last event record; worker only */
    int32_t sync_timeout_ms;     /* sticky from an exec config; -1 = forever */
    int32_t event_timeout_ms;
    int used_callback, used_hostfunc;
    int has_subscriber;
    uint64_t subscriber;         /* pthread id of the report thread */
    pthread_t thread;
    emu_stream *next_all;        /* global list of streams */
};

/* What one aclrtRecordEvent captured: complete when the stream reaches the record. Waits
 * enqueued before a re-record keep the snapshot they saw. Guarded by its event's mutex; `done`
 * may also be polled without it. */
struct emu_snapshot {
    int refs;
    atomic_int done;
    uint64_t ts;                 /* emulated time at which the stream reached the record */
    aclError err;                /* task error captured by the record */
    int32_t timeout_ms;          /* sticky from the recording stream's exec config */
};

struct emu_event {
    pthread_mutex_t mu;
    pthread_cond_t cv;           /* a snapshot completed (broadcast only when waiters > 0) */
    uint32_t flags;
    emu_snapshot *latest;        /* NULL until the first record */
    int refs;                    /* handle + queued tasks */
    int waiters;                 /* threads blocked on cv */
    emu_snapshot *spare;         /* a dead snapshot kept for the next record */
};

/* Strict mode, on a stream's worker before it runs `t`: a finding for every allocation the task
 * holds that was freed after the task was queued (the task then reads or writes the poison). */
void emu_mem_check_task(const emu_stream *s, const emu_task *t);
aclError emu_stream_create(emu_context *ctx, uint32_t flags, int is_default, emu_stream **out);
void emu_stream_destroy(emu_stream *s);       /* drains, joins, frees */
/* A zeroed task record (from the calling thread's cache of recycled ones); the caller fills it
 * and calls emu_stream_push (which takes ownership). */
emu_task *emu_task_new(emu_task_kind kind);
void emu_stream_push(emu_stream *s, emu_task *t, const char *api);
/* A stream worker waiting for a modelled end: polls the clock (yielding) for short waits, sleeps
 * on the absolute deadline for long ones. */
void emu_worker_wait_until(uint64_t deadline_ns);
aclError emu_stream_sync(emu_stream *s, int32_t timeout_ms, const char *api);
void emu_event_unref(emu_event *ev);
/* Destroy every stream of a context (default stream included). */
void emu_context_drop_streams(emu_context *ctx);

/* ---------------------------------------------------------------- exceptions (emu_exception.c) */
/* A stream task failed on the device: records what it ran (for aclmdlCreateAndGetOpDesc)
 * and calls the exception-info callback. Called by the stream's worker before the task counts
 * as complete, so before any synchronisation that reports the failure returns. */
void emu_exception_task_failed(emu_stream *s, emu_task *t);

/* ---------------------------------------------------------------- tensor descriptions (emu_tensor.c) */
struct aclTensorDesc {
    aclDataType dtype;
    aclFormat format;
    size_t ndims;
    int64_t dims[ACL_MAX_DIM_CNT];
    size_t nranges;
    int64_t ranges[ACL_MAX_DIM_CNT][2];
    size_t array_len;            /* elements of the array this one starts (1 for a single desc) */
    int array_elem;              /* 1 for elements 1.. of an array: not destroyable on their own */
};
/* A registered, counted array of `n` descriptions (n >= 1), or NULL. */
aclTensorDesc *emu_tensor_desc_array(size_t n);
void emu_tensor_desc_set(aclTensorDesc *d, aclDataType dtype, aclFormat format, size_t ndims, const int64_t *dims);
void emu_tensor_desc_free(aclTensorDesc *d);   /* unregisters and frees a whole array */

/* ---------------------------------------------------------------- config (emu_config.c) */
/* A parsed JSON value. Objects and arrays keep their members in order. */
typedef enum { EMU_JSON_NULL, EMU_JSON_BOOL, EMU_JSON_NUMBER, EMU_JSON_STRING, EMU_JSON_ARRAY, EMU_JSON_OBJECT } emu_json_kind;
typedef struct emu_json {
    emu_json_kind kind;
    int boolean;
    double number;
    char *string;                /* string value, NUL-terminated (may hold NULs escaped as \u0000: cut there) */
    char *key;                   /* member name inside an object */
    struct emu_json *child;      /* first member / element */
    struct emu_json *next;       /* next sibling */
} emu_json;
/* Parse `len` bytes; NULL on error with a message (line and column) in err. */
emu_json *emu_json_parse(const char *text, size_t len, char *err, size_t errlen);
void emu_json_free(emu_json *v);
const emu_json *emu_json_get(const emu_json *object, const char *key);
/* aclInit's configuration: read and parse `path` (NULL or "" = none) and keep it. */
aclError emu_config_load(const char *path);
/* A top-level section of the acl.json given to aclInit ("dump", "profiler", ...), or NULL. Valid
 * until aclFinalize; callers outside aclInit/aclFinalize hold emu_global_mu. */
const emu_json *emu_config_section(const char *name);
void emu_config_clear(void);
/* Read and parse a JSON file (an empty file: an empty object) into *out, or fail naming `api`. */
aclError emu_json_read_file(const char *path, emu_json **out, const char *api);

/* ---------------------------------------------------------------- dump, profiler (emu_dump.c) */
/* aclInit's "dump" and "profiler" sections (either may be absent): checked and switched on. */
aclError emu_dump_profiler_from_config(const emu_json *config);
void emu_dump_profiler_finalize(void);
/* A model being loaded: its dump folder (malloc'ed) and mode when dump_list names it, else NULL. */
char *emu_dump_dir_for(const char *model_name, const char *file_stem, int device_id, uint32_t model_id, int *mode);
/* Dump one execution's inputs (phase_outputs 0) or outputs (1) as .npy files, if `mode` wants them. */
void emu_dump_tensors(const char *base, uint64_t index, int mode, int phase_outputs, const emu_model_def *def,
                      const emu_dyn_values *vals, void *const *tensors, uint32_t stream_id, uint64_t task_id);
int emu_profiler_on(void);
/* A stream task's modelled interval on the device clock, for the profiler timeline. */
void emu_profiler_task(const emu_stream *s, const char *name, const char *cat, uint64_t start_ns, uint64_t end_ns);

/* ---------------------------------------------------------------- models */
void emu_exec_task_run(emu_stream *s, emu_task *t);
void emu_exec_task_done(emu_task *t, aclError err);
uint64_t emu_exec_duration_ns(const emu_model *m, const emu_dyn_values *vals);
/* One tensor of an operator, as aclmdlCreateAndGetOpDesc reports it. */
typedef struct {
    aclDataType dtype;
    aclFormat format;
    size_t ndims;
    int64_t dims[ACL_MAX_DIM_CNT];
} emu_op_tensor;
/* What an execution task ran: the model's name and its inputs and outputs at the task's batch
 * (malloc'ed arrays, NULL when empty). */
void emu_exec_describe(const emu_task *t, char *name, size_t len, emu_op_tensor **in, size_t *n_in, emu_op_tensor **out, size_t *n_out);

#endif
