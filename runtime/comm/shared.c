/* The in-process communicator of CPU devices (see comm.h): parts in shared memory, converted by
 * runtime/comm/parts.c. */
#include "runtime/comm/comm.h"

#include "runtime/comm/parts.h"

#include <stdio.h>

static loom_status shared_box(const loom__comm_box *b, loom__value *out, char *msg, size_t len)
{
    int mesh = b->lay_from && b->lay_to && (b->lay_from->s.n > 1 || b->lay_to->s.n > 1);
    if (b->parts[0]->rowptr && mesh) {
        loom__lay_csr_convert(b->parts, b->lay_from, b->lay_to, b->part, out);
        return LOOM_OK;
    }
    if (b->parts[0]->rowptr) { /* rows only: S(0) -> B joins them, B -> S(0) takes this device's */
        if (b->from.kind == LOOM_SBP_SPLIT) {
            loom__csr_join(b->parts, b->n_from, out);
        } else {
            int64_t start, size;
            const loom__value *whole = b->parts[b->part < b->n_from ? b->part : 0];
            loom_split_part(whole->shape[0], b->n_to, b->part, &start, &size);
            loom__csr_rows(whole, start, size, out);
        }
        return LOOM_OK;
    }
    if (mesh) {
        if (loom__lay_convert(b->parts, b->lay_from, b->lay_to, b->part, b->first, b->logical, out)) {
            snprintf(msg, len, "out of memory");
            return LOOM_ERR_NOMEM;
        }
        return LOOM_OK;
    }
    loom__part_convert(b->parts, b->from, b->n_from, b->to, b->n_to, b->part, b->first, b->logical, out);
    return LOOM_OK;
}

const loom__comm_ops loom__comm_shared = {.name = "shared memory", .box = shared_box};
