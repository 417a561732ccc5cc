/* Checkpoints (loom_program_save, loom_program_load): training resumed from a checkpoint goes on
 * bit for bit as if it had never stopped (an MLP with Adam, one with SGD and momentum, one with
 * batch norm; on cpu:0 and data parallel on cpu:0-1; a program that had run and one that had not),
 * a checkpoint moves between placements; a file of another model, and every way a file can be
 * malformed, are refused naming the file and the byte offset, leaving the program as it was; a
 * save that fails leaves the old file whole and no temporary file. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

enum { NB = 8, NF = 5, NC = 3, N_STEPS = 4, M_STEPS = 3, TOTAL = N_STEPS + M_STEPS };

typedef enum { MLP_ADAM, MLP_SGD, BN_SGD, NKINDS } model_kind;
static const char *const kind_name[NKINDS] = {"an MLP with Adam", "an MLP with SGD and momentum", "a net with batch norm"};

/* What differs between models of a kind: another model, for the refusals. */
typedef struct variant {
    int hidden;       /* 6 */
    loom_dtype dtype; /* LOOM_F32 */
} variant;
static const variant plain = {6, LOOM_F32};

typedef struct model {
    loom_graph *g;
    loom_program *p;
    loom_tensor *x, *y;
    model_kind kind;
    loom_dtype dtype;
} model;

static const char *const param_names[] = {"fc1.weight", "fc1.bias",  "fc2.weight",      "fc2.bias",
                                          "bn.weight",  "bn.bias",   "bn.running_mean", "bn.running_var"};

static int nparams(model_kind k) { return k == BN_SGD ? 8 : 4; }

/* x -> linear -> (batch norm) -> relu -> (dropout) -> linear -> cross-entropy, under a cosine schedule
 * over TOTAL steps, so that the step count sets each step's rate (and dropout's masks). */
static void model_new(model *m, model_kind kind, const char *placement, variant v)
{
    *m = (model){.g = loom_graph_new(), .kind = kind, .dtype = v.dtype};
    loom_graph *g = m->g;
    loom_graph_set_seed(g, 11);
    if (placement) {
        loom_placement *pl = loom_placement_parse(placement, NULL);
        ck_assert(pl);
        loom_graph_set_placement(g, pl);
        loom_placement_free(pl);
    }
    m->x = loom_input(g, "x", v.dtype, loom_shape(NB, NF));
    m->y = loom_input(g, "y", LOOM_I32, loom_shape(NB));
    loom_tensor *h = loom_nn_linear(g, "fc1", m->x, v.hidden, 1);
    if (kind == BN_SGD)
        h = loom_batch_norm(g, "bn", h, 0.1, 1e-5);
    h = loom_relu(g, h);
    if (kind != BN_SGD)
        h = loom_dropout(g, h, 0.25);
    loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc2", h, NC, 1), m->y, NULL);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = kind == MLP_ADAM ? loom_adam(0.02) : loom_sgd(0.1);
    if (kind != MLP_ADAM) {
        o.optimizer.momentum = 0.9;
        o.optimizer.weight_decay = 1e-3;
    }
    o.optimizer.schedule = LOOM_LR_COSINE;
    o.optimizer.total_steps = TOTAL;
    o.optimizer.min_lr = 1e-3;
    ck_assert_msg(loom_compile(g, loss, &o, &m->p) == LOOM_OK, "%s", loom_graph_error(g));
}

static void model_free(model *m)
{
    loom_program_free(m->p);
    loom_graph_free(m->g);
}

/* Feeds the data of the program's next step (it depends on the step count only), with salt 0;
 * another salt gives other data. */
static void feed(model *m, int salt)
{
    int64_t step = loom_program_steps(m->p) + 100 * salt;
    double xd[NB * NF];
    float xf[NB * NF];
    int32_t y[NB];
    for (int i = 0; i < NB * NF; i++)
        xf[i] = (float)(xd[i] = (double)((i * 7 + step * 3) % 11) / 11.0 - 0.4);
    for (int i = 0; i < NB; i++)
        y[i] = (int32_t)((i * 5 + step) % NC);
    int f32 = m->dtype == LOOM_F32;
    loom_array xa = {.dtype = f32 ? LOOM_F32 : LOOM_F64, .ndim = 2, .shape = {NB, NF}, .data = f32 ? (void *)xf : (void *)xd};
    loom_array ya = {.dtype = LOOM_I32, .ndim = 1, .shape = {NB}, .data = y};
    ck_assert_msg(loom_program_feed(m->p, m->x, &xa) == LOOM_OK, "%s", loom_program_error(m->p));
    ck_assert_msg(loom_program_feed(m->p, m->y, &ya) == LOOM_OK, "%s", loom_program_error(m->p));
}

static void train(model *m, int steps, int salt)
{
    for (int k = 0; k < steps; k++) {
        feed(m, salt);
        ck_assert_msg(loom_program_run(m->p, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(m->p));
    }
}

/* The last n losses. */
static void last_losses(model *m, int n, double *out)
{
    int64_t have;
    const double *l = loom_program_losses(m->p, &have);
    ck_assert_int_ge(have, n);
    memcpy(out, l + have - n, (size_t)n * sizeof *out);
}

/* The parameters' bytes, one after another, through loom_program_fetch. */
typedef struct snapshot {
    unsigned char bytes[4096];
    size_t n;
    int64_t step;
} snapshot;

static void take(model *m, snapshot *s)
{
    s->n = 0;
    s->step = loom_program_steps(m->p);
    for (int k = 0; k < nparams(m->kind); k++) {
        loom_array a;
        loom_tensor *t = loom_graph_find(m->g, param_names[k]);
        ck_assert_msg(t, "no parameter %s", param_names[k]);
        ck_assert_msg(loom_program_fetch(m->p, t, &a) == LOOM_OK, "%s", loom_program_error(m->p));
        size_t n = (size_t)lt_numel(a.ndim, a.shape) * (a.dtype == LOOM_F32 ? 4 : 8);
        ck_assert_uint_le(s->n + n, sizeof s->bytes);
        memcpy(s->bytes + s->n, a.data, n);
        s->n += n;
    }
}

static void assert_same(const snapshot *a, const snapshot *b, const char *what)
{
    ck_assert_msg(a->step == b->step, "%s: step %lld, expected %lld", what, (long long)a->step, (long long)b->step);
    ck_assert_msg(a->n == b->n && !memcmp(a->bytes, b->bytes, a->n), "%s: the parameters' bits differ", what);
}

/* ---- files -------------------------------------------------------------------------------------- */

static char dir[] = "/tmp/loom_ckpt_XXXXXX";

static void setup(void) { ck_assert(mkdtemp(dir)); }

static void teardown(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (remove(path) != 0)
                rmdir(path);
        }
    if (d)
        closedir(d);
    rmdir(dir);
    memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
}

static const char *path_of(const char *name)
{
    static char path[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
    return path[k];
}

/* The whole file (free it); *len its length. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f, "cannot open %s: %s", path, strerror(errno));
    unsigned char *b = malloc(1 << 20);
    ck_assert(b);
    *len = fread(b, 1, 1 << 20, f);
    ck_assert_uint_lt(*len, 1 << 20);
    fclose(f);
    return b;
}

/* The whole file (free it), its length and its header's length (the first 8 bytes). */
static unsigned char *slurp_header(const char *path, size_t *len, uint64_t *h)
{
    unsigned char *b = slurp(path, len);
    ck_assert_uint_ge(*len, 8);
    *h = 0;
    for (int k = 0; k < 8; k++)
        *h |= (uint64_t)b[k] << 8 * k;
    return b;
}

static void spit(const char *path, const void *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert(f);
    ck_assert_uint_eq(fwrite(b, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void assert_same_files(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    ck_assert_msg(na == nb && !memcmp(x, y, na), "%s and %s differ", a, b);
    free(x);
    free(y);
}

/* Names in dir other than those of the files given: temporary files left behind. */
static int strays(const char *keep)
{
    DIR *d = opendir(dir);
    ck_assert(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && (!keep || strcmp(e->d_name, keep)))
            n++;
    closedir(d);
    return n;
}

static void save(model *m, const char *path)
{
    ck_assert_msg(loom_program_save(m->p, path) == LOOM_OK, "%s", loom_program_error(m->p));
}

static void load(model *m, const char *path)
{
    ck_assert_msg(loom_program_load(m->p, path) == LOOM_OK, "%s", loom_program_error(m->p));
}

/* ---- resuming ------------------------------------------------------------------------------------- */

/* N steps, a save, a fresh program (that has run two steps of other data first when `used`, so
 * that its devices hold their own parameters) loaded, M steps: the losses, the parameters and a
 * checkpoint of them all as N + M steps straight. */
static void resume_case(model_kind kind, const char *placement, int used)
{
    model straight, first, second;
    model_new(&straight, kind, placement, plain);
    train(&straight, TOTAL, 0);
    double want[M_STEPS], got[M_STEPS];
    last_losses(&straight, M_STEPS, want);
    snapshot ws, gs;
    take(&straight, &ws);
    save(&straight, path_of("straight.safetensors"));

    model_new(&first, kind, placement, plain);
    train(&first, N_STEPS, 0);
    save(&first, path_of("n.safetensors"));
    model_free(&first);

    model_new(&second, kind, placement, plain);
    if (used)
        train(&second, 2, 1);
    load(&second, path_of("n.safetensors"));
    ck_assert_int_eq(loom_program_steps(second.p), N_STEPS);
    train(&second, M_STEPS, 0);
    last_losses(&second, M_STEPS, got);
    take(&second, &gs);
    for (int i = 0; i < M_STEPS; i++)
        ck_assert_msg(!memcmp(&got[i], &want[i], sizeof got[i]), "%s on %s%s: loss %d after resuming is %.17g, straight %.17g",
                      kind_name[kind], placement, used ? " (a program that had run)" : "", N_STEPS + i, got[i], want[i]);
    assert_same(&gs, &ws, kind_name[kind]);
    save(&second, path_of("resumed.safetensors"));
    assert_same_files(path_of("resumed.safetensors"), path_of("straight.safetensors"));
    model_free(&second);
    model_free(&straight);
}

START_TEST(resume_equals_straight)
{
    static const char *const places[] = {"cpu:0", "cpu:0-1"};
    for (int k = 0; k < NKINDS; k++)
        for (int pl = 0; pl < 2; pl++)
            for (int used = 0; used < 2; used++)
                resume_case((model_kind)k, places[pl], used);
}
END_TEST

/* A checkpoint saved on one placement and loaded on another: the loaded program holds the same
 * bits (its own checkpoint is the same file), its steps go on as the saving program's do (up to
 * the order of the placements' sums: the two never agree bit for bit on this model), and bit for
 * bit as a fresh program's of the loading placement from the same file, though its own devices
 * held values of their own before the load. */
static void across_case(model_kind kind, const char *from, const char *to)
{
    model a, b, c;
    model_new(&a, kind, from, plain);
    train(&a, N_STEPS, 0);
    save(&a, path_of("from.safetensors"));
    snapshot sa, sb, sc;
    take(&a, &sa);

    model_new(&b, kind, to, plain);
    train(&b, 1, 1);
    load(&b, path_of("from.safetensors"));
    take(&b, &sb);
    assert_same(&sb, &sa, "loaded on another placement");
    save(&b, path_of("to.safetensors"));
    assert_same_files(path_of("to.safetensors"), path_of("from.safetensors"));

    train(&a, M_STEPS, 0);
    train(&b, M_STEPS, 0);
    double la[M_STEPS], lb[M_STEPS], lc[M_STEPS];
    last_losses(&a, M_STEPS, la);
    last_losses(&b, M_STEPS, lb);
    lt_assert_close(lb, la, M_STEPS, 1e-5, "losses after a move between placements");

    model_new(&c, kind, to, plain);
    load(&c, path_of("from.safetensors"));
    train(&c, M_STEPS, 0);
    last_losses(&c, M_STEPS, lc);
    ck_assert_msg(!memcmp(lc, lb, sizeof lc), "%s, %s to %s: the losses of a program that had run differ from a fresh one's",
                  kind_name[kind], from, to);
    take(&b, &sb);
    take(&c, &sc);
    assert_same(&sb, &sc, "moved, then trained");
    model_free(&a);
    model_free(&b);
    model_free(&c);
}

START_TEST(across_placements)
{
    for (int k = 0; k < NKINDS; k++) {
        across_case((model_kind)k, "cpu:0-1", "cpu:0");
        across_case((model_kind)k, "cpu:0", "cpu:0-1");
    }
}
END_TEST

/* ---- refusals ------------------------------------------------------------------------------------- */

/* A file of the given header text (its length prefixed) and data. */
static void craft(const char *path, const char *header, const void *data, size_t n)
{
    size_t h = strlen(header);
    unsigned char *b = malloc(8 + h + n + 1);
    ck_assert(b);
    for (int k = 0; k < 8; k++)
        b[k] = (unsigned char)((uint64_t)h >> 8 * k);
    memcpy(b + 8, header, h);
    if (n)
        memcpy(b + 8 + h, data, n);
    spit(path, b, 8 + h + n);
    free(b);
}

/* loom_program_load refuses path with status, its message holding each of the needles (NULL ends
 * them), and leaves the program as it was. */
static void refused(model *m, const char *path, loom_status status, ...)
{
    snapshot before, after;
    take(m, &before);
    loom_status s = loom_program_load(m->p, path);
    const char *msg = loom_program_error(m->p);
    ck_assert_msg(s == status, "%s: status %d (%s), expected %d", path, (int)s, msg ? msg : "no message", (int)status);
    ck_assert_msg(msg && strstr(msg, "loom_program_load: ") && strstr(msg, path), "'%s' does not name %s", msg, path);
    va_list ap;
    va_start(ap, status);
    for (const char *n; (n = va_arg(ap, const char *));)
        ck_assert_msg(strstr(msg, n), "'%s' lacks '%s'", msg, n);
    va_end(ap);
    take(m, &after);
    assert_same(&after, &before, "after a refused load");
}

START_TEST(other_models_refused)
{
    model m, other;
    model_new(&m, MLP_ADAM, NULL, plain);
    train(&m, 2, 0);

    model_new(&other, MLP_SGD, NULL, plain); /* the parameters, but no Adam state */
    train(&other, 1, 0);
    save(&other, path_of("sgd.safetensors"));
    refused(&m, path_of("sgd.safetensors"), LOOM_ERR_FORMAT, "not a checkpoint of this program",
            "it has no tensor 'fc1.weight.exp_avg' (the program's is F32 [5, 6])", NULL);
    model_free(&other);

    model_new(&other, MLP_ADAM, NULL, (variant){7, LOOM_F32}); /* another width */
    save(&other, path_of("wide.safetensors"));
    refused(&m, path_of("wide.safetensors"), LOOM_ERR_FORMAT, "tensor 'fc1.weight' is F32 [5, 7] there (byte ",
            "F32 [5, 6] in the program", NULL);
    model_free(&other);

    model_new(&other, MLP_ADAM, NULL, (variant){6, LOOM_F64}); /* another dtype */
    save(&other, path_of("f64.safetensors"));
    refused(&m, path_of("f64.safetensors"), LOOM_ERR_FORMAT, "tensor 'fc1.weight' is F64 [5, 6] there", NULL);
    model_free(&other);

    /* one tensor more: the program's own checkpoint with "extra" after it */
    save(&m, path_of("own.safetensors"));
    size_t n;
    uint64_t h;
    unsigned char *b = slurp_header(path_of("own.safetensors"), &n, &h);
    char *head = calloc(h + 128, 1);
    memcpy(head, b + 8, h);
    char *close = strrchr(head, '}');
    uint64_t data = n - 8 - h;
    snprintf(close, 100, ",\"extra\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%llu,%llu]}}", (unsigned long long)data,
             (unsigned long long)data + 4);
    unsigned char *body = calloc(data + 4, 1);
    memcpy(body, b + 8 + h, data);
    craft(path_of("extra.safetensors"), head, body, data + 4);
    refused(&m, path_of("extra.safetensors"), LOOM_ERR_FORMAT, "it has tensor 'extra' (byte ", "which the program has not",
            NULL);
    /* and the file without it is the program's: read back, nothing changes */
    snapshot before, after;
    take(&m, &before);
    load(&m, path_of("own.safetensors"));
    take(&m, &after);
    assert_same(&after, &before, "its own checkpoint read back");
    free(body);
    free(head);
    free(b);

    refused(&m, path_of("none.safetensors"), LOOM_ERR_IO, "cannot open", NULL);
    refused(&m, dir, LOOM_ERR_IO, "not a regular file", NULL);
    model_free(&m);
}
END_TEST

/* Headers made by hand, each with `data` bytes after it, refused naming the byte where `at` stands in
 * the header (or, at NULL, the file's end less `back`) and what the needle says. */
#define META "{\"__metadata__\":{\"optimizer\":\"adam\",\"step\":\"3\"}"
#define A8 ",\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"
static const struct {
    const char *header;
    int data;
    const char *at;
    int back;
    const char *needle;
} crafted[] = {
    /* the JSON cut, a header that is not an object */
    {"{\"__metadata__\":", 0, NULL, 0, "expected a value, the text ended (in the JSON header, bytes 8 to 24)"},
    {"[1, 2]", 0, "[", 0, "expected the header to be a JSON object of tensors"},
    /* offsets: overlapping, out of order, past the data, a gap, bytes after the last, not the shape's */
    {META A8 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "[4,12]", 0,
     "tensor 'b': data_offsets [4, 12] overlap those of 'a' [0, 8]"},
    {META ",\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, "[8,0]", 0,
     "tensor 'a': data_offsets [8, 0] are out of order (expected begin <= end)"},
    {META A8 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 12, NULL, 0,
     "the file ends here, inside the data of tensor 'b' (its data_offsets [8, 16], at byte 155"},
    {META A8 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, "[12,20]", 0,
     "tensor 'b': data_offsets [12, 20] leave a gap: expected its data to begin at 8, where the one before ends"},
    {META A8 "}", 10, NULL, 2, "2 bytes after the last tensor's data: expected the file to end here"},
    {META ",\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "[0,8]", 0,
     "tensor 'a': data_offsets [0, 8] hold 8 bytes: expected 12, the bytes of F32 [3]"},
    /* entries: an unknown dtype, a shape that is not sizes, offsets that are not two, a name twice */
    {META ",\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "\"F33\"", 0,
     "tensor 'a': unknown dtype \"F33\": expected one of the format's"},
    {META ",\"a\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,8]}}", 8, "-1", 0,
     "tensor 'a': dim 1 of its shape is not a size (an integer >= 0)"},
    {META ",\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "[0]", 0,
     "tensor 'a': expected data_offsets [begin, end], two integers >= 0"},
    {META A8 ",\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16,
     "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8", 0, "a second tensor named 'a'"},
    /* the metadata: none, a step count that is not one */
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "{", 0,
     "no __metadata__: expected the step count there (\"step\": \"12\")"},
    {"{\"__metadata__\":{\"step\":\"-3\"}}", 0, "\"-3\"", 0, "__metadata__'s step is \"-3\": expected a count of steps"},
};

START_TEST(malformed_files_refused)
{
    model m;
    model_new(&m, MLP_ADAM, NULL, plain);
    train(&m, 2, 0);
    save(&m, path_of("good.safetensors"));
    size_t n;
    unsigned char *good = slurp(path_of("good.safetensors"), &n), *b = malloc(n + 64);
    const char *bad = path_of("bad.safetensors");
    unsigned char zeros[64] = {0};

    /* truncated: inside the length, a header length past the end, the data short (the JSON cut: below) */
    spit(bad, good, 5);
    refused(&m, bad, LOOM_ERR_FORMAT, ": byte 5: the file ends here: expected an 8-byte header length", NULL);
    spit(bad, good, 18);
    refused(&m, bad, LOOM_ERR_FORMAT, ": byte 0: a header length of ", "the file ends 10 bytes after it: truncated", NULL);
    spit(bad, good, n - 4);
    char want[160];
    snprintf(want, sizeof want, ": byte %zu: the file ends here, inside the data of tensor '", n - 4);
    refused(&m, bad, LOOM_ERR_FORMAT, want, "truncated, or offsets past the data", NULL);

    /* bad JSON: a ';' for the ':' after "__metadata__" */
    memcpy(b, good, n);
    b[8 + 15] = ';';
    spit(bad, b, n);
    refused(&m, bad, LOOM_ERR_FORMAT, ": byte 23: expected ':' after a member's name", NULL);

    /* a header length over the limit, before anything else is read */
    memcpy(b, good, n);
    for (int k = 0; k < 8; k++)
        b[k] = (unsigned char)(UINT64_C(200000000) >> 8 * k);
    spit(bad, b, n);
    refused(&m, bad, LOOM_ERR_FORMAT, ": byte 0: a header length of 200000000 bytes, over the limit of 100000000", NULL);

    for (size_t i = 0; i < sizeof crafted / sizeof *crafted; i++) {
        const char *h = crafted[i].header;
        craft(bad, h, zeros, (size_t)crafted[i].data);
        size_t at = crafted[i].at ? 8 + (size_t)(strstr(h, crafted[i].at) - h)
                                  : 8 + strlen(h) + (size_t)crafted[i].data - (size_t)crafted[i].back;
        snprintf(want, sizeof want, ": byte %zu: ", at);
        refused(&m, bad, LOOM_ERR_FORMAT, want, crafted[i].needle, NULL);
    }

    /* every prefix of the good file is refused, each naming the file */
    for (size_t k = 0; k < n; k += k < 64 ? 1 : 97) {
        spit(bad, good, k);
        refused(&m, bad, LOOM_ERR_FORMAT, ": byte ", NULL);
    }
    free(good);
    free(b);
    model_free(&m);
}
END_TEST

/* ---- saving ------------------------------------------------------------------------------------- */

START_TEST(failed_save_leaves_the_old_file)
{
    model m;
    model_new(&m, MLP_SGD, NULL, plain);
    train(&m, 1, 0);
    const char *path = path_of("ck.safetensors");
    save(&m, path);
    size_t n0;
    unsigned char *old = slurp(path, &n0);
    train(&m, 1, 0);

    /* a directory that does not exist: nothing made */
    const char *missing = path_of("no/such/dir/ck.safetensors");
    ck_assert_int_eq(loom_program_save(m.p, missing), LOOM_ERR_IO);
    ck_assert_msg(strstr(loom_program_error(m.p), missing) && strstr(loom_program_error(m.p), strerror(ENOENT)), "%s",
                  loom_program_error(m.p));
    ck_assert_int_eq(strays("ck.safetensors"), 0);

    /* writes that fail halfway (the file size limit): the temporary file goes, the old file stays */
    struct rlimit was, small = {.rlim_cur = 64, .rlim_max = RLIM_INFINITY};
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &was), 0);
    small.rlim_max = was.rlim_max;
    void (*handler)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    loom_status s = loom_program_save(m.p, path);
    setrlimit(RLIMIT_FSIZE, &was);
    signal(SIGXFSZ, handler);
    ck_assert_int_eq(s, LOOM_ERR_IO);
    ck_assert_msg(strstr(loom_program_error(m.p), "cannot write") && strstr(loom_program_error(m.p), path), "%s",
                  loom_program_error(m.p));
    ck_assert_int_eq(strays("ck.safetensors"), 0);
    size_t n1;
    unsigned char *now = slurp(path, &n1);
    ck_assert_msg(n1 == n0 && !memcmp(now, old, n0), "a failed save changed %s", path);
    free(now);

    /* a read-only directory (root writes there anyway) */
    if (geteuid() != 0) {
        ck_assert_int_eq(chmod(dir, 0555), 0);
        s = loom_program_save(m.p, path);
        chmod(dir, 0700);
        ck_assert_int_eq(s, LOOM_ERR_IO);
        ck_assert_msg(strstr(loom_program_error(m.p), strerror(EACCES)), "%s", loom_program_error(m.p));
        now = slurp(path, &n1);
        ck_assert_msg(n1 == n0 && !memcmp(now, old, n0), "a failed save changed %s", path);
        free(now);
    }

    /* and a save that works replaces it whole, leaving nothing else */
    save(&m, path);
    ck_assert_int_eq(strays("ck.safetensors"), 0);
    now = slurp(path, &n1);
    ck_assert_msg(n1 == n0 && memcmp(now, old, n0), "the new checkpoint is the old one");
    free(now);
    free(old);
    model_free(&m);
}
END_TEST

/* The header as the format has it: the names, the metadata and the data's alignment. */
START_TEST(header_names)
{
    static const char *const want[NKINDS][3] = {{"\"fc1.weight.exp_avg\":{\"dtype\":\"F32\",\"shape\":[5,6]",
                                                 "\"fc2.bias.exp_avg_sq\":", "\"optimizer\":\"adam\",\"step\":\"2\""},
                                                {"\"fc1.weight.momentum\":", "\"fc2.bias\":", "\"optimizer\":\"sgd\""},
                                                {"\"bn.running_mean\":{\"dtype\":\"F32\",\"shape\":[6]", "\"bn.bias.momentum\":",
                                                 "\"step\":\"2\""}};
    for (int k = 0; k < NKINDS; k++) {
        model m;
        model_new(&m, (model_kind)k, NULL, plain);
        train(&m, 2, 0);
        save(&m, path_of("h.safetensors"));
        size_t n;
        uint64_t h;
        unsigned char *b = slurp_header(path_of("h.safetensors"), &n, &h);
        ck_assert_uint_eq((8 + h) % 8, 0);
        char *head = strndup((char *)b + 8, h);
        for (int i = 0; i < 3; i++)
            ck_assert_msg(strstr(head, want[k][i]), "%s: the header lacks %s: %s", kind_name[k], want[k][i], head);
        ck_assert_msg(!strstr(head, "running_mean.momentum"), "running statistics take no optimizer state: %s", head);
        free(head);
        free(b);
        model_free(&m);
    }
}
END_TEST

START_TEST(names_that_collide_refused)
{
    loom_graph *g = loom_graph_new();
    loom_tensor *w = loom_param(g, "w", LOOM_F32, loom_shape(2), loom_init_constant(1));
    loom_tensor *c = loom_param(g, "w.momentum", LOOM_F32, loom_shape(2), loom_init_constant(2));
    loom_tensor *loss = loom_sum(g, loom_mul(g, w, c), LOOM_ALL_AXES, 0);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_sgd(0.1);
    loom_program *p;
    ck_assert_msg(loom_compile(g, loss, &o, &p) == LOOM_OK, "%s", loom_graph_error(g));
    ck_assert_int_eq(loom_program_save(p, path_of("x.safetensors")), LOOM_ERR_INVALID);
    ck_assert_msg(strstr(loom_program_error(p), "would be saved as 'w.momentum'"), "%s", loom_program_error(p));
    ck_assert_int_eq(strays(NULL), 0);
    ck_assert_int_eq(loom_program_load(p, path_of("x.safetensors")), LOOM_ERR_INVALID);
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, resume_equals_straight);
    tcase_add_test(tc, across_placements);
    tcase_add_test(tc, other_models_refused);
    tcase_add_test(tc, malformed_files_refused);
    tcase_add_test(tc, failed_save_leaves_the_old_file);
    tcase_add_test(tc, header_names);
    tcase_add_test(tc, names_that_collide_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lt_run_suite(suite()); }
