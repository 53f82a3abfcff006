/* A small test harness for C tests of the ACL emulator.
 *
 * Each test file defines cases with TEST(name) { ... }. The binary runs one case per
 * process: `./binary NAME` (pytest runs every case so; `./binary --list` prints the names).
 * After the case returns, the harness checks that every emulator resource is released and
 * that checked mode reported nothing beyond what the case declared with expect_findings().
 */
#ifndef FASTEXEC_EMU_TEST_H
#define FASTEXEC_EMU_TEST_H

#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <acl/acl.h>
#include <fastexec/acl_emulator.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} emu_test_case;

#define TEST(name)                                                                                           \
    static void test_##name(void);                                                                           \
    static const emu_test_case reg_##name __attribute__((used, section("emu_tests"), aligned(sizeof(void *)))) = \
        {#name, test_##name};                                                                                \
    static void test_##name(void)

/* A case that runs with extra environment, e.g. TEST_ENV(x, "FASTEXEC_EMU_PROFILE=ipv350").
 * Cases run in fast mode (FASTEXEC_EMU_FAST=1) unless their environment sets it to 0. */
#define TEST_ENV(name, env) TEST(name)

extern const emu_test_case __start_emu_tests[], __stop_emu_tests[];

static uint64_t expected_findings;
static inline void expect_findings(uint64_t n) { expected_findings = n; }

static inline void fail_at(const char *file, int line, const char *what)
{
    const char *msg = aclGetRecentErrMsg();
    fprintf(stderr, "%s:%d: %s\n  recent error message: %s\n", file, line, what, msg ? msg : "(none)");
    exit(1);
}

/* An ACL call that must succeed. */
#define CHECK_OK(expr)                                                                       \
    do {                                                                                     \
        aclError rc_ = (expr);                                                               \
        if (rc_ != ACL_SUCCESS) {                                                            \
            char b_[512];                                                                    \
            snprintf(b_, sizeof b_, "%s returned %d, expected ACL_SUCCESS", #expr, rc_);     \
            fail_at(__FILE__, __LINE__, b_);                                                 \
        }                                                                                    \
    } while (0)

/* Status queries of a stream or an event, and an event pair's elapsed time, checked. */
static inline aclrtStreamStatus stream_status(aclrtStream s)
{
    aclrtStreamStatus st = ACL_STREAM_STATUS_RESERVED;
    CHECK_OK(aclrtStreamQuery(s, &st));
    return st;
}

static inline aclrtEventRecordedStatus event_status(aclrtEvent e)
{
    aclrtEventRecordedStatus st = (aclrtEventRecordedStatus)42;
    CHECK_OK(aclrtQueryEventStatus(e, &st));
    return st;
}

static inline float elapsed_ms(aclrtEvent start, aclrtEvent end)
{
    float ms = -1.0f;
    CHECK_OK(aclrtEventElapsedTime(&ms, start, end));
    return ms;
}

/* An ACL call that must fail with exactly `code`. */
#define CHECK_CODE(expr, code)                                                               \
    do {                                                                                     \
        aclError rc_ = (expr);                                                               \
        if (rc_ != (aclError)(code)) {                                                       \
            char b_[512];                                                                    \
            snprintf(b_, sizeof b_, "%s returned %d, expected %s (%d)", #expr, rc_, #code, (int)(code)); \
            fail_at(__FILE__, __LINE__, b_);                                                 \
        }                                                                                    \
    } while (0)

/* Like CHECK_CODE, and the recent error message must contain `needle`. */
#define CHECK_FAIL_MSG(expr, code, needle)                                                   \
    do {                                                                                     \
        CHECK_CODE(expr, code);                                                              \
        const char *m_ = aclGetRecentErrMsg();                                               \
        if (!m_ || !strstr(m_, needle)) {                                                    \
            char b_[1024];                                                                   \
            snprintf(b_, sizeof b_, "message of %s is '%s', expected it to contain '%s'", #expr, m_ ? m_ : "(none)", needle); \
            fail_at(__FILE__, __LINE__, b_);                                                 \
        }                                                                                    \
    } while (0)

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) fail_at(__FILE__, __LINE__, "check failed: " #cond);                   \
    } while (0)

#define CHECK_EQ_U64(a, b)                                                                   \
    do {                                                                                     \
        uint64_t a_ = (uint64_t)(a), bb_ = (uint64_t)(b);                                    \
        if (a_ != bb_) {                                                                     \
            char b_[512];                                                                    \
            snprintf(b_, sizeof b_, "%s == %llu, expected %s == %llu", #a, (unsigned long long)a_, #b, (unsigned long long)bb_); \
            fail_at(__FILE__, __LINE__, b_);                                                 \
        }                                                                                    \
    } while (0)

static inline double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Path of a bundled sample model (the test runner sets FXEMU_TEST_SAMPLES). */
static inline const char *sample(const char *name)
{
    static char buf[4][1024];
    static int next;
    const char *dir = getenv("FXEMU_TEST_SAMPLES");
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s.om", dir ? dir : ".", name);
    return b;
}

/* aclInit + aclrtSetDevice(0); undone by teardown(). */
static inline void setup(void)
{
    CHECK_OK(aclInit(NULL));
    CHECK_OK(aclrtSetDevice(0));
}

static inline void teardown(void)
{
    CHECK_OK(aclrtResetDevice(0));
    CHECK_OK(aclFinalize());
}

static inline int check_released(void)
{
    fxemuCounters c;
    if (fxemuGetCounters(&c) != ACL_SUCCESS) return 0;
    int ok = 1;
#define LIVE(field)                                                                          \
    if (c.field) {                                                                           \
        fprintf(stderr, "leak: %llu live " #field " after the test\n", (unsigned long long)c.field); \
        ok = 0;                                                                              \
    }
    LIVE(device_allocations) LIVE(host_allocations) LIVE(registered_ranges) LIVE(streams) LIVE(events) LIVE(contexts)
    LIVE(devices_set) LIVE(models) LIVE(datasets) LIVE(data_buffers) LIVE(model_descs) LIVE(exec_configs)
    LIVE(tensor_descs) LIVE(load_configs) LIVE(aipp_sets)
#undef LIVE
    if (c.findings != expected_findings) {
        char last[1024];
        fxemuLastFinding(last, sizeof last);
        fprintf(stderr, "checked mode reported %llu finding(s), the test expected %llu; last: %s\n", (unsigned long long)c.findings,
                (unsigned long long)expected_findings, last);
        ok = 0;
    }
    return ok;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (const emu_test_case *t = __start_emu_tests; t < __stop_emu_tests; t++) printf("%s\n", t->name);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s TEST | --list\n", argv[0]);
        return 2;
    }
    for (const emu_test_case *t = __start_emu_tests; t < __stop_emu_tests; t++) {
        if (strcmp(t->name, argv[1]) == 0) {
            t->fn();
            if (!check_released()) return 1;
            printf("ok %s\n", t->name);
            return 0;
        }
    }
    fprintf(stderr, "no test named %s\n", argv[1]);
    return 2;
}

#endif
