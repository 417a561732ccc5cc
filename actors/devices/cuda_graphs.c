/* A GPU's chain fused into one actor (see exec_internal.h, loom__fused): each piece's kernels are
 * captured as a CUDA graph once their inputs' pointers and sizes, their outputs' buffers and the
 * piece's dims have been seen twice, then replayed for every piece with the same key; a few graphs
 * are kept per chain, the least recently used replaced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/devices/cuda_internal.h"

enum { GRAPHS = 16 };

/* A step captured as a graph: what it was captured for (the pointers and sizes of the chain's
 * inputs, its outputs' buffers, the piece's dims), how often that key ran, the graph. */
typedef struct graph_entry {
    int64_t *key;
    int seen;
    void *exec;
    uint64_t used;
} graph_entry;

typedef struct graph_cache {
    graph_entry e[GRAPHS];
    int n, keylen, disabled;
    int random; /* a kernel of the chain draws from the step (which replays read from the device) */
    uint64_t clock;
    int64_t *key; /* scratch for the current act's key */
} graph_cache;


int loom__exec_cuda_fusable(const loom__exec *x, int d)
{
    const char *env = getenv("LOOM_CUDA_GRAPHS");
    if (env && !strcmp(env, "0"))
        return 0;
    for (int i = 0; i < x->pl->ntasks; i++)
        if (x->pl->task[i].device == d && (x->pl->task[i].kind == LOOM__TASK_BOXING || x->pl->task[i].kind == LOOM__TASK_MOVE))
            return 0;
    return 1;
}

/* The token task k of the chain reads for its source register r, or writes for r. */
static token *chain_token(const loom__exec *x, loom__act *a, int r)
{
    if (x->outidx_of[r] >= 0)
        return a->out[x->outidx_of[r]];
    if (x->slot_of[r] >= 0 && x->pl->task[x->pl->regst[r].producer].chain_pos < 0)
        return a->in[x->slot_of[r]];
    return &x->tok[r][0]; /* inside the chain: one buffer, in the shared block */
}

/* What a captured step depends on: the inputs' pointers and sizes, the outputs' pointers, the
 * dims. Equal keys replay the same graph. */
static int make_key(const loom__exec *x, const loom__fused *f, loom__act *a, int64_t *key)
{
    int n = 0;
    for (int s = 0; s < f->nin; s++) {
        const token *t = a->in[s];
        key[n++] = (int64_t)(intptr_t)t->v.data;
        key[n++] = (int64_t)(intptr_t)t->v.rowptr;
        key[n++] = t->v.nnz;
        for (int i = 0; i < LOOM_MAX_DIMS; i++)
            key[n++] = t->v.shape[i];
    }
    for (int j = 0; j < f->nout; j++)
        key[n++] = (int64_t)(intptr_t)((const token *)a->out[j])->base;
    const token *dims = loom__exec_dims_of(a, f->nin);
    for (int i = 0; i < LOOM__MAX_DYN; i++) { /* a graph batch's part too: its first rows are kernels' arguments */
        key[n++] = dims ? dims->dims[i] : -1;
        key[n++] = dims && dims->split_parts ? dims->pfirst[i] : -1;
        key[n++] = dims && dims->split_parts ? dims->psize[i] : -1;
    }
    (void)x;
    return n;
}

static graph_cache *cache_of(const loom__exec *x, loom__fused *f)
{
    if (!f->graphs) {
        graph_cache *g = calloc(1, sizeof *g);
        if (!g)
            return NULL;
        g->keylen = f->nin * (3 + LOOM_MAX_DIMS) + f->nout + 3 * LOOM__MAX_DYN;
        for (int c = 0; c < f->ntasks; c++)
            g->random |= (loom__op_def(loom__task_tensor(x->pl, &x->pl->task[f->tasks[c]])->op)->flags & LOOM__OPF_RANDOM) != 0;
        g->key = malloc((size_t)g->keylen * sizeof *g->key);
        if (!g->key) {
            free(g);
            return NULL;
        }
        f->graphs = g;
    }
    return f->graphs;
}

/* The entry of key, or a new one (the least recently used replaced when all are taken). */
static graph_entry *cache_find(graph_cache *g, const int64_t *key)
{
    size_t bytes = (size_t)g->keylen * sizeof *key;
    graph_entry *e = NULL;
    for (int i = 0; i < g->n; i++)
        if (!memcmp(g->e[i].key, key, bytes))
            e = &g->e[i];
    if (!e) {
        if (g->n < GRAPHS) {
            e = &g->e[g->n++];
            e->key = malloc(bytes);
            if (!e->key)
                return g->n--, NULL;
        } else {
            e = &g->e[0];
            for (int i = 1; i < g->n; i++)
                if (g->e[i].used < e->used)
                    e = &g->e[i];
            loom__cuda_graph_free(e->exec);
        }
        memcpy(e->key, key, bytes);
        e->seen = 0;
        e->exec = NULL;
    }
    e->used = ++g->clock;
    return e;
}

/* Runs the chain's tasks in order: each output's shape for the piece, and (launch set) its kernel. */
static loom_status run_chain(loom__exec *x, const loom__fused *f, loom__act *a, int launch, const int64_t *step_dev)
{
    for (int c = 0; c < f->ntasks; c++) {
        int ti = f->tasks[c];
        const loom__task *k = &x->pl->task[ti];
        const loom_tensor *t = loom__task_tensor(x->pl, k);
        loom__value *src[LOOM__MAX_SRC];
        const token *dims = NULL;
        for (int i = 0; i < t->n_src; i++) {
            token *in = chain_token(x, a, k->in[i]);
            src[i] = &in->v;
            if (!dims && in->has_dims)
                dims = in;
        }
        token *out = chain_token(x, a, k->out[0]);
        loom_status s = loom__exec_shape_out(x, t, &x->pl->regst[k->out[0]], dims, out, a);
        if (s == LOOM_OK && launch) {
            loom__cuda_kctx cc;
            loom__kctx from = loom__exec_kctx(x, a);
            loom__exec_part_kctx(x, t, &x->pl->regst[k->out[0]], dims, &from); /* as an unfused chain's kernels see it */
            loom__kctx kc = loom__exec_cuda_kernel_ctx(x, &from, ti, &cc);
            cc.step_dev = step_dev;
            s = loom__cuda_op_get(t->op)->run(t, &out->v, src, &kc);
            if (s == LOOM_OK && x->env->check_numerics) /* captured with the chain */
                s = loom__cuda_check_finite(&out->v, &kc);
        }
        if (s != LOOM_OK) { /* the act is the whole chain's: name the op */
            char m[256];
            snprintf(m, sizeof m, "%s", a->msg);
            snprintf(a->msg, a->msg_size, "%s '%s': %s", loom__op_def(t->op)->name, loom_tensor_name(t), m);
            return s;
        }
    }
    return LOOM_OK;
}

loom_status loom__exec_cuda_step_act(void *vctx, loom__act *a)
{
    actor_ctx *c = vctx;
    loom__exec *x = c->x;
    int d = -1 - c->task;
    loom__fused *f = x->fused[d];
    dev_state *ds = &x->cuda->d[d];
    void *stream = ds->kc.stream;
    loom_status s = loom__exec_cuda_on_device(ds->dev.index, a->msg, a->msg_size);
    if (s != LOOM_OK)
        return s;
    graph_cache *g = cache_of(x, f);
    if (!g)
        return LOOM_ERR_NOMEM;
    graph_entry *e = NULL;
    if (!g->disabled) {
        make_key(x, f, a, g->key);
        e = cache_find(g, g->key);
    }
    int64_t step = x->pl->mode == LOOM_RUN_STEP ? a->piece : x->env->step;
    if (e && (e->exec || e->seen >= 1)) {
        if (!e->exec) {
            char m[256];
            s = loom__cuda_capture_begin(stream, m, sizeof m);
            if (s == LOOM_OK)
                s = run_chain(x, f, a, 1, ds->step_dev);
            if (s == LOOM_OK)
                s = loom__cuda_capture_end(stream, &e->exec, m, sizeof m);
            if (s != LOOM_OK) {
                loom__cuda_capture_abort(stream);
                e->exec = NULL;
                g->disabled = 1;
                a->msg[0] = 0;
            }
        } else {
            s = run_chain(x, f, a, 0, NULL); /* the outputs' shapes of this piece */
            if (s != LOOM_OK)
                return s;
        }
        if (e->exec) {
            s = g->random ? loom__cuda_set_i64(ds->step_dev, step, stream, a->msg, a->msg_size) : LOOM_OK;
            if (s == LOOM_OK)
                s = loom__cuda_graph_launch(e->exec, stream, a->msg, a->msg_size);
            if (s != LOOM_OK)
                return s;
            e->seen++;
            return loom__exec_cuda_mark_events(a, f->nin, f->nout, stream);
        }
    }
    if (e)
        e->seen++;
    s = run_chain(x, f, a, 1, NULL);
    return s != LOOM_OK ? s : loom__exec_cuda_mark_events(a, f->nin, f->nout, stream);
}

void loom__exec_cuda_graphs_free(loom__fused *f)
{
    graph_cache *g = f->graphs;
    if (!g)
        return;
    for (int i = 0; i < g->n; i++) {
        loom__cuda_graph_free(g->e[i].exec);
        free(g->e[i].key);
    }
    free(g->key);
    free(g);
    f->graphs = NULL;
}
