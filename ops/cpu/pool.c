/* The CPU kernels' thread pool (see pool.h). A run is a generation: the caller publishes the
 * function and part count under the mutex, bumps the generation and wakes the workers; worker w
 * runs part w when w < nparts; the last one to finish wakes the caller. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "ops/cpu/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

struct loom__pool {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t gen;    /* bumped by each run and by loom__pool_free */
    int stop;
    int pending;     /* workers of the current run not yet finished */
    loom__pool_fn fn;
    void *arg;
    int nparts;
    atomic_flag busy; /* a caller owns the pool: a second one runs its parts itself */
    int nworkers, started;
    struct worker {
        loom__pool *pool;
        int index; /* its part: 1 .. nworkers */
        pthread_t th;
    } *w;
};

static void *worker_main(void *vw)
{
    struct worker *w = vw;
    loom__pool *p = w->pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->stop)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->stop)
            break;
        seen = p->gen;
        if (w->index < p->nparts) {
            loom__pool_fn fn = p->fn;
            void *arg = p->arg;
            int nparts = p->nparts;
            pthread_mutex_unlock(&p->mu);
            fn(arg, w->index, nparts);
            pthread_mutex_lock(&p->mu);
            if (--p->pending == 0)
                pthread_cond_signal(&p->done);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

loom__pool *loom__pool_new(int threads)
{
    if (threads < 2)
        return NULL;
    loom__pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->w = calloc((size_t)(threads - 1), sizeof *p->w);
    if (!p->w || pthread_mutex_init(&p->mu, NULL)) {
        free(p->w);
        free(p);
        return NULL;
    }
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_flag_clear(&p->busy);
    p->nworkers = threads - 1;
    for (int i = 0; i < p->nworkers; i++) {
        p->w[i] = (struct worker){.pool = p, .index = i + 1};
        if (pthread_create(&p->w[i].th, NULL, worker_main, &p->w[i]))
            break;
        p->started++;
    }
    if (p->started == 0) {
        loom__pool_free(p);
        return NULL;
    }
    return p;
}

void loom__pool_free(loom__pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++)
        pthread_join(p->w[i].th, NULL);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->w);
    free(p);
}

/* The affinity mask is a thread's, and a library may pin the thread that calls it (one thread
 * came back from its first steps pinned to one core of two: a compile after them then counted one
 * core): it is read once, when the library is loaded, before any of it runs, or at the first call
 * where the loader runs no constructors. */
static int cores_seen;
static pthread_once_t cores_once = PTHREAD_ONCE_INIT;

static void read_cores(void)
{
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof set, &set) ? 1 : CPU_COUNT(&set);
    cores_seen = n > 0 ? n : 1;
}

__attribute__((constructor)) static void read_cores_at_load(void) { pthread_once(&cores_once, read_cores); }

int loom__pool_cores(void)
{
    pthread_once(&cores_once, read_cores);
    return cores_seen;
}

int loom__pool_threads(const loom__pool *p) { return p ? p->started + 1 : 1; }

void loom__pool_run(loom__pool *p, int nparts, loom__pool_fn fn, void *arg)
{
    if (nparts <= 0)
        return;
    if (!p || nparts == 1 || nparts > p->started + 1 || atomic_flag_test_and_set(&p->busy)) {
        for (int k = 0; k < nparts; k++)
            fn(arg, k, nparts);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->nparts = nparts;
    p->pending = nparts - 1;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, nparts);
    pthread_mutex_lock(&p->mu);
    while (p->pending)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    atomic_flag_clear(&p->busy);
}

/* Waking a sleeping worker takes 5 to 30 us (more on a busy machine): a part gets at least this
 * much work (about 40 us of one core's streaming or arithmetic), below which the caller does it
 * all sooner. Cora's SpMM (10k entries, 16 columns, 30 us) stays whole. */
#define POOL_MIN_WORK (1 << 20)

int loom__pool_parts(const loom__pool *p, double work)
{
    int n = loom__pool_threads(p);
    if (n > 1 && work < (double)POOL_MIN_WORK * n)
        n = work < 2.0 * POOL_MIN_WORK ? 1 : (int)(work / POOL_MIN_WORK);
    return n;
}

void loom__pool_split(int64_t n, int part, int nparts, int64_t *lo, int64_t *hi)
{
    *lo = n * part / nparts;
    *hi = n * (part + 1) / nparts;
}

/* The first row whose entries start at or after `target`. */
static int64_t row_at(const int32_t *rowptr, int64_t nrows, int64_t target)
{
    int64_t lo = 0, hi = nrows;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (rowptr[mid] < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void loom__pool_split_csr(const int32_t *rowptr, int64_t nrows, int part, int nparts, int64_t *lo, int64_t *hi)
{
    const int64_t nnz = rowptr[nrows];
    if (nnz == 0) { /* no entries to balance: rows then */
        loom__pool_split(nrows, part, nparts, lo, hi);
        return;
    }
    *lo = part == 0 ? 0 : row_at(rowptr, nrows, nnz * part / nparts);
    *hi = part + 1 == nparts ? nrows : row_at(rowptr, nrows, nnz * (part + 1) / nparts);
}
