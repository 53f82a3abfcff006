/* Test extension for the C API's error paths: each probe_* call returns (status, message). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <sched.h>

#include "fastexec/fastexec.h"

static const fastexec_api *fx;

static PyObject *result(int status)
{
    return Py_BuildValue("(is)", status, fx->last_error());
}

/* probe(executor, what) -> (status, message) for one misuse named by `what`. */
static PyObject *probe(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *executor, *py_inputs = Py_None;
    const char *what;
    if (!PyArg_ParseTuple(args, "Os|O", &executor, &what, &py_inputs)) return NULL;
    fastexec_executor *ex = NULL;
    int st = FASTEXEC_OK;
    int64_t ticket = 0;
    uint64_t u = 0;
    size_t n = 0;
    fastexec_tensor_info info;
    if (strcmp(what, "from_object_not_executor") == 0) return result(fx->from_object(Py_None, &ex));
    if (strcmp(what, "null_handle") == 0) return result(fx->submit(NULL, NULL, 1, &ticket));
    if (strcmp(what, "open_missing_model") == 0) return result(fx->open("/nonexistent/model.om", 0, 0, 1, &ex));
    if (strcmp(what, "open_and_run_one") == 0) {   /* open(path), one batch of zeros, close */
        const char *path = PyUnicode_AsUTF8(py_inputs);
        if (!path) return NULL;
        st = fx->open(path, 0, 0, 1, &ex);
        if (st != FASTEXEC_OK) return result(st);
        static char zeros_in[1 << 20];
        const void *in[64];
        fx->num_tensors(ex, 0, &n);
        for (size_t i = 0; i < n; i++) in[i] = zeros_in;
        const void *const *out;
        if ((st = fx->submit(ex, in, 1, &ticket)) == FASTEXEC_OK && (st = fx->wait(ex, ticket, &out, &u)) == FASTEXEC_OK)
            st = fx->release(ex, ticket);
        int closed = fx->close(ex);
        return Py_BuildValue("(iis)", st, closed, fx->last_error());
    }
    st = fx->from_object(executor, &ex);
    if (st != FASTEXEC_OK) return result(st);
    fx->batch_size(ex, &u);
    const void *inputs[64] = {0};
    void *slots[64];
    static char zeros[1 << 20];
    fx->num_tensors(ex, 0, &n);
    for (size_t i = 0; i < n; i++) inputs[i] = zeros;
    if (strcmp(what, "rows_zero") == 0) st = fx->submit(ex, inputs, 0, &ticket);
    else if (strcmp(what, "rows_too_many") == 0) st = fx->submit(ex, inputs, u + 1, &ticket);
    else if (strcmp(what, "null_input") == 0) { inputs[0] = NULL; st = fx->submit(ex, inputs, 1, &ticket); }
    else if (strcmp(what, "submit_one") == 0) st = fx->submit(ex, inputs, 1, &ticket);   /* close gives it back */
    else if (strcmp(what, "acquire_one") == 0) st = fx->acquire(ex, slots, &ticket);
    else if (strcmp(what, "submit_shaped_one") == 0 || strcmp(what, "acquire_shaped_one") == 0) {
        int64_t dims[64][16];   /* every input at the dims tensor_info gives (a -1 stays -1) */
        const int64_t *per[64];
        for (size_t i = 0; i < n; i++) {
            fx->tensor_info(ex, 0, i, &info);
            memcpy(dims[i], info.dims, info.ndims * sizeof(int64_t));
            per[i] = dims[i];
        }
        st = what[0] == 's' ? fx->submit_shaped(ex, inputs, per, &ticket) : fx->acquire_shaped(ex, per, slots, &ticket);
    } else if (strcmp(what, "acquire_shaped_cancel") == 0) {   /* py_inputs: a shape per input */
        int64_t dims[64][16];
        const int64_t *per[64];
        for (size_t i = 0; i < n; i++) {
            PyObject *shape = PyList_GetItem(py_inputs, (Py_ssize_t)i);
            for (Py_ssize_t d = 0; d < PyTuple_Size(shape) && d < 16; d++) dims[i][d] = PyLong_AsLongLong(PyTuple_GetItem(shape, d));
            per[i] = dims[i];
        }
        st = fx->acquire_shaped(ex, per, slots, &ticket);
        if (st == FASTEXEC_OK) st = fx->commit(ex, ticket, 0);
        if (st == FASTEXEC_OK) st = fx->commit(ex, ticket, 1);   /* expected: UNKNOWN_TICKET */
    } else if (strcmp(what, "shaped_null_dims") == 0) {
        const int64_t *per[64] = {0};
        st = fx->submit_shaped(ex, inputs, per, &ticket);
    } else if (strcmp(what, "output_dims_unknown") == 0) {
        int64_t dims[16];
        st = fx->output_dims(ex, 4242, 0, dims);
    }
    else if (strcmp(what, "tensor_index") == 0) st = fx->tensor_info(ex, 1, 99, &info);
    else if (strcmp(what, "release_unknown") == 0) st = fx->release(ex, 12345);
    else if (strcmp(what, "wait_unknown") == 0) {
        const void *const *out;
        st = fx->wait(ex, 777, &out, &u);
    } else if (strcmp(what, "release_before_wait") == 0) {
        st = fx->submit(ex, inputs, 1, &ticket);
        if (st == FASTEXEC_OK) {
            st = fx->release(ex, ticket);   /* expected: UNKNOWN_TICKET (not waited yet) */
            const void *const *out;
            fx->wait(ex, ticket, &out, &u);
            fx->release(ex, ticket);
        }
    } else if (strcmp(what, "busy") == 0) {
        /* fill every slot without releasing: the next submit is BUSY */
        int64_t held[256];
        int k = 0;
        while ((st = fx->submit(ex, inputs, 1, &held[k])) == FASTEXEC_OK && k < 255) k++;
        PyObject *r = result(st);
        for (int i = 0; i < k; i++) {
            const void *const *out;
            fx->wait(ex, held[i], &out, &u);
            fx->release(ex, held[i]);
        }
        fx->close(ex);
        return r;
    } else if (strcmp(what, "commit_cancel") == 0) {
        st = fx->acquire(ex, slots, &ticket);
        if (st == FASTEXEC_OK) st = fx->commit(ex, ticket, 0);
        if (st == FASTEXEC_OK) st = fx->commit(ex, ticket, 1);   /* expected: UNKNOWN_TICKET */
    } else if (strcmp(what, "closed_executor") == 0) {
        PyObject *r = PyObject_CallMethod(executor, "close", NULL);
        if (!r) { fx->close(ex); return NULL; }
        Py_DECREF(r);
        st = fx->submit(ex, inputs, 1, &ticket);
    } else if (strcmp(what, "python_beside_c") == 0 || strcmp(what, "close_waits_for_c") == 0) {
        /* C holds a queued batch while Python submits and takes one, or tries to close */
        st = fx->submit(ex, inputs, 1, &ticket);
        PyObject *r = strcmp(what, "close_waits_for_c") == 0
                          ? PyObject_CallMethod(executor, "close", "(d)", 0.2)
                          : PyObject_CallMethod(executor, "result", "(O)",
                                                PyObject_CallMethod(executor, "submit", "(O)", py_inputs));
        PyObject *got = NULL;
        if (!r) {
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            PyErr_NormalizeException(&type, &value, &tb);
            got = Py_BuildValue("(NN)", PyObject_GetAttrString(type, "__name__"), PyObject_Str(value));
            Py_XDECREF(type); Py_XDECREF(value); Py_XDECREF(tb);
        } else {
            got = r;
        }
        const void *const *out;
        int waited = fx->wait(ex, ticket, &out, &u);
        int released = fx->release(ex, ticket);
        fx->close(ex);
        return Py_BuildValue("(iiiN)", st, waited, released, got);
    } else {
        fx->close(ex);
        return PyErr_Format(PyExc_ValueError, "unknown probe %s", what);
    }
    PyObject *r = result(st);
    fx->close(ex);
    return r;
}

/* The stats of the executor in args, through a handle of its own: 0 with *st set, or -1 with an
 * exception set. */
static int read_stats(PyObject *args, fastexec_stats *s, int *st)
{
    PyObject *executor;
    if (!PyArg_ParseTuple(args, "O", &executor)) return -1;
    fastexec_executor *ex;
    if (fx->from_object(executor, &ex) != FASTEXEC_OK) {
        PyErr_Format(PyExc_ValueError, "%s", fx->last_error());
        return -1;
    }
    *st = fx->stats(ex, s);
    fx->close(ex);
    return 0;
}

static PyObject *stats(PyObject *self, PyObject *args)
{
    (void)self;
    fastexec_stats s;
    int st;
    if (read_stats(args, &s, &st)) return NULL;
    return Py_BuildValue("(iKddddd)", st, (unsigned long long)s.batches, s.wall_s, s.h2d_mean_ms, s.execute_mean_ms, s.d2h_mean_ms,
                         s.samples_per_s);
}

static PyObject *series_dict(const fastexec_series *x)
{
    return Py_BuildValue("{s:K,s:d,s:d,s:d,s:d,s:d,s:d,s:d}", "count", (unsigned long long)x->count, "mean_ms", x->mean_ms,
                         "min_ms", x->min_ms, "max_ms", x->max_ms, "p50_ms", x->p50_ms, "p90_ms", x->p90_ms,
                         "p95_ms", x->p95_ms, "p99_ms", x->p99_ms);
}

/* stats_v3(executor) -> dict of every field version 3 added */
static PyObject *stats_v3(PyObject *self, PyObject *args)
{
    (void)self;
    fastexec_stats s;
    int st;
    if (read_stats(args, &s, &st)) return NULL;
    if (st != FASTEXEC_OK) return PyErr_Format(PyExc_RuntimeError, "%s", fx->last_error());
    return Py_BuildValue("{s:N,s:N,s:N,s:N,s:N,s:N,s:K,s:d,s:d,s:d,s:d,s:d,s:d,s:d,s:d}",
                         "h2d", series_dict(&s.h2d), "execute", series_dict(&s.execute), "d2h", series_dict(&s.d2h),
                         "end_to_end", series_dict(&s.end_to_end), "host_staging", series_dict(&s.host_staging),
                         "host_enqueue", series_dict(&s.host_enqueue),
                         "calibration_batches", (unsigned long long)s.calibration_batches,
                         "calibration_h2d_ms", s.calibration_h2d_ms, "calibration_execute_ms", s.calibration_execute_ms,
                         "calibration_d2h_ms", s.calibration_d2h_ms, "bound_period_ms", s.bound_period_ms,
                         "bound_samples_per_s", s.bound_samples_per_s, "efficiency", s.efficiency,
                         "compute_only_samples_per_s", s.compute_only_samples_per_s,
                         "device_utilization", s.device_utilization);
}

/* zero_copy(executor, inputs (bytes, one per input), rows[, dims]) -> outputs (bytes): acquire a
 * slot, write the inputs into its pinned memory, commit, wait, copy the outputs, release. With
 * dims true, each output's dims from output_dims instead of its bytes. */
static PyObject *zero_copy(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *executor, *inputs;
    unsigned long long rows;
    int want_dims = 0;
    if (!PyArg_ParseTuple(args, "OO!K|p", &executor, &PyList_Type, &inputs, &rows, &want_dims)) return NULL;
    fastexec_executor *ex;
    if (fx->from_object(executor, &ex) != FASTEXEC_OK) return PyErr_Format(PyExc_ValueError, "%s", fx->last_error());
    void *slot[64];
    int64_t ticket;
    PyObject *result = NULL;
    size_t n_in, n_out;
    fx->num_tensors(ex, 0, &n_in);
    fx->num_tensors(ex, 1, &n_out);
    int st = fx->acquire(ex, slot, &ticket);
    if (st == FASTEXEC_OK) {
        for (size_t i = 0; i < n_in; i++) {
            PyObject *b = PyList_GetItem(inputs, (Py_ssize_t)i);
            memcpy(slot[i], PyBytes_AsString(b), (size_t)PyBytes_Size(b));
        }
        st = fx->commit(ex, ticket, rows);
    }
    const void *const *out;
    uint64_t got;
    if (st == FASTEXEC_OK) st = fx->wait(ex, ticket, &out, &got);
    if (st == FASTEXEC_OK) {
        result = PyList_New((Py_ssize_t)n_out);
        for (size_t i = 0; i < n_out; i++) {
            fastexec_tensor_info info;
            uint64_t batch;
            fx->tensor_info(ex, 1, i, &info);
            fx->batch_size(ex, &batch);
            if (want_dims) {
                int64_t dims[16];
                fx->output_dims(ex, ticket, i, dims);
                PyObject *shape = PyTuple_New((Py_ssize_t)info.ndims);
                for (size_t d = 0; d < info.ndims; d++) PyTuple_SetItem(shape, (Py_ssize_t)d, PyLong_FromLongLong(dims[d]));
                PyList_SetItem(result, (Py_ssize_t)i, shape);
                continue;
            }
            PyList_SetItem(result, (Py_ssize_t)i, PyBytes_FromStringAndSize(out[i], (Py_ssize_t)(got * (info.nbytes / batch))));
        }
        fx->release(ex, ticket);
    } else {
        PyErr_Format(PyExc_RuntimeError, "status %d: %s", st, fx->last_error());
    }
    fx->close(ex);
    return result;
}

/* open_devices_run(path, devices, inputs (bytes, one per input, `rows` rows each), rows) ->
 * (status, message, outputs (bytes, one per output) or None): an executor of its own through
 * open_devices, every batch submitted in order (the oldest waited for and released whenever no
 * slot is free), the outputs copied out in ticket order, the handle closed. */
static PyObject *open_devices_run(PyObject *self, PyObject *args)
{
    (void)self;
    const char *path;
    PyObject *py_devices, *inputs;
    unsigned long long rows;
    if (!PyArg_ParseTuple(args, "sO!O!K", &path, &PyList_Type, &py_devices, &PyList_Type, &inputs, &rows)) return NULL;
    int32_t devices[64];
    size_t n_dev = (size_t)PyList_Size(py_devices);
    for (size_t i = 0; i < n_dev && i < 64; i++) devices[i] = (int32_t)PyLong_AsLong(PyList_GetItem(py_devices, (Py_ssize_t)i));
    fastexec_executor *ex;
    int st = fx->open_devices(path, devices, n_dev, 0, 1, &ex);
    if (st != FASTEXEC_OK) return Py_BuildValue("(isO)", st, fx->last_error(), Py_None);
    size_t n_in, n_out;
    uint64_t batch;
    fx->num_tensors(ex, 0, &n_in);
    fx->num_tensors(ex, 1, &n_out);
    fx->batch_size(ex, &batch);
    size_t in_row[64], out_row[64];
    char *dst[64];
    PyObject *outputs = PyList_New((Py_ssize_t)n_out);
    for (size_t i = 0; i < n_in; i++) {
        fastexec_tensor_info info;
        fx->tensor_info(ex, 0, i, &info);
        in_row[i] = info.nbytes / batch;
    }
    for (size_t i = 0; i < n_out; i++) {
        fastexec_tensor_info info;
        fx->tensor_info(ex, 1, i, &info);
        out_row[i] = info.nbytes / batch;
        PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(rows * out_row[i]));
        PyList_SetItem(outputs, (Py_ssize_t)i, b);
        dst[i] = PyBytes_AsString(b);
    }
    uint64_t n_batches = (rows + batch - 1) / batch, next = 0, oldest = 0;
    int64_t tickets[4096];
    while (st == FASTEXEC_OK && oldest < n_batches && n_batches <= 4096) {
        if (next < n_batches) {
            const void *in[64];
            uint64_t r = rows - next * batch < batch ? rows - next * batch : batch;
            for (size_t i = 0; i < n_in; i++) in[i] = PyBytes_AsString(PyList_GetItem(inputs, (Py_ssize_t)i)) + next * batch * in_row[i];
            st = fx->submit(ex, in, r, &tickets[next]);
            if (st == FASTEXEC_OK) { next++; continue; }
            if (st != FASTEXEC_ERR_BUSY || next == oldest) break;
        }
        const void *const *out;
        uint64_t got;
        st = fx->wait(ex, tickets[oldest], &out, &got);
        if (st != FASTEXEC_OK) break;
        for (size_t i = 0; i < n_out; i++) memcpy(dst[i] + oldest * batch * out_row[i], out[i], got * out_row[i]);
        st = fx->release(ex, tickets[oldest]);
        oldest++;
    }
    PyObject *r = Py_BuildValue("(isO)", st, fx->last_error(), st == FASTEXEC_OK ? outputs : Py_None);
    Py_DECREF(outputs);
    fx->close(ex);
    return r;
}

/* shaped_run: batches of a dynamic HW / dims / shape model from two native threads without the
 * GIL (batch j on thread j % 2), each through submit_shaped or acquire_shaped + commit, then
 * wait, output_dims and a copy of exactly those dims' bytes, then release. */
typedef struct {
    size_t n_in, n_out;
    const int64_t *dims[64];    /* per input */
    const char *data[64];
    size_t in_bytes[64];
    int status;
    char message[1024];
    int64_t out_dims[64][16];
    char *out[64];
    size_t out_bytes[64];
} shaped_batch;

typedef struct {
    fastexec_executor *ex;
    shaped_batch *batches;
    size_t n, first, step;
    int acquire;
    size_t out_item[64], out_ndims[64];
} shaped_job;

static void run_shaped_batch(shaped_job *job, shaped_batch *b)
{
    int64_t ticket;
    int st;
    do {
        if (job->acquire) {
            void *slot[64];
            st = fx->acquire_shaped(job->ex, b->dims, slot, &ticket);
            if (st == FASTEXEC_OK) {
                for (size_t i = 0; i < b->n_in; i++) memcpy(slot[i], b->data[i], b->in_bytes[i]);
                st = fx->commit(job->ex, ticket, 1);
            }
        } else {
            st = fx->submit_shaped(job->ex, (const void *const *)b->data, b->dims, &ticket);
        }
        if (st == FASTEXEC_ERR_BUSY) sched_yield();   /* the other thread holds the slot needed */
    } while (st == FASTEXEC_ERR_BUSY);
    const void *const *out;
    uint64_t rows;
    if (st == FASTEXEC_OK) st = fx->wait(job->ex, ticket, &out, &rows);
    for (size_t i = 0; st == FASTEXEC_OK && i < b->n_out; i++) {
        st = fx->output_dims(job->ex, ticket, i, b->out_dims[i]);
        size_t bytes = job->out_item[i];
        for (size_t d = 0; d < job->out_ndims[i]; d++) bytes *= (size_t)b->out_dims[i][d];
        b->out[i] = malloc(bytes ? bytes : 1);
        b->out_bytes[i] = bytes;
        memcpy(b->out[i], out[i], bytes);
    }
    if (st == FASTEXEC_OK) st = fx->release(job->ex, ticket);
    b->status = st;
    snprintf(b->message, sizeof(b->message), "%s", st == FASTEXEC_OK ? "" : fx->last_error());
}

static void *shaped_thread(void *arg)
{
    shaped_job *job = arg;
    for (size_t j = job->first; j < job->n; j += job->step) run_shaped_batch(job, &job->batches[j]);
    return NULL;
}

/* shaped_run(executor, [(inputs (bytes per input), dims (a tuple per input))], out_items, mode)
 * -> [(status, message, [(dims, bytes) per output])] in batch order */
static PyObject *shaped_run(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *executor, *py_batches, *py_items;
    const char *mode;
    if (!PyArg_ParseTuple(args, "OO!O!s", &executor, &PyList_Type, &py_batches, &PyList_Type, &py_items, &mode)) return NULL;
    shaped_job jobs[2];
    memset(jobs, 0, sizeof(jobs));
    if (fx->from_object(executor, &jobs[0].ex) != FASTEXEC_OK) return PyErr_Format(PyExc_ValueError, "%s", fx->last_error());
    size_t n = (size_t)PyList_Size(py_batches), n_in, n_out;
    fx->num_tensors(jobs[0].ex, 0, &n_in);
    fx->num_tensors(jobs[0].ex, 1, &n_out);
    shaped_batch *batches = calloc(n ? n : 1, sizeof(shaped_batch));
    int64_t (*dims)[64][16] = calloc(n ? n : 1, sizeof(*dims));
    for (size_t i = 0; i < n_out; i++) {
        fastexec_tensor_info info;
        fx->tensor_info(jobs[0].ex, 1, i, &info);
        jobs[0].out_item[i] = (size_t)PyLong_AsSize_t(PyList_GetItem(py_items, (Py_ssize_t)i));
        jobs[0].out_ndims[i] = info.ndims;
    }
    for (size_t j = 0; j < n; j++) {   /* (the list keeps the bytes alive while the threads run) */
        PyObject *item = PyList_GetItem(py_batches, (Py_ssize_t)j);
        PyObject *ins = PyTuple_GetItem(item, 0), *shapes = PyTuple_GetItem(item, 1);
        batches[j].n_in = n_in;
        batches[j].n_out = n_out;
        for (size_t i = 0; i < n_in; i++) {
            PyObject *b = PyList_GetItem(ins, (Py_ssize_t)i), *shape = PyList_GetItem(shapes, (Py_ssize_t)i);
            batches[j].data[i] = PyBytes_AsString(b);
            batches[j].in_bytes[i] = (size_t)PyBytes_Size(b);
            for (Py_ssize_t d = 0; d < PyTuple_Size(shape) && d < 16; d++) dims[j][i][d] = PyLong_AsLongLong(PyTuple_GetItem(shape, d));
            batches[j].dims[i] = dims[j][i];
        }
    }
    if (PyErr_Occurred()) { fx->close(jobs[0].ex); free(batches); free(dims); return NULL; }
    jobs[1] = jobs[0];
    for (int t = 0; t < 2; t++) {
        jobs[t].batches = batches;
        jobs[t].n = n;
        jobs[t].first = (size_t)t;
        jobs[t].step = 2;
        jobs[t].acquire = strcmp(mode, "acquire") == 0;
    }
    pthread_t threads[2];
    Py_BEGIN_ALLOW_THREADS
    for (int t = 0; t < 2; t++) pthread_create(&threads[t], NULL, shaped_thread, &jobs[t]);
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
    Py_END_ALLOW_THREADS
    fx->close(jobs[0].ex);
    PyObject *result = PyList_New((Py_ssize_t)n);
    for (size_t j = 0; j < n; j++) {
        PyObject *outs = PyList_New(0);
        for (size_t i = 0; i < n_out && batches[j].status == FASTEXEC_OK; i++) {
            PyObject *shape = PyTuple_New((Py_ssize_t)jobs[0].out_ndims[i]);
            for (size_t d = 0; d < jobs[0].out_ndims[i]; d++) PyTuple_SetItem(shape, (Py_ssize_t)d, PyLong_FromLongLong(batches[j].out_dims[i][d]));
            PyObject *pair = Py_BuildValue("(Ny#)", shape, batches[j].out[i], (Py_ssize_t)batches[j].out_bytes[i]);
            PyList_Append(outs, pair);
            Py_DECREF(pair);
        }
        for (size_t i = 0; i < n_out; i++) free(batches[j].out[i]);
        PyList_SetItem(result, (Py_ssize_t)j, Py_BuildValue("(isN)", batches[j].status, batches[j].message, outs));
    }
    free(batches);
    free(dims);
    return result;
}

static PyMethodDef methods[] = {
    {"shaped_run", shaped_run, METH_VARARGS, NULL},
    {"open_devices_run", open_devices_run, METH_VARARGS, NULL},
    {"probe", probe, METH_VARARGS, NULL},
    {"zero_copy", zero_copy, METH_VARARGS, NULL},
    {"stats", stats, METH_VARARGS, NULL},
    {"stats_v3", stats_v3, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "capi_probe", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_capi_probe(void)
{
    fx = fastexec_import();
    if (!fx) return NULL;
    return PyModule_Create(&module);
}
