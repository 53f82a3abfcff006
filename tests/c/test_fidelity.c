/* C tests of the API the emulator gained so that third-party ACL applications run unmodified
 * (docs/emulator.md "Runtime extras", "Tensor descriptions", "Device exceptions", "aclInit's
 * configuration", "Devices"): exact codes, real data, and every resource released after each
 * case (the harness checks the live counters, tensor descriptions and load configs included).
 */
#include "emu_test.h"

#include <unistd.h>

/* A static model with work and weight memory, as text for the *FromMem* loaders. */
static const char WITH_MEM[] =
    "fastexec-emulator-model 1\n"
    "name withmem\n"
    "input x float32 ND 2,8\n"
    "output y float32 ND 2,8\n"
    "kernel affine scale=2 bias=1\n"
    "compute_us 10\n"
    "workspace_bytes 4096\n"
    "weight_bytes 1000\n";

static void check_str(const char *got, const char *want)
{
    if (!got || strcmp(got, want) != 0) {
        fprintf(stderr, "string is '%s', expected '%s'\n", got ? got : "(null)", want);
        exit(1);
    }
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* ================================================================ init, config, last error */

TEST(init_config_paths)
{
    char dir[] = "/tmp/fxemu-cfg-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char good[256], bad[256], empty[256], array[256], missing[256], value[256];
    snprintf(good, sizeof good, "%s/acl.json", dir);
    snprintf(bad, sizeof bad, "%s/bad.json", dir);
    snprintf(empty, sizeof empty, "%s/empty.json", dir);
    snprintf(array, sizeof array, "%s/array.json", dir);
    snprintf(missing, sizeof missing, "%s/missing.json", dir);
    write_text(good, "{\n  \"dump\": {\"dump_path\": \"/tmp/d\\u00e9\", \"dump_list\": [{\"model_name\": \"m\"}], \"dump_mode\": \"output\"},\n"
                     "  \"profiler\": {\"switch\": \"off\", \"interval\": 1.5e1},\n  \"err_msg_mode\": \"1\",\n  \"unknown\": [true, false, null, -0.5]\n}\n");
    write_text(bad, "{\"dump\": {\"dump_path\": \"x\"}\n");
    write_text(empty, "");
    write_text(array, "[1, 2]");

    CHECK_OK(aclInit(NULL));
    CHECK_CODE(fxemuGetConfigValue("dump", value, sizeof value), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclFinalize());
    CHECK_OK(aclInit(""));
    CHECK_OK(aclFinalize());
    CHECK_OK(aclInit(empty));
    CHECK_OK(aclFinalize());

    CHECK_FAIL_MSG(aclInit(missing), ACL_ERROR_INVALID_FILE, "cannot open config file");
    CHECK_FAIL_MSG(aclInit(bad), ACL_ERROR_PARSE_FILE, "line 2, column 1");
    CHECK_FAIL_MSG(aclInit(array), ACL_ERROR_PARSE_FILE, "must hold a JSON object");
    /* a refused init initializes nothing */
    CHECK_CODE(aclFinalize(), ACL_ERROR_REPEAT_FINALIZE);

    CHECK_OK(aclInit(good));
    CHECK_OK(fxemuGetConfigValue("dump.dump_path", value, sizeof value));
    check_str(value, "/tmp/d\xc3\xa9");
    CHECK_OK(fxemuGetConfigValue("dump.dump_list", value, sizeof value));
    check_str(value, "[1]");
    CHECK_OK(fxemuGetConfigValue("dump", value, sizeof value));
    check_str(value, "{3}");
    CHECK_OK(fxemuGetConfigValue("profiler.interval", value, sizeof value));
    check_str(value, "15");
    CHECK_OK(fxemuGetConfigValue("err_msg_mode", value, sizeof value));
    check_str(value, "1");
    CHECK_CODE(fxemuGetConfigValue("dump.nothing", value, sizeof value), ACL_ERROR_INVALID_PARAM);
    /* a repeated init keeps the first configuration */
    CHECK_CODE(aclInit(bad), ACL_ERROR_REPEAT_INITIALIZE);
    CHECK_OK(fxemuGetConfigValue("dump.dump_mode", value, sizeof value));
    check_str(value, "output");
    CHECK_OK(aclFinalize());
    CHECK_CODE(fxemuGetConfigValue("dump", value, sizeof value), ACL_ERROR_INVALID_PARAM);

    unlink(good);
    unlink(bad);
    unlink(empty);
    unlink(array);
    rmdir(dir);
}

TEST(init_config_malformed_json)
{
    static const char *docs[] = {
        "{", "{\"a\" 1}", "{\"a\": 1,}", "{\"a\": [1,]}", "{a: 1}", "{\"a\": 01}", "{\"a\": 1.}", "{\"a\": .5}", "{\"a\": 1e}",
        "{\"a\": tru}", "{\"a\": \"x\\q\"}", "{\"a\": \"\\ud800\"}", "{\"a\": \"tab\there\"}", "{} {}", "{\"a\": 'x'}",
        "{\"a\": NaN}", "{\"a\": \"unterminated}",
    };
    char path[] = "/tmp/fxemu-json-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        write_text(path, docs[i]);
        aclError rc = aclInit(path);
        if (rc != ACL_ERROR_PARSE_FILE) {
            fprintf(stderr, "aclInit of '%s' returned %d, expected ACL_ERROR_PARSE_FILE\n", docs[i], rc);
            exit(1);
        }
    }
    /* nesting deeper than the parser's limit is refused, not recursed into */
    char deep[300];
    memset(deep, '[', 200);
    deep[0] = '{';
    snprintf(deep + 1, sizeof deep - 1, "\"a\": ");
    memset(deep + 6, '[', 150);
    deep[156] = 0;
    write_text(path, deep);
    CHECK_FAIL_MSG(aclInit(path), ACL_ERROR_PARSE_FILE, "nested too deeply");
    /* and valid corner cases pass */
    write_text(path, "\xEF\xBB\xBF {\"a\": [[], {}, \"\\\"\\\\\\/\\b\\f\\n\\r\\t\\ud83d\\ude00\", -1.25E+2, 0, true], \"a\": 2}");
    CHECK_OK(aclInit(path));
    char value[64];
    CHECK_OK(fxemuGetConfigValue("a", value, sizeof value));   /* the last of duplicate names */
    check_str(value, "2");
    CHECK_OK(aclFinalize());
    unlink(path);
}

TEST(finalize_reference)
{
    uint64_t refs = 99;
    CHECK_CODE(aclFinalizeReference(NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclFinalizeReference(&refs), ACL_ERROR_REPEAT_FINALIZE);
    CHECK_EQ_U64(refs, 0);
    CHECK_OK(aclInit(NULL));
    CHECK_CODE(aclInit(NULL), ACL_ERROR_REPEAT_INITIALIZE);
    CHECK_OK(aclFinalizeReference(&refs));
    CHECK_EQ_U64(refs, 1);
    CHECK_CODE(aclInit(NULL), ACL_ERROR_REPEAT_INITIALIZE);   /* still initialized */
    CHECK_OK(aclFinalizeReference(&refs));
    CHECK_OK(aclFinalizeReference(&refs));
    CHECK_EQ_U64(refs, 0);
    CHECK_CODE(aclFinalize(), ACL_ERROR_REPEAT_FINALIZE);
}

TEST(last_error)
{
    CHECK_OK(aclrtGetLastError(ACL_RT_THREAD_LEVEL));
    int32_t dev;
    CHECK_CODE(aclrtGetDevice(&dev), ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_CODE(aclrtPeekAtLastError(ACL_RT_THREAD_LEVEL), ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_CODE(aclrtPeekAtLastError(ACL_RT_THREAD_LEVEL), ACL_ERROR_RT_CONTEXT_NULL);   /* peek keeps it */
    CHECK_CODE(aclrtGetLastError(ACL_RT_THREAD_LEVEL), ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_OK(aclrtGetLastError(ACL_RT_THREAD_LEVEL));                                    /* get cleared it */
    CHECK_CODE(aclrtGetLastError((aclrtLastErrLevel)1), ACL_ERROR_INVALID_PARAM);
}

/* ================================================================ devices */

TEST_ENV(visible_devices_renumbered, "FASTEXEC_EMU_DEVICES=4 ASCEND_RT_VISIBLE_DEVICES=1,3")
{
    uint32_t n = 0;
    CHECK_OK(aclrtGetDeviceCount(&n));
    CHECK_EQ_U64(n, 2);
    CHECK_OK(aclInit(NULL));
    CHECK_OK(aclrtSetDevice(1));   /* physical device 3 */
    int32_t dev = -1;
    CHECK_OK(aclrtGetDevice(&dev));
    CHECK_EQ_U64(dev, 1);
    CHECK_CODE(aclrtSetDevice(2), ACL_ERROR_RT_INVALID_DEVICEID);
    fxemuProfile p;
    CHECK_OK(fxemuGetProfile(&p));
    CHECK_EQ_U64(p.device_count, 2);
    CHECK_OK(aclrtResetDevice(1));
    CHECK_OK(aclFinalize());
}

TEST_ENV(visible_devices_none_valid, "FASTEXEC_EMU_DEVICES=2 ASCEND_RT_VISIBLE_DEVICES=5,0")
{
    uint32_t n = 9;
    CHECK_OK(aclrtGetDeviceCount(&n));
    CHECK_EQ_U64(n, 0);
    CHECK_CODE(aclrtSetDevice(0), ACL_ERROR_RT_INVALID_DEVICEID);
}

TEST(sat_mode_and_priorities)
{
    aclrtFloatOverflowMode mode;
    CHECK_CODE(aclrtGetDeviceSatMode(&mode), ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_CODE(aclrtSetDeviceSatMode(ACL_RT_OVERFLOW_MODE_INFNAN), ACL_ERROR_RT_CONTEXT_NULL);
    setup();
    CHECK_CODE(aclrtGetDeviceSatMode(NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclrtGetDeviceSatMode(&mode));
    CHECK_EQ_U64(mode, ACL_RT_OVERFLOW_MODE_SATURATION);
    CHECK_OK(aclrtSetDeviceSatMode(ACL_RT_OVERFLOW_MODE_INFNAN));
    CHECK_OK(aclrtGetDeviceSatMode(&mode));
    CHECK_EQ_U64(mode, ACL_RT_OVERFLOW_MODE_INFNAN);
    CHECK_CODE(aclrtSetDeviceSatMode(ACL_RT_OVERFLOW_MODE_UNDEF), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtSetDeviceSatMode((aclrtFloatOverflowMode)7), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclrtGetDeviceSatMode(&mode));
    CHECK_EQ_U64(mode, ACL_RT_OVERFLOW_MODE_INFNAN);

    int32_t least = -5, greatest = -5;
    CHECK_CODE(aclrtDeviceGetStreamPriorityRange(NULL, &greatest), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclrtDeviceGetStreamPriorityRange(&least, &greatest));
    CHECK(least == 7 && greatest == 0);
    aclrtStream s;
    CHECK_OK(aclrtCreateStreamWithConfig(&s, 3, ACL_STREAM_FAST_LAUNCH));
    uint32_t prio = 9;
    CHECK_OK(aclrtStreamGetPriority(s, &prio));
    CHECK_EQ_U64(prio, 0);
    CHECK_OK(aclrtStreamGetPriority(NULL, &prio));
    CHECK_CODE(aclrtStreamGetPriority(s, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclrtSetStreamFailureMode(s, ACL_STOP_ON_FAILURE));
    CHECK_OK(aclrtSetStreamFailureMode(s, ACL_CONTINUE_ON_FAILURE));
    CHECK_CODE(aclrtSetStreamFailureMode(s, 2), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtSetStreamFailureMode(NULL, ACL_STOP_ON_FAILURE), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclrtDestroyStreamForce(s));
    expect_findings(1);
    CHECK_CODE(aclrtSetStreamFailureMode(s, ACL_STOP_ON_FAILURE), ACL_ERROR_RT_INVALID_HANDLE);
    teardown();
}

/* ================================================================ streams, events */

TEST(stream_config_opt)
{
    aclrtStreamConfigHandle h;
    memset(&h, 0, sizeof h);
    void *work = (void *)0x1000;
    size_t size = 4096, flag = ACL_STREAM_FAST_SYNC;
    uint32_t prio = 2;
    CHECK_OK(aclrtSetStreamConfigOpt(&h, ACL_RT_STREAM_WORK_ADDR_PTR, &work, sizeof work));
    CHECK_OK(aclrtSetStreamConfigOpt(&h, ACL_RT_STREAM_WORK_SIZE, &size, sizeof size));
    CHECK_OK(aclrtSetStreamConfigOpt(&h, ACL_RT_STREAM_FLAG, &flag, sizeof flag));
    CHECK_OK(aclrtSetStreamConfigOpt(&h, ACL_RT_STREAM_PRIORITY, &prio, sizeof prio));
    CHECK(h.workptr == work && h.workSize == 4096 && h.flag == ACL_STREAM_FAST_SYNC && h.priority == 2);
    CHECK_CODE(aclrtSetStreamConfigOpt(&h, ACL_RT_STREAM_PRIORITY, &prio, 8), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtSetStreamConfigOpt(&h, (aclrtStreamConfigAttr)9, &prio, 4), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtSetStreamConfigOpt(NULL, ACL_RT_STREAM_PRIORITY, &prio, 4), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtSetStreamConfigOpt(&h, ACL_RT_STREAM_PRIORITY, NULL, 4), ACL_ERROR_INVALID_PARAM);
}

TEST(event_variants_and_reset)
{
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    aclrtEvent ev, plain, nosync;
    CHECK_OK(aclrtCreateEventExWithFlag(&ev, ACL_EVENT_SYNC | ACL_EVENT_TIME_LINE));
    CHECK_OK(aclrtCreateEvent(&plain));
    CHECK_OK(aclrtCreateEventWithFlag(&nosync, ACL_EVENT_TIME_LINE));
    CHECK_CODE(aclrtCreateEventExWithFlag(&ev, 0x80), ACL_ERROR_INVALID_PARAM);

    aclrtEventStatus st;
    aclrtEventWaitStatus ws;
    CHECK_OK(aclrtQueryEvent(ev, &st));
    CHECK_EQ_U64(st, ACL_EVENT_STATUS_NOT_READY);   /* never recorded */
    CHECK_OK(aclrtQueryEventWaitStatus(ev, &ws));
    CHECK_EQ_U64(ws, ACL_EVENT_WAIT_STATUS_COMPLETE);   /* nothing to wait for */

    /* a recorded event behind a stall is pending for both queries */
    CHECK_OK(fxemuStallStream(s, 200));
    CHECK_OK(aclrtRecordEventWithFlag(ev, s, 0));
    CHECK_OK(aclrtQueryEvent(ev, &st));
    CHECK_EQ_U64(st, ACL_EVENT_STATUS_NOT_READY);
    CHECK_OK(aclrtQueryEventWaitStatus(ev, &ws));
    CHECK_EQ_U64(ws, ACL_EVENT_WAIT_STATUS_NOT_READY);
    CHECK_OK(aclrtSynchronizeEvent(ev));
    CHECK_OK(aclrtQueryEvent(ev, &st));
    CHECK_EQ_U64(st, ACL_EVENT_STATUS_COMPLETE);
    CHECK_OK(aclrtQueryEventWaitStatus(ev, &ws));
    CHECK_EQ_U64(ws, ACL_EVENT_WAIT_STATUS_COMPLETE);
    CHECK_CODE(aclrtRecordEventWithFlag(ev, s, 5), ACL_ERROR_INVALID_PARAM);

    /* reset: back to never recorded */
    CHECK_OK(aclrtResetEvent(ev, s));
    aclrtEventRecordedStatus rs;
    CHECK_OK(aclrtQueryEventStatus(ev, &rs));
    CHECK_EQ_U64(rs, ACL_EVENT_RECORDED_STATUS_NOT_READY);
    float ms;
    CHECK_CODE(aclrtEventElapsedTime(&ms, ev, ev), ACL_ERROR_RT_EVENT_TIMESTAMP_INVALID);
    CHECK_CODE(aclrtResetEvent(nosync, s), ACL_ERROR_RT_PARAM_INVALID);
    CHECK_CODE(aclrtResetEvent(NULL, s), ACL_ERROR_INVALID_PARAM);

    /* a wait queued before a reset keeps the snapshot it saw */
    aclrtStream s2;
    CHECK_OK(aclrtCreateStream(&s2));
    CHECK_OK(fxemuStallStream(s, 100));
    CHECK_OK(aclrtRecordEvent(ev, s));
    CHECK_OK(aclrtStreamWaitEventWithTimeout(s2, ev, 1000));
    CHECK_OK(aclrtResetEvent(ev, s));
    aclrtStreamStatus ss;
    CHECK_OK(aclrtStreamQuery(s2, &ss));
    CHECK_EQ_U64(ss, ACL_STREAM_STATUS_NOT_READY);
    CHECK_OK(aclrtSynchronizeStream(s2));
    CHECK_CODE(aclrtStreamWaitEventWithTimeout(s2, ev, -2), ACL_ERROR_RT_PARAM_INVALID);
    CHECK_CODE(aclrtQueryEvent(ev, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtQueryEventWaitStatus(ev, NULL), ACL_ERROR_INVALID_PARAM);

    CHECK_OK(aclrtDestroyEvent(ev));
    CHECK_OK(aclrtDestroyEvent(plain));
    CHECK_OK(aclrtDestroyEvent(nosync));
    CHECK_OK(aclrtDestroyStream(s2));
    CHECK_OK(aclrtDestroyStream(s));
    expect_findings(1);
    CHECK_CODE(aclrtQueryEvent(ev, &st), ACL_ERROR_RT_INVALID_HANDLE);
    teardown();
}

TEST(synchronize_device_with_timeout)
{
    CHECK_CODE(aclrtSynchronizeDeviceWithTimeout(100), ACL_ERROR_RT_CONTEXT_NULL);
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    CHECK_CODE(aclrtSynchronizeDeviceWithTimeout(-2), ACL_ERROR_RT_PARAM_INVALID);
    CHECK_OK(fxemuStallStream(s, 300));
    double t0 = now_ms();
    CHECK_CODE(aclrtSynchronizeDeviceWithTimeout(30), ACL_ERROR_RT_STREAM_SYNC_TIMEOUT);
    CHECK(now_ms() - t0 < 250);
    CHECK_OK(aclrtSynchronizeDeviceWithTimeout(-1));
    CHECK_OK(fxemuStallStream(NULL, 20));
    CHECK_OK(aclrtSynchronizeDeviceWithTimeout(5000));
    /* a failed task is reported */
    CHECK_OK(fxemuAddFault("task:fxemuStallStream:1:507015"));
    CHECK_OK(fxemuStallStream(s, 1));
    CHECK_CODE(aclrtSynchronizeDeviceWithTimeout(5000), ACL_ERROR_RT_AICORE_EXCEPTION);
    CHECK_OK(aclrtSynchronizeDeviceWithTimeout(5000));
    CHECK_OK(aclrtDestroyStream(s));
    teardown();
}

TEST(op_timeouts)
{
    uint64_t actual = 0;
    CHECK_OK(aclrtSetOpWaitTimeout(0));
    CHECK_OK(aclrtSetOpWaitTimeout(30));
    CHECK_OK(aclrtSetOpExecuteTimeOut(5));
    CHECK_OK(aclrtSetOpExecuteTimeOutV2(1500, &actual));
    CHECK_EQ_U64(actual, 1500);
    CHECK_CODE(aclrtSetOpExecuteTimeOutV2(1500, NULL), ACL_ERROR_INVALID_PARAM);
}

static void *process_hostfunc(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)aclrtProcessHostFunc(50);
}

static int hostfunc_ran;
static void hostfunc(void *args) { hostfunc_ran += *(int *)args; }

TEST(hostfunc_subscription)
{
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    uint64_t me = (uint64_t)pthread_self();
    CHECK_CODE(aclrtProcessHostFunc(0), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtProcessHostFunc(-2), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtProcessHostFunc(10), ACL_ERROR_RT_THREAD_SUBSCRIBE);
    CHECK_OK(aclrtSubscribeHostFunc(me, s));
    CHECK_CODE(aclrtSubscribeHostFunc(me + 1, s), ACL_ERROR_REPEAT_SUBSCRIBE);
    /* host functions still run on the stream, in order */
    int one = 1;
    CHECK_OK(aclrtLaunchHostFunc(s, hostfunc, &one));
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK_EQ_U64(hostfunc_ran, 1);
    CHECK_CODE(aclrtProcessHostFunc(20), ACL_ERROR_RT_REPORT_TIMEOUT);
    /* another thread subscribed to nothing */
    pthread_t t;
    void *ret;
    pthread_create(&t, NULL, process_hostfunc, NULL);
    pthread_join(t, &ret);
    CHECK_EQ_U64((intptr_t)ret, ACL_ERROR_RT_THREAD_SUBSCRIBE);
    CHECK_CODE(aclrtUnSubscribeHostFunc(me + 1, s), ACL_ERROR_RT_STREAM_SUBSCRIBE);
    CHECK_OK(aclrtUnSubscribeHostFunc(me, s));
    CHECK_CODE(aclrtProcessHostFunc(10), ACL_ERROR_RT_THREAD_SUBSCRIBE);
    CHECK_OK(aclrtDestroyStream(s));
    teardown();
}

/* ================================================================ memory */

TEST(memory_variants)
{
    void *p = NULL, *h = NULL;
    CHECK_CODE(aclrtMallocCached(&p, 64, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_CONTEXT_NULL);
    setup();
    CHECK_OK(aclrtMallocCached(&p, 100, ACL_MEM_MALLOC_HUGE_FIRST));
    fxemuCounters c;
    CHECK_OK(fxemuGetCounters(&c));
    CHECK_EQ_U64(c.device_bytes, 160);   /* 128 rounded + 32 padding */
    CHECK_OK(aclrtFreeWithDevSync(p));
    CHECK_OK(aclrtMallocWithCfg(&p, 64, ACL_MEM_MALLOC_NORMAL_ONLY, NULL));
    CHECK_CODE(aclrtMallocWithCfg(&p, 0, ACL_MEM_MALLOC_NORMAL_ONLY, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtFreeWithDevSync(NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclrtMallocHostWithCfg(&h, 100, NULL));
    CHECK_OK(fxemuGetCounters(&c));
    CHECK_EQ_U64(c.host_allocations, 1);
    CHECK_CODE(aclrtFreeWithDevSync(h), ACL_ERROR_RT_PARAM_INVALID);   /* pinned host memory is not device memory */
    CHECK_OK(aclrtFreeHostWithDevSync(h));
    CHECK_CODE(aclrtFreeHostWithDevSync(NULL), ACL_ERROR_INVALID_PARAM);

    /* pointer attributes */
    aclrtPtrAttributes a;
    CHECK_OK(aclrtPointerGetAttributes(p, &a));
    CHECK(a.location.type == ACL_MEM_LOCATION_TYPE_DEVICE && a.location.id == 0 && a.pageSize == 4096);
    CHECK_OK(aclrtPointerGetAttributes((char *)p + 10, &a));
    CHECK(a.location.type == ACL_MEM_LOCATION_TYPE_DEVICE);
    CHECK_OK(aclrtMallocHost(&h, 64));
    CHECK_OK(aclrtPointerGetAttributes(h, &a));
    CHECK(a.location.type == ACL_MEM_LOCATION_TYPE_HOST);
    int local;
    CHECK_OK(aclrtPointerGetAttributes(&local, &a));
    CHECK(a.location.type == ACL_MEM_LOCATION_TYPE_UNREGISTERED);
    CHECK_CODE(aclrtPointerGetAttributes(NULL, &a), ACL_ERROR_INVALID_PARAM);
    void *big;
    CHECK_OK(aclrtMalloc(&big, 4 << 20, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_OK(aclrtPointerGetAttributes(big, &a));
    CHECK_EQ_U64(a.pageSize, 2 << 20);
    CHECK_OK(aclrtFree(big));
    CHECK_OK(aclrtFreeHost(h));
    CHECK_OK(aclrtFree(p));
    teardown();
}

TEST(memcpy_2d)
{
    setup();
    enum { W = 10, H = 4, SP = 16, DP = 32 };
    unsigned char *host, *back;
    void *dev;
    CHECK_OK(aclrtMallocHost((void **)&host, SP * H));
    CHECK_OK(aclrtMallocHost((void **)&back, DP * H));
    CHECK_OK(aclrtMalloc(&dev, DP * H, ACL_MEM_MALLOC_HUGE_FIRST));
    for (int i = 0; i < SP * H; i++) host[i] = (unsigned char)(i + 1);
    CHECK_OK(aclrtMemset(dev, DP * H, 0xEE, DP * H));
    CHECK_OK(aclrtMemcpy2d(dev, DP, host, SP, W, H, ACL_MEMCPY_HOST_TO_DEVICE));
    CHECK_OK(aclrtMemcpy(back, DP * H, dev, DP * H, ACL_MEMCPY_DEVICE_TO_HOST));
    for (int r = 0; r < H; r++)   /* rows land at the destination pitch; the rest of each row is untouched */
        for (int x = 0; x < DP; x++) CHECK(back[r * DP + x] == (x < W ? host[r * SP + x] : 0xEE));
    /* and back, asynchronously, at the source pitch */
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    memset(back, 0, SP * H);
    CHECK_OK(aclrtMemcpy2dAsync(back, SP, dev, DP, W, H, ACL_MEMCPY_DEVICE_TO_HOST, s));
    CHECK_OK(aclrtSynchronizeStream(s));
    for (int r = 0; r < H; r++) {
        CHECK(memcmp(back + r * SP, host + r * SP, W) == 0);
        CHECK(back[r * SP + W] == 0);
    }
    CHECK_CODE(aclrtMemcpy2d(dev, DP, host, SP, 20, H, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_INVALID_PARAM);   /* width > spitch */
    CHECK_CODE(aclrtMemcpy2d(dev, 8, host, SP, W, H, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_INVALID_PARAM);    /* width > dpitch */
    CHECK_CODE(aclrtMemcpy2d(dev, DP, host, SP, W, 0, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtMemcpy2d(NULL, DP, host, SP, W, H, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtMemcpy2d(dev, DP, host, SP, W, H, ACL_MEMCPY_HOST_TO_HOST), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtMemcpy2d(dev, DP, dev, DP, W, H, ACL_MEMCPY_DEVICE_TO_DEVICE), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtMemcpy2d(dev, DP, host, SP, W, H, ACL_MEMCPY_DEFAULT), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtMemcpy2d(dev, DP, host, SP, W, H + 1, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID);   /* past the block */
    CHECK_CODE(aclrtMemcpy2d(host, SP, dev, DP, W, H, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_RT_PARAM_INVALID);       /* wrong direction */
    CHECK_CODE(aclrtMemcpy2dAsync(back, SP, dev, DP, W, H, ACL_MEMCPY_INNER_DEVICE_TO_DEVICE, s), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclrtDestroyStream(s));
    CHECK_OK(aclrtFree(dev));
    CHECK_OK(aclrtFreeHost(host));
    CHECK_OK(aclrtFreeHost(back));
    teardown();
}

TEST_ENV(host_register_v2, "FASTEXEC_EMU_PROFILE=atlas-800i-a2")
{
    setup();
    void *mem = aligned_alloc(4096, 8192), *devp = NULL;
    CHECK_CODE(aclrtHostRegisterV2(mem, 8192, 0x1), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtHostRegisterV2(mem, 8192, ACL_HOST_REG_READONLY), ACL_ERROR_RT_FEATURE_NOT_SUPPORT);
    CHECK_CODE(aclrtHostGetDevicePointer(mem, &devp, 0), ACL_ERROR_RT_PARAM_INVALID);
    CHECK_OK(aclrtHostRegisterV2(mem, 8192, ACL_HOST_REG_MAPPED | ACL_HOST_REG_PINNED));
    CHECK_OK(aclrtHostGetDevicePointer((char *)mem + 100, &devp, 0));
    CHECK(devp == (char *)mem + 100);
    CHECK_CODE(aclrtHostGetDevicePointer(mem, &devp, 1), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclrtHostGetDevicePointer(mem, NULL, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclrtHostUnregister(mem));
    free(mem);
    teardown();
}

TEST(host_register_v2_unsupported)
{
    setup();
    void *mem = aligned_alloc(4096, 4096);
    CHECK_CODE(aclrtHostRegisterV2(mem, 4096, ACL_HOST_REG_MAPPED), ACL_ERROR_RT_FEATURE_NOT_SUPPORT);
    free(mem);
    teardown();
}

TEST(dvpp_memory)
{
    void *p = NULL;
    CHECK_CODE(fxemuDvppMalloc(&p, 100), ACL_ERROR_RT_CONTEXT_NULL);
    setup();
    CHECK_CODE(fxemuDvppMalloc(NULL, 100), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(fxemuDvppMalloc(&p, 100));
    CHECK((uintptr_t)p % 128 == 0);
    fxemuCounters c;
    CHECK_OK(fxemuGetCounters(&c));
    CHECK_EQ_U64(c.device_allocations, 1);
    CHECK_EQ_U64(c.device_bytes, 160);
    void *d;
    CHECK_OK(aclrtMalloc(&d, 64, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_FAIL_MSG(fxemuDvppFree(d), ACL_ERROR_RT_PARAM_INVALID, "comes from aclrtMalloc");
    CHECK_CODE(fxemuDvppFree(NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(fxemuDvppFree((char *)p + 64), ACL_ERROR_RT_PARAM_INVALID);
    CHECK_OK(fxemuDvppFree(p));
    CHECK_CODE(fxemuDvppFree(p), ACL_ERROR_RT_PARAM_INVALID);
    CHECK_OK(fxemuDvppMalloc(&p, 0));   /* the runtime sizes 0 as 32 bytes */
    CHECK_OK(fxemuGetCounters(&c));
    CHECK_EQ_U64(c.device_bytes, 32 + 96);
    CHECK_OK(fxemuDvppFree(p));
    CHECK_OK(aclrtFree(d));
    teardown();
}

/* ================================================================ tensor descriptions */

TEST(tensor_desc_basics)
{
    int64_t dims[3] = {2, 3, 5};
    aclTensorDesc *d = aclCreateTensorDesc(ACL_FLOAT16, 3, dims, ACL_FORMAT_NCHW);
    CHECK(d != NULL);
    fxemuCounters c;
    CHECK_OK(fxemuGetCounters(&c));
    CHECK_EQ_U64(c.tensor_descs, 1);
    CHECK_EQ_U64(aclGetTensorDescNumDims(d), 3);
    CHECK_EQ_U64(aclGetTensorDescElementCount(d), 30);
    CHECK_EQ_U64(aclGetTensorDescSize(d), 60);
    CHECK_EQ_U64(aclGetTensorDescType(d), ACL_FLOAT16);
    CHECK_EQ_U64(aclGetTensorDescFormat(d), ACL_FORMAT_NCHW);
    int64_t v = 0;
    CHECK_OK(aclGetTensorDescDimV2(d, 2, &v));
    CHECK_EQ_U64(v, 5);
    CHECK_CODE(aclGetTensorDescDimV2(d, 3, &v), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclGetTensorDescDimV2(d, 0, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK(aclGetTensorDescByIndex(d, 0) == d);
    CHECK(aclGetTensorDescByIndex(d, 1) == NULL);
    int64_t ranges[3][2] = {{1, 4}, {3, 3}, {5, -1}};
    CHECK_OK(aclSetTensorShapeRange(d, 3, ranges));
    int64_t badr[1][2] = {{4, 1}};
    CHECK_CODE(aclSetTensorShapeRange(d, 1, badr), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclSetTensorShapeRange(d, ACL_MAX_DIM_CNT + 1, ranges), ACL_ERROR_INVALID_PARAM);
    aclDestroyTensorDesc(d);

    /* scalars, unknown dims, bad arguments */
    aclTensorDesc *scalar = aclCreateTensorDesc(ACL_INT64, 0, NULL, ACL_FORMAT_ND);
    CHECK(scalar != NULL);
    CHECK_EQ_U64(aclGetTensorDescElementCount(scalar), 1);
    CHECK_EQ_U64(aclGetTensorDescSize(scalar), 8);
    int64_t unknown[2] = {-1, 4};
    aclTensorDesc *u = aclCreateTensorDesc(ACL_FLOAT, 2, unknown, ACL_FORMAT_ND);
    CHECK_EQ_U64(aclGetTensorDescSize(u), 0);
    CHECK(aclCreateTensorDesc(ACL_FLOAT, -1, dims, ACL_FORMAT_ND) == NULL);
    CHECK(aclCreateTensorDesc(ACL_FLOAT, 2, NULL, ACL_FORMAT_ND) == NULL);
    CHECK(aclCreateTensorDesc(ACL_FLOAT, ACL_MAX_DIM_CNT + 1, dims, ACL_FORMAT_ND) == NULL);
    aclDestroyTensorDesc(scalar);
    aclDestroyTensorDesc(u);
    aclDestroyTensorDesc(NULL);   /* a no-op */
    CHECK_EQ_U64(aclGetTensorDescNumDims(NULL), 0);
    CHECK_EQ_U64(aclGetTensorDescType(NULL), ACL_DT_UNDEFINED);
    CHECK_EQ_U64(aclGetTensorDescFormat(NULL), ACL_FORMAT_UNDEFINED);
    /* a destroyed description is a finding, never dereferenced */
    expect_findings(2);
    CHECK_EQ_U64(aclGetTensorDescNumDims(u), 0);
    aclDestroyTensorDesc(u);
}

/* ================================================================ models */

static uint32_t load_tiny(void)
{
    uint32_t id;
    CHECK_OK(aclmdlLoadFromFile(sample("tiny"), &id));
    return id;
}

TEST(load_with_user_memory)
{
    setup();
    size_t work = 0, weight = 0;
    CHECK_OK(aclmdlQuerySizeFromMem(WITH_MEM, sizeof WITH_MEM - 1, &work, &weight));
    CHECK(work == 4096 && weight == 1000);
    CHECK_CODE(aclmdlQuerySizeFromMem(WITH_MEM, 0, &work, &weight), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlQuerySizeFromMem("junk", 4, &work, &weight), ACL_ERROR_PARSE_MODEL);
    void *wk, *wt, *small, *host;
    CHECK_OK(aclrtMalloc(&wk, work, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_OK(aclrtMalloc(&wt, weight, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_OK(aclrtMalloc(&small, 64, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_OK(aclrtMallocHost(&host, 8192));
    uint32_t id, id2, id3;
    CHECK_OK(aclmdlLoadFromMemWithMem(WITH_MEM, sizeof WITH_MEM - 1, &id, wk, work, wt, weight));
    CHECK_CODE(aclmdlLoadFromMemWithMem(WITH_MEM, sizeof WITH_MEM - 1, &id2, wk, work - 1, wt, weight), ACL_ERROR_GE_PARAM_INVALID);
    CHECK_CODE(aclmdlLoadFromMemWithMem(WITH_MEM, sizeof WITH_MEM - 1, &id2, host, work, wt, weight), ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID);
    CHECK_CODE(aclmdlLoadFromMemWithMem(WITH_MEM, sizeof WITH_MEM - 1, &id2, small, work, NULL, 0), ACL_ERROR_RT_PARAM_INVALID);  /* runs past the block */
    CHECK_CODE(aclmdlLoadFromMemWithMem(NULL, 10, &id2, NULL, 0, NULL, 0), ACL_ERROR_INVALID_PARAM);
    /* NULL memory = the runtime's own */
    CHECK_OK(aclmdlLoadFromMemWithMem(WITH_MEM, sizeof WITH_MEM - 1, &id2, NULL, 0, NULL, 0));
    CHECK_OK(aclmdlLoadFromFileWithMem(sample("tiny"), &id3, NULL, 0, NULL, 0));
    CHECK_CODE(aclmdlLoadFromFileWithMem("/nonexistent.om", &id3, NULL, 0, NULL, 0), ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID);
    /* the user memory is held while the model is loaded */
    expect_findings(1);
    CHECK_CODE(aclrtFree(wk), ACL_ERROR_RT_MEMORY_FREE);
    CHECK_OK(aclmdlUnload(id));
    CHECK_OK(aclmdlUnload(id2));
    CHECK_OK(aclmdlUnload(id3));
    CHECK_OK(aclrtFree(wk));
    CHECK_OK(aclrtFree(wt));
    CHECK_OK(aclrtFree(small));
    CHECK_OK(aclrtFreeHost(host));
    teardown();
}

TEST(load_before_init_with_mem)
{
    uint32_t id;
    CHECK_CODE(aclmdlLoadFromFileWithMem(sample("tiny"), &id, NULL, 0, NULL, 0), ACL_ERROR_GE_EXEC_NOT_INIT);
    CHECK_CODE(aclmdlLoadFromMemWithMem(WITH_MEM, sizeof WITH_MEM - 1, &id, NULL, 0, NULL, 0), ACL_ERROR_GE_EXEC_NOT_INIT);
}

TEST(load_with_config)
{
    setup();
    aclmdlConfigHandle *h = aclmdlCreateConfigHandle();
    CHECK(h != NULL);
    fxemuCounters c;
    CHECK_OK(fxemuGetCounters(&c));
    CHECK_EQ_U64(c.load_configs, 1);
    uint32_t id;
    CHECK_CODE(aclmdlLoadWithConfig(h, &id), ACL_ERROR_INVALID_PARAM);   /* no load type */
    size_t type = ACL_MDL_LOAD_FROM_FILE;
    const char *path = sample("tiny");
    int32_t prio = 3;
    CHECK_OK(aclmdlSetConfigOpt(h, ACL_MDL_LOAD_TYPE_SIZET, &type, sizeof type));
    CHECK_OK(aclmdlSetConfigOpt(h, ACL_MDL_PATH_PTR, &path, sizeof path));
    CHECK_OK(aclmdlSetConfigOpt(h, ACL_MDL_PRIORITY_INT32, &prio, sizeof prio));
    CHECK_OK(aclmdlLoadWithConfig(h, &id));
    aclmdlAttrValue_t v;
    CHECK_OK(aclmdlGetAttribute(id, ACL_MDL_ATTR_PRIORITY_INT32, &v));
    CHECK_EQ_U64(v.mdlPriority, 3);
    CHECK_OK(aclmdlUnload(id));

    /* from memory with user memory */
    void *wk;
    CHECK_OK(aclrtMalloc(&wk, 4096, ACL_MEM_MALLOC_HUGE_FIRST));
    const void *mem = WITH_MEM;
    size_t size = sizeof WITH_MEM - 1, ws = 4096;
    type = ACL_MDL_LOAD_FROM_MEM_WITH_MEM;
    CHECK_OK(aclmdlSetConfigOpt(h, ACL_MDL_LOAD_TYPE_SIZET, &type, sizeof type));
    CHECK_OK(aclmdlSetConfigOpt(h, ACL_MDL_MEM_ADDR_PTR, &mem, sizeof mem));
    CHECK_OK(aclmdlSetConfigOpt(h, ACL_MDL_MEM_SIZET, &size, sizeof size));
    CHECK_OK(aclmdlSetConfigOpt(h, ACL_MDL_WORKSPACE_ADDR_PTR, &wk, sizeof wk));
    CHECK_OK(aclmdlSetConfigOpt(h, ACL_MDL_WORKSPACE_SIZET, &ws, sizeof ws));
    CHECK_OK(aclmdlLoadWithConfig(h, &id));
    CHECK_OK(aclmdlUnload(id));

    type = 9;
    CHECK_CODE(aclmdlSetConfigOpt(h, ACL_MDL_LOAD_TYPE_SIZET, &type, sizeof type), ACL_ERROR_INVALID_PARAM);
    prio = 8;
    CHECK_CODE(aclmdlSetConfigOpt(h, ACL_MDL_PRIORITY_INT32, &prio, sizeof prio), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetConfigOpt(h, ACL_MDL_PRIORITY_INT32, &prio, 8), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetConfigOpt(h, ACL_MDL_FIFO_PTR, &mem, sizeof mem), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetConfigOpt(h, ACL_MDL_PATH_PTR, NULL, 8), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclmdlDestroyConfigHandle(h));
    expect_findings(1);
    CHECK_CODE(aclmdlDestroyConfigHandle(h), ACL_ERROR_RT_INVALID_HANDLE);
    CHECK_OK(aclrtFree(wk));
    teardown();
}

TEST(model_attributes)
{
    setup();
    uint32_t id = load_tiny();
    aclmdlAttrValue_t v;
    memset(&v, 0, sizeof v);
    CHECK_OK(aclmdlGetAttribute(id, ACL_MDL_ATTR_PRIORITY_INT32, &v));
    CHECK_EQ_U64(v.mdlPriority, 0);
    v.mdlPriority = 7;
    CHECK_OK(aclmdlSetAttribute(id, ACL_MDL_ATTR_PRIORITY_INT32, &v));
    CHECK_OK(aclmdlGetAttribute(id, ACL_MDL_ATTR_PRIORITY_INT32, &v));
    CHECK_EQ_U64(v.mdlPriority, 7);
    v.mdlPriority = 8;
    CHECK_CODE(aclmdlSetAttribute(id, ACL_MDL_ATTR_PRIORITY_INT32, &v), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAttribute(id, (aclmdlAttr)1, &v), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlGetAttribute(id, ACL_MDL_ATTR_PRIORITY_INT32, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlGetAttribute(999, ACL_MDL_ATTR_PRIORITY_INT32, &v), ACL_ERROR_GE_EXEC_MODEL_ID_INVALID);
    CHECK_OK(aclmdlUnload(id));
    teardown();
}

TEST(static_model_queries)
{
    setup();
    uint32_t id;
    CHECK_OK(aclmdlLoadFromFile(sample("resnet50-int8"), &id));
    aclmdlDesc *d = aclmdlCreateDesc();
    CHECK_OK(aclmdlGetDesc(d, id));
    aclmdlIODims dims;
    CHECK_OK(aclmdlGetCurOutputDims(d, 0, &dims));
    check_str(dims.name, "logits");
    CHECK(dims.dimCount == 2 && dims.dims[0] == 8 && dims.dims[1] == 1000);
    CHECK_CODE(aclmdlGetCurOutputDims(d, 1, &dims), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlGetCurOutputDims(d, 0, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclmdlGetInputDimsV2(d, 0, &dims));
    CHECK(dims.dimCount == 4 && dims.dims[1] == 3 && dims.dims[3] == 224);
    aclmdlIODimsRange range;
    CHECK_OK(aclmdlGetInputDimsRange(d, 0, &range));
    CHECK(range.rangeCount == 4 && range.range[0][0] == 8 && range.range[0][1] == 8 && range.range[2][1] == 224);
    CHECK_CODE(aclmdlGetInputDimsRange(d, 1, &range), ACL_ERROR_INVALID_PARAM);

    size_t gears = 99;
    CHECK_OK(aclmdlGetInputDynamicGearCount(d, (size_t)-1, &gears));
    CHECK_EQ_U64(gears, 0);
    CHECK_CODE(aclmdlGetInputDynamicGearCount(d, 0, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclmdlGetInputDynamicDims(d, (size_t)-1, &dims, 0));
    CHECK_CODE(aclmdlGetInputDynamicDims(d, 0, NULL, 0), ACL_ERROR_INVALID_PARAM);
    aclmdlHW hw;
    hw.hwCount = 99;
    CHECK_OK(aclmdlGetDynamicHW(d, (size_t)-1, &hw));
    CHECK_EQ_U64(hw.hwCount, 0);
    CHECK_CODE(aclmdlGetDynamicHW(d, 0, NULL), ACL_ERROR_INVALID_PARAM);

    aclmdlInputAippType type = ACL_DYNAMIC_AIPP_NODE;
    size_t attached = 0;
    CHECK_OK(aclmdlGetAippType(id, 0, &type, &attached));
    CHECK(type == ACL_DATA_WITHOUT_AIPP && attached == ACL_INVALID_NODE_INDEX);
    CHECK_CODE(aclmdlGetAippType(id, 1, &type, &attached), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlGetAippType(id, 0, NULL, &attached), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlGetAippType(999, 0, &type, &attached), ACL_ERROR_GE_EXEC_MODEL_ID_INVALID);

    check_str(aclmdlGetTensorRealName(d, "data"), "data");
    check_str(aclmdlGetTensorRealName(d, "logits"), "logits");
    CHECK(aclmdlGetTensorRealName(d, "nope") == NULL);
    CHECK(aclmdlGetTensorRealName(d, NULL) == NULL);

    /* a static model has no gears to set */
    aclmdlDataset *ds = aclmdlCreateDataset();
    CHECK_CODE(aclmdlSetDynamicHWSize(id, ds, 0, 224, 224), ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID);
    CHECK_CODE(aclmdlSetDynamicHWSize(id, ds, 0, 0, 224), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetInputDynamicDims(id, ds, 0, &dims), ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID);
    CHECK_CODE(aclmdlSetInputDynamicDims(id, ds, 0, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetInputDynamicDims(999, ds, 0, &dims), ACL_ERROR_GE_EXEC_MODEL_ID_INVALID);
    CHECK_OK(aclmdlDestroyDataset(ds));

    /* the same description from the file, without loading */
    aclmdlDesc *f = aclmdlCreateDesc();
    CHECK_OK(aclmdlGetDescFromFile(f, sample("resnet50-int8")));
    CHECK_EQ_U64(aclmdlGetNumInputs(f), 1);
    CHECK_EQ_U64(aclmdlGetOutputSizeByIndex(f, 0), 8 * 1000 * 2);
    CHECK_CODE(aclmdlGetDescFromFile(f, "/nonexistent.om"), ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID);
    CHECK_CODE(aclmdlGetDescFromFile(f, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclmdlDestroyDesc(f));
    CHECK_OK(aclmdlDestroyDesc(d));
    CHECK_OK(aclmdlUnload(id));
    teardown();
}

TEST(dynamic_batch_cur_output_dims)
{
    setup();
    uint32_t id;
    CHECK_OK(aclmdlLoadFromFile(sample("dynamic-batch"), &id));
    aclmdlDesc *d = aclmdlCreateDesc();
    CHECK_OK(aclmdlGetDesc(d, id));
    aclmdlIODims dims;
    CHECK_OK(aclmdlGetOutputDims(d, 0, &dims));
    CHECK(dims.dims[0] == -1);
    CHECK_OK(aclmdlGetCurOutputDims(d, 0, &dims));
    CHECK(dims.dimCount == 2 && dims.dims[0] == 8 && dims.dims[1] == 10);   /* none set: the largest gear */
    aclmdlIODimsRange range;
    CHECK_OK(aclmdlGetInputDimsRange(d, 0, &range));
    CHECK(range.range[0][0] == 1 && range.range[0][1] == 8 && range.range[1][0] == 3);
    size_t gears = 99;
    CHECK_OK(aclmdlGetInputDynamicGearCount(d, (size_t)-1, &gears));
    CHECK_EQ_U64(gears, 0);

    /* build the input dataset the documented way and set gear 4 */
    aclmdlDataset *in = aclmdlCreateDataset();
    void *bufs[2];
    for (size_t i = 0; i < 2; i++) {
        size_t n = aclmdlGetInputSizeByIndex(d, i);
        CHECK_OK(aclrtMalloc(&bufs[i], n, ACL_MEM_MALLOC_HUGE_FIRST));
        CHECK_OK(aclmdlAddDatasetBuffer(in, aclCreateDataBuffer(bufs[i], n)));
    }
    CHECK_OK(aclmdlSetDynamicBatchSize(id, in, 1, 4));
    CHECK_OK(aclmdlGetCurOutputDims(d, 0, &dims));
    CHECK(dims.dims[0] == 4 && dims.dims[1] == 10);
    /* a description read from the file knows no current gear */
    aclmdlDesc *f = aclmdlCreateDesc();
    CHECK_OK(aclmdlGetDescFromFile(f, sample("dynamic-batch")));
    CHECK_OK(aclmdlGetCurOutputDims(f, 0, &dims));
    CHECK(dims.dims[0] == 8);
    CHECK_OK(aclmdlDestroyDesc(f));
    CHECK_CODE(aclmdlSetDynamicHWSize(id, in, 1, 16, 16), ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID);

    for (size_t i = 0; i < 2; i++) {
        CHECK_OK(aclDestroyDataBuffer(aclmdlGetDatasetBuffer(in, i)));
        CHECK_OK(aclrtFree(bufs[i]));
    }
    CHECK_OK(aclmdlDestroyDataset(in));
    CHECK_OK(aclmdlDestroyDesc(d));
    CHECK_OK(aclmdlUnload(id));
    teardown();
}

TEST(dataset_tensor_descs)
{
    setup();
    uint32_t id;
    CHECK_OK(aclmdlLoadFromFile(sample("dynamic-batch"), &id));
    aclmdlDesc *d = aclmdlCreateDesc();
    CHECK_OK(aclmdlGetDesc(d, id));
    aclmdlDataset *in = aclmdlCreateDataset(), *out = aclmdlCreateDataset();
    void *bufs[3];
    for (size_t i = 0; i < 3; i++) {
        size_t n = i < 2 ? aclmdlGetInputSizeByIndex(d, i) : aclmdlGetOutputSizeByIndex(d, 0);
        CHECK_OK(aclrtMalloc(&bufs[i], n, ACL_MEM_MALLOC_HUGE_FIRST));
        CHECK_OK(aclrtMemset(bufs[i], n, 0, n));
        CHECK_OK(aclmdlAddDatasetBuffer(i < 2 ? in : out, aclCreateDataBuffer(bufs[i], n)));
    }
    CHECK(aclmdlGetDatasetTensorDesc(out, 0) == NULL);   /* nothing before an execution */
    int64_t shape[4] = {2, 3, 16, 16};
    aclTensorDesc *td = aclCreateTensorDesc(ACL_FLOAT, 4, shape, ACL_FORMAT_NCHW);
    CHECK_OK(aclmdlSetDatasetTensorDesc(in, td, 0));
    CHECK_CODE(aclmdlSetDatasetTensorDesc(in, td, 5), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetDatasetTensorDesc(in, NULL, 0), ACL_ERROR_INVALID_PARAM);
    aclDestroyTensorDesc(td);   /* the dataset holds its own copy */
    aclTensorDesc *kept = aclmdlGetDatasetTensorDesc(in, 0);
    CHECK(kept != NULL && aclGetTensorDescNumDims(kept) == 4 && aclGetTensorDescElementCount(kept) == 2 * 3 * 16 * 16);
    CHECK(aclmdlGetDatasetTensorDesc(in, 1) == NULL);
    CHECK(aclmdlGetDatasetTensorDesc(NULL, 0) == NULL);

    /* after an execution at gear 2, the output dataset describes the real output shape */
    CHECK_OK(aclmdlSetDynamicBatchSize(id, in, 1, 2));
    CHECK_OK(aclmdlExecute(id, in, out));
    aclTensorDesc *o = aclmdlGetDatasetTensorDesc(out, 0);
    CHECK(o != NULL);
    int64_t v0 = 0, v1 = 0;
    CHECK_OK(aclGetTensorDescDimV2(o, 0, &v0));
    CHECK_OK(aclGetTensorDescDimV2(o, 1, &v1));
    CHECK(v0 == 2 && v1 == 10 && aclGetTensorDescType(o) == ACL_FLOAT && aclGetTensorDescSize(o) == 80);
    CHECK_OK(aclmdlSetDynamicBatchSize(id, in, 1, 8));
    CHECK_OK(aclmdlExecute(id, in, out));
    CHECK_OK(aclGetTensorDescDimV2(aclmdlGetDatasetTensorDesc(out, 0), 0, &v0));
    CHECK_EQ_U64(v0, 8);
    fxemuCounters c;
    CHECK_OK(fxemuGetCounters(&c));
    CHECK_EQ_U64(c.tensor_descs, 2);   /* the datasets' own */

    for (size_t i = 0; i < 3; i++) {
        CHECK_OK(aclDestroyDataBuffer(aclmdlGetDatasetBuffer(i < 2 ? in : out, i < 2 ? i : 0)));
        CHECK_OK(aclrtFree(bufs[i]));
    }
    CHECK_OK(aclmdlDestroyDataset(in));
    CHECK_OK(aclmdlDestroyDataset(out));   /* frees its descriptions */
    CHECK_OK(aclmdlDestroyDesc(d));
    CHECK_OK(aclmdlUnload(id));
    teardown();
}

/* ================================================================ device exceptions */

static struct {
    int calls;
    uint32_t device, stream, task, code, tid;
    int sync_seen;   /* the failing synchronisation had not returned when the callback ran */
} seen;
static volatile int sync_returned;

static void on_exception(aclrtExceptionInfo *info)
{
    seen.calls++;
    seen.device = aclrtGetDeviceIdFromExceptionInfo(info);
    seen.stream = aclrtGetStreamIdFromExceptionInfo(info);
    seen.task = aclrtGetTaskIdFromExceptionInfo(info);
    seen.code = aclrtGetErrorCodeFromExceptionInfo(info);
    seen.tid = aclrtGetThreadIdFromExceptionInfo(info);
    seen.sync_seen = sync_returned;
}

TEST(exception_callback_and_op_desc)
{
    CHECK(aclrtGetDeviceIdFromExceptionInfo(NULL) == 0xFFFFFFFFu && aclrtGetStreamIdFromExceptionInfo(NULL) == 0xFFFFFFFFu &&
          aclrtGetTaskIdFromExceptionInfo(NULL) == 0xFFFFFFFFu && aclrtGetThreadIdFromExceptionInfo(NULL) == 0xFFFFFFFFu &&
          aclrtGetErrorCodeFromExceptionInfo(NULL) == 0xFFFFFFFFu);
    setup();
    CHECK_OK(aclrtSetExceptionInfoCallback(on_exception));
    uint32_t id;
    CHECK_OK(aclmdlLoadFromFile(sample("multi-io"), &id));
    aclmdlDesc *d = aclmdlCreateDesc();
    CHECK_OK(aclmdlGetDesc(d, id));
    aclmdlDataset *in = aclmdlCreateDataset(), *out = aclmdlCreateDataset();
    void *bufs[4];
    for (size_t i = 0; i < 4; i++) {
        size_t n = i < 2 ? aclmdlGetInputSizeByIndex(d, i) : aclmdlGetOutputSizeByIndex(d, i - 2);
        CHECK_OK(aclrtMalloc(&bufs[i], n, ACL_MEM_MALLOC_HUGE_FIRST));
        CHECK_OK(aclrtMemset(bufs[i], n, 0, n));
        CHECK_OK(aclmdlAddDatasetBuffer(i < 2 ? in : out, aclCreateDataBuffer(bufs[i], n)));
    }
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    /* tasks 0..2 succeed, task 3 (the second execution) raises an AI Core exception */
    CHECK_OK(fxemuAddFault("task:aclmdlExecuteAsync:2:507015"));
    CHECK_OK(aclmdlExecuteAsync(id, in, out, s));
    CHECK_OK(aclrtMemsetAsync(bufs[2], 16, 1, 16, s));
    CHECK_OK(fxemuStallStream(s, 1));
    CHECK_OK(aclmdlExecuteAsync(id, in, out, s));
    sync_returned = 0;
    CHECK_CODE(aclrtSynchronizeStream(s), ACL_ERROR_RT_AICORE_EXCEPTION);
    sync_returned = 1;
    CHECK_EQ_U64(seen.calls, 1);
    CHECK_EQ_U64(seen.sync_seen, 0);
    CHECK_EQ_U64(seen.device, 0);
    CHECK_EQ_U64(seen.task, 3);
    CHECK_EQ_U64(seen.code, 507015);
    CHECK(seen.tid != 0 && seen.tid != 0xFFFFFFFFu);

    char name[64];
    aclTensorDesc *ins = NULL, *outs = NULL;
    size_t n_in = 0, n_out = 0;
    CHECK_OK(aclmdlCreateAndGetOpDesc(seen.device, seen.stream, seen.task, name, sizeof name, &ins, &n_in, &outs, &n_out));
    check_str(name, "multi-io");
    CHECK(n_in == 2 && n_out == 2);
    aclTensorDesc *b = aclGetTensorDescByIndex(ins, 1);
    CHECK(b != NULL && aclGetTensorDescType(b) == ACL_FLOAT16 && aclGetTensorDescNumDims(b) == 2);
    int64_t v;
    CHECK_OK(aclGetTensorDescDimV2(b, 1, &v));
    CHECK_EQ_U64(v, 32);
    CHECK_EQ_U64(aclGetTensorDescType(aclGetTensorDescByIndex(outs, 0)), ACL_INT32);
    CHECK(aclGetTensorDescByIndex(ins, 2) == NULL);
    fxemuCounters c;
    CHECK_OK(fxemuGetCounters(&c));
    CHECK_EQ_U64(c.tensor_descs, 4);   /* the two arrays + the output dataset's two */
    aclDestroyTensorDesc(b);           /* an element of an array: refused, the array stays */
    CHECK_OK(fxemuGetCounters(&c));
    CHECK_EQ_U64(c.tensor_descs, 4);
    aclDestroyTensorDesc(ins);
    aclDestroyTensorDesc(outs);

    CHECK_CODE(aclmdlCreateAndGetOpDesc(seen.device, seen.stream, seen.task + 1, name, sizeof name, &ins, &n_in, &outs, &n_out),
               ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlCreateAndGetOpDesc(seen.device, seen.stream, seen.task, name, 4, &ins, &n_in, &outs, &n_out), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlCreateAndGetOpDesc(seen.device, seen.stream, seen.task, NULL, 64, &ins, &n_in, &outs, &n_out), ACL_ERROR_INVALID_PARAM);

    /* a failed copy is described too; without a callback nothing is called */
    CHECK_OK(fxemuAddFault("task:aclrtMemcpyAsync:1:507013"));
    CHECK_OK(aclrtMemcpyAsync(bufs[3], 64, bufs[2], 64, ACL_MEMCPY_DEVICE_TO_DEVICE, s));
    CHECK_CODE(aclrtSynchronizeStream(s), ACL_ERROR_RT_SYS_DMA);
    CHECK_EQ_U64(seen.calls, 2);
    CHECK_OK(aclmdlCreateAndGetOpDesc(0, seen.stream, 4, name, sizeof name, &ins, &n_in, &outs, &n_out));
    check_str(name, "MemcpyAsync");
    CHECK(n_in == 1 && n_out == 1 && aclGetTensorDescSize(ins) == 64);
    aclDestroyTensorDesc(ins);
    aclDestroyTensorDesc(outs);
    CHECK_OK(aclrtSetExceptionInfoCallback(NULL));
    CHECK_OK(fxemuAddFault("task:aclrtMemsetAsync:1:507015"));
    CHECK_OK(aclrtMemsetAsync(bufs[2], 16, 1, 16, s));
    CHECK_CODE(aclrtSynchronizeStream(s), ACL_ERROR_RT_AICORE_EXCEPTION);
    CHECK_EQ_U64(seen.calls, 2);

    for (size_t i = 0; i < 4; i++) {
        CHECK_OK(aclDestroyDataBuffer(aclmdlGetDatasetBuffer(i < 2 ? in : out, i % 2)));
        CHECK_OK(aclrtFree(bufs[i]));
    }
    CHECK_OK(aclmdlDestroyDataset(in));
    CHECK_OK(aclmdlDestroyDataset(out));
    CHECK_OK(aclrtDestroyStream(s));
    CHECK_OK(aclmdlDestroyDesc(d));
    CHECK_OK(aclmdlUnload(id));
    teardown();
}

TEST_ENV(exception_device_id_is_logical, "FASTEXEC_EMU_DEVICES=4 ASCEND_RT_VISIBLE_DEVICES=2,3")
{
    CHECK_OK(aclInit(NULL));
    CHECK_OK(aclrtSetExceptionInfoCallback(on_exception));
    CHECK_OK(aclrtSetDevice(1));
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    CHECK_OK(fxemuAddFault("task:fxemuStallStream:1:507015"));
    CHECK_OK(fxemuStallStream(s, 1));
    CHECK_CODE(aclrtSynchronizeStream(s), ACL_ERROR_RT_AICORE_EXCEPTION);
    CHECK_EQ_U64(seen.calls, 1);
    CHECK_EQ_U64(seen.device, 1);
    CHECK_EQ_U64(seen.task, 0);
    char name[32];
    aclTensorDesc *ins = (aclTensorDesc *)1, *outs = (aclTensorDesc *)1;
    size_t n_in = 9, n_out = 9;
    CHECK_OK(aclmdlCreateAndGetOpDesc(1, seen.stream, 0, name, sizeof name, &ins, &n_in, &outs, &n_out));
    check_str(name, "Stall");
    CHECK(n_in == 0 && n_out == 0 && ins == NULL && outs == NULL);
    CHECK_OK(aclrtDestroyStream(s));
    CHECK_OK(aclrtResetDevice(1));
    CHECK_OK(aclFinalize());
}
