/* A program's compiled plan written for its user, and a plan read back into the program that it
 * was made for (the public calls behind `loom plan --tasks` and `--json`). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graphs/session/program.h"

loom_status loom_program_write_plan(loom_program *p, loom_run_mode mode, loom_plan_format format, FILE *f)
{
    static const char api[] = "loom_program_write_plan";
    if (!p)
        return LOOM_ERR_INVALID;
    p->err[0] = 0;
    if (!f || (unsigned)mode >= LOOM_RUN_MODE_COUNT || (format != LOOM_PLAN_TEXT && format != LOOM_PLAN_JSON))
        return loom__program_fail(p, LOOM_ERR_INVALID, "%s: %s", api, !f ? "the stream is NULL" : "invalid mode or format");
    if (mode >= LOOM_RUN_GRAD && !p->loss)
        return loom__program_fail(p, LOOM_ERR_INVALID, "%s: the program was compiled without a loss", api);
    if (format == LOOM_PLAN_JSON && p->plan_only) /* JSON is a plan to run */
        return loom__program_fail(p, LOOM_ERR_UNSUPPORTED, "%s: the plan of one rank (plan_only) is not written as JSON; "
                                  "print it as text (LOOM_PLAN_TEXT)", api);
    loom_status s = loom__program_plan(p, mode, api);
    if (s != LOOM_OK)
        return s;
    const loom__plan *pl = loom__program_plan_of(p, mode);
    if (format == LOOM_PLAN_JSON)
        s = loom__plan_write_json(pl, f);
    else
        loom__plan_print(pl, f);
    if (s != LOOM_OK || ferror(f))
        return loom__program_fail(p, LOOM_ERR_IO, "%s: the stream reports a write error", api);
    return LOOM_OK;
}

/* 1 when two dims are the same, each read in its own graph (a plan read back keeps the tag of the
 * graph it was made from). */
static int same_dim(const loom_graph *ga, loom_dim a, const loom_graph *gb, loom_dim b)
{
    int ka = loom__dyn_index(ga, a), kb = loom__dyn_index(gb, b);
    return ka >= 0 || kb >= 0 ? ka == kb : a == b;
}

static int same_shape(const loom_graph *ga, const loom_shape *a, const loom_graph *gb, const loom_shape *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (!same_dim(ga, a->d[i], gb, b->d[i]))
            return 0;
    return 1;
}

/* What a plan read back must share with the program's own plan of its mode: the ops it runs and
 * how they are placed and split. The first difference goes into why. */
/* 1 when tensor id lies on the same mesh with the same level-1 SBP and signature in both plans (or
 * on a 1-D placement in both). */
static int same_level1(const loom__plan *own, const loom__plan *pl, int id, int nsrc)
{
    int a = own->mesh && own->mesh[id][0] > 0, b = pl->mesh && pl->mesh[id][0] > 0;
    if (!a || !b)
        return a == b;
    int same = !memcmp(own->mesh[id], pl->mesh[id], sizeof own->mesh[id]) && loom_sbp_equal(own->sbp1[id], pl->sbp1[id]) &&
               loom_sbp_equal(own->sig1[id].out, pl->sig1[id].out);
    for (int i = 0; same && i < nsrc; i++)
        same = loom_sbp_equal(own->sig1[id].in[i], pl->sig1[id].in[i]);
    return same;
}

static int same_program(const loom__plan *own, const loom__plan *pl, char *why, size_t len)
{
    const loom_graph *a = own->g, *b = pl->g;
    char s1[96], s2[96];
    if (a->n != b->n || own->passes.fwd_end != pl->passes.fwd_end || own->passes.bwd_end != pl->passes.bwd_end ||
        own->loss != pl->loss)
        return snprintf(why, len, "it has %d tensors (%d of the model), the program %d (%d)", b->n, pl->passes.fwd_end, a->n,
                        own->passes.fwd_end), 0;
    if (a->ndyn != b->ndyn || a->seed != b->seed)
        return snprintf(why, len, "its graph has %d dynamic dims and seed %llu, the program's %d and %llu", b->ndyn,
                        (unsigned long long)b->seed, a->ndyn, (unsigned long long)a->seed), 0;
    for (int k = 0; k < a->ndyn; k++)
        if (strcmp(a->dyn[k].name, b->dyn[k].name) || a->dyn[k].bound != b->dyn[k].bound ||
            a->dyn[k].part_bound != b->dyn[k].part_bound)
            return snprintf(why, len, "dynamic dim %d is %s (bound %lld, part bound %lld), the program's %s (bound %lld, part bound %lld)",
                            k, b->dyn[k].name, (long long)b->dyn[k].bound, (long long)b->dyn[k].part_bound, a->dyn[k].name,
                            (long long)a->dyn[k].bound, (long long)a->dyn[k].part_bound), 0;
    if (own->kind != pl->kind || own->ndev != pl->ndev || own->nplaces != pl->nplaces || own->nlogical != pl->nlogical)
        return snprintf(why, len, "it runs on %d %s devices, the program on %d %s devices", pl->ndev,
                        loom_device_kind_name(pl->kind), own->ndev, loom_device_kind_name(own->kind)), 0;
    if (own->micro != pl->micro || own->schedule != pl->schedule || own->nchains != pl->nchains || own->mb_dim != pl->mb_dim ||
        own->mb_rows != pl->mb_rows || own->mb_static != pl->mb_static || own->nstages != pl->nstages ||
        memcmp(own->stage, pl->stage, (size_t)own->ndev * sizeof *own->stage))
        return snprintf(why, len, "it runs %d micro-batches (%s) over %d stages, the program %d (%s) over %d", pl->micro,
                        pl->schedule == LOOM_SCHEDULE_GPIPE ? "GPipe" : "1F1B", pl->nstages, own->micro,
                        own->schedule == LOOM_SCHEDULE_GPIPE ? "GPipe" : "1F1B", own->nstages), 0;
    for (int d = 0; d < own->ndev; d++)
        if (own->dev_index[d] != pl->dev_index[d] || own->dev_rank[d] != pl->dev_rank[d])
            return snprintf(why, len, "its device %d is %s:%d of rank %d, the program's %s:%d of rank %d", d,
                            loom_device_kind_name(pl->kind), pl->dev_index[d], pl->dev_rank[d], loom_device_kind_name(own->kind),
                            own->dev_index[d], own->dev_rank[d]), 0;
    for (int k = 0; k < own->nplaces; k++)
        if (own->place_n[k] != pl->place_n[k] || memcmp(own->place_dev[k], pl->place_dev[k], (size_t)own->place_n[k] * sizeof(int)))
            return snprintf(why, len, "its placement %d is not the program's", k), 0;
    for (int id = 0; id < a->n; id++) {
        const loom_tensor *x = a->t[id], *y = b->t[id];
        int same = x->op == y->op && x->dtype == y->dtype && x->layout == y->layout && x->n_src == y->n_src &&
                   x->place == y->place && !strcmp(x->name, y->name) && same_shape(a, &x->shape, b, &y->shape) &&
                   same_shape(a, &x->a.shape, b, &y->a.shape) && !memcmp(x->a.i, y->a.i, sizeof x->a.i) &&
                   !memcmp(x->a.f, y->a.f, sizeof x->a.f) && (own->sbp == NULL) == (pl->sbp == NULL);
        for (int i = 0; same && i < x->n_src; i++)
            same = x->src[i]->id == y->src[i]->id;
        if (same && own->sbp) {
            same = loom_sbp_equal(own->sbp[id], pl->sbp[id]) && loom_sbp_equal(own->sig[id].out, pl->sig[id].out);
            for (int i = 0; same && i < x->n_src; i++)
                same = loom_sbp_equal(own->sig[id].in[i], pl->sig[id].in[i]);
            same = same && same_level1(own, pl, id, x->n_src);
        }
        if (!same)
            return snprintf(why, len, "tensor %d is %s '%s' %s in the plan, %s '%s' %s in the program", id,
                            loom__op_def(y->op)->name, y->name, loom__shape_str(b, &y->shape, s1, sizeof s1),
                            loom__op_def(x->op)->name, x->name, loom__shape_str(a, &x->shape, s2, sizeof s2)),
                   0;
    }
    return 1;
}

/* The whole file at path, NUL-terminated; NULL with errno set. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *b = cap <= SIZE_MAX / 4 ? realloc(buf, cap * 2 + 1) : NULL;
        if (!b) {
            free(buf);
            buf = NULL;
            errno = ENOMEM;
            break;
        }
        buf = b;
        cap *= 2;
    }
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (buf && err) {
        free(buf);
        errno = err;
        return NULL;
    }
    if (buf)
        buf[n] = 0;
    *len = n;
    return buf;
}

loom_status loom_plan_file_print(const char *path, FILE *out, loom_error *err)
{
    loom_error none;
    err = err ? err : &none;
    if (!path || !out)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_plan_file_print: %s is NULL", !path ? "the path" : "the stream");
    size_t len = 0;
    char *text = read_file(path, &len);
    if (!text)
        return loom_error_set(err, LOOM_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    loom__plan *pl = loom__plan_read_json(text, len, path, err->msg, sizeof err->msg);
    free(text);
    if (!pl)
        return err->status = LOOM_ERR_FORMAT;
    loom__plan_print(pl, out);
    loom__plan_free(pl);
    if (ferror(out))
        return loom_error_set(err, LOOM_ERR_IO, "loom_plan_file_print: the stream reports a write error");
    return LOOM_OK;
}

loom_status loom_program_read_plan(loom_program *p, const char *path)
{
    static const char api[] = "loom_program_read_plan";
    if (!p)
        return LOOM_ERR_INVALID;
    p->err[0] = 0;
    if (!path)
        return loom__program_fail(p, LOOM_ERR_INVALID, "%s: the path is NULL", api);
    size_t len = 0;
    char *text = read_file(path, &len);
    if (!text)
        return loom__program_fail(p, LOOM_ERR_IO, "%s: cannot read %s: %s", api, path, strerror(errno));
    char msg[512];
    loom__plan *pl = loom__plan_read_json(text, len, path, msg, sizeof msg);
    free(text);
    if (!pl)
        return loom__program_fail(p, LOOM_ERR_FORMAT, "%s: %s", api, msg);
    if (pl->mode >= LOOM_RUN_GRAD && !p->loss) {
        loom__plan_free(pl);
        return loom__program_fail(p, LOOM_ERR_FORMAT, "%s: %s: a plan with gradients, for a program compiled without a loss", api, path);
    }
    if (p->executor != LOOM_EXEC_ACTORS) {
        loom__plan_free(pl);
        return loom__program_fail(p, LOOM_ERR_INVALID, "%s: the program runs the reference executor, not plans", api);
    }
    loom_status s;
    loom__plan_src src = loom__program_plan_src(p);
    loom__plan *own = loom__plan_build(&src, pl->mode, p->keep, p->regst_num, &s);
    if (!own) {
        loom__plan_free(pl);
        return s;
    }
    int same = same_program(own, pl, msg, sizeof msg);
    loom__plan_free(own);
    if (!same) {
        loom__plan_free(pl);
        return loom__program_fail(p, LOOM_ERR_FORMAT, "%s: %s is not a plan of this program: %s", api, path, msg);
    }
    if ((s = loom__program_plan_fits(p, pl, api)) != LOOM_OK) {
        loom__plan_free(pl);
        return s;
    }
    loom__program_set_plan(p, pl);
    return LOOM_OK;
}
