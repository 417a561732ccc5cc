/* The static memory plan (graphs/plan/memplan.c, graphs/plan/plan_memory.c): blocks whose lifetimes
 * meet never overlap in memory, checked pair by pair on random lifetimes and sizes; each offset is
 * the one of the plain greedy-by-size method (so the block's size is what that method gives); and
 * the shared registers of real plans, on one and on several devices, never overlap while both are
 * live. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "graphs/plan/memplan.h"
#include "graphs/plan/plan.h"
#include "graphs/session/program.h"

static uint64_t rng(uint64_t *s)
{
    *s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return *s >> 33;
}

static int lives_meet(const loom__block *a, const loom__block *b) { return a->first <= b->last && b->first <= a->last; }

/* (Checks below assert only on failure: each passing ck_assert costs a write.) Fails the test
 * naming the first two blocks whose lifetimes meet and whose bytes overlap, or a
 * top that is not the end of the highest block. */
static void check_no_overlap(const loom__block *b, int n, size_t top, const char *what)
{
    size_t high = 0;
    for (int i = 0; i < n; i++) {
        high = b[i].offset + b[i].bytes > high ? b[i].offset + b[i].bytes : high;
        for (int j = i + 1; j < n; j++)
            if (lives_meet(&b[i], &b[j]) && b[i].offset + b[i].bytes > b[j].offset && b[j].offset + b[j].bytes > b[i].offset)
                ck_abort_msg("%s: blocks %d [%d, %d] at %zu+%zu and %d [%d, %d] at %zu+%zu overlap", what, i, b[i].first, b[i].last,
                             b[i].offset, b[i].bytes, j, b[j].first, b[j].last, b[j].offset, b[j].bytes);
    }
    ck_assert_msg(top == high, "%s: top %zu, the highest block ends at %zu", what, top, high);
}

/* The plain method: largest first (ties by index), each at offset 0, moved past every block
 * placed before it that it meets and overlaps, until none is left. Quadratic and more. */
static size_t plain(loom__block *b, int n)
{
    int *order = malloc((size_t)(n + 1) * sizeof *order);
    ck_assert_ptr_nonnull(order);
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && b[order[j]].bytes > b[order[j - 1]].bytes; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    size_t top = 0;
    for (int i = 0; i < n; i++) {
        loom__block *r = &b[order[i]];
        size_t off = 0;
        for (int again = 1; again;) {
            again = 0;
            for (int j = 0; j < i; j++) {
                const loom__block *q = &b[order[j]];
                if (lives_meet(q, r) && q->offset < off + r->bytes && off < q->offset + q->bytes) {
                    off = q->offset + q->bytes;
                    again = 1;
                }
            }
        }
        r->offset = off;
        top = off + r->bytes > top ? off + r->bytes : top;
    }
    free(order);
    return top;
}

START_TEST(test_random_lifetimes_and_sizes)
{
    enum { MAXN = 400 };
    static loom__block b[MAXN], ref[MAXN];
    for (uint64_t seed = 1; seed <= 300; seed++) {
        uint64_t s = seed;
        int n = (int)(rng(&s) % MAXN), span = 1 + (int)(rng(&s) % (seed % 3 ? 40 : 800));
        int maxlife = 1 + (int)(rng(&s) % (uint64_t)span);
        int sizes = 1 + (int)(rng(&s) % 6); /* few sizes: many ties; or any size at all */
        for (int i = 0; i < n; i++) {
            int first = (int)(rng(&s) % (uint64_t)span);
            int life = (int)(rng(&s) % (uint64_t)maxlife);
            size_t bytes = seed % 4 ? 64 * (1 + rng(&s) % (uint64_t)sizes) : 1 + rng(&s) % 5000;
            b[i] = (loom__block){.first = first, .last = first + life, .bytes = bytes, .offset = 12345};
        }
        memcpy(ref, b, sizeof b);
        char what[64];
        snprintf(what, sizeof what, "seed %d, %d blocks", (int)seed, n);
        size_t top = loom__memplan(b, n);
        check_no_overlap(b, n, top, what);
        size_t ref_top = plain(ref, n);
        ck_assert_msg(top == ref_top, "%s: top %zu, the plain method's %zu", what, top, ref_top);
        for (int i = 0; i < n; i++)
            if (b[i].offset != ref[i].offset)
                ck_abort_msg("%s: block %d at %zu, the plain method puts it at %zu", what, i, b[i].offset, ref[i].offset);
    }
}
END_TEST

START_TEST(test_simple_cases)
{
    ck_assert_uint_eq(loom__memplan(NULL, 0), 0);
    /* one chain position after another: each block is read by the next op, so neighbours meet */
    loom__block chain[6];
    for (int i = 0; i < 6; i++)
        chain[i] = (loom__block){.first = i, .last = i + 1, .bytes = 256};
    ck_assert_uint_eq(loom__memplan(chain, 6), 512);
    check_no_overlap(chain, 6, 512, "chain");
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(chain[i].offset, i % 2 ? 256 : 0);
    /* all live at once: stacked, largest first */
    loom__block all[3] = {{0, 9, 64, 0}, {2, 3, 192, 0}, {1, 5, 128, 0}};
    ck_assert_uint_eq(loom__memplan(all, 3), 384);
    ck_assert_uint_eq(all[1].offset, 0);
    ck_assert_uint_eq(all[2].offset, 192);
    ck_assert_uint_eq(all[0].offset, 320);
    /* the smallest goes below a block it meets, where one it does not meet lies */
    loom__block gap[3] = {{0, 1, 256, 0}, {1, 2, 128, 0}, {2, 3, 64, 0}};
    ck_assert_uint_eq(loom__memplan(gap, 3), 384);
    ck_assert_uint_eq(gap[0].offset, 0);
    ck_assert_uint_eq(gap[1].offset, 256);
    ck_assert_uint_eq(gap[2].offset, 0);
}
END_TEST

/* Every pair of shared registers of one device whose lifetimes meet lies apart in its block. */
static void check_plan(loom_program *p, loom_run_mode mode, const char *what)
{
    loom_status st;
    loom__plan_src src = loom__program_plan_src(p);
    loom__plan *pl = loom__plan_build(&src, mode, NULL, 2, &st);
    ck_assert_msg(pl != NULL, "%s: %s", what, loom_program_error(p));
    for (int d = 0; d < pl->ndev; d++) {
        for (int i = 0; i < pl->nregst; i++) {
            const loom__regst *a = &pl->regst[i];
            if (a->mem != LOOM__MEM_SHARED || a->dom != d)
                continue;
            if (a->offset + a->bytes > pl->mem[d].shared)
                ck_abort_msg("%s: register %d past the shared block", what, i);
            for (int j = i + 1; j < pl->nregst; j++) {
                const loom__regst *c = &pl->regst[j];
                if (c->mem != LOOM__MEM_SHARED || c->dom != d || c->first > a->last || a->first > c->last)
                    continue;
                if (a->offset + a->bytes > c->offset && c->offset + c->bytes > a->offset)
                    ck_abort_msg("%s: registers %d and %d of device %d overlap while both are live", what, i, j, d);
            }
        }
    }
    loom__plan_free(pl);
}

START_TEST(test_plans_of_random_graphs)
{
    const char *places[] = {NULL, "cpu:0-1", "cpu:0-2"};
    for (int k = 0; k < 3; k++)
        for (uint64_t seed = 1; seed <= 40; seed++) {
            loom_graph *g = loom_graph_new();
            if (places[k]) {
                loom_placement *q = loom_placement_parse(places[k], NULL);
                loom_graph_set_placement(g, q);
                loom_placement_free(q);
            }
            loom_tensor *x, *idx;
            int64_t rc[2];
            loom_tensor *loss = lt_random_graph(g, seed, &x, &idx, rc);
            loom_program *p = NULL;
            loom_train_opts opts = {.optimizer = loom_adam(0.01)};
            ck_assert_msg(loom_compile(g, loss, &opts, &p) == LOOM_OK, "seed %d: %s", (int)seed, loom_graph_error(g));
            char what[64];
            snprintf(what, sizeof what, "seed %d on %s", (int)seed, places[k] ? places[k] : "cpu:0");
            check_plan(p, LOOM_RUN_STEP, what);
            check_plan(p, LOOM_RUN_EVAL, what);
            loom_program_free(p);
            loom_graph_free(g);
        }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("memplan");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, test_random_lifetimes_and_sizes);
    tcase_add_test(tc, test_simple_cases);
    tcase_add_test(tc, test_plans_of_random_graphs);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
