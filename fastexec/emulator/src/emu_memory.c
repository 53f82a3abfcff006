/* Emulated memory: device and pinned host allocations, registered host ranges,
 * synchronous and stream-ordered copies and memsets, data buffers. */
#include "emu.h"

#include <stdlib.h>

/* Every allocation and registered range, sorted by base address, for range lookups. */
static pthread_mutex_t mem_mu = PTHREAD_MUTEX_INITIALIZER;
static emu_alloc **allocs;
static size_t n_allocs, cap_allocs;

const char *emu_mem_kind_name(emu_mem_kind kind)
{
    switch (kind) {
    case EMU_MEM_PAGEABLE: return "pageable host memory";
    case EMU_MEM_PINNED: return "pinned host memory (aclrtMallocHost)";
    case EMU_MEM_DEVICE: return "device memory";
    case EMU_MEM_REGISTERED: return "registered host memory";
    }
    return "memory";
}

/* Index of the last allocation with base <= p, or -1. Caller holds mem_mu. */
static long find_floor(const void *p)
{
    size_t lo = 0, hi = n_allocs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if ((const char *)allocs[mid]->base <= (const char *)p) lo = mid + 1;
        else hi = mid;
    }
    return (long)lo - 1;
}

static void insert_alloc(emu_alloc *a)
{
    if (n_allocs == cap_allocs) {
        cap_allocs = cap_allocs ? cap_allocs * 2 : 64;
        allocs = realloc(allocs, cap_allocs * sizeof *allocs);
    }
    size_t at = (size_t)(find_floor(a->base) + 1);
    memmove(&allocs[at + 1], &allocs[at], (n_allocs - at) * sizeof *allocs);
    allocs[at] = a;
    n_allocs++;
}

static void remove_alloc(emu_alloc *a)
{
    long i = find_floor(a->base);
    while (i >= 0 && allocs[i] != a) i--;
    if (i < 0) return;
    memmove(&allocs[i], &allocs[i + 1], (n_allocs - (size_t)i - 1) * sizeof *allocs);
    n_allocs--;
}

static emu_alloc *containing(const void *p)
{
    long i = find_floor(p);
    if (i < 0) return NULL;
    emu_alloc *a = allocs[i];
    return (const char *)p < a->base + a->size ? a : NULL;
}

aclError emu_mem_find(const void *p, size_t n, emu_alloc **out, const char *api, const char *what)
{
    pthread_mutex_lock(&mem_mu);
    emu_alloc *a = containing(p);
    aclError rc = ACL_SUCCESS;
    if (a && a->free_pending) a = NULL;
    if (a && n > (size_t)(a->base + a->size - (const char *)p))
        rc = emu_fail(ACL_ERROR_RT_PARAM_INVALID, "%s: %s %p + %zu bytes runs past the end of its %s block (%p, %zu bytes)", api, what,
                      p, n, emu_mem_kind_name(a->kind), (void *)a->base, a->size);
    pthread_mutex_unlock(&mem_mu);
    *out = a;
    return rc;
}

void emu_mem_hold(emu_alloc *a)
{
    if (!a) return;
    pthread_mutex_lock(&mem_mu);
    a->inflight++;
    pthread_mutex_unlock(&mem_mu);
}

static void release_locked(emu_alloc *a);

void emu_mem_release(emu_alloc *a)
{
    if (!a) return;
    pthread_mutex_lock(&mem_mu);
    a->inflight--;
    if (a->inflight == 0 && (a->free_pending || atomic_load(&a->freed))) release_locked(a);
    pthread_mutex_unlock(&mem_mu);
}

void emu_mem_counters(fxemuCounters *c)
{
    pthread_mutex_lock(&mem_mu);
    for (size_t i = 0; i < n_allocs; i++) {
        emu_alloc *a = allocs[i];
        if (a->kind == EMU_MEM_DEVICE) { c->device_allocations++; c->device_bytes += a->size; }
        else if (a->kind == EMU_MEM_PINNED) { c->host_allocations++; c->host_bytes += a->size; }
        else c->registered_ranges++;
    }
    pthread_mutex_unlock(&mem_mu);
}

/* ---------------------------------------------------------------- allocation */

static aclError device_alloc_ex(void **devPtr, size_t size, aclrtMemMallocPolicy policy, int pad, int dvpp, const char *api);

static aclError device_alloc(void **devPtr, size_t size, aclrtMemMallocPolicy policy, int pad, const char *api)
{
    return device_alloc_ex(devPtr, size, policy, pad, 0, api);
}

static aclError device_alloc_ex(void **devPtr, size_t size, aclrtMemMallocPolicy policy, int pad, int dvpp, const char *api)
{
    if (!devPtr) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: devPtr is NULL", api);
    if (size == 0) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: size must be greater than 0", api);
    (void)policy; /* page-size policies do not change emulated memory; unknown values are accepted as documented */
    emu_context *ctx;
    aclError ctx_rc = emu_require_context(&ctx, api);
    if (ctx_rc) return ctx_rc;
    if (size > (SIZE_MAX >> 2)) return emu_fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "%s: %zu bytes is more than the device has", api, size);
    emu_alloc_cost();   /* the profile's allocation cost (alloc_us), on the calling thread */
    /* Documented sizing: rounded up to 32 bytes, plus 32 bytes of padding (not for Align32). */
    size_t real = ((size + 31) & ~(size_t)31) + (pad ? 32 : 0);
    emu_device *dev = ctx->dev;
    pthread_mutex_lock(&mem_mu);
    if (dev->mem_used + real > emu_profile.device_memory_bytes) {
        uint64_t free_b = emu_profile.device_memory_bytes - dev->mem_used;
        pthread_mutex_unlock(&mem_mu);
        return emu_fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "%s: out of device memory: %zu bytes requested, %llu of %llu bytes free on device %d", api,
                        real, (unsigned long long)free_b, (unsigned long long)emu_profile.device_memory_bytes, dev->id);
    }
    size_t align = dvpp ? 128 : 64;   /* DVPP engines need 128-byte aligned buffers */
    char *p = aligned_alloc(align, (real + align - 1) & ~(align - 1));
    if (!p) {
        pthread_mutex_unlock(&mem_mu);
        return emu_fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "%s: host allocation of %zu bytes for emulated device memory failed", api, real);
    }
    emu_alloc *a = calloc(1, sizeof *a);
    a->base = p;
    a->size = real;
    a->kind = EMU_MEM_DEVICE;
    a->dev = dev;
    a->dvpp = dvpp;
    dev->mem_used += real;
    insert_alloc(a);
    pthread_mutex_unlock(&mem_mu);
    /* Device memory is not zeroed: make stale reads visible. */
    if (emu_profile.checked) memset(p, 0xA5, real);
    *devPtr = p;
    return ACL_SUCCESS;
}

EMU_API aclError aclrtMalloc(void **devPtr, size_t size, aclrtMemMallocPolicy policy)
{
    EMU_ENTER("aclrtMalloc");
    return device_alloc(devPtr, size, policy, 1, "aclrtMalloc");
}

EMU_API aclError aclrtMallocAlign32(void **devPtr, size_t size, aclrtMemMallocPolicy policy)
{
    EMU_ENTER("aclrtMallocAlign32");
    return device_alloc(devPtr, size, policy, 0, "aclrtMallocAlign32");
}

EMU_API aclError aclrtMallocHost(void **hostPtr, size_t size)
{
    EMU_ENTER("aclrtMallocHost");
    if (!hostPtr) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtMallocHost: hostPtr is NULL");
    if (size == 0) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtMallocHost: size must be greater than 0");
    if (size > (SIZE_MAX >> 2)) return emu_fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMallocHost: %zu bytes cannot be pinned", size);
    aclError ctx_rc = emu_strict_context(NULL, "aclrtMallocHost");   /* CANN: ApiImpl::HostMalloc */
    if (ctx_rc) return ctx_rc;
    size_t real = (size + 63) & ~(size_t)63;
    char *p = aligned_alloc(64, real);
    if (!p) return emu_fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMallocHost: allocation of %zu bytes failed", size);
    emu_alloc *a = calloc(1, sizeof *a);
    a->base = p;
    a->size = real;
    a->kind = EMU_MEM_PINNED;
    pthread_mutex_lock(&mem_mu);
    insert_alloc(a);
    pthread_mutex_unlock(&mem_mu);
    *hostPtr = p;
    return ACL_SUCCESS;
}

static void release_locked(emu_alloc *a)
{
    if (!atomic_load(&a->freed)) {   /* a strict-mode free already took it out */
        remove_alloc(a);
        if (a->kind == EMU_MEM_DEVICE) a->dev->mem_used -= a->size;
    }
    if (a->kind != EMU_MEM_REGISTERED) free(a->base);
    free(a);
}

/* Strict mode: free a block that queued tasks still use, as CANN does, at once: it leaves the
 * table (its address means nothing to later calls, its bytes count as free) and is poisoned; the
 * emulator keeps its memory until those tasks are done, and they read or write the poison. A
 * registered range is the caller's memory: it is unregistered, not poisoned. Caller holds mem_mu. */
static void free_now_locked(emu_alloc *a)
{
    remove_alloc(a);
    if (a->kind == EMU_MEM_DEVICE) a->dev->mem_used -= a->size;
    if (a->kind != EMU_MEM_REGISTERED) memset(a->base, FXEMU_POISON_BYTE, a->size);
    atomic_store(&a->freed, 1);
}

void emu_mem_check_task(const emu_stream *s, const emu_task *t)
{
    for (int i = 0; i < t->n_holds; i++) {
        emu_alloc *a = t->holds[i];
        if (!a || !atomic_load(&a->freed) || !emu_profile.checked) continue;
        emu_finding(FXEMU_FINDING_USE_AFTER_FREE, FXEMU_ERR_FREE_IN_USE,
                    "stream %u: a queued %s uses %s %p (%zu bytes) freed after it was queued; strict mode: it %s the poison (0x%02X)", s->id,
                    t->kind == EMU_T_EXEC ? "model execution" : t->kind == EMU_T_MEMSET ? "memset" : "copy", emu_mem_kind_name(a->kind),
                    (void *)a->base, a->size, a->kind == EMU_MEM_REGISTERED ? "accesses unregistered memory instead of" : "reads or writes",
                    FXEMU_POISON_BYTE);
    }
}

static aclError free_block_ex(void *p, emu_mem_kind kind, int dvpp, const char *api);

static aclError free_block(void *p, emu_mem_kind kind, const char *api) { return free_block_ex(p, kind, -1, api); }

/* dvpp: 1 the block must come from acldvppMalloc, 0 it must not, -1 either. */
static aclError free_block_ex(void *p, emu_mem_kind kind, int dvpp, const char *api)
{
    if (!p) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: pointer is NULL", api);
    if (kind == EMU_MEM_DEVICE) emu_alloc_cost();   /* the profile's free cost (alloc_us) */
    pthread_mutex_lock(&mem_mu);
    emu_alloc *a = containing(p);
    aclError rc = ACL_SUCCESS;
    if (!a || a->base != (char *)p || a->kind != kind || a->free_pending || (dvpp >= 0 && a->dvpp != dvpp)) {
        rc = emu_fail(ACL_ERROR_RT_PARAM_INVALID, "%s: %p is not the start of a live %s block%s", api, p,
                      dvpp == 1 ? "DVPP (acldvppMalloc)" : emu_mem_kind_name(kind),
                      a && a->kind != kind ? " (it is another kind of memory)" : a && dvpp == 1 && !a->dvpp ? " (it comes from aclrtMalloc)" : "");
    } else if (a->inflight > 0) {
        if (emu_profile.strict) {
            free_now_locked(a);
        } else if (emu_profile.checked) {
            rc = emu_finding(FXEMU_FINDING_FREE_IN_USE, FXEMU_ERR_FREE_IN_USE,
                             "%s: %p is still used by %d queued task(s); synchronize the stream before freeing (block kept)", api, p, a->inflight);
        } else {
            a->free_pending = 1;
        }
    } else {
        release_locked(a);
    }
    pthread_mutex_unlock(&mem_mu);
    return rc;
}

EMU_API aclError aclrtFree(void *devPtr)
{
    EMU_ENTER("aclrtFree");
    return free_block(devPtr, EMU_MEM_DEVICE, "aclrtFree");
}

EMU_API aclError aclrtFreeHost(void *hostPtr)
{
    EMU_ENTER("aclrtFreeHost");
    return free_block(hostPtr, EMU_MEM_PINNED, "aclrtFreeHost");
}

EMU_API aclError aclrtMallocCached(void **devPtr, size_t size, aclrtMemMallocPolicy policy)
{
    EMU_ENTER("aclrtMallocCached");
    return device_alloc(devPtr, size, policy, 1, "aclrtMallocCached");   /* the emulated device has no cache to bypass */
}

EMU_API aclError aclrtMallocWithCfg(void **devPtr, size_t size, aclrtMemMallocPolicy policy, aclrtMallocConfig *cfg)
{
    EMU_ENTER("aclrtMallocWithCfg");
    (void)cfg;   /* module id / device id / VA flag attributes do not change emulated memory; NULL is allowed */
    return device_alloc(devPtr, size, policy, 1, "aclrtMallocWithCfg");
}

EMU_API aclError aclrtFreeWithDevSync(void *devPtr)
{
    EMU_ENTER("aclrtFreeWithDevSync");
    if (!devPtr) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtFreeWithDevSync: pointer is NULL");
    aclError rc = aclrtSynchronizeDevice();
    if (rc && rc != ACL_ERROR_RT_CONTEXT_NULL) return rc;
    return free_block(devPtr, EMU_MEM_DEVICE, "aclrtFreeWithDevSync");
}

EMU_API aclError aclrtMallocHostWithCfg(void **ptr, uint64_t size, aclrtMallocConfig *cfg)
{
    EMU_ENTER("aclrtMallocHostWithCfg");
    (void)cfg;
    if (size > SIZE_MAX) return emu_fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMallocHostWithCfg: %llu bytes cannot be pinned", (unsigned long long)size);
    return aclrtMallocHost(ptr, (size_t)size);
}

EMU_API aclError aclrtFreeHostWithDevSync(void *hostPtr)
{
    EMU_ENTER("aclrtFreeHostWithDevSync");
    if (!hostPtr) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtFreeHostWithDevSync: pointer is NULL");
    aclError rc = aclrtSynchronizeDevice();
    if (rc && rc != ACL_ERROR_RT_CONTEXT_NULL) return rc;
    return free_block(hostPtr, EMU_MEM_PINNED, "aclrtFreeHostWithDevSync");
}

EMU_API aclError fxemuDvppMalloc(void **devPtr, size_t size)
{
    EMU_ENTER("acldvppMalloc");
    if (!devPtr) return emu_fail(ACL_ERROR_INVALID_PARAM, "acldvppMalloc: devPtr is NULL");
    if (size > SIZE_MAX - 64) return emu_fail(ACL_ERROR_INVALID_PARAM, "acldvppMalloc: size %zu is too large", size);
    /* Sized as the runtime does: rounded up to 32 bytes plus 32 bytes (size 0 gets 32). */
    if (size == 0) return device_alloc_ex(devPtr, 32, ACL_MEM_MALLOC_HUGE_FIRST, 0, 1, "acldvppMalloc");
    return device_alloc_ex(devPtr, size, ACL_MEM_MALLOC_HUGE_FIRST, 1, 1, "acldvppMalloc");
}

EMU_API aclError fxemuDvppFree(void *devPtr)
{
    EMU_ENTER("acldvppFree");
    return free_block_ex(devPtr, EMU_MEM_DEVICE, 1, "acldvppFree");
}

EMU_API aclError aclrtPointerGetAttributes(const void *ptr, aclrtPtrAttributes *attributes)
{
    EMU_ENTER("aclrtPointerGetAttributes");
    if (!ptr || !attributes) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtPointerGetAttributes: ptr and attributes must not be NULL");
    pthread_mutex_lock(&mem_mu);
    emu_alloc *a = containing(ptr);
    memset(attributes, 0, sizeof *attributes);
    if (!a || a->free_pending) {
        attributes->location.type = ACL_MEM_LOCATION_TYPE_UNREGISTERED;
    } else if (a->kind == EMU_MEM_DEVICE) {
        attributes->location.type = ACL_MEM_LOCATION_TYPE_DEVICE;
        attributes->location.id = (uint32_t)a->dev->id;
    } else {
        attributes->location.type = ACL_MEM_LOCATION_TYPE_HOST;
    }
    attributes->pageSize = a && a->kind == EMU_MEM_DEVICE && a->size > (1u << 20) ? 2u << 20 : 4096;   /* huge pages above 1 MiB */
    pthread_mutex_unlock(&mem_mu);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtGetMemInfo(aclrtMemAttr attr, size_t *free_bytes, size_t *total)
{
    EMU_ENTER("aclrtGetMemInfo");
    if (!free_bytes || !total) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtGetMemInfo: free and total must not be NULL");
    emu_context *ctx;
    aclError ctx_rc = emu_require_context(&ctx, "aclrtGetMemInfo");
    if (ctx_rc) return ctx_rc;
    if ((int)attr < ACL_DDR_MEM || (int)attr > ACL_MEM_P2P_HUGE1G)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtGetMemInfo: unknown memory attribute %d", (int)attr);
    pthread_mutex_lock(&mem_mu);
    *total = (size_t)emu_profile.device_memory_bytes;
    *free_bytes = (size_t)(emu_profile.device_memory_bytes - ctx->dev->mem_used);
    pthread_mutex_unlock(&mem_mu);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtHostRegister(void *ptr, uint64_t size, aclrtHostRegisterType type, void **devPtr)
{
    EMU_ENTER("aclrtHostRegister");
    if (!emu_profile.host_register)
        return emu_fail(ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtHostRegister: not supported on %s (documented for Ascend 950, A3 and A2 only)", emu_profile.soc_name);
    if (!ptr || !devPtr || size == 0) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtHostRegister: ptr, devPtr and size must be set");
    if (type != ACL_HOST_REGISTER_MAPPED)
        return emu_fail(ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtHostRegister: only ACL_HOST_REGISTER_MAPPED is supported (got %d)", (int)type);
    if ((uintptr_t)ptr % 4096)
        return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtHostRegister: %p is not 4 KiB aligned", ptr);
    pthread_mutex_lock(&mem_mu);
    long i = find_floor((char *)ptr + size - 1);
    if (i >= 0 && allocs[i]->base + allocs[i]->size > (char *)ptr) {
        emu_alloc *o = allocs[i];
        pthread_mutex_unlock(&mem_mu);
        if (o->kind == EMU_MEM_REGISTERED)
            return emu_fail(ACL_ERROR_HOST_MEMORY_ALREADY_REGISTERED, "aclrtHostRegister: [%p, +%llu) overlaps a registered range", ptr, (unsigned long long)size);
        return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtHostRegister: [%p, +%llu) overlaps %s", ptr, (unsigned long long)size, emu_mem_kind_name(o->kind));
    }
    emu_alloc *a = calloc(1, sizeof *a);
    a->base = ptr;
    a->size = (size_t)size;
    a->kind = EMU_MEM_REGISTERED;
    insert_alloc(a);
    pthread_mutex_unlock(&mem_mu);
    *devPtr = ptr; /* the emulated device maps the range at the same address */
    return ACL_SUCCESS;
}

EMU_API aclError aclrtHostRegisterV2(void *ptr, uint64_t size, uint32_t flag)
{
    EMU_ENTER("aclrtHostRegisterV2");
    uint32_t known = ACL_HOST_REG_MAPPED | ACL_HOST_REG_IOMEMORY | ACL_HOST_REG_READONLY | ACL_HOST_REG_PINNED;
    if (flag & ~known) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtHostRegisterV2: unknown flag bits 0x%x", flag & ~known);
    if (flag & (ACL_HOST_REG_IOMEMORY | ACL_HOST_REG_READONLY))
        return emu_fail(ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtHostRegisterV2: only ACL_HOST_REG_MAPPED and ACL_HOST_REG_PINNED are supported (got 0x%x)", flag);
    void *dev;
    return aclrtHostRegister(ptr, size, ACL_HOST_REGISTER_MAPPED, &dev);
}

EMU_API aclError aclrtHostGetDevicePointer(void *pHost, void **pDevice, uint32_t flag)
{
    EMU_ENTER("aclrtHostGetDevicePointer");
    if (!pHost || !pDevice) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtHostGetDevicePointer: pHost and pDevice must not be NULL");
    if (flag != 0) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtHostGetDevicePointer: flag must be 0 (got %u)", flag);
    pthread_mutex_lock(&mem_mu);
    emu_alloc *a = containing(pHost);
    int ok = a && a->kind == EMU_MEM_REGISTERED;
    pthread_mutex_unlock(&mem_mu);
    if (!ok) return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtHostGetDevicePointer: %p is not in a registered host range (aclrtHostRegisterV2)", pHost);
    *pDevice = pHost;   /* mapped at the same address */
    return ACL_SUCCESS;
}

EMU_API aclError aclrtHostUnregister(void *ptr)
{
    EMU_ENTER("aclrtHostUnregister");
    if (!ptr) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtHostUnregister: ptr is NULL");
    pthread_mutex_lock(&mem_mu);
    emu_alloc *a = containing(ptr);
    aclError rc = ACL_SUCCESS;
    if (!a || a->base != (char *)ptr || a->kind != EMU_MEM_REGISTERED)
        rc = emu_fail(ACL_ERROR_HOST_MEMORY_NOT_REGISTERED, "aclrtHostUnregister: %p does not start a registered range", ptr);
    else if (a->inflight > 0 && emu_profile.strict)
        free_now_locked(a);
    else if (a->inflight > 0)
        rc = emu_finding(FXEMU_FINDING_FREE_IN_USE, FXEMU_ERR_FREE_IN_USE, "aclrtHostUnregister: %p is still used by queued tasks", ptr);
    else
        release_locked(a);
    pthread_mutex_unlock(&mem_mu);
    return rc;
}

/* ---------------------------------------------------------------- copies */

static int is_host(emu_alloc *a) { return !a || a->kind != EMU_MEM_DEVICE; }
static int is_device(emu_alloc *a) { return a && (a->kind == EMU_MEM_DEVICE || a->kind == EMU_MEM_REGISTERED); }
static emu_mem_kind kind_of(emu_alloc *a) { return a ? a->kind : EMU_MEM_PAGEABLE; }

static const char *kind_name(aclrtMemcpyKind k)
{
    static const char *names[] = {"ACL_MEMCPY_HOST_TO_HOST", "ACL_MEMCPY_HOST_TO_DEVICE", "ACL_MEMCPY_DEVICE_TO_HOST",
                                  "ACL_MEMCPY_DEVICE_TO_DEVICE", "ACL_MEMCPY_DEFAULT", "ACL_MEMCPY_HOST_TO_BUF_TO_DEVICE"};
    return (unsigned)k < 6 ? names[k] : "?";
}

typedef struct {
    emu_alloc *dst, *src;
    aclrtMemcpyKind dir;   /* resolved direction */
} copy_plan;

static aclError plan_copy(void *dst, size_t destMax, const void *src, size_t count, aclrtMemcpyKind kind, copy_plan *plan, const char *api)
{
    if ((int)kind == ACL_MEMCPY_INNER_DEVICE_TO_DEVICE || (int)kind == ACL_MEMCPY_INTER_DEVICE_TO_DEVICE)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: memcpy kind %d is for descriptor copies only", api, (int)kind);
    if ((unsigned)kind > ACL_MEMCPY_HOST_TO_BUF_TO_DEVICE) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: unknown memcpy kind %d", api, (int)kind);
    if (!dst || !src) return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "%s: dst and src must not be NULL", api);
    if (destMax == 0 || count > destMax)
        return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "%s: count %zu exceeds destMax %zu", api, count, destMax);
    aclError rc = emu_mem_find(dst, count, &plan->dst, api, "dst");
    if (!rc) rc = emu_mem_find(src, count, &plan->src, api, "src");
    if (rc) return rc;
    int dst_dev = is_device(plan->dst) && kind_of(plan->dst) != EMU_MEM_REGISTERED;
    int src_dev = is_device(plan->src) && kind_of(plan->src) != EMU_MEM_REGISTERED;
    aclrtMemcpyKind actual = src_dev ? (dst_dev ? ACL_MEMCPY_DEVICE_TO_DEVICE : ACL_MEMCPY_DEVICE_TO_HOST)
                                     : (dst_dev ? ACL_MEMCPY_HOST_TO_DEVICE : ACL_MEMCPY_HOST_TO_HOST);
    aclrtMemcpyKind want = kind == ACL_MEMCPY_HOST_TO_BUF_TO_DEVICE ? ACL_MEMCPY_HOST_TO_DEVICE : kind;
    if (want != ACL_MEMCPY_DEFAULT && want != actual) {
        /* Registered host ranges are valid on both sides. */
        int ok = (want == ACL_MEMCPY_HOST_TO_DEVICE && is_host(plan->src) && is_device(plan->dst)) ||
                 (want == ACL_MEMCPY_DEVICE_TO_HOST && is_device(plan->src) && is_host(plan->dst)) ||
                 (want == ACL_MEMCPY_DEVICE_TO_DEVICE && is_device(plan->src) && is_device(plan->dst)) ||
                 (want == ACL_MEMCPY_HOST_TO_HOST && is_host(plan->src) && is_host(plan->dst));
        if (!ok) {
            const char *bad_side = (want == ACL_MEMCPY_HOST_TO_DEVICE || want == ACL_MEMCPY_DEVICE_TO_DEVICE) && !is_device(plan->dst) ? "dst"
                                   : (want == ACL_MEMCPY_DEVICE_TO_HOST || want == ACL_MEMCPY_HOST_TO_HOST) && !is_host(plan->dst) ? "dst"
                                                                                                                                      : "src";
            emu_alloc *b = bad_side[0] == 'd' ? plan->dst : plan->src;
            return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "%s: kind %s, but %s %p is %s", api, kind_name(kind), bad_side,
                            bad_side[0] == 'd' ? dst : src, emu_mem_kind_name(kind_of(b)));
        }
        actual = want;
    }
    plan->dir = actual;
    return ACL_SUCCESS;
}

/* The host side of a host/device copy is pageable: neither pinned nor registered. */
static int pageable_copy(const copy_plan *plan)
{
    return (plan->dir == ACL_MEMCPY_HOST_TO_DEVICE && !plan->src) || (plan->dir == ACL_MEMCPY_DEVICE_TO_HOST && !plan->dst);
}

static int engine_of(aclrtMemcpyKind dir) { return dir == ACL_MEMCPY_DEVICE_TO_HOST ? EMU_ENGINE_D2H : EMU_ENGINE_H2D; }

void emu_timed_copy(emu_device *dev, void *dst, const void *src, size_t n, aclrtMemcpyKind dir, int pageable)
{
    if (dir == ACL_MEMCPY_HOST_TO_HOST) {
        memmove(dst, src, n);
        return;
    }
    emu_engine *e = &dev->engines[engine_of(dir)];
    uint64_t launch = emu_profile.fast ? 0 : (uint64_t)(emu_profile.launch_us * 1e3);
    emu_engine_slot slot;
    emu_engine_begin(&slot, e, emu_now_ns() + launch, emu_copy_ns(dir, n, pageable));
    memmove(dst, src, n);
    emu_engine_end(&slot, 0);
}

EMU_API aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count, aclrtMemcpyKind kind)
{
    EMU_ENTER("aclrtMemcpy");
    if (count == 0) return ACL_SUCCESS;
    copy_plan plan;
    aclError rc = plan_copy(dst, destMax, src, count, kind, &plan, "aclrtMemcpy");
    if (rc) return rc;
    emu_context *ctx;
    aclError ctx_rc = emu_require_context(&ctx, "aclrtMemcpy");
    if (ctx_rc) return ctx_rc;
    if (dst == src) return ACL_SUCCESS;
    emu_timed_copy(ctx->dev, dst, src, count, plan.dir, pageable_copy(&plan));
    return ACL_SUCCESS;
}

EMU_API aclError aclrtMemcpyAsync(void *dst, size_t destMax, const void *src, size_t count, aclrtMemcpyKind kind, aclrtStream stream)
{
    EMU_ENTER("aclrtMemcpyAsync");
    if (count == 0) return ACL_SUCCESS;
    emu_stream *s;
    aclError rc = emu_resolve_stream(stream, &s, "aclrtMemcpyAsync");
    if (rc) return rc;
    copy_plan plan;
    rc = plan_copy(dst, destMax, src, count, kind, &plan, "aclrtMemcpyAsync");
    if (rc) return rc;
    if (plan.dir == ACL_MEMCPY_HOST_TO_HOST)
        return emu_fail(ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtMemcpyAsync: host-to-host copies are not supported in host (EP) run mode");
    /* Pageable host memory: the runtime synchronizes the stream, then copies synchronously. */
    if (pageable_copy(&plan)) {
        rc = emu_stream_sync(s, -1, "aclrtMemcpyAsync");
        if (rc) return rc;
        emu_timed_copy(s->dev, dst, src, count, plan.dir, 1);
        return ACL_SUCCESS;
    }
    emu_task *t = emu_task_new(EMU_T_COPY);
    t->u.copy.dst = dst;
    t->u.copy.src = src;
    t->u.copy.n = count;
    t->u.copy.dir = plan.dir;
    t->holds[t->n_holds++] = plan.dst;
    t->holds[t->n_holds++] = plan.src;
    emu_stream_push(s, t, "aclrtMemcpyAsync");
    return ACL_SUCCESS;
}

static aclError check_2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height, const char *api)
{
    if (!dst || !src) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: dst and src must not be NULL", api);
    if (width == 0 || height == 0) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: width and height must be > 0 (got %zu x %zu)", api, width, height);
    if (width > dpitch || width > spitch)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: width %zu exceeds dpitch %zu or spitch %zu", api, width, dpitch, spitch);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtMemcpy2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height, aclrtMemcpyKind kind)
{
    EMU_ENTER("aclrtMemcpy2d");
    aclError rc = check_2d(dst, dpitch, src, spitch, width, height, "aclrtMemcpy2d");
    if (rc) return rc;
    if (kind != ACL_MEMCPY_HOST_TO_DEVICE && kind != ACL_MEMCPY_DEVICE_TO_HOST)   /* the only two the runtime takes */
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtMemcpy2d: kind must be ACL_MEMCPY_HOST_TO_DEVICE or ACL_MEMCPY_DEVICE_TO_HOST (got %d)", (int)kind);
    /* Validate the whole rectangle first, so a failure copies nothing. */
    copy_plan plan;
    size_t span_d = dpitch * (height - 1) + width, span_s = spitch * (height - 1) + width;
    rc = plan_copy(dst, span_d, src, span_d < span_s ? span_d : span_s, kind, &plan, "aclrtMemcpy2d");
    if (!rc) rc = emu_mem_find(src, span_s, &plan.src, "aclrtMemcpy2d", "src");
    if (!rc) rc = emu_mem_find(dst, span_d, &plan.dst, "aclrtMemcpy2d", "dst");
    if (rc) return rc;
    emu_context *ctx;
    rc = emu_require_context(&ctx, "aclrtMemcpy2d");
    if (rc) return rc;
    for (size_t r = 0; r < height; r++)
        emu_timed_copy(ctx->dev, (char *)dst + r * dpitch, (const char *)src + r * spitch, width, plan.dir, pageable_copy(&plan));
    return ACL_SUCCESS;
}

EMU_API aclError aclrtMemcpy2dAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height, aclrtMemcpyKind kind,
                                    aclrtStream stream)
{
    EMU_ENTER("aclrtMemcpy2dAsync");
    aclError rc = check_2d(dst, dpitch, src, spitch, width, height, "aclrtMemcpy2dAsync");
    if (rc) return rc;
    if (kind != ACL_MEMCPY_HOST_TO_DEVICE && kind != ACL_MEMCPY_DEVICE_TO_HOST)   /* the only two the runtime takes */
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclrtMemcpy2dAsync: kind must be ACL_MEMCPY_HOST_TO_DEVICE or ACL_MEMCPY_DEVICE_TO_HOST (got %d)", (int)kind);
    emu_stream *s;
    rc = emu_resolve_stream(stream, &s, "aclrtMemcpy2dAsync");
    if (rc) return rc;
    copy_plan plan;
    size_t span_d = dpitch * (height - 1) + width, span_s = spitch * (height - 1) + width;
    rc = plan_copy(dst, span_d, src, span_d < span_s ? span_d : span_s, kind, &plan, "aclrtMemcpy2dAsync");
    if (!rc) rc = emu_mem_find(src, span_s, &plan.src, "aclrtMemcpy2dAsync", "src");
    if (!rc) rc = emu_mem_find(dst, span_d, &plan.dst, "aclrtMemcpy2dAsync", "dst");
    if (rc) return rc;
    /* One copy task per row, in order on the stream. */
    for (size_t r = 0; r < height; r++) {
        rc = aclrtMemcpyAsync((char *)dst + r * dpitch, width, (const char *)src + r * spitch, width, plan.dir, s);
        if (rc) return rc;
    }
    return ACL_SUCCESS;
}

static aclError plan_memset(void *devPtr, size_t maxCount, size_t count, emu_alloc **a, const char *api)
{
    if (!devPtr) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: devPtr is NULL", api);
    if (count > maxCount) return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "%s: count %zu exceeds maxCount %zu", api, count, maxCount);
    aclError rc = emu_mem_find(devPtr, count, a, api, "devPtr");
    if (rc) return rc;
    if (!*a) return emu_fail(ACL_ERROR_RT_PARAM_INVALID, "%s: %p is not memory allocated through ACL", api, devPtr);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtMemset(void *devPtr, size_t maxCount, int32_t value, size_t count)
{
    EMU_ENTER("aclrtMemset");
    if (count == 0) return ACL_SUCCESS;
    emu_alloc *a;
    aclError rc = plan_memset(devPtr, maxCount, count, &a, "aclrtMemset");
    if (rc) return rc;
    memset(devPtr, value, count);
    return ACL_SUCCESS;
}

EMU_API aclError aclrtMemsetAsync(void *devPtr, size_t maxCount, int32_t value, size_t count, aclrtStream stream)
{
    EMU_ENTER("aclrtMemsetAsync");
    if (count == 0) return ACL_SUCCESS;
    emu_stream *s;
    aclError rc = emu_resolve_stream(stream, &s, "aclrtMemsetAsync");
    if (rc) return rc;
    emu_alloc *a;
    rc = plan_memset(devPtr, maxCount, count, &a, "aclrtMemsetAsync");
    if (rc) return rc;
    emu_task *t = emu_task_new(EMU_T_MEMSET);
    t->u.memset.dst = devPtr;
    t->u.memset.value = value;
    t->u.memset.n = count;
    t->holds[t->n_holds++] = a;
    emu_stream_push(s, t, "aclrtMemsetAsync");
    return ACL_SUCCESS;
}

/* ---------------------------------------------------------------- data buffers */

struct aclDataBuffer {
    void *data;
    size_t size;
};

EMU_API aclDataBuffer *aclCreateDataBuffer(void *data, size_t size)
{
    aclDataBuffer *b = emu_handle_new(sizeof *b, EMU_H_DATABUFFER, "aclCreateDataBuffer");
    if (b) {
        b->data = data;
        b->size = size;
    }
    return b;
}

EMU_API aclError aclDestroyDataBuffer(const aclDataBuffer *dataBuffer)
{
    EMU_ENTER("aclDestroyDataBuffer");
    aclError rc = emu_handle_destroy(dataBuffer, EMU_H_DATABUFFER, "aclDestroyDataBuffer");
    if (!rc) free((void *)dataBuffer);
    return rc;
}

EMU_API aclError aclUpdateDataBuffer(aclDataBuffer *dataBuffer, void *data, size_t size)
{
    EMU_ENTER("aclUpdateDataBuffer");
    aclError rc = emu_check_handle(dataBuffer, EMU_H_DATABUFFER, "aclUpdateDataBuffer");
    if (rc) return rc;
    dataBuffer->data = data;
    dataBuffer->size = size;
    return ACL_SUCCESS;
}

EMU_API void *aclGetDataBufferAddr(const aclDataBuffer *dataBuffer)
{
    emu_init_once();
    if (!dataBuffer || emu_check_handle(dataBuffer, EMU_H_DATABUFFER, "aclGetDataBufferAddr")) return NULL;
    return dataBuffer->data;
}

EMU_API size_t aclGetDataBufferSizeV2(const aclDataBuffer *dataBuffer)
{
    emu_init_once();
    if (!dataBuffer || emu_check_handle(dataBuffer, EMU_H_DATABUFFER, "aclGetDataBufferSizeV2")) return 0;
    return dataBuffer->size;
}

EMU_API uint32_t aclGetDataBufferSize(const aclDataBuffer *dataBuffer)
{
    emu_init_once();
    if (!dataBuffer || emu_check_handle(dataBuffer, EMU_H_DATABUFFER, "aclGetDataBufferSize")) return 0;
    return (uint32_t)dataBuffer->size;
}

EMU_API size_t aclDataTypeSize(aclDataType dataType)
{
    switch (dataType) {
    case ACL_STRING:
    case ACL_DT_UNDEFINED: return 0;
    case ACL_UINT1:
    case ACL_INT4:
    case ACL_BOOL:
    case ACL_INT8:
    case ACL_UINT8:
    case ACL_HIFLOAT8:
    case ACL_FLOAT8_E5M2:
    case ACL_FLOAT8_E4M3FN:
    case ACL_FLOAT8_E8M0: return 1;
    case ACL_FLOAT16:
    case ACL_INT16:
    case ACL_UINT16:
    case ACL_BF16: return 2;
    case ACL_FLOAT:
    case ACL_INT32:
    case ACL_UINT32:
    case ACL_COMPLEX32: return 4;
    case ACL_COMPLEX128: return 16;
    default: return 8;
    }
}
