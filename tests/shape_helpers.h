/* Shared by the shape op tests (test_ops_shape.c: reshape and transpose; test_ops_concat_slice.c:
 * concat and slice): every dtype, distinct-ish data, and index maps computed naively, against which
 * the ops' outputs are checked element by element. */
#ifndef LOOM_TESTS_SHAPE_HELPERS_H
#define LOOM_TESTS_SHAPE_HELPERS_H

#include "harness.h"

#include <stdlib.h>

static const loom_dtype all_dtypes[] = {LOOM_F32, LOOM_F64, LOOM_I32, LOOM_I64, LOOM_U8};
enum { NDTYPES = sizeof all_dtypes / sizeof all_dtypes[0] };

/* n distinct-ish elements of dtype: element i is (i * 7 + seed) % 251, so u8 holds them too. */
static inline void *make(loom_dtype dt, int64_t n, int seed)
{
    void *p = malloc((size_t)(n ? n : 1) * loom_dtype_size(dt));
    ck_assert_ptr_nonnull(p);
    for (int64_t i = 0; i < n; i++) {
        int v = (int)((i * 7 + seed) % 251);
        switch (dt) {
        case LOOM_F32: ((float *)p)[i] = (float)v + 0.25f; break;
        case LOOM_F64: ((double *)p)[i] = v - 0.125; break;
        case LOOM_I32: ((int32_t *)p)[i] = -v; break;
        case LOOM_I64: ((int64_t *)p)[i] = (int64_t)v << 33; break;
        default: ((uint8_t *)p)[i] = (uint8_t)v; break;
        }
    }
    return p;
}

static inline double get(const void *p, loom_dtype dt, int64_t i)
{
    switch (dt) {
    case LOOM_F32: return ((const float *)p)[i];
    case LOOM_F64: return ((const double *)p)[i];
    case LOOM_I32: return ((const int32_t *)p)[i];
    case LOOM_I64: return (double)((const int64_t *)p)[i];
    default: return ((const uint8_t *)p)[i];
    }
}

/* out element k must be in element map[k] (-1: must be 0). */
static inline void check_map(const loom_array *out, const void *in, const int64_t *map, int64_t n, const char *what)
{
    ck_assert_int_eq(loom_array_numel(out), n);
    for (int64_t k = 0; k < n; k++) {
        double want = map[k] < 0 ? 0 : get(in, out->dtype, map[k]);
        ck_assert_msg(get(out->data, out->dtype, k) == want, "%s (%s) [%lld]: got %g, expected %g", what,
                      loom_dtype_name(out->dtype), (long long)k, get(out->data, out->dtype, k), want);
    }
}

static inline void unravel(int64_t k, int nd, const int64_t *d, int64_t *idx)
{
    for (int i = nd - 1; i >= 0; i--) {
        idx[i] = k % d[i];
        k /= d[i];
    }
}

static inline int64_t ravel(int nd, const int64_t *d, const int64_t *idx)
{
    int64_t k = 0;
    for (int i = 0; i < nd; i++)
        k = k * d[i] + idx[i];
    return k;
}

#endif
