/* The CPU all-reduce over ranks as a ring (ctest label mpi; run by mpirun -np 2, or -np 4): a
 * reduce-scatter, each device summing its range of every part (of which only that range crosses
 * ranks), then an all-gather of the ranges (graphs/plan/plan.c, loom__all_reduce_ring). A
 * data-parallel MLP on one device per rank (@0-(n-1)/cpu:0) and on two (@0-(n-1)/cpu:0-1) is
 * compiled with a cost model whose boxing latency makes every all-reduce one phase, and with one
 * that makes it a ring wherever the model prefers one (everywhere, with that latency); the plan
 * must hold the ring's reduce-scatter where expected, each device's range 1/n of the gradient
 * (registers rounded up to 64 bytes), and the parameters after three steps must be the same bits
 * both ways, and those of one device within rounding. The bytes a rank sends in a step of one
 * all-reduce: a ring's 2 (n-1)/n of a part against one phase's n - 1 parts. */
#include "harness.h"

#include "graphs/session/program.h"
#include "runtime/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CPU_FIGURES(lat)                                                                                             \
    "{\"flops\": 1e11, \"mem_bw\": 1e10, \"op_latency\": 1e-5, \"box_latency\": " lat ", \"box_bw\": 1e10, "     \
    "\"step_latency\": 5e-5, \"shared\": true}"
#define FILE_OF(cpu) "{\"format\": \"loom-cost-model\", \"version\": 1, \"devices\": {\"cpu\": " cpu "}}"

enum { B = 64, F = 48, H = 32, C = 10, NW = F * H + H * C };

static char dir[64], one_phase[128], ring[128];

/* Writes text to dir/name (each rank its own copy), the path into path: 0, or -1. */
static int put(const char *name, const char *text, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

/* The MLP (F-H-C, batch B, SGD) on `where` (NULL: one device) compiled with the cost model at cost. */
static loom_program *mlp(loom_graph **gp, const char *where, const char *cost)
{
    loom_graph *g = *gp = lt_graph_on(where, 11);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(B, F));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(B));
    loom_tensor *h = loom_relu(g, loom_nn_linear(g, "fc1", x, H, 1));
    loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc2", h, C, 1), y, NULL);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_sgd(0.1);
    o.cost_model = cost;
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(g, loss, &o, &p) == LOOM_OK, "rank %d: %s", loom_dist_rank(), loom_graph_error(g));
    return p;
}

/* 1 when every level of register rg's part that has more than one device is `kind`. */
static int every_level(const loom__regst *rg, loom_sbp_kind kind)
{
    if (rg->mesh[0] == 0)
        return rg->sbp.kind == kind;
    return (rg->mesh[0] == 1 || rg->sbp.kind == kind) && (rg->mesh[1] == 1 || rg->sbp1.kind == kind);
}

/* The step's plan of p on n devices: its all-reduces a ring can make, counted by their boxing
 * tasks: done so (the ring's reduce-scatters, from P on every level of the ranks' mesh to a range
 * of an axis of the n devices, 1-D, each range 1/n of the part) into *rings, in one phase (P on
 * every level to B on every level) into *whole. */
static void all_reduces(loom_program *p, int n, int *rings, int *whole)
{
    loom_memory m;
    ck_assert_msg(loom_program_memory(p, LOOM_RUN_STEP, 0, &m) == LOOM_OK, "%s", loom_program_error(p));
    const loom__plan *pl = loom__program_plan_of(p, LOOM_RUN_STEP);
    *rings = *whole = 0;
    for (int k = 0; k < pl->ntasks; k++) {
        const loom__task *t = &pl->task[k];
        if (t->kind != LOOM__TASK_BOXING || pl->regst[t->in[0]].mesh[0] == 0 || !every_level(&pl->regst[t->in[0]], LOOM_SBP_PARTIAL_SUM))
            continue;
        const loom__regst *in = &pl->regst[t->in[0]], *out = &pl->regst[t->out[0]];
        *whole += every_level(out, LOOM_SBP_BROADCAST);
        if (out->mesh[0] != 0 || out->sbp.kind != LOOM_SBP_SPLIT)
            continue;
        ck_assert_int_eq(t->n_in, n); /* every part, by device */
        ck_assert_int_eq(out->nparts, n);
        ck_assert_msg(out->bytes <= in->bytes / (size_t)n + 64, "a range of %zu bytes of a part of %zu on %d devices", out->bytes,
                      in->bytes, n);
        ++*rings;
    }
}

/* 1 when the two plans give every tensor the same SBPs (the cost models may make inference choose
 * others): then their results must be the same bits. */
static int same_sbps(loom_program *a, loom_program *b)
{
    const loom__plan *x = loom__program_plan_of(a, LOOM_RUN_STEP), *y = loom__program_plan_of(b, LOOM_RUN_STEP);
    for (int id = 0; id < x->g->n; id++)
        if (!loom_sbp_equal(x->sbp[id], y->sbp[id]) || (x->sbp1 && !loom_sbp_equal(x->sbp1[id], y->sbp1[id])))
            return 0;
    return 1;
}

/* Three steps on fixed data; the weights after them into w (fc1's, then fc2's). */
static void train(loom_program *p, loom_graph *g, float *w)
{
    float x[B * F];
    int32_t y[B];
    for (int i = 0; i < B * F; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    for (int i = 0; i < B; i++)
        y[i] = (i * 7) % C;
    ck_assert(loom_program_feed(p, loom_graph_find(g, "x"), &(loom_array){.dtype = LOOM_F32, .ndim = 2, .shape = {B, F}, .data = x}) ==
              LOOM_OK);
    ck_assert(loom_program_feed(p, loom_graph_find(g, "y"), &(loom_array){.dtype = LOOM_I32, .ndim = 1, .shape = {B}, .data = y}) ==
              LOOM_OK);
    ck_assert_msg(loom_program_run_steps(p, LOOM_RUN_STEP, 3) == LOOM_OK, "rank %d: %s", loom_dist_rank(), loom_program_error(p));
    loom_array a = LOOM_ARRAY_INIT, b = LOOM_ARRAY_INIT;
    ck_assert(loom_program_fetch(p, loom_graph_find(g, "fc1.weight"), &a) == LOOM_OK);
    ck_assert(loom_program_fetch(p, loom_graph_find(g, "fc2.weight"), &b) == LOOM_OK);
    memcpy(w, a.data, F * H * sizeof *w);
    memcpy(w + F * H, b.data, H * C * sizeof *w);
}

/* On `devices` of every rank: the plan under each model, and the parameters. */
static void check_ring(const char *devices, int per_rank)
{
    char where[64];
    const int ranks = loom_dist_size(), n = ranks * per_rank;
    snprintf(where, sizeof where, "@0-%d/%s", ranks - 1, devices);
    float w1[NW], wo[NW], wr[NW];
    loom_graph *g1, *go, *gr;
    loom_program *p1 = mlp(&g1, NULL, NULL), *po = mlp(&go, where, one_phase), *pr = mlp(&gr, where, ring);
    int rings, whole;
    all_reduces(po, n, &rings, &whole);
    ck_assert_int_eq(rings, 0);
    ck_assert_msg(whole >= n, "rank %d: no all-reduce of a gradient on %s", loom_dist_rank(), where);
    all_reduces(pr, n, &rings, &whole);
    ck_assert_msg(whole == 0, "rank %d: %d boxing tasks of all-reduces in one phase on %s", loom_dist_rank(), whole, where);
    ck_assert_msg(rings >= n, "rank %d: %d reduce-scatters of a ring on %s", loom_dist_rank(), rings, where);
    train(p1, g1, w1);
    train(po, go, wo);
    train(pr, gr, wr);
    /* with two devices a rank, the cheaper boxings may make inference split a weight's gradient
     * within each rank, (P, S(0)) (4 ranks): then the two plans differ by more than the ring */
    int same = same_sbps(po, pr);
    ck_assert_msg(same || per_rank > 1, "rank %d: the cost models gave %s different SBPs", loom_dist_rank(), where);
    if (same)
        ck_assert_msg(!memcmp(wo, wr, sizeof wo), "rank %d: on %s the ring and one phase give different parameters", loom_dist_rank(),
                      where);
    double a[NW], b[NW];
    for (int i = 0; i < NW; i++)
        a[i] = wr[i], b[i] = w1[i];
    char what[128];
    snprintf(what, sizeof what, "rank %d: the MLP's weights on %s with the ring against one device", loom_dist_rank(), where);
    lt_assert_close(a, b, NW, 1e-5, what);
    loom_program_free(p1);
    loom_program_free(po);
    loom_program_free(pr);
    loom_graph_free(g1);
    loom_graph_free(go);
    loom_graph_free(gr);
}

/* Bytes each rank sends a step to the others when z = x, a partial sum on one device per rank,
 * is all-reduced (the bench's program, bench/mpi.c: z boxed to B for a relu, of which one element
 * is the loss), compiled with the cost model at cost. */
static double bytes_a_step(const char *cost, int64_t n)
{
    char where[64];
    snprintf(where, sizeof where, "@0-%d/cpu:0", loom_dist_size() - 1);
    loom_graph *g = lt_graph_on(where, 3);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(n));
    loom_tensor_set_sbp(x, loom_partial_sum());
    loom_tensor *z = loom_scale(g, x, 1.0); /* on the devices: fed x is every rank's own */
    loom_tensor_set_sbp(z, loom_partial_sum());
    loom_tensor *y = loom_relu(g, z);
    loom_tensor_set_sbp(y, loom_broadcast());
    loom_tensor *first = loom_slice(g, y, 0, 0, 1);
    loom_tensor_set_sbp(first, loom_broadcast());
    loom_tensor *loss = loom_sum(g, first, ~0u, 0);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.cost_model = cost;
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(g, loss, &o, &p) == LOOM_OK, "rank %d: %s", loom_dist_rank(), loom_graph_error(g));
    float *v = malloc((size_t)n * sizeof *v);
    ck_assert(v != NULL);
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)(i % 5);
    ck_assert(loom_program_feed(p, x, &(loom_array){.dtype = LOOM_F32, .ndim = 1, .shape = {n}, .data = v}) == LOOM_OK);
    ck_assert_msg(loom_program_run_steps(p, LOOM_RUN_EVAL, 1) == LOOM_OK, "%s", loom_program_error(p));
    int64_t before = loom__net_data_sent();
    ck_assert_msg(loom_program_run_steps(p, LOOM_RUN_EVAL, 4) == LOOM_OK, "%s", loom_program_error(p));
    double per_step = (double)(loom__net_data_sent() - before) / 4;
    loom_program_free(p);
    loom_graph_free(g);
    free(v);
    return per_step;
}

/* One phase sends a rank's whole part to every other rank; the ring, 2 (n-1)/n of it (a range
 * of its part to each other rank, then its range of the sum to each). The rest of the step (the
 * loss) sends a few bytes. */
START_TEST(test_ring_bytes)
{
    enum { N = 1 << 14 };
    const int n = loom_dist_size();
    const double part = N * sizeof(float), one = bytes_a_step(one_phase, N), two = bytes_a_step(ring, N);
    ck_assert_msg(one >= (n - 1) * part && one < (n - 1) * part + 4096, "rank %d: one phase sent %.0f bytes a step, not about %.0f",
                  loom_dist_rank(), one, (n - 1) * part);
    const double want = 2.0 * (n - 1) / n * part;
    ck_assert_msg(two >= want && two < want + 4096, "rank %d: the ring sent %.0f bytes a step, not about %.0f", loom_dist_rank(), two,
                  want);
}
END_TEST

START_TEST(test_ring_one_device_a_rank) { check_ring("cpu:0", 1); }
END_TEST

START_TEST(test_ring_two_devices_a_rank) { check_ring("cpu:0-1", 2); }
END_TEST

int main(void)
{
    char placement[64];
    if (lt_mpi_init("mpi_ring", placement, sizeof placement, "cpu:0"))
        return 1;
    snprintf(dir, sizeof dir, "/tmp/loom_ring_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mpi_ring: mkdtemp");
        return 1;
    }
    /* a box latency of 100 us makes every all-reduce of this MLP's gradients (6 KB at most) one
     * phase, of a picosecond a ring wherever the model prefers one (loom__all_reduce_ring) */
    if (put("one.json", FILE_OF(CPU_FIGURES("1e-4")), one_phase, sizeof one_phase) ||
        put("ring.json", FILE_OF(CPU_FIGURES("1e-12")), ring, sizeof ring)) {
        perror("mpi_ring: writing the cost models");
        return 1;
    }
    Suite *s = suite_create("mpi_ring");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_ring_one_device_a_rank);
    tcase_add_test(tc, test_ring_two_devices_a_rank);
    tcase_add_test(tc, test_ring_bytes);
    suite_add_tcase(s, tc);
    int rc = lt_run_mpi_suite(s);
    unlink(one_phase);
    unlink(ring);
    rmdir(dir);
    return rc;
}
