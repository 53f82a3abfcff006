/* Data dump and the profiler timeline (docs/emulator.md, "Dump and profiling").
 *
 * Dump: the "dump" section of aclInit's acl.json, or of the file given to aclmdlSetDump between
 * aclmdlInitDump and aclmdlFinalizeDump. A model whose name is in dump_list, loaded while a dump
 * configuration is in force, writes the tensors of each of its executions (dump_mode: input,
 * output (the default) or all) as NumPy files under
 *   {dump_path}/{time}/{device_id}/{model_name}/{model_id}/{data_index}/
 *     {op_type}.{op_name}.{task_id}.{stream_id}.{timestamp}.{input|output}.{index}.npy
 * CANN's layout down to the file name; CANN writes one binary file per operator, the emulator
 * (whose model is one operator) one .npy per tensor.
 *
 * Profiler: the "profiler" section ({"switch": "on", "output": DIR}) writes every stream task
 * (copies, executions) with its modelled start and end to DIR/fxemu_timeline_{pid}.json, Chrome
 * trace event JSON on the same clock as aclrtEventGetTimestamp. */
#include "emu.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { MODE_INPUT = 1, MODE_OUTPUT = 2, MODE_ALL = 3 };

typedef struct {
    int on;
    int from_init;               /* configured by aclInit: the aclmdl*Dump calls are refused */
    char path[1024];
    char time_dir[32];
    int mode;
    char **names;
    size_t n_names;
} dump_config;

static pthread_mutex_t dump_mu = PTHREAD_MUTEX_INITIALIZER;
static dump_config dump;          /* guarded by dump_mu */
static int dump_initialized;      /* aclmdlInitDump was called; guarded by dump_mu */

static void dump_clear(dump_config *d)
{
    for (size_t i = 0; i < d->n_names; i++) free(d->names[i]);
    free(d->names);
    memset(d, 0, sizeof *d);
}

static const char *str_member(const emu_json *o, const char *key, int *bad)
{
    const emu_json *v = emu_json_get(o, key);
    if (!v) return NULL;
    if (v->kind != EMU_JSON_STRING) {
        *bad = 1;
        return NULL;
    }
    return v->string;
}

/* Parse and check a "dump" section as CANN does (dump_path and dump_list required; dump_path an
 * existing, writable folder; dump_mode input/output/all; dump_op_switch on/off; a dump_list
 * without a model_name and dump_op_switch off is no configuration). *type_error: a value of the
 * wrong JSON type (CANN's JSON library throws, which even aclInit reports), as opposed to a
 * configuration that is well-formed but invalid (which CANN's aclInit logs and ignores). */
static aclError dump_parse(const emu_json *sec, dump_config *out, const char *api, int *type_error)
{
    memset(out, 0, sizeof *out);
    *type_error = 1;
    if (sec->kind != EMU_JSON_OBJECT) return emu_fail(ACL_ERROR_INVALID_DUMP_CONFIG, "%s: the \"dump\" section must be an object", api);
    int bad = 0;
    const char *path = str_member(sec, "dump_path", &bad);
    const emu_json *list = emu_json_get(sec, "dump_list");
    const char *mode = str_member(sec, "dump_mode", &bad);
    const char *sw = str_member(sec, "dump_op_switch", &bad);
    if (bad) return emu_fail(ACL_ERROR_INVALID_DUMP_CONFIG, "%s: dump_path, dump_mode and dump_op_switch must be strings", api);
    if (list && list->kind != EMU_JSON_ARRAY) return emu_fail(ACL_ERROR_INVALID_DUMP_CONFIG, "%s: dump_list must be an array", api);
    for (const emu_json *e = list ? list->child : NULL; e; e = e->next) {
        if (e->kind != EMU_JSON_OBJECT) return emu_fail(ACL_ERROR_INVALID_DUMP_CONFIG, "%s: each dump_list entry must be an object", api);
        str_member(e, "model_name", &bad);
        if (bad) return emu_fail(ACL_ERROR_INVALID_DUMP_CONFIG, "%s: model_name must be a string", api);
    }
    *type_error = 0;
    if (!path || !list) return emu_fail(ACL_ERROR_INVALID_DUMP_CONFIG, "%s: the dump section needs dump_path and dump_list", api);
    if (!*path) return emu_fail(ACL_ERROR_INVALID_DUMP_CONFIG, "%s: dump_path is empty", api);
    if (strlen(path) >= sizeof out->path) return emu_fail(ACL_ERROR_INVALID_DUMP_CONFIG, "%s: dump_path is too long", api);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode) || access(path, R_OK | W_OK | X_OK) != 0)
        return emu_fail(ACL_ERROR_INVALID_DUMP_CONFIG, "%s: dump_path '%s' is not an existing folder this process can write", api, path);
    if (!mode) out->mode = MODE_OUTPUT;
    else if (!strcmp(mode, "input")) out->mode = MODE_INPUT;
    else if (!strcmp(mode, "output")) out->mode = MODE_OUTPUT;
    else if (!strcmp(mode, "all")) out->mode = MODE_ALL;
    else return emu_fail(ACL_ERROR_INVALID_DUMP_CONFIG, "%s: dump_mode '%s' is not input, output or all", api, mode);
    if (sw && strcmp(sw, "on") && strcmp(sw, "off"))
        return emu_fail(ACL_ERROR_INVALID_DUMP_CONFIG, "%s: dump_op_switch '%s' is not on or off", api, sw);
    size_t n = 0;
    for (const emu_json *e = list->child; e; e = e->next) n++;
    out->names = calloc(n ? n : 1, sizeof *out->names);
    for (const emu_json *e = list->child; e; e = e->next) {
        const char *name = str_member(e, "model_name", &bad);
        if (name && *name) out->names[out->n_names++] = strdup(name);   /* entries without one are skipped */
    }
    if (!out->n_names && !(sw && !strcmp(sw, "on"))) {
        dump_clear(out);
        return emu_fail(ACL_ERROR_INVALID_DUMP_CONFIG, "%s: dump_list names no model (and dump_op_switch is off): nothing to dump", api);
    }
    snprintf(out->path, sizeof out->path, "%s", path);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(out->time_dir, sizeof out->time_dir, "%Y%m%d%H%M%S", &tm);
    out->on = 1;
    return ACL_SUCCESS;
}

/* ================================================================ profiler */

static pthread_mutex_t prof_mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *prof_file;           /* guarded by prof_mu */
static long prof_events;

static aclError profiler_parse(const emu_json *sec, char *dir, size_t len, int *on)
{
    *on = 0;
    if (sec->kind != EMU_JSON_OBJECT) return emu_fail(ACL_ERROR_INVALID_PROFILING_CONFIG, "aclInit: the \"profiler\" section must be an object");
    int bad = 0;
    const char *sw = str_member(sec, "switch", &bad);
    const char *output = str_member(sec, "output", &bad);
    if (bad) return emu_fail(ACL_ERROR_INVALID_PROFILING_CONFIG, "aclInit: profiler switch and output must be strings");
    if (!sw || !strcmp(sw, "off")) return ACL_SUCCESS;
    if (strcmp(sw, "on")) return emu_fail(ACL_ERROR_INVALID_PROFILING_CONFIG, "aclInit: profiler switch '%s' is not on or off", sw);
    if (!output || !*output) output = ".";
    struct stat st;
    if (stat(output, &st) != 0 || !S_ISDIR(st.st_mode) || access(output, W_OK | X_OK) != 0)
        return emu_fail(ACL_ERROR_INVALID_PROFILING_CONFIG, "aclInit: profiler output '%s' is not an existing folder this process can write", output);
    snprintf(dir, len, "%s", output);
    *on = 1;
    return ACL_SUCCESS;
}

static void profiler_close_locked(void)
{
    if (!prof_file) return;
    fputs("\n]\n", prof_file);
    fclose(prof_file);
    prof_file = NULL;
}

static void profiler_open(const char *dir)
{
    char name[1200];
    snprintf(name, sizeof name, "%s/fxemu_timeline_%ld.json", dir, (long)getpid());
    pthread_mutex_lock(&prof_mu);
    profiler_close_locked();
    prof_file = fopen(name, "w");
    prof_events = 0;
    if (prof_file) {
        fprintf(prof_file, "[\n{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":0,\"args\":{\"name\":\"fastexec ACL emulator (device clock, us)\"}}");
    } else {
        fprintf(stderr, "fastexec emulator: profiler: cannot write %s: %s\n", name, strerror(errno));
    }
    pthread_mutex_unlock(&prof_mu);
}

__attribute__((destructor)) static void profiler_at_exit(void)
{
    pthread_mutex_lock(&prof_mu);
    profiler_close_locked();
    pthread_mutex_unlock(&prof_mu);
}

int emu_profiler_on(void) { return prof_file != NULL; }

void emu_profiler_task(const emu_stream *s, const char *name, const char *cat, uint64_t start_ns, uint64_t end_ns)
{
    pthread_mutex_lock(&prof_mu);
    if (prof_file) {
        fprintf(prof_file, ",\n{\"ph\":\"X\",\"name\":\"%s\",\"cat\":\"%s\",\"pid\":%d,\"tid\":%u,\"ts\":%.3f,\"dur\":%.3f}", name, cat,
                s->dev ? s->dev->id : 0, s->id, start_ns / 1e3, (end_ns - start_ns) / 1e3);
        prof_events++;
    }
    pthread_mutex_unlock(&prof_mu);
}

/* ================================================================ aclInit's sections */

aclError emu_dump_profiler_from_config(const emu_json *config)
{
    const emu_json *dsec = emu_json_get(config, "dump");
    const emu_json *psec = emu_json_get(config, "profiler");
    dump_config d = {0};
    char dir[1024] = "";
    int prof = 0, type_error;
    aclError rc;
    if (dsec && (rc = dump_parse(dsec, &d, "aclInit", &type_error))) {
        if (type_error) return rc;
        /* well-formed but invalid: CANN's aclInit logs it and runs without the dump */
        fprintf(stderr, "fastexec emulator: aclInit: the dump section is ignored: %s\n", aclGetRecentErrMsg());
        memset(&d, 0, sizeof d);
    }
    if (psec && (rc = profiler_parse(psec, dir, sizeof dir, &prof))) {
        dump_clear(&d);
        return rc;
    }
    pthread_mutex_lock(&dump_mu);
    dump_clear(&dump);
    if (d.on) {
        dump = d;
        dump.from_init = 1;
    }
    pthread_mutex_unlock(&dump_mu);
    if (prof) profiler_open(dir);
    return ACL_SUCCESS;
}

void emu_dump_profiler_finalize(void)
{
    pthread_mutex_lock(&dump_mu);
    dump_clear(&dump);
    dump_initialized = 0;
    pthread_mutex_unlock(&dump_mu);
    pthread_mutex_lock(&prof_mu);
    profiler_close_locked();
    pthread_mutex_unlock(&prof_mu);
}

/* ================================================================ the dump API */

static aclError dump_api_check(const char *api)
{
    if (!emu_initialized) return emu_fail(ACL_ERROR_UNINITIALIZE, "%s: aclInit must be called first", api);
    if (dump.from_init) return emu_fail(ACL_ERROR_DUMP_ALREADY_RUN, "%s: aclInit's configuration already switched the dump on", api);
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlInitDump(void)
{
    EMU_ENTER("aclmdlInitDump");
    pthread_mutex_lock(&dump_mu);
    aclError rc = dump_api_check("aclmdlInitDump");
    if (!rc && dump_initialized) rc = emu_fail(ACL_ERROR_REPEAT_INITIALIZE, "aclmdlInitDump: already called (aclmdlFinalizeDump first)");
    if (!rc) dump_initialized = 1;
    pthread_mutex_unlock(&dump_mu);
    return rc;
}

EMU_API aclError aclmdlSetDump(const char *dumpCfgPath)
{
    EMU_ENTER("aclmdlSetDump");
    pthread_mutex_lock(&dump_mu);
    aclError rc = dump_api_check("aclmdlSetDump");
    if (!rc && !dump_initialized) rc = emu_fail(ACL_ERROR_DUMP_NOT_RUN, "aclmdlSetDump: aclmdlInitDump must be called first");
    pthread_mutex_unlock(&dump_mu);
    if (rc) return rc;
    if (!dumpCfgPath) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclmdlSetDump: dumpCfgPath is NULL");
    emu_json *v;
    rc = emu_json_read_file(dumpCfgPath, &v, "aclmdlSetDump");
    if (rc) return rc;
    const emu_json *sec = emu_json_get(v, "dump");
    dump_config d;
    int type_error;
    if (!sec) rc = emu_fail(ACL_ERROR_INVALID_DUMP_CONFIG, "aclmdlSetDump: '%s' has no \"dump\" section", dumpCfgPath);
    else rc = dump_parse(sec, &d, "aclmdlSetDump", &type_error);
    emu_json_free(v);
    if (rc) return rc;
    pthread_mutex_lock(&dump_mu);
    dump_clear(&dump);
    dump = d;
    pthread_mutex_unlock(&dump_mu);
    return ACL_SUCCESS;
}

EMU_API aclError aclmdlFinalizeDump(void)
{
    EMU_ENTER("aclmdlFinalizeDump");
    pthread_mutex_lock(&dump_mu);
    aclError rc = dump_api_check("aclmdlFinalizeDump");
    if (!rc && !dump_initialized) rc = emu_fail(ACL_ERROR_DUMP_NOT_RUN, "aclmdlFinalizeDump: aclmdlInitDump must be called first");
    if (!rc) {
        dump_clear(&dump);
        dump_initialized = 0;
    }
    pthread_mutex_unlock(&dump_mu);
    return rc;
}

/* ================================================================ dumping a model's executions */

static void sanitize(char *dst, size_t len, const char *src, int strict)
{
    size_t i = 0;
    for (; src[i] && i + 1 < len; i++) {
        char c = src[i];
        int ok = strict ? ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')
                        : !(c == '.' || c == '/' || c == '\\' || c == ' ');
        dst[i] = ok ? c : '_';
    }
    dst[i] = 0;
}

static int mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int rc = mkdir(path, 0755);
        *p = '/';
        if (rc && errno != EEXIST) return -1;
    }
    return mkdir(path, 0755) && errno != EEXIST ? -1 : 0;
}

char *emu_dump_dir_for(const char *model_name, const char *file_stem, int device_id, uint32_t model_id, int *mode)
{
    char *dir = NULL;
    pthread_mutex_lock(&dump_mu);
    if (dump.on) {
        int hit = 0;
        for (size_t i = 0; i < dump.n_names && !hit; i++)
            hit = !strcmp(dump.names[i], model_name) || (file_stem && !strcmp(dump.names[i], file_stem));
        if (hit) {
            char clean[ACL_MAX_TENSOR_NAME_LEN];
            sanitize(clean, sizeof clean, model_name, 0);
            size_t n = strlen(dump.path) + strlen(clean) + 96;
            dir = malloc(n);
            snprintf(dir, n, "%s/%s/%d/%s/%u", dump.path, dump.time_dir, device_id, clean, model_id);
            *mode = dump.mode;
        }
    }
    pthread_mutex_unlock(&dump_mu);
    return dir;
}

static const char *npy_descr(aclDataType t)
{
    switch (t) {
    case ACL_FLOAT: return "<f4";
    case ACL_FLOAT16: return "<f2";
    case ACL_DOUBLE: return "<f8";
    case ACL_INT8: return "|i1";
    case ACL_UINT8: return "|u1";
    case ACL_INT16: return "<i2";
    case ACL_UINT16: return "<u2";
    case ACL_INT32: return "<i4";
    case ACL_UINT32: return "<u4";
    case ACL_INT64: return "<i8";
    case ACL_UINT64: return "<u8";
    case ACL_BOOL: return "|b1";
    default: return NULL;
    }
}

/* One tensor as a NumPy .npy (format 1.0); a type NumPy lacks is written as its bytes (uint8). */
static int write_npy(const char *path, const emu_tensor_def *t, const int64_t *dims, const void *data)
{
    size_t nbytes = t->elem_size;
    for (size_t i = 0; i < t->ndims; i++) nbytes *= (size_t)dims[i];
    const char *descr = npy_descr(t->dtype);
    char shape[1024];
    size_t off = 0;
    if (descr) {
        off += (size_t)snprintf(shape, sizeof shape, "(");
        for (size_t i = 0; i < t->ndims && off < sizeof shape; i++)
            off += (size_t)snprintf(shape + off, sizeof shape - off, "%s%lld", i ? ", " : "", (long long)dims[i]);
        if (off < sizeof shape) snprintf(shape + off, sizeof shape - off, t->ndims == 1 ? ",)" : ")");   /* (8,) or (8, 3, 4) */
    } else {
        descr = "|u1";
        snprintf(shape, sizeof shape, "(%zu,)", nbytes);
    }
    char header[1200];
    int len = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    size_t total = 10 + (size_t)len + 1;
    size_t pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned short hlen = (unsigned short)(len + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    unsigned char le[2] = {(unsigned char)(hlen & 0xFF), (unsigned char)(hlen >> 8)};
    fwrite(le, 1, 2, f);
    fwrite(header, 1, (size_t)len, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(data, 1, nbytes, f);
    return fclose(f);
}

void emu_dump_tensors(const char *base, uint64_t index, int mode, int phase_outputs, const emu_model_def *def,
                      const emu_dyn_values *vals, void *const *tensors, uint32_t stream_id, uint64_t task_id)
{
    if (!(mode & (phase_outputs ? MODE_OUTPUT : MODE_INPUT))) return;
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/%llu", base, (unsigned long long)index);
    if (mkdirs(dir)) {
        fprintf(stderr, "fastexec emulator: dump: cannot create %s: %s\n", dir, strerror(errno));
        return;
    }
    char op[ACL_MAX_TENSOR_NAME_LEN];
    sanitize(op, sizeof op, def->name, 1);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long stamp = (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull;
    size_t n = phase_outputs ? def->num_outputs : def->num_inputs;
    for (size_t i = 0; i < n; i++) {
        char path[2600];
        snprintf(path, sizeof path, "%s/Model.%s.%llu.%u.%llu.%s.%zu.npy", dir, op, (unsigned long long)task_id, stream_id, stamp,
                 phase_outputs ? "output" : "input", i);
        /* The tensor as it was given or made: its real dims; an AIPP input's raw image. */
        emu_tensor_def shown;
        const emu_tensor_def *t = &shown;
        int64_t dims[ACL_MAX_DIM_CNT];
        if (phase_outputs) {
            t = &def->outputs[i];
            emu_shape_dims(def, vals, 1, i, dims);
        } else if (def->aipp[i].mode != EMU_AIPP_NONE) {
            emu_input_visible(def, i, 0, &shown);
            memcpy(dims, shown.dims, shown.ndims * sizeof dims[0]);
        } else {
            t = &def->inputs[i];
            emu_shape_dims(def, vals, 0, i, dims);
        }
        if (write_npy(path, t, dims, tensors[i])) fprintf(stderr, "fastexec emulator: dump: cannot write %s\n", path);
    }
}
