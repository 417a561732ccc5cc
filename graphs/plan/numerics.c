/* The numerics check (loom_train_opts.check_numerics, $LOOM_CHECK_NUMERICS=1): right after each
 * op's kernel its output is scanned for NaN and infinities, and the first op that makes one stops
 * the run, named with its tensor and the pass it belongs to. On CPU devices the executors call
 * loom__check_numerics; on GPUs a kernel (ops/cuda/numerics.cu) records the element in the
 * device's error record, which is formatted here as well. Off, nothing is scanned. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graphs/plan/numerics.h"

int loom__numerics_env(void)
{
    const char *v = getenv("LOOM_CHECK_NUMERICS");
    return v && v[0] && strcmp(v, "0") != 0;
}

int64_t loom__first_nonfinite(const loom__value *v, double *bad)
{
    if (!v || !v->data || (v->dtype != LOOM_F32 && v->dtype != LOOM_F64))
        return -1; /* integers and masks are always finite */
    int64_t n = loom__numel(v);
    for (int64_t i = 0; i < n; i++) {
        double x = v->dtype == LOOM_F32 ? (double)((const float *)v->data)[i] : ((const double *)v->data)[i];
        if (!isfinite(x)) {
            *bad = x;
            return i;
        }
    }
    return -1;
}

/* Where t belongs: the model as built, the backward pass (naming the tensor whose gradient it is,
 * when it is one), or the update of a parameter. */
static void pass_of(const loom__passes *ps, const loom_tensor *t, char *buf, size_t len)
{
    if (t->id < ps->fwd_end) {
        snprintf(buf, len, "forward pass");
        return;
    }
    if (t->id >= ps->bwd_end && t->n_src > 0) {
        snprintf(buf, len, "optimizer update of '%s'", loom_tensor_name(t->src[0]));
        return;
    }
    if (ps->grad_of && ps->grad_of[t->id] >= 0) {
        snprintf(buf, len, "backward pass, the gradient of '%s'", loom_tensor_name(ps->g->t[ps->grad_of[t->id]]));
        return;
    }
    snprintf(buf, len, "backward pass");
}

loom_status loom__numerics_fail(const loom__passes *ps, const loom_tensor *t, int64_t at, int64_t n, const char *what,
                                char *msg, size_t len)
{
    char pass[160];
    pass_of(ps, t, pass, sizeof pass);
    snprintf(msg, len,
             "%s '%s' (tensor %d, %s) made %s at element %" PRId64 " of %" PRId64
             ": the first op whose output is not finite (LOOM_CHECK_NUMERICS)",
             loom__op_def(t->op)->name, loom_tensor_name(t), t->id, pass, what, at, n);
    return LOOM_ERR_RUNTIME;
}

loom_status loom__check_numerics(const loom__passes *ps, const loom_tensor *t, const loom__value *v, char *msg, size_t len)
{
    double bad = 0;
    int64_t at = loom__first_nonfinite(v, &bad);
    if (at < 0)
        return LOOM_OK;
    return loom__numerics_fail(ps, t, at, loom__numel(v), isnan(bad) ? "nan" : bad > 0 ? "inf" : "-inf", msg, len);
}
