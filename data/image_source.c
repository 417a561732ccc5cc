/* The image batch source (include/loom/images.h). An epoch deals an order of the set's images;
 * step k feeds images order[k * batch ...], each rendered into the source's buffer (normalised
 * through a table of the 256 pixel values, then cropped and flipped by its own draws) on the
 * program's source thread. The epoch's labels are laid out in its order when it is dealt: a step's
 * labels are fed from there as they are, and the caller reads them there while the program runs,
 * since the source thread never writes them. */
#include <loom/images.h>

#include "data/rand.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The streams of an epoch (data/rand.h): the order, and each image's crop offsets and flip. */
enum { KEY_ORDER, KEY_CROP_Y, KEY_CROP_X, KEY_FLIP, KEY_COUNT };

struct loom_image_source {
    const loom_image_set *s;
    loom_tensor *images, *labels;
    loom_image_opts o;
    int64_t pixels;         /* channels x height x width */
    int64_t steps, next;    /* the epoch's steps, the step fed next */
    uint64_t key[KEY_COUNT]; /* the epoch's streams */
    int64_t *order;         /* [count] the epoch's order of the set's images */
    int32_t *lab;           /* [count] their labels in that order */
    float *buf;             /* a step's images, [min(batch, count), C, H, W] */
    float norm[256];        /* what each pixel value becomes */
};

/* "[dynamic, 1, 4, 4]" into buf: t's dims, a dynamic one named so. */
static const char *dims_str(const loom_tensor *t, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < loom_tensor_ndim(t) && n < cap; i++) {
        loom_dim d = loom_tensor_dim(t, i);
        n += loom_dim_is_dynamic(d) ? (size_t)snprintf(buf + n, cap - n, "%sdynamic", i ? ", " : "")
                                    : (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, i ? ", " : "", d);
    }
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
    return buf;
}

/* The set's sizes against its arrays, and its labels against its classes. */
static loom_status check_set(const loom_image_set *s, loom_error *err)
{
    static const char api[] = "loom_image_source_new";
    if (s->count < 1 || s->channels < 1 || s->height < 1 || s->width < 1 || s->num_classes < 1)
        return loom_error_set(err, LOOM_ERR_INVALID,
                              "%s: a set of %" PRId64 " images of %" PRId64 " x %" PRId64 " x %" PRId64 " in %" PRId64
                              " classes: expected each at least 1",
                              api, s->count, s->channels, s->height, s->width, s->num_classes);
    const loom_array *im = &s->images, *lb = &s->labels;
    if (im->dtype != LOOM_U8 || im->ndim != 4 || im->shape[0] != s->count || im->shape[1] != s->channels ||
        im->shape[2] != s->height || im->shape[3] != s->width || loom_array_numel(im) < 0 || !im->data)
        return loom_error_set(err, LOOM_ERR_INVALID,
                              "%s: the set's images are not a u8 array [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                              "] (count, channels, height, width)",
                              api, s->count, s->channels, s->height, s->width);
    if (lb->dtype != LOOM_I32 || lb->ndim != 1 || lb->shape[0] != s->count || !lb->data)
        return loom_error_set(err, LOOM_ERR_INVALID, "%s: the set's labels are not an i32 array [%" PRId64 "]", api, s->count);
    const int32_t *l = lb->data;
    for (int64_t i = 0; i < s->count; i++)
        if (l[i] < 0 || l[i] >= s->num_classes)
            return loom_error_set(err, LOOM_ERR_INVALID, "%s: the set's label %" PRId64 " is %" PRId32 ", outside [0, %" PRId64 ")",
                                  api, i, l[i], s->num_classes);
    return LOOM_OK;
}

static loom_status check_opts(const loom_image_set *s, const loom_image_opts *o, loom_error *err)
{
    static const char api[] = "loom_image_source_new";
    if (o->batch < 1)
        return loom_error_set(err, LOOM_ERR_INVALID, "%s: batch is %" PRId64 ": expected at least 1", api, o->batch);
    if (o->drop_last && s->count < o->batch)
        return loom_error_set(err, LOOM_ERR_INVALID,
                              "%s: %" PRId64 " images make no full step of %" PRId64 ", and drop_last leaves out the short one",
                              api, s->count, o->batch);
    if (!isfinite(o->mean) || !isfinite(o->std) || o->std == 0)
        return loom_error_set(err, LOOM_ERR_INVALID, "%s: mean %g and std %g: expected finite values, std not 0", api, o->mean,
                              o->std);
    int64_t side = s->height < s->width ? s->height : s->width;
    if (o->crop_pad < 0 || o->crop_pad > side)
        return loom_error_set(err, LOOM_ERR_INVALID, "%s: crop_pad is %d: expected 0 to %" PRId64 " (the images' smaller side)",
                              api, o->crop_pad, side);
    return LOOM_OK;
}

/* images [B, C, H, W] f32 and labels [B] i32, B one dim, static only where every step fills it. */
static loom_status check_inputs(const loom_image_set *s, const loom_tensor *images, const loom_tensor *labels,
                                const loom_image_opts *o, loom_error *err)
{
    static const char api[] = "loom_image_source_new";
    char got[96];
    if (loom_tensor_is_poisoned(images) || loom_tensor_is_poisoned(labels))
        return loom_error_set(err, LOOM_ERR_INVALID, "%s: input %s is a poisoned tensor", api,
                              loom_tensor_is_poisoned(images) ? "images" : "labels");
    if (loom_tensor_dtype(images) != LOOM_F32 || loom_tensor_ndim(images) != 4 || loom_tensor_dim(images, 1) != s->channels ||
        loom_tensor_dim(images, 2) != s->height || loom_tensor_dim(images, 3) != s->width)
        return loom_error_set(err, LOOM_ERR_INVALID,
                              "%s: input images ('%s') is %s %s: expected f32 [B, %" PRId64 ", %" PRId64 ", %" PRId64
                              "] (the set's channels, height and width)",
                              api, loom_tensor_name(images), loom_dtype_name(loom_tensor_dtype(images)),
                              dims_str(images, got, sizeof got), s->channels, s->height, s->width);
    const loom_dim b = loom_tensor_dim(images, 0);
    if (loom_tensor_dtype(labels) != LOOM_I32 || loom_tensor_ndim(labels) != 1 || loom_tensor_dim(labels, 0) != b)
        return loom_error_set(err, LOOM_ERR_INVALID, "%s: input labels ('%s') is %s %s: expected i32 [B], B the batch dim of images",
                              api, loom_tensor_name(labels), loom_dtype_name(loom_tensor_dtype(labels)),
                              dims_str(labels, got, sizeof got));
    if (loom_dim_is_dynamic(b))
        return LOOM_OK;
    if (b != o->batch)
        return loom_error_set(err, LOOM_ERR_INVALID,
                              "%s: input images ('%s') has a batch dim of %" PRId64 ": expected the batch size, %" PRId64
                              ", or a dynamic dim",
                              api, loom_tensor_name(images), b, o->batch);
    int64_t last = s->count % o->batch;
    if (!o->drop_last && last)
        return loom_error_set(err, LOOM_ERR_INVALID,
                              "%s: the last step feeds %" PRId64 " images, not %" PRId64 ": with drop_last off the batch dim "
                              "of input images ('%s') must be a dynamic dim with a bound >= %" PRId64,
                              api, last, o->batch, loom_tensor_name(images), o->batch);
    return LOOM_OK;
}

loom_status loom_image_source_new(const loom_image_set *s, loom_tensor *images, loom_tensor *labels, const loom_image_opts *o,
                                  loom_image_source **out, loom_error *err)
{
    if (out)
        *out = NULL;
    if (!s || !images || !labels || !o || !out)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_image_source_new: NULL argument");
    loom_status st;
    if ((st = check_set(s, err)) || (st = check_opts(s, o, err)) || (st = check_inputs(s, images, labels, o, err)))
        return st;
    const int64_t pixels = s->channels * s->height * s->width; /* within the images' element count */
    const int64_t rows = o->batch < s->count ? o->batch : s->count;
    if (rows > INT64_MAX / (int64_t)sizeof(float) / pixels || s->count > INT64_MAX / (int64_t)sizeof(int64_t))
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_image_source_new: %" PRId64 " images of %" PRId64 " pixels a step: too large",
                              rows, pixels);
    loom_image_source *b = calloc(1, sizeof *b);
    if (!b)
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_image_source_new: out of memory");
    *b = (loom_image_source){.s = s, .images = images, .labels = labels, .o = *o, .pixels = pixels};
    b->order = malloc((size_t)s->count * sizeof *b->order);
    b->lab = malloc((size_t)s->count * sizeof *b->lab);
    b->buf = malloc((size_t)(rows * pixels) * sizeof *b->buf);
    if (!b->order || !b->lab || !b->buf) {
        loom_image_source_free(b);
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_image_source_new: out of memory for a step of %" PRId64 " images", rows);
    }
    b->steps = o->drop_last ? s->count / o->batch : (s->count + o->batch - 1) / o->batch;
    for (int p = 0; p < 256; p++)
        b->norm[p] = (float)(((double)p / 255.0 - o->mean) / o->std);
    if ((st = loom_image_source_epoch(b, 0, err))) {
        loom_image_source_free(b);
        return st;
    }
    *out = b;
    return LOOM_OK;
}

void loom_image_source_free(loom_image_source *b)
{
    if (!b)
        return;
    free(b->order);
    free(b->lab);
    free(b->buf);
    free(b);
}

loom_status loom_image_source_epoch(loom_image_source *b, int64_t epoch, loom_error *err)
{
    if (!b || epoch < 0)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_image_source_epoch: %s", b ? "a negative epoch" : "NULL source");
    const uint64_t ek = loom__data_rand64(b->o.seed, (uint64_t)epoch);
    for (int k = 0; k < KEY_COUNT; k++)
        b->key[k] = loom__data_rand64(ek, (uint64_t)k + 1);
    const int64_t n = b->s->count;
    for (int64_t i = 0; i < n; i++)
        b->order[i] = i;
    if (b->o.shuffle)
        loom__data_shuffle(b->order, n, b->key[KEY_ORDER]);
    const int32_t *l = b->s->labels.data;
    for (int64_t i = 0; i < n; i++)
        b->lab[i] = l[b->order[i]];
    b->next = 0;
    return LOOM_OK;
}

int64_t loom_image_source_steps(const loom_image_source *b) { return b ? b->steps : 0; }

/* Image i of the set into out: normalised, then its window of the padded image (offsets dy, dx in
 * [-crop_pad, crop_pad]), then flipped, each drawn from (the epoch's stream, i). */
static void render(const loom_image_source *b, int64_t i, float *out)
{
    const loom_image_set *s = b->s;
    const uint8_t *src = (const uint8_t *)s->images.data + i * b->pixels;
    if (!b->o.crop_pad && !b->o.flip) {
        for (int64_t k = 0; k < b->pixels; k++)
            out[k] = b->norm[src[k]];
        return;
    }
    const int64_t H = s->height, W = s->width, P = b->o.crop_pad;
    int64_t dy = 0, dx = 0;
    if (P) {
        dy = loom__data_below(loom__data_rand64(b->key[KEY_CROP_Y], (uint64_t)i), 2 * P + 1) - P;
        dx = loom__data_below(loom__data_rand64(b->key[KEY_CROP_X], (uint64_t)i), 2 * P + 1) - P;
    }
    const int flip = b->o.flip && loom__data_rand64(b->key[KEY_FLIP], (uint64_t)i) >> 63;
    for (int64_t c = 0; c < s->channels; c++, src += H * W)
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++) {
                const int64_t sy = y + dy, sx = (flip ? W - 1 - x : x) + dx;
                *out++ = sy >= 0 && sy < H && sx >= 0 && sx < W ? b->norm[src[sy * W + sx]] : b->norm[0];
            }
}

loom_status loom_image_source_fn(void *ctx, int64_t step, loom_feeder *f, int *end, char *msg, size_t msglen)
{
    (void)step; /* the program's count; the source keeps the epoch's own */
    loom_image_source *b = ctx;
    if (!b) {
        snprintf(msg, msglen, "loom_image_source_fn: no source given as the context");
        return LOOM_ERR_INVALID;
    }
    if (b->next >= b->steps) {
        *end = 1;
        return LOOM_OK;
    }
    const loom_image_set *s = b->s;
    const int64_t first = b->next * b->o.batch, n = s->count - first < b->o.batch ? s->count - first : b->o.batch;
    for (int64_t k = 0; k < n; k++)
        render(b, b->order[first + k], b->buf + k * b->pixels);
    const loom_array im = {.dtype = LOOM_F32, .ndim = 4, .shape = {n, s->channels, s->height, s->width}, .data = b->buf};
    const loom_array lb = {.dtype = LOOM_I32, .ndim = 1, .shape = {n}, .data = b->lab + first};
    loom_status st = loom_feeder_dense(f, b->images, &im);
    if (st == LOOM_OK)
        st = loom_feeder_dense(f, b->labels, &lb);
    if (st != LOOM_OK)
        return st; /* the feeder wrote why into msg */
    b->next++;
    return LOOM_OK;
}

const int32_t *loom_image_source_labels(const loom_image_source *b, int64_t k, int64_t *n)
{
    if (n)
        *n = 0;
    if (!b || k < 0 || k >= b->steps)
        return NULL;
    const int64_t first = k * b->o.batch, left = b->s->count - first;
    if (n)
        *n = left < b->o.batch ? left : b->o.batch;
    return b->lab + first;
}

loom_status loom_image_accuracy(loom_program *p, loom_tensor *logits, const loom_image_set *s, loom_tensor *images,
                                loom_tensor *labels, const loom_image_opts *o, loom_run_mode mode, double *accuracy,
                                loom_error *err)
{
    if (!p || !logits || !s || !o || !accuracy)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_image_accuracy: NULL argument");
    loom_image_opts eo = *o;
    eo.shuffle = 0;
    eo.drop_last = 0;
    eo.crop_pad = 0;
    eo.flip = 0;
    loom_image_source *src = NULL;
    loom_status st = loom_program_keep(p, logits);
    if (st != LOOM_OK)
        return loom_error_set(err, st, "%s", loom_program_error(p));
    if ((st = loom_image_source_new(s, images, labels, &eo, &src, err)) != LOOM_OK)
        return st;
    loom_program_set_source(p, loom_image_source_fn, src);
    int64_t right = 0, seen = 0;
    for (int64_t k = 0; k < src->steps && st == LOOM_OK; k++) {
        loom_array z;
        int64_t n;
        const int32_t *lab = loom_image_source_labels(src, k, &n);
        if ((st = loom_program_run_steps(p, mode, 1)) != LOOM_OK || (st = loom_program_fetch(p, logits, &z)) != LOOM_OK) {
            loom_error_set(err, st, "%s", loom_program_error(p));
            break;
        }
        if (z.ndim != 2 || z.shape[0] != n || (z.dtype != LOOM_F32 && z.dtype != LOOM_F64)) {
            st = loom_error_set(err, LOOM_ERR_SHAPE, "loom_image_accuracy: logits of step %" PRId64 " are not [%" PRId64 ", classes] floats",
                                k, n);
            break;
        }
        for (int64_t i = 0; i < n; i++) { /* the first largest logit, as loom_accuracy takes it */
            int64_t best = 0;
            for (int64_t c = 1; c < z.shape[1]; c++) {
                double a = z.dtype == LOOM_F32 ? ((const float *)z.data)[i * z.shape[1] + c] : ((const double *)z.data)[i * z.shape[1] + c];
                double m = z.dtype == LOOM_F32 ? ((const float *)z.data)[i * z.shape[1] + best]
                                               : ((const double *)z.data)[i * z.shape[1] + best];
                if (a > m)
                    best = c;
            }
            right += best == lab[i];
        }
        seen += n;
    }
    loom_program_set_source(p, NULL, NULL);
    loom_image_source_free(src);
    if (st == LOOM_OK)
        *accuracy = seen ? (double)right / (double)seen : 0.0;
    return st;
}
