/* The graph builder: tensors, dynamic dims, inputs and parameters, and the node constructor that
 * every op's builder goes through. No call here aborts: errors are kept on the graph. */
#include "graphs/builder/graph.h"
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

void loom_tensor_set_sbp(loom_tensor *t, loom_sbp s)
{
    if (!t || (t->flags & LOOM__T_POISON))
        return;
    loom_error e = {0};
    if (loom_sbp_check(s, t->shape.ndim, &e) != LOOM_OK) {
        loom__fail(t->graph, LOOM_ERR_INVALID, "loom_tensor_set_sbp '%s': %s", loom_tensor_name(t), e.msg);
        return;
    }
    if (s.kind == LOOM_SBP_PARTIAL_SUM && !loom__sbp_can_partial(t)) {
        loom__fail(t->graph, LOOM_ERR_INVALID, "loom_tensor_set_sbp '%s': a partial sum (P) needs a dense f32 or f64 tensor; it is %s%s",
                   loom_tensor_name(t), t->layout == LOOM__CSR ? "a sparse " : "", loom_dtype_name(t->dtype));
        return;
    }
    t->sbp_hint = s;
}

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

int loom__dyn_index(const loom_graph *g, loom_dim d)
{
    if (!g || !loom_dim_is_dynamic(d))
        return -1;
    int64_t h = d - LOOM__DYN_BASE, i = h & ((INT64_C(1) << LOOM__DYN_INDEX_BITS) - 1);
    return h >> LOOM__DYN_INDEX_BITS == g->dyn_tag && i < g->ndyn ? (int)i : -1;
}

int loom__dim_ok(const loom_graph *g, loom_dim d, int allow_dynamic, const char *what, char *why, size_t len)
{
    int k = loom__dyn_index(g, d);
    if (k >= 0 && allow_dynamic)
        return 1;
    if (k >= 0)
        snprintf(why, len, "%s is the dynamic dim %s, where only static sizes are allowed", what, g->dyn[k].name);
    else if (loom_dim_is_dynamic(d))
        snprintf(why, len, "%s is %s", what,
                 (d - LOOM__DYN_BASE) >> LOOM__DYN_INDEX_BITS != g->dyn_tag ? "a dynamic dim of another graph"
                                                                              : "not a dynamic dim of this graph");
    else if (d < 0)
        snprintf(why, len, "%s is %" PRId64 " (a size must be >= 0)", what, d);
    else
        return 1;
    return 0;
}

loom_dim loom_dim_dynamic(loom_graph *g, const char *name, int64_t bound)
{
    if (!g)
        return 0;
    if (!name || !*name || strlen(name) >= sizeof g->dyn[0].name) {
        loom__fail(g, LOOM_ERR_INVALID, "loom_dim_dynamic: name must be 1 to %zu characters", sizeof g->dyn[0].name - 1);
        return 0;
    }
    if (bound < 0) {
        loom__fail(g, LOOM_ERR_INVALID, "loom_dim_dynamic: bound of '%s' is %" PRId64 ", expected >= 0", name, bound);
        return 0;
    }
    if (g->ndyn >= 1 << LOOM__DYN_INDEX_BITS) {
        loom__fail(g, LOOM_ERR_INVALID, "loom_dim_dynamic: '%s' would be dynamic dim %d; a graph has at most %d", name,
                   g->ndyn + 1, 1 << LOOM__DYN_INDEX_BITS);
        return 0;
    }
    for (int i = 0; i < g->ndyn; i++)
        if (!strcmp(g->dyn[i].name, name)) {
            loom__fail(g, LOOM_ERR_INVALID, "loom_dim_dynamic: a dynamic dim named '%s' exists already", name);
            return 0;
        }
    loom__dyn_dim *d = realloc(g->dyn, (size_t)(g->ndyn + 1) * sizeof *d);
    if (!d) {
        loom__fail(g, LOOM_ERR_NOMEM, "loom_dim_dynamic: out of memory");
        return 0;
    }
    g->dyn = d;
    snprintf(d[g->ndyn].name, sizeof d[g->ndyn].name, "%s", name);
    d[g->ndyn].bound = bound;
    d[g->ndyn].part_bound = 0;
    return LOOM__DYN_BASE + (g->dyn_tag << LOOM__DYN_INDEX_BITS) + g->ndyn++;
}

int loom__dim_eq(loom_dim a, loom_dim b) { return a == b; }

int loom__shape_eq(const loom_shape *a, const loom_shape *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (!loom__dim_eq(a->d[i], b->d[i]))
            return 0;
    return 1;
}

int64_t loom__dim_bound(const loom_graph *g, loom_dim d)
{
    int i = loom__dyn_index(g, d);
    return i >= 0 ? g->dyn[i].bound : d;
}

int loom__axis(int axis, int ndim)
{
    if (axis < 0)
        axis += ndim;
    return axis >= 0 && axis < ndim ? axis : -1;
}

const char *loom__shape_str(const loom_graph *g, const loom_shape *s, char *buf, size_t len)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "[");
    for (int i = 0; i < s->ndim; i++) {
        const char *sep = i ? ", " : "";
        int k = loom__dyn_index(g, s->d[i]);
        if (k >= 0)
            o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%s", sep, g->dyn[k].name);
        else if (loom_dim_is_dynamic(s->d[i]))
            o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s?", sep); /* not a dim of g */
        else
            o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%" PRId64, sep, s->d[i]);
    }
    snprintf(buf + o, o < len ? len - o : 0, "]");
    return buf;
}

/* A shape is valid on g when every dim is a size >= 0 or (allow_dynamic) one of g's dynamic
 * dims; else 0 with why as loom__dim_ok writes it. */
static int shape_ok(const loom_graph *g, const loom_shape *s, int allow_dynamic, char *why, size_t len)
{
    if (s->ndim < 0 || s->ndim > LOOM_MAX_DIMS) {
        snprintf(why, len, "%d dims (0 to %d allowed)", s->ndim, LOOM_MAX_DIMS);
        return 0;
    }
    for (int i = 0; i < s->ndim; i++) {
        char what[16];
        snprintf(what, sizeof what, "dim %d", i);
        if (!loom__dim_ok(g, s->d[i], allow_dynamic, what, why, len))
            return 0;
    }
    return 1;
}

/* 1 when a tensor of dtype, layout and (valid) shape has its element and byte counts in an int64
 * at the bounds of its dims, which every size computed later (values, plan registers, feeds)
 * relies on; else 0 with why = "[N, 4] of f32 is 2^66 bytes ..., over ...". A dim of 0 counts as
 * 1: an empty tensor's strides still multiply its other dims (kernels compute them), and the
 * answer must not depend on where the 0 is. A CSR matrix's arrays are sized by its rows (the row
 * pointer) and its entries (checked when fed). */
static int size_fits(const loom_graph *g, loom_dtype dtype, loom__layout layout, const loom_shape *s, char *why, size_t len)
{
    int64_t b[LOOM_MAX_DIMS], rows;
    int dyn = 0, empty = 0;
    for (int i = 0; i < s->ndim; i++) {
        b[i] = loom__dim_bound(g, s->d[i]);
        dyn |= loom_dim_is_dynamic(s->d[i]);
        if (b[i] == 0 && layout == LOOM__DENSE)
            b[i] = 1, empty = 1;
    }
    double bytes = 0;
    if (layout == LOOM__CSR) {
        if (s->ndim != 2 || (!loom__add_size(b[0], 1, &rows) && !loom__mul_size(rows, sizeof(int32_t), &rows)))
            return 1;
        bytes = ((double)b[0] + 1) * sizeof(int32_t);
    } else {
        if (!loom__dense_size(dtype, s->ndim, b, NULL, NULL))
            return 1;
        bytes = (double)loom_dtype_size(dtype);
        for (int i = 0; i < s->ndim; i++)
            bytes *= (double)b[i];
    }
    char sb[128];
    snprintf(why, len, "%s of %s %s 2^%g bytes%s%s, over what an int64 byte count holds", loom__shape_str(g, s, sb, sizeof sb),
             loom_dtype_name(dtype), layout == LOOM__CSR ? "has a row pointer of" : empty ? "has strides of" : "is",
             round(log2(bytes) * 10) / 10, empty ? " (its dims but the zeros)" : "", dyn ? " at the bounds of its dynamic dims" : "");
    return 0;
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

loom_tensor *loom__node(loom_graph *g, const char *api, loom_op op, int n, loom_tensor *const *src, const loom__attrs *a)
{
    if (!g)
        return NULL;
    const loom_op_def *def = loom__op_def(op);
    if (!def)
        return loom__fail(g, LOOM_ERR_UNSUPPORTED, "%s: op %d is not built into this library", api, (int)op);
    if (n < def->min_src || n > def->max_src || n > LOOM__MAX_SRC || (n && !src))
        return loom__fail(g, LOOM_ERR_INVALID, "%s: takes %d to %d tensors, got %d", api, def->min_src, def->max_src, n);
    loom_tensor tmp = {.id = g->n, .op = op, .n_src = n, .graph = g, .weight_decay = NAN};
    for (int i = 0; i < n; i++) {
        if (!src[i])
            return loom__fail(g, LOOM_ERR_INVALID, "%s: tensor argument %d is NULL", api, i + 1);
        if (src[i]->flags & LOOM__T_POISON)
            return &g->poison; /* the error that poisoned it is already recorded */
        if (src[i]->graph != g)
            return loom__fail(g, LOOM_ERR_INVALID, "%s: tensor argument %d belongs to another graph", api, i + 1);
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
    if (!shape_ok(g, &tmp.shape, 1, why, sizeof why))
        return loom__fail(g, LOOM_ERR_SHAPE, "%s: inferred an invalid shape: %s (internal error)", api, why);
    if (!size_fits(g, tmp.dtype, tmp.layout, &tmp.shape, why, sizeof why))
        return loom__fail(g, LOOM_ERR_SHAPE, "%s: result %s", api, why);
    loom_tensor *t = alloc_tensor(g);
    if (!t)
        return loom__fail(g, LOOM_ERR_NOMEM, "%s: out of memory", api);
    *t = tmp;
    g->t[g->n++] = t;
    return t;
}

static int name_ok(loom_graph *g, const char *api, const char *name);

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

/* ---- names: a hash table of the named tensors' ids, so that naming n tensors is linear -------- */

static size_t name_hash(const char *s) /* FNV-1a */
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return (size_t)h;
}

/* The slot holding name, or else the free slot where it would go. */
static int name_slot(const loom_graph *g, const char *name)
{
    size_t mask = (size_t)g->names_cap - 1;
    for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
        int id = g->names[i];
        if (id == LOOM__NAME_FREE || (id >= 0 && !strcmp(g->t[id]->name, name)))
            return (int)i;
    }
}

/* Enters t (named now) in the table, growing it to keep a free slot in every two. */
static void name_add(loom_graph *g, const loom_tensor *t)
{
    if (g->names_cap < 0)
        return;
    if (2 * (g->names_used + 1) > g->names_cap) {
        int cap = g->names_cap ? 2 * g->names_cap : 64;
        int *old = g->names, old_cap = g->names_cap;
        g->names = cap > 0 && cap <= INT_MAX / 2 ? malloc((size_t)cap * sizeof *g->names) : NULL;
        if (!g->names) {
            free(old);
            g->names_cap = -1; /* searched from now on */
            return;
        }
        for (int i = 0; i < cap; i++)
            g->names[i] = LOOM__NAME_FREE;
        g->names_cap = cap;
        g->names_used = 0;
        for (int i = 0; i < old_cap; i++)
            if (old[i] >= 0) {
                g->names[name_slot(g, g->t[old[i]]->name)] = old[i];
                g->names_used++;
            }
        free(old);
    }
    g->names[name_slot(g, t->name)] = t->id;
    g->names_used++;
}

loom_tensor *loom_graph_find(loom_graph *g, const char *name)
{
    if (!g || !name || !*name)
        return NULL;
    if (g->names_cap < 0) {
        for (int i = 0; i < g->n; i++)
            if (g->t[i]->name[0] && !strcmp(g->t[i]->name, name))
                return g->t[i];
        return NULL;
    }
    if (!g->names_cap)
        return NULL;
    int id = g->names[name_slot(g, name)];
    return id >= 0 ? g->t[id] : NULL;
}

loom_tensor *loom_graph_tensor(loom_graph *g, const char *name)
{
    if (!g)
        return NULL;
    loom_tensor *t = loom_graph_find(g, name);
    if (t)
        return t;
    if (!name)
        return loom__fail(g, LOOM_ERR_INVALID, "loom_graph_tensor: the name is NULL");
    return loom__fail(g, LOOM_ERR_NOT_FOUND, "loom_graph_tensor: the graph has no tensor named '%s'", name);
}

/* Names t (a tensor of g, name checked by name_ok), in the table too. */
static void set_name(loom_graph *g, loom_tensor *t, const char *name)
{
    if (t->name[0] && g->names_cap > 0)
        g->names[name_slot(g, t->name)] = LOOM__NAME_GONE; /* still used: probes go past it */
    snprintf(t->name, sizeof t->name, "%s", name);
    name_add(g, t);
}

void loom_tensor_set_name(loom_tensor *t, const char *name)
{
    if (!t || (t->flags & LOOM__T_POISON))
        return;
    if (name_ok(t->graph, "loom_tensor_set_name", name))
        set_name(t->graph, t, name);
}

loom_tensor *loom_graph_param(loom_graph *g, int k)
{
    for (int i = 0; g && i < g->n; i++)
        if (g->t[i]->op == LOOM_OP_PARAM && k-- == 0)
            return g->t[i];
    return NULL;
}

/* ---- inputs and parameters -------------------------------------------------------------------- */

static int name_ok(loom_graph *g, const char *api, const char *name)
{
    if (!name || !*name || strlen(name) >= sizeof g->poison.name) {
        loom__fail(g, LOOM_ERR_INVALID, "%s: name must be 1 to %zu characters", api, sizeof g->poison.name - 1);
        return 0;
    }
    if (loom_graph_find(g, name)) {
        loom__fail(g, LOOM_ERR_INVALID, "%s: a tensor named '%s' exists already", api, name);
        return 0;
    }
    return 1;
}

static loom_tensor *leaf(loom_graph *g, const char *api, loom_op op, const char *name, loom_dtype dtype,
                         loom__layout layout, loom_shape shape)
{
    if (!g)
        return NULL;
    if (!name_ok(g, api, name))
        return &g->poison;
    if ((unsigned)dtype >= LOOM_DTYPE_COUNT)
        return loom__fail(g, LOOM_ERR_DTYPE, "%s '%s': invalid dtype %d", api, name, (int)dtype);
    char buf[128], why[256];
    if (!shape_ok(g, &shape, op == LOOM_OP_INPUT, why, sizeof why))
        return loom__fail(g, LOOM_ERR_SHAPE, "%s '%s': invalid shape %s: %s", api, name,
                          shape.ndim >= 0 && shape.ndim <= LOOM_MAX_DIMS ? loom__shape_str(g, &shape, buf, sizeof buf)
                                                                          : "(bad rank)",
                          why);
    if (!size_fits(g, dtype, layout, &shape, why, sizeof why))
        return loom__fail(g, LOOM_ERR_SHAPE, "%s '%s': shape %s", api, name, why);
    loom__attrs a = {.i = {dtype, layout}, .shape = shape};
    loom_tensor *t = loom__node(g, api, op, 0, NULL, &a);
    if (!(t->flags & LOOM__T_POISON))
        set_name(g, t, name);
    return t;
}

loom_tensor *loom_input(loom_graph *g, const char *name, loom_dtype dtype, loom_shape shape)
{
    return leaf(g, "loom_input", LOOM_OP_INPUT, name, dtype, LOOM__DENSE, shape);
}

loom_tensor *loom_input_csr(loom_graph *g, const char *name, loom_dtype vdtype, loom_dim nrows, loom_dim ncols)
{
    if (g && vdtype != LOOM_F32 && vdtype != LOOM_F64)
        return loom__fail(g, LOOM_ERR_DTYPE, "loom_input_csr '%s': values must be f32 or f64, got %s",
                          name ? name : "?", loom_dtype_name(vdtype));
    return leaf(g, "loom_input_csr", LOOM_OP_INPUT, name, vdtype, LOOM__CSR, loom_shape(nrows, ncols));
}

loom_tensor *loom_param(loom_graph *g, const char *name, loom_dtype dtype, loom_shape shape, loom_init init)
{
    if (g && !loom_dtype_is_float(dtype))
        return loom__fail(g, LOOM_ERR_DTYPE, "loom_param '%s': parameters must be f32 or f64, got %s", name ? name : "?",
                          loom_dtype_name(dtype));
    if (g && (unsigned)init.kind >= LOOM_INIT_KIND_COUNT)
        return loom__fail(g, LOOM_ERR_INVALID, "loom_param '%s': invalid initialiser kind %d", name ? name : "?",
                          (int)init.kind);
    if (g && init.kind == LOOM_INIT_UNIFORM && !(init.a <= init.b))
        return loom__fail(g, LOOM_ERR_INVALID, "loom_param '%s': uniform bounds [%g, %g) are empty", name ? name : "?",
                          init.a, init.b);
    if (g && init.kind == LOOM_INIT_NORMAL && !(init.b >= 0))
        return loom__fail(g, LOOM_ERR_INVALID, "loom_param '%s': normal std %g is negative", name ? name : "?", init.b);
    loom_tensor *t = leaf(g, "loom_param", LOOM_OP_PARAM, name, dtype, LOOM__DENSE, shape);
    if (t && !(t->flags & LOOM__T_POISON)) {
        t->init = init;
        t->flags |= LOOM__T_NEEDS_GRAD;
    }
    return t;
}

void loom_param_set_weight_decay(loom_tensor *param, double weight_decay)
{
    if (!param || (param->flags & LOOM__T_POISON))
        return;
    if (param->op != LOOM_OP_PARAM || !(weight_decay >= 0)) {
        loom__fail(param->graph, LOOM_ERR_INVALID, "loom_param_set_weight_decay: '%s' %s", loom_tensor_name(param),
                   param->op != LOOM_OP_PARAM ? "is not a parameter" : "needs a weight decay >= 0");
        return;
    }
    param->weight_decay = weight_decay;
}

loom_status loom__input_dims(const loom_graph *g, const loom_tensor *t, int ndim, const int64_t *shape, char *msg, size_t len)
{
    char b[128];
    if (ndim != t->shape.ndim) {
        snprintf(msg, len, "input '%s' is %s, data has %d dims", t->name, loom__shape_str(g, &t->shape, b, sizeof b), ndim);
        return LOOM_ERR_SHAPE;
    }
    for (int i = 0; i < ndim; i++) {
        int64_t bound = loom__dim_bound(g, t->shape.d[i]);
        int k = loom__dyn_index(g, t->shape.d[i]);
        if (shape[i] >= 0 && (k >= 0 ? shape[i] <= bound : shape[i] == bound))
            continue;
        char why[96];
        if (shape[i] < 0)
            snprintf(why, sizeof why, "a size must be >= 0");
        else if (k >= 0)
            snprintf(why, sizeof why, "over %s's bound of %" PRId64, g->dyn[k].name, bound);
        else
            snprintf(why, sizeof why, "the input's is %" PRId64, bound);
        snprintf(msg, len, "input '%s' is %s, data has size %" PRId64 " in dim %d (%s)", t->name,
                 loom__shape_str(g, &t->shape, b, sizeof b), shape[i], i, why);
        return LOOM_ERR_SHAPE;
    }
    return LOOM_OK;
}
