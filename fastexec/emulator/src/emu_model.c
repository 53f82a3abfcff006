/* Models: loading, descriptions, datasets, execution (sync, async, V2), exec configs,
 * dynamic batch. */
#include "emu.h"

#include <errno.h>
#include <stdlib.h>

struct emu_model {
    uint32_t id;
    emu_model_def def;
    emu_device *dev;
    int has_dyn;                 /* dynamic-batch tensor appended as input def.num_inputs */
    int aipp_node;               /* index of the ACL_DYNAMIC_AIPP_NAME input, or -1 */
    int exec_mode;               /* 0 none yet, 1 synchronous, 2 stream-ordered; guarded by model_mu */
    int inflight;                /* queued or running executions */
    emu_stream *inflight_stream; /* stream of the queued executions */
    int unloading;
    uint64_t cur_batch;          /* last aclmdlSetDynamicBatchSize gear; 0 = none set */
    int cur_gear;                /* dynamic HW / dims: last gear set (index + 1); 0 = none set */
    uint32_t priority;           /* aclmdlSetAttribute(ACL_MDL_ATTR_PRIORITY_INT32) */
    emu_alloc *user_mem[2];      /* aclmdlLoad*WithMem work / weight memory, held until unload */
    char *dump_dir;              /* dumped (emu_dump.c): {dump_path}/{time}/{device}/{name}/{id}, else NULL */
    int dump_mode;
    atomic_uint_fast64_t dump_index;   /* executions dumped so far */
};

/* The file name (no folder, no suffix) of the model file being loaded on this thread, for
 * dump_list's model_name; "" for a load from memory. */
static _Thread_local char tl_load_stem[256];

static pthread_mutex_t model_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t model_cv = PTHREAD_COND_INITIALIZER;   /* an execution finished */
static emu_model **models;   /* index id-1; ids are never reused */
static uint32_t n_models;

/* Look a model up and keep model_mu held on success. */
static aclError lock_model(uint32_t id, emu_model **out, const char *api)
{
    pthread_mutex_lock(&model_mu);
    emu_model *m = id >= 1 && id <= n_models ? models[id - 1] : NULL;
    if (!m || m->unloading) {
        pthread_mutex_unlock(&model_mu);
        return emu_fail(ACL_ERROR_GE_EXEC_MODEL_ID_INVALID, "%s: model id %u is not loaded", api, id);
    }
    *out = m;
    return ACL_SUCCESS;
}

/* ================================================================ load / unload */

static aclError read_file(const char *path, char **text, size_t *len, const char *api)
{
    const char *base = strrchr(path, '/');
    snprintf(tl_load_stem, sizeof tl_load_stem, "%s", base ? base + 1 : path);
    char *dot = strrchr(tl_load_stem, '.');
    if (dot && dot != tl_load_stem) *dot = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return emu_fail(ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID, "%s: cannot open model file '%s': %s", api, path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            if (cap >= ((size_t)64 << 20)) {
                free(buf);
                fclose(f);
                return emu_fail(ACL_ERROR_PARSE_MODEL, "%s: '%s' is larger than 64 MiB; not an emulator model file", api, path);
            }
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return emu_fail(ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID, "%s: cannot read model file '%s'", api, path);
    }
    *text = buf;
    *len = n;
    return ACL_SUCCESS;
}

static aclError parse(const char *text, size_t len, emu_model_def *def, const char *api, const char *origin)
{
    char err[512];
    aclError rc = emu_model_parse(text, len, def, err, sizeof err);
    if (rc) return emu_fail(rc, "%s: %s: %s", api, origin, err);
    return ACL_SUCCESS;
}

typedef struct {
    void *work, *weight;
    size_t work_size, weight_size;
} user_mem;

/* The user's work / weight memory for a model: NULL means the runtime's own; otherwise device
 * memory of at least the size aclmdlQuerySize reports, held until the model is unloaded. */
static aclError check_user_mem(const emu_model_def *def, const user_mem *um, emu_alloc **held, const char *api)
{
    const char *what[2] = {"work", "weight"};
    void *ptr[2] = {um->work, um->weight};
    size_t size[2] = {um->work_size, um->weight_size}, need[2] = {def->workspace_bytes, def->weight_bytes};
    for (int i = 0; i < 2; i++) {
        held[i] = NULL;
        if (!ptr[i]) continue;
        if (size[i] < need[i])
            return emu_fail(ACL_ERROR_GE_PARAM_INVALID, "%s: %sSize %zu is smaller than the model needs (%zu, from aclmdlQuerySize)", api, what[i], size[i], need[i]);
        emu_alloc *a;
        aclError rc = emu_mem_find(ptr[i], size[i] ? size[i] : 1, &a, api, what[i]);
        if (rc) return rc;
        if (!a || a->kind != EMU_MEM_DEVICE)
            return emu_fail(ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID, "%s: %sPtr %p is %s; it must be device memory (aclrtMalloc)", api, what[i], ptr[i],
                            emu_mem_kind_name(a ? a->kind : EMU_MEM_PAGEABLE));
        held[i] = a;
    }
    return ACL_SUCCESS;
}

static aclError load_def_mem(const emu_model_def *def, uint32_t *modelId, const user_mem *um, const char *api);

/* Gear models (dynamic batch, HW, dims) get the hidden ascend_mbatch_shape_data input. */
static int has_gear_tensor(const emu_model_def *def)
{
    return def->dyn_kind == EMU_DYN_BATCH || def->dyn_kind == EMU_DYN_HW || def->dyn_kind == EMU_DYN_DIMS;
}

static aclError load_def(const emu_model_def *def, uint32_t *modelId, const char *api)
{
    user_mem none = {0};
    return load_def_mem(def, modelId, &none, api);
}

static aclError load_def_mem(const emu_model_def *def, uint32_t *modelId, const user_mem *um, const char *api)
{
    emu_context *ctx;
    aclError ctx_rc = emu_require_context(&ctx, api);
    if (ctx_rc) return ctx_rc;
    emu_alloc *held[2];
    aclError mem_rc = check_user_mem(def, um, held, api);
    if (mem_rc) return mem_rc;
    emu_model *m = calloc(1, sizeof *m);
    for (int i = 0; i < 2; i++) {
        m->user_mem[i] = held[i];
        emu_mem_hold(held[i]);
    }
    m->def = *def;
    m->dev = ctx->dev;
    m->has_dyn = has_gear_tensor(def);
    m->aipp_node = emu_aipp_dynamic_input(def) >= 0 ? (int)(def->num_inputs + (m->has_dyn ? 1 : 0)) : -1;
    pthread_mutex_lock(&model_mu);
    models = realloc(models, (n_models + 1) * sizeof *models);
    models[n_models++] = m;
    m->id = n_models;
    pthread_mutex_unlock(&model_mu);
    m->dump_dir = emu_dump_dir_for(def->name, tl_load_stem[0] ? tl_load_stem : NULL, ctx->dev->id, m->id, &m->dump_mode);
    tl_load_stem[0] = 0;
    atomic_fetch_add(&emu_live.models, 1);
    *modelId = m->id;
    return ACL_SUCCESS;
}

static aclError require_init(const char *api)
{
    if (!emu_initialized) return emu_fail(ACL_ERROR_GE_EXEC_NOT_INIT, "%s: aclInit has not been called", api);
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlLoadFromFile(const char *modelPath, uint32_t *modelId)
{
    EMU_ENTER("aclmdlLoadFromFile");
    if (!modelPath || !modelId) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlLoadFromFile: modelPath and modelId must not be NULL");
    aclError rc = require_init("aclmdlLoadFromFile");
    if (rc) return rc;
    char *text;
    size_t len;
    rc = read_file(modelPath, &text, &len, "aclmdlLoadFromFile");
    if (rc) return rc;
    emu_model_def *def = malloc(sizeof *def);
    rc = parse(text, len, def, "aclmdlLoadFromFile", modelPath);
    free(text);
    if (!rc) rc = load_def(def, modelId, "aclmdlLoadFromFile");
    free(def);
    return rc;
}

EMU_API aclError aclmdlLoadFromMem(const void *model, size_t modelSize, uint32_t *modelId)
{
    EMU_ENTER("aclmdlLoadFromMem");
    if (!model || !modelId || modelSize == 0)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlLoadFromMem: model, modelSize and modelId must be set");
    aclError rc = require_init("aclmdlLoadFromMem");
    if (rc) return rc;
    emu_model_def *def = malloc(sizeof *def);
    rc = parse(model, modelSize, def, "aclmdlLoadFromMem", "model data");
    if (!rc) rc = load_def(def, modelId, "aclmdlLoadFromMem");
    free(def);
    return rc;
}

EMU_API aclError aclmdlQuerySize(const char *fileName, size_t *workSize, size_t *weightSize)
{
    EMU_ENTER("aclmdlQuerySize");
    if (!fileName || !workSize || !weightSize) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlQuerySize: arguments must not be NULL");
    char *text;
    size_t len;
    aclError rc = read_file(fileName, &text, &len, "aclmdlQuerySize");
    if (rc) return rc;
    emu_model_def *def = malloc(sizeof *def);
    rc = parse(text, len, def, "aclmdlQuerySize", fileName);
    if (!rc) {
        *workSize = def->workspace_bytes;
        *weightSize = def->weight_bytes;
    }
    free(def);
    free(text);
    return rc;
}

EMU_API aclError aclmdlUnload(uint32_t modelId)
{
    EMU_ENTER("aclmdlUnload");
    emu_model *m;
    aclError rc = lock_model(modelId, &m, "aclmdlUnload");
    if (rc) return rc;
    m->unloading = 1;   /* new executions fail from now on */
    while (m->inflight) pthread_cond_wait(&model_cv, &model_mu);
    models[modelId - 1] = NULL;
    pthread_mutex_unlock(&model_mu);
    emu_mem_release(m->user_mem[0]);
    emu_mem_release(m->user_mem[1]);
    free(m->dump_dir);
    free(m);
    atomic_fetch_sub(&emu_live.models, 1);
    return ACL_SUCCESS;
}

/* ================================================================ descriptions */

/* An input or output as the ACL API sees it (the dynamic-batch tensor included). */
typedef struct {
    char name[ACL_MAX_TENSOR_NAME_LEN];
    aclDataType dtype;
    aclFormat format;
    size_t ndims;
    int64_t dims[ACL_MAX_DIM_CNT];
    size_t bytes;   /* at the largest batch / gear / range bound */
    int64_t range[ACL_MAX_DIM_CNT][2];   /* per dim over the model's profile */
    aclmdlInputAippType aipp;   /* inputs: how AIPP applies to it */
    size_t attached;            /* ACL_DATA_WITH_DYNAMIC_AIPP: index of its ACL_DYNAMIC_AIPP_NODE input */
    size_t ndims_v2;            /* aclmdlGetInputDimsV2 (the raw-image layout of a static AIPP input) */
    int64_t dims_v2[4];
} io_info;

struct aclmdlDesc {
    int filled;
    uint32_t model_id;           /* 0 for a description read from a file */
    uint64_t max_batch;
    size_t n_in, n_out;
    io_info in[EMU_MAX_IO + 1], out[EMU_MAX_IO];
    size_t num_gears;                 /* dynamic-batch gears (aclmdlGetDynamicBatch) */
    uint64_t gears[ACL_MAX_BATCH_NUM];
    /* Dynamic height/width and dynamic-dims (ND) gears. No model of the current format has
     * any (0 / NULL); models that do fill these, and the queries below already read them. */
    size_t num_hw;
    uint64_t hw[ACL_MAX_HW_NUM][2];
    size_t num_dims_gears;
    aclmdlIODims *dims_gears;         /* num_dims_gears entries, owned by the description */
    emu_dyn_kind dyn_kind;
};

static void fill_io(io_info *io, const emu_model_def *def, int output, size_t k)
{
    const emu_tensor_def *t = output ? &def->outputs[k] : &def->inputs[k];
    snprintf(io->name, sizeof io->name, "%s", t->name);
    io->dtype = t->dtype;
    io->format = t->format;
    io->ndims = t->ndims;
    memcpy(io->dims, t->dims, t->ndims * sizeof t->dims[0]);
    io->attached = ACL_INVALID_NODE_INDEX;
    /* The size at the largest gear; for a dynamic shape at the ranges' upper bounds. */
    size_t n = emu_model_profile_count(def);
    io->bytes = n ? 0 : emu_tensor_bytes(t, emu_model_max_batch(def));
    for (size_t e = 0; e < n; e++) {
        emu_dyn_values v;
        emu_model_profile_values(def, e, &v);
        size_t b = emu_shape_bytes(def, &v, output, k);
        if (b > io->bytes) io->bytes = b;
    }
    /* Each dim's range over the profile ((d, d) for a fixed dim). */
    for (size_t j = 0; j < t->ndims; j++) io->range[j][0] = io->range[j][1] = t->dims[j];
    for (size_t e = 0; e < n; e++) {
        emu_dyn_values v;
        int64_t dims[ACL_MAX_DIM_CNT];
        emu_model_profile_values(def, e, &v);
        emu_shape_dims(def, &v, output, k, dims);
        for (size_t j = 0; j < t->ndims; j++) {
            if (t->dims[j] != -1) continue;
            if (e == 0 || dims[j] < io->range[j][0]) io->range[j][0] = dims[j];
            if (e == 0 || dims[j] > io->range[j][1]) io->range[j][1] = dims[j];
        }
    }
}

/* Input k as the runtime shows it: an AIPP input is its raw image (model_file.h; the models
 * with AIPP are static). */
static void fill_input(io_info *io, const emu_model_def *def, size_t k, size_t aipp_node)
{
    fill_io(io, def, 0, k);
    switch (def->aipp[k].mode) {
    case EMU_AIPP_STATIC: io->aipp = ACL_DATA_WITH_STATIC_AIPP; break;
    case EMU_AIPP_DYNAMIC: io->aipp = ACL_DATA_WITH_DYNAMIC_AIPP; io->attached = aipp_node; break;
    default: io->aipp = ACL_DATA_WITHOUT_AIPP; return;
    }
    emu_tensor_def v1, v2;
    emu_input_visible(def, k, 1, &v1);
    emu_input_visible(def, k, 0, &v2);
    io->dtype = v1.dtype;
    io->format = v1.format;
    io->ndims = v1.ndims;
    memcpy(io->dims, v1.dims, v1.ndims * sizeof v1.dims[0]);
    for (size_t j = 0; j < v1.ndims; j++) io->range[j][0] = io->range[j][1] = v1.dims[j];
    io->bytes = emu_tensor_bytes(&v2, emu_model_max_batch(def));
    io->ndims_v2 = v2.ndims;
    memcpy(io->dims_v2, v2.dims, v2.ndims * sizeof v2.dims[0]);
}

EMU_API aclmdlDesc *aclmdlCreateDesc(void)
{
    return emu_handle_new(sizeof(aclmdlDesc), EMU_H_DESC, "aclmdlCreateDesc");
}

EMU_API aclError aclmdlDestroyDesc(aclmdlDesc *modelDesc)
{
    EMU_ENTER("aclmdlDestroyDesc");
    aclError rc = emu_handle_destroy(modelDesc, EMU_H_DESC, "aclmdlDestroyDesc");
    if (!rc) {
        free(modelDesc->dims_gears);
        free(modelDesc);
    }
    return rc;
}

static void fill_desc(aclmdlDesc *d, const emu_model_def *def, int has_dyn);

/* Gear g of a gear model as one aclmdlIODims: the dims of every data input, concatenated. */
static void gear_dims(const emu_model_def *def, size_t g, aclmdlIODims *out)
{
    emu_dyn_values v;
    memset(out, 0, sizeof *out);
    emu_model_profile_values(def, g, &v);
    for (size_t k = 0; k < def->num_inputs; k++) {
        int64_t dims[ACL_MAX_DIM_CNT];
        emu_shape_dims(def, &v, 0, k, dims);
        for (size_t j = 0; j < def->inputs[k].ndims && out->dimCount < ACL_MAX_DIM_CNT; j++) out->dims[out->dimCount++] = dims[j];
    }
}

/* The gears of a gear model for messages: "a:1,16 b:1,4; a:2,32 b:2,4". */
static void gears_text(const emu_model_def *def, char *buf, size_t len)
{
    buf[0] = '\0';
    size_t n = emu_model_profile_count(def);
    for (size_t g = 0; g < n; g++) {
        emu_dyn_values v;
        emu_model_profile_values(def, g, &v);
        int first = 1;
        for (size_t k = 0; k < def->num_inputs; k++) {
            int dyn = 0;
            for (size_t j = 0; j < def->inputs[k].ndims; j++) dyn |= def->inputs[k].dims[j] == -1;
            if (!dyn) continue;
            int64_t dims[ACL_MAX_DIM_CNT];
            emu_shape_dims(def, &v, 0, k, dims);
            size_t o = strlen(buf);
            snprintf(buf + o, len - o, "%s%s:", first ? (g ? "; " : "") : " ", def->inputs[k].name);
            first = 0;
            for (size_t j = 0; j < def->inputs[k].ndims; j++) {
                o = strlen(buf);
                snprintf(buf + o, len - o, "%s%lld", j ? "," : "", (long long)dims[j]);
            }
        }
    }
}

EMU_API aclError aclmdlGetDesc(aclmdlDesc *modelDesc, uint32_t modelId)
{
    EMU_ENTER("aclmdlGetDesc");
    aclError rc = emu_check_handle(modelDesc, EMU_H_DESC, "aclmdlGetDesc");
    if (rc) return rc;
    emu_model *m;
    rc = lock_model(modelId, &m, "aclmdlGetDesc");
    if (rc) return rc;
    const emu_model_def *def = &m->def;
    aclmdlDesc *d = modelDesc;
    fill_desc(d, def, m->has_dyn);
    d->model_id = modelId;
    pthread_mutex_unlock(&model_mu);
    return ACL_SUCCESS;
}

static void fill_desc(aclmdlDesc *d, const emu_model_def *def, int has_dyn)
{
    uint64_t maxb = emu_model_max_batch(def);
    free(d->dims_gears);
    memset(d, 0, sizeof *d);
    d->filled = 1;
    d->max_batch = maxb;
    int aipp_input = emu_aipp_dynamic_input(def);
    size_t aipp_node = def->num_inputs + (has_dyn ? 1 : 0);
    d->n_in = aipp_node + (aipp_input >= 0 ? 1 : 0);
    d->n_out = def->num_outputs;
    for (size_t i = 0; i < def->num_inputs; i++) fill_input(&d->in[i], def, i, aipp_node);
    if (aipp_input >= 0) {   /* the dynamic AIPP parameters: 64 + 96 x batch bytes */
        io_info *io = &d->in[aipp_node];
        snprintf(io->name, sizeof io->name, "%s", ACL_DYNAMIC_AIPP_NAME);
        io->dtype = ACL_UINT8;
        io->format = ACL_FORMAT_ND;
        io->ndims = 1;
        io->bytes = emu_aipp_data_size(maxb);
        io->dims[0] = (int64_t)io->bytes;
        io->aipp = ACL_DYNAMIC_AIPP_NODE;
        io->attached = ACL_INVALID_NODE_INDEX;
    }
    for (size_t i = 0; i < def->num_outputs; i++) fill_io(&d->out[i], def, 1, i);
    if (has_dyn) {
        io_info *io = &d->in[def->num_inputs];
        snprintf(io->name, sizeof io->name, "%s", ACL_DYNAMIC_TENSOR_NAME);
        io->dtype = ACL_INT64;
        io->format = ACL_FORMAT_ND;
        io->ndims = 1;
        /* One int64 per gear value: the batch; height and width; every dynamic dim. */
        size_t nv = def->dyn_kind == EMU_DYN_HW ? 2 : def->dyn_kind == EMU_DYN_DIMS ? def->num_dyn : 1;
        io->dims[0] = (int64_t)nv;
        io->bytes = 8 * nv;
        io->range[0][0] = io->range[0][1] = (int64_t)nv;
        io->attached = ACL_INVALID_NODE_INDEX;
    }
    d->num_gears = def->num_gears;
    memcpy(d->gears, def->gears, def->num_gears * sizeof def->gears[0]);
    d->dyn_kind = def->dyn_kind;
    d->num_hw = def->num_hw;
    memcpy(d->hw, def->hw, def->num_hw * sizeof def->hw[0]);
    if (def->dyn_kind == EMU_DYN_DIMS) {
        /* Each gear as aclmdlGetInputDynamicDims reports it: every data input's dims, concatenated. */
        d->num_dims_gears = def->num_dims_gears;
        d->dims_gears = calloc(def->num_dims_gears, sizeof *d->dims_gears);
        for (size_t g = 0; g < def->num_dims_gears; g++) gear_dims(def, g, &d->dims_gears[g]);
    }
}

static const aclmdlDesc *live_desc(const aclmdlDesc *d, const char *api)
{
    emu_init_once();
    return d && emu_check_handle(d, EMU_H_DESC, api) == ACL_SUCCESS ? d : NULL;
}

static const io_info *desc_io(const aclmdlDesc *d, int output, size_t index, const char *api)
{
    d = live_desc(d, api);
    if (!d) return NULL;
    if (output) return index < d->n_out ? &d->out[index] : NULL;
    return index < d->n_in ? &d->in[index] : NULL;
}

EMU_API size_t aclmdlGetNumInputs(aclmdlDesc *modelDesc)
{
    const aclmdlDesc *d = live_desc(modelDesc, "aclmdlGetNumInputs");
    return d ? d->n_in : 0;
}

EMU_API size_t aclmdlGetNumOutputs(aclmdlDesc *modelDesc)
{
    const aclmdlDesc *d = live_desc(modelDesc, "aclmdlGetNumOutputs");
    return d ? d->n_out : 0;
}

EMU_API size_t aclmdlGetInputSizeByIndex(aclmdlDesc *modelDesc, size_t index)
{
    const io_info *io = desc_io(modelDesc, 0, index, "aclmdlGetInputSizeByIndex");
    return io ? io->bytes : 0;
}

EMU_API size_t aclmdlGetOutputSizeByIndex(aclmdlDesc *modelDesc, size_t index)
{
    const io_info *io = desc_io(modelDesc, 1, index, "aclmdlGetOutputSizeByIndex");
    return io ? io->bytes : 0;
}

static aclError get_dims_as(const aclmdlDesc *d, int output, size_t index, aclmdlIODims *dims, int v2, const char *api);

static aclError get_dims(const aclmdlDesc *d, int output, size_t index, aclmdlIODims *dims, const char *api)
{
    return get_dims_as(d, output, index, dims, 0, api);
}

static aclError get_dims_as(const aclmdlDesc *d, int output, size_t index, aclmdlIODims *dims, int v2, const char *api)
{
    EMU_ENTER(api);
    if (!dims) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: dims is NULL", api);
    aclError rc = emu_check_handle(d, EMU_H_DESC, api);
    if (rc) return rc;
    const io_info *io = desc_io(d, output, index, api);
    if (!io)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: index %zu is out of range (the model has %zu %s)", api, index, output ? d->n_out : d->n_in,
                        output ? "outputs" : "inputs");
    memset(dims, 0, sizeof *dims);
    snprintf(dims->name, sizeof dims->name, "%s", io->name);
    dims->dimCount = io->ndims;
    memcpy(dims->dims, io->dims, io->ndims * sizeof io->dims[0]);
    if (v2 && io->ndims_v2) {
        dims->dimCount = io->ndims_v2;
        memcpy(dims->dims, io->dims_v2, io->ndims_v2 * sizeof io->dims_v2[0]);
    }
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlGetInputDims(const aclmdlDesc *modelDesc, size_t index, aclmdlIODims *dims)
{
    return get_dims(modelDesc, 0, index, dims, "aclmdlGetInputDims");
}

EMU_API aclError aclmdlGetOutputDims(const aclmdlDesc *modelDesc, size_t index, aclmdlIODims *dims)
{
    return get_dims(modelDesc, 1, index, dims, "aclmdlGetOutputDims");
}

EMU_API const char *aclmdlGetInputNameByIndex(const aclmdlDesc *modelDesc, size_t index)
{
    const io_info *io = desc_io(modelDesc, 0, index, "aclmdlGetInputNameByIndex");
    return io ? io->name : "";
}

EMU_API const char *aclmdlGetOutputNameByIndex(const aclmdlDesc *modelDesc, size_t index)
{
    const io_info *io = desc_io(modelDesc, 1, index, "aclmdlGetOutputNameByIndex");
    return io ? io->name : "";
}

EMU_API aclDataType aclmdlGetInputDataType(const aclmdlDesc *modelDesc, size_t index)
{
    const io_info *io = desc_io(modelDesc, 0, index, "aclmdlGetInputDataType");
    return io ? io->dtype : ACL_DT_UNDEFINED;
}

EMU_API aclDataType aclmdlGetOutputDataType(const aclmdlDesc *modelDesc, size_t index)
{
    const io_info *io = desc_io(modelDesc, 1, index, "aclmdlGetOutputDataType");
    return io ? io->dtype : ACL_DT_UNDEFINED;
}

EMU_API aclFormat aclmdlGetInputFormat(const aclmdlDesc *modelDesc, size_t index)
{
    const io_info *io = desc_io(modelDesc, 0, index, "aclmdlGetInputFormat");
    return io ? io->format : ACL_FORMAT_UNDEFINED;
}

EMU_API aclFormat aclmdlGetOutputFormat(const aclmdlDesc *modelDesc, size_t index)
{
    const io_info *io = desc_io(modelDesc, 1, index, "aclmdlGetOutputFormat");
    return io ? io->format : ACL_FORMAT_UNDEFINED;
}

static aclError index_by_name(const aclmdlDesc *d, int output, const char *name, size_t *index, const char *api)
{
    EMU_ENTER(api);
    if (!name || !index) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: name and index must not be NULL", api);
    aclError rc = emu_check_handle(d, EMU_H_DESC, api);
    if (rc) return rc;
    size_t n = output ? d->n_out : d->n_in;
    for (size_t i = 0; i < n; i++) {
        if (strcmp((output ? d->out : d->in)[i].name, name) == 0) {
            *index = i;
            return ACL_SUCCESS;
        }
    }
    return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: the model has no %s named '%s'", api, output ? "output" : "input", name);
}

EMU_API aclError aclmdlGetInputIndexByName(const aclmdlDesc *modelDesc, const char *name, size_t *index)
{
    return index_by_name(modelDesc, 0, name, index, "aclmdlGetInputIndexByName");
}

EMU_API aclError aclmdlGetOutputIndexByName(const aclmdlDesc *modelDesc, const char *name, size_t *index)
{
    return index_by_name(modelDesc, 1, name, index, "aclmdlGetOutputIndexByName");
}

EMU_API aclError aclmdlGetDynamicBatch(const aclmdlDesc *modelDesc, aclmdlBatch *batch)
{
    EMU_ENTER("aclmdlGetDynamicBatch");
    if (!batch) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetDynamicBatch: batch is NULL");
    aclError rc = emu_check_handle(modelDesc, EMU_H_DESC, "aclmdlGetDynamicBatch");
    if (rc) return rc;
    memset(batch, 0, sizeof *batch);
    batch->batchCount = modelDesc->num_gears;
    memcpy(batch->batch, modelDesc->gears, modelDesc->num_gears * sizeof modelDesc->gears[0]);
    return ACL_SUCCESS;
}

/* ================================================================ datasets */

struct aclmdlDataset {
    aclDataBuffer **bufs;
    size_t n, cap;
    uint64_t dyn_batch;   /* set by aclmdlSetDynamicBatchSize; 0 = not set */
    int dyn_gear;         /* set by aclmdlSetDynamicHWSize / aclmdlSetInputDynamicDims: gear index + 1; 0 = not set */
    aclTensorDesc **descs;   /* per buffer index, owned copies (aclmdlSetDatasetTensorDesc, executions) */
    size_t n_descs;
};

EMU_API aclmdlDataset *aclmdlCreateDataset(void)
{
    return emu_handle_new(sizeof(aclmdlDataset), EMU_H_DATASET, "aclmdlCreateDataset");
}

EMU_API aclError aclmdlDestroyDataset(const aclmdlDataset *dataset)
{
    EMU_ENTER("aclmdlDestroyDataset");
    aclError rc = emu_handle_destroy(dataset, EMU_H_DATASET, "aclmdlDestroyDataset");
    if (!rc) {
        for (size_t i = 0; i < dataset->n_descs; i++)
            if (dataset->descs[i]) emu_tensor_desc_free(dataset->descs[i]);
        free(dataset->descs);
        free(dataset->bufs);
        free((void *)dataset);
    }
    return rc;
}

EMU_API aclError aclmdlAddDatasetBuffer(aclmdlDataset *dataset, aclDataBuffer *dataBuffer)
{
    EMU_ENTER("aclmdlAddDatasetBuffer");
    aclError rc = emu_check_handle(dataset, EMU_H_DATASET, "aclmdlAddDatasetBuffer");
    if (!rc) rc = emu_check_handle(dataBuffer, EMU_H_DATABUFFER, "aclmdlAddDatasetBuffer");
    if (rc) return rc;
    if (dataset->n == dataset->cap) {
        dataset->cap = dataset->cap ? dataset->cap * 2 : 4;
        dataset->bufs = realloc(dataset->bufs, dataset->cap * sizeof *dataset->bufs);
    }
    dataset->bufs[dataset->n++] = dataBuffer;
    return ACL_SUCCESS;
}

EMU_API size_t aclmdlGetDatasetNumBuffers(const aclmdlDataset *dataset)
{
    emu_init_once();
    if (!dataset || emu_check_handle(dataset, EMU_H_DATASET, "aclmdlGetDatasetNumBuffers")) return 0;
    return dataset->n;
}

EMU_API aclDataBuffer *aclmdlGetDatasetBuffer(const aclmdlDataset *dataset, size_t index)
{
    emu_init_once();
    if (!dataset || emu_check_handle(dataset, EMU_H_DATASET, "aclmdlGetDatasetBuffer")) return NULL;
    return index < dataset->n ? dataset->bufs[index] : NULL;
}

/* The dataset's own description at `index` (created when missing), set to the given shape. */
static void dataset_desc_put(aclmdlDataset *ds, size_t index, aclDataType dtype, aclFormat format, size_t ndims, const int64_t *dims)
{
    if (index >= ds->n_descs) {
        size_t n = index + 1;
        ds->descs = realloc(ds->descs, n * sizeof *ds->descs);
        memset(ds->descs + ds->n_descs, 0, (n - ds->n_descs) * sizeof *ds->descs);
        ds->n_descs = n;
    }
    if (!ds->descs[index]) ds->descs[index] = emu_tensor_desc_array(1);
    emu_tensor_desc_set(ds->descs[index], dtype, format, ndims, dims);
}

EMU_API aclError aclmdlSetDatasetTensorDesc(aclmdlDataset *dataset, aclTensorDesc *tensorDesc, size_t index)
{
    EMU_ENTER("aclmdlSetDatasetTensorDesc");
    aclError rc = emu_check_handle(dataset, EMU_H_DATASET, "aclmdlSetDatasetTensorDesc");
    if (!rc) rc = emu_check_handle(tensorDesc, EMU_H_TENSORDESC, "aclmdlSetDatasetTensorDesc");
    if (rc) return rc;
    if (index >= dataset->n)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetDatasetTensorDesc: index %zu is out of range (the dataset holds %zu buffers)", index, dataset->n);
    /* The dataset keeps its own copy; the caller still owns (and destroys) tensorDesc. */
    dataset_desc_put(dataset, index, tensorDesc->dtype, tensorDesc->format, tensorDesc->ndims, tensorDesc->dims);
    return ACL_SUCCESS;
}

EMU_API aclTensorDesc *aclmdlGetDatasetTensorDesc(const aclmdlDataset *dataset, size_t index)
{
    emu_init_once();
    if (!dataset || emu_check_handle(dataset, EMU_H_DATASET, "aclmdlGetDatasetTensorDesc")) return NULL;
    if (index >= dataset->n_descs || !dataset->descs[index]) {
        emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetDatasetTensorDesc: the dataset has no tensor description at index %zu", index);
        return NULL;
    }
    return dataset->descs[index];
}

/* ================================================================ dynamic batch */

/* The gear a gear model runs at when none was set on the dataset: the largest. */
static size_t default_gear(const emu_model_def *def)
{
    size_t n = emu_model_profile_count(def);
    return n ? n - 1 : 0;
}

/* The model's current gear (profile index) for the strict check and aclmdlGetCurOutputDims. */
static size_t current_gear(const emu_model *m)
{
    const emu_model_def *def = &m->def;
    if (def->dyn_kind == EMU_DYN_BATCH && m->cur_batch) {
        for (size_t g = 0; g < def->num_gears; g++)
            if (def->gears[g] == m->cur_batch) return g;
    }
    if ((def->dyn_kind == EMU_DYN_HW || def->dyn_kind == EMU_DYN_DIMS) && m->cur_gear) return (size_t)m->cur_gear - 1;
    return default_gear(def);
}

/* The common tail of aclmdlSetDynamicBatchSize / SetDynamicHWSize / SetInputDynamicDims, model_mu
 * held on entry (released here): gear g of model m for `dataset`. The runtime writes the gear's
 * values into the hidden tensor with a synchronous copy and records the gear both in the
 * dataset and model-globally, so changing the model's gear while it has executions in flight
 * is a race (reported in checked mode). Setting the gear the model already has is not. */
static aclError commit_gear(emu_model *m, uint32_t modelId, aclmdlDataset *dataset, size_t index, size_t g, const char *api)
{
    const emu_model_def *def = &m->def;
    if (index != def->num_inputs) {
        pthread_mutex_unlock(&model_mu);
        return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: index %zu is not the dynamic-batch input (%zu, '%s')", api, index, def->num_inputs,
                        ACL_DYNAMIC_TENSOR_NAME);
    }
    if (m->inflight && emu_profile.checked && g != current_gear(m)) {
        int n = m->inflight;
        pthread_mutex_unlock(&model_mu);
        return emu_finding(FXEMU_FINDING_BATCH_WHILE_RUNNING, FXEMU_ERR_BATCH_WHILE_RUNNING,
                           "%s: model %u has %d execution(s) in flight; the gear is model-global and not stream-ordered", api, modelId, n);
    }
    pthread_mutex_unlock(&model_mu);
    aclDataBuffer *buf = index < dataset->n ? dataset->bufs[index] : NULL;
    void *addr = buf ? aclGetDataBufferAddr(buf) : NULL;
    size_t size = buf ? aclGetDataBufferSizeV2(buf) : 0;
    if (!addr) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: the dataset has no buffer at index %zu", api, index);
    if (size < 4) return emu_fail(ACL_ERROR_GE_DYNAMIC_INPUT_LENGTH_INVALID, "%s: the buffer at index %zu holds %zu bytes (at least 4 needed)", api, index, size);
    /* The gear's values (the batch; height and width; the dims) as int64, or one uint32 in a 4-byte tensor. */
    emu_dyn_values v;
    emu_model_profile_values(def, g, &v);
    size_t nv = def->dyn_kind == EMU_DYN_BATCH ? 1 : def->dyn_kind == EMU_DYN_HW ? 2 : def->num_dyn;
    int64_t vals[EMU_MAX_DYN];
    if (def->dyn_kind == EMU_DYN_HW) {
        vals[0] = (int64_t)def->hw[g][0];
        vals[1] = (int64_t)def->hw[g][1];
    } else {
        memcpy(vals, v.v, nv * sizeof vals[0]);
    }
    uint32_t v32 = (uint32_t)vals[0];
    size_t n = size >= 8 ? (nv * 8 < size ? nv * 8 : size / 8 * 8) : 4;
    aclError rc = aclrtMemcpy(addr, size, size >= 8 ? (const void *)vals : (const void *)&v32, n, ACL_MEMCPY_HOST_TO_DEVICE);
    if (rc) return rc;
    pthread_mutex_lock(&model_mu);
    if (def->dyn_kind == EMU_DYN_BATCH) {
        dataset->dyn_batch = def->gears[g];
        if (models[modelId - 1] == m) m->cur_batch = def->gears[g];   /* the model-global gear (aclmdlGetCurOutputDims) */
    } else {
        dataset->dyn_gear = (int)g + 1;
        if (models[modelId - 1] == m) m->cur_gear = (int)g + 1;
    }
    pthread_mutex_unlock(&model_mu);
    return ACL_SUCCESS;
}

/* Look up model `modelId` for a Set call: model_mu held on success; 145013 when it has no
 * gears of `kind` (`what` names them). */
static aclError lock_gear_model(uint32_t modelId, aclmdlDataset *dataset, emu_dyn_kind kind, const char *what, emu_model **out, const char *api)
{
    aclError rc = emu_check_handle(dataset, EMU_H_DATASET, api);
    if (rc) return rc;
    rc = lock_model(modelId, out, api);
    if (rc) return rc;
    if ((*out)->def.dyn_kind != kind) {
        pthread_mutex_unlock(&model_mu);
        return emu_fail(ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID, "%s: model %u has no %s gears", api, modelId, what);
    }
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlSetDynamicBatchSize(uint32_t modelId, aclmdlDataset *dataset, size_t index, uint64_t batchSize)
{
    EMU_ENTER("aclmdlSetDynamicBatchSize");
    const char *api = "aclmdlSetDynamicBatchSize";
    aclError rc = emu_check_handle(dataset, EMU_H_DATASET, api);
    if (rc) return rc;
    if (batchSize == 0) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetDynamicBatchSize: batchSize must be > 0");
    emu_model *m;
    rc = lock_gear_model(modelId, dataset, EMU_DYN_BATCH, "dynamic-batch", &m, api);
    if (rc) return rc;
    const emu_model_def *def = &m->def;
    size_t g = 0;
    while (g < def->num_gears && def->gears[g] != batchSize) g++;
    if (g == def->num_gears) {
        char gears[256] = "";
        for (size_t i = 0; i < def->num_gears; i++)
            snprintf(gears + strlen(gears), sizeof gears - strlen(gears), "%s%llu", i ? "," : "", (unsigned long long)def->gears[i]);
        pthread_mutex_unlock(&model_mu);
        return emu_fail(ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID, "aclmdlSetDynamicBatchSize: batch %llu is not a gear of model %u (gears: %s)",
                        (unsigned long long)batchSize, modelId, gears);
    }
    return commit_gear(m, modelId, dataset, index, g, api);
}

EMU_API aclError aclmdlSetDynamicHWSize(uint32_t modelId, aclmdlDataset *dataset, size_t index, uint64_t height, uint64_t width)
{
    EMU_ENTER("aclmdlSetDynamicHWSize");
    const char *api = "aclmdlSetDynamicHWSize";
    if (height == 0 || width == 0) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetDynamicHWSize: height and width must be > 0");
    emu_model *m;
    aclError rc = lock_gear_model(modelId, dataset, EMU_DYN_HW, "dynamic height/width", &m, api);
    if (rc) return rc;
    const emu_model_def *def = &m->def;
    size_t g = 0;
    while (g < def->num_hw && !(def->hw[g][0] == height && def->hw[g][1] == width)) g++;
    if (g == def->num_hw) {
        char gears[2048] = "";
        for (size_t i = 0; i < def->num_hw; i++)
            snprintf(gears + strlen(gears), sizeof gears - strlen(gears), "%s%llux%llu", i ? ", " : "", (unsigned long long)def->hw[i][0],
                     (unsigned long long)def->hw[i][1]);
        pthread_mutex_unlock(&model_mu);
        return emu_fail(ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID, "aclmdlSetDynamicHWSize: %llux%llu is not a height/width gear of model %u (gears: %s)",
                        (unsigned long long)height, (unsigned long long)width, modelId, gears);
    }
    return commit_gear(m, modelId, dataset, index, g, api);
}

EMU_API aclError aclmdlSetInputDynamicDims(uint32_t modelId, aclmdlDataset *dataset, size_t index, const aclmdlIODims *dims)
{
    EMU_ENTER("aclmdlSetInputDynamicDims");
    const char *api = "aclmdlSetInputDynamicDims";
    if (!dims) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetInputDynamicDims: dims is NULL");
    emu_model *m;
    aclError rc = lock_gear_model(modelId, dataset, EMU_DYN_DIMS, "dynamic dims", &m, api);
    if (rc) return rc;
    const emu_model_def *def = &m->def;
    size_t g = 0;
    for (; g < def->num_dims_gears; g++) {
        aclmdlIODims want;
        gear_dims(def, g, &want);
        if (dims->dimCount == want.dimCount && memcmp(dims->dims, want.dims, want.dimCount * sizeof want.dims[0]) == 0) break;
    }
    if (g == def->num_dims_gears) {
        char given[1024] = "", gears[2048];
        for (size_t i = 0; i < dims->dimCount && i < ACL_MAX_DIM_CNT; i++)
            snprintf(given + strlen(given), sizeof given - strlen(given), "%s%lld", i ? "," : "", (long long)dims->dims[i]);
        gears_text(def, gears, sizeof gears);
        pthread_mutex_unlock(&model_mu);
        return emu_fail(ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID,
                        "aclmdlSetInputDynamicDims: dims [%s] (every input's dims, concatenated) are not a gear of model %u (gears: %s)", given,
                        modelId, gears);
    }
    return commit_gear(m, modelId, dataset, index, g, api);
}

/* ================================================================ exec configs */

struct aclmdlExecConfigHandle {
    int32_t stream_timeout_ms, event_timeout_ms;
    void *work_ptr;
    size_t size_opts[6];   /* IPV350: WORK_SIZET .. MEC_TIMETHR_SIZET */
};

EMU_API aclmdlExecConfigHandle *aclmdlCreateExecConfigHandle(void)
{
    aclmdlExecConfigHandle *h = emu_handle_new(sizeof *h, EMU_H_EXECCFG, "aclmdlCreateExecConfigHandle");
    if (h) {
        h->stream_timeout_ms = -1;
        h->event_timeout_ms = -1;
    }
    return h;
}

EMU_API aclError aclmdlDestroyExecConfigHandle(const aclmdlExecConfigHandle *handle)
{
    EMU_ENTER("aclmdlDestroyExecConfigHandle");
    aclError rc = emu_handle_destroy(handle, EMU_H_EXECCFG, "aclmdlDestroyExecConfigHandle");
    if (!rc) free((void *)handle);
    return rc;
}

EMU_API aclError aclmdlSetExecConfigOpt(aclmdlExecConfigHandle *handle, aclmdlExecConfigAttr attr, const void *attrValue, size_t valueSize)
{
    EMU_ENTER("aclmdlSetExecConfigOpt");
    aclError rc = emu_check_handle(handle, EMU_H_EXECCFG, "aclmdlSetExecConfigOpt");
    if (rc) return rc;
    if (!attrValue) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetExecConfigOpt: attrValue is NULL");
    if (attr == ACL_MDL_STREAM_SYNC_TIMEOUT || attr == ACL_MDL_EVENT_SYNC_TIMEOUT) {
        if (valueSize != sizeof(int32_t))
            return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetExecConfigOpt: attribute %d takes an int32_t (valueSize 4, got %zu)", (int)attr, valueSize);
        int32_t v;
        memcpy(&v, attrValue, sizeof v);
        if (v < -1) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetExecConfigOpt: timeout must be -1 or >= 0 ms (got %d)", v);
        if (attr == ACL_MDL_STREAM_SYNC_TIMEOUT) handle->stream_timeout_ms = v;
        else handle->event_timeout_ms = v;
        return ACL_SUCCESS;
    }
    int ipv350_only = attr >= ACL_MDL_WORK_ADDR_PTR && attr <= ACL_MDL_MEC_TIMETHR_SIZET;
    if (ipv350_only && emu_profile.exec_async_v2) {
        size_t want = attr == ACL_MDL_WORK_ADDR_PTR ? sizeof(void *) : sizeof(size_t);
        if (valueSize != want)
            return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetExecConfigOpt: attribute %d takes %zu bytes (got %zu)", (int)attr, want, valueSize);
        if (attr == ACL_MDL_WORK_ADDR_PTR) memcpy(&handle->work_ptr, attrValue, sizeof(void *));
        else memcpy(&handle->size_opts[attr - ACL_MDL_WORK_SIZET], attrValue, sizeof(size_t));
        return ACL_SUCCESS;
    }
    return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetExecConfigOpt: attribute %d is not supported on %s (only ACL_MDL_STREAM_SYNC_TIMEOUT and ACL_MDL_EVENT_SYNC_TIMEOUT%s)",
                    (int)attr, emu_profile.soc_name, emu_profile.exec_async_v2 ? " and the work-memory options 2..7" : "");
}

/* ================================================================ execution */

uint64_t emu_exec_duration_ns(const emu_model *m, const emu_dyn_values *vals)
{
    return emu_shape_exec_ns(&m->def, vals);
}

typedef struct {
    uint64_t batch;
    emu_dyn_values vals;      /* the -1 input dims of this execution */
    void *in[EMU_MAX_IO], *out[EMU_MAX_IO];
    void *aipp;                  /* the dynamic AIPP parameters, or NULL */
    size_t aipp_len;
    emu_alloc *holds[2 * EMU_MAX_IO + 2];
    int n_holds;
} exec_args;

static aclError check_buffer(const aclmdlDataset *ds, size_t i, size_t need, int output, const char *name, void **addr, exec_args *a,
                             int exact, const char *api)
{
    const char *side = output ? "output" : "input";
    aclDataBuffer *b = ds->bufs[i];
    if (!emu_handle_live(b, EMU_H_DATABUFFER))
        return emu_finding(FXEMU_FINDING_DESTROYED_HANDLE, FXEMU_ERR_DESTROYED_HANDLE, "%s: %s %zu ('%s') is a destroyed data buffer", api, side, i,
                           name);
    void *p = aclGetDataBufferAddr(b);
    size_t size = aclGetDataBufferSizeV2(b);
    if (!p) return emu_fail(ACL_ERROR_GE_FAILURE, "%s: %s %zu ('%s') has no memory (NULL buffers are for synchronous aclmdlExecute outputs only)", api, side, i, name);
    if (size + 64 < need)
        return emu_fail(ACL_ERROR_GE_FAILURE, "%s: %s %zu ('%s') buffer holds %zu bytes, the model needs %zu", api, side, i, name, size, need);
    if (exact && size < need)
        return emu_fail(ACL_ERROR_GE_FAILURE, "%s: %s %zu ('%s') buffer holds %zu bytes, its real shape needs %zu", api, side, i, name, size, need);
    emu_alloc *al;
    aclError rc = emu_mem_find(p, need < size ? need : size, &al, api, side);
    if (rc) return rc;
    if (!al || (al->kind != EMU_MEM_DEVICE && al->kind != EMU_MEM_REGISTERED))
        return emu_finding(FXEMU_FINDING_HOST_POINTER, FXEMU_ERR_HOST_POINTER, "%s: %s %zu ('%s') at %p is %s; model inputs and outputs must be device memory", api,
                           side, i, name, p, emu_mem_kind_name(al ? al->kind : EMU_MEM_PAGEABLE));
    if ((size_t)(al->base + al->size - (char *)p) < need)
        return emu_fail(ACL_ERROR_GE_FAILURE, "%s: %s %zu ('%s') at %p: its device block ends before the %zu bytes the model needs", api, side, i, name, p, need);
    *addr = p;
    a->holds[a->n_holds++] = al;
    return ACL_SUCCESS;
}

/* The shapes of one execution (a->batch, a->vals): the dataset's gear (the largest when none
 * was set), or for a dynamic shape the dims the input dataset's tensor descriptions give,
 * which must lie within the ranges. */
static aclError exec_shape(const emu_model_def *def, const aclmdlDataset *input, exec_args *a, const char *api)
{
    switch (def->dyn_kind) {
    case EMU_DYN_NONE:
    case EMU_DYN_BATCH:
        a->batch = def->dyn_kind == EMU_DYN_BATCH && input->dyn_batch ? input->dyn_batch : emu_model_max_batch(def);
        emu_model_batch_values(def, a->batch, &a->vals);
        return ACL_SUCCESS;
    case EMU_DYN_HW:
    case EMU_DYN_DIMS:
        emu_model_profile_values(def, input->dyn_gear ? (size_t)input->dyn_gear - 1 : default_gear(def), &a->vals);
        break;
    case EMU_DYN_SHAPE: {
        memset(&a->vals, 0, sizeof a->vals);
        size_t o = 0;
        for (size_t k = 0; k < def->num_inputs; k++) {
            const emu_tensor_def *t = &def->inputs[k];
            const aclTensorDesc *d = k < input->n_descs ? input->descs[k] : NULL;
            int dyn = 0;
            for (size_t j = 0; j < t->ndims; j++) dyn |= t->dims[j] == -1;
            if (!dyn) continue;
            if (!d)
                return emu_fail(ACL_ERROR_GE_PARAM_INVALID, "%s: input %zu ('%s') has dynamic dims; set its shape with aclmdlSetDatasetTensorDesc", api, k,
                                t->name);
            if (d->ndims != t->ndims)
                return emu_fail(ACL_ERROR_GE_PARAM_INVALID, "%s: input %zu ('%s') takes %zu dims, its tensor description has %zu", api, k, t->name,
                                t->ndims, d->ndims);
            for (size_t j = 0; j < t->ndims; j++) {
                if (t->dims[j] != -1) {
                    if (d->dims[j] != t->dims[j])
                        return emu_fail(ACL_ERROR_GE_PARAM_INVALID, "%s: input %zu ('%s'): dims[%zu] is %lld in its tensor description, the model has %lld", api, k,
                                        t->name, j, (long long)d->dims[j], (long long)t->dims[j]);
                    continue;
                }
                int64_t lo = def->ranges[o][0], hi = def->ranges[o][1];
                if (d->dims[j] < lo || d->dims[j] > hi)
                    return emu_fail(ACL_ERROR_GE_PARAM_INVALID, "%s: input %zu ('%s'): dims[%zu] = %lld is outside its range [%lld, %lld]", api, k, t->name, j,
                                    (long long)d->dims[j], (long long)lo, (long long)hi);
                a->vals.v[o++] = d->dims[j];
            }
        }
        break;
    }
    }
    int64_t dims[ACL_MAX_DIM_CNT];
    emu_shape_dims(def, &a->vals, 0, 0, dims);
    a->batch = (uint64_t)dims[0];
    return ACL_SUCCESS;
}

/* Validate the datasets of one execution; on success model_mu is held and `m` is returned. */
static aclError prepare_exec(uint32_t modelId, const aclmdlDataset *input, const aclmdlDataset *output, int mode, emu_stream *s, emu_model **out,
                             exec_args *a, const char *api)
{
    aclError rc = emu_check_handle(input, EMU_H_DATASET, api);
    if (!rc) rc = emu_check_handle(output, EMU_H_DATASET, api);
    if (rc) return rc;
    emu_context *ctx;
    aclError ctx_rc = emu_require_context(&ctx, api);
    if (ctx_rc) return ctx_rc;
    emu_model *m;
    rc = lock_model(modelId, &m, api);
    if (rc) return rc;
    const emu_model_def *def = &m->def;
    if (m->dev != ctx->dev) {
        pthread_mutex_unlock(&model_mu);
        return emu_fail(ACL_ERROR_RT_MODEL_CONTEXT, "%s: model %u was loaded on device %d, the current context is on device %d", api, modelId, m->dev->id,
                        ctx->dev->id);
    }
    if (m->exec_mode && m->exec_mode != mode) {
        pthread_mutex_unlock(&model_mu);
        return emu_finding(FXEMU_FINDING_MIXED_SYNC_ASYNC, ACL_ERROR_GE_FAILURE,
                           "%s: model %u was already executed %s; one model must not mix synchronous and asynchronous execution", api, modelId,
                           m->exec_mode == 1 ? "synchronously (aclmdlExecute)" : "asynchronously (on a stream)");
    }
    size_t need_in = def->num_inputs + (m->has_dyn ? 1 : 0) + (m->aipp_node >= 0 ? 1 : 0);
    if (input->n < need_in || output->n != def->num_outputs) {
        pthread_mutex_unlock(&model_mu);
        return emu_fail(ACL_ERROR_GE_FAILURE, "%s: model %u takes %zu input buffer(s) and %zu output buffer(s); the datasets hold %zu and %zu", api, modelId,
                        need_in, def->num_outputs, input->n, output->n);
    }
    rc = exec_shape(def, input, a, api);
    if (rc) {
        pthread_mutex_unlock(&model_mu);
        return rc;
    }
    int exact = def->dyn_kind == EMU_DYN_SHAPE;   /* a real output larger than its buffer fails, never truncates */
    a->n_holds = 0;
    for (size_t i = 0; i < def->num_inputs && !rc; i++) {
        emu_tensor_def shown;   /* an AIPP input takes the raw image (AIPP models are static) */
        emu_input_visible(def, i, 0, &shown);
        size_t need = def->aipp[i].mode != EMU_AIPP_NONE ? emu_tensor_bytes(&shown, a->batch) : emu_shape_bytes(def, &a->vals, 0, i);
        rc = check_buffer(input, i, need, 0, shown.name, &a->in[i], a, exact, api);
    }
    void *dyn_addr;
    if (!rc && m->has_dyn) rc = check_buffer(input, def->num_inputs, 4, 0, ACL_DYNAMIC_TENSOR_NAME, &dyn_addr, a, 0, api);
    a->aipp = NULL;
    a->aipp_len = emu_aipp_data_size(a->batch);
    if (!rc && m->aipp_node >= 0) rc = check_buffer(input, (size_t)m->aipp_node, a->aipp_len, 0, ACL_DYNAMIC_AIPP_NAME, &a->aipp, a, 0, api);
    for (size_t i = 0; i < def->num_outputs && !rc; i++)
        rc = check_buffer(output, i, emu_shape_bytes(def, &a->vals, 1, i), 1, def->outputs[i].name, &a->out[i], a, exact, api);
    if (!rc && m->inflight && s && m->inflight_stream != s && emu_profile.checked)
        rc = emu_finding(FXEMU_FINDING_MODEL_TWO_STREAMS, FXEMU_ERR_MODEL_BUSY_OTHER_STREAM,
                         "%s: model %u is still executing on another stream; one model id must not execute on two streams at once", api, modelId);
    if (rc) {
        pthread_mutex_unlock(&model_mu);
        return rc;
    }
    m->exec_mode = mode;
    /* The real output shapes, for aclmdlGetDatasetTensorDesc(output, i) after the execution. */
    for (size_t i = 0; i < def->num_outputs; i++) {
        const emu_tensor_def *t = &def->outputs[i];
        int64_t dims[ACL_MAX_DIM_CNT];
        emu_shape_dims(def, &a->vals, 1, i, dims);
        dataset_desc_put((aclmdlDataset *)output, i, t->dtype, t->format, t->ndims, dims);
    }
    *out = m;
    return ACL_SUCCESS;
}

/* Run a model (its AIPP, then its kernel); a dumped model writes its tensors before and after
 * (emu_dump.c). 0, or -1 with the reason in err. */
static int run_kernel(emu_model *m, uint64_t batch, const emu_dyn_values *vals, void *const *in, void *const *out, const void *aipp,
                      size_t aipp_len, uint32_t stream_id, uint64_t task_id, char *err, size_t err_len)
{
    uint64_t index = 0;
    if (m->dump_dir) {
        index = atomic_fetch_add(&m->dump_index, 1);
        emu_dump_tensors(m->dump_dir, index, m->dump_mode, 0, &m->def, vals, in, stream_id, task_id);
    }
    int rc = emu_model_run(&m->def, batch, vals, (const void *const *)in, out, aipp, aipp_len, err, err_len);
    if (m->dump_dir && rc == 0) emu_dump_tensors(m->dump_dir, index, m->dump_mode, 1, &m->def, vals, out, stream_id, task_id);
    return rc;
}

void emu_exec_task_run(emu_stream *s, emu_task *t)
{
    emu_model *m = t->u.exec.model;
    char err[256];
    if (run_kernel(m, t->u.exec.batch, &t->u.exec.vals, t->u.exec.in, t->u.exec.out, t->u.exec.aipp, t->u.exec.aipp_len, s->id,
                   atomic_load(&s->completed), err, sizeof err) != 0) {
        t->fail_code = ACL_ERROR_RT_MODEL_EXECUTE;
        emu_fail(ACL_ERROR_RT_MODEL_EXECUTE, "model %u execution: %s", m->id, err);
    }
}

void emu_exec_task_done(emu_task *t, aclError err)
{
    (void)err;
    pthread_mutex_lock(&model_mu);
    t->u.exec.model->inflight--;
    pthread_cond_broadcast(&model_cv);
    pthread_mutex_unlock(&model_mu);
}

static aclError enqueue_exec(uint32_t modelId, const aclmdlDataset *input, aclmdlDataset *output, emu_stream *s, const char *api)
{
    emu_model *m;
    exec_args a;
    aclError rc = prepare_exec(modelId, input, output, 2, s, &m, &a, api);
    if (rc) return rc;
    m->inflight++;
    m->inflight_stream = s;
    pthread_mutex_unlock(&model_mu);
    emu_task *t = emu_task_new(EMU_T_EXEC);
    t->u.exec.model = m;
    t->u.exec.batch = a.batch;
    t->u.exec.vals = a.vals;
    memcpy(t->u.exec.in, a.in, sizeof a.in);
    memcpy(t->u.exec.out, a.out, sizeof a.out);
    t->u.exec.aipp = a.aipp;
    t->u.exec.aipp_len = a.aipp_len;
    memcpy(t->holds, a.holds, a.n_holds * sizeof a.holds[0]);
    t->n_holds = a.n_holds;
    emu_stream_push(s, t, api);
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlExecute(uint32_t modelId, const aclmdlDataset *input, aclmdlDataset *output)
{
    EMU_ENTER("aclmdlExecute");
    emu_model *m;
    exec_args a;
    aclError rc = prepare_exec(modelId, input, output, 1, NULL, &m, &a, "aclmdlExecute");
    if (rc) return rc;
    m->inflight++;
    pthread_mutex_unlock(&model_mu);
    emu_engine *e = &m->dev->engines[EMU_ENGINE_COMPUTE];
    uint64_t launch = emu_profile.fast ? 0 : (uint64_t)(emu_profile.launch_us * 1e3);
    emu_engine_slot slot;
    emu_engine_begin(&slot, e, emu_now_ns() + launch, emu_exec_duration_ns(m, &a.vals));
    uint32_t stream_id = 0;       /* for a dump's file names: the context's default stream */
    if (m->dump_dir) {
        emu_context *ctx = emu_current_context();
        if (ctx && ctx->default_stream) stream_id = ctx->default_stream->id;
    }
    char err[256];
    int run_rc = run_kernel(m, a.batch, &a.vals, a.in, a.out, a.aipp, a.aipp_len, stream_id, 0, err, sizeof err);
    emu_engine_end(&slot, 0);
    pthread_mutex_lock(&model_mu);
    m->inflight--;
    pthread_cond_broadcast(&model_cv);
    pthread_mutex_unlock(&model_mu);
    if (run_rc != 0) return emu_fail(ACL_ERROR_RT_MODEL_EXECUTE, "aclmdlExecute: model %u: %s", modelId, err);
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlExecuteAsync(uint32_t modelId, const aclmdlDataset *input, aclmdlDataset *output, aclrtStream stream)
{
    EMU_ENTER("aclmdlExecuteAsync");
    emu_stream *s;
    aclError rc = emu_resolve_stream(stream, &s, "aclmdlExecuteAsync");
    if (rc) return rc;
    return enqueue_exec(modelId, input, output, s, "aclmdlExecuteAsync");
}

static aclError v2_args(aclrtStream stream, const aclmdlExecConfigHandle *handle, emu_stream **s, const char *api)
{
    if (!stream) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: stream must not be NULL", api);
    aclError rc = emu_check_handle(handle, EMU_H_EXECCFG, api);
    if (!rc) rc = emu_resolve_stream(stream, s, api);
    return rc;
}

/* The exec config's timeouts stick to the stream for later synchronisations. */
static void apply_timeouts(emu_stream *s, const aclmdlExecConfigHandle *h)
{
    pthread_mutex_lock(&s->mu);
    s->sync_timeout_ms = h->stream_timeout_ms;
    s->event_timeout_ms = h->event_timeout_ms;
    pthread_mutex_unlock(&s->mu);
}

EMU_API aclError aclmdlExecuteV2(uint32_t modelId, const aclmdlDataset *input, aclmdlDataset *output, aclrtStream stream,
                                 const aclmdlExecConfigHandle *handle)
{
    EMU_ENTER("aclmdlExecuteV2");
    emu_stream *s;
    aclError rc = v2_args(stream, handle, &s, "aclmdlExecuteV2");
    if (rc) return rc;
    apply_timeouts(s, handle);
    rc = enqueue_exec(modelId, input, output, s, "aclmdlExecuteV2");
    if (rc) return rc;
    return emu_stream_sync(s, handle->stream_timeout_ms, "aclmdlExecuteV2");
}

#ifndef FXEMU_OMIT_EXECUTE_ASYNC_V2 /* defined to build a library without it, like server builds of CANN */
EMU_API aclError aclmdlExecuteAsyncV2(uint32_t modelId, const aclmdlDataset *input, aclmdlDataset *output, aclrtStream stream,
                                      const aclmdlExecConfigHandle *handle)
{
    EMU_ENTER("aclmdlExecuteAsyncV2");
    if (!emu_profile.exec_async_v2)
        return emu_fail(ACL_ERROR_API_NOT_SUPPORT, "aclmdlExecuteAsyncV2: not supported on %s (the documentation lists IPV350 only; use aclmdlExecuteAsync)",
                        emu_profile.soc_name);
    emu_stream *s;
    aclError rc = v2_args(stream, handle, &s, "aclmdlExecuteAsyncV2");
    if (rc) return rc;
    apply_timeouts(s, handle);
    return enqueue_exec(modelId, input, output, s, "aclmdlExecuteAsyncV2");
}
#endif

/* ================================================================ loading with user memory, load configs */

static aclError load_file_mem(const char *path, uint32_t *modelId, const user_mem *um, const char *api)
{
    if (!path || !modelId) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: modelPath and modelId must not be NULL", api);
    aclError rc = require_init(api);
    if (rc) return rc;
    char *text;
    size_t len;
    rc = read_file(path, &text, &len, api);
    if (rc) return rc;
    emu_model_def *def = malloc(sizeof *def);
    rc = parse(text, len, def, api, path);
    free(text);
    if (!rc) rc = load_def_mem(def, modelId, um, api);
    free(def);
    return rc;
}

static aclError load_mem_mem(const void *model, size_t size, uint32_t *modelId, const user_mem *um, const char *api)
{
    if (!model || !modelId || size == 0) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: model, modelSize and modelId must be set", api);
    aclError rc = require_init(api);
    if (rc) return rc;
    emu_model_def *def = malloc(sizeof *def);
    rc = parse(model, size, def, api, "model data");
    if (!rc) rc = load_def_mem(def, modelId, um, api);
    free(def);
    return rc;
}

EMU_API aclError aclmdlLoadFromFileWithMem(const char *modelPath, uint32_t *modelId, void *workPtr, size_t workSize, void *weightPtr, size_t weightSize)
{
    EMU_ENTER("aclmdlLoadFromFileWithMem");
    user_mem um = {workPtr, weightPtr, workSize, weightSize};
    return load_file_mem(modelPath, modelId, &um, "aclmdlLoadFromFileWithMem");
}

EMU_API aclError aclmdlLoadFromMemWithMem(const void *model, size_t modelSize, uint32_t *modelId, void *workPtr, size_t workSize, void *weightPtr,
                                          size_t weightSize)
{
    EMU_ENTER("aclmdlLoadFromMemWithMem");
    user_mem um = {workPtr, weightPtr, workSize, weightSize};
    return load_mem_mem(model, modelSize, modelId, &um, "aclmdlLoadFromMemWithMem");
}

EMU_API aclError aclmdlQuerySizeFromMem(const void *model, size_t modelSize, size_t *workSize, size_t *weightSize)
{
    EMU_ENTER("aclmdlQuerySizeFromMem");
    if (!model || modelSize == 0 || !workSize || !weightSize)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlQuerySizeFromMem: model, modelSize, workSize and weightSize must be set");
    emu_model_def *def = malloc(sizeof *def);
    aclError rc = parse(model, modelSize, def, "aclmdlQuerySizeFromMem", "model data");
    if (!rc) {
        *workSize = def->workspace_bytes;
        *weightSize = def->weight_bytes;
    }
    free(def);
    return rc;
}

struct aclmdlConfigHandle {
    int32_t priority;
    size_t load_type;            /* 0 = not set */
    const char *path;
    const void *mem;
    size_t mem_size;
    void *weight, *work;
    size_t weight_size, work_size;
};

EMU_API aclmdlConfigHandle *aclmdlCreateConfigHandle(void)
{
    return emu_handle_new(sizeof(aclmdlConfigHandle), EMU_H_LOADCFG, "aclmdlCreateConfigHandle");
}

EMU_API aclError aclmdlDestroyConfigHandle(aclmdlConfigHandle *handle)
{
    EMU_ENTER("aclmdlDestroyConfigHandle");
    aclError rc = emu_handle_destroy(handle, EMU_H_LOADCFG, "aclmdlDestroyConfigHandle");
    if (!rc) free(handle);
    return rc;
}

EMU_API aclError aclmdlSetConfigOpt(aclmdlConfigHandle *handle, aclmdlConfigAttr attr, const void *attrValue, size_t valueSize)
{
    EMU_ENTER("aclmdlSetConfigOpt");
    aclError rc = emu_check_handle(handle, EMU_H_LOADCFG, "aclmdlSetConfigOpt");
    if (rc) return rc;
    if (!attrValue) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetConfigOpt: attrValue is NULL");
    size_t want = sizeof(size_t);
    void *field = NULL;
    switch (attr) {
    case ACL_MDL_PRIORITY_INT32: want = sizeof(int32_t); field = &handle->priority; break;
    case ACL_MDL_LOAD_TYPE_SIZET: field = &handle->load_type; break;
    case ACL_MDL_PATH_PTR: want = sizeof(char *); field = &handle->path; break;
    case ACL_MDL_MEM_ADDR_PTR: want = sizeof(void *); field = &handle->mem; break;
    case ACL_MDL_MEM_SIZET: field = &handle->mem_size; break;
    case ACL_MDL_WEIGHT_ADDR_PTR: want = sizeof(void *); field = &handle->weight; break;
    case ACL_MDL_WEIGHT_SIZET: field = &handle->weight_size; break;
    case ACL_MDL_WORKSPACE_ADDR_PTR: want = sizeof(void *); field = &handle->work; break;
    case ACL_MDL_WORKSPACE_SIZET: field = &handle->work_size; break;
    default:
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetConfigOpt: attribute %d is not supported by the emulator (priority, load type, path, memory, weight and workspace are)", (int)attr);
    }
    if (valueSize != want)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetConfigOpt: attribute %d takes %zu bytes (valueSize %zu)", (int)attr, want, valueSize);
    memcpy(field, attrValue, want);
    if (attr == ACL_MDL_LOAD_TYPE_SIZET && (handle->load_type < ACL_MDL_LOAD_FROM_FILE || handle->load_type > ACL_MDL_LOAD_FROM_MEM_WITH_MEM)) {
        size_t bad = handle->load_type;
        handle->load_type = 0;
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetConfigOpt: load type %zu is not supported (1..4: from file / memory, with or without user memory)", bad);
    }
    if (attr == ACL_MDL_PRIORITY_INT32 && (handle->priority < 0 || handle->priority > 7)) {
        handle->priority = 0;
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetConfigOpt: priority must be 0..7");
    }
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlLoadWithConfig(const aclmdlConfigHandle *handle, uint32_t *modelId)
{
    EMU_ENTER("aclmdlLoadWithConfig");
    aclError rc = emu_check_handle(handle, EMU_H_LOADCFG, "aclmdlLoadWithConfig");
    if (rc) return rc;
    const aclmdlConfigHandle *h = handle;
    user_mem um = {0};
    if (h->load_type == ACL_MDL_LOAD_FROM_FILE_WITH_MEM || h->load_type == ACL_MDL_LOAD_FROM_MEM_WITH_MEM)
        um = (user_mem){h->work, h->weight, h->work_size, h->weight_size};
    switch (h->load_type) {
    case ACL_MDL_LOAD_FROM_FILE:
    case ACL_MDL_LOAD_FROM_FILE_WITH_MEM: rc = load_file_mem(h->path, modelId, &um, "aclmdlLoadWithConfig"); break;
    case ACL_MDL_LOAD_FROM_MEM:
    case ACL_MDL_LOAD_FROM_MEM_WITH_MEM: rc = load_mem_mem(h->mem, h->mem_size, modelId, &um, "aclmdlLoadWithConfig"); break;
    default: return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlLoadWithConfig: ACL_MDL_LOAD_TYPE_SIZET is not set");
    }
    if (!rc) {
        pthread_mutex_lock(&model_mu);
        models[*modelId - 1]->priority = (uint32_t)h->priority;
        pthread_mutex_unlock(&model_mu);
    }
    return rc;
}

EMU_API aclError aclmdlSetAttribute(uint32_t modelId, aclmdlAttr attr, aclmdlAttrValue_t *attrValue)
{
    EMU_ENTER("aclmdlSetAttribute");
    if (!attrValue) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetAttribute: attrValue is NULL");
    if (attr != ACL_MDL_ATTR_PRIORITY_INT32) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetAttribute: unknown attribute %d", (int)attr);
    if (attrValue->mdlPriority > 7)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetAttribute: priority %u is outside [0, 7] (aclrtDeviceGetStreamPriorityRange)", attrValue->mdlPriority);
    emu_model *m;
    aclError rc = lock_model(modelId, &m, "aclmdlSetAttribute");
    if (rc) return rc;
    m->priority = attrValue->mdlPriority;
    pthread_mutex_unlock(&model_mu);
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlGetAttribute(uint32_t modelId, aclmdlAttr attr, aclmdlAttrValue_t *attrValue)
{
    EMU_ENTER("aclmdlGetAttribute");
    if (!attrValue) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetAttribute: attrValue is NULL");
    if (attr != ACL_MDL_ATTR_PRIORITY_INT32) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetAttribute: unknown attribute %d", (int)attr);
    emu_model *m;
    aclError rc = lock_model(modelId, &m, "aclmdlGetAttribute");
    if (rc) return rc;
    memset(attrValue, 0, sizeof *attrValue);
    attrValue->mdlPriority = m->priority;
    pthread_mutex_unlock(&model_mu);
    return ACL_SUCCESS;
}

/* ================================================================ more description queries */

EMU_API aclError aclmdlGetDescFromFile(aclmdlDesc *modelDesc, const char *modelPath)
{
    EMU_ENTER("aclmdlGetDescFromFile");
    aclError rc = emu_check_handle(modelDesc, EMU_H_DESC, "aclmdlGetDescFromFile");
    if (rc) return rc;
    if (!modelPath) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetDescFromFile: modelPath is NULL");
    char *text;
    size_t len;
    rc = read_file(modelPath, &text, &len, "aclmdlGetDescFromFile");
    if (rc) return rc;
    emu_model_def *def = malloc(sizeof *def);
    rc = parse(text, len, def, "aclmdlGetDescFromFile", modelPath);
    free(text);
    if (!rc) fill_desc(modelDesc, def, has_gear_tensor(def));
    free(def);
    return rc;
}

EMU_API aclError aclmdlGetInputDimsV2(const aclmdlDesc *modelDesc, size_t index, aclmdlIODims *dims)
{
    /* Static AIPP inputs: the raw image's byte layout (n,h*3/2,w,1 for YUV420SP_U8); else as V1. */
    return get_dims_as(modelDesc, 0, index, dims, 1, "aclmdlGetInputDimsV2");
}

EMU_API aclError aclmdlGetInputDimsRange(const aclmdlDesc *modelDesc, size_t index, aclmdlIODimsRange *dimsRange)
{
    EMU_ENTER("aclmdlGetInputDimsRange");
    if (!dimsRange) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetInputDimsRange: dimsRange is NULL");
    aclError rc = emu_check_handle(modelDesc, EMU_H_DESC, "aclmdlGetInputDimsRange");
    if (rc) return rc;
    const io_info *io = desc_io(modelDesc, 0, index, "aclmdlGetInputDimsRange");
    if (!io) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetInputDimsRange: index %zu is out of range (the model has %zu inputs)", index, modelDesc->n_in);
    memset(dimsRange, 0, sizeof *dimsRange);
    dimsRange->rangeCount = io->ndims;
    for (size_t i = 0; i < io->ndims; i++) {   /* over the gears, or the dynamic-shape ranges; (d, d) for a fixed dim */
        dimsRange->range[i][0] = io->range[i][0];
        dimsRange->range[i][1] = io->range[i][1];
    }
    return ACL_SUCCESS;
}

EMU_API const char *aclmdlGetTensorRealName(const aclmdlDesc *modelDesc, const char *name)
{
    const aclmdlDesc *d = live_desc(modelDesc, "aclmdlGetTensorRealName");
    if (!d || !name) return NULL;
    /* The emulator's names are never longer than 127 characters, so none is replaced. */
    for (size_t i = 0; i < d->n_in; i++)
        if (strcmp(d->in[i].name, name) == 0) return d->in[i].name;
    for (size_t i = 0; i < d->n_out; i++)
        if (strcmp(d->out[i].name, name) == 0) return d->out[i].name;
    return NULL;
}

EMU_API aclError aclmdlGetCurOutputDims(const aclmdlDesc *modelDesc, size_t index, aclmdlIODims *dims)
{
    aclError rc = get_dims(modelDesc, 1, index, dims, "aclmdlGetCurOutputDims");
    if (rc) return rc;
    if (modelDesc->dyn_kind == EMU_DYN_NONE || modelDesc->dyn_kind == EMU_DYN_SHAPE)
        return ACL_SUCCESS;   /* static: the dims are the dims; dynamic shape: see aclmdlGetDatasetTensorDesc */
    /* A gear model: the output dims at the model's current gear (the largest when none was set). */
    pthread_mutex_lock(&model_mu);
    uint32_t id = modelDesc->model_id;
    emu_model *m = id >= 1 && id <= n_models ? models[id - 1] : NULL;
    if (m) {
        emu_dyn_values v;
        emu_model_profile_values(&m->def, current_gear(m), &v);
        emu_shape_dims(&m->def, &v, 1, index, dims->dims);
    } else {
        for (size_t i = 0; i < dims->dimCount; i++)   /* a description read from a file: the largest gear */
            if (dims->dims[i] < 0) dims->dims[i] = modelDesc->out[index].range[i][1];
    }
    pthread_mutex_unlock(&model_mu);
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlGetDynamicHW(const aclmdlDesc *modelDesc, size_t index, aclmdlHW *hw)
{
    EMU_ENTER("aclmdlGetDynamicHW");
    (void)index;   /* documented as reserved: the model's HW gears do not depend on it */
    if (!hw) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetDynamicHW: hw is NULL");
    aclError rc = emu_check_handle(modelDesc, EMU_H_DESC, "aclmdlGetDynamicHW");
    if (rc) return rc;
    memset(hw, 0, sizeof *hw);
    hw->hwCount = modelDesc->num_hw;   /* 0 for the static and dynamic-batch models */
    memcpy(hw->hw, modelDesc->hw, modelDesc->num_hw * sizeof modelDesc->hw[0]);
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlGetInputDynamicGearCount(const aclmdlDesc *modelDesc, size_t index, size_t *gearCount)
{
    EMU_ENTER("aclmdlGetInputDynamicGearCount");
    (void)index;   /* reserved (-1 in the documentation's examples) */
    if (!gearCount) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetInputDynamicGearCount: gearCount is NULL");
    aclError rc = emu_check_handle(modelDesc, EMU_H_DESC, "aclmdlGetInputDynamicGearCount");
    if (rc) return rc;
    *gearCount = modelDesc->num_dims_gears;   /* 0 for static and dynamic-batch models (batch gears: aclmdlGetDynamicBatch) */
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlGetInputDynamicDims(const aclmdlDesc *modelDesc, size_t index, aclmdlIODims *dims, size_t gearCount)
{
    EMU_ENTER("aclmdlGetInputDynamicDims");
    (void)index;
    if (!dims) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetInputDynamicDims: dims is NULL");
    aclError rc = emu_check_handle(modelDesc, EMU_H_DESC, "aclmdlGetInputDynamicDims");
    if (rc) return rc;
    size_t have = modelDesc->num_dims_gears;   /* see aclmdlGetInputDynamicGearCount */
    if (gearCount < have)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetInputDynamicDims: gearCount %zu is below the model's %zu gears", gearCount, have);
    if (have) memcpy(dims, modelDesc->dims_gears, have * sizeof *dims);   /* dims holds gearCount entries */
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlGetAippType(uint32_t modelId, size_t index, aclmdlInputAippType *type, size_t *dynamicAttachedDataIndex)
{
    EMU_ENTER("aclmdlGetAippType");
    if (!type || !dynamicAttachedDataIndex) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetAippType: type and dynamicAttachedDataIndex must not be NULL");
    emu_model *m;
    aclError rc = lock_model(modelId, &m, "aclmdlGetAippType");
    if (rc) return rc;
    aclmdlDesc *d = calloc(1, sizeof *d);   /* the inputs as a description would show them */
    fill_desc(d, &m->def, m->has_dyn);
    pthread_mutex_unlock(&model_mu);
    size_t n_in = d->n_in;
    aclmdlInputAippType aipp = index < n_in ? d->in[index].aipp : ACL_DATA_WITHOUT_AIPP;
    size_t attached = index < n_in ? d->in[index].attached : ACL_INVALID_NODE_INDEX;
    free(d->dims_gears);
    free(d);
    if (index >= n_in) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetAippType: index %zu is out of range (the model has %zu inputs)", index, n_in);
    *type = aipp;
    *dynamicAttachedDataIndex = attached;   /* set for ACL_DATA_WITH_DYNAMIC_AIPP inputs only */
    return ACL_SUCCESS;
}

/* ================================================================ failed-task descriptions */

void emu_exec_describe(const emu_task *t, char *name, size_t len, emu_op_tensor **in, size_t *n_in, emu_op_tensor **out, size_t *n_out)
{
    const emu_model *m = t->u.exec.model;
    const emu_model_def *def = &m->def;
    snprintf(name, len, "%s", def->name[0] ? def->name : "model");
    size_t counts[2] = {def->num_inputs, def->num_outputs};
    const emu_tensor_def *defs[2] = {def->inputs, def->outputs};
    emu_op_tensor **lists[2] = {in, out};
    size_t *ns[2] = {n_in, n_out};
    for (int k = 0; k < 2; k++) {
        *ns[k] = counts[k];
        *lists[k] = counts[k] ? calloc(counts[k], sizeof **lists[k]) : NULL;
        for (size_t i = 0; i < counts[k]; i++) {
            emu_op_tensor *o = &(*lists[k])[i];
            const emu_tensor_def *td = &defs[k][i];
            o->dtype = td->dtype;
            o->format = td->format;
            o->ndims = td->ndims;
            emu_shape_dims(def, &t->u.exec.vals, k, i, o->dims);
        }
    }
}

/* ================================================================ dynamic AIPP
 *
 * An aclmdlAIPP holds the parameter tensor itself, as aclmdlSetInputAIPP copies it to the
 * ACL_DYNAMIC_AIPP_NAME input: a 64-byte header and one 96-byte entry per image
 * (docs/model-format.md, "Dynamic AIPP"). Validation follows GE's acl_aipp.cpp and
 * aipp_param_check.cpp; a rejected call changes nothing. */

struct aclmdlAIPP {
    uint64_t batch;
    unsigned char *data;         /* emu_aipp_data_size(batch) bytes */
};

static void put16(unsigned char *p, int16_t v) { memcpy(p, &v, 2); }
static void put32(unsigned char *p, int32_t v) { memcpy(p, &v, 4); }
static int32_t get32(const unsigned char *p) { int32_t v; memcpy(&v, p, 4); return v; }
static unsigned char *aipp_entry(const aclmdlAIPP *a, uint64_t b) { return a->data + EMU_AIPP_HEADER_BYTES + b * EMU_AIPP_BATCH_BYTES; }

EMU_API aclmdlAIPP *aclmdlCreateAIPP(uint64_t batchSize)
{
    if (batchSize == 0 || batchSize > 127) {
        emu_init_once();
        emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlCreateAIPP: batchSize %llu: expected 1..127 (the parameter set stores it in an int8)",
                 (unsigned long long)batchSize);
        return NULL;
    }
    aclmdlAIPP *a = emu_handle_new(sizeof *a, EMU_H_AIPP, "aclmdlCreateAIPP");
    if (!a) return NULL;
    a->batch = batchSize;
    a->data = calloc(1, emu_aipp_data_size(batchSize));
    a->data[4] = (unsigned char)batchSize;
    uint16_t one = emu_float_to_half(1.0f);
    for (uint64_t b = 0; b < batchSize; b++)
        for (int c = 0; c < 4; c++) memcpy(aipp_entry(a, b) + 72 + 2 * c, &one, 2);
    return a;
}

EMU_API aclError aclmdlDestroyAIPP(const aclmdlAIPP *aippParmsSet)
{
    EMU_ENTER("aclmdlDestroyAIPP");
    aclError rc = emu_handle_destroy(aippParmsSet, EMU_H_AIPP, "aclmdlDestroyAIPP");
    if (!rc) {
        free(aippParmsSet->data);
        free((void *)aippParmsSet);
    }
    return rc;
}

EMU_API aclError aclmdlGetAippDataSize(uint64_t batchSize, size_t *size)
{
    EMU_ENTER("aclmdlGetAippDataSize");
    if (!size) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetAippDataSize: size is NULL");
    if (batchSize == 0) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetAippDataSize: batchSize must be > 0");
    *size = emu_aipp_data_size(batchSize);
    return ACL_SUCCESS;
}

static aclError bad_aipp(const char *api, const char *what, long long v, long long lo, long long hi)
{
    return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: %s is %lld, expected [%lld, %lld]", api, what, v, lo, hi);
}

/* The AIPP set and, for the per-image setters, that batchIndex is one of its images. */
static aclError aipp_args(aclmdlAIPP *a, int per_image, uint64_t batchIndex, const char *api)
{
    aclError rc = emu_check_handle(a, EMU_H_AIPP, api);
    if (rc) return rc;
    if (per_image && batchIndex >= a->batch)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: batch_index (%llu) is greater than or equal to batch_number (%llu)", api,
                        (unsigned long long)batchIndex, (unsigned long long)a->batch);
    return ACL_SUCCESS;
}

#define AIPP_RANGE(api, what, v, lo, hi)                                                                   \
    do {                                                                                                    \
        if ((long long)(v) < (long long)(lo) || (long long)(v) > (long long)(hi)) return bad_aipp(api, what, (long long)(v), lo, hi); \
    } while (0)

EMU_API aclError aclmdlSetAIPPInputFormat(aclmdlAIPP *aippParmsSet, aclAippInputFormat inputFormat)
{
    EMU_ENTER("aclmdlSetAIPPInputFormat");
    aclError rc = aipp_args(aippParmsSet, 0, 0, "aclmdlSetAIPPInputFormat");
    if (rc) return rc;
    /* aclAippInputFormat -> the CCE value the parameter tensor holds (GE's inputFormatMap). */
    static const unsigned char cce[15] = {0, 1, 2, 5, 10, 3, 4, 6, 7, 8, 9, 11, 12, 13, 16};
    if ((int)inputFormat < 1 || (int)inputFormat > 14)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetAIPPInputFormat: unsupported inputFormat %d", (int)inputFormat);
    aippParmsSet->data[0] = cce[inputFormat];
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlSetAIPPCscParams(aclmdlAIPP *aippParmsSet, int8_t cscSwitch, int16_t cscMatrixR0C0, int16_t cscMatrixR0C1,
                                        int16_t cscMatrixR0C2, int16_t cscMatrixR1C0, int16_t cscMatrixR1C1, int16_t cscMatrixR1C2,
                                        int16_t cscMatrixR2C0, int16_t cscMatrixR2C1, int16_t cscMatrixR2C2, uint8_t cscOutputBiasR0,
                                        uint8_t cscOutputBiasR1, uint8_t cscOutputBiasR2, uint8_t cscInputBiasR0, uint8_t cscInputBiasR1,
                                        uint8_t cscInputBiasR2)
{
    const char *api = "aclmdlSetAIPPCscParams";
    EMU_ENTER(api);
    aclError rc = aipp_args(aippParmsSet, 0, 0, api);
    if (rc) return rc;
    AIPP_RANGE(api, "cscSwitch", cscSwitch, 0, 1);
    int16_t m[9] = {cscMatrixR0C0, cscMatrixR0C1, cscMatrixR0C2, cscMatrixR1C0, cscMatrixR1C1, cscMatrixR1C2, cscMatrixR2C0, cscMatrixR2C1, cscMatrixR2C2};
    uint8_t bias[6] = {cscOutputBiasR0, cscOutputBiasR1, cscOutputBiasR2, cscInputBiasR0, cscInputBiasR1, cscInputBiasR2};
    if (cscSwitch)
        for (int i = 0; i < 9; i++) AIPP_RANGE(api, "a cscMatrix element", m[i], -32677, 32676);
    unsigned char *d = aippParmsSet->data;
    d[1] = (unsigned char)cscSwitch;
    if (!cscSwitch) return ACL_SUCCESS;   /* the other parameters are ignored (documented) */
    for (int i = 0; i < 9; i++) put16(d + 16 + 2 * i, m[i]);
    memcpy(d + 40, bias, 6);
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlSetAIPPRbuvSwapSwitch(aclmdlAIPP *aippParmsSet, int8_t rbuvSwapSwitch)
{
    EMU_ENTER("aclmdlSetAIPPRbuvSwapSwitch");
    aclError rc = aipp_args(aippParmsSet, 0, 0, "aclmdlSetAIPPRbuvSwapSwitch");
    if (rc) return rc;
    AIPP_RANGE("aclmdlSetAIPPRbuvSwapSwitch", "rbuvSwapSwitch", rbuvSwapSwitch, 0, 1);
    aippParmsSet->data[2] = (unsigned char)rbuvSwapSwitch;
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlSetAIPPAxSwapSwitch(aclmdlAIPP *aippParmsSet, int8_t axSwapSwitch)
{
    EMU_ENTER("aclmdlSetAIPPAxSwapSwitch");
    aclError rc = aipp_args(aippParmsSet, 0, 0, "aclmdlSetAIPPAxSwapSwitch");
    if (rc) return rc;
    AIPP_RANGE("aclmdlSetAIPPAxSwapSwitch", "axSwapSwitch", axSwapSwitch, 0, 1);
    aippParmsSet->data[3] = (unsigned char)axSwapSwitch;
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlSetAIPPSrcImageSize(aclmdlAIPP *aippParmsSet, int32_t srcImageSizeW, int32_t srcImageSizeH)
{
    const char *api = "aclmdlSetAIPPSrcImageSize";
    EMU_ENTER(api);
    aclError rc = aipp_args(aippParmsSet, 0, 0, api);
    if (rc) return rc;
    AIPP_RANGE(api, "srcImageSizeW", srcImageSizeW, 2, 4096);
    AIPP_RANGE(api, "srcImageSizeH", srcImageSizeH, 1, 4096);
    put32(aippParmsSet->data + 8, srcImageSizeW);
    put32(aippParmsSet->data + 12, srcImageSizeH);
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlSetAIPPScfParams(aclmdlAIPP *aippParmsSet, int8_t scfSwitch, int32_t scfInputSizeW, int32_t scfInputSizeH,
                                        int32_t scfOutputSizeW, int32_t scfOutputSizeH, uint64_t batchIndex)
{
    const char *api = "aclmdlSetAIPPScfParams";
    EMU_ENTER(api);
    aclError rc = aipp_args(aippParmsSet, 1, batchIndex, api);
    if (rc) return rc;
    AIPP_RANGE(api, "scfSwitch", scfSwitch, 0, 1);
    if (scfSwitch) {
        AIPP_RANGE(api, "scfInputSizeW", scfInputSizeW, 16, 4096);
        AIPP_RANGE(api, "scfInputSizeH", scfInputSizeH, 16, 4096);
        AIPP_RANGE(api, "scfOutputSizeW", scfOutputSizeW, 16, 1920);
        AIPP_RANGE(api, "scfOutputSizeH", scfOutputSizeH, 16, 4096);
    }
    unsigned char *e = aipp_entry(aippParmsSet, batchIndex);
    e[1] = (unsigned char)scfSwitch;
    if (!scfSwitch) return ACL_SUCCESS;
    put32(e + 24, scfInputSizeW);
    put32(e + 28, scfInputSizeH);
    put32(e + 32, scfOutputSizeW);
    put32(e + 36, scfOutputSizeH);
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlSetAIPPCropParams(aclmdlAIPP *aippParmsSet, int8_t cropSwitch, int32_t cropStartPosW, int32_t cropStartPosH,
                                         int32_t cropSizeW, int32_t cropSizeH, uint64_t batchIndex)
{
    const char *api = "aclmdlSetAIPPCropParams";
    EMU_ENTER(api);
    aclError rc = aipp_args(aippParmsSet, 1, batchIndex, api);
    if (rc) return rc;
    AIPP_RANGE(api, "cropSwitch", cropSwitch, 0, 1);
    if (cropSwitch) {
        AIPP_RANGE(api, "cropStartPosW", cropStartPosW, 0, 4095);
        AIPP_RANGE(api, "cropStartPosH", cropStartPosH, 0, 4095);
        AIPP_RANGE(api, "cropSizeW", cropSizeW, 1, 4096);
        AIPP_RANGE(api, "cropSizeH", cropSizeH, 1, 4096);
    }
    unsigned char *e = aipp_entry(aippParmsSet, batchIndex);
    e[0] = (unsigned char)cropSwitch;
    if (!cropSwitch) return ACL_SUCCESS;
    put32(e + 8, cropStartPosW);
    put32(e + 12, cropStartPosH);
    put32(e + 16, cropSizeW);
    put32(e + 20, cropSizeH);
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlSetAIPPPaddingParams(aclmdlAIPP *aippParmsSet, int8_t paddingSwitch, int32_t paddingSizeTop, int32_t paddingSizeBottom,
                                            int32_t paddingSizeLeft, int32_t paddingSizeRight, uint64_t batchIndex)
{
    const char *api = "aclmdlSetAIPPPaddingParams";
    EMU_ENTER(api);
    aclError rc = aipp_args(aippParmsSet, 1, batchIndex, api);
    if (rc) return rc;
    AIPP_RANGE(api, "paddingSwitch", paddingSwitch, 0, 1);
    int32_t sizes[4] = {paddingSizeTop, paddingSizeBottom, paddingSizeLeft, paddingSizeRight};
    if (paddingSwitch)
        for (int i = 0; i < 4; i++) AIPP_RANGE(api, "a padding size", sizes[i], 0, 32);
    unsigned char *e = aipp_entry(aippParmsSet, batchIndex);
    e[2] = (unsigned char)paddingSwitch;
    if (!paddingSwitch) return ACL_SUCCESS;
    for (int i = 0; i < 4; i++) put32(e + 40 + 4 * i, sizes[i]);
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlSetAIPPDtcPixelMean(aclmdlAIPP *aippParmsSet, int16_t dtcPixelMeanChn0, int16_t dtcPixelMeanChn1, int16_t dtcPixelMeanChn2,
                                           int16_t dtcPixelMeanChn3, uint64_t batchIndex)
{
    const char *api = "aclmdlSetAIPPDtcPixelMean";
    EMU_ENTER(api);
    aclError rc = aipp_args(aippParmsSet, 1, batchIndex, api);
    if (rc) return rc;
    int16_t v[4] = {dtcPixelMeanChn0, dtcPixelMeanChn1, dtcPixelMeanChn2, dtcPixelMeanChn3};
    for (int i = 0; i < 4; i++) AIPP_RANGE(api, "a dtcPixelMean channel", v[i], 0, 255);
    for (int i = 0; i < 4; i++) put16(aipp_entry(aippParmsSet, batchIndex) + 56 + 2 * i, v[i]);
    return ACL_SUCCESS;
}

/* Four float channels in [lo, hi] (NaN refused) stored as binary16 at `off` of entry batchIndex. */
static aclError aipp_halves(aclmdlAIPP *a, const float *v, float lo, float hi, size_t off, uint64_t batchIndex, const char *what, const char *api)
{
    aclError rc = aipp_args(a, 1, batchIndex, api);
    if (rc) return rc;
    for (int i = 0; i < 4; i++)
        if (!(v[i] >= lo && v[i] <= hi))
            return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: %s channel %d is %g, expected [%g, %g]", api, what, i, (double)v[i], (double)lo, (double)hi);
    for (int i = 0; i < 4; i++) {
        uint16_t h = emu_float_to_half(v[i]);
        memcpy(aipp_entry(a, batchIndex) + off + 2 * i, &h, 2);
    }
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlSetAIPPDtcPixelMin(aclmdlAIPP *aippParmsSet, float dtcPixelMinChn0, float dtcPixelMinChn1, float dtcPixelMinChn2,
                                          float dtcPixelMinChn3, uint64_t batchIndex)
{
    EMU_ENTER("aclmdlSetAIPPDtcPixelMin");
    float v[4] = {dtcPixelMinChn0, dtcPixelMinChn1, dtcPixelMinChn2, dtcPixelMinChn3};
    return aipp_halves(aippParmsSet, v, 0.0f, 255.0f, 64, batchIndex, "dtcPixelMin", "aclmdlSetAIPPDtcPixelMin");
}

EMU_API aclError aclmdlSetAIPPPixelVarReci(aclmdlAIPP *aippParmsSet, float dtcPixelVarReciChn0, float dtcPixelVarReciChn1, float dtcPixelVarReciChn2,
                                           float dtcPixelVarReciChn3, uint64_t batchIndex)
{
    EMU_ENTER("aclmdlSetAIPPPixelVarReci");
    float v[4] = {dtcPixelVarReciChn0, dtcPixelVarReciChn1, dtcPixelVarReciChn2, dtcPixelVarReciChn3};
    return aipp_halves(aippParmsSet, v, -65504.0f, 65504.0f, 72, batchIndex, "dtcPixelVarReci", "aclmdlSetAIPPPixelVarReci");
}

/* AIPP output (width, height) of image b (GE's GetAippOutputHW). */
static void aipp_output_hw(const aclmdlAIPP *a, uint64_t b, int64_t *w, int64_t *h)
{
    const unsigned char *e = aipp_entry(a, b);
    *w = get32(a->data + 8);
    *h = get32(a->data + 12);
    if (e[0] == 1) {
        *w = get32(e + 16);
        *h = get32(e + 20);
    }
    if (e[1] == 1) {
        *w = get32(e + 32);
        *h = get32(e + 36);
    }
    if (e[2] == 1) {
        *w += get32(e + 48) + get32(e + 52);
        *h += get32(e + 40) + get32(e + 44);
    }
}

/* aclmdlSetInputAIPP's checks of a parameter set against the model's dynamic AIPP input k. */
static aclError check_aipp_set(const emu_model_def *def, size_t k, const aclmdlAIPP *a, const char *api)
{
    const emu_tensor_def *t = &def->inputs[k];
    int nchw = t->format == ACL_FORMAT_NCHW;
    int64_t nc = nchw ? t->dims[1] : t->dims[3], oh = nchw ? t->dims[2] : t->dims[1], ow = nchw ? t->dims[3] : t->dims[2];
    unsigned cce = a->data[0];
    int64_t sw = get32(a->data + 8), sh = get32(a->data + 12);
    /* bytes per image (GE's GetSrcImageSize), by CCE format */
    uint64_t px = (uint64_t)(sw > 0 ? sw : 0) * (uint64_t)(sh > 0 ? sh : 0), per = 0;
    switch (cce) {
    case 1: per = px * 3 / 2; break;
    case 2: case 6: case 9: per = px * 4; break;
    case 5: per = px * 3; break;
    case 10: per = px; break;
    case 7: case 8: case 11: case 12: case 13: per = px * 2; break;
    case 16: per = px * 4; break;
    default: break;
    }
    if (per * a->batch > (uint64_t)def->aipp[k].max_src_image_size)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: the dynamic aipp size[%llu] is bigger than max_src_image_size[%lld]", api,
                        (unsigned long long)(per * a->batch), (long long)def->aipp[k].max_src_image_size);
    int64_t w0, h0;
    aipp_output_hw(a, 0, &w0, &h0);
    if ((int64_t)a->batch != t->dims[0] || w0 != ow || h0 != oh)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: aipp output shape set by ACL must be equal to aipp output shape in the model: batch %llu, "
                        "%lldx%lld (width x height); the model has batch %lld, %lldx%lld", api, (unsigned long long)a->batch, (long long)w0,
                        (long long)h0, (long long)t->dims[0], (long long)ow, (long long)oh);
    if (cce < 1) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: inputFormat must be set (aclmdlSetAIPPInputFormat)", api);
    if (cce != 1 && cce != 2 && cce != 5 && cce != 10)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: dynamic AIPP takes YUV420SP_U8, XRGB8888_U8, RGB888_U8 or YUV400_U8", api);
    if (cce == 2) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: the emulator does not run XRGB8888_U8 AIPP (YUV420SP_U8, RGB888_U8 and YUV400_U8 it does)", api);
    if ((cce == 10) != (nc == 1))
        return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: the input format gives %d channel(s) but the model's AIPP output has %lld", api, cce == 10 ? 1 : 3,
                        (long long)nc);
    if (cce == 10 && a->data[1] == 1) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: YUV400 or raw not support csc switch", api);
    if (sw == 0 || sh == 0) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: srcImageSizeW and srcImageSizeH must be set (aclmdlSetAIPPSrcImageSize)", api);
    if (cce == 1 && (sw % 2 || sh % 2))
        return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: srcImageSizeH[%lld] and srcImageSizeW[%lld] must be even for YUV420SP_U8", api, (long long)sh,
                        (long long)sw);
    for (uint64_t b = 0; b < a->batch; b++) {
        const unsigned char *e = aipp_entry(a, b);
        if (e[1] == 1) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: batch %llu: dynamic AIPP does not support scf (resize)", api, (unsigned long long)b);
        if (e[0] == 1) {
            int64_t x = get32(e + 8), y = get32(e + 12), cw = get32(e + 16), ch = get32(e + 20);
            if (x + cw > sw || y + ch > sh)
                return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: batch %llu: the crop window (%lld,%lld size %lldx%lld) does not fit the %lldx%lld source image", api,
                                (unsigned long long)b, (long long)x, (long long)y, (long long)cw, (long long)ch, (long long)sw, (long long)sh);
            if (cce == 1 && (x % 2 || y % 2))
                return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: batch %llu: cropStartPosW[%lld], cropStartPosH[%lld] must be even for YUV420SP_U8", api,
                                (unsigned long long)b, (long long)x, (long long)y);
        }
        int64_t w, h;
        aipp_output_hw(a, b, &w, &h);
        if (w != w0 || h != h0)
            return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: the %llu batch output size must be equal to the first batch aipp output size (%lldx%lld vs %lldx%lld)",
                            api, (unsigned long long)(b + 1), (long long)w, (long long)h, (long long)w0, (long long)h0);
    }
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlSetInputAIPP(uint32_t modelId, aclmdlDataset *dataset, size_t index, const aclmdlAIPP *aippParmsSet)
{
    const char *api = "aclmdlSetInputAIPP";
    EMU_ENTER(api);
    aclError rc = emu_check_handle(dataset, EMU_H_DATASET, api);
    if (!rc) rc = emu_check_handle(aippParmsSet, EMU_H_AIPP, api);
    if (rc) return rc;
    emu_model *m;
    rc = lock_model(modelId, &m, api);
    if (rc) return rc;
    const emu_model_def *def = &m->def;
    size_t n_in = def->num_inputs + (m->has_dyn ? 1 : 0) + (m->aipp_node >= 0 ? 1 : 0);
    int k = emu_aipp_dynamic_input(def);
    if (index >= n_in) rc = emu_fail(ACL_ERROR_INVALID_PARAM, "%s: index[%zu] should be smaller than %zu", api, index, n_in);
    else if (m->aipp_node < 0) rc = emu_fail(ACL_ERROR_INVALID_PARAM, "%s: model %u has no dynamic AIPP input ('%s')", api, modelId, ACL_DYNAMIC_AIPP_NAME);
    else if (index != (size_t)m->aipp_node)
        rc = emu_fail(ACL_ERROR_INVALID_PARAM, "%s: index[%zu] entered by the user is not dynamic aipp index[%d] ('%s')", api, index, m->aipp_node,
                      ACL_DYNAMIC_AIPP_NAME);
    else rc = check_aipp_set(def, (size_t)k, aippParmsSet, api);
    /* The parameters go to this dataset's buffer (not model-wide, unlike the batch size): other
     * executions in flight do not matter, only that this buffer is not in use. */
    pthread_mutex_unlock(&model_mu);
    if (rc) return rc;
    aclDataBuffer *buf = index < dataset->n ? dataset->bufs[index] : NULL;
    void *addr = buf ? aclGetDataBufferAddr(buf) : NULL;
    if (!buf) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: failed to get data buffer by index[%zu]", api, index);
    if (!addr) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: failed to get addr by index[%zu]", api, index);
    size_t size = aclGetDataBufferSizeV2(buf), need = emu_aipp_data_size(aippParmsSet->batch);
    if (size < need)
        return emu_fail(ACL_ERROR_GE_DYNAMIC_INPUT_LENGTH_INVALID, "%s: input dynamic aipp param len [%zu] is larger than aipp_data size [%zu]", api, need,
                        size);
    return aclrtMemcpy(addr, size, aippParmsSet->data, need, ACL_MEMCPY_HOST_TO_DEVICE);
}

EMU_API aclError aclmdlSetAIPPByInputIndex(uint32_t modelId, aclmdlDataset *dataset, size_t index, const aclmdlAIPP *aippParmsSet)
{
    const char *api = "aclmdlSetAIPPByInputIndex";
    EMU_ENTER(api);
    aclError rc = emu_check_handle(aippParmsSet, EMU_H_AIPP, api);
    if (!rc) rc = emu_check_handle(dataset, EMU_H_DATASET, api);
    if (rc) return rc;
    if (index >= dataset->n) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: input param is invalid, index[%zu] (the dataset holds %zu buffers)", api, index, dataset->n);
    aclmdlInputAippType type;
    size_t attached;
    rc = aclmdlGetAippType(modelId, index, &type, &attached);
    if (rc) return rc;
    if (type != ACL_DATA_WITH_DYNAMIC_AIPP) return emu_fail(ACL_ERROR_FAILURE, "%s: input %zu has no dynamic aipp linked, modelId[%u]", api, index, modelId);
    return aclmdlSetInputAIPP(modelId, dataset, attached, aippParmsSet);
}

EMU_API aclError aclmdlGetFirstAippInfo(uint32_t modelId, size_t index, aclAippInfo *aippInfo)
{
    const char *api = "aclmdlGetFirstAippInfo";
    EMU_ENTER(api);
    if (!aippInfo) return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: aippInfo is NULL", api);
    emu_model *m;
    aclError rc = lock_model(modelId, &m, api);
    if (rc) return rc;
    const emu_model_def *def = &m->def;
    size_t n_in = def->num_inputs + (m->has_dyn ? 1 : 0) + (m->aipp_node >= 0 ? 1 : 0);
    if (index >= n_in) {
        pthread_mutex_unlock(&model_mu);
        return emu_fail(ACL_ERROR_INVALID_PARAM, "%s: index[%zu] should be smaller than %zu", api, index, n_in);
    }
    if (index >= def->num_inputs || def->aipp[index].mode != EMU_AIPP_STATIC) {
        pthread_mutex_unlock(&model_mu);
        return emu_fail(ACL_ERROR_GE_AIPP_NOT_EXIST, "%s: the tensor index[%zu] is not configured with static aipp, modelId[%u]", api, index, modelId);
    }
    const emu_aipp_def *a = &def->aipp[index];
    const emu_tensor_def *t = &def->inputs[index];
    emu_tensor_def v1, raw;
    emu_input_visible(def, index, 1, &v1);
    emu_input_visible(def, index, 0, &raw);
    memset(aippInfo, 0, sizeof *aippInfo);
    aippInfo->inputFormat = (aclAippInputFormat)a->input_format;
    aippInfo->srcImageSizeW = (int32_t)a->src_w;
    aippInfo->srcImageSizeH = (int32_t)a->src_h;
    aippInfo->cropSwitch = (int8_t)a->crop;
    aippInfo->loadStartPosW = (int32_t)a->crop_x;
    aippInfo->loadStartPosH = (int32_t)a->crop_y;
    aippInfo->cropSizeW = (int32_t)a->crop_w;
    aippInfo->cropSizeH = (int32_t)a->crop_h;
    aippInfo->paddingSwitch = (int8_t)a->padding;
    aippInfo->leftPaddingSize = (int32_t)a->pad_left;
    aippInfo->rightPaddingSize = (int32_t)a->pad_right;
    aippInfo->topPaddingSize = (int32_t)a->pad_top;
    aippInfo->bottomPaddingSize = (int32_t)a->pad_bottom;
    aippInfo->cscSwitch = (int8_t)a->csc;
    aippInfo->rbuvSwapSwitch = (int8_t)a->rbuv_swap;
    aippInfo->axSwapSwitch = (int8_t)a->ax_swap;
    int32_t *mat = &aippInfo->matrixR0C0;   /* nine consecutive int32_t, then the six biases */
    for (int i = 0; i < 9; i++) mat[i] = (int32_t)a->matrix[i];
    aippInfo->outputBias0 = (int32_t)a->output_bias[0];
    aippInfo->outputBias1 = (int32_t)a->output_bias[1];
    aippInfo->outputBias2 = (int32_t)a->output_bias[2];
    aippInfo->inputBias0 = (int32_t)a->input_bias[0];
    aippInfo->inputBias1 = (int32_t)a->input_bias[1];
    aippInfo->inputBias2 = (int32_t)a->input_bias[2];
    int32_t *mean = &aippInfo->meanChn0;
    float *mins = &aippInfo->minChn0, *vars = &aippInfo->varReciChn0;
    for (int c = 0; c < 4; c++) {
        mean[c] = (int32_t)a->mean[c];
        mins[c] = (float)a->min[c];
        vars[c] = (float)a->var_reci[c];
    }
    aippInfo->srcFormat = t->format;
    aippInfo->srcDatatype = t->dtype;
    aippInfo->srcDimNum = t->ndims;
    aippInfo->shapeCount = 1;
    aclAippDims *o = &aippInfo->outDims[0];
    snprintf(o->srcDims.name, sizeof o->srcDims.name, "%s", t->name);
    o->srcDims.dimCount = v1.ndims;
    memcpy(o->srcDims.dims, v1.dims, v1.ndims * sizeof v1.dims[0]);
    o->srcSize = emu_tensor_bytes(&raw, (uint64_t)t->dims[0]);
    snprintf(o->aippOutdims.name, sizeof o->aippOutdims.name, "%s", t->name);
    o->aippOutdims.dimCount = t->ndims;
    memcpy(o->aippOutdims.dims, t->dims, t->ndims * sizeof t->dims[0]);
    o->aippOutSize = emu_tensor_bytes(t, (uint64_t)t->dims[0]);
    pthread_mutex_unlock(&model_mu);
    return ACL_SUCCESS;
}
