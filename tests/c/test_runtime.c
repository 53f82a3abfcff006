/* Runtime tests of the ACL emulator: init/finalize, devices, profiles, contexts,
 * aclGetRecentErrMsg, memory (allocation, copies, memsets, host registration), data
 * buffers, data type sizes and thread safety.
 *
 * The spec is docs/emulator.md and shared/reference/acl-abi.md. Every case runs in its own
 * process (tests/test_emulator_c.py), in fast mode unless its TEST_ENV sets
 * FASTEXEC_EMU_FAST=0; cases whose name starts with timing_ measure modelled durations.
 */
#include "emu_test.h"

/* ================================================================ helpers */

#define ALIGN_UP(n, a) (((n) + (a) - 1) / (a) * (a))
#define GIB ((uint64_t)1 << 30)

/* Like CHECK_FAIL_MSG, with a second needle the message must contain and a word it must
 * not contain (NULL: no such word). */
#define CHECK_FAIL_MSG3(expr, code, needle1, needle2, absent)                                 \
    do {                                                                                     \
        CHECK_CODE(expr, code);                                                              \
        const char *m3_ = aclGetRecentErrMsg();                                              \
        const char *absent_ = (absent);                                                      \
        if (!m3_ || !strstr(m3_, needle1) || !strstr(m3_, needle2) || (absent_ && strstr(m3_, absent_))) { \
            char b3_[1024];                                                                  \
            snprintf(b3_, sizeof b3_, "message of %s is '%s', expected '%s' and '%s'%s%s", #expr, m3_ ? m3_ : "(none)", \
                     needle1, needle2, absent_ ? " and no " : "", absent_ ? absent_ : "");   \
            fail_at(__FILE__, __LINE__, b3_);                                                \
        }                                                                                    \
    } while (0)

static fxemuCounters counters_now(void)
{
    fxemuCounters c;
    CHECK_OK(fxemuGetCounters(&c));
    return c;
}

static fxemuProfile profile_now(void)
{
    fxemuProfile p;
    CHECK_OK(fxemuGetProfile(&p));
    return p;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    CHECK(p != NULL);
    return p;
}

/* A byte pattern that differs between seeds and along the buffer. */
static unsigned char pat(unsigned seed, size_t i)
{
    return (unsigned char)(seed * 131u + (unsigned)i * 7u + (unsigned)(i >> 8) + 1u);
}

static void fill(void *p, size_t n, unsigned seed)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++) b[i] = pat(seed, i);
}

/* Bytes [from, to) of p hold the pattern of `seed` (at their own offsets). */
static int matches_range(const void *p, size_t from, size_t to, unsigned seed)
{
    const unsigned char *b = p;
    for (size_t i = from; i < to; i++)
        if (b[i] != pat(seed, i)) return 0;
    return 1;
}

static int matches(const void *p, size_t n, unsigned seed) { return matches_range(p, 0, n, seed); }

static int all_bytes(const void *p, size_t n, unsigned char v)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != v) return 0;
    return 1;
}

/* Device <-> host through the synchronous copy (the ACL way to look at device memory). */
static void read_device(void *host, const void *dev, size_t n) { CHECK_OK(aclrtMemcpy(host, n, dev, n, ACL_MEMCPY_DEVICE_TO_HOST)); }
static void write_device(void *dev, const void *host, size_t n) { CHECK_OK(aclrtMemcpy(dev, n, host, n, ACL_MEMCPY_HOST_TO_DEVICE)); }

static void *device_alloc(size_t n)
{
    void *p = NULL;
    CHECK_OK(aclrtMalloc(&p, n, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK(p != NULL);
    return p;
}

static void *pinned_alloc(size_t n)
{
    void *p = NULL;
    CHECK_OK(aclrtMallocHost(&p, n));
    CHECK(p != NULL);
    return p;
}

static size_t device_free_bytes(size_t *total)
{
    size_t f = 0, t = 0;
    CHECK_OK(aclrtGetMemInfo(ACL_HBM_MEM, &f, &t));
    if (total) *total = t;
    return f;
}

static int32_t current_device(void)
{
    int32_t d = -1;
    CHECK_OK(aclrtGetDevice(&d));
    return d;
}

static aclrtContext current_context(void)
{
    aclrtContext c = NULL;
    CHECK_OK(aclrtGetCurrentContext(&c));
    CHECK(c != NULL);
    return c;
}

static void no_pending_message(void) { CHECK(aclGetRecentErrMsg() == NULL); }

/* Starts n threads running fn(args + i * arg_size) and joins them. */
static void run_threads(int n, void *(*fn)(void *), void *args, size_t arg_size)
{
    pthread_t th[16];
    CHECK(n > 0 && n <= 16);
    for (int i = 0; i < n; i++) CHECK(pthread_create(&th[i], NULL, fn, (char *)args + (size_t)i * arg_size) == 0);
    for (int i = 0; i < n; i++) CHECK(pthread_join(th[i], NULL) == 0);
}

/* A measured duration must lie in [lo, hi] ms; prints the value when it does not. */
static void check_ms(const char *what, double v, double lo, double hi)
{
    if (v < lo || v > hi) {
        char b[256];
        snprintf(b, sizeof b, "%s took %.3f ms, expected %.3f .. %.3f ms", what, v, lo, hi);
        fail_at(__FILE__, __LINE__, b);
    }
}

/* A temporary file holding `content`; the caller removes it and frees the path. */
static char *write_temp_file(const char *content)
{
    char *path = xmalloc(64);
    snprintf(path, 64, "/tmp/fxemu-test-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    CHECK(f != NULL);
    CHECK(fputs(content, f) >= 0);
    CHECK(fclose(f) == 0);
    return path;
}

static void check_profile(const char *name, const char *soc, uint32_t devices, double h2d, double d2h, double d2d, uint64_t memory,
                          int exec_async_v2, int host_register)
{
    fxemuProfile p = profile_now();
    CHECK(strcmp(p.name, name) == 0);
    CHECK(strcmp(p.soc_name, soc) == 0);
    CHECK_EQ_U64(p.device_count, devices);
    CHECK(p.h2d_gbps == h2d);
    CHECK(p.d2h_gbps == d2h);
    CHECK(p.d2d_gbps == d2d);
    CHECK(p.h2d_latency_us == 10.0);
    CHECK(p.d2h_latency_us == 10.0);
    CHECK(p.launch_us == 5.0);
    CHECK_EQ_U64(p.device_memory_bytes, memory);
    CHECK(p.exec_async_v2 == exec_async_v2);
    CHECK(p.host_register == host_register);
    CHECK(p.fast == 1);      /* the runner's default */
    CHECK(p.checked == 1);
    /* The ACL view agrees with the profile. */
    uint32_t n = 0;
    CHECK_OK(aclrtGetDeviceCount(&n));
    CHECK_EQ_U64(n, devices);
    const char *s = aclrtGetSocName();
    CHECK(s != NULL && strcmp(s, soc) == 0);
    CHECK_OK(aclInit(NULL));
    CHECK_OK(aclrtSetDevice(0));
    size_t total = 0, free_b = device_free_bytes(&total);
    CHECK_EQ_U64(total, memory);
    CHECK_EQ_U64(free_b, memory);
    teardown();
}

/* ================================================================ init / finalize */

TEST(init_finalize_sequence)
{
    no_pending_message();
    CHECK_OK(aclInit(NULL));
    CHECK_FAIL_MSG(aclInit(NULL), ACL_ERROR_REPEAT_INITIALIZE, "aclInit");
    /* one aclFinalize undoes any number of aclInit calls */
    CHECK_OK(aclFinalize());
    CHECK_FAIL_MSG(aclFinalize(), ACL_ERROR_REPEAT_FINALIZE, "aclFinalize");
    /* initializing again after a finalize works */
    CHECK_OK(aclInit(NULL));
    CHECK_OK(aclrtSetDevice(0));
    CHECK_EQ_U64(current_device(), 0);
    teardown();
    CHECK_CODE(aclFinalize(), ACL_ERROR_REPEAT_FINALIZE);
}

TEST(init_missing_config_file)
{
    const char *missing = "/nonexistent-fxemu-dir/acl-config.json";
    CHECK_FAIL_MSG3(aclInit(missing), ACL_ERROR_INVALID_FILE, "aclInit", missing, NULL);
    /* the failed aclInit left the library uninitialized */
    CHECK_CODE(aclFinalize(), ACL_ERROR_REPEAT_FINALIZE);
    CHECK_OK(aclInit(NULL));
    CHECK_OK(aclFinalize());
}

TEST(init_with_config_file)
{
    char *path = write_temp_file("{}\n");
    aclError first = aclInit(path), second = aclInit(path);
    CHECK(remove(path) == 0);
    free(path);
    CHECK_OK(first);
    CHECK_CODE(second, ACL_ERROR_REPEAT_INITIALIZE);
    CHECK_OK(aclFinalize());
}

/* ================================================================ devices */

TEST(device_count_default)
{
    uint32_t n = 0;
    CHECK_OK(aclrtGetDeviceCount(&n));
    CHECK_EQ_U64(n, 1);
    CHECK_FAIL_MSG(aclrtGetDeviceCount(NULL), ACL_ERROR_INVALID_PARAM, "aclrtGetDeviceCount");
}

TEST_ENV(device_count_env_devices, "FASTEXEC_EMU_DEVICES=2")
{
    uint32_t n = 0;
    CHECK_OK(aclrtGetDeviceCount(&n));
    CHECK_EQ_U64(n, 2);
    CHECK_EQ_U64(profile_now().device_count, 2);
    CHECK(strcmp(profile_now().name, "atlas-300i-pro") == 0);   /* only the count is overridden */
    CHECK_OK(aclInit(NULL));
    CHECK_OK(aclrtSetDevice(1));
    CHECK_EQ_U64(current_device(), 1);
    CHECK_FAIL_MSG(aclrtSetDevice(2), ACL_ERROR_RT_INVALID_DEVICEID, "aclrtSetDevice");
    CHECK_OK(aclrtResetDevice(1));
    CHECK_OK(aclFinalize());
}

TEST_ENV(device_count_env_max, "FASTEXEC_EMU_DEVICES=64")
{
    uint32_t n = 0;
    CHECK_OK(aclrtGetDeviceCount(&n));
    CHECK_EQ_U64(n, 64);
    CHECK_OK(aclrtSetDevice(63));
    CHECK_EQ_U64(current_device(), 63);
    CHECK_OK(aclrtResetDevice(63));
    CHECK_CODE(aclrtSetDevice(64), ACL_ERROR_RT_INVALID_DEVICEID);
}

TEST_ENV(device_count_env_out_of_range_ignored, "FASTEXEC_EMU_DEVICES=65")
{
    uint32_t n = 0;
    CHECK_OK(aclrtGetDeviceCount(&n));
    CHECK_EQ_U64(n, 1);
}

TEST_ENV(device_count_duo_profile, "FASTEXEC_EMU_PROFILE=atlas-300i-duo")
{
    uint32_t n = 0;
    CHECK_OK(aclrtGetDeviceCount(&n));
    CHECK_EQ_U64(n, 2);
    CHECK_OK(aclInit(NULL));
    CHECK_OK(aclrtSetDevice(0));
    CHECK_OK(aclrtSetDevice(1));
    CHECK_EQ_U64(current_device(), 1);
    CHECK_EQ_U64(counters_now().devices_set, 2);
    CHECK_OK(aclrtResetDevice(1));
    CHECK_OK(aclrtResetDevice(0));
    CHECK_OK(aclFinalize());
}

TEST(device_invalid_ids)
{
    CHECK_OK(aclInit(NULL));
    const int32_t bad[] = {-1, 1, 2, 1000, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aclrtContext c = NULL;
        CHECK_FAIL_MSG(aclrtSetDevice(bad[i]), ACL_ERROR_RT_INVALID_DEVICEID, "aclrtSetDevice");
        CHECK_FAIL_MSG(aclrtResetDevice(bad[i]), ACL_ERROR_RT_INVALID_DEVICEID, "aclrtResetDevice");
        CHECK_FAIL_MSG(aclrtResetDeviceForce(bad[i]), ACL_ERROR_RT_INVALID_DEVICEID, "aclrtResetDeviceForce");
        CHECK_FAIL_MSG(aclrtCreateContext(&c, bad[i]), ACL_ERROR_RT_INVALID_DEVICEID, "aclrtCreateContext");
        CHECK(c == NULL);
    }
    fxemuCounters c = counters_now();
    CHECK_EQ_U64(c.devices_set, 0);
    CHECK_EQ_U64(c.contexts, 0);
    /* nothing became current */
    int32_t d;
    CHECK_CODE(aclrtGetDevice(&d), ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_OK(aclFinalize());
}

TEST(device_get_without_context)
{
    CHECK_OK(aclInit(NULL));
    int32_t d = -7;
    aclrtContext c = NULL;
    CHECK_FAIL_MSG(aclrtGetDevice(&d), ACL_ERROR_RT_CONTEXT_NULL, "aclrtGetDevice");
    CHECK(d == -7);
    CHECK_FAIL_MSG(aclrtGetCurrentContext(&c), ACL_ERROR_RT_CONTEXT_NULL, "aclrtGetCurrentContext");
    CHECK_FAIL_MSG(aclrtGetDevice(NULL), ACL_ERROR_INVALID_PARAM, "aclrtGetDevice");
    CHECK_FAIL_MSG(aclrtGetCurrentContext(NULL), ACL_ERROR_INVALID_PARAM, "aclrtGetCurrentContext");
    CHECK_OK(aclFinalize());
}

TEST(device_set_refcount)
{
    CHECK_OK(aclInit(NULL));
    CHECK_OK(aclrtSetDevice(0));
    aclrtContext first = current_context();
    CHECK_OK(aclrtSetDevice(0));
    CHECK(current_context() == first);   /* the same default context */
    CHECK_EQ_U64(counters_now().devices_set, 1);
    CHECK_EQ_U64(counters_now().contexts, 0);   /* default contexts are not counted */

    CHECK_OK(aclrtResetDevice(0));
    /* one reference left: the default context is alive and usable */
    CHECK_EQ_U64(current_device(), 0);
    CHECK(current_context() == first);
    CHECK_EQ_U64(counters_now().devices_set, 1);
    void *p = device_alloc(64);
    CHECK_OK(aclrtFree(p));

    CHECK_OK(aclrtResetDevice(0));
    CHECK_EQ_U64(counters_now().devices_set, 0);
    int32_t d;
    CHECK_CODE(aclrtGetDevice(&d), ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_CODE(aclrtMalloc(&p, 64, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_OK(aclFinalize());
}

TEST(device_reset_force)
{
    CHECK_OK(aclInit(NULL));
    for (int i = 0; i < 3; i++) CHECK_OK(aclrtSetDevice(0));
    CHECK_EQ_U64(counters_now().devices_set, 1);
    CHECK_OK(aclrtResetDeviceForce(0));
    CHECK_EQ_U64(counters_now().devices_set, 0);
    int32_t d;
    CHECK_CODE(aclrtGetDevice(&d), ACL_ERROR_RT_CONTEXT_NULL);
    /* the device can be set again afterwards, with a fresh count */
    CHECK_OK(aclrtSetDevice(0));
    CHECK_EQ_U64(current_device(), 0);
    CHECK_OK(aclrtResetDevice(0));
    CHECK_EQ_U64(counters_now().devices_set, 0);
    CHECK_OK(aclFinalize());
}

static void set_flag(void *arg) { *(volatile int *)arg = 1; }

TEST(device_reset_releases_default_context_streams)
{
    /* Reset destroys the default context and the streams created in it, after their tasks. */
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    CHECK_EQ_U64(counters_now().streams, 1);
    volatile int ran = 0;
    CHECK_OK(fxemuStallStream(s, 30));
    CHECK_OK(aclrtLaunchHostFunc(s, set_flag, (void *)&ran));
    CHECK_OK(aclrtResetDevice(0));
    CHECK(ran == 1);
    CHECK_EQ_U64(counters_now().streams, 0);
    CHECK_EQ_U64(counters_now().devices_set, 0);
    CHECK_OK(aclFinalize());
}

TEST(device_run_mode)
{
    setup();
    aclrtRunMode m = ACL_DEVICE;
    CHECK_OK(aclrtGetRunMode(&m));
    CHECK(m == ACL_HOST);
    CHECK_FAIL_MSG(aclrtGetRunMode(NULL), ACL_ERROR_INVALID_PARAM, "aclrtGetRunMode");
    teardown();
}

/* ================================================================ profiles */

TEST(profile_default)
{
    CHECK(strcmp(aclrtGetSocName(), "Ascend310P3") == 0);
    check_profile("atlas-300i-pro", "Ascend310P3", 1, 24.0, 24.0, 120.0, 24 * GIB, 0, 0);
}

TEST_ENV(profile_duo, "FASTEXEC_EMU_PROFILE=atlas-300i-duo")
{
    check_profile("atlas-300i-duo", "Ascend310P3", 2, 24.0, 24.0, 120.0, 24 * GIB, 0, 0);
}

TEST_ENV(profile_slow_link, "FASTEXEC_EMU_PROFILE=slow-link")
{
    check_profile("slow-link", "Ascend310P3", 1, 1.0, 1.0, 120.0, 24 * GIB, 0, 0);
}

TEST_ENV(profile_atlas_800i_a2, "FASTEXEC_EMU_PROFILE=atlas-800i-a2")
{
    CHECK(strcmp(aclrtGetSocName(), "Ascend910B4") == 0);
    check_profile("atlas-800i-a2", "Ascend910B4", 1, 24.0, 24.0, 480.0, 64 * GIB, 0, 1);
}

TEST_ENV(profile_ipv350, "FASTEXEC_EMU_PROFILE=ipv350")
{
    CHECK(strcmp(aclrtGetSocName(), "IPV350") == 0);
    check_profile("ipv350", "IPV350", 1, 8.0, 8.0, 30.0, 4 * GIB, 1, 0);
}

TEST_ENV(profile_unknown_name_uses_default, "FASTEXEC_EMU_PROFILE=no-such-profile")
{
    check_profile("atlas-300i-pro", "Ascend310P3", 1, 24.0, 24.0, 120.0, 24 * GIB, 0, 0);
}

TEST_ENV(profile_checked_and_fast_switches, "FASTEXEC_EMU_CHECKED=0")
{
    CHECK(profile_now().checked == 0);
    CHECK(profile_now().fast == 1);
    fxemuSetChecked(1);
    CHECK(profile_now().checked == 1);
    fxemuSetFastMode(0);
    CHECK(profile_now().fast == 0);
    fxemuSetFastMode(1);
    CHECK(profile_now().fast == 1);
    fxemuSetChecked(0);
    CHECK(profile_now().checked == 0);
}

TEST(profile_file_base_and_overrides)
{
    /* The environment is read at the first call into the library, which is below. */
    char *path = write_temp_file("# a test profile\n"
                                 "base slow-link\n"
                                 "\n"
                                 "soc_name X\n"
                                 "devices 3   # three chips\n");
    CHECK(setenv("FASTEXEC_EMU_PROFILE", path, 1) == 0);
    uint32_t n = 0;
    CHECK_OK(aclrtGetDeviceCount(&n));
    CHECK(remove(path) == 0);   /* read once, at that first call */
    free(path);
    CHECK_EQ_U64(n, 3);
    CHECK(strcmp(aclrtGetSocName(), "X") == 0);
    fxemuProfile p = profile_now();
    CHECK(strcmp(p.soc_name, "X") == 0);
    CHECK(p.h2d_gbps == 1.0 && p.d2h_gbps == 1.0 && p.d2d_gbps == 120.0);   /* from the base */
    CHECK_EQ_U64(p.device_memory_bytes, 24 * GIB);
    CHECK(p.host_register == 0 && p.exec_async_v2 == 0);
    CHECK_OK(aclInit(NULL));
    CHECK_OK(aclrtSetDevice(2));
    CHECK_EQ_U64(current_device(), 2);
    CHECK_CODE(aclrtSetDevice(3), ACL_ERROR_RT_INVALID_DEVICEID);
    CHECK_OK(aclrtResetDevice(2));
    CHECK_OK(aclFinalize());
}

TEST(profile_file_bad_line_uses_default)
{
    char *path = write_temp_file("base slow-link\nsoc_name Y\ndevices 3\nno_such_key 1\n");
    CHECK(setenv("FASTEXEC_EMU_PROFILE", path, 1) == 0);
    /* capture what the library reports on stderr while it reads its configuration */
    char *report = NULL;
    size_t report_len = 0;
    FILE *saved = stderr, *mem = open_memstream(&report, &report_len);
    CHECK(mem != NULL);
    stderr = mem;
    uint32_t n = 0;
    aclError rc = aclrtGetDeviceCount(&n);
    stderr = saved;
    CHECK(fclose(mem) == 0);
    CHECK(remove(path) == 0);
    CHECK_OK(rc);
    CHECK(report != NULL && strstr(report, path) != NULL);
    CHECK_EQ_U64(n, 1);
    CHECK(strcmp(aclrtGetSocName(), "Ascend310P3") == 0);
    fxemuProfile p = profile_now();
    CHECK(strcmp(p.name, "atlas-300i-pro") == 0);
    CHECK(p.h2d_gbps == 24.0);
    free(report);
    free(path);
}

/* ================================================================ contexts */

TEST(context_create_makes_current)
{
    CHECK_OK(aclInit(NULL));
    aclrtContext c = NULL;
    CHECK_FAIL_MSG(aclrtCreateContext(NULL, 0), ACL_ERROR_INVALID_PARAM, "aclrtCreateContext");
    CHECK_OK(aclrtCreateContext(&c, 0));
    CHECK(c != NULL);
    CHECK(current_context() == c);
    CHECK_EQ_U64(current_device(), 0);
    fxemuCounters k = counters_now();
    CHECK_EQ_U64(k.contexts, 1);
    CHECK_EQ_U64(k.devices_set, 0);   /* a context is not an aclrtSetDevice */
    /* the context is usable: memory and a copy through its default stream */
    unsigned char host[256], back[256];
    fill(host, sizeof host, 3);
    void *dev = device_alloc(sizeof host);
    CHECK_OK(aclrtMemcpyAsync(dev, sizeof host, host, sizeof host, ACL_MEMCPY_HOST_TO_DEVICE, NULL));   /* pageable: synchronous */
    read_device(back, dev, sizeof back);
    CHECK(matches(back, sizeof back, 3));
    CHECK_OK(aclrtFree(dev));
    CHECK_OK(aclrtDestroyContext(c));
    CHECK_EQ_U64(counters_now().contexts, 0);
    /* it was current: now there is none */
    aclrtContext cur;
    CHECK_CODE(aclrtGetCurrentContext(&cur), ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_OK(aclFinalize());
}

TEST_ENV(context_switch_between_devices, "FASTEXEC_EMU_DEVICES=2")
{
    CHECK_OK(aclInit(NULL));
    aclrtContext c0, c1;
    CHECK_OK(aclrtCreateContext(&c0, 0));
    CHECK_OK(aclrtCreateContext(&c1, 1));
    CHECK(c0 != c1);
    CHECK(current_context() == c1);
    CHECK_EQ_U64(current_device(), 1);
    size_t free1 = device_free_bytes(NULL);
    CHECK_OK(aclrtSetCurrentContext(c0));
    CHECK(current_context() == c0);
    CHECK_EQ_U64(current_device(), 0);
    size_t free0 = device_free_bytes(NULL);

    /* memory is accounted to the current context's device */
    void *p0 = device_alloc(1000);
    CHECK_EQ_U64(device_free_bytes(NULL), free0 - 1056);
    CHECK_OK(aclrtSetCurrentContext(c1));
    CHECK_EQ_U64(current_device(), 1);
    CHECK_EQ_U64(device_free_bytes(NULL), free1);
    void *p1 = device_alloc(64);
    CHECK_EQ_U64(device_free_bytes(NULL), free1 - 96);
    CHECK_OK(aclrtSetCurrentContext(c0));
    CHECK_EQ_U64(device_free_bytes(NULL), free0 - 1056);

    CHECK_OK(aclrtFree(p0));
    CHECK_OK(aclrtFree(p1));
    CHECK_OK(aclrtDestroyContext(c1));
    CHECK(current_context() == c0);   /* destroying another context keeps the current one */
    CHECK_OK(aclrtDestroyContext(c0));
    CHECK_OK(aclFinalize());
}

TEST(context_destroy_default_refused)
{
    setup();
    aclrtContext def = current_context();
    CHECK_FAIL_MSG(aclrtDestroyContext(def), ACL_ERROR_RT_PARAM_INVALID, "aclrtDestroyContext");
    /* nothing changed */
    CHECK(current_context() == def);
    CHECK_EQ_U64(current_device(), 0);
    void *p = device_alloc(32);
    CHECK_OK(aclrtFree(p));
    teardown();
}

TEST(context_destroyed_handle)
{
    CHECK_OK(aclInit(NULL));
    aclrtContext c;
    CHECK_OK(aclrtCreateContext(&c, 0));
    CHECK_OK(aclrtDestroyContext(c));
    CHECK_FAIL_MSG3(aclrtSetCurrentContext(c), FXEMU_ERR_DESTROYED_HANDLE, "aclrtSetCurrentContext", "context", NULL);
    CHECK_FAIL_MSG3(aclrtDestroyContext(c), FXEMU_ERR_DESTROYED_HANDLE, "aclrtDestroyContext", "context", NULL);
    /* NULL is a plain parameter error, not a finding */
    CHECK_FAIL_MSG(aclrtSetCurrentContext(NULL), ACL_ERROR_INVALID_PARAM, "aclrtSetCurrentContext");
    CHECK_FAIL_MSG(aclrtDestroyContext(NULL), ACL_ERROR_INVALID_PARAM, "aclrtDestroyContext");
    fxemuCounters k = counters_now();
    CHECK_EQ_U64(k.findings, 2);
    CHECK_EQ_U64(k.findings_by_kind[FXEMU_FINDING_DESTROYED_HANDLE], 2);
    char last[1024];
    CHECK_OK(fxemuLastFinding(last, sizeof last));
    CHECK(strstr(last, "aclrtDestroyContext") != NULL);
    aclrtContext cur;
    CHECK_CODE(aclrtGetCurrentContext(&cur), ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_OK(aclFinalize());
    expect_findings(2);
}

static void *ctx_new_thread_worker(void *arg)
{
    aclrtContext ctx = *(aclrtContext *)arg;
    int32_t d;
    aclrtContext cur;
    void *mem;
    aclrtStream s;
    /* a new thread starts without a current context, whatever the creating thread had */
    CHECK_CODE(aclrtGetDevice(&d), ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_CODE(aclrtGetCurrentContext(&cur), ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_CODE(aclrtMalloc(&mem, 64, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_CODE(aclrtCreateStream(&s), ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_OK(aclrtSetCurrentContext(ctx));
    CHECK_EQ_U64(current_device(), 0);
    CHECK(current_context() == ctx);
    mem = device_alloc(64);
    CHECK_OK(aclrtFree(mem));
    return NULL;
}

static void *ctx_new_thread_setdevice_worker(void *arg)
{
    aclrtContext main_default = *(aclrtContext *)arg;
    int32_t d;
    CHECK_CODE(aclrtGetDevice(&d), ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_OK(aclrtSetDevice(0));
    CHECK_EQ_U64(current_device(), 0);
    CHECK(current_context() == main_default);   /* threads share a device's default context */
    CHECK_OK(aclrtResetDevice(0));
    return NULL;
}

TEST(context_new_thread_has_none)
{
    setup();
    aclrtContext def = current_context();
    run_threads(1, ctx_new_thread_worker, &def, sizeof def);
    run_threads(1, ctx_new_thread_setdevice_worker, &def, sizeof def);
    /* the main thread kept its context and its device reference */
    CHECK(current_context() == def);
    CHECK_EQ_U64(counters_now().devices_set, 1);
    teardown();
}

typedef struct {
    pthread_barrier_t *bar;
    aclrtContext mine, other;
    int32_t mine_dev, other_dev;
    unsigned seed;
} ctx_pair_arg;

static void *ctx_pair_worker(void *arg)
{
    ctx_pair_arg *a = arg;
    for (int round = 0; round < 20; round++) {
        aclrtContext want = round % 2 ? a->other : a->mine;
        int32_t want_dev = round % 2 ? a->other_dev : a->mine_dev;
        CHECK_OK(aclrtSetCurrentContext(want));
        pthread_barrier_wait(a->bar);   /* both threads now hold different current contexts */
        CHECK(current_context() == want);
        CHECK_EQ_U64(current_device(), want_dev);
        unsigned char host[512], back[512];
        fill(host, sizeof host, a->seed + (unsigned)round);
        void *dev = device_alloc(sizeof host);
        write_device(dev, host, sizeof host);
        read_device(back, dev, sizeof back);
        CHECK(matches(back, sizeof back, a->seed + (unsigned)round));
        CHECK_OK(aclrtFree(dev));
        CHECK(current_context() == want);
        pthread_barrier_wait(a->bar);   /* before either switches */
    }
    return NULL;
}

TEST_ENV(context_two_threads_at_once, "FASTEXEC_EMU_DEVICES=2")
{
    CHECK_OK(aclInit(NULL));
    aclrtContext c0, c1;
    CHECK_OK(aclrtCreateContext(&c0, 0));
    CHECK_OK(aclrtCreateContext(&c1, 1));
    pthread_barrier_t bar;
    CHECK(pthread_barrier_init(&bar, NULL, 2) == 0);
    ctx_pair_arg args[2] = {{&bar, c0, c1, 0, 1, 10}, {&bar, c1, c0, 1, 0, 50}};
    run_threads(2, ctx_pair_worker, args, sizeof args[0]);
    CHECK(pthread_barrier_destroy(&bar) == 0);
    /* the main thread's current context is still the last one it created */
    CHECK(current_context() == c1);
    CHECK_EQ_U64(current_device(), 1);
    CHECK_OK(aclrtDestroyContext(c0));
    CHECK_OK(aclrtDestroyContext(c1));
    CHECK_OK(aclFinalize());
}

typedef struct {
    pthread_barrier_t *bar;
    aclrtContext ctx;
    aclError rc_after;
    int32_t dev_after;
} stale_ctx_arg;

static void *stale_ctx_worker(void *arg)
{
    stale_ctx_arg *a = arg;
    CHECK_OK(aclrtSetCurrentContext(a->ctx));
    CHECK_EQ_U64(current_device(), 0);
    pthread_barrier_wait(a->bar);   /* the main thread destroys the context ... */
    pthread_barrier_wait(a->bar);   /* ... and creates another one */
    a->dev_after = -1;
    a->rc_after = aclrtGetDevice(&a->dev_after);
    return NULL;
}

TEST_ENV(context_destroyed_by_other_thread, "FASTEXEC_EMU_DEVICES=2")
{
    /* A thread whose current context another thread destroyed has no current context; it
     * must not silently pick up a context created later (even at the same address). */
    CHECK_OK(aclInit(NULL));
    aclrtContext c1, c2;
    CHECK_OK(aclrtCreateContext(&c1, 0));
    pthread_barrier_t bar;
    CHECK(pthread_barrier_init(&bar, NULL, 2) == 0);
    stale_ctx_arg a = {&bar, c1, ACL_SUCCESS, -1};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, stale_ctx_worker, &a) == 0);
    pthread_barrier_wait(&bar);
    CHECK_OK(aclrtDestroyContext(c1));
    CHECK_OK(aclrtCreateContext(&c2, 1));
    pthread_barrier_wait(&bar);
    CHECK(pthread_join(th, NULL) == 0);
    CHECK(pthread_barrier_destroy(&bar) == 0);
    if (a.rc_after == ACL_SUCCESS)
        fprintf(stderr, "the worker's destroyed context resolved to device %d (new context %s the old address)\n", a.dev_after,
                c1 == c2 ? "reuses" : "does not reuse");
    CHECK_CODE(a.rc_after, ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_OK(aclrtDestroyContext(c2));
    CHECK_OK(aclFinalize());
}

/* ================================================================ aclGetRecentErrMsg */

TEST(errmsg_null_without_error)
{
    no_pending_message();
    setup();
    void *p = device_alloc(64);
    CHECK_OK(aclrtFree(p));
    no_pending_message();   /* successful calls leave no message */
    teardown();
    no_pending_message();
}

TEST(errmsg_names_api_once)
{
    setup();
    void *p = NULL;
    CHECK_CODE(aclrtMalloc(&p, 0, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_INVALID_PARAM);
    const char *m = aclGetRecentErrMsg();
    CHECK(m != NULL && strstr(m, "aclrtMalloc") != NULL);
    no_pending_message();   /* returned once, then cleared */

    /* the latest failure wins */
    CHECK_CODE(aclrtSetDevice(-1), ACL_ERROR_RT_INVALID_DEVICEID);
    CHECK_CODE(aclrtFree(NULL), ACL_ERROR_INVALID_PARAM);
    m = aclGetRecentErrMsg();
    CHECK(m != NULL && strstr(m, "aclrtFree") != NULL && strstr(m, "aclrtSetDevice") == NULL);
    no_pending_message();

    /* a few more APIs, each named in its own message */
    unsigned char h[16] = {0};
    CHECK_FAIL_MSG(aclrtMemcpy(h, sizeof h, h, sizeof h, (aclrtMemcpyKind)7), ACL_ERROR_INVALID_PARAM, "aclrtMemcpy");
    CHECK_FAIL_MSG(aclrtMallocHost(&p, 0), ACL_ERROR_INVALID_PARAM, "aclrtMallocHost");
    CHECK_FAIL_MSG(aclrtMemset(NULL, 16, 0, 16), ACL_ERROR_INVALID_PARAM, "aclrtMemset");
    CHECK_FAIL_MSG(aclrtGetMemInfo(ACL_HBM_MEM, NULL, NULL), ACL_ERROR_INVALID_PARAM, "aclrtGetMemInfo");
    CHECK_FAIL_MSG(aclrtHostRegister(h, 4096, ACL_HOST_REGISTER_MAPPED, &p), ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtHostRegister");
    no_pending_message();
    teardown();
}

static void *errmsg_thread_a(void *arg)
{
    pthread_barrier_t *bar = arg;
    CHECK_CODE(aclrtSetDevice(-5), ACL_ERROR_RT_INVALID_DEVICEID);
    pthread_barrier_wait(bar);   /* 1: A has a message pending */
    pthread_barrier_wait(bar);   /* 2: B has looked and failed a call of its own */
    const char *m = aclGetRecentErrMsg();
    CHECK(m != NULL && strstr(m, "aclrtSetDevice") != NULL && strstr(m, "aclrtFree") == NULL);
    no_pending_message();
    return NULL;
}

static void *errmsg_thread_b(void *arg)
{
    pthread_barrier_t *bar = arg;
    pthread_barrier_wait(bar);   /* 1 */
    no_pending_message();        /* A's message is not visible here */
    CHECK_CODE(aclrtFree(NULL), ACL_ERROR_INVALID_PARAM);
    pthread_barrier_wait(bar);   /* 2 */
    const char *m = aclGetRecentErrMsg();
    CHECK(m != NULL && strstr(m, "aclrtFree") != NULL && strstr(m, "aclrtSetDevice") == NULL);
    no_pending_message();
    return NULL;
}

TEST(errmsg_thread_local)
{
    pthread_barrier_t bar;
    CHECK(pthread_barrier_init(&bar, NULL, 2) == 0);
    pthread_t a, b;
    CHECK(pthread_create(&a, NULL, errmsg_thread_a, &bar) == 0);
    CHECK(pthread_create(&b, NULL, errmsg_thread_b, &bar) == 0);
    CHECK(pthread_join(a, NULL) == 0);
    CHECK(pthread_join(b, NULL) == 0);
    CHECK(pthread_barrier_destroy(&bar) == 0);
    no_pending_message();   /* nor in the main thread */
}

/* ================================================================ device memory */

TEST(malloc_invalid_args)
{
    setup();
    fxemuCounters before = counters_now();
    void *p = NULL;
    CHECK_FAIL_MSG(aclrtMalloc(&p, 0, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_INVALID_PARAM, "aclrtMalloc");
    CHECK_FAIL_MSG(aclrtMallocAlign32(&p, 0, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_INVALID_PARAM, "aclrtMallocAlign32");
    CHECK_FAIL_MSG(aclrtMalloc(NULL, 64, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_INVALID_PARAM, "aclrtMalloc");
    CHECK_FAIL_MSG(aclrtMallocAlign32(NULL, 64, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_INVALID_PARAM, "aclrtMallocAlign32");
    CHECK(p == NULL);
    fxemuCounters after = counters_now();
    CHECK_EQ_U64(after.device_allocations, before.device_allocations);
    CHECK_EQ_U64(after.device_bytes, before.device_bytes);
    teardown();
}

TEST(malloc_requires_context)
{
    CHECK_OK(aclInit(NULL));
    void *p = NULL;
    size_t f, t;
    CHECK_FAIL_MSG(aclrtMalloc(&p, 64, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_CONTEXT_NULL, "aclrtMalloc");
    CHECK_FAIL_MSG(aclrtMallocAlign32(&p, 64, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_CONTEXT_NULL, "aclrtMallocAlign32");
    CHECK_FAIL_MSG(aclrtGetMemInfo(ACL_HBM_MEM, &f, &t), ACL_ERROR_RT_CONTEXT_NULL, "aclrtGetMemInfo");
    /* a synchronous copy needs a context too */
    unsigned char a[16] = {1}, b[16] = {0};
    CHECK_FAIL_MSG(aclrtMemcpy(b, sizeof b, a, sizeof a, ACL_MEMCPY_HOST_TO_HOST), ACL_ERROR_RT_CONTEXT_NULL, "aclrtMemcpy");
    CHECK(p == NULL);
    CHECK_EQ_U64(counters_now().device_allocations, 0);
    CHECK_OK(aclFinalize());
}

TEST(malloc_sizes_and_alignment)
{
    setup();
    const size_t sizes[] = {1, 31, 32, 33, 64, 1000, 4096, (1u << 20) + 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        for (int align32 = 0; align32 < 2; align32++) {
            fxemuCounters before = counters_now();
            size_t free_before = device_free_bytes(NULL);
            void *p = NULL;
            if (align32) CHECK_OK(aclrtMallocAlign32(&p, n, ACL_MEM_MALLOC_HUGE_FIRST));
            else CHECK_OK(aclrtMalloc(&p, n, ACL_MEM_MALLOC_HUGE_FIRST));
            CHECK(p != NULL);
            CHECK((uintptr_t)p % 64 == 0);
            size_t expect = ALIGN_UP(n, 32) + (align32 ? 0 : 32);
            fxemuCounters after = counters_now();
            CHECK_EQ_U64(after.device_allocations, before.device_allocations + 1);
            CHECK_EQ_U64(after.device_bytes - before.device_bytes, expect);
            CHECK_EQ_U64(free_before - device_free_bytes(NULL), expect);
            CHECK_OK(aclrtFree(p));
            CHECK_EQ_U64(counters_now().device_bytes, before.device_bytes);
            CHECK_EQ_U64(device_free_bytes(NULL), free_before);
        }
    }
    /* the size accounting of a few blocks at once */
    void *a = device_alloc(1), *b = device_alloc(33), *c = NULL;
    CHECK_OK(aclrtMallocAlign32(&c, 1000, ACL_MEM_MALLOC_NORMAL_ONLY));
    CHECK_EQ_U64(counters_now().device_bytes, 64 + 96 + 1024);
    CHECK_EQ_U64(counters_now().device_allocations, 3);
    CHECK(a != b && b != c && a != c);
    CHECK_OK(aclrtFree(a));
    CHECK_OK(aclrtFree(b));
    CHECK_OK(aclrtFree(c));
    teardown();
}

TEST(malloc_checked_mode_fills)
{
    setup();
    CHECK(profile_now().checked == 1);
    const size_t n = 1000;
    unsigned char *back = xmalloc(n);
    void *p = device_alloc(n), *q = NULL;
    CHECK_OK(aclrtMallocAlign32(&q, n, ACL_MEM_MALLOC_HUGE_FIRST));
    memset(back, 0, n);
    read_device(back, p, n);
    CHECK(all_bytes(back, n, 0xA5));
    memset(back, 0, n);
    read_device(back, q, n);
    CHECK(all_bytes(back, n, 0xA5));
    /* written data is what comes back */
    unsigned char *src = xmalloc(n);
    fill(src, n, 9);
    write_device(p, src, n);
    read_device(back, p, n);
    CHECK(matches(back, n, 9));
    CHECK_OK(aclrtFree(p));
    CHECK_OK(aclrtFree(q));
    free(src);
    free(back);
    teardown();
}

TEST(malloc_out_of_memory)
{
    setup();
    size_t total = 0, free0 = device_free_bytes(&total);
    CHECK_EQ_U64(total, 24 * GIB);
    void *p = NULL;
    double t0 = now_ms();
    CHECK_FAIL_MSG(aclrtMalloc(&p, (size_t)30 << 30, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMalloc");
    CHECK_FAIL_MSG(aclrtMallocAlign32(&p, (size_t)30 << 30, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMallocAlign32");
    CHECK_CODE(aclrtMalloc(&p, SIZE_MAX, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_MEMORY_ALLOCATION);
    CHECK_CODE(aclrtMalloc(&p, SIZE_MAX - 31, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_MEMORY_ALLOCATION);
    check_ms("failing allocations", now_ms() - t0, 0, 500);   /* nothing was really allocated */
    CHECK(p == NULL);
    CHECK_EQ_U64(counters_now().device_allocations, 0);
    CHECK_EQ_U64(device_free_bytes(NULL), free0);

    /* the exact limit, with live blocks counted, is in malloc_exact_device_memory_limit */
    teardown();
}

TEST(malloc_exact_device_memory_limit)
{
    /* A 1 MiB device (a profile file, read at the first call into the library below), so
     * that the exact limit can be tested without real allocations of GiBs. */
    char *path = write_temp_file("base atlas-300i-pro\ndevice_memory_mb 1\n");
    CHECK(setenv("FASTEXEC_EMU_PROFILE", path, 1) == 0);
    setup();
    CHECK(remove(path) == 0);   /* read once, at the first call */
    free(path);
    const size_t mib = (size_t)1 << 20;
    size_t total = 0;
    CHECK_EQ_U64(device_free_bytes(&total), mib);
    CHECK_EQ_U64(total, mib);
    void *p = NULL, *q = NULL, *r = NULL;
    CHECK_FAIL_MSG(aclrtMalloc(&p, mib - 31, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMalloc");   /* 1 MiB + 32 */
    CHECK_FAIL_MSG(aclrtMallocAlign32(&p, mib + 1, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMallocAlign32");
    CHECK(p == NULL);
    /* exactly all of it, padding included */
    CHECK_OK(aclrtMalloc(&p, mib - 32, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_EQ_U64(device_free_bytes(NULL), 0);
    CHECK_FAIL_MSG(aclrtMallocAlign32(&q, 1, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMallocAlign32");
    CHECK_OK(aclrtFree(p));
    /* live blocks count against the limit */
    CHECK_OK(aclrtMallocAlign32(&p, mib / 2, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_OK(aclrtMalloc(&q, mib / 4 - 32, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_EQ_U64(device_free_bytes(NULL), mib / 4);
    CHECK_CODE(aclrtMalloc(&r, mib / 4 - 31, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_MEMORY_ALLOCATION);
    CHECK_OK(aclrtMallocAlign32(&r, mib / 4 - 31, ACL_MEM_MALLOC_HUGE_FIRST));   /* rounds up to exactly what is left */
    CHECK_EQ_U64(device_free_bytes(NULL), 0);
    CHECK_OK(aclrtFree(q));
    CHECK_EQ_U64(device_free_bytes(NULL), mib / 4);
    CHECK_OK(aclrtFree(p));
    CHECK_OK(aclrtFree(r));
    CHECK_EQ_U64(device_free_bytes(NULL), mib);
    teardown();
}

TEST_ENV(malloc_out_of_memory_ipv350, "FASTEXEC_EMU_PROFILE=ipv350")
{
    setup();
    size_t total = 0;
    CHECK_EQ_U64(device_free_bytes(&total), 4 * GIB);
    CHECK_EQ_U64(total, 4 * GIB);
    void *p = NULL;
    CHECK_FAIL_MSG(aclrtMalloc(&p, (size_t)5 << 30, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMalloc");
    CHECK(p == NULL);
    teardown();
}

TEST(meminfo)
{
    setup();
    size_t f = 0, t = 0;
    CHECK_OK(aclrtGetMemInfo(ACL_DDR_MEM, &f, &t));
    CHECK_EQ_U64(t, profile_now().device_memory_bytes);
    CHECK_EQ_U64(f, t);
    CHECK_OK(aclrtGetMemInfo(ACL_HBM_MEM, &f, &t));
    CHECK_EQ_U64(f, t);
    void *a = device_alloc(100);   /* 160 */
    void *b = NULL;
    CHECK_OK(aclrtMallocAlign32(&b, 100, ACL_MEM_MALLOC_HUGE_FIRST));   /* 128 */
    CHECK_OK(aclrtGetMemInfo(ACL_HBM_MEM, &f, &t));
    CHECK_EQ_U64(t, 24 * GIB);
    CHECK_EQ_U64(t - f, 160 + 128);
    /* pinned host memory is not device memory */
    void *h = pinned_alloc(4096);
    CHECK_OK(aclrtGetMemInfo(ACL_HBM_MEM, &f, &t));
    CHECK_EQ_U64(t - f, 160 + 128);
    CHECK_OK(aclrtFreeHost(h));
    CHECK_OK(aclrtFree(a));
    CHECK_OK(aclrtGetMemInfo(ACL_HBM_MEM, &f, &t));
    CHECK_EQ_U64(t - f, 128);
    CHECK_OK(aclrtFree(b));
    CHECK_OK(aclrtGetMemInfo(ACL_HBM_MEM, &f, &t));
    CHECK_EQ_U64(f, t);
    CHECK_FAIL_MSG(aclrtGetMemInfo(ACL_HBM_MEM, NULL, &t), ACL_ERROR_INVALID_PARAM, "aclrtGetMemInfo");
    CHECK_FAIL_MSG(aclrtGetMemInfo(ACL_HBM_MEM, &f, NULL), ACL_ERROR_INVALID_PARAM, "aclrtGetMemInfo");
    CHECK_FAIL_MSG(aclrtGetMemInfo((aclrtMemAttr)99, &f, &t), ACL_ERROR_INVALID_PARAM, "aclrtGetMemInfo");
    teardown();
}

TEST(free_errors)
{
    setup();
    void *p = device_alloc(256);
    void *h = pinned_alloc(256);
    unsigned char *pageable = xmalloc(256);
    unsigned char stack_buf[64];
    CHECK_FAIL_MSG(aclrtFree(NULL), ACL_ERROR_INVALID_PARAM, "aclrtFree");
    CHECK_FAIL_MSG(aclrtFree((char *)p + 64), ACL_ERROR_RT_PARAM_INVALID, "aclrtFree");   /* inside a block */
    CHECK_FAIL_MSG(aclrtFree(pageable), ACL_ERROR_RT_PARAM_INVALID, "aclrtFree");
    CHECK_FAIL_MSG(aclrtFree(stack_buf), ACL_ERROR_RT_PARAM_INVALID, "aclrtFree");
    CHECK_FAIL_MSG(aclrtFree(h), ACL_ERROR_RT_PARAM_INVALID, "aclrtFree");                /* pinned host memory */
    /* the failed frees released nothing */
    fxemuCounters k = counters_now();
    CHECK_EQ_U64(k.device_allocations, 1);
    CHECK_EQ_U64(k.host_allocations, 1);
    unsigned char src[256], back[256];
    fill(src, sizeof src, 4);
    write_device(p, src, sizeof src);
    read_device(back, p, sizeof back);
    CHECK(matches(back, sizeof back, 4));
    CHECK_OK(aclrtFree(p));
    CHECK_FAIL_MSG(aclrtFree(p), ACL_ERROR_RT_PARAM_INVALID, "aclrtFree");                /* double free */
    CHECK_EQ_U64(counters_now().device_allocations, 0);
    CHECK_OK(aclrtFreeHost(h));
    free(pageable);
    teardown();
}

TEST(malloc_host)
{
    setup();
    void *h = NULL;
    CHECK_FAIL_MSG(aclrtMallocHost(&h, 0), ACL_ERROR_INVALID_PARAM, "aclrtMallocHost");
    CHECK_FAIL_MSG(aclrtMallocHost(NULL, 64), ACL_ERROR_INVALID_PARAM, "aclrtMallocHost");
    CHECK(h == NULL);
    CHECK_EQ_U64(counters_now().host_allocations, 0);
    const size_t sizes[] = {1, 100, 4096, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        h = pinned_alloc(n);
        CHECK((uintptr_t)h % 64 == 0);
        fxemuCounters k = counters_now();
        CHECK_EQ_U64(k.host_allocations, 1);
        CHECK(k.host_bytes >= n);
        CHECK_EQ_U64(k.device_allocations, 0);
        fill(h, n, (unsigned)i);   /* the host can use all of it */
        CHECK(matches(h, n, (unsigned)i));
        CHECK_OK(aclrtFreeHost(h));
        CHECK_EQ_U64(counters_now().host_allocations, 0);
        CHECK_EQ_U64(counters_now().host_bytes, 0);
    }
    void *dev = device_alloc(64);
    unsigned char *pageable = xmalloc(64);
    h = pinned_alloc(256);
    CHECK_FAIL_MSG(aclrtFreeHost(NULL), ACL_ERROR_INVALID_PARAM, "aclrtFreeHost");
    CHECK_FAIL_MSG(aclrtFreeHost(dev), ACL_ERROR_RT_PARAM_INVALID, "aclrtFreeHost");
    CHECK_FAIL_MSG(aclrtFreeHost((char *)h + 1), ACL_ERROR_RT_PARAM_INVALID, "aclrtFreeHost");
    CHECK_FAIL_MSG(aclrtFreeHost(pageable), ACL_ERROR_RT_PARAM_INVALID, "aclrtFreeHost");
    CHECK_EQ_U64(counters_now().host_allocations, 1);
    CHECK_OK(aclrtFreeHost(h));
    CHECK_FAIL_MSG(aclrtFreeHost(h), ACL_ERROR_RT_PARAM_INVALID, "aclrtFreeHost");   /* double free */
    CHECK_OK(aclrtFree(dev));
    free(pageable);
    teardown();
}

/* ================================================================ memcpy */

TEST(memcpy_count_zero)
{
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    for (int k = ACL_MEMCPY_HOST_TO_HOST; k <= ACL_MEMCPY_DEFAULT; k++) {
        CHECK_OK(aclrtMemcpy(NULL, 0, NULL, 0, (aclrtMemcpyKind)k));
        CHECK_OK(aclrtMemcpyAsync(NULL, 0, NULL, 0, (aclrtMemcpyKind)k, s));
        CHECK_OK(aclrtMemcpyAsync(NULL, 0, NULL, 0, (aclrtMemcpyKind)k, NULL));
    }
    no_pending_message();
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK_OK(aclrtDestroyStream(s));
    teardown();
}

TEST(memcpy_count_exceeds_destmax)
{
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    void *dev = device_alloc(256);
    void *pinned = pinned_alloc(256);
    unsigned char host[256];
    fill(host, sizeof host, 1);
    CHECK_FAIL_MSG(aclrtMemcpy(dev, 64, host, 65, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID, "aclrtMemcpy");
    CHECK_FAIL_MSG(aclrtMemcpy(host, 10, dev, 11, ACL_MEMCPY_DEVICE_TO_HOST), ACL_ERROR_RT_PARAM_INVALID, "destMax");
    CHECK_FAIL_MSG(aclrtMemcpyAsync(dev, 64, pinned, 65, ACL_MEMCPY_HOST_TO_DEVICE, s), ACL_ERROR_RT_PARAM_INVALID, "aclrtMemcpyAsync");
    CHECK_FAIL_MSG(aclrtMemcpyAsync(dev, 0, pinned, 1, ACL_MEMCPY_HOST_TO_DEVICE, s), ACL_ERROR_RT_PARAM_INVALID, "aclrtMemcpyAsync");
    CHECK_OK(aclrtSynchronizeStream(s));
    /* nothing was copied */
    unsigned char back[256];
    read_device(back, dev, sizeof back);
    CHECK(all_bytes(back, sizeof back, 0xA5));
    /* count == destMax is fine */
    CHECK_OK(aclrtMemcpy(dev, 64, host, 64, ACL_MEMCPY_HOST_TO_DEVICE));
    read_device(back, dev, 64);
    CHECK(matches(back, 64, 1));
    CHECK_OK(aclrtFree(dev));
    CHECK_OK(aclrtFreeHost(pinned));
    CHECK_OK(aclrtDestroyStream(s));
    teardown();
}

TEST(memcpy_null_pointers)
{
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    void *dev = device_alloc(64);
    void *pinned = pinned_alloc(64);
    CHECK_FAIL_MSG(aclrtMemcpy(NULL, 64, pinned, 64, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID, "aclrtMemcpy");
    CHECK_FAIL_MSG(aclrtMemcpy(dev, 64, NULL, 64, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID, "aclrtMemcpy");
    CHECK_FAIL_MSG(aclrtMemcpyAsync(NULL, 64, dev, 64, ACL_MEMCPY_DEVICE_TO_HOST, s), ACL_ERROR_RT_PARAM_INVALID, "aclrtMemcpyAsync");
    CHECK_FAIL_MSG(aclrtMemcpyAsync(pinned, 64, NULL, 64, ACL_MEMCPY_DEVICE_TO_HOST, s), ACL_ERROR_RT_PARAM_INVALID, "aclrtMemcpyAsync");
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK_OK(aclrtFree(dev));
    CHECK_OK(aclrtFreeHost(pinned));
    CHECK_OK(aclrtDestroyStream(s));
    teardown();
}

TEST(memcpy_kinds_6_and_7_rejected)
{
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    void *a = device_alloc(64), *b = device_alloc(64);
    CHECK_FAIL_MSG(aclrtMemcpy(b, 64, a, 64, ACL_MEMCPY_INNER_DEVICE_TO_DEVICE), ACL_ERROR_INVALID_PARAM, "aclrtMemcpy");
    CHECK_FAIL_MSG(aclrtMemcpy(b, 64, a, 64, ACL_MEMCPY_INTER_DEVICE_TO_DEVICE), ACL_ERROR_INVALID_PARAM, "aclrtMemcpy");
    CHECK_FAIL_MSG(aclrtMemcpyAsync(b, 64, a, 64, ACL_MEMCPY_INNER_DEVICE_TO_DEVICE, s), ACL_ERROR_INVALID_PARAM, "aclrtMemcpyAsync");
    CHECK_FAIL_MSG(aclrtMemcpyAsync(b, 64, a, 64, ACL_MEMCPY_INTER_DEVICE_TO_DEVICE, s), ACL_ERROR_INVALID_PARAM, "aclrtMemcpyAsync");
    CHECK_CODE(aclrtMemcpy(b, 64, a, 64, (aclrtMemcpyKind)8), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtMemcpy(b, 64, a, 64, (aclrtMemcpyKind)-1), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK_OK(aclrtFree(a));
    CHECK_OK(aclrtFree(b));
    CHECK_OK(aclrtDestroyStream(s));
    teardown();
}

TEST(memcpy_direction_checked)
{
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    const size_t n = 128;
    void *dev = device_alloc(n), *dev2 = device_alloc(n), *pinned = pinned_alloc(n);
    unsigned char *pageable = xmalloc(n), *pageable2 = xmalloc(n);
    fill(pageable, n, 2);
    fill(pinned, n, 3);
    /* host-to-device into host memory: dst is wrong */
    CHECK_FAIL_MSG3(aclrtMemcpy(pageable2, n, pageable, n, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID, "dst", "pageable host memory", "src");
    CHECK_FAIL_MSG3(aclrtMemcpy(pinned, n, pageable, n, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID, "dst", "pinned host memory", "src");
    /* device-to-host from host memory: src is wrong */
    CHECK_FAIL_MSG3(aclrtMemcpy(pageable2, n, pageable, n, ACL_MEMCPY_DEVICE_TO_HOST), ACL_ERROR_RT_PARAM_INVALID, "src", "pageable host memory", "dst");
    CHECK_FAIL_MSG3(aclrtMemcpy(pageable2, n, pinned, n, ACL_MEMCPY_DEVICE_TO_HOST), ACL_ERROR_RT_PARAM_INVALID, "src", "pinned host memory", "dst");
    /* the reverse mistakes */
    CHECK_FAIL_MSG3(aclrtMemcpy(dev, n, dev2, n, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID, "src", "device memory", "dst");
    CHECK_FAIL_MSG3(aclrtMemcpy(dev, n, dev2, n, ACL_MEMCPY_DEVICE_TO_HOST), ACL_ERROR_RT_PARAM_INVALID, "dst", "device memory", "src");
    CHECK_FAIL_MSG3(aclrtMemcpy(dev, n, pageable, n, ACL_MEMCPY_DEVICE_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID, "src", "pageable host memory", "dst");
    CHECK_FAIL_MSG3(aclrtMemcpy(pageable2, n, dev, n, ACL_MEMCPY_DEVICE_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID, "dst", "pageable host memory", "src");
    CHECK_FAIL_MSG3(aclrtMemcpy(dev, n, pageable, n, ACL_MEMCPY_HOST_TO_HOST), ACL_ERROR_RT_PARAM_INVALID, "dst", "device memory", "src");
    /* the same checks apply to the asynchronous copy */
    CHECK_FAIL_MSG3(aclrtMemcpyAsync(pageable2, n, pinned, n, ACL_MEMCPY_HOST_TO_DEVICE, s), ACL_ERROR_RT_PARAM_INVALID, "dst", "pageable host memory", "src");
    CHECK_FAIL_MSG3(aclrtMemcpyAsync(pageable2, n, pinned, n, ACL_MEMCPY_DEVICE_TO_HOST, s), ACL_ERROR_RT_PARAM_INVALID, "src", "pinned host memory", "dst");
    CHECK_OK(aclrtSynchronizeStream(s));
    /* nothing was copied anywhere */
    CHECK(matches(pinned, n, 3));
    unsigned char back[128];
    read_device(back, dev, n);
    CHECK(all_bytes(back, n, 0xA5));
    CHECK_OK(aclrtFree(dev));
    CHECK_OK(aclrtFree(dev2));
    CHECK_OK(aclrtFreeHost(pinned));
    CHECK_OK(aclrtDestroyStream(s));
    free(pageable);
    free(pageable2);
    teardown();
}

TEST(memcpy_round_trips)
{
    setup();
    const size_t sizes[] = {1, 33, 4099, (1u << 20) + 7};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned seed = 20 + (unsigned)i;
        unsigned char *src = xmalloc(n), *dst = xmalloc(n);
        void *d1 = device_alloc(n + 128), *d2 = device_alloc(n), *p1 = pinned_alloc(n), *p2 = pinned_alloc(n);
        fill(src, n, seed);
        memset(dst, 0, n);
        /* pageable -> device (at an offset) -> device -> pinned -> pageable */
        CHECK_OK(aclrtMemcpy((char *)d1 + 64, n, src, n, ACL_MEMCPY_HOST_TO_DEVICE));
        CHECK_OK(aclrtMemcpy(d2, n, (char *)d1 + 64, n, ACL_MEMCPY_DEVICE_TO_DEVICE));
        CHECK_OK(aclrtMemcpy(p1, n, d2, n, ACL_MEMCPY_DEVICE_TO_HOST));
        CHECK(matches(p1, n, seed));
        CHECK_OK(aclrtMemcpy(dst, n, p1, n, ACL_MEMCPY_HOST_TO_HOST));
        CHECK(matches(dst, n, seed));
        /* pinned -> device -> pageable; pageable -> pinned host-to-host */
        fill(p2, n, seed + 100);
        CHECK_OK(aclrtMemcpy(d2, n, p2, n, ACL_MEMCPY_HOST_TO_DEVICE));
        CHECK_OK(aclrtMemcpy(dst, n, d2, n, ACL_MEMCPY_DEVICE_TO_HOST));
        CHECK(matches(dst, n, seed + 100));
        CHECK_OK(aclrtMemcpy(p1, n, src, n, ACL_MEMCPY_HOST_TO_HOST));
        CHECK(matches(p1, n, seed));
        /* the bytes around the offset copy were not touched */
        unsigned char guard[64];
        read_device(guard, d1, 64);
        CHECK(all_bytes(guard, 64, 0xA5));
        read_device(guard, (char *)d1 + 64 + n, 64);
        CHECK(all_bytes(guard, 64, 0xA5));
        /* the HOST_TO_BUF_TO_DEVICE kind is a host-to-device copy */
        CHECK_OK(aclrtMemcpy(d2, n, src, n, ACL_MEMCPY_HOST_TO_BUF_TO_DEVICE));
        memset(dst, 0, n);
        read_device(dst, d2, n);
        CHECK(matches(dst, n, seed));
        /* dst == src is a no-op */
        CHECK_OK(aclrtMemcpy(d2, n, d2, n, ACL_MEMCPY_DEVICE_TO_DEVICE));
        read_device(dst, d2, n);
        CHECK(matches(dst, n, seed));
        CHECK_OK(aclrtFree(d1));
        CHECK_OK(aclrtFree(d2));
        CHECK_OK(aclrtFreeHost(p1));
        CHECK_OK(aclrtFreeHost(p2));
        free(src);
        free(dst);
    }
    teardown();
}

TEST(memcpy_default_kind_infers_direction)
{
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    const size_t n = 3000;
    unsigned char *src = xmalloc(n), *dst = xmalloc(n);
    void *d1 = device_alloc(n), *d2 = device_alloc(n), *p = pinned_alloc(n);
    fill(src, n, 31);
    CHECK_OK(aclrtMemcpy(d1, n, src, n, ACL_MEMCPY_DEFAULT));    /* host -> device */
    CHECK_OK(aclrtMemcpy(d2, n, d1, n, ACL_MEMCPY_DEFAULT));     /* device -> device */
    CHECK_OK(aclrtMemcpy(p, n, d2, n, ACL_MEMCPY_DEFAULT));      /* device -> host */
    CHECK(matches(p, n, 31));
    memset(dst, 0, n);
    CHECK_OK(aclrtMemcpy(dst, n, p, n, ACL_MEMCPY_DEFAULT));     /* host -> host */
    CHECK(matches(dst, n, 31));
    /* asynchronously, through pinned memory */
    fill(p, n, 32);
    CHECK_OK(aclrtMemcpyAsync(d1, n, p, n, ACL_MEMCPY_DEFAULT, s));
    CHECK_OK(aclrtMemcpyAsync(d2, n, d1, n, ACL_MEMCPY_DEFAULT, s));
    CHECK_OK(aclrtMemsetAsync(p, n, 0, n, s));
    CHECK_OK(aclrtMemcpyAsync(p, n, d2, n, ACL_MEMCPY_DEFAULT, s));
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK(matches(p, n, 32));
    CHECK_OK(aclrtFree(d1));
    CHECK_OK(aclrtFree(d2));
    CHECK_OK(aclrtFreeHost(p));
    CHECK_OK(aclrtDestroyStream(s));
    free(src);
    free(dst);
    teardown();
}

TEST(memcpy_range_past_block_end)
{
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    void *dev = device_alloc(1000);   /* 1056 usable bytes at most */
    void *pinned = pinned_alloc(8192);
    unsigned char *host = xmalloc(8192);
    fill(host, 8192, 5);
    CHECK_FAIL_MSG3(aclrtMemcpy(dev, 8192, host, 4096, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID, "dst", "past the end", NULL);
    CHECK_FAIL_MSG3(aclrtMemcpy((char *)dev + 1000, 200, host, 100, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID, "dst", "past the end",
                    NULL);
    CHECK_FAIL_MSG3(aclrtMemcpy(host, 8192, (char *)dev + 1000, 100, ACL_MEMCPY_DEVICE_TO_HOST), ACL_ERROR_RT_PARAM_INVALID, "src", "past the end",
                    NULL);
    CHECK_FAIL_MSG3(aclrtMemcpy(host, 8192, (char *)pinned + 8000, 300, ACL_MEMCPY_HOST_TO_HOST), ACL_ERROR_RT_PARAM_INVALID, "src", "past the end",
                    NULL);
    CHECK_FAIL_MSG3(aclrtMemcpyAsync(dev, 8192, pinned, 4096, ACL_MEMCPY_HOST_TO_DEVICE, s), ACL_ERROR_RT_PARAM_INVALID, "dst", "past the end", NULL);
    CHECK_FAIL_MSG3(aclrtMemcpyAsync(pinned, 8192, (char *)dev + 512, 1024, ACL_MEMCPY_DEVICE_TO_HOST, s), ACL_ERROR_RT_PARAM_INVALID, "src",
                    "past the end", NULL);
    CHECK_OK(aclrtSynchronizeStream(s));
    /* nothing half done */
    unsigned char back[1000];
    read_device(back, dev, sizeof back);
    CHECK(all_bytes(back, sizeof back, 0xA5));
    /* the requested size itself is fine */
    CHECK_OK(aclrtMemcpy(dev, 1000, host, 1000, ACL_MEMCPY_HOST_TO_DEVICE));
    read_device(back, dev, sizeof back);
    CHECK(matches(back, sizeof back, 5));
    CHECK_OK(aclrtFree(dev));
    CHECK_OK(aclrtFreeHost(pinned));
    CHECK_OK(aclrtDestroyStream(s));
    free(host);
    teardown();
}

TEST(memcpy_async_host_to_host_unsupported)
{
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    void *p1 = pinned_alloc(64), *p2 = pinned_alloc(64);
    unsigned char a[64], b[64];
    fill(a, sizeof a, 6);
    memset(b, 0, sizeof b);
    fill(p1, 64, 7);
    memset(p2, 0, 64);
    CHECK_FAIL_MSG(aclrtMemcpyAsync(b, sizeof b, a, sizeof a, ACL_MEMCPY_HOST_TO_HOST, s), ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtMemcpyAsync");
    CHECK_FAIL_MSG(aclrtMemcpyAsync(p2, 64, p1, 64, ACL_MEMCPY_HOST_TO_HOST, s), ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtMemcpyAsync");
    CHECK_FAIL_MSG(aclrtMemcpyAsync(p2, 64, p1, 64, ACL_MEMCPY_DEFAULT, s), ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtMemcpyAsync");
    CHECK_FAIL_MSG(aclrtMemcpyAsync(p2, 64, a, 64, ACL_MEMCPY_HOST_TO_HOST, NULL), ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtMemcpyAsync");
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK(all_bytes(b, sizeof b, 0));
    CHECK(all_bytes(p2, 64, 0));
    CHECK_OK(aclrtFreeHost(p1));
    CHECK_OK(aclrtFreeHost(p2));
    CHECK_OK(aclrtDestroyStream(s));
    teardown();
}

TEST(memcpy_async_round_trip)
{
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    const size_t n = 70000;
    void *src = pinned_alloc(n), *dst = pinned_alloc(n), *d1 = device_alloc(n), *d2 = device_alloc(n);
    for (int pass = 0; pass < 2; pass++) {
        aclrtStream use = pass ? NULL : s;   /* NULL: the default stream */
        unsigned seed = 40 + (unsigned)pass;
        fill(src, n, seed);
        memset(dst, 0, n);
        CHECK_OK(aclrtMemcpyAsync(d1, n, src, n, ACL_MEMCPY_HOST_TO_DEVICE, use));
        CHECK_OK(aclrtMemcpyAsync(d2, n, d1, n, ACL_MEMCPY_DEVICE_TO_DEVICE, use));
        CHECK_OK(aclrtMemcpyAsync(dst, n, d2, n, ACL_MEMCPY_DEVICE_TO_HOST, use));
        CHECK_OK(aclrtSynchronizeStream(use));
        CHECK(matches(dst, n, seed));
    }
    CHECK_OK(aclrtFree(d1));
    CHECK_OK(aclrtFree(d2));
    CHECK_OK(aclrtFreeHost(src));
    CHECK_OK(aclrtFreeHost(dst));
    CHECK_OK(aclrtDestroyStream(s));
    teardown();
}

TEST(memcpy_async_pageable_waits_for_stream)
{
    /* With pageable host memory the runtime synchronizes the stream first, then copies
     * synchronously: the data is in place when the call returns. The stall keeps the
     * stream busy so that a plain enqueue would be caught. */
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    const size_t n = 5000;
    void *pinned = pinned_alloc(n), *d1 = device_alloc(n), *d2 = device_alloc(n);
    unsigned char *pageable_src = xmalloc(n), *pageable_dst = xmalloc(n), *back = xmalloc(n);
    fill(pinned, n, 51);
    fill(pageable_src, n, 52);
    memset(pageable_dst, 0, n);

    CHECK_OK(fxemuStallStream(s, 50));
    CHECK_OK(aclrtMemcpyAsync(d1, n, pinned, n, ACL_MEMCPY_HOST_TO_DEVICE, s));   /* queued behind the stall */
    CHECK_OK(aclrtMemcpyAsync(pageable_dst, n, d1, n, ACL_MEMCPY_DEVICE_TO_HOST, s));
    CHECK(matches(pageable_dst, n, 51));   /* the earlier queued copy ran first, and this one is done */
    aclrtStreamStatus st = ACL_STREAM_STATUS_NOT_READY;
    CHECK_OK(aclrtStreamQuery(s, &st));
    CHECK(st == ACL_STREAM_STATUS_COMPLETE);

    CHECK_OK(fxemuStallStream(s, 50));
    CHECK_OK(aclrtMemsetAsync(d2, n, 0x11, n, s));
    CHECK_OK(aclrtMemcpyAsync(d2, n, pageable_src, n, ACL_MEMCPY_HOST_TO_DEVICE, s));
    /* no synchronisation: a synchronous read sees the copy, not the memset before it */
    read_device(back, d2, n);
    CHECK(matches(back, n, 52));
    CHECK_OK(aclrtStreamQuery(s, &st));
    CHECK(st == ACL_STREAM_STATUS_COMPLETE);

    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK_OK(aclrtFree(d1));
    CHECK_OK(aclrtFree(d2));
    CHECK_OK(aclrtFreeHost(pinned));
    CHECK_OK(aclrtDestroyStream(s));
    free(pageable_src);
    free(pageable_dst);
    free(back);
    teardown();
}

TEST_ENV(timing_memcpy_async_pageable_is_synchronous, "FASTEXEC_EMU_FAST=0 FASTEXEC_EMU_PROFILE=slow-link")
{
    fxemuProfile prof = profile_now();
    CHECK(prof.fast == 0);
    CHECK(prof.h2d_gbps == 1.0 && prof.d2h_gbps == 1.0);
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    const size_t n = (size_t)4 << 20;   /* 4 MiB: 4.19 ms at 1 GB/s (+10 us latency, +5 us launch) */
    void *dev = device_alloc(n), *pinned = pinned_alloc(n);
    unsigned char *src = xmalloc(n), *back = xmalloc(n);
    fill(src, n, 61);
    memset(back, 0, n);

    /* pageable source / destination: the call returns when the copy is done */
    double t0 = now_ms();
    CHECK_OK(aclrtMemcpyAsync(dev, n, src, n, ACL_MEMCPY_HOST_TO_DEVICE, s));
    double h2d = now_ms() - t0;
    t0 = now_ms();
    CHECK_OK(aclrtMemcpyAsync(back, n, dev, n, ACL_MEMCPY_DEVICE_TO_HOST, s));
    double d2h = now_ms() - t0;
    CHECK(matches(back, n, 61));   /* in place on return */
    check_ms("aclrtMemcpyAsync H2D from pageable memory", h2d, 3.5, 250);
    check_ms("aclrtMemcpyAsync D2H into pageable memory", d2h, 3.5, 250);

    /* pinned source: the call only enqueues; the stream synchronisation waits for the copy.
     * The best of three enqueues must be fast (the machine is shared and noisy). */
    fill(pinned, n, 62);
    double best_enqueue = 1e9, sync_of_best = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        t0 = now_ms();
        CHECK_OK(aclrtMemcpyAsync(dev, n, pinned, n, ACL_MEMCPY_HOST_TO_DEVICE, s));
        double t1 = now_ms();
        CHECK_OK(aclrtSynchronizeStream(s));
        double t2 = now_ms();
        check_ms("pinned aclrtMemcpyAsync + aclrtSynchronizeStream", t2 - t0, 3.5, 250);
        if (t1 - t0 < best_enqueue) {
            best_enqueue = t1 - t0;
            sync_of_best = t2 - t1;
        }
    }
    check_ms("best enqueue of a pinned aclrtMemcpyAsync", best_enqueue, 0, 1.0);
    check_ms("aclrtSynchronizeStream after that enqueue", sync_of_best, 2.5, 250);

    /* the synchronous copy takes its modelled time too, and the pinned data arrived */
    memset(back, 0, n);
    t0 = now_ms();
    read_device(back, dev, n);
    check_ms("aclrtMemcpy D2H", now_ms() - t0, 3.5, 250);
    CHECK(matches(back, n, 62));

    /* events report the modelled device time of the copy */
    aclrtEvent e0, e1;
    CHECK_OK(aclrtCreateEvent(&e0));
    CHECK_OK(aclrtCreateEvent(&e1));
    CHECK_OK(aclrtRecordEvent(e0, s));
    CHECK_OK(aclrtMemcpyAsync(dev, n, pinned, n, ACL_MEMCPY_HOST_TO_DEVICE, s));
    CHECK_OK(aclrtRecordEvent(e1, s));
    CHECK_OK(aclrtSynchronizeEvent(e1));
    float ms = 0;
    CHECK_OK(aclrtEventElapsedTime(&ms, e0, e1));
    check_ms("modelled 4 MiB copy at 1 GB/s (event elapsed time)", ms, 4.15, 10.0);

    CHECK_OK(aclrtDestroyEvent(e0));
    CHECK_OK(aclrtDestroyEvent(e1));
    CHECK_OK(aclrtFree(dev));
    CHECK_OK(aclrtFreeHost(pinned));
    CHECK_OK(aclrtDestroyStream(s));
    free(src);
    free(back);
    teardown();
}

/* ================================================================ memset */

TEST(memset_sync)
{
    setup();
    const size_t n = 1000;
    void *dev = device_alloc(n), *pinned = pinned_alloc(n);
    unsigned char *pageable = xmalloc(n), *back = xmalloc(n);
    CHECK_OK(aclrtMemset(dev, n, 0x5A, n));
    read_device(back, dev, n);
    CHECK(all_bytes(back, n, 0x5A));
    CHECK_OK(aclrtMemset((char *)dev + 10, n - 10, 0, 20));
    read_device(back, dev, n);
    CHECK(all_bytes(back, 10, 0x5A) && all_bytes(back + 10, 20, 0) && all_bytes(back + 30, n - 30, 0x5A));
    /* pinned host memory from ACL may be set too */
    CHECK_OK(aclrtMemset(pinned, n, 0x77, n));
    CHECK(all_bytes(pinned, n, 0x77));
    /* count 0 does nothing, even with a NULL pointer */
    CHECK_OK(aclrtMemset(dev, n, 0x01, 0));
    CHECK_OK(aclrtMemset(NULL, 0, 0x01, 0));
    read_device(back, dev, n);
    CHECK(back[0] == 0x5A);

    CHECK_FAIL_MSG(aclrtMemset(dev, 16, 0x33, 17), ACL_ERROR_RT_PARAM_INVALID, "aclrtMemset");
    CHECK_FAIL_MSG(aclrtMemset(NULL, n, 0x33, n), ACL_ERROR_INVALID_PARAM, "aclrtMemset");
    memset(pageable, 0x44, n);
    CHECK_FAIL_MSG(aclrtMemset(pageable, n, 0x33, n), ACL_ERROR_RT_PARAM_INVALID, "aclrtMemset");
    CHECK(all_bytes(pageable, n, 0x44));
    CHECK_FAIL_MSG3(aclrtMemset((char *)dev + 900, 4096, 0x33, 4096), ACL_ERROR_RT_PARAM_INVALID, "aclrtMemset", "past the end", NULL);
    read_device(back, dev, n);
    CHECK(all_bytes(back, 10, 0x5A) && all_bytes(back + 10, 20, 0) && all_bytes(back + 30, n - 30, 0x5A));   /* unchanged */
    CHECK_OK(aclrtFree(dev));
    CHECK_OK(aclrtFreeHost(pinned));
    free(pageable);
    free(back);
    teardown();
}

TEST(memset_async)
{
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    const size_t n = 4096;
    void *dev = device_alloc(n), *pinned = pinned_alloc(n);
    unsigned char *pageable = xmalloc(n);
    fill(pinned, n, 71);
    CHECK_OK(aclrtMemcpyAsync(dev, n, pinned, n, ACL_MEMCPY_HOST_TO_DEVICE, s));
    CHECK_OK(aclrtMemsetAsync((char *)dev + 100, n - 100, 0xC3, 200, s));
    CHECK_OK(aclrtMemsetAsync(dev, n, 0x00, 0, s));   /* count 0 */
    CHECK_OK(aclrtMemcpyAsync(pinned, n, dev, n, ACL_MEMCPY_DEVICE_TO_HOST, s));
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK(matches_range(pinned, 0, 100, 71));
    CHECK(all_bytes((unsigned char *)pinned + 100, 200, 0xC3));
    CHECK(matches_range(pinned, 300, n, 71));
    /* the default stream */
    CHECK_OK(aclrtMemsetAsync(dev, n, 0x0F, n, NULL));
    CHECK_OK(aclrtSynchronizeStream(NULL));
    CHECK_OK(aclrtMemcpy(pinned, n, dev, n, ACL_MEMCPY_DEVICE_TO_HOST));
    CHECK(all_bytes(pinned, n, 0x0F));

    CHECK_FAIL_MSG(aclrtMemsetAsync(dev, 16, 0x33, 17, s), ACL_ERROR_RT_PARAM_INVALID, "aclrtMemsetAsync");
    CHECK_FAIL_MSG(aclrtMemsetAsync(NULL, n, 0x33, n, s), ACL_ERROR_INVALID_PARAM, "aclrtMemsetAsync");
    memset(pageable, 0x44, n);
    CHECK_FAIL_MSG(aclrtMemsetAsync(pageable, n, 0x33, n, s), ACL_ERROR_RT_PARAM_INVALID, "aclrtMemsetAsync");
    CHECK_FAIL_MSG3(aclrtMemsetAsync((char *)dev + 4000, 8192, 0x33, 8192, s), ACL_ERROR_RT_PARAM_INVALID, "aclrtMemsetAsync", "past the end", NULL);
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK(all_bytes(pageable, n, 0x44));
    CHECK_OK(aclrtMemcpy(pinned, n, dev, n, ACL_MEMCPY_DEVICE_TO_HOST));
    CHECK(all_bytes(pinned, n, 0x0F));
    CHECK_OK(aclrtFree(dev));
    CHECK_OK(aclrtFreeHost(pinned));
    CHECK_OK(aclrtDestroyStream(s));
    free(pageable);
    teardown();
}

/* ================================================================ host registration */

TEST(host_register_unsupported_by_default)
{
    setup();
    unsigned char *buf = aligned_alloc(4096, 8192);
    CHECK(buf != NULL);
    void *devp = NULL;
    CHECK_FAIL_MSG(aclrtHostRegister(buf, 8192, ACL_HOST_REGISTER_MAPPED, &devp), ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtHostRegister");
    CHECK(devp == NULL);
    CHECK_EQ_U64(counters_now().registered_ranges, 0);
    free(buf);
    teardown();
}

TEST_ENV(host_register_a2, "FASTEXEC_EMU_PROFILE=atlas-800i-a2")
{
    setup();
    const size_t page = 4096;
    unsigned char *buf = aligned_alloc(page, 8 * page);
    CHECK(buf != NULL);
    memset(buf, 0, 8 * page);
    void *devp = NULL;
    /* not 4 KiB aligned */
    CHECK_FAIL_MSG(aclrtHostRegister(buf + 64, page, ACL_HOST_REGISTER_MAPPED, &devp), ACL_ERROR_RT_PARAM_INVALID, "aclrtHostRegister");
    /* missing arguments; the reserved register types */
    CHECK_FAIL_MSG(aclrtHostRegister(NULL, page, ACL_HOST_REGISTER_MAPPED, &devp), ACL_ERROR_INVALID_PARAM, "aclrtHostRegister");
    CHECK_FAIL_MSG(aclrtHostRegister(buf, page, ACL_HOST_REGISTER_MAPPED, NULL), ACL_ERROR_INVALID_PARAM, "aclrtHostRegister");
    CHECK_FAIL_MSG(aclrtHostRegister(buf, 0, ACL_HOST_REGISTER_MAPPED, &devp), ACL_ERROR_INVALID_PARAM, "aclrtHostRegister");
    CHECK_FAIL_MSG(aclrtHostRegister(buf, page, ACL_HOST_REGISTER_IOMEMORY, &devp), ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtHostRegister");
    CHECK_FAIL_MSG(aclrtHostUnregister(NULL), ACL_ERROR_INVALID_PARAM, "aclrtHostUnregister");
    CHECK(devp == NULL);
    CHECK_EQ_U64(counters_now().registered_ranges, 0);

    /* register [page 1, page 3) */
    unsigned char *range = buf + page;
    CHECK_OK(aclrtHostRegister(range, 2 * page, ACL_HOST_REGISTER_MAPPED, &devp));
    CHECK(devp == range);   /* the device address equals the host address */
    CHECK_EQ_U64(counters_now().registered_ranges, 1);

    /* overlapping ranges */
    void *other = NULL;
    CHECK_FAIL_MSG(aclrtHostRegister(buf, 2 * page, ACL_HOST_REGISTER_MAPPED, &other), ACL_ERROR_HOST_MEMORY_ALREADY_REGISTERED, "aclrtHostRegister");
    CHECK_CODE(aclrtHostRegister(buf + 2 * page, 2 * page, ACL_HOST_REGISTER_MAPPED, &other), ACL_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
    CHECK_CODE(aclrtHostRegister(range, 2 * page, ACL_HOST_REGISTER_MAPPED, &other), ACL_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
    CHECK_CODE(aclrtHostRegister(buf, 8 * page, ACL_HOST_REGISTER_MAPPED, &other), ACL_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
    CHECK(other == NULL);
    CHECK_EQ_U64(counters_now().registered_ranges, 1);
    /* an adjacent range is fine */
    void *devp2 = NULL;
    CHECK_OK(aclrtHostRegister(buf + 3 * page, page, ACL_HOST_REGISTER_MAPPED, &devp2));
    CHECK(devp2 == buf + 3 * page);
    CHECK_EQ_U64(counters_now().registered_ranges, 2);

    /* the device pointer works as device memory */
    const size_t n = 2 * page;
    unsigned char *src = xmalloc(n), *back = xmalloc(n);
    fill(src, n, 81);
    CHECK_OK(aclrtMemcpy(devp, n, src, n, ACL_MEMCPY_HOST_TO_DEVICE));
    CHECK(matches(range, n, 81));   /* visible through the host mapping */
    void *dev = device_alloc(n);
    CHECK_OK(aclrtMemcpy(dev, n, devp, n, ACL_MEMCPY_DEVICE_TO_DEVICE));
    memset(back, 0, n);
    read_device(back, dev, n);
    CHECK(matches(back, n, 81));
    /* and asynchronously, from pinned memory */
    void *pinned = pinned_alloc(page);
    fill(pinned, page, 82);
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    CHECK_OK(aclrtMemcpyAsync(devp2, page, pinned, page, ACL_MEMCPY_HOST_TO_DEVICE, s));
    CHECK_OK(aclrtMemcpyAsync(dev, n, devp2, page, ACL_MEMCPY_DEVICE_TO_DEVICE, s));
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK(matches(buf + 3 * page, page, 82));
    read_device(back, dev, page);
    CHECK(matches(back, page, 82));

    /* unregistering */
    CHECK_FAIL_MSG(aclrtHostUnregister(buf), ACL_ERROR_HOST_MEMORY_NOT_REGISTERED, "aclrtHostUnregister");
    CHECK_FAIL_MSG(aclrtHostUnregister(range + page), ACL_ERROR_HOST_MEMORY_NOT_REGISTERED, "aclrtHostUnregister");   /* not its start */
    CHECK_CODE(aclrtHostUnregister(src), ACL_ERROR_HOST_MEMORY_NOT_REGISTERED);
    CHECK_EQ_U64(counters_now().registered_ranges, 2);
    CHECK_OK(aclrtHostUnregister(range));
    CHECK_EQ_U64(counters_now().registered_ranges, 1);
    CHECK_CODE(aclrtHostUnregister(range), ACL_ERROR_HOST_MEMORY_NOT_REGISTERED);
    CHECK_OK(aclrtHostUnregister(buf + 3 * page));
    CHECK_EQ_U64(counters_now().registered_ranges, 0);
    /* after unregistering, the memory is plain pageable host memory again */
    CHECK_CODE(aclrtMemcpy(range, n, src, n, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID);
    /* and the range can be registered again */
    CHECK_OK(aclrtHostRegister(range, n, ACL_HOST_REGISTER_MAPPED, &devp));
    CHECK_OK(aclrtHostUnregister(range));

    CHECK_OK(aclrtDestroyStream(s));
    CHECK_OK(aclrtFree(dev));
    CHECK_OK(aclrtFreeHost(pinned));
    free(src);
    free(back);
    free(buf);
    teardown();
}

/* ================================================================ data buffers, data types */

TEST(databuffer_lifecycle)
{
    setup();
    void *dev = device_alloc(256);
    aclDataBuffer *b = aclCreateDataBuffer(dev, 256);
    CHECK(b != NULL);
    CHECK_EQ_U64(counters_now().data_buffers, 1);
    CHECK(aclGetDataBufferAddr(b) == dev);
    CHECK_EQ_U64(aclGetDataBufferSizeV2(b), 256);
    CHECK_EQ_U64(aclGetDataBufferSize(b), 256);
    CHECK_OK(aclUpdateDataBuffer(b, (char *)dev + 64, 128));
    CHECK(aclGetDataBufferAddr(b) == (char *)dev + 64);
    CHECK_EQ_U64(aclGetDataBufferSizeV2(b), 128);
    CHECK_OK(aclUpdateDataBuffer(b, NULL, 0));   /* the "let the runtime allocate" form */
    CHECK(aclGetDataBufferAddr(b) == NULL);
    CHECK_EQ_U64(aclGetDataBufferSizeV2(b), 0);
    aclDataBuffer *empty = aclCreateDataBuffer(NULL, 0);
    CHECK(empty != NULL && empty != b);
    CHECK_EQ_U64(counters_now().data_buffers, 2);
    CHECK_OK(aclDestroyDataBuffer(b));
    CHECK_OK(aclDestroyDataBuffer(empty));
    CHECK_EQ_U64(counters_now().data_buffers, 0);
    /* destroying a buffer never frees its data */
    CHECK_EQ_U64(counters_now().device_allocations, 1);
    unsigned char src[256], back[256];
    fill(src, sizeof src, 91);
    write_device(dev, src, sizeof src);
    read_device(back, dev, sizeof back);
    CHECK(matches(back, sizeof back, 91));
    CHECK_OK(aclrtFree(dev));
    no_pending_message();
    teardown();
}

TEST(databuffer_legacy_size_is_32_bit)
{
    static unsigned char anything[16];   /* data buffers do not look at their memory */
    size_t big = ((size_t)1 << 32) + 5;
    aclDataBuffer *b = aclCreateDataBuffer(anything, big);
    CHECK(b != NULL);
    CHECK_EQ_U64(aclGetDataBufferSizeV2(b), big);
    CHECK_EQ_U64(aclGetDataBufferSize(b), 5);
    CHECK_OK(aclUpdateDataBuffer(b, anything, 0xFFFFFFFFu));
    CHECK_EQ_U64(aclGetDataBufferSize(b), 0xFFFFFFFFu);
    CHECK_OK(aclDestroyDataBuffer(b));
}

TEST(databuffer_null)
{
    CHECK_FAIL_MSG(aclDestroyDataBuffer(NULL), ACL_ERROR_INVALID_PARAM, "aclDestroyDataBuffer");
    static unsigned char data[8];
    CHECK_FAIL_MSG(aclUpdateDataBuffer(NULL, data, sizeof data), ACL_ERROR_INVALID_PARAM, "aclUpdateDataBuffer");
    CHECK(aclGetDataBufferAddr(NULL) == NULL);
    CHECK_EQ_U64(aclGetDataBufferSizeV2(NULL), 0);
    CHECK_EQ_U64(aclGetDataBufferSize(NULL), 0);
    CHECK_EQ_U64(counters_now().findings, 0);
}

TEST(databuffer_destroyed_handle)
{
    static unsigned char data[64];
    aclDataBuffer *b = aclCreateDataBuffer(data, sizeof data);
    CHECK(b != NULL);
    CHECK_OK(aclDestroyDataBuffer(b));
    CHECK_EQ_U64(counters_now().data_buffers, 0);
    CHECK_FAIL_MSG3(aclDestroyDataBuffer(b), FXEMU_ERR_DESTROYED_HANDLE, "aclDestroyDataBuffer", "data buffer", NULL);
    CHECK_FAIL_MSG3(aclUpdateDataBuffer(b, data, 8), FXEMU_ERR_DESTROYED_HANDLE, "aclUpdateDataBuffer", "data buffer", NULL);
    /* the getters return NULL / 0 and report the same finding */
    CHECK(aclGetDataBufferAddr(b) == NULL);
    const char *m = aclGetRecentErrMsg();
    CHECK(m != NULL && strstr(m, "aclGetDataBufferAddr") != NULL);
    CHECK_EQ_U64(aclGetDataBufferSizeV2(b), 0);
    m = aclGetRecentErrMsg();
    CHECK(m != NULL && strstr(m, "aclGetDataBufferSizeV2") != NULL);
    CHECK_EQ_U64(aclGetDataBufferSize(b), 0);
    m = aclGetRecentErrMsg();
    CHECK(m != NULL && strstr(m, "aclGetDataBufferSize:") != NULL);   /* names the legacy API itself */
    fxemuCounters k = counters_now();
    CHECK_EQ_U64(k.findings, 5);
    CHECK_EQ_U64(k.findings_by_kind[FXEMU_FINDING_DESTROYED_HANDLE], 5);
    expect_findings(5);
}

TEST(datatype_sizes)
{
    static const struct {
        aclDataType type;
        size_t size;
    } table[] = {
        {ACL_DT_UNDEFINED, 0},  {ACL_STRING, 0},         {ACL_UINT1, 1},          {ACL_INT4, 1},           {ACL_BOOL, 1},
        {ACL_INT8, 1},          {ACL_UINT8, 1},          {ACL_HIFLOAT8, 1},       {ACL_FLOAT8_E5M2, 1},    {ACL_FLOAT8_E4M3FN, 1},
        {ACL_FLOAT8_E8M0, 1},   {ACL_FLOAT16, 2},        {ACL_INT16, 2},          {ACL_UINT16, 2},         {ACL_BF16, 2},
        {ACL_FLOAT, 4},         {ACL_INT32, 4},          {ACL_UINT32, 4},         {ACL_COMPLEX32, 4},      {ACL_COMPLEX128, 16},
        {ACL_INT64, 8},         {ACL_UINT64, 8},         {ACL_DOUBLE, 8},         {ACL_COMPLEX64, 8},      {ACL_FLOAT6_E3M2, 8},
        {ACL_FLOAT6_E2M3, 8},   {ACL_FLOAT4_E2M1, 8},    {ACL_FLOAT4_E1M2, 8},
        /* values outside the enum take the default branch */
        {(aclDataType)5, 8},    {(aclDataType)14, 8},    {(aclDataType)1000, 8},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        size_t got = aclDataTypeSize(table[i].type);
        if (got != table[i].size) {
            char b[128];
            snprintf(b, sizeof b, "aclDataTypeSize(%d) == %zu, expected %zu", (int)table[i].type, got, table[i].size);
            fail_at(__FILE__, __LINE__, b);
        }
    }
}

/* ================================================================ thread safety */

#define CHURN_THREADS 4
#define CHURN_ITERS 200
#define CHURN_MAX_BYTES 6000

typedef struct {
    int id;
} churn_arg;

/* Bytes [0, half) are `v`, [half, n) the pattern of `seed`. */
static int halves_ok(const void *p, size_t n, size_t half, unsigned char v, unsigned seed)
{
    return all_bytes(p, half, v) && matches_range(p, half, n, seed);
}

static void *churn_worker(void *arg)
{
    const churn_arg *a = arg;
    CHECK_OK(aclrtSetDevice(0));
    unsigned char *pageable = xmalloc(CHURN_MAX_BYTES);
    for (int it = 0; it < CHURN_ITERS; it++) {
        unsigned seed = (unsigned)(a->id * 1000 + it);
        size_t n = 1 + (size_t)((seed * 2654435761u) % CHURN_MAX_BYTES);
        size_t half = n / 2;
        aclrtStream s;
        aclrtEvent ev;
        CHECK_OK(aclrtCreateStream(&s));
        CHECK_OK(aclrtCreateEvent(&ev));
        void *dev = device_alloc(n), *src = pinned_alloc(n), *dst = pinned_alloc(n);
        fill(src, n, seed);
        memset(dst, 0, n);
        CHECK_OK(aclrtMemcpyAsync(dev, n, src, n, ACL_MEMCPY_HOST_TO_DEVICE, s));
        if (half) CHECK_OK(aclrtMemsetAsync(dev, n, 0x3C, half, s));
        if (it % 4 == 3) {
            /* pageable destination: waits for the stream, then copies synchronously */
            memset(pageable, 0, n);
            CHECK_OK(aclrtMemcpyAsync(pageable, n, dev, n, ACL_MEMCPY_DEVICE_TO_HOST, s));
            CHECK(halves_ok(pageable, n, half, 0x3C, seed));
        } else {
            CHECK_OK(aclrtMemcpyAsync(dst, n, dev, n, ACL_MEMCPY_DEVICE_TO_HOST, s));
            CHECK_OK(aclrtRecordEvent(ev, s));
            CHECK_OK(aclrtSynchronizeEvent(ev));
            CHECK(halves_ok(dst, n, half, 0x3C, seed));
        }
        aclDataBuffer *b = aclCreateDataBuffer(dev, n);
        CHECK(b != NULL);
        CHECK(aclGetDataBufferAddr(b) == dev);
        CHECK_EQ_U64(aclGetDataBufferSizeV2(b), n);
        CHECK_OK(aclDestroyDataBuffer(b));
        CHECK_OK(aclrtSynchronizeStream(s));
        CHECK_OK(aclrtDestroyEvent(ev));
        CHECK_OK(aclrtDestroyStream(s));
        CHECK_OK(aclrtFree(dev));
        CHECK_OK(aclrtFreeHost(src));
        CHECK_OK(aclrtFreeHost(dst));
    }
    free(pageable);
    CHECK_OK(aclrtResetDevice(0));
    return NULL;
}

TEST(threads_resource_churn)
{
    setup();
    churn_arg args[CHURN_THREADS];
    for (int i = 0; i < CHURN_THREADS; i++) args[i].id = i;
    run_threads(CHURN_THREADS, churn_worker, args, sizeof args[0]);
    fxemuCounters k = counters_now();
    CHECK_EQ_U64(k.streams, 0);
    CHECK_EQ_U64(k.events, 0);
    CHECK_EQ_U64(k.device_allocations, 0);
    CHECK_EQ_U64(k.host_allocations, 0);
    CHECK_EQ_U64(k.data_buffers, 0);
    CHECK_EQ_U64(k.devices_set, 1);   /* the main thread's reference */
    CHECK_EQ_U64(device_free_bytes(NULL), 24 * GIB);
    teardown();
}

#define SHARED_THREADS 4
#define SHARED_SLOTS 32
#define SHARED_SLOT_BYTES 2048

typedef struct {
    int id;
    aclrtContext ctx;
    aclrtStream stream;
    pthread_barrier_t *bar;
} shared_arg;

static void *shared_stream_worker(void *arg)
{
    const shared_arg *a = arg;
    CHECK_OK(aclrtSetCurrentContext(a->ctx));
    const size_t total = (size_t)SHARED_SLOTS * SHARED_SLOT_BYTES;
    unsigned char *src = pinned_alloc(total), *dst = pinned_alloc(total), *dev = device_alloc(total);
    aclrtEvent ev;
    CHECK_OK(aclrtCreateEvent(&ev));
    pthread_barrier_wait(a->bar);   /* all threads enqueue at once */
    for (int round = 0; round < 4; round++) {
        for (int k = 0; k < SHARED_SLOTS; k++) fill(src + (size_t)k * SHARED_SLOT_BYTES, SHARED_SLOT_BYTES, (unsigned)(a->id * 10000 + round * 100 + k));
        memset(dst, 0, total);
        for (int k = 0; k < SHARED_SLOTS; k++) {
            size_t off = (size_t)k * SHARED_SLOT_BYTES;
            CHECK_OK(aclrtMemcpyAsync(dev + off, SHARED_SLOT_BYTES, src + off, SHARED_SLOT_BYTES, ACL_MEMCPY_HOST_TO_DEVICE, a->stream));
            CHECK_OK(aclrtMemcpyAsync(dst + off, SHARED_SLOT_BYTES, dev + off, SHARED_SLOT_BYTES, ACL_MEMCPY_DEVICE_TO_HOST, a->stream));
        }
        if (round % 2 == 0) {
            CHECK_OK(aclrtSynchronizeStream(a->stream));
        } else {
            CHECK_OK(aclrtRecordEvent(ev, a->stream));
            CHECK_OK(aclrtSynchronizeEvent(ev));
        }
        for (int k = 0; k < SHARED_SLOTS; k++)
            CHECK(matches(dst + (size_t)k * SHARED_SLOT_BYTES, SHARED_SLOT_BYTES, (unsigned)(a->id * 10000 + round * 100 + k)));
    }
    CHECK_OK(aclrtDestroyEvent(ev));
    CHECK_OK(aclrtFree(dev));
    CHECK_OK(aclrtFreeHost(src));
    CHECK_OK(aclrtFreeHost(dst));
    return NULL;
}

TEST(threads_share_one_stream)
{
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    pthread_barrier_t bar;
    CHECK(pthread_barrier_init(&bar, NULL, SHARED_THREADS) == 0);
    shared_arg args[SHARED_THREADS];
    for (int i = 0; i < SHARED_THREADS; i++) args[i] = (shared_arg){i, current_context(), s, &bar};
    uint64_t tasks_before = counters_now().tasks_run;
    run_threads(SHARED_THREADS, shared_stream_worker, args, sizeof args[0]);
    CHECK(pthread_barrier_destroy(&bar) == 0);
    CHECK_OK(aclrtSynchronizeStream(s));
    /* every copy ran: 4 threads x 4 rounds x 32 slots x 2 copies, plus 2 records each */
    CHECK(counters_now().tasks_run - tasks_before >= (uint64_t)SHARED_THREADS * 4 * SHARED_SLOTS * 2);
    CHECK_OK(aclrtDestroyStream(s));
    teardown();
}

static void *setdevice_churn_worker(void *arg)
{
    const churn_arg *a = arg;
    for (int it = 0; it < 100; it++) {
        CHECK_OK(aclrtSetDevice(0));
        CHECK_EQ_U64(current_device(), 0);
        unsigned char back[128];
        void *dev = device_alloc(sizeof back);
        CHECK_OK(aclrtMemset(dev, sizeof back, a->id + it, sizeof back));
        read_device(back, dev, sizeof back);
        CHECK(all_bytes(back, sizeof back, (unsigned char)(a->id + it)));
        CHECK_OK(aclrtFree(dev));
        CHECK_OK(aclrtResetDevice(0));
    }
    return NULL;
}

TEST(threads_setdevice_refcount)
{
    /* Threads set and reset the device concurrently, with no other reference held: the
     * default context is created and released over and over while others use it. */
    CHECK_OK(aclInit(NULL));
    churn_arg args[CHURN_THREADS];
    for (int i = 0; i < CHURN_THREADS; i++) args[i].id = i * 16;
    run_threads(CHURN_THREADS, setdevice_churn_worker, args, sizeof args[0]);
    CHECK_EQ_U64(counters_now().devices_set, 0);
    int32_t d;
    CHECK_CODE(aclrtGetDevice(&d), ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_OK(aclFinalize());
}

/* Page-size policies do not matter to emulated memory; unknown values are accepted (acl-abi §4.5). */
TEST(malloc_unknown_policy_accepted)
{
    setup();
    void *p = NULL;
    CHECK_OK(aclrtMalloc(&p, 4096, (aclrtMemMallocPolicy)0x77));
    CHECK(((uintptr_t)p % 64) == 0);
    CHECK_OK(aclrtFree(p));
    teardown();
}

/* A zero-byte copy succeeds at once, even on a thread with no context and a NULL stream. */
TEST(memcpy_async_count_zero_needs_nothing)
{
    CHECK_OK(aclrtMemcpyAsync(NULL, 0, NULL, 0, ACL_MEMCPY_HOST_TO_DEVICE, NULL));
    CHECK_OK(aclrtMemsetAsync(NULL, 0, 0, 0, NULL));
}

/* Synchronisation failures name the API that was called. */
TEST(sync_failures_name_the_api)
{
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    CHECK_OK(fxemuStallStream(s, 200));
    CHECK_FAIL_MSG(aclrtSynchronizeStreamWithTimeout(s, 5), ACL_ERROR_RT_STREAM_SYNC_TIMEOUT, "aclrtSynchronizeStreamWithTimeout:");
    CHECK_OK(fxemuAddFault("task:aclrtMemsetAsync:1:507015"));
    void *d;
    CHECK_OK(aclrtMalloc(&d, 64, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_OK(aclrtMemsetAsync(d, 64, 0, 64, s));
    CHECK_FAIL_MSG(aclrtSynchronizeStream(s), 507015, "aclrtSynchronizeStream:");
    CHECK_OK(aclrtFree(d));
    CHECK_OK(aclrtDestroyStream(s));
    teardown();
}
