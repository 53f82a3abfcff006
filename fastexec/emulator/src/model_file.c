/* The emulator's model file: a strict line-based text parser and the deterministic kernels.
 *
 * Format and arithmetic are specified in docs/model-format.md; the Python twin
 * (fastexec/emulator/model_file.py) applies the same rules and holds the numpy reference of
 * the kernels, which tests/test_model_file.py compares with this file bit for bit.
 *
 * Parser robustness: the input is arbitrary bytes of a given length (no NUL terminator is
 * needed, NUL bytes are rejected), every read is bounded by that length, and nothing is
 * allocated except the C numeric locale used to read decimals.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* newlocale, uselocale */
#endif

#include "model_file.h"

#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

/* y = x * scale + bias must be two separately rounded operations (numpy does a multiply,
 * then an add). ISO C mode already forbids contraction across statements, but GNU modes
 * default to -ffp-contract=fast, which would fuse them into an FMA where the target has one. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define LINE_MAX_BYTES 4096u
#define MAX_TOKENS 8u
#define TENSOR_BYTES_LIMIT ((uint64_t)1 << 40)
#define TWO_POW_63 9223372036854775808.0
#define TWO_POW_53 ((uint64_t)1 << 53)

static const char RESERVED_TENSOR_NAME[] = "ascend_mbatch_shape_data";
static const char RESERVED_AIPP_NAME[] = "ascend_dynamic_aipp_data";
#define AIPP_PARAM_COUNT 46u

/* ------------------------------------------------------------------------------------------
 * Name tables
 * ---------------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    aclDataType dtype;
} dtype_entry;

static const dtype_entry DTYPE_TABLE[] = {
    {"float32", ACL_FLOAT}, {"float16", ACL_FLOAT16}, {"float64", ACL_DOUBLE},
    {"int8", ACL_INT8},     {"int16", ACL_INT16},     {"int32", ACL_INT32},
    {"int64", ACL_INT64},   {"uint8", ACL_UINT8},     {"uint16", ACL_UINT16},
    {"uint32", ACL_UINT32}, {"uint64", ACL_UINT64},   {"bool", ACL_BOOL},
};

typedef struct {
    const char *name;
    aclFormat format;
} format_entry;

static const format_entry FORMAT_TABLE[] = {
    {"NCHW", ACL_FORMAT_NCHW},
    {"NHWC", ACL_FORMAT_NHWC},
    {"ND", ACL_FORMAT_ND},
    {"NC1HWC0", ACL_FORMAT_NC1HWC0},
    {"FRACTAL_Z", ACL_FORMAT_FRACTAL_Z},
    {"NC1HWC0_C04", ACL_FORMAT_NC1HWC0_C04},
    {"HWCN", ACL_FORMAT_HWCN},
    {"NDHWC", ACL_FORMAT_NDHWC},
    {"FRACTAL_NZ", ACL_FORMAT_FRACTAL_NZ},
    {"NCDHW", ACL_FORMAT_NCDHW},
    {"NDC1HWC0", ACL_FORMAT_NDC1HWC0},
    {"FRACTAL_Z_3D", ACL_FRACTAL_Z_3D},
    {"NC", ACL_FORMAT_NC},
    {"NCL", ACL_FORMAT_NCL},
};

static const char *const KERNEL_NAMES[] = {"identity", "affine", "segment_sum"};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Element size, following aclDataTypeSize for the dtypes the format allows. */
static size_t dtype_size(aclDataType dt)
{
    switch (dt) {
    case ACL_BOOL:
    case ACL_INT8:
    case ACL_UINT8:
        return 1;
    case ACL_FLOAT16:
    case ACL_INT16:
    case ACL_UINT16:
        return 2;
    case ACL_FLOAT:
    case ACL_INT32:
    case ACL_UINT32:
        return 4;
    default: /* INT64, UINT64, DOUBLE (aclDataTypeSize's default branch is 8 as well) */
        return 8;
    }
}

static const char *dtype_name(aclDataType dt)
{
    for (size_t i = 0; i < COUNT_OF(DTYPE_TABLE); i++) {
        if (DTYPE_TABLE[i].dtype == dt) {
            return DTYPE_TABLE[i].name;
        }
    }
    return "?";
}

static const char *format_name(aclFormat f)
{
    for (size_t i = 0; i < COUNT_OF(FORMAT_TABLE); i++) {
        if (FORMAT_TABLE[i].format == f) {
            return FORMAT_TABLE[i].name;
        }
    }
    return "?";
}

static bool dtype_is_float(aclDataType dt)
{
    return dt == ACL_FLOAT || dt == ACL_FLOAT16 || dt == ACL_DOUBLE;
}

/* ------------------------------------------------------------------------------------------
 * Tokens and messages
 * ---------------------------------------------------------------------------------------- */

typedef struct {
    const char *p;
    size_t n;
} token;

static bool tok_is(token t, const char *s)
{
    size_t n = strlen(s);
    return t.n == n && memcmp(t.p, s, n) == 0;
}

#define QUOTE_BYTES 40u
#define QBUF (QUOTE_BYTES * 4u + 8u)

/* 'token' for messages: at most QUOTE_BYTES source bytes, bytes outside 0x20..0x7e and the
 * quote/backslash written as \xNN, "..." appended when cut. Same as model_file._quote(). */
static const char *quote(char *buf, token t)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    size_t n = t.n < QUOTE_BYTES ? t.n : QUOTE_BYTES;
    buf[o++] = '\'';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t.p[i];
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    if (t.n > n) {
        buf[o++] = '.';
        buf[o++] = '.';
        buf[o++] = '.';
    }
    buf[o++] = '\'';
    buf[o] = '\0';
    return buf;
}

typedef struct {
    emu_model_def *m;
    char *err;
    size_t errlen;
    bool have_header;
    size_t line_name, line_kernel, line_compute, line_per_sample, line_dyn, line_ws, line_wt;
    size_t line_per_element, line_hw, line_dims, line_shape;
    size_t line_in[EMU_MAX_IO];
    size_t line_out[EMU_MAX_IO];
    size_t aipp_line[EMU_MAX_IO][AIPP_PARAM_COUNT]; /* line of each aipp parameter of input k, 0: not given */
    size_t aipp_first[EMU_MAX_IO];                  /* first aipp line of input k */
    locale_t c_locale;
    bool c_locale_tried;
} parser;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int fail(parser *ps, size_t line, const char *fmt, ...)
{
    if (ps->err != NULL && ps->errlen > 0) {
        int k;
        if (line > 0) {
            k = snprintf(ps->err, ps->errlen, "line %zu: ", line);
        } else {
            k = snprintf(ps->err, ps->errlen, "model file: ");
        }
        if (k >= 0 && (size_t)k < ps->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(ps->err + k, ps->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

/* ------------------------------------------------------------------------------------------
 * Numbers
 * ---------------------------------------------------------------------------------------- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

typedef enum { NUM_OK = 0, NUM_SYNTAX, NUM_RANGE } num_status;

/* Integer grammar: -?[0-9]+. The magnitude must fit in uint64. */
static num_status parse_int(token t, bool *neg, uint64_t *mag)
{
    size_t i = 0;
    *neg = false;
    *mag = 0;
    if (i < t.n && t.p[i] == '-') {
        *neg = true;
        i++;
    }
    if (i == t.n) {
        return NUM_SYNTAX;
    }
    bool overflow = false;
    uint64_t v = 0;
    for (; i < t.n; i++) {
        if (!is_digit(t.p[i])) {
            return NUM_SYNTAX;
        }
        unsigned d = (unsigned)(t.p[i] - '0');
        if (v > (UINT64_MAX - d) / 10u) {
            overflow = true; /* keep scanning so that junk still reads as a syntax error */
        } else {
            v = v * 10u + d;
        }
    }
    if (overflow) {
        return NUM_RANGE;
    }
    *mag = v;
    return NUM_OK;
}

static num_status parse_i64(token t, int64_t *out)
{
    bool neg;
    uint64_t mag;
    num_status st = parse_int(t, &neg, &mag);
    if (st != NUM_OK) {
        return st;
    }
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1u) {
            return NUM_RANGE;
        }
        *out = mag == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX) {
            return NUM_RANGE;
        }
        *out = (int64_t)mag;
    }
    return NUM_OK;
}

/* Decimal grammar: [+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)? -- no inf/nan/hex. */
static bool decimal_syntax_ok(token t)
{
    size_t i = 0, digits = 0;
    if (i < t.n && (t.p[i] == '+' || t.p[i] == '-')) {
        i++;
    }
    while (i < t.n && is_digit(t.p[i])) {
        i++;
        digits++;
    }
    if (i < t.n && t.p[i] == '.') {
        i++;
        while (i < t.n && is_digit(t.p[i])) {
            i++;
            digits++;
        }
    }
    if (digits == 0) {
        return false;
    }
    if (i < t.n && (t.p[i] == 'e' || t.p[i] == 'E')) {
        i++;
        if (i < t.n && (t.p[i] == '+' || t.p[i] == '-')) {
            i++;
        }
        size_t exp_digits = 0;
        while (i < t.n && is_digit(t.p[i])) {
            i++;
            exp_digits++;
        }
        if (exp_digits == 0) {
            return false;
        }
    }
    return i == t.n;
}

/* Correctly rounded decimal -> double (strtod), independent of the process's LC_NUMERIC. */
static num_status parse_decimal(parser *ps, token t, double *out)
{
    char buf[LINE_MAX_BYTES + 1];
    if (!decimal_syntax_ok(t) || t.n > LINE_MAX_BYTES) {
        return NUM_SYNTAX;
    }
    memcpy(buf, t.p, t.n);
    buf[t.n] = '\0';
    if (!ps->c_locale_tried) {
        ps->c_locale_tried = true;
        ps->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    }
    locale_t previous = (locale_t)0;
    if (ps->c_locale != (locale_t)0) {
        previous = uselocale(ps->c_locale);
    }
    errno = 0;
    char *end = NULL;
    double v = strtod(buf, &end);
    int e = errno;
    if (ps->c_locale != (locale_t)0) {
        uselocale(previous);
    }
    if (end != buf + t.n) {
        return NUM_SYNTAX;
    }
    /* ERANGE on underflow (tiny values -> 0 or subnormal) is accepted, like Python's float(). */
    if (e == ERANGE && (v > 1.0 || v < -1.0)) {
        return NUM_RANGE;
    }
    if (v != v || v > 1.7976931348623157e308 || v < -1.7976931348623157e308) {
        return NUM_RANGE;
    }
    *out = v;
    return NUM_OK;
}

/* ------------------------------------------------------------------------------------------
 * Line handlers
 * ---------------------------------------------------------------------------------------- */

static int check_unique_key(parser *ps, size_t line, size_t *slot, const char *key)
{
    if (*slot != 0) {
        return fail(ps, line, "duplicate key '%s': it may appear once and was already given on line %zu",
                    key, *slot);
    }
    *slot = line;
    return 0;
}

static int check_arity(parser *ps, size_t line, size_t ntok, size_t want, const char *usage)
{
    if (ntok - 1 != want) {
        return fail(ps, line, "'%s' takes %zu field%s, got %zu", usage, want, want == 1 ? "" : "s",
                    ntok - 1);
    }
    return 0;
}

static int handle_header(parser *ps, size_t line, const token *tok, size_t ntok)
{
    char q[QBUF];
    if (!tok_is(tok[0], EMU_MODEL_MAGIC)) {
        return fail(ps, line,
                    "expected the header 'fastexec-emulator-model 1' as the first non-comment line, got %s",
                    quote(q, tok[0]));
    }
    if (ntok != 2) {
        return fail(ps, line, "header takes 1 field (the format version), got %zu: expected "
                              "'fastexec-emulator-model 1'", ntok - 1);
    }
    int64_t version;
    num_status st = parse_i64(tok[1], &version);
    if (st == NUM_SYNTAX) {
        return fail(ps, line, "bad format version %s: expected an integer", quote(q, tok[1]));
    }
    if (st != NUM_OK || version != EMU_MODEL_FORMAT_VERSION) {
        return fail(ps, line, "unsupported format version %s: expected %d", quote(q, tok[1]),
                    EMU_MODEL_FORMAT_VERSION);
    }
    ps->have_header = true;
    return 0;
}

static int handle_name(parser *ps, size_t line, const token *tok, size_t ntok)
{
    char q[QBUF];
    if (check_unique_key(ps, line, &ps->line_name, "name") || check_arity(ps, line, ntok, 1, "name")) {
        return -1;
    }
    token t = tok[1];
    bool ok = t.n >= 1 && t.n <= ACL_MAX_TENSOR_NAME_LEN - 1;
    for (size_t i = 0; ok && i < t.n; i++) {
        char c = t.p[i];
        ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '.' || c == '_' ||
             c == '-';
    }
    if (!ok) {
        return fail(ps, line, "bad model name %s: expected 1 to 127 characters from [A-Za-z0-9._-]",
                    quote(q, t));
    }
    memcpy(ps->m->name, t.p, t.n);
    ps->m->name[t.n] = '\0';
    return 0;
}

static int parse_dims(parser *ps, size_t line, const char *kind, const char *tname, token t,
                      emu_tensor_def *td)
{
    char q[QBUF];
    size_t nd = 0;
    size_t i = 0;
    while (true) {
        size_t j = i;
        while (j < t.n && t.p[j] != ',') {
            j++;
        }
        token d = {t.p + i, j - i};
        if (nd == ACL_MAX_DIM_CNT) {
            return fail(ps, line, "%s '%s': too many dims: expected at most %d", kind, tname,
                        ACL_MAX_DIM_CNT);
        }
        int64_t v;
        num_status st = parse_i64(d, &v);
        if (st == NUM_SYNTAX) {
            return fail(ps, line, "%s '%s': bad dims %s: expected comma-separated integers, got %s at "
                                  "position %zu", kind, tname, quote(q, t),
                        d.n == 0 ? "an empty field" : "a non-integer", nd);
        }
        if (st == NUM_RANGE) {
            return fail(ps, line, "%s '%s': dims[%zu] is out of the int64 range", kind, tname, nd);
        }
        if (nd == 0 && v < 1 && v != -1) {
            return fail(ps, line, "%s '%s': dims[0] must be >= 1, or -1 for a dynamic batch, got %lld",
                        kind, tname, (long long)v);
        }
        if (nd > 0 && v < 1 && v != -1) {
            return fail(ps, line, "%s '%s': dims[%zu] must be >= 1, or -1 for a dynamic dim, got %lld",
                        kind, tname, nd, (long long)v);
        }
        td->dims[nd++] = v;
        if (j == t.n) {
            break;
        }
        i = j + 1;
    }
    td->ndims = nd;
    /* Bytes of one sample, capped at the 2^40 limit (each factor is >= 1, so the product only
     * grows and no intermediate can overflow once it is known to be <= the limit). */
    uint64_t elems = 1;
    uint64_t cap = TENSOR_BYTES_LIMIT < (uint64_t)SIZE_MAX ? TENSOR_BYTES_LIMIT : (uint64_t)SIZE_MAX;
    for (size_t k = 1; k < nd; k++) {
        uint64_t d = td->dims[k] == -1 ? 1u : (uint64_t)td->dims[k];   /* a dynamic dim counts as 1 */
        if (elems > cap / d) {
            return fail(ps, line, "%s '%s' is too large: one sample holds more than %llu bytes "
                                  "(the limit is 2^40 bytes per tensor)", kind, tname,
                        (unsigned long long)cap);
        }
        elems *= d;
    }
    if (elems > cap / td->elem_size) {
        return fail(ps, line, "%s '%s' is too large: one sample holds more than %llu bytes "
                              "(the limit is 2^40 bytes per tensor)", kind, tname,
                    (unsigned long long)cap);
    }
    td->sample_elems = (size_t)elems;
    return 0;
}

static int handle_tensor(parser *ps, size_t line, const token *tok, size_t ntok, bool is_input)
{
    char q[QBUF];
    const char *kind = is_input ? "input" : "output";
    size_t *count = is_input ? &ps->m->num_inputs : &ps->m->num_outputs;
    emu_tensor_def *defs = is_input ? ps->m->inputs : ps->m->outputs;
    size_t *lines = is_input ? ps->line_in : ps->line_out;

    if (ntok - 1 != 4) {
        return fail(ps, line, "'%s' takes 4 fields (NAME DTYPE FORMAT DIMS), got %zu", kind, ntok - 1);
    }
    if (*count == EMU_MAX_IO) {
        return fail(ps, line, "too many %ss: expected at most %d", kind, EMU_MAX_IO);
    }
    token name = tok[1];
    bool ok = name.n >= 1 && name.n <= ACL_MAX_TENSOR_NAME_LEN - 1;
    for (size_t i = 0; ok && i < name.n; i++) {
        unsigned char c = (unsigned char)name.p[i];
        ok = c > 0x20 && c < 0x7f;
    }
    if (!ok) {
        return fail(ps, line, "bad %s name %s: expected 1 to 127 printable ASCII characters", kind,
                    quote(q, name));
    }
    if (tok_is(name, RESERVED_TENSOR_NAME)) {
        return fail(ps, line, "%s name '%s' is reserved for the runtime's dynamic-batch input", kind,
                    RESERVED_TENSOR_NAME);
    }
    if (tok_is(name, RESERVED_AIPP_NAME)) {
        return fail(ps, line, "%s name '%s' is reserved for the runtime's dynamic AIPP input", kind,
                    RESERVED_AIPP_NAME);
    }
    for (size_t k = 0; k < *count; k++) {
        if (tok_is(name, defs[k].name)) {
            return fail(ps, line, "duplicate %s name %s: already used on line %zu", kind, quote(q, name),
                        lines[k]);
        }
    }
    emu_tensor_def *td = &defs[*count];
    memcpy(td->name, name.p, name.n);
    td->name[name.n] = '\0';

    size_t i;
    for (i = 0; i < COUNT_OF(DTYPE_TABLE); i++) {
        if (tok_is(tok[2], DTYPE_TABLE[i].name)) {
            break;
        }
    }
    if (i == COUNT_OF(DTYPE_TABLE)) {
        return fail(ps, line, "%s '%s': unknown dtype %s: expected one of float32, float16, float64, "
                              "int8, int16, int32, int64, uint8, uint16, uint32, uint64, bool",
                    kind, td->name, quote(q, tok[2]));
    }
    td->dtype = DTYPE_TABLE[i].dtype;
    td->elem_size = dtype_size(td->dtype);

    for (i = 0; i < COUNT_OF(FORMAT_TABLE); i++) {
        if (tok_is(tok[3], FORMAT_TABLE[i].name)) {
            break;
        }
    }
    if (i == COUNT_OF(FORMAT_TABLE)) {
        return fail(ps, line, "%s '%s': unknown format %s: expected one of NCHW, NHWC, ND, NC1HWC0, "
                              "FRACTAL_Z, NC1HWC0_C04, HWCN, NDHWC, FRACTAL_NZ, NCDHW, NDC1HWC0, "
                              "FRACTAL_Z_3D, NC, NCL", kind, td->name, quote(q, tok[3]));
    }
    td->format = FORMAT_TABLE[i].format;

    if (parse_dims(ps, line, kind, td->name, tok[4], td) != 0) {
        return -1;
    }
    lines[*count] = line;
    (*count)++;
    return 0;
}

static int handle_kernel(parser *ps, size_t line, const token *tok, size_t ntok)
{
    char q[QBUF];
    if (check_unique_key(ps, line, &ps->line_kernel, "kernel")) {
        return -1;
    }
    if (ntok < 2) {
        return fail(ps, line, "'kernel' needs a kernel name: expected identity, affine or segment_sum");
    }
    size_t k;
    for (k = 0; k < COUNT_OF(KERNEL_NAMES); k++) {
        if (tok_is(tok[1], KERNEL_NAMES[k])) {
            break;
        }
    }
    if (k == COUNT_OF(KERNEL_NAMES)) {
        return fail(ps, line, "unknown kernel %s: expected identity, affine or segment_sum",
                    quote(q, tok[1]));
    }
    ps->m->kernel = (emu_kernel_kind)k;
    if (ps->m->kernel == EMU_KERNEL_IDENTITY && ntok > 2) {
        return fail(ps, line, "kernel 'identity' takes no parameters, got %s", quote(q, tok[2]));
    }
    if (ntok > 4) {
        return fail(ps, line, "too many kernel parameters: expected at most scale=S and bias=B");
    }
    bool seen_scale = false, seen_bias = false;
    for (size_t i = 2; i < ntok; i++) {
        token t = tok[i];
        size_t eq = 0;
        while (eq < t.n && t.p[eq] != '=') {
            eq++;
        }
        token key = {t.p, eq};
        if (eq == t.n) {
            return fail(ps, line, "bad kernel parameter %s: expected scale=S or bias=B", quote(q, t));
        }
        token val = {t.p + eq + 1, t.n - eq - 1};
        double *dst;
        bool *seen;
        if (tok_is(key, "scale")) {
            dst = &ps->m->scale;
            seen = &seen_scale;
        } else if (tok_is(key, "bias")) {
            dst = &ps->m->bias;
            seen = &seen_bias;
        } else {
            return fail(ps, line, "unknown kernel parameter %s: expected scale or bias", quote(q, key));
        }
        if (*seen) {
            return fail(ps, line, "duplicate kernel parameter %s", quote(q, key));
        }
        *seen = true;
        num_status st = parse_decimal(ps, val, dst);
        if (st == NUM_SYNTAX) {
            return fail(ps, line, "bad value for kernel parameter %s: expected a finite decimal number, "
                                  "got %s", key.n == 5 ? "'scale'" : "'bias'", quote(q, val));
        }
        if (st == NUM_RANGE) {
            return fail(ps, line, "value for kernel parameter %s is out of the double range: %s",
                        key.n == 5 ? "'scale'" : "'bias'", quote(q, val));
        }
    }
    return 0;
}

static int handle_time(parser *ps, size_t line, const token *tok, size_t ntok, const char *key,
                       size_t *slot, uint64_t *dst)
{
    char q[QBUF];
    if (check_unique_key(ps, line, slot, key) || check_arity(ps, line, ntok, 1, key)) {
        return -1;
    }
    double us = 0.0;
    num_status st = parse_decimal(ps, tok[1], &us);
    if (st == NUM_SYNTAX) {
        return fail(ps, line, "bad %s %s: expected a decimal number of microseconds >= 0", key,
                    quote(q, tok[1]));
    }
    if (tok[1].p[0] == '-' ? (st == NUM_RANGE || us < 0) : us < 0) {
        return fail(ps, line, "%s must be >= 0, got %s", key, quote(q, tok[1]));
    }
    /* Nanoseconds, rounded half up, computed in double exactly as model_file._us_to_ns. */
    double ns = us * 1000.0;
    ns = ns + 0.5;
    if (st == NUM_RANGE || !(ns < TWO_POW_63)) {
        return fail(ps, line, "%s %s is too large: at most 9223372036854775807 ns", key, quote(q, tok[1]));
    }
    *dst = (uint64_t)(int64_t)ns;
    return 0;
}

static int handle_bytes(parser *ps, size_t line, const token *tok, size_t ntok, const char *key,
                        size_t *slot, size_t *dst)
{
    char q[QBUF];
    if (check_unique_key(ps, line, slot, key) || check_arity(ps, line, ntok, 1, key)) {
        return -1;
    }
    bool neg;
    uint64_t v;
    num_status st = parse_int(tok[1], &neg, &v);
    if (st == NUM_SYNTAX) {
        return fail(ps, line, "bad %s %s: expected an integer >= 0", key, quote(q, tok[1]));
    }
    if (neg && (st == NUM_RANGE || v != 0)) {
        return fail(ps, line, "%s must be >= 0, got %s", key, quote(q, tok[1]));
    }
    if (st == NUM_RANGE || v > (uint64_t)SIZE_MAX) {
        return fail(ps, line, "%s %s is out of range: at most %llu", key, quote(q, tok[1]),
                    (unsigned long long)SIZE_MAX);
    }
    *dst = (size_t)v;
    return 0;
}

static const char *const PROFILE_KEYS[] = {"dynamic_batch", "dynamic_hw", "dynamic_dims", "dynamic_shape"};

/* A model declares at most one dynamic profile (`key` is on `line`, already recorded). */
static int check_one_profile(parser *ps, size_t line, const char *key)
{
    const size_t lines[] = {ps->line_dyn, ps->line_hw, ps->line_dims, ps->line_shape};
    for (size_t i = 0; i < COUNT_OF(lines); i++) {
        if (lines[i] != 0 && strcmp(PROFILE_KEYS[i], key) != 0) {
            return fail(ps, line, "%s: a model declares at most one of dynamic_batch, dynamic_hw, dynamic_dims, "
                                  "dynamic_shape (it also has %s)", key, PROFILE_KEYS[i]);
        }
    }
    return 0;
}

/* The next field of t from position *i up to `sep` (or the end); *i moves past the separator.
 * Returns false once the token is used up. */
static bool next_field(token t, size_t *i, bool *done, char sep, token *out)
{
    if (*done) {
        return false;
    }
    size_t j = *i;
    while (j < t.n && t.p[j] != sep) {
        j++;
    }
    out->p = t.p + *i;
    out->n = j - *i;
    if (j == t.n) {
        *done = true;
    } else {
        *i = j + 1;
    }
    return true;
}

/* An integer in 1..INT64_MAX: 0 ok, 1 syntax, 2 out of range. */
static int parse_positive(token t, int64_t *out)
{
    bool neg;
    uint64_t mag;
    num_status st = parse_int(t, &neg, &mag);
    if (st == NUM_SYNTAX) {
        return 1;
    }
    if (st == NUM_RANGE || neg || mag == 0 || mag > (uint64_t)INT64_MAX) {
        return 2;
    }
    *out = (int64_t)mag;
    return 0;
}

/* dynamic_shape MIN~MAX,MIN~MAX,... */
static int parse_ranges(parser *ps, size_t line, token t)
{
    char q[QBUF], q2[QBUF];
    emu_model_def *m = ps->m;
    size_t i = 0;
    bool done = false;
    token f;
    size_t n = 0;
    while (next_field(t, &i, &done, ',', &f)) {
        if (n == EMU_MAX_DYN) {
            return fail(ps, line, "too many dynamic_shape ranges: expected at most %d", EMU_MAX_DYN);
        }
        size_t tilde = 0;
        while (tilde < f.n && f.p[tilde] != '~') {
            tilde++;
        }
        token lo = {f.p, tilde}, hi = {f.p + tilde + (tilde < f.n), tilde < f.n ? f.n - tilde - 1 : 0};
        bool neg_lo, neg_hi;
        uint64_t a, b;
        num_status sa = tilde < f.n ? parse_int(lo, &neg_lo, &a) : NUM_SYNTAX;
        num_status sb = tilde < f.n ? parse_int(hi, &neg_hi, &b) : NUM_SYNTAX;
        if (sa == NUM_SYNTAX || sb == NUM_SYNTAX) {
            return fail(ps, line, "bad dynamic_shape %s: expected comma-separated MIN~MAX ranges, got %s at "
                                  "position %zu", quote(q, t), quote(q2, f), n);
        }
        if (sa == NUM_RANGE || sb == NUM_RANGE || neg_lo || neg_hi || a < 1 || a > b || b > (uint64_t)INT64_MAX) {
            return fail(ps, line, "dynamic_shape range %zu must satisfy 1 <= MIN <= MAX <= 9223372036854775807, "
                                  "got %s", n, quote(q, f));
        }
        m->ranges[n][0] = (int64_t)a;
        m->ranges[n][1] = (int64_t)b;
        n++;
    }
    m->num_dyn = n;   /* checked against the inputs' -1 dims in finish() */
    return 0;
}

/* dynamic_hw H,W;H,W;... and dynamic_dims V,V,..;V,V,..;... */
static int parse_gear_list(parser *ps, size_t line, const char *key, token t)
{
    char q[QBUF];
    emu_model_def *m = ps->m;
    bool hw = strcmp(key, "dynamic_hw") == 0;
    size_t i = 0, ng = 0, first_len = 0;
    bool done = false;
    token g;
    while (next_field(t, &i, &done, ';', &g)) {
        if (ng == ACL_MAX_SHAPE_COUNT) {
            return fail(ps, line, "too many %s gears: expected at most %d", key, ACL_MAX_SHAPE_COUNT);
        }
        int64_t vals[EMU_MAX_DYN];
        size_t nv = 0, gi = 0;
        bool gdone = false;
        token f;
        while (next_field(g, &gi, &gdone, ',', &f)) {
            if (hw && nv == 2) {
                return fail(ps, line, "dynamic_hw gear %zu %s: expected H,W (two integers)", ng, quote(q, g));
            }
            if (nv == EMU_MAX_DYN) {
                return fail(ps, line, "dynamic_dims gear %zu has more than %d values", ng, EMU_MAX_DYN);
            }
            int rc = parse_positive(f, &vals[nv]);
            if (rc == 1) {
                return fail(ps, line, "bad %s %s: expected ';'-separated gears of comma-separated integers, got "
                                      "%s in gear %zu at position %zu", key, quote(q, t),
                            f.n == 0 ? "an empty field" : "a non-integer", ng, nv);
            }
            if (rc == 2) {
                return fail(ps, line, "%s gear %zu value %zu must be in 1..9223372036854775807, got %s", key, ng,
                            nv, quote(q, f));
            }
            nv++;
        }
        if (hw && nv != 2) {
            return fail(ps, line, "dynamic_hw gear %zu %s: expected H,W (two integers)", ng, quote(q, g));
        }
        if (ng > 0 && nv != first_len) {
            return fail(ps, line, "dynamic_dims gear %zu has %zu values but gear 0 has %zu", ng, nv, first_len);
        }
        for (size_t o = 0; o < ng; o++) {
            bool same = true;
            for (size_t k = 0; k < nv; k++) {
                int64_t prev = hw ? (int64_t)m->hw[o][k] : m->dims_gears[o][k];
                same = same && prev == vals[k];
            }
            if (same) {
                return fail(ps, line, "%s gear %zu (%s) repeats gear %zu", key, ng, quote(q, g), o);
            }
        }
        for (size_t k = 0; k < nv; k++) {
            if (hw) {
                m->hw[ng][k] = (uint64_t)vals[k];
            } else {
                m->dims_gears[ng][k] = vals[k];
            }
        }
        first_len = nv;
        ng++;
    }
    if (hw) {
        m->num_hw = ng;
    } else {
        m->num_dims_gears = ng;
        m->num_dyn = first_len;   /* checked against the inputs' -1 dims in finish() */
    }
    return 0;
}

static int handle_profile(parser *ps, size_t line, const token *tok, size_t ntok, const char *key, size_t *slot,
                          emu_dyn_kind kind)
{
    if (check_unique_key(ps, line, slot, key) || check_arity(ps, line, ntok, 1, key) ||
        check_one_profile(ps, line, key)) {
        return -1;
    }
    ps->m->dyn_kind = kind;
    return kind == EMU_DYN_SHAPE ? parse_ranges(ps, line, tok[1]) : parse_gear_list(ps, line, key, tok[1]);
}

static int handle_dynamic_batch(parser *ps, size_t line, const token *tok, size_t ntok)
{
    char q[QBUF];
    if (check_unique_key(ps, line, &ps->line_dyn, "dynamic_batch") ||
        check_arity(ps, line, ntok, 1, "dynamic_batch") || check_one_profile(ps, line, "dynamic_batch")) {
        return -1;
    }
    ps->m->dyn_kind = EMU_DYN_BATCH;
    token t = tok[1];
    emu_model_def *m = ps->m;
    size_t i = 0;
    while (true) {
        size_t j = i;
        while (j < t.n && t.p[j] != ',') {
            j++;
        }
        token g = {t.p + i, j - i};
        if (m->num_gears == ACL_MAX_BATCH_NUM) {
            return fail(ps, line, "too many dynamic_batch gears: expected at most %d", ACL_MAX_BATCH_NUM);
        }
        bool neg;
        uint64_t v;
        num_status st = parse_int(g, &neg, &v);
        if (st == NUM_SYNTAX) {
            return fail(ps, line, "bad dynamic_batch %s: expected comma-separated integers, got %s at "
                                  "position %zu", quote(q, t),
                        g.n == 0 ? "an empty field" : "a non-integer", m->num_gears);
        }
        if (neg || (st == NUM_OK && v < 1)) {
            return fail(ps, line, "dynamic_batch gear %zu must be >= 1, got %s", m->num_gears, quote(q, g));
        }
        if (st == NUM_RANGE) {
            return fail(ps, line, "dynamic_batch gear %zu is out of the uint64 range", m->num_gears);
        }
        if (m->num_gears > 0 && v <= m->gears[m->num_gears - 1]) {
            return fail(ps, line, "dynamic_batch gears must be strictly ascending: gear %zu (%llu) follows "
                                  "%llu", m->num_gears, (unsigned long long)v,
                        (unsigned long long)m->gears[m->num_gears - 1]);
        }
        m->gears[m->num_gears++] = v;
        if (j == t.n) {
            break;
        }
        i = j + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * AIPP lines: `aipp INPUT PARAM VALUE`, PARAM an ATC aipp_op parameter (docs/model-format.md).
 * One table drives parsing, defaults and the dynamic-AIPP check; model_file.py has its twin.
 * ---------------------------------------------------------------------------------------- */

typedef enum { AK_MODE, AK_FORMAT, AK_BOOL, AK_INT, AK_DEC } aipp_kind;

typedef struct {
    const char *name;
    aipp_kind kind;
    double lo, hi;
    const char *range; /* the range as messages show it */
    size_t off;        /* into emu_aipp_def */
} aipp_param;

#define AOFF(f) offsetof(emu_aipp_def, f)
#define AINT(n, lo, hi, r, f) {n, AK_INT, lo, hi, r, AOFF(f)}
#define ADEC(n, lo, hi, r, f) {n, AK_DEC, lo, hi, r, AOFF(f)}
#define ABOOL(n, f) {n, AK_BOOL, 0, 1, "", AOFF(f)}

static const aipp_param AIPP_PARAMS[AIPP_PARAM_COUNT] = {
    {"aipp_mode", AK_MODE, 0, 0, "", AOFF(mode)},
    {"input_format", AK_FORMAT, 0, 0, "", AOFF(input_format)},
    AINT("src_image_size_w", 1, 4096, "[1, 4096]", src_w),
    AINT("src_image_size_h", 1, 4096, "[1, 4096]", src_h),
    ABOOL("crop", crop),
    AINT("load_start_pos_w", 0, 4095, "[0, 4095]", crop_x),
    AINT("load_start_pos_h", 0, 4095, "[0, 4095]", crop_y),
    AINT("crop_size_w", 1, 4096, "[1, 4096]", crop_w),
    AINT("crop_size_h", 1, 4096, "[1, 4096]", crop_h),
    ABOOL("padding", padding),
    AINT("left_padding_size", 0, 32, "[0, 32]", pad_left),
    AINT("right_padding_size", 0, 32, "[0, 32]", pad_right),
    AINT("top_padding_size", 0, 32, "[0, 32]", pad_top),
    AINT("bottom_padding_size", 0, 32, "[0, 32]", pad_bottom),
    ADEC("padding_value", -65504, 65504, "[-65504, 65504]", padding_value),
    ABOOL("csc_switch", csc),
    ABOOL("rbuv_swap_switch", rbuv_swap),
    ABOOL("ax_swap_switch", ax_swap),
    AINT("matrix_r0c0", -32677, 32676, "[-32677, 32676]", matrix[0]),
    AINT("matrix_r0c1", -32677, 32676, "[-32677, 32676]", matrix[1]),
    AINT("matrix_r0c2", -32677, 32676, "[-32677, 32676]", matrix[2]),
    AINT("matrix_r1c0", -32677, 32676, "[-32677, 32676]", matrix[3]),
    AINT("matrix_r1c1", -32677, 32676, "[-32677, 32676]", matrix[4]),
    AINT("matrix_r1c2", -32677, 32676, "[-32677, 32676]", matrix[5]),
    AINT("matrix_r2c0", -32677, 32676, "[-32677, 32676]", matrix[6]),
    AINT("matrix_r2c1", -32677, 32676, "[-32677, 32676]", matrix[7]),
    AINT("matrix_r2c2", -32677, 32676, "[-32677, 32676]", matrix[8]),
    AINT("output_bias_0", 0, 255, "[0, 255]", output_bias[0]),
    AINT("output_bias_1", 0, 255, "[0, 255]", output_bias[1]),
    AINT("output_bias_2", 0, 255, "[0, 255]", output_bias[2]),
    AINT("input_bias_0", 0, 255, "[0, 255]", input_bias[0]),
    AINT("input_bias_1", 0, 255, "[0, 255]", input_bias[1]),
    AINT("input_bias_2", 0, 255, "[0, 255]", input_bias[2]),
    AINT("mean_chn_0", 0, 255, "[0, 255]", mean[0]),
    AINT("mean_chn_1", 0, 255, "[0, 255]", mean[1]),
    AINT("mean_chn_2", 0, 255, "[0, 255]", mean[2]),
    AINT("mean_chn_3", 0, 255, "[0, 255]", mean[3]),
    ADEC("min_chn_0", 0, 255, "[0, 255]", min[0]),
    ADEC("min_chn_1", 0, 255, "[0, 255]", min[1]),
    ADEC("min_chn_2", 0, 255, "[0, 255]", min[2]),
    ADEC("min_chn_3", 0, 255, "[0, 255]", min[3]),
    ADEC("var_reci_chn_0", -65504, 65504, "[-65504, 65504]", var_reci[0]),
    ADEC("var_reci_chn_1", -65504, 65504, "[-65504, 65504]", var_reci[1]),
    ADEC("var_reci_chn_2", -65504, 65504, "[-65504, 65504]", var_reci[2]),
    ADEC("var_reci_chn_3", -65504, 65504, "[-65504, 65504]", var_reci[3]),
    AINT("max_src_image_size", 1, 1099511627776.0, "[1, 1099511627776]", max_src_image_size),
};

/* Input formats the emulator runs: name, aclAippInputFormat, channels after AIPP. */
typedef struct {
    const char *name;
    int64_t acl;
    int64_t channels;
} aipp_format;

static const aipp_format AIPP_FORMATS[] = {
    {"YUV420SP_U8", ACL_YUV420SP_U8, 3},
    {"RGB888_U8", ACL_RGB888_U8, 3},
    {"YUV400_U8", ACL_YUV400_U8, 1},
};

static const aipp_format *aipp_format_of(int64_t acl)
{
    for (size_t i = 0; i < COUNT_OF(AIPP_FORMATS); i++) {
        if (AIPP_FORMATS[i].acl == acl) {
            return &AIPP_FORMATS[i];
        }
    }
    return NULL;
}

static void aipp_defaults(emu_aipp_def *a)
{
    memset(a, 0, sizeof *a);
    for (size_t c = 0; c < 4; c++) {
        a->var_reci[c] = 1.0;
    }
}

static int64_t *aipp_int_field(emu_aipp_def *a, const aipp_param *pp)
{
    return (int64_t *)(void *)((char *)a + pp->off);
}

static double *aipp_dec_field(emu_aipp_def *a, const aipp_param *pp)
{
    return (double *)(void *)((char *)a + pp->off);
}

static int handle_aipp(parser *ps, size_t line, const token *tok, size_t ntok)
{
    char q[QBUF];
    emu_model_def *m = ps->m;
    if (ntok - 1 != 3) {
        return fail(ps, line, "'aipp' takes 3 fields (INPUT PARAM VALUE), got %zu", ntok - 1);
    }
    size_t k;
    for (k = 0; k < m->num_inputs; k++) {
        if (tok_is(tok[1], m->inputs[k].name)) {
            break;
        }
    }
    if (k == m->num_inputs) {
        return fail(ps, line, "aipp: no input named %s is declared above this line", quote(q, tok[1]));
    }
    size_t i;
    for (i = 0; i < AIPP_PARAM_COUNT; i++) {
        if (tok_is(tok[2], AIPP_PARAMS[i].name)) {
            break;
        }
    }
    if (i == AIPP_PARAM_COUNT) {
        return fail(ps, line, "unknown aipp parameter %s: expected an ATC aipp_op parameter the emulator "
                              "runs (see docs/model-format.md, AIPP)", quote(q, tok[2]));
    }
    const aipp_param *pp = &AIPP_PARAMS[i];
    if (ps->aipp_line[k][i] != 0) {
        return fail(ps, line, "duplicate aipp parameter '%s' for input '%s': already given on line %zu", pp->name,
                    m->inputs[k].name, ps->aipp_line[k][i]);
    }
    emu_aipp_def *a = &m->aipp[k];
    token v = tok[3];
    switch (pp->kind) {
    case AK_MODE:
        if (!tok_is(v, "static") && !tok_is(v, "dynamic")) {
            return fail(ps, line, "aipp parameter 'aipp_mode' takes static or dynamic, got %s", quote(q, v));
        }
        a->mode = tok_is(v, "static") ? EMU_AIPP_STATIC : EMU_AIPP_DYNAMIC;
        break;
    case AK_FORMAT: {
        size_t f;
        for (f = 0; f < COUNT_OF(AIPP_FORMATS); f++) {
            if (tok_is(v, AIPP_FORMATS[f].name)) {
                break;
            }
        }
        if (f == COUNT_OF(AIPP_FORMATS)) {
            return fail(ps, line, "aipp parameter 'input_format' takes YUV420SP_U8, RGB888_U8 or YUV400_U8 (the "
                                  "formats the emulator runs), got %s", quote(q, v));
        }
        a->input_format = AIPP_FORMATS[f].acl;
        break;
    }
    case AK_BOOL:
        if (!tok_is(v, "true") && !tok_is(v, "false")) {
            return fail(ps, line, "aipp parameter '%s' takes true or false, got %s", pp->name, quote(q, v));
        }
        *aipp_int_field(a, pp) = tok_is(v, "true");
        break;
    case AK_INT: {
        int64_t x;
        if (parse_i64(v, &x) != NUM_OK || (double)x < pp->lo || (double)x > pp->hi) {
            return fail(ps, line, "aipp parameter '%s' must be an integer in %s, got %s", pp->name, pp->range,
                        quote(q, v));
        }
        *aipp_int_field(a, pp) = x;
        break;
    }
    case AK_DEC: {
        double x;
        if (parse_decimal(ps, v, &x) != NUM_OK || x < pp->lo || x > pp->hi) {
            return fail(ps, line, "aipp parameter '%s' must be a decimal number in %s, got %s", pp->name, pp->range,
                        quote(q, v));
        }
        *aipp_dec_field(a, pp) = x;
        break;
    }
    }
    ps->aipp_line[k][i] = line;
    if (ps->aipp_first[k] == 0) {
        ps->aipp_first[k] = line;
    }
    return 0;
}

/* Whole-model AIPP rules, input by input (after every other whole-model rule). */
static int finish_aipp(parser *ps)
{
    emu_model_def *m = ps->m;
    size_t dynamic_input = EMU_MAX_IO;
    for (size_t k = 0; k < m->num_inputs; k++) {
        if (ps->aipp_first[k] == 0) {
            continue;
        }
        const emu_aipp_def *a = &m->aipp[k];
        const emu_tensor_def *t = &m->inputs[k];
        size_t line = ps->aipp_line[k][0] ? ps->aipp_line[k][0] : ps->aipp_first[k];
        const char *n = t->name;
        if (a->mode == EMU_AIPP_NONE) {
            return fail(ps, line, "aipp for input '%s': aipp_mode is missing: expected static or dynamic", n);
        }
        if (m->dyn_kind != EMU_DYN_NONE) {
            return fail(ps, line, "aipp for input '%s': AIPP and a dynamic profile (dynamic_batch, dynamic_hw, "
                                  "dynamic_dims, dynamic_shape) cannot be combined in the emulator", n);
        }
        bool nchw = t->format == ACL_FORMAT_NCHW;
        if (t->ndims != 4 || (!nchw && t->format != ACL_FORMAT_NHWC)) {
            return fail(ps, line, "aipp for input '%s': the AIPP output must be a 4-dim NCHW or NHWC tensor, got "
                                  "%zu dims in format %s", n, t->ndims, format_name(t->format));
        }
        if (t->dtype != ACL_FLOAT16 && t->dtype != ACL_FLOAT) {
            return fail(ps, line, "aipp for input '%s': the AIPP output must be float16 or float32, got %s", n,
                        dtype_name(t->dtype));
        }
        int64_t c = nchw ? t->dims[1] : t->dims[3];
        int64_t h = nchw ? t->dims[2] : t->dims[1];
        int64_t w = nchw ? t->dims[3] : t->dims[2];
        if (a->mode == EMU_AIPP_DYNAMIC) {
            if (a->max_src_image_size == 0) {
                return fail(ps, line, "aipp for input '%s': dynamic AIPP needs max_src_image_size", n);
            }
            if (a->max_src_image_size % t->dims[0] != 0) {
                return fail(ps, line, "aipp for input '%s': max_src_image_size %lld is not a multiple of the batch "
                                      "%lld", n, (long long)a->max_src_image_size, (long long)t->dims[0]);
            }
            emu_aipp_def plain;
            aipp_defaults(&plain);
            for (size_t i = 1; i < AIPP_PARAM_COUNT; i++) {
                const aipp_param *pp = &AIPP_PARAMS[i];
                if (strcmp(pp->name, "max_src_image_size") == 0) {
                    continue;
                }
                bool same = pp->kind == AK_DEC ? *aipp_dec_field((emu_aipp_def *)a, pp) == *aipp_dec_field(&plain, pp)
                                               : *aipp_int_field((emu_aipp_def *)a, pp) == *aipp_int_field(&plain, pp);
                if (!same) {
                    return fail(ps, line, "aipp for input '%s': dynamic AIPP takes '%s' at run time "
                                          "(aclmdlSetAIPP*), not from the model file", n, pp->name);
                }
            }
            if (c != 1 && c != 3) {
                return fail(ps, line, "aipp for input '%s': dynamic AIPP needs 1 or 3 channels, the input has %lld",
                            n, (long long)c);
            }
            if (dynamic_input != EMU_MAX_IO) {
                return fail(ps, line, "aipp for input '%s': only one input may have dynamic AIPP (input '%s' has it "
                                      "already)", n, m->inputs[dynamic_input].name);
            }
            dynamic_input = k;
            continue;
        }
        if (a->input_format == 0) {
            return fail(ps, line, "aipp for input '%s': static AIPP needs input_format", n);
        }
        if (a->src_w == 0 || a->src_h == 0) {
            return fail(ps, line, "aipp for input '%s': static AIPP needs src_image_size_w and src_image_size_h", n);
        }
        if (a->max_src_image_size != 0) {
            return fail(ps, line, "aipp for input '%s': max_src_image_size is for dynamic AIPP only", n);
        }
        const aipp_format *f = aipp_format_of(a->input_format);
        if (f->channels != c) {
            return fail(ps, line, "aipp for input '%s': input_format %s gives %lld channel(s) but the input has %lld",
                        n, f->name, (long long)f->channels, (long long)c);
        }
        bool yuv420 = a->input_format == ACL_YUV420SP_U8;
        if (a->input_format == ACL_YUV400_U8 && a->csc) {
            return fail(ps, line, "aipp for input '%s': YUV400_U8 takes no colour-space conversion (csc_switch)", n);
        }
        if (yuv420 && (a->src_w % 2 != 0 || a->src_h % 2 != 0)) {
            return fail(ps, line, "aipp for input '%s': YUV420SP_U8 needs an even src_image_size_w and "
                                  "src_image_size_h, got %lldx%lld", n, (long long)a->src_w, (long long)a->src_h);
        }
        int64_t out_w = a->src_w, out_h = a->src_h;
        if (a->crop) {
            if (a->crop_x + a->crop_w > a->src_w || a->crop_y + a->crop_h > a->src_h) {
                return fail(ps, line, "aipp for input '%s': the crop window (load_start_pos %lld,%lld, crop_size "
                                      "%lldx%lld) does not fit in the %lldx%lld source image", n,
                            (long long)a->crop_x, (long long)a->crop_y, (long long)a->crop_w, (long long)a->crop_h,
                            (long long)a->src_w, (long long)a->src_h);
            }
            if (yuv420 && (a->crop_x % 2 != 0 || a->crop_y % 2 != 0)) {
                return fail(ps, line, "aipp for input '%s': YUV420SP_U8 needs an even load_start_pos_w and "
                                      "load_start_pos_h, got %lld,%lld", n, (long long)a->crop_x,
                            (long long)a->crop_y);
            }
            out_w = a->crop_w;
            out_h = a->crop_h;
        }
        if (a->padding) {
            out_w += a->pad_left + a->pad_right;
            out_h += a->pad_top + a->pad_bottom;
        }
        if (out_w != w || out_h != h) {
            return fail(ps, line, "aipp for input '%s': the AIPP output is %lldx%lld (width x height) but the input "
                                  "is %lldx%lld", n, (long long)out_w, (long long)out_h, (long long)w, (long long)h);
        }
    }
    return 0;
}

static int handle_line(parser *ps, size_t line, const token *tok, size_t ntok)
{
    char q[QBUF];
    if (!ps->have_header) {
        return handle_header(ps, line, tok, ntok);
    }
    token key = tok[0];
    if (tok_is(key, "name")) {
        return handle_name(ps, line, tok, ntok);
    }
    if (tok_is(key, "input")) {
        return handle_tensor(ps, line, tok, ntok, true);
    }
    if (tok_is(key, "output")) {
        return handle_tensor(ps, line, tok, ntok, false);
    }
    if (tok_is(key, "kernel")) {
        return handle_kernel(ps, line, tok, ntok);
    }
    if (tok_is(key, "compute_us")) {
        return handle_time(ps, line, tok, ntok, "compute_us", &ps->line_compute, &ps->m->compute_ns);
    }
    if (tok_is(key, "per_sample_us")) {
        return handle_time(ps, line, tok, ntok, "per_sample_us", &ps->line_per_sample,
                           &ps->m->per_sample_ns);
    }
    if (tok_is(key, "dynamic_batch")) {
        return handle_dynamic_batch(ps, line, tok, ntok);
    }
    if (tok_is(key, "dynamic_hw")) {
        return handle_profile(ps, line, tok, ntok, "dynamic_hw", &ps->line_hw, EMU_DYN_HW);
    }
    if (tok_is(key, "dynamic_dims")) {
        return handle_profile(ps, line, tok, ntok, "dynamic_dims", &ps->line_dims, EMU_DYN_DIMS);
    }
    if (tok_is(key, "dynamic_shape")) {
        return handle_profile(ps, line, tok, ntok, "dynamic_shape", &ps->line_shape, EMU_DYN_SHAPE);
    }
    if (tok_is(key, "per_element_us")) {
        return handle_time(ps, line, tok, ntok, "per_element_us", &ps->line_per_element, &ps->m->per_element_ns);
    }
    if (tok_is(key, "workspace_bytes")) {
        return handle_bytes(ps, line, tok, ntok, "workspace_bytes", &ps->line_ws, &ps->m->workspace_bytes);
    }
    if (tok_is(key, "weight_bytes")) {
        return handle_bytes(ps, line, tok, ntok, "weight_bytes", &ps->line_wt, &ps->m->weight_bytes);
    }
    if (tok_is(key, "aipp")) {
        return handle_aipp(ps, line, tok, ntok);
    }
    if (tok_is(key, EMU_MODEL_MAGIC)) {
        return fail(ps, line, "duplicate header line: the header must appear once, as the first line");
    }
    return fail(ps, line, "unknown key %s: expected one of name, input, output, kernel, compute_us, "
                          "per_sample_us, dynamic_batch, dynamic_hw, dynamic_dims, dynamic_shape, per_element_us, "
                          "workspace_bytes, weight_bytes, aipp", quote(q, key));
}

/* ------------------------------------------------------------------------------------------
 * Whole-model checks
 * ---------------------------------------------------------------------------------------- */

static bool integral_in_i64(double v)
{
    return v >= -TWO_POW_63 && v < TWO_POW_63 && (double)(int64_t)v == v;
}

#define DIMS_TEXT 2816   /* 128 dims of up to 20 characters and a comma */

static const char *dims_text(char *buf, const int64_t *dims, size_t nd)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < nd && o < DIMS_TEXT; i++) {
        int k = snprintf(buf + o, DIMS_TEXT - o, "%s%lld", i ? "," : "", (long long)dims[i]);
        if (k < 0) {
            break;
        }
        o += (size_t)k;
    }
    return buf;
}

/* Product of dims[from:to] (all >= 1), saturating at UINT64_MAX. */
static uint64_t dims_product(const int64_t *dims, size_t from, size_t to)
{
    uint64_t p = 1;
    for (size_t i = from; i < to; i++) {
        uint64_t d = (uint64_t)dims[i];
        if (p > UINT64_MAX / d) {
            return UINT64_MAX;
        }
        p *= d;
    }
    return p;
}

/* Whether product(dims[from:to]) x elem_size exceeds cap (exactly, without overflow). */
static bool elems_over(const int64_t *dims, size_t from, size_t to, size_t elem_size, uint64_t cap)
{
    uint64_t p = 1;
    for (size_t i = from; i < to; i++) {
        uint64_t d = (uint64_t)dims[i];
        if (p > cap / d) {
            return true;
        }
        p *= d;
    }
    return p > cap / elem_size;
}

/* dynamic_hw / dynamic_dims / dynamic_shape: where the -1 dims may be, and how many. */
static int check_profile_tensors(parser *ps)
{
    emu_model_def *m = ps->m;
    const char *key = m->dyn_kind == EMU_DYN_HW ? "dynamic_hw" : m->dyn_kind == EMU_DYN_DIMS ? "dynamic_dims" : "dynamic_shape";
    size_t dline = m->dyn_kind == EMU_DYN_HW ? ps->line_hw : m->dyn_kind == EMU_DYN_DIMS ? ps->line_dims : ps->line_shape;
    char dtext[DIMS_TEXT];
    size_t n_dyn = 0;
    for (size_t k = 0; k < m->num_inputs; k++) {
        const emu_tensor_def *t = &m->inputs[k];
        size_t axes[ACL_MAX_DIM_CNT], na = 0;
        for (size_t j = 0; j < t->ndims; j++) {
            if (t->dims[j] == -1) {
                axes[na++] = j;
            }
        }
        n_dyn += na;
        if (m->dyn_kind == EMU_DYN_HW && na > 0) {
            size_t h = t->format == ACL_FORMAT_NCHW ? 2 : t->format == ACL_FORMAT_NHWC ? 1 : 0;
            if (t->ndims != 4 || h == 0 || na != 2 || axes[0] != h || axes[1] != h + 1) {
                return fail(ps, ps->line_in[k], "input '%s': dynamic_hw needs -1 exactly at the H and W axes of a "
                                                "4-dim NCHW or NHWC input, got %s %s", t->name, format_name(t->format),
                            dims_text(dtext, t->dims, t->ndims));
            }
        }
    }
    if (n_dyn == 0) {
        return fail(ps, dline, "%s: no input has a -1 dim", key);
    }
    if (n_dyn > EMU_MAX_DYN) {
        return fail(ps, dline, "%s: the inputs have %zu -1 dims: expected at most %d", key, n_dyn, EMU_MAX_DYN);
    }
    if (m->dyn_kind == EMU_DYN_DIMS && m->num_dyn != n_dyn) {
        return fail(ps, dline, "dynamic_dims gears have %zu values but the inputs have %zu -1 dims", m->num_dyn, n_dyn);
    }
    if (m->dyn_kind == EMU_DYN_SHAPE && m->num_dyn != n_dyn) {
        return fail(ps, dline, "dynamic_shape has %zu ranges but the inputs have %zu -1 dims", m->num_dyn, n_dyn);
    }
    m->num_dyn = n_dyn;
    for (size_t k = 0; k < m->num_outputs; k++) {
        const emu_tensor_def *t = &m->outputs[k];
        const emu_tensor_def *in = k < m->num_inputs ? &m->inputs[k] : NULL;
        for (size_t j = 0; j < t->ndims; j++) {
            if (t->dims[j] == -1 && (in == NULL || j >= in->ndims || in->dims[j] != -1)) {
                return fail(ps, ps->line_out[k], "output '%s': dims[%zu] is -1, so input %zu must have a -1 dims[%zu] "
                                                 "too (an output's -1 dim takes its input's value)", t->name, j, k, j);
            }
        }
        if (in != NULL && t->dims[0] != in->dims[0]) {
            return fail(ps, ps->line_out[k], "output '%s': dims[0] is %lld but input '%s' has %lld: output %zu keeps "
                                             "the batch dimension of input %zu", t->name, (long long)t->dims[0],
                        in->name, (long long)in->dims[0], k, k);
        }
    }
    return 0;
}

static int finish(parser *ps)
{
    emu_model_def *m = ps->m;
    if (!ps->have_header) {
        return fail(ps, 0, "empty model file: expected the header line 'fastexec-emulator-model 1'");
    }
    if (ps->line_name == 0) {
        return fail(ps, 0, "missing required key 'name'");
    }
    if (ps->line_compute == 0) {
        return fail(ps, 0, "missing required key 'compute_us'");
    }
    if (m->num_inputs == 0) {
        return fail(ps, 0, "no inputs: expected 1 to %d 'input' lines", EMU_MAX_IO);
    }
    if (m->num_outputs == 0) {
        return fail(ps, 0, "no outputs: expected 1 to %d 'output' lines", EMU_MAX_IO);
    }

    bool dynamic = ps->line_dyn != 0;
    bool profile = m->dyn_kind != EMU_DYN_NONE;
    int64_t batch0 = m->inputs[0].dims[0];
    for (size_t pass = 0; pass < 2; pass++) {
        const char *kind = pass == 0 ? "input" : "output";
        size_t n = pass == 0 ? m->num_inputs : m->num_outputs;
        const emu_tensor_def *defs = pass == 0 ? m->inputs : m->outputs;
        const size_t *lines = pass == 0 ? ps->line_in : ps->line_out;
        for (size_t k = 0; k < n; k++) {
            int64_t d0 = defs[k].dims[0];
            if (d0 == -1 && !profile) {
                return fail(ps, lines[k], "%s '%s': dims[0] is -1 (dynamic batch) but the model has no "
                                          "dynamic_batch line", kind, defs[k].name);
            }
            if (d0 != -1 && dynamic) {
                return fail(ps, lines[k], "%s '%s': dims[0] must be -1 because the model declares "
                                          "dynamic_batch (line %zu), got %lld", kind, defs[k].name,
                            ps->line_dyn, (long long)d0);
            }
            for (size_t j = 1; j < defs[k].ndims; j++) {
                if (defs[k].dims[j] != -1) {
                    continue;
                }
                if (!profile) {
                    return fail(ps, lines[k], "%s '%s': dims[%zu] is -1 (dynamic) but the model has no dynamic_hw, "
                                              "dynamic_dims or dynamic_shape line", kind, defs[k].name, j);
                }
                if (dynamic) {
                    return fail(ps, lines[k], "%s '%s': dims[%zu] is -1 but dynamic_batch makes only dims[0] dynamic",
                                kind, defs[k].name, j);
                }
            }
            if (!profile && d0 != batch0) {
                return fail(ps, lines[k], "%s '%s': dims[0] is %lld but input '%s' (line %zu) has %lld: "
                                          "all tensors must share the batch dimension", kind,
                            defs[k].name, (long long)d0, m->inputs[0].name, ps->line_in[0],
                            (long long)batch0);
            }
        }
    }

    if (dynamic) {
        m->num_dyn = m->num_inputs;   /* one -1 dim per input: dims[0] */
    }
    bool varying = profile && !dynamic;   /* dynamic_hw / dynamic_dims / dynamic_shape */
    if (varying && check_profile_tensors(ps) != 0) {
        return -1;
    }
    uint64_t max_batch = emu_model_max_batch(m);
    uint64_t cap = TENSOR_BYTES_LIMIT < (uint64_t)SIZE_MAX ? TENSOR_BYTES_LIMIT : (uint64_t)SIZE_MAX;
    size_t n_shapes = emu_model_profile_count(m);
    char dtext[DIMS_TEXT];
    for (size_t pass = 0; pass < 2; pass++) {
        const char *kind = pass == 0 ? "input" : "output";
        size_t n = pass == 0 ? m->num_inputs : m->num_outputs;
        const emu_tensor_def *defs = pass == 0 ? m->inputs : m->outputs;
        const size_t *lines = pass == 0 ? ps->line_in : ps->line_out;
        for (size_t k = 0; k < n; k++) {
            if (varying) {
                for (size_t e = 0; e < n_shapes; e++) {
                    emu_dyn_values v;
                    int64_t dims[ACL_MAX_DIM_CNT];
                    emu_model_profile_values(m, e, &v);
                    emu_shape_dims(m, &v, pass, k, dims);
                    if (elems_over(dims, 0, defs[k].ndims, defs[k].elem_size, cap)) {
                        return fail(ps, lines[k], "%s '%s' is too large: at shape %s it holds more than %llu bytes "
                                                  "(the limit is 2^40 bytes per tensor)", kind, defs[k].name,
                                    dims_text(dtext, dims, defs[k].ndims), (unsigned long long)cap);
                    }
                }
                continue;
            }
            uint64_t sample_bytes = (uint64_t)defs[k].sample_elems * defs[k].elem_size;
            if (max_batch > cap / sample_bytes) {
                return fail(ps, lines[k], "%s '%s' is too large: at batch %llu it holds more than %llu "
                                          "bytes (the limit is 2^40 bytes per tensor)", kind, defs[k].name,
                            (unsigned long long)max_batch, (unsigned long long)cap);
            }
        }
    }

    const char *kname = KERNEL_NAMES[m->kernel];
    if (m->num_outputs != m->num_inputs) {
        return fail(ps, ps->line_kernel, "kernel '%s' computes output k from input k, so it needs as many "
                                         "outputs as inputs: got %zu inputs and %zu outputs", kname,
                    m->num_inputs, m->num_outputs);
    }
    for (size_t k = 0; k < m->num_inputs; k++) {
        const emu_tensor_def *in = &m->inputs[k];
        const emu_tensor_def *out = &m->outputs[k];
        if (m->kernel != EMU_KERNEL_SEGMENT_SUM && out->dtype != in->dtype) {
            return fail(ps, ps->line_out[k], "output '%s' has dtype %s but input '%s' has %s: kernel '%s' "
                                             "needs the same dtype for input %zu and output %zu", out->name,
                        dtype_name(out->dtype), in->name, dtype_name(in->dtype), kname, k, k);
        }
        for (size_t e = 0; e < (varying ? n_shapes : 1); e++) {
            size_t ni = in->sample_elems, no = out->sample_elems;
            char at[DIMS_TEXT + 32] = "";
            if (varying) {
                emu_dyn_values v;
                int64_t di[ACL_MAX_DIM_CNT], dout[ACL_MAX_DIM_CNT];
                emu_model_profile_values(m, e, &v);
                emu_shape_dims(m, &v, 0, k, di);
                emu_shape_dims(m, &v, 1, k, dout);
                ni = (size_t)dims_product(di, 1, in->ndims);
                no = (size_t)dims_product(dout, 1, out->ndims);
                snprintf(at, sizeof at, " (at input shape %s)", dims_text(dtext, di, in->ndims));
            }
            if (m->kernel == EMU_KERNEL_SEGMENT_SUM && no > ni) {
                return fail(ps, ps->line_out[k], "output '%s' holds %zu elements per sample, more than the "
                                                 "%zu of input '%s': kernel 'segment_sum' needs 1 <= output "
                                                 "sample elements <= input sample elements%s", out->name,
                            no, ni, in->name, at);
            }
            if (m->kernel != EMU_KERNEL_SEGMENT_SUM && no != ni) {
                return fail(ps, ps->line_out[k], "output '%s' holds %zu elements per sample but input '%s' "
                                                 "holds %zu: kernel '%s' needs equal sample element counts%s",
                            out->name, no, in->name, ni, kname, at);
            }
        }
        if (m->kernel == EMU_KERNEL_SEGMENT_SUM) {
            continue;
        }
        if (m->kernel == EMU_KERNEL_AFFINE && !dtype_is_float(in->dtype)) {
            if (!integral_in_i64(m->scale)) {
                return fail(ps, ps->line_kernel, "kernel 'affine' on %s tensors (input '%s') needs an "
                                                 "integer scale within the int64 range, got %.17g",
                            dtype_name(in->dtype), in->name, m->scale);
            }
            if (!integral_in_i64(m->bias)) {
                return fail(ps, ps->line_kernel, "kernel 'affine' on %s tensors (input '%s') needs an "
                                                 "integer bias within the int64 range, got %.17g",
                            dtype_name(in->dtype), in->name, m->bias);
            }
        }
    }
    return finish_aipp(ps);
}

/* ------------------------------------------------------------------------------------------
 * Entry point
 * ---------------------------------------------------------------------------------------- */

static int parse_text(parser *ps, const char *text, size_t len)
{
    size_t pos = 0;
    size_t line = 0;
    while (pos < len) {
        line++;
        size_t start = pos;
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        pos = nl != NULL ? end + 1 : len;
        size_t n = end - start;
        const char *s = text + start;
        if (n > LINE_MAX_BYTES) {
            return fail(ps, line, "line is %zu bytes long: expected at most %u", n, LINE_MAX_BYTES);
        }
        if (memchr(s, '\0', n) != NULL) {
            return fail(ps, line, "NUL byte: a model file is text");
        }
        const char *hash = memchr(s, '#', n);
        if (hash != NULL) {
            n = (size_t)(hash - s);
        }
        token tok[MAX_TOKENS];
        size_t ntok = 0;
        size_t i = 0;
        while (i < n) {
            while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) {
                i++;
            }
            if (i == n) {
                break;
            }
            size_t j = i;
            while (j < n && s[j] != ' ' && s[j] != '\t' && s[j] != '\r') {
                j++;
            }
            if (ntok < MAX_TOKENS) {
                tok[ntok].p = s + i;
                tok[ntok].n = j - i;
            }
            ntok++;
            i = j;
        }
        if (ntok == 0) {
            continue;
        }
        /* ntok is the true count; only the first MAX_TOKENS are stored. No key takes that
         * many fields, and every handler checks the count before it indexes a token. */
        if (handle_line(ps, line, tok, ntok) != 0) {
            return -1;
        }
    }
    return finish(ps);
}

aclError emu_model_parse(const char *text, size_t len, emu_model_def *out, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (out == NULL) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "model file: no output structure given");
        }
        return ACL_ERROR_PARSE_MODEL;
    }
    memset(out, 0, sizeof(*out));
    out->kernel = EMU_KERNEL_IDENTITY;
    out->scale = 1.0;
    out->bias = 0.0;
    for (size_t k = 0; k < EMU_MAX_IO; k++) {
        aipp_defaults(&out->aipp[k]);
    }

    parser ps;
    memset(&ps, 0, sizeof(ps));
    ps.m = out;
    ps.err = err;
    ps.errlen = errlen;
    ps.c_locale = (locale_t)0;

    int rc = text == NULL && len > 0 ? fail(&ps, 0, "no text given") : parse_text(&ps, text, len);
    if (ps.c_locale != (locale_t)0) {
        freelocale(ps.c_locale);
    }
    if (rc != 0) {
        memset(out, 0, sizeof(*out));
        return ACL_ERROR_PARSE_MODEL;
    }
    return ACL_SUCCESS;
}

size_t emu_tensor_bytes(const emu_tensor_def *t, uint64_t batch)
{
    /* Saturates at SIZE_MAX for a batch beyond what the parser validated. */
    uint64_t per = (uint64_t)t->sample_elems * t->elem_size;
    if (per != 0 && batch > (uint64_t)SIZE_MAX / per) {
        return SIZE_MAX;
    }
    return (size_t)(batch * per);
}

size_t emu_model_profile_count(const emu_model_def *m)
{
    switch (m->dyn_kind) {
    case EMU_DYN_BATCH:
        return m->num_gears;
    case EMU_DYN_HW:
        return m->num_hw;
    case EMU_DYN_DIMS:
        return m->num_dims_gears;
    case EMU_DYN_SHAPE:
        return 2;
    default:
        return 0;
    }
}

void emu_model_batch_values(const emu_model_def *m, uint64_t batch, emu_dyn_values *v)
{
    memset(v, 0, sizeof *v);
    for (size_t k = 0; k < EMU_MAX_DYN && k < m->num_inputs; k++) {
        v->v[k] = (int64_t)batch;
    }
}

void emu_model_profile_values(const emu_model_def *m, size_t i, emu_dyn_values *v)
{
    memset(v, 0, sizeof *v);
    switch (m->dyn_kind) {
    case EMU_DYN_BATCH:
        emu_model_batch_values(m, m->gears[i], v);
        return;
    case EMU_DYN_HW: {
        size_t o = 0;
        for (size_t k = 0; k < m->num_inputs; k++) {
            const emu_tensor_def *t = &m->inputs[k];
            for (size_t j = 0; j < t->ndims && o + 1 < EMU_MAX_DYN; j++) {
                if (t->dims[j] == -1) {
                    v->v[o++] = (int64_t)m->hw[i][0];
                    v->v[o++] = (int64_t)m->hw[i][1];
                    break;
                }
            }
        }
        return;
    }
    case EMU_DYN_DIMS:
        memcpy(v->v, m->dims_gears[i], sizeof v->v);
        return;
    case EMU_DYN_SHAPE:
        for (size_t j = 0; j < m->num_dyn; j++) {
            v->v[j] = m->ranges[j][i ? 1 : 0];
        }
        return;
    default:
        return;
    }
}

void emu_shape_dims(const emu_model_def *m, const emu_dyn_values *v, int output, size_t k, int64_t *dims)
{
    size_t o = 0;
    for (size_t i = 0; i < k && i < m->num_inputs; i++) {
        for (size_t j = 0; j < m->inputs[i].ndims; j++) {
            o += m->inputs[i].dims[j] == -1;
        }
    }
    int64_t in_dims[ACL_MAX_DIM_CNT];
    const emu_tensor_def *in = k < m->num_inputs ? &m->inputs[k] : NULL;
    size_t nin = in ? in->ndims : 0;
    for (size_t j = 0; j < nin; j++) {
        in_dims[j] = in->dims[j] == -1 ? (o < EMU_MAX_DYN ? v->v[o++] : 1) : in->dims[j];
    }
    if (!output) {
        memcpy(dims, in_dims, nin * sizeof dims[0]);
        return;
    }
    const emu_tensor_def *t = &m->outputs[k];
    for (size_t j = 0; j < t->ndims; j++) {
        dims[j] = t->dims[j] == -1 ? (j < nin ? in_dims[j] : 1) : t->dims[j];
    }
}

size_t emu_shape_bytes(const emu_model_def *m, const emu_dyn_values *v, int output, size_t k)
{
    const emu_tensor_def *t = output ? &m->outputs[k] : &m->inputs[k];
    int64_t dims[ACL_MAX_DIM_CNT];
    emu_shape_dims(m, v, output, k, dims);
    uint64_t p = dims_product(dims, 0, t->ndims);
    if (p > (uint64_t)SIZE_MAX / t->elem_size) {
        return SIZE_MAX;
    }
    return (size_t)(p * t->elem_size);
}

uint64_t emu_shape_exec_ns(const emu_model_def *m, const emu_dyn_values *v)
{
    uint64_t elems = 0;
    int64_t dims[ACL_MAX_DIM_CNT];
    for (size_t k = 0; k < m->num_inputs; k++) {
        emu_shape_dims(m, v, 0, k, dims);
        elems += dims_product(dims, 0, m->inputs[k].ndims);
    }
    emu_shape_dims(m, v, 0, 0, dims);
    return m->compute_ns + m->per_sample_ns * (uint64_t)dims[0] + m->per_element_ns * elems;
}

uint64_t emu_model_max_batch(const emu_model_def *m)
{
    if (m->num_gears > 0) {
        return m->gears[m->num_gears - 1];
    }
    if (m->dyn_kind != EMU_DYN_NONE) {
        uint64_t best = 0;
        for (size_t i = 0; i < emu_model_profile_count(m); i++) {
            emu_dyn_values v;
            int64_t dims[ACL_MAX_DIM_CNT];
            emu_model_profile_values(m, i, &v);
            emu_shape_dims(m, &v, 0, 0, dims);
            if ((uint64_t)dims[0] > best) {
                best = (uint64_t)dims[0];
            }
        }
        return best;
    }
    if (m->num_inputs == 0 || m->inputs[0].dims[0] < 1) {
        return 0;
    }
    return (uint64_t)m->inputs[0].dims[0];
}

/* ------------------------------------------------------------------------------------------
 * Kernels: element access (memcpy keeps unaligned buffers defined; compilers emit plain loads)
 * ---------------------------------------------------------------------------------------- */

static double half_to_double(uint16_t h)
{
    uint64_t sign = (uint64_t)(h & 0x8000u) << 48;
    unsigned exp = (h >> 10) & 0x1fu;
    uint64_t man = h & 0x3ffu;
    uint64_t bits;
    if (exp == 0) {
        double d = (double)man * 0x1p-24; /* subnormal or zero: exact */
        return sign ? -d : d;
    }
    if (exp == 31) {
        bits = sign | 0x7ff0000000000000ull | (man << 42);
    } else {
        bits = sign | ((uint64_t)(exp - 15 + 1023) << 52) | (man << 42);
    }
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* Correctly rounded (nearest, ties to even) double -> IEEE binary16. NaN -> quiet NaN keeping
 * the sign and the top payload bits; overflow -> inf. */
static uint16_t double_to_half(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    uint16_t sign = (uint16_t)((b >> 48) & 0x8000u);
    int exp = (int)((b >> 52) & 0x7ff);
    uint64_t man = b & 0xfffffffffffffull;
    if (exp == 0x7ff) {
        if (man != 0) {
            return (uint16_t)(sign | 0x7e00u | (uint16_t)(man >> 42));
        }
        return (uint16_t)(sign | 0x7c00u);
    }
    if (exp == 0) {
        return sign; /* zero or double subnormal: far below half the smallest half subnormal */
    }
    int e = exp - 1023; /* value = 1.man * 2^e */
    if (e >= 16) {
        return (uint16_t)(sign | 0x7c00u);
    }
    uint64_t sig = man | (1ull << 52);
    unsigned shift;
    bool subnormal = e < -14;
    if (subnormal) {
        /* units of 2^-24: shift = 52 - (e + 24) */
        if (e < -25) {
            return sign; /* below 2^-25, i.e. under half of the smallest subnormal */
        }
        shift = (unsigned)(42 + (-14 - e));
    } else {
        shift = 42;
    }
    uint64_t q = sig >> shift;
    uint64_t rem = sig & ((1ull << shift) - 1u);
    uint64_t halfway = 1ull << (shift - 1u);
    if (rem > halfway || (rem == halfway && (q & 1u))) {
        q++;
    }
    if (subnormal) {
        return (uint16_t)(sign | q); /* q == 0x400 is the smallest normal: the encoding carries */
    }
    if (q == 0x800u) {
        q = 0x400u;
        e++;
        if (e >= 16) {
            return (uint16_t)(sign | 0x7c00u);
        }
    }
    return (uint16_t)(sign | (uint16_t)((e + 15) << 10) | (uint16_t)(q & 0x3ffu));
}

#define LOADER(NAME, T)                                                                                  \
    static inline T NAME(const unsigned char *p, size_t i)                                               \
    {                                                                                                    \
        T v;                                                                                             \
        memcpy(&v, p + i * sizeof(T), sizeof(T));                                                        \
        return v;                                                                                        \
    }
#define STORER(NAME, T)                                                                                  \
    static inline void NAME(unsigned char *p, size_t i, T v)                                             \
    {                                                                                                    \
        memcpy(p + i * sizeof(T), &v, sizeof(T));                                                        \
    }

LOADER(ld_f32, float)
LOADER(ld_f64, double)
LOADER(ld_u16, uint16_t)
LOADER(ld_i16, int16_t)
LOADER(ld_u32, uint32_t)
LOADER(ld_i32, int32_t)
LOADER(ld_u64, uint64_t)
LOADER(ld_i64, int64_t)
STORER(st_f32, float)
STORER(st_f64, double)
STORER(st_u16, uint16_t)
STORER(st_u32, uint32_t)
STORER(st_u64, uint64_t)

/* Element i of an integer or bool tensor as int64 bits (two's complement, sign-extended). */
static inline uint64_t load_int_bits(const unsigned char *p, aclDataType dt, size_t i)
{
    switch (dt) {
    case ACL_BOOL:
        return p[i] != 0;
    case ACL_INT8:
        return (uint64_t)(int64_t)(int8_t)p[i];
    case ACL_UINT8:
        return p[i];
    case ACL_INT16:
        return (uint64_t)(int64_t)ld_i16(p, i);
    case ACL_UINT16:
        return ld_u16(p, i);
    case ACL_INT32:
        return (uint64_t)(int64_t)ld_i32(p, i);
    case ACL_UINT32:
        return ld_u32(p, i);
    default: /* INT64, UINT64 */
        return ld_u64(p, i);
    }
}

/* Store the low bits of an int64 (given as uint64 bits) into an integer or bool slot. */
static inline void store_int_bits(unsigned char *p, aclDataType dt, size_t i, uint64_t v)
{
    switch (dt) {
    case ACL_BOOL:
        p[i] = v != 0;
        break;
    case ACL_INT8:
    case ACL_UINT8:
        p[i] = (unsigned char)v;
        break;
    case ACL_INT16:
    case ACL_UINT16:
        st_u16(p, i, (uint16_t)v);
        break;
    case ACL_INT32:
    case ACL_UINT32:
        st_u32(p, i, (uint32_t)v);
        break;
    default:
        st_u64(p, i, v);
        break;
    }
}

/* Element i of any tensor as a double (integers rounded to nearest-even, float16 exact). */
static inline double load_double(const unsigned char *p, aclDataType dt, size_t i)
{
    switch (dt) {
    case ACL_FLOAT:
        return (double)ld_f32(p, i);
    case ACL_DOUBLE:
        return ld_f64(p, i);
    case ACL_FLOAT16:
        return half_to_double(ld_u16(p, i));
    case ACL_UINT64:
        return (double)ld_u64(p, i);
    case ACL_INT64:
        return (double)ld_i64(p, i);
    default:
        return (double)(int64_t)load_int_bits(p, dt, i);
    }
}

/* double -> int64 for integer outputs: NaN -> 0, saturate outside [-2^63, 2^63), else
 * truncate toward zero. The caller keeps the low bits (wraps to the dtype width). */
static inline uint64_t double_to_int_bits(double v)
{
    if (v != v) {
        return 0;
    }
    if (v >= TWO_POW_63) {
        return (uint64_t)INT64_MAX;
    }
    if (v < -TWO_POW_63) {
        return (uint64_t)1 << 63; /* INT64_MIN */
    }
    return (uint64_t)(int64_t)v;
}

static inline void store_double(unsigned char *p, aclDataType dt, size_t i, double v)
{
    switch (dt) {
    case ACL_FLOAT:
        st_f32(p, i, (float)v);
        break;
    case ACL_DOUBLE:
        st_f64(p, i, v);
        break;
    case ACL_FLOAT16:
        st_u16(p, i, double_to_half(v));
        break;
    case ACL_BOOL:
        p[i] = v != 0.0;
        break;
    default:
        store_int_bits(p, dt, i, double_to_int_bits(v));
        break;
    }
}

/* ------------------------------------------------------------------------------------------
 * affine
 * ---------------------------------------------------------------------------------------- */

static void run_affine(const emu_tensor_def *t, size_t count, double scale, double bias,
                       const unsigned char *x, unsigned char *y)
{
    switch (t->dtype) {
    case ACL_FLOAT:
        for (size_t i = 0; i < count; i++) {
            double p = (double)ld_f32(x, i) * scale;
            st_f32(y, i, (float)(p + bias));
        }
        return;
    case ACL_DOUBLE:
        for (size_t i = 0; i < count; i++) {
            double p = ld_f64(x, i) * scale;
            st_f64(y, i, p + bias);
        }
        return;
    case ACL_FLOAT16:
        for (size_t i = 0; i < count; i++) {
            double p = half_to_double(ld_u16(x, i)) * scale;
            st_u16(y, i, double_to_half(p + bias));
        }
        return;
    default: {
        /* Integer-valued scale and bias in the int64 range (checked by the parser). */
        uint64_t s = (uint64_t)(int64_t)scale;
        uint64_t b = (uint64_t)(int64_t)bias;
        switch (t->dtype) {
        case ACL_UINT8:
            for (size_t i = 0; i < count; i++) {
                y[i] = (unsigned char)((uint64_t)x[i] * s + b);
            }
            return;
        case ACL_INT32:
            for (size_t i = 0; i < count; i++) {
                uint64_t v = (uint64_t)(int64_t)ld_i32(x, i);
                st_u32(y, i, (uint32_t)(v * s + b));
            }
            return;
        default:
            for (size_t i = 0; i < count; i++) {
                store_int_bits(y, t->dtype, i, load_int_bits(x, t->dtype, i) * s + b);
            }
            return;
        }
    }
    }
}

/* ------------------------------------------------------------------------------------------
 * segment_sum
 * ---------------------------------------------------------------------------------------- */

/* Exact sum of n uint8 values: eight bytes at a time into 16-bit lanes (each 64-bit word adds
 * at most 2 * 255 per lane, so 128 words fit before the lanes are folded). */
static uint64_t sum_u8(const unsigned char *p, size_t n)
{
    const uint64_t mask = 0x00ff00ff00ff00ffull;
    uint64_t total = 0;
    size_t i = 0;
    while (n - i >= 8) {
        size_t words = (n - i) / 8;
        if (words > 128) {
            words = 128;
        }
        uint64_t acc = 0;
        for (size_t w = 0; w < words; w++, i += 8) {
            uint64_t v;
            memcpy(&v, p + i, 8);
            acc += (v & mask) + ((v >> 8) & mask);
        }
        total += (acc & 0xffffu) + ((acc >> 16) & 0xffffu) + ((acc >> 32) & 0xffffu) + (acc >> 48);
    }
    for (; i < n; i++) {
        total += p[i];
    }
    return total;
}

/* Largest |value| of an integer dtype narrower than 64 bits (0 for the others). */
static uint64_t int_max_abs(aclDataType dt)
{
    switch (dt) {
    case ACL_BOOL:
        return 1;
    case ACL_UINT8:
        return 255;
    case ACL_INT8:
        return 128;
    case ACL_UINT16:
        return 65535;
    case ACL_INT16:
        return 32768;
    case ACL_UINT32:
        return 4294967295u;
    case ACL_INT32:
        return 2147483648u;
    default:
        return 0;
    }
}

/* Sum of elements [a, b) of a sample, in double, left to right: x[a] + x[a+1] + ... (the first
 * element starts the sum, so a segment of -0.0 sums to -0.0). When every partial sum is an
 * integer of magnitude <= 2^53 (the exact_int case), the double additions are all exact and an
 * integer accumulator gives the identical result faster. */
static double segment_total(const unsigned char *x, aclDataType dt, size_t a, size_t b, bool exact_int)
{
    if (exact_int) {
        if (dt == ACL_UINT8) {
            return (double)sum_u8(x + a, b - a);
        }
        uint64_t s = 0;
        for (size_t i = a; i < b; i++) {
            s += load_int_bits(x, dt, i);
        }
        return (double)(int64_t)s;
    }
    double s;
    switch (dt) {
    case ACL_FLOAT:
        s = (double)ld_f32(x, a);
        for (size_t i = a + 1; i < b; i++) {
            s += (double)ld_f32(x, i);
        }
        return s;
    case ACL_DOUBLE:
        s = ld_f64(x, a);
        for (size_t i = a + 1; i < b; i++) {
            s += ld_f64(x, i);
        }
        return s;
    default:
        s = load_double(x, dt, a);
        for (size_t i = a + 1; i < b; i++) {
            s += load_double(x, dt, i);
        }
        return s;
    }
}

static void run_segment_sum(const emu_tensor_def *ti, const emu_tensor_def *to, size_t n, size_t m, uint64_t batch,
                            double scale, double bias, const unsigned char *x, unsigned char *y)
{
    if (m == 0 || n < m) {
        return; /* excluded by the parser */
    }
    uint64_t max_abs = int_max_abs(ti->dtype);
    uint64_t longest = n / m + (n % m != 0);
    bool exact_int = max_abs != 0 && longest <= TWO_POW_53 / max_abs;
    size_t q = n / m, r = n % m;
    for (uint64_t s = 0; s < batch; s++) {
        const unsigned char *xs = x + (size_t)s * n * ti->elem_size;
        unsigned char *ys = y + (size_t)s * m * to->elem_size;
        /* Segment j is [floor(j*n/m), floor((j+1)*n/m)); the floor of j*r/m is carried
         * incrementally so that no product can overflow. */
        size_t start = 0, carry_num = 0;
        for (size_t j = 0; j < m; j++) {
            size_t len = q;
            carry_num += r;
            if (carry_num >= m) {
                carry_num -= m;
                len++;
            }
            double total = segment_total(xs, ti->dtype, start, start + len, exact_int);
            double p = total * scale;
            store_double(ys, to->dtype, j, p + bias);
            start += len;
        }
    }
}

void emu_kernel_run_values(const emu_model_def *m, const emu_dyn_values *v, const void *const *inputs, void *const *outputs)
{
    for (size_t k = 0; k < m->num_inputs && k < m->num_outputs; k++) {
        const emu_tensor_def *ti = &m->inputs[k];
        const emu_tensor_def *to = &m->outputs[k];
        int64_t di[ACL_MAX_DIM_CNT], dout[ACL_MAX_DIM_CNT];
        emu_shape_dims(m, v, 0, k, di);
        emu_shape_dims(m, v, 1, k, dout);
        uint64_t rows = (uint64_t)di[0];
        size_t n = (size_t)dims_product(di, 1, ti->ndims), e = (size_t)dims_product(dout, 1, to->ndims);
        const unsigned char *x = inputs[k];
        unsigned char *y = outputs[k];
        switch (m->kernel) {
        case EMU_KERNEL_IDENTITY:
            memcpy(y, x, (size_t)rows * n * ti->elem_size);
            break;
        case EMU_KERNEL_AFFINE:
            run_affine(ti, (size_t)rows * n, m->scale, m->bias, x, y);
            break;
        case EMU_KERNEL_SEGMENT_SUM:
            run_segment_sum(ti, to, n, e, rows, m->scale, m->bias, x, y);
            break;
        }
    }
}

void emu_kernel_run(const emu_model_def *m, uint64_t batch, const void *const *inputs, void *const *outputs)
{
    if (m == NULL || batch == 0) {
        return;
    }
    for (size_t k = 0; k < m->num_inputs && k < m->num_outputs; k++) {
        const emu_tensor_def *ti = &m->inputs[k];
        const emu_tensor_def *to = &m->outputs[k];
        const unsigned char *x = inputs[k];
        unsigned char *y = outputs[k];
        switch (m->kernel) {
        case EMU_KERNEL_IDENTITY:
            memcpy(y, x, emu_tensor_bytes(ti, batch));
            break;
        case EMU_KERNEL_AFFINE:
            run_affine(ti, (size_t)batch * ti->sample_elems, m->scale, m->bias, x, y);
            break;
        case EMU_KERNEL_SEGMENT_SUM:
            run_segment_sum(ti, to, ti->sample_elems, to->sample_elems, batch, m->scale, m->bias, x, y);
            break;
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * AIPP: the raw image an AIPP input shows, and the pre-processing run before the kernel.
 *
 * Per output pixel (docs/model-format.md, "AIPP arithmetic"): padding border -> padding value;
 * otherwise the source pixel (after the crop offset) is read as channels (Y,U,V from NV12 /
 * R,G,B / Y), U<->V or R<->B swapped by rbuv_swap, colour-converted in integers when csc is on
 * (((sum_c m[r][c] * (x_c - ib_c)) >> 8) + ob_r, floor shift, clamped to 0..255), then
 * y = ((x - mean) - min) * var_reci in double with min and var_reci rounded to float32 then
 * binary16 (exact), rounded once to the output dtype.
 * ---------------------------------------------------------------------------------------- */

uint16_t emu_float_to_half(float f)
{
    return double_to_half((double)f);
}

double emu_half_to_double(uint16_t h)
{
    return half_to_double(h);
}

int emu_aipp_dynamic_input(const emu_model_def *m)
{
    for (size_t k = 0; k < m->num_inputs; k++) {
        if (m->aipp[k].mode == EMU_AIPP_DYNAMIC) {
            return (int)k;
        }
    }
    return -1;
}

size_t emu_aipp_data_size(uint64_t batch)
{
    return EMU_AIPP_HEADER_BYTES + (size_t)batch * EMU_AIPP_BATCH_BYTES;
}

/* Bytes of one raw image of format `fmt` (aclAippInputFormat). */
static uint64_t aipp_image_bytes(int64_t fmt, int64_t w, int64_t h)
{
    uint64_t px = (uint64_t)w * (uint64_t)h;
    switch (fmt) {
    case ACL_YUV420SP_U8:
        return px * 3u / 2u;
    case ACL_RGB888_U8:
        return px * 3u;
    default:
        return px;
    }
}

void emu_input_visible(const emu_model_def *m, size_t k, int v1, emu_tensor_def *out)
{
    const emu_tensor_def *t = &m->inputs[k];
    const emu_aipp_def *a = &m->aipp[k];
    *out = *t;
    if (a->mode == EMU_AIPP_NONE) {
        return;
    }
    int64_t n = t->dims[0];
    out->dtype = ACL_UINT8;
    out->elem_size = 1;
    if (a->mode == EMU_AIPP_DYNAMIC) {
        out->format = ACL_FORMAT_ND;
        out->ndims = 2;
        out->dims[1] = a->max_src_image_size / n;
        out->sample_elems = (size_t)out->dims[1];
        return;
    }
    const aipp_format *f = aipp_format_of(a->input_format);
    bool yuv420 = a->input_format == ACL_YUV420SP_U8;
    out->format = ACL_FORMAT_NHWC;
    out->ndims = 4;
    out->dims[1] = yuv420 && !v1 ? a->src_h * 3 / 2 : a->src_h;
    out->dims[2] = a->src_w;
    out->dims[3] = v1 ? f->channels : (yuv420 ? 1 : f->channels);
    out->sample_elems = (size_t)aipp_image_bytes(a->input_format, a->src_w, a->src_h);
}

/* Parameters of one run of the AIPP over one sample. */
typedef struct {
    int64_t format; /* aclAippInputFormat */
    int64_t src_w, src_h;
    int64_t csc, rbuv_swap;
    int64_t matrix[9], output_bias[3], input_bias[3];
    uint16_t padding_value_h;
} aipp_image;

static int64_t floor_shift8(int64_t v)
{
    return v >= 0 ? v >> 8 : -((-v + 255) >> 8);
}

/* Every channel value reaching the normalisation is an integer 0..255 (raw, or clamped by the
 * conversion), so the normalised and rounded value of each (channel, value) is computed once per
 * image into a table: the same arithmetic, done 4 x 256 times instead of per pixel. */
typedef struct {
    unsigned char bytes[4][256][4];  /* the output dtype's encoding (2 or 4 bytes used) */
    unsigned char pad[4];
} aipp_lut;

static void aipp_encode(unsigned char *dst, aclDataType dt, double v)
{
    if (dt == ACL_FLOAT16) {
        uint16_t h = double_to_half(v);
        memcpy(dst, &h, 2);
    } else {
        float f = (float)v;
        memcpy(dst, &f, 4);
    }
}

static void aipp_lut_fill(aipp_lut *l, const aipp_image *im, const emu_aipp_batch *b, aclDataType dt)
{
    for (int c = 0; c < 4; c++) {
        double min_d = half_to_double(b->min_h[c]), var_d = half_to_double(b->var_reci_h[c]);
        for (int v = 0; v < 256; v++) {
            double d = (double)((int64_t)v - b->mean[c]) - min_d;
            aipp_encode(l->bytes[c][v], dt, d * var_d);
        }
    }
    aipp_encode(l->pad, dt, half_to_double(im->padding_value_h));
}

/* One 2- or 4-byte element (constant-size copies, which compilers turn into plain stores). */
static inline void aipp_put(unsigned char *dst, const unsigned char *v, size_t es)
{
    if (es == 2) {
        memcpy(dst, v, 2);
    } else {
        memcpy(dst, v, 4);
    }
}

static void aipp_sample(const aipp_image *im, const emu_aipp_batch *b, const unsigned char *src, const emu_tensor_def *t,
                        unsigned char *dst)
{
    bool nchw = t->format == ACL_FORMAT_NCHW;
    int64_t nc = nchw ? t->dims[1] : t->dims[3];
    int64_t oh = nchw ? t->dims[2] : t->dims[1];
    int64_t ow = nchw ? t->dims[3] : t->dims[2];
    int64_t top = b->padding ? b->pad_top : 0, left = b->padding ? b->pad_left : 0;
    int64_t bottom = b->padding ? b->pad_bottom : 0, right = b->padding ? b->pad_right : 0;
    int64_t x0 = b->crop ? b->crop_x : 0, y0 = b->crop ? b->crop_y : 0;
    size_t es = t->elem_size;
    /* element (c, i, j) of the output is at byte (c * cstride + (i * ow + j) * pstride) * es */
    size_t cstride = nchw ? (size_t)(oh * ow) : 1, pstride = nchw ? 1 : (size_t)nc;
    aipp_lut table;
    aipp_lut *lut = &table;
    aipp_lut_fill(lut, im, b, t->dtype);
    const unsigned char *uv = src + (size_t)(im->src_w * im->src_h);
    bool csc = im->csc && nc == 3;
    for (int64_t i = 0; i < oh; i++) {
        bool pad_row = i < top || i >= oh - bottom;
        int64_t si = y0 + i - top;
        for (int64_t j = 0; j < ow; j++) {
            size_t at = (size_t)(i * ow + j) * pstride;
            if (pad_row || j < left || j >= ow - right) {
                for (int64_t c = 0; c < nc; c++) {
                    aipp_put(dst + (at + (size_t)c * cstride) * es, lut->pad, es);
                }
                continue;
            }
            int64_t sj = x0 + j - left;
            size_t p = (size_t)(si * im->src_w + sj);
            int64_t x[3] = {0, 0, 0};
            if (im->format == ACL_YUV420SP_U8) {
                size_t q = (size_t)((si / 2) * im->src_w + (sj / 2) * 2);
                x[0] = src[p];
                x[1] = uv[q + (im->rbuv_swap ? 1 : 0)];
                x[2] = uv[q + (im->rbuv_swap ? 0 : 1)];
            } else if (im->format == ACL_RGB888_U8) {
                x[0] = src[3 * p + (im->rbuv_swap ? 2 : 0)];
                x[1] = src[3 * p + 1];
                x[2] = src[3 * p + (im->rbuv_swap ? 0 : 2)];
            } else {
                x[0] = src[p];
            }
            if (csc) {
                int64_t r[3];
                for (int o = 0; o < 3; o++) {
                    int64_t acc = im->matrix[3 * o] * (x[0] - im->input_bias[0]) +
                                  im->matrix[3 * o + 1] * (x[1] - im->input_bias[1]) +
                                  im->matrix[3 * o + 2] * (x[2] - im->input_bias[2]);
                    acc = floor_shift8(acc) + im->output_bias[o];
                    r[o] = acc < 0 ? 0 : acc > 255 ? 255 : acc;
                }
                x[0] = r[0];
                x[1] = r[1];
                x[2] = r[2];
            }
            for (int64_t c = 0; c < nc; c++) {
                aipp_put(dst + (at + (size_t)c * cstride) * es, lut->bytes[c][x[c]], es);
            }
        }
    }
}

static int32_t rd_i32(const unsigned char *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static int16_t rd_i16(const unsigned char *p)
{
    int16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint16_t rd_u16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static int aipp_err(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int aipp_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Decode the dynamic AIPP tensor (the 64-byte header + 96-byte entries aclmdlSetInputAIPP
 * writes) for input t, checking every bound the pixel loop relies on. */
static int aipp_decode(const unsigned char *d, size_t len, const emu_aipp_def *a, const emu_tensor_def *t, uint64_t batch,
                       aipp_image *im, emu_aipp_batch *bs, char *err, size_t errlen)
{
    if (d == NULL || len < emu_aipp_data_size(batch)) {
        return aipp_err(err, errlen, "the dynamic AIPP input holds %zu bytes, %zu needed for batch %llu", d ? len : 0,
                        emu_aipp_data_size(batch), (unsigned long long)batch);
    }
    static const int64_t cce_to_acl[17] = {0, ACL_YUV420SP_U8, 0, 0, 0, ACL_RGB888_U8, 0, 0, 0, 0, ACL_YUV400_U8};
    unsigned cce = d[0];
    im->format = cce < 17 ? cce_to_acl[cce] : 0;
    if (im->format == 0) {
        return aipp_err(err, errlen, "the dynamic AIPP input holds input format %u, which the emulator does not run%s",
                        cce, cce == 0 ? " (no aclmdlSetInputAIPP before the execution?)" : "");
    }
    if ((int8_t)d[4] < 0 || (uint64_t)(int8_t)d[4] < batch) {
        return aipp_err(err, errlen, "the dynamic AIPP parameters are for %d batch entries, the execution has %llu",
                        (int)(int8_t)d[4], (unsigned long long)batch);
    }
    im->csc = (int8_t)d[1] == 1;
    im->rbuv_swap = (int8_t)d[2] == 1;
    im->src_w = rd_i32(d + 8);
    im->src_h = rd_i32(d + 12);
    for (int i = 0; i < 9; i++) {
        im->matrix[i] = rd_i16(d + 16 + 2 * i);
    }
    for (int i = 0; i < 3; i++) {
        im->output_bias[i] = d[40 + i];
        im->input_bias[i] = d[43 + i];
    }
    im->padding_value_h = 0;
    const aipp_format *f = aipp_format_of(im->format);
    bool nchw = t->format == ACL_FORMAT_NCHW;
    int64_t nc = nchw ? t->dims[1] : t->dims[3];
    int64_t oh = nchw ? t->dims[2] : t->dims[1];
    int64_t ow = nchw ? t->dims[3] : t->dims[2];
    uint64_t stride = (uint64_t)a->max_src_image_size / (uint64_t)t->dims[0];
    if (im->src_w < 1 || im->src_h < 1 || im->src_w > 4096 || im->src_h > 4096 ||
        aipp_image_bytes(im->format, im->src_w, im->src_h) > stride || f->channels != nc) {
        return aipp_err(err, errlen, "the dynamic AIPP source image (%s %dx%d) does not fit the input (%llu bytes per "
                        "sample, %lld channels)", f->name, (int)im->src_w, (int)im->src_h,
                        (unsigned long long)stride, (long long)nc);
    }
    for (uint64_t b = 0; b < batch; b++) {
        const unsigned char *e = d + EMU_AIPP_HEADER_BYTES + b * EMU_AIPP_BATCH_BYTES;
        emu_aipp_batch *o = &bs[b];
        o->crop = (int8_t)e[0] == 1;
        o->padding = (int8_t)e[2] == 1;
        o->crop_x = rd_i32(e + 8);
        o->crop_y = rd_i32(e + 12);
        o->crop_w = rd_i32(e + 16);
        o->crop_h = rd_i32(e + 20);
        o->pad_top = rd_i32(e + 40);
        o->pad_bottom = rd_i32(e + 44);
        o->pad_left = rd_i32(e + 48);
        o->pad_right = rd_i32(e + 52);
        for (int c = 0; c < 4; c++) {
            o->mean[c] = rd_i16(e + 56 + 2 * c);
            o->min_h[c] = rd_u16(e + 64 + 2 * c);
            o->var_reci_h[c] = rd_u16(e + 72 + 2 * c);
        }
        int64_t w = im->src_w, h = im->src_h;
        if (o->crop) {
            if (o->crop_x < 0 || o->crop_y < 0 || o->crop_w < 1 || o->crop_h < 1 || o->crop_x + o->crop_w > w ||
                o->crop_y + o->crop_h > h) {
                return aipp_err(err, errlen, "batch entry %llu: the crop window does not fit the source image",
                                (unsigned long long)b);
            }
            w = o->crop_w;
            h = o->crop_h;
        }
        if (o->padding) {
            if (o->pad_top < 0 || o->pad_bottom < 0 || o->pad_left < 0 || o->pad_right < 0 || o->pad_top > 32 ||
                o->pad_bottom > 32 || o->pad_left > 32 || o->pad_right > 32) {
                return aipp_err(err, errlen, "batch entry %llu: padding outside [0, 32]", (unsigned long long)b);
            }
            w += o->pad_left + o->pad_right;
            h += o->pad_top + o->pad_bottom;
        }
        if (w != ow || h != oh) {
            return aipp_err(err, errlen, "batch entry %llu: the AIPP output is %lldx%lld but the input is %lldx%lld",
                            (unsigned long long)b, (long long)w, (long long)h, (long long)ow, (long long)oh);
        }
    }
    return 0;
}

/* The static parameters of input k as one run. */
static void aipp_static(const emu_aipp_def *a, aipp_image *im, emu_aipp_batch *b)
{
    im->format = a->input_format;
    im->src_w = a->src_w;
    im->src_h = a->src_h;
    im->csc = a->csc;
    im->rbuv_swap = a->rbuv_swap;
    memcpy(im->matrix, a->matrix, sizeof im->matrix);
    memcpy(im->output_bias, a->output_bias, sizeof im->output_bias);
    memcpy(im->input_bias, a->input_bias, sizeof im->input_bias);
    im->padding_value_h = emu_float_to_half((float)a->padding_value);
    b->crop = a->crop;
    b->crop_x = a->crop_x;
    b->crop_y = a->crop_y;
    b->crop_w = a->crop_w;
    b->crop_h = a->crop_h;
    b->padding = a->padding;
    b->pad_top = a->pad_top;
    b->pad_bottom = a->pad_bottom;
    b->pad_left = a->pad_left;
    b->pad_right = a->pad_right;
    for (int c = 0; c < 4; c++) {
        b->mean[c] = a->mean[c];
        b->min_h[c] = emu_float_to_half((float)a->min[c]);
        b->var_reci_h[c] = emu_float_to_half((float)a->var_reci[c]);
    }
}

int emu_model_run(const emu_model_def *m, uint64_t batch, const emu_dyn_values *v, const void *const *inputs,
                  void *const *outputs, const void *aipp_data, size_t aipp_len, char *err, size_t errlen)
{
    if (m == NULL) {
        return 0;
    }
    bool has_aipp = false;
    for (size_t k = 0; k < m->num_inputs; k++) {
        has_aipp |= m->aipp[k].mode != EMU_AIPP_NONE;
    }
    if (!has_aipp) {   /* any profile; the models with AIPP are static */
        emu_kernel_run_values(m, v, inputs, outputs);
        return 0;
    }
    if (batch == 0) {
        return 0;
    }
    const void *kin[EMU_MAX_IO];
    void *scratch[EMU_MAX_IO] = {0};
    int rc = 0;
    for (size_t k = 0; k < m->num_inputs && rc == 0; k++) {
        const emu_aipp_def *a = &m->aipp[k];
        kin[k] = inputs[k];
        if (a->mode == EMU_AIPP_NONE) {
            continue;
        }
        const emu_tensor_def *t = &m->inputs[k];
        emu_tensor_def raw;
        emu_input_visible(m, k, 0, &raw);
        aipp_image im;
        emu_aipp_batch one, *bs = &one;
        if (a->mode == EMU_AIPP_DYNAMIC) {
            bs = malloc((size_t)batch * sizeof *bs);
            if (bs == NULL) {
                return aipp_err(err, errlen, "out of memory for the AIPP parameters");
            }
            rc = aipp_decode(aipp_data, aipp_len, a, t, batch, &im, bs, err, errlen);
        } else {
            aipp_static(a, &im, &one);
        }
        scratch[k] = rc == 0 ? malloc(emu_tensor_bytes(t, batch) + 1) : NULL;
        if (rc == 0 && scratch[k] == NULL) {
            rc = aipp_err(err, errlen, "out of memory for the AIPP output");
        }
        for (uint64_t b = 0; b < batch && rc == 0; b++) {
            const unsigned char *src = (const unsigned char *)inputs[k] + b * raw.sample_elems;
            unsigned char *dst = (unsigned char *)scratch[k] + b * t->sample_elems * t->elem_size;
            aipp_sample(&im, a->mode == EMU_AIPP_DYNAMIC ? &bs[b] : &one, src, t, dst);
        }
        if (bs != &one) {
            free(bs);
        }
        kin[k] = scratch[k];
    }
    if (rc == 0) {
        emu_kernel_run(m, batch, kin, outputs);
    }
    for (size_t k = 0; k < m->num_inputs; k++) {
        free(scratch[k]);
    }
    return rc;
}
