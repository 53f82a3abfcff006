/* Test extension for tests/test_pipeline_core.py: drives an executor through the C API from
 * native threads (to race Executor.close()) and from the calling thread with the GIL held (to
 * race the executor's Python methods on another thread).
 *
 *     race_ext.api_version()                              -> fx->version
 *     race_ext.start(executor, threads, inputs, rows, expected, gap_us=0)
 *         take a handle (from_object), start `threads` pthreads looping submit/wait/release on
 *         it (each spending gap_us busy between a release and its next submit, as a producer
 *         preparing its next batch), return once every thread has finished one batch (or
 *         stopped); the GIL is released while waiting for that
 *     race_ext.join()                                     -> dict
 *         stop the threads, join them (GIL released), close the handle; returns
 *         {"submit": {status: count}, "wait": {...}, "release": {...}, "busy": n,
 *          "batches": n, "mismatches": n, "close": status, "last_error": text}
 *     race_ext.gil_loop(executor, iterations, inputs, rows, expected) -> dict
 *         the same loop plus fx->stats on the calling thread, never releasing the GIL except
 *         for a yield when submit reports BUSY; same dict plus "stats" and "gil_yields"
 *
 * `inputs`: one bytes object per model input holding `rows` rows; `expected`: one bytes object
 * per output, the outputs of those rows. Only status names that every C API version has are
 * used by name; the others are counted by number.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "fastexec/fastexec.h"

static const fastexec_api *fx;

#define MAX_IO 64
#define MAX_THREADS 32
#define N_STATUS 16   /* statuses are counted in [0, N_STATUS), anything else in the last bucket */

enum { CALL_SUBMIT, CALL_WAIT, CALL_RELEASE, CALL_STATS, N_CALLS };
static const char *const CALL_NAMES[N_CALLS] = {"submit", "wait", "release", "stats"};

typedef struct {
    fastexec_executor *ex;
    size_t n_in, n_out;
    uint64_t rows;
    long gap_ns;            /* busy time between a release and the next submit (preparing a batch) */
    const void *in[MAX_IO];
    char *in_copy[MAX_IO];
    char *want[MAX_IO];
    size_t want_len[MAX_IO];
    atomic_int stop;
    atomic_int ready;       /* threads that finished one batch, or stopped */
    atomic_long counts[N_CALLS][N_STATUS];
    atomic_long busy, batches, mismatches, gil_yields;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char last_error[512];
    int n_threads;
    pthread_t threads[MAX_THREADS];
} race;

static race *current;   /* the race started by start(), until join() */

static int bucket(int st)
{
    return st >= 0 && st < N_STATUS - 1 ? st : N_STATUS - 1;
}

static void note(race *r, int call, int st)
{
    atomic_fetch_add(&r->counts[call][bucket(st)], 1);
    if (st != FASTEXEC_OK) {
        pthread_mutex_lock(&r->mu);
        snprintf(r->last_error, sizeof r->last_error, "%s: status %d: %s", CALL_NAMES[call], st, fx->last_error());
        pthread_mutex_unlock(&r->mu);
    }
}

static void mark_ready(race *r)
{
    pthread_mutex_lock(&r->mu);
    atomic_fetch_add(&r->ready, 1);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* One batch: submit (retrying while BUSY, calling `on_busy` between tries), wait, check, release.
 * Returns 0 to go on, -1 to stop (a call returned something other than OK). */
static int one_batch(race *r, void (*on_busy)(race *))
{
    int64_t ticket;
    int st;
    for (;;) {
        st = fx->submit(r->ex, r->in, r->rows, &ticket);
        if (st != FASTEXEC_ERR_BUSY) break;
        atomic_fetch_add(&r->busy, 1);
        if (atomic_load(&r->stop)) return -1;
        on_busy(r);
    }
    note(r, CALL_SUBMIT, st);
    if (st != FASTEXEC_OK) return -1;
    const void *const *out = NULL;
    uint64_t got = 0;
    int ws = fx->wait(r->ex, ticket, &out, &got);
    note(r, CALL_WAIT, ws);
    if (ws == FASTEXEC_OK) {
        int bad = got != r->rows;
        for (size_t i = 0; !bad && i < r->n_out; i++) bad = memcmp(out[i], r->want[i], r->want_len[i]) != 0;
        if (bad) atomic_fetch_add(&r->mismatches, 1);
        atomic_fetch_add(&r->batches, 1);
    }
    int rs = fx->release(r->ex, ticket);
    note(r, CALL_RELEASE, rs);
    return ws == FASTEXEC_OK && rs == FASTEXEC_OK ? 0 : -1;
}

static void yield_cpu(race *r)
{
    (void)r;
    sched_yield();
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void *worker(void *arg)
{
    race *r = arg;
    int first = 1;
    while (!atomic_load(&r->stop)) {
        if (r->gap_ns > 0) {   /* prepare the next batch: no batch held meanwhile */
            long long until = now_ns() + r->gap_ns;
            while (now_ns() < until) {}
        }
        int stop = one_batch(r, yield_cpu);
        if (first) {
            mark_ready(r);
            first = 0;
        }
        if (stop) break;
    }
    if (first) mark_ready(r);
    return NULL;
}

static void race_free(race *r)
{
    for (size_t i = 0; i < MAX_IO; i++) {
        free(r->in_copy[i]);
        free(r->want[i]);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

/* Takes the handle and copies the buffers; GIL held. NULL with an exception set on failure. */
static race *race_new(PyObject *executor, PyObject *inputs, unsigned long long rows, PyObject *expected)
{
    if (!PyList_Check(inputs) || !PyList_Check(expected) || PyList_GET_SIZE(inputs) > MAX_IO || PyList_GET_SIZE(expected) > MAX_IO) {
        PyErr_SetString(PyExc_TypeError, "inputs and expected must be lists of at most 64 bytes objects");
        return NULL;
    }
    race *r = calloc(1, sizeof *r);
    if (!r) {
        PyErr_NoMemory();
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->rows = rows;
    r->n_in = (size_t)PyList_GET_SIZE(inputs);
    r->n_out = (size_t)PyList_GET_SIZE(expected);
    for (size_t i = 0; i < r->n_in + r->n_out; i++) {
        int is_in = i < r->n_in;
        PyObject *b = PyList_GET_ITEM(is_in ? inputs : expected, (Py_ssize_t)(is_in ? i : i - r->n_in));
        if (!PyBytes_Check(b)) {
            PyErr_SetString(PyExc_TypeError, "inputs and expected must hold bytes objects");
            race_free(r);
            return NULL;
        }
        size_t n = (size_t)PyBytes_GET_SIZE(b);
        char *copy = malloc(n ? n : 1);
        if (!copy) {
            PyErr_NoMemory();
            race_free(r);
            return NULL;
        }
        memcpy(copy, PyBytes_AS_STRING(b), n);
        if (is_in) {
            r->in_copy[i] = copy;
            r->in[i] = copy;
        } else {
            r->want[i - r->n_in] = copy;
            r->want_len[i - r->n_in] = n;
        }
    }
    int st = fx->from_object(executor, &r->ex);
    if (st != FASTEXEC_OK) {
        PyErr_Format(PyExc_RuntimeError, "from_object: status %d: %s", st, fx->last_error());
        race_free(r);
        return NULL;
    }
    return r;
}

static PyObject *race_counts(race *r)
{
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (int c = 0; c < N_CALLS; c++) {
        PyObject *per = PyDict_New();
        if (!per) goto fail;
        for (int s = 0; s < N_STATUS; s++) {
            long n = atomic_load(&r->counts[c][s]);
            if (!n) continue;
            PyObject *k = PyLong_FromLong(s == N_STATUS - 1 ? -1 : s), *v = PyLong_FromLong(n);
            int bad = !k || !v || PyDict_SetItem(per, k, v) < 0;
            Py_XDECREF(k);
            Py_XDECREF(v);
            if (bad) {
                Py_DECREF(per);
                goto fail;
            }
        }
        int bad = PyDict_SetItemString(d, CALL_NAMES[c], per) < 0;
        Py_DECREF(per);
        if (bad) goto fail;
    }
    const char *names[] = {"busy", "batches", "mismatches", "gil_yields"};
    long values[] = {atomic_load(&r->busy), atomic_load(&r->batches), atomic_load(&r->mismatches), atomic_load(&r->gil_yields)};
    for (int i = 0; i < 4; i++) {
        PyObject *v = PyLong_FromLong(values[i]);
        int bad = !v || PyDict_SetItemString(d, names[i], v) < 0;
        Py_XDECREF(v);
        if (bad) goto fail;
    }
    PyObject *e = PyUnicode_DecodeUTF8(r->last_error, (Py_ssize_t)strlen(r->last_error), "replace");
    int bad = !e || PyDict_SetItemString(d, "last_error", e) < 0;
    Py_XDECREF(e);
    if (bad) goto fail;
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

static PyObject *api_version(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    return PyLong_FromUnsignedLong(fx->version);
}

static PyObject *start(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *executor, *inputs, *expected;
    int n_threads;
    unsigned long long rows;
    long gap_us = 0;
    if (!PyArg_ParseTuple(args, "OiOKO|l", &executor, &n_threads, &inputs, &rows, &expected, &gap_us)) return NULL;
    if (current) return PyErr_Format(PyExc_RuntimeError, "a race is already running; join() it first");
    if (n_threads < 1 || n_threads > MAX_THREADS) return PyErr_Format(PyExc_ValueError, "threads must be 1..%d", MAX_THREADS);
    race *r = race_new(executor, inputs, rows, expected);
    if (!r) return NULL;
    r->gap_ns = gap_us * 1000;
    int started = 0;
    for (; started < n_threads; started++)
        if (pthread_create(&r->threads[started], NULL, worker, r) != 0) break;
    r->n_threads = started;
    current = r;
    if (started < n_threads) {
        atomic_store(&r->stop, 1);
        Py_BEGIN_ALLOW_THREADS
        for (int i = 0; i < started; i++) pthread_join(r->threads[i], NULL);
        Py_END_ALLOW_THREADS
        fx->close(r->ex);
        current = NULL;
        race_free(r);
        return PyErr_Format(PyExc_OSError, "pthread_create failed after %d thread(s)", started);
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&r->mu);
    while (atomic_load(&r->ready) < r->n_threads) pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *join(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    race *r = current;
    if (!r) return PyErr_Format(PyExc_RuntimeError, "no race is running");
    atomic_store(&r->stop, 1);
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < r->n_threads; i++) pthread_join(r->threads[i], NULL);
    Py_END_ALLOW_THREADS
    int closed = fx->close(r->ex);
    current = NULL;
    PyObject *d = race_counts(r);
    if (d) {
        PyObject *v = PyLong_FromLong(closed);
        if (!v || PyDict_SetItemString(d, "close", v) < 0) Py_CLEAR(d);
        Py_XDECREF(v);
    }
    race_free(r);
    return d;
}

/* BUSY with the GIL held: let the other Python threads (which may hold the slots) run. */
static void yield_gil(race *r)
{
    atomic_fetch_add(&r->gil_yields, 1);
    Py_BEGIN_ALLOW_THREADS
    sched_yield();
    Py_END_ALLOW_THREADS
}

static PyObject *gil_loop(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *executor, *inputs, *expected;
    long iterations;
    unsigned long long rows;
    if (!PyArg_ParseTuple(args, "OlOKO", &executor, &iterations, &inputs, &rows, &expected)) return NULL;
    race *r = race_new(executor, inputs, rows, expected);
    if (!r) return NULL;
    /* From here on the GIL stays held: every fx call below is made by a thread holding it. */
    for (long i = 0; i < iterations; i++) {
        fastexec_stats s;
        int st = fx->stats(r->ex, &s);
        note(r, CALL_STATS, st);
        if (one_batch(r, yield_gil)) break;
    }
    int closed = fx->close(r->ex);
    PyObject *d = race_counts(r);
    if (d) {
        PyObject *v = PyLong_FromLong(closed);
        if (!v || PyDict_SetItemString(d, "close", v) < 0) Py_CLEAR(d);
        Py_XDECREF(v);
    }
    race_free(r);
    return d;
}

static PyMethodDef methods[] = {
    {"api_version", api_version, METH_NOARGS, NULL},
    {"start", start, METH_VARARGS, NULL},
    {"join", join, METH_NOARGS, NULL},
    {"gil_loop", gil_loop, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "race_ext", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_race_ext(void)
{
    fx = fastexec_import();
    if (!fx) return NULL;
    return PyModule_Create(&module);
}
