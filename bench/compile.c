/* Compile and first-run time of long chains of ops, to show that every pass from the builder to
 * the actors' start is linear in the graph. Prints one JSON line per case:
 *
 *   {"case":"scale_chain","devices":"cpu:0","ops":10000,"compile_s":0.01,"first_run_s":0.05,
 *    "step_s":0.004,"shared_bytes":128,"unshared_bytes":...,"own_bytes":...,
 *    "reference_compile_s":0.01,"reference_run_s":0.01,"status":"ok"}
 *
 * Usage: compile [--place cpu:0-3] [OPS ...] (default sizes 1000 10000 100000 1000000), each size
 * as scale_chain, then each as param_chain (see chain below; by default up to 100000). A case that fails (out of memory,
 * say) prints its status and message instead of its times. Each case trains its parameters with
 * SGD (LOOM_RUN_STEP), so the plan has the backward chain and the updates too. Times are wall
 * clock: past the caches, memory traffic grows them faster than the work.
 * compile_s covers building the graph and loom_compile; first_run_s is the
 * actor executor's first loom_program_run (plan, actors, runtime, one step) and step_s its second;
 * reference_run_s is one step of the same graph, compiled again, on the reference executor.
 * Goal: <= 5 s of compile plus first run at 100k ops. */
#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* scale_chain: `ops` scales of one 64-float parameter; param_chain: `ops` adds, each of a scaled
 * parameter of its own (so as many variables, updates and gradients kept for the caller). Summed,
 * compiled for SGD on exec; NULL with the case's line ended when it fails. */
static loom_program *chain(int params, long ops, const char *place, loom_executor exec, loom_graph **gp)
{
    loom_graph *g = loom_graph_new();
    *gp = g;
    if (place) {
        loom_placement *pp = loom_placement_parse(place, NULL);
        loom_graph_set_placement(g, pp);
        loom_placement_free(pp);
    }
    loom_tensor *x = loom_param(g, "x", LOOM_F32, loom_shape(64), loom_init_constant(1.0));
    for (long i = 0; i < ops; i++) {
        if (!params) {
            x = loom_scale(g, x, i % 2 ? 0.5 : 2.0);
            continue;
        }
        char name[32];
        snprintf(name, sizeof name, "p%ld", i);
        loom_tensor *w = loom_param(g, name, LOOM_F32, loom_shape(64), loom_init_constant(0.5));
        x = loom_add(g, x, loom_scale(g, w, i % 2 ? 0.5 : 2.0));
    }
    loom_tensor *loss = loom_sum(g, x, ~0u, 0);
    loom_program *p = NULL;
    loom_train_opts opts = {.optimizer = loom_sgd(0.01), .executor = exec};
    loom_status st = loom_compile(g, loss, &opts, &p);
    if (st != LOOM_OK) {
        printf(",\"status\":\"%s\",\"message\":\"%s\"}\n", loom_status_str(st), loom_graph_error(g));
        loom_graph_free(g);
        return NULL;
    }
    return p;
}

static void run_case(int params, long ops, const char *place)
{
    printf("{\"case\":\"%s\",\"devices\":\"%s\",\"ops\":%ld", params ? "param_chain" : "scale_chain",
           place ? place : "cpu:0", ops);
    fflush(stdout);
    loom_graph *g;
    double t0 = now_s();
    loom_program *p = chain(params, ops, place, LOOM_EXEC_ACTORS, &g);
    double t1 = now_s();
    if (!p)
        return;
    printf(",\"compile_s\":%.4f", t1 - t0);
    fflush(stdout);
    loom_status st = loom_program_run(p, LOOM_RUN_STEP);
    double t2 = now_s();
    if (st == LOOM_OK) {
        printf(",\"first_run_s\":%.4f", t2 - t1);
        st = loom_program_run(p, LOOM_RUN_STEP);
        printf(",\"step_s\":%.4f", now_s() - t2);
    }
    loom_memory m = {0};
    if (st == LOOM_OK)
        st = loom_program_memory(p, LOOM_RUN_STEP, LOOM_ALL_DEVICES, &m);
    if (st != LOOM_OK) {
        printf(",\"status\":\"%s\",\"message\":\"%s\"}\n", loom_status_str(st), loom_program_error(p));
        loom_program_free(p);
        loom_graph_free(g);
        return;
    }
    printf(",\"shared_bytes\":%zu,\"unshared_bytes\":%zu,\"own_bytes\":%zu", m.shared, m.unshared, m.own);
    loom_program_free(p);
    loom_graph_free(g);
    fflush(stdout);
    t0 = now_s();
    p = chain(params, ops, place, LOOM_EXEC_REFERENCE, &g);
    t1 = now_s();
    if (!p)
        return;
    st = loom_program_run(p, LOOM_RUN_STEP);
    t2 = now_s();
    if (st == LOOM_OK)
        printf(",\"reference_compile_s\":%.4f,\"reference_run_s\":%.4f,\"status\":\"ok\"}\n", t1 - t0, t2 - t1);
    else
        printf(",\"status\":\"%s\",\"message\":\"%s\"}\n", loom_status_str(st), loom_program_error(p));
    loom_program_free(p);
    loom_graph_free(g);
}

int main(int argc, char **argv)
{
    const char *place = NULL;
    long sizes[64];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--place") && i + 1 < argc)
            place = argv[++i];
        else if (n < 64 && atol(argv[i]) > 0)
            sizes[n++] = atol(argv[i]);
        else {
            fprintf(stderr, "usage: compile [--place DEVICES] [OPS ...]\n");
            return 2;
        }
    }
    if (place) {
        loom_error err = {0};
        loom_placement *pp = loom_placement_parse(place, &err);
        if (!pp) {
            fprintf(stderr, "compile: --place %s: %s\n", place, err.msg);
            return 2;
        }
        loom_placement_free(pp);
    }
    int given = n > 0;
    if (!n) {
        const long def[] = {1000, 10000, 100000, 1000000};
        for (; n < 4; n++)
            sizes[n] = def[n];
    }
    for (int params = 0; params < 2; params++)
        for (int i = 0; i < n; i++)
            if (given || !params || sizes[i] <= 100000) /* a million parameters' plan takes ~14 GB */
                run_case(params, sizes[i], place);
    return 0;
}
