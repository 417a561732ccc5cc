/* Core types: status text, dtypes, shapes, host arrays, CSR matrices, counter-based random bits. */
#include <loom/core.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graphs/core/op.h"

const char *loom_status_str(loom_status s)
{
    switch (s) {
#define LOOM__STATUS_CASE(name, code, text) \
    case LOOM_##name:                       \
        return text;
        LOOM_STATUS_LIST(LOOM__STATUS_CASE)
#undef LOOM__STATUS_CASE
    }
    return "unknown status";
}

static const struct {
    const char *name;
    size_t size;
} dtypes[LOOM_DTYPE_COUNT] = {
    [LOOM_F32] = {"f32", 4}, [LOOM_F64] = {"f64", 8}, [LOOM_I32] = {"i32", 4},
    [LOOM_I64] = {"i64", 8}, [LOOM_U8] = {"u8", 1},
};

size_t loom_dtype_size(loom_dtype t) { return (unsigned)t < LOOM_DTYPE_COUNT ? dtypes[t].size : 0; }
const char *loom_dtype_name(loom_dtype t) { return (unsigned)t < LOOM_DTYPE_COUNT ? dtypes[t].name : "?"; }
int loom_dtype_is_float(loom_dtype t) { return t == LOOM_F32 || t == LOOM_F64; }

loom_shape loom__shape_n(int n, const loom_dim *d)
{
    loom_shape s = {.ndim = n};
    for (int i = 0; i < n && i < LOOM_MAX_DIMS; i++)
        s.d[i] = d[i];
    return s;
}

int loom__mul_size(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
        return -1;
    *out = r;
    return 0;
}

int loom__add_size(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r))
        return -1;
    *out = r;
    return 0;
}

const char *loom__bytes_str(double bytes, char *buf, size_t len)
{
    static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB"};
    if (!(bytes >= 1023.95)) { /* under what one decimal of KiB would show as 1.0 KiB */
        snprintf(buf, len, "%.0f byte%s", bytes, bytes == 1 ? "" : "s");
        return buf;
    }
    int u = 0;
    double v = bytes / 1024;
    while (u < 3 && v >= 1023.95) /* so that 1 MiB - 1 reads 1.0 MiB, not 1024.0 KiB */
        v /= 1024, u++;
    snprintf(buf, len, "%.1f %s", v, unit[u]);
    return buf;
}

int loom__dense_size(loom_dtype dtype, int ndim, const int64_t *shape, int64_t *numel, int64_t *bytes)
{
    int64_t n = 1, b;
    if (ndim < 0 || ndim > LOOM_MAX_DIMS || !loom_dtype_size(dtype))
        return -1;
    for (int i = 0; i < ndim; i++)
        if (loom__mul_size(n, shape[i], &n))
            return -1;
    if (loom__mul_size(n, (int64_t)loom_dtype_size(dtype), &b))
        return -1;
    if (numel)
        *numel = n;
    if (bytes)
        *bytes = b;
    return 0;
}

int64_t loom_array_numel(const loom_array *a)
{
    int64_t n;
    if (!a || a->ndim < 0 || a->ndim > LOOM_MAX_DIMS)
        return -1;
    /* any dtype counts elements; u8 keeps the byte count check from refusing a count that fits */
    return loom__dense_size(LOOM_U8, a->ndim, a->shape, &n, NULL) ? -1 : n;
}

loom_status loom_array_alloc(loom_array *a, loom_dtype dtype, int ndim, const int64_t *shape)
{
    if (!a || ndim < 0 || ndim > LOOM_MAX_DIMS || (ndim && !shape) || !loom_dtype_size(dtype))
        return LOOM_ERR_INVALID;
    *a = (loom_array){.dtype = dtype, .ndim = ndim};
    int64_t n;
    if (loom__dense_size(dtype, ndim, shape, &n, NULL))
        return LOOM_ERR_INVALID; /* a negative dim, or over an int64 byte count */
    memcpy(a->shape, shape, (size_t)ndim * sizeof *shape);
    a->data = calloc(n ? (size_t)n : 1, loom_dtype_size(dtype));
    return a->data ? LOOM_OK : LOOM_ERR_NOMEM;
}

void loom_array_free(loom_array *a)
{
    if (!a)
        return;
    free(a->data);
    *a = (loom_array){0};
}

void loom_csr_free(loom_csr *m)
{
    if (!m)
        return;
    free(m->rowptr);
    free(m->col);
    free(m->val);
    *m = (loom_csr){0};
}

loom_status loom_error_set(loom_error *err, loom_status s, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = s;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}

loom_status loom_csr_validate(const loom_csr *m, loom_error *err)
{
    if (!m || m->nrows < 0 || m->ncols < 0 || m->nnz < 0 || m->nnz > INT32_MAX || !m->rowptr ||
        (m->nnz && (!m->col || !m->val)) || (m->vdtype != LOOM_F32 && m->vdtype != LOOM_F64))
        return loom_error_set(err, LOOM_ERR_FORMAT, "csr: bad header (nrows %lld, ncols %lld, nnz %lld) or missing arrays",
                        m ? (long long)m->nrows : -1, m ? (long long)m->ncols : -1, m ? (long long)m->nnz : -1);
    if (m->rowptr && m->rowptr[0] != 0)
        return loom_error_set(err, LOOM_ERR_FORMAT, "csr: rowptr[0] is %d, expected 0", m->rowptr[0]);
    for (int64_t r = 0; r < m->nrows; r++)
        if (m->rowptr[r + 1] < m->rowptr[r])
            return loom_error_set(err, LOOM_ERR_FORMAT, "csr: rowptr decreases at row %lld (%d after %d)", (long long)r, m->rowptr[r + 1],
                            m->rowptr[r]);
    if (m->nrows && m->rowptr[m->nrows] != m->nnz)
        return loom_error_set(err, LOOM_ERR_FORMAT, "csr: rowptr[%lld] is %d, expected nnz %lld", (long long)m->nrows, m->rowptr[m->nrows],
                        (long long)m->nnz);
    for (int64_t e = 0; e < m->nnz; e++)
        if (m->col[e] < 0 || m->col[e] >= m->ncols)
            return loom_error_set(err, LOOM_ERR_FORMAT, "csr: entry %lld has column %d, outside [0, %lld)", (long long)e, m->col[e],
                            (long long)m->ncols);
    return LOOM_OK;
}

int64_t loom__numel(const loom__value *v)
{
    if (v->rowptr)
        return v->nnz;
    int64_t n;
    return loom__dense_size(LOOM_U8, v->ndim, v->shape, &n, NULL) ? -1 : n;
}
