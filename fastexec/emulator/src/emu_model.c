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
    int exec_mode;               /* 0 none yet, 1 synchronous, 2 stream-ordered; guarded by model_mu */
    int inflight;                /* queued or running executions */
    emu_stream *inflight_stream; /* stream of the queued executions */
    int unloading;
    uint64_t cur_batch;          /* last aclmdlSetDynamicBatchSize gear; 0 = none set */
    int cur_gear;                /* dynamic HW / dims: last gear set (index + 1); 0 = none set */
    uint32_t priority;           /* aclmdlSetAttribute(ACL_MDL_ATTR_PRIORITY_INT32) */
    emu_alloc *user_mem[2];      /* aclmdlLoad*WithMem work / weight memory, held until unload */
};

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
    pthread_mutex_lock(&model_mu);
    models = realloc(models, (n_models + 1) * sizeof *models);
    models[n_models++] = m;
    m->id = n_models;
    pthread_mutex_unlock(&model_mu);
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
    aclmdlInputAippType aipp;   /* inputs: ACL_DATA_WITHOUT_AIPP (0) for every model the format has today */
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
    d->n_in = def->num_inputs + (has_dyn ? 1 : 0);
    d->n_out = def->num_outputs;
    for (size_t i = 0; i < def->num_inputs; i++) fill_io(&d->in[i], def, 0, i);
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

static aclError get_dims(const aclmdlDesc *d, int output, size_t index, aclmdlIODims *dims, const char *api)
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
    emu_alloc *holds[2 * EMU_MAX_IO + 2];
    int n_holds;
} exec_args;

static aclError check_buffer(const aclmdlDataset *ds, size_t i, size_t need, int output, const emu_tensor_def *t, void **addr, exec_args *a,
                             int exact, const char *api)
{
    const char *side = output ? "output" : "input";
    aclDataBuffer *b = ds->bufs[i];
    if (!emu_handle_live(b, EMU_H_DATABUFFER))
        return emu_finding(FXEMU_FINDING_DESTROYED_HANDLE, FXEMU_ERR_DESTROYED_HANDLE, "%s: %s %zu ('%s') is a destroyed data buffer", api, side, i,
                           t ? t->name : ACL_DYNAMIC_TENSOR_NAME);
    void *p = aclGetDataBufferAddr(b);
    size_t size = aclGetDataBufferSizeV2(b);
    const char *name = t ? t->name : ACL_DYNAMIC_TENSOR_NAME;
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
    size_t need_in = def->num_inputs + (m->has_dyn ? 1 : 0);
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
    for (size_t i = 0; i < def->num_inputs && !rc; i++)
        rc = check_buffer(input, i, emu_shape_bytes(def, &a->vals, 0, i), 0, &def->inputs[i], &a->in[i], a, exact, api);
    void *dyn_addr;
    if (!rc && m->has_dyn) rc = check_buffer(input, def->num_inputs, 4, 0, NULL, &dyn_addr, a, 0, api);
    for (size_t i = 0; i < def->num_outputs && !rc; i++)
        rc = check_buffer(output, i, emu_shape_bytes(def, &a->vals, 1, i), 1, &def->outputs[i], &a->out[i], a, exact, api);
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

void emu_exec_task_run(emu_stream *s, emu_task *t)
{
    (void)s;
    emu_model *m = t->u.exec.model;
    emu_kernel_run_values(&m->def, &t->u.exec.vals, (const void *const *)t->u.exec.in, t->u.exec.out);
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
    emu_kernel_run_values(&m->def, &a.vals, (const void *const *)a.in, a.out);
    emu_engine_end(&slot, 0);
    pthread_mutex_lock(&model_mu);
    m->inflight--;
    pthread_cond_broadcast(&model_cv);
    pthread_mutex_unlock(&model_mu);
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
    /* Same as aclmdlGetInputDims for the emulator's models (no AIPP changes the input shape). */
    return get_dims(modelDesc, 0, index, dims, "aclmdlGetInputDimsV2");
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
    free(d->dims_gears);
    free(d);
    if (index >= n_in) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetAippType: index %zu is out of range (the model has %zu inputs)", index, n_in);
    *type = aipp;   /* ACL_DATA_WITHOUT_AIPP for every model of the current format */
    *dynamicAttachedDataIndex = ACL_INVALID_NODE_INDEX;   /* set for ACL_DATA_WITH_DYNAMIC_AIPP inputs only */
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
