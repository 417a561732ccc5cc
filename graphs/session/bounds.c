/* Bounds of dynamic dims after compiling (loom_program_set_bounds, loom_program_memory_at): a
 * sampler's largest batch sizes the program, and a plan sampler asks what a bound would cost. */
#include <inttypes.h>
#include <stdio.h>

#include "graphs/plan/plan.h"
#include "graphs/session/program.h"

int loom_program_devices(const loom_program *p) { return p ? p->ndevices : 0; }

loom_run_mode loom__program_own_mode(const loom_program *p)
{
    return !p->loss ? LOOM_RUN_FORWARD : p->opt.kind != LOOM_OPT_NONE ? LOOM_RUN_STEP : LOOM_RUN_GRAD;
}

/* Checks the n bounds of b and writes each dim's index into k; LOOM_ERR_INVALID with the message. */
static loom_status check(loom_program *p, const char *api, const loom_bound *b, int n, int *k)
{
    if (n < 0 || (n > 0 && !b) || n > LOOM__MAX_DYN)
        return loom__program_fail(p, LOOM_ERR_INVALID, "%s: %d bounds", api, n);
    for (int i = 0; i < n; i++) {
        k[i] = loom__dyn_index(p->g, b[i].dim);
        if (k[i] < 0)
            return loom__program_fail(p, LOOM_ERR_INVALID, "%s: bound %d is not for a dynamic dim of the program's graph", api, i);
        if (b[i].bound < 0 || b[i].part_bound < 0)
            return loom__program_fail(p, LOOM_ERR_INVALID, "%s: %s: bound %" PRId64 " and part bound %" PRId64 "; expected >= 0", api,
                                      p->g->dyn[k[i]].name, b[i].bound, b[i].part_bound);
    }
    return LOOM_OK;
}

/* Sets the bounds (keeping the old ones in old, which may be NULL) and returns 1 when any changed. */
static int apply(loom_program *p, const loom_bound *b, int n, const int *k, loom__dyn_dim *old)
{
    int changed = 0;
    for (int i = 0; i < n; i++) {
        loom__dyn_dim *d = &p->g->dyn[k[i]];
        if (old)
            old[i] = *d;
        changed |= d->bound != b[i].bound || d->part_bound != b[i].part_bound;
        d->bound = b[i].bound;
        d->part_bound = b[i].part_bound;
    }
    return changed;
}

static void restore(loom_program *p, int n, const int *k, const loom__dyn_dim *old)
{
    for (int i = n - 1; i >= 0; i--)
        p->g->dyn[k[i]] = old[i];
}

loom_status loom_program_set_bounds(loom_program *p, const loom_bound *b, int n)
{
    static const char api[] = "loom_program_set_bounds";
    int k[LOOM__MAX_DYN];
    loom__dyn_dim old[LOOM__MAX_DYN];
    if (!p)
        return LOOM_ERR_INVALID;
    loom_status s = check(p, api, b, n, k);
    if (s != LOOM_OK || !apply(p, b, n, k, old))
        return s;
    loom__program_drop_plans(p);
    if (p->executor != LOOM_EXEC_ACTORS)
        return LOOM_OK;
    s = loom__program_plan(p, loom__program_own_mode(p), api);
    if (s != LOOM_OK) { /* keep the program as it was: its bounds, and a plan of them */
        char msg[sizeof p->err];
        snprintf(msg, sizeof msg, "%s", p->err);
        restore(p, n, k, old);
        loom__program_drop_plans(p);
        snprintf(p->err, sizeof p->err, "%s", msg);
    }
    return s;
}

loom_status loom_program_memory_at(loom_program *p, loom_run_mode mode, int device, const loom_bound *b, int n,
                                   loom_memory *out)
{
    static const char api[] = "loom_program_memory_at";
    int k[LOOM__MAX_DYN];
    loom__dyn_dim old[LOOM__MAX_DYN];
    if (!p || !out || (unsigned)mode >= LOOM_RUN_MODE_COUNT)
        return LOOM_ERR_INVALID;
    if (mode >= LOOM_RUN_GRAD && !p->loss)
        return loom__program_fail(p, LOOM_ERR_INVALID, "%s: the program was compiled without a loss", api);
    loom_status s = check(p, api, b, n, k);
    if (s != LOOM_OK)
        return s;
    apply(p, b, n, k, old);
    loom__plan_src src = loom__program_plan_src(p);
    loom__plan *pl = loom__plan_build(&src, mode, p->keep, p->regst_num, &s);
    restore(p, n, k, old);
    if (!pl)
        return s;
    if (device != LOOM_ALL_DEVICES && (device < 0 || device >= pl->ndev)) {
        int n = pl->ndev;
        loom__plan_free(pl);
        return loom__program_fail(p, LOOM_ERR_INVALID, "%s: device %d of a plan of %d", api, device, n);
    }
    loom__plan_memory_of(pl, device, out);
    s = loom__program_plan_fits(p, pl, api);
    loom__plan_free(pl);
    return s;
}
