/* Running a program: the executor chosen at compile time, one step or many. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "graphs/session/program.h"
#include "ops/cpu/pool.h"

static void drop_plans(loom_program *p)
{
    for (int m = 0; m < LOOM_RUN_MODE_COUNT; m++) {
        loom__exec_free(p->exec[m]);
        p->exec[m] = NULL;
        loom__plan_free(p->plan[m]);
        p->plan[m] = NULL;
    }
}

void loom__program_drop_plans(loom_program *p) { drop_plans(p); }

loom_status loom__program_pull(loom_program *p, int id) { return p->holder[id] ? loom__exec_pull(p->holder[id], id) : LOOM_OK; }

/* Fails the call api for a step that needs `needs` bytes (what: "the plan of a step", where: its
 * parts) when that is over the program's memory limit: every executor's refusal reads the same way. */
static loom_status over_limit(loom_program *p, const char *api, const char *what, int64_t needs, const char *where)
{
    char b[2][32];
    return loom__program_fail(p, LOOM_ERR_NOMEM, "%s: %s needs %s (%s), over the limit of %s", api, what,
                              loom__bytes_str((double)needs, b[0], sizeof b[0]), where,
                              loom__bytes_str((double)p->memory_limit, b[1], sizeof b[1]));
}

/* The reference executor keeps the value of every tensor it runs (at this run's sizes) and, on
 * several devices, each device's parts of them as well: refuses a run whose values and
 * parameters cannot fit the limit, before anything runs. Sizes of dims no input carries are
 * left out (the run then fails naming the dim). */
static loom_status reference_fits(loom_program *p, int end)
{
    loom_graph *g = p->g;
    loom_status s = loom__bind_dims(p, p->fwd_end);
    if (s != LOOM_OK)
        return s;
    int64_t values = 0, state = 0, parts = 0;
    int over = 0;
    for (int id = 0; id < end; id++) {
        const loom_tensor *t = g->t[id];
        const loom_op_def *def = loom__op_def(t->op);
        const loom__value *v = &p->val[id];
        int64_t bytes = 0;
        if (t->layout == LOOM__CSR) {
            if (p->ready[id]) /* a fed matrix: its arrays */
                bytes = (int64_t)loom__csr_bytes(v->shape[0], v->nnz, v->dtype);
        } else if (def->flags & LOOM__OPF_LEAF) {
            bytes = (int64_t)p->cap[id]; /* fed data, parameters, state */
        } else if (!(def->flags & LOOM__OPF_INPLACE) && !p->dead[id]) {
            int64_t shape[LOOM_MAX_DIMS] = {0};
            int bound = 1;
            for (int i = 0; i < t->shape.ndim; i++) {
                int k = loom__dyn_index(g, t->shape.d[i]);
                shape[i] = k >= 0 ? p->dims[k] : t->shape.d[i];
                bound &= shape[i] >= 0;
            }
            if (bound && loom__dense_size(t->dtype, t->shape.ndim, shape, NULL, &bytes))
                over = 1;
            if ((int64_t)p->cap[id] > bytes) /* what an earlier, larger run left allocated */
                bytes = (int64_t)p->cap[id];
        }
        int leaf_state = t->op == LOOM_OP_PARAM || t->op == LOOM_OP_STATE;
        over |= loom__add_size(leaf_state ? state : values, bytes, leaf_state ? &state : &values);
        if (p->ndevices > 1) { /* a split tensor's parts hold it once, a broadcast or partial one on each device (of each level) */
            const loom_nd_sbp s = loom__sbp_plan_nd(&p->sbp, id);
            int64_t copies = 1, b;
            for (int l = 0; l < s.n; l++)
                copies *= s.v[l].kind == LOOM_SBP_SPLIT ? 1 : s.n > 1 ? p->sbp.mesh[id][l] : p->sbp.nparts[id];
            over |= loom__mul_size(bytes, copies, &b) | loom__add_size(parts, b, &parts);
        }
    }
    int64_t total = 0;
    over |= loom__add_size(values, state, &total) | loom__add_size(total, parts, &total);
    if (!over && total <= p->memory_limit)
        return LOOM_OK;
    char b[3][32], where[160];
    if (over)
        return over_limit(p, "loom_program_run", "the reference executor's step", INT64_MAX, "more than an int64 byte count holds");
    snprintf(where, sizeof where, "%s of values, %s of their parts on the devices, %s of parameters and optimizer state",
             loom__bytes_str((double)values, b[0], sizeof b[0]), loom__bytes_str((double)parts, b[1], sizeof b[1]),
             loom__bytes_str((double)state, b[2], sizeof b[2]));
    if (p->ndevices == 1)
        snprintf(where, sizeof where, "%s of values, %s of parameters and optimizer state", b[0], b[2]);
    return over_limit(p, "loom_program_run", "the reference executor's step", total, where);
}

/* What a plan needs against the memory limit: on CPU devices the whole step, every device and the
 * program's own parameters and optimizer state together (they share the host's memory); on GPUs
 * the largest device's. The sums are checked: INT64_MAX when one is past an int64. The parts go to
 * the out arguments (any may be NULL). */
typedef struct plan_needs {
    int64_t state, dev_params, dev_most, total;
    int most;
} plan_needs;

static int64_t needs_of(loom_program *p, const loom__plan *pl, plan_needs *n)
{
    /* the whole step's memory is known before it runs: refuse a plan that cannot fit. Each figure
     * is a byte count within an int64 (the plan's, each parameter's); their sums are checked, so
     * that a huge plan never wraps under the limit */
    *n = (plan_needs){0};
    int over = 0;
    for (int id = 0; id < p->n; id++)
        if (p->g->t[id]->op == LOOM_OP_PARAM || p->g->t[id]->op == LOOM_OP_STATE)
            over |= loom__add_size(n->state, (int64_t)p->cap[id], &n->state);
    for (int d = 0; d < pl->ndev; d++) {
        const loom__dev_mem *m = &pl->mem[d];
        int64_t t = 0;
        over |= loom__add_size((int64_t)m->shared, (int64_t)m->own, &t) | loom__add_size(t, (int64_t)m->params, &t) |
                loom__add_size(t, (int64_t)m->inputs, &t) | loom__add_size(n->dev_params, (int64_t)m->params, &n->dev_params);
        if (t > n->dev_most)
            n->dev_most = t, n->most = d;
    }
    over |= loom__add_size((int64_t)pl->shared_bytes, (int64_t)pl->own_bytes, &n->total) |
            loom__add_size(n->total, (int64_t)pl->host_bytes, &n->total) | loom__add_size(n->total, n->state, &n->total) |
            loom__add_size(n->total, n->dev_params, &n->total);
    if (over)
        n->total = n->dev_most = INT64_MAX; /* over any limit */
    return pl->kind == LOOM_DEVICE_CPU ? n->total : n->dev_most;
}

int64_t loom__program_plan_needs(loom_program *p, const loom__plan *pl)
{
    plan_needs n;
    return needs_of(p, pl, &n);
}

loom_status loom__program_plan_fits(loom_program *p, const loom__plan *pl, const char *api)
{
    plan_needs n;
    needs_of(p, pl, &n);
    int64_t state = n.state, dev_params = n.dev_params, dev_most = n.dev_most, total = n.total;
    int most = n.most;
    char b[4][32], where[256], what[48];
    if (pl->kind == LOOM_DEVICE_CPU) {
        /* CPU devices share the host's memory with the program's own copies */
        if ((uint64_t)total > (uint64_t)p->memory_limit) {
            snprintf(where, sizeof where, "%s shared by lifetime, %s of own registers, %s of parameters and optimizer state",
                     loom__bytes_str((double)pl->shared_bytes, b[0], sizeof b[0]),
                     loom__bytes_str((double)pl->own_bytes + (double)pl->host_bytes, b[1], sizeof b[1]),
                     loom__bytes_str((double)state + (double)dev_params, b[2], sizeof b[2]));
            return over_limit(p, api, "the plan of a step", total, where);
        }
    } else if (p->memory_limit_given && (uint64_t)dev_most > (uint64_t)p->memory_limit) {
        /* a GPU's own memory: without a limit, its allocation at the first run says whether it fits */
        const loom__dev_mem *m = &pl->mem[most];
        snprintf(what, sizeof what, "the plan of a step on cuda:%d", pl->dev_index[most]);
        snprintf(where, sizeof where,
                 "%s shared by lifetime, %s of own registers, %s of parameters and optimizer state, %s of fed data",
                 loom__bytes_str((double)m->shared, b[0], sizeof b[0]), loom__bytes_str((double)m->own, b[1], sizeof b[1]),
                 loom__bytes_str((double)m->params, b[2], sizeof b[2]), loom__bytes_str((double)m->inputs, b[3], sizeof b[3]));
        return over_limit(p, api, what, dev_most, where);
    }
    return LOOM_OK;
}

/* The plan of mode, checked against the memory limit (the refusal names api): made by
 * loom_compile for the program's own mode, else at first need, and again after a change that
 * resizes it (a keep, a source, a sparse input fed anew). NULL with *s and the program's error set. */
loom__plan_src loom__program_plan_src(loom_program *p)
{
    return (loom__plan_src){.g = p->g,
                            .n = p->n,
                            .fwd_end = p->fwd_end,
                            .bwd_end = p->bwd_end,
                            .grad = p->grad,
                            .grad_of = p->grad_of,
                            .dead = p->dead,
                            .loss = p->loss,
                            .ndevices = p->ndevices,
                            .rank = p->plan_only ? p->plan_rank : -1,
                            .sbp = &p->sbp,
                            .cost = &p->cost,
                            .val = p->val,
                            .ready = p->ready,
                            .source = p->source != NULL,
                            .micro = p->micro,
                            .schedule = p->schedule,
                            .err = p->err,
                            .err_size = sizeof p->err};
}

static const loom__plan *plan_for(loom_program *p, loom_run_mode mode, const char *api, loom_status *s)
{
    *s = LOOM_OK;
    if (p->exec[mode])
        return loom__exec_plan(p->exec[mode]);
    if (p->plan[mode])
        return p->plan[mode];
    loom__plan_src src = loom__program_plan_src(p);
    loom__plan *pl = loom__plan_build(&src, mode, p->keep, p->regst_num, s);
    if (!pl)
        return NULL;
    if ((*s = loom__program_plan_fits(p, pl, api)) != LOOM_OK) {
        loom__plan_free(pl);
        return NULL;
    }
    p->plan[mode] = pl;
    return pl;
}

void loom__program_set_plan(loom_program *p, loom__plan *pl)
{
    loom__exec_free(p->exec[pl->mode]);
    p->exec[pl->mode] = NULL;
    loom__plan_free(p->plan[pl->mode]);
    p->plan[pl->mode] = pl;
}

const loom__plan *loom__program_plan_of(const loom_program *p, loom_run_mode mode)
{
    return p->exec[mode] ? loom__exec_plan(p->exec[mode]) : p->plan[mode];
}

loom_status loom__program_plan(loom_program *p, loom_run_mode mode, const char *api)
{
    loom_status s;
    plan_for(p, mode, api, &s);
    return s;
}

static loom_status env_reserve(void *owner, int id, loom_dtype dtype, int ndim, const int64_t *shape)
{
    return loom__value_reserve(owner, id, dtype, ndim, shape);
}

static loom_status env_loss(void *owner, double value)
{
    loom_program *p = owner;
    if (loom__losses_reserve(p, 1) != LOOM_OK)
        return LOOM_ERR_NOMEM;
    p->losses[p->nlosses++] = value;
    return LOOM_OK;
}

/* The program as its actor plans see it, brought up to date before each is built and run. */
static loom__exec_env *env_of(loom_program *p)
{
    p->env = (loom__exec_env){.val = p->val,
                              .ready = p->ready,
                              .feed_version = p->feed_version,
                              .holder = p->holder,
                              .step = p->step,
                              .source = p->source,
                              .source_ctx = p->source_ctx,
                              .graph = p->g,
                              .pool = p->pool,
                              .matmul = p->matmul,
                              .check_numerics = p->check_numerics,
                              .trace_record = p->trace_record,
                              .err = p->err,
                              .err_size = sizeof p->err,
                              .trace_err = p->trace_err,
                              .trace_err_size = sizeof p->trace_err,
                              .owner = p,
                              .reserve = env_reserve,
                              .loss = env_loss};
    return &p->env;
}

/* The actors of mode, built at its first run from its plan; NULL with *s and the program's error set. */
static loom__exec *exec_for(loom_program *p, loom_run_mode mode, loom_status *s)
{
    if (p->exec[mode])
        return *s = LOOM_OK, p->exec[mode];
    if (!plan_for(p, mode, "loom_program_run", s))
        return NULL;
    loom__plan *pl = p->plan[mode];
    p->plan[mode] = NULL; /* the executor's now */
    p->exec[mode] = loom__exec_new(pl, env_of(p));
    *s = p->exec[mode] ? LOOM_OK : LOOM_ERR_RUNTIME;
    return p->exec[mode];
}

loom_status loom__losses_reserve(loom_program *p, int64_t more)
{
    if (more <= p->losses_cap - p->nlosses)
        return LOOM_OK;
    int64_t cap = p->losses_cap ? p->losses_cap : 256;
    while (cap - p->nlosses < more)
        if (cap > INT64_MAX / 2 / (int64_t)sizeof(double))
            return LOOM_ERR_NOMEM;
        else
            cap *= 2;
    double *l = realloc(p->losses, (size_t)cap * sizeof *l);
    if (!l)
        return LOOM_ERR_NOMEM;
    p->losses = l;
    p->losses_cap = cap;
    return LOOM_OK;
}

static loom_status record_loss(loom_program *p)
{
    if (loom__losses_reserve(p, 1) != LOOM_OK)
        return loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
    const loom__value *v = &p->val[p->loss->id];
    p->losses[p->nlosses++] = v->dtype == LOOM_F32 ? ((float *)v->data)[0] : ((double *)v->data)[0];
    return LOOM_OK;
}

/* A cancel that came while no run was in progress ends this one before it begins: 1 if so, else
 * x (an actor plan, or NULL) becomes the run in progress that a cancel reaches. */
static int begin_run(loom_program *p, loom__exec *x)
{
    pthread_mutex_lock(&p->run_lock);
    int c = p->cancel_pending;
    p->cancel_pending = 0;
    if (!c)
        p->running = x;
    pthread_mutex_unlock(&p->run_lock);
    return c;
}

static loom_status cancelled(loom_program *p) { return loom__program_fail(p, LOOM_ERR_RUNTIME, "loom_program_run: cancelled"); }

/* An actor run drains, so every step it began is applied and counted, and none after (see
 * runtime/runtime.h); a step counts once its loss reached the host. The loss sink cannot fail on
 * the history's memory for a run of a known length: room is made before it starts. */
static loom_status run_actors(loom_program *p, loom__exec *x, loom_run_mode mode, int64_t steps)
{
    if (mode == LOOM_RUN_STEP && loom__losses_reserve(p, steps < 65536 ? steps : 65536) != LOOM_OK)
        return loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: no memory for the loss history");
    if (begin_run(p, x))
        return cancelled(p);
    int64_t before = p->nlosses;
    env_of(p);
    loom_status s = loom__exec_run(x, steps);
    if (mode == LOOM_RUN_STEP)
        p->step += p->nlosses - before;
    pthread_mutex_lock(&p->run_lock);
    p->running = NULL;
    if (loom__exec_take_cancel(x)) /* it came after the run had ended: it is the next run's */
        p->cancel_pending = 1;
    pthread_mutex_unlock(&p->run_lock);
    return s;
}

loom_status loom_program_run_steps(loom_program *p, loom_run_mode mode, int64_t steps)
{
    if (!p)
        return LOOM_ERR_INVALID;
    p->err[0] = 0;
    p->trace_err[0] = 0;
    if ((unsigned)mode >= LOOM_RUN_MODE_COUNT || steps < 0)
        return loom__program_fail(p, LOOM_ERR_INVALID, "loom_program_run: invalid mode %d or step count", (int)mode);
    if (mode >= LOOM_RUN_GRAD && !p->loss)
        return loom__program_fail(p, LOOM_ERR_INVALID, "loom_program_run: the program was compiled without a loss");
    if (p->plan_only)
        return loom__program_fail(p, LOOM_ERR_UNSUPPORTED, "loom_program_run: the program holds the plan of rank %d alone "
                                  "(loom_train_opts.plan_only), to be read, not run; compile it without plan_only to run it",
                                  p->plan_rank);
    if (steps == 0)
        return LOOM_OK; /* the runtime reads 0 pieces as "until the source ends" */
    /* The CPU kernels split their work over the program's pool; OpenBLAS runs on the calling
     * thread (process-wide: OpenBLAS has no per-call setting), where its own pool's threads would
     * spin beside ours between calls. */
    openblas_set_num_threads(1);
    if (!p->pool_made) {
        p->pool_made = 1;
        p->pool = loom__pool_new(p->threads); /* NULL: one thread */
    }
    if (p->executor == LOOM_EXEC_REFERENCE) {
        if (p->source)
            return loom__program_fail(p, LOOM_ERR_UNSUPPORTED, "loom_program_run: the reference executor reads fed data only, not a source");
        int end = mode == LOOM_RUN_STEP ? p->n : mode == LOOM_RUN_GRAD ? p->bwd_end : p->fwd_end;
        loom_status fit = reference_fits(p, end);
        if (fit != LOOM_OK)
            return fit;
        for (int64_t i = 0; i < steps; i++) {
            if (begin_run(p, NULL)) /* between steps: each one is applied whole or not at all */
                return cancelled(p);
            loom_status s = p->ndevices > 1 ? loom__sbp_reference_run(p, end, mode != LOOM_RUN_EVAL)
                                            : loom__reference_run(p, 0, end, mode != LOOM_RUN_EVAL);
            if (s == LOOM_OK && mode == LOOM_RUN_STEP) {
                p->step++;
                s = record_loss(p);
            }
            if (s != LOOM_OK)
                return s;
        }
        return LOOM_OK;
    }
    loom_status s;
    loom__exec *x = exec_for(p, mode, &s);
    if (!x)
        return s;
    return run_actors(p, x, mode, steps);
}

loom_status loom_program_run(loom_program *p, loom_run_mode mode) { return loom_program_run_steps(p, mode, 1); }

const char *loom_program_trace_error(const loom_program *p) { return p && p->trace_err[0] ? p->trace_err : NULL; }

const double *loom_program_losses(const loom_program *p, int64_t *n)
{
    if (n)
        *n = p ? p->nlosses : 0;
    return p ? p->losses : NULL;
}

loom_status loom_program_keep(loom_program *p, loom_tensor *t)
{
    if (!p)
        return LOOM_ERR_INVALID;
    if (!t || t->graph != p->g || t->id < 0 || t->id >= p->n)
        return loom__program_fail(p, LOOM_ERR_INVALID, "loom_program_keep: not a tensor of this program");
    if (!p->keep[t->id]) {
        p->keep[t->id] = 1;
        drop_plans(p); /* the plans sink it from the next run on */
    }
    return LOOM_OK;
}

void loom_program_cancel(loom_program *p)
{
    if (!p)
        return;
    /* the plans are built and freed by the running thread: only the one running is touched, and
     * the lock keeps it from ending (and being freed) meanwhile */
    pthread_mutex_lock(&p->run_lock);
    if (p->running)
        loom__exec_cancel(p->running);
    else
        p->cancel_pending = 1;
    pthread_mutex_unlock(&p->run_lock);
}

void loom_program_set_source(loom_program *p, loom_source_fn fn, void *ctx)
{
    if (!p)
        return;
    if (p->source != fn)
        drop_plans(p); /* a source's inputs get registers of their own */
    p->source = fn;
    p->source_ctx = ctx;
}

loom_status loom_program_memory(loom_program *p, loom_run_mode mode, int device, loom_memory *out)
{
    if (!p || !out || (unsigned)mode >= LOOM_RUN_MODE_COUNT)
        return LOOM_ERR_INVALID;
    if (mode >= LOOM_RUN_GRAD && !p->loss)
        return loom__program_fail(p, LOOM_ERR_INVALID, "loom_program_memory: the program was compiled without a loss");
    loom_status s;
    const loom__plan *pl = plan_for(p, mode, "loom_program_memory", &s);
    if (!pl)
        return s;
    if (device != LOOM_ALL_DEVICES && (device < 0 || device >= pl->ndev))
        return loom__program_fail(p, LOOM_ERR_INVALID, "loom_program_memory: device %d of a plan of %d", device, pl->ndev);
    loom__plan_memory_of(pl, device, out);
    return LOOM_OK;
}
