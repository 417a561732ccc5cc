/* SpMM speed on the CPU: Loom's spmm op (CSR [N, M] x dense [M, F], and A^T x) run through a
 * program with a given number of kernel threads (the reference executor: the op and nothing else
 * of a step, whose copies out of the plan would be timed too with the actors), on bench/spmm.c's matrices
 * (bench/spmm_problem.h), which bench/peers/spmm_torch.py --device cpu makes identically for
 * torch.sparse. One JSON line per case:
 *
 *   {"case":"spmm","impl":"loom","device":"cpu","threads":2,"dtype":"f32","rows":100000,
 *    "cols":100000,"nnz":2000000,"features":64,"reps":20,"ms":21.3,"gflops":12.0,"checksum":...}
 *
 * ms is the median over reps runs of the program (wall clock), each one op; gflops counts 2 E F;
 * checksum is the sum of the output in double (the same as torch's, up to rounding).
 *
 *     spmm_cpu [--reps 20] [--warmup 3] [--threads 2] [--dtype f32|f64] [--cases all|large|small]
 *              [--seed 1]
 *
 * Cases: N = M = 100k, E = 2M with F = 64 ("large"), and Cora's size, N = M = 2708, E = 10556,
 * F = 16 ("small"; reps x 50). */
#define _POSIX_C_SOURCE 200809L
#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/spmm_problem.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "spmm_cpu: %s: %s\n", what, why ? why : "(no message)");
    exit(1);
}

/* One program of one spmm (transposed or not) over p, run warmup + reps times. */
static void run_one(const problem *pb, int transpose, int threads, int warmup, int reps)
{
    loom_graph *g = loom_graph_new();
    loom_tensor *a = loom_input_csr(g, "a", pb->dt, pb->n, pb->m);
    loom_tensor *x = loom_input(g, "x", pb->dt, loom_shape(transpose ? pb->n : pb->m, pb->f));
    loom_tensor *y = loom_spmm_ex(g, a, x, transpose);
    loom_program *p = NULL;
    if (loom_compile(g, NULL, &(loom_train_opts){.threads = threads, .executor = LOOM_EXEC_REFERENCE}, &p) != LOOM_OK)
        die("loom_compile", loom_graph_error(g));
    loom_csr m = {.nrows = pb->n, .ncols = pb->m, .nnz = pb->e, .vdtype = pb->dt, .rowptr = pb->rowptr, .col = pb->col,
                  .val = pb->val};
    loom_array xa = {.dtype = pb->dt, .ndim = 2, .shape = {transpose ? pb->n : pb->m, pb->f}, .data = pb->x};
    if (loom_program_feed_csr(p, a, &m) != LOOM_OK || loom_program_feed(p, x, &xa) != LOOM_OK ||
        loom_program_keep(p, y) != LOOM_OK)
        die("feed", loom_program_error(p));
    double *ms = xmalloc((size_t)reps * sizeof *ms);
    for (int r = -warmup; r < reps; r++) {
        double t0 = now_ms();
        if (loom_program_run(p, LOOM_RUN_FORWARD) != LOOM_OK)
            die("loom_program_run", loom_program_error(p));
        if (r >= 0)
            ms[r] = now_ms() - t0;
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    const double med = ms[reps / 2];
    loom_array out;
    if (loom_program_fetch(p, y, &out) != LOOM_OK)
        die("fetch", loom_program_error(p));
    double sum = 0;
    for (int64_t i = 0; i < loom_array_numel(&out); i++)
        sum += pb->dt == LOOM_F32 ? (double)((float *)out.data)[i] : ((double *)out.data)[i];
    printf("{\"case\": \"%s\", \"impl\": \"loom\", \"device\": \"cpu\", \"threads\": %d, \"dtype\": \"%s\", \"rows\": %lld, "
           "\"cols\": %lld, \"nnz\": %lld, \"features\": %lld, \"reps\": %d, \"ms\": %.5f, \"gflops\": %.3f, "
           "\"checksum\": %.10g}\n",
           transpose ? "spmm_t" : "spmm", threads, loom_dtype_name(pb->dt), (long long)pb->n, (long long)pb->m,
           (long long)pb->e, (long long)pb->f, reps, med, 2.0 * (double)pb->e * (double)pb->f / (med * 1e-3) / 1e9, sum);
    fflush(stdout);
    free(ms);
    loom_program_free(p);
    loom_graph_free(g);
}

static void run_case(int64_t n, int64_t e, int64_t f, loom_dtype dt, uint64_t seed, int threads, int warmup, int reps)
{
    problem pb = make_problem(n, n, e, f, dt, seed); /* square: A^T x takes the same x */
    run_one(&pb, 0, threads, warmup, reps);
    run_one(&pb, 1, threads, warmup, reps);
    free_problem(&pb);
}

int main(int argc, char **argv)
{
    spmm_opts o;
    int rc = spmm_parse(argc, argv, 0, &o);
    if (rc >= 0)
        return rc;
    const int reps = o.reps, warmup = o.warmup, threads = o.threads;
    const uint64_t seed = o.seed;
    const loom_dtype dt = o.dt;
    const char *cases = o.cases;
    if (strcmp(cases, "small"))
        run_case(100000, 2000000, 64, dt, seed, threads, warmup, reps);
    if (strcmp(cases, "large"))
        run_case(2708, 10556, 16, dt, seed, threads, warmup, reps * 50);
    return 0;
}
