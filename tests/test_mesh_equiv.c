/* The placement-equivalence property on 2-D placements (meshes): training on cpu:0-3 seen as 2x2,
 * 1x4 and 4x1, cpu:0-1 as 2x1 and 1x2, cpu:0-2 as 1x3 and 3x1, and cpu:0-5 as 2x3 and 3x2
 * (uneven splits of the batch of 7 and of the 9-node graph), and @0/cpu:0-3 (one rank of four
 * devices: the mesh [1, 4]), under data, model and hybrid
 * parallelism, with every hint on both levels and, for hybrid, the mesh's own (S(0), B) batches
 * and (B, S(i)) weights, gives the losses and parameters of one device on the SBP reference
 * executor; the actor runtime (boxing tasks in shared memory), fed directly and by a data source,
 * gives the reference executor's bits. */
#include "equiv.h"

#include "graphs/session/program.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const meshes[] = {"cpu:0-3[2,2]", "cpu:0-3[1,4]", "cpu:0-3[4,1]", "cpu:0-1[2,1]", "cpu:0-1[1,2]",
                                     "cpu:0-2[1,3]", "cpu:0-2[3,1]", "cpu:0-5[2,3]", "cpu:0-5[3,2]", "@0/cpu:0-3"};
enum { NMESH = sizeof meshes / sizeof meshes[0] };

/* Each mode, and hybrid once more with the mesh's own hints, on every mesh against one device. */
/* A new graph on the placement written p. */
static loom_graph *graph_on(const char *p)
{
    loom_graph *g = loom_graph_new();
    loom_error e = {0};
    loom_placement *pl = loom_placement_parse(p, &e);
    ck_assert_msg(pl != NULL, "%s", e.msg);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    return g;
}

static int check_seeds(lt_build_fn build, int nseeds, double tol)
{
    int cases = 0;
    for (uint64_t seed = 0; seed < (uint64_t)nseeds; seed++) {
        lt_result one, many, actors;
        lt_mesh_hybrid = 0;
        lt_train(build, seed, LT_DATA, &(lt_train_opts){.placement = "cpu:0", .executor = LOOM_EXEC_REFERENCE}, &one);
        for (int k = 0; k < NMESH; k++)
            for (int m = 0; m <= LT_MODE_COUNT; m++) {
                enum lt_mode mode = m == LT_MODE_COUNT ? LT_HYBRID : (enum lt_mode)m;
                char what[160];
                lt_mesh_hybrid = m == LT_MODE_COUNT;
                snprintf(what, sizeof what, "seed %llu %s%s on %s", (unsigned long long)seed, lt_mode_name[mode],
                         lt_mesh_hybrid ? " ((S(0), B) batches, (B, S(i)) weights)" : "", meshes[k]);
                lt_train(build, seed, mode, &(lt_train_opts){.placement = meshes[k], .executor = LOOM_EXEC_REFERENCE}, &many);
                lt_assert_results_close(&many, &one, tol, what);
                for (int src = 0; src < 2; src++) {
                    lt_train(build, seed, mode,
                             &(lt_train_opts){.placement = meshes[k], .executor = LOOM_EXEC_ACTORS, .with_source = src}, &actors);
                    ck_assert_msg(lt_results_same(&actors, &many),
                                  "%s%s: the actor runtime differs from the SBP reference executor (loss %.17g, %.17g)", what,
                                  src ? " with a data source" : "", actors.loss[LT_STEPS - 1], many.loss[LT_STEPS - 1]);
                }
                cases++;
            }
    }
    lt_mesh_hybrid = 0;
    return cases;
}

START_TEST(test_mlp_mesh) { ck_assert_int_eq(check_seeds(lt_model_mlp, 4, 1e-5), 4 * NMESH * 4); }
END_TEST

START_TEST(test_gcn_mesh) { ck_assert_int_eq(check_seeds(lt_model_gcn, 2, 1e-9), 2 * NMESH * 4); }
END_TEST

START_TEST(test_gcn_dropout_mesh) { ck_assert_int_eq(check_seeds(lt_model_gcn_dropout, 2, 1e-9), 2 * NMESH * 4); }
END_TEST

START_TEST(test_gat_mesh) { ck_assert_int_eq(check_seeds(lt_model_gat, 2, 1e-9), 2 * NMESH * 4); }
END_TEST

START_TEST(test_embedding_mesh) { ck_assert_int_eq(check_seeds(lt_model_embedding, 3, 1e-5), 3 * NMESH * 4); }
END_TEST

START_TEST(test_random_graphs_mesh) { ck_assert_int_eq(check_seeds(lt_model_random, 12, 1e-5), 12 * NMESH * 4); }
END_TEST

/* Random meshes: a random set of 2 to 8 of cpu:0-7 as a random rows x columns, with random hints of
 * two levels on the random graph's input and its split weight, against one device on both
 * executors. */
static loom_nd_sbp random_hint[2];
static int random_hinted[2];

static loom_tensor *random_mesh_model(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin)
{
    (void)m;
    int64_t rc[2];
    loom_tensor *x, *idx;
    loom_tensor *loss = lt_random_graph(g, seed, &x, &idx, rc);
    in[0] = x, in[1] = idx, *nin = 2;
    if (random_hinted[0])
        loom_tensor_set_nd_sbp(x, random_hint[0]);
    if (random_hinted[1])
        loom_tensor_set_nd_sbp(loom_graph_tensor(g, "wc"), random_hint[1]);
    return loss;
}

START_TEST(test_random_meshes)
{
    const loom_nd_sbp xs[] = {loom_nd_sbp_2d(loom_split(0), loom_broadcast()), loom_nd_sbp_2d(loom_broadcast(), loom_split(0)),
                              loom_nd_sbp_2d(loom_split(0), loom_split(0)), loom_nd_sbp_2d(loom_broadcast(), loom_broadcast())};
    const loom_nd_sbp ws[] = {loom_nd_sbp_2d(loom_broadcast(), loom_split(1)), loom_nd_sbp_2d(loom_split(1), loom_broadcast()),
                              loom_nd_sbp_2d(loom_split(1), loom_split(1)), loom_nd_sbp_2d(loom_broadcast(), loom_broadcast())};
    uint64_t rs = 2026;
    int cases = 0;
    for (int it = 0; it < 80; it++) {
        uint64_t r = lt_name_seed("mesh") ^ (rs += 0x9e3779b97f4a7c15u);
        r = (r ^ (r >> 31)) * 0xbf58476d1ce4e5b9u;
        /* a mesh of n devices: n in [2, 8], rows a divisor of n */
        int n = 2 + (int)(r % 7), divisors[8], nd = 0;
        for (int k = 1; k <= n; k++)
            if (n % k == 0)
                divisors[nd++] = k;
        int rows = divisors[(r >> 8) % (uint64_t)nd];
        int devs[8], used = 0;
        for (int dv = 0; dv < 8 && used < n; dv++) /* n of the 8, in order: keep dv when the rest still fit */
            if (8 - dv == n - used || ((r >> (16 + dv)) & 1))
                devs[used++] = dv;
        char placement[64];
        int o = snprintf(placement, sizeof placement, "cpu:");
        for (int k = 0; k < n; k++)
            o += snprintf(placement + o, sizeof placement - (size_t)o, "%s%d", k ? "," : "", devs[k]);
        snprintf(placement + o, sizeof placement - (size_t)o, "[%d,%d]", rows, n / rows);
        random_hinted[0] = (r >> 40) % 5 != 4, random_hinted[1] = (r >> 44) % 5 != 4;
        random_hint[0] = xs[(r >> 40) % 5 % 4];
        random_hint[1] = ws[(r >> 44) % 5 % 4];
        uint64_t seed = r >> 48;
        char what[256], hx[40], hw[40];
        loom_nd_sbp_str(&random_hint[0], hx, sizeof hx);
        loom_nd_sbp_str(&random_hint[1], hw, sizeof hw);
        snprintf(what, sizeof what, "random graph %llu on %s, x %s, wc %s", (unsigned long long)seed, placement,
                 random_hinted[0] ? hx : "inferred", random_hinted[1] ? hw : "inferred");
        lt_result one, ref, actors;
        int hinted[2] = {random_hinted[0], random_hinted[1]};
        random_hinted[0] = random_hinted[1] = 0; /* one device: no hints */
        lt_train(random_mesh_model, seed, LT_DATA, &(lt_train_opts){.placement = "cpu:0", .executor = LOOM_EXEC_REFERENCE}, &one);
        random_hinted[0] = hinted[0], random_hinted[1] = hinted[1];
        lt_train(random_mesh_model, seed, LT_HYBRID, &(lt_train_opts){.placement = placement, .executor = LOOM_EXEC_REFERENCE}, &ref);
        lt_assert_results_close(&ref, &one, 1e-5, what);
        lt_train(random_mesh_model, seed, LT_HYBRID, &(lt_train_opts){.placement = placement, .executor = LOOM_EXEC_ACTORS}, &actors);
        ck_assert_msg(lt_results_same(&actors, &ref), "%s: the actor runtime differs from the SBP reference executor", what);
        cases++;
    }
    ck_assert_int_eq(cases, 80);
}
END_TEST

/* Pipelines through meshes: two stages, either or both on a 2-D placement, the hidden values
 * moved between them (a move task reads every part of the source mesh) and their gradient back. */
START_TEST(test_pipelines_mesh)
{
    static const char *const stages[][2] = {
        {"cpu:0-3[2,2]", "cpu:4-5"}, {"cpu:0-1", "cpu:2-5[2,2]"}, {"cpu:0-3[2,2]", "cpu:2-5[1,4]"}, {"cpu:0-5[2,3]", "cpu:0"}};
    ck_assert_int_eq(lt_check_pipelines(stages, 4, 2), 2 * 4 * LT_MODE_COUNT);
}
END_TEST

/* The hybrid MLP written by hand: a batch of 16 rows of 8 features, (S(0), B): its rows split
 * over the mesh's rows, whole along each row; fc1's weight (B, S(1)): its columns split along each
 * row of the mesh (model parallel within, data parallel across). */
static loom_tensor *hybrid_mlp(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin)
{
    (void)seed;
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(16, 8)), *y = loom_input(g, "y", LOOM_I32, loom_shape(16));
    in[0] = x, in[1] = y, *nin = 2;
    loom_tensor *h = loom_tanh(g, loom_nn_linear(g, "fc1", x, 12, 1));
    if (m == LT_HYBRID) { /* the mesh's hints; none on one device */
        loom_tensor_set_nd_sbp(x, loom_nd_sbp_2d(loom_split(0), loom_broadcast()));
        loom_tensor_set_nd_sbp(loom_graph_tensor(g, "fc1.weight"), loom_nd_sbp_2d(loom_broadcast(), loom_split(1)));
    }
    return loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc2", h, 4, 1), y, NULL);
}

START_TEST(test_hybrid_mlp)
{
    /* against one device, on both executors, for SGD with momentum (seed 0) and Adam (seed 1) */
    for (uint64_t seed = 0; seed < 2; seed++) {
        lt_result one, ref, actors;
        lt_train(hybrid_mlp, seed, LT_DATA, &(lt_train_opts){.placement = "cpu:0", .executor = LOOM_EXEC_REFERENCE}, &one);
        lt_train(hybrid_mlp, seed, LT_HYBRID, &(lt_train_opts){.placement = "cpu:0-3[2,2]", .executor = LOOM_EXEC_REFERENCE}, &ref);
        lt_assert_results_close(&ref, &one, 1e-5, "the hybrid MLP on cpu:0-3[2,2]");
        lt_train(hybrid_mlp, seed, LT_HYBRID, &(lt_train_opts){.placement = "cpu:0-3[2,2]", .executor = LOOM_EXEC_ACTORS}, &actors);
        ck_assert_msg(lt_results_same(&actors, &ref), "the hybrid MLP: the actor runtime differs from the SBP reference executor");
    }

    /* its plan: fc1's product is (S(0), S(1)), and the weight's gradient, a partial sum over the
     * mesh's rows, is all-reduced within each column only: hierarchically, on level 0 */
    loom_graph *g = graph_on("cpu:0-3[2,2]");
    loom_tensor *in[2];
    int nin;
    loom_tensor *loss = hybrid_mlp(g, 0, LT_HYBRID, in, &nin);
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_sgd(0.1)}, &p) == LOOM_OK, "%s", loom_graph_error(g));
    const loom__sbp_plan *sp = &p->sbp;
    const loom_tensor *w = loom_graph_find(g, "fc1.weight"), *prod = NULL, *update = NULL;
    for (int id = 0; id < p->n; id++) {
        const loom_tensor *t = g->t[id];
        if (t->op == LOOM_OP_MATMUL && t->src[1] == w && !prod)
            prod = t;
        if (t->op == LOOM_OP_SGD_UPDATE && t->src[0] == w)
            update = t;
    }
    ck_assert(prod && update);
    loom_nd_sbp s = loom__sbp_plan_nd(sp, prod->id), grad = loom__sbp_plan_nd(sp, update->src[1]->id);
    char b[80], b2[80];
    loom_nd_sbp_str(&s, b, sizeof b);
    loom_nd_sbp_str(&grad, b2, sizeof b2);
    ck_assert_str_eq(b, "(S(0), S(1))");
    ck_assert_str_eq(b2, "(P, S(1))");
    loom__box_route r, all[LOOM__BOX_ROUTES];
    loom__sbp_plan_box(sp, update, 1, &p->cost, &r);
    const loom__cost_dev *d = &p->cost.dev[LOOM_DEVICE_CPU];
    const double bytes = loom__tensor_bytes(w); /* 8 x 12 f32 */
    ck_assert_int_eq(r.flat, 0);
    ck_assert_int_eq(r.nsteps, 1);
    ck_assert_int_eq(r.step[0].level, 0);
    ck_assert_int_eq(r.step[0].kind, LOOM__BOX_ALL_REDUCE);
    ck_assert_int_eq(r.step[0].n, 2);
    /* each device reads its column's two addends of its half and writes its half */
    ck_assert_double_eq(r.bytes, loom__box_bytes(LOOM__BOX_ALL_REDUCE, bytes / 2, 2, d));
    ck_assert_double_eq(r.bytes, 3 * bytes / 2);
    /* the route through B on level 1 (gather each row's addend whole, all-reduce, slice again)
     * moves more, and is the only other way */
    loom_nd_sbp want = loom_nd_sbp_2d(loom_broadcast(), loom_split(1));
    int nr = loom__box_routes(&grad, &want, sp->mesh[w->id], bytes, 0, 0, d, all);
    double through_b = 0;
    for (int k = 0; k < nr; k++)
        if (all[k].nsteps == 3)
            through_b = all[k].bytes;
    ck_assert_double_gt(through_b, r.bytes);
    /* and where the flat boxing moves less, it is the one taken: (P, P) -> (B, B) sums the four
     * addends at once (5 T each), where a row's all-reduce, then a column's, moves 3 T + 3 T */
    loom_nd_sbp pp = loom_nd_sbp_2d(loom_partial_sum(), loom_partial_sum()), bb = loom_nd_sbp_2d(loom_broadcast(), loom_broadcast());
    loom__box_route flat;
    loom__box_route_plan(&pp, &bb, sp->mesh[w->id], bytes, 0, 0, d, &flat);
    ck_assert_int_eq(flat.flat, 1);
    ck_assert_double_eq(flat.bytes, 5 * bytes);
    nr = loom__box_routes(&pp, &bb, sp->mesh[w->id], bytes, 0, 0, d, all);
    for (int k = 0; k < nr; k++)
        if (!all[k].flat)
            ck_assert_double_ge(all[k].bytes, 6 * bytes);
    /* loom plan says so */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert(loom_program_print_plan(p, f) == LOOM_OK);
    fclose(f);
    char line[200];
    snprintf(line, sizeof line, "(P, S(1)) -> (B, S(1)) of 'matmul' (tensor %d, 384 bytes) for sgd_update (tensor %d): "
                                "all-reduce P -> B on level 0 (groups of 2); 576 bytes read and written per device",
             update->src[1]->id, update->id);
    ck_assert_msg(strstr(text, line), "the plan lacks \"%s\":\n%s", line, text);
    ck_assert_ptr_nonnull(strstr(text, "((S(0), B), (B, S(1))) -> (S(0), S(1))"));
    free(text);
    /* and so does its Graphviz: each device's instance with its two-level SBP, the boxing between */
    f = open_memstream(&text, &len);
    ck_assert(loom_program_write_dot(p, f) == LOOM_OK);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "matmul\\n(S(0), S(1))"));
    ck_assert_ptr_nonnull(strstr(text, "label=\"hierarchical boxing\""));
    free(text);
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

/* A graph batch fed by parts onto a mesh: its parts in device order (row-major) split both
 * levels, (S(0), S(0)), and may be uneven; a boxing to (B, B) joins them in that order. An input
 * laid otherwise, (S(0), B) here, is refused when fed by parts, and so is a boxing to such a
 * layout (nothing carries the parts' sizes through its nested split). */
static loom_tensor *parts_x;
static loom_status feed_by_parts(void *ctx, int64_t step, loom_feeder *f, int *end, char *msg, size_t len)
{
    (void)ctx, (void)step, (void)end, (void)msg, (void)len;
    static float v[10 * 2];
    static const int64_t rows[4] = {3, 1, 4, 2}; /* the nested even split of 10 would be 3, 2, 3, 2 */
    loom_array parts[4];
    for (int d = 0, at = 0; d < 4; at += (int)rows[d], d++)
        parts[d] = (loom_array){.dtype = LOOM_F32, .ndim = 2, .shape = {rows[d], 2}, .data = v + 2 * at};
    for (int i = 0; i < 10 * 2; i++)
        v[i] = (float)(i % 7) * 0.25f - 0.5f;
    return loom_feeder_parts(f, parts_x, 4, parts);
}

/* tanh(x) of x fed by parts, kept from the forward pass of sum(tanh(x)), with x and tanh(x)'s
 * SBPs on the mesh (n 0: the default); or the run's error. */
static loom_status mesh_parts_value(int nx, loom_nd_sbp sx, int nh, loom_nd_sbp sh, float out[10 * 2], const char **why)
{
    static loom_graph *g;
    static loom_program *p;
    loom_program_free(p), loom_graph_free(g);
    p = NULL;
    g = graph_on("cpu:0-3[2,2]");
    parts_x = loom_input(g, "x", LOOM_F32, loom_shape(loom_dim_dynamic(g, "N", 16), 2));
    if (nx)
        loom_tensor_set_nd_sbp(parts_x, sx);
    loom_tensor *h = loom_tanh(g, parts_x);
    if (nh)
        loom_tensor_set_nd_sbp(h, sh);
    ck_assert_msg(loom_compile(g, loom_sum(g, h, 3, 0), NULL, &p) == LOOM_OK, "%s", loom_graph_error(g));
    ck_assert(loom_program_keep(p, h) == LOOM_OK);
    loom_program_set_source(p, feed_by_parts, NULL);
    loom_status st = loom_program_run_steps(p, LOOM_RUN_FORWARD, 1);
    *why = loom_program_error(p);
    loom_array a;
    if (st == LOOM_OK && (st = loom_program_fetch(p, h, &a)) == LOOM_OK) {
        ck_assert_int_eq(a.shape[0], 10);
        memcpy(out, a.data, 10 * 2 * sizeof(float));
    }
    return st;
}

START_TEST(test_mesh_fed_by_parts)
{
    const loom_nd_sbp split_b = loom_nd_sbp_2d(loom_split(0), loom_broadcast());
    float y[10 * 2];
    const char *why;
    for (int whole = 0; whole < 2; whole++) {
        ck_assert_msg(mesh_parts_value(0, split_b, whole, loom_nd_sbp_2d(loom_broadcast(), loom_broadcast()), y, &why) == LOOM_OK,
                      "%s", why);
        for (int i = 0; i < 10 * 2; i++)
            ck_assert_msg(fabsf(y[i] - tanhf((float)(i % 7) * 0.25f - 0.5f)) < 1e-6f, "tanh(x)%s, element %d: %g",
                          whole ? " (B, B)" : "", i, y[i]);
    }
    ck_assert_int_eq(mesh_parts_value(1, split_b, 0, split_b, y, &why), LOOM_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(why, "loom_feeder_parts: input 'x' is (S(0), B) on its devices; feeding by parts needs it split (S(0), S(0)) "
                              "along a dynamic dim"),
                  "%s", why);
    ck_assert_int_eq(mesh_parts_value(0, split_b, 1, split_b, y, &why), LOOM_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(why, "'x' belongs to a graph batch fed by parts, whose uneven parts a boxing on a 2-D placement carries only "
                              "between (S(0), S(0)), (B, B) and (P, P), not (S(0), S(0)) -> (S(0), B)"),
                  "%s", why);
    mesh_parts_value(0, split_b, 0, split_b, y, &why); /* frees the last */
}
END_TEST

/* A batch of a dynamic size, fed whole, splits evenly on each level: the forward value on a mesh
 * (both executors) is one device's. */
static double dynamic_batch_mean(const char *placement, loom_executor ex)
{
    loom_graph *g = graph_on(placement);
    loom_tensor *x = loom_input(g, "x", LOOM_F64, loom_shape(loom_dim_dynamic(g, "N", 16), 3));
    loom_tensor *out = loom_mean(g, loom_tanh(g, loom_nn_linear(g, "fc", x, 5, 1)), 3, 0);
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(g, out, &(loom_train_opts){.executor = ex}, &p) == LOOM_OK, "%s", loom_graph_error(g));
    double v[7 * 3];
    lt_fill_normal(v, 7 * 3, 5);
    loom_array a = {.dtype = LOOM_F64, .ndim = 2, .shape = {7, 3}, .data = v}, r;
    ck_assert_msg(loom_program_feed(p, x, &a) == LOOM_OK && loom_program_run(p, LOOM_RUN_FORWARD) == LOOM_OK &&
                      loom_program_fetch(p, out, &r) == LOOM_OK,
                  "%s", loom_program_error(p));
    double m = ((double *)r.data)[0];
    loom_program_free(p);
    loom_graph_free(g);
    return m;
}

START_TEST(test_mesh_dynamic_batch)
{
    double one = dynamic_batch_mean("cpu:0", LOOM_EXEC_REFERENCE);
    static const char *const where[] = {"cpu:0-3[2,2]", "cpu:0-5[3,2]", "cpu:0-2[1,3]"};
    for (int k = 0; k < 3; k++) {
        double ref = dynamic_batch_mean(where[k], LOOM_EXEC_REFERENCE), act = dynamic_batch_mean(where[k], LOOM_EXEC_ACTORS);
        ck_assert_msg(fabs(ref - one) <= 1e-12 * fmax(1, fabs(one)), "%s: %.17g, one device %.17g", where[k], ref, one);
        ck_assert_msg(ref == act, "%s: the actor runtime gives %.17g, the reference executor %.17g", where[k], act, ref);
    }
}
END_TEST

/* A hint whose levels are not its placement's, or that does not fit the tensor, is the graph's
 * error, which loom_compile returns. */
static void check_bad_hint(const char *placement, loom_nd_sbp hint, int i32, const char *want)
{
    loom_graph *g = graph_on(placement);
    loom_tensor *x = loom_input(g, "x", i32 ? LOOM_I32 : LOOM_F32, loom_shape(8, 4)), *y = loom_input(g, "y", LOOM_F32, loom_shape(8));
    loom_tensor_set_nd_sbp(x, hint);
    ck_assert_int_eq(loom_graph_status(g), LOOM_ERR_INVALID);
    ck_assert_msg(!strcmp(loom_graph_error(g), want), "got '%s', expected '%s'", loom_graph_error(g), want);
    loom_program *prog = NULL;
    ck_assert_int_eq(loom_compile(g, loom_sum(g, y, 1, 0), NULL, &prog), LOOM_ERR_INVALID);
    ck_assert_ptr_null(prog);
    loom_graph_free(g);
}

START_TEST(test_mesh_bad_hints)
{
    check_bad_hint("cpu:0-3[2,2]", loom_nd_sbp_1d(loom_split(0)), 0,
                   "loom_tensor_set_nd_sbp 'x': SBP S(0) has 1 level but placement 'cpu:0-3[2,2]' has a 2-D hierarchy [2, 2]");
    check_bad_hint("cpu:0-3", loom_nd_sbp_2d(loom_split(0), loom_broadcast()), 0,
                   "loom_tensor_set_nd_sbp 'x': SBP (S(0), B) has 2 levels but placement 'cpu:0-3' has a 1-D hierarchy [4]");
    check_bad_hint("cpu:0-3[2,2]", loom_nd_sbp_2d(loom_broadcast(), loom_split(2)), 0,
                   "loom_tensor_set_nd_sbp 'x': level 1 of (B, S(2)) on 'cpu:0-3[2,2]': S(2) splits axis 2 of a 2-D tensor");
    check_bad_hint("cpu:0-3[2,2]", loom_nd_sbp_2d(loom_partial_sum(), loom_broadcast()), 1,
                   "loom_tensor_set_nd_sbp 'x': a partial sum (P) needs a dense f32 or f64 tensor; it is i32");
    check_bad_hint("cpu:0", loom_nd_sbp_2d(loom_broadcast(), loom_broadcast()), 0,
                   "loom_tensor_set_nd_sbp 'x': SBP (B, B) has 2 levels but placement 'cpu:0' has a 1-D hierarchy [1]");
}
END_TEST

/* A hint no pair of signatures meets: the op, the tensor, its sources' SBPs and each level's
 * candidates are named. */
START_TEST(test_mesh_no_signature)
{
    loom_graph *g = graph_on("cpu:0-3[2,2]");
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(8, 4));
    loom_tensor_set_nd_sbp(x, loom_nd_sbp_2d(loom_split(0), loom_broadcast()));
    loom_tensor *y = loom_relu(g, x);
    loom_tensor_set_nd_sbp(y, loom_nd_sbp_2d(loom_partial_sum(), loom_broadcast()));
    loom_program *p = NULL;
    ck_assert_int_eq(loom_compile(g, loom_sum(g, y, 3, 0), NULL, &p), LOOM_ERR_INVALID);
    ck_assert_msg(strstr(loom_graph_error(g), "relu 'relu': no signature gives the requested (P, B) (its sources are (S(0), B)); "
                                              "valid on each level: (S(0)) -> S(0), (S(1)) -> S(1), (B) -> B"),
                  "%s", loom_graph_error(g));
    loom_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mesh_equiv");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_mlp_mesh);
    tcase_add_test(tc, test_gcn_mesh);
    tcase_add_test(tc, test_gcn_dropout_mesh);
    tcase_add_test(tc, test_gat_mesh);
    tcase_add_test(tc, test_embedding_mesh);
    tcase_add_test(tc, test_random_graphs_mesh);
    tcase_add_test(tc, test_random_meshes);
    tcase_add_test(tc, test_pipelines_mesh);
    tcase_add_test(tc, test_hybrid_mlp);
    tcase_add_test(tc, test_mesh_fed_by_parts);
    tcase_add_test(tc, test_mesh_dynamic_batch);
    tcase_add_test(tc, test_mesh_bad_hints);
    tcase_add_test(tc, test_mesh_no_signature);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
