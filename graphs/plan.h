/* The physical plan (internal): one task per (op, device) with its registers, and the static
 * memory plan of each device. Built from a compiled program for one run mode; nothing after the
 * plan looks at the logical graph again.
 *
 * Tasks of one device that compute run as a chain in topological order, one piece after another
 * (the device's stream): a control edge from the last back to the first admits one piece at a
 * time. That order is what makes lifetimes known, so registers produced and consumed only inside
 * the chain share memory by lifetime. Everything else (the source's registers, parameters, what
 * sinks and variables read) has memory of its own, and the source may run ahead of the chain by
 * regst_num pieces: data loading overlaps compute. */
#ifndef LOOM_GRAPHS_PLAN_H
#define LOOM_GRAPHS_PLAN_H

#include <stddef.h>
#include <stdio.h>

#include "graphs/program.h"

#define LOOM__MAX_DYN 16
#define LOOM__MAX_TASK_IN (LOOM__MAX_SRC + 2)

typedef enum loom__task_kind {
    LOOM__TASK_SOURCE,   /* emits every input of a piece: one output register per input */
    LOOM__TASK_VARIABLE, /* holds a parameter: emits version t, then updates it with gradient t */
    LOOM__TASK_COMPUTE,  /* runs one op */
    LOOM__TASK_SINK,     /* copies a kept value to the host at each piece */
    LOOM__TASK_KIND_COUNT
} loom__task_kind;

/* A register: regst_num buffers of `bytes` each, written by one task. */
typedef struct loom__regst {
    int producer;     /* task */
    int tensor;       /* the tensor id whose value it holds */
    size_t bytes;     /* one buffer, at the bounds of dynamic dims */
    int regst_num;
    int shared;       /* 1: in the device's shared block, reused by lifetime */
    size_t offset;    /* of buffer 0 in the device arena; buffer b at offset + b * bytes */
    int first, last;  /* chain positions from its write to its last read (shared registers) */
    int nconsumers;
} loom__regst;

typedef struct loom__task {
    loom__task_kind kind;
    loom_tensor *t;   /* compute: the op's tensor; variable: the parameter; sink: what it keeps */
    loom_tensor *update; /* variable: the optimizer update op, or NULL */
    int chain_pos;    /* compute: position in the device chain; -1 otherwise */
    int n_in;
    int in[LOOM__MAX_TASK_IN]; /* registers read, in the op's source order */
    int n_out;
    int *out;         /* registers written (one, or one per input for the source) */
} loom__task;

typedef struct loom__plan {
    loom_run_mode mode;
    int ntasks, nregst;
    loom__task *task;
    loom__regst *regst;
    int *regst_of;        /* by tensor id: the register holding its value in this plan, or -1 */
    int *kept;            /* by tensor id: 1 when a sink copies it to the host */
    int nchain;           /* compute tasks in the chain */
    size_t shared_bytes;  /* the reused block */
    size_t own_bytes;     /* registers with memory of their own */
    size_t unshared_bytes; /* what the shared registers would take without reuse */
} loom__plan;

/* Builds the plan of p for mode: tasks [0, end) of the program's graph, sources for its inputs,
 * variables for its parameters, sinks for the kept tensors (keep, by id; plus the loss and
 * every value nobody reads). Register sizes use dynamic dims' bounds; CSR inputs take the size
 * of the data fed now. Without a data source (loom_program_set_source) the source's registers
 * point at the fed data and take no memory of the plan. NULL with the program's error set. */
loom__plan *loom__plan_build(loom_program *p, loom_run_mode mode, const uint8_t *keep, int source_regst_num);
void loom__plan_free(loom__plan *pl);
/* Bytes of a CSR value laid out in one register buffer: rowptr, col, values, each 64-aligned. */
size_t loom__csr_bytes(int64_t nrows, int64_t nnz, loom_dtype vdtype);
/* One line per task and register, and the memory totals (for `loom plan` and the docs). */
void loom__plan_print(const loom__plan *pl, const loom_program *p, FILE *f);

#endif
