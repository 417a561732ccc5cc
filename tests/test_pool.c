/* The CPU kernels' thread pool (ops/cpu/pool.h): every part runs exactly once, also when two
 * callers share a pool (the second runs its parts itself); the CSR split covers the rows in order
 * with balanced entries. That kernels give the same bits on any thread count is
 * test_determinism's. */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "ops/cpu/pool.h"

enum { MAXP = 24 };

typedef struct counts {
    atomic_int n[MAXP];
    atomic_int bad; /* a part told another part count */
    int want_parts;
} counts;

static void count_part(void *arg, int part, int nparts)
{
    counts *c = arg;
    if (nparts != c->want_parts || part < 0 || part >= nparts)
        atomic_fetch_add(&c->bad, 1);
    else
        atomic_fetch_add(&c->n[part], 1);
}

static void run_and_check(loom__pool *p, int nparts)
{
    counts c = {.want_parts = nparts};
    loom__pool_run(p, nparts, count_part, &c);
    ck_assert_int_eq(atomic_load(&c.bad), 0);
    for (int k = 0; k < nparts; k++)
        ck_assert_msg(atomic_load(&c.n[k]) == 1, "part %d of %d ran %d times", k, nparts, atomic_load(&c.n[k]));
}

START_TEST(test_every_part_once)
{
    ck_assert_ptr_null(loom__pool_new(1)); /* one thread: no pool, kernels run on the caller */
    ck_assert_int_eq(loom__pool_threads(NULL), 1);
    run_and_check(NULL, 5);
    loom__pool *p = loom__pool_new(3);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(loom__pool_threads(p), 3);
    for (int rep = 0; rep < 200; rep++)
        for (int n = 1; n < MAXP; n++) /* fewer, as many and more parts than threads */
            run_and_check(p, n);
    loom__pool_free(p);
}
END_TEST

typedef struct caller {
    loom__pool *p;
    int failures;
} caller;

static void *call_many(void *arg)
{
    caller *c = arg;
    for (int rep = 0; rep < 2000; rep++) {
        counts k = {.want_parts = 1 + rep % 3};
        loom__pool_run(c->p, k.want_parts, count_part, &k);
        for (int i = 0; i < k.want_parts; i++)
            c->failures += atomic_load(&k.n[i]) != 1;
        c->failures += atomic_load(&k.bad);
    }
    return NULL;
}

START_TEST(test_two_callers)
{
    /* two devices' threads run kernels on one program's pool at once */
    loom__pool *p = loom__pool_new(3);
    ck_assert_ptr_nonnull(p);
    caller a = {.p = p}, b = {.p = p};
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, call_many, &a), 0);
    ck_assert_int_eq(pthread_create(&tb, NULL, call_many, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_int_eq(a.failures, 0);
    ck_assert_int_eq(b.failures, 0);
    loom__pool_free(p);
}
END_TEST

START_TEST(test_split_csr)
{
    enum { R = 1000 };
    static int32_t rowptr[R + 1], len[R];
    lt_fill_int(len, R, 50, 3);
    len[17] = 4000; /* one heavy row */
    for (int i = 0; i < R; i++)
        rowptr[i + 1] = rowptr[i] + len[i];
    for (int nparts = 1; nparts <= 7; nparts++) {
        int64_t next = 0;
        for (int k = 0; k < nparts; k++) {
            int64_t lo, hi;
            loom__pool_split_csr(rowptr, R, k, nparts, &lo, &hi);
            ck_assert_int_eq(lo, next); /* in order, no gap, no overlap */
            ck_assert_int_le(lo, hi);
            next = hi;
            /* balanced: a part's entries exceed the even share by at most one row */
            ck_assert_int_le(rowptr[hi] - rowptr[lo], rowptr[R] / nparts + 4000 + 1);
        }
        ck_assert_int_eq(next, R);
    }
    int32_t empty[4] = {0, 0, 0, 0};
    int64_t lo, hi;
    loom__pool_split_csr(empty, 3, 1, 2, &lo, &hi); /* no entries: rows split evenly */
    ck_assert_int_eq(lo, 1);
    ck_assert_int_eq(hi, 3);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, test_every_part_once);
    tcase_add_test(tc, test_two_callers);
    tcase_add_test(tc, test_split_csr);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
