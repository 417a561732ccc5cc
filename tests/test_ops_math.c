/* The ops users expect beside the layers: the elementwise maths (exp, log, sqrt, rsqrt, abs,
 * pow_scalar, clamp), minimum, maximum and where, softmax along an axis, the segment softmax,
 * argmax, one_hot and the regression losses. Values and gradients against libm and hand
 * computations in f32 and f64, the rules at the edges (ties, NaN, clamp's bounds), and every bad
 * call and bad index. (Gradients by central differences and placements: test_op_registry.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ---- running a function of one or two tensors ----------------------------------------------------- */

typedef loom_tensor *(*fn1)(loom_graph *g, loom_tensor *a, loom_tensor *b);

/* out = f(a + pa, b + pb) for inputs a [n] and b [nb] (nb 0: f takes a only) and zero parameters
 * pa, pb, in dtype dt: y gets out, ga and gb (either NULL) d sum(out) / d a and / d b. */
static void run_fn(fn1 f, loom_dtype dt, int n, const double *a, int nb, const double *b, double *y, double *ga,
                   double *gb)
{
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    float af[64], bf[64];
    double ad[64], bd[64];
    memcpy(ad, a, (size_t)n * sizeof *a);
    lt_as_dtype(ad, af, n, dt == LOOM_F32);
    loom_tensor *xa = lt_input_static(c, "a", dt, loom_shape(n), dt == LOOM_F64 ? (const void *)ad : (const void *)af);
    loom_tensor *pa = loom_param(g, "pa", dt, loom_shape(n), loom_init_zeros()), *xb = NULL, *pb = NULL;
    if (nb) {
        memcpy(bd, b, (size_t)nb * sizeof *b);
        lt_as_dtype(bd, bf, nb, dt == LOOM_F32);
        xb = lt_input_static(c, "b", dt, loom_shape(nb), dt == LOOM_F64 ? (const void *)bd : (const void *)bf);
        pb = loom_param(g, "pb", dt, loom_shape(nb), loom_init_zeros());
    }
    loom_tensor *out = f(g, loom_add(g, xa, pa), nb ? loom_add(g, xb, pb) : NULL);
    loom_program *p = lt_compile_reference(c, loom_sum(g, out, LOOM_ALL_AXES, 0), NULL);
    ck_assert_msg(loom_program_run(p, LOOM_RUN_GRAD) == LOOM_OK, "%s", loom_program_error(p));
    loom_array v;
    ck_assert_int_eq(loom_program_fetch(p, out, &v), LOOM_OK);
    double *d = lt_to_double(&v);
    memcpy(y, d, (size_t)loom_array_numel(&v) * sizeof *y);
    free(d);
    for (int k = 0; k < 2; k++) {
        double *gw = k ? gb : ga;
        loom_tensor *pw = k ? pb : pa;
        if (!gw || !pw)
            continue;
        ck_assert_int_eq(loom_program_fetch(p, loom_program_grad(p, pw), &v), LOOM_OK);
        d = lt_to_double(&v);
        memcpy(gw, d, (size_t)loom_array_numel(&v) * sizeof *gw);
        free(d);
    }
    lt_case_free(c);
}

/* ---- the elementwise maths ----------------------------------------------------------------------- */

enum { EXP, LOG, SQRT, RSQRT, ABS, POW, POW0, CLAMP, NFN };
static const char *const fn_name[NFN] = {"exp", "log", "sqrt", "rsqrt", "abs", "pow_scalar", "pow_scalar 0", "clamp"};
static const double P = 2.5, LO = -0.5, HI = 0.75;

static loom_tensor *f_exp(loom_graph *g, loom_tensor *a, loom_tensor *b) { return (void)b, loom_exp(g, a); }
static loom_tensor *f_log(loom_graph *g, loom_tensor *a, loom_tensor *b) { return (void)b, loom_log(g, a); }
static loom_tensor *f_sqrt(loom_graph *g, loom_tensor *a, loom_tensor *b) { return (void)b, loom_sqrt(g, a); }
static loom_tensor *f_rsqrt(loom_graph *g, loom_tensor *a, loom_tensor *b) { return (void)b, loom_rsqrt(g, a); }
static loom_tensor *f_abs(loom_graph *g, loom_tensor *a, loom_tensor *b) { return (void)b, loom_abs(g, a); }
static loom_tensor *f_pow(loom_graph *g, loom_tensor *a, loom_tensor *b) { return (void)b, loom_pow_scalar(g, a, P); }
static loom_tensor *f_pow0(loom_graph *g, loom_tensor *a, loom_tensor *b) { return (void)b, loom_pow_scalar(g, a, 0); }
static loom_tensor *f_clamp(loom_graph *g, loom_tensor *a, loom_tensor *b) { return (void)b, loom_clamp(g, a, LO, HI); }
static const fn1 fns[NFN] = {f_exp, f_log, f_sqrt, f_rsqrt, f_abs, f_pow, f_pow0, f_clamp};

static double ref(int f, double x, double *dx)
{
    switch (f) {
    case EXP: return *dx = exp(x);
    case LOG: return *dx = 1 / x, log(x);
    case SQRT: return *dx = 0.5 / sqrt(x), sqrt(x);
    case RSQRT: return *dx = -0.5 * pow(x, -1.5), 1 / sqrt(x);
    case ABS: return *dx = x > 0 ? 1 : x < 0 ? -1 : 0, fabs(x);
    case POW: return *dx = P * pow(x, P - 1), pow(x, P);
    case POW0: return *dx = 0, 1;
    default: return *dx = x >= LO && x <= HI ? 1 : 0, x < LO ? LO : x > HI ? HI : x;
    }
}

enum { NV = 12 };
/* Values for f: positive where its domain is, 0 for abs and pow (their gradients' edge cases),
 * clamp's bounds themselves (inside: gradient 1, as in PyTorch). */
static void fn_values(int f, double *x)
{
    lt_fill_normal(x, NV, 7 + (uint64_t)f);
    for (int i = 0; i < NV; i++)
        x[i] = f == LOG || f == SQRT || f == RSQRT || f == POW ? 0.1 + fabs(x[i]) * 2 : x[i];
    if (f == ABS || f == POW0)
        x[0] = 0;
    if (f == POW)
        x[0] = 0, x[1] = 1;
    if (f == CLAMP)
        x[0] = LO, x[1] = HI, x[2] = -3, x[3] = 3;
}

/* _i: function * 2 + (f32) */
START_TEST(test_maths_values)
{
    const int f = _i / 2, f32 = _i % 2;
    double x[NV], y[NV], gy[NV], want, dwant;
    fn_values(f, x);
    run_fn(fns[f], f32 ? LOOM_F32 : LOOM_F64, NV, x, 0, NULL, y, gy, NULL);
    for (int i = 0; i < NV; i++) {
        const double xi = f32 ? (double)(float)x[i] : x[i];
        want = ref(f, xi, &dwant);
        const double tol = f32 ? 2e-6 : 1e-14;
        ck_assert_msg(fabs(y[i] - want) <= tol * fmax(1, fabs(want)), "%s(%g): %.17g, expected %.17g", fn_name[f], xi, y[i],
                      want);
        ck_assert_msg(fabs(gy[i] - dwant) <= tol * fmax(1, fabs(dwant)), "%s'(%g): %.17g, expected %.17g", fn_name[f], xi,
                      gy[i], dwant);
    }
}
END_TEST

/* The edges: clamp passes a NaN and takes infinite bounds as open sides; log(0) and rsqrt(0) are
 * -inf and inf; abs(-0) is +0. */
START_TEST(test_maths_edges)
{
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    const double x[4] = {NAN, -1e300, 1e300, 0.5};
    loom_tensor *in = lt_input_static(c, "x", LOOM_F64, loom_shape(4), x);
    loom_tensor *lo_open = loom_clamp(g, in, -INFINITY, 1.0), *hi_open = loom_clamp(g, in, 0.0, INFINITY);
    loom_array a = lt_eval(c, lo_open);
    const double *v = a.data;
    ck_assert(isnan(v[0]) && v[1] == -1e300 && v[2] == 1.0 && v[3] == 0.5);
    a = lt_eval(c, hi_open);
    v = a.data;
    ck_assert(isnan(v[0]) && v[1] == 0 && v[2] == 1e300 && v[3] == 0.5);
    lt_case_free(c);

    c = lt_case_new();
    g = lt_graph(c);
    const double z[2] = {0.0, -0.0};
    in = lt_input_static(c, "z", LOOM_F64, loom_shape(2), z);
    a = lt_eval(c, loom_log(g, in));
    ck_assert(((double *)a.data)[0] == -INFINITY);
    lt_case_free(c);
    c = lt_case_new();
    in = lt_input_static(c, "z", LOOM_F64, loom_shape(2), z);
    a = lt_eval(c, loom_rsqrt(lt_graph(c), in));
    ck_assert(((double *)a.data)[0] == INFINITY);
    lt_case_free(c);
    c = lt_case_new();
    in = lt_input_static(c, "z", LOOM_F64, loom_shape(2), z);
    a = lt_eval(c, loom_abs(lt_graph(c), in));
    ck_assert(((double *)a.data)[1] == 0 && !signbit(((double *)a.data)[1]));
    lt_case_free(c);
}
END_TEST

/* ---- minimum, maximum, where ---------------------------------------------------------------------- */

static loom_tensor *f_min(loom_graph *g, loom_tensor *a, loom_tensor *b) { return loom_minimum(g, a, b); }
static loom_tensor *f_max(loom_graph *g, loom_tensor *a, loom_tensor *b) { return loom_maximum(g, a, b); }

/* Values, ties split half and half, NaN winning, in f32 and f64. */
START_TEST(test_minmax)
{
    const double a[6] = {1, -2, 3, 0.5, NAN, 4};
    const double b[6] = {2, -3, 3, 0.5, 1, NAN};
    for (int f32 = 0; f32 < 2; f32++)
        for (int max = 0; max < 2; max++) {
            double y[6], ga[6], gb[6];
            run_fn(max ? f_max : f_min, f32 ? LOOM_F32 : LOOM_F64, 6, a, 6, b, y, ga, gb);
            const double wy[2][6] = {{1, -3, 3, 0.5, NAN, NAN}, {2, -2, 3, 0.5, NAN, NAN}};
            const double wa[2][6] = {{1, 0, 0.5, 0.5, 1, 0}, {0, 1, 0.5, 0.5, 1, 0}};
            for (int i = 0; i < 6; i++) {
                ck_assert_msg(y[i] == wy[max][i] || (isnan(y[i]) && isnan(wy[max][i])), "%s[%d] = %g",
                              max ? "maximum" : "minimum", i, y[i]);
                ck_assert_msg(ga[i] == wa[max][i] && gb[i] == 1 - wa[max][i], "%s gradient [%d]: %g and %g",
                              max ? "maximum" : "minimum", i, ga[i], gb[i]);
            }
        }
}
END_TEST

/* Broadcast operands take the sums of their shares: b [1] against a [4] at a tie and a win. */
START_TEST(test_minmax_broadcast)
{
    const double a[4] = {1, 2, 2, 5}, b[1] = {2};
    double y[4], ga[4], gb[1];
    run_fn(f_max, LOOM_F64, 4, a, 1, b, y, ga, gb);
    const double wy[4] = {2, 2, 2, 5}, wa[4] = {0, 0.5, 0.5, 1};
    lt_assert_close(y, wy, 4, 0, "maximum");
    lt_assert_close(ga, wa, 4, 0, "maximum's gradient to a");
    ck_assert(gb[0] == 2);
}
END_TEST

/* where with cond [2, 1], a [2, 3] and b [3]: values, and the gradients routed by cond and summed
 * back to b's shape. */
START_TEST(test_where)
{
    for (int f32 = 0; f32 < 2; f32++) {
        const loom_dtype dt = f32 ? LOOM_F32 : LOOM_F64;
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        const uint8_t cond[2] = {1, 0};
        const double av[6] = {1, 2, 3, 4, 5, 6}, bv[3] = {-1, -2, -3};
        const float af[6] = {1, 2, 3, 4, 5, 6}, bf[3] = {-1, -2, -3};
        loom_tensor *cd = lt_input_static(c, "cond", LOOM_U8, loom_shape(2, 1), cond);
        loom_tensor *a = loom_add(g, lt_input_static(c, "a", dt, loom_shape(2, 3), f32 ? (const void *)af : (const void *)av),
                                  loom_param(g, "pa", dt, loom_shape(2, 3), loom_init_zeros()));
        loom_tensor *pb = loom_param(g, "pb", dt, loom_shape(3), loom_init_zeros());
        loom_tensor *b = loom_add(g, lt_input_static(c, "b", dt, loom_shape(3), f32 ? (const void *)bf : (const void *)bv), pb);
        loom_tensor *out = loom_where(g, cd, a, b);
        loom_program *p = lt_compile_reference(c, loom_sum(g, loom_mul(g, out, out), LOOM_ALL_AXES, 0), NULL);
        ck_assert_msg(loom_program_run(p, LOOM_RUN_GRAD) == LOOM_OK, "%s", loom_program_error(p));
        loom_array v;
        ck_assert_int_eq(loom_program_fetch(p, out, &v), LOOM_OK);
        double *y = lt_to_double(&v);
        const double wy[6] = {1, 2, 3, -1, -2, -3};
        lt_assert_close(y, wy, 6, 0, "where");
        free(y);
        ck_assert_int_eq(loom_program_fetch(p, loom_program_grad(p, loom_graph_find(g, "pa")), &v), LOOM_OK);
        y = lt_to_double(&v);
        const double wa[6] = {2, 4, 6, 0, 0, 0};
        lt_assert_close(y, wa, 6, 0, "where's gradient to a");
        free(y);
        ck_assert_int_eq(loom_program_fetch(p, loom_program_grad(p, pb), &v), LOOM_OK);
        y = lt_to_double(&v);
        const double wb[3] = {-2, -4, -6};
        lt_assert_close(y, wb, 3, 0, "where's gradient to b");
        free(y);
        lt_case_free(c);
    }
}
END_TEST

/* ---- softmax, segment softmax --------------------------------------------------------------------- */

/* y's value and d sum(y * w) / d p, p the case's parameter "p" (y's input plus p): one GRAD run of
 * the reference executor on c. Both malloc'd. */
static void weighted_run(lt_case *c, loom_tensor *y, loom_tensor *w, double **got, double **ggot)
{
    loom_graph *g = lt_graph(c);
    loom_program *p = lt_compile_reference(c, loom_sum(g, loom_mul(g, y, w), LOOM_ALL_AXES, 0), NULL);
    ck_assert_msg(loom_program_run(p, LOOM_RUN_GRAD) == LOOM_OK, "%s", loom_program_error(p));
    loom_array v;
    ck_assert_int_eq(loom_program_fetch(p, y, &v), LOOM_OK);
    *got = lt_to_double(&v);
    ck_assert_int_eq(loom_program_fetch(p, loom_program_grad(p, loom_graph_find(g, "p")), &v), LOOM_OK);
    *ggot = lt_to_double(&v);
}

/* softmax of x [2, 3, 4] along each axis against exp(x - max) / sum by hand, and its gradient
 * (of sum(w * y)) against y * (w - sum(w * y)). */
START_TEST(test_softmax_axes)
{
    for (int axis = -3; axis < 3; axis++)
        for (int f32 = 0; f32 < 2; f32++) {
            const loom_dtype dt = f32 ? LOOM_F32 : LOOM_F64;
            lt_case *c = lt_case_new();
            loom_graph *g = lt_graph(c);
            double x[24], w[24];
            float xf[24], wf[24];
            lt_fill_normal(x, 24, 3);
            lt_fill_normal(w, 24, 4);
            x[5] = 40; /* would overflow exp in f32 without the max */
            lt_as_dtype(x, xf, 24, f32);
            lt_as_dtype(w, wf, 24, f32);
            loom_tensor *in = loom_add(g, lt_input_static(c, "x", dt, loom_shape(2, 3, 4), f32 ? (void *)xf : (void *)x),
                                       loom_param(g, "p", dt, loom_shape(2, 3, 4), loom_init_zeros()));
            loom_tensor *wt = lt_input_static(c, "w", dt, loom_shape(2, 3, 4), f32 ? (void *)wf : (void *)w);
            double *got, *ggot;
            weighted_run(c, loom_softmax(g, in, axis), wt, &got, &ggot);
            const int ax = axis < 0 ? axis + 3 : axis;
            const int64_t dims[3] = {2, 3, 4}, st[3] = {12, 4, 1};
            double want[24], gwant[24];
            for (int i = 0; i < 24; i++) {
                const int64_t base = i - (i / st[ax] % dims[ax]) * st[ax];
                double m = -INFINITY, s = 0, d = 0;
                for (int j = 0; j < dims[ax]; j++)
                    m = fmax(m, x[base + j * st[ax]]);
                for (int j = 0; j < dims[ax]; j++)
                    s += exp(x[base + j * st[ax]] - m);
                want[i] = exp(x[i] - m) / s;
                for (int j = 0; j < dims[ax]; j++)
                    d += w[base + j * st[ax]] * exp(x[base + j * st[ax]] - m) / s;
                gwant[i] = want[i] * (w[i] - d);
            }
            lt_assert_close(got, want, 24, f32 ? 1e-6 : 1e-14, "softmax");
            lt_assert_close(ggot, gwant, 24, f32 ? 1e-6 : 1e-14, "softmax's gradient");
            free(got);
            free(ggot);
            lt_case_free(c);
        }
}
END_TEST

/* x [6, 2] in segments {0, 0, 2, 0, 2, 3} of n = 5 (1 and 4 empty): each (segment, feature)
 * normalised, a large score kept finite, and the gradient y * (w - sum over the segment). */
START_TEST(test_segment_softmax)
{
    for (int f32 = 0; f32 < 2; f32++) {
        const loom_dtype dt = f32 ? LOOM_F32 : LOOM_F64;
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        double x[12], w[12];
        float xf[12], wf[12];
        lt_fill_normal(x, 12, 11);
        lt_fill_normal(w, 12, 12);
        x[2] = 100;
        lt_as_dtype(x, xf, 12, f32);
        lt_as_dtype(w, wf, 12, f32);
        static const int32_t seg[6] = {0, 0, 2, 0, 2, 3};
        loom_tensor *in = loom_add(g, lt_input_static(c, "x", dt, loom_shape(6, 2), f32 ? (void *)xf : (void *)x),
                                   loom_param(g, "p", dt, loom_shape(6, 2), loom_init_zeros()));
        loom_tensor *wt = lt_input_static(c, "w", dt, loom_shape(6, 2), f32 ? (void *)wf : (void *)w);
        double *got, *ggot;
        weighted_run(c, loom_segment_softmax(g, in, lt_input_static(c, "seg", LOOM_I32, loom_shape(6), seg), 5), wt, &got,
                     &ggot);
        double want[12], gwant[12];
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 2; j++) {
                double m = -INFINITY, s = 0, d = 0;
                for (int k = 0; k < 6; k++)
                    if (seg[k] == seg[i])
                        m = fmax(m, x[k * 2 + j]);
                for (int k = 0; k < 6; k++)
                    if (seg[k] == seg[i])
                        s += exp(x[k * 2 + j] - m);
                want[i * 2 + j] = exp(x[i * 2 + j] - m) / s;
                for (int k = 0; k < 6; k++)
                    if (seg[k] == seg[i])
                        d += w[k * 2 + j] * exp(x[k * 2 + j] - m) / s;
                gwant[i * 2 + j] = want[i * 2 + j] * (w[i * 2 + j] - d);
            }
        lt_assert_close(got, want, 12, f32 ? 1e-6 : 1e-14, "segment_softmax");
        lt_assert_close(ggot, gwant, 12, f32 ? 1e-6 : 1e-14, "segment_softmax's gradient");
        ck_assert(got[10] == 1 && got[11] == 1); /* a segment of one row */
        free(got);
        free(ggot);
        lt_case_free(c);
    }
}
END_TEST

/* ---- argmax, one_hot --------------------------------------------------------------------------- */

START_TEST(test_argmax)
{
    /* [3, 4]: a tie (the first wins), a NaN (the first NaN wins), -inf only */
    const double x[12] = {1, 5, 5, 2, 3, NAN, 9, NAN, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    lt_case *c = lt_case_new();
    loom_tensor *in = lt_input_static(c, "x", LOOM_F64, loom_shape(3, 4), x);
    loom_array a = lt_eval(c, loom_argmax(lt_graph(c), in, -1));
    ck_assert_int_eq(a.dtype, LOOM_I32);
    ck_assert_int_eq(a.ndim, 1);
    const int32_t *r = a.data;
    ck_assert(r[0] == 1 && r[1] == 1 && r[2] == 0);
    lt_case_free(c);
    c = lt_case_new();
    float xf[12];
    for (int i = 0; i < 12; i++)
        xf[i] = (float)x[i];
    in = lt_input_static(c, "x", LOOM_F32, loom_shape(3, 4), xf);
    a = lt_eval(c, loom_argmax(lt_graph(c), in, 0));
    r = a.data;
    ck_assert_int_eq(a.shape[0], 4);
    ck_assert(r[0] == 1 && r[1] == 1 && r[2] == 1 && r[3] == 1);
    lt_case_free(c);
}
END_TEST

START_TEST(test_one_hot)
{
    for (int f32 = 0; f32 < 2; f32++) {
        lt_case *c = lt_case_new();
        static const int32_t idx[2][3] = {{0, 2, 1}, {3, 3, 0}};
        loom_tensor *in = lt_input_static(c, "idx", LOOM_I32, loom_shape(2, 3), idx);
        loom_array a = lt_eval(c, loom_one_hot(lt_graph(c), in, 4, f32 ? LOOM_F32 : LOOM_F64));
        ck_assert_int_eq(a.ndim, 3);
        ck_assert_int_eq(a.shape[2], 4);
        double *v = lt_to_double(&a);
        for (int i = 0; i < 6; i++)
            for (int k = 0; k < 4; k++)
                ck_assert(v[i * 4 + k] == (k == idx[i / 3][i % 3]));
        free(v);
        lt_case_free(c);
    }
}
END_TEST

/* Run-time indices outside their range: one_hot's classes and segment_softmax's segments. */
static void expect_run_error(int one_hot, int32_t bad, const char *needle)
{
    loom_graph *g = loom_graph_new();
    loom_tensor *i = loom_input(g, "i", LOOM_I32, loom_shape(3));
    loom_tensor *x = loom_input(g, "x", LOOM_F64, loom_shape(3));
    loom_tensor *out = one_hot ? loom_one_hot(g, i, 4, LOOM_F64) : loom_segment_softmax(g, x, i, 2);
    loom_tensor_set_name(out, "out");
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(g, NULL, NULL, &p) == LOOM_OK, "%s", loom_graph_error(g));
    int32_t iv[3] = {0, 1, bad};
    double xv[3] = {0};
    loom_array ia = {.dtype = LOOM_I32, .ndim = 1, .shape = {3}, .data = iv};
    loom_array xa = {.dtype = LOOM_F64, .ndim = 1, .shape = {3}, .data = xv};
    ck_assert_int_eq(loom_program_feed(p, i, &ia), LOOM_OK);
    ck_assert_int_eq(loom_program_feed(p, x, &xa), LOOM_OK);
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_EVAL), LOOM_ERR_INVALID);
    const char *err = loom_program_error(p);
    ck_assert_msg(err && strstr(err, needle), "expected '%s' in '%s'", needle, err ? err : "(none)");
    loom_program_free(p);
    loom_graph_free(g);
}

START_TEST(test_runtime_index_errors)
{
    expect_run_error(1, 4, "idx[2] = 4 is outside [0, 4) (loom_one_hot's classes)");
    expect_run_error(1, -1, "idx[2] = -1 is outside [0, 4) (loom_one_hot's classes)");
    expect_run_error(0, 2, "segment_softmax 'out' (piece 0): idx[2] = 2 is outside [0, 2) (loom_segment_softmax's segments)");
    expect_run_error(0, -3, "idx[2] = -3 is outside [0, 2) (loom_segment_softmax's segments)");
}
END_TEST

/* ---- losses ------------------------------------------------------------------------------------- */

static loom_tensor *f_mse(loom_graph *g, loom_tensor *a, loom_tensor *b) { return loom_mse_loss(g, a, b); }
static loom_tensor *f_l1(loom_graph *g, loom_tensor *a, loom_tensor *b) { return loom_l1_loss(g, a, b); }
static loom_tensor *f_huber(loom_graph *g, loom_tensor *a, loom_tensor *b) { return loom_huber_loss(g, a, b, 0.8); }

/* The three losses and their gradients in pred and target against PyTorch's formulas (mean
 * reduction), |d| on both sides of Huber's delta and at it. */
START_TEST(test_losses)
{
    const double pred[6] = {0.5, -1.0, 2.0, 0.1, 3.0, -0.7}, target[6] = {0.0, 0.0, 0.5, 0.1, 2.2, 0.4};
    const fn1 fs[3] = {f_mse, f_l1, f_huber};
    for (int f32 = 0; f32 < 2; f32++)
        for (int k = 0; k < 3; k++) {
            double y, gp[6], gt[6], want = 0, wp[6];
            run_fn(fs[k], f32 ? LOOM_F32 : LOOM_F64, 6, pred, 6, target, &y, gp, gt);
            for (int i = 0; i < 6; i++) {
                const double d = f32 ? (double)(float)pred[i] - (double)(float)target[i] : pred[i] - target[i];
                const double a = fabs(d), s = d > 0 ? 1 : d < 0 ? -1 : 0;
                want += (k == 0 ? d * d : k == 1 ? a : a < 0.8 ? 0.5 * d * d : 0.8 * (a - 0.4)) / 6;
                wp[i] = (k == 0 ? 2 * d : k == 1 ? s : a < 0.8 ? d : 0.8 * s) / 6;
            }
            const double tol = f32 ? 1e-6 : 1e-14;
            lt_assert_close(&y, &want, 1, tol, k == 0 ? "mse_loss" : k == 1 ? "l1_loss" : "huber_loss");
            lt_assert_close(gp, wp, 6, tol, "the loss's gradient in pred");
            for (int i = 0; i < 6; i++)
                wp[i] = -wp[i];
            lt_assert_close(gt, wp, 6, tol, "the loss's gradient in target");
        }
}
END_TEST

/* ---- bad calls ---------------------------------------------------------------------------------- */

START_TEST(test_bad_calls)
{
    struct {
        int k;
        const char *needle;
        loom_status s;
    } cases[] = {
        {0, "loom_pow_scalar: p must be finite, got inf", LOOM_ERR_INVALID},
        {1, "loom_clamp: lo 2 is above hi 1", LOOM_ERR_INVALID},
        {2, "loom_clamp: lo and hi must be numbers, got nan and 1", LOOM_ERR_INVALID},
        {3, "loom_exp: operand 1 is i32; this op takes f32 or f64", LOOM_ERR_DTYPE},
        {4, "loom_minimum: shapes [3, 4] and [3] do not broadcast (axis -1)", LOOM_ERR_SHAPE},
        {5, "loom_maximum: operands are f64 and f32; both must have the same dtype", LOOM_ERR_DTYPE},
        {6, "loom_where: cond is f64; it must be a dense u8 tensor", LOOM_ERR_DTYPE},
        {7, "loom_where: shapes [3, 4] and [2, 1] do not broadcast (axis -2)", LOOM_ERR_SHAPE},
        {8, "loom_where: a is f64 but b f32; they must be of one dtype", LOOM_ERR_DTYPE},
        {9, "loom_softmax: axis 2 out of range for [3, 4]", LOOM_ERR_SHAPE},
        {10, "loom_softmax: axis -3 out of range for [3, 4]", LOOM_ERR_SHAPE},
        {11, "loom_segment_softmax: idx is [4] but x is [3, 4]; idx needs one entry per row of x", LOOM_ERR_SHAPE},
        {12, "loom_segment_softmax: idx must be a dense i32 tensor, got f64", LOOM_ERR_DTYPE},
        {13, "loom_argmax: axis 2 out of range for [3, 4]", LOOM_ERR_SHAPE},
        {14, "loom_argmax: axis 1 of [3, 0] is empty: it has no largest element", LOOM_ERR_SHAPE},
        {15, "loom_one_hot: classes must be 1 or more, got 0", LOOM_ERR_INVALID},
        {16, "loom_one_hot: dtype is i32; one-hot rows are f32 or f64", LOOM_ERR_DTYPE},
        {17, "loom_one_hot: idx must be a dense i32 tensor, got f64", LOOM_ERR_DTYPE},
        {18, "loom_mse_loss: pred is [3, 4] but target [4, 3]; they must have one shape", LOOM_ERR_SHAPE},
        {19, "loom_l1_loss: pred is f64 and target f32; they must be dense tensors of one float dtype", LOOM_ERR_DTYPE},
        {20, "loom_huber_loss: delta must be a finite number > 0, got 0", LOOM_ERR_INVALID},
        {21, "loom_huber_loss: pred is [3, 4] but target [3]; they must have one shape", LOOM_ERR_SHAPE},
        {22, "loom_mse_loss: tensor argument 2 is NULL", LOOM_ERR_INVALID},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        loom_graph *g = loom_graph_new();
        loom_tensor *x = loom_input(g, "x", LOOM_F64, loom_shape(3, 4)), *x32 = loom_input(g, "x32", LOOM_F32, loom_shape(3, 4));
        loom_tensor *i = loom_input(g, "i", LOOM_I32, loom_shape(4));
        switch (cases[k].k) {
        case 0: loom_pow_scalar(g, x, INFINITY); break;
        case 1: loom_clamp(g, x, 2, 1); break;
        case 2: loom_clamp(g, x, NAN, 1); break;
        case 3: loom_exp(g, i); break;
        case 4: loom_minimum(g, x, loom_input(g, "b", LOOM_F64, loom_shape(3))); break;
        case 5: loom_maximum(g, x, x32); break;
        case 6: loom_where(g, x, x, x); break;
        case 7: loom_where(g, loom_input(g, "c", LOOM_U8, loom_shape(2, 1)), x, x); break;
        case 8: loom_where(g, loom_input(g, "c", LOOM_U8, loom_shape(3, 4)), x, x32); break;
        case 9: loom_softmax(g, x, 2); break;
        case 10: loom_softmax(g, x, -3); break;
        case 11: loom_segment_softmax(g, x, i, 3); break;
        case 12: loom_segment_softmax(g, x, loom_input(g, "s", LOOM_F64, loom_shape(3)), 3); break;
        case 13: loom_argmax(g, x, 2); break;
        case 14: loom_argmax(g, loom_input(g, "e", LOOM_F64, loom_shape(3, 0)), 1); break;
        case 15: loom_one_hot(g, i, 0, LOOM_F32); break;
        case 16: loom_one_hot(g, i, 3, LOOM_I32); break;
        case 17: loom_one_hot(g, x, 3, LOOM_F32); break;
        case 18: loom_mse_loss(g, x, loom_input(g, "t", LOOM_F64, loom_shape(4, 3))); break;
        case 19: loom_l1_loss(g, x, x32); break;
        case 20: loom_huber_loss(g, x, x, 0); break;
        case 21: loom_huber_loss(g, x, loom_input(g, "t", LOOM_F64, loom_shape(3)), 1); break;
        default: loom_mse_loss(g, x, NULL); break;
        }
        ck_assert_msg(loom_graph_status(g) == cases[k].s, "case %d: status %s (%s)", cases[k].k,
                      loom_status_str(loom_graph_status(g)), loom_graph_error(g));
        lt_expect_error(g, cases[k].needle);
        loom_graph_free(g);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_math");
    TCase *tc = tcase_create("all");
    tcase_add_loop_test(tc, test_maths_values, 0, 2 * NFN);
    tcase_add_test(tc, test_maths_edges);
    tcase_add_test(tc, test_minmax);
    tcase_add_test(tc, test_minmax_broadcast);
    tcase_add_test(tc, test_where);
    tcase_add_test(tc, test_softmax_axes);
    tcase_add_test(tc, test_segment_softmax);
    tcase_add_test(tc, test_argmax);
    tcase_add_test(tc, test_one_hot);
    tcase_add_test(tc, test_runtime_index_errors);
    tcase_add_test(tc, test_losses);
    tcase_add_test(tc, test_bad_calls);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
