/* Running a physical plan on the actor runtime: one actor per task, register buffers carved from
 * one arena per device, tokens that carry each value's real sizes. */
#ifndef LOOM_ACTORS_EXEC_H
#define LOOM_ACTORS_EXEC_H

#include "graphs/plan.h"

typedef struct loom__exec loom__exec;

/* Builds the actors of plan pl (which the exec then owns) for program p. NULL with p's error set. */
loom__exec *loom__exec_new(loom_program *p, loom__plan *pl);
void loom__exec_free(loom__exec *x);
/* Runs `pieces` steps; kept values and parameters are in the program afterwards. */
loom_status loom__exec_run(loom__exec *x, int64_t pieces);
const loom__plan *loom__exec_plan(const loom__exec *x);
/* Cancels the run in progress (any thread): it drains, see runtime/runtime.h. */
void loom__exec_cancel(loom__exec *x);
/* Takes back a cancel that came too late for the run it was meant for: 1 if there was one. */
int loom__exec_take_cancel(loom__exec *x);
/* Copies parameter or state id from the devices back into the program (p->val) and gives the
 * program the newest value. */
loom_status loom__exec_pull(loom__exec *x, int id);
/* The runtime, for tests that read its trace. */
struct loom__rt *loom__exec_runtime(loom__exec *x);

#endif
