/* The ACL function table and its resolution (see acl_api.h). */
#define _GNU_SOURCE
#include "acl_api.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

fx_acl_table fx_acl;
static char missing_optional[2048];

/* Stubs for optional symbols: they report the symbol as missing instead of being called as NULL. */
static const char *stub_aclrtGetSocName(void) { return NULL; }
static aclError stub_aclrtSynchronizeStreamWithTimeout(aclrtStream s, int32_t t) { (void)s; (void)t; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclrtSynchronizeEventWithTimeout(aclrtEvent e, int32_t t) { (void)e; (void)t; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclrtCreateStreamWithConfig(aclrtStream *s, uint32_t p, uint32_t f) { (void)s; (void)p; (void)f; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclrtMallocAlign32(void **p, size_t n, aclrtMemMallocPolicy m) { (void)p; (void)n; (void)m; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclrtHostRegister(void *p, uint64_t n, aclrtHostRegisterType t, void **d) { (void)p; (void)n; (void)t; (void)d; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclrtHostUnregister(void *p) { (void)p; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclrtLaunchHostFunc(aclrtStream s, aclrtHostFunc f, void *a) { (void)s; (void)f; (void)a; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlQuerySize(const char *f, size_t *w, size_t *g) { (void)f; (void)w; (void)g; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlExecuteV2(uint32_t m, const aclmdlDataset *i, aclmdlDataset *o, aclrtStream s, const aclmdlExecConfigHandle *h)
{
    (void)m; (void)i; (void)o; (void)s; (void)h;
    return FX_ACL_SYMBOL_MISSING;
}
static aclError stub_aclmdlExecuteAsyncV2(uint32_t m, const aclmdlDataset *i, aclmdlDataset *o, aclrtStream s, const aclmdlExecConfigHandle *h)
{
    (void)m; (void)i; (void)o; (void)s; (void)h;
    return FX_ACL_SYMBOL_MISSING;
}
static aclmdlExecConfigHandle *stub_aclmdlCreateExecConfigHandle(void) { return NULL; }
static aclError stub_aclmdlSetExecConfigOpt(aclmdlExecConfigHandle *h, aclmdlExecConfigAttr a, const void *v, size_t n)
{
    (void)h; (void)a; (void)v; (void)n;
    return FX_ACL_SYMBOL_MISSING;
}
static aclError stub_aclmdlDestroyExecConfigHandle(const aclmdlExecConfigHandle *h) { (void)h; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclrtEventGetTimestamp(aclrtEvent e, uint64_t *t) { (void)e; (void)t; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlInitDump(void) { return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlSetDump(const char *p) { (void)p; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlFinalizeDump(void) { return FX_ACL_SYMBOL_MISSING; }

/* AIPP (absent from runtimes built without the model API's AIPP part). */
static aclError stub_aclmdlGetInputDimsV2(const aclmdlDesc *d, size_t i, aclmdlIODims *o) { (void)d; (void)i; (void)o; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlGetAippType(uint32_t m, size_t i, aclmdlInputAippType *t, size_t *a) { (void)m; (void)i; (void)t; (void)a; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlGetFirstAippInfo(uint32_t m, size_t i, aclAippInfo *o) { (void)m; (void)i; (void)o; return FX_ACL_SYMBOL_MISSING; }
static aclmdlAIPP *stub_aclmdlCreateAIPP(uint64_t b) { (void)b; return NULL; }
static aclError stub_aclmdlDestroyAIPP(const aclmdlAIPP *a) { (void)a; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlGetAippDataSize(uint64_t b, size_t *n) { (void)b; (void)n; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlSetAIPPInputFormat(aclmdlAIPP *a, aclAippInputFormat f) { (void)a; (void)f; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlSetAIPPCscParams(aclmdlAIPP *a, int8_t s, int16_t m0, int16_t m1, int16_t m2, int16_t m3, int16_t m4, int16_t m5,
                                            int16_t m6, int16_t m7, int16_t m8, uint8_t o0, uint8_t o1, uint8_t o2, uint8_t i0, uint8_t i1, uint8_t i2)
{
    (void)a; (void)s; (void)m0; (void)m1; (void)m2; (void)m3; (void)m4; (void)m5; (void)m6; (void)m7; (void)m8;
    (void)o0; (void)o1; (void)o2; (void)i0; (void)i1; (void)i2;
    return FX_ACL_SYMBOL_MISSING;
}
static aclError stub_aclmdlSetAIPPRbuvSwapSwitch(aclmdlAIPP *a, int8_t s) { (void)a; (void)s; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlSetAIPPAxSwapSwitch(aclmdlAIPP *a, int8_t s) { (void)a; (void)s; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlSetAIPPSrcImageSize(aclmdlAIPP *a, int32_t w, int32_t h) { (void)a; (void)w; (void)h; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlSetAIPPCropParams(aclmdlAIPP *a, int8_t s, int32_t x, int32_t y, int32_t w, int32_t h, uint64_t b)
{
    (void)a; (void)s; (void)x; (void)y; (void)w; (void)h; (void)b;
    return FX_ACL_SYMBOL_MISSING;
}
static aclError stub_aclmdlSetAIPPPaddingParams(aclmdlAIPP *a, int8_t s, int32_t t, int32_t bo, int32_t l, int32_t r, uint64_t b)
{
    (void)a; (void)s; (void)t; (void)bo; (void)l; (void)r; (void)b;
    return FX_ACL_SYMBOL_MISSING;
}
static aclError stub_aclmdlSetAIPPDtcPixelMean(aclmdlAIPP *a, int16_t c0, int16_t c1, int16_t c2, int16_t c3, uint64_t b)
{
    (void)a; (void)c0; (void)c1; (void)c2; (void)c3; (void)b;
    return FX_ACL_SYMBOL_MISSING;
}
static aclError stub_aclmdlSetAIPPDtcPixelMin(aclmdlAIPP *a, float c0, float c1, float c2, float c3, uint64_t b)
{
    (void)a; (void)c0; (void)c1; (void)c2; (void)c3; (void)b;
    return FX_ACL_SYMBOL_MISSING;
}
static aclError stub_aclmdlSetAIPPPixelVarReci(aclmdlAIPP *a, float c0, float c1, float c2, float c3, uint64_t b)
{
    (void)a; (void)c0; (void)c1; (void)c2; (void)c3; (void)b;
    return FX_ACL_SYMBOL_MISSING;
}
static aclError stub_aclmdlSetInputAIPP(uint32_t m, aclmdlDataset *d, size_t i, const aclmdlAIPP *a) { (void)m; (void)d; (void)i; (void)a; return FX_ACL_SYMBOL_MISSING; }

/* Dynamic HW / dims / shape models need these; a static or dynamic-batch model does not. */
static aclError stub_aclmdlGetDynamicHW(const aclmdlDesc *d, size_t i, aclmdlHW *hw) { (void)d; (void)i; (void)hw; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlSetDynamicHWSize(uint32_t m, aclmdlDataset *ds, size_t i, uint64_t h, uint64_t w)
{
    (void)m; (void)ds; (void)i; (void)h; (void)w;
    return FX_ACL_SYMBOL_MISSING;
}
static aclError stub_aclmdlGetInputDynamicGearCount(const aclmdlDesc *d, size_t i, size_t *n) { (void)d; (void)i; (void)n; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlGetInputDynamicDims(const aclmdlDesc *d, size_t i, aclmdlIODims *dims, size_t n)
{
    (void)d; (void)i; (void)dims; (void)n;
    return FX_ACL_SYMBOL_MISSING;
}
static aclError stub_aclmdlSetInputDynamicDims(uint32_t m, aclmdlDataset *ds, size_t i, const aclmdlIODims *dims)
{
    (void)m; (void)ds; (void)i; (void)dims;
    return FX_ACL_SYMBOL_MISSING;
}
static aclError stub_aclmdlGetInputDimsRange(const aclmdlDesc *d, size_t i, aclmdlIODimsRange *r) { (void)d; (void)i; (void)r; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlGetCurOutputDims(const aclmdlDesc *d, size_t i, aclmdlIODims *dims) { (void)d; (void)i; (void)dims; return FX_ACL_SYMBOL_MISSING; }
static aclError stub_aclmdlSetDatasetTensorDesc(aclmdlDataset *ds, aclTensorDesc *t, size_t i) { (void)ds; (void)t; (void)i; return FX_ACL_SYMBOL_MISSING; }
static aclTensorDesc *stub_aclmdlGetDatasetTensorDesc(const aclmdlDataset *ds, size_t i) { (void)ds; (void)i; return NULL; }
static aclTensorDesc *stub_aclCreateTensorDesc(aclDataType t, int n, const int64_t *dims, aclFormat f)
{
    (void)t; (void)n; (void)dims; (void)f;
    return NULL;
}
static void stub_aclDestroyTensorDesc(const aclTensorDesc *d) { (void)d; }
static size_t stub_aclGetTensorDescNumDims(const aclTensorDesc *d) { (void)d; return 0; }
static aclError stub_aclGetTensorDescDimV2(const aclTensorDesc *d, size_t i, int64_t *v) { (void)d; (void)i; (void)v; return FX_ACL_SYMBOL_MISSING; }

static void *find(void *const *handles, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        void *p = dlsym(handles[i], name);
        if (p) return p;
    }
    return NULL;
}

static void append(char *buf, size_t len, const char *name)
{
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s%s", used ? " " : "", name);
}

int fx_acl_resolve(void *const *handles, int n_handles, char *missing, size_t missing_len)
{
    int n_missing = 0;
    missing[0] = 0;
    missing_optional[0] = 0;
#define FX_REQUIRED(name)                                                     \
    fx_acl.name = (__typeof__(fx_acl.name))find(handles, n_handles, #name);   \
    if (!fx_acl.name) {                                                       \
        append(missing, missing_len, #name);                                  \
        n_missing++;                                                          \
    }
#define FX_OPTIONAL(name)                                                     \
    fx_acl.name = (__typeof__(fx_acl.name))find(handles, n_handles, #name);   \
    if (!fx_acl.name) {                                                       \
        fx_acl.name = stub_##name;                                            \
        append(missing_optional, sizeof missing_optional, #name);             \
    }
    FX_ACL_REQUIRED(FX_REQUIRED)
    FX_ACL_OPTIONAL(FX_OPTIONAL)
#undef FX_REQUIRED
#undef FX_OPTIONAL
    return n_missing;
}

const char *fx_acl_missing_optional(void) { return missing_optional; }

int fx_acl_is_missing(const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(missing_optional, name); p; p = strstr(p + 1, name))
        if ((p == missing_optional || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return 1;
    return 0;
}

const char *fx_acl_library_path(void)
{
    Dl_info info;
    if (fx_acl.aclInit && dladdr((void *)fx_acl.aclInit, &info) && info.dli_fname) return info.dli_fname;
    return "";
}
