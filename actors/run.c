/* Running a plan's actors (see exec.h): the parameters between the program and the devices, fed
 * data cut into its parts before a run, and the run itself. */
#include "actors/exec_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* A part on the host with room for the part of t under the tensor's SBP on device d. */
static int host_part(const loom__exec *x, const loom_tensor *t, int d, loom__value *v)
{
    *v = loom__exec_param_part(x, t, d);
    v->data = malloc((size_t)loom__numel(v) * loom_dtype_size(v->dtype) + 1);
    return v->data ? 0 : -1;
}

/* Copies n bytes between the host and a device part. */
static loom_status part_copy(loom__exec *x, void *dst, const void *src, size_t n) { return x->dev->copy(x, dst, src, n); }

loom_status loom__exec_pull(loom__exec *x, int id)
{
    loom__exec_env *e = x->env;
    const loom_tensor *t = x->pl->g->t[id];
    int n = x->pl->place_n[t->place];
    loom__value host[LOOM__MAX_DEVICES];
    const loom__value *pp[LOOM__MAX_DEVICES] = {0};
    loom_status s = LOOM_OK;
    int made = 0;
    for (int j = 0; j < n && s == LOOM_OK; j++, made++) {
        int d = x->pl->place_dev[t->place][j];
        if (host_part(x, t, d, &host[j])) {
            s = loom__exec_fail(x, LOOM_ERR_NOMEM, "loom_program_fetch: out of memory");
            break;
        }
        loom__value dev = loom__exec_param_part(x, t, d);
        size_t bytes = (size_t)loom__numel(&dev) * loom_dtype_size(dev.dtype);
        if (loom__exec_dev_here(x, d))
            s = part_copy(x, host[j].data, dev.data, bytes);
        if (s == LOOM_OK && x->nranks > 1) /* every rank pulls alike: the part's rank sends it to all */
            s = loom__net_bcast(host[j].data, bytes, x->pl->dev_rank[d], e->err, e->err_size);
        pp[j] = &host[j];
    }
    const loom__lay l = loom__plan_lay(x->pl, id, n);
    if (s == LOOM_OK && loom__lay_join(pp, &l, &e->val[id]))
        s = loom__exec_fail(x, LOOM_ERR_NOMEM, "loom_program_fetch: out of memory");
    for (int j = 0; j < made; j++)
        free(host[j].data);
    if (s == LOOM_OK && e->holder[id] == x)
        e->holder[id] = NULL;
    return s;
}

/* Puts the newest value of every parameter and optimizer state onto this plan's devices. */
static loom_status push_params(loom__exec *x)
{
    loom__exec_env *e = x->env;
    if (loom__exec_in_program(x))
        return LOOM_OK;
    for (int id = 0; id < x->pl->g->n; id++) {
        const loom_tensor *t = x->pl->g->t[id];
        int n = x->pl->place_n[t->place];
        if (x->pl->param_off[(size_t)id * x->n + x->pl->place_dev[t->place][0]] == (size_t)-1 || e->holder[id] == x)
            continue;
        loom_status s = e->holder[id] ? loom__exec_pull(e->holder[id], id) : LOOM_OK;
        for (int j = 0; j < n && s == LOOM_OK; j++) {
            int d = x->pl->place_dev[t->place][j];
            if (!loom__exec_dev_here(x, d))
                continue; /* its rank puts it there */
            loom__value h;
            if (host_part(x, t, d, &h))
                return loom__exec_fail(x, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
            const loom__lay l = loom__plan_lay(x->pl, id, n);
            loom__lay_cut(&e->val[id], &l, j, &h);
            loom__value dev = loom__exec_param_part(x, t, d);
            s = part_copy(x, dev.data, h.data, (size_t)loom__numel(&h) * loom_dtype_size(h.dtype));
            free(h.data);
        }
        if (s != LOOM_OK)
            return s;
        e->holder[id] = x;
    }
    return LOOM_OK;
}

/* Cuts each fed input into its parts (several CPU devices; GPUs do it in run_begin), again only
 * when it was fed since. */
static loom_status stage_static(loom__exec *x)
{
    loom__exec_env *e = x->env;
    if (e->source || loom__exec_in_program(x) || x->dev->stages_inputs || x->pl->micro > 1) /* micro-batches: cut at each piece */
        return LOOM_OK;
    for (int k = 0; k < x->ninputs; k++) {
        int id = x->input_id[k];
        if (x->stat_version[k] == e->feed_version[id])
            continue;
        for (int j = 0; j < x->input_n[k]; j++) {
            loom__value *v = &x->stat[x->input_off[k] + j];
            size_t need = x->pl->g->t[id]->layout == LOOM__CSR ? loom__csr_bytes(e->val[id].shape[0], e->val[id].nnz, e->val[id].dtype)
                                                               : (size_t)loom__numel(&e->val[id]) * loom_dtype_size(e->val[id].dtype);
            token tk = {0};
            tk.base = realloc(v->data == NULL ? NULL : (v->rowptr ? (void *)v->rowptr : v->data), need + 64);
            if (!tk.base)
                return loom__exec_fail(x, LOOM_ERR_NOMEM, "loom_program_run: no memory for the parts of input '%s'",
                                       x->pl->g->t[id]->name);
            loom__exec_cut_input(x, &e->val[id], k, j, &tk);
            *v = tk.v;
        }
        x->stat_version[k] = e->feed_version[id];
    }
    return LOOM_OK;
}

loom_status loom__exec_run(loom__exec *x, int64_t pieces)
{
    loom__exec_env *e = x->env;
    /* what this plan keeps is recomputed; values kept by other modes' runs stay, as with the
     * reference executor */
    for (int id = 0; id < x->pl->g->n; id++)
        if (x->pl->kept[id])
            e->ready[id] = 0;
    if (!e->source)
        for (int k = 0; k < x->ninputs; k++)
            if (!e->ready[x->input_id[k]])
                return loom__exec_fail(x, LOOM_ERR_INVALID, "loom_program_run: input '%s' was not fed",
                                       x->pl->g->t[x->input_id[k]]->name);
    for (int k = 0; !e->source && k < x->ninputs; k++) { /* registers and scratch are sized for it */
        const loom_tensor *t = x->pl->g->t[x->input_id[k]];
        const loom__value *v = &e->val[t->id];
        if (t->layout == LOOM__CSR && (v->shape[0] != x->pl->csr_rows[t->id] || v->nnz != x->pl->csr_nnz[t->id]))
            return loom__exec_fail(x, LOOM_ERR_SHAPE,
                                   "loom_program_run: sparse input '%s' is fed %" PRId64 " rows and %" PRId64
                                   " entries; its plan was made for %" PRId64 " and %" PRId64,
                                   t->name, v->shape[0], v->nnz, x->pl->csr_rows[t->id], x->pl->csr_nnz[t->id]);
        /* data fed before loom_program_set_bounds lowered a bound: the registers no longer hold it */
        char msg[256];
        if (t->layout != LOOM__CSR && loom__exec_input_dims(x, t, v->ndim, v->shape, msg, sizeof msg) != LOOM_OK)
            return loom__exec_fail(x, LOOM_ERR_SHAPE, "loom_program_run: %s; the bounds changed since it was fed: feed it again", msg);
        for (int i = 0; x->n > 1 && x->pl->micro == 1 && i < t->shape.ndim; i++) { /* a micro-batch is checked as it is cut */
            int d = loom__dyn_index(x->pl->g, t->shape.d[i]);
            if (d >= 0 && loom__exec_even_msg(x, d, v->shape[i], msg, sizeof msg))
                return loom__exec_fail(x, LOOM_ERR_SHAPE, "loom_program_run: input '%s': %s", t->name, msg);
        }
    }
    loom_status s = push_params(x);
    if (s == LOOM_OK)
        s = stage_static(x);
    if (s == LOOM_OK && x->dev->run_begin)
        s = x->dev->run_begin(x);
    if (s != LOOM_OK)
        return s;
    /* a training step's piece is its step number (its random masks, the source's step): after a
     * failed run the steps it did not apply run again under the same numbers */
    const int64_t m = x->pl->micro; /* pieces per step */
    if (pieces > INT64_MAX / m || e->step > INT64_MAX / m)
        return loom__exec_fail(x, LOOM_ERR_INVALID, "loom_program_run: %" PRId64 " steps from step %" PRId64
                               " of %" PRId64 " micro-batches each are over an int64 count of pieces", pieces, e->step, m);
    if (x->pl->mode == LOOM_RUN_STEP)
        loom__rt_set_next_piece(x->rt, e->step * m);
    int64_t first = loom__rt_next_piece(x->rt);
    pieces *= m;
    x->last_piece = e->source || pieces == 0 || pieces > INT64_MAX - first ? -1 : first + pieces - 1;
    s = loom__rt_run(x->rt, pieces);
    if (s != LOOM_OK)
        loom__exec_fail(x, s, "loom_program_run: %s", loom__rt_error(x->rt));
    const char *te = loom__rt_trace_error(x->rt);
    snprintf(e->trace_err, e->trace_err_size, "%s", te ? te : "");
    if (x->dev->run_end)
        s = x->dev->run_end(x, s);
    return s;
}
