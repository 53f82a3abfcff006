/* aclInit's configuration file (acl.json): a small strict JSON parser (RFC 8259: one value,
 * objects, arrays, strings with escapes, numbers, true/false/null; nothing else) and the
 * parsed sections, kept for the features that read them (dump, profiling, ...). */
#include "emu.h"

#include <errno.h>
#include <stdlib.h>

#define MAX_DEPTH 64   /* nesting limit: deeper documents are refused, not recursed into */

typedef struct {
    const char *p, *end, *start;
    char *err;
    size_t errlen;
    int failed;
} parser;

static void where(const parser *ps, const char *at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *c = ps->start; c < at && c < ps->end; c++) {
        if (*c == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static emu_json *fail(parser *ps, const char *what)
{
    if (!ps->failed) {
        int line, col;
        where(ps, ps->p, &line, &col);
        snprintf(ps->err, ps->errlen, "line %d, column %d: %s", line, col, what);
        ps->failed = 1;
    }
    return NULL;
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int literal(parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return 0;
    ps->p += n;
    return 1;
}

static emu_json *node(emu_json_kind kind)
{
    emu_json *v = calloc(1, sizeof *v);
    v->kind = kind;
    return v;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static void put_utf8(char **o, unsigned cp)
{
    if (cp < 0x80) {
        *(*o)++ = (char)cp;
    } else if (cp < 0x800) {
        *(*o)++ = (char)(0xC0 | (cp >> 6));
        *(*o)++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *(*o)++ = (char)(0xE0 | (cp >> 12));
        *(*o)++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *(*o)++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *(*o)++ = (char)(0xF0 | (cp >> 18));
        *(*o)++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *(*o)++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *(*o)++ = (char)(0x80 | (cp & 0x3F));
    }
}

/* A string starting at the opening quote; returns a malloc'ed, decoded copy. */
static char *parse_string(parser *ps)
{
    ps->p++;   /* opening quote */
    /* Decoded text is never longer than the source. */
    const char *q = ps->p;
    while (q < ps->end && *q != '"') q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
    if (q >= ps->end) {
        fail(ps, "unterminated string");
        return NULL;
    }
    char *out = malloc((size_t)(q - ps->p) + 1), *o = out;
    while (*ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20) {
            free(out);
            fail(ps, "control character in a string (escape it)");
            return NULL;
        }
        if (c != '\\') {
            *o++ = (char)c;
            ps->p++;
            continue;
        }
        ps->p++;
        char e = *ps->p++;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (ps->end - ps->p < 4 || hex4(ps->p, &cp)) {
                free(out);
                fail(ps, "bad \\u escape (four hex digits expected)");
                return NULL;
            }
            ps->p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' || hex4(ps->p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    free(out);
                    fail(ps, "unpaired UTF-16 surrogate in a \\u escape");
                    return NULL;
                }
                ps->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(out);
                fail(ps, "unpaired UTF-16 surrogate in a \\u escape");
                return NULL;
            }
            put_utf8(&o, cp);
            break;
        }
        default:
            free(out);
            ps->p--;
            fail(ps, "unknown escape in a string");
            return NULL;
        }
    }
    ps->p++;   /* closing quote */
    *o = 0;
    return out;
}

static emu_json *parse_number(parser *ps)
{
    const char *s = ps->p;
    if (ps->p < ps->end && *ps->p == '-') ps->p++;
    if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9')) return fail(ps, "bad number");
    if (*ps->p == '0') ps->p++;
    else while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9')) return fail(ps, "bad number (digits expected after '.')");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
        if (ps->p >= ps->end || !(*ps->p >= '0' && *ps->p <= '9')) return fail(ps, "bad number (digits expected in the exponent)");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    char buf[64];
    size_t n = (size_t)(ps->p - s);
    if (n >= sizeof buf) return fail(ps, "number too long");
    memcpy(buf, s, n);
    buf[n] = 0;
    emu_json *v = node(EMU_JSON_NUMBER);
    v->number = strtod(buf, NULL);
    return v;
}

static emu_json *parse_value(parser *ps, int depth);

static emu_json *parse_container(parser *ps, int depth, int object)
{
    if (depth >= MAX_DEPTH) return fail(ps, "nested too deeply");
    ps->p++;   /* '{' or '[' */
    emu_json *v = node(object ? EMU_JSON_OBJECT : EMU_JSON_ARRAY), **tail = &v->child;
    skip_ws(ps);
    char close = object ? '}' : ']';
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return v;
    }
    for (;;) {
        char *key = NULL;
        skip_ws(ps);
        if (object) {
            if (ps->p >= ps->end || *ps->p != '"') {
                emu_json_free(v);
                return fail(ps, "a member name in double quotes expected");
            }
            key = parse_string(ps);
            if (!key) {
                emu_json_free(v);
                return NULL;
            }
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                free(key);
                emu_json_free(v);
                return fail(ps, "':' expected after a member name");
            }
            ps->p++;
        }
        emu_json *m = parse_value(ps, depth + 1);
        if (!m) {
            free(key);
            emu_json_free(v);
            return NULL;
        }
        m->key = key;
        *tail = m;
        tail = &m->next;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return v;
        }
        emu_json_free(v);
        return fail(ps, object ? "',' or '}' expected" : "',' or ']' expected");
    }
}

static emu_json *parse_value(parser *ps, int depth)
{
    skip_ws(ps);
    if (ps->p >= ps->end) return fail(ps, "unexpected end of the document");
    switch (*ps->p) {
    case '{': return parse_container(ps, depth, 1);
    case '[': return parse_container(ps, depth, 0);
    case '"': {
        char *s = parse_string(ps);
        if (!s) return NULL;
        emu_json *v = node(EMU_JSON_STRING);
        v->string = s;
        return v;
    }
    case 't':
    case 'f':
    case 'n': {
        emu_json *v;
        if (literal(ps, "true")) {
            v = node(EMU_JSON_BOOL);
            v->boolean = 1;
        } else if (literal(ps, "false")) {
            v = node(EMU_JSON_BOOL);
        } else if (literal(ps, "null")) {
            v = node(EMU_JSON_NULL);
        } else {
            return fail(ps, "unknown literal (true, false or null expected)");
        }
        return v;
    }
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) return parse_number(ps);
        return fail(ps, "a value expected");
    }
}

emu_json *emu_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    parser ps = {.p = text, .end = text + len, .start = text, .err = err, .errlen = errlen};
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) ps.p += 3;   /* a UTF-8 byte order mark */
    emu_json *v = parse_value(&ps, 0);
    if (!v) return NULL;
    skip_ws(&ps);
    if (ps.p != ps.end) {
        emu_json_free(v);
        return fail(&ps, "text after the document's value");
    }
    return v;
}

void emu_json_free(emu_json *v)
{
    while (v) {
        emu_json *next = v->next;
        emu_json_free(v->child);
        free(v->string);
        free(v->key);
        free(v);
        v = next;
    }
}

const emu_json *emu_json_get(const emu_json *object, const char *key)
{
    if (!object || object->kind != EMU_JSON_OBJECT) return NULL;
    const emu_json *found = NULL;
    for (const emu_json *m = object->child; m; m = m->next)
        if (strcmp(m->key, key) == 0) found = m;   /* the last of duplicate names wins */
    return found;
}

/* ================================================================ aclInit's config */

static emu_json *config;   /* guarded by emu_global_mu (aclInit / aclFinalize hold it) */

aclError emu_json_read_file(const char *path, emu_json **out, const char *api)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return emu_fail(ACL_ERROR_INVALID_FILE, "%s: cannot open config file '%s': %s", api, path, strerror(errno));
    size_t cap = 4096, n = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            if (cap >= ((size_t)16 << 20)) {
                free(buf);
                fclose(f);
                return emu_fail(ACL_ERROR_INVALID_FILE_SIZE, "%s: config file '%s' is larger than 16 MiB", api, path);
            }
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return emu_fail(ACL_ERROR_INVALID_FILE, "%s: cannot read config file '%s'", api, path);
    }
    if (n == 0) {   /* an empty file is accepted, as by the runtime */
        free(buf);
        *out = calloc(1, sizeof **out);
        (*out)->kind = EMU_JSON_OBJECT;
        return ACL_SUCCESS;
    }
    char err[256];
    emu_json *v = emu_json_parse(buf, n, err, sizeof err);
    free(buf);
    if (!v) return emu_fail(ACL_ERROR_PARSE_FILE, "%s: config file '%s' is not valid JSON: %s", api, path, err);
    if (v->kind != EMU_JSON_OBJECT) {
        emu_json_free(v);
        return emu_fail(ACL_ERROR_PARSE_FILE, "%s: config file '%s' must hold a JSON object", api, path);
    }
    *out = v;
    return ACL_SUCCESS;
}

aclError emu_config_load(const char *path)
{
    if (!path || !*path) return ACL_SUCCESS;
    emu_json *v;
    aclError rc = emu_json_read_file(path, &v, "aclInit");
    if (rc) return rc;
    rc = emu_dump_profiler_from_config(v);   /* a bad "dump" / "profiler" section refuses the init */
    if (rc) {
        emu_json_free(v);
        return rc;
    }
    emu_json_free(config);
    config = v;
    return ACL_SUCCESS;
}

const emu_json *emu_config_section(const char *name) { return emu_json_get(config, name); }

void emu_config_clear(void)
{
    emu_json_free(config);
    config = NULL;
    emu_dump_profiler_finalize();
}

/* A value of the kept config by dotted path ("dump.dump_path"), as text: strings as they are,
 * numbers with %.17g, true/false/null, "{N}" / "[N]" for an object / array of N members. */
EMU_API aclError fxemuGetConfigValue(const char *path, char *buf, size_t len)
{
    emu_init_once();
    if (!path || !buf || !len) return emu_fail(ACL_ERROR_INVALID_PARAM, "fxemuGetConfigValue: path and buf must be set");
    pthread_mutex_lock(&emu_global_mu);
    const emu_json *v = config;
    char name[256];
    const char *p = path;
    while (v && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof name) {
            v = NULL;
            break;
        }
        memcpy(name, p, n);
        name[n] = 0;
        v = emu_json_get(v, name);
        p += n + (dot ? 1 : 0);
    }
    aclError rc = ACL_SUCCESS;
    if (!v) {
        rc = emu_fail(ACL_ERROR_INVALID_PARAM, "fxemuGetConfigValue: the aclInit config has no '%s'", path);
    } else {
        size_t count = 0;
        for (const emu_json *m = v->child; m; m = m->next) count++;
        switch (v->kind) {
        case EMU_JSON_NULL: snprintf(buf, len, "null"); break;
        case EMU_JSON_BOOL: snprintf(buf, len, "%s", v->boolean ? "true" : "false"); break;
        case EMU_JSON_NUMBER: snprintf(buf, len, "%.17g", v->number); break;
        case EMU_JSON_STRING: snprintf(buf, len, "%s", v->string); break;
        case EMU_JSON_ARRAY: snprintf(buf, len, "[%zu]", count); break;
        case EMU_JSON_OBJECT: snprintf(buf, len, "{%zu}", count); break;
        }
    }
    pthread_mutex_unlock(&emu_global_mu);
    return rc;
}
