/* Register tokens between ranks: what the communication thread sends of a token and how a mirror
 * of it takes what arrives (loom__rt_wire; of a dense register of static shape, only the window
 * that the other rank's readers read), and the check that every rank runs the same plan. */
#define _GNU_SOURCE /* open_memstream */
#include "actors/exec_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The header: the token, then where its dense range starts in the value (a window's first byte). */
_Static_assert(sizeof(token) + sizeof(int64_t) <= LOOM__WIRE_HEAD, "a token's description must fit the wire's header");

/* The bytes of a dense part (register in, of static shape) that a boxing or move task writing
 * register out reads: the overlap of the parts' regions (every conversion of runtime/comm/parts.c
 * reads no more of a part), from its first element to its last in the part's row-major order:
 * {first, count}, count 0 when they do not overlap. */
static void read_span(const loom__plan *pl, const loom__regst *in, const loom__regst *out, int64_t span[2])
{
    const loom_tensor *t = pl->g->t[in->tensor];
    const int nd = t->shape.ndim;
    int64_t shape[LOOM_MAX_DIMS], is[LOOM_MAX_DIMS], isz[LOOM_MAX_DIMS], os[LOOM_MAX_DIMS], osz[LOOM_MAX_DIMS];
    int64_t ext[LOOM_MAX_DIMS], at_in[LOOM_MAX_DIMS], at_out[LOOM_MAX_DIMS], a = 0, z = 0;
    for (int i = 0; i < nd; i++)
        shape[i] = t->shape.d[i];
    const loom__lay li = loom__regst_lay(in), lo = loom__regst_lay(out);
    loom__nd_region(shape, nd, &li.s, li.mesh, in->part, is, isz);
    loom__nd_region(shape, nd, &lo.s, lo.mesh, out->part, os, osz);
    span[0] = span[1] = 0;
    if (!loom__part_overlap(is, isz, os, osz, nd, ext, at_in, at_out))
        return;
    for (int i = 0; i < nd; i++) {
        a = a * isz[i] + at_in[i];
        z = z * isz[i] + at_in[i] + ext[i] - 1;
    }
    const int64_t es = (int64_t)loom_dtype_size(t->dtype);
    span[0] = a * es;
    span[1] = (z - a + 1) * es;
}

static int static_dense(const loom_tensor *t)
{
    for (int i = 0; i < t->shape.ndim; i++)
        if (loom_dim_is_dynamic(t->shape.d[i]))
            return 0;
    return t->layout == LOOM__DENSE;
}

loom_status loom__exec_wire_windows(loom__exec *x)
{
    const loom__plan *pl = x->pl;
    const size_t nr = (size_t)x->nranks;
    if (pl->kind != LOOM_DEVICE_CPU) /* GPUs box through NCCL: only what the sinks keep crosses, whole */
        return LOOM_OK;
    x->window = malloc((size_t)pl->nregst * nr * sizeof *x->window + 1);
    if (!x->window)
        return LOOM_ERR_NOMEM;
    for (size_t w = 0; w < (size_t)pl->nregst * nr; w++) /* no reader yet: an empty window */
        x->window[w][0] = INT64_MAX, x->window[w][1] = 0;
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        for (int j = 0; j < k->n_in; j++) {
            const loom__regst *in = &pl->regst[k->in[j]];
            if (in->dom < 0 || !loom__exec_dev_here(x, in->dom))
                continue;
            int some = (k->kind == LOOM__TASK_BOXING || k->kind == LOOM__TASK_MOVE) && static_dense(pl->g->t[in->tensor]);
            int64_t span[2] = {0, -1};
            if (some)
                read_span(pl, in, &pl->regst[k->out[0]], span);
            for (size_t r = 0; r < nr; r++) {
                int64_t *w = x->window[(size_t)k->in[j] * nr + r];
                if ((k->device != LOOM__HOST && pl->dev_rank[k->device] != (int)r) || w[1] < 0 || span[1] == 0)
                    continue; /* not read on rank r (a host task reads on every rank: its sinks), or all of it already */
                if (span[1] < 0) {
                    w[0] = 0, w[1] = -1;
                    continue;
                }
                int64_t end = w[0] == INT64_MAX ? 0 : w[0] + w[1];
                w[0] = span[0] < w[0] ? span[0] : w[0];
                w[1] = (span[0] + span[1] > end ? span[0] + span[1] : end) - w[0];
            }
        }
    }
    for (size_t w = 0; w < (size_t)pl->nregst * nr; w++)
        if (x->window[w][0] == INT64_MAX)
            x->window[w][0] = 0, x->window[w][1] = -1;
    return LOOM_OK;
}

/* The value's bytes, where its pointers say: dense, one range (of a register whose readers on
 * `rank` read a window of it, that window); CSR, row pointers, columns, values. */
static size_t pack(void *ctx, void *buf, int rank, void *head, const void *range[3], size_t len[3])
{
    const loom__exec *x = ctx;
    const token *k = buf;
    int64_t at = 0;
    memcpy(head, k, sizeof *k);
    const loom__value *v = &k->v;
    if (v->rowptr) {
        int64_t rows = v->ndim >= 1 ? v->shape[0] : 0;
        range[0] = v->rowptr, len[0] = (size_t)(rows + 1) * sizeof(int32_t);
        range[1] = v->col, len[1] = (size_t)v->nnz * sizeof(int32_t);
        range[2] = v->data, len[2] = (size_t)v->nnz * loom_dtype_size(v->dtype);
    } else {
        const size_t whole = (size_t)loom__numel(v) * loom_dtype_size(v->dtype);
        const int64_t *w = x && x->window && rank >= 0 && rank < x->nranks ? x->window[(size_t)k->regst * (size_t)x->nranks + (size_t)rank]
                                                                             : NULL;
        range[0] = v->data, len[0] = whole;
        if (w && w[1] >= 0 && (size_t)w[0] + (size_t)w[1] <= whole) {
            at = w[0];
            range[0] = (const char *)v->data + at, len[0] = (size_t)w[1];
        }
    }
    memcpy((char *)head + sizeof *k, &at, sizeof at);
    return sizeof *k + sizeof at;
}

/* A mirror's ranges: its own pointers (a dense window at the sender's offset), each with the rest
 * of its buffer as room. */
static void room(void *ctx, void *buf, const void *head, size_t hlen, void *range[3], size_t cap[3])
{
    (void)ctx;
    token *k = buf;
    int64_t at = 0;
    if (hlen >= sizeof *k + sizeof at)
        memcpy(&at, (const char *)head + sizeof *k, sizeof at);
    char *data = k->v.data && at >= 0 && (size_t)at <= k->bytes ? (char *)k->v.data + at : NULL;
    void *where[3] = {k->v.rowptr ? (void *)k->v.rowptr : data, k->v.rowptr ? (void *)k->v.col : NULL,
                      k->v.rowptr ? k->v.data : NULL};
    for (int i = 0; i < 3; i++) {
        range[i] = where[i];
        cap[i] = where[i] && (char *)where[i] >= k->base && (char *)where[i] <= k->base + k->bytes
                     ? (size_t)(k->base + k->bytes - (char *)where[i])
                     : 0;
    }
}

/* The sender's sizes and the piece's dims onto the mirror, which keeps its own pointers. */
static void unpack(void *ctx, void *buf, const void *head, size_t len)
{
    (void)ctx, (void)len;
    token *k = buf, in;
    memcpy(&in, head, sizeof in);
    k->v.dtype = in.v.dtype;
    k->v.ndim = in.v.ndim;
    memcpy(k->v.shape, in.v.shape, sizeof k->v.shape);
    k->v.nnz = in.v.nnz;
    k->has_dims = in.has_dims;
    memcpy(k->dims, in.dims, sizeof k->dims);
    k->split_parts = in.split_parts;
    memcpy(k->pfirst, in.pfirst, sizeof k->pfirst);
    memcpy(k->psize, in.psize, sizeof k->psize);
}

const loom__rt_wire loom__exec_wire = {.pack = pack, .room = room, .unpack = unpack};

/* FNV-1a over the plan's JSON: the whole plan, op table, SBPs, tasks and sizes (but the graph's
 * tag, which counts the graphs a process made). */
loom_status loom__exec_same_plan(loom__exec *x)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return loom__exec_fail(x, LOOM_ERR_NOMEM, "out of memory");
    int64_t tag = x->pl->g->dyn_tag; /* numbers the graphs of this process: not part of the plan */
    x->pl->g->dyn_tag = 0;
    loom_status st = loom__plan_write_json(x->pl, f);
    x->pl->g->dyn_tag = tag;
    if (fclose(f) != 0 || st != LOOM_OK) {
        free(text);
        return loom__exec_fail(x, LOOM_ERR_NOMEM, "out of memory");
    }
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)text[i]) * UINT64_C(1099511628211);
    free(text);
    char msg[400];
    st = loom__net_same_plan(h, msg, sizeof msg);
    return st == LOOM_OK ? LOOM_OK : loom__exec_fail(x, st, "%s", msg);
}
