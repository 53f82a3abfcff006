/* fastexec ACL emulator: introspection, checked mode and fault injection.
 *
 * These functions exist only in the emulator library (libascendcl.so in the package's
 * fastexec/emulator/lib folder), never in a real CANN runtime; their presence is how a loader tells the two apart. Everything
 * else the library exports is the AscendCL ABI declared in <acl/acl.h>.
 *
 * Environment read once, at the first call into the library:
 *   FASTEXEC_EMU_PROFILE   built-in profile name or path of a profile file (docs/emulator.md)
 *   FASTEXEC_EMU_DEVICES   number of emulated devices (overrides the profile)
 *   FASTEXEC_EMU_FAST      1: skip modelled durations (functional tests)
 *   FASTEXEC_EMU_CHECKED   0: switch checked mode off (on by default)
 *   FASTEXEC_EMU_FAULTS    fault rules separated by ';' (see fxemuAddFault)
 *   FASTEXEC_EMU_STRICT    1: CANN-strict mode (immediate poisoned frees, contexts required as on CANN,
 *                          destroyed handles never aliased); docs/emulator.md lists every difference
 *   FASTEXEC_EMU_ALLOC_US  cost of one device allocation and of one device free, in us (overrides the profile)
 *   ASCEND_RT_VISIBLE_DEVICES  as on CANN: the visible devices, renumbered from 0
 */
#ifndef FASTEXEC_ACL_EMULATOR_H
#define FASTEXEC_ACL_EMULATOR_H

#include <stddef.h>
#include <stdint.h>

#include "acl/acl.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FXEMU_VERSION 2   /* 2: pageable bandwidths, allocation cost, strict mode, use-after-free findings */

/* Error codes the emulator returns for checked-mode findings (all are ACL codes; see
 * docs/emulator.md for the table). */
#define FXEMU_ERR_MODEL_BUSY_OTHER_STREAM   ACL_ERROR_RT_MODEL_EXECUTE        /* 507011 */
#define FXEMU_ERR_HOST_POINTER              ACL_ERROR_RT_INVALID_MEMORY_TYPE  /* 107016 */
#define FXEMU_ERR_FREE_IN_USE               ACL_ERROR_RT_MEMORY_FREE          /* 207002 */
#define FXEMU_ERR_BATCH_WHILE_RUNNING       ACL_ERROR_RT_MODEL_RUNNING        /* 107037 */
#define FXEMU_ERR_DESTROYED_HANDLE          ACL_ERROR_RT_INVALID_HANDLE       /* 107017 */

/* Strict mode: the byte freed device and pinned memory is filled with, so a task that still reads
 * it after the free gets this instead of the data. */
#define FXEMU_POISON_BYTE 0xDD

/* Kinds of checked-mode findings, indexes into fxemuCounters.findings_by_kind. */
typedef enum {
    FXEMU_FINDING_MODEL_TWO_STREAMS = 0,
    FXEMU_FINDING_HOST_POINTER = 1,
    FXEMU_FINDING_FREE_IN_USE = 2,
    FXEMU_FINDING_BATCH_WHILE_RUNNING = 3,
    FXEMU_FINDING_MIXED_SYNC_ASYNC = 4,
    FXEMU_FINDING_DESTROYED_HANDLE = 5,
    FXEMU_FINDING_USE_AFTER_FREE = 6,   /* strict mode: a queued task used memory freed before it ran */
    FXEMU_FINDING_KINDS = 7
} fxemuFindingKind;

/* Live resource counts and event counters. */
typedef struct {
    uint64_t device_allocations;   /* aclrtMalloc / aclrtMallocAlign32 blocks not yet freed */
    uint64_t device_bytes;         /* their rounded sizes */
    uint64_t host_allocations;     /* aclrtMallocHost blocks */
    uint64_t host_bytes;
    uint64_t registered_ranges;    /* aclrtHostRegister ranges */
    uint64_t streams;              /* explicitly created streams (default streams excluded) */
    uint64_t events;
    uint64_t contexts;             /* explicitly created contexts */
    uint64_t devices_set;          /* devices with a non-zero aclrtSetDevice count */
    uint64_t models;
    uint64_t datasets;
    uint64_t data_buffers;
    uint64_t model_descs;
    uint64_t exec_configs;
    uint64_t tasks_run;            /* stream tasks executed since load */
    uint64_t overruns;             /* tasks whose real work finished after their modelled end */
    uint64_t findings;             /* checked-mode findings since load */
    uint64_t findings_by_kind[FXEMU_FINDING_KINDS];
    uint64_t tensor_descs;         /* aclCreateTensorDesc / aclmdlCreateAndGetOpDesc arrays not yet destroyed */
    uint64_t load_configs;         /* aclmdlCreateConfigHandle handles */
    uint64_t aipp_sets;            /* aclmdlCreateAIPP parameter sets not yet destroyed */
} fxemuCounters;

/* Emulated device description in force. */
typedef struct {
    char name[64];                 /* profile name */
    char soc_name[64];
    uint32_t device_count;
    double h2d_gbps, d2h_gbps, d2d_gbps;   /* GB/s = 1e9 bytes per second */
    double h2d_latency_us, d2h_latency_us; /* fixed cost of one copy */
    double launch_us;              /* from enqueue to the earliest start of a task */
    uint64_t device_memory_bytes;
    int exec_async_v2;             /* aclmdlExecuteAsyncV2 supported on this SoC */
    int host_register;             /* aclrtHostRegister supported on this SoC */
    int fast;                      /* modelled durations skipped */
    int checked;                   /* checked mode on */
    double h2d_pageable_gbps;      /* copies from host memory neither pinned nor registered */
    double d2h_pageable_gbps;      /* copies to such memory */
    double alloc_us;               /* cost of one device allocation, and of one device free */
    int strict;                    /* CANN-strict mode on */
} fxemuProfile;

ACL_FUNC_VISIBILITY uint32_t fxemuVersion(void);
ACL_FUNC_VISIBILITY aclError fxemuGetCounters(fxemuCounters *counters);
ACL_FUNC_VISIBILITY aclError fxemuGetProfile(fxemuProfile *profile);
/* Text of the most recent checked-mode finding ("" if none); process-wide, thread-safe copy. */
ACL_FUNC_VISIBILITY aclError fxemuLastFinding(char *buf, size_t len);
ACL_FUNC_VISIBILITY void fxemuSetChecked(int on);
ACL_FUNC_VISIBILITY void fxemuSetFastMode(int on);

/* Add a fault rule "KIND:API:N:VALUE":
 *   call:API:N:CODE   the Nth call of API returns CODE without doing anything
 *   task:API:N:CODE   the Nth stream task enqueued by API fails when the stream reaches it;
 *                     the stream's next synchronisation (and events recorded after it) return CODE
 *   stall:API:N:MS    the Nth stream task enqueued by API holds its stream for MS milliseconds
 * N counts from 1, from the time the rule is added. Returns ACL_ERROR_INVALID_PARAM for a
 * malformed rule. */
ACL_FUNC_VISIBILITY aclError fxemuAddFault(const char *rule);
ACL_FUNC_VISIBILITY void fxemuClearFaults(void);
/* Enqueue a task that holds `stream` for `ms` milliseconds (exercises timeouts). */
ACL_FUNC_VISIBILITY aclError fxemuStallStream(aclrtStream stream, uint32_t ms);

/* A value of the acl.json given to aclInit, by dotted path ("dump.dump_path"): strings as they
 * are, numbers as %.17g, true/false/null, "{N}" / "[N]" for objects / arrays of N members.
 * ACL_ERROR_INVALID_PARAM when there is no such value (or no config). */
ACL_FUNC_VISIBILITY aclError fxemuGetConfigValue(const char *path, char *buf, size_t len);

/* DVPP memory, behind libacl_dvpp.so's acldvppMalloc / acldvppFree (which only forward here). */
ACL_FUNC_VISIBILITY aclError fxemuDvppMalloc(void **devPtr, size_t size);
ACL_FUNC_VISIBILITY aclError fxemuDvppFree(void *devPtr);

#ifdef __cplusplus
}
#endif

#endif
