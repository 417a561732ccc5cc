/* The plan's JSON format (internal to graphs/plan/): the names both sides write and read, and the
 * reader's checked access to the fields of a document (plan_json_field.c), which the plan reader
 * (plan_json_read.c) builds on. Every access fails with the reader's one message, naming the byte
 * offset of what is wrong; the first failure is kept and later ones return -1 without a word. */
#ifndef LOOM_GRAPHS_PLAN_JSON_H
#define LOOM_GRAPHS_PLAN_JSON_H

#include "graphs/plan/plan.h"

#include "graphs/core/json.h"

#define LOOM__PLAN_JSON_VERSION 1

/* Defined in plan_json_write.c. */
extern const char *const loom__plan_json_modes[LOOM_RUN_MODE_COUNT];
extern const char *const loom__plan_json_tasks[LOOM__TASK_KIND_COUNT];
extern const char *const loom__plan_json_schedules[LOOM_SCHEDULE_COUNT];
#define LOOM__PLAN_JSON_NMEM 4 /* the kinds of register memory, loom__mem_kind */
extern const char *const loom__plan_json_mems[LOOM__PLAN_JSON_NMEM];

/* A reader of one document. */
typedef struct loom__rd {
    const loom__json *doc;
    const char *where;
    char *msg;
    size_t msglen;
    int failed;
    /* the names a plan writes, by value: ops, dtypes, device kinds */
    const char *ops[LOOM_OP_COUNT], *dtypes[LOOM_DTYPE_COUNT], *kinds[LOOM_DEVICE_KIND_COUNT];
} loom__rd;

/* Records the first failure ("where: byte N: what", N the offset of value v, 0 when v < 0) and
 * returns -1. */
int loom__rd_bad(loom__rd *r, int v, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline const loom__json_val *loom__rd_val(const loom__rd *r, int v) { return &r->doc->v[v]; }

/* Member key of object o, of kind k; -1 (with the message) when absent or of another kind. */
int loom__rd_member(loom__rd *r, int o, const char *key, loom__json_kind k);
/* Member key of o, of any kind; -1 when absent. */
int loom__rd_any(loom__rd *r, int o, const char *key);
/* An integer in [lo, hi] at value v (what names it in a message). */
int loom__rd_int_at(loom__rd *r, int v, const char *what, int64_t lo, int64_t hi, int64_t *out);
/* An integer in [lo, hi] at member key of o, as an int64, an int or a size. */
int loom__rd_get_int(loom__rd *r, int o, const char *key, int64_t lo, int64_t hi, int64_t *out);
int loom__rd_get_i(loom__rd *r, int o, const char *key, int lo, int hi, int *out);
int loom__rd_get_size(loom__rd *r, int o, const char *key, size_t *out);
/* A real at value v: a number, or "nan", "inf", "-inf". */
int loom__rd_real_at(loom__rd *r, int v, const char *what, double *out);
/* One of names[0, n) at member key of o. */
int loom__rd_get_name(loom__rd *r, int o, const char *key, const char *const *names, int n, int *out);
/* An SBP at value v, as loom_sbp_str writes it, or "unset". */
int loom__rd_sbp_at(loom__rd *r, int v, loom_sbp *out);
/* An SBP of one or two levels at value v, as loom_nd_sbp_str writes it, or "unset" (n 0). */
int loom__rd_nd_sbp_at(loom__rd *r, int v, loom_nd_sbp *out);
/* An array of ints in [lo, hi] at member key of o, into a new array (n entries). */
int loom__rd_get_ints(loom__rd *r, int o, const char *key, int lo, int hi, int **out, int *n);
/* A shape over the op table's dynamic dims. */
int loom__rd_shape_at(loom__rd *r, int v, const loom_graph *g, loom_shape *s);

#endif
