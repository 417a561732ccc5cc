/* A program's state after a run that failed or was cancelled (every step is applied and counted, or
 * neither); cancel before a run, and from another thread during the first one; a trace
 * (LOOM_TRACE) that cannot be written, which must neither fail the run nor replace its target; the
 * trace's file pattern (%p, %n, %%) and a bad one. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { NX = 8, NF = 6, NH = 4, NTAB = 10, RUN = 10, CLEAN = RUN + 3, TRIES = 100 };

typedef enum { FAIL_NONE, FAIL_SOURCE, FAIL_KERNEL, FAIL_CANCEL, FAIL_KIND_COUNT } fail_kind;
static const char *const kind_name[FAIL_KIND_COUNT] = {"none", "a failing source", "a failing kernel", "a cancel"};

typedef struct model {
    loom_graph *g;
    loom_program *p;
    loom_tensor *x, *idx, *param[3];
    fail_kind kind;
    int64_t fail_at;
} model;

/* Step `step`'s data; at fail_at the source fails, feeds an index out of range, or cancels. */
static loom_status feed(void *ctx, int64_t step, loom_feeder *f, int *end, char *msg, size_t len)
{
    (void)end;
    model *m = ctx;
    if (step == m->fail_at && m->kind == FAIL_SOURCE) {
        snprintf(msg, len, "bad record at step %lld", (long long)step);
        return LOOM_ERR_FORMAT;
    }
    if (step == m->fail_at && m->kind == FAIL_CANCEL)
        loom_program_cancel(m->p);
    double x[NX * NF];
    int32_t idx[NX];
    for (int i = 0; i < NX * NF; i++)
        x[i] = (double)((i * 7 + step * 3) % 11) / 11.0 - 0.4;
    for (int i = 0; i < NX; i++)
        idx[i] = (int32_t)((i * 3 + step) % NTAB);
    if (step == m->fail_at && m->kind == FAIL_KERNEL)
        idx[2] = NTAB + 5;
    loom_array xa = {.dtype = LOOM_F64, .ndim = 2, .shape = {NX, NF}, .data = x};
    loom_array ia = {.dtype = LOOM_I32, .ndim = 1, .shape = {NX}, .data = idx};
    loom_status s = loom_feeder_dense(f, m->x, &xa);
    return s != LOOM_OK ? s : loom_feeder_dense(f, m->idx, &ia);
}

/* loss = mean((dropout(tanh((x + E[idx]) W1)) W2)^2), trained with Adam, fed by the source. */
static void model_new(model *m, const char *placement)
{
    *m = (model){.g = loom_graph_new(), .fail_at = -1};
    loom_graph *g = m->g;
    loom_graph_set_seed(g, 7);
    if (placement) {
        loom_placement *pl = loom_placement_parse(placement, NULL);
        ck_assert(pl);
        loom_graph_set_placement(g, pl);
        loom_placement_free(pl);
    }
    m->x = loom_input(g, "x", LOOM_F64, loom_shape(NX, NF));
    m->idx = loom_input(g, "idx", LOOM_I32, loom_shape(NX));
    m->param[0] = loom_param(g, "E", LOOM_F64, loom_shape(NTAB, NF), loom_init_normal(0, 0.5, 1));
    m->param[1] = loom_param(g, "W1", LOOM_F64, loom_shape(NF, NH), loom_init_glorot(2));
    m->param[2] = loom_param(g, "W2", LOOM_F64, loom_shape(NH, 3), loom_init_glorot(3));
    loom_tensor *h = loom_tanh(g, loom_matmul(g, loom_add(g, m->x, loom_gather_rows(g, m->param[0], m->idx)), m->param[1]));
    loom_tensor *y = loom_matmul(g, loom_dropout(g, h, 0.25), m->param[2]);
    loom_tensor *loss = loom_mean(g, loom_mul(g, y, y), LOOM_ALL_AXES, 0);
    ck_assert_msg(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_adam(0.05)}, &m->p) == LOOM_OK, "%s",
                  loom_graph_error(g));
    loom_program_set_source(m->p, feed, m);
}

static void model_free(model *m)
{
    loom_program_free(m->p);
    loom_graph_free(m->g);
}

/* The parameters' bytes, one after another. */
typedef struct snapshot {
    unsigned char bytes[(NTAB * NF + NF * NH + NH * 3) * sizeof(double)];
} snapshot;

static void take(model *m, snapshot *s)
{
    size_t off = 0;
    for (int k = 0; k < 3; k++) {
        loom_array a;
        ck_assert_int_eq(loom_program_fetch(m->p, m->param[k], &a), LOOM_OK);
        size_t n = (size_t)lt_numel(a.ndim, a.shape) * sizeof(double);
        ck_assert_uint_le(off + n, sizeof s->bytes);
        memcpy(s->bytes + off, a.data, n);
        off += n;
    }
    ck_assert_uint_eq(off, sizeof s->bytes);
}

/* A clean program's parameters after each of 0 .. CLEAN - 1 steps, and its losses. */
typedef struct clean {
    snapshot after[CLEAN];
    double loss[CLEAN];
} clean;

static void clean_run(const char *placement, clean *c)
{
    model m;
    model_new(&m, placement);
    take(&m, &c->after[0]);
    ck_assert_msg(loom_program_run_steps(m.p, LOOM_RUN_STEP, 2) == LOOM_OK, "%s", loom_program_error(m.p));
    take(&m, &c->after[2]);
    for (int k = 3; k < CLEAN; k++) {
        ck_assert_msg(loom_program_run(m.p, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(m.p));
        take(&m, &c->after[k]);
    }
    int64_t n;
    const double *l = loom_program_losses(m.p, &n);
    ck_assert_int_eq(n, CLEAN - 1);
    memcpy(c->loss, l, (size_t)n * sizeof *l);
    model_free(&m);
    /* one step alone, for after[1]: a run of 2 and runs of 1 must agree (the piece is the step) */
    model_new(&m, placement);
    ck_assert_int_eq(loom_program_run(m.p, LOOM_RUN_STEP), LOOM_OK);
    take(&m, &c->after[1]);
    model_free(&m);
}

/* The program's steps, losses and parameters agree with a clean run of as many steps. */
static void check_agrees(model *m, const clean *c, const char *what, int try)
{
    int64_t steps = loom_program_steps(m->p), n;
    const double *l = loom_program_losses(m->p, &n);
    ck_assert_msg(n == steps, "%s, try %d: %lld steps but %lld losses", what, try, (long long)steps, (long long)n);
    ck_assert_int_lt(steps, CLEAN);
    ck_assert_msg(!n || !memcmp(l, c->loss, (size_t)n * sizeof *l), "%s, try %d: the losses differ from a clean run", what, try);
    snapshot s;
    take(m, &s);
    ck_assert_msg(!memcmp(&s, &c->after[steps], sizeof s), "%s, try %d: the parameters are not those of %lld clean steps",
                  what, try, (long long)steps);
}

static void check_failed_runs(const char *placement)
{
    clean c;
    clean_run(placement, &c);
    ck_assert(memcmp(&c.after[3], &c.after[4], sizeof c.after[3])); /* steps are told apart */
    for (int kind = FAIL_SOURCE; kind < FAIL_KIND_COUNT; kind++)
        for (int try = 0; try < TRIES; try++) {
            char what[96];
            snprintf(what, sizeof what, "%s at step 3 on %s", kind_name[kind], placement ? placement : "cpu:0");
            model m;
            model_new(&m, placement);
            m.kind = (fail_kind)kind;
            m.fail_at = 3;
            loom_status s = loom_program_run_steps(m.p, LOOM_RUN_STEP, RUN);
            ck_assert_msg(s == (kind == FAIL_SOURCE ? LOOM_ERR_FORMAT : kind == FAIL_KERNEL ? LOOM_ERR_INVALID : LOOM_ERR_RUNTIME),
                          "%s: status %d, %s", what, s, loom_program_error(m.p));
            ck_assert_msg(strstr(loom_program_error(m.p), kind == FAIL_SOURCE   ? "bad record at step 3"
                                                          : kind == FAIL_KERNEL ? "gather_rows"
                                                                                : "cancelled"),
                          "%s: %s", what, loom_program_error(m.p));
            check_agrees(&m, &c, what, try);
            /* the steps before the failing one are done, none after; a cancelled step's data was
             * read, so that step completes */
            ck_assert_int_eq(loom_program_steps(m.p), kind == FAIL_CANCEL ? 4 : 3);
            /* the next run continues from there, under the same step numbers as a clean run */
            m.kind = FAIL_NONE;
            ck_assert_msg(loom_program_run_steps(m.p, LOOM_RUN_STEP, 2) == LOOM_OK, "%s, then: %s", what, loom_program_error(m.p));
            check_agrees(&m, &c, what, try);
            model_free(&m);
        }
}

START_TEST(test_failed_run_state_one_device) { check_failed_runs(NULL); }
END_TEST

START_TEST(test_failed_run_state_two_devices) { check_failed_runs("cpu:0-1"); }
END_TEST

/* ---- cancel ------------------------------------------------------------------------------------ */

START_TEST(test_cancel_before_run)
{
    /* the next run ends at once with the cancel status and runs nothing; the one after runs */
    for (int e = 0; e < LOOM_EXEC_COUNT; e++) {
        loom_graph *g = loom_graph_new();
        loom_tensor *x = loom_input(g, "x", LOOM_F64, loom_shape(4, 3));
        loom_tensor *w = loom_param(g, "w", LOOM_F64, loom_shape(3, 2), loom_init_glorot(1));
        loom_tensor *y = loom_matmul(g, x, w);
        loom_program *p;
        ck_assert_int_eq(loom_compile(g, loom_mean(g, loom_mul(g, y, y), LOOM_ALL_AXES, 0),
                                      &(loom_train_opts){.optimizer = loom_sgd(0.1), .executor = (loom_executor)e}, &p),
                         LOOM_OK);
        double xd[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        ck_assert_int_eq(loom_program_feed(p, x, &(loom_array){.dtype = LOOM_F64, .ndim = 2, .shape = {4, 3}, .data = xd}), LOOM_OK);
        loom_program_cancel(p);
        loom_program_cancel(p); /* one request, however often it is made */
        ck_assert_int_eq(loom_program_run_steps(p, LOOM_RUN_STEP, 200), LOOM_ERR_RUNTIME);
        ck_assert_msg(strstr(loom_program_error(p), "cancelled"), "%s", loom_program_error(p));
        int64_t n;
        loom_program_losses(p, &n);
        ck_assert_int_eq(loom_program_steps(p), 0);
        ck_assert_int_eq(n, 0);
        ck_assert_msg(loom_program_run_steps(p, LOOM_RUN_STEP, 5) == LOOM_OK, "%s", loom_program_error(p));
        ck_assert_int_eq(loom_program_steps(p), 5);
        /* a cancel before the first run of another mode reaches that run too */
        loom_program_cancel(p);
        ck_assert_int_eq(loom_program_run(p, LOOM_RUN_EVAL), LOOM_ERR_RUNTIME);
        ck_assert_int_eq(loom_program_run(p, LOOM_RUN_EVAL), LOOM_OK);
        loom_program_free(p);
        loom_graph_free(g);
    }
}
END_TEST

typedef struct canceller {
    loom_program *p;
    atomic_int done;
    int64_t calls;
} canceller;

/* Cancels over and over until the run has returned: some of the calls land while the first run
 * builds its executor. */
static void *cancel_until_done(void *arg)
{
    canceller *c = arg;
    while (!atomic_load(&c->done)) {
        loom_program_cancel(c->p);
        c->calls++;
        sched_yield();
    }
    return NULL;
}

START_TEST(test_cancel_from_another_thread_during_first_run)
{
    clean c;
    clean_run(NULL, &c);
    for (int try = 0; try < 20; try++) {
        model m;
        model_new(&m, NULL);
        canceller cc = {.p = m.p};
        atomic_init(&cc.done, 0);
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, cancel_until_done, &cc), 0);
        loom_status s = loom_program_run_steps(m.p, LOOM_RUN_STEP, INT64_MAX / 2); /* endless: only a cancel ends it */
        atomic_store(&cc.done, 1);
        pthread_join(th, NULL);
        ck_assert_msg(s == LOOM_ERR_RUNTIME && strstr(loom_program_error(m.p), "cancelled"), "try %d: status %d, %s", try, s,
                      loom_program_error(m.p));
        ck_assert_int_gt(cc.calls, 0);
        int64_t n;
        loom_program_losses(m.p, &n);
        ck_assert_int_eq(n, loom_program_steps(m.p));
        if (n < CLEAN)
            check_agrees(&m, &c, "a cancel from another thread", try);
        /* a cancel left over for the next run (the canceller's last calls) ends it at once; make
         * sure there is one, then the run after it runs */
        loom_program_cancel(m.p);
        int64_t steps = loom_program_steps(m.p);
        ck_assert_int_eq(loom_program_run_steps(m.p, LOOM_RUN_STEP, 3), LOOM_ERR_RUNTIME);
        ck_assert_int_eq(loom_program_steps(m.p), steps);
        ck_assert_msg(loom_program_run_steps(m.p, LOOM_RUN_STEP, 3) == LOOM_OK, "%s", loom_program_error(m.p));
        ck_assert_int_eq(loom_program_steps(m.p), steps + 3);
        model_free(&m);
    }
}
END_TEST

/* ---- a trace that cannot be written ------------------------------------------------------------- */

/* Runs 4 steps with LOOM_TRACE=path: they run and count whatever happens to the trace. Returns
 * the trace error (copied into err) or NULL. */
static const char *run_traced(const char *path, char *err, size_t len)
{
    ck_assert_int_eq(setenv("LOOM_TRACE", path, 1), 0);
    model m;
    model_new(&m, NULL);
    loom_status s = loom_program_run_steps(m.p, LOOM_RUN_STEP, 4);
    ck_assert_msg(s == LOOM_OK, "LOOM_TRACE=%s: status %d, %s", path, s, loom_program_error(m.p));
    ck_assert_int_eq(loom_program_steps(m.p), 4);
    const char *e = loom_program_trace_error(m.p);
    snprintf(err, len, "%s", e ? e : "");
    model_free(&m);
    unsetenv("LOOM_TRACE");
    return e ? err : NULL;
}

static mode_t kind_of(const char *path)
{
    struct stat st;
    ck_assert_msg(lstat(path, &st) == 0, "%s: %s", path, strerror(errno));
    return st.st_mode & S_IFMT;
}

START_TEST(test_trace_never_replaces_what_it_points_at)
{
    char dir[] = "/tmp/loom_trace_XXXXXX", path[256], real[300], err[512];
    ck_assert(mkdtemp(dir));

    /* a regular file (and a new one) is written whole, nothing left beside it */
    snprintf(path, sizeof path, "%s/trace.json", dir);
    ck_assert_ptr_null(run_traced(path, err, sizeof err));
    ck_assert_ptr_null(run_traced(path, err, sizeof err));
    ck_assert_int_eq(kind_of(path), S_IFREG);
    FILE *f = fopen(path, "r");
    ck_assert(f);
    ck_assert_int_eq(fgetc(f), '[');
    fclose(f);
    snprintf(real, sizeof real, "%s.tmp", path);
    ck_assert_int_ne(access(real, F_OK), 0);

    /* a device is written in place and stays a device; a full one is a trace error, not a run's */
    if (access("/dev/full", W_OK) == 0) {
        ck_assert_ptr_nonnull(run_traced("/dev/full", err, sizeof err));
        ck_assert_msg(strstr(err, "/dev/full") && strstr(err, strerror(ENOSPC)), "%s", err);
        ck_assert_int_eq(kind_of("/dev/full"), S_IFCHR);
    }
    ck_assert_ptr_null(run_traced("/dev/null", err, sizeof err));
    ck_assert_int_eq(kind_of("/dev/null"), S_IFCHR);

    /* a symbolic link is refused, and neither it nor what it points at changes */
    snprintf(real, sizeof real, "%s/real.json", dir);
    snprintf(path, sizeof path, "%s/link.json", dir);
    f = fopen(real, "w");
    ck_assert(f);
    fputs("keep", f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(symlink(real, path), 0);
    ck_assert_ptr_nonnull(run_traced(path, err, sizeof err));
    ck_assert_msg(strstr(err, "symbolic link") && strstr(err, "not replaced"), "%s", err);
    ck_assert_int_eq(kind_of(path), S_IFLNK);
    char got[16] = {0};
    f = fopen(real, "r");
    ck_assert(f);
    ck_assert_uint_eq(fread(got, 1, sizeof got - 1, f), 4);
    fclose(f);
    ck_assert_str_eq(got, "keep");

    /* a link left at the temporary name is not written through either */
    snprintf(path, sizeof path, "%s/other.json", dir);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_int_eq(symlink(real, tmp), 0);
    ck_assert_ptr_nonnull(run_traced(path, err, sizeof err));
    ck_assert_int_eq(kind_of(tmp), S_IFLNK);
    ck_assert_int_ne(access(path, F_OK), 0);

    /* a directory and a FIFO nobody reads: refused or failed, at once, and left as they were */
    ck_assert_ptr_nonnull(run_traced(dir, err, sizeof err));
    ck_assert_msg(strstr(err, "a directory"), "%s", err);
    ck_assert_int_eq(kind_of(dir), S_IFDIR);
    snprintf(path, sizeof path, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    ck_assert_ptr_nonnull(run_traced(path, err, sizeof err));
    ck_assert_int_eq(kind_of(path), S_IFIFO);

    remove(tmp);
    remove(path);
    snprintf(path, sizeof path, "%s/link.json", dir);
    remove(path);
    remove(real);
    snprintf(path, sizeof path, "%s/trace.json", dir);
    remove(path);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* The files in dir whose names are t-PID-N-%.json, in the order of N (the run numbers), at most 8. */
static int traces_in(const char *dir, long pid, uint64_t *runs)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        long p;
        uint64_t r;
        int end = 0;
        if (e->d_name[0] == '.')
            continue;
        ck_assert_msg(sscanf(e->d_name, "t-%ld-%" SCNu64 "-%%.json%n", &p, &r, &end) == 2 && !e->d_name[end],
                      "unexpected file %s", e->d_name);
        ck_assert_int_eq(p, pid);
        ck_assert_int_lt(n, 8);
        int k = n++;
        for (; k > 0 && runs[k - 1] > r; k--)
            runs[k] = runs[k - 1];
        runs[k] = r;
    }
    closedir(d);
    return n;
}

/* LOOM_TRACE as a pattern: each run, of one program or another, gets its own file (%p, %n, %%);
 * a pattern with an unknown conversion fails the run before it runs a step, naming it. */
START_TEST(test_trace_pattern)
{
    char dir[] = "/tmp/loom_trace_pattern_XXXXXX", pat[128], path[160];
    ck_assert(mkdtemp(dir));
    snprintf(pat, sizeof pat, "%s/t-%%p-%%n-%%%%.json", dir);
    ck_assert_int_eq(setenv("LOOM_TRACE", pat, 1), 0);
    model a, b;
    model_new(&a, NULL);
    model_new(&b, NULL);
    for (int r = 0; r < 2; r++) {
        ck_assert_int_eq(loom_program_run_steps(a.p, LOOM_RUN_STEP, 2), LOOM_OK);
        ck_assert_int_eq(loom_program_run_steps(b.p, LOOM_RUN_STEP, 1), LOOM_OK);
        ck_assert_ptr_null(loom_program_trace_error(a.p));
    }
    uint64_t runs[8];
    ck_assert_int_eq(traces_in(dir, (long)getpid(), runs), 4);
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(runs[k], runs[0] + (uint64_t)k); /* consecutive, whatever ran before */
        snprintf(path, sizeof path, "%s/t-%ld-%" PRIu64 "-%%.json", dir, (long)getpid(), runs[k]);
        FILE *f = fopen(path, "r");
        ck_assert_msg(f, "%s: %s", path, strerror(errno));
        ck_assert_int_eq(fgetc(f), '[');
        fclose(f);
        ck_assert_int_eq(remove(path), 0);
    }
    model_free(&a);
    model_free(&b);

    const char *bad[][2] = {{"t-%x.json", "'%x' at byte 2 is none of %p"}, {"t-%", "a lone '%' ends it"},
                            {"%%%n%", "a lone '%' ends it"}, {"%d", "'%d' at byte 0"}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(pat, sizeof pat, "%s/%s", dir, bad[k][0]);
        ck_assert_int_eq(setenv("LOOM_TRACE", pat, 1), 0);
        model_new(&a, NULL);
        ck_assert_int_eq(loom_program_run_steps(a.p, LOOM_RUN_STEP, 2), LOOM_ERR_INVALID);
        const char *e = loom_program_error(a.p);
        ck_assert_msg(strstr(e, "trace: bad pattern") && strstr(e, pat) && strstr(e, "(LOOM_TRACE)"), "%s", e);
        char want[64];
        snprintf(want, sizeof want, "%s", bad[k][1]);
        if (want[0] == '\'') /* the byte counts from the pattern's start: the directory before it */
            snprintf(want, sizeof want, "'%.2s' at byte %zu", bad[k][0] + strcspn(bad[k][0], "%"),
                     strlen(dir) + 1 + strcspn(bad[k][0], "%"));
        ck_assert_msg(strstr(e, want), "'%s' lacks '%s'", e, want);
        ck_assert_int_eq(loom_program_steps(a.p), 0);
        model_free(&a);
    }
    unsetenv("LOOM_TRACE");
    ck_assert_int_eq(traces_in(dir, (long)getpid(), runs), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("run_state");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_failed_run_state_one_device);
    tcase_add_test(tc, test_failed_run_state_two_devices);
    tcase_add_test(tc, test_cancel_before_run);
    tcase_add_test(tc, test_cancel_from_another_thread_during_first_run);
    tcase_add_test(tc, test_trace_never_replaces_what_it_points_at);
    tcase_add_test(tc, test_trace_pattern);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
