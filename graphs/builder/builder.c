/* The graph builder: graphs, their placements, seed and first error, the node constructor that
 * every op's builder goes through, and the tensors' accessors (dims and shapes are dims.c's, names
 * names.c's, inputs and parameters leaves.c's). No call here aborts: errors are kept on the graph. */
#include "graphs/builder/builder_internal.h"
#include "ops/sbp_sigs.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CHUNK = 256 };

loom_graph *loom_graph_new(void)
{
    loom_graph *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    /* one tag per graph for its dim handles; it wraps only after 2^40 graphs, so a handle kept
     * from a graph that long gone is the only one that could pass for another's */
    static atomic_int_fast64_t next_tag;
    g->dyn_tag = (int64_t)(atomic_fetch_add(&next_tag, 1) & ((INT64_C(1) << LOOM__DYN_TAG_BITS) - 1));
    g->poison.id = -1;
    g->poison.flags = LOOM__T_POISON;
    g->poison.graph = g;
    snprintf(g->poison.name, sizeof g->poison.name, "<poisoned>");
    return g;
}

void loom_graph_free(loom_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->nchunks; i++)
        free(g->chunks[i]);
    free(g->chunks);
    free(g->t);
    free(g->dyn);
    for (int k = 0; k < g->nplaces; k++)
        loom_placement_free(g->places[k]);
    free(g->places);
    free(g->names);
    free(g);
}

const char *loom_graph_error(const loom_graph *g)
{
    if (!g)
        return "loom: graph is NULL";
    return g->status == LOOM_OK ? NULL : g->err;
}

loom_status loom_graph_status(const loom_graph *g) { return g ? g->status : LOOM_ERR_INVALID; }

int loom__place_ndev(const loom_graph *g, int k)
{
    return k < g->nplaces && g->places[k] ? loom_placement_ndevices(g->places[k]) : 1;
}

/* Adds p to g's places, or finds it; the first becomes the graph's own placement unless `moved`
 * says it is a move's destination (then the default, one device, keeps index 0). */
static int place_of(loom_graph *g, const loom_placement *p, int moved)
{
    for (int k = 0; k < g->nplaces; k++)
        if (g->places[k] && loom_placement_equal(g->places[k], p))
            return k;
    if (g->nplaces + 2 > g->cap_places) {
        int cap = g->cap_places ? 2 * g->cap_places : 4;
        loom_placement **q = realloc(g->places, (size_t)cap * sizeof *q);
        if (!q)
            return -1;
        g->places = q;
        g->cap_places = cap;
    }
    loom_placement *c = loom_placement_copy(p);
    if (!c)
        return -1;
    if (g->nplaces == 0 && moved)
        g->places[g->nplaces++] = NULL;
    if (g->nplaces == 0)
        g->placement = c; /* where every tensor is unless moved */
    g->places[g->nplaces++] = c;
    return g->nplaces - 1;
}

void loom_graph_set_placement(loom_graph *g, const loom_placement *p)
{
    if (!g)
        return;
    if (!p) {
        loom__fail(g, LOOM_ERR_INVALID, "loom_graph_set_placement: the placement is NULL");
        return;
    }
    int k = place_of(g, p, 0);
    if (k < 0) {
        loom__fail(g, LOOM_ERR_NOMEM, "loom_graph_set_placement: out of memory");
        return;
    }
    g->cur_place = k;
}

loom_tensor *loom_to_placement(loom_graph *g, loom_tensor *x, const loom_placement *p)
{
    if (!g)
        return NULL;
    if (!p)
        return loom__fail(g, LOOM_ERR_INVALID, "loom_to_placement: the placement is NULL");
    int k = place_of(g, p, 1);
    if (k < 0)
        return loom__fail(g, LOOM_ERR_NOMEM, "loom_to_placement: out of memory");
    if (x && !(x->flags & LOOM__T_POISON) && x->graph == g && x->place == k)
        return x; /* already there */
    return loom__node(g, "loom_to_placement", LOOM_OP_MOVE, 1, &x, &(loom__attrs){.i = {k}});
}

/* Checks hint s for t (api names the call in messages) and sets it; with any_levels, n == 1 on
 * any placement (that SBP on every level). */
static void set_hint(loom_tensor *t, const loom_nd_sbp *s, int any_levels, const char *api)
{
    if (!t || (t->flags & LOOM__T_POISON))
        return;
    loom_error e = {0};
    const loom_placement *p = t->place < t->graph->nplaces ? t->graph->places[t->place] : NULL;
    loom_status st = (s->n == 1 && any_levels) || !p ? loom_sbp_check(s->v[0], t->shape.ndim, &e)
                                                     : loom_nd_sbp_check(s, p, t->shape.ndim, &e);
    if (st == LOOM_OK && s->n > 1 && !p)
        st = loom_error_set(&e, LOOM_ERR_INVALID, "SBP has %d levels but the tensor is on one device", s->n);
    if (st != LOOM_OK) {
        loom__fail(t->graph, LOOM_ERR_INVALID, "%s '%s': %s", api, loom_tensor_name(t), e.msg);
        return;
    }
    for (int l = 0; l < s->n; l++)
        if (s->v[l].kind == LOOM_SBP_PARTIAL_SUM && !loom__sbp_can_partial(t)) {
            loom__fail(t->graph, LOOM_ERR_INVALID, "%s '%s': a partial sum (P) needs a dense f32 or f64 tensor; it is %s%s", api,
                       loom_tensor_name(t), t->layout == LOOM__CSR ? "a sparse " : "", loom_dtype_name(t->dtype));
            return;
        }
    t->sbp_hint = *s;
}

void loom_tensor_set_sbp(loom_tensor *t, loom_sbp s)
{
    loom_nd_sbp nd = loom_nd_sbp_1d(s);
    set_hint(t, &nd, 1, "loom_tensor_set_sbp");
}

void loom_tensor_set_nd_sbp(loom_tensor *t, loom_nd_sbp s) { set_hint(t, &s, 0, "loom_tensor_set_nd_sbp"); }

void loom_graph_set_seed(loom_graph *g, uint64_t seed)
{
    if (g)
        g->seed = seed;
}

static void record(loom_graph *g, loom_status s, const char *fmt, va_list ap)
{
    if (g->status != LOOM_OK)
        return; /* the first error is the one that explains the rest */
    g->status = s;
    vsnprintf(g->err, sizeof g->err, fmt, ap);
}

loom_tensor *loom__fail(loom_graph *g, loom_status s, const char *fmt, ...)
{
    if (!g)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    record(g, s, fmt, ap);
    va_end(ap);
    return &g->poison;
}

static loom_tensor *alloc_tensor(loom_graph *g)
{
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 64;
        loom_tensor **t = realloc(g->t, (size_t)cap * sizeof *t);
        if (!t)
            return NULL;
        g->t = t;
        g->cap = cap;
    }
    if (!g->chunk || g->chunk_used == CHUNK) {
        void **c = realloc(g->chunks, (size_t)(g->nchunks + 1) * sizeof *c);
        if (!c)
            return NULL;
        g->chunks = c;
        g->chunk = calloc(CHUNK, sizeof *g->chunk);
        if (!g->chunk)
            return NULL;
        g->chunks[g->nchunks++] = g->chunk;
        g->chunk_used = 0;
    }
    return &g->chunk[g->chunk_used++];
}

static void place_str(const loom_graph *g, int k, char *buf, size_t len)
{
    if (k < g->nplaces && g->places[k])
        loom_placement_str(g->places[k], buf, len);
    else
        snprintf(buf, len, "one device");
}

loom_tensor *loom__refuse_sources(loom_graph *g, const char *api, int n, loom_tensor *const *src)
{
    for (int i = 0; i < n; i++) {
        if (!src[i])
            return loom__fail(g, LOOM_ERR_INVALID, "%s: tensor argument %d is NULL", api, i + 1);
        if (src[i]->flags & LOOM__T_POISON)
            return &g->poison; /* the error that poisoned it is already recorded */
        if (src[i]->graph != g)
            return loom__fail(g, LOOM_ERR_INVALID, "%s: tensor argument %d belongs to another graph", api, i + 1);
    }
    return NULL;
}

loom_tensor *loom__node(loom_graph *g, const char *api, loom_op op, int n, loom_tensor *const *src, const loom__attrs *a)
{
    if (!g)
        return NULL;
    const loom_op_def *def = loom__op_def(op);
    if (!def)
        return loom__fail(g, LOOM_ERR_UNSUPPORTED, "%s: op %d is not built into this library", api, (int)op);
    if (n < def->min_src || n > def->max_src || n > LOOM__MAX_SRC || (n && !src))
        return loom__fail(g, LOOM_ERR_INVALID, "%s: takes %d to %d tensors, got %d", api, def->min_src, def->max_src, n);
    loom_tensor *bad = loom__refuse_sources(g, api, n, src);
    if (bad)
        return bad;
    loom_tensor tmp = {.id = g->n, .op = op, .n_src = n, .graph = g, .weight_decay = NAN};
    for (int i = 0; i < n; i++) {
        tmp.src[i] = src[i];
        if ((def->diff_src >> i & 1) && (src[i]->flags & LOOM__T_NEEDS_GRAD))
            tmp.flags |= LOOM__T_NEEDS_GRAD;
    }
    if (a)
        tmp.a = *a;
    /* an op runs where its sources are (a move: where it moves them); leaves where the graph
     * places them now */
    tmp.place = n ? src[0]->place : g->cur_place;
    for (int i = 1; i < n; i++)
        if (src[i]->place != tmp.place) {
            char p0[64], p1[64];
            place_str(g, tmp.place, p0, sizeof p0);
            place_str(g, src[i]->place, p1, sizeof p1);
            return loom__fail(g, LOOM_ERR_INVALID,
                              "%s: tensor argument 1 is on %s but argument %d on %s; move one with loom_to_placement", api, p0,
                              i + 1, p1);
        }
    if (op == LOOM_OP_MOVE)
        tmp.place = (int)tmp.a.i[0];
    char msg[400] = "";
    loom_status s = def->infer(&tmp, msg, sizeof msg);
    if (s != LOOM_OK)
        return loom__fail(g, s, "%s: %s", api, msg[0] ? msg : loom_status_str(s));
    char why[256];
    if (!loom__shape_ok(g, &tmp.shape, 1, why, sizeof why))
        return loom__fail(g, LOOM_ERR_SHAPE, "%s: inferred an invalid shape: %s (internal error)", api, why);
    if (!loom__size_fits(g, tmp.dtype, tmp.layout, &tmp.shape, why, sizeof why))
        return loom__fail(g, LOOM_ERR_SHAPE, "%s: result %s", api, why);
    loom_tensor *t = alloc_tensor(g);
    if (!t)
        return loom__fail(g, LOOM_ERR_NOMEM, "%s: out of memory", api);
    *t = tmp;
    g->t[g->n++] = t;
    return t;
}

/* ---- queries ---------------------------------------------------------------------------------- */

loom_dtype loom_tensor_dtype(const loom_tensor *t) { return t ? t->dtype : LOOM_DTYPE_COUNT; }
int loom_tensor_ndim(const loom_tensor *t) { return !t || (t->flags & LOOM__T_POISON) ? -1 : t->shape.ndim; }
loom_shape loom_tensor_shape(const loom_tensor *t) { return t ? t->shape : (loom_shape){0}; }
int loom_tensor_is_poisoned(const loom_tensor *t) { return !t || (t->flags & LOOM__T_POISON); }

loom_dim loom_tensor_dim(const loom_tensor *t, int i)
{
    if (!t || (i = loom__axis(i, t->shape.ndim)) < 0)
        return -1;
    return t->shape.d[i];
}

const char *loom_tensor_name(const loom_tensor *t)
{
    if (!t)
        return "<null>";
    return t->name[0] ? t->name : loom__op_def(t->op)->name;
}
