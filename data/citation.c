/* Citation graphs in the Cora .npz layout (loom_citation_load, loom_cora_load) and finding data
 * files on disk or downloading them into the cache (loom_data_find).
 *
 * The layout is scipy's CSR split into arrays: adj_data/adj_indices/adj_indptr/adj_shape for the
 * adjacency, attr_* likewise for the features (or a dense attr_matrix), and labels. Everything is
 * checked before use, since a bad file must give a message, not a crash or a silently wrong graph. */
#define _GNU_SOURCE /* environ */
#include <loom/data.h>

#include "data/files.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;


/* ---------------------------------------------------------------------------------------------
 * Finding (and downloading) data files.
 * ------------------------------------------------------------------------------------------- */

/* $XDG_CACHE_HOME/loom (the XDG spec ignores a relative value), else $HOME/.cache/loom. */
static int cache_dir(char *buf, size_t n)
{
    const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    int k;
    if (x && x[0] == '/')
        k = snprintf(buf, n, "%s/loom", x);
    else if (h && h[0])
        k = snprintf(buf, n, "%s/.cache/loom", h);
    else
        return 0;
    return k > 0 && (size_t)k < n;
}

static int on_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path || !path[0])
        path = "/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *q = strchr(p, ':');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        char cand[4096];
        if (snprintf(cand, sizeof cand, "%.*s/%s", (int)len, len ? p : ".", prog) < (int)sizeof cand &&
            access(cand, X_OK) == 0)
            return 1;
        if (!q)
            return 0;
        p = q + 1;
    }
}

/* mkdir -p: creates each missing component of dir. */
static int make_dirs(const char *dir)
{
    char buf[4096];
    size_t n = strlen(dir);
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0)
            continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        buf[i] = c;
    }
    return 0;
}

/* Runs curl or wget (argv, no shell) to fetch url into part; a description of any failure goes
 * to why. 0 on success. */
static int fetch(const char *url, const char *part, char *why, size_t whylen)
{
    const char *curl[] = {"curl", "-fsSL", "--max-time", "60", "-o", part, url, NULL};
    const char *wget[] = {"wget", "-q", "--timeout=60", "--tries=2", "-O", part, url, NULL};
    const char *const *argv = on_path("curl") ? curl : on_path("wget") ? wget : NULL;
    if (!argv) {
        snprintf(why, whylen, "no curl or wget on PATH to download %s", url);
        return -1;
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], NULL, NULL, (char *const *)argv, environ);
    if (rc != 0) {
        snprintf(why, whylen, "cannot run %s: %s", argv[0], strerror(rc));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            snprintf(why, whylen, "waiting for %s: %s", argv[0], strerror(errno));
            return -1;
        }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(why, whylen, "%s %s failed (%s %d)", argv[0], url, WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return -1;
    }
    /* A captive portal or proxy can answer 200 with HTML: keep only what looks like a zip. */
    unsigned char head[4] = {0};
    FILE *f = fopen(part, "rb");
    size_t got = f ? fread(head, 1, 4, f) : 0;
    if (f)
        fclose(f);
    if (got != 4 || head[0] != 'P' || head[1] != 'K') {
        snprintf(why, whylen, "%s %s gave a file that is not a zip archive", argv[0], url);
        return -1;
    }
    return 0;
}

loom_status loom_data_find(const char *file, const char *url, char *path, size_t pathlen, loom_error *err)
{
    if (!file || !file[0] || strlen(file) > 255 || strchr(file, '/') || !strcmp(file, ".") || !strcmp(file, "..") ||
        !path || !pathlen)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_data_find: expected a plain file name and an output buffer");
    path[0] = 0;
    char cand[4096], looked[1024] = "";
    const char *env = getenv("LOOM_DATA");
    if (env && env[0]) {
        int k = snprintf(cand, sizeof cand, "%s/%s", env, file);
        if (k > 0 && (size_t)k < sizeof cand && loom__data_is_file(cand))
            goto found;
        loom__data_append(looked, sizeof looked, "%s", cand);
    } else {
        loom__data_append(looked, sizeof looked, "$LOOM_DATA (unset)");
    }
    char dir[3800]; /* leaves room in cand for '/' and a 255-byte file name */
    int have_cache = cache_dir(dir, sizeof dir);
    if (have_cache) {
        snprintf(cand, sizeof cand, "%s/%s", dir, file);
        if (loom__data_is_file(cand))
            goto found;
        loom__data_append(looked, sizeof looked, ", %s", cand);
    } else {
        snprintf(dir, sizeof dir, "~/.cache/loom (no $HOME)");
    }

    char why[512] = "no download URL";
    if (url && have_cache) {
        /* A part file of this process's own, renamed into place only when complete: concurrent
         * runs (ctest -j) never see or clobber each other's half-written download. */
        char part[4096 + 32];
        snprintf(part, sizeof part, "%s.%ld.part", cand, (long)getpid());
        if (make_dirs(dir) != 0) {
            why[0] = 0;
            loom__data_append(why, sizeof why, "cannot create %s: %s", dir, strerror(errno));
        } else if (fetch(url, part, why, sizeof why) != 0) {
            unlink(part);
        } else if (rename(part, cand) != 0) {
            why[0] = 0;
            loom__data_append(why, sizeof why, "cannot rename %s: %s", part, strerror(errno));
            unlink(part);
        } else {
            goto found;
        }
    } else if (url) {
        snprintf(why, sizeof why, "no cache directory to download into");
    }
    return loom_error_set(err, LOOM_ERR_NOT_FOUND,
                "%s not found: looked in %s; %s. Set LOOM_DATA to a directory holding %s, or put it in %s", file,
                looked, why, file, dir);
found:
    if (strlen(cand) >= pathlen)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_data_find: %s does not fit a path buffer of %zu bytes", cand, pathlen);
    memcpy(path, cand, strlen(cand) + 1);
    return LOOM_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Loading.
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    loom_npz *z;
    const char *file;
    loom_error *err;
} reader;

/* Reads a 1-D array (of length want, unless want < 0) as dtype. */
static loom_status read_vec(reader *r, const char *name, loom_dtype dt, int64_t want, loom_array *a)
{
    loom_status s = loom_npz_read(r->z, name, dt, a, r->err);
    if (s)
        return s;
    if (a->ndim != 1 || (want >= 0 && a->shape[0] != want)) {
        char got[96] = "a scalar";
        int n = 0;
        for (int i = 0; i < a->ndim && n < (int)sizeof got - 24; i++)
            n += snprintf(got + n, sizeof got - (size_t)n, "%s%lld", i ? ", " : "[", (long long)a->shape[i]);
        if (a->ndim)
            snprintf(got + n, sizeof got - (size_t)n, "]");
        loom_array_free(a);
        if (want >= 0)
            return loom_error_set(r->err, LOOM_ERR_FORMAT, "%s: %s has shape %s: expected [%lld]", r->file, name, got,
                        (long long)want);
        return loom_error_set(r->err, LOOM_ERR_FORMAT, "%s: %s has shape %s: expected a 1-D array", r->file, name, got);
    }
    return LOOM_OK;
}

/* prefix_shape: 2 non-negative dims, each below 2^31 (Loom's CSR indexes with int32). */
static loom_status read_shape2(reader *r, const char *name, int64_t *rows, int64_t *cols)
{
    loom_array a;
    loom_status s = read_vec(r, name, LOOM_I64, 2, &a);
    if (s)
        return s;
    int64_t *v = a.data;
    *rows = v[0];
    *cols = v[1];
    loom_array_free(&a);
    if (*rows < 0 || *cols < 0 || *rows >= INT32_MAX || *cols >= INT32_MAX)
        return loom_error_set(r->err, LOOM_ERR_FORMAT, "%s: %s is (%lld, %lld): expected dimensions in [0, 2^31 - 1)", r->file,
                    name, (long long)*rows, (long long)*cols);
    return LOOM_OK;
}

/* A scipy CSR matrix stored as <p>_data, <p>_indices, <p>_indptr: reads and validates the three
 * against nrows and ncols. */
static loom_status read_csr(reader *r, const char *p, int64_t nrows, int64_t ncols, loom_array *indptr,
                            loom_array *indices, loom_array *data)
{
    char n_ptr[32], n_ind[32], n_dat[32];
    snprintf(n_ptr, sizeof n_ptr, "%s_indptr", p);
    snprintf(n_ind, sizeof n_ind, "%s_indices", p);
    snprintf(n_dat, sizeof n_dat, "%s_data", p);
    loom_status s = read_vec(r, n_ptr, LOOM_I64, nrows + 1, indptr);
    if (s)
        return s;
    const int64_t *ptr = indptr->data;
    if (ptr[0] != 0)
        return loom_error_set(r->err, LOOM_ERR_FORMAT, "%s: %s[0] is %lld: expected 0", r->file, n_ptr, (long long)ptr[0]);
    for (int64_t i = 0; i < nrows; i++)
        if (ptr[i + 1] < ptr[i])
            return loom_error_set(r->err, LOOM_ERR_FORMAT, "%s: %s decreases at row %lld (%lld after %lld): expected it monotone",
                        r->file, n_ptr, (long long)i, (long long)ptr[i + 1], (long long)ptr[i]);
    if ((s = read_vec(r, n_ind, LOOM_I64, -1, indices)))
        return s;
    if (ptr[nrows] != indices->shape[0])
        return loom_error_set(r->err, LOOM_ERR_FORMAT, "%s: %s[%lld] is %lld: expected the length of %s, %lld", r->file, n_ptr,
                    (long long)nrows, (long long)ptr[nrows], n_ind, (long long)indices->shape[0]);
    const int64_t *ind = indices->data;
    for (int64_t k = 0; k < indices->shape[0]; k++)
        if (ind[k] < 0 || ind[k] >= ncols)
            return loom_error_set(r->err, LOOM_ERR_FORMAT, "%s: %s[%lld] is %lld: expected a column in [0, %lld)", r->file, n_ind,
                        (long long)k, (long long)ind[k], (long long)ncols);
    if ((s = read_vec(r, n_dat, LOOM_F64, indices->shape[0], data)))
        return s;
    const double *v = data->data;
    for (int64_t k = 0; k < data->shape[0]; k++)
        if (!isfinite(v[k]))
            return loom_error_set(r->err, LOOM_ERR_FORMAT, "%s: %s[%lld] is not finite", r->file, n_dat, (long long)k);
    return LOOM_OK;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* A + A^T over the nonzero entries, without self loops or duplicates, rows sorted, values 1. */
static loom_status symmetrise(reader *r, int64_t n, const int64_t *ptr, const int64_t *ind, const double *val,
                              loom_csr *out)
{
    int64_t total = 0;
    int64_t *start = calloc((size_t)n + 1, sizeof *start);
    if (!start)
        return loom_error_set(r->err, LOOM_ERR_NOMEM, "%s: out of memory for the adjacency", r->file);
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = ptr[i]; k < ptr[i + 1]; k++)
            if (ind[k] != i && val[k] != 0) {
                start[i + 1]++;
                start[ind[k] + 1]++;
                total += 2;
            }
    if (total > INT32_MAX) {
        free(start);
        return loom_error_set(r->err, LOOM_ERR_UNSUPPORTED, "%s: adj has %lld entries once symmetrised, more than int32 indexes",
                     r->file, (long long)total);
    }
    for (int64_t i = 0; i < n; i++)
        start[i + 1] += start[i];
    *out = (loom_csr){.nrows = n, .ncols = n, .vdtype = LOOM_F32};
    out->rowptr = malloc(((size_t)n + 1) * sizeof *out->rowptr);
    out->col = malloc(((size_t)total + 1) * sizeof *out->col);
    int64_t *fill = malloc(((size_t)n + 1) * sizeof *fill);
    if (!out->rowptr || !out->col || !fill) {
        free(start);
        free(fill);
        loom_csr_free(out);
        return loom_error_set(r->err, LOOM_ERR_NOMEM, "%s: out of memory for the adjacency", r->file);
    }
    memcpy(fill, start, ((size_t)n + 1) * sizeof *fill);
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = ptr[i]; k < ptr[i + 1]; k++)
            if (ind[k] != i && val[k] != 0) {
                out->col[fill[i]++] = (int32_t)ind[k];
                out->col[fill[ind[k]]++] = (int32_t)i;
            }
    /* Sort each row and drop repeats, compacting in place (w never passes the read position). */
    int64_t w = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t *row = out->col + start[i];
        size_t len = (size_t)(start[i + 1] - start[i]);
        qsort(row, len, sizeof *row, cmp_i32);
        out->rowptr[i] = (int32_t)w;
        for (size_t k = 0; k < len; k++)
            if (k == 0 || row[k] != row[k - 1])
                out->col[w++] = row[k];
    }
    out->rowptr[n] = (int32_t)w;
    out->nnz = w;
    free(start);
    free(fill);
    float *v = malloc(((size_t)w + 1) * sizeof *v);
    if (!v) {
        loom_csr_free(out);
        return loom_error_set(r->err, LOOM_ERR_NOMEM, "%s: out of memory for the adjacency", r->file);
    }
    for (int64_t k = 0; k < w; k++)
        v[k] = 1.0f;
    out->val = v;
    return LOOM_OK;
}

static int has_member(const loom_npz *z, const char *name)
{
    for (int i = 0; i < loom_npz_count(z); i++)
        if (!strcmp(loom_npz_name(z, i), name))
            return 1;
    return 0;
}

/* Dense f32 features [n, F] from attr_* (sparse; duplicates add up, as in scipy) or attr_matrix. */
static loom_status read_features(reader *r, int64_t n, loom_array *x)
{
    loom_status s;
    if (!has_member(r->z, "attr_data") && has_member(r->z, "attr_matrix")) {
        if ((s = loom_npz_read(r->z, "attr_matrix", LOOM_F32, x, r->err)))
            return s;
        if (x->ndim != 2 || x->shape[0] != n) {
            long long d0 = x->ndim ? (long long)x->shape[0] : -1;
            int nd = x->ndim;
            loom_array_free(x);
            return loom_error_set(r->err, LOOM_ERR_FORMAT, "%s: attr_matrix has %d dims and %lld rows: expected [%lld, F]", r->file,
                        nd, d0, (long long)n);
        }
        const float *v = x->data;
        for (int64_t k = 0; k < loom_array_numel(x); k++)
            if (!isfinite(v[k])) {
                loom_array_free(x);
                return loom_error_set(r->err, LOOM_ERR_FORMAT, "%s: attr_matrix element %lld is not finite", r->file, (long long)k);
            }
        return LOOM_OK;
    }
    int64_t rows, f;
    if ((s = read_shape2(r, "attr_shape", &rows, &f)))
        return s;
    if (rows != n)
        return loom_error_set(r->err, LOOM_ERR_FORMAT, "%s: attr_shape is (%lld, %lld): expected %lld rows, as adj_shape has",
                    r->file, (long long)rows, (long long)f, (long long)n);
    loom_array ptr = {0}, ind = {0}, dat = {0};
    if (!(s = read_csr(r, "attr", n, f, &ptr, &ind, &dat))) {
        int64_t shape[2] = {n, f};
        s = loom_array_alloc(x, LOOM_F32, 2, shape);
        if (s)
            s = loom_error_set(r->err, LOOM_ERR_NOMEM, "%s: out of memory for %lld x %lld features", r->file, (long long)n,
                     (long long)f);
    }
    if (!s) {
        const int64_t *p = ptr.data, *c = ind.data;
        const double *v = dat.data;
        float *out = x->data;
        for (int64_t i = 0; i < n; i++)
            for (int64_t k = p[i]; k < p[i + 1]; k++)
                out[i * f + c[k]] += (float)v[k];
    }
    loom_array_free(&ptr);
    loom_array_free(&ind);
    loom_array_free(&dat);
    return s;
}

/* Like PyG's NormalizeFeatures: each row divided by its sum; a row summing to zero stays as is. */
static void normalise_rows(loom_array *x)
{
    int64_t n = x->shape[0], f = x->shape[1];
    float *v = x->data;
    for (int64_t i = 0; i < n; i++) {
        double sum = 0;
        for (int64_t j = 0; j < f; j++)
            sum += v[i * f + j];
        if (sum != 0)
            for (int64_t j = 0; j < f; j++)
                v[i * f + j] = (float)(v[i * f + j] / sum);
    }
}

loom_status loom_citation_load(const char *path, loom_node_dataset *out, loom_error *err)
{
    if (out)
        *out = (loom_node_dataset){0};
    if (!path || !out)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_citation_load: NULL path or output");
    reader r = {.file = path, .err = err};
    loom_status s = loom_npz_open(path, &r.z, err);
    if (s)
        return s;
    loom_array ptr = {0}, ind = {0}, dat = {0}, lab = {0};
    int64_t n = 0, n2 = 0, max = -1;
    if ((s = read_shape2(&r, "adj_shape", &n, &n2)))
        goto done;
    if (n != n2) {
        s = loom_error_set(err, LOOM_ERR_FORMAT, "%s: adj_shape is (%lld, %lld): expected a square matrix", path, (long long)n,
                 (long long)n2);
        goto done;
    }
    if ((s = read_csr(&r, "adj", n, n, &ptr, &ind, &dat)) || (s = symmetrise(&r, n, ptr.data, ind.data, dat.data, &out->adj)))
        goto done;
    if ((s = read_features(&r, n, &out->x)))
        goto done;
    normalise_rows(&out->x);
    if ((s = read_vec(&r, "labels", LOOM_I64, n, &lab)))
        goto done;
    if ((s = loom_array_alloc(&out->labels, LOOM_I32, 1, &n))) {
        s = loom_error_set(err, LOOM_ERR_NOMEM, "%s: out of memory for labels", path);
        goto done;
    }
    const int64_t *l = lab.data;
    for (int64_t i = 0; i < n; i++) {
        if (l[i] < 0 || l[i] >= INT32_MAX) {
            s = loom_error_set(err, LOOM_ERR_FORMAT, "%s: labels[%lld] is %lld: expected a class in [0, 2^31 - 1)", path,
                     (long long)i, (long long)l[i]);
            goto done;
        }
        ((int32_t *)out->labels.data)[i] = (int32_t)l[i];
        if (l[i] > max)
            max = l[i];
    }
    out->num_nodes = n;
    out->num_features = out->x.shape[1];
    out->num_classes = max + 1;
done:
    loom_array_free(&ptr);
    loom_array_free(&ind);
    loom_array_free(&dat);
    loom_array_free(&lab);
    loom_npz_close(r.z);
    if (s)
        loom_node_dataset_free(out);
    return s;
}

loom_status loom_cora_load(loom_node_dataset *out, loom_error *err)
{
    /* The download source is shchur/gnn-benchmark's cora.npz, the public .npz of Cora in this
     * layout (Planetoid's own files are pickles, not npz). It has not been fetched and checked
     * here: its node count may differ from the 2708-node file the tests are measured on, and
     * results on a downloaded file may differ from the published Planetoid numbers. */
    static const char url[] = "https://raw.githubusercontent.com/shchur/gnn-benchmark/master/data/npz/cora.npz";
    char path[4096];
    if (out)
        *out = (loom_node_dataset){0};
    loom_status s = loom_data_find("cora.npz", url, path, sizeof path, err);
    if (s)
        return s;
    return loom_citation_load(path, out, err);
}

void loom_node_dataset_free(loom_node_dataset *d)
{
    if (!d)
        return;
    loom_csr_free(&d->adj);
    loom_array_free(&d->x);
    loom_array_free(&d->labels);
    *d = (loom_node_dataset){0};
}
