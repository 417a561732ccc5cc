/* Helpers for the ops' SBP signature lists (see sbp_sigs.h). */
#include "ops/sbp_sigs.h"

int loom__sbp_can_split(const loom_shape *s, int axis)
{
    return axis >= 0 && axis < s->ndim && (axis == 0 || !loom_dim_is_dynamic(s->d[axis]));
}

int loom__sbp_add(loom__sbp_sig *sigs, int n, int max, int nsrc, const loom_sbp *in, loom_sbp out)
{
    if (n >= max)
        return n;
    loom__sbp_sig s = {.out = out};
    for (int i = 0; i < LOOM__MAX_SRC; i++)
        s.in[i] = i < nsrc ? in[i] : loom_broadcast(); /* unused slots: B, like the all-B signature */
    sigs[n] = s;
    return n + 1;
}

int loom__sbp_can_partial(const loom_tensor *t)
{
    return t->layout == LOOM__DENSE && (t->dtype == LOOM_F32 || t->dtype == LOOM_F64);
}

int loom__sbp_add_partial(const loom_tensor *t, uint32_t pmask, loom_sbp out, loom__sbp_sig *sigs, int n, int max)
{
    loom_sbp in[LOOM__MAX_SRC];
    for (int i = 0; i < t->n_src; i++)
        in[i] = pmask >> i & 1 ? loom_partial_sum() : loom_broadcast();
    return loom__sbp_add(sigs, n, max, t->n_src, in, out);
}

int loom__sbp_add_broadcast_splits(const loom_tensor *t, uint32_t axes, loom__sbp_sig *sigs, int n, int max)
{
    const loom_shape *o = &t->shape;
    for (int i = 0; i < o->ndim; i++) {
        if (!(axes >> i & 1) || !loom__sbp_can_split(o, i))
            continue;
        loom_sbp in[LOOM__MAX_SRC];
        int ok = 1;
        for (int k = 0; k < t->n_src && ok; k++) {
            const loom_shape *s = &t->src[k]->shape;
            int j = i - (o->ndim - s->ndim);
            if (t->src[k]->layout != LOOM__DENSE)
                ok = 0;
            else if (j >= 0 && loom__dim_eq(s->d[j], o->d[i])) {
                ok = loom__sbp_can_split(s, j);
                in[k] = loom_split(j);
            } else /* missing, or a 1 stretched along i: every device needs all of it */
                in[k] = loom_broadcast();
        }
        if (ok)
            n = loom__sbp_add(sigs, n, max, t->n_src, in, loom_split(i));
    }
    return n;
}
