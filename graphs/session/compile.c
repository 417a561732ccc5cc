/* loom_compile and the program's host-side API: feeding inputs, parameters and their initial
 * values, fetching values. Running is graphs/session/reference.c. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <loom/dist.h>

#include "graphs/session/program.h"
#include "ops/cpu/pool.h"
#include "ops/optim.h"
#include "runtime/comm/parts.h"

loom_status loom__program_fail(loom_program *p, loom_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    return s;
}

const char *loom_program_error(const loom_program *p)
{
    if (!p)
        return "loom: program is NULL";
    return p->err[0] ? p->err : NULL;
}

int64_t loom_program_steps(const loom_program *p) { return p ? p->step : 0; }

static uint64_t name_hash(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603); /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * UINT64_C(1099511628211);
    return h;
}

/* Element i of a parameter's initial value. Random kinds are keyed by the graph seed, the
 * initialiser's seed and the parameter's name, so that a value never depends on placement. */
static double init_value(const loom_graph *g, const loom_tensor *t, uint64_t key, int64_t i)
{
    const loom_init *in = &t->init;
    int64_t fan_in = t->shape.ndim ? t->shape.d[0] : 1, fan_out = t->shape.ndim ? t->shape.d[t->shape.ndim - 1] : 1;
    (void)g;
    double u = loom__rand_unit(key, 2 * (uint64_t)i), v = loom__rand_unit(key, 2 * (uint64_t)i + 1);
    double z = sqrt(-2.0 * log1p(-u)) * cos(2.0 * M_PI * v); /* Box-Muller; 1-u is in (0, 1] */
    switch (in->kind) {
    case LOOM_INIT_ZEROS:
        return 0;
    case LOOM_INIT_CONSTANT:
        return in->a;
    case LOOM_INIT_UNIFORM:
        return in->a + (in->b - in->a) * u;
    case LOOM_INIT_NORMAL:
        return in->a + in->b * z;
    case LOOM_INIT_GLOROT: {
        double s = (in->a ? in->a : 1.0) * sqrt(6.0 / (double)(fan_in + fan_out > 0 ? fan_in + fan_out : 1));
        return -s + 2 * s * u;
    }
    case LOOM_INIT_KAIMING:
        return (in->a ? in->a : sqrt(2.0)) / sqrt((double)(fan_in > 0 ? fan_in : 1)) * z;
    case LOOM_INIT_KIND_COUNT:
        break;
    }
    return 0;
}

static loom_status init_leaf(loom_program *p, loom_tensor *t)
{
    int64_t shape[LOOM_MAX_DIMS];
    for (int i = 0; i < t->shape.ndim; i++)
        shape[i] = t->shape.d[i]; /* parameters and state are static */
    loom_status s = loom__value_reserve(p, t->id, t->dtype, t->shape.ndim, shape);
    if (s != LOOM_OK)
        return loom__program_fail(p, s, s == LOOM_ERR_NOMEM ? "loom_compile: no memory for '%s'"
                                                            : "loom_compile: '%s' is over an int64 byte count (internal error)",
                                  loom_tensor_name(t));
    loom__value *v = &p->val[t->id];
    int64_t n = loom__numel(v);
    uint64_t key = loom__rand64(p->g->seed, t->init.seed ^ name_hash(t->name));
    for (int64_t i = 0; i < n; i++) {
        double x = t->op == LOOM_OP_PARAM ? init_value(p->g, t, key, i) : 0.0;
        if (t->dtype == LOOM_F32)
            ((float *)v->data)[i] = (float)x;
        else
            ((double *)v->data)[i] = x;
    }
    p->ready[t->id] = 1;
    return LOOM_OK;
}

static void add_optimizer(loom_program *p, loom_tensor *param, loom_tensor *grad)
{
    loom_graph *g = p->g;
    double wd = isnan(param->weight_decay) ? p->opt.weight_decay : param->weight_decay;
    loom__attrs a = {.i = {param->dtype, LOOM__DENSE}, .shape = param->shape};
    loom_tensor *s1 = loom__node(g, "loom_compile (optimizer state)", LOOM_OP_STATE, 0, NULL, &a);
    s1->place = param->place; /* state lives with its parameter */
    if (p->opt.kind == LOOM_OPT_SGD) {
        loom__sgd_update(g, param, grad, s1, &p->opt, wd);
    } else {
        loom_tensor *s2 = loom__node(g, "loom_compile (optimizer state)", LOOM_OP_STATE, 0, NULL, &a);
        s2->place = param->place;
        loom__adam_update(g, param, grad, s1, s2, &p->opt, wd);
    }
}

/* The gradient the optimizer of parameter id takes: its own, or with clipping (clip > 0) scaled by
 * min(1, clip / (norm + 1e-6)), norm the L2 norm of every trained parameter's gradient together
 * (torch.nn.utils.clip_grad_norm_), into upd[id]. The norm is sums of squares, each a sum whose
 * (S(0)) -> P makes it whole on every placement (an all-reduce where one is needed). Built after
 * the backward pass, so that it runs in STEP runs only and loom_program_grad stays unclipped. */
static void clip_gradients(loom_program *p, double clip, loom_tensor **upd)
{
    loom_graph *g = p->g;
    loom_tensor *total = NULL, *first = NULL;
    for (int i = 0; i < p->fwd_end; i++)
        upd[i] = p->grad[i];
    for (int i = 0; clip > 0 && i < p->fwd_end; i++) {
        loom_tensor *gr = p->grad[i];
        if (g->t[i]->op != LOOM_OP_PARAM || !gr)
            continue;
        if (first && g->t[i]->dtype != first->dtype) {
            /* no op mixes float dtypes, so one loss never reaches parameters of two */
            loom__fail(g, LOOM_ERR_DTYPE, "loom_compile: clip_norm: gradients of %s '%s' and %s '%s' (internal error)",
                       loom_dtype_name(first->dtype), loom_tensor_name(first), loom_dtype_name(g->t[i]->dtype),
                       loom_tensor_name(g->t[i]));
            return;
        }
        first = first ? first : g->t[i];
        loom_tensor *sq = loom_sum(g, loom_mul(g, gr, gr), LOOM_ALL_AXES, 0);
        total = total ? loom_add(g, total, sq) : sq;
    }
    if (!total)
        return;
    const char *api = "loom_compile (gradient clipping)";
    loom_tensor *norm = loom_sqrt(g, total);
    loom_tensor *c = loom__node(g, api, LOOM_OP_FILL, 1, &norm, &(loom__attrs){.f = {clip}});
    loom_tensor *eps = loom__node(g, api, LOOM_OP_FILL, 1, &norm, &(loom__attrs){.f = {1e-6}});
    loom_tensor *factor = loom_clamp(g, loom_div(g, c, loom_add(g, norm, eps)), -INFINITY, 1.0);
    for (int i = 0; i < p->fwd_end; i++)
        if (g->t[i]->op == LOOM_OP_PARAM && p->grad[i])
            upd[i] = loom_mul(g, p->grad[i], factor);
}

/* Marks the gradient nodes that reach no parameter's gradient (nor, through it, an update). */
static loom_status mark_dead(loom_program *p)
{
    loom_graph *g = p->g;
    uint8_t *live = calloc((size_t)p->n + 1, 1);
    p->dead = calloc((size_t)p->n + 1, 1);
    if (!live || !p->dead) {
        free(live);
        return LOOM_ERR_NOMEM;
    }
    for (int id = p->bwd_end; id < p->n; id++)
        live[id] = 1;
    for (int id = 0; id < p->fwd_end; id++)
        if (g->t[id]->op == LOOM_OP_PARAM && p->grad[id])
            live[p->grad[id]->id] = 1;
    for (int id = p->n - 1; id >= p->fwd_end; id--)
        for (int i = 0; live[id] && i < g->t[id]->n_src; i++)
            live[g->t[id]->src[i]->id] = 1;
    for (int id = p->fwd_end; id < p->bwd_end; id++)
        p->dead[id] = !live[id];
    free(live);
    return LOOM_OK;
}

void loom_program_free(loom_program *p)
{
    if (!p)
        return;
    loom__program_drop_plans(p);
    loom__sbp_plan_free(&p->sbp);
    loom__pool_free(p->pool);
    free(p->keep);
    free(p->losses);
    for (int i = 0; p->val && i < p->n; i++) {
        free(p->val[i].data);
        free(p->val[i].rowptr);
        free(p->val[i].col);
    }
    free(p->val);
    free(p->cap);
    free(p->ready);
    free(p->grad);
    free(p->grad_of);
    free(p->dead);
    free(p->dims);
    free(p->feed_version);
    free(p->holder);
    pthread_mutex_destroy(&p->run_lock);
    free(p);
}

static int key_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The devices of the graph's placements, each once (counted by sorting their (rank, index) keys),
 * into p->ndevices; 0, or -1 with the graph's error set when they are more than `most`. */
static int count_devices(loom_program *p, int most)
{
    loom_graph *g = p->g;
    const char *why = p->plan_only ? " (LOOM_MAX_PLAN_DEVICES, with loom_train_opts.plan_only)" : "";
    int64_t total = 0, ndev = 0;
    for (int k = 0; k < g->nplaces; k++) {
        int n = g->places[k] ? loom_placement_ndevices(g->places[k]) : 1;
        if (n > most)
            return loom__fail(g, LOOM_ERR_UNSUPPORTED, "loom_compile: a placement of %d devices; a graph's placements hold at most %d%s",
                              n, most, why), -1;
        total += n;
    }
    int64_t *key = malloc((size_t)total * sizeof *key + 1), nk = 0, local = 0;
    if (!key)
        return loom__fail(g, LOOM_ERR_NOMEM, "loom_compile: out of memory"), -1;
    const int64_t me = p->plan_only ? p->plan_rank : loom_dist_rank();
    for (int k = 0; k < g->nplaces; k++) {
        const loom_placement *pl = g->places[k];
        for (int j = 0; j < (pl ? loom_placement_ndevices(pl) : 1); j++) {
            int rank = 0, dev = pl ? loom_placement_device(pl, j, &rank) : 0;
            key[nk++] = (int64_t)rank * (LOOM_MAX_DEVICE_INDEX + 1) + dev;
        }
    }
    qsort(key, (size_t)nk, sizeof *key, key_cmp);
    for (int64_t i = 0; i < nk; i++)
        if (i == 0 || key[i] != key[i - 1]) {
            ndev++;
            local += key[i] / (LOOM_MAX_DEVICE_INDEX + 1) == me;
        }
    p->local_devices = local > 0 ? (int)local : 1;
    free(key);
    if (ndev > most)
        return loom__fail(g, LOOM_ERR_UNSUPPORTED, "loom_compile: the graph's placements hold %lld devices in all, at most %d%s",
                          (long long)ndev, most, why), -1;
    p->ndevices = ndev > 0 ? (int)ndev : 1;
    return 0;
}

/* Checks every placement of the graph against the machine and the job (a placement over ranks
 * starts the communication between the processes), and counts the plan's devices (every
 * placement's, once each) into p->ndevices. A program compiled for its plan only (plan_only) is
 * checked against nothing of this process: its rank must be one of the placements' ranks. */
static void check_places(loom_program *p)
{
    loom_graph *g = p->g;
    p->ndevices = p->local_devices = 1;
    if (g->nplaces == 0) {
        if (p->plan_only && p->plan_rank != 0)
            loom__fail(g, LOOM_ERR_INVALID, "loom_compile: plan_rank %d: the graph has no placement, so one rank, 0", p->plan_rank);
        return;
    }
    loom_device_kind kind = LOOM_DEVICE_KIND_COUNT;
    int rank_seen = 0;
    for (int k = 0; k < g->nplaces; k++) {
        const loom_placement *pl = g->places[k];
        loom_device_kind pk = pl ? loom_placement_kind(pl) : LOOM_DEVICE_CPU;
        if (kind != LOOM_DEVICE_KIND_COUNT && pk != kind) {
            loom__fail(g, LOOM_ERR_UNSUPPORTED, "loom_compile: placements of %s and %s devices in one graph: moves between device kinds are not built yet",
                       loom_device_kind_name(kind), loom_device_kind_name(pk));
            return;
        }
        kind = pk;
        for (int r = 0; p->plan_only && !rank_seen && r < (pl ? loom_placement_nranks(pl) : 1); r++)
            rank_seen = (pl ? loom_placement_rank(pl, r) : 0) == p->plan_rank;
        if (pl && !p->plan_only) {
            loom_error e = {0};
            int ncuda = pk == LOOM_DEVICE_CUDA ? loom_cuda_device_count(NULL) : 0;
            /* MPI in a process a launcher (mpirun, srun) started; a lone process is rank 0 of 1,
             * without MPI: "@0/cpu:0-3" is its devices, and a placement naming another rank fails
             * the check below */
            int launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
            if (loom_placement_has_ranks(pl) && launched && loom_dist_init(&e) != LOOM_OK) {
                loom__fail(g, e.status, "loom_compile: placement spans ranks: %s", e.msg);
                return;
            }
            if (loom_placement_check(pl, loom_dist_size(), ncuda, &e) != LOOM_OK) {
                loom__fail(g, e.status, "loom_compile: %s", e.msg);
                return;
            }
        }
    }
    if (p->plan_only && !rank_seen) {
        char b[160] = "cpu:0";
        if (g->places[0])
            loom_placement_str(g->places[0], b, sizeof b);
        loom__fail(g, LOOM_ERR_INVALID, "loom_compile: plan_rank %d holds no device of the graph's placements (the first: %s)",
                   p->plan_rank, b);
        return;
    }
    count_devices(p, p->plan_only ? LOOM_MAX_PLAN_DEVICES : LOOM__MAX_DEVICES);
}

/* Records loom_compile's first bad argument on g (the graph keeps only the first error). */
static void check_args(loom_graph *g, const loom_tensor *loss, const loom_train_opts *opts, const loom_optimizer *opt)
{
    char b[96];
    if (opts && (opts->regst_num < 0 || opts->regst_num > LOOM_MAX_REGST_NUM))
        loom__fail(g, LOOM_ERR_INVALID,
                   "loom_compile: regst_num %d is outside 0 .. %d (buffers of each input register; 0 means 2)",
                   opts->regst_num, LOOM_MAX_REGST_NUM);
    if (opts && (opts->micro_batches < 0 || opts->micro_batches > LOOM_MAX_REGST_NUM))
        loom__fail(g, LOOM_ERR_INVALID,
                   "loom_compile: micro_batches %d is outside 0 .. %d (micro-batches of a step; 0 or 1: the whole batch at once)",
                   opts->micro_batches, LOOM_MAX_REGST_NUM);
    if (opts && (unsigned)opts->schedule >= LOOM_SCHEDULE_COUNT)
        loom__fail(g, LOOM_ERR_INVALID, "loom_compile: schedule %d is not a loom_schedule (LOOM_SCHEDULE_1F1B or LOOM_SCHEDULE_GPIPE)",
                   (int)opts->schedule);
    if (opts && ((unsigned)opts->executor >= LOOM_EXEC_COUNT || opts->threads < 0 ||
                 opts->memory_limit < 0 || (unsigned)opts->matmul >= LOOM_MATMUL_PRECISION_COUNT))
        loom__fail(g, LOOM_ERR_INVALID,
                   "loom_compile: invalid executor %d, threads %d, memory limit %lld or matmul precision %d",
                   (int)opts->executor, opts->threads, (long long)opts->memory_limit, (int)opts->matmul);
    if (opts && (!(opts->clip_norm >= 0) || !isfinite(opts->clip_norm)))
        loom__fail(g, LOOM_ERR_INVALID, "loom_compile: clip_norm must be a finite number >= 0 (0: no clipping), got %g",
                   opts->clip_norm);
    if ((unsigned)opt->kind >= LOOM_OPT_KIND_COUNT || !(opt->lr >= 0) || !(opt->weight_decay >= 0))
        loom__fail(g, LOOM_ERR_INVALID, "loom_compile: invalid optimizer (kind %d, lr %g, weight decay %g)", (int)opt->kind,
                   opt->lr, opt->weight_decay);
    if (!loss) {
        if (opt->kind != LOOM_OPT_NONE)
            loom__fail(g, LOOM_ERR_INVALID, "loom_compile: an optimizer needs a loss");
    } else if (loss->flags & LOOM__T_POISON) {
        loom__fail(g, LOOM_ERR_INVALID, "loom_compile: the loss is a poisoned tensor");
    } else if (loss->graph != g) {
        loom__fail(g, LOOM_ERR_INVALID, "loom_compile: the loss belongs to another graph");
    } else if (!loom_dtype_is_float(loss->dtype) || loss->layout != LOOM__DENSE || loss->shape.ndim != 0) {
        loom__fail(g, LOOM_ERR_SHAPE, "loom_compile: the loss must be a float scalar, got %s %s", loom_dtype_name(loss->dtype),
                   loom__shape_str(g, &loss->shape, b, sizeof b));
    }
}

static loom_status compile_nomem(loom_graph *g)
{
    loom__fail(g, LOOM_ERR_NOMEM, "loom_compile: out of memory");
    return g->status;
}

static int has_sparse_input(const loom_program *p)
{
    for (int i = 0; i < p->fwd_end; i++)
        if (p->g->t[i]->op == LOOM_OP_INPUT && p->g->t[i]->layout == LOOM__CSR)
            return 1;
    return 0;
}

loom_status loom_compile(loom_graph *g, loom_tensor *loss, const loom_train_opts *opts, loom_program **out)
{
    if (out)
        *out = NULL;
    if (!g)
        return LOOM_ERR_INVALID; /* loom_graph_error(NULL) says the graph is NULL */
    if (!out) {
        loom__fail(g, LOOM_ERR_INVALID, "loom_compile: the program pointer (out, the last argument) is NULL");
        return g->status;
    }
    if (g->status != LOOM_OK)
        return g->status;
    loom_optimizer opt = opts ? opts->optimizer : (loom_optimizer){.kind = LOOM_OPT_NONE};
    check_args(g, loss, opts, &opt);
    if (g->status != LOOM_OK)
        return g->status;

    loom_program *p = calloc(1, sizeof *p);
    if (!p)
        return compile_nomem(g);
    p->g = g;
    p->loss = loss;
    p->opt = opt;
    p->fwd_end = g->n;
    p->grad = calloc((size_t)g->n + 1, sizeof *p->grad);
    if (!p->grad) {
        free(p);
        return compile_nomem(g);
    }
    pthread_mutex_init(&p->run_lock, NULL); /* every later failure path frees through loom_program_free */
    if (loss && loom__autodiff(g, loss, p->grad) == LOOM_OK) {
        p->bwd_end = g->n;
        if (opt.kind != LOOM_OPT_NONE) {
            loom_tensor **upd = calloc((size_t)p->fwd_end + 1, sizeof *upd);
            if (!upd)
                loom__fail(g, LOOM_ERR_NOMEM, "loom_compile: out of memory");
            else
                clip_gradients(p, opts->clip_norm, upd);
            for (int i = 0; g->status == LOOM_OK && i < p->fwd_end; i++)
                if (g->t[i]->op == LOOM_OP_PARAM && upd[i])
                    add_optimizer(p, g->t[i], upd[i]);
            free(upd);
        }
        for (int i = 0; i < p->fwd_end; i++) { /* after the optimizer's: the running statistics */
            const loom_op_def *def = loom__op_def(g->t[i]->op);
            if (def->step_update)
                def->step_update(g, g->t[i]);
        }
    } else {
        p->bwd_end = g->n;
    }
    p->n = g->n;
    p->grad_of = malloc(((size_t)p->n + 1) * sizeof *p->grad_of);
    if (!p->grad_of)
        loom__fail(g, LOOM_ERR_NOMEM, "loom_compile: out of memory");
    for (int id = 0; p->grad_of && id < p->n; id++)
        p->grad_of[id] = -1;
    for (int j = p->fwd_end - 1; p->grad_of && j >= 0; j--) /* the first forward tensor, should several share one */
        if (p->grad[j])
            p->grad_of[p->grad[j]->id] = j;
    p->plan_only = opts && opts->plan_only;
    p->plan_rank = p->plan_only ? opts->plan_rank : 0;
    p->passes = (loom__passes){.g = g, .fwd_end = p->fwd_end, .bwd_end = p->bwd_end, .grad_of = p->grad_of};
    if (g->status == LOOM_OK && mark_dead(p) != LOOM_OK)
        loom__fail(g, LOOM_ERR_NOMEM, "loom_compile: out of memory");
    if (g->status == LOOM_OK)
        check_places(p);
    loom__cost_default(&p->cost);
    const char *cost = opts && opts->cost_model ? opts->cost_model : getenv("LOOM_COST_MODEL");
    if (g->status == LOOM_OK && cost && *cost) {
        loom_error e = LOOM_ERROR_INIT;
        if (loom__cost_load(cost, &p->cost, &e) != LOOM_OK)
            loom__fail(g, e.status, "loom_compile: the cost model %s%s", opts && opts->cost_model ? "" : "($LOOM_COST_MODEL) ", e.msg);
    }
    if (g->status == LOOM_OK && opts && opts->links) { /* the network between the ranks, for every kind */
        const loom_link_model *m = opts->links;
        if (!loom__link_model_ok(m))
            loom__fail(g, LOOM_ERR_INVALID, "loom_compile: links: %d of a node, bandwidths %g and %g B/s, latencies %g and %g s: "
                       "expected at least one link, bandwidths > 0, latencies >= 0", m->node_links, m->link_bw, m->gpu_bw,
                       m->node_latency, m->gpu_latency);
        for (int k = 0; k < LOOM_DEVICE_KIND_COUNT; k++)
            p->cost.dev[k].net_bw = m->node_links * m->link_bw, p->cost.dev[k].net_latency = m->node_latency;
    }
    /* the CPU devices share the machine's cores and the program's kernel threads (its pool's): by
     * default the cores each device of the process gets, at least one, as devices that take every
     * core already run at once and a kernel's threads would only wake beside them and be waited for
     * (measured on 2 cores: an MLP's step on cpu:0-1 was 10 to 20% faster with one thread than two) */
    const int each = loom__pool_cores() / (p->local_devices > 0 ? p->local_devices : 1); /* 0: the places not checked */
    p->threads = opts && opts->threads > 0 ? opts->threads : each > 1 ? each : 1;
    p->cost.dev[LOOM_DEVICE_CPU].cores = loom__pool_cores();
    p->cost.dev[LOOM_DEVICE_CPU].threads = p->threads;
    if (g->status == LOOM_OK && p->ndevices > 1) {
        char msg[1024];
        loom_status s = loom__sbp_infer(g, p->n, p->dead, p->ndevices, &p->cost, &p->sbp, msg, sizeof msg);
        if (s != LOOM_OK)
            loom__fail(g, s, "loom_compile: %s", msg);
    }
    if (g->status != LOOM_OK) {
        loom_program_free(p);
        return g->status;
    }
    p->val = calloc((size_t)p->n, sizeof *p->val);
    p->cap = calloc((size_t)p->n, sizeof *p->cap);
    p->ready = calloc((size_t)p->n, 1);
    p->dims = calloc((size_t)g->ndyn + 1, sizeof *p->dims);
    p->keep = calloc((size_t)p->n, 1);
    p->feed_version = calloc((size_t)p->n + 1, sizeof *p->feed_version);
    p->holder = calloc((size_t)p->n + 1, sizeof *p->holder);
    p->executor = opts ? opts->executor : LOOM_EXEC_ACTORS;
    p->regst_num = opts && opts->regst_num > 0 ? opts->regst_num : 2;
    p->micro = opts && opts->micro_batches > 1 ? opts->micro_batches : 1;
    p->schedule = opts ? opts->schedule : LOOM_SCHEDULE_1F1B;
    p->matmul = opts ? opts->matmul : LOOM_MATMUL_F32;
    p->check_numerics = (opts && opts->check_numerics) || loom__numerics_env();
    p->memory_limit_given = opts && opts->memory_limit > 0;
    p->memory_limit = opts && opts->memory_limit > 0 ? opts->memory_limit
                                                     : (int64_t)sysconf(_SC_PHYS_PAGES) * (int64_t)sysconf(_SC_PAGESIZE);
    if (!p->val || !p->cap || !p->ready || !p->dims || !p->keep || !p->feed_version || !p->holder) {
        loom_program_free(p);
        return compile_nomem(g);
    }
    for (int i = 0; i < p->n; i++) {
        loom_tensor *t = g->t[i];
        loom_status s = t->op == LOOM_OP_PARAM || t->op == LOOM_OP_STATE ? init_leaf(p, t) : LOOM_OK;
        if (s != LOOM_OK) {
            loom__fail(g, s, "%s", p->err);
            loom_program_free(p);
            return s;
        }
    }
    /* the memory of the program's own step is planned here, so that a limit it cannot fit fails
     * now; a plan that sizes a sparse input by its matrix is made once that is fed */
    if (p->executor == LOOM_EXEC_ACTORS && (!has_sparse_input(p) || p->micro > 1)) { /* micro-batches refuse a sparse input now */
        loom_status s = loom__program_plan(p, loom__program_own_mode(p), "loom_compile");
        if (s != LOOM_OK) {
            loom__fail(g, s, "%s", p->err);
            loom_program_free(p);
            return s;
        }
    }
    *out = p;
    return LOOM_OK;
}

/* ---- feeding and fetching --------------------------------------------------------------------- */

static loom_status check_input(loom_program *p, const char *api, loom_tensor *t, loom__layout layout)
{
    if (!t || t->graph != p->g || t->id < 0 || t->id >= p->n || t->op != LOOM_OP_INPUT)
        return loom__program_fail(p, LOOM_ERR_INVALID, "%s: not an input of this program", api);
    if (t->layout != layout)
        return loom__program_fail(p, LOOM_ERR_INVALID, "%s: input '%s' is %s", api, t->name,
                                  t->layout == LOOM__CSR ? "sparse (use loom_program_feed_csr)" : "dense (use loom_program_feed)");
    return LOOM_OK;
}

static loom_status check_dims(loom_program *p, const char *api, const loom_tensor *t, int ndim, const int64_t *shape)
{
    char msg[256];
    loom_status s = loom__input_dims(p->g, t, ndim, shape, msg, sizeof msg);
    return s == LOOM_OK ? s : loom__program_fail(p, s, "%s: %s", api, msg);
}

loom_status loom_program_feed(loom_program *p, loom_tensor *t, const loom_array *a)
{
    if (!p)
        return LOOM_ERR_INVALID;
    p->err[0] = 0; /* the last call's error only */
    loom_status s = check_input(p, "loom_program_feed", t, LOOM__DENSE);
    if (s != LOOM_OK)
        return s;
    if (!a)
        return loom__program_fail(p, LOOM_ERR_INVALID, "loom_program_feed: input '%s': the array is NULL", t->name);
    if (a->dtype != t->dtype)
        return loom__program_fail(p, LOOM_ERR_DTYPE, "loom_program_feed: input '%s' wants %s data, got %s", t->name,
                                  loom_dtype_name(t->dtype), loom_dtype_name(a->dtype));
    /* the rank first: the dims are read only up to it */
    if ((s = check_dims(p, "loom_program_feed", t, a->ndim, a->shape)) != LOOM_OK)
        return s;
    char msg[256];
    if (p->executor == LOOM_EXEC_ACTORS && loom__micro_rows(t, a->ndim, a->shape, p->micro, msg, sizeof msg) != LOOM_OK)
        return loom__program_fail(p, LOOM_ERR_SHAPE, "loom_program_feed: %s", msg);
    int64_t n, bytes; /* in an int64: each dim is within a bound that the builder checked */
    if (loom__dense_size(a->dtype, a->ndim, a->shape, &n, &bytes))
        return loom__program_fail(p, LOOM_ERR_SHAPE, "loom_program_feed: input '%s': data over an int64 byte count", t->name);
    if (n && !a->data)
        return loom__program_fail(p, LOOM_ERR_INVALID, "loom_program_feed: input '%s': data is NULL for %" PRId64 " elements",
                                  t->name, n);
    if ((s = loom__value_reserve(p, t->id, a->dtype, a->ndim, a->shape)) != LOOM_OK)
        return loom__program_fail(p, s, "loom_program_feed: no memory for input '%s'", t->name);
    if (bytes)
        memcpy(p->val[t->id].data, a->data, (size_t)bytes);
    p->ready[t->id] = 1;
    p->feed_version[t->id] = ++p->feeds;
    return LOOM_OK;
}

loom_status loom_program_feed_csr(loom_program *p, loom_tensor *t, const loom_csr *m)
{
    if (!p)
        return LOOM_ERR_INVALID;
    p->err[0] = 0;
    loom_status s = check_input(p, "loom_program_feed_csr", t, LOOM__CSR);
    if (s != LOOM_OK)
        return s;
    loom_error e = {0};
    if (!m || loom_csr_validate(m, &e) != LOOM_OK)
        return loom__program_fail(p, LOOM_ERR_FORMAT, "loom_program_feed_csr: input '%s': %s", t->name,
                                  m ? e.msg : "NULL matrix");
    if (m->vdtype != t->dtype)
        return loom__program_fail(p, LOOM_ERR_DTYPE, "loom_program_feed_csr: input '%s' wants %s values, got %s", t->name,
                                  loom_dtype_name(t->dtype), loom_dtype_name(m->vdtype));
    int64_t shape[2] = {m->nrows, m->ncols};
    if ((s = check_dims(p, "loom_program_feed_csr", t, 2, shape)) != LOOM_OK)
        return s;
    loom__value *v = &p->val[t->id];
    if (!p->ready[t->id] || v->nnz != m->nnz || v->shape[0] != m->nrows)
        loom__program_drop_plans(p); /* plans size a sparse input's registers and scratch by the matrix fed */
    size_t vb = (size_t)m->nnz * loom_dtype_size(m->vdtype);
    int32_t *rp = realloc(v->rowptr, (size_t)(m->nrows + 1) * sizeof *rp);
    if (rp)
        v->rowptr = rp;
    int32_t *col = realloc(v->col, (size_t)m->nnz * sizeof *col + 1);
    if (col)
        v->col = col;
    void *val = realloc(v->data, vb + 1);
    if (val)
        v->data = val;
    if (!rp || !col || !val)
        return loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_feed_csr: no memory for input '%s'", t->name);
    v->dtype = m->vdtype;
    v->ndim = 2;
    v->shape[0] = m->nrows;
    v->shape[1] = m->ncols;
    v->nnz = m->nnz;
    memcpy(rp, m->rowptr, (size_t)(m->nrows + 1) * sizeof *rp);
    if (m->nnz) {
        memcpy(col, m->col, (size_t)m->nnz * sizeof *col);
        memcpy(val, m->val, vb);
    }
    p->ready[t->id] = 1;
    p->feed_version[t->id] = ++p->feeds;
    return LOOM_OK;
}

loom_status loom_program_fetch(loom_program *p, loom_tensor *t, loom_array *out)
{
    if (!p || !out)
        return LOOM_ERR_INVALID;
    p->err[0] = 0;
    if (!t || t->graph != p->g || t->id < 0 || t->id >= p->n)
        return loom__program_fail(p, LOOM_ERR_NOT_FOUND, "loom_program_fetch: not a tensor of this program");
    if (!p->ready[t->id])
        return loom__program_fail(p, LOOM_ERR_NOT_FOUND, "loom_program_fetch: '%s' has no value: not computed by the last run, or not kept (see loom_program_keep)",
                                  loom_tensor_name(t));
    if (p->holder[t->id]) { /* a parameter or state whose newest value is on the devices */
        loom_status s = loom__program_pull(p, t->id);
        if (s != LOOM_OK)
            return s;
    }
    const loom__value *v = &p->val[t->id];
    if (v->rowptr)
        return loom__program_fail(p, LOOM_ERR_UNSUPPORTED, "loom_program_fetch: '%s' is sparse", loom_tensor_name(t));
    *out = (loom_array){.dtype = v->dtype, .ndim = v->ndim, .data = v->data};
    memcpy(out->shape, v->shape, sizeof out->shape);
    return LOOM_OK;
}

loom_tensor *loom_program_grad(loom_program *p, loom_tensor *param)
{
    if (!p || !param || param->graph != p->g || param->id < 0 || param->id >= p->fwd_end)
        return NULL;
    return p->grad[param->id];
}
