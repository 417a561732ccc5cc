/* A plan as JSON and back (see plan.h). The text is the plan itself: one object per tensor of its
 * op table, task and register, with shapes written over the dynamic dims' names, SBPs as "S(0)",
 * "B", "P", and reals exactly (17 significant digits; "nan", "inf", "-inf" as strings). Reading
 * checks every id, count and offset against the rest of the plan, so that a plan read back can be
 * run: a text that is not such a plan is refused naming the byte offset of what is wrong. */
#include "graphs/plan/plan.h"

#include "graphs/core/json.h"
#include "runtime/comm/parts.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_JSON_VERSION 1

static const char *const mode_names[LOOM_RUN_MODE_COUNT] = {"eval", "forward", "grad", "step"};
static const char *const task_names[LOOM__TASK_KIND_COUNT] = {"source", "variable", "compute", "boxing", "move", "copy", "sink"};
static const char *const mem_names[] = {"shared", "own", "param", "none"};
#define NMEM ((int)(sizeof mem_names / sizeof *mem_names))

/* ---- writing ----------------------------------------------------------------------------------- */

static void put_real(FILE *f, double v)
{
    if (isnan(v))
        fputs("\"nan\"", f);
    else if (isinf(v))
        fputs(v > 0 ? "\"inf\"" : "\"-inf\"", f);
    else
        fprintf(f, "%.17g", v);
}

static void put_sbp(FILE *f, loom_sbp s)
{
    char b[32];
    loom_sbp_str(s, b, sizeof b);
    loom__json_put_str(f, b);
}

static void put_ints(FILE *f, const int *v, int n)
{
    fputc('[', f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%d", i ? "," : "", v[i]);
    fputc(']', f);
}

static void put_shape(FILE *f, const loom_graph *g, const loom_shape *s)
{
    fputc('[', f);
    for (int i = 0; i < s->ndim; i++) {
        int k = loom__dyn_index(g, s->d[i]);
        if (i)
            fputc(',', f);
        if (k >= 0)
            loom__json_put_str(f, g->dyn[k].name);
        else
            fprintf(f, "%" PRId64, s->d[i]);
    }
    fputc(']', f);
}

/* A plan size: -1 for "none" (size_t)-1, else the count. */
static void put_size(FILE *f, size_t v)
{
    if (v == (size_t)-1)
        fputs("-1", f);
    else
        fprintf(f, "%zu", v);
}

static void put_tensor(FILE *f, const loom__plan *pl, const loom_tensor *t)
{
    const loom_graph *g = pl->g;
    fprintf(f, "    {\"id\":%d,\"op\":", t->id);
    loom__json_put_str(f, loom__op_def(t->op)->name);
    fputs(",\"name\":", f);
    loom__json_put_str(f, t->name);
    fprintf(f, ",\"dtype\":\"%s\",\"layout\":\"%s\",\"shape\":", loom_dtype_name(t->dtype), t->layout == LOOM__CSR ? "csr" : "dense");
    put_shape(f, g, &t->shape);
    int src[LOOM__MAX_SRC];
    for (int i = 0; i < t->n_src; i++)
        src[i] = t->src[i]->id;
    fputs(",\"src\":", f);
    put_ints(f, src, t->n_src);
    fputs(",\"ai\":[", f);
    for (int i = 0; i < 8; i++)
        fprintf(f, "%s%" PRId64, i ? "," : "", t->a.i[i]);
    fputs("],\"af\":[", f);
    for (int i = 0; i < 8; i++) {
        if (i)
            fputc(',', f);
        put_real(f, t->a.f[i]);
    }
    fputs("],\"ashape\":", f);
    put_shape(f, g, &t->a.shape);
    fprintf(f, ",\"flags\":%" PRIu32 ",\"init\":{\"kind\":%d,\"a\":", t->flags, (int)t->init.kind);
    put_real(f, t->init.a);
    fputs(",\"b\":", f);
    put_real(f, t->init.b);
    fprintf(f, ",\"seed\":%" PRIu64 "},\"sbp_hint\":", t->init.seed);
    put_sbp(f, t->sbp_hint);
    fprintf(f, ",\"place\":%d,\"weight_decay\":", t->place);
    put_real(f, t->weight_decay);
    fprintf(f, ",\"grad_of\":%d", pl->passes.grad_of[t->id]);
    if (pl->sbp) {
        fputs(",\"sbp\":", f);
        put_sbp(f, pl->sbp[t->id]);
        fputs(",\"sig\":{\"in\":[", f);
        for (int i = 0; i < t->n_src; i++) {
            if (i)
                fputc(',', f);
            put_sbp(f, pl->sig[t->id].in[i]);
        }
        fputs("],\"out\":", f);
        put_sbp(f, pl->sig[t->id].out);
        fputc('}', f);
    }
    if (pl->csr_rows[t->id] >= 0)
        fprintf(f, ",\"csr\":[%" PRId64 ",%" PRId64 "]", pl->csr_rows[t->id], pl->csr_nnz[t->id]);
    fputc('}', f);
}

loom_status loom__plan_write_json(const loom__plan *pl, FILE *f)
{
    const loom_graph *g = pl->g;
    fprintf(f, "{\"loom_plan\":%d,\"mode\":\"%s\",\"kind\":\"%s\",\"source_regst_num\":%d,\"loss\":%d,\"nlogical\":%d,\n",
            PLAN_JSON_VERSION, mode_names[pl->mode], loom_device_kind_name(pl->kind), pl->source_regst_num, pl->loss, pl->nlogical);
    fprintf(f, " \"seed\":%" PRIu64 ",\"dyn_tag\":%" PRId64 ",\"fwd_end\":%d,\"bwd_end\":%d,\n \"dyn\":[", g->seed, g->dyn_tag,
            pl->passes.fwd_end, pl->passes.bwd_end);
    for (int k = 0; k < g->ndyn; k++) {
        fputs(k ? ",{\"name\":" : "{\"name\":", f);
        loom__json_put_str(f, g->dyn[k].name);
        fprintf(f, ",\"bound\":%" PRId64 "}", g->dyn[k].bound);
    }
    fputs("],\n \"devices\":", f);
    put_ints(f, pl->dev_index, pl->ndev);
    fputs(",\n \"places\":[", f);
    for (int k = 0; k < pl->nplaces; k++) {
        if (k)
            fputc(',', f);
        put_ints(f, pl->place_dev[k], pl->place_n[k]);
    }
    fputs("],\n \"tensors\":[\n", f);
    for (int id = 0; id < g->n; id++) {
        put_tensor(f, pl, g->t[id]);
        fputs(id + 1 < g->n ? ",\n" : "\n", f);
    }
    fputs(" ],\n \"tasks\":[\n", f);
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        fprintf(f, "    {\"kind\":\"%s\",\"tensor\":%d,\"update\":%d,\"device\":%d,\"chain_pos\":%d,\"dir\":%d,\"in\":",
                task_names[k->kind], k->tensor, k->update, k->device, k->chain_pos, k->dir);
        put_ints(f, k->in, k->n_in);
        fputs(",\"out\":", f);
        put_ints(f, k->out, k->n_out);
        fputs(i + 1 < pl->ntasks ? "},\n" : "}\n", f);
    }
    fputs(" ],\n \"registers\":[\n", f);
    for (int r = 0; r < pl->nregst; r++) {
        const loom__regst *rg = &pl->regst[r];
        fprintf(f, "    {\"producer\":%d,\"tensor\":%d,\"dom\":%d,\"part\":%d,\"nparts\":%d,\"sbp\":", rg->producer, rg->tensor,
                rg->dom, rg->part, rg->nparts);
        put_sbp(f, rg->sbp);
        fprintf(f, ",\"bytes\":%zu,\"regst_num\":%d,\"mem\":\"%s\",\"offset\":%zu,\"first\":%d,\"last\":%d,\"nconsumers\":%d}%s\n",
                rg->bytes, rg->regst_num, mem_names[rg->mem], rg->offset, rg->first, rg->last, rg->nconsumers,
                r + 1 < pl->nregst ? "," : "");
    }
    fputs(" ],\n \"kept\":[", f);
    for (int id = 0, first = 1; id < g->n; id++)
        if (pl->kept[id]) {
            fprintf(f, "%s%d", first ? "" : ",", id);
            first = 0;
        }
    fputs("],\n \"param_off\":[", f);
    for (int id = 0, first = 1; id < g->n; id++)
        for (int d = 0; d < pl->ndev; d++)
            if (pl->param_off[(size_t)id * pl->ndev + d] != (size_t)-1) {
                fprintf(f, "%s[%d,%d,", first ? "" : ",", id, d);
                put_size(f, pl->param_off[(size_t)id * pl->ndev + d]);
                fputc(']', f);
                first = 0;
            }
    fputs("],\n \"memory\":[", f);
    for (int d = 0; d < pl->ndev; d++) {
        const loom__dev_mem *m = &pl->mem[d];
        fprintf(f, "%s{\"shared\":%zu,\"unshared\":%zu,\"own\":%zu,\"params\":%zu,\"inputs\":%zu}", d ? "," : "", m->shared,
                m->unshared, m->own, m->params, m->inputs);
    }
    fprintf(f, "],\n \"host_bytes\":%zu}\n", pl->host_bytes);
    return ferror(f) ? LOOM_ERR_IO : LOOM_OK;
}

/* ---- reading ----------------------------------------------------------------------------------- */

typedef struct rd {
    const loom__json *doc;
    const char *where;
    char *msg;
    size_t msglen;
    int failed;
    /* the names a plan writes, by value: ops, dtypes, device kinds */
    const char *ops[LOOM_OP_COUNT], *dtypes[LOOM_DTYPE_COUNT], *kinds[LOOM_DEVICE_KIND_COUNT];
} rd;

static int bad(rd *r, int v, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(rd *r, int v, const char *fmt, ...)
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

static const loom__json_val *jv(const rd *r, int v) { return &r->doc->v[v]; }

/* Member key of object o, of kind k; -1 (with the message) when absent or of another kind. */
static int member(rd *r, int o, const char *key, loom__json_kind k)
{
    int v = loom__json_get(r->doc, o, key);
    if (v < 0)
        return bad(r, o, "the object has no member \"%s\"", key);
    if (jv(r, v)->kind != k)
        return bad(r, v, "\"%s\" must be %s", key,
                   k == LOOM__JSON_ARR ? "an array" : k == LOOM__JSON_OBJ ? "an object" : k == LOOM__JSON_STR ? "a string" : "a number");
    return v;
}

/* An integer in [lo, hi] at value v (what names it in a message). */
static int int_at(rd *r, int v, const char *what, int64_t lo, int64_t hi, int64_t *out)
{
    if (v < 0)
        return -1;
    if (jv(r, v)->kind != LOOM__JSON_NUM || !jv(r, v)->is_int || jv(r, v)->i < lo || jv(r, v)->i > hi)
        return bad(r, v, "%s must be an integer in [%" PRId64 ", %" PRId64 "]", what, lo, hi);
    *out = jv(r, v)->i;
    return 0;
}

static int get_int(rd *r, int o, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    int v = loom__json_get(r->doc, o, key);
    if (v < 0)
        return bad(r, o, "the object has no member \"%s\"", key);
    char what[64];
    snprintf(what, sizeof what, "\"%s\"", key);
    return int_at(r, v, what, lo, hi, out);
}

static int get_i(rd *r, int o, const char *key, int lo, int hi, int *out)
{
    int64_t v = 0;
    if (get_int(r, o, key, lo, hi, &v))
        return -1;
    *out = (int)v;
    return 0;
}

static int get_size(rd *r, int o, const char *key, size_t *out)
{
    int64_t v = 0;
    if (get_int(r, o, key, 0, INT64_MAX, &v))
        return -1;
    *out = (size_t)v;
    return 0;
}

/* Member key of o, of any kind; -1 when absent. */
static int any(rd *r, int o, const char *key)
{
    int v = loom__json_get(r->doc, o, key);
    return v >= 0 ? v : bad(r, o, "the object has no member \"%s\"", key);
}

static int real_at(rd *r, int v, const char *what, double *out)
{
    if (v < 0)
        return -1;
    const loom__json_val *x = jv(r, v);
    if (x->kind == LOOM__JSON_NUM) {
        *out = x->f;
        return 0;
    }
    if (x->kind == LOOM__JSON_STR && (!strcmp(x->s, "nan") || !strcmp(x->s, "inf") || !strcmp(x->s, "-inf"))) {
        *out = !strcmp(x->s, "nan") ? NAN : !strcmp(x->s, "inf") ? INFINITY : -INFINITY;
        return 0;
    }
    return bad(r, v, "%s must be a number, \"nan\", \"inf\" or \"-inf\"", what);
}

/* One of names[0, n) at member key of o. */
static int get_name(rd *r, int o, const char *key, const char *const *names, int n, int *out)
{
    int v = member(r, o, key, LOOM__JSON_STR);
    if (v < 0)
        return -1;
    for (int i = 0; i < n; i++)
        if (names[i] && !strcmp(names[i], jv(r, v)->s))
            return *out = i, 0;
    return bad(r, v, "\"%s\" is not a known %s", jv(r, v)->s, key);
}

static int sbp_at(rd *r, int v, loom_sbp *out)
{
    if (v < 0)
        return -1;
    if (jv(r, v)->kind != LOOM__JSON_STR)
        return bad(r, v, "an SBP must be a string (\"S(0)\", \"B\", \"P\")");
    if (!strcmp(jv(r, v)->s, "unset")) {
        *out = (loom_sbp){LOOM_SBP_UNSET, 0};
        return 0;
    }
    loom_error e = LOOM_ERROR_INIT;
    if (loom_sbp_parse(jv(r, v)->s, out, &e) != LOOM_OK)
        return bad(r, v, "%s", e.msg);
    return 0;
}

/* An array of ints in [lo, hi] at member key of o, into a new array (n entries). */
static int get_ints(rd *r, int o, const char *key, int lo, int hi, int **out, int *n)
{
    int a = member(r, o, key, LOOM__JSON_ARR);
    if (a < 0)
        return -1;
    *n = jv(r, a)->n;
    *out = calloc((size_t)*n + 1, sizeof **out);
    if (!*out)
        return bad(r, a, "out of memory");
    int i = 0;
    for (int c = jv(r, a)->first; c >= 0; c = jv(r, c)->next, i++) {
        int64_t x = 0;
        char what[64];
        snprintf(what, sizeof what, "element %d of \"%s\"", i, key);
        if (int_at(r, c, what, lo, hi, &x))
            return -1;
        (*out)[i] = (int)x;
    }
    return 0;
}

/* A shape over the op table's dynamic dims. */
static int shape_at(rd *r, int v, const loom_graph *g, loom_shape *s)
{
    if (v < 0)
        return -1;
    if (jv(r, v)->kind != LOOM__JSON_ARR || jv(r, v)->n > LOOM_MAX_DIMS)
        return bad(r, v, "a shape must be an array of at most %d dims", LOOM_MAX_DIMS);
    *s = (loom_shape){.ndim = jv(r, v)->n};
    int i = 0;
    for (int c = jv(r, v)->first; c >= 0; c = jv(r, c)->next, i++) {
        if (jv(r, c)->kind == LOOM__JSON_STR) {
            int k = 0;
            while (k < g->ndyn && strcmp(g->dyn[k].name, jv(r, c)->s))
                k++;
            if (k == g->ndyn)
                return bad(r, c, "\"%s\" is not a dynamic dim of the plan", jv(r, c)->s);
            s->d[i] = LOOM__DYN_BASE + (g->dyn_tag << LOOM__DYN_INDEX_BITS) + k;
        } else {
            int64_t d = 0;
            if (int_at(r, c, "a dim", 0, INT64_MAX, &d))
                return -1;
            s->d[i] = d;
        }
    }
    return 0;
}

static int read_tensor(rd *r, loom__plan *pl, int o, int id, int *grad_of)
{
    loom_graph *g = pl->g;
    loom_tensor *t = &g->chunk[id];
    static const char *const layouts[] = {"dense", "csr"};
    int op = 0, dtype = 0, layout = 0, idv = 0, kind = 0, *src = NULL, nsrc = 0;
    *t = (loom_tensor){.graph = g};
    if (get_i(r, o, "id", id, id, &idv) || get_name(r, o, "op", r->ops, LOOM_OP_COUNT, &op) ||
        get_name(r, o, "dtype", r->dtypes, LOOM_DTYPE_COUNT, &dtype) || get_name(r, o, "layout", layouts, 2, &layout) ||
        get_ints(r, o, "src", 0, id - 1, &src, &nsrc))
        return free(src), -1;
    t->id = id;
    t->op = (loom_op)op;
    t->dtype = (loom_dtype)dtype;
    t->layout = (loom__layout)layout;
    const loom_op_def *def = loom__op_def(t->op);
    if (nsrc > LOOM__MAX_SRC || nsrc < def->min_src || nsrc > def->max_src)
        return free(src), bad(r, o, "%s takes %d to %d sources, not %d", def->name, def->min_src, def->max_src, nsrc);
    t->n_src = nsrc;
    for (int i = 0; i < nsrc; i++)
        t->src[i] = &g->chunk[src[i]];
    free(src);
    int nm = member(r, o, "name", LOOM__JSON_STR);
    if (nm < 0)
        return -1;
    if (strlen(jv(r, nm)->s) >= sizeof t->name)
        return bad(r, nm, "a name of more than %zu bytes", sizeof t->name - 1);
    snprintf(t->name, sizeof t->name, "%s", jv(r, nm)->s);
    if (shape_at(r, member(r, o, "shape", LOOM__JSON_ARR), g, &t->shape) ||
        shape_at(r, member(r, o, "ashape", LOOM__JSON_ARR), g, &t->a.shape))
        return -1;
    int ai = member(r, o, "ai", LOOM__JSON_ARR), af = member(r, o, "af", LOOM__JSON_ARR);
    if (ai < 0 || af < 0)
        return -1;
    if (jv(r, ai)->n != 8 || jv(r, af)->n != 8)
        return bad(r, jv(r, ai)->n != 8 ? ai : af, "an op's attributes are 8 integers (\"ai\") and 8 reals (\"af\")");
    int i = 0;
    for (int c = jv(r, ai)->first; c >= 0; c = jv(r, c)->next, i++)
        if (int_at(r, c, "an integer attribute", INT64_MIN, INT64_MAX, &t->a.i[i]))
            return -1;
    i = 0;
    for (int c = jv(r, af)->first; c >= 0; c = jv(r, c)->next, i++)
        if (real_at(r, c, "a real attribute", &t->a.f[i]))
            return -1;
    int64_t flags = 0, seed = 0;
    int init = member(r, o, "init", LOOM__JSON_OBJ);
    if (init < 0 || get_int(r, o, "flags", 0, UINT32_MAX, &flags) || get_i(r, init, "kind", 0, LOOM_INIT_KIND_COUNT - 1, &kind) ||
        get_int(r, init, "seed", INT64_MIN, INT64_MAX, &seed) || real_at(r, any(r, init, "a"), "\"a\"", &t->init.a) ||
        real_at(r, any(r, init, "b"), "\"b\"", &t->init.b))
        return -1;
    t->flags = (uint32_t)flags;
    t->init.kind = (loom_init_kind)kind;
    t->init.seed = (uint64_t)seed;
    if (real_at(r, any(r, o, "weight_decay"), "\"weight_decay\"", &t->weight_decay) || sbp_at(r, any(r, o, "sbp_hint"), &t->sbp_hint) ||
        get_i(r, o, "place", 0, pl->nplaces - 1, &t->place) || get_i(r, o, "grad_of", -1, id - 1 < 0 ? -1 : id - 1, &grad_of[id]))
        return -1;
    if (pl->sbp) {
        int s = member(r, o, "sig", LOOM__JSON_OBJ), in = s >= 0 ? member(r, s, "in", LOOM__JSON_ARR) : -1;
        if (s < 0 || in < 0 || sbp_at(r, member(r, o, "sbp", LOOM__JSON_STR), &pl->sbp[id]) ||
            sbp_at(r, member(r, s, "out", LOOM__JSON_STR), &pl->sig[id].out))
            return -1;
        if (jv(r, in)->n != nsrc)
            return bad(r, in, "a signature has one SBP per source (%d), not %d", nsrc, jv(r, in)->n);
        i = 0;
        for (int c = jv(r, in)->first; c >= 0; c = jv(r, c)->next, i++)
            if (sbp_at(r, c, &pl->sig[id].in[i]))
                return -1;
    }
    int csr = loom__json_get(r->doc, o, "csr");
    pl->csr_rows[id] = pl->csr_nnz[id] = -1;
    if (csr >= 0) {
        if (jv(r, csr)->kind != LOOM__JSON_ARR || jv(r, csr)->n != 2 || t->layout != LOOM__CSR)
            return bad(r, csr, "\"csr\" is [rows, nnz] of a sparse tensor");
        int c = jv(r, csr)->first;
        if (int_at(r, c, "the rows", 0, INT32_MAX, &pl->csr_rows[id]) || int_at(r, jv(r, c)->next, "nnz", 0, INT32_MAX, &pl->csr_nnz[id]))
            return -1;
    }
    return 0;
}

static int read_tasks(rd *r, loom__plan *pl, int a)
{
    pl->ntasks = pl->cap_tasks = jv(r, a)->n;
    pl->task = calloc((size_t)pl->ntasks + 1, sizeof *pl->task);
    if (!pl->task)
        return bad(r, a, "out of memory");
    int i = 0;
    for (int o = jv(r, a)->first; o >= 0; o = jv(r, o)->next, i++) {
        loom__task *k = &pl->task[i];
        int kind = 0;
        if (jv(r, o)->kind != LOOM__JSON_OBJ)
            return bad(r, o, "a task must be an object");
        if (get_name(r, o, "kind", task_names, LOOM__TASK_KIND_COUNT, &kind) ||
            get_i(r, o, "tensor", -1, pl->g->n - 1, &k->tensor) || get_i(r, o, "update", -1, pl->g->n - 1, &k->update) ||
            get_i(r, o, "device", LOOM__HOST, pl->ndev - 1, &k->device) || get_i(r, o, "chain_pos", -1, INT32_MAX, &k->chain_pos) ||
            get_i(r, o, "dir", LOOM__H2D, LOOM__D2H, &k->dir) || get_ints(r, o, "in", 0, INT32_MAX, &k->in, &k->n_in) ||
            get_ints(r, o, "out", 0, INT32_MAX, &k->out, &k->n_out))
            return -1;
        k->kind = (loom__task_kind)kind;
        int host = k->kind == LOOM__TASK_SOURCE || k->kind == LOOM__TASK_SINK;
        if ((i == 0) != (k->kind == LOOM__TASK_SOURCE))
            return bad(r, o, "the source is task 0, and the only one");
        if (host != (k->device == LOOM__HOST))
            return bad(r, o, "the source and the sinks run on the host (device -1), every other task on a device");
        if ((k->tensor < 0) != (k->kind == LOOM__TASK_SOURCE))
            return bad(r, o, "every task but the source names its tensor");
        if (k->update >= 0 && k->kind != LOOM__TASK_VARIABLE)
            return bad(r, o, "only a variable has an update op");
        int chained = k->kind == LOOM__TASK_COMPUTE || k->kind == LOOM__TASK_BOXING || k->kind == LOOM__TASK_MOVE;
        if (chained != (k->chain_pos >= 0))
            return bad(r, o, "compute, boxing and move tasks have a chain position, other tasks -1");
        const loom_tensor *t = k->tensor >= 0 ? pl->g->t[k->tensor] : NULL;
        uint32_t flags = t ? loom__op_def(t->op)->flags : 0;
        if (k->kind == LOOM__TASK_COMPUTE) {
            if (k->n_in != t->n_src || k->n_out != 1)
                return bad(r, o, "a compute task of %s reads its %d sources and writes one register", loom__op_def(t->op)->name, t->n_src);
            if (flags & (LOOM__OPF_LEAF | LOOM__OPF_INPLACE) || t->op == LOOM_OP_MOVE)
                return bad(r, o, "%s '%s' is not run by a compute task", loom__op_def(t->op)->name, t->name);
        } else if (k->kind == LOOM__TASK_VARIABLE &&
                   (t->op != LOOM_OP_PARAM ||
                    (k->update >= 0 && (!(loom__op_def(pl->g->t[k->update]->op)->flags & LOOM__OPF_INPLACE) ||
                                        pl->g->t[k->update]->src[0] != t || pl->g->t[k->update]->n_src < 2)))) {
            return bad(r, o, "a variable holds a parameter, updated by an in-place op of it and its gradient");
        } else if (k->kind == LOOM__TASK_MOVE && t->op != LOOM_OP_MOVE) {
            return bad(r, o, "a move task runs a move op");
        } else if (k->kind != LOOM__TASK_SOURCE && k->kind != LOOM__TASK_SINK && k->n_out != 1) {
            return bad(r, o, "a %s task writes one register", task_names[k->kind]);
        } else if (k->kind == LOOM__TASK_SINK && k->n_out != 0) {
            return bad(r, o, "a sink writes no register");
        }
        if (k->n_in > LOOM__MAX_DEVICES && k->kind != LOOM__TASK_COMPUTE)
            return bad(r, o, "a task reads at most %d registers", LOOM__MAX_DEVICES);
        if (k->n_in < 1 && k->kind != LOOM__TASK_COMPUTE && k->kind != LOOM__TASK_SOURCE && k->kind != LOOM__TASK_VARIABLE)
            return bad(r, o, "a %s task reads at least one register", task_names[k->kind]);
    }
    return 0;
}

/* Each chain's positions are 0, 1, ... in task order: the lifetimes of shared registers and the
 * chain's one-piece-at-a-time order depend on it. */
static int check_chains(rd *r, loom__plan *pl, int a)
{
    int *next = calloc((size_t)pl->ndev + 1, sizeof *next), i = 0;
    if (!next)
        return bad(r, a, "out of memory");
    for (int o = jv(r, a)->first; o >= 0; o = jv(r, o)->next, i++) {
        const loom__task *k = &pl->task[i];
        if (k->chain_pos >= 0)
            pl->nchain[k->device]++;
        if (k->chain_pos >= 0 && k->chain_pos != next[k->device]++) {
            int want = next[k->device] - 1;
            free(next);
            return bad(r, o, "task %d is at position %d of its device's chain, where %d comes next", i, k->chain_pos, want);
        }
    }
    free(next);
    return 0;
}

/* Where a register's buffers end, against its domain's block: offsets that a plan read back can
 * trust. */
static int check_register(rd *r, const loom__plan *pl, int o, const loom__regst *rg)
{
    size_t span = rg->bytes, end;
    if (rg->mem == LOOM__MEM_OWN && rg->bytes > (SIZE_MAX / 2) / (size_t)rg->regst_num)
        return bad(r, o, "a register of %d buffers of %zu bytes", rg->regst_num, rg->bytes);
    if (rg->mem == LOOM__MEM_OWN)
        span = rg->bytes * (size_t)rg->regst_num;
    if (span > SIZE_MAX / 2 || rg->offset > SIZE_MAX / 2)
        return bad(r, o, "a register over an int64 byte count");
    end = rg->offset + span;
    size_t limit = 0;
    const char *what = "";
    if (rg->mem == LOOM__MEM_SHARED && rg->dom >= 0)
        limit = pl->mem[rg->dom].shared, what = "the device's shared block";
    else if (rg->mem == LOOM__MEM_OWN && rg->dom == LOOM__HOST)
        limit = pl->host_bytes, what = "the host's registers";
    else if (rg->mem == LOOM__MEM_OWN)
        limit = pl->mem[rg->dom].shared + pl->mem[rg->dom].own, what = "the device's block";
    else if (rg->mem == LOOM__MEM_PARAM && rg->dom >= 0)
        limit = pl->mem[rg->dom].params, what = "the device's parameters";
    else if (rg->mem == LOOM__MEM_NONE)
        return 0;
    else
        return bad(r, o, "a register of the host in %s memory", mem_names[rg->mem]);
    if (end > limit)
        return bad(r, o, "the register ends at byte %zu of %s, which holds %zu", end, what, limit);
    return 0;
}

/* What each task reads is the tensor it works on (a compute task: its sources, in order), and
 * every dense register has room for its part at the bounds: a kernel never writes past it. */
static int check_reads(rd *r, const loom__plan *pl, int a)
{
    int i = 0;
    for (int o = jv(r, a)->first; o >= 0; o = jv(r, o)->next, i++) {
        const loom__task *k = &pl->task[i];
        const loom_tensor *t = loom__task_tensor(pl, k);
        for (int j = 0; t && j < k->n_in; j++) {
            int want = k->kind == LOOM__TASK_COMPUTE ? t->src[j]->id
                       : k->kind == LOOM__TASK_MOVE  ? t->src[0]->id
                       : k->kind == LOOM__TASK_VARIABLE ? (k->update >= 0 ? pl->g->t[k->update]->src[1]->id : -1)
                                                       : t->id;
            if (pl->regst[k->in[j]].tensor != want)
                return bad(r, o, "task %d reads register %d, which holds tensor %d, not %d", i, k->in[j], pl->regst[k->in[j]].tensor, want);
        }
        for (int j = 0; j < k->n_out; j++) {
            const loom__regst *rg = &pl->regst[k->out[j]];
            const loom_tensor *rt = pl->g->t[rg->tensor];
            size_t need = rt->layout == LOOM__CSR ? 0 : loom__part_bytes(pl->g, rt, rg->sbp, rg->nparts, rg->part);
            if (rt->layout == LOOM__CSR && pl->csr_rows[rt->id] < 0)
                return bad(r, o, "sparse tensor %d has no size (\"csr\")", rt->id);
            if (rg->mem != LOOM__MEM_NONE && rg->bytes < need)
                return bad(r, o, "register %d holds %zu bytes, under the %zu of its part at the bounds", k->out[j], rg->bytes, need);
        }
    }
    return 0;
}

static int read_registers(rd *r, loom__plan *pl, int a)
{
    pl->nregst = pl->cap_regst = jv(r, a)->n;
    pl->regst = calloc((size_t)pl->nregst + 1, sizeof *pl->regst);
    if (!pl->regst)
        return bad(r, a, "out of memory");
    int i = 0;
    for (int o = jv(r, a)->first; o >= 0; o = jv(r, o)->next, i++) {
        loom__regst *rg = &pl->regst[i];
        int mem;
        if (jv(r, o)->kind != LOOM__JSON_OBJ)
            return bad(r, o, "a register must be an object");
        if (get_i(r, o, "producer", 0, pl->ntasks - 1, &rg->producer) || get_i(r, o, "tensor", 0, pl->g->n - 1, &rg->tensor) ||
            get_i(r, o, "dom", LOOM__HOST, pl->ndev - 1, &rg->dom) || get_i(r, o, "nparts", 1, LOOM__MAX_DEVICES, &rg->nparts) ||
            get_i(r, o, "part", 0, rg->nparts - 1, &rg->part) || sbp_at(r, member(r, o, "sbp", LOOM__JSON_STR), &rg->sbp) ||
            get_size(r, o, "bytes", &rg->bytes) || get_i(r, o, "regst_num", 1, LOOM_MAX_REGST_NUM, &rg->regst_num) ||
            get_name(r, o, "mem", mem_names, NMEM, &mem) || get_size(r, o, "offset", &rg->offset) ||
            get_i(r, o, "first", -1, INT32_MAX, &rg->first) || get_i(r, o, "last", -1, INT32_MAX, &rg->last) ||
            get_i(r, o, "nconsumers", 0, INT32_MAX, &rg->nconsumers))
            return -1;
        rg->mem = (loom__mem_kind)mem;
    }
    uint8_t *written = calloc((size_t)pl->nregst + 1, 1);
    if (!written)
        return bad(r, a, "out of memory");
    for (int t = 0; t < pl->ntasks; t++)
        for (int j = 0; j < pl->task[t].n_in + pl->task[t].n_out; j++) {
            int reg = j < pl->task[t].n_in ? pl->task[t].in[j] : pl->task[t].out[j - pl->task[t].n_in];
            if (reg >= pl->nregst)
                return free(written), bad(r, a, "task %d names register %d of %d", t, reg, pl->nregst);
            if (j >= pl->task[t].n_in && (pl->regst[reg].producer != t || written[reg]++))
                return free(written), bad(r, a, "task %d writes register %d, whose producer is task %d", t, reg, pl->regst[reg].producer);
        }
    for (int reg = 0; reg < pl->nregst; reg++)
        if (!written[reg])
            return free(written), bad(r, a, "register %d is not among the outputs of its producer, task %d", reg, pl->regst[reg].producer);
    free(written);
    return 0;
}

static int read_devices(rd *r, loom__plan *pl, int root)
{
    int *dev = NULL, n = 0;
    if (get_ints(r, root, "devices", 0, LOOM_MAX_DEVICE_INDEX, &dev, &n))
        return free(dev), -1;
    if (n < 1 || n > LOOM__MAX_DEVICES)
        return free(dev), bad(r, loom__json_get(r->doc, root, "devices"), "a plan has 1 to %d devices", LOOM__MAX_DEVICES);
    pl->ndev = n;
    pl->dev_index = calloc(LOOM__MAX_DEVICES, sizeof *pl->dev_index);
    if (!pl->dev_index)
        return free(dev), bad(r, root, "out of memory");
    memcpy(pl->dev_index, dev, (size_t)n * sizeof *dev);
    free(dev);
    int a = member(r, root, "places", LOOM__JSON_ARR);
    if (a < 0)
        return -1;
    pl->nplaces = jv(r, a)->n;
    if (pl->nplaces < 1)
        return bad(r, a, "a plan has at least one placement");
    pl->place_n = calloc((size_t)pl->nplaces, sizeof *pl->place_n);
    pl->place_dev = calloc((size_t)pl->nplaces, sizeof *pl->place_dev);
    if (!pl->place_n || !pl->place_dev)
        return bad(r, a, "out of memory");
    int k = 0;
    for (int c = jv(r, a)->first; c >= 0; c = jv(r, c)->next, k++) {
        if (jv(r, c)->kind != LOOM__JSON_ARR)
            return bad(r, c, "a placement is an array of the plan's devices");
        pl->place_n[k] = jv(r, c)->n;
        pl->place_dev[k] = calloc((size_t)pl->place_n[k] + 1, sizeof **pl->place_dev);
        if (!pl->place_dev[k])
            return bad(r, c, "out of memory");
        int j = 0;
        for (int e = jv(r, c)->first; e >= 0; e = jv(r, e)->next, j++) {
            int64_t d = 0;
            if (int_at(r, e, "a placement's device", 0, pl->ndev - 1, &d))
                return -1;
            pl->place_dev[k][j] = (int)d;
        }
        if (pl->place_n[k] < 1)
            return bad(r, c, "a placement has at least one device");
    }
    return 0;
}

static int read_ops(rd *r, loom__plan *pl, int root)
{
    int64_t tag = 0, seed = 0;
    int a = member(r, root, "tensors", LOOM__JSON_ARR), dyn = member(r, root, "dyn", LOOM__JSON_ARR);
    if (a < 0 || dyn < 0 || get_int(r, root, "dyn_tag", 0, (INT64_C(1) << LOOM__DYN_TAG_BITS) - 1, &tag) ||
        get_int(r, root, "seed", INT64_MIN, INT64_MAX, &seed))
        return -1;
    int n = jv(r, a)->n;
    loom_graph *g = pl->g = calloc(1, sizeof *g);
    if (!g)
        return bad(r, a, "out of memory");
    g->t = malloc(((size_t)n + 1) * sizeof *g->t);
    g->chunk = calloc((size_t)n + 1, sizeof *g->chunk);
    g->dyn = calloc((size_t)jv(r, dyn)->n + 1, sizeof *g->dyn);
    int *grad_of = malloc(((size_t)n + 1) * sizeof *grad_of);
    pl->passes.grad_of = grad_of;
    pl->csr_rows = malloc(((size_t)n + 1) * sizeof *pl->csr_rows);
    pl->csr_nnz = malloc(((size_t)n + 1) * sizeof *pl->csr_nnz);
    if (!g->t || !g->chunk || !g->dyn || !grad_of || !pl->csr_rows || !pl->csr_nnz)
        return bad(r, a, "out of memory");
    g->n = g->cap = n;
    g->dyn_tag = tag;
    g->seed = (uint64_t)seed;
    g->names_cap = -1;
    if (jv(r, dyn)->n > LOOM__MAX_DYN)
        return bad(r, dyn, "more than %d dynamic dims", LOOM__MAX_DYN);
    for (int c = jv(r, dyn)->first; c >= 0; c = jv(r, c)->next, g->ndyn++) {
        int nm = member(r, c, "name", LOOM__JSON_STR);
        if (nm < 0 || get_int(r, c, "bound", 0, INT64_MAX, &g->dyn[g->ndyn].bound))
            return -1;
        if (strlen(jv(r, nm)->s) >= sizeof g->dyn->name)
            return bad(r, nm, "a dynamic dim's name of more than %zu bytes", sizeof g->dyn->name - 1);
        snprintf(g->dyn[g->ndyn].name, sizeof g->dyn->name, "%s", jv(r, nm)->s);
    }
    if (get_i(r, root, "fwd_end", 0, n, &pl->passes.fwd_end) || get_i(r, root, "bwd_end", pl->passes.fwd_end, n, &pl->passes.bwd_end) ||
        get_i(r, root, "loss", -1, n - 1, &pl->loss) || get_i(r, root, "nlogical", 1, LOOM__MAX_DEVICES, &pl->nlogical))
        return -1;
    pl->passes.g = g;
    if (pl->nlogical > 1) {
        pl->sbp = calloc((size_t)n + 1, sizeof *pl->sbp);
        pl->sig = calloc((size_t)n + 1, sizeof *pl->sig);
        if (!pl->sbp || !pl->sig)
            return bad(r, a, "out of memory");
    }
    int id = 0;
    for (int c = jv(r, a)->first; c >= 0; c = jv(r, c)->next, id++) {
        g->t[id] = &g->chunk[id];
        if (jv(r, c)->kind != LOOM__JSON_OBJ)
            return bad(r, c, "a tensor must be an object");
        if (read_tensor(r, pl, c, id, grad_of))
            return -1;
    }
    return 0;
}

/* The by-id tables: kept tensors, the parameters' offsets, the registers of each part. */
static int read_tables(rd *r, loom__plan *pl, int root)
{
    size_t n = (size_t)pl->g->n, nd = (size_t)pl->ndev;
    pl->kept = calloc(n + 1, sizeof *pl->kept);
    pl->param_off = malloc(n * nd * sizeof *pl->param_off + 1);
    pl->mem = calloc(nd, sizeof *pl->mem);
    if (!pl->kept || !pl->param_off || !pl->mem)
        return bad(r, root, "out of memory");
    for (size_t i = 0; i < n * nd; i++)
        pl->param_off[i] = (size_t)-1;
    int *kept = NULL, nk = 0;
    if (get_ints(r, root, "kept", 0, (int)n - 1, &kept, &nk))
        return free(kept), -1;
    for (int i = 0; i < nk; i++)
        pl->kept[kept[i]] = 1;
    free(kept);
    int po = member(r, root, "param_off", LOOM__JSON_ARR), mem = member(r, root, "memory", LOOM__JSON_ARR);
    if (po < 0 || mem < 0)
        return -1;
    for (int c = jv(r, po)->first; c >= 0; c = jv(r, c)->next) {
        int64_t id = 0, d = 0, off = 0;
        int e = jv(r, c)->first;
        if (jv(r, c)->kind != LOOM__JSON_ARR || jv(r, c)->n != 3)
            return bad(r, c, "a parameter's offset is [tensor, device, offset]");
        if (int_at(r, e, "the tensor", 0, (int64_t)n - 1, &id) || int_at(r, jv(r, e)->next, "the device", 0, (int64_t)nd - 1, &d) ||
            int_at(r, jv(r, jv(r, e)->next)->next, "the offset", 0, INT64_MAX, &off))
            return -1;
        pl->param_off[(size_t)id * nd + (size_t)d] = (size_t)off;
    }
    if (jv(r, mem)->n != pl->ndev)
        return bad(r, mem, "the memory of each of the %d devices", pl->ndev);
    int d = 0;
    for (int c = jv(r, mem)->first; c >= 0; c = jv(r, c)->next, d++) {
        loom__dev_mem *m = &pl->mem[d];
        if (get_size(r, c, "shared", &m->shared) || get_size(r, c, "unshared", &m->unshared) || get_size(r, c, "own", &m->own) ||
            get_size(r, c, "params", &m->params) || get_size(r, c, "inputs", &m->inputs))
            return -1;
        pl->shared_bytes += m->shared;
        pl->own_bytes += m->own;
        pl->unshared_bytes += m->unshared;
    }
    return get_size(r, root, "host_bytes", &pl->host_bytes);
}

loom__plan *loom__plan_read_json(const char *text, size_t len, const char *where, char *msg, size_t msglen)
{
    loom__json doc;
    char jm[200];
    if (loom__json_parse(text, len, &doc, jm, sizeof jm)) {
        snprintf(msg, msglen, "%s: %s", where, jm);
        return NULL;
    }
    rd r = {.doc = &doc, .where = where, .msg = msg, .msglen = msglen};
    loom__plan *pl = calloc(1, sizeof *pl);
    int kind = 0, mode = 0, tasks, regs;
    int64_t version = 0;
    for (int i = 0; i < LOOM_OP_COUNT; i++)
        r.ops[i] = loom__op_def((loom_op)i)->name;
    for (int i = 0; i < LOOM_DTYPE_COUNT; i++)
        r.dtypes[i] = loom_dtype_name((loom_dtype)i);
    for (int i = 0; i < LOOM_DEVICE_KIND_COUNT; i++)
        r.kinds[i] = loom_device_kind_name((loom_device_kind)i);
    int ok = pl && doc.v[0].kind == LOOM__JSON_OBJ;
    if (!pl)
        bad(&r, 0, "out of memory");
    else if (!ok)
        bad(&r, 0, "a plan is a JSON object");
    if (ok && (get_int(&r, 0, "loom_plan", 1, INT64_MAX, &version) ||
               (version != PLAN_JSON_VERSION && bad(&r, loom__json_get(&doc, 0, "loom_plan"), "version %" PRId64 " of the plan format; this Loom reads version %d", version, PLAN_JSON_VERSION)) ||
               get_name(&r, 0, "mode", mode_names, LOOM_RUN_MODE_COUNT, &mode) ||
               get_name(&r, 0, "kind", r.kinds, LOOM_DEVICE_KIND_COUNT, &kind) ||
               get_i(&r, 0, "source_regst_num", 1, LOOM_MAX_REGST_NUM, &pl->source_regst_num) || read_devices(&r, pl, 0)))
        ok = 0;
    if (ok) {
        pl->mode = (loom_run_mode)mode;
        pl->kind = (loom_device_kind)kind;
        pl->nchain = calloc((size_t)pl->ndev, sizeof *pl->nchain);
        ok = pl->nchain ? read_ops(&r, pl, 0) == 0 && read_tables(&r, pl, 0) == 0 : bad(&r, 0, "out of memory") == 0;
    }
    if (ok && ((tasks = member(&r, 0, "tasks", LOOM__JSON_ARR)) < 0 || read_tasks(&r, pl, tasks) || check_chains(&r, pl, tasks) ||
               (regs = member(&r, 0, "registers", LOOM__JSON_ARR)) < 0 || read_registers(&r, pl, regs)))
        ok = 0;
    for (int i = 0, o = ok ? doc.v[regs].first : -1; ok && i < pl->nregst; i++, o = doc.v[o].next)
        if (check_register(&r, pl, o, &pl->regst[i]))
            ok = 0;
    if (ok && check_reads(&r, pl, tasks))
        ok = 0;
    loom__json_free(&doc);
    if (!ok) {
        loom__plan_free(pl);
        return NULL;
    }
    return pl;
}
