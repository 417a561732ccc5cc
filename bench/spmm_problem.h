/* The matrices of the SpMM benchmarks (bench/spmm.c on a GPU, bench/spmm_cpu.c on the CPU),
 * which bench/peers/spmm_torch.py makes identically in numpy; see the top of bench/spmm.c. A
 * header of static functions, included by each benchmark (one program per file). */
#ifndef LOOM_BENCH_SPMM_PROBLEM_H
#define LOOM_BENCH_SPMM_PROBLEM_H

#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64 over a key and a counter: the formula of Loom's counter-based generator (the op
 * header's rand64), copied so that the benchmarks need only the public API. */
static inline uint64_t bench_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}
static inline uint64_t bench_rand64(uint64_t key, uint64_t counter)
{
    return bench_mix64(bench_mix64(key + UINT64_C(0x9e3779b97f4a7c15)) ^ (counter * UINT64_C(0xd1b54a32d192ed03)));
}

typedef struct problem {
    int64_t n, m, e, f;
    loom_dtype dt;
    int32_t *rowptr, *col; /* host */
    void *val, *x;          /* host, dt */
} problem;

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "spmm: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static problem make_problem(int64_t n, int64_t m, int64_t e, int64_t f, loom_dtype dt, uint64_t seed)
{
    problem p = {.n = n, .m = m, .e = e, .f = f, .dt = dt};
    const size_t es = loom_dtype_size(dt);
    p.rowptr = xmalloc((size_t)(n + 1) * sizeof *p.rowptr);
    p.col = xmalloc((size_t)e * sizeof *p.col);
    p.val = xmalloc((size_t)e * es);
    p.x = xmalloc((size_t)(m * f) * es);
    const uint64_t kcol = bench_rand64(seed, 0), kx = bench_rand64(seed, 1);
    for (int64_t i = 0; i <= n; i++)
        p.rowptr[i] = (int32_t)((uint64_t)i * (uint64_t)e / (uint64_t)n);
    for (int64_t i = 0; i < n; i++) {
        const int32_t deg = p.rowptr[i + 1] - p.rowptr[i];
        const double v = deg ? 1.0 / (double)deg : 0.0;
        for (int32_t k = p.rowptr[i]; k < p.rowptr[i + 1]; k++) {
            p.col[k] = (int32_t)(bench_rand64(kcol, (uint64_t)k) % (uint64_t)m);
            if (dt == LOOM_F32)
                ((float *)p.val)[k] = (float)v;
            else
                ((double *)p.val)[k] = v;
        }
    }
    for (int64_t j = 0; j < m * f; j++) {
        const float u = (float)(bench_rand64(kx, (uint64_t)j) >> 40) * 0x1.0p-24f;
        if (dt == LOOM_F32)
            ((float *)p.x)[j] = u;
        else
            ((double *)p.x)[j] = u;
    }
    return p;
}

static void free_problem(problem *p)
{
    free(p->rowptr);
    free(p->col);
    free(p->val);
    free(p->x);
}

/* The benchmarks' command line: --reps, --warmup, --dtype, --cases all|large|small, --seed, and
 * --placement cuda:N (the GPU's; device) or --threads N (the CPU's), whichever the program takes
 * (gpu). Returns -1 to go on, else the exit status (--help: 0, after the usage on stdout). */
typedef struct spmm_opts {
    int reps, warmup, device, threads;
    uint64_t seed;
    loom_dtype dt;
    const char *cases;
} spmm_opts;

static int spmm_parse(int argc, char **argv, int gpu, spmm_opts *o)
{
    const char *use = gpu ? "usage: spmm [--reps N] [--warmup N] [--dtype f32|f64] [--cases all|large|small] [--seed S] "
                            "[--placement cuda:N]\n"
                          : "usage: spmm_cpu [--reps N] [--warmup N] [--dtype f32|f64] [--cases all|large|small] "
                            "[--seed S] [--threads N]\n";
    *o = (spmm_opts){.reps = 20, .warmup = 3, .threads = 2, .seed = 1, .dt = LOOM_F32, .cases = "all"};
    int bad = 0;
    for (int i = 1; i < argc && !bad; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(use, stdout);
            return 0;
        }
        if (!v)
            bad = 1;
        else if (!strcmp(a, "--reps"))
            o->reps = atoi(v);
        else if (!strcmp(a, "--warmup"))
            o->warmup = atoi(v);
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--cases"))
            o->cases = v;
        else if (!strcmp(a, "--dtype") && (!strcmp(v, "f32") || !strcmp(v, "f64")))
            o->dt = !strcmp(v, "f32") ? LOOM_F32 : LOOM_F64;
        else if (gpu && !strcmp(a, "--placement") && !strncmp(v, "cuda:", 5))
            o->device = atoi(v + 5);
        else if (!gpu && !strcmp(a, "--threads"))
            o->threads = atoi(v);
        else
            bad = 1;
    }
    if (bad || o->reps < 1 || o->warmup < 0 || o->threads < 1 ||
        (strcmp(o->cases, "all") && strcmp(o->cases, "large") && strcmp(o->cases, "small"))) {
        fputs(use, stderr);
        return 2;
    }
    return -1;
}

#endif
