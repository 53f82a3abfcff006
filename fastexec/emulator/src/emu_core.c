/* Emulator core: time, errors, profiles, fault injection, handle registry, init,
 * devices and contexts, introspection. */
#include "emu.h"

#include <ctype.h>
#include <sched.h>
#include <errno.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <time.h>

/* ================================================================ time */

uint64_t emu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Stream workers sleep with a 1 ns timer slack (Linux's default of 50 us would make every
 * modelled task end ~50 us late); a caller's thread gets its own slack back afterwards. */
void emu_precise_timers(void) { prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); }

void emu_sleep_until(uint64_t deadline_ns)
{
    struct timespec ts = {(time_t)(deadline_ns / 1000000000ull), (long)(deadline_ns % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

void emu_sleep_until_caller(uint64_t deadline_ns)
{
    /* A deadline already past costs nothing: clock_nanosleep would still enter the kernel
     * (~22 us on the development VM) even with nothing to wait for. */
    uint64_t now = emu_now_ns();
    if (now >= deadline_ns) return;
    if (deadline_ns - now < 100000ull) {   /* short waits poll the clock, as stream workers do */
        while (emu_now_ns() < deadline_ns) sched_yield();
        return;
    }
    int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    emu_precise_timers();
    emu_sleep_until(deadline_ns);
    if (slack > 0) prctl(PR_SET_TIMERSLACK, (unsigned long)slack, 0, 0, 0);
}

struct timespec emu_deadline_ms(int64_t ms)
{
    uint64_t t = emu_now_ns() + (uint64_t)ms * 1000000ull;
    struct timespec ts = {(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
    return ts;
}

/* ================================================================ errors */

static _Thread_local char tl_msg[1024];
static _Thread_local int tl_has_msg;
static _Thread_local char tl_returned[1024];
static _Thread_local aclError tl_last_error;   /* aclrtGetLastError / aclrtPeekAtLastError */

static pthread_mutex_t finding_mu = PTHREAD_MUTEX_INITIALIZER;
static char last_finding[1024];
static atomic_uint_fast64_t findings_total;
static atomic_uint_fast64_t findings_by_kind[FXEMU_FINDING_KINDS];

static void set_msg(const char *fmt, va_list ap)
{
    vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
    tl_has_msg = 1;
}

aclError emu_fail(aclError code, const char *fmt, ...)
{
    tl_last_error = code;
    va_list ap;
    va_start(ap, fmt);
    set_msg(fmt, ap);
    va_end(ap);
    return code;
}

aclError emu_finding(fxemuFindingKind kind, aclError code, const char *fmt, ...)
{
    tl_last_error = code;
    va_list ap;
    va_start(ap, fmt);
    set_msg(fmt, ap);
    va_end(ap);
    atomic_fetch_add(&findings_total, 1);
    atomic_fetch_add(&findings_by_kind[kind], 1);
    pthread_mutex_lock(&finding_mu);
    snprintf(last_finding, sizeof last_finding, "%s", tl_msg);
    pthread_mutex_unlock(&finding_mu);
    return code;
}

EMU_API const char *aclGetRecentErrMsg(void)
{
    if (!tl_has_msg) return NULL;
    memcpy(tl_returned, tl_msg, sizeof tl_returned);
    tl_has_msg = 0;
    return tl_returned;
}

static aclError last_error(aclrtLastErrLevel level, int clear, const char *api)
{
    emu_init_once();
    if (level != ACL_RT_THREAD_LEVEL) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: level must be ACL_RT_THREAD_LEVEL (got %d)", api, (int)level);
    aclError code = tl_last_error;
    if (clear) tl_last_error = ACL_SUCCESS;
    return code;
}

EMU_API aclError aclrtGetLastError(aclrtLastErrLevel level) { return last_error(level, 1, "aclrtGetLastError"); }
EMU_API aclError aclrtPeekAtLastError(aclrtLastErrLevel level) { return last_error(level, 0, "aclrtPeekAtLastError"); }

/* ================================================================ profiles */

fxemuProfile emu_profile;

typedef struct {
    const char *name, *soc;
    uint32_t devices;
    double h2d, d2h, d2d, lat_h2d, lat_d2h, launch;
    uint64_t mem;
    int v2, host_register;
} builtin_profile;

/* Copies from or to pageable host memory (neither aclrtMallocHost nor registered): ais_bench's
 * synchronous aclrtMemcpy on a 310P3 measured 3 MiB H2D in 0.793 ms (4.0 GB/s) and 150 MiB D2H in
 * 98.0 ms (1.6 GB/s) (shared/reference/perf-anchors.md, S8). The only published figures; every
 * built-in profile uses them, never faster than the profile's pinned bandwidth. */
#define PAGEABLE_H2D_GBPS 4.0
#define PAGEABLE_D2H_GBPS 1.6

#define GiB (1024ull * 1024ull * 1024ull)
static const builtin_profile builtin_profiles[] = {
    /* Atlas 300I Pro: one 310P3 chip, 24 GB LPDDR4X, PCIe Gen4 x16 (~24 GB/s per direction). */
    {"atlas-300i-pro", "Ascend310P3", 1, 24.0, 24.0, 120.0, 10.0, 10.0, 5.0, 24 * GiB, 0, 0},
    /* Atlas 300I Duo: two 310P3 chips on one card. */
    {"atlas-300i-duo", "Ascend310P3", 2, 24.0, 24.0, 120.0, 10.0, 10.0, 5.0, 24 * GiB, 0, 0},
    /* The same card behind a PCIe Gen3 x1 class link: copies of ~1 MB take ~1 ms. */
    {"slow-link", "Ascend310P3", 1, 1.0, 1.0, 120.0, 10.0, 10.0, 5.0, 24 * GiB, 0, 0},
    /* Atlas 800I A2 class (910B): host memory registration is supported there. */
    {"atlas-800i-a2", "Ascend910B4", 1, 24.0, 24.0, 480.0, 10.0, 10.0, 5.0, 64 * GiB, 0, 1},
    /* IPV350: the only SoC documented to support aclmdlExecuteAsyncV2 and the work-memory options. */
    {"ipv350", "IPV350", 1, 8.0, 8.0, 30.0, 10.0, 10.0, 5.0, 4 * GiB, 1, 0},
};
#define N_BUILTIN (sizeof builtin_profiles / sizeof builtin_profiles[0])

static void apply_builtin(const builtin_profile *b)
{
    snprintf(emu_profile.name, sizeof emu_profile.name, "%s", b->name);
    snprintf(emu_profile.soc_name, sizeof emu_profile.soc_name, "%s", b->soc);
    emu_profile.device_count = b->devices;
    emu_profile.h2d_gbps = b->h2d;
    emu_profile.d2h_gbps = b->d2h;
    emu_profile.d2d_gbps = b->d2d;
    emu_profile.h2d_latency_us = b->lat_h2d;
    emu_profile.d2h_latency_us = b->lat_d2h;
    emu_profile.launch_us = b->launch;
    emu_profile.device_memory_bytes = b->mem;
    emu_profile.exec_async_v2 = b->v2;
    emu_profile.host_register = b->host_register;
    emu_profile.h2d_pageable_gbps = PAGEABLE_H2D_GBPS;
    emu_profile.d2h_pageable_gbps = PAGEABLE_D2H_GBPS;
    emu_profile.alloc_us = 0;   /* no published figure for aclrtMalloc / aclrtFree: unknown, so free */
}

static const builtin_profile *find_builtin(const char *name)
{
    for (size_t i = 0; i < N_BUILTIN; i++)
        if (strcmp(builtin_profiles[i].name, name) == 0) return &builtin_profiles[i];
    return NULL;
}

static char config_error[512];

static int parse_number(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

/* A profile file: "key value" lines, '#' comments; "base NAME" starts from a built-in. */
static int load_profile_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(config_error, sizeof config_error, "FASTEXEC_EMU_PROFILE: '%s' is neither a built-in profile nor a readable file", path);
        return -1;
    }
    char line[512];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char key[64], val[256], extra[8];
        int n = sscanf(line, "%63s %255s %7s", key, val, extra);
        if (n <= 0) continue;
        double v = 0;
        int bad = n != 2;
        if (!bad && strcmp(key, "base") == 0) {
            const builtin_profile *b = find_builtin(val);
            if (b) apply_builtin(b); else bad = 1;
        } else if (!bad && strcmp(key, "soc_name") == 0) {
            snprintf(emu_profile.soc_name, sizeof emu_profile.soc_name, "%.63s", val);
        } else if (!bad && strcmp(key, "devices") == 0) {
            bad = parse_number(val, 1, 64, &v) || v != (uint32_t)v;
            if (!bad) emu_profile.device_count = (uint32_t)v;
        } else if (!bad && strcmp(key, "h2d_gbps") == 0) {
            bad = parse_number(val, 1e-6, 1e6, &emu_profile.h2d_gbps);
        } else if (!bad && strcmp(key, "d2h_gbps") == 0) {
            bad = parse_number(val, 1e-6, 1e6, &emu_profile.d2h_gbps);
        } else if (!bad && strcmp(key, "d2d_gbps") == 0) {
            bad = parse_number(val, 1e-6, 1e6, &emu_profile.d2d_gbps);
        } else if (!bad && strcmp(key, "h2d_latency_us") == 0) {
            bad = parse_number(val, 0, 1e9, &emu_profile.h2d_latency_us);
        } else if (!bad && strcmp(key, "d2h_latency_us") == 0) {
            bad = parse_number(val, 0, 1e9, &emu_profile.d2h_latency_us);
        } else if (!bad && strcmp(key, "launch_us") == 0) {
            bad = parse_number(val, 0, 1e9, &emu_profile.launch_us);
        } else if (!bad && strcmp(key, "device_memory_mb") == 0) {
            bad = parse_number(val, 1, 1e9, &v);
            if (!bad) emu_profile.device_memory_bytes = (uint64_t)(v * 1024 * 1024);
        } else if (!bad && strcmp(key, "exec_async_v2") == 0) {
            bad = parse_number(val, 0, 1, &v);
            emu_profile.exec_async_v2 = (int)v;
        } else if (!bad && strcmp(key, "host_register") == 0) {
            bad = parse_number(val, 0, 1, &v);
            emu_profile.host_register = (int)v;
        } else if (!bad && strcmp(key, "h2d_pageable_gbps") == 0) {
            bad = parse_number(val, 1e-6, 1e6, &emu_profile.h2d_pageable_gbps);
        } else if (!bad && strcmp(key, "d2h_pageable_gbps") == 0) {
            bad = parse_number(val, 1e-6, 1e6, &emu_profile.d2h_pageable_gbps);
        } else if (!bad && strcmp(key, "alloc_us") == 0) {
            bad = parse_number(val, 0, 1e9, &emu_profile.alloc_us);
        } else if (!bad && strcmp(key, "strict") == 0) {
            bad = parse_number(val, 0, 1, &v) || v != (int)v;
            if (!bad) emu_profile.strict = (int)v;
        } else {
            bad = 1;
        }
        if (bad) {
            snprintf(config_error, sizeof config_error, "%s:%d: bad profile line (unknown key or invalid value)", path, lineno);
            rc = -1;
            break;
        }
    }
    fclose(f);
    if (rc == 0) snprintf(emu_profile.name, sizeof emu_profile.name, "file:%.58s", strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
    return rc;
}

static double slower(double a, double b) { return a < b ? a : b; }

uint64_t emu_copy_ns(aclrtMemcpyKind kind, size_t bytes, int pageable)
{
    double gbps, lat_us;
    switch (kind) {
    case ACL_MEMCPY_HOST_TO_DEVICE:
        gbps = pageable ? slower(emu_profile.h2d_pageable_gbps, emu_profile.h2d_gbps) : emu_profile.h2d_gbps;
        lat_us = emu_profile.h2d_latency_us;
        break;
    case ACL_MEMCPY_DEVICE_TO_HOST:
        gbps = pageable ? slower(emu_profile.d2h_pageable_gbps, emu_profile.d2h_gbps) : emu_profile.d2h_gbps;
        lat_us = emu_profile.d2h_latency_us;
        break;
    default: gbps = emu_profile.d2d_gbps; lat_us = 0; break;
    }
    return (uint64_t)(lat_us * 1e3 + (double)bytes / gbps);
}

/* ================================================================ faults */

typedef enum { FAULT_CALL, FAULT_TASK, FAULT_STALL } fault_kind;
typedef struct {
    fault_kind kind;
    char api[64];
    int32_t device;     /* API@D: only calls and tasks on emulated (physical) device D; -1: any */
    uint64_t nth, seen;
    int64_t value;
} fault_rule;

#define MAX_FAULTS 64
static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static fault_rule faults[MAX_FAULTS];
static int n_faults;
atomic_int emu_fault_rules;

static aclError add_fault(const char *rule)
{
    char kind[16], api[64], extra[8];
    unsigned long long nth;
    long long value;
    if (!rule || sscanf(rule, " %15[^:]:%63[^:]:%llu:%lld%7s", kind, api, &nth, &value, extra) != 4 || nth == 0)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "fault rule '%s': expected KIND:API:N:VALUE with KIND call|task|stall and N >= 1", rule ? rule : "(null)");
    fault_rule r = {.nth = nth, .value = value, .device = -1};
    char *at = strchr(api, '@');
    if (at) {
        char *end;
        long dev = strtol(at + 1, &end, 10);
        if (at[1] < '0' || at[1] > '9' || *end || dev >= 64)
            return emu_fail(ACL_ERROR_INVALID_PARAM, "fault rule '%s': expected API@DEVICE with a device id 0..63 after '@'", rule);
        *at = 0;
        r.device = (int32_t)dev;
    }
    if (strcmp(kind, "call") == 0) r.kind = FAULT_CALL;
    else if (strcmp(kind, "task") == 0) r.kind = FAULT_TASK;
    else if (strcmp(kind, "stall") == 0) r.kind = FAULT_STALL;
    else return emu_fail(ACL_ERROR_INVALID_PARAM, "fault rule '%s': unknown kind '%s' (expected call, task or stall)", rule, kind);
    if (r.kind != FAULT_STALL && value == 0)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "fault rule '%s': the error code must be non-zero", rule);
    if (r.kind == FAULT_STALL && (value < 0 || value > 3600000))
        return emu_fail(ACL_ERROR_INVALID_PARAM, "fault rule '%s': stall must be 0..3600000 ms", rule);
    snprintf(r.api, sizeof r.api, "%s", api);
    pthread_mutex_lock(&fault_mu);
    aclError rc = ACL_SUCCESS;
    if (n_faults == MAX_FAULTS) {
        rc = emu_fail(ACL_ERROR_INVALID_PARAM, "fault rule '%s': at most %d rules", rule, MAX_FAULTS);
    } else {
        faults[n_faults++] = r;
        atomic_store(&emu_fault_rules, n_faults);
    }
    pthread_mutex_unlock(&fault_mu);
    return rc;
}

/* `device`: the physical id of the device the call or task is on, -1 when it has none. */
static int fault_fire(fault_kind kind, const char *api, int32_t device, int64_t *value)
{
    int fired = 0;
    pthread_mutex_lock(&fault_mu);
    for (int i = 0; i < n_faults; i++) {
        fault_rule *r = &faults[i];
        if (r->kind != kind || strcmp(r->api, api) != 0) continue;
        if (r->device >= 0 && r->device != device) continue;
        if (++r->seen == r->nth && !fired) {
            *value = r->value;
            fired = 1;
        }
    }
    pthread_mutex_unlock(&fault_mu);
    return fired;
}

aclError emu_fault_call(const char *api)
{
    int64_t code;
    emu_context *ctx = emu_current_context();   /* a call is on the calling thread's current device */
    if (fault_fire(FAULT_CALL, api, ctx ? ctx->dev->phys_id : -1, &code))
        return emu_fail((aclError)code, "%s: injected failure (fault rule call:%s)", api, api);
    return ACL_SUCCESS;
}

void emu_fault_task(const char *api, int32_t device, aclError *fail_code, uint32_t *stall_ms)
{
    if (!atomic_load_explicit(&emu_fault_rules, memory_order_relaxed)) return;
    int64_t v;
    if (fault_fire(FAULT_TASK, api, device, &v)) *fail_code = (aclError)v;
    if (fault_fire(FAULT_STALL, api, device, &v)) *stall_ms = (uint32_t)v;
}

EMU_API aclError fxemuAddFault(const char *rule)
{
    emu_init_once();
    return add_fault(rule);
}

EMU_API void fxemuClearFaults(void)
{
    emu_init_once();
    pthread_mutex_lock(&fault_mu);
    n_faults = 0;
    atomic_store(&emu_fault_rules, 0);
    pthread_mutex_unlock(&fault_mu);
}

/* ================================================================ init */

pthread_mutex_t emu_global_mu = PTHREAD_MUTEX_INITIALIZER;
emu_device *emu_devices;
int emu_initialized;
static int init_refs;
emu_live_counters emu_live;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_body(void)
{
    apply_builtin(&builtin_profiles[0]);
    emu_profile.checked = 1;
    const char *p = getenv("FASTEXEC_EMU_PROFILE");
    if (p && *p) {
        const builtin_profile *b = find_builtin(p);
        if (b) apply_builtin(b);
        else if (load_profile_file(p) != 0) {
            fprintf(stderr, "fastexec ACL emulator: %s; using the default profile\n", config_error);
            apply_builtin(&builtin_profiles[0]);
        }
    }
    const char *d = getenv("FASTEXEC_EMU_DEVICES");
    if (d && *d) {
        double v;
        if (parse_number(d, 1, 64, &v) == 0 && v == (uint32_t)v) emu_profile.device_count = (uint32_t)v;
        else fprintf(stderr, "fastexec ACL emulator: FASTEXEC_EMU_DEVICES='%s' is not a count 1..64; ignored\n", d);
    }
    const char *fast = getenv("FASTEXEC_EMU_FAST");
    emu_profile.fast = fast && *fast && strcmp(fast, "0") != 0;
    const char *checked = getenv("FASTEXEC_EMU_CHECKED");
    if (checked && strcmp(checked, "0") == 0) emu_profile.checked = 0;
    const char *strict = getenv("FASTEXEC_EMU_STRICT");
    if (strict && *strict) emu_profile.strict = strcmp(strict, "0") != 0;
    const char *alloc = getenv("FASTEXEC_EMU_ALLOC_US");
    if (alloc && *alloc) {
        double v;
        if (parse_number(alloc, 0, 1e9, &v) == 0) emu_profile.alloc_us = v;
        else fprintf(stderr, "fastexec ACL emulator: FASTEXEC_EMU_ALLOC_US='%s' is not a duration 0..1e9 us; ignored\n", alloc);
    }

    /* ASCEND_RT_VISIBLE_DEVICES: ascending physical ids separated by commas; reading stops at
     * the first entry that is not one; the devices read are renumbered from 0. */
    int32_t phys[64];
    uint32_t n_phys = emu_profile.device_count, n_vis = 0;
    const char *vis = getenv("ASCEND_RT_VISIBLE_DEVICES");
    if (vis && *vis) {
        const char *p = vis;
        while (n_vis < 64) {
            const char *q = p;
            long v = 0;
            while (*q >= '0' && *q <= '9' && v <= 64) v = v * 10 + (*q++ - '0');
            if (q == p || (*q && *q != ',') || v >= (long)n_phys || (n_vis && v <= phys[n_vis - 1])) break;
            phys[n_vis++] = (int32_t)v;
            if (!*q) break;
            p = q + 1;
        }
        emu_profile.device_count = n_vis;
    } else {
        for (uint32_t i = 0; i < n_phys; i++) phys[i] = (int32_t)i;
    }
    emu_devices = calloc(emu_profile.device_count ? emu_profile.device_count : 1, sizeof *emu_devices);
    for (uint32_t i = 0; i < emu_profile.device_count; i++) {
        emu_devices[i].id = (int32_t)i;
        emu_devices[i].phys_id = phys[i];
        for (int e = 0; e < EMU_ENGINES; e++) pthread_mutex_init(&emu_devices[i].engines[e].mu, NULL);
    }
    const char *f = getenv("FASTEXEC_EMU_FAULTS");
    if (f && *f) {
        char *copy = strdup(f), *save = NULL;
        for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save))
            if (add_fault(tok) != ACL_SUCCESS)
                fprintf(stderr, "fastexec ACL emulator: FASTEXEC_EMU_FAULTS: %s\n", aclGetRecentErrMsg());
        free(copy);
    }
}

void emu_init_once(void) { pthread_once(&once, init_body); }

EMU_API aclError aclInit(const char *configPath)
{
    EMU_ENTER("aclInit");
    pthread_mutex_lock(&emu_global_mu);
    aclError rc = ACL_SUCCESS;
    if (init_refs > 0) {
        rc = emu_fail(ACL_ERROR_REPEAT_INITIALIZE, "aclInit: already initialized");
    } else {
        rc = emu_config_load(configPath);   /* a missing or malformed acl.json refuses the init */
    }
    if (rc == ACL_SUCCESS || rc == ACL_ERROR_REPEAT_INITIALIZE) {
        init_refs++;
        emu_initialized = 1;
    }
    pthread_mutex_unlock(&emu_global_mu);
    return rc;
}

EMU_API aclError aclFinalizeReference(uint64_t *refCount)
{
    EMU_ENTER("aclFinalizeReference");
    if (!refCount) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclFinalizeReference: refCount is NULL");
    pthread_mutex_lock(&emu_global_mu);
    aclError rc = ACL_SUCCESS;
    if (!emu_initialized) {
        rc = emu_fail(ACL_ERROR_REPEAT_FINALIZE, "aclFinalizeReference: not initialized (or already finalized)");
    } else if (--init_refs == 0) {
        emu_initialized = 0;
        emu_config_clear();
    }
    *refCount = (uint64_t)init_refs;
    pthread_mutex_unlock(&emu_global_mu);
    return rc;
}

EMU_API aclError aclFinalize(void)
{
    EMU_ENTER("aclFinalize");
    pthread_mutex_lock(&emu_global_mu);
    aclError rc = ACL_SUCCESS;
    if (!emu_initialized) rc = emu_fail(ACL_ERROR_REPEAT_FINALIZE, "aclFinalize: not initialized (or already finalized)");
    init_refs = 0;
    emu_initialized = 0;
    emu_config_clear();
    pthread_mutex_unlock(&emu_global_mu);
    return rc;
}

/* ================================================================ handle registry */

/* Open-addressing hash set of live handles (pointer -> kind). */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
typedef struct { const void *p; int kind; uint64_t gen; } reg_slot;   /* kind -1 = tombstone */
static uint64_t reg_next_gen = 1;                       /* every registration gets a new generation */
static reg_slot *reg;
static size_t reg_cap, reg_used;                        /* used counts live + tombstones */

static size_t reg_hash(const void *p) { return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull); }

static void reg_grow(void)
{
    size_t old_cap = reg_cap;
    reg_slot *old = reg;
    reg_cap = old_cap ? old_cap * 2 : 256;
    reg = calloc(reg_cap, sizeof *reg);
    reg_used = 0;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].p || old[i].kind < 0) continue;
        size_t j = reg_hash(old[i].p) & (reg_cap - 1);
        while (reg[j].p) j = (j + 1) & (reg_cap - 1);
        reg[j] = old[i];
        reg_used++;
    }
    free(old);
}

static reg_slot *reg_lookup(const void *p)
{
    if (!reg_cap) return NULL;
    size_t j = reg_hash(p) & (reg_cap - 1);
    while (reg[j].p) {
        if (reg[j].p == p && reg[j].kind >= 0) return &reg[j];
        j = (j + 1) & (reg_cap - 1);
    }
    return NULL;
}

uint64_t emu_handle_add(const void *p, emu_handle_kind kind)
{
    pthread_mutex_lock(&reg_mu);
    if ((reg_used + 1) * 2 > reg_cap) reg_grow();
    size_t j = reg_hash(p) & (reg_cap - 1);
    while (reg[j].p && reg[j].kind >= 0) j = (j + 1) & (reg_cap - 1);
    if (!reg[j].p) reg_used++;
    reg[j].p = p;
    reg[j].kind = (int)kind;
    uint64_t gen = reg[j].gen = reg_next_gen++;
    pthread_mutex_unlock(&reg_mu);
    return gen;
}

int emu_handle_live_gen(const void *p, emu_handle_kind kind, uint64_t gen)
{
    pthread_mutex_lock(&reg_mu);
    reg_slot *s = reg_lookup(p);
    int live = s && s->kind == (int)kind && s->gen == gen;
    pthread_mutex_unlock(&reg_mu);
    return live;
}

/* Strict mode keeps the memory of the last destroyed handles out of malloc's reach, so that a new
 * handle does not take a destroyed one's address and a stale pointer is reported as destroyed
 * instead of silently meaning the new object. */
#define QUARANTINE 4096
static pthread_mutex_t quarantine_mu = PTHREAD_MUTEX_INITIALIZER;
static void *quarantine[QUARANTINE];
static size_t quarantine_next;

void emu_handle_free(void *p)
{
    if (!p) return;
    if (!emu_profile.strict) {
        free(p);
        return;
    }
    pthread_mutex_lock(&quarantine_mu);
    void *old = quarantine[quarantine_next];
    quarantine[quarantine_next] = p;
    quarantine_next = (quarantine_next + 1) % QUARANTINE;
    pthread_mutex_unlock(&quarantine_mu);
    free(old);
}

void emu_alloc_cost(void)
{
    if (emu_profile.fast || emu_profile.alloc_us <= 0) return;
    emu_sleep_until_caller(emu_now_ns() + (uint64_t)(emu_profile.alloc_us * 1e3));
}

int emu_handle_remove(const void *p, emu_handle_kind kind)
{
    pthread_mutex_lock(&reg_mu);
    reg_slot *s = reg_lookup(p);
    int live = s && s->kind == (int)kind;
    if (live) s->kind = -1;
    pthread_mutex_unlock(&reg_mu);
    return live;
}

int emu_handle_live(const void *p, emu_handle_kind kind)
{
    pthread_mutex_lock(&reg_mu);
    reg_slot *s = reg_lookup(p);
    int live = s && s->kind == (int)kind;
    pthread_mutex_unlock(&reg_mu);
    return live;
}

const char *emu_handle_kind_name(emu_handle_kind kind)
{
    switch (kind) {
    case EMU_H_CONTEXT: return "context";
    case EMU_H_STREAM: return "stream";
    case EMU_H_EVENT: return "event";
    case EMU_H_DATABUFFER: return "data buffer";
    case EMU_H_DATASET: return "dataset";
    case EMU_H_DESC: return "model description";
    case EMU_H_EXECCFG: return "exec config handle";
    case EMU_H_TENSORDESC: return "tensor description";
    case EMU_H_LOADCFG: return "model load config handle";
    case EMU_H_AIPP: return "dynamic AIPP parameter set";
    }
    return "handle";
}

aclError emu_check_handle(const void *p, emu_handle_kind kind, const char *api)
{
    if (!p) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: the %s is NULL", api, emu_handle_kind_name(kind));
    if (emu_handle_live(p, kind)) return ACL_SUCCESS;
    return emu_finding(FXEMU_FINDING_DESTROYED_HANDLE, FXEMU_ERR_DESTROYED_HANDLE,
                       "%s: %p is not a live %s (destroyed, or never created)", api, p, emu_handle_kind_name(kind));
}

static atomic_uint_fast64_t *live_counter(emu_handle_kind kind)
{
    switch (kind) {
    case EMU_H_DATABUFFER: return &emu_live.data_buffers;
    case EMU_H_DATASET: return &emu_live.datasets;
    case EMU_H_DESC: return &emu_live.model_descs;
    case EMU_H_EXECCFG: return &emu_live.exec_configs;
    case EMU_H_TENSORDESC: return &emu_live.tensor_descs;
    case EMU_H_LOADCFG: return &emu_live.load_configs;
    case EMU_H_AIPP: return &emu_live.aipp_sets;
    default: return NULL;
    }
}

void *emu_handle_new(size_t size, emu_handle_kind kind, const char *api)
{
    emu_init_once();
    if (atomic_load_explicit(&emu_fault_rules, memory_order_relaxed) && emu_fault_call(api)) return NULL;
    void *p = calloc(1, size);
    emu_handle_add(p, kind);
    atomic_fetch_add(live_counter(kind), 1);
    return p;
}

aclError emu_handle_destroy(const void *p, emu_handle_kind kind, const char *api)
{
    aclError rc = emu_check_handle(p, kind, api);
    if (rc) return rc;
    emu_handle_remove(p, kind);
    atomic_fetch_sub(live_counter(kind), 1);
    return ACL_SUCCESS;
}

size_t emu_handle_collect(emu_handle_kind kind, void **out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&reg_mu);
    for (size_t i = 0; i < reg_cap; i++) {
        if (!reg[i].p || reg[i].kind != (int)kind) continue;
        if (n < max) out[n] = (void *)reg[i].p;
        n++;
    }
    pthread_mutex_unlock(&reg_mu);
    return n;
}

/* ================================================================ engines */

void emu_engine_begin(emu_engine_slot *slot, emu_engine *e, uint64_t earliest, uint64_t dur_ns)
{
    if (emu_profile.fast) dur_ns = 0;
    pthread_mutex_lock(&e->mu);
    uint64_t start = earliest > e->free_at ? earliest : e->free_at;
    e->free_at = start + dur_ns;
    pthread_mutex_unlock(&e->mu);
    slot->engine = e;
    slot->start = start;
    slot->dur = dur_ns;
    slot->work_t0 = emu_now_ns();
}

uint64_t emu_engine_end(emu_engine_slot *slot, int on_worker)
{
    uint64_t work = emu_now_ns() - slot->work_t0;
    uint64_t end = slot->start + slot->dur;
    if (work > slot->dur) {
        /* The real work took longer than the model: the device is busy until it is done. */
        if (!emu_profile.fast) atomic_fetch_add(&emu_live.overruns, 1);
        end = slot->start + work;
        pthread_mutex_lock(&slot->engine->mu);
        if (slot->engine->free_at < end) slot->engine->free_at = end;
        pthread_mutex_unlock(&slot->engine->mu);
    }
    if (!emu_profile.fast) {
        if (on_worker) emu_worker_wait_until(end);   /* polls short waits: see emu_stream.c */
        else emu_sleep_until_caller(end);
    }
    return end;
}

/* ================================================================ devices, contexts */

/* The thread's current context and the generation it had when it was made current: a context
 * destroyed meanwhile is not current any more even if a new one now lives at its address. */
static _Thread_local emu_context *tl_ctx;
static _Thread_local uint64_t tl_ctx_gen;

static void set_current(emu_context *ctx)
{
    tl_ctx = ctx;
    tl_ctx_gen = ctx ? ctx->gen : 0;
}

emu_context *emu_current_context(void)
{
    if (tl_ctx && !emu_handle_live_gen(tl_ctx, EMU_H_CONTEXT, tl_ctx_gen)) set_current(NULL);
    return tl_ctx;
}

aclError emu_require_context(emu_context **out, const char *api)
{
    *out = emu_current_context();
    if (!*out) return emu_fail(ACL_ERROR_RT_CONTEXT_NULL, "%s: the calling thread has no current context (call aclrtSetDevice)", api);
    return ACL_SUCCESS;
}

aclError emu_strict_context(emu_stream *s, const char *api)
{
    if (!emu_profile.strict) return ACL_SUCCESS;
    emu_context *ctx = emu_current_context();
    if (!ctx)
        return emu_fail(ACL_ERROR_RT_CONTEXT_NULL, "%s: the calling thread has no current context (strict mode: CANN requires one here; call aclrtSetDevice or aclrtSetCurrentContext)", api);
    if (s && s->ctx != ctx)
        return emu_fail(ACL_ERROR_RT_STREAM_CONTEXT, "%s: stream %p belongs to context %p, not to the calling thread's current context %p (strict mode, as on CANN)", api,
                        (void *)s, (void *)s->ctx, (void *)ctx);
    return ACL_SUCCESS;
}

aclError emu_resolve_stream(aclrtStream s, emu_stream **out, const char *api)
{
    if (s) {
        if (!emu_handle_live(s, EMU_H_STREAM))
            return emu_finding(FXEMU_FINDING_DESTROYED_HANDLE, FXEMU_ERR_DESTROYED_HANDLE,
                               "%s: %p is not a live stream (destroyed, or never created)", api, s);
        aclError rc = emu_strict_context((emu_stream *)s, api);
        if (rc) return rc;
        *out = (emu_stream *)s;
        return ACL_SUCCESS;
    }
    emu_context *ctx = emu_current_context();
    if (!ctx) return emu_fail(ACL_ERROR_RT_CONTEXT_NULL, "%s: NULL stream means the default stream, but the calling thread has no current context (call aclrtSetDevice)", api);
    *out = ctx->default_stream;
    return ACL_SUCCESS;
}

static aclError context_new(emu_device *dev, int is_default, emu_context **out)
{
    emu_context *ctx = calloc(1, sizeof *ctx);
    ctx->dev = dev;
    ctx->is_default = is_default;
    ctx->gen = emu_handle_add(ctx, EMU_H_CONTEXT);
    aclError rc = emu_stream_create(ctx, 0, 1, &ctx->default_stream);
    if (rc != ACL_SUCCESS) {
        emu_handle_remove(ctx, EMU_H_CONTEXT);
        free(ctx);
        return rc;
    }
    *out = ctx;
    return ACL_SUCCESS;
}

static void context_free(emu_context *ctx)
{
    emu_handle_remove(ctx, EMU_H_CONTEXT);
    emu_context_drop_streams(ctx);
    emu_handle_free(ctx);
}

static aclError check_device(int32_t id, const char *api)
{
    if (id < 0 || (uint32_t)id >= emu_profile.device_count)
        return emu_fail(ACL_ERROR_RT_INVALID_DEVICEID, "%s: device %d does not exist (the emulator has %u device%s; FASTEXEC_EMU_DEVICES sets how many it emulates)", api, id,
                        emu_profile.device_count, emu_profile.device_count == 1 ? "" : "s");
    return ACL_SUCCESS;
}

EMU_API aclError aclrtSetDevice(int32_t deviceId)
{
    EMU_ENTER("aclrtSetDevice");
    aclError rc = check_device(deviceId, "aclrtSetDevice");
    if (rc) return rc;
    emu_device *dev = &emu_devices[deviceId];
    pthread_mutex_lock(&emu_global_mu);
    if (!dev->default_ctx) rc = context_new(dev, 1, &dev->default_ctx);
    if (rc == ACL_SUCCESS) {
        dev->set_count++;
        set_current(dev->default_ctx);
    }
    pthread_mutex_unlock(&emu_global_mu);
    return rc;
}

static aclError reset_device(int32_t deviceId, int force, const char *api)
{
    aclError rc = check_device(deviceId, api);
    if (rc) return rc;
    emu_device *dev = &emu_devices[deviceId];
    emu_context *drop = NULL;
    pthread_mutex_lock(&emu_global_mu);
    if (dev->set_count > 0 && (force || --dev->set_count == 0)) {
        dev->set_count = 0;
        drop = dev->default_ctx;
        dev->default_ctx = NULL;
    }
    pthread_mutex_unlock(&emu_global_mu);
    if (drop) context_free(drop);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtResetDevice(int32_t deviceId)
{
    EMU_ENTER("aclrtResetDevice");
    return reset_device(deviceId, 0, "aclrtResetDevice");
}

EMU_API aclError aclrtResetDeviceForce(int32_t deviceId)
{
    EMU_ENTER("aclrtResetDeviceForce");
    return reset_device(deviceId, 1, "aclrtResetDeviceForce");
}

EMU_API aclError aclrtGetDevice(int32_t *deviceId)
{
    EMU_ENTER("aclrtGetDevice");
    if (!deviceId) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtGetDevice: deviceId is NULL");
    emu_context *ctx;
    aclError ctx_rc = emu_require_context(&ctx, "aclrtGetDevice");
    if (ctx_rc) return ctx_rc;
    *deviceId = ctx->dev->id;
    return ACL_SUCCESS;
}

EMU_API aclError aclrtGetDeviceCount(uint32_t *count)
{
    EMU_ENTER("aclrtGetDeviceCount");
    if (!count) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtGetDeviceCount: count is NULL");
    *count = emu_profile.device_count;
    return ACL_SUCCESS;
}

EMU_API aclError aclrtGetRunMode(aclrtRunMode *runMode)
{
    EMU_ENTER("aclrtGetRunMode");
    if (!runMode) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtGetRunMode: runMode is NULL");
    *runMode = ACL_HOST;
    return ACL_SUCCESS;
}

EMU_API const char *aclrtGetSocName(void)
{
    emu_init_once();
    return emu_profile.soc_name;
}

EMU_API aclError aclrtDeviceGetStreamPriorityRange(int32_t *leastPriority, int32_t *greatestPriority)
{
    EMU_ENTER("aclrtDeviceGetStreamPriorityRange");
    if (!leastPriority || !greatestPriority)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtDeviceGetStreamPriorityRange: leastPriority and greatestPriority must not be NULL");
    *leastPriority = 7;   /* smaller is higher */
    *greatestPriority = 0;
    return ACL_SUCCESS;
}

EMU_API aclError aclrtSetDeviceSatMode(aclrtFloatOverflowMode mode)
{
    EMU_ENTER("aclrtSetDeviceSatMode");
    if (mode != ACL_RT_OVERFLOW_MODE_SATURATION && mode != ACL_RT_OVERFLOW_MODE_INFNAN)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtSetDeviceSatMode: mode must be ACL_RT_OVERFLOW_MODE_SATURATION (0) or ACL_RT_OVERFLOW_MODE_INFNAN (1), got %d", (int)mode);
    emu_context *ctx;
    aclError rc = emu_require_context(&ctx, "aclrtSetDeviceSatMode");
    if (rc) return rc;
    pthread_mutex_lock(&emu_global_mu);
    ctx->dev->sat_mode = mode;
    pthread_mutex_unlock(&emu_global_mu);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtGetDeviceSatMode(aclrtFloatOverflowMode *mode)
{
    EMU_ENTER("aclrtGetDeviceSatMode");
    if (!mode) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtGetDeviceSatMode: mode is NULL");
    emu_context *ctx;
    aclError rc = emu_require_context(&ctx, "aclrtGetDeviceSatMode");
    if (rc) return rc;
    pthread_mutex_lock(&emu_global_mu);
    *mode = ctx->dev->sat_mode;
    pthread_mutex_unlock(&emu_global_mu);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtCreateContext(aclrtContext *context, int32_t deviceId)
{
    EMU_ENTER("aclrtCreateContext");
    if (!context) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtCreateContext: context is NULL");
    aclError rc = check_device(deviceId, "aclrtCreateContext");
    if (rc) return rc;
    emu_context *ctx;
    rc = context_new(&emu_devices[deviceId], 0, &ctx);
    if (rc) return rc;
    atomic_fetch_add(&emu_live.contexts, 1);
    set_current(ctx);
    *context = ctx;
    return ACL_SUCCESS;
}

EMU_API aclError aclrtDestroyContext(aclrtContext context)
{
    EMU_ENTER("aclrtDestroyContext");
    aclError rc = emu_check_handle(context, EMU_H_CONTEXT, "aclrtDestroyContext");
    if (rc) return rc;
    emu_context *ctx = context;
    if (ctx->is_default)
        return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtDestroyContext: %p is a device's default context; release it with aclrtResetDevice", context);
    if (tl_ctx == ctx) set_current(NULL);
    context_free(ctx);
    atomic_fetch_sub(&emu_live.contexts, 1);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtSetCurrentContext(aclrtContext context)
{
    EMU_ENTER("aclrtSetCurrentContext");
    aclError rc = emu_check_handle(context, EMU_H_CONTEXT, "aclrtSetCurrentContext");
    if (rc) return rc;
    set_current(context);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtGetCurrentContext(aclrtContext *context)
{
    EMU_ENTER("aclrtGetCurrentContext");
    if (!context) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtGetCurrentContext: context is NULL");
    emu_context *ctx;
    aclError ctx_rc = emu_require_context(&ctx, "aclrtGetCurrentContext");
    if (ctx_rc) return ctx_rc;
    *context = ctx;
    return ACL_SUCCESS;
}

/* ================================================================ introspection */

extern void emu_mem_counters(fxemuCounters *c);

EMU_API uint32_t fxemuVersion(void) { return FXEMU_VERSION; }

EMU_API aclError fxemuGetCounters(fxemuCounters *c)
{
    emu_init_once();
    if (!c) return emu_fail(ACL_ERROR_INVALID_PARAM, "fxemuGetCounters: counters is NULL");
    memset(c, 0, sizeof *c);
    emu_mem_counters(c);
    c->streams = atomic_load(&emu_live.streams);
    c->events = atomic_load(&emu_live.events);
    c->contexts = atomic_load(&emu_live.contexts);
    c->datasets = atomic_load(&emu_live.datasets);
    c->data_buffers = atomic_load(&emu_live.data_buffers);
    c->model_descs = atomic_load(&emu_live.model_descs);
    c->exec_configs = atomic_load(&emu_live.exec_configs);
    c->models = atomic_load(&emu_live.models);
    c->tasks_run = atomic_load(&emu_live.tasks_run);
    c->overruns = atomic_load(&emu_live.overruns);
    c->findings = atomic_load(&findings_total);
    for (int k = 0; k < FXEMU_FINDING_KINDS; k++) c->findings_by_kind[k] = atomic_load(&findings_by_kind[k]);
    c->tensor_descs = atomic_load(&emu_live.tensor_descs);
    c->load_configs = atomic_load(&emu_live.load_configs);
    c->aipp_sets = atomic_load(&emu_live.aipp_sets);
    pthread_mutex_lock(&emu_global_mu);
    for (uint32_t i = 0; i < emu_profile.device_count; i++) c->devices_set += emu_devices[i].set_count > 0;
    pthread_mutex_unlock(&emu_global_mu);
    return ACL_SUCCESS;
}

EMU_API aclError fxemuGetProfile(fxemuProfile *profile)
{
    emu_init_once();
    if (!profile) return emu_fail(ACL_ERROR_INVALID_PARAM, "fxemuGetProfile: profile is NULL");
    *profile = emu_profile;
    return ACL_SUCCESS;
}

EMU_API aclError fxemuLastFinding(char *buf, size_t len)
{
    emu_init_once();
    if (!buf || !len) return emu_fail(ACL_ERROR_INVALID_PARAM, "fxemuLastFinding: empty buffer");
    pthread_mutex_lock(&finding_mu);
    snprintf(buf, len, "%s", last_finding);
    pthread_mutex_unlock(&finding_mu);
    return ACL_SUCCESS;
}

EMU_API void fxemuSetChecked(int on)
{
    emu_init_once();
    emu_profile.checked = on != 0;
}

EMU_API void fxemuSetFastMode(int on)
{
    emu_init_once();
    emu_profile.fast = on != 0;
}
