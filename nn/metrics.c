/* Host-side metrics on fetched values. */
#include <loom/nn.h>

double loom_accuracy(const loom_array *logits, const loom_array *labels, const loom_array *mask)
{
    if (!logits || !labels || logits->ndim != 2 || labels->ndim != 1 || labels->dtype != LOOM_I32 ||
        !loom_dtype_is_float(logits->dtype) || labels->shape[0] != logits->shape[0] ||
        (mask && (mask->ndim != 1 || mask->dtype != LOOM_U8 || mask->shape[0] != logits->shape[0])))
        return -1;
    int64_t n = logits->shape[0], c = logits->shape[1], hit = 0, count = 0;
    const int32_t *y = labels->data;
    const uint8_t *m = mask ? mask->data : NULL;
    for (int64_t i = 0; i < n; i++) {
        if (m && !m[i])
            continue;
        int64_t best = 0;
        for (int64_t j = 1; j < c; j++) {
            double a = logits->dtype == LOOM_F32 ? ((const float *)logits->data)[i * c + j]
                                                 : ((const double *)logits->data)[i * c + j];
            double b = logits->dtype == LOOM_F32 ? ((const float *)logits->data)[i * c + best]
                                                 : ((const double *)logits->data)[i * c + best];
            if (a > b)
                best = j;
        }
        hit += c > 0 && best == y[i];
        count++;
    }
    return count ? (double)hit / (double)count : 0.0;
}
