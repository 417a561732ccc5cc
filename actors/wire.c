/* Register tokens between ranks: what the communication thread sends of a token and how a mirror
 * of it takes what arrives (loom__rt_wire), and the check that every rank runs the same plan. */
#define _GNU_SOURCE /* open_memstream */
#include "actors/exec_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(token) <= LOOM__WIRE_HEAD, "a token's description must fit the wire's header");

/* The value's bytes, where its pointers say: dense, one range; CSR, row pointers, columns, values. */
static size_t pack(void *ctx, void *buf, void *head, const void *range[3], size_t len[3])
{
    (void)ctx;
    const token *k = buf;
    memcpy(head, k, sizeof *k);
    const loom__value *v = &k->v;
    if (v->rowptr) {
        int64_t rows = v->ndim >= 1 ? v->shape[0] : 0;
        range[0] = v->rowptr, len[0] = (size_t)(rows + 1) * sizeof(int32_t);
        range[1] = v->col, len[1] = (size_t)v->nnz * sizeof(int32_t);
        range[2] = v->data, len[2] = (size_t)v->nnz * loom_dtype_size(v->dtype);
    } else {
        range[0] = v->data, len[0] = (size_t)loom__numel(v) * loom_dtype_size(v->dtype);
    }
    return sizeof *k;
}

/* A mirror's ranges: its own pointers, each with the rest of its buffer as room. */
static void room(void *ctx, void *buf, void *range[3], size_t cap[3])
{
    (void)ctx;
    token *k = buf;
    void *at[3] = {k->v.rowptr ? (void *)k->v.rowptr : k->v.data, k->v.rowptr ? (void *)k->v.col : NULL,
                   k->v.rowptr ? k->v.data : NULL};
    for (int i = 0; i < 3; i++) {
        range[i] = at[i];
        cap[i] = at[i] && (char *)at[i] >= k->base && (char *)at[i] <= k->base + k->bytes ? (size_t)(k->base + k->bytes - (char *)at[i]) : 0;
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
