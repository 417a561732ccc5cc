/* Image datasets: Fashion-MNIST from its IDX files (loom_fashion_mnist_load). The files are read
 * whole by loom_idx_read; what is checked here is what makes them a labelled set: 28 x 28 u8
 * images, one u8 label each, every label a class 0 to 9. */
#include <loom/data.h>

#include "data/files.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FM_SIDE = 28, FM_CLASSES = 10, FM_PATH = 4096 };

/* The default places, in the order they are looked in; the first is under $LOOM_DATA. */
static const char fm_subdir[] = "fashion-mnist";
static const char fm_system[] = "/usr/share/datasets/fashion-mnist";

/* Images and labels of one set in dir, each as name.gz or else name: 1 when both are there. */
static int fm_find(const char *dir, const char *const names[2], char paths[2][FM_PATH])
{
    for (int k = 0; k < 2; k++) {
        int found = 0;
        for (int gz = 1; gz >= 0 && !found; gz--) {
            int n = snprintf(paths[k], FM_PATH, "%s/%s%s", dir, names[k], gz ? ".gz" : "");
            found = n > 0 && n < FM_PATH && loom__data_is_file(paths[k]);
        }
        if (!found)
            return 0;
    }
    return 1;
}

/* The images' and labels' paths of the set: in dir, or in the default places. */
static loom_status fm_locate(const char *dir, int train, char paths[2][FM_PATH], loom_error *err)
{
    static const char *const names[2][2] = {{"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"},
                                            {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"}};
    const char *const *want = names[train ? 1 : 0];
    char looked[1024] = "";
    if (dir) {
        if (fm_find(dir, want, paths))
            return LOOM_OK;
        loom__data_append(looked, sizeof looked, "%s", dir);
    } else {
        const char *env = getenv("LOOM_DATA");
        char cand[FM_PATH];
        if (env && env[0]) {
            int n = snprintf(cand, sizeof cand, "%s/%s", env, fm_subdir);
            if (n > 0 && (size_t)n < sizeof cand && fm_find(cand, want, paths))
                return LOOM_OK;
            loom__data_append(looked, sizeof looked, "%s, ", cand);
        } else {
            loom__data_append(looked, sizeof looked, "$LOOM_DATA/%s ($LOOM_DATA unset), ", fm_subdir);
        }
        if (fm_find(fm_system, want, paths))
            return LOOM_OK;
        loom__data_append(looked, sizeof looked, "%s", fm_system);
    }
    return loom_error_set(err, LOOM_ERR_NOT_FOUND,
                          "Fashion-MNIST's %s set not found: looked for %s.gz and %s.gz (or either without .gz) in %s. "
                          "The Debian package dataset-fashion-mnist installs them in %s (apt-get install "
                          "dataset-fashion-mnist); or set LOOM_DATA to a directory holding %s/",
                          train ? "training" : "test", want[0], want[1], looked, fm_system, fm_subdir);
}

/* The IDX arrays as a labelled set of 28 x 28 grey images, checked; out takes their memory. */
static loom_status fm_check(const char *paths[2], loom_array *im, loom_array *lb, loom_image_set *out, loom_error *err)
{
    char what[160];
    loom__data_describe(what, sizeof what, im->dtype, im->ndim, im->shape);
    if (im->dtype != LOOM_U8 || im->ndim != 3 || im->shape[1] != FM_SIDE || im->shape[2] != FM_SIDE)
        return loom_error_set(err, LOOM_ERR_FORMAT, "%s: %s, expected 28 x 28 u8 images (count x 28 x 28 u8)", paths[0], what);
    loom__data_describe(what, sizeof what, lb->dtype, lb->ndim, lb->shape);
    if (lb->dtype != LOOM_U8 || lb->ndim != 1)
        return loom_error_set(err, LOOM_ERR_FORMAT, "%s: %s, expected u8 labels (count u8)", paths[1], what);
    const int64_t n = im->shape[0];
    if (lb->shape[0] != n)
        return loom_error_set(err, LOOM_ERR_FORMAT, "%s: %lld labels, expected %lld: one for each image of %s", paths[1],
                              (long long)lb->shape[0], (long long)n, paths[0]);
    const uint8_t *l = lb->data;
    for (int64_t i = 0; i < n; i++)
        if (l[i] >= FM_CLASSES)
            return loom__file_bad(err, paths[1], 8 + (uint64_t)i, "label %lld is %u, expected a class 0 to %d", (long long)i,
                                  l[i], FM_CLASSES - 1);
    if (loom_array_alloc(&out->labels, LOOM_I32, 1, &n) != LOOM_OK)
        return loom_error_set(err, LOOM_ERR_NOMEM, "%s: out of memory for %lld labels", paths[1], (long long)n);
    int32_t *to = out->labels.data;
    for (int64_t i = 0; i < n; i++)
        to[i] = l[i];
    /* [count, 28, 28] is [count, 1, 28, 28]: the same bytes */
    out->images = *im;
    *im = LOOM_ARRAY_INIT;
    out->images.ndim = 4;
    out->images.shape[1] = 1;
    out->images.shape[2] = out->images.shape[3] = FM_SIDE;
    out->count = n;
    out->channels = 1;
    out->height = out->width = FM_SIDE;
    out->num_classes = FM_CLASSES;
    return LOOM_OK;
}

loom_status loom_fashion_mnist_load(const char *dir, int train, loom_image_set *out, loom_error *err)
{
    if (out)
        *out = (loom_image_set){0};
    if (!out)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_fashion_mnist_load: NULL output");
    char found[2][FM_PATH];
    loom_status st = fm_locate(dir, train, found, err);
    if (st)
        return st;
    const char *paths[2] = {found[0], found[1]};
    loom_array im = LOOM_ARRAY_INIT, lb = LOOM_ARRAY_INIT;
    if (!(st = loom_idx_read(paths[0], &im, err)) && !(st = loom_idx_read(paths[1], &lb, err)))
        st = fm_check(paths, &im, &lb, out, err);
    loom_array_free(&im);
    loom_array_free(&lb);
    if (st)
        loom_image_set_free(out);
    return st;
}

void loom_image_set_free(loom_image_set *s)
{
    if (!s)
        return;
    loom_array_free(&s->images);
    loom_array_free(&s->labels);
    *s = (loom_image_set){0};
}

void loom_image_set_mean_std(const loom_image_set *s, double *mean, double *std)
{
    *mean = *std = 0;
    const int64_t n = s ? loom_array_numel(&s->images) : 0;
    if (n <= 0 || s->images.dtype != LOOM_U8 || !s->images.data)
        return;
    const uint8_t *p = s->images.data;
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; i++)
        sum += p[i], sq += (double)p[i] * p[i];
    const double m = sum / (double)n / 255.0;
    *mean = m;
    *std = sqrt(fmax(0, sq / (double)n / (255.0 * 255.0) - m * m));
}
