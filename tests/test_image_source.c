/* The image batch source (loom_image_source) feeding a program whose inputs are images [B, 1, 4, 4]
 * and labels [B] (a linear classifier's loss, so that it compiles for training), over a set of 10
 * tiny images whose labels are all different, so that a fed label names its image: every image
 * once an epoch, orders from (seed, epoch) alone, exact normalisation, crops and flips that are
 * windows of the padded image (checked against every window by brute force), drop_last on and
 * off, a static batch dim, two devices (the batch split S(0)) fed the same bytes as one, and the
 * refusals of bad options, sets and inputs. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

enum { COUNT = 10, SIDE = 4, PIX = SIDE * SIDE, MAX_STEPS = COUNT };

/* Image i's pixel k; label i is (3 i + 1) mod 10, all different (3 is prime to 10). */
static uint8_t pixel(int64_t i, int64_t k) { return (uint8_t)(i * 37 + k * 11 + 5); }
static int32_t label_of(int64_t i) { return (int32_t)((3 * i + 1) % COUNT); }
static int64_t image_of(int32_t label) { return (label * 7 + 3) % COUNT; } /* 7 = 3^-1 mod 10 */

static void make_set(loom_image_set *s)
{
    *s = (loom_image_set){.count = COUNT, .channels = 1, .height = SIDE, .width = SIDE, .num_classes = COUNT};
    const int64_t ish[4] = {COUNT, 1, SIDE, SIDE}, lsh[1] = {COUNT};
    ck_assert_int_eq(loom_array_alloc(&s->images, LOOM_U8, 4, ish), LOOM_OK);
    ck_assert_int_eq(loom_array_alloc(&s->labels, LOOM_I32, 1, lsh), LOOM_OK);
    for (int64_t i = 0; i < COUNT; i++) {
        for (int64_t k = 0; k < PIX; k++)
            ((uint8_t *)s->images.data)[i * PIX + k] = pixel(i, k);
        ((int32_t *)s->labels.data)[i] = label_of(i);
        ck_assert_int_eq(image_of(label_of(i)), i);
    }
}

/* The inputs a source feeds are not fetchable (no sink reads them), so the model passes them on
 * to values that are: the images times 1, which is exact, and the labels as rows of a table of
 * distinct values that nothing trains, read back to the labels. */
typedef struct model {
    loom_image_set set;
    loom_graph *g;
    loom_program *p;
    loom_tensor *images, *labels;
    loom_tensor *images_seen, *table, *labels_seen;
} model;

/* The table's values are all different, so that a gathered row names its label. */
static void check_table(model *m)
{
    loom_array t;
    ck_assert_int_eq(loom_program_fetch(m->p, m->table, &t), LOOM_OK);
    for (int a = 0; a < COUNT; a++)
        for (int b = 0; b < a; b++)
            ck_assert(((const float *)t.data)[a] != ((const float *)t.data)[b]);
}

/* The classifier on placement (NULL: one device), its batch dim static (b > 0) or dynamic with
 * bound -b. */
static void model_new(model *m, const char *placement, int64_t b)
{
    make_set(&m->set);
    m->g = loom_graph_new();
    if (placement) {
        loom_error err = LOOM_ERROR_INIT;
        loom_placement *pl = loom_placement_parse(placement, &err);
        ck_assert_msg(pl != NULL, "%s", err.msg);
        loom_graph_set_placement(m->g, pl);
        loom_placement_free(pl);
    }
    loom_dim B = b > 0 ? b : loom_dim_dynamic(m->g, "B", -b);
    m->images = loom_input(m->g, "x", LOOM_F32, loom_shape(B, 1, SIDE, SIDE));
    m->labels = loom_input(m->g, "y", LOOM_I32, loom_shape(B));
    if (placement) {
        loom_tensor_set_sbp(m->images, loom_split(0));
        loom_tensor_set_sbp(m->labels, loom_split(0));
    }
    m->images_seen = loom_scale(m->g, m->images, 1.0);
    m->table = loom_param(m->g, "table", LOOM_F32, loom_shape(COUNT, 1), loom_init_uniform(0, 1, 7));
    m->labels_seen = loom_gather_rows(m->g, m->table, m->labels);
    loom_tensor *w = loom_param(m->g, "w", LOOM_F32, loom_shape(PIX, COUNT), loom_init_glorot(1));
    loom_tensor *logits = loom_matmul(m->g, loom_reshape(m->g, m->images, loom_shape(B, PIX)), w);
    loom_tensor *loss = loom_softmax_cross_entropy(m->g, logits, m->labels, NULL);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_sgd(0.01);
    ck_assert_msg(loom_compile(m->g, loss, &o, &m->p) == LOOM_OK, "%s", loom_graph_error(m->g));
    ck_assert_int_eq(loom_program_keep(m->p, m->images_seen), LOOM_OK);
    ck_assert_int_eq(loom_program_keep(m->p, m->labels_seen), LOOM_OK);
    ck_assert_ptr_null(loom_program_grad(m->p, m->table));
    check_table(m);
}

static void model_free(model *m)
{
    loom_program_free(m->p);
    loom_graph_free(m->g);
    loom_image_set_free(&m->set);
}

static loom_image_opts opts(int64_t batch, uint64_t seed)
{
    loom_image_opts o = LOOM_IMAGE_OPTS_INIT;
    o.batch = batch;
    o.seed = seed;
    return o;
}

/* What an epoch fed: each step's images and labels, as the program saw them. */
typedef struct fed {
    int64_t steps, n[MAX_STEPS], total;
    float x[COUNT][PIX];    /* image j of the epoch, in the order fed */
    int32_t y[COUNT];
    int64_t image[COUNT];   /* which image of the set it is (from its label) */
} fed;

/* Runs epoch `epoch` of src on m a step at a time, fetching each step's inputs. */
static void run_epoch(model *m, loom_image_source *src, int64_t epoch, fed *f)
{
    loom_error err = LOOM_ERROR_INIT;
    memset(f, 0, sizeof *f);
    ck_assert_msg(loom_image_source_epoch(src, epoch, &err) == LOOM_OK, "%s", err.msg);
    loom_program_set_source(m->p, loom_image_source_fn, src);
    f->steps = loom_image_source_steps(src);
    ck_assert_int_le(f->steps, MAX_STEPS);
    for (int64_t k = 0; k < f->steps; k++) {
        ck_assert_msg(loom_program_run_steps(m->p, LOOM_RUN_STEP, 1) == LOOM_OK, "%s", loom_program_error(m->p));
        loom_array x, y, t;
        ck_assert_msg(loom_program_fetch(m->p, m->images_seen, &x) == LOOM_OK, "%s", loom_program_error(m->p));
        ck_assert_msg(loom_program_fetch(m->p, m->labels_seen, &y) == LOOM_OK, "%s", loom_program_error(m->p));
        ck_assert(x.dtype == LOOM_F32 && x.ndim == 4 && x.shape[1] == 1 && x.shape[2] == SIDE && x.shape[3] == SIDE);
        ck_assert(y.dtype == LOOM_F32 && y.ndim == 2 && y.shape[0] == x.shape[0]);
        int64_t n = x.shape[0], ln;
        int32_t got[COUNT];
        ck_assert_int_eq(loom_program_fetch(m->p, m->table, &t), LOOM_OK);
        for (int64_t j = 0; j < n; j++) {
            got[j] = -1;
            for (int32_t c = 0; c < COUNT; c++)
                if (((const float *)t.data)[c] == ((const float *)y.data)[j])
                    got[j] = c;
        }
        ck_assert_int_le(f->total + n, COUNT);
        const int32_t *want = loom_image_source_labels(src, k, &ln);
        ck_assert_int_eq(ln, n);
        ck_assert_mem_eq(want, got, (size_t)n * sizeof(int32_t));
        memcpy(f->x[f->total], x.data, (size_t)n * PIX * sizeof(float));
        memcpy(f->y + f->total, got, (size_t)n * sizeof(int32_t));
        for (int64_t j = 0; j < n; j++) {
            ck_assert(f->y[f->total + j] >= 0 && f->y[f->total + j] < COUNT);
            f->image[f->total + j] = image_of(f->y[f->total + j]);
        }
        f->n[k] = n;
        f->total += n;
    }
    int64_t n;
    ck_assert_ptr_null(loom_image_source_labels(src, f->steps, &n));
    ck_assert_int_eq(n, 0);
}

static loom_image_source *source(const model *m, loom_image_opts o)
{
    loom_image_source *src;
    loom_error err = LOOM_ERROR_INIT;
    ck_assert_msg(loom_image_source_new(&m->set, m->images, m->labels, &o, &src, &err) == LOOM_OK, "%s", err.msg);
    return src;
}

static float norm(uint8_t p, const loom_image_opts *o) { return (float)(((double)p / 255.0 - o->mean) / o->std); }

/* Fed image x is image i normalised, cropped at (dy, dx) and flipped as flip says. */
static int is_window(const float *x, int64_t i, int dy, int dx, int flip, const loom_image_opts *o)
{
    for (int y = 0; y < SIDE; y++)
        for (int c = 0; c < SIDE; c++) {
            int sy = y + dy, sx = (flip ? SIDE - 1 - c : c) + dx;
            float want = sy >= 0 && sy < SIDE && sx >= 0 && sx < SIDE ? norm(pixel(i, sy * SIDE + sx), o) : norm(0, o);
            if (memcmp(&want, &x[y * SIDE + c], sizeof want))
                return 0;
        }
    return 1;
}

START_TEST(test_every_image_once_an_epoch)
{
    model m;
    model_new(&m, NULL, -4);
    loom_image_opts o = opts(4, 11);
    loom_image_source *src = source(&m, o);
    ck_assert_int_eq(loom_image_source_steps(src), 3);
    static fed f[3];
    for (int e = 0; e < 3; e++) {
        run_epoch(&m, src, e, &f[e]);
        ck_assert_int_eq(f[e].total, COUNT);
        ck_assert(f[e].n[0] == 4 && f[e].n[1] == 4 && f[e].n[2] == 2);
        int seen[COUNT] = {0};
        for (int j = 0; j < COUNT; j++) {
            seen[f[e].image[j]]++;
            ck_assert(is_window(f[e].x[j], f[e].image[j], 0, 0, 0, &o)); /* no augmentation: the image itself */
        }
        for (int i = 0; i < COUNT; i++)
            ck_assert_int_eq(seen[i], 1);
    }
    ck_assert(memcmp(f[0].image, f[1].image, sizeof f[0].image) || memcmp(f[1].image, f[2].image, sizeof f[1].image));
    /* a run of more steps than are left ends with the epoch, its steps all counted */
    loom_error err = LOOM_ERROR_INIT;
    int64_t before = loom_program_steps(m.p);
    ck_assert_int_eq(loom_image_source_epoch(src, 3, &err), LOOM_OK);
    ck_assert_msg(loom_program_run_steps(m.p, LOOM_RUN_STEP, 100) == LOOM_OK, "%s", loom_program_error(m.p));
    ck_assert_int_eq(loom_program_steps(m.p) - before, 3);
    loom_image_source_free(src);
    model_free(&m);
}
END_TEST

/* The order of an epoch comes from (seed, epoch) alone: the same whatever epochs came before,
 * another with another seed; without shuffle, the set's order. */
START_TEST(test_order_from_seed_and_epoch)
{
    model m;
    model_new(&m, NULL, -3);
    loom_image_opts o = opts(3, 5);
    loom_image_source *a = source(&m, o), *b = source(&m, o);
    o.seed = 6;
    loom_image_source *c = source(&m, o);
    o.shuffle = 0;
    loom_image_source *d = source(&m, o);
    loom_error err = LOOM_ERROR_INIT;
    int32_t la[COUNT], lb[COUNT], lc[COUNT], ld[COUNT];
    for (int e = 0; e < 4; e++)
        ck_assert_int_eq(loom_image_source_epoch(a, e, &err), LOOM_OK);
    ck_assert_int_eq(loom_image_source_epoch(a, 2, &err), LOOM_OK);
    ck_assert_int_eq(loom_image_source_epoch(b, 2, &err), LOOM_OK);
    ck_assert_int_eq(loom_image_source_epoch(c, 2, &err), LOOM_OK);
    ck_assert_int_eq(loom_image_source_epoch(d, 2, &err), LOOM_OK);
    int64_t at = 0;
    for (int64_t k = 0; k < loom_image_source_steps(a); k++) {
        loom_image_source *const src[4] = {a, b, c, d};
        int32_t *const to[4] = {la, lb, lc, ld};
        int64_t n[4];
        for (int q = 0; q < 4; q++) {
            const int32_t *l = loom_image_source_labels(src[q], k, &n[q]);
            memcpy(to[q] + at, l, (size_t)n[q] * sizeof *l);
        }
        ck_assert(n[0] == n[1] && n[0] == n[2] && n[0] == n[3]);
        at += n[0];
    }
    ck_assert_int_eq(at, COUNT);
    ck_assert_mem_eq(la, lb, sizeof la);
    ck_assert(memcmp(la, lc, sizeof la) != 0);
    for (int i = 0; i < COUNT; i++)
        ck_assert_int_eq(ld[i], label_of(i));
    /* and what the program is fed is that order */
    static fed f;
    run_epoch(&m, b, 2, &f);
    ck_assert_mem_eq(f.y, la, sizeof la);
    ck_assert_int_eq(loom_image_source_epoch(a, -1, &err), LOOM_ERR_INVALID);
    loom_image_source_free(a);
    loom_image_source_free(b);
    loom_image_source_free(c);
    loom_image_source_free(d);
    model_free(&m);
}
END_TEST

START_TEST(test_normalisation_exact)
{
    model m;
    model_new(&m, NULL, -5);
    loom_image_opts o = opts(5, 0);
    o.mean = 0.2860;
    o.std = 0.3530;
    loom_image_source *src = source(&m, o);
    static fed f;
    run_epoch(&m, src, 0, &f);
    ck_assert_int_eq(f.total, COUNT);
    for (int j = 0; j < COUNT; j++)
        for (int k = 0; k < PIX; k++) {
            float want = (float)(((double)pixel(f.image[j], k) / 255.0 - 0.2860) / 0.3530);
            ck_assert_msg(!memcmp(&want, &f.x[j][k], sizeof want), "image %d pixel %d: %.9g, expected %.9g", j, k,
                          (double)f.x[j][k], (double)want);
        }
    loom_image_source_free(src);
    model_free(&m);
}
END_TEST

/* Every fed image is some window of its padded image, flipped or not; over a few epochs the crops
 * move and flips happen; the same (seed, epoch) gives the same bytes. */
static void crops(int pad, int flip)
{
    model m;
    model_new(&m, NULL, -4);
    loom_image_opts o = opts(4, 3);
    o.mean = 0.5;
    o.std = 0.25;
    o.crop_pad = pad;
    o.flip = flip;
    loom_image_source *src = source(&m, o);
    int moved = 0, flipped = 0;
    static fed f, again;
    for (int e = 0; e < 4; e++) {
        run_epoch(&m, src, e, &f);
        for (int j = 0; j < COUNT; j++) {
            int found = 0;
            for (int dy = -pad; dy <= pad && !found; dy++)
                for (int dx = -pad; dx <= pad && !found; dx++)
                    for (int fl = 0; fl <= flip && !found; fl++)
                        if (is_window(f.x[j], f.image[j], dy, dx, fl, &o)) {
                            found = 1;
                            moved += dy || dx;
                            flipped += fl;
                        }
            ck_assert_msg(found, "epoch %d, image %d (set image %lld): no window of pad %d%s gives it", e, j,
                          (long long)f.image[j], pad, flip ? " or its flip" : "");
        }
    }
    if (pad)
        ck_assert_int_gt(moved, 10);
    if (flip)
        ck_assert_int_gt(flipped, 5);
    run_epoch(&m, src, 3, &again);
    ck_assert_mem_eq(again.x, f.x, sizeof f.x);
    loom_image_source_free(src);
    model_free(&m);
}

START_TEST(test_crop) { crops(1, 0); }
END_TEST

START_TEST(test_crop_and_flip) { crops(2, 1); }
END_TEST

START_TEST(test_flip) { crops(0, 1); }
END_TEST

START_TEST(test_drop_last)
{
    loom_image_opts o = opts(4, 0);
    static fed f;
    /* off: the last step feeds the 2 left */
    model m;
    model_new(&m, NULL, -4);
    loom_image_source *src = source(&m, o);
    run_epoch(&m, src, 0, &f);
    ck_assert(f.steps == 3 && f.n[2] == 2 && f.total == COUNT);
    loom_image_source_free(src);
    /* on: 2 steps of 4, 2 images left out (other ones each epoch) */
    o.drop_last = 1;
    src = source(&m, o);
    ck_assert_int_eq(loom_image_source_steps(src), 2);
    for (int e = 0; e < 2; e++) {
        run_epoch(&m, src, e, &f);
        ck_assert(f.steps == 2 && f.n[0] == 4 && f.n[1] == 4 && f.total == 8);
        int once[COUNT] = {0};
        for (int j = 0; j < 8; j++)
            ck_assert_int_eq(once[f.image[j]]++, 0);
    }
    loom_image_source_free(src);
    model_free(&m);
    /* a static batch dim: fine with drop_last, refused without it (the last step would not fill it) */
    model st;
    model_new(&st, NULL, 4);
    src = source(&st, o);
    run_epoch(&st, src, 0, &f);
    ck_assert(f.steps == 2 && f.total == 8);
    loom_image_source_free(src);
    o.drop_last = 0;
    loom_error err = LOOM_ERROR_INIT;
    ck_assert_int_eq(loom_image_source_new(&st.set, st.images, st.labels, &o, &src, &err), LOOM_ERR_INVALID);
    ck_assert_msg(strstr(err.msg, "the last step feeds 2 images, not 4: with drop_last off the batch dim of input images ('x') "
                                  "must be a dynamic dim with a bound >= 4"),
                  "%s", err.msg);
    ck_assert_ptr_null(src);
    model_free(&st);
}
END_TEST

/* cpu:0-1, the batch split S(0): each step's images and labels are those one device is fed, the
 * last step's 3 images split 2 and 1. */
START_TEST(test_two_devices)
{
    loom_image_opts o = opts(7, 9);
    o.crop_pad = 1;
    o.flip = 1;
    o.mean = 0.3;
    o.std = 0.5;
    model one, two;
    model_new(&one, NULL, -7);
    model_new(&two, "cpu:0-1", -7);
    ck_assert_int_eq(loom_program_devices(two.p), 2);
    loom_image_source *a = source(&one, o), *b = source(&two, o);
    static fed fa, fb;
    for (int e = 0; e < 2; e++) {
        run_epoch(&one, a, e, &fa);
        run_epoch(&two, b, e, &fb);
        ck_assert(fb.steps == 2 && fb.n[0] == 7 && fb.n[1] == 3 && fb.total == COUNT);
        ck_assert_mem_eq(fa.y, fb.y, sizeof fa.y);
        ck_assert_mem_eq(fa.x, fb.x, sizeof fa.x);
    }
    /* and both trained on the same data: the same losses */
    int64_t na, nb;
    const double *la = loom_program_losses(one.p, &na), *lb = loom_program_losses(two.p, &nb);
    ck_assert_int_eq(na, 4);
    ck_assert_int_eq(nb, 4);
    lt_assert_close(la, lb, na, 1e-5, "losses on cpu:0-1 against one device");
    loom_image_source_free(a);
    loom_image_source_free(b);
    model_free(&one);
    model_free(&two);
}
END_TEST

static void expect_refused(const loom_image_set *s, loom_tensor *x, loom_tensor *y, const loom_image_opts *o, const char *needle)
{
    static char set_before;
    loom_image_source *src = (loom_image_source *)(void *)&set_before; /* to see it cleared */
    loom_error err = LOOM_ERROR_INIT;
    ck_assert_int_eq(loom_image_source_new(s, x, y, o, &src, &err), LOOM_ERR_INVALID);
    ck_assert_ptr_null(src);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "expected '%s' in: %s", needle, err.msg);
}

/* loom_image_set_mean_std on pixels of a hand computation: 0, 255, 255, 255 are 0, 1, 1, 1 on the
 * [0, 1] scale: mean 3/4, variance 3/4 - 9/16 = 3/16; nothing for an empty set. */
START_TEST(test_mean_std)
{
    loom_image_set s = {.count = 2, .channels = 1, .height = 1, .width = 2, .num_classes = 1};
    const int64_t ish[4] = {2, 1, 1, 2};
    ck_assert_int_eq(loom_array_alloc(&s.images, LOOM_U8, 4, ish), LOOM_OK);
    const uint8_t px[4] = {0, 255, 255, 255};
    memcpy(s.images.data, px, 4);
    double mean = -1, std = -1;
    loom_image_set_mean_std(&s, &mean, &std);
    ck_assert_double_eq_tol(mean, 0.75, 1e-15);
    ck_assert_double_eq_tol(std, sqrt(3.0 / 16.0), 1e-15);
    loom_image_set_free(&s);
    loom_image_set_mean_std(&s, &mean, &std);
    ck_assert(mean == 0 && std == 0);
}
END_TEST

START_TEST(test_refusals)
{
    loom_image_set s;
    make_set(&s);
    loom_graph *g = loom_graph_new();
    loom_dim B = loom_dim_dynamic(g, "B", 8), C = loom_dim_dynamic(g, "C", 8);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(B, 1, SIDE, SIDE));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(B));
    loom_tensor *xi = loom_input(g, "xi", LOOM_I32, loom_shape(B, 1, SIDE, SIDE));
    loom_tensor *x5 = loom_input(g, "x5", LOOM_F32, loom_shape(B, 1, SIDE, 5));
    loom_tensor *x3 = loom_input(g, "x3", LOOM_F32, loom_shape(B, SIDE, SIDE));
    loom_tensor *yf = loom_input(g, "yf", LOOM_F32, loom_shape(B));
    loom_tensor *yc = loom_input(g, "yc", LOOM_I32, loom_shape(C));
    loom_tensor *xs = loom_input(g, "xs", LOOM_F32, loom_shape(5, 1, SIDE, SIDE));
    loom_tensor *ys = loom_input(g, "ys", LOOM_I32, loom_shape(5));
    loom_image_opts o = opts(4, 0);

    expect_refused(&s, xi, y, &o, "input images ('xi') is i32 [dynamic, 1, 4, 4]: expected f32 [B, 1, 4, 4] (the set's channels, height and width)");
    expect_refused(&s, x5, y, &o, "input images ('x5') is f32 [dynamic, 1, 4, 5]: expected f32 [B, 1, 4, 4]");
    expect_refused(&s, x3, y, &o, "input images ('x3') is f32 [dynamic, 4, 4]");
    expect_refused(&s, x, yf, &o, "input labels ('yf') is f32 [dynamic]: expected i32 [B], B the batch dim of images");
    expect_refused(&s, x, yc, &o, "input labels ('yc') is i32 [dynamic]: expected i32 [B]");
    expect_refused(&s, xs, ys, &o, "input images ('xs') has a batch dim of 5: expected the batch size, 4, or a dynamic dim");

    loom_image_opts b = o;
    b.batch = 0;
    expect_refused(&s, x, y, &b, "batch is 0: expected at least 1");
    b = o;
    b.batch = 11;
    b.drop_last = 1;
    expect_refused(&s, x, y, &b, "10 images make no full step of 11, and drop_last leaves out the short one");
    b = o;
    b.std = 0;
    expect_refused(&s, x, y, &b, "mean 0 and std 0: expected finite values, std not 0");
    b = o;
    b.crop_pad = 5;
    expect_refused(&s, x, y, &b, "crop_pad is 5: expected 0 to 4 (the images' smaller side)");
    b.crop_pad = -1;
    expect_refused(&s, x, y, &b, "crop_pad is -1");

    ((int32_t *)s.labels.data)[3] = COUNT;
    expect_refused(&s, x, y, &o, "the set's label 3 is 10, outside [0, 10)");
    ((int32_t *)s.labels.data)[3] = label_of(3);
    s.height = 5;
    expect_refused(&s, x, y, &o, "the set's images are not a u8 array [10, 1, 5, 4] (count, channels, height, width)");
    s.height = SIDE;
    s.count = 0;
    expect_refused(&s, x, y, &o, "a set of 0 images of 1 x 4 x 4 in 10 classes: expected each at least 1");
    s.count = COUNT;
    expect_refused(NULL, x, y, &o, "NULL argument");

    loom_error err = LOOM_ERROR_INIT;
    ck_assert_int_eq(loom_image_source_epoch(NULL, 0, &err), LOOM_ERR_INVALID);
    ck_assert_int_eq(loom_image_source_steps(NULL), 0);
    ck_assert_ptr_null(loom_image_source_labels(NULL, 0, NULL));
    loom_image_source_free(NULL);
    loom_graph_free(g);
    loom_image_set_free(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image_source");
    TCase *tc = tcase_create("source");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_every_image_once_an_epoch);
    tcase_add_test(tc, test_mean_std);
    tcase_add_test(tc, test_order_from_seed_and_epoch);
    tcase_add_test(tc, test_normalisation_exact);
    tcase_add_test(tc, test_crop);
    tcase_add_test(tc, test_crop_and_flip);
    tcase_add_test(tc, test_flip);
    tcase_add_test(tc, test_drop_last);
    tcase_add_test(tc, test_two_devices);
    tcase_add_test(tc, test_refusals);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
