/* Reverse-mode differentiation over the logical graph. Each op's grad rule builds its sources'
 * gradients from ordinary ops; a tensor used several times receives the sum of its gradients.
 * Visiting ids downwards from the loss is a reverse topological order, since a tensor is always
 * made after its sources, and the gradient nodes made on the way get ids above the loss, so
 * they are never visited themselves. */
#include <stdlib.h>

#include "graphs/session/program.h"

loom_status loom__autodiff(loom_graph *g, loom_tensor *loss, loom_tensor **grads)
{
    loom_tensor *src[1] = {loss};
    grads[loss->id] = loom__node(g, "loom_compile (loss gradient)", LOOM_OP_FILL, 1, src, &(loom__attrs){.f = {1.0}});
    for (int id = loss->id; id >= 0 && g->status == LOOM_OK; id--) {
        loom_tensor *t = g->t[id];
        loom_tensor *gout = grads[id];
        if (!gout || !(t->flags & LOOM__T_NEEDS_GRAD))
            continue;
        const loom_op_def *def = loom__op_def(t->op);
        if (def->flags & LOOM__OPF_LEAF)
            continue;
        loom_tensor *gsrc[LOOM__MAX_SRC] = {0};
        if (!def->grad) {
            loom__fail(g, LOOM_ERR_UNSUPPORTED, "loom_compile: op %s ('%s') has no gradient rule", def->name,
                       loom_tensor_name(t));
            break;
        }
        def->grad(g, t, gout, gsrc);
        for (int i = 0; i < t->n_src && g->status == LOOM_OK; i++) {
            loom_tensor *s = t->src[i];
            if (!(def->diff_src >> i & 1) || !(s->flags & LOOM__T_NEEDS_GRAD))
                continue;
            char b1[96], b2[96];
            if (!gsrc[i] || (gsrc[i]->flags & LOOM__T_POISON)) {
                loom__fail(g, LOOM_ERR_GRAPH, "loom_compile: the gradient rule of %s gave no gradient for source %d",
                           def->name, i + 1);
            } else if (gsrc[i]->dtype != s->dtype || !loom__shape_eq(&gsrc[i]->shape, &s->shape)) {
                loom__fail(g, LOOM_ERR_GRAPH,
                           "loom_compile: the gradient rule of %s gave %s %s for source %d, which is %s %s (internal "
                           "error)",
                           def->name, loom_dtype_name(gsrc[i]->dtype), loom__shape_str(g, &gsrc[i]->shape, b1, sizeof b1),
                           i + 1, loom_dtype_name(s->dtype), loom__shape_str(g, &s->shape, b2, sizeof b2));
            } else {
                grads[s->id] = grads[s->id] ? loom_add(g, grads[s->id], gsrc[i]) : gsrc[i];
            }
        }
    }
    return g->status;
}
