/* The traffic a program's plan predicts for one rank (loom_program_traffic) and the link model it
 * is priced on (loom_link_model_parse); the formulas are in graphs/plan/plan_traffic.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graphs/plan/plan.h"
#include "graphs/session/program.h"

const char *loom_collective_name(loom_collective c)
{
    static const char *const names[LOOM_COLL_COUNT] = {"all-reduce", "all-gather", "reduce-scatter", "all-to-all"};
    return (unsigned)c < LOOM_COLL_COUNT ? names[c] : "?";
}

/* Reads RATE (a number and a unit of bits or bytes per second) from s into *bps; 0, or -1. */
static int rate(const char *s, double *bps)
{
    static const struct {
        const char *unit;
        double scale;
    } units[] = {{"Mb/s", 1e6 / 8}, {"Gb/s", 1e9 / 8}, {"Tb/s", 1e12 / 8}, {"MB/s", 1e6}, {"GB/s", 1e9}, {"TB/s", 1e12}};
    char *end = NULL;
    if (!(*s >= '0' && *s <= '9'))
        return -1;
    double v = strtod(s, &end);
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (!strcmp(end, units[i].unit)) {
            *bps = v * units[i].scale;
            return isfinite(*bps) && *bps > 0 ? 0 : -1;
        }
    return -1;
}

loom_status loom_link_model_parse(const char *net, const char *gpu, loom_link_model *m, loom_error *err)
{
    if (!m)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_link_model_parse: the model is NULL");
    loom_link_model r = *m;
    if (net) {
        const char *x = strchr(net, 'x');
        long count = 1;
        if (x) {
            char *end = NULL;
            count = net[0] >= '1' && net[0] <= '9' ? strtol(net, &end, 10) : 0;
            if (end != x || count < 1 || count > 1024)
                count = 0;
        }
        if (count < 1 || rate(x ? x + 1 : net, &r.link_bw))
            return loom_error_set(err, LOOM_ERR_INVALID,
                                  "the network links '%s': expected [COUNTx]RATE, COUNT 1 to 1024 links of a node and RATE a number "
                                  "with Mb/s, Gb/s, Tb/s, MB/s, GB/s or TB/s, as 8x400Gb/s",
                                  net);
        r.node_links = (int)count;
    }
    if (gpu && rate(gpu, &r.gpu_bw))
        return loom_error_set(err, LOOM_ERR_INVALID,
                              "the links within a node '%s': expected RATE, a number with Mb/s, Gb/s, Tb/s, MB/s, GB/s or TB/s, as 450GB/s",
                              gpu);
    *m = r;
    return LOOM_OK;
}

int loom__link_model_ok(const loom_link_model *m)
{
    return m->node_links >= 1 && m->link_bw > 0 && m->gpu_bw > 0 && isfinite(m->link_bw) && isfinite(m->gpu_bw) &&
           m->node_latency >= 0 && m->gpu_latency >= 0 && isfinite(m->node_latency) && isfinite(m->gpu_latency);
}

loom_status loom_program_traffic(loom_program *p, int rank, const loom_link_model *links, loom_traffic *out)
{
    if (!p)
        return LOOM_ERR_INVALID;
    p->err[0] = 0;
    const loom_link_model m = links ? *links : LOOM_LINK_MODEL_INIT;
    if (!out)
        return loom__program_fail(p, LOOM_ERR_INVALID, "loom_program_traffic: out is NULL");
    if (!loom__link_model_ok(&m))
        return loom__program_fail(p, LOOM_ERR_INVALID, "loom_program_traffic: links of a node %d, bandwidths %g and %g B/s, latencies %g "
                                  "and %g s: expected at least one link, bandwidths > 0, latencies >= 0",
                                  m.node_links, m.link_bw, m.gpu_bw, m.node_latency, m.gpu_latency);
    loom_run_mode mode = loom__program_own_mode(p);
    loom_status s = loom__program_plan(p, mode, "loom_program_traffic");
    if (s != LOOM_OK)
        return s;
    if (loom__plan_traffic(loom__program_plan_of(p, mode), rank, &p->cost, &m, out) != 0)
        return loom__program_fail(p, LOOM_ERR_INVALID, "loom_program_traffic: rank %d holds no device of the plan%s", rank,
                                  p->plan_only ? " (a plan compiled with plan_only holds its plan_rank's alone)" : "");
    return LOOM_OK;
}
