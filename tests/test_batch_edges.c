/* Graph batches at their edges: inputs fed whole beside inputs fed by parts, bounds changed under
 * fed data, part bounds below an even split, empty shares, index inputs over a static dim or over a
 * dim no part gives, uneven parts through every boxing, dropout masks of split rows; each checked
 * against one device fed the same logical batch. */
#include "batch_cases.h"
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAXIN 8
#define MAXDEV 4

/* One step's data: each input either by parts (one array per device) or whole. */
typedef struct feed {
    int nin, ndev;
    loom_tensor *t[MAXIN];
    int by_parts[MAXIN];
    loom_array part[MAXIN][MAXDEV];
    loom_array whole[MAXIN];
    int64_t steps, next;
} feed;

static loom_status feed_source(void *ctx, int64_t step, loom_feeder *f, int *end, char *msg, size_t msglen)
{
    (void)step;
    (void)msg;
    (void)msglen;
    feed *fd = ctx;
    if (fd->next >= fd->steps) {
        *end = 1;
        return LOOM_OK;
    }
    fd->next++;
    for (int k = 0; k < fd->nin; k++) {
        loom_status s = fd->by_parts[k] ? loom_feeder_parts(f, fd->t[k], fd->ndev, fd->part[k]) : loom_feeder_dense(f, fd->t[k], &fd->whole[k]);
        if (s != LOOM_OK)
            return s;
    }
    return LOOM_OK;
}

static loom_graph *graph_on(const char *placement)
{
    loom_graph *g = loom_graph_new();
    loom_graph_set_seed(g, 3);
    if (placement) {
        loom_error err = LOOM_ERROR_INIT;
        loom_placement *pl = loom_placement_parse(placement, &err);
        ck_assert_msg(pl != NULL, "%s", err.msg);
        loom_graph_set_placement(g, pl);
        loom_placement_free(pl);
    }
    return g;
}

static loom_array f32(int64_t rows, int64_t cols, const float *data)
{
    return (loom_array){.dtype = LOOM_F32, .ndim = cols ? 2 : 1, .shape = {rows, cols}, .data = (void *)data};
}

static loom_array i32(int64_t rows, const int32_t *data)
{
    return (loom_array){.dtype = LOOM_I32, .ndim = 1, .shape = {rows}, .data = (void *)data};
}

/* Fetches t as doubles (malloc'd), checking its element count. */
static double *fetch(loom_program *p, loom_tensor *t, int64_t n)
{
    loom_array a;
    ck_assert_msg(loom_program_fetch(p, t, &a) == LOOM_OK, "%s", loom_program_error(p));
    int64_t m = 1;
    for (int i = 0; i < a.ndim; i++)
        m *= a.shape[i];
    ck_assert_int_eq(m, n);
    return lt_to_double(&a);
}

/* ---- bounds under data fed before they changed ------------------------------------------------ */

/* Data fed with N = 16, then the bound lowered to 4: the registers are planned for 4 rows, so the
 * next run must refuse the data (naming the input and the bound), not write 16 rows into them. */
static void stale_feed(const char *placement)
{
    loom_graph *g = graph_on(placement);
    loom_dim N = loom_dim_dynamic(g, "N", 16);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(N, 4));
    loom_tensor *y = loom_scale(g, x, 2.0);
    loom_program *p;
    ck_assert_msg(loom_compile(g, NULL, NULL, &p) == LOOM_OK, "%s", loom_graph_error(g));
    ck_assert(loom_program_keep(p, y) == LOOM_OK);
    float data[16 * 4];
    for (int i = 0; i < 64; i++)
        data[i] = (float)i;
    loom_array a = f32(16, 4, data);
    ck_assert(loom_program_feed(p, x, &a) == LOOM_OK);
    ck_assert_msg(loom_program_run(p, LOOM_RUN_EVAL) == LOOM_OK, "%s", loom_program_error(p));
    loom_bound b = {N, 4, 0};
    ck_assert_msg(loom_program_set_bounds(p, &b, 1) == LOOM_OK, "%s", loom_program_error(p));
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_EVAL), LOOM_ERR_SHAPE);
    ck_assert_msg(strstr(loom_program_error(p), "'x'") && strstr(loom_program_error(p), "bound of 4"), "%s",
                  loom_program_error(p));
    /* fed again within the new bound, it runs */
    a.shape[0] = 4;
    ck_assert(loom_program_feed(p, x, &a) == LOOM_OK);
    ck_assert_msg(loom_program_run(p, LOOM_RUN_EVAL) == LOOM_OK, "%s", loom_program_error(p));
    double *v = fetch(p, y, 16);
    for (int i = 0; i < 16; i++)
        ck_assert_double_eq(v[i], 2.0 * i);
    free(v);
    loom_program_free(p);
    loom_graph_free(g);
}

START_TEST(test_bounds_lowered_under_fed_data_one_device) { stale_feed(NULL); }
END_TEST

START_TEST(test_bounds_lowered_under_fed_data_two_devices) { stale_feed("cpu:0-1"); }
END_TEST

/* A part bound below an even share of the bound, and an input fed whole: its even parts do not fit
 * the registers planned for the part bound, so the run must refuse it, not overrun them. */
START_TEST(test_part_bound_below_even_split_fed_whole)
{
    loom_graph *g = graph_on("cpu:0-1");
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    loom_dim_set_part_bound(g, N, 2);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(N, 4));
    loom_tensor *y = loom_scale(g, loom_relu(g, x), 3.0);
    loom_tensor_set_sbp(x, loom_split(0));
    loom_program *p;
    ck_assert_msg(loom_compile(g, NULL, NULL, &p) == LOOM_OK, "%s", loom_graph_error(g));
    ck_assert(loom_program_keep(p, y) == LOOM_OK);
    float data[8 * 4];
    for (int i = 0; i < 32; i++)
        data[i] = (float)i;
    loom_array a = f32(8, 4, data);
    ck_assert(loom_program_feed(p, x, &a) == LOOM_OK);
    loom_status s = loom_program_run(p, LOOM_RUN_EVAL);
    if (s == LOOM_OK) { /* then it must at least be right */
        double *v = fetch(p, y, 32);
        for (int i = 0; i < 32; i++)
            ck_assert_msg(v[i] == 3.0 * i, "element %d is %g, want %g", i, v[i], 3.0 * i);
        free(v);
    } else {
        ck_assert_int_eq(s, LOOM_ERR_SHAPE);
        ck_assert_msg(strstr(loom_program_error(p), "part bound of 2"), "%s", loom_program_error(p));
    }
    /* with a source, the same */
    feed fd = {.nin = 1, .ndev = 2, .t = {x}, .whole = {a}, .steps = 1};
    loom_program_set_source(p, feed_source, &fd);
    s = loom_program_run_steps(p, LOOM_RUN_EVAL, 1);
    ck_assert_int_eq(s, LOOM_ERR_SHAPE);
    ck_assert_msg(strstr(loom_program_error(p), "part bound of 2"), "%s", loom_program_error(p));
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

/* ---- the logical batch on several devices against one ----------------------------------------- */

typedef struct model {
    loom_graph *g;
    loom_program *p;
    loom_tensor *in[MAXIN];
    loom_tensor *out;
} model;

typedef void (*build_fn)(model *m, int several);

/* Builds the model on placement (NULL: one device), runs one step of mode fed by fd (whose
 * tensors are set to the model's inputs in order), and returns out's value. */
static double *run_model(build_fn build, const char *placement, feed fd, loom_run_mode mode, int64_t n, loom_status *st,
                         char *msg, size_t msglen)
{
    model m = {0};
    m.g = graph_on(placement);
    build(&m, placement != NULL);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    ck_assert_msg(loom_compile(m.g, NULL, &o, &m.p) == LOOM_OK, "%s", loom_graph_error(m.g));
    ck_assert(loom_program_keep(m.p, m.out) == LOOM_OK);
    for (int k = 0; k < fd.nin; k++)
        fd.t[k] = m.in[k];
    fd.steps = 1;
    loom_program_set_source(m.p, feed_source, &fd);
    *st = loom_program_run_steps(m.p, mode, 1);
    double *v = NULL;
    if (*st == LOOM_OK)
        v = fetch(m.p, m.out, n);
    else if (msg)
        snprintf(msg, msglen, "%s", loom_program_error(m.p));
    loom_program_free(m.p);
    loom_graph_free(m.g);
    return v;
}

/* The parts of fd joined into one whole array per input fed by parts (data in buf, which must
 * hold them), for one device. */
static feed joined(const feed *fd, char *buf)
{
    feed j = *fd;
    j.ndev = 1;
    for (int k = 0; k < fd->nin; k++) {
        if (!fd->by_parts[k])
            continue;
        j.by_parts[k] = 0;
        loom_array w = fd->part[k][0];
        w.shape[0] = 0;
        w.data = buf;
        for (int d = 0; d < fd->ndev; d++) {
            const loom_array *a = &fd->part[k][d];
            size_t row = 4;
            for (int i = 1; i < a->ndim; i++)
                row *= (size_t)a->shape[i];
            memcpy(buf, a->data, (size_t)a->shape[0] * row);
            buf += (size_t)a->shape[0] * row;
            w.shape[0] += a->shape[0];
        }
        j.whole[k] = w;
    }
    return j;
}

/* Two shares of node features: device 0 holds 5 nodes, device 1 one. */
static const float x0[5 * 2] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, x1[1 * 2] = {11, 12};

/* The shares as graphs: device 0 holds graphs 0, 1, 2, device 1 graph 3. x [N, 2] and node_graph
 * [N] by parts (node_graph numbering each share's graphs from 0); the per-graph weights gw [G] fed
 * whole. */
static const int32_t ng0[5] = {0, 0, 1, 2, 2}, ng1[1] = {0}, ng_joined[6] = {0, 0, 1, 2, 2, 3};
static const float gw[4] = {1, 10, 100, 1000};
static void build_segment(model *m, int several)
{
    (void)several;
    loom_dim N = loom_dim_dynamic(m->g, "N", 8), G = loom_dim_dynamic(m->g, "G", 4);
    loom_dim_set_part_bound(m->g, N, 5);
    loom_dim_set_part_bound(m->g, G, 3);
    m->in[0] = loom_input(m->g, "x", LOOM_F32, loom_shape(N, 2));
    m->in[1] = loom_input_index(m->g, "node_graph", loom_shape(N), G);
    m->in[2] = loom_input(m->g, "gw", LOOM_F32, loom_shape(G, 1));
    m->out = loom_mul(m->g, loom_segment_sum(m->g, m->in[0], m->in[1], G), m->in[2]);
}

/* node_graph fed by parts indexes each share's own graphs, but G itself comes from an input fed
 * whole (gw): the parts of G are the shares' graph counts (3 and 1), which nothing fed says. The
 * run must refuse this, naming G, or give one device's answer; never an even split of G (2 and 2),
 * which sends graph 2 of device 0 out of its part. */
START_TEST(test_index_range_fed_whole_beside_parts)
{
    feed fd = {.nin = 3, .ndev = 2, .by_parts = {1, 1, 0}};
    fd.part[0][0] = f32(5, 2, x0);
    fd.part[0][1] = f32(1, 2, x1);
    fd.part[1][0] = i32(5, ng0);
    fd.part[1][1] = i32(1, ng1);
    fd.whole[2] = f32(4, 1, gw);
    loom_status st;
    char msg[512] = "";
    double *many = run_model(build_segment, "cpu:0-1", fd, LOOM_RUN_EVAL, 8, &st, msg, sizeof msg);
    feed one = {.nin = 3, .ndev = 1};
    float xj[12];
    memcpy(xj, x0, sizeof x0);
    memcpy(xj + 10, x1, sizeof x1);
    one.whole[0] = f32(6, 2, xj);
    one.whole[1] = i32(6, ng_joined);
    one.whole[2] = f32(4, 1, gw);
    loom_status st1;
    double *want = run_model(build_segment, NULL, one, LOOM_RUN_EVAL, 8, &st1, NULL, 0);
    ck_assert_int_eq(st1, LOOM_OK);
    if (st == LOOM_OK)
        lt_assert_close(many, want, 8, 0, "segment sum of a batch whose G is fed whole, against one device");
    else
        ck_assert_msg(strstr(msg, "G") && strstr(msg, "by parts"), "%s", msg);
    free(many);
    free(want);
}
END_TEST

/* The same batch with every input over G by parts too (gw's parts: 3 graphs and 1), and an input
 * fed whole that is broadcast: its rows cut by B -> S(0) at the parts' uneven offsets. */
static void build_broadcast(model *m, int several)
{
    loom_dim N = loom_dim_dynamic(m->g, "N", 8);
    loom_dim_set_part_bound(m->g, N, 5);
    m->in[0] = loom_input(m->g, "x", LOOM_F32, loom_shape(N, 2));
    m->in[1] = loom_input(m->g, "w", LOOM_F32, loom_shape(N, 1));
    if (several)
        loom_tensor_set_sbp(m->in[1], loom_broadcast());
    m->out = loom_mul(m->g, m->in[0], m->in[1]);
}

START_TEST(test_broadcast_input_beside_parts)
{
    static const float w[6] = {1, 2, 3, 4, 5, 6};
    feed fd = {.nin = 2, .ndev = 2, .by_parts = {1, 0}};
    fd.part[0][0] = f32(5, 2, x0);
    fd.part[0][1] = f32(1, 2, x1);
    fd.whole[1] = f32(6, 1, w);
    char buf[256];
    loom_status st, st1;
    char msg[512] = "";
    double *many = run_model(build_broadcast, "cpu:0-1", fd, LOOM_RUN_EVAL, 12, &st, msg, sizeof msg);
    ck_assert_msg(st == LOOM_OK, "%s", msg);
    double *want = run_model(build_broadcast, NULL, joined(&fd, buf), LOOM_RUN_EVAL, 12, &st1, NULL, 0);
    ck_assert_int_eq(st1, LOOM_OK);
    lt_assert_close(many, want, 12, 0, "a broadcast input times a batch fed by parts, against one device");
    free(many);
    free(want);
}
END_TEST

/* S(0) -> S(1) -> S(0) on uneven parts: x by parts (5 rows and 1), through a feature split and
 * back. */
static void build_axes(model *m, int several)
{
    loom_dim N = loom_dim_dynamic(m->g, "N", 8);
    loom_dim_set_part_bound(m->g, N, 5);
    m->in[0] = loom_input(m->g, "x", LOOM_F32, loom_shape(N, 2));
    loom_tensor *a = loom_relu(m->g, m->in[0]);
    loom_tensor *b = loom_scale(m->g, a, 2.0);
    loom_tensor *c = loom_add(m->g, b, m->in[0]);
    if (several) {
        loom_tensor_set_sbp(a, loom_split(0));
        loom_tensor_set_sbp(b, loom_split(1));
        loom_tensor_set_sbp(c, loom_split(0));
    }
    m->out = c;
}

START_TEST(test_split_axes_on_uneven_parts)
{
    feed fd = {.nin = 1, .ndev = 2, .by_parts = {1}};
    fd.part[0][0] = f32(5, 2, x0);
    fd.part[0][1] = f32(1, 2, x1);
    char buf[256];
    loom_status st, st1;
    char msg[512] = "";
    double *many = run_model(build_axes, "cpu:0-1", fd, LOOM_RUN_EVAL, 12, &st, msg, sizeof msg);
    ck_assert_msg(st == LOOM_OK, "%s", msg);
    double *want = run_model(build_axes, NULL, joined(&fd, buf), LOOM_RUN_EVAL, 12, &st1, NULL, 0);
    lt_assert_close(many, want, 12, 0, "S(0) -> S(1) -> S(0) of uneven parts, against one device");
    free(many);
    free(want);
}
END_TEST

/* A dropout mask of a batch fed by parts: each row's mask is the one it has on one device. */
static void build_dropout(model *m, int several)
{
    (void)several;
    loom_dim N = loom_dim_dynamic(m->g, "N", 8);
    loom_dim_set_part_bound(m->g, N, 5);
    m->in[0] = loom_input(m->g, "x", LOOM_F32, loom_shape(N, 2));
    m->out = loom_dropout(m->g, m->in[0], 0.5);
}

START_TEST(test_dropout_mask_on_uneven_parts)
{
    feed fd = {.nin = 1, .ndev = 2, .by_parts = {1}};
    /* device 0 one row, device 1 five: an even split would put device 1's rows at 3 */
    fd.part[0][0] = f32(1, 2, x1);
    fd.part[0][1] = f32(5, 2, x0);
    char buf[256];
    loom_status st, st1;
    char msg[512] = "";
    double *many = run_model(build_dropout, "cpu:0-1", fd, LOOM_RUN_FORWARD, 12, &st, msg, sizeof msg);
    ck_assert_msg(st == LOOM_OK, "%s", msg);
    double *want = run_model(build_dropout, NULL, joined(&fd, buf), LOOM_RUN_FORWARD, 12, &st1, NULL, 0);
    lt_assert_close(many, want, 12, 0, "dropout of uneven parts, against one device");
    free(many);
    free(want);
}
END_TEST

/* Empty shares: every kernel of a batch (gathers, scatters, segment sums, the BCE's mean) on a
 * device with no nodes and no edges, and a step where every share is empty. */
static const int32_t src0[4] = {0, 1, 3, 4}, dst0[4] = {1, 0, 4, 3};
static const float ey0[4] = {1, 0, 1, 1};

static void build_edges(model *m, int several)
{
    (void)several;
    loom_dim N = loom_dim_dynamic(m->g, "N", 8), E = loom_dim_dynamic(m->g, "E", 8);
    loom_dim_set_part_bound(m->g, N, 5);
    loom_dim_set_part_bound(m->g, E, 4);
    m->in[0] = loom_input(m->g, "x", LOOM_F32, loom_shape(N, 2));
    m->in[1] = loom_input_index(m->g, "src", loom_shape(E), N);
    m->in[2] = loom_input_index(m->g, "dst", loom_shape(E), N);
    m->in[3] = loom_input(m->g, "ey", LOOM_F32, loom_shape(E));
    loom_tensor *h = loom_gather_rows(m->g, m->in[0], m->in[1]);
    loom_tensor *agg = loom_scatter_add_rows(m->g, h, m->in[2], N);
    loom_tensor *z = loom_sum(m->g, loom_gather_rows(m->g, agg, m->in[1]), LOOM_AXIS(1), 0);
    loom_tensor *loss = loom_bce_with_logits(m->g, loom_scale(m->g, z, 0.01), m->in[3], 1.0);
    m->out = loom_reshape(m->g, loss, loom_shape(1));
}

static void empty_shares(int n0, int e0)
{
    static const float none[1] = {0};
    static const int32_t inone[1] = {0};
    feed fd = {.nin = 4, .ndev = 4, .by_parts = {1, 1, 1, 1}};
    for (int d = 0; d < 4; d++) {
        int full = d == 2;
        fd.part[0][d] = f32(full ? n0 : 0, 2, full ? x0 : none);
        fd.part[1][d] = i32(full ? e0 : 0, full ? src0 : inone);
        fd.part[2][d] = i32(full ? e0 : 0, full ? dst0 : inone);
        fd.part[3][d] = (loom_array){.dtype = LOOM_F32, .ndim = 1, .shape = {full ? e0 : 0}, .data = (void *)(full ? ey0 : none)};
    }
    char buf[512];
    loom_status st, st1;
    char msg[512] = "";
    double *many = run_model(build_edges, "cpu:0-3", fd, LOOM_RUN_FORWARD, 1, &st, msg, sizeof msg);
    ck_assert_msg(st == LOOM_OK, "%s", msg);
    double *want = run_model(build_edges, NULL, joined(&fd, buf), LOOM_RUN_FORWARD, 1, &st1, msg, sizeof msg);
    ck_assert_msg(st1 == LOOM_OK, "%s", msg);
    if (e0 == 0) /* a mean over no elements is 0, on one device as on four */
        ck_assert_msg(many[0] == 0 && want[0] == 0, "%g and %g", many[0], want[0]);
    else
        lt_assert_close(many, want, 1, 1e-6, "BCE of a batch with empty shares, against one device");
    free(many);
    free(want);
}

START_TEST(test_empty_shares) { empty_shares(5, 4); }
END_TEST

START_TEST(test_every_share_empty) { empty_shares(0, 0); }
END_TEST

/* A graph attention over a batch fed by parts: each edge's score from its source's features
 * (through a weight w), normalised over the edges into each destination by segment_softmax with dst
 * a batch index, so that each device runs its own graphs' edges ((S(0), S(0)) -> S(0), its
 * gradient likewise), then the messages summed into the destinations. Device 0 holds nodes 0-4
 * and the first four edges, device 1 node 5 and two edges into it. */
static const int32_t asrc0[4] = {0, 1, 3, 4}, adst0[4] = {1, 1, 4, 4}, asrc1[2] = {0, 0}, adst1[2] = {0, 0};
static const int32_t asrc_j[6] = {0, 1, 3, 4, 5, 5}, adst_j[6] = {1, 1, 4, 4, 5, 5};

static loom_tensor *attention(model *m)
{
    loom_dim N = loom_dim_dynamic(m->g, "N", 8), E = loom_dim_dynamic(m->g, "E", 8);
    loom_dim_set_part_bound(m->g, N, 5);
    loom_dim_set_part_bound(m->g, E, 4);
    m->in[0] = loom_input(m->g, "x", LOOM_F32, loom_shape(N, 2));
    m->in[1] = loom_input_index(m->g, "src", loom_shape(E), N);
    m->in[2] = loom_input_index(m->g, "dst", loom_shape(E), N);
    loom_tensor *w = loom_param(m->g, "w", LOOM_F32, loom_shape(2, 2), loom_init_normal(0.0, 0.1, 7));
    loom_tensor *h = loom_matmul(m->g, loom_gather_rows(m->g, m->in[0], m->in[1]), w);
    loom_tensor *a = loom_segment_softmax(m->g, h, m->in[2], N);
    m->out = loom_scatter_add_rows(m->g, loom_mul(m->g, h, a), m->in[2], N);
    return w;
}

static void build_attention(model *m, int several)
{
    (void)several;
    attention(m);
}

/* w after two SGD steps on the sum of the attention's output, fed fd, on placement. */
static double *attention_trained(const char *placement, feed fd)
{
    model m = {0};
    m.g = graph_on(placement);
    loom_tensor *w = attention(&m);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_sgd(0.1);
    ck_assert_msg(loom_compile(m.g, loom_sum(m.g, m.out, LOOM_ALL_AXES, 0), &o, &m.p) == LOOM_OK, "%s",
                  loom_graph_error(m.g));
    for (int k = 0; k < fd.nin; k++)
        fd.t[k] = m.in[k];
    fd.steps = 2;
    loom_program_set_source(m.p, feed_source, &fd);
    ck_assert_msg(loom_program_run_steps(m.p, LOOM_RUN_STEP, 2) == LOOM_OK, "%s", loom_program_error(m.p));
    double *v = fetch(m.p, w, 4);
    loom_program_free(m.p);
    loom_graph_free(m.g);
    return v;
}

START_TEST(test_segment_softmax_by_parts)
{
    feed fd = {.nin = 3, .ndev = 2, .by_parts = {1, 1, 1}};
    fd.part[0][0] = f32(5, 2, x0);
    fd.part[0][1] = f32(1, 2, x1);
    fd.part[1][0] = i32(4, asrc0);
    fd.part[1][1] = i32(2, asrc1);
    fd.part[2][0] = i32(4, adst0);
    fd.part[2][1] = i32(2, adst1);
    feed one = {.nin = 3, .ndev = 1};
    float xj[12];
    memcpy(xj, x0, sizeof x0);
    memcpy(xj + 10, x1, sizeof x1);
    one.whole[0] = f32(6, 2, xj);
    one.whole[1] = i32(6, asrc_j);
    one.whole[2] = i32(6, adst_j);
    loom_status st, st1;
    char msg[512] = "";
    double *many = run_model(build_attention, "cpu:0-1", fd, LOOM_RUN_EVAL, 12, &st, msg, sizeof msg);
    ck_assert_msg(st == LOOM_OK, "%s", msg);
    double *want = run_model(build_attention, NULL, one, LOOM_RUN_EVAL, 12, &st1, msg, sizeof msg);
    ck_assert_msg(st1 == LOOM_OK, "%s", msg);
    lt_assert_close(many, want, 12, 1e-6, "an edge softmax of a batch fed by parts, against one device");
    free(many);
    free(want);
    many = attention_trained("cpu:0-1", fd);
    want = attention_trained(NULL, one);
    lt_assert_close(many, want, 4, 1e-6, "w trained through an edge softmax of a batch fed by parts, against one device");
    free(many);
    free(want);
}
END_TEST

/* An index input whose own length is static (it picks 3 of the batch's nodes) over the dynamic N:
 * nothing can feed it by parts (its dim 0 is no dynamic dim), so it is not a per-device index: the
 * program runs fed whole on two devices and agrees with one. */
static const int32_t src_joined[5] = {4, 0, 2, 5, 5};
static const int32_t pick[3] = {5, 0, 2};
static int npick = 3;

static void build_pick(model *m, int several)
{
    (void)several;
    loom_dim N = loom_dim_dynamic(m->g, "N", 8);
    m->in[0] = loom_input(m->g, "x", LOOM_F32, loom_shape(N, 2));
    m->in[1] = loom_input_index(m->g, "pick", loom_shape(npick), N);
    m->out = loom_gather_rows(m->g, loom_relu(m->g, m->in[0]), m->in[1]);
}

START_TEST(test_static_index_over_dynamic_range)
{
    float xj[12];
    memcpy(xj, x0, sizeof x0);
    memcpy(xj + 10, x1, sizeof x1);
    /* 3 picks: the input is split over the two devices; 1 pick: too small to split, it is whole */
    for (npick = 3; npick >= 1; npick -= 2) {
        feed fd = {.nin = 2, .ndev = 2};
        fd.whole[0] = f32(6, 2, xj);
        fd.whole[1] = i32(npick, pick);
        loom_status st, st1;
        char msg[512] = "";
        double *many = run_model(build_pick, "cpu:0-1", fd, LOOM_RUN_EVAL, 2 * npick, &st, msg, sizeof msg);
        ck_assert_msg(st == LOOM_OK, "%d picks: %s", npick, msg);
        fd.ndev = 1;
        double *want = run_model(build_pick, NULL, fd, LOOM_RUN_EVAL, 2 * npick, &st1, NULL, 0);
        lt_assert_close(many, want, 2 * npick, 0, "rows picked from a whole batch on two devices, against one");
        free(many);
        free(want);
    }
}
END_TEST

/* A batch index asked to be whole (B) on two devices and fed whole: its gathers still read it per
 * device, so the run refuses it (it cannot be fed by parts either) rather than gather with each
 * device reading the whole batch's indices as its own. */
static void build_index_whole(model *m, int several)
{
    loom_dim N = loom_dim_dynamic(m->g, "N", 8), E = loom_dim_dynamic(m->g, "E", 8);
    m->in[0] = loom_input(m->g, "x", LOOM_F32, loom_shape(N, 2));
    m->in[1] = loom_input_index(m->g, "src", loom_shape(E), N);
    if (several)
        loom_tensor_set_sbp(m->in[1], loom_broadcast());
    m->out = loom_gather_rows(m->g, m->in[0], m->in[1]);
}

START_TEST(test_broadcast_batch_index_fed_whole)
{
    float xj[12];
    memcpy(xj, x0, sizeof x0);
    memcpy(xj + 10, x1, sizeof x1);
    feed fd = {.nin = 2, .ndev = 2};
    fd.whole[0] = f32(6, 2, xj);
    fd.whole[1] = i32(5, src_joined);
    loom_status st, st1;
    char msg[512] = "";
    double *many = run_model(build_index_whole, "cpu:0-1", fd, LOOM_RUN_EVAL, 10, &st, msg, sizeof msg);
    fd.ndev = 1;
    double *want = run_model(build_index_whole, NULL, fd, LOOM_RUN_EVAL, 10, &st1, NULL, 0);
    ck_assert_int_eq(st1, LOOM_OK);
    if (st == LOOM_OK)
        lt_assert_close(many, want, 10, 0, "a gather by a whole batch index on two devices, against one");
    else
        ck_assert_msg(strstr(msg, "input 'src' indexes the rows of N and is whole over 2 devices: feed it by parts"), "%s", msg);
    free(many);
    free(want);
}
END_TEST

/* A batch index input's values index its own part: no signature may gather it whole. The table
 * split along its features ((S(1), B) -> S(1)) would read device 1's local indices as the whole
 * batch's. */
static const int32_t srcp0[3] = {4, 0, 2}, srcp1[2] = {0, 0};
static void build_feature_split(model *m, int several)
{
    loom_dim N = loom_dim_dynamic(m->g, "N", 8), E = loom_dim_dynamic(m->g, "E", 8);
    loom_dim_set_part_bound(m->g, N, 5);
    loom_dim_set_part_bound(m->g, E, 4);
    m->in[0] = loom_input(m->g, "x", LOOM_F32, loom_shape(N, 2));
    m->in[1] = loom_input_index(m->g, "src", loom_shape(E), N);
    loom_tensor *h = loom_relu(m->g, m->in[0]);
    if (several)
        loom_tensor_set_sbp(h, loom_split(1));
    m->out = loom_gather_rows(m->g, h, m->in[1]);
}

START_TEST(test_batch_index_never_gathered_whole)
{
    feed fd = {.nin = 2, .ndev = 2, .by_parts = {1, 1}};
    fd.part[0][0] = f32(5, 2, x0);
    fd.part[0][1] = f32(1, 2, x1);
    fd.part[1][0] = i32(3, srcp0);
    fd.part[1][1] = i32(2, srcp1);
    loom_status st, st1;
    char msg[512] = "";
    double *many = run_model(build_feature_split, "cpu:0-1", fd, LOOM_RUN_EVAL, 10, &st, msg, sizeof msg);
    ck_assert_msg(st == LOOM_OK, "%s", msg);
    float xj[12];
    memcpy(xj, x0, sizeof x0);
    memcpy(xj + 10, x1, sizeof x1);
    feed one = {.nin = 2, .ndev = 1};
    one.whole[0] = f32(6, 2, xj);
    one.whole[1] = i32(5, src_joined);
    double *want = run_model(build_feature_split, NULL, one, LOOM_RUN_EVAL, 10, &st1, NULL, 0);
    lt_assert_close(many, want, 10, 0, "a gather from a feature-split table by a batch index, against one device");
    free(many);

    /* the gather's own output asked for S(1), or B: only (S(0), S(0)) -> S(0) reads the index as
     * fed, so compiling must refuse, naming it, or the run must still give one device's answer */
    const loom_sbp asks[2] = {loom_split(1), loom_broadcast()};
    for (int k = 0; k < 2; k++) {
        model m = {0};
        m.g = graph_on("cpu:0-1");
        build_feature_split(&m, 1);
        loom_tensor_set_sbp(m.out, asks[k]);
        loom_program *p = NULL;
        if (loom_compile(m.g, NULL, NULL, &p) == LOOM_OK) {
            ck_assert(loom_program_keep(p, m.out) == LOOM_OK);
            feed f2 = fd;
            f2.t[0] = m.in[0], f2.t[1] = m.in[1], f2.steps = 1;
            loom_program_set_source(p, feed_source, &f2);
            ck_assert_msg(loom_program_run_steps(p, LOOM_RUN_EVAL, 1) == LOOM_OK, "%s", loom_program_error(p));
            double *got = fetch(p, m.out, 10);
            lt_assert_close(got, want, 10, 0, k ? "a gather asked whole (B) by a batch index, against one device"
                                                 : "a gather asked S(1) by a batch index, against one device");
            free(got);
            loom_program_free(p);
        } else {
            ck_assert_msg(strstr(loom_graph_error(m.g), "gather_rows") && strstr(loom_graph_error(m.g), "valid: (S(0), S(0)) -> S(0)"),
                          "%s", loom_graph_error(m.g));
        }
        loom_graph_free(m.g);
    }
    free(want);
}
END_TEST

/* count graphs of 2 to 40 nodes with per_node edges per node, features and labels from a hash. */
static void make_samples(loom_samples *s, int64_t count, int64_t per_node)
{
    *s = LOOM_SAMPLES_INIT;
    s->count = count;
    s->node_features = 5;
    s->edge_features = 4;
    s->node_off = calloc((size_t)count + 1, sizeof *s->node_off);
    s->edge_off = calloc((size_t)count + 1, sizeof *s->edge_off);
    uint64_t h = 12345;
    for (int64_t i = 0; i < count; i++) {
        h = h * 6364136223846793005u + 1442695040888963407u;
        int64_t n = 2 + (int64_t)((h >> 33) % 39);
        s->node_off[i + 1] = s->node_off[i] + n;
        s->edge_off[i + 1] = s->edge_off[i] + per_node * n;
    }
    int64_t nodes = s->node_off[count], edges = s->edge_off[count];
    s->x = malloc((size_t)nodes * 5 * sizeof(float));
    s->edge_attr = malloc((size_t)edges * 4 * sizeof(float));
    s->edge_y = malloc((size_t)edges * sizeof(float));
    s->src = malloc((size_t)edges * sizeof(int32_t));
    s->dst = malloc((size_t)edges * sizeof(int32_t));
    for (int64_t v = 0; v < nodes * 5; v++)
        s->x[v] = (float)((v * 37 % 11) - 5) / 5.0f;
    for (int64_t i = 0; i < count; i++)
        for (int64_t e = s->edge_off[i]; e < s->edge_off[i + 1]; e++) {
            int64_t n = loom_samples_nodes(s, i);
            s->src[e] = (int32_t)(e * 7 % n);
            s->dst[e] = (int32_t)(e * 13 % n);
            for (int k = 0; k < 4; k++)
                s->edge_attr[e * 4 + k] = (float)((e + k) % 5) - 2.0f;
            s->edge_y[e] = (float)(e % 3 == 0);
        }
    loom_error err = LOOM_ERROR_INIT;
    ck_assert_msg(loom_samples_validate(s, &err) == LOOM_OK, "%s", err.msg);
}

/* The interaction network of batch_cases.h compiled under a memory limit, its dims at the bounds
 * of one mean sample (so that it compiles under small limits). */
static loom_status in_model(lt_batch_model *m, const loom_samples *s, int64_t limit)
{
    memset(m, 0, sizeof *m);
    m->g = graph_on("cpu:0-1");
    loom_batch_dims(m->g, s, 1, &m->in);
    m->in.graphs = 0;
    m->in.x = loom_input(m->g, "x", LOOM_F32, loom_shape(m->in.nodes, s->node_features));
    m->in.src = loom_input_index(m->g, "src", loom_shape(m->in.edges), m->in.nodes);
    m->in.dst = loom_input_index(m->g, "dst", loom_shape(m->in.edges), m->in.nodes);
    m->in.edge_attr = loom_input(m->g, "edge_attr", LOOM_F32, loom_shape(m->in.edges, s->edge_features));
    m->in.edge_y = loom_input(m->g, "edge_y", LOOM_F32, loom_shape(m->in.edges));
    m->out = loom_nn_interaction_network(m->g, "in", m->in.x, m->in.edge_attr, m->in.src, m->in.dst, 8, 2);
    m->loss = loom_bce_with_logits(m->g, m->out, m->in.edge_y, 2.0);
    loom_train_opts t = LOOM_TRAIN_OPTS_INIT;
    t.optimizer = loom_adam(0.01);
    t.memory_limit = limit;
    return loom_compile(m->g, m->loss, &t, &m->p);
}

/* loom_program_set_bounds refused (over the limit, or over an int64 byte count) and
 * loom_program_memory_at on every path leave the bounds and the plan's memory as they were, and
 * the program runs. */
START_TEST(test_bounds_left_as_they_were)
{
    loom_samples s;
    lt_make_samples(&s, 20, 6);
    lt_batch_model m;
    ck_assert(in_model(&m, &s, 4 << 20) == LOOM_OK);
    loom_memory before, after, at;
    ck_assert(loom_program_memory(m.p, LOOM_RUN_STEP, LOOM_ALL_DEVICES, &before) == LOOM_OK);
    loom_bound huge[2] = {{m.in.nodes, 100000, 50000}, {m.in.edges, 200000, 100000}};
    ck_assert_int_eq(loom_program_set_bounds(m.p, huge, 2), LOOM_ERR_NOMEM);
    ck_assert_msg(strstr(loom_program_error(m.p), "over the limit"), "%s", loom_program_error(m.p));
    loom_bound over[2] = {{m.in.nodes, INT64_MAX / 4, INT64_MAX / 8}, {m.in.edges, 8, 4}};
    ck_assert_int_ne(loom_program_set_bounds(m.p, over, 2), LOOM_OK);
    ck_assert_int_ne(loom_program_memory_at(m.p, LOOM_RUN_STEP, 0, over, 2, &at), LOOM_OK);
    ck_assert_int_eq(loom_program_memory_at(m.p, LOOM_RUN_STEP, 1, huge, 2, &at), LOOM_ERR_NOMEM);
    ck_assert_uint_gt(at.total, before.total / 2);
    loom_bound bad[2] = {{m.in.nodes, 10, 5}, {(loom_dim)3, 10, 5}};
    ck_assert_int_eq(loom_program_memory_at(m.p, LOOM_RUN_STEP, 0, bad, 2, &at), LOOM_ERR_INVALID);
    ck_assert_int_eq(loom_program_set_bounds(m.p, bad, 2), LOOM_ERR_INVALID);
    ck_assert(loom_program_memory(m.p, LOOM_RUN_STEP, LOOM_ALL_DEVICES, &after) == LOOM_OK);
    ck_assert_uint_eq(after.total, before.total);
    ck_assert_uint_eq(after.shared, before.shared);
    /* and it trains an epoch sized for it */
    loom_error err = LOOM_ERROR_INIT;
    loom_sampler_opts o = LOOM_SAMPLER_OPTS_INIT;
    o.kind = LOOM_SAMPLER_DEVICES;
    o.devices = 2;
    o.batch = 4;
    loom_sampler *smp;
    loom_batch_source *src;
    ck_assert(loom_sampler_new(&s, NULL, s.count, &o, &smp, &err) == LOOM_OK);
    ck_assert(loom_sampler_epoch(smp, 0, &err) == LOOM_OK);
    ck_assert_msg(loom_batch_plan_epoch(m.p, smp, &m.in, &err) == LOOM_OK, "%s", err.msg);
    ck_assert(loom_batch_source_new(m.p, &s, smp, &m.in, &src, &err) == LOOM_OK);
    ck_assert_msg(loom_batch_run(src, LOOM_RUN_STEP, 0, &err) == LOOM_OK, "%s", err.msg);
    loom_batch_source_free(src);
    loom_sampler_free(smp);
    lt_batch_model_free(&m);
    loom_samples_free(&s);
}
END_TEST

/* ---- the library's evaluation ----------------------------------------------------------------- */

/* loom_batch_edge_metrics scores every edge of the dataset exactly once. */
START_TEST(test_edge_metrics_count_every_edge)
{
    loom_samples s;
    lt_make_samples(&s, 30, 4);
    loom_error err = LOOM_ERROR_INIT;
    lt_batch_model m;
    lt_batch_model_new(&m, &s, "cpu:0-2", LT_BATCH_IN, 2);
    loom_sampler_opts o = LOOM_SAMPLER_OPTS_INIT;
    o.kind = LOOM_SAMPLER_DEVICES;
    o.batch = 7;
    o.devices = 3;
    loom_edge_metrics em;
    ck_assert_msg(loom_batch_edge_metrics(m.p, m.out, &s, &o, &m.in, LOOM_RUN_EVAL, &em, &err) == LOOM_OK, "%s", err.msg);
    ck_assert_int_eq(em.tp + em.fp + em.tn + em.fn, s.edge_off[s.count]);
    lt_batch_model_free(&m);
    loom_samples_free(&s);
}
END_TEST

/* The plan sampler's promise (docs/design.md, "Bounds are the packing's"): under the budget
 * loom_batch_fit_plan finds for a memory limit, the epoch its packing deals fits that limit. The
 * memory plan is not monotone in the bounds (the lifetime packing of the shared block is a
 * heuristic), and the search probes shares of (n, its edges) at a bound of devices x n while the
 * epoch is planned at its largest share and largest step: tried over a range of limits, on a
 * dataset of three edges per node. */
START_TEST(test_fit_plan_budget_fits_every_limit)
{
    loom_samples s;
    make_samples(&s, 60, 3);
    loom_error err = LOOM_ERROR_INIT;
    int failures = 0, tried = 0;
    char first[768] = "";
    for (int64_t limit = 350 << 10; limit < (420 << 10) && !failures; limit += 256) {
        lt_batch_model m;
        if (in_model(&m, &s, limit) != LOOM_OK) {
            loom_graph_free(m.g);
            continue;
        }
        loom_sampler_opts o = LOOM_SAMPLER_OPTS_INIT;
        o.kind = LOOM_SAMPLER_PLAN;
        o.devices = 2;
        if (loom_batch_fit_plan(m.p, LOOM_RUN_STEP, &s, &m.in, &o, &err) == LOOM_OK) {
            for (uint64_t seed = 0; seed < 4; seed++) {
                o.sort = (int)(seed & 1);
                o.seed = seed;
                loom_sampler *smp;
                ck_assert_msg(loom_sampler_new(&s, NULL, s.count, &o, &smp, &err) == LOOM_OK, "%s", err.msg);
                ck_assert(loom_sampler_epoch(smp, 0, &err) == LOOM_OK);
                tried++;
                if (loom_batch_plan_epoch(m.p, smp, &m.in, &err) != LOOM_OK && failures++ == 0)
                    snprintf(first, sizeof first, "limit %lld bytes, budget %lld nodes and %lld edges, seed %d: %s", (long long)limit,
                             (long long)o.max_nodes, (long long)o.max_edges, (int)seed, err.msg);
                loom_sampler_free(smp);
            }
        }
        lt_batch_model_free(&m);
    }
    ck_assert_int_gt(tried, 0);
    ck_assert_msg(failures == 0, "an epoch packed by the plan sampler does not fit the limit it was packed for: %s", first);
    loom_samples_free(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("batch_edges");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_bounds_lowered_under_fed_data_one_device);
    tcase_add_test(tc, test_bounds_lowered_under_fed_data_two_devices);
    tcase_add_test(tc, test_part_bound_below_even_split_fed_whole);
    tcase_add_test(tc, test_index_range_fed_whole_beside_parts);
    tcase_add_test(tc, test_broadcast_input_beside_parts);
    tcase_add_test(tc, test_split_axes_on_uneven_parts);
    tcase_add_test(tc, test_dropout_mask_on_uneven_parts);
    tcase_add_test(tc, test_empty_shares);
    tcase_add_test(tc, test_every_share_empty);
    tcase_add_test(tc, test_segment_softmax_by_parts);
    tcase_add_test(tc, test_static_index_over_dynamic_range);
    tcase_add_test(tc, test_broadcast_batch_index_fed_whole);
    tcase_add_test(tc, test_batch_index_never_gathered_whole);
    tcase_add_test(tc, test_bounds_left_as_they_were);
    tcase_add_test(tc, test_edge_metrics_count_every_edge);
    tcase_add_test(tc, test_fit_plan_budget_fits_every_limit);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
