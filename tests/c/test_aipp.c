/* AIPP through the ACL API: what the runtime shows of static and dynamic AIPP inputs, the
 * dynamic-AIPP parameter calls with their documented validation and codes, and executions.
 * The pixel arithmetic itself is checked against the numpy reference in tests/test_model_file.py
 * and, through the executor, in tests/test_aipp.py. */
#include "emu_test.h"

static const uint64_t BATCH = 2;

static fxemuCounters counters(void)
{
    fxemuCounters c;
    CHECK_OK(fxemuGetCounters(&c));
    return c;
}

/* binary16 of an integer |v| < 2048 (exact). */
static uint16_t half_of_int(int v)
{
    if (v == 0) return 0;
    uint16_t sign = v < 0 ? 0x8000u : 0;
    unsigned a = (unsigned)(v < 0 ? -v : v);
    int e = 31 - __builtin_clz(a);
    return (uint16_t)(sign | (unsigned)((e + 15) << 10) | ((a << (10 - e)) & 0x3ffu));
}   /* both AIPP samples: 2 x float16 NCHW 3 x 24 x 32 to the kernel */

static uint32_t load(const char *name, aclmdlDesc **desc)
{
    uint32_t id;
    CHECK_OK(aclmdlLoadFromFile(sample(name), &id));
    *desc = aclmdlCreateDesc();
    CHECK(*desc != NULL);
    CHECK_OK(aclmdlGetDesc(*desc, id));
    return id;
}

static void unload(uint32_t id, aclmdlDesc *desc)
{
    CHECK_OK(aclmdlDestroyDesc(desc));
    CHECK_OK(aclmdlUnload(id));
}

static void check_dims(const aclmdlIODims *d, size_t n, const int64_t *want)
{
    CHECK_EQ_U64(d->dimCount, n);
    for (size_t i = 0; i < n; i++) CHECK_EQ_U64(d->dims[i], want[i]);
}

TEST(static_aipp_description)
{
    setup();
    aclmdlDesc *d;
    uint32_t id = load("aipp-static", &d);
    CHECK_EQ_U64(aclmdlGetNumInputs(d), 1);
    CHECK_EQ_U64(aclmdlGetInputDataType(d, 0), ACL_UINT8);
    CHECK_EQ_U64(aclmdlGetInputFormat(d, 0), ACL_FORMAT_NHWC);
    CHECK_EQ_U64(aclmdlGetInputSizeByIndex(d, 0), BATCH * 40 * 30 * 3 / 2);   /* NV12 frames */
    aclmdlIODims dims;
    CHECK_OK(aclmdlGetInputDims(d, 0, &dims));   /* n,h,w,c */
    check_dims(&dims, 4, (const int64_t[]){2, 30, 40, 3});
    CHECK_OK(aclmdlGetInputDimsV2(d, 0, &dims));   /* n,h*1.5,w,1: their product is the size */
    check_dims(&dims, 4, (const int64_t[]){2, 45, 40, 1});
    CHECK_OK(aclmdlGetOutputDims(d, 0, &dims));
    check_dims(&dims, 4, (const int64_t[]){2, 3, 24, 32});
    aclmdlInputAippType type;
    size_t attached = 0;
    CHECK_OK(aclmdlGetAippType(id, 0, &type, &attached));
    CHECK_EQ_U64(type, ACL_DATA_WITH_STATIC_AIPP);
    CHECK_EQ_U64(attached, ACL_INVALID_NODE_INDEX);
    aclAippInfo *info = calloc(1, sizeof *info);
    CHECK_OK(aclmdlGetFirstAippInfo(id, 0, info));
    CHECK_EQ_U64(info->inputFormat, ACL_YUV420SP_U8);
    CHECK(info->srcImageSizeW == 40 && info->srcImageSizeH == 30);
    CHECK(info->cropSwitch == 1 && info->loadStartPosW == 4 && info->loadStartPosH == 2 && info->cropSizeW == 32 && info->cropSizeH == 20);
    CHECK(info->paddingSwitch == 1 && info->topPaddingSize == 2 && info->bottomPaddingSize == 2 && info->leftPaddingSize == 0);
    CHECK(info->cscSwitch == 1 && info->matrixR0C2 == 359 && info->matrixR1C1 == -88 && info->matrixR2C1 == 454 && info->inputBias1 == 128);
    CHECK(info->minChn0 == 123.675f && info->varReciChn2 == 0.0174291939f && info->varReciChn3 == 1.0f);
    CHECK(info->srcFormat == ACL_FORMAT_NCHW && info->srcDatatype == ACL_FLOAT16 && info->srcDimNum == 4 && info->shapeCount == 1);
    check_dims(&info->outDims[0].srcDims, 4, (const int64_t[]){2, 30, 40, 3});
    check_dims(&info->outDims[0].aippOutdims, 4, (const int64_t[]){2, 3, 24, 32});
    CHECK_EQ_U64(info->outDims[0].srcSize, 3600);
    CHECK_EQ_U64(info->outDims[0].aippOutSize, 2 * 3 * 24 * 32 * 2);
    CHECK_CODE(aclmdlGetFirstAippInfo(id, 1, info), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlGetFirstAippInfo(id, 0, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlGetFirstAippInfo(id + 100, 0, info), ACL_ERROR_GE_EXEC_MODEL_ID_INVALID);
    unload(id, d);
    id = load("tiny", &d);   /* an input without AIPP */
    CHECK_FAIL_MSG(aclmdlGetFirstAippInfo(id, 0, info), ACL_ERROR_GE_AIPP_NOT_EXIST, "not configured with static aipp");
    CHECK_OK(aclmdlGetAippType(id, 0, &type, &attached));
    CHECK_EQ_U64(type, ACL_DATA_WITHOUT_AIPP);
    unload(id, d);
    free(info);
    teardown();
}

TEST(dynamic_aipp_description)
{
    setup();
    aclmdlDesc *d;
    uint32_t id = load("aipp-dynamic", &d);
    CHECK_EQ_U64(aclmdlGetNumInputs(d), 2);
    size_t idx = 9;
    CHECK_OK(aclmdlGetInputIndexByName(d, ACL_DYNAMIC_AIPP_NAME, &idx));
    CHECK_EQ_U64(idx, 1);
    CHECK_EQ_U64(aclmdlGetInputSizeByIndex(d, 0), 7200);
    CHECK_EQ_U64(aclmdlGetInputSizeByIndex(d, 1), 64 + 96 * BATCH);
    aclmdlIODims dims;
    CHECK_OK(aclmdlGetInputDims(d, 0, &dims));
    check_dims(&dims, 2, (const int64_t[]){2, 3600});
    aclmdlInputAippType type;
    size_t attached;
    CHECK_OK(aclmdlGetAippType(id, 0, &type, &attached));
    CHECK_EQ_U64(type, ACL_DATA_WITH_DYNAMIC_AIPP);
    CHECK_EQ_U64(attached, 1);
    CHECK_OK(aclmdlGetAippType(id, 1, &type, &attached));
    CHECK_EQ_U64(type, ACL_DYNAMIC_AIPP_NODE);
    CHECK_EQ_U64(attached, ACL_INVALID_NODE_INDEX);
    CHECK_CODE(aclmdlGetAippType(id, 2, &type, &attached), ACL_ERROR_INVALID_PARAM);
    aclAippInfo *info = calloc(1, sizeof *info);
    CHECK_CODE(aclmdlGetFirstAippInfo(id, 0, info), ACL_ERROR_GE_AIPP_NOT_EXIST);   /* dynamic: no static info */
    free(info);
    unload(id, d);
    teardown();
}

TEST(aipp_setters_validate)
{
    setup();
    CHECK(aclmdlCreateAIPP(0) == NULL);
    aclmdlAIPP *a = aclmdlCreateAIPP(BATCH);
    CHECK(a != NULL);
    CHECK_EQ_U64(counters().aipp_sets, 1);
    size_t size = 0;
    CHECK_OK(aclmdlGetAippDataSize(BATCH, &size));
    CHECK_EQ_U64(size, 256);
    CHECK_CODE(aclmdlGetAippDataSize(0, &size), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlGetAippDataSize(1, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPInputFormat(NULL, ACL_YUV420SP_U8), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPInputFormat(a, (aclAippInputFormat)0), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPInputFormat(a, (aclAippInputFormat)15), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclmdlSetAIPPInputFormat(a, ACL_RGB888_U8));
    CHECK_CODE(aclmdlSetAIPPCscParams(a, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPCscParams(a, 1, -32678, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPCscParams(a, 1, 0, 0, 0, 0, 0, 0, 0, 0, 32677, 0, 0, 0, 0, 0, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclmdlSetAIPPCscParams(a, 0, -32678, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));   /* off: ignored */
    CHECK_OK(aclmdlSetAIPPCscParams(a, 1, 256, 0, 359, 256, -88, -183, 256, 454, 0, 0, 0, 0, 0, 128, 128));
    CHECK_CODE(aclmdlSetAIPPRbuvSwapSwitch(a, -1), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPAxSwapSwitch(a, 2), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclmdlSetAIPPRbuvSwapSwitch(a, 1));
    CHECK_OK(aclmdlSetAIPPAxSwapSwitch(a, 0));
    CHECK_CODE(aclmdlSetAIPPSrcImageSize(a, 1, 10), ACL_ERROR_INVALID_PARAM);   /* width >= 2 */
    CHECK_CODE(aclmdlSetAIPPSrcImageSize(a, 10, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPSrcImageSize(a, 4097, 10), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclmdlSetAIPPSrcImageSize(a, 40, 30));
    CHECK_FAIL_MSG(aclmdlSetAIPPCropParams(a, 1, 0, 0, 8, 8, BATCH), ACL_ERROR_INVALID_PARAM, "batch_index (2) is greater than or equal to batch_number (2)");
    CHECK_CODE(aclmdlSetAIPPCropParams(a, 1, 4096, 0, 8, 8, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPCropParams(a, 1, 0, 0, 0, 8, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclmdlSetAIPPCropParams(a, 1, 4, 2, 32, 24, 1));
    CHECK_CODE(aclmdlSetAIPPPaddingParams(a, 1, 33, 0, 0, 0, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPPaddingParams(a, 1, 0, 0, -1, 0, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPPaddingParams(a, 3, 0, 0, 0, 0, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPScfParams(a, 1, 15, 16, 16, 16, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPScfParams(a, 1, 16, 16, 1921, 16, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPScfParams(a, 0, 0, 0, 0, 0, 2), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPDtcPixelMean(a, 0, 256, 0, 0, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPDtcPixelMean(a, -1, 0, 0, 0, 1), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPDtcPixelMin(a, 0, 0, 255.5f, 0, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPDtcPixelMin(a, 0, 0, 0, 0.0f / 0.0f, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPPixelVarReci(a, 65505.0f, 1, 1, 1, 0), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetAIPPPixelVarReci(a, 1, 1, 1, 1, 5), ACL_ERROR_INVALID_PARAM);
    CHECK_OK(aclmdlSetAIPPDtcPixelMean(a, 124, 117, 104, 0, 0));
    CHECK_OK(aclmdlSetAIPPDtcPixelMin(a, 0.5f, 0, 0, 0, 1));
    CHECK_OK(aclmdlSetAIPPPixelVarReci(a, -65504.0f, 65504.0f, 0.017f, 1, 1));
    CHECK_OK(aclmdlDestroyAIPP(a));
    CHECK_CODE(aclmdlDestroyAIPP(NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_EQ_U64(counters().aipp_sets, 0);
    teardown();
}

/* A dynamic-AIPP execution rig: device buffers for the image, the parameters and the output. */
typedef struct {
    uint32_t id;
    aclmdlDesc *desc;
    void *mem[3];
    aclDataBuffer *buf[3];
    aclmdlDataset *in, *out;
} rig;

static void rig_open(rig *r, size_t aipp_bytes)
{
    r->id = load("aipp-dynamic", &r->desc);
    size_t sizes[3] = {7200, aipp_bytes, aclmdlGetOutputSizeByIndex(r->desc, 0)};
    r->in = aclmdlCreateDataset();
    r->out = aclmdlCreateDataset();
    for (int i = 0; i < 3; i++) {
        CHECK_OK(aclrtMalloc(&r->mem[i], sizes[i], ACL_MEM_MALLOC_HUGE_FIRST));
        CHECK_OK(aclrtMemset(r->mem[i], sizes[i], 0, sizes[i]));
        r->buf[i] = aclCreateDataBuffer(r->mem[i], sizes[i]);
        CHECK_OK(aclmdlAddDatasetBuffer(i < 2 ? r->in : r->out, r->buf[i]));
    }
}

static void rig_close(rig *r)
{
    CHECK_OK(aclmdlDestroyDataset(r->in));
    CHECK_OK(aclmdlDestroyDataset(r->out));
    for (int i = 0; i < 3; i++) {
        CHECK_OK(aclDestroyDataBuffer(r->buf[i]));
        CHECK_OK(aclrtFree(r->mem[i]));
    }
    unload(r->id, r->desc);
}

/* A valid parameter set for aipp-dynamic: NV12 40x30 cropped to 32x24. */
static aclmdlAIPP *valid_set(uint64_t batch)
{
    aclmdlAIPP *a = aclmdlCreateAIPP(batch);
    CHECK_OK(aclmdlSetAIPPInputFormat(a, ACL_YUV420SP_U8));
    CHECK_OK(aclmdlSetAIPPSrcImageSize(a, 40, 30));
    for (uint64_t b = 0; b < batch; b++) CHECK_OK(aclmdlSetAIPPCropParams(a, 1, 4, 2, 32, 24, b));
    return a;
}

TEST(set_input_aipp_validates)
{
    setup();
    rig r;
    rig_open(&r, 256);
    aclmdlAIPP *a = valid_set(BATCH);
    CHECK_CODE(aclmdlSetInputAIPP(r.id, NULL, 1, a), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetInputAIPP(r.id, r.in, 1, NULL), ACL_ERROR_INVALID_PARAM);
    CHECK_CODE(aclmdlSetInputAIPP(r.id + 100, r.in, 1, a), ACL_ERROR_GE_EXEC_MODEL_ID_INVALID);
    CHECK_CODE(aclmdlSetInputAIPP(r.id, r.in, 2, a), ACL_ERROR_INVALID_PARAM);
    CHECK_FAIL_MSG(aclmdlSetInputAIPP(r.id, r.in, 0, a), ACL_ERROR_INVALID_PARAM, "is not dynamic aipp index[1]");
    CHECK_OK(aclmdlSetInputAIPP(r.id, r.in, 1, a));
    /* through the data input it is attached to */
    CHECK_OK(aclmdlSetAIPPByInputIndex(r.id, r.in, 0, a));
    CHECK_CODE(aclmdlSetAIPPByInputIndex(r.id, r.in, 1, a), ACL_ERROR_FAILURE);
    CHECK_CODE(aclmdlSetAIPPByInputIndex(r.id, r.in, 7, a), ACL_ERROR_INVALID_PARAM);
    /* each rule of aclmdlSetInputAIPP, one broken at a time */
    aclmdlAIPP *one = valid_set(1);
    CHECK_FAIL_MSG(aclmdlSetInputAIPP(r.id, r.in, 1, one), ACL_ERROR_INVALID_PARAM, "must be equal to aipp output shape in the model");
    CHECK_OK(aclmdlDestroyAIPP(one));
    CHECK_OK(aclmdlSetAIPPCropParams(a, 1, 4, 2, 30, 24, 1));
    CHECK_FAIL_MSG(aclmdlSetInputAIPP(r.id, r.in, 1, a), ACL_ERROR_INVALID_PARAM, "the 2 batch output size must be equal to the first");
    CHECK_OK(aclmdlSetAIPPCropParams(a, 1, 3, 2, 32, 24, 1));
    CHECK_FAIL_MSG(aclmdlSetInputAIPP(r.id, r.in, 1, a), ACL_ERROR_INVALID_PARAM, "must be even for YUV420SP_U8");
    CHECK_OK(aclmdlSetAIPPCropParams(a, 1, 10, 2, 32, 24, 1));
    CHECK_FAIL_MSG(aclmdlSetInputAIPP(r.id, r.in, 1, a), ACL_ERROR_INVALID_PARAM, "does not fit");
    CHECK_OK(aclmdlSetAIPPCropParams(a, 1, 4, 2, 32, 24, 1));
    CHECK_OK(aclmdlSetAIPPScfParams(a, 1, 32, 24, 32, 24, 1));
    CHECK_FAIL_MSG(aclmdlSetInputAIPP(r.id, r.in, 1, a), ACL_ERROR_INVALID_PARAM, "does not support scf");
    CHECK_OK(aclmdlSetAIPPScfParams(a, 0, 0, 0, 0, 0, 1));
    CHECK_OK(aclmdlSetAIPPSrcImageSize(a, 40, 31));
    CHECK_FAIL_MSG(aclmdlSetInputAIPP(r.id, r.in, 1, a), ACL_ERROR_INVALID_PARAM, "must be even for YUV420SP_U8");
    CHECK_OK(aclmdlSetAIPPSrcImageSize(a, 60, 40));   /* 2 x 3600 bytes fit, 2 x 60x40x3 do not */
    CHECK_OK(aclmdlSetAIPPInputFormat(a, ACL_RGB888_U8));
    CHECK_FAIL_MSG(aclmdlSetInputAIPP(r.id, r.in, 1, a), ACL_ERROR_INVALID_PARAM, "bigger than max_src_image_size[7200]");
    CHECK_OK(aclmdlSetAIPPSrcImageSize(a, 32, 24));   /* 2 x 32x24x4 fit */
    CHECK_OK(aclmdlSetAIPPInputFormat(a, ACL_XRGB8888_U8));
    CHECK_FAIL_MSG(aclmdlSetInputAIPP(r.id, r.in, 1, a), ACL_ERROR_INVALID_PARAM, "does not run XRGB8888_U8");
    CHECK_OK(aclmdlSetAIPPInputFormat(a, ACL_YUV422SP_U8));
    CHECK_FAIL_MSG(aclmdlSetInputAIPP(r.id, r.in, 1, a), ACL_ERROR_INVALID_PARAM, "dynamic AIPP takes YUV420SP_U8, XRGB8888_U8, RGB888_U8 or YUV400_U8");
    CHECK_OK(aclmdlSetAIPPInputFormat(a, ACL_YUV400_U8));
    CHECK_FAIL_MSG(aclmdlSetInputAIPP(r.id, r.in, 1, a), ACL_ERROR_INVALID_PARAM, "channel");
    CHECK_OK(aclmdlDestroyAIPP(a));
    aclmdlAIPP *unset = aclmdlCreateAIPP(BATCH);
    CHECK_OK(aclmdlSetAIPPSrcImageSize(unset, 32, 24));
    CHECK_FAIL_MSG(aclmdlSetInputAIPP(r.id, r.in, 1, unset), ACL_ERROR_INVALID_PARAM, "inputFormat must be set");
    CHECK_OK(aclmdlDestroyAIPP(unset));
    rig_close(&r);
    /* the parameter buffer must hold 64 + 96 x batch bytes */
    rig small;
    rig_open(&small, 255);
    a = valid_set(BATCH);
    CHECK_FAIL_MSG(aclmdlSetInputAIPP(small.id, small.in, 1, a), ACL_ERROR_GE_DYNAMIC_INPUT_LENGTH_INVALID, "[256] is larger than aipp_data size [255]");
    CHECK_OK(aclmdlDestroyAIPP(a));
    rig_close(&small);
    /* a model without dynamic AIPP */
    aclmdlDesc *d;
    uint32_t id = load("aipp-static", &d);
    aclmdlDataset *ds = aclmdlCreateDataset();
    a = valid_set(BATCH);
    CHECK_FAIL_MSG(aclmdlSetInputAIPP(id, ds, 0, a), ACL_ERROR_INVALID_PARAM, "has no dynamic AIPP input");
    CHECK_CODE(aclmdlSetAIPPByInputIndex(id, ds, 0, a), ACL_ERROR_INVALID_PARAM);   /* the dataset holds no buffer 0 */
    CHECK_OK(aclmdlDestroyAIPP(a));
    CHECK_OK(aclmdlDestroyDataset(ds));
    unload(id, d);
    teardown();
}

TEST(dynamic_aipp_executes)
{
    setup();
    rig r;
    rig_open(&r, 256);
    /* never set: the execution fails, nothing is written */
    CHECK_FAIL_MSG(aclmdlExecute(r.id, r.in, r.out), ACL_ERROR_RT_MODEL_EXECUTE, "no aclmdlSetInputAIPP");
    aclmdlAIPP *a = valid_set(BATCH);
    CHECK_OK(aclmdlSetAIPPDtcPixelMean(a, 10, 20, 30, 0, 1));
    CHECK_OK(aclmdlSetInputAIPP(r.id, r.in, 1, a));
    CHECK_OK(aclmdlDestroyAIPP(a));
    unsigned char img[7200];
    for (int i = 0; i < 7200; i++) img[i] = (unsigned char)(i * 7);
    CHECK_OK(aclrtMemcpy(r.mem[0], 7200, img, 7200, ACL_MEMCPY_HOST_TO_DEVICE));
    CHECK_OK(aclmdlExecute(r.id, r.in, r.out));
    uint16_t out[2 * 3 * 24 * 32];
    CHECK_OK(aclrtMemcpy(out, sizeof out, r.mem[2], sizeof out, ACL_MEMCPY_DEVICE_TO_HOST));
    /* csc off: channel 0 is Y; image 0 (mean 0) pixel (0,0) is Y at (2,4) of the 40-wide frame;
     * image 1 subtracts mean 10 from the Y at the same place of its own row of 3600 bytes */
    int y0 = img[2 * 40 + 4], y1 = img[3600 + 2 * 40 + 4];
    CHECK_EQ_U64(out[0], half_of_int(y0));
    CHECK_EQ_U64(out[3 * 24 * 32], half_of_int(y1 - 10));
    rig_close(&r);
    teardown();
}
