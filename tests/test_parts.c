/* Parts of a tensor on n devices and the CPU boxing between SBPs (runtime/comm/parts.c): every kind of
 * boxing (all-gather S->B, all-reduce P->B, reduce-scatter P->S, all-to-all S(i)->S(j), slice B->S,
 * B->P and S->P) on 1 to 4 devices with uneven splits must give each device exactly the part that
 * cutting the whole value gives, and CSR row parts must join back to the matrix. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/comm/parts.h"

static loom__value make(loom_dtype dt, int ndim, const int64_t *shape)
{
    loom__value v = {.dtype = dt, .ndim = ndim};
    memcpy(v.shape, shape, (size_t)ndim * sizeof *shape);
    v.data = calloc((size_t)loom__numel(&v) * loom_dtype_size(dt) + 1, 1);
    ck_assert_ptr_nonnull(v.data);
    return v;
}

static loom__value part_of(const loom__value *x, loom_sbp s, int n, int d)
{
    int64_t shape[LOOM_MAX_DIMS];
    loom__part_shape(x->shape, x->ndim, s, n, d, shape);
    loom__value v = make(x->dtype, x->ndim, shape);
    loom__part_cut(x, s, n, d, &v);
    return v;
}

/* The parts of x under s, where the P parts are a random split of x into addends (not just x on
 * device 0), so that reductions really add. */
static void parts_of(const loom__value *x, loom_sbp s, int n, loom__value *parts, uint64_t seed)
{
    for (int d = 0; d < n; d++)
        parts[d] = part_of(x, s.kind == LOOM_SBP_PARTIAL_SUM ? loom_broadcast() : s, n, d);
    if (s.kind != LOOM_SBP_PARTIAL_SUM)
        return;
    int64_t m = loom__numel(x);
    double *r = malloc((size_t)m * sizeof *r + 8);
    for (int d = 1; d < n; d++) {
        lt_fill_normal(r, m, seed + (uint64_t)d);
        for (int64_t i = 0; i < m; i++) {
            ((double *)parts[d].data)[i] = r[i];
            ((double *)parts[0].data)[i] -= r[i];
        }
    }
    free(r);
}

/* Where part d of n under s starts along its split axis (0 when s is no split). */
static int64_t even_first(const int64_t *shape, loom_sbp s, int n, int d)
{
    int64_t start = 0, size;
    if (s.kind == LOOM_SBP_SPLIT)
        loom_split_part(shape[s.axis], n, d, &start, &size);
    return start;
}

static const char *sbp_name(loom_sbp s, char *b)
{
    loom_sbp_str(s, b, 16);
    return b;
}

START_TEST(test_convert_every_pair)
{
    const loom_sbp all[] = {loom_split(0), loom_split(1), loom_split(2), loom_broadcast(), loom_partial_sum()};
    const int64_t shape[3] = {7, 5, 3};
    loom__value x = make(LOOM_F64, 3, shape);
    lt_fill_normal(x.data, loom__numel(&x), 11);
    int checked = 0;
    for (int n = 1; n <= 4; n++)
        for (size_t a = 0; a < sizeof all / sizeof all[0]; a++)
            for (size_t b = 0; b < sizeof all / sizeof all[0]; b++) {
                loom__value parts[4], whole = make(LOOM_F64, 3, shape);
                const loom__value *pp[4];
                parts_of(&x, all[a], n, parts, 100 + a);
                for (int d = 0; d < n; d++)
                    pp[d] = &parts[d];
                loom__part_join(pp, all[a], n, &whole);
                for (int d = 0; d < n; d++) {
                    loom__value want = part_of(&whole, all[b], n, d), got = make(LOOM_F64, 3, want.shape);
                    memset(got.data, 0xff, (size_t)loom__numel(&got) * sizeof(double)); /* every element must be written */
                    loom__part_convert(pp, all[a], n, all[b], n, d, even_first(shape, all[b], n, d), shape, &got);
                    char s1[16], s2[16];
                    ck_assert_msg(!memcmp(got.data, want.data, (size_t)loom__numel(&want) * sizeof(double)),
                                  "%s -> %s on %d devices: part %d differs from cutting the whole", sbp_name(all[a], s1),
                                  sbp_name(all[b], s2), n, d);
                    free(want.data);
                    free(got.data);
                    checked++;
                }
                for (int d = 0; d < n; d++)
                    free(parts[d].data);
                free(whole.data);
            }
    /* and joining the parts of a split gives the value back */
    for (int n = 1; n <= 4; n++)
        for (int axis = 0; axis < 3; axis++) {
            loom__value parts[4], back = make(LOOM_F64, 3, shape);
            const loom__value *pp[4];
            parts_of(&x, loom_split(axis), n, parts, 7);
            for (int d = 0; d < n; d++)
                pp[d] = &parts[d];
            loom__part_join(pp, loom_split(axis), n, &back);
            ck_assert(!memcmp(back.data, x.data, (size_t)loom__numel(&x) * sizeof(double)));
            for (int d = 0; d < n; d++)
                free(parts[d].data);
            free(back.data);
        }
    ck_assert_int_eq(checked, 25 * (1 + 2 + 3 + 4));
    free(x.data);
}
END_TEST

/* A move: parts on n_from devices under one SBP into parts on n_to devices under another. */
START_TEST(test_convert_between_placements)
{
    const loom_sbp all[] = {loom_split(0), loom_split(1), loom_broadcast(), loom_partial_sum()};
    const int64_t shape[2] = {7, 5};
    loom__value x = make(LOOM_F64, 2, shape);
    lt_fill_normal(x.data, loom__numel(&x), 3);
    int checked = 0;
    for (int nf = 1; nf <= 4; nf++)
        for (int nt = 1; nt <= 4; nt++)
            for (size_t a = 0; a < 4; a++)
                for (size_t b = 0; b < 3; b++) { /* a move never lands partial */
                    loom__value parts[4], whole = make(LOOM_F64, 2, shape);
                    const loom__value *pp[4];
                    parts_of(&x, all[a], nf, parts, 50 + a);
                    for (int d = 0; d < nf; d++)
                        pp[d] = &parts[d];
                    loom__part_join(pp, all[a], nf, &whole);
                    for (int d = 0; d < nt; d++) {
                        loom__value want = part_of(&whole, all[b], nt, d), got = make(LOOM_F64, 2, want.shape);
                        memset(got.data, 0xff, (size_t)loom__numel(&got) * sizeof(double));
                        loom__part_convert(pp, all[a], nf, all[b], nt, d, even_first(shape, all[b], nt, d), shape, &got);
                        char s1[16], s2[16];
                        ck_assert_msg(!memcmp(got.data, want.data, (size_t)loom__numel(&want) * sizeof(double)),
                                      "%s on %d -> %s on %d devices: part %d differs", sbp_name(all[a], s1), nf,
                                      sbp_name(all[b], s2), nt, d);
                        free(want.data);
                        free(got.data);
                        checked++;
                    }
                    for (int d = 0; d < nf; d++)
                        free(parts[d].data);
                    free(whole.data);
                }
    ck_assert_int_eq(checked, 4 * 4 * 3 * (1 + 2 + 3 + 4));
    free(x.data);
}
END_TEST

START_TEST(test_partial_sums_in_device_order)
{
    /* P parts are summed in double, in device order, rounded once: f32 parts whose float sum would
     * lose the small addend keep it */
    const int64_t shape[1] = {1};
    loom__value p[3], out = make(LOOM_F32, 1, shape);
    const float v[3] = {1e8f, 1.0f, -1e8f};
    const loom__value *pp[3];
    for (int d = 0; d < 3; d++) {
        p[d] = make(LOOM_F32, 1, shape);
        ((float *)p[d].data)[0] = v[d];
        pp[d] = &p[d];
    }
    loom__part_convert(pp, loom_partial_sum(), 3, loom_broadcast(), 3, 1, 0, shape, &out);
    ck_assert_float_eq(((float *)out.data)[0], 1.0f);
    for (int d = 0; d < 3; d++)
        free(p[d].data);
    free(out.data);
}
END_TEST

/* On a mesh, P parts are summed in double in device order too, whether each part read covers the
 * whole output (an all-reduce, a reduce-scatter: summed in blocks, or two parts added in their own
 * type) or only a box of it (added box by box): each element must have the bits of adding from +0,
 * in device order, the parts whose region holds it. Rows of 1030 cross the blocks the sum walks
 * in; the first element is -0 in every part. */
START_TEST(test_mesh_partial_sums)
{
    const int meshes[2][2] = {{2, 2}, {2, 1}};
    const int64_t shape[2] = {3, 1030};
    const loom_nd_sbp froms[3] = {loom_nd_sbp_2d(loom_partial_sum(), loom_partial_sum()),
                                  loom_nd_sbp_2d(loom_partial_sum(), loom_split(1)),
                                  loom_nd_sbp_2d(loom_split(0), loom_partial_sum())};
    const loom_nd_sbp tos[3] = {loom_nd_sbp_2d(loom_broadcast(), loom_broadcast()),
                                loom_nd_sbp_2d(loom_split(0), loom_split(1)), loom_nd_sbp_2d(loom_split(1), loom_broadcast())};
    int checked = 0;
    for (int dt = 0; dt < 2; dt++)
        for (int mi = 0; mi < 2; mi++)
            for (int f = 0; f < 3; f++)
                for (int t = 0; t < 3; t++) {
                    loom_dtype dtype = dt ? LOOM_F64 : LOOM_F32;
                    size_t es = loom_dtype_size(dtype);
                    loom__lay from = {.s = froms[f], .mesh = {meshes[mi][0], meshes[mi][1]}, .n = meshes[mi][0] * meshes[mi][1]};
                    loom__lay to = {.s = tos[t], .mesh = {from.mesh[0], from.mesh[1]}, .n = from.n};
                    loom__value parts[4];
                    const loom__value *pp[4];
                    int64_t qstart[4][LOOM_MAX_DIMS], qsize[4][LOOM_MAX_DIMS];
                    for (int q = 0; q < from.n; q++) {
                        loom__nd_region(shape, 2, &from.s, from.mesh, q, qstart[q], qsize[q]);
                        parts[q] = make(dtype, 2, qsize[q]);
                        double *r = malloc((size_t)loom__numel(&parts[q]) * sizeof *r);
                        lt_fill_normal(r, loom__numel(&parts[q]), (uint64_t)(17 * q + 3 * f + 1));
                        for (int64_t i = 0; i < loom__numel(&parts[q]); i++)
                            if (dt)
                                ((double *)parts[q].data)[i] = r[i] * (q == 1 ? 1e8 : 1);
                            else
                                ((float *)parts[q].data)[i] = (float)(r[i] * (q == 1 ? 1e8 : 1));
                        free(r);
                        if (dt) /* -0 everywhere: the sum starts from +0, so it is +0 */
                            ((double *)parts[q].data)[0] = -0.0;
                        else
                            ((float *)parts[q].data)[0] = -0.0f;
                        pp[q] = &parts[q];
                    }
                    for (int d = 0; d < to.n; d++) {
                        int64_t ostart[LOOM_MAX_DIMS], osize[LOOM_MAX_DIMS];
                        loom__nd_region(shape, 2, &to.s, to.mesh, d, ostart, osize);
                        loom__value got = make(dtype, 2, osize), want = make(dtype, 2, osize);
                        ck_assert_int_eq(loom__lay_convert(pp, &from, &to, d, 0, shape, &got), 0);
                        for (int64_t i = 0; i < osize[0]; i++)
                            for (int64_t j = 0; j < osize[1]; j++) {
                                int64_t a = ostart[0] + i, b = ostart[1] + j;
                                double acc = 0;
                                for (int q = 0; q < from.n; q++) {
                                    int64_t li = a - qstart[q][0], lj = b - qstart[q][1];
                                    if (li < 0 || li >= qsize[q][0] || lj < 0 || lj >= qsize[q][1])
                                        continue;
                                    acc += dt ? ((double *)parts[q].data)[li * qsize[q][1] + lj]
                                              : ((float *)parts[q].data)[li * qsize[q][1] + lj];
                                }
                                if (dt)
                                    ((double *)want.data)[i * osize[1] + j] = acc;
                                else
                                    ((float *)want.data)[i * osize[1] + j] = (float)acc;
                            }
                        if (memcmp(got.data, want.data, (size_t)loom__numel(&got) * es))
                            ck_abort_msg("mesh [%d,%d], from %d to %d, device %d, %s: sums differ from device order", from.mesh[0],
                                         from.mesh[1], f, t, d, dt ? "f64" : "f32");
                        checked++;
                        free(got.data);
                        free(want.data);
                    }
                    for (int q = 0; q < from.n; q++)
                        free(parts[q].data);
                }
    ck_assert_int_eq(checked, 2 * 3 * 3 * (4 + 2));
}
END_TEST

/* A graph batch fed by parts splits axis 0 unevenly (whole graphs per device, an empty share
 * too): joining, gathering to B, reducing P into those parts and splitting axis 1 must all read
 * each part at its own offset and size. */
START_TEST(test_uneven_parts)
{
    const int64_t shape[2] = {7, 5}, sizes[3] = {3, 0, 4}, firsts[3] = {0, 3, 3};
    loom__value x = make(LOOM_F64, 2, shape), parts[3];
    const loom__value *pp[3];
    lt_fill_normal(x.data, loom__numel(&x), 5);
    for (int d = 0; d < 3; d++) {
        parts[d] = make(LOOM_F64, 2, (int64_t[]){sizes[d], 5});
        memcpy(parts[d].data, (double *)x.data + firsts[d] * 5, (size_t)(sizes[d] * 5) * sizeof(double));
        pp[d] = &parts[d];
    }
    loom__value back = make(LOOM_F64, 2, shape);
    loom__part_join(pp, loom_split(0), 3, &back);
    ck_assert(!memcmp(back.data, x.data, sizeof(double) * 35));
    for (int d = 0; d < 3; d++) {
        loom__value b = make(LOOM_F64, 2, shape); /* all-gather */
        loom__part_convert(pp, loom_split(0), 3, loom_broadcast(), 3, d, 0, shape, &b);
        ck_assert(!memcmp(b.data, x.data, sizeof(double) * 35));
        loom__value own = make(LOOM_F64, 2, (int64_t[]){sizes[d], 5}); /* from B to this device's uneven part */
        const loom__value *whole[3] = {&x, &x, &x};
        loom__part_convert(whole, loom_broadcast(), 3, loom_split(0), 3, d, firsts[d], shape, &own);
        ck_assert(!memcmp(own.data, parts[d].data, sizeof(double) * (size_t)(sizes[d] * 5)));
        loom__value cols = make(LOOM_F64, 2, (int64_t[]){7, d == 2 ? 1 : 2}); /* all-to-all S(0) -> S(1) */
        loom__part_convert(pp, loom_split(0), 3, loom_split(1), 3, d, 2 * d, shape, &cols);
        for (int r = 0; r < 7; r++)
            for (int c = 0; c < cols.shape[1]; c++)
                ck_assert(((double *)cols.data)[r * cols.shape[1] + c] == ((double *)x.data)[r * 5 + 2 * d + c]);
        free(b.data);
        free(own.data);
        free(cols.data);
    }
    for (int d = 0; d < 3; d++)
        free(parts[d].data);
    free(back.data);
    free(x.data);
}
END_TEST

START_TEST(test_csr_rows_and_join)
{
    /* a 6 x 4 matrix with an empty row; rows split over 1..4 devices and joined again */
    int32_t rowptr[7] = {0, 2, 2, 3, 6, 7, 9}, col[9] = {0, 3, 1, 0, 1, 2, 3, 0, 2};
    double val[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    loom__value m = {.dtype = LOOM_F64, .ndim = 2, .shape = {6, 4}, .data = val, .rowptr = rowptr, .col = col, .nnz = 9};
    for (int n = 1; n <= 4; n++) {
        loom__value parts[4];
        const loom__value *pp[4];
        int32_t rp[4][8], cl[4][9];
        double vl[4][9];
        for (int d = 0; d < n; d++) {
            int64_t start, size;
            loom_split_part(6, n, d, &start, &size);
            parts[d] = (loom__value){.rowptr = rp[d], .col = cl[d], .data = vl[d]};
            loom__csr_rows(&m, start, size, &parts[d]);
            ck_assert_int_eq(parts[d].shape[0], size);
            ck_assert_int_eq(parts[d].rowptr[0], 0);
            ck_assert_int_eq(parts[d].nnz, rowptr[start + size] - rowptr[start]);
            pp[d] = &parts[d];
        }
        int32_t rj[8], cj[9];
        double vj[9];
        loom__value joined = {.rowptr = rj, .col = cj, .data = vj};
        loom__csr_join(pp, n, &joined);
        ck_assert_int_eq(joined.nnz, 9);
        ck_assert_int_eq(joined.shape[0], 6);
        ck_assert_int_eq(joined.shape[1], 4);
        ck_assert(!memcmp(rj, rowptr, sizeof rowptr) && !memcmp(cj, col, sizeof col) && !memcmp(vj, val, sizeof val));
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("parts");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, test_convert_every_pair);
    tcase_add_test(tc, test_convert_between_placements);
    tcase_add_test(tc, test_partial_sums_in_device_order);
    tcase_add_test(tc, test_mesh_partial_sums);
    tcase_add_test(tc, test_uneven_parts);
    tcase_add_test(tc, test_csr_rows_and_join);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
