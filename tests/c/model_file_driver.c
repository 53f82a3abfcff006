/* Test driver for fastexec/emulator/src/model_file.c, built by tests/test_model_file.py.
 *
 *   model_file_driver MODEL                 parse; print "ok" (exit 0) or the error (exit 1)
 *   model_file_driver --info MODEL          parse and print the parsed fields, one per line
 *   model_file_driver --each FILE...        parse each file; one result line per file
 *   model_file_driver --prefixes FILE       parse every prefix (0..size bytes) of FILE
 *   model_file_driver --run MODEL BATCH IN_0 .. IN_k OUT_0 .. OUT_k [AIPP]
 *                                           run the model (AIPP, then the kernel) over raw input
 *                                           files, write raw outputs; AIPP: the dynamic AIPP tensor
 *   model_file_driver --run-dyn MODEL V,V,.. IN_0 .. IN_k OUT_0 .. OUT_k
 *                                           the same at the shapes whose -1 input dims are V,V,..
 *   model_file_driver --bench MODEL ITERS   time emu_kernel_run at the largest batch
 *
 * Buffers are malloc'ed with their exact size, so a sanitizer build catches any overread.
 * Exit status 2 means a usage or I/O problem of the driver itself.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model_file.h"

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf != NULL) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) {
            break;
        }
        cap *= 2;
        unsigned char *grown = realloc(buf, cap);
        if (grown == NULL) {
            free(buf);
            buf = NULL;
        } else {
            buf = grown;
        }
    }
    fclose(f);
    if (buf == NULL) {
        fprintf(stderr, "out of memory reading %s\n", path);
        exit(2);
    }
    /* Exact-size copy: any read past the end is a sanitizer error. */
    unsigned char *exact = malloc(n > 0 ? n : 1);
    if (exact == NULL) {
        exit(2);
    }
    memcpy(exact, buf, n);
    free(buf);
    *len = n;
    return exact;
}

static int parse_print(const unsigned char *text, size_t len, emu_model_def *m)
{
    char err[512];
    aclError rc = emu_model_parse((const char *)text, len, m, err, sizeof err);
    if (rc == ACL_SUCCESS) {
        printf("ok\n");
        return 0;
    }
    if (rc != ACL_ERROR_PARSE_MODEL) {
        printf("unexpected return code %d: %s\n", rc, err);
        return 3;
    }
    printf("%s\n", err);
    return 1;
}

static emu_model_def *load_model(const char *path)
{
    size_t len;
    unsigned char *text = read_file(path, &len);
    emu_model_def *m = malloc(sizeof *m);
    char err[512];
    if (m == NULL || emu_model_parse((const char *)text, len, m, err, sizeof err) != ACL_SUCCESS) {
        fprintf(stderr, "parse failed: %s\n", m == NULL ? "out of memory" : err);
        exit(2);
    }
    free(text);
    return m;
}

static void print_tensor(const char *kind, size_t k, const emu_tensor_def *t)
{
    printf("%s %zu %s dtype=%d format=%d elem_size=%zu sample_elems=%zu dims=", kind, k, t->name,
           (int)t->dtype, (int)t->format, t->elem_size, t->sample_elems);
    for (size_t d = 0; d < t->ndims; d++) {
        printf("%s%lld", d ? "," : "", (long long)t->dims[d]);
    }
    printf("\n");
}

static int cmd_info(const char *path)
{
    emu_model_def *m = load_model(path);
    printf("name %s\n", m->name);
    printf("kernel %d\n", (int)m->kernel);
    printf("scale %a\n", m->scale);
    printf("bias %a\n", m->bias);
    printf("compute_ns %llu\n", (unsigned long long)m->compute_ns);
    printf("per_sample_ns %llu\n", (unsigned long long)m->per_sample_ns);
    printf("workspace_bytes %zu\n", m->workspace_bytes);
    printf("weight_bytes %zu\n", m->weight_bytes);
    printf("max_batch %llu\n", (unsigned long long)emu_model_max_batch(m));
    printf("gears");
    for (size_t g = 0; g < m->num_gears; g++) {
        printf(" %llu", (unsigned long long)m->gears[g]);
    }
    printf("\n");
    printf("per_element_ns %llu\n", (unsigned long long)m->per_element_ns);
    printf("dyn_kind %d\n", (int)m->dyn_kind);
    printf("profile");
    for (size_t e = 0; e < emu_model_profile_count(m); e++) {
        emu_dyn_values v;
        emu_model_profile_values(m, e, &v);
        printf(" ");
        for (size_t i = 0; i < m->num_dyn; i++) {
            printf("%s%lld", i ? "," : "", (long long)v.v[i]);
        }
        printf("=%llu", (unsigned long long)emu_shape_exec_ns(m, &v));
    }
    printf("\n");
    for (size_t k = 0; k < m->num_inputs; k++) {
        print_tensor("input", k, &m->inputs[k]);
    }
    for (size_t k = 0; k < m->num_outputs; k++) {
        print_tensor("output", k, &m->outputs[k]);
    }
    free(m);
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    emu_model_def *m = load_model(argv[2]);
    bool by_values = strcmp(argv[1], "--run-dyn") == 0;
    unsigned long long batch = by_values ? 0 : strtoull(argv[3], NULL, 10);
    emu_dyn_values vals;
    memset(&vals, 0, sizeof vals);
    if (by_values) {
        char *p = argv[3];
        for (size_t i = 0; i < EMU_MAX_DYN && *p; i++) {
            vals.v[i] = strtoll(p, &p, 10);
            if (*p == ',') {
                p++;
            }
        }
    } else {
        emu_model_batch_values(m, batch, &vals);
    }
    size_t nio = 4 + m->num_inputs + m->num_outputs;
    if ((size_t)argc != nio && (size_t)argc != nio + 1) {
        fprintf(stderr, "--run needs %zu input and %zu output paths\n", m->num_inputs, m->num_outputs);
        return 2;
    }
    const void *ins[EMU_MAX_IO];
    void *outs[EMU_MAX_IO];
    for (size_t k = 0; k < m->num_inputs; k++) {
        size_t len;
        emu_tensor_def raw;
        emu_input_visible(m, k, 0, &raw);
        ins[k] = read_file(argv[4 + k], &len);
        size_t want = by_values ? emu_shape_bytes(m, &vals, 0, k) : emu_tensor_bytes(&raw, batch);
        if (len != want) {
            fprintf(stderr, "input %zu: %zu bytes, expected %zu\n", k, len, want);
            return 2;
        }
    }
    size_t aipp_len = 0;
    unsigned char *aipp = (size_t)argc == nio + 1 ? read_file(argv[nio], &aipp_len) : NULL;
    for (size_t k = 0; k < m->num_outputs; k++) {
        size_t len = by_values ? emu_shape_bytes(m, &vals, 1, k) : emu_tensor_bytes(&m->outputs[k], batch);
        outs[k] = malloc(len > 0 ? len : 1);
        if (outs[k] == NULL) {
            return 2;
        }
        memset(outs[k], 0xa5, len);
    }
    char err[512];
    if (emu_model_run(m, batch, &vals, ins, outs, aipp, aipp_len, err, sizeof err) != 0) {
        fprintf(stderr, "run failed: %s\n", err);
        return 1;
    }
    free(aipp);
    for (size_t k = 0; k < m->num_outputs; k++) {
        const char *path = argv[4 + m->num_inputs + k];
        FILE *f = fopen(path, "wb");
        size_t len = by_values ? emu_shape_bytes(m, &vals, 1, k) : emu_tensor_bytes(&m->outputs[k], batch);
        if (f == NULL || fwrite(outs[k], 1, len, f) != len || fclose(f) != 0) {
            fprintf(stderr, "cannot write %s\n", path);
            return 2;
        }
        free(outs[k]);
    }
    for (size_t k = 0; k < m->num_inputs; k++) {
        free((void *)ins[k]);
    }
    free(m);
    return 0;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmd_bench(const char *path, long iters)
{
    emu_model_def *m = load_model(path);
    uint64_t batch = emu_model_max_batch(m);
    const void *ins[EMU_MAX_IO];
    void *outs[EMU_MAX_IO];
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (size_t k = 0; k < m->num_inputs; k++) {
        size_t len = emu_tensor_bytes(&m->inputs[k], batch);
        unsigned char *p = malloc(len);
        if (p == NULL) {
            return 2;
        }
        for (size_t i = 0; i < len; i++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            p[i] = (unsigned char)(rng >> 24);
        }
        ins[k] = p;
    }
    for (size_t k = 0; k < m->num_outputs; k++) {
        outs[k] = malloc(emu_tensor_bytes(&m->outputs[k], batch));
        if (outs[k] == NULL) {
            return 2;
        }
    }
    if (iters < 1) {
        iters = 1;
    }
    double *t = malloc((size_t)iters * sizeof *t);
    if (t == NULL) {
        return 2;
    }
    emu_kernel_run(m, batch, ins, outs); /* warm-up */
    for (long i = 0; i < iters; i++) {
        double t0 = now_ns();
        emu_kernel_run(m, batch, ins, outs);
        t[i] = now_ns() - t0;
    }
    qsort(t, (size_t)iters, sizeof *t, cmp_double);
    printf("batch %llu iters %ld min_us %.1f median_us %.1f\n", (unsigned long long)batch, iters,
           t[0] / 1e3, t[iters / 2] / 1e3);
    free(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && argv[1][0] != '-') {
        size_t len;
        unsigned char *text = read_file(argv[1], &len);
        emu_model_def *m = malloc(sizeof *m);
        if (m == NULL) {
            return 2;
        }
        int rc = parse_print(text, len, m);
        free(m);
        free(text);
        return rc;
    }
    if (argc == 3 && strcmp(argv[1], "--info") == 0) {
        return cmd_info(argv[2]);
    }
    if (argc >= 2 && strcmp(argv[1], "--each") == 0) {
        emu_model_def *m = malloc(sizeof *m);
        if (m == NULL) {
            return 2;
        }
        for (int i = 2; i < argc; i++) {
            size_t len;
            unsigned char *text = read_file(argv[i], &len);
            if (parse_print(text, len, m) == 3) {
                return 3;
            }
            free(text);
        }
        free(m);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--prefixes") == 0) {
        size_t len;
        unsigned char *text = read_file(argv[2], &len);
        emu_model_def *m = malloc(sizeof *m);
        if (m == NULL) {
            return 2;
        }
        for (size_t cut = 0; cut <= len; cut++) {
            unsigned char *prefix = malloc(cut > 0 ? cut : 1);
            if (prefix == NULL) {
                return 2;
            }
            memcpy(prefix, text, cut);
            if (parse_print(prefix, cut, m) == 3) {
                return 3;
            }
            free(prefix);
        }
        free(m);
        free(text);
        return 0;
    }
    if (argc >= 4 && (strcmp(argv[1], "--run") == 0 || strcmp(argv[1], "--run-dyn") == 0)) {
        return cmd_run(argc, argv);
    }
    if (argc == 4 && strcmp(argv[1], "--bench") == 0) {
        return cmd_bench(argv[2], strtol(argv[3], NULL, 10));
    }
    fprintf(stderr, "usage: see the comment at the top of model_file_driver.c\n");
    return 2;
}
