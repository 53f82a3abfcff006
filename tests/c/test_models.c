/* C tests of the emulator's model API (docs/emulator.md "Models" and "Checked mode",
 * docs/model-format.md): loading, descriptions, datasets, execution with real data checked
 * bit for bit against references computed here, dynamic batch, V2 execution and exec
 * configs, checked-mode findings, fault injection and threads.
 *
 * Every case runs in its own process (tests/test_emulator_c.py); the harness checks after
 * each case that all resources are released and that the findings match expect_findings().
 */
#include "emu_test.h"

#define SENTINEL 0x5A /* untouched output bytes */
#define MAXIO 4

/* ================================================================ assertions */

static void check_bytes_at(const char *file, int line, const void *got, const void *want, size_t n, const char *what)
{
    const unsigned char *g = got, *w = want;
    for (size_t i = 0; i < n; i++) {
        if (g[i] != w[i]) {
            char b[512];
            snprintf(b, sizeof b, "%s: byte %zu of %zu is 0x%02x, expected 0x%02x", what, i, n, g[i], w[i]);
            fail_at(file, line, b);
        }
    }
}
#define CHECK_BYTES(got, want, n, what) check_bytes_at(__FILE__, __LINE__, (got), (want), (n), (what))

static void check_all_at(const char *file, int line, const void *got, unsigned char value, size_t n, const char *what)
{
    const unsigned char *g = got;
    for (size_t i = 0; i < n; i++) {
        if (g[i] != value) {
            char b[512];
            snprintf(b, sizeof b, "%s: byte %zu of %zu is 0x%02x, expected it untouched (0x%02x)", what, i, n, g[i], value);
            fail_at(file, line, b);
        }
    }
}
#define CHECK_ALL(got, value, n, what) check_all_at(__FILE__, __LINE__, (got), (value), (n), (what))

static void check_str_at(const char *file, int line, const char *got, const char *want)
{
    if (!got || strcmp(got, want) != 0) {
        char b[512];
        snprintf(b, sizeof b, "string is '%s', expected '%s'", got ? got : "(null)", want);
        fail_at(file, line, b);
    }
}
#define CHECK_STR(got, want) check_str_at(__FILE__, __LINE__, (got), (want))

static void check_contains_at(const char *file, int line, const char *hay, const char *needle, const char *what)
{
    if (!hay || !strstr(hay, needle)) {
        char b[1024];
        snprintf(b, sizeof b, "%s is '%s', expected it to contain '%s'", what, hay ? hay : "(none)", needle);
        fail_at(file, line, b);
    }
}

static void check_range_at(const char *file, int line, double v, double lo, double hi, const char *what)
{
    if (!(v >= lo && v < hi)) {
        char b[256];
        snprintf(b, sizeof b, "%s is %.3f, expected it in [%.3f, %.3f)", what, v, lo, hi);
        fail_at(file, line, b);
    }
}
#define CHECK_RANGE(v, lo, hi, what) check_range_at(__FILE__, __LINE__, (v), (lo), (hi), (what))

static fxemuCounters counters(void)
{
    fxemuCounters c;
    CHECK_OK(fxemuGetCounters(&c));
    return c;
}

/* The finding counters and the text of the last finding. */
static void check_finding_at(const char *file, int line, fxemuFindingKind kind, uint64_t total, uint64_t of_kind, const char *needle)
{
    fxemuCounters c = counters();
    if (c.findings != total || c.findings_by_kind[kind] != of_kind) {
        char b[256];
        snprintf(b, sizeof b, "findings %llu (kind %d: %llu), expected %llu (kind %d: %llu)", (unsigned long long)c.findings, (int)kind,
                 (unsigned long long)c.findings_by_kind[kind], (unsigned long long)total, (int)kind, (unsigned long long)of_kind);
        fail_at(file, line, b);
    }
    uint64_t others = 0;
    for (int k = 0; k < FXEMU_FINDING_KINDS; k++) others += k == (int)kind ? 0 : c.findings_by_kind[k];
    if (others + of_kind != total) fail_at(file, line, "findings_by_kind does not add up to findings");
    char last[1024];
    CHECK_OK(fxemuLastFinding(last, sizeof last));
    check_contains_at(file, line, last, needle, "fxemuLastFinding");
}
#define CHECK_FINDING(kind, total, of_kind, needle) check_finding_at(__FILE__, __LINE__, (kind), (total), (of_kind), (needle))

/* ================================================================ float16 reference */

static double pow2i(int e)
{
    double v = 1.0;
    for (; e > 0; e--) v *= 2.0;
    for (; e < 0; e++) v /= 2.0;
    return v;
}

/* double -> IEEE binary16, round to nearest even; only zero and normal results (|x| < 65520). */
static uint16_t f16_from_double(double x)
{
    uint16_t sign = 0;
    if (x < 0) {
        sign = 0x8000;
        x = -x;
    }
    if (x == 0) return sign;
    int e = 0;
    double m = x;
    while (m >= 2.0) {
        m /= 2.0;
        e++;
    }
    while (m < 1.0) {
        m *= 2.0;
        e--;
    }
    CHECK(e >= -14 && e <= 15);
    double frac = (m - 1.0) * 1024.0; /* exact */
    uint32_t f = (uint32_t)frac;
    double rem = frac - (double)f;
    if (rem > 0.5 || (rem == 0.5 && (f & 1u))) f++;
    if (f == 1024) {
        f = 0;
        e++;
    }
    CHECK(e <= 15);
    return (uint16_t)(sign | (uint16_t)((e + 15) << 10) | (uint16_t)f);
}

static double f16_to_double(uint16_t h)
{
    int e = (h >> 10) & 31;
    double f = (double)(h & 1023);
    CHECK(e != 31);
    double v = e == 0 ? f * pow2i(-24) : (1.0 + f / 1024.0) * pow2i(e - 15);
    return (h & 0x8000) ? -v : v;
}

/* ================================================================ a model with its buffers */

typedef struct {
    uint32_t id;
    int owns_model;
    aclmdlDesc *desc;
    size_t n_in, n_out;
    long dyn;          /* index of the ascend_mbatch_shape_data input, -1 if none */
    uint64_t max_batch;
    size_t in_size[MAXIO], out_size[MAXIO];
    void *dev_in[MAXIO], *dev_out[MAXIO];
    unsigned char *host_in[MAXIO], *host_out[MAXIO]; /* pinned */
    aclDataBuffer *buf_in[MAXIO], *buf_out[MAXIO];
    aclmdlDataset *in, *out;
} rig;

/* Device buffers of the description's sizes, pinned host buffers, datasets. Outputs start
 * filled with SENTINEL. */
static void rig_attach(rig *r, uint32_t id)
{
    memset(r, 0, sizeof *r);
    r->id = id;
    r->dyn = -1;
    r->desc = aclmdlCreateDesc();
    CHECK(r->desc != NULL);
    CHECK_OK(aclmdlGetDesc(r->desc, id));
    r->n_in = aclmdlGetNumInputs(r->desc);
    r->n_out = aclmdlGetNumOutputs(r->desc);
    CHECK(r->n_in >= 1 && r->n_in <= MAXIO && r->n_out >= 1 && r->n_out <= MAXIO);
    aclmdlIODims d;
    CHECK_OK(aclmdlGetInputDims(r->desc, 0, &d));
    if (d.dims[0] > 0) {
        r->max_batch = (uint64_t)d.dims[0];
    } else {
        aclmdlBatch b;
        CHECK_OK(aclmdlGetDynamicBatch(r->desc, &b));
        CHECK(b.batchCount > 0);
        r->max_batch = b.batch[b.batchCount - 1];
    }
    r->in = aclmdlCreateDataset();
    r->out = aclmdlCreateDataset();
    CHECK(r->in && r->out);
    for (size_t i = 0; i < r->n_in; i++) {
        if (strcmp(aclmdlGetInputNameByIndex(r->desc, i), ACL_DYNAMIC_TENSOR_NAME) == 0) r->dyn = (long)i;
        r->in_size[i] = aclmdlGetInputSizeByIndex(r->desc, i);
        CHECK(r->in_size[i] > 0);
        CHECK_OK(aclrtMalloc(&r->dev_in[i], r->in_size[i], ACL_MEM_MALLOC_HUGE_FIRST));
        CHECK_OK(aclrtMallocHost((void **)&r->host_in[i], r->in_size[i]));
        memset(r->host_in[i], 0, r->in_size[i]);
        r->buf_in[i] = aclCreateDataBuffer(r->dev_in[i], r->in_size[i]);
        CHECK(r->buf_in[i] != NULL);
        CHECK_OK(aclmdlAddDatasetBuffer(r->in, r->buf_in[i]));
    }
    for (size_t i = 0; i < r->n_out; i++) {
        r->out_size[i] = aclmdlGetOutputSizeByIndex(r->desc, i);
        CHECK(r->out_size[i] > 0);
        CHECK_OK(aclrtMalloc(&r->dev_out[i], r->out_size[i], ACL_MEM_MALLOC_HUGE_FIRST));
        CHECK_OK(aclrtMemset(r->dev_out[i], r->out_size[i], SENTINEL, r->out_size[i]));
        CHECK_OK(aclrtMallocHost((void **)&r->host_out[i], r->out_size[i]));
        memset(r->host_out[i], 0, r->out_size[i]);
        r->buf_out[i] = aclCreateDataBuffer(r->dev_out[i], r->out_size[i]);
        CHECK(r->buf_out[i] != NULL);
        CHECK_OK(aclmdlAddDatasetBuffer(r->out, r->buf_out[i]));
    }
}

static void rig_open(rig *r, const char *path)
{
    uint32_t id;
    CHECK_OK(aclmdlLoadFromFile(path, &id));
    rig_attach(r, id);
    r->owns_model = 1;
}

/* Releases everything; memory pointers set to NULL were already freed by the test. */
static void rig_close(rig *r)
{
    CHECK_OK(aclmdlDestroyDataset(r->in));
    CHECK_OK(aclmdlDestroyDataset(r->out));
    for (size_t i = 0; i < r->n_in; i++) {
        CHECK_OK(aclDestroyDataBuffer(r->buf_in[i]));
        if (r->dev_in[i]) CHECK_OK(aclrtFree(r->dev_in[i]));
        if (r->host_in[i]) CHECK_OK(aclrtFreeHost(r->host_in[i]));
    }
    for (size_t i = 0; i < r->n_out; i++) {
        CHECK_OK(aclDestroyDataBuffer(r->buf_out[i]));
        if (r->dev_out[i]) CHECK_OK(aclrtFree(r->dev_out[i]));
        if (r->host_out[i]) CHECK_OK(aclrtFreeHost(r->host_out[i]));
    }
    CHECK_OK(aclmdlDestroyDesc(r->desc));
    if (r->owns_model) CHECK_OK(aclmdlUnload(r->id));
}

/* Outputs back to SENTINEL on the device, host copies zeroed. */
static void rig_poison(rig *r)
{
    for (size_t i = 0; i < r->n_out; i++) {
        CHECK_OK(aclrtMemset(r->dev_out[i], r->out_size[i], SENTINEL, r->out_size[i]));
        memset(r->host_out[i], 0, r->out_size[i]);
    }
}

static void rig_upload(rig *r)
{
    for (size_t i = 0; i < r->n_in; i++)
        if ((long)i != r->dyn)
            CHECK_OK(aclrtMemcpy(r->dev_in[i], r->in_size[i], r->host_in[i], r->in_size[i], ACL_MEMCPY_HOST_TO_DEVICE));
}

static void rig_download(rig *r)
{
    for (size_t i = 0; i < r->n_out; i++)
        CHECK_OK(aclrtMemcpy(r->host_out[i], r->out_size[i], r->dev_out[i], r->out_size[i], ACL_MEMCPY_DEVICE_TO_HOST));
}

static void rig_upload_async(rig *r, aclrtStream s)
{
    for (size_t i = 0; i < r->n_in; i++)
        if ((long)i != r->dyn)
            CHECK_OK(aclrtMemcpyAsync(r->dev_in[i], r->in_size[i], r->host_in[i], r->in_size[i], ACL_MEMCPY_HOST_TO_DEVICE, s));
}

static void rig_download_async(rig *r, aclrtStream s)
{
    for (size_t i = 0; i < r->n_out; i++)
        CHECK_OK(aclrtMemcpyAsync(r->host_out[i], r->out_size[i], r->dev_out[i], r->out_size[i], ACL_MEMCPY_DEVICE_TO_HOST, s));
}

/* The device's output bytes are all SENTINEL (nothing was written). */
static void check_outputs_untouched_at(const char *file, int line, rig *r)
{
    rig_download(r);
    for (size_t i = 0; i < r->n_out; i++) check_all_at(file, line, r->host_out[i], SENTINEL, r->out_size[i], "output");
}
#define CHECK_UNTOUCHED(r) check_outputs_untouched_at(__FILE__, __LINE__, (r))

static int64_t read_dyn(rig *r)
{
    int64_t v = -1;
    CHECK(r->dyn >= 0);
    CHECK_OK(aclrtMemcpy(&v, sizeof v, r->dev_in[r->dyn], sizeof v, ACL_MEMCPY_DEVICE_TO_HOST));
    return v;
}

/* ================================================================ models: inputs and references */

typedef struct {
    const char *sample;
    void (*fill)(rig *r, unsigned seed);
    /* Expected bytes of output k after a run over `batch` samples; `want` holds SENTINEL. */
    void (*expect)(const rig *r, uint64_t batch, size_t k, unsigned char *want);
} model_kind;

static size_t seg_lo(size_t j, size_t n, size_t m) { return (size_t)((uint64_t)j * n / m); }

/* tiny: identity. */
static void tiny_fill(rig *r, unsigned seed)
{
    float *x = (float *)r->host_in[0];
    for (size_t i = 0; i < r->in_size[0] / 4; i++) x[i] = (float)seed * 0.5f + (float)i * 1.25f - 3.0f;
}
static void tiny_expect(const rig *r, uint64_t batch, size_t k, unsigned char *want)
{
    (void)batch;
    (void)k;
    memcpy(want, r->host_in[0], r->out_size[0]);
}

/* float32 affine scale 2 bias 0.5 (balanced and the small thread model). */
static void affine_fill(rig *r, unsigned seed)
{
    float *x = (float *)r->host_in[0];
    for (size_t i = 0; i < r->in_size[0] / 4; i++) {
        if (i % 7 == 3) x[i] = (float)i * 0.001f + (float)seed * 0.37f - 50.0f; /* results that round */
        else x[i] = (float)((int)((i * 37 + seed * 11) % 2001) - 1000) * 0.125f;
    }
}
static void affine_expect(const rig *r, uint64_t batch, size_t k, unsigned char *want)
{
    (void)k;
    const float *x = (const float *)r->host_in[0];
    size_t n = r->out_size[0] / 4 / r->max_batch * batch;
    for (size_t i = 0; i < n; i++) {
        float y = (float)((double)x[i] * 2.0 + 0.5);
        memcpy(want + 4 * i, &y, 4);
    }
}

/* multi-io: affine scale 3 bias -1 on int32 (a) and float16 (b). */
static void multi_fill(rig *r, unsigned seed)
{
    int32_t *a = (int32_t *)r->host_in[0];
    uint16_t *b = (uint16_t *)r->host_in[1];
    for (size_t i = 0; i < r->in_size[0] / 4; i++) a[i] = (int32_t)((int64_t)(i * 1000003u % 100000007u) - 50000000 + (int64_t)seed);
    a[5] = INT32_MAX; /* wraps */
    a[6] = INT32_MIN;
    a[7] = -(int32_t)seed;
    for (size_t i = 0; i < r->in_size[1] / 2; i++) b[i] = f16_from_double((double)((int)((i + seed) % 33) - 16) * 0.25);
}
static void multi_expect(const rig *r, uint64_t batch, size_t k, unsigned char *want)
{
    (void)batch;
    if (k == 0) {
        const int32_t *a = (const int32_t *)r->host_in[0];
        for (size_t i = 0; i < r->out_size[0] / 4; i++) {
            uint32_t y = (uint32_t)((int64_t)a[i] * 3 - 1);
            memcpy(want + 4 * i, &y, 4);
        }
    } else {
        const uint16_t *b = (const uint16_t *)r->host_in[1];
        for (size_t i = 0; i < r->out_size[1] / 2; i++) {
            uint16_t y = f16_from_double(f16_to_double(b[i]) * 3.0 - 1.0); /* exact */
            memcpy(want + 2 * i, &y, 2);
        }
    }
}

/* resnet50-int8: uint8 (8,3,224,224) -> float16 (8,1000), segment_sum scale 0.0066. */
#define RN_N ((size_t)3 * 224 * 224)
#define RN_M ((size_t)1000)
static void resnet_fill(rig *r, unsigned seed)
{
    uint8_t *x = r->host_in[0];
    for (size_t g = 0; g < r->in_size[0]; g++) x[g] = (uint8_t)((((uint32_t)g * 2654435761u) >> 24) ^ (seed * 37u));
}
static void resnet_expect(const rig *r, uint64_t batch, size_t k, unsigned char *want)
{
    (void)k;
    const uint8_t *x = r->host_in[0];
    for (uint64_t b = 0; b < batch; b++) {
        for (size_t j = 0; j < RN_M; j++) {
            uint64_t s = 0;
            for (size_t i = seg_lo(j, RN_N, RN_M); i < seg_lo(j + 1, RN_N, RN_M); i++) s += x[b * RN_N + i];
            uint16_t h = f16_from_double((double)s * 0.0066 + 0.0);
            memcpy(want + (b * RN_M + j) * 2, &h, 2);
        }
    }
}

/* dynamic-batch: float32 (-1,3,16,16) -> float32 (-1,10), segment_sum scale 1. */
#define DB_N ((size_t)3 * 16 * 16)
#define DB_M ((size_t)10)
static void dyn_fill(rig *r, unsigned seed)
{
    float *x = (float *)r->host_in[0];
    for (size_t g = 0; g < r->in_size[0] / 4; g++) x[g] = (float)((int)((g * 7 + seed * 3 + g / DB_N) % 13) - 6);
}
static void dyn_expect(const rig *r, uint64_t batch, size_t k, unsigned char *want)
{
    (void)k;
    const float *x = (const float *)r->host_in[0];
    for (uint64_t b = 0; b < batch; b++) {
        for (size_t j = 0; j < DB_M; j++) {
            size_t lo = seg_lo(j, DB_N, DB_M), hi = seg_lo(j + 1, DB_N, DB_M);
            double s = x[b * DB_N + lo];
            for (size_t i = lo + 1; i < hi; i++) s += x[b * DB_N + i];
            float y = (float)(s * 1.0 + 0.0);
            memcpy(want + (b * DB_M + j) * 4, &y, 4);
        }
    }
}

static const model_kind MK_TINY = {"tiny", tiny_fill, tiny_expect};
static const model_kind MK_BALANCED = {"balanced", affine_fill, affine_expect};
static const model_kind MK_MULTI = {"multi-io", multi_fill, multi_expect};
static const model_kind MK_RESNET = {"resnet50-int8", resnet_fill, resnet_expect};
static const model_kind MK_DYN = {"dynamic-batch", dyn_fill, dyn_expect};

/* A balanced-like small model for the thread tests. */
static const char SMALL_MODEL[] = "fastexec-emulator-model 1\n"
                                  "name small\n"
                                  "input x float32 ND 4,256\n"
                                  "output y float32 ND 4,256\n"
                                  "kernel affine scale=2 bias=0.5\n"
                                  "compute_us 10\n";

/* host_out of every output against the reference for `batch` samples (0: the largest). */
static void rig_check_at(const char *file, int line, const rig *r, const model_kind *mk, uint64_t batch)
{
    if (!batch) batch = r->max_batch;
    for (size_t k = 0; k < r->n_out; k++) {
        unsigned char *want = malloc(r->out_size[k]);
        CHECK(want != NULL);
        memset(want, SENTINEL, r->out_size[k]);
        mk->expect(r, batch, k, want);
        char what[64];
        snprintf(what, sizeof what, "%s output %zu (batch %llu)", mk->sample, k, (unsigned long long)batch);
        check_bytes_at(file, line, r->host_out[k], want, r->out_size[k], what);
        free(want);
    }
}
#define CHECK_OUTPUTS(r, mk, batch) rig_check_at(__FILE__, __LINE__, (r), (mk), (batch))

/* One synchronous run: copies in, aclmdlExecute, copies out, check. */
static void run_sync(rig *r, const model_kind *mk, unsigned seed, uint64_t batch)
{
    mk->fill(r, seed);
    rig_poison(r);
    rig_upload(r);
    CHECK_OK(aclmdlExecute(r->id, r->in, r->out));
    rig_download(r);
    CHECK_OUTPUTS(r, mk, batch);
}

/* One stream-ordered run: async copies from/to pinned memory around aclmdlExecuteAsync. */
static void run_async(rig *r, const model_kind *mk, aclrtStream s, unsigned seed, uint64_t batch)
{
    mk->fill(r, seed);
    rig_poison(r);
    rig_upload_async(r, s);
    CHECK_OK(aclmdlExecuteAsync(r->id, r->in, r->out, s));
    rig_download_async(r, s);
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK_OUTPUTS(r, mk, batch);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    CHECK(buf != NULL);
    *len = fread(buf, 1, cap, f);
    CHECK(*len > 0 && *len < cap);
    fclose(f);
    return buf;
}

/* Writes `text` to a new temporary file; the caller removes it. */
static void write_temp(char *path, size_t pathlen, const char *text, size_t len)
{
    snprintf(path, pathlen, "/tmp/fxemu-test-model-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(text, 1, len, f) == len);
    CHECK(fclose(f) == 0);
}

static aclmdlExecConfigHandle *exec_config(int32_t stream_timeout_ms, int32_t event_timeout_ms)
{
    aclmdlExecConfigHandle *h = aclmdlCreateExecConfigHandle();
    CHECK(h != NULL);
    CHECK_OK(aclmdlSetExecConfigOpt(h, ACL_MDL_STREAM_SYNC_TIMEOUT, &stream_timeout_ms, sizeof stream_timeout_ms));
    CHECK_OK(aclmdlSetExecConfigOpt(h, ACL_MDL_EVENT_SYNC_TIMEOUT, &event_timeout_ms, sizeof event_timeout_ms));
    return h;
}

/* ================================================================ loading */

static const char *const SAMPLES[] = {"resnet50-int8", "balanced", "tiny", "dynamic-batch", "multi-io"};
static const char *const SAMPLE_FIRST_INPUT[] = {"data", "x", "x", "images", "a"};

TEST(load_samples)
{
    setup();
    uint32_t ids[5];
    for (int i = 0; i < 5; i++) {
        CHECK_OK(aclmdlLoadFromFile(sample(SAMPLES[i]), &ids[i]));
        for (int j = 0; j < i; j++) CHECK(ids[j] != ids[i]);
        CHECK_EQ_U64(counters().models, (uint64_t)i + 1);
    }
    aclmdlDesc *d = aclmdlCreateDesc();
    CHECK(d != NULL);
    for (int i = 0; i < 5; i++) {
        CHECK_OK(aclmdlGetDesc(d, ids[i]));
        CHECK_STR(aclmdlGetInputNameByIndex(d, 0), SAMPLE_FIRST_INPUT[i]);
    }
    CHECK_OK(aclmdlDestroyDesc(d));
    for (int i = 0; i < 5; i++) CHECK_OK(aclmdlUnload(ids[i]));
    CHECK_EQ_U64(counters().models, 0);
    teardown();
}

TEST(load_missing_file)
{
    setup();
    const char *path = "/nonexistent-fxemu-dir/no-such-model.om";
    uint32_t id;
    CHECK_FAIL_MSG(aclmdlLoadFromFile(path, &id), ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID, path);
    CHECK_EQ_U64(ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID, 145002);
    CHECK_EQ_U64(counters().models, 0);
    teardown();
}

TEST(load_before_init)
{
    uint32_t id;
    size_t len;
    char *text = read_all(sample("tiny"), &len);
    CHECK_FAIL_MSG(aclmdlLoadFromFile(sample("tiny"), &id), ACL_ERROR_GE_EXEC_NOT_INIT, "aclInit");
    CHECK_CODE(aclmdlLoadFromMem(text, len, &id), ACL_ERROR_GE_EXEC_NOT_INIT);
    CHECK_EQ_U64(counters().models, 0);
    setup();
    CHECK_OK(aclmdlLoadFromFile(sample("tiny"), &id));
    CHECK_OK(aclmdlUnload(id));
    teardown();
    /* after aclFinalize: not initialized again */
    CHECK_CODE(aclmdlLoadFromFile(sample("tiny"), &id), ACL_ERROR_GE_EXEC_NOT_INIT);
    CHECK_EQ_U64(counters().models, 0);
    free(text);
}

TEST(load_without_context)
{
    uint32_t id;
    size_t len;
    char *text = read_all(sample("tiny"), &len);
    CHECK_OK(aclInit(NULL));
    CHECK_FAIL_MSG(aclmdlLoadFromFile(sample("tiny"), &id), ACL_ERROR_RT_CONTEXT_NULL, "context");
    CHECK_CODE(aclmdlLoadFromMem(text, len, &id), ACL_ERROR_RT_CONTEXT_NULL);
    CHECK_EQ_U64(counters().models, 0);
    CHECK_OK(aclFinalize());
    free(text);
}

TEST(load_null_args)
{
    setup();
    uint32_t id;
    size_t len, w, g;
    char *text = read_all(sample("tiny"), &len);
    CHECK_CODE(aclmdlLoadFromFile(NULL, &id), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlLoadFromFile(sample("tiny"), NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlLoadFromMem(NULL, len, &id), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlLoadFromMem(text, 0, &id), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlLoadFromMem(text, len, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlQuerySize(NULL, &w, &g), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlQuerySize(sample("tiny"), NULL, &g), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlQuerySize(sample("tiny"), &w, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlGetDesc(NULL, 1), ACL_ERROR_INVALID_PARAM);
    CHECK_EQ_U64(counters().models, 0);
    free(text);
    teardown();
}

#define HDR "fastexec-emulator-model 1\nname bad\n"
static const struct {
    const char *text, *line;
} CORRUPT[] = {
    {HDR "colour red\ninput x float32 ND 1,4\noutput y float32 ND 1,4\ncompute_us 1\n", "line 3"},        /* unknown key */
    {HDR "compute_us 1x\ninput x float32 ND 1,4\noutput y float32 ND 1,4\n", "line 3"},                   /* bad number */
    {HDR "input x float32 ND 2,4\noutput y float32 ND 3,4\ncompute_us 1\n", "line 4"},                    /* batch dims differ */
    {HDR "input x float32 ND 1,4\noutput y float32 ND 1,5\nkernel identity\ncompute_us 1\n", "line 4"},   /* shapes vs kernel */
    {HDR "input x float32 ND 1,1099511627776\noutput y float32 ND 1,4\ncompute_us 1\n", "line 3"},        /* sample > 2^40 B */
    {HDR "input x float32 ND 1,99999999999999999999\noutput y float32 ND 1,4\ncompute_us 1\n", "line 3"}, /* int64 overflow */
    {HDR "input x float32 ND 1048577,1048576\noutput y float32 ND 1048577,1048576\ncompute_us 1\n", "line 3"}, /* batch too big */
};

TEST(load_corrupt)
{
    setup();
    for (size_t i = 0; i < sizeof CORRUPT / sizeof CORRUPT[0]; i++) {
        char path[64];
        size_t len = strlen(CORRUPT[i].text);
        write_temp(path, sizeof path, CORRUPT[i].text, len);
        uint32_t id;
        CHECK_FAIL_MSG(aclmdlLoadFromFile(path, &id), ACL_ERROR_PARSE_MODEL, CORRUPT[i].line);
        CHECK_FAIL_MSG(aclmdlLoadFromMem(CORRUPT[i].text, len, &id), ACL_ERROR_PARSE_MODEL, CORRUPT[i].line);
        size_t w, g;
        CHECK_FAIL_MSG(aclmdlQuerySize(path, &w, &g), ACL_ERROR_PARSE_MODEL, CORRUPT[i].line);
        CHECK(remove(path) == 0);
        CHECK_EQ_U64(counters().models, 0);
    }
    CHECK_EQ_U64(ACL_ERROR_PARSE_MODEL, 100013);
    teardown();
}

TEST(load_from_mem)
{
    setup();
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    for (int i = 0; i < 5; i++) {
        size_t len;
        char *text = read_all(sample(SAMPLES[i]), &len);
        uint32_t id_mem, id_file;
        CHECK_OK(aclmdlLoadFromMem(text, len, &id_mem));
        free(text); /* the model does not keep the caller's bytes */
        CHECK_OK(aclmdlLoadFromFile(sample(SAMPLES[i]), &id_file));
        CHECK(id_mem != id_file);
        rig a, b;
        rig_attach(&a, id_mem);
        rig_attach(&b, id_file);
        a.owns_model = b.owns_model = 1;
        CHECK_EQ_U64(a.n_in, b.n_in);
        CHECK_EQ_U64(a.n_out, b.n_out);
        for (size_t k = 0; k < a.n_in; k++) {
            CHECK_EQ_U64(a.in_size[k], b.in_size[k]);
            CHECK_STR(aclmdlGetInputNameByIndex(a.desc, k), aclmdlGetInputNameByIndex(b.desc, k));
        }
        for (size_t k = 0; k < a.n_out; k++) CHECK_EQ_U64(a.out_size[k], b.out_size[k]);
        if (strcmp(SAMPLES[i], "tiny") == 0) run_async(&a, &MK_TINY, s, 3, 0);
        if (strcmp(SAMPLES[i], "multi-io") == 0) run_async(&a, &MK_MULTI, s, 3, 0);
        rig_close(&a);
        rig_close(&b);
    }
    CHECK_EQ_U64(counters().models, 0);
    CHECK_OK(aclrtDestroyStream(s));
    teardown();
}

TEST(query_size)
{
    setup();
    static const char text[] = "fastexec-emulator-model 1\n"
                               "name sized\n"
                               "input x float32 ND 2,8\n"
                               "output y float32 ND 2,8\n"
                               "compute_us 3\n"
                               "workspace_bytes 1048576\n"
                               "weight_bytes 123457\n";
    char path[64];
    write_temp(path, sizeof path, text, strlen(text));
    size_t w = 1, g = 1;
    CHECK_OK(aclmdlQuerySize(path, &w, &g));
    CHECK_EQ_U64(w, 1048576);
    CHECK_EQ_U64(g, 123457);
    /* defaults are 0 */
    CHECK_OK(aclmdlQuerySize(sample("tiny"), &w, &g));
    CHECK_EQ_U64(w, 0);
    CHECK_EQ_U64(g, 0);
    /* the file loads as a model too */
    uint32_t id;
    CHECK_OK(aclmdlLoadFromFile(path, &id));
    CHECK_OK(aclmdlUnload(id));
    CHECK(remove(path) == 0);
    w = g = 7;
    CHECK_FAIL_MSG(aclmdlQuerySize(path, &w, &g), ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID, path);
    CHECK_EQ_U64(w, 7);
    CHECK_EQ_U64(g, 7);
    teardown();
}

TEST(unload_twice_and_unknown_id)
{
    setup();
    rig r;
    rig_open(&r, sample("tiny"));
    r.owns_model = 0;
    uint32_t id = r.id;
    run_sync(&r, &MK_TINY, 1, 0);
    CHECK_OK(aclmdlUnload(id));
    CHECK_EQ_U64(counters().models, 0);
    CHECK_FAIL_MSG(aclmdlUnload(id), ACL_ERROR_GE_EXEC_MODEL_ID_INVALID, "not loaded");
    rig_poison(&r);
    CHECK_CODE(aclmdlExecute(id, r.in, r.out), ACL_ERROR_GE_EXEC_MODEL_ID_INVALID);
    CHECK_CODE(aclmdlExecute(424242, r.in, r.out), 145003);
    CHECK_CODE(aclmdlExecuteAsync(424242, r.in, r.out, NULL), ACL_ERROR_GE_EXEC_MODEL_ID_INVALID);
    CHECK_CODE(aclmdlUnload(0), ACL_ERROR_GE_EXEC_MODEL_ID_INVALID);
    CHECK_CODE(aclmdlGetDesc(r.desc, id), ACL_ERROR_GE_EXEC_MODEL_ID_INVALID);
    CHECK_CODE(aclmdlSetDynamicBatchSize(id, r.in, 1, 2), ACL_ERROR_GE_EXEC_MODEL_ID_INVALID);
    CHECK_OK(aclrtSynchronizeStream(NULL));
    CHECK_UNTOUCHED(&r);
    rig_close(&r);
    teardown();
}

/* ================================================================ descriptions */

static void check_dims_at(const char *file, int line, const aclmdlIODims *d, const char *name, size_t n, const int64_t *dims)
{
    check_str_at(file, line, d->name, name);
    if (d->dimCount != n) fail_at(file, line, "dimCount differs");
    for (size_t i = 0; i < n; i++) {
        if (d->dims[i] != dims[i]) {
            char b[128];
            snprintf(b, sizeof b, "dims[%zu] is %lld, expected %lld", i, (long long)d->dims[i], (long long)dims[i]);
            fail_at(file, line, b);
        }
    }
}

/* Everything the description says about one input (output = 0) or output (output = 1). */
static void check_io_at(const char *file, int line, aclmdlDesc *d, int output, size_t i, const char *name, aclDataType dt, aclFormat fmt,
                        size_t bytes, size_t n, const int64_t *dims)
{
    aclmdlIODims io;
    memset(&io, 0x11, sizeof io);
    size_t idx = 99;
    if (!output) {
        check_str_at(file, line, aclmdlGetInputNameByIndex(d, i), name);
        if (aclmdlGetInputDataType(d, i) != dt) fail_at(file, line, "input dtype differs");
        if (aclmdlGetInputFormat(d, i) != fmt) fail_at(file, line, "input format differs");
        if (aclmdlGetInputSizeByIndex(d, i) != bytes) fail_at(file, line, "input size differs");
        if (aclmdlGetInputDims(d, i, &io) != ACL_SUCCESS) fail_at(file, line, "aclmdlGetInputDims failed");
        if (aclmdlGetInputIndexByName(d, name, &idx) != ACL_SUCCESS || idx != i) fail_at(file, line, "aclmdlGetInputIndexByName");
    } else {
        check_str_at(file, line, aclmdlGetOutputNameByIndex(d, i), name);
        if (aclmdlGetOutputDataType(d, i) != dt) fail_at(file, line, "output dtype differs");
        if (aclmdlGetOutputFormat(d, i) != fmt) fail_at(file, line, "output format differs");
        if (aclmdlGetOutputSizeByIndex(d, i) != bytes) fail_at(file, line, "output size differs");
        if (aclmdlGetOutputDims(d, i, &io) != ACL_SUCCESS) fail_at(file, line, "aclmdlGetOutputDims failed");
        if (aclmdlGetOutputIndexByName(d, name, &idx) != ACL_SUCCESS || idx != i) fail_at(file, line, "aclmdlGetOutputIndexByName");
    }
    check_dims_at(file, line, &io, name, n, dims);
}
#define CHECK_IO(d, output, i, name, dt, fmt, bytes, n, ...)                                                            \
    do {                                                                                                                 \
        const int64_t dims_[] = {__VA_ARGS__};                                                                           \
        check_io_at(__FILE__, __LINE__, (d), (output), (i), (name), (dt), (fmt), (bytes), (n), dims_);                   \
    } while (0)

/* Out-of-range indexes: 0 / "" / ACL_DT_UNDEFINED / ACL_FORMAT_UNDEFINED / ACL_ERROR_INVALID_PARAM. */
static void check_out_of_range(aclmdlDesc *d, size_t n_in, size_t n_out)
{
    aclmdlIODims io;
    size_t idx[] = {n_in, n_in + 1, 1000};
    for (int k = 0; k < 3; k++) {
        CHECK_EQ_U64(aclmdlGetInputSizeByIndex(d, idx[k]), 0);
        CHECK_STR(aclmdlGetInputNameByIndex(d, idx[k]), "");
        CHECK(aclmdlGetInputDataType(d, idx[k]) == ACL_DT_UNDEFINED);
        CHECK(aclmdlGetInputFormat(d, idx[k]) == ACL_FORMAT_UNDEFINED);
        CHECK_CODE(aclmdlGetInputDims(d, idx[k], &io), ACL_ERROR_INVALID_PARAM);
    }
    size_t odx[] = {n_out, n_out + 1, 1000};
    for (int k = 0; k < 3; k++) {
        CHECK_EQ_U64(aclmdlGetOutputSizeByIndex(d, odx[k]), 0);
        CHECK_STR(aclmdlGetOutputNameByIndex(d, odx[k]), "");
        CHECK(aclmdlGetOutputDataType(d, odx[k]) == ACL_DT_UNDEFINED);
        CHECK(aclmdlGetOutputFormat(d, odx[k]) == ACL_FORMAT_UNDEFINED);
        CHECK_CODE(aclmdlGetOutputDims(d, odx[k], &io), ACL_ERROR_INVALID_PARAM);
    }
    CHECK_CODE(aclmdlGetInputDims(d, 0, NULL), ACL_ERROR_INVALID_PARAM);
    size_t i = 77;
    CHECK_FAIL_MSG(aclmdlGetInputIndexByName(d, "no-such-tensor", &i), ACL_ERROR_INVALID_PARAM, "no-such-tensor");
    CHECK_CODE(aclmdlGetOutputIndexByName(d, "no-such-tensor", &i), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlGetInputIndexByName(d, NULL, &i), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlGetInputIndexByName(d, aclmdlGetInputNameByIndex(d, 0), NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_EQ_U64(i, 77);
}

static aclmdlDesc *load_desc(const char *name, uint32_t *id)
{
    CHECK_OK(aclmdlLoadFromFile(sample(name), id));
    aclmdlDesc *d = aclmdlCreateDesc();
    CHECK(d != NULL);
    CHECK_OK(aclmdlGetDesc(d, *id));
    return d;
}

TEST(desc_resnet50)
{
    setup();
    uint32_t id;
    aclmdlDesc *d = load_desc("resnet50-int8", &id);
    CHECK_EQ_U64(aclmdlGetNumInputs(d), 1);
    CHECK_EQ_U64(aclmdlGetNumOutputs(d), 1);
    CHECK_IO(d, 0, 0, "data", ACL_UINT8, ACL_FORMAT_NCHW, 8 * 3 * 224 * 224, 4, 8, 3, 224, 224);
    CHECK_IO(d, 1, 0, "logits", ACL_FLOAT16, ACL_FORMAT_ND, 8 * 1000 * 2, 2, 8, 1000);
    size_t i = 9;
    CHECK_CODE(aclmdlGetInputIndexByName(d, "logits", &i), ACL_ERROR_INVALID_PARAM); /* an output, not an input */
    CHECK_CODE(aclmdlGetOutputIndexByName(d, "data", &i), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlGetInputIndexByName(d, ACL_DYNAMIC_TENSOR_NAME, &i), ACL_ERROR_INVALID_PARAM);
    check_out_of_range(d, 1, 1);
    aclmdlBatch b;
    memset(&b, 0x77, sizeof b);
    CHECK_OK(aclmdlGetDynamicBatch(d, &b));
    CHECK_EQ_U64(b.batchCount, 0);
    CHECK_CODE(aclmdlGetDynamicBatch(d, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclmdlDestroyDesc(d));
    CHECK_OK(aclmdlUnload(id));
    teardown();
}

TEST(desc_multi_io)
{
    setup();
    uint32_t id;
    aclmdlDesc *d = load_desc("multi-io", &id);
    CHECK_EQ_U64(aclmdlGetNumInputs(d), 2);
    CHECK_EQ_U64(aclmdlGetNumOutputs(d), 2);
    CHECK_IO(d, 0, 0, "a", ACL_INT32, ACL_FORMAT_ND, 2 * 64 * 4, 2, 2, 64);
    CHECK_IO(d, 0, 1, "b", ACL_FLOAT16, ACL_FORMAT_ND, 2 * 32 * 2, 2, 2, 32);
    CHECK_IO(d, 1, 0, "a_out", ACL_INT32, ACL_FORMAT_ND, 2 * 64 * 4, 2, 2, 64);
    CHECK_IO(d, 1, 1, "b_out", ACL_FLOAT16, ACL_FORMAT_ND, 2 * 32 * 2, 2, 2, 32);
    size_t i = 9;
    CHECK_CODE(aclmdlGetInputIndexByName(d, "a_out", &i), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlGetOutputIndexByName(d, "b", &i), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlGetInputIndexByName(d, "B", &i), ACL_ERROR_INVALID_PARAM); /* names are case-sensitive */
    check_out_of_range(d, 2, 2);
    aclmdlBatch b;
    CHECK_OK(aclmdlGetDynamicBatch(d, &b));
    CHECK_EQ_U64(b.batchCount, 0);
    CHECK_OK(aclmdlDestroyDesc(d));
    CHECK_OK(aclmdlUnload(id));
    teardown();
}

TEST(desc_dynamic_batch)
{
    setup();
    uint32_t id;
    aclmdlDesc *d = load_desc("dynamic-batch", &id);
    CHECK_EQ_U64(aclmdlGetNumInputs(d), 2); /* images + the hidden batch input */
    CHECK_EQ_U64(aclmdlGetNumOutputs(d), 1);
    CHECK_IO(d, 0, 0, "images", ACL_FLOAT, ACL_FORMAT_NCHW, 8 * 3 * 16 * 16 * 4, 4, -1, 3, 16, 16);
    CHECK_IO(d, 0, 1, ACL_DYNAMIC_TENSOR_NAME, ACL_INT64, ACL_FORMAT_ND, 8, 1, 1);
    CHECK_IO(d, 1, 0, "scores", ACL_FLOAT, ACL_FORMAT_ND, 8 * 10 * 4, 2, -1, 10);
    CHECK_STR(ACL_DYNAMIC_TENSOR_NAME, "ascend_mbatch_shape_data");
    check_out_of_range(d, 2, 1);
    aclmdlBatch b;
    memset(&b, 0x77, sizeof b);
    CHECK_OK(aclmdlGetDynamicBatch(d, &b));
    CHECK_EQ_U64(b.batchCount, 4);
    CHECK_EQ_U64(b.batch[0], 1);
    CHECK_EQ_U64(b.batch[1], 2);
    CHECK_EQ_U64(b.batch[2], 4);
    CHECK_EQ_U64(b.batch[3], 8);
    CHECK_OK(aclmdlDestroyDesc(d));
    CHECK_OK(aclmdlUnload(id));
    teardown();
}

TEST(desc_destroyed_twice)
{
    setup();
    uint32_t id;
    aclmdlDesc *d = load_desc("tiny", &id);
    CHECK_EQ_U64(counters().model_descs, 1);
    CHECK_OK(aclmdlDestroyDesc(d));
    CHECK_EQ_U64(counters().model_descs, 0);
    CHECK_FAIL_MSG(aclmdlDestroyDesc(d), FXEMU_ERR_DESTROYED_HANDLE, "not a live");
    CHECK_EQ_U64(FXEMU_ERR_DESTROYED_HANDLE, 107017);
    CHECK_FINDING(FXEMU_FINDING_DESTROYED_HANDLE, 1, 1, "model description");
    CHECK_EQ_U64(counters().model_descs, 0);
    CHECK_CODE(aclmdlDestroyDesc(NULL), ACL_ERROR_INVALID_PARAM); /* NULL is a parameter error, no finding */
    CHECK_OK(aclmdlUnload(id));
    expect_findings(1);
    teardown();
}

/* ================================================================ datasets */

TEST(dataset_basics)
{
    setup();
    rig r;
    rig_open(&r, sample("tiny"));
    aclmdlDataset *ds = aclmdlCreateDataset();
    CHECK(ds != NULL);
    CHECK_EQ_U64(aclmdlGetDatasetNumBuffers(ds), 0);
    CHECK(aclmdlGetDatasetBuffer(ds, 0) == NULL);
    void *mem[3];
    aclDataBuffer *b[3];
    for (int i = 0; i < 3; i++) {
        CHECK_OK(aclrtMalloc(&mem[i], 64, ACL_MEM_MALLOC_HUGE_FIRST));
        b[i] = aclCreateDataBuffer(mem[i], 64 + (size_t)i);
        CHECK(b[i] != NULL);
        CHECK_OK(aclmdlAddDatasetBuffer(ds, b[i]));
        CHECK_EQ_U64(aclmdlGetDatasetNumBuffers(ds), (uint64_t)i + 1);
    }
    for (int i = 0; i < 3; i++) CHECK(aclmdlGetDatasetBuffer(ds, (size_t)i) == b[i]);
    CHECK(aclmdlGetDatasetBuffer(ds, 3) == NULL);
    CHECK(aclmdlGetDatasetBuffer(ds, (size_t)-1) == NULL);
    CHECK(aclmdlGetDatasetBuffer(NULL, 0) == NULL);
    CHECK_EQ_U64(aclmdlGetDatasetNumBuffers(NULL), 0);
    CHECK_CODE(aclmdlAddDatasetBuffer(ds, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlAddDatasetBuffer(NULL, b[0]), ACL_ERROR_INVALID_PARAM);
    CHECK_EQ_U64(aclmdlGetDatasetNumBuffers(ds), 3);

    fxemuCounters c0 = counters();
    CHECK_OK(aclmdlDestroyDataset(ds));
    fxemuCounters c1 = counters();
    CHECK_EQ_U64(c1.datasets, c0.datasets - 1);
    CHECK_EQ_U64(c1.data_buffers, c0.data_buffers); /* the buffers survive the dataset */
    CHECK_EQ_U64(c1.device_allocations, c0.device_allocations);
    for (int i = 0; i < 3; i++) {
        CHECK(aclGetDataBufferAddr(b[i]) == mem[i]);
        CHECK_EQ_U64(aclGetDataBufferSizeV2(b[i]), 64 + (size_t)i);
    }
    /* still usable: b[0] becomes the input of a real execution */
    CHECK_OK(aclUpdateDataBuffer(b[0], mem[0], 64));
    aclmdlDataset *in2 = aclmdlCreateDataset();
    CHECK_OK(aclmdlAddDatasetBuffer(in2, b[0]));
    MK_TINY.fill(&r, 5);
    CHECK_OK(aclrtMemcpy(mem[0], 64, r.host_in[0], 64, ACL_MEMCPY_HOST_TO_DEVICE));
    CHECK_OK(aclmdlExecute(r.id, in2, r.out));
    rig_download(&r);
    CHECK_OUTPUTS(&r, &MK_TINY, 0);
    CHECK_OK(aclmdlDestroyDataset(in2));
    for (int i = 0; i < 3; i++) {
        CHECK_OK(aclDestroyDataBuffer(b[i]));
        CHECK_OK(aclrtFree(mem[i]));
    }
    rig_close(&r);
    teardown();
}

/* ================================================================ execution correctness */

/* Synchronous runs on one load, stream-ordered runs on another (one model must not mix). */
static void exec_both(const model_kind *mk, int runs)
{
    setup();
    rig a, b;
    rig_open(&a, sample(mk->sample));
    rig_open(&b, sample(mk->sample));
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    for (int i = 0; i < runs; i++) {
        run_sync(&a, mk, 11u + (unsigned)i, 0);
        run_async(&b, mk, s, 23u + (unsigned)i, 0);
    }
    /* the default stream (NULL) works as well */
    run_async(&b, mk, NULL, 99, 0);
    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&a);
    rig_close(&b);
    teardown();
}

TEST(exec_tiny) { exec_both(&MK_TINY, 3); }

TEST(exec_balanced)
{
    /* spot-check the reference itself: 2 * 1.25 + 0.5 = 3 */
    CHECK((float)((double)1.25f * 2.0 + 0.5) == 3.0f);
    exec_both(&MK_BALANCED, 2);
}

TEST(exec_multi_io)
{
    CHECK(f16_from_double(-7.0) == 0xC700);
    CHECK(f16_to_double(0xC700) == -7.0);
    exec_both(&MK_MULTI, 3);
}

TEST(exec_resnet50)
{
    /* the float16 reference: exact values, ties to even, rounding up */
    CHECK(f16_from_double(1.0) == 0x3C00);
    CHECK(f16_from_double(65504.0) == 0x7BFF);
    CHECK(f16_from_double(0.5) == 0x3800);
    CHECK(f16_from_double(-2.0) == 0xC000);
    CHECK(f16_from_double(1.0 + pow2i(-11)) == 0x3C00);       /* tie -> even */
    CHECK(f16_from_double(1.0 + 3 * pow2i(-11)) == 0x3C02);   /* tie -> even (up) */
    CHECK(f16_from_double(1.0 + 1.5 * pow2i(-11)) == 0x3C01); /* above half */
    CHECK(f16_from_double(pow2i(-14)) == 0x0400);
    CHECK(f16_from_double(1023.75) == 0x6400); /* tie with a carry into the exponent: 1024 */
    exec_both(&MK_RESNET, 1);
}

TEST(exec_dynamic_batch)
{
    setup();
    rig a, b, c;
    rig_open(&a, sample("dynamic-batch"));
    rig_open(&b, sample("dynamic-batch"));
    rig_open(&c, sample("dynamic-batch"));
    CHECK_EQ_U64(a.dyn, 1);
    CHECK_EQ_U64(a.max_batch, 8);
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    /* no batch set: the largest gear */
    run_sync(&c, &MK_DYN, 1, 8);
    const uint64_t gears[] = {2, 8, 2, 1, 4};
    for (int i = 0; i < 5; i++) {
        uint64_t g = gears[i];
        CHECK_OK(aclmdlSetDynamicBatchSize(a.id, a.in, (size_t)a.dyn, g));
        CHECK_EQ_U64(read_dyn(&a), g);
        run_sync(&a, &MK_DYN, 30u + (unsigned)i, g); /* bytes past g * 10 floats stay SENTINEL */
        CHECK_OK(aclmdlSetDynamicBatchSize(b.id, b.in, (size_t)b.dyn, g));
        CHECK_EQ_U64(read_dyn(&b), g);
        run_async(&b, &MK_DYN, s, 40u + (unsigned)i, g);
    }
    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&a);
    rig_close(&b);
    rig_close(&c);
    teardown();
}

TEST(dynamic_batch_errors)
{
    setup();
    rig r;
    rig_open(&r, sample("dynamic-batch"));
    size_t idx = 99;
    CHECK_OK(aclmdlGetInputIndexByName(r.desc, ACL_DYNAMIC_TENSOR_NAME, &idx));
    CHECK_EQ_U64(idx, 1);
    CHECK_OK(aclmdlSetDynamicBatchSize(r.id, r.in, idx, 2));
    CHECK_EQ_U64(read_dyn(&r), 2);

    CHECK_FAIL_MSG(aclmdlSetDynamicBatchSize(r.id, r.in, idx, 3), ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID, "1,2,4,8");
    CHECK_EQ_U64(ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID, 145013);
    CHECK_CODE(aclmdlSetDynamicBatchSize(r.id, r.in, idx, 16), ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID);
    CHECK_CODE(aclmdlSetDynamicBatchSize(r.id, r.in, idx, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_FAIL_MSG(aclmdlSetDynamicBatchSize(r.id, r.in, 0, 2), ACL_ERROR_INVALID_PARAM, ACL_DYNAMIC_TENSOR_NAME);
    CHECK_CODE(aclmdlSetDynamicBatchSize(r.id, r.in, 2, 2), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetDynamicBatchSize(r.id, NULL, idx, 2), ACL_ERROR_INVALID_PARAM);
    CHECK_EQ_U64(read_dyn(&r), 2);

    /* a buffer under 4 bytes */
    CHECK_OK(aclUpdateDataBuffer(r.buf_in[idx], r.dev_in[idx], 3));
    CHECK_FAIL_MSG(aclmdlSetDynamicBatchSize(r.id, r.in, idx, 4), ACL_ERROR_GE_DYNAMIC_INPUT_LENGTH_INVALID, "3 bytes");
    CHECK_EQ_U64(ACL_ERROR_GE_DYNAMIC_INPUT_LENGTH_INVALID, 145012);
    CHECK_EQ_U64(read_dyn(&r), 2);

    /* a 4-byte buffer gets a 4-byte value */
    CHECK_OK(aclrtMemset(r.dev_in[idx], 8, 0xFF, 8));
    CHECK_OK(aclUpdateDataBuffer(r.buf_in[idx], r.dev_in[idx], 4));
    CHECK_OK(aclmdlSetDynamicBatchSize(r.id, r.in, idx, 4));
    unsigned char raw[8];
    CHECK_OK(aclrtMemcpy(raw, 8, r.dev_in[idx], 8, ACL_MEMCPY_DEVICE_TO_HOST));
    const unsigned char want4[8] = {4, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF};
    CHECK_BYTES(raw, want4, 8, "4-byte batch tensor");
    CHECK_OK(aclUpdateDataBuffer(r.buf_in[idx], r.dev_in[idx], 8));

    /* the failed calls left the dataset's batch alone: set 2, fail 3, run -> batch 2 */
    CHECK_OK(aclmdlSetDynamicBatchSize(r.id, r.in, idx, 2));
    CHECK_CODE(aclmdlSetDynamicBatchSize(r.id, r.in, idx, 3), ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID);
    CHECK_CODE(aclmdlSetDynamicBatchSize(r.id, r.in, idx, 0), ACL_ERROR_INVALID_PARAM);
    run_sync(&r, &MK_DYN, 8, 2);
    CHECK_EQ_U64(read_dyn(&r), 2);
    rig_close(&r);
    teardown();
}

/* ================================================================ execution errors */

TEST(exec_errors_counts)
{
    setup();
    rig r, m;
    rig_open(&r, sample("tiny"));
    rig_open(&m, sample("multi-io"));
    aclmdlDataset *empty = aclmdlCreateDataset();
    aclmdlDataset *two_out = aclmdlCreateDataset();
    aclmdlDataset *extra_in = aclmdlCreateDataset();
    aclmdlDataset *m_one_in = aclmdlCreateDataset();
    CHECK(empty && two_out && extra_in && m_one_in);
    CHECK_OK(aclmdlAddDatasetBuffer(two_out, r.buf_out[0]));
    CHECK_OK(aclmdlAddDatasetBuffer(two_out, r.buf_out[0]));
    CHECK_OK(aclmdlAddDatasetBuffer(extra_in, r.buf_in[0]));
    CHECK_OK(aclmdlAddDatasetBuffer(extra_in, r.buf_out[0]));
    CHECK_OK(aclmdlAddDatasetBuffer(m_one_in, m.buf_in[0]));

    MK_TINY.fill(&r, 4);
    rig_upload(&r);
    CHECK_FAIL_MSG(aclmdlExecute(r.id, empty, r.out), ACL_ERROR_GE_FAILURE, "input");
    CHECK_EQ_U64(ACL_ERROR_GE_FAILURE, 500002);
    CHECK_FAIL_MSG(aclmdlExecute(r.id, r.in, empty), ACL_ERROR_GE_FAILURE, "output");
    CHECK_FAIL_MSG(aclmdlExecute(r.id, r.in, two_out), ACL_ERROR_GE_FAILURE, "output");
    CHECK_UNTOUCHED(&r);
    MK_MULTI.fill(&m, 4);
    rig_upload(&m);
    CHECK_FAIL_MSG(aclmdlExecute(m.id, m_one_in, m.out), ACL_ERROR_GE_FAILURE, "input");
    CHECK_UNTOUCHED(&m);

    /* more input buffers than inputs is fine */
    CHECK_OK(aclmdlExecute(r.id, extra_in, r.out));
    rig_download(&r);
    CHECK_OUTPUTS(&r, &MK_TINY, 0);
    /* and the regular datasets still work */
    run_sync(&r, &MK_TINY, 6, 0);
    run_sync(&m, &MK_MULTI, 6, 0);

    CHECK_OK(aclmdlDestroyDataset(empty));
    CHECK_OK(aclmdlDestroyDataset(two_out));
    CHECK_OK(aclmdlDestroyDataset(extra_in));
    CHECK_OK(aclmdlDestroyDataset(m_one_in));
    rig_close(&r);
    rig_close(&m);
    teardown();
}

TEST(exec_errors_sizes)
{
    setup();
    rig r;
    rig_open(&r, sample("balanced"));
    const size_t need = 4 * 62500 * 4;
    CHECK_EQ_U64(r.in_size[0], need);
    MK_BALANCED.fill(&r, 7);
    rig_upload(&r);

    aclDataBuffer *small_in = aclCreateDataBuffer(r.dev_in[0], need - 65);
    aclDataBuffer *small_out = aclCreateDataBuffer(r.dev_out[0], need - 65);
    aclDataBuffer *edge_in = aclCreateDataBuffer(r.dev_in[0], need - 64);
    aclDataBuffer *edge_out = aclCreateDataBuffer(r.dev_out[0], need - 64);
    aclmdlDataset *ds_small_in = aclmdlCreateDataset(), *ds_small_out = aclmdlCreateDataset();
    aclmdlDataset *ds_edge_in = aclmdlCreateDataset(), *ds_edge_out = aclmdlCreateDataset();
    CHECK_OK(aclmdlAddDatasetBuffer(ds_small_in, small_in));
    CHECK_OK(aclmdlAddDatasetBuffer(ds_small_out, small_out));
    CHECK_OK(aclmdlAddDatasetBuffer(ds_edge_in, edge_in));
    CHECK_OK(aclmdlAddDatasetBuffer(ds_edge_out, edge_out));

    CHECK_FAIL_MSG(aclmdlExecute(r.id, ds_small_in, r.out), ACL_ERROR_GE_FAILURE, "'x'");
    CHECK_FAIL_MSG(aclmdlExecute(r.id, r.in, ds_small_out), ACL_ERROR_GE_FAILURE, "'y'");
    CHECK_UNTOUCHED(&r);

    /* within 64 bytes of the need is accepted (the device block itself is large enough) */
    CHECK_OK(aclmdlExecute(r.id, ds_edge_in, ds_edge_out));
    rig_download(&r);
    CHECK_OUTPUTS(&r, &MK_BALANCED, 0);

    /* an input buffer larger than needed */
    void *big;
    CHECK_OK(aclrtMalloc(&big, need + 4096, ACL_MEM_MALLOC_HUGE_FIRST));
    MK_BALANCED.fill(&r, 8);
    CHECK_OK(aclrtMemcpy(big, need + 4096, r.host_in[0], need, ACL_MEMCPY_HOST_TO_DEVICE));
    aclDataBuffer *big_in = aclCreateDataBuffer(big, need + 4096);
    aclmdlDataset *ds_big = aclmdlCreateDataset();
    CHECK_OK(aclmdlAddDatasetBuffer(ds_big, big_in));
    rig_poison(&r);
    CHECK_OK(aclmdlExecute(r.id, ds_big, r.out));
    rig_download(&r);
    CHECK_OUTPUTS(&r, &MK_BALANCED, 0);

    CHECK_OK(aclmdlDestroyDataset(ds_big));
    CHECK_OK(aclDestroyDataBuffer(big_in));
    CHECK_OK(aclrtFree(big));
    CHECK_OK(aclmdlDestroyDataset(ds_small_in));
    CHECK_OK(aclmdlDestroyDataset(ds_small_out));
    CHECK_OK(aclmdlDestroyDataset(ds_edge_in));
    CHECK_OK(aclmdlDestroyDataset(ds_edge_out));
    CHECK_OK(aclDestroyDataBuffer(small_in));
    CHECK_OK(aclDestroyDataBuffer(small_out));
    CHECK_OK(aclDestroyDataBuffer(edge_in));
    CHECK_OK(aclDestroyDataBuffer(edge_out));
    rig_close(&r);
    teardown();
}

TEST(exec_errors_ranges)
{
    setup();
    rig r;
    rig_open(&r, sample("tiny"));
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    MK_TINY.fill(&r, 2);
    rig_upload(&r);
    void *blk;
    CHECK_OK(aclrtMalloc(&blk, 64, ACL_MEM_MALLOC_HUGE_FIRST)); /* 96 usable bytes */
    aclDataBuffer *null_buf = aclCreateDataBuffer(NULL, 64);
    aclDataBuffer *past_buf = aclCreateDataBuffer((char *)blk + 64, 64); /* runs 32 bytes past the block */
    aclmdlDataset *ds_null = aclmdlCreateDataset(), *ds_past = aclmdlCreateDataset();
    CHECK_OK(aclmdlAddDatasetBuffer(ds_null, null_buf));
    CHECK_OK(aclmdlAddDatasetBuffer(ds_past, past_buf));

    CHECK_FAIL_MSG(aclmdlExecuteAsync(r.id, ds_null, r.out, s), ACL_ERROR_GE_FAILURE, "input 0");
    CHECK_FAIL_MSG(aclmdlExecuteAsync(r.id, r.in, ds_null, s), ACL_ERROR_GE_FAILURE, "output 0");
    aclError rc = aclmdlExecuteAsync(r.id, ds_past, r.out, s);
    CHECK(rc == ACL_ERROR_RT_PARAM_INVALID || rc == ACL_ERROR_GE_FAILURE);
    rc = aclmdlExecuteAsync(r.id, r.in, ds_past, s);
    CHECK(rc == ACL_ERROR_RT_PARAM_INVALID || rc == ACL_ERROR_GE_FAILURE);
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK_UNTOUCHED(&r);
    run_async(&r, &MK_TINY, s, 3, 0);

    CHECK_OK(aclmdlDestroyDataset(ds_null));
    CHECK_OK(aclmdlDestroyDataset(ds_past));
    CHECK_OK(aclDestroyDataBuffer(null_buf));
    CHECK_OK(aclDestroyDataBuffer(past_buf));
    CHECK_OK(aclrtFree(blk));
    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&r);
    teardown();
}

TEST_ENV(exec_wrong_device, "FASTEXEC_EMU_DEVICES=2")
{
    setup();
    uint32_t n = 0;
    CHECK_OK(aclrtGetDeviceCount(&n));
    CHECK_EQ_U64(n, 2);
    rig r;
    rig_open(&r, sample("tiny"));
    MK_TINY.fill(&r, 1);
    rig_upload(&r);
    aclrtContext ctx0;
    CHECK_OK(aclrtGetCurrentContext(&ctx0));
    CHECK_OK(aclrtSetDevice(1));
    CHECK_FAIL_MSG(aclmdlExecute(r.id, r.in, r.out), ACL_ERROR_RT_MODEL_CONTEXT, "device");
    CHECK_EQ_U64(ACL_ERROR_RT_MODEL_CONTEXT, 107004);
    CHECK_CODE(aclmdlExecuteAsync(r.id, r.in, r.out, NULL), ACL_ERROR_RT_MODEL_CONTEXT);
    CHECK_OK(aclrtSynchronizeStream(NULL));
    CHECK_OK(aclrtSetCurrentContext(ctx0));
    CHECK_UNTOUCHED(&r);
    /* neither failed call fixed the execution mode: synchronous execution works on device 0 */
    run_sync(&r, &MK_TINY, 2, 0);
    CHECK_OK(aclrtResetDevice(1));
    rig_close(&r);
    teardown();
}

/* ================================================================ V2 execution and exec configs */

TEST(v2_default_profile)
{
    setup();
    CHECK_STR(aclrtGetSocName(), "Ascend310P3");
    rig r;
    rig_open(&r, sample("multi-io"));
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    aclmdlExecConfigHandle *cfg = exec_config(-1, -1);

    MK_MULTI.fill(&r, 3);
    rig_upload(&r);
    CHECK_FAIL_MSG(aclmdlExecuteAsyncV2(r.id, r.in, r.out, s, cfg), ACL_ERROR_API_NOT_SUPPORT, "not supported");
    CHECK_EQ_U64(ACL_ERROR_API_NOT_SUPPORT, 200001);
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK_UNTOUCHED(&r);

    /* ExecuteV2 is synchronous: it waits for the stalled stream and the outputs are ready */
    CHECK_OK(fxemuStallStream(s, 60));
    double t0 = now_ms();
    CHECK_OK(aclmdlExecuteV2(r.id, r.in, r.out, s, cfg));
    CHECK_RANGE(now_ms() - t0, 55.0, 1000.0, "aclmdlExecuteV2 time (ms)");
    rig_download(&r);
    CHECK_OUTPUTS(&r, &MK_MULTI, 0);
    MK_MULTI.fill(&r, 4);
    rig_poison(&r);
    rig_upload(&r);
    CHECK_OK(aclmdlExecuteV2(r.id, r.in, r.out, s, cfg));
    rig_download(&r);
    CHECK_OUTPUTS(&r, &MK_MULTI, 0);

    rig_poison(&r);
    CHECK_CODE(aclmdlExecuteV2(r.id, r.in, r.out, NULL, cfg), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlExecuteV2(r.id, r.in, r.out, s, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_UNTOUCHED(&r);

    /* exec config options on this SoC */
    aclmdlExecConfigHandle *h = aclmdlCreateExecConfigHandle();
    CHECK(h != NULL);
    CHECK_EQ_U64(counters().exec_configs, 2);
    int32_t v = 500;
    CHECK_OK(aclmdlSetExecConfigOpt(h, ACL_MDL_STREAM_SYNC_TIMEOUT, &v, sizeof v));
    CHECK_OK(aclmdlSetExecConfigOpt(h, ACL_MDL_EVENT_SYNC_TIMEOUT, &v, sizeof v));
    v = -1;
    CHECK_OK(aclmdlSetExecConfigOpt(h, ACL_MDL_STREAM_SYNC_TIMEOUT, &v, 4));
    v = 0;
    CHECK_OK(aclmdlSetExecConfigOpt(h, ACL_MDL_EVENT_SYNC_TIMEOUT, &v, 4));
    int64_t v8 = 500;
    CHECK_CODE(aclmdlSetExecConfigOpt(h, ACL_MDL_STREAM_SYNC_TIMEOUT, &v8, sizeof v8), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetExecConfigOpt(h, ACL_MDL_EVENT_SYNC_TIMEOUT, &v8, 8), ACL_ERROR_INVALID_PARAM);
    v = -2;
    CHECK_CODE(aclmdlSetExecConfigOpt(h, ACL_MDL_STREAM_SYNC_TIMEOUT, &v, 4), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetExecConfigOpt(h, ACL_MDL_EVENT_SYNC_TIMEOUT, &v, 4), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetExecConfigOpt(h, ACL_MDL_STREAM_SYNC_TIMEOUT, NULL, 4), ACL_ERROR_INVALID_PARAM);
    v = 10;
    CHECK_CODE(aclmdlSetExecConfigOpt(NULL, ACL_MDL_STREAM_SYNC_TIMEOUT, &v, 4), ACL_ERROR_INVALID_PARAM);
    void *work = r.dev_in[0];
    CHECK_CODE(aclmdlSetExecConfigOpt(h, ACL_MDL_WORK_ADDR_PTR, &work, sizeof work), ACL_ERROR_INVALID_PARAM);
    size_t wsize = 4096;
    CHECK_CODE(aclmdlSetExecConfigOpt(h, ACL_MDL_WORK_SIZET, &wsize, sizeof wsize), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetExecConfigOpt(h, ACL_MDL_MEC_TIMETHR_SIZET, &wsize, sizeof wsize), ACL_ERROR_INVALID_PARAM);
    v = 1;
    CHECK_CODE(aclmdlSetExecConfigOpt(h, ACL_MDL_EXEC_PRIORITY_INT32, &v, 4), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetExecConfigOpt(h, ACL_MDL_NPU_PERF_MODE, &v, 4), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetExecConfigOpt(h, (aclmdlExecConfigAttr)8, &v, 4), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetExecConfigOpt(h, (aclmdlExecConfigAttr)9, &v, 4), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclmdlDestroyExecConfigHandle(h));
    CHECK_CODE(aclmdlDestroyExecConfigHandle(NULL), ACL_ERROR_INVALID_PARAM);

    CHECK_OK(aclmdlDestroyExecConfigHandle(cfg));
    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&r);
    teardown();
}

TEST_ENV(v2_ipv350, "FASTEXEC_EMU_PROFILE=ipv350")
{
    setup();
    CHECK_STR(aclrtGetSocName(), "IPV350");
    fxemuProfile p;
    CHECK_OK(fxemuGetProfile(&p));
    CHECK(p.exec_async_v2 == 1);
    rig r;
    rig_open(&r, sample("multi-io"));
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    aclmdlExecConfigHandle *cfg = exec_config(-1, -1);

    /* ExecuteAsyncV2: stream-ordered like aclmdlExecuteAsync */
    for (unsigned seed = 1; seed <= 3; seed++) {
        MK_MULTI.fill(&r, seed);
        rig_poison(&r);
        rig_upload_async(&r, s);
        CHECK_OK(aclmdlExecuteAsyncV2(r.id, r.in, r.out, s, cfg));
        rig_download_async(&r, s);
        CHECK_OK(aclrtSynchronizeStream(s));
        CHECK_OUTPUTS(&r, &MK_MULTI, 0);
    }
    rig_poison(&r);
    CHECK_CODE(aclmdlExecuteAsyncV2(r.id, r.in, r.out, NULL, cfg), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlExecuteAsyncV2(r.id, r.in, r.out, s, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK_UNTOUCHED(&r);

    /* ExecuteV2 is synchronous here too */
    MK_MULTI.fill(&r, 9);
    rig_upload(&r);
    CHECK_OK(fxemuStallStream(s, 60));
    CHECK_OK(aclmdlExecuteV2(r.id, r.in, r.out, s, cfg));
    rig_download(&r);
    CHECK_OUTPUTS(&r, &MK_MULTI, 0);

    /* the work-memory options exist on IPV350 */
    void *work;
    CHECK_OK(aclrtMalloc(&work, 4096, ACL_MEM_MALLOC_HUGE_FIRST));
    aclmdlExecConfigHandle *h = exec_config(-1, -1);
    CHECK_OK(aclmdlSetExecConfigOpt(h, ACL_MDL_WORK_ADDR_PTR, &work, sizeof(void *)));
    size_t wsize = 4096;
    CHECK_OK(aclmdlSetExecConfigOpt(h, ACL_MDL_WORK_SIZET, &wsize, sizeof wsize));
    CHECK_CODE(aclmdlSetExecConfigOpt(h, ACL_MDL_WORK_ADDR_PTR, &work, 4), ACL_ERROR_INVALID_PARAM);
    int32_t v = 1;
    CHECK_CODE(aclmdlSetExecConfigOpt(h, (aclmdlExecConfigAttr)8, &v, 4), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetExecConfigOpt(h, (aclmdlExecConfigAttr)9, &v, 4), ACL_ERROR_INVALID_PARAM);
    int64_t v8 = 5;
    CHECK_CODE(aclmdlSetExecConfigOpt(h, ACL_MDL_STREAM_SYNC_TIMEOUT, &v8, 8), ACL_ERROR_INVALID_PARAM);
    MK_MULTI.fill(&r, 10);
    rig_poison(&r);
    rig_upload_async(&r, s);
    CHECK_OK(aclmdlExecuteAsyncV2(r.id, r.in, r.out, s, h));
    rig_download_async(&r, s);
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK_OUTPUTS(&r, &MK_MULTI, 0);

    CHECK_OK(aclmdlDestroyExecConfigHandle(h));
    CHECK_OK(aclrtFree(work));
    CHECK_OK(aclmdlDestroyExecConfigHandle(cfg));
    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&r);
    teardown();
}

TEST(v2_stream_timeout)
{
    setup();
    rig r;
    rig_open(&r, sample("tiny"));
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    aclmdlExecConfigHandle *cfg = exec_config(20, -1);
    MK_TINY.fill(&r, 6);
    rig_upload(&r);

    CHECK_OK(fxemuStallStream(s, 250));
    double t0 = now_ms();
    CHECK_CODE(aclmdlExecuteV2(r.id, r.in, r.out, s, cfg), ACL_ERROR_RT_STREAM_SYNC_TIMEOUT);
    CHECK_RANGE(now_ms() - t0, 19.0, 200.0, "aclmdlExecuteV2 timeout (ms)");
    CHECK_EQ_U64(ACL_ERROR_RT_STREAM_SYNC_TIMEOUT, 507046);
    CHECK_OK(aclrtSynchronizeStreamWithTimeout(s, -1));
    rig_download(&r); /* the execution itself still ran */
    CHECK_OUTPUTS(&r, &MK_TINY, 0);

    /* the timeout sticks to the stream */
    CHECK_OK(fxemuStallStream(s, 250));
    t0 = now_ms();
    CHECK_CODE(aclrtSynchronizeStream(s), ACL_ERROR_RT_STREAM_SYNC_TIMEOUT);
    CHECK_RANGE(now_ms() - t0, 19.0, 200.0, "aclrtSynchronizeStream timeout (ms)");
    CHECK_OK(aclrtSynchronizeStreamWithTimeout(s, -1));

    CHECK_OK(aclmdlDestroyExecConfigHandle(cfg));
    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&r);
    teardown();
}

TEST_ENV(v2_sticky_event_timeout, "FASTEXEC_EMU_PROFILE=ipv350")
{
    setup();
    rig r;
    rig_open(&r, sample("tiny"));
    aclrtStream s;
    aclrtEvent ev;
    CHECK_OK(aclrtCreateStream(&s));
    CHECK_OK(aclrtCreateEvent(&ev));
    aclmdlExecConfigHandle *cfg = exec_config(-1, 20);
    MK_TINY.fill(&r, 7);
    rig_upload_async(&r, s);
    CHECK_OK(aclmdlExecuteAsyncV2(r.id, r.in, r.out, s, cfg));
    rig_download_async(&r, s);
    CHECK_OK(aclrtSynchronizeStreamWithTimeout(s, -1));
    CHECK_OUTPUTS(&r, &MK_TINY, 0);

    CHECK_OK(fxemuStallStream(s, 250));
    CHECK_OK(aclrtRecordEvent(ev, s));
    double t0 = now_ms();
    CHECK_CODE(aclrtSynchronizeEvent(ev), ACL_ERROR_RT_EVENT_SYNC_TIMEOUT);
    CHECK_RANGE(now_ms() - t0, 19.0, 200.0, "aclrtSynchronizeEvent timeout (ms)");
    CHECK_EQ_U64(ACL_ERROR_RT_EVENT_SYNC_TIMEOUT, 507047);
    CHECK_OK(aclrtSynchronizeEventWithTimeout(ev, -1));
    CHECK_OK(aclrtSynchronizeStreamWithTimeout(s, -1));

    CHECK_OK(aclmdlDestroyExecConfigHandle(cfg));
    CHECK_OK(aclrtDestroyEvent(ev));
    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&r);
    teardown();
}

TEST_ENV(v2_sticky_stream_timeout, "FASTEXEC_EMU_PROFILE=ipv350")
{
    setup();
    rig r;
    rig_open(&r, sample("tiny"));
    aclrtStream s, other;
    CHECK_OK(aclrtCreateStream(&s));
    CHECK_OK(aclrtCreateStream(&other));
    aclmdlExecConfigHandle *cfg = exec_config(20, -1);
    MK_TINY.fill(&r, 8);
    rig_upload_async(&r, s);
    CHECK_OK(aclmdlExecuteAsyncV2(r.id, r.in, r.out, s, cfg));
    rig_download_async(&r, s);
    CHECK_OK(aclrtSynchronizeStreamWithTimeout(s, -1));
    CHECK_OUTPUTS(&r, &MK_TINY, 0);

    CHECK_OK(fxemuStallStream(s, 250));
    double t0 = now_ms();
    CHECK_CODE(aclrtSynchronizeStream(s), ACL_ERROR_RT_STREAM_SYNC_TIMEOUT);
    CHECK_RANGE(now_ms() - t0, 19.0, 200.0, "aclrtSynchronizeStream timeout (ms)");
    /* another stream is not affected */
    CHECK_OK(fxemuStallStream(other, 40));
    CHECK_OK(aclrtSynchronizeStream(other));
    CHECK_OK(aclrtSynchronizeStreamWithTimeout(s, -1));

    CHECK_OK(aclmdlDestroyExecConfigHandle(cfg));
    CHECK_OK(aclrtDestroyStream(s));
    CHECK_OK(aclrtDestroyStream(other));
    rig_close(&r);
    teardown();
}

/* ================================================================ checked mode */

TEST(checked_two_streams)
{
    setup();
    rig a, b;
    rig_open(&a, sample("tiny"));
    rig_attach(&b, a.id); /* a second set of buffers for the same model id */
    aclrtStream sa, sb;
    CHECK_OK(aclrtCreateStream(&sa));
    CHECK_OK(aclrtCreateStream(&sb));
    MK_TINY.fill(&a, 1);
    MK_TINY.fill(&b, 2);
    rig_upload(&a);
    rig_upload(&b);

    uint64_t tasks0 = counters().tasks_run;
    CHECK_OK(fxemuStallStream(sa, 200));
    CHECK_OK(aclmdlExecuteAsync(a.id, a.in, a.out, sa));
    CHECK_OK(aclmdlExecuteAsync(a.id, a.in, a.out, sa)); /* the same stream twice is fine */
    CHECK_FAIL_MSG(aclmdlExecuteAsync(a.id, b.in, b.out, sb), FXEMU_ERR_MODEL_BUSY_OTHER_STREAM, "another stream");
    CHECK_EQ_U64(FXEMU_ERR_MODEL_BUSY_OTHER_STREAM, 507011);
    CHECK_FINDING(FXEMU_FINDING_MODEL_TWO_STREAMS, 1, 1, "two streams");
    /* nothing was queued on B */
    CHECK_OK(aclrtSynchronizeStream(sb));
    CHECK_UNTOUCHED(&b);
    CHECK_OK(aclrtSynchronizeStream(sa));
    CHECK_EQ_U64(counters().tasks_run - tasks0, 3);
    rig_download(&a);
    CHECK_OUTPUTS(&a, &MK_TINY, 0);
    /* A is idle: B may execute now */
    run_async(&b, &MK_TINY, sb, 3, 0);
    run_async(&a, &MK_TINY, sa, 4, 0);
    CHECK_FINDING(FXEMU_FINDING_MODEL_TWO_STREAMS, 1, 1, "two streams");

    CHECK_OK(aclrtDestroyStream(sa));
    CHECK_OK(aclrtDestroyStream(sb));
    rig_close(&b);
    rig_close(&a);
    expect_findings(1);
    teardown();
}

TEST(checked_host_pointer)
{
    setup();
    rig r;
    rig_open(&r, sample("tiny"));
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    MK_TINY.fill(&r, 3);
    rig_upload(&r);
    void *pinned;
    CHECK_OK(aclrtMallocHost(&pinned, 64));
    memcpy(pinned, r.host_in[0], 64);
    void *pageable = malloc(64);
    CHECK(pageable != NULL);
    memcpy(pageable, r.host_in[0], 64);
    aclDataBuffer *bp = aclCreateDataBuffer(pinned, 64), *bg = aclCreateDataBuffer(pageable, 64);
    aclmdlDataset *in_pinned = aclmdlCreateDataset(), *in_pageable = aclmdlCreateDataset();
    aclmdlDataset *out_pinned = aclmdlCreateDataset(), *out_pageable = aclmdlCreateDataset();
    CHECK_OK(aclmdlAddDatasetBuffer(in_pinned, bp));
    CHECK_OK(aclmdlAddDatasetBuffer(in_pageable, bg));
    CHECK_OK(aclmdlAddDatasetBuffer(out_pinned, bp));
    CHECK_OK(aclmdlAddDatasetBuffer(out_pageable, bg));

    CHECK_FAIL_MSG(aclmdlExecuteAsync(r.id, in_pinned, r.out, s), FXEMU_ERR_HOST_POINTER, "input 0 ('x')");
    CHECK_EQ_U64(FXEMU_ERR_HOST_POINTER, 107016);
    CHECK_FINDING(FXEMU_FINDING_HOST_POINTER, 1, 1, "pinned");
    CHECK_FAIL_MSG(aclmdlExecuteAsync(r.id, in_pageable, r.out, s), FXEMU_ERR_HOST_POINTER, "input 0 ('x')");
    CHECK_FINDING(FXEMU_FINDING_HOST_POINTER, 2, 2, "pageable");
    memset(pinned, 0x33, 64);
    memset(pageable, 0x44, 64);
    CHECK_FAIL_MSG(aclmdlExecuteAsync(r.id, r.in, out_pinned, s), FXEMU_ERR_HOST_POINTER, "output 0 ('y')");
    CHECK_FINDING(FXEMU_FINDING_HOST_POINTER, 3, 3, "pinned");
    CHECK_FAIL_MSG(aclmdlExecute(r.id, r.in, out_pageable), FXEMU_ERR_HOST_POINTER, "output 0 ('y')");
    CHECK_FINDING(FXEMU_FINDING_HOST_POINTER, 4, 4, "pageable");
    CHECK_OK(aclrtSynchronizeStream(s));
    /* nothing ran: host buffers and device outputs untouched */
    CHECK_ALL(pinned, 0x33, 64, "pinned output");
    CHECK_ALL(pageable, 0x44, 64, "pageable output");
    CHECK_UNTOUCHED(&r);
    /* and no execution mode was fixed: a synchronous execution works */
    run_sync(&r, &MK_TINY, 4, 0);

    CHECK_OK(aclmdlDestroyDataset(in_pinned));
    CHECK_OK(aclmdlDestroyDataset(in_pageable));
    CHECK_OK(aclmdlDestroyDataset(out_pinned));
    CHECK_OK(aclmdlDestroyDataset(out_pageable));
    CHECK_OK(aclDestroyDataBuffer(bp));
    CHECK_OK(aclDestroyDataBuffer(bg));
    CHECK_OK(aclrtFreeHost(pinned));
    free(pageable);
    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&r);
    expect_findings(4);
    teardown();
}

TEST(checked_free_in_use)
{
    setup();
    rig r;
    rig_open(&r, sample("balanced"));
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    MK_BALANCED.fill(&r, 5);
    CHECK_OK(fxemuStallStream(s, 200));
    rig_upload_async(&r, s); /* pinned in -> dev in */
    CHECK_OK(aclmdlExecuteAsync(r.id, r.in, r.out, s));
    rig_download_async(&r, s); /* dev out -> pinned out */

    fxemuCounters c0 = counters();
    CHECK_FAIL_MSG(aclrtFree(r.dev_in[0]), FXEMU_ERR_FREE_IN_USE, "still used");
    CHECK_EQ_U64(FXEMU_ERR_FREE_IN_USE, 207002);
    CHECK_FINDING(FXEMU_FINDING_FREE_IN_USE, 1, 1, "still used");
    CHECK_FAIL_MSG(aclrtFree(r.dev_out[0]), FXEMU_ERR_FREE_IN_USE, "still used");
    CHECK_FAIL_MSG(aclrtFreeHost(r.host_in[0]), FXEMU_ERR_FREE_IN_USE, "still used");
    CHECK_FAIL_MSG(aclrtFreeHost(r.host_out[0]), FXEMU_ERR_FREE_IN_USE, "still used");
    CHECK_FINDING(FXEMU_FINDING_FREE_IN_USE, 4, 4, "still used");
    fxemuCounters c1 = counters();
    CHECK_EQ_U64(c1.device_allocations, c0.device_allocations); /* blocks kept */
    CHECK_EQ_U64(c1.device_bytes, c0.device_bytes);
    CHECK_EQ_U64(c1.host_allocations, c0.host_allocations);
    aclrtStreamStatus st;
    CHECK_OK(aclrtStreamQuery(s, &st));
    CHECK(st == ACL_STREAM_STATUS_NOT_READY); /* the frees really raced the queued work */

    /* the queued work completes correctly, then the frees succeed */
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK_OUTPUTS(&r, &MK_BALANCED, 0);
    CHECK_OK(aclrtFree(r.dev_in[0]));
    CHECK_OK(aclrtFreeHost(r.host_in[0]));
    r.dev_in[0] = NULL;
    r.host_in[0] = NULL;
    CHECK_EQ_U64(counters().device_allocations, c0.device_allocations - 1);

    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&r);
    expect_findings(4);
    teardown();
}

TEST(checked_batch_while_running)
{
    setup();
    rig r;
    rig_open(&r, sample("dynamic-batch"));
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    size_t idx = (size_t)r.dyn;
    CHECK_OK(aclmdlSetDynamicBatchSize(r.id, r.in, idx, 2));
    MK_DYN.fill(&r, 4);
    rig_upload(&r);
    CHECK_OK(fxemuStallStream(s, 200));
    CHECK_OK(aclmdlExecuteAsync(r.id, r.in, r.out, s));
    CHECK_FAIL_MSG(aclmdlSetDynamicBatchSize(r.id, r.in, idx, 4), FXEMU_ERR_BATCH_WHILE_RUNNING, "in flight");
    CHECK_EQ_U64(FXEMU_ERR_BATCH_WHILE_RUNNING, 107037);
    CHECK_FINDING(FXEMU_FINDING_BATCH_WHILE_RUNNING, 1, 1, "in flight");
    CHECK_OK(aclrtSynchronizeStream(s));
    rig_download(&r);
    CHECK_OUTPUTS(&r, &MK_DYN, 2);
    /* nothing changed: the tensor still holds 2 and the next run uses batch 2 */
    CHECK_EQ_U64(read_dyn(&r), 2);
    run_async(&r, &MK_DYN, s, 5, 2);
    /* with nothing in flight the change is accepted */
    CHECK_OK(aclmdlSetDynamicBatchSize(r.id, r.in, idx, 4));
    CHECK_EQ_U64(read_dyn(&r), 4);
    run_async(&r, &MK_DYN, s, 6, 4);

    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&r);
    expect_findings(1);
    teardown();
}

static void check_mix_msg_at(const char *file, int line)
{
    const char *m = aclGetRecentErrMsg();
    if (!m || (!strstr(m, "mix") && !strstr(m, "synchronous"))) check_contains_at(file, line, m, "mix", "aclGetRecentErrMsg");
}

TEST(checked_mixed_sync_async)
{
    setup();
    rig a, b;
    rig_open(&a, sample("tiny"));
    rig_open(&b, sample("tiny"));
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));

    /* async first, then sync */
    run_async(&a, &MK_TINY, s, 1, 0);
    rig_poison(&a);
    CHECK_CODE(aclmdlExecute(a.id, a.in, a.out), ACL_ERROR_GE_FAILURE);
    check_mix_msg_at(__FILE__, __LINE__);
    CHECK_FINDING(FXEMU_FINDING_MIXED_SYNC_ASYNC, 1, 1, "mix");
    CHECK_UNTOUCHED(&a);
    run_async(&a, &MK_TINY, s, 2, 0);

    /* sync first, then async */
    run_sync(&b, &MK_TINY, 3, 0);
    rig_poison(&b);
    CHECK_CODE(aclmdlExecuteAsync(b.id, b.in, b.out, s), ACL_ERROR_GE_FAILURE);
    check_mix_msg_at(__FILE__, __LINE__);
    CHECK_FINDING(FXEMU_FINDING_MIXED_SYNC_ASYNC, 2, 2, "mix");
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK_UNTOUCHED(&b);
    run_sync(&b, &MK_TINY, 4, 0);

    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&a);
    rig_close(&b);
    expect_findings(2);
    teardown();
}

TEST(checked_destroyed_handles)
{
    setup();
    rig r;
    rig_open(&r, sample("tiny"));
    aclrtStream s, dead_stream;
    CHECK_OK(aclrtCreateStream(&s));
    CHECK_OK(aclrtCreateStream(&dead_stream));
    aclrtEvent dead_event;
    CHECK_OK(aclrtCreateEvent(&dead_event));
    aclmdlExecConfigHandle *dead_cfg = exec_config(-1, -1);
    aclmdlDataset *dead_in = aclmdlCreateDataset(), *dead_out = aclmdlCreateDataset(), *holder = aclmdlCreateDataset();
    aclDataBuffer *dead_buf = aclCreateDataBuffer(r.dev_in[0], r.in_size[0]);
    CHECK_OK(aclmdlAddDatasetBuffer(dead_in, r.buf_in[0]));
    CHECK_OK(aclmdlAddDatasetBuffer(dead_out, r.buf_out[0]));
    CHECK_OK(aclmdlAddDatasetBuffer(holder, dead_buf));
    MK_TINY.fill(&r, 5);
    rig_upload(&r);
    CHECK_OK(aclrtSynchronizeStream(s));
    uint64_t tasks0 = counters().tasks_run;

    CHECK_OK(aclmdlDestroyDataset(dead_in));
    CHECK_FAIL_MSG(aclmdlExecuteAsync(r.id, dead_in, r.out, s), FXEMU_ERR_DESTROYED_HANDLE, "dataset");
    CHECK_FINDING(FXEMU_FINDING_DESTROYED_HANDLE, 1, 1, "dataset");
    CHECK_OK(aclmdlDestroyDataset(dead_out));
    CHECK_FAIL_MSG(aclmdlExecuteAsync(r.id, r.in, dead_out, s), FXEMU_ERR_DESTROYED_HANDLE, "dataset");
    CHECK_OK(aclDestroyDataBuffer(dead_buf));
    CHECK_FAIL_MSG(aclmdlExecuteAsync(r.id, holder, r.out, s), FXEMU_ERR_DESTROYED_HANDLE, "input 0");
    CHECK_FINDING(FXEMU_FINDING_DESTROYED_HANDLE, 3, 3, "destroyed data buffer");
    CHECK_OK(aclrtDestroyStream(dead_stream));
    CHECK_FAIL_MSG(aclmdlExecuteAsync(r.id, r.in, r.out, dead_stream), FXEMU_ERR_DESTROYED_HANDLE, "stream");
    CHECK_FINDING(FXEMU_FINDING_DESTROYED_HANDLE, 4, 4, "stream");
    CHECK_OK(aclmdlDestroyExecConfigHandle(dead_cfg));
    CHECK_FAIL_MSG(aclmdlExecuteV2(r.id, r.in, r.out, s, dead_cfg), FXEMU_ERR_DESTROYED_HANDLE, "exec config");
    CHECK_OK(aclrtDestroyEvent(dead_event));
    CHECK_FAIL_MSG(aclrtRecordEvent(dead_event, s), FXEMU_ERR_DESTROYED_HANDLE, "event");
    CHECK_FAIL_MSG(aclrtSynchronizeEvent(dead_event), FXEMU_ERR_DESTROYED_HANDLE, "event");
    CHECK_FINDING(FXEMU_FINDING_DESTROYED_HANDLE, 7, 7, "event");

    /* nothing was queued and nothing ran */
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK_EQ_U64(counters().tasks_run, tasks0);
    CHECK_UNTOUCHED(&r);
    run_async(&r, &MK_TINY, s, 6, 0);

    CHECK_OK(aclmdlDestroyDataset(holder));
    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&r);
    expect_findings(7);
    teardown();
}

/* ================================================================ checked mode off */

TEST_ENV(unchecked_two_streams, "FASTEXEC_EMU_CHECKED=0")
{
    setup();
    fxemuProfile p;
    CHECK_OK(fxemuGetProfile(&p));
    CHECK(p.checked == 0);
    rig a, b;
    rig_open(&a, sample("balanced"));
    rig_attach(&b, a.id);
    aclrtStream sa, sb;
    CHECK_OK(aclrtCreateStream(&sa));
    CHECK_OK(aclrtCreateStream(&sb));
    MK_BALANCED.fill(&a, 1);
    MK_BALANCED.fill(&b, 2);
    rig_poison(&a);
    rig_poison(&b);
    CHECK_OK(fxemuStallStream(sa, 100));
    rig_upload_async(&a, sa);
    CHECK_OK(aclmdlExecuteAsync(a.id, a.in, a.out, sa));
    rig_download_async(&a, sa);
    rig_upload_async(&b, sb);
    CHECK_OK(aclmdlExecuteAsync(a.id, b.in, b.out, sb)); /* allowed */
    rig_download_async(&b, sb);
    CHECK_OK(aclrtSynchronizeStream(sb));
    CHECK_OK(aclrtSynchronizeStream(sa));
    CHECK_OUTPUTS(&a, &MK_BALANCED, 0);
    CHECK_OUTPUTS(&b, &MK_BALANCED, 0);
    CHECK_EQ_U64(counters().findings, 0);
    CHECK_OK(aclrtDestroyStream(sa));
    CHECK_OK(aclrtDestroyStream(sb));
    rig_close(&b);
    rig_close(&a);
    teardown();
}

TEST(unchecked_free_deferred)
{
    fxemuSetChecked(0);
    setup();
    fxemuProfile p;
    CHECK_OK(fxemuGetProfile(&p));
    CHECK(p.checked == 0);
    rig r;
    rig_open(&r, sample("balanced"));
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    MK_BALANCED.fill(&r, 3);
    unsigned char *input_copy = malloc(r.in_size[0]); /* the reference needs the input after the free */
    CHECK(input_copy != NULL);
    memcpy(input_copy, r.host_in[0], r.in_size[0]);
    CHECK_OK(fxemuStallStream(s, 150));
    rig_upload_async(&r, s);
    CHECK_OK(aclmdlExecuteAsync(r.id, r.in, r.out, s));
    rig_download_async(&r, s);
    fxemuCounters c0 = counters();
    CHECK_OK(aclrtFree(r.dev_in[0]));    /* deferred */
    CHECK_OK(aclrtFree(r.dev_out[0]));   /* deferred */
    CHECK_OK(aclrtFreeHost(r.host_in[0])); /* deferred */
    r.dev_in[0] = r.dev_out[0] = NULL;
    r.host_in[0] = NULL;
    fxemuCounters c1 = counters();
    CHECK_EQ_U64(c1.device_allocations, c0.device_allocations); /* still there until the work is done */
    CHECK_EQ_U64(c1.device_bytes, c0.device_bytes);
    CHECK_EQ_U64(c1.host_allocations, c0.host_allocations);
    aclrtStreamStatus st;
    CHECK_OK(aclrtStreamQuery(s, &st));
    CHECK(st == ACL_STREAM_STATUS_NOT_READY); /* the frees really raced the queued work */
    CHECK_OK(aclrtSynchronizeStream(s));
    r.host_in[0] = input_copy;
    CHECK_OUTPUTS(&r, &MK_BALANCED, 0); /* the queued work used the freed blocks correctly */
    r.host_in[0] = NULL;
    free(input_copy);
    fxemuCounters c2 = counters();
    CHECK_EQ_U64(c2.device_allocations, c0.device_allocations - 2);
    CHECK_EQ_U64(c2.host_allocations, c0.host_allocations - 1);
    CHECK_EQ_U64(c2.findings, 0);
    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&r);
    teardown();
}

TEST_ENV(unchecked_batch_change, "FASTEXEC_EMU_CHECKED=0")
{
    setup();
    rig r;
    rig_open(&r, sample("dynamic-batch"));
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    size_t idx = (size_t)r.dyn;
    CHECK_OK(aclmdlSetDynamicBatchSize(r.id, r.in, idx, 2));
    MK_DYN.fill(&r, 4);
    rig_upload(&r);
    CHECK_OK(fxemuStallStream(s, 100));
    CHECK_OK(aclmdlExecuteAsync(r.id, r.in, r.out, s));
    CHECK_OK(aclmdlSetDynamicBatchSize(r.id, r.in, idx, 4)); /* allowed */
    CHECK_EQ_U64(read_dyn(&r), 4);
    CHECK_OK(aclrtSynchronizeStream(s));
    /* the racing execution ran over 2 or 4 samples; the first two are right either way */
    rig_download(&r);
    unsigned char *want = malloc(r.out_size[0]);
    memset(want, SENTINEL, r.out_size[0]);
    MK_DYN.expect(&r, 2, 0, want);
    CHECK_BYTES(r.host_out[0], want, 2 * DB_M * 4, "first two samples");
    free(want);
    run_async(&r, &MK_DYN, s, 5, 4);
    CHECK_EQ_U64(counters().findings, 0);
    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&r);
    teardown();
}

/* Host pointers, mixing and dead handles are reported whether checked mode is on or off. */
TEST_ENV(unchecked_still_reported, "FASTEXEC_EMU_CHECKED=0")
{
    setup();
    rig r;
    rig_open(&r, sample("tiny"));
    void *pageable = calloc(1, 64);
    aclDataBuffer *bg = aclCreateDataBuffer(pageable, 64);
    aclmdlDataset *in_host = aclmdlCreateDataset();
    CHECK_OK(aclmdlAddDatasetBuffer(in_host, bg));
    CHECK_CODE(aclmdlExecute(r.id, in_host, r.out), FXEMU_ERR_HOST_POINTER);
    CHECK_FINDING(FXEMU_FINDING_HOST_POINTER, 1, 1, "pageable");
    run_sync(&r, &MK_TINY, 1, 0);
    CHECK_CODE(aclmdlExecuteAsync(r.id, r.in, r.out, NULL), ACL_ERROR_GE_FAILURE);
    CHECK_FINDING(FXEMU_FINDING_MIXED_SYNC_ASYNC, 2, 1, "mix");
    aclmdlDataset *dead = aclmdlCreateDataset();
    CHECK_OK(aclmdlDestroyDataset(dead));
    CHECK_CODE(aclmdlExecute(r.id, dead, r.out), FXEMU_ERR_DESTROYED_HANDLE);
    CHECK_FINDING(FXEMU_FINDING_DESTROYED_HANDLE, 3, 1, "dataset");
    CHECK_OK(aclmdlDestroyDataset(in_host));
    CHECK_OK(aclDestroyDataBuffer(bg));
    free(pageable);
    rig_close(&r);
    expect_findings(3);
    teardown();
}

/* ================================================================ fault injection */

TEST(fault_exec_task)
{
    setup();
    rig r;
    rig_open(&r, sample("tiny"));
    aclrtStream s;
    aclrtEvent ev;
    CHECK_OK(aclrtCreateStream(&s));
    CHECK_OK(aclrtCreateEvent(&ev));
    CHECK_OK(fxemuAddFault("task:aclmdlExecuteAsync:2:507011"));

    run_async(&r, &MK_TINY, s, 1, 0);

    MK_TINY.fill(&r, 2);
    rig_poison(&r);
    rig_upload_async(&r, s);
    CHECK_OK(aclmdlExecuteAsync(r.id, r.in, r.out, s)); /* enqueued fine, fails on the stream */
    rig_download_async(&r, s);
    CHECK_OK(aclrtRecordEvent(ev, s));
    CHECK_CODE(aclrtSynchronizeEvent(ev), ACL_ERROR_RT_MODEL_EXECUTE);
    CHECK_FAIL_MSG(aclrtSynchronizeStream(s), ACL_ERROR_RT_MODEL_EXECUTE, "507011");
    CHECK_ALL(r.host_out[0], SENTINEL, r.out_size[0], "output of the failed execution");
    CHECK_OK(aclrtSynchronizeStream(s)); /* reported once */

    run_async(&r, &MK_TINY, s, 3, 0);
    CHECK_OK(aclrtRecordEvent(ev, s));
    CHECK_OK(aclrtSynchronizeEvent(ev));
    CHECK_EQ_U64(counters().findings, 0);
    fxemuClearFaults();

    CHECK_OK(aclrtDestroyEvent(ev));
    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&r);
    teardown();
}

TEST(fault_load_call)
{
    setup();
    CHECK_CODE(fxemuAddFault("call:aclmdlLoadFromFile"), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(fxemuAddFault("call:aclmdlLoadFromFile:1:545001"));
    uint32_t id;
    CHECK_FAIL_MSG(aclmdlLoadFromFile(sample("tiny"), &id), ACL_ERROR_GE_LOAD_MODEL, "injected");
    CHECK_EQ_U64(ACL_ERROR_GE_LOAD_MODEL, 545001);
    CHECK_EQ_U64(counters().models, 0);
    /* only the first call */
    rig r;
    rig_open(&r, sample("tiny"));
    CHECK_EQ_U64(counters().models, 1);
    run_sync(&r, &MK_TINY, 1, 0);
    fxemuClearFaults();
    rig_close(&r);
    teardown();
}

/* ================================================================ threads */

typedef struct {
    aclrtContext ctx;
    unsigned index;
    uint32_t id;
    aclrtStream stream;
    pthread_mutex_t *mu;
} thread_arg;

static void *own_model_thread(void *p)
{
    thread_arg *a = p;
    CHECK_OK(aclrtSetCurrentContext(a->ctx));
    uint32_t id;
    CHECK_OK(aclmdlLoadFromMem(SMALL_MODEL, strlen(SMALL_MODEL), &id));
    a->id = id;
    rig r;
    rig_attach(&r, id);
    r.owns_model = 1;
    CHECK_EQ_U64(r.in_size[0], 4 * 256 * 4);
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    for (unsigned it = 0; it < 100; it++) run_async(&r, &MK_BALANCED, s, a->index * 1000u + it, 0);
    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&r);
    return NULL;
}

TEST(threads_own_models)
{
    setup();
    aclrtContext ctx;
    CHECK_OK(aclrtGetCurrentContext(&ctx));
    pthread_t th[4];
    thread_arg args[4];
    for (unsigned i = 0; i < 4; i++) {
        args[i] = (thread_arg){.ctx = ctx, .index = i};
        CHECK(pthread_create(&th[i], NULL, own_model_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) CHECK(pthread_join(th[i], NULL) == 0);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < i; j++) CHECK(args[i].id != args[j].id);
    CHECK_EQ_U64(counters().models, 0);
    teardown();
}

/* The documented pattern for one model id shared by threads: one stream, a lock around
 * "copy in + execute + copy out + record", then each thread waits on its own event. */
static void *shared_model_thread(void *p)
{
    thread_arg *a = p;
    CHECK_OK(aclrtSetCurrentContext(a->ctx));
    rig r;
    rig_attach(&r, a->id);
    aclrtEvent ev;
    CHECK_OK(aclrtCreateEvent(&ev));
    for (unsigned it = 0; it < 50; it++) {
        MK_BALANCED.fill(&r, a->index * 1000u + it);
        memset(r.host_out[0], 0, r.out_size[0]);
        CHECK(pthread_mutex_lock(a->mu) == 0);
        rig_upload_async(&r, a->stream);
        CHECK_OK(aclmdlExecuteAsync(r.id, r.in, r.out, a->stream));
        rig_download_async(&r, a->stream);
        CHECK_OK(aclrtRecordEvent(ev, a->stream));
        CHECK(pthread_mutex_unlock(a->mu) == 0);
        CHECK_OK(aclrtSynchronizeEvent(ev));
        CHECK_OUTPUTS(&r, &MK_BALANCED, 0);
    }
    CHECK_OK(aclrtDestroyEvent(ev));
    rig_close(&r);
    return NULL;
}

TEST(threads_shared_model)
{
    setup();
    aclrtContext ctx;
    CHECK_OK(aclrtGetCurrentContext(&ctx));
    uint32_t id;
    CHECK_OK(aclmdlLoadFromMem(SMALL_MODEL, strlen(SMALL_MODEL), &id));
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_t th[4];
    thread_arg args[4];
    for (unsigned i = 0; i < 4; i++) {
        args[i] = (thread_arg){.ctx = ctx, .index = i, .id = id, .stream = s, .mu = &mu};
        CHECK(pthread_create(&th[i], NULL, shared_model_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) CHECK(pthread_join(th[i], NULL) == 0);
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK_EQ_U64(counters().findings, 0);
    CHECK_OK(aclrtDestroyStream(s));
    CHECK_OK(aclmdlUnload(id));
    teardown();
}
