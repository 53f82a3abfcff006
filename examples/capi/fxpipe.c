/* fxpipe: a C extension that runs a fastexec pipeline from its own threads, without the GIL.
 *
 *     import fxpipe, fastexec
 *     ex = fastexec.Executor("model.om")
 *     fxpipe.run(ex, inputs, outputs, rows, threads=2)
 *
 * `inputs`: one C-contiguous buffer per model input holding `rows` samples; `outputs`: one
 * writable C-contiguous buffer per model output with room for `rows` samples (e.g. numpy
 * arrays). Worker threads take batches in turn and keep two each in flight: copy a batch in
 * (submit), and collect the oldest (wait, copy its output rows out, release). Build: see
 * examples/capi/README.md.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "fastexec/fastexec.h"

static const fastexec_api *fx;

#define MAX_IO 64

typedef struct {
    fastexec_executor *ex;
    size_t n_in, n_out;
    const char *in[MAX_IO];
    char *out[MAX_IO];
    size_t in_row[MAX_IO], out_row[MAX_IO];
    uint64_t rows, batch;
    atomic_uint_fast64_t next;   /* next batch to take */
    atomic_int status;           /* first failure */
    char error[512];
    pthread_mutex_t error_mu;
} job;

static void fail(job *j, int status)
{
    int expected = FASTEXEC_OK;
    if (atomic_compare_exchange_strong(&j->status, &expected, status)) {
        pthread_mutex_lock(&j->error_mu);
        snprintf(j->error, sizeof j->error, "%s", fx->last_error());
        pthread_mutex_unlock(&j->error_mu);
    }
}

/* Wait for a batch, copy its rows out, release its slot. */
static int finish(job *j, int64_t ticket, uint64_t first)
{
    const void *const *out;
    uint64_t got;
    int st = fx->wait(j->ex, ticket, &out, &got);
    if (st == FASTEXEC_OK)
        for (size_t i = 0; i < j->n_out; i++) memcpy(j->out[i] + first * j->out_row[i], out[i], got * j->out_row[i]);
    int rel = fx->release(j->ex, ticket);
    return st != FASTEXEC_OK ? st : rel;
}

/* Each thread keeps up to WINDOW of its batches in flight: it submits the next batch before
 * collecting the oldest, so the device always has work queued. */
#define WINDOW 2

static void *worker(void *arg)
{
    job *j = arg;
    uint64_t n_batches = (j->rows + j->batch - 1) / j->batch;
    int64_t tickets[WINDOW];
    uint64_t firsts[WINDOW];
    int held = 0, st = FASTEXEC_OK;
    for (;;) {
        uint64_t b = atomic_load(&j->status) == FASTEXEC_OK ? atomic_fetch_add(&j->next, 1) : n_batches;
        if (b >= n_batches) break;
        uint64_t first = b * j->batch, n = j->rows - first < j->batch ? j->rows - first : j->batch;
        const void *in[MAX_IO];
        for (size_t i = 0; i < j->n_in; i++) in[i] = j->in[i] + first * j->in_row[i];
        int64_t ticket;
        while ((st = fx->submit(j->ex, in, n, &ticket)) == FASTEXEC_ERR_BUSY) {
            /* every slot is taken: finish our oldest batch, or let the thread holding them do so */
            if (held) {
                if ((st = finish(j, tickets[0], firsts[0])) != FASTEXEC_OK) break;
                held--;
                memmove(tickets, tickets + 1, held * sizeof *tickets);
                memmove(firsts, firsts + 1, held * sizeof *firsts);
            } else {
                sched_yield();
            }
        }
        if (st != FASTEXEC_OK) break;
        tickets[held] = ticket;
        firsts[held++] = first;
        if (held == WINDOW) {
            if ((st = finish(j, tickets[0], firsts[0])) != FASTEXEC_OK) break;
            held--;
            memmove(tickets, tickets + 1, held * sizeof *tickets);
            memmove(firsts, firsts + 1, held * sizeof *firsts);
        }
    }
    if (st != FASTEXEC_OK) fail(j, st);
    for (int i = 0; i < held; i++) {
        int s2 = finish(j, tickets[i], firsts[i]);
        if (s2 != FASTEXEC_OK) fail(j, s2);
    }
    return NULL;
}

static PyObject *run(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *names[] = {"executor", "inputs", "outputs", "rows", "threads", NULL};
    PyObject *executor, *inputs, *outputs;
    unsigned long long rows;
    int threads = 2;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOK|i", names, &executor, &inputs, &outputs, &rows, &threads)) return NULL;
    if (threads < 1 || threads > 64) return PyErr_Format(PyExc_ValueError, "threads must be 1..64");
    job j;
    memset(&j, 0, sizeof j);
    pthread_mutex_init(&j.error_mu, NULL);
    j.rows = rows;
    if (fx->from_object(executor, &j.ex) != FASTEXEC_OK) return PyErr_Format(PyExc_ValueError, "%s", fx->last_error());
    Py_buffer views[2 * MAX_IO];
    size_t n_views = 0;
    PyObject *result = NULL;
    fx->batch_size(j.ex, &j.batch);
    fx->num_tensors(j.ex, 0, &j.n_in);
    fx->num_tensors(j.ex, 1, &j.n_out);
    if (!PyList_Check(inputs) || !PyList_Check(outputs) || (size_t)PyList_Size(inputs) != j.n_in ||
        (size_t)PyList_Size(outputs) != j.n_out) {
        PyErr_Format(PyExc_ValueError, "expected a list of %zu input and a list of %zu output buffers", j.n_in, j.n_out);
        goto done;
    }
    for (size_t k = 0; k < j.n_in + j.n_out; k++) {
        int is_out = k >= j.n_in;
        size_t i = is_out ? k - j.n_in : k;
        fastexec_tensor_info info;
        fx->tensor_info(j.ex, is_out, i, &info);
        size_t row = info.nbytes / j.batch;
        PyObject *obj = PyList_GetItem(is_out ? outputs : inputs, (Py_ssize_t)i);
        if (PyObject_GetBuffer(obj, &views[n_views], (is_out ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS) < 0) goto done;
        n_views++;
        if ((size_t)views[n_views - 1].len != rows * row) {
            PyErr_Format(PyExc_ValueError, "%s '%s': expected %llu bytes (%llu rows), got %zd", is_out ? "output" : "input", info.name,
                         (unsigned long long)(rows * row), rows, views[n_views - 1].len);
            goto done;
        }
        if (is_out) { j.out[i] = views[n_views - 1].buf; j.out_row[i] = row; }
        else { j.in[i] = views[n_views - 1].buf; j.in_row[i] = row; }
    }
    pthread_t tids[64];
    Py_BEGIN_ALLOW_THREADS
    for (int t = 0; t < threads; t++) pthread_create(&tids[t], NULL, worker, &j);
    for (int t = 0; t < threads; t++) pthread_join(tids[t], NULL);
    Py_END_ALLOW_THREADS
    if (atomic_load(&j.status) != FASTEXEC_OK) {
        PyErr_Format(PyExc_RuntimeError, "fastexec status %d: %s", (int)atomic_load(&j.status), j.error);
        goto done;
    }
    result = PyLong_FromUnsignedLongLong((j.rows + j.batch - 1) / j.batch);
done:
    for (size_t v = 0; v < n_views; v++) PyBuffer_Release(&views[v]);
    fx->close(j.ex);
    pthread_mutex_destroy(&j.error_mu);
    return result;
}

/* latency(executor) -> (batches, execute p50 ms, execute p99 ms, end-to-end p99 ms, fraction of the bound):
 * the executor's statistics read through the C API (version 3: every series' min, max and
 * percentiles over the whole run, and the bound). */
static PyObject *latency(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *executor;
    if (!PyArg_ParseTuple(args, "O", &executor)) return NULL;
    fastexec_executor *ex;
    if (fx->from_object(executor, &ex) != FASTEXEC_OK) return PyErr_Format(PyExc_ValueError, "%s", fx->last_error());
    fastexec_stats s;
    int st = fx->stats(ex, &s);
    fx->close(ex);
    if (st != FASTEXEC_OK) return PyErr_Format(PyExc_RuntimeError, "fastexec status %d: %s", st, fx->last_error());
    return Py_BuildValue("(Kdddd)", (unsigned long long)s.batches, s.execute.p50_ms, s.execute.p99_ms, s.end_to_end.p99_ms,
                         s.efficiency);
}

static PyMethodDef methods[] = {
    {"run", (PyCFunction)(void (*)(void))run, METH_VARARGS | METH_KEYWORDS, "run(executor, inputs, outputs, rows, threads=2) -> batches"},
    {"latency", latency, METH_VARARGS, "latency(executor) -> (batches, execute p50, execute p99, end-to-end p99 ms, efficiency)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "fxpipe", "A fastexec pipeline driven from C threads.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_fxpipe(void)
{
    fx = fastexec_import();
    if (!fx) return NULL;
    return PyModule_Create(&module);
}
