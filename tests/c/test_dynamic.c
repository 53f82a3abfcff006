/* Dynamic HW, dynamic dims and dynamic shape models through the ACL model API: the gear and
 * range queries, the Set calls with their error codes for a value that is no gear or out of
 * range, real output shapes (aclmdlGetDatasetTensorDesc, aclmdlGetCurOutputDims), the kernel
 * at the shape actually run, and checked mode's gear-change report. */
#include "emu_test.h"

#define MAXIO 2

typedef struct {
    uint32_t id;
    aclmdlDesc *desc;
    aclmdlDataset *in, *out;
    void *dev_in[MAXIO + 1], *dev_out[MAXIO];
    aclDataBuffer *bin[MAXIO + 1], *bout[MAXIO];
    size_t n_in, n_out;        /* buffers, the hidden gear tensor included */
} rig;

static void rig_open(rig *r, const char *name)
{
    memset(r, 0, sizeof *r);
    CHECK_OK(aclmdlLoadFromFile(sample(name), &r->id));
    r->desc = aclmdlCreateDesc();
    CHECK_OK(aclmdlGetDesc(r->desc, r->id));
    r->n_in = aclmdlGetNumInputs(r->desc);
    r->n_out = aclmdlGetNumOutputs(r->desc);
    r->in = aclmdlCreateDataset();
    r->out = aclmdlCreateDataset();
    for (size_t i = 0; i < r->n_in; i++) {
        size_t n = aclmdlGetInputSizeByIndex(r->desc, i);
        CHECK(n > 0);
        CHECK_OK(aclrtMalloc(&r->dev_in[i], n, ACL_MEM_MALLOC_HUGE_FIRST));
        CHECK_OK(aclrtMemset(r->dev_in[i], n, 0, n));
        r->bin[i] = aclCreateDataBuffer(r->dev_in[i], n);
        CHECK_OK(aclmdlAddDatasetBuffer(r->in, r->bin[i]));
    }
    for (size_t i = 0; i < r->n_out; i++) {
        size_t n = aclmdlGetOutputSizeByIndex(r->desc, i);
        CHECK(n > 0);
        CHECK_OK(aclrtMalloc(&r->dev_out[i], n, ACL_MEM_MALLOC_HUGE_FIRST));
        r->bout[i] = aclCreateDataBuffer(r->dev_out[i], n);
        CHECK_OK(aclmdlAddDatasetBuffer(r->out, r->bout[i]));
    }
}

static void rig_close(rig *r)
{
    for (size_t i = 0; i < r->n_in; i++) {
        CHECK_OK(aclDestroyDataBuffer(r->bin[i]));
        CHECK_OK(aclrtFree(r->dev_in[i]));
    }
    for (size_t i = 0; i < r->n_out; i++) {
        CHECK_OK(aclDestroyDataBuffer(r->bout[i]));
        CHECK_OK(aclrtFree(r->dev_out[i]));
    }
    CHECK_OK(aclmdlDestroyDataset(r->in));
    CHECK_OK(aclmdlDestroyDataset(r->out));
    CHECK_OK(aclmdlDestroyDesc(r->desc));
    CHECK_OK(aclmdlUnload(r->id));
}

static void check_dims(const aclmdlIODims *d, size_t n, const int64_t *want)
{
    CHECK_EQ_U64(d->dimCount, n);
    for (size_t i = 0; i < n; i++) CHECK_EQ_U64((uint64_t)d->dims[i], (uint64_t)want[i]);
}

/* The real shape of output 0 after an execution, from the output dataset. */
static void check_out_desc(const rig *r, size_t i, size_t n, const int64_t *want)
{
    aclTensorDesc *d = aclmdlGetDatasetTensorDesc(r->out, i);
    CHECK(d != NULL);
    CHECK_EQ_U64(aclGetTensorDescNumDims(d), n);
    for (size_t j = 0; j < n; j++) {
        int64_t v;
        CHECK_OK(aclGetTensorDescDimV2(d, j, &v));
        CHECK_EQ_U64((uint64_t)v, (uint64_t)want[j]);
    }
}

/* Modelled execute time of one synchronous run, ms (real timing). */
static double timed_execute(rig *r)
{
    double t0 = now_ms();
    CHECK_OK(aclmdlExecute(r->id, r->in, r->out));
    return now_ms() - t0;
}

TEST(hw_queries_and_set)
{
    setup();
    rig r;
    rig_open(&r, "dynamic-hw");
    CHECK_EQ_U64(r.n_in, 2);   /* image + the hidden gear tensor */
    CHECK(strcmp(aclmdlGetInputNameByIndex(r.desc, 1), ACL_DYNAMIC_TENSOR_NAME) == 0);
    aclmdlHW hw;
    CHECK_OK(aclmdlGetDynamicHW(r.desc, -1, &hw));
    CHECK_EQ_U64(hw.hwCount, 3);
    CHECK_EQ_U64(hw.hw[2][0], 48);
    CHECK_EQ_U64(hw.hw[2][1], 64);
    aclmdlBatch b;
    CHECK_OK(aclmdlGetDynamicBatch(r.desc, &b));
    CHECK_EQ_U64(b.batchCount, 0);
    size_t gears = 99;
    CHECK_OK(aclmdlGetInputDynamicGearCount(r.desc, -1, &gears));
    CHECK_EQ_U64(gears, 0);
    aclmdlIODims d;
    CHECK_OK(aclmdlGetInputDims(r.desc, 0, &d));
    check_dims(&d, 4, (int64_t[]){2, 3, -1, -1});
    /* sizes at the largest gear: 2*3*48*64 floats */
    CHECK_EQ_U64(aclmdlGetInputSizeByIndex(r.desc, 0), (uint64_t)2 * 3 * 48 * 64 * 4);
    aclmdlIODimsRange range;
    CHECK_OK(aclmdlGetInputDimsRange(r.desc, 0, &range));
    CHECK_EQ_U64(range.rangeCount, 4);
    CHECK_EQ_U64(range.range[2][0], 16);
    CHECK_EQ_U64(range.range[2][1], 48);
    CHECK_EQ_U64(range.range[3][1], 64);
    CHECK_EQ_U64(range.range[1][0], 3);
    CHECK_EQ_U64(range.range[1][1], 3);
    /* errors: no gear, zero, wrong index, a model of another kind */
    CHECK_FAIL_MSG(aclmdlSetDynamicHWSize(r.id, r.in, 1, 16, 32), ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID, "16x32 is not a height/width gear");
    CHECK_FAIL_MSG(aclmdlSetDynamicHWSize(r.id, r.in, 1, 0, 16), ACL_ERROR_INVALID_PARAM, "must be > 0");
    CHECK_FAIL_MSG(aclmdlSetDynamicHWSize(r.id, r.in, 0, 16, 16), ACL_ERROR_INVALID_PARAM, "not the dynamic-batch input");
    CHECK_FAIL_MSG(aclmdlSetDynamicBatchSize(r.id, r.in, 1, 2), ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID, "no dynamic-batch gears");
    aclmdlIODims dd = {0};
    CHECK_FAIL_MSG(aclmdlSetInputDynamicDims(r.id, r.in, 1, &dd), ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID, "no dynamic dims gears");
    /* each gear runs at its shape and its modelled time */
    CHECK_OK(aclmdlGetCurOutputDims(r.desc, 0, &d));
    check_dims(&d, 2, (int64_t[]){2, 8});
    CHECK_OK(aclmdlSetDynamicHWSize(r.id, r.in, 1, 16, 16));
    CHECK_OK(aclmdlExecute(r.id, r.in, r.out));
    check_out_desc(&r, 0, 2, (int64_t[]){2, 8});
    rig_close(&r);
    teardown();
}

TEST(dims_queries_set_and_run)
{
    setup();
    rig r;
    rig_open(&r, "dynamic-dims");
    CHECK_EQ_U64(r.n_in, 3);
    size_t gears = 0;
    CHECK_OK(aclmdlGetInputDynamicGearCount(r.desc, -1, &gears));
    CHECK_EQ_U64(gears, 3);
    aclmdlIODims all[3];
    CHECK_FAIL_MSG(aclmdlGetInputDynamicDims(r.desc, -1, all, 2), ACL_ERROR_INVALID_PARAM, "below the model's 3 gears");
    CHECK_OK(aclmdlGetInputDynamicDims(r.desc, -1, all, 3));
    check_dims(&all[1], 4, (int64_t[]){2, 32, 2, 4});   /* ids (2,32) + mask (2,4) */
    aclmdlIODimsRange range;
    CHECK_OK(aclmdlGetInputDimsRange(r.desc, 0, &range));
    CHECK_EQ_U64(range.range[0][0], 1);
    CHECK_EQ_U64(range.range[0][1], 4);
    CHECK_EQ_U64(range.range[1][0], 16);
    CHECK_EQ_U64(range.range[1][1], 64);
    /* a shape that is no gear */
    aclmdlIODims bad = all[1];
    bad.dims[3] = 5;
    CHECK_FAIL_MSG(aclmdlSetInputDynamicDims(r.id, r.in, 2, &bad), ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID, "are not a gear of model");
    CHECK_FAIL_MSG(aclmdlSetInputDynamicDims(r.id, r.in, 2, NULL), ACL_ERROR_INVALID_PARAM, "dims is NULL");
    CHECK_FAIL_MSG(aclmdlSetDynamicHWSize(r.id, r.in, 2, 16, 16), ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID, "no dynamic height/width gears");
    /* gear 1: ids = 7 everywhere -> 3*7-1 = 20; the real output shapes */
    CHECK_OK(aclmdlSetInputDynamicDims(r.id, r.in, 2, &all[1]));
    int32_t ids[2 * 32];
    for (size_t i = 0; i < 64; i++) ids[i] = 7;
    CHECK_OK(aclrtMemcpy(r.dev_in[0], sizeof ids, ids, sizeof ids, ACL_MEMCPY_HOST_TO_DEVICE));
    CHECK_OK(aclmdlExecute(r.id, r.in, r.out));
    check_out_desc(&r, 0, 2, (int64_t[]){2, 32});
    check_out_desc(&r, 1, 2, (int64_t[]){2, 4});
    int32_t got[2 * 32];
    CHECK_OK(aclrtMemcpy(got, sizeof got, r.dev_out[0], sizeof got, ACL_MEMCPY_DEVICE_TO_HOST));
    for (size_t i = 0; i < 64; i++) CHECK_EQ_U64((uint64_t)got[i], 20);
    aclmdlIODims cur;
    CHECK_OK(aclmdlGetCurOutputDims(r.desc, 0, &cur));
    check_dims(&cur, 2, (int64_t[]){2, 32});
    /* the hidden tensor holds the gear's values */
    int64_t hidden[3];
    CHECK_OK(aclrtMemcpy(hidden, sizeof hidden, r.dev_in[2], sizeof hidden, ACL_MEMCPY_DEVICE_TO_HOST));
    CHECK_EQ_U64((uint64_t)hidden[0], 2);
    CHECK_EQ_U64((uint64_t)hidden[1], 32);
    CHECK_EQ_U64((uint64_t)hidden[2], 2);
    rig_close(&r);
    teardown();
}

TEST(shape_tensor_descs_ranges_and_sizes)
{
    setup();
    rig r;
    rig_open(&r, "dynamic-shape");
    CHECK_EQ_U64(r.n_in, 1);   /* no hidden tensor */
    CHECK_EQ_U64(aclmdlGetInputSizeByIndex(r.desc, 0), (uint64_t)8 * 128 * 4);   /* the ranges' upper bounds */
    CHECK_EQ_U64(aclmdlGetOutputSizeByIndex(r.desc, 0), (uint64_t)8 * 128 * 4);
    aclmdlIODimsRange range;
    CHECK_OK(aclmdlGetInputDimsRange(r.desc, 0, &range));
    CHECK_EQ_U64(range.range[0][0], 1);
    CHECK_EQ_U64(range.range[0][1], 8);
    CHECK_EQ_U64(range.range[1][1], 128);
    aclmdlIODims d;
    CHECK_OK(aclmdlGetInputDimsV2(r.desc, 0, &d));
    check_dims(&d, 2, (int64_t[]){-1, -1});
    /* no shape set: the execution names the input */
    CHECK_FAIL_MSG(aclmdlExecute(r.id, r.in, r.out), ACL_ERROR_GE_PARAM_INVALID, "set its shape with aclmdlSetDatasetTensorDesc");
    /* out of range */
    aclTensorDesc *big = aclCreateTensorDesc(ACL_FLOAT, 2, (int64_t[]){9, 4}, ACL_FORMAT_ND);
    CHECK_OK(aclmdlSetDatasetTensorDesc(r.in, big, 0));
    CHECK_FAIL_MSG(aclmdlExecute(r.id, r.in, r.out), ACL_ERROR_GE_PARAM_INVALID, "dims[0] = 9 is outside its range [1, 8]");
    aclDestroyTensorDesc(big);
    /* (3, 50): y = x * 0.5 + 1 with x = 4 -> 3, output shape (3, 50) */
    aclTensorDesc *t = aclCreateTensorDesc(ACL_FLOAT, 2, (int64_t[]){3, 50}, ACL_FORMAT_ND);
    CHECK_OK(aclmdlSetDatasetTensorDesc(r.in, t, 0));
    aclDestroyTensorDesc(t);
    aclTensorDesc *back = aclmdlGetDatasetTensorDesc(r.in, 0);
    CHECK(back != NULL);
    CHECK_EQ_U64(aclGetTensorDescNumDims(back), 2);
    float x[150];
    for (size_t i = 0; i < 150; i++) x[i] = 4.0f;
    CHECK_OK(aclrtMemcpy(r.dev_in[0], sizeof x, x, sizeof x, ACL_MEMCPY_HOST_TO_DEVICE));
    CHECK_OK(aclmdlExecute(r.id, r.in, r.out));
    check_out_desc(&r, 0, 2, (int64_t[]){3, 50});
    float y[150];
    CHECK_OK(aclrtMemcpy(y, sizeof y, r.dev_out[0], sizeof y, ACL_MEMCPY_DEVICE_TO_HOST));
    for (size_t i = 0; i < 150; i++) CHECK(y[i] == 3.0f);
    /* an output buffer smaller than the real output is an error, not a truncation */
    CHECK_OK(aclUpdateDataBuffer(r.bout[0], r.dev_out[0], 100 * 4));
    CHECK_FAIL_MSG(aclmdlExecute(r.id, r.in, r.out), ACL_ERROR_GE_FAILURE, "the model needs 600");
    CHECK_OK(aclUpdateDataBuffer(r.bout[0], r.dev_out[0], 145 * 4));   /* within the static models' 64-byte slack */
    CHECK_FAIL_MSG(aclmdlExecute(r.id, r.in, r.out), ACL_ERROR_GE_FAILURE, "its real shape needs 600");
    CHECK_OK(aclUpdateDataBuffer(r.bout[0], r.dev_out[0], 8 * 128 * 4));
    rig_close(&r);
    teardown();
}

TEST_ENV(shape_time_follows_elements, "FASTEXEC_EMU_FAST=0")
{
    setup();
    rig r;
    rig_open(&r, "dynamic-shape");
    int64_t small[2] = {1, 1}, large[2] = {8, 128};
    double best_small = 1e9, best_large = 1e9;
    for (int round = 0; round < 5; round++) {
        aclTensorDesc *t = aclCreateTensorDesc(ACL_FLOAT, 2, small, ACL_FORMAT_ND);
        CHECK_OK(aclmdlSetDatasetTensorDesc(r.in, t, 0));
        aclDestroyTensorDesc(t);
        double ms = timed_execute(&r);
        if (ms < best_small) best_small = ms;
        t = aclCreateTensorDesc(ACL_FLOAT, 2, large, ACL_FORMAT_ND);
        CHECK_OK(aclmdlSetDatasetTensorDesc(r.in, t, 0));
        aclDestroyTensorDesc(t);
        ms = timed_execute(&r);
        if (ms < best_large) best_large = ms;
    }
    /* modelled: 30.05 us and 81.2 us; the larger shape takes at least 0.07 ms */
    CHECK(best_large >= 0.079);
    CHECK(best_small < best_large);
    rig_close(&r);
    teardown();
}

TEST(checked_gear_change_while_running)
{
    setup();
    rig r;
    rig_open(&r, "dynamic-hw");
    aclrtStream s;
    CHECK_OK(aclrtCreateStream(&s));
    CHECK_OK(aclmdlSetDynamicHWSize(r.id, r.in, 1, 16, 16));
    CHECK_OK(fxemuStallStream(s, 200));
    CHECK_OK(aclmdlExecuteAsync(r.id, r.in, r.out, s));
    /* the same gear while it runs is no change */
    CHECK_OK(aclmdlSetDynamicHWSize(r.id, r.in, 1, 16, 16));
    CHECK_FAIL_MSG(aclmdlSetDynamicHWSize(r.id, r.in, 1, 32, 32), FXEMU_ERR_BATCH_WHILE_RUNNING, "in flight");
    CHECK_OK(aclrtSynchronizeStream(s));
    CHECK_OK(aclmdlSetDynamicHWSize(r.id, r.in, 1, 32, 32));
    CHECK_OK(aclrtDestroyStream(s));
    rig_close(&r);
    expect_findings(1);
    teardown();
}
