/* libFuzzer target for the graph builder, compile and a run: the input bytes drive a sequence of
 * builder calls (inputs, parameters, CSR inputs and ops on earlier tensors) with shapes drawn from
 * small sizes, huge ones (2^31, 2^40, 2^62 + 4, INT64_MAX ...), raw 64-bit values and dynamic dims
 * with such bounds; then loom_compile, and when the program is small, feeds of data that fit the
 * bounds and a run (actors or the reference executor, one or two CPU devices, the numerics check
 * on or off).
 *
 * What must hold: no crash, sanitizer report or leak; every tensor the builder accepts has its
 * element and byte counts, and its strides, in an int64 at the bounds of its dims (checked here
 * independently); a
 * graph error has a message and compile returns its status; a failed compile, feed or run leaves
 * a message. Error statuses themselves are fine.
 *
 * Built by CMake with -DLOOM_FUZZ=ON (scripts/fuzz.sh builder), or by hand against a clang
 * -fsanitize=fuzzer-no-link,address,undefined build of the library:
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *       -Iinclude -I. tests/fuzz/fuzz_builder.c build-fuzz/libloom.a -lopenblas -lck -lhwloc -lz -lm -o /tmp/fuzz_builder
 *   /tmp/fuzz_builder -runs=200000 /tmp/builder-corpus tests/fuzz/corpus/builder
 * The seeds in tests/fuzz/corpus/builder are byte programs in this file's encoding: a small MLP
 * with a loss (Adam on actors; SGD on two devices with the reference executor), a GCN-like layer
 * over a CSR input (one and two devices), a concat/slice/reshape/transpose chain, gather and
 * segment ops, dropout with a mean, graphs with a dynamic bound of 2^62 + 4 or 2^61 - 1, [2^31,
 * 2^31] and [2^40, 2^40] parameters, raw negative and INT64_MAX dims, the empty input, and
 * regress_* inputs that once failed. Every byte is read in its own statement, so an input means
 * the same under every compiler (a call's arguments are evaluated in no set order). */
#include <loom/loom.h>

#include "fuzz.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


enum { MAX_T = 24, MAX_DYN = 3, MAX_OPS = 16 };
enum { K_OP, K_INPUT, K_CSR, K_PARAM };

/* Budgets that keep one input quick and within libFuzzer's memory limit; beyond them the input
 * stops after compile (or before it, for parameters). */
#define PARAM_BUDGET (1 << 20) /* bytes of parameters (times 3 with Adam's state) */
#define PLAN_BUDGET (256 << 10) /* bytes of a plan at the bounds */
#define FEED_ROWS 6             /* the most a dynamic dim is fed */

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static unsigned u8(reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

static uint64_t u64(reader *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | u8(r);
    return v;
}

typedef struct fz {
    loom_graph *g;
    loom_dim dyn[MAX_DYN];
    int64_t bound[MAX_DYN];
    int ndyn;
    loom_tensor *t[MAX_T];
    uint8_t kind[MAX_T]; /* what made it */
    int nt;
} fz;

static const int64_t sizes[] = {
    0, 1, 2, 3, 4, 5, 7, 8, 16, 64,
    INT64_C(1) << 31, INT64_C(1) << 32, (INT64_C(1) << 31) + 1, INT64_C(1) << 40, (INT64_C(1) << 61) - 1,
    INT64_C(1) << 61, INT64_C(1) << 62, (INT64_C(1) << 62) + 4, INT64_MAX, INT64_MAX / 4, INT64_MAX / 8 + 1,
};
#define NSMALL 10
#define NSIZES ((int)(sizeof sizes / sizeof sizes[0]))

/* A size: mostly small, sometimes huge, rarely raw (negative, or anything). */
static int64_t size_of(reader *r)
{
    unsigned k = u8(r);
    if (k < 160)
        return sizes[k % NSMALL];
    if (k < 250)
        return sizes[NSMALL + k % (NSIZES - NSMALL)];
    return (int64_t)u64(r);
}

/* A dim: a size, or (when allowed and made) one of the graph's dynamic dims; the first byte
 * chooses between them and, for a size, the size too (so it is only peeked at first). */
static loom_dim dim_of(fz *f, reader *r, int allow_dyn)
{
    unsigned k = r->n ? r->p[0] : 0;
    if (allow_dyn && f->ndyn && k >= 192) {
        u8(r);
        return f->dyn[k % f->ndyn];
    }
    return size_of(r);
}

static int64_t bound_of(const fz *f, loom_dim d)
{
    for (int k = 0; k < f->ndyn; k++)
        if (d == f->dyn[k])
            return f->bound[k];
    return d;
}

static loom_shape shape_of(fz *f, reader *r, int allow_dyn)
{
    loom_shape s = {.ndim = (int)(u8(r) % 4)};
    for (int i = 0; i < s.ndim; i++)
        s.d[i] = dim_of(f, r, allow_dyn);
    return s;
}

static loom_tensor *pick(fz *f, reader *r) { return f->nt ? f->t[u8(r) % f->nt] : NULL; }

static int64_t mul_or_over(int64_t a, int64_t b, int *over)
{
    int64_t c;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &c)) {
        *over = 1;
        return 0;
    }
    return c;
}

/* Bytes of a dense tensor at its bounds with its zero dims counted as 1 (its largest stride times
 * the first dim: kernels compute strides of empty tensors too), -1 when over an int64 (the
 * property the builder keeps). */
static int64_t dense_bytes(const fz *f, const loom_tensor *t)
{
    loom_shape s = loom_tensor_shape(t);
    int over = 0;
    int64_t b = (int64_t)loom_dtype_size(loom_tensor_dtype(t));
    for (int i = 0; i < s.ndim; i++) {
        int64_t d = bound_of(f, s.d[i]);
        b = mul_or_over(b, d ? d : 1, &over);
    }
    return over ? -1 : b;
}

static void add(fz *f, loom_tensor *t, int kind)
{
    if (t && f->nt < MAX_T) {
        f->kind[f->nt] = (uint8_t)kind;
        f->t[f->nt++] = t;
    }
}

static void build_op(fz *f, reader *r, int serial)
{
    loom_graph *g = f->g;
    char name[16];
    snprintf(name, sizeof name, "t%d", serial);
    static const loom_dtype dtypes[4] = {LOOM_F32, LOOM_F64, LOOM_I32, LOOM_U8};
    loom_tensor *a = pick(f, r), *b = pick(f, r), *c = pick(f, r);
    switch (u8(r) % 20) {
    case 0:
    case 1: { /* every read in its own statement: the order of a call's arguments is unspecified */
        loom_dtype dt = dtypes[u8(r) % 4];
        loom_shape s = shape_of(f, r, 1);
        add(f, loom_input(g, name, dt, s), K_INPUT);
        break;
    }
    case 2: {
        loom_shape s = shape_of(f, r, 0); /* parameters are static */
        unsigned k = u8(r) % 3;
        loom_init in = k == 0 ? loom_init_zeros() : k == 1 ? loom_init_uniform(-1.0, 1.0, 7) : loom_init_glorot(3);
        add(f, loom_param(g, name, u8(r) & 1 ? LOOM_F64 : LOOM_F32, s, in), K_PARAM);
        break;
    }
    case 3: {
        loom_dim rows = dim_of(f, r, 1), cols = dim_of(f, r, 1);
        add(f, loom_input_csr(g, name, u8(r) & 1 ? LOOM_F64 : LOOM_F32, rows, cols), K_CSR);
        break;
    }
    case 4: {
        unsigned k = u8(r);
        add(f, loom_matmul_ex(g, a, b, k & 1, k >> 1 & 1), K_OP);
        break;
    }
    case 5: {
        unsigned k = u8(r) % 4;
        add(f, k == 0 ? loom_add(g, a, b) : k == 1 ? loom_sub(g, a, b) : k == 2 ? loom_mul(g, a, b) : loom_div(g, a, b), K_OP);
        break;
    }
    case 6: {
        unsigned k = u8(r) % 6;
        add(f, k == 0 ? loom_relu(g, a) : k == 1 ? loom_tanh(g, a) : k == 2 ? loom_sigmoid(g, a)
               : k == 3 ? loom_elu(g, a, 1.0) : k == 4 ? loom_leaky_relu(g, a, 0.1) : loom_scale(g, a, 0.5), K_OP);
        break;
    }
    case 7: {
        uint32_t mask = u8(r) & 1 ? LOOM_ALL_AXES : u8(r) & 7;
        add(f, u8(r) & 1 ? loom_sum(g, a, mask, u8(r) & 1) : loom_mean(g, a, mask, u8(r) & 1), K_OP);
        break;
    }
    case 8:
        add(f, loom_reshape(g, a, shape_of(f, r, 1)), K_OP);
        break;
    case 9: {
        int perm[LOOM_MAX_DIMS] = {0, 1, 2, 3, 4, 5};
        unsigned k = u8(r);
        if (k & 1) {
            int t = perm[0];
            perm[0] = perm[k >> 1 & 3];
            perm[k >> 1 & 3] = t;
        }
        add(f, loom_transpose(g, a, k & 2 ? perm : NULL), K_OP);
        break;
    }
    case 10: {
        loom_tensor *xs[3] = {a, b, c};
        int n = 1 + (int)(u8(r) % 3);
        int axis = (int)(u8(r) % 4) - 1;
        add(f, loom_concat(g, xs, n, axis), K_OP);
        break;
    }
    case 11: {
        int axis = (int)(u8(r) % 4) - 1;
        int64_t s0 = size_of(r), s1 = size_of(r);
        add(f, loom_slice(g, a, axis, s0 < s1 ? s0 : s1, s0 < s1 ? s1 : s0), K_OP);
        break;
    }
    case 12:
        add(f, loom_spmm_ex(g, a, b, u8(r) & 1), K_OP);
        break;
    case 13:
        add(f, loom_gather_rows(g, a, b), K_OP);
        break;
    case 14: {
        loom_dim n = dim_of(f, r, 1);
        unsigned k = u8(r) % 4;
        add(f, k == 0 ? loom_scatter_add_rows(g, a, b, n) : k == 1 ? loom_segment_sum(g, a, b, n)
               : k == 2 ? loom_segment_mean(g, a, b, n) : loom_segment_max(g, a, b, n), K_OP);
        break;
    }
    case 15:
        add(f, loom_bias_add(g, a, b), K_OP);
        break;
    case 16:
        add(f, loom_log_softmax(g, a), K_OP);
        break;
    case 17:
        add(f, loom_softmax_cross_entropy(g, a, b, u8(r) & 1 ? c : NULL), K_OP);
        break;
    case 18:
        add(f, loom_dropout(g, a, (u8(r) % 10) / 10.0), K_OP);
        break;
    default:
        add(f, loom_degree(g, a, u8(r) & 1, -0.5), K_OP);
        break;
    }
}

/* Every tensor the builder accepted fits an int64 at its bounds. */
static void check_sizes(const fz *f)
{
    for (int i = 0; i < f->nt; i++) {
        const loom_tensor *t = f->t[i];
        if (loom_tensor_is_poisoned(t))
            continue;
        if (f->kind[i] == K_CSR) { /* its row pointer */
            int64_t rows = bound_of(f, loom_tensor_dim(t, 0));
            int over = rows == INT64_MAX;
            mul_or_over(rows + !over, 4, &over);
            CHECK(!over);
        } else {
            CHECK(dense_bytes(f, t) >= 0);
        }
    }
}

/* The size an input's dim is fed: a static dim its size, a dynamic one a few rows (the same for
 * every input that has it). */
static int64_t fed_size(const fz *f, const int64_t *now, loom_dim d)
{
    for (int k = 0; k < f->ndyn; k++)
        if (d == f->dyn[k])
            return now[k];
    return d;
}

/* Feeds every input of the program small, valid-looking data; 0 when one is too large to feed. */
static int feed_all(fz *f, loom_program *p, reader *r, const int64_t *now)
{
    for (int i = 0; i < f->nt; i++) {
        loom_tensor *t = f->t[i];
        if (loom_tensor_is_poisoned(t) || (f->kind[i] != K_INPUT && f->kind[i] != K_CSR))
            continue;
        loom_shape s = loom_tensor_shape(t);
        if (f->kind[i] == K_CSR) {
            int64_t rows = fed_size(f, now, s.d[0]), cols = fed_size(f, now, s.d[1]);
            if (rows > 64 || cols > 64)
                return 0;
            int32_t rowptr[65] = {0}, col[128];
            double val[128];
            int64_t nnz = 0;
            for (int64_t k = 0; k < rows; k++) {
                int m = cols ? (int)(u8(r) % 3) : 0;
                for (int e = 0; e < m && nnz < 128; e++, nnz++) {
                    col[nnz] = (int32_t)(u8(r) % cols);
                    val[nnz] = 1.0 / (1 + e);
                }
                rowptr[k + 1] = (int32_t)nnz;
            }
            float valf[128];
            for (int64_t k = 0; k < nnz; k++)
                valf[k] = (float)val[k];
            loom_csr m = {.nrows = rows, .ncols = cols, .nnz = nnz, .vdtype = loom_tensor_dtype(t), .rowptr = rowptr,
                          .col = col, .val = loom_tensor_dtype(t) == LOOM_F32 ? (void *)valf : (void *)val};
            if (loom_program_feed_csr(p, t, &m) != LOOM_OK)
                CHECK(loom_program_error(p));
            continue;
        }
        loom_array a = {.dtype = loom_tensor_dtype(t), .ndim = s.ndim};
        int over = 0;
        int64_t n = 1;
        for (int k = 0; k < s.ndim; k++)
            n = mul_or_over(n, a.shape[k] = fed_size(f, now, s.d[k]), &over);
        if (over || n > 4096)
            return 0;
        uint8_t *d = calloc((size_t)n + 1, 8);
        if (!d)
            return 0;
        for (int64_t k = 0; k < n; k++) {
            unsigned v = u8(r) % 8;
            switch (a.dtype) {
            case LOOM_F32: ((float *)d)[k] = (float)v - 3.5f; break;
            case LOOM_F64: ((double *)d)[k] = (double)v - 3.5; break;
            case LOOM_I32: ((int32_t *)d)[k] = (int32_t)v; break;
            case LOOM_I64: ((int64_t *)d)[k] = (int64_t)v; break;
            default: d[k] = (uint8_t)(v & 1); break;
            }
        }
        a.data = n ? d : NULL; /* an empty array may come without data */
        if (loom_program_feed(p, t, &a) != LOOM_OK)
            CHECK(loom_program_error(p));
        free(d);
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, size};
    fz f = {.g = loom_graph_new()};
    if (!f.g)
        return 0;
    unsigned head = u8(&r);
    loom_placement *pl = NULL;
    if ((head & 7) == 7) { /* two logical devices: parts, boxing and SBP inference */
        pl = loom_placement_parse("cpu:0-1", NULL);
        loom_graph_set_placement(f.g, pl);
    }
    f.ndyn = (int)(head >> 3 & 3) % (MAX_DYN + 1);
    for (int k = 0; k < f.ndyn; k++) {
        char name[8];
        snprintf(name, sizeof name, "D%d", k);
        f.bound[k] = size_of(&r);
        f.dyn[k] = loom_dim_dynamic(f.g, name, f.bound[k]);
        if (f.bound[k] < 0)
            f.ndyn = k; /* refused: the graph holds the error */
    }
    int nops = 1 + (int)(u8(&r) % MAX_OPS);
    for (int i = 0; i < nops && r.n; i++)
        build_op(&f, &r, i);

    /* a loss: the sum of the last float tensor */
    loom_tensor *loss = NULL;
    unsigned tail = u8(&r);
    if (tail & 1)
        for (int i = f.nt - 1; i >= 0 && !loss; i--)
            if (!loom_tensor_is_poisoned(f.t[i]) && f.kind[i] != K_CSR &&
                (loom_tensor_dtype(f.t[i]) == LOOM_F32 || loom_tensor_dtype(f.t[i]) == LOOM_F64))
                loss = loom_sum(f.g, f.t[i], LOOM_ALL_AXES, 0);
    check_sizes(&f);

    loom_status gs = loom_graph_status(f.g);
    if (gs != LOOM_OK) {
        const char *e = loom_graph_error(f.g);
        CHECK(e && *e);
    }

    /* parameters are initialised at compile: keep them small */
    int64_t pbytes = 0;
    for (int k = 0; loom_graph_param(f.g, k) && pbytes <= PARAM_BUDGET; k++) {
        int64_t b = dense_bytes(&f, loom_graph_param(f.g, k));
        pbytes = b < 0 || b > PARAM_BUDGET ? INT64_MAX : pbytes + b;
    }
    if (pbytes > PARAM_BUDGET / 3)
        goto out;

    loom_optimizer opt = !loss || !(tail & 2) ? (loom_optimizer){.kind = LOOM_OPT_NONE} : tail & 4 ? loom_adam(0.01) : loom_sgd(0.1);
    loom_train_opts opts = {.optimizer = opt,
                            .executor = tail & 8 ? LOOM_EXEC_REFERENCE : LOOM_EXEC_ACTORS,
                            .memory_limit = 64 << 20,
                            .check_numerics = tail >> 4 & 1};
    loom_program *p = NULL;
    loom_status cs = loom_compile(f.g, loss, &opts, &p);
    if (gs != LOOM_OK)
        CHECK(cs == gs);
    if (cs != LOOM_OK) {
        CHECK(!p && loom_graph_error(f.g));
        goto out;
    }
    int64_t now[MAX_DYN];
    for (int k = 0; k < f.ndyn; k++) {
        int64_t want = (int64_t)(u8(&r) % (FEED_ROWS + 1));
        now[k] = f.bound[k] < want ? f.bound[k] : want;
    }
    for (int i = 0; i < f.nt; i++)
        if (!loom_tensor_is_poisoned(f.t[i]) && (u8(&r) & 3) == 0)
            CHECK(loom_program_keep(p, f.t[i]) == LOOM_OK);
    if (!feed_all(&f, p, &r, now))
        goto done;
    loom_run_mode mode = !loss ? LOOM_RUN_FORWARD : opt.kind != LOOM_OPT_NONE ? LOOM_RUN_STEP : LOOM_RUN_GRAD;
    loom_memory mem = {0};
    loom_status ms = loom_program_memory(p, mode, LOOM_ALL_DEVICES, &mem);
    if (ms != LOOM_OK) {
        CHECK(loom_program_error(p));
        goto done;
    }
    if (mem.shared + mem.own > PLAN_BUDGET)
        goto done;
    loom_status rs = loom_program_run(p, mode);
    if (rs != LOOM_OK) {
        CHECK(loom_program_error(p));
    } else {
        /* a kept or computed value reads back whole (ASan sees a short one) */
        for (int i = 0; i < f.nt; i++) {
            loom_array a;
            if (f.kind[i] == K_CSR || loom_tensor_is_poisoned(f.t[i]) || loom_program_fetch(p, f.t[i], &a) != LOOM_OK)
                continue;
            int64_t n = loom_array_numel(&a);
            CHECK(n >= 0);
            volatile uint8_t sink = 0;
            for (int64_t k = 0; k < n * (int64_t)loom_dtype_size(a.dtype); k++)
                sink ^= ((const uint8_t *)a.data)[k];
            (void)sink;
        }
    }
done:
    loom_program_free(p);
out:
    loom_graph_free(f.g);
    loom_placement_free(pl);
    return 0;
}
