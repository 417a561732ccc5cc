/* conv2d and its gradients on the CPU: per image and group, the im2col matrix of x (one row per
 * input channel and kernel tap, one column per output position) times the group's filters through
 * OpenBLAS GEMM, called single-threaded (the kernel pool splits the images, as in matmul.c).
 *
 *   y_g [K/G, PQ]      = w_g [K/G, C/G R S] cols_g [C/G R S, PQ]
 *   cols_g             = w_g^T dy_g, folded back onto dx_g (col2im)
 *   dw_g [K/G, C/G R S] = sum over images of dy_g cols_g^T
 *
 * The im2col matrix is built a block of output positions at a time, so each part's scratch is
 * bounded (COLS_BYTES) whatever the image; a 1x1 kernel of stride 1 without padding reads x as it
 * is. Blocks and the weight gradient's image chunks depend on the sizes alone, so the GEMM calls,
 * and with them the bits, are the same for any thread count. */
#include "ops/cpu/conv.h"

#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cpu/cpu.h"
#include "ops/cpu/pool.h"
#include "ops/shared/conv.h"

/* im2col scratch per part, at most (a single column may be larger). */
#define COLS_BYTES ((int64_t)8 << 20)
/* The weight gradient sums its images in this many fixed chunks at most, one partial dw each,
 * which the parts share out; the partials are then added in chunk order. */
#define WEIGHT_CHUNKS 16

typedef struct conv_job {
    loom__conv cv;
    loom_dtype dt;
    size_t es;
    int64_t crs, pq, hw;  /* rows of a group's im2col matrix, its columns, x's pixels */
    int64_t blk;          /* output positions per block */
    int direct;           /* 1x1, stride 1, no padding: x_g is the im2col matrix */
    loom_op op;
    const void *x, *w, *b, *dy; /* the sources the op has: (x, w[, b]), (dy, w) or (x, dy) */
    void *out;
    void *scratch;        /* per part: blk crs elements; NULL when direct */
    int64_t chunks;       /* weight gradient: image chunks */
    void *partials;       /* weight gradient: dw of chunks 1 .. chunks - 1 (chunk 0 writes dw) */
} conv_job;

/* ---- element loops ----------------------------------------------------------------------------- */

/* The im2col matrix cols [crs, nb] of one group's channels x [cg, h, w] at output positions
 * j0 .. j0 + nb - 1: row (c R + i) S + j, column o holds x[c, oh sh - ph + i dh, ow sw - pw + j dw]
 * with o = oh Q + ow, 0 outside x. to_cols: cols gets it (im2col); else cols is added back onto x
 * (col2im, the transpose), in a fixed order: rows, then positions. */
#define IM2COL(T, sfx)                                                                                  \
    static void im2col_##sfx(const loom__conv *cv, T *x, int64_t j0, int64_t nb, T *cols, int to_cols) \
    {                                                                                                   \
        const int64_t sh = cv->stride[0], sw = cv->stride[1];                                           \
        for (int64_t c = 0; c < cv->cg; c++)                                                            \
            for (int64_t i = 0; i < cv->r; i++)                                                         \
                for (int64_t j = 0; j < cv->s; j++) {                                                   \
                    T *row = cols + ((c * cv->r + i) * cv->s + j) * nb, *xc = x + c * cv->h * cv->w;    \
                    const int64_t di = i * cv->dil[0] - cv->pad[0], dj = j * cv->dil[1] - cv->pad[1];   \
                    /* the output columns whose input column is inside x: ow in [lo, hi) */             \
                    const int64_t lo = dj >= 0 ? 0 : (-dj + sw - 1) / sw;                               \
                    const int64_t hi = cv->w - 1 - dj < 0 ? 0 : (cv->w - 1 - dj) / sw + 1;              \
                    for (int64_t o = 0; o < nb;) { /* one output row's run of the block at a time */   \
                        const int64_t oh = (j0 + o) / cv->q, ow0 = (j0 + o) % cv->q;                    \
                        const int64_t run = cv->q - ow0 < nb - o ? cv->q - ow0 : nb - o;                \
                        const int64_t ih = oh * sh + di;                                                \
                        T *r = row + o;                                                                 \
                        const int64_t a = lo > ow0 ? lo : ow0, e = hi < ow0 + run ? hi : ow0 + run;     \
                        if (ih < 0 || ih >= cv->h || a >= e) {                                          \
                            if (to_cols)                                                                \
                                for (int64_t k = 0; k < run; k++)                                       \
                                    r[k] = 0;                                                           \
                        } else {                                                                        \
                            T *xr = xc + ih * cv->w + dj;                                               \
                            if (to_cols) {                                                              \
                                for (int64_t k = ow0; k < a; k++)                                       \
                                    r[k - ow0] = 0;                                                     \
                                if (sw == 1)                                                            \
                                    memcpy(r + (a - ow0), xr + a, (size_t)(e - a) * sizeof(T));         \
                                else                                                                    \
                                    for (int64_t k = a; k < e; k++)                                     \
                                        r[k - ow0] = xr[k * sw];                                        \
                                for (int64_t k = e; k < ow0 + run; k++)                                 \
                                    r[k - ow0] = 0;                                                     \
                            } else {                                                                    \
                                for (int64_t k = a; k < e; k++)                                         \
                                    xr[k * sw] += r[k - ow0];                                           \
                            }                                                                           \
                        }                                                                               \
                        o += run;                                                                       \
                    }                                                                                   \
                }                                                                                       \
    }
LOOM__FLOAT_TYPES(IM2COL)
#undef IM2COL

/* y [rows, n] += b[row]. */
#define ADD_BIAS(T, sfx)                                                        \
    static void add_bias_##sfx(T *y, const T *b, int64_t rows, int64_t n)       \
    {                                                                           \
        for (int64_t r = 0; r < rows; r++)                                      \
            for (int64_t i = 0; i < n; i++)                                     \
                y[r * n + i] += b[r];                                           \
    }
LOOM__FLOAT_TYPES(ADD_BIAS)
#undef ADD_BIAS

/* y[i] += x[i] for n elements. */
#define ADD_INTO(T, sfx)                                                        \
    static void add_into_##sfx(T *y, const T *x, int64_t n)                     \
    {                                                                           \
        for (int64_t i = 0; i < n; i++)                                         \
            y[i] += x[i];                                                       \
    }
LOOM__FLOAT_TYPES(ADD_INTO)
#undef ADD_INTO

/* ---- the job's pieces ---------------------------------------------------------------------------- */

static const void *at(const void *p, int64_t elems, size_t es) { return (const char *)p + (size_t)elems * es; }
static void *at_mut(void *p, int64_t elems, size_t es) { return (char *)p + (size_t)elems * es; }

/* C [m, n] = op(A) op(B) + beta C, row-major, single-threaded; every size fits an int (checked by
 * plan_job). */
static void gemm(loom_dtype dt, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k,
                 const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc)
{
    if (dt == LOOM_F32)
        cblas_sgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b, (int)ldb, (float)beta, c, (int)ldc);
    else
        cblas_dgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, 1.0, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* The im2col block of group channels xg at positions j0 .. j0 + nb - 1: x itself when direct (then
 * *ld = pq), else built in scratch (*ld = nb). */
static const void *cols_of(const conv_job *j, const void *xg, int64_t j0, int64_t nb, void *scratch, int64_t *ld)
{
    if (j->direct) {
        *ld = j->pq;
        return at(xg, j0, j->es);
    }
    *ld = nb;
    LOOM__DISPATCH_FLOAT(j->dt, im2col, &j->cv, (void *)xg, j0, nb, scratch, 1);
    return scratch;
}

/* Sizes of the job and the checks that GEMM's int arguments hold them. */
static loom_status plan_job(conv_job *j, const loom_tensor *t, const loom__value *out, const loom__kctx *ctx)
{
    const loom__conv *cv = &j->cv;
    j->dt = out->dtype;
    j->es = loom_dtype_size(out->dtype);
    j->pq = cv->p * cv->q;
    j->hw = cv->h * cv->w;
    j->crs = cv->cg * cv->r * cv->s;
    j->direct = cv->r == 1 && cv->s == 1 && cv->stride[0] == 1 && cv->stride[1] == 1 && cv->pad[0] == 0 && cv->pad[1] == 0;
    if (j->crs > INT_MAX || j->pq > INT_MAX || cv->kg > INT_MAX || loom__conv_cols(cv) < 0)
        return loom__kfail(ctx, LOOM_ERR_UNSUPPORTED,
                           "%s: a group's im2col matrix of %lld x %lld exceeds the 32-bit sizes of BLAS",
                           loom__op_def(t->op)->name, (long long)j->crs, (long long)j->pq);
    /* blocks of about COLS_BYTES, evened out over the positions */
    int64_t blk = j->pq;
    if (!j->direct && j->crs > 0) {
        const int64_t most = COLS_BYTES / (j->crs * (int64_t)j->es), cap = most > 1 ? most : 1;
        const int64_t nblk = (j->pq + cap - 1) / cap;
        blk = (j->pq + nblk - 1) / nblk;
    }
    j->blk = blk > 0 ? blk : 1;
    return LOOM_OK;
}

static void *part_scratch(const conv_job *j, int part)
{
    return j->scratch ? (char *)j->scratch + (size_t)part * (size_t)(j->blk * j->crs) * j->es : NULL;
}

/* ---- one image ------------------------------------------------------------------------------------ */

/* Group g of image n, a block of output positions at a time: conv2d's y, the input gradient's dx,
 * or the weight gradient's image added into dw (that chunk's sum). */
static void one_image(const conv_job *j, int64_t n, int64_t g, void *dw, void *scratch)
{
    const loom__conv *cv = &j->cv;
    const int64_t xo = (n * cv->c + g * cv->cg) * j->hw, yo = (n * cv->k + g * cv->kg) * j->pq, wo = g * cv->kg * j->crs;
    if (j->op == LOOM_OP_CONV2D_GRAD_INPUT && !j->direct)
        memset(at_mut(j->out, xo, j->es), 0, (size_t)(cv->cg * j->hw) * j->es);
    for (int64_t j0 = 0; j0 < j->pq; j0 += j->blk) {
        const int64_t nb = j->pq - j0 < j->blk ? j->pq - j0 : j->blk;
        int64_t ld;
        if (j->op == LOOM_OP_CONV2D) {
            const void *cols = cols_of(j, at(j->x, xo, j->es), j0, nb, scratch, &ld);
            gemm(j->dt, CblasNoTrans, CblasNoTrans, cv->kg, nb, j->crs, at(j->w, wo, j->es), j->crs, cols, ld, 0.0,
                 at_mut(j->out, yo + j0, j->es), j->pq);
        } else if (j->op == LOOM_OP_CONV2D_GRAD_WEIGHT) {
            const void *cols = cols_of(j, at(j->x, xo, j->es), j0, nb, scratch, &ld);
            gemm(j->dt, CblasNoTrans, CblasTrans, cv->kg, j->crs, nb, at(j->dy, yo + j0, j->es), j->pq, cols, ld, 1.0,
                 at_mut(dw, wo, j->es), j->crs);
        } else { /* direct: the columns are dx's own pixels */
            void *cols = j->direct ? at_mut(j->out, xo + j0, j->es) : scratch;
            gemm(j->dt, CblasTrans, CblasNoTrans, j->crs, nb, cv->kg, at(j->w, wo, j->es), j->crs, at(j->dy, yo + j0, j->es),
                 j->pq, 0.0, cols, j->direct ? j->pq : nb);
            if (!j->direct)
                LOOM__DISPATCH_FLOAT(j->dt, im2col, cv, at_mut(j->out, xo, j->es), j0, nb, cols, 0);
        }
    }
    if (j->op == LOOM_OP_CONV2D && j->b)
        LOOM__DISPATCH_FLOAT(j->dt, add_bias, at_mut(j->out, yo, j->es), at(j->b, g * cv->kg, j->es), cv->kg, j->pq);
}

/* A part of the images; for the weight gradient, a part of its chunks, each summing its images
 * into its own dw (zeroed first) in order. */
static void run_part(void *arg, int part, int nparts)
{
    const conv_job *j = arg;
    const loom__conv *cv = &j->cv;
    void *scratch = part_scratch(j, part);
    int64_t lo, hi;
    if (j->op != LOOM_OP_CONV2D_GRAD_WEIGHT) {
        loom__pool_split(cv->n, part, nparts, &lo, &hi);
        for (int64_t n = lo; n < hi; n++)
            for (int64_t g = 0; g < cv->groups; g++)
                one_image(j, n, g, NULL, scratch);
        return;
    }
    const int64_t wn = cv->k * j->crs;
    int64_t clo, chi;
    loom__pool_split(j->chunks, part, nparts, &clo, &chi);
    for (int64_t ch = clo; ch < chi; ch++) {
        void *dw = ch == 0 ? j->out : at_mut(j->partials, (ch - 1) * wn, j->es);
        memset(dw, 0, (size_t)wn * j->es);
        loom__pool_split(cv->n, (int)ch, (int)j->chunks, &lo, &hi);
        for (int64_t n = lo; n < hi; n++)
            for (int64_t g = 0; g < cv->groups; g++)
                one_image(j, n, g, dw, scratch);
    }
}

/* ---- the kernel ---------------------------------------------------------------------------------- */

/* Checks t's operands, fills what no image, channel or pixel reaches (0, conv2d's bias), else
 * runs the images (the weight gradient: its chunks, then adds their partial sums in order) on the
 * pool, each part with its scratch block. */
loom_status loom__cpu_conv(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const char *op = loom__op_def(t->op)->name;
    conv_job j = {.op = t->op, .out = out->data};
    if (t->op == LOOM_OP_CONV2D) {
        j.x = src[0]->data;
        j.w = src[1]->data;
        j.b = t->n_src > 2 ? src[2]->data : NULL;
    } else if (t->op == LOOM_OP_CONV2D_GRAD_INPUT) {
        j.dy = src[0]->data;
        j.w = src[1]->data;
    } else {
        j.x = src[0]->data;
        j.dy = src[1]->data;
    }
    loom_status s = loom__conv_operands(&j.cv, t, out, src, ctx);
    if (s == LOOM_OK)
        s = plan_job(&j, t, out, ctx);
    if (s != LOOM_OK)
        return s;
    const loom__conv *cv = &j.cv;
    const loom__conv_work work = loom__conv_work_of(cv, t->op);
    if (work != LOOM__CONV_RUN) { /* a device's part without images, channels, filters or pixels */
        memset(out->data, 0, (size_t)loom__numel(out) * j.es);
        for (int64_t n = 0; j.b && n < cv->n; n++)
            LOOM__DISPATCH_FLOAT(j.dt, add_bias, at_mut(out->data, n * cv->k * j.pq, j.es), j.b, cv->k, j.pq);
        return LOOM_OK;
    }
    const int64_t wn = cv->k * j.crs;
    int64_t items = cv->n, bytes;
    if (t->op == LOOM_OP_CONV2D_GRAD_WEIGHT) {
        items = j.chunks = cv->n < WEIGHT_CHUNKS ? cv->n : WEIGHT_CHUNKS;
        if (loom__mul_size(wn * (j.chunks - 1), (int64_t)j.es, &bytes) || !(j.partials = malloc((size_t)bytes + 1)))
            return loom__kfail(ctx, LOOM_ERR_NOMEM, "%s: out of memory for %lld partial sums of %lld elements", op,
                               (long long)(j.chunks - 1), (long long)wn);
    }
    int parts = loom__pool_parts(ctx->pool, 2.0 * (double)cv->n * (double)cv->k * (double)j.crs * (double)j.pq / 8);
    if (parts > items)
        parts = (int)items;
    if (!j.direct && (loom__mul_size(j.blk * j.crs, (int64_t)j.es, &bytes) || loom__mul_size(bytes, parts, &bytes) ||
                      !(j.scratch = malloc((size_t)bytes)))) {
        free(j.partials);
        return loom__kfail(ctx, LOOM_ERR_NOMEM, "%s: out of memory for %d im2col block(s) of %lld x %lld", op, parts,
                           (long long)j.crs, (long long)j.blk);
    }
    loom__pool_run(ctx->pool, parts, run_part, &j);
    for (int64_t ch = 1; ch < j.chunks; ch++)
        LOOM__DISPATCH_FLOAT(j.dt, add_into, out->data, at(j.partials, (ch - 1) * wn, j.es), wn);
    free(j.partials);
    free(j.scratch);
    return LOOM_OK;
}
