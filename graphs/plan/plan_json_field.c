/* Reading a plan's JSON one checked field at a time (see plan_json.h): each value's kind, range
 * or name is checked where it is read, and a failure names the byte offset of the value. */
#include "graphs/plan/plan_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int loom__rd_bad(loom__rd *r, int v, const char *fmt, ...)
{
    if (r->failed)
        return -1;
    r->failed = 1;
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(r->msg, r->msglen, "%s: byte %zu: %s", r->where, v >= 0 ? r->doc->v[v].at : (size_t)0, what);
    return -1;
}

int loom__rd_member(loom__rd *r, int o, const char *key, loom__json_kind k)
{
    int v = loom__json_get(r->doc, o, key);
    if (v < 0)
        return loom__rd_bad(r, o, "the object has no member \"%s\"", key);
    if (loom__rd_val(r, v)->kind != k)
        return loom__rd_bad(r, v, "\"%s\" must be %s", key,
                            k == LOOM__JSON_ARR   ? "an array"
                            : k == LOOM__JSON_OBJ ? "an object"
                            : k == LOOM__JSON_STR ? "a string"
                                                  : "a number");
    return v;
}

int loom__rd_int_at(loom__rd *r, int v, const char *what, int64_t lo, int64_t hi, int64_t *out)
{
    if (v < 0)
        return -1;
    const loom__json_val *x = loom__rd_val(r, v);
    if (x->kind != LOOM__JSON_NUM || !x->is_int || x->i < lo || x->i > hi)
        return loom__rd_bad(r, v, "%s must be an integer in [%" PRId64 ", %" PRId64 "]", what, lo, hi);
    *out = x->i;
    return 0;
}

int loom__rd_get_int(loom__rd *r, int o, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    int v = loom__json_get(r->doc, o, key);
    if (v < 0)
        return loom__rd_bad(r, o, "the object has no member \"%s\"", key);
    char what[64];
    snprintf(what, sizeof what, "\"%s\"", key);
    return loom__rd_int_at(r, v, what, lo, hi, out);
}

int loom__rd_get_i(loom__rd *r, int o, const char *key, int lo, int hi, int *out)
{
    int64_t v = 0;
    if (loom__rd_get_int(r, o, key, lo, hi, &v))
        return -1;
    *out = (int)v;
    return 0;
}

int loom__rd_get_size(loom__rd *r, int o, const char *key, size_t *out)
{
    int64_t v = 0;
    if (loom__rd_get_int(r, o, key, 0, INT64_MAX, &v))
        return -1;
    *out = (size_t)v;
    return 0;
}

int loom__rd_any(loom__rd *r, int o, const char *key)
{
    int v = loom__json_get(r->doc, o, key);
    return v >= 0 ? v : loom__rd_bad(r, o, "the object has no member \"%s\"", key);
}

int loom__rd_real_at(loom__rd *r, int v, const char *what, double *out)
{
    if (v < 0)
        return -1;
    const loom__json_val *x = loom__rd_val(r, v);
    if (x->kind == LOOM__JSON_NUM) {
        *out = x->f;
        return 0;
    }
    if (x->kind == LOOM__JSON_STR && (!strcmp(x->s, "nan") || !strcmp(x->s, "inf") || !strcmp(x->s, "-inf"))) {
        *out = !strcmp(x->s, "nan") ? NAN : !strcmp(x->s, "inf") ? INFINITY : -INFINITY;
        return 0;
    }
    return loom__rd_bad(r, v, "%s must be a number, \"nan\", \"inf\" or \"-inf\"", what);
}

int loom__rd_get_name(loom__rd *r, int o, const char *key, const char *const *names, int n, int *out)
{
    int v = loom__rd_member(r, o, key, LOOM__JSON_STR);
    if (v < 0)
        return -1;
    for (int i = 0; i < n; i++)
        if (names[i] && !strcmp(names[i], loom__rd_val(r, v)->s))
            return *out = i, 0;
    return loom__rd_bad(r, v, "\"%s\" is not a known %s", loom__rd_val(r, v)->s, key);
}

int loom__rd_nd_sbp_at(loom__rd *r, int v, loom_nd_sbp *out)
{
    if (v < 0)
        return -1;
    if (loom__rd_val(r, v)->kind != LOOM__JSON_STR)
        return loom__rd_bad(r, v, "an SBP must be a string (\"S(0)\", \"B\", \"P\", \"(S(0), B)\")");
    if (!strcmp(loom__rd_val(r, v)->s, "unset")) {
        *out = (loom_nd_sbp){0};
        return 0;
    }
    loom_error e = LOOM_ERROR_INIT;
    if (loom_nd_sbp_parse(loom__rd_val(r, v)->s, out, &e) != LOOM_OK)
        return loom__rd_bad(r, v, "%s", e.msg);
    return 0;
}

int loom__rd_sbp_at(loom__rd *r, int v, loom_sbp *out)
{
    loom_nd_sbp nd;
    if (loom__rd_nd_sbp_at(r, v, &nd))
        return -1;
    if (nd.n > 1)
        return loom__rd_bad(r, v, "one SBP value is wanted here, not %d levels", nd.n);
    *out = nd.n ? nd.v[0] : (loom_sbp){LOOM_SBP_UNSET, 0};
    return 0;
}

int loom__rd_get_ints(loom__rd *r, int o, const char *key, int lo, int hi, int **out, int *n)
{
    int a = loom__rd_member(r, o, key, LOOM__JSON_ARR);
    if (a < 0)
        return -1;
    *n = loom__rd_val(r, a)->n;
    *out = calloc((size_t)*n + 1, sizeof **out);
    if (!*out)
        return loom__rd_bad(r, a, "out of memory");
    int i = 0;
    for (int c = loom__rd_val(r, a)->first; c >= 0; c = loom__rd_val(r, c)->next, i++) {
        int64_t x = 0;
        char what[64];
        snprintf(what, sizeof what, "element %d of \"%s\"", i, key);
        if (loom__rd_int_at(r, c, what, lo, hi, &x))
            return -1;
        (*out)[i] = (int)x;
    }
    return 0;
}

int loom__rd_shape_at(loom__rd *r, int v, const loom_graph *g, loom_shape *s)
{
    if (v < 0)
        return -1;
    if (loom__rd_val(r, v)->kind != LOOM__JSON_ARR || loom__rd_val(r, v)->n > LOOM_MAX_DIMS)
        return loom__rd_bad(r, v, "a shape must be an array of at most %d dims", LOOM_MAX_DIMS);
    *s = (loom_shape){.ndim = loom__rd_val(r, v)->n};
    int i = 0;
    for (int c = loom__rd_val(r, v)->first; c >= 0; c = loom__rd_val(r, c)->next, i++) {
        if (loom__rd_val(r, c)->kind == LOOM__JSON_STR) {
            int k = 0;
            while (k < g->ndyn && strcmp(g->dyn[k].name, loom__rd_val(r, c)->s))
                k++;
            if (k == g->ndyn)
                return loom__rd_bad(r, c, "\"%s\" is not a dynamic dim of the plan", loom__rd_val(r, c)->s);
            s->d[i] = LOOM__DYN_BASE + (g->dyn_tag << LOOM__DYN_INDEX_BITS) + k;
        } else {
            int64_t d = 0;
            if (loom__rd_int_at(r, c, "a dim", 0, INT64_MAX, &d))
                return -1;
            s->d[i] = d;
        }
    }
    return 0;
}
