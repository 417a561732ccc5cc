/* What the data module's batches read of a sampler beyond include/loom/batch.h. */
#ifndef LOOM_DATA_SAMPLER_INTERNAL_H
#define LOOM_DATA_SAMPLER_INTERNAL_H

#include <loom/batch.h>

/* The samples the sampler deals (its loom_sampler_new's s). */
const loom_samples *loom__sampler_samples(const loom_sampler *smp);

#endif
