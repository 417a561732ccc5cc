/** @file
 * Images as a program's data: a source that deals an image set (data.h: loom_image_set,
 * loom_fashion_mnist_load) into steps of a batch, normalises and augments each image on the
 * program's source thread, ahead of compute, and feeds them.
 *
 *     loom_image_source *src;
 *     loom_image_opts o = LOOM_IMAGE_OPTS_INIT;
 *     o.batch = 128; o.mean = 0.286; o.std = 0.353; o.crop_pad = 2; o.flip = 1;
 *     loom_image_source_new(&set, images, labels, &o, &src, &err);
 *     loom_program_set_source(prog, loom_image_source_fn, src);
 *     for (int64_t e = 0; e < epochs; e++) {
 *         loom_image_source_epoch(src, e, &err);
 *         loom_program_run_steps(prog, LOOM_RUN_STEP, loom_image_source_steps(src));
 *     }
 *
 * Every image is fed once an epoch. An epoch's order and augmentations come from (seed, epoch)
 * alone: each image's draws from (seed, epoch, its index in the set), through a counter-based
 * generator, so they depend on neither threads nor timing. */
#ifndef LOOM_IMAGES_H
#define LOOM_IMAGES_H

#include "data.h"
#include "program.h"

#ifdef __cplusplus
extern "C" {
#endif

/** How an image source deals, normalises and augments; start from LOOM_IMAGE_OPTS_INIT. */
typedef struct loom_image_opts {
    int64_t batch;    /**< images a step (>= 1) */
    uint64_t seed;    /**< the epoch's order and augmentations come from (seed, epoch) alone */
    int shuffle;      /**< a new order each epoch (else the set's order) */
    int drop_last;    /**< leave out the last, smaller step (else it is fed with fewer images: the batch
                           dim of the images input must then be a dynamic dim with a bound >= batch) */
    double mean;      /**< each pixel becomes (p / 255 - mean) / std, in double, rounded to f32 */
    double std;       /**< see mean */
    int crop_pad;     /**< random crop: pad by this many pixels (0 .. the image's height and width) of
                           the value a 0 pixel normalises to, then cut a random window of the image's
                           size; 0: none */
    int flip;         /**< random horizontal flip with probability 1/2 */
} loom_image_opts;

/** The defaults: 256 images a step, seed 0, shuffled, the last step kept, no normalisation (mean 0,
 * std 1: p / 255), no crop or flip. */
#define LOOM_IMAGE_OPTS_INIT                                                                                      \
    ((loom_image_opts){.batch = 256, .seed = 0, .shuffle = 1, .drop_last = 0, .mean = 0.0, .std = 1.0, .crop_pad = 0, \
                       .flip = 0})

/** An image source (opaque): a data source of an image set's batches. */
typedef struct loom_image_source loom_image_source;

/** A source that feeds images [B, C, H, W] f32 and labels [B] i32 (inputs of the program's graph, B
 * a dynamic dim or the batch size) from s, which must outlive it; epoch 0 is dealt. LOOM_ERR_INVALID
 * names a bad option, a set whose arrays disagree with its sizes or hold a label outside
 * [0, num_classes), and an input of another dtype or shape than the set's (or a static batch dim
 * that the last step would not fill). A dynamic dim's bound is checked when the data is fed. */
loom_status loom_image_source_new(const loom_image_set *s, loom_tensor *images, loom_tensor *labels, const loom_image_opts *o,
                                  loom_image_source **out, loom_error *err);
/** Frees the source. NULL is ignored. */
void loom_image_source_free(loom_image_source *b);
/** Deals epoch `epoch` (>= 0: its order) and rewinds to its first step; between runs, since the
 * program's source thread reads what it deals. */
loom_status loom_image_source_epoch(loom_image_source *b, int64_t epoch, loom_error *err);
/** Steps in an epoch: count / batch, rounded up unless drop_last. */
int64_t loom_image_source_steps(const loom_image_source *b);
/** The loom_source_fn (ctx: the loom_image_source): feeds the next step of the current epoch, or
 * ends the run after its last step. */
loom_status loom_image_source_fn(void *ctx, int64_t step, loom_feeder *f, int *end, char *msg, size_t msglen);
/** The labels of step k of the current epoch in the order they are fed (for accuracy), *n of them;
 * NULL and 0 for a step out of range. Valid until the next loom_image_source_epoch. */
const int32_t *loom_image_source_labels(const loom_image_source *b, int64_t k, int64_t *n);

/** Top-1 accuracy of a program's logits [B, classes] over every image of s, in steps of o's batch
 * (its normalisation, in the set's order, without crop or flip), run in mode (LOOM_RUN_EVAL for held-out
 * images): a source of its own is the program's data source while it runs, and none after it.
 * logits is kept (loom_program_keep). */
loom_status loom_image_accuracy(loom_program *p, loom_tensor *logits, const loom_image_set *s, loom_tensor *images,
                                loom_tensor *labels, const loom_image_opts *o, loom_run_mode mode, double *accuracy,
                                loom_error *err);

#ifdef __cplusplus
}
#endif
#endif
