/* Seeded node splits: per_class training nodes of each class, then validation and test nodes from
 * the rest (loom_split_per_class).
 *
 * The generator is splitmix64 and the shuffle draws bounded integers by rejection, all in uint64
 * arithmetic, so a seed gives the same split on every platform and compiler. */
#include <loom/data.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n >= 1: rejects the top partial block so no value is favoured. */
static uint64_t below(uint64_t *s, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do
        x = splitmix64(s);
    while (x >= limit);
    return x % n;
}

static int64_t label_at(const loom_array *a, int64_t i)
{
    switch (a->dtype) {
    case LOOM_I32:
        return ((const int32_t *)a->data)[i];
    case LOOM_I64:
        return ((const int64_t *)a->data)[i];
    default:
        return ((const uint8_t *)a->data)[i];
    }
}

loom_status loom_split_per_class(const loom_array *labels, int64_t num_classes, int per_class, int num_val, int num_test,
                                 uint64_t seed, loom_node_split *out, loom_error *err)
{
    if (out)
        *out = (loom_node_split){0};
    if (!labels || !out || labels->ndim != 1 || (labels->shape[0] && !labels->data) ||
        (labels->dtype != LOOM_I32 && labels->dtype != LOOM_I64 && labels->dtype != LOOM_U8))
        return loom_error_set(err, LOOM_ERR_INVALID, "split: expected 1-D i32, i64 or u8 labels and an output");
    if (num_classes < 1 || num_classes > INT32_MAX || per_class < 0 || num_val < 0 || num_test < 0)
        return loom_error_set(err, LOOM_ERR_INVALID, "split: num_classes %lld, per_class %d, num_val %d, num_test %d: expected "
                    "num_classes >= 1 and counts >= 0",
                    (long long)num_classes, per_class, num_val, num_test);
    int64_t n = labels->shape[0];
    for (int64_t i = 0; i < n; i++) {
        int64_t c = label_at(labels, i);
        if (c < 0 || c >= num_classes)
            return loom_error_set(err, LOOM_ERR_INVALID, "split: label %lld of node %lld is outside [0, %lld)", (long long)c,
                        (long long)i, (long long)num_classes);
    }
    int64_t *order = malloc(((size_t)n + 1) * sizeof *order);
    int64_t *taken = calloc((size_t)num_classes, sizeof *taken);
    loom_status s = LOOM_OK;
    if (!order || !taken) {
        s = loom_error_set(err, LOOM_ERR_NOMEM, "split: out of memory for %lld nodes", (long long)n);
        goto done;
    }
    int64_t shape[1] = {n};
    if (loom_array_alloc(&out->train, LOOM_U8, 1, shape) || loom_array_alloc(&out->val, LOOM_U8, 1, shape) ||
        loom_array_alloc(&out->test, LOOM_U8, 1, shape)) {
        s = loom_error_set(err, LOOM_ERR_NOMEM, "split: out of memory for masks of %lld nodes", (long long)n);
        goto done;
    }
    /* Fisher-Yates over the node indices, from the back. */
    uint64_t state = seed;
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)below(&state, (uint64_t)i + 1);
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    uint8_t *train = out->train.data, *val = out->val.data, *test = out->test.data;
    int64_t rest = 0; /* the nodes not taken for training, compacted to the front of order, in order */
    for (int64_t k = 0; k < n; k++) {
        int64_t v = order[k], c = label_at(labels, v);
        if (taken[c] < per_class) {
            taken[c]++;
            train[v] = 1;
        } else {
            order[rest++] = v;
        }
    }
    for (int64_t c = 0; c < num_classes; c++)
        if (taken[c] < per_class) {
            s = loom_error_set(err, LOOM_ERR_INVALID, "split: class %lld has %lld nodes, fewer than per_class %d", (long long)c,
                     (long long)taken[c], per_class);
            goto done;
        }
    if ((int64_t)num_val + num_test > rest) {
        s = loom_error_set(err, LOOM_ERR_INVALID,
                 "split: %lld nodes remain after training, fewer than num_val %d + num_test %d", (long long)rest,
                 num_val, num_test);
        goto done;
    }
    for (int64_t k = 0; k < num_val; k++)
        val[order[k]] = 1;
    for (int64_t k = num_val; k < (int64_t)num_val + num_test; k++)
        test[order[k]] = 1;
done:
    free(order);
    free(taken);
    if (s)
        loom_node_split_free(out);
    return s;
}

void loom_node_split_free(loom_node_split *s)
{
    if (!s)
        return;
    loom_array_free(&s->train);
    loom_array_free(&s->val);
    loom_array_free(&s->test);
}
