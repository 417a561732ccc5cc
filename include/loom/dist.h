/** @file
 * Runs over several processes (Open MPI). A program launched by `mpirun -np N` is N processes,
 * ranks 0 .. N-1; a placement written with "@" (`@0-1/cpu:0-1`) spans ranks. Every rank builds
 * the same graph and compiles the same plan; each runs only its own devices' actors, and the
 * parts of tensors that cross ranks travel through one communication thread per rank.
 *
 *     loom_dist_init(NULL);                       // MPI_Init_thread unless the program did
 *     ... build, compile, run the same program on every rank ...
 *     loom_dist_finalize();                       // MPI_Finalize unless the program owns MPI
 *
 * A library built without MPI runs one process: rank 0 of 1. */
#ifndef LOOM_DIST_H
#define LOOM_DIST_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Starts the communication between the processes of the job (MPI_Init_thread when MPI is not
 * initialised yet; loom_compile does it too for a placement written with "@" in a process that a
 * launcher started, as mpirun or srun do, and a lone process stays rank 0 of 1). Idempotent. LOOM_OK
 * without MPI as well (one process); LOOM_ERR_RUNTIME with err's message when MPI refuses. */
loom_status loom_dist_init(loom_error *err);
/** This process's rank (0 without MPI or before loom_dist_init). */
int loom_dist_rank(void);
/** The processes of the job (1 without MPI or before loom_dist_init). */
int loom_dist_size(void);
/** 1 when this build of Loom can run over several processes (it was built with MPI). */
int loom_dist_available(void);
/** Ends what loom_dist_init started (MPI_Finalize when Loom initialised MPI, also at exit when the
 * program does not call this; not after a run that stopped every rank at once, where a rank may
 * be gone); a no-op otherwise. */
void loom_dist_finalize(void);

#ifdef __cplusplus
}
#endif
#endif
