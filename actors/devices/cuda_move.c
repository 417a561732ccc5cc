/* Moves between GPU placements of one process (see cuda_internal.h): the target device copies
 * what it needs of each source part over unified addresses, so the source devices run no task
 * for it. A part whose overlap is one range on both sides goes in one copy; any other overlap
 * comes whole into the device's scratch first and is cut out there. */
#include <stdio.h>

#include "actors/devices/cuda_internal.h"
#include "runtime/comm/route.h"

/* A register's layout as one level (a mesh with one device on a level: the other level's). */
static loom_sbp one_level(const loom__regst *rg) { return rg->mesh[0] > 0 && rg->mesh[1] == 1 ? rg->sbp : rg->mesh[0] == 1 ? rg->sbp1 : rg->sbp; }

loom_status loom__exec_cuda_move_act(void *vctx, loom__act *a)
{
    actor_ctx *c = vctx;
    loom__exec *x = c->x;
    const loom__task *k = &x->pl->task[c->task];
    const loom_tensor *t = loom__task_tensor(x->pl, k);
    const loom__regst *from = &x->pl->regst[k->in[0]], *to = &x->pl->regst[k->out[0]];
    dev_state *ds = &x->cuda->d[k->device];
    token *out = a->out[0];
    const token *dims = loom__exec_dims_of(a, k->n_in);
    if (dims && dims->split_parts) {
        snprintf(a->msg, a->msg_size, "'%s' belongs to a graph batch fed by parts, which cannot move to another placement",
                 loom_tensor_name(t));
        return LOOM_ERR_UNSUPPORTED;
    }
    loom_status s = loom__exec_cuda_on_device(ds->dev.index, a->msg, a->msg_size);
    if (s == LOOM_OK)
        s = loom__exec_shape_out(x, t, to, dims, out, a);
    if (s != LOOM_OK)
        return s;
    int64_t shape[LOOM_MAX_DIMS] = {0}, ostart[LOOM_MAX_DIMS], osize[LOOM_MAX_DIMS];
    loom__exec_resolve(x->pl->g, t, dims, shape);
    const int nd = t->shape.ndim;
    const size_t es = loom_dtype_size(t->dtype);
    const loom_sbp fs = one_level(from), ts = one_level(to);
    void *stream = ds->dev.stream[LOOM__CUDA_COMPUTE];
    const int holds = ts.kind != LOOM_SBP_PARTIAL_SUM || to->part == 0;
    loom__route_region(shape, nd, ts, to->nparts, to->part, holds, ostart, osize);
    if (!holds)
        s = loom__cuda_zero_async(out->v.data, (size_t)loom__numel(&out->v) * es, stream, a->msg, a->msg_size);
    /* every source part under S; under B the first holds it all */
    const int nread = fs.kind == LOOM_SBP_SPLIT ? k->n_in : 1;
    for (int j = 0; holds && j < nread && s == LOOM_OK; j++) {
        const token *in = a->in[j];
        int64_t jstart[LOOM_MAX_DIMS], jsize[LOOM_MAX_DIMS], ext[LOOM_MAX_DIMS], at_src[LOOM_MAX_DIMS], at_dst[LOOM_MAX_DIMS], so, dof;
        loom__route_region(shape, nd, fs, k->n_in, j, 1, jstart, jsize);
        if (!loom__part_overlap(jstart, jsize, ostart, osize, nd, ext, at_src, at_dst))
            continue;
        if (in->ev_w && (s = loom__cuda_stream_wait(stream, in->ev_w, a->msg, a->msg_size)) != LOOM_OK)
            break;
        const size_t count = (size_t)loom__route_count(ext, nd);
        if (loom__route_contiguous(in->v.shape, at_src, ext, nd, &so) && loom__route_contiguous(out->v.shape, at_dst, ext, nd, &dof)) {
            s = loom__cuda_copy_async((char *)out->v.data + (size_t)dof * es, (const char *)in->v.data + (size_t)so * es, count * es,
                                      stream, a->msg, a->msg_size);
            continue;
        }
        const size_t whole = (size_t)loom__numel(&in->v) * es;
        char *scratch = x->cuda->scratch[k->device];
        if (!scratch || whole > x->cuda->scratch_bytes[k->device]) {
            snprintf(a->msg, a->msg_size, "the move's scratch is too small (internal error)");
            return LOOM_ERR_RUNTIME;
        }
        s = loom__cuda_copy_async(scratch, in->v.data, whole, stream, a->msg, a->msg_size);
        if (s == LOOM_OK)
            s = loom__cuda_box_copy(out->v.data, out->v.shape, at_dst, scratch, in->v.shape, at_src, ext, nd, es, stream, a->msg,
                                    a->msg_size);
    }
    if (s == LOOM_OK)
        s = loom__exec_cuda_mark_events(a, 0, 1, stream); /* a copy back of the moved value waits for it */
    return s != LOOM_OK ? s : loom__exec_cuda_complete_after(x, a, c->task, stream);
}
