/* The generated events' size distribution and the time to make them (docs/events.md), one JSON
 * line:
 *
 *   {"case":"events","events":1000,"seed":1,"ms":...,"cpu_ms":...,"nodes":{"min":...,"median":...,"p99":...,
 *    "max":...,"mean":...,"total":...},"edges":{...},"true_fraction":...}
 *
 * ms is the fastest of --repeats runs of loom_events_generate with LOOM_EVENT_OPTS_INIT (but for
 * --events and --seed), wall clock, and cpu_ms the CPU time of all its threads in that run (the
 * figure to trust on a machine shared with other work); true_fraction is the mean of edge_y over all edges. With --out FILE the set
 * is also written with loom_samples_write.
 *
 *     events [--events 1000] [--seed 1] [--repeats 5] [--out FILE] */
#define _POSIX_C_SOURCE 200809L
#include <loom/loom.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Prints "name":{min, median, p99, max, mean, total} of v[0 .. n-1] (sorted here). */
static void print_dist(const char *name, int64_t *v, int64_t n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++)
        total += v[i];
    printf("\"%s\":{\"min\":%" PRId64 ",\"median\":%" PRId64 ",\"p99\":%" PRId64 ",\"max\":%" PRId64
           ",\"mean\":%.1f,\"total\":%" PRId64 "}",
           name, v[0], v[(n - 1) / 2], v[(n - 1) * 99 / 100], v[n - 1], (double)total / (double)n, total);
}

int main(int argc, char **argv)
{
    loom_event_opts o = LOOM_EVENT_OPTS_INIT;
    int repeats = 5;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--events"))
            o.events = strtoll(argv[++i], NULL, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--seed"))
            o.seed = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && !strcmp(argv[i], "--repeats"))
            repeats = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--out"))
            out = argv[++i];
        else {
            fprintf(stderr, "usage: events [--events N] [--seed S] [--repeats R] [--out FILE]\n");
            return 2;
        }
    }
    loom_samples s = LOOM_SAMPLES_INIT;
    loom_error err = LOOM_ERROR_INIT;
    double best = 0, best_cpu = 0;
    for (int r = 0; r < (repeats < 1 ? 1 : repeats); r++) {
        loom_samples_free(&s);
        double t0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
        if (loom_events_generate(&o, &s, &err) != LOOM_OK) {
            fprintf(stderr, "events: %s\n", err.msg);
            return 1;
        }
        double t = now_ms(CLOCK_MONOTONIC) - t0, c = now_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (r == 0 || t < best) {
            best = t;
            best_cpu = c;
        }
    }
    if (out && loom_samples_write(&s, out, &err) != LOOM_OK) {
        fprintf(stderr, "events: %s\n", err.msg);
        return 1;
    }
    int64_t *nodes = malloc((size_t)s.count * sizeof *nodes), *edges = malloc((size_t)s.count * sizeof *edges);
    if (!nodes || !edges) {
        fprintf(stderr, "events: out of memory\n");
        return 1;
    }
    for (int64_t i = 0; i < s.count; i++) {
        nodes[i] = loom_samples_nodes(&s, i);
        edges[i] = loom_samples_edges(&s, i);
    }
    double trues = 0;
    for (int64_t e = 0; e < s.edge_off[s.count]; e++)
        trues += s.edge_y[e];
    printf("{\"case\":\"events\",\"events\":%" PRId64 ",\"seed\":%" PRIu64 ",\"ms\":%.1f,\"cpu_ms\":%.1f,", s.count,
           o.seed, best, best_cpu);
    print_dist("nodes", nodes, s.count);
    putchar(',');
    print_dist("edges", edges, s.count);
    printf(",\"true_fraction\":%.4f}\n", s.edge_off[s.count] ? trues / (double)s.edge_off[s.count] : 0.0);
    free(nodes);
    free(edges);
    loom_samples_free(&s);
    return 0;
}
