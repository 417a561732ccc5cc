/* A calibration file read into a cost model (see cost.h; loom_calibrate writes them):
 *
 *     {"format": "loom-cost-model", "version": 1, "machine": "...", "measured_at": "...",
 *      "devices": {"cpu": {"flops": 1.2e11, "mem_bw": 9e9, "op_latency": 8e-6, "lib_latency": 3e-6,
 *                          "box_latency": 2e-5, "box_bw": 8e9, "step_latency": 5e-5,
 *                          "net_latency": 1e-5, "net_bw": 4e11, "thread_gain": 0.8, "shared": true,
 *                          "measured": [...]},
 *                  "cuda": {...}},
 *      "cases": [...]}
 *
 * A device kind left out keeps the built-in figures; every figure of a kind given must be there
 * but lib_latency, net_latency, net_bw, thread_gain and core_share (a file written before they were figures:
 * the built-in ones; the network's are not measured by a calibration on one machine, which writes
 * the figures it was given), a rate (flops,
 * mem_bw, box_bw) a positive finite number, a latency a finite number not below 0 (a calibration
 * fits one at 0 when the steps show none), thread_gain a number from 0 to 1, core_share one above 0
 * and at most 1. Members the reader does not know are refused (a
 * misspelt figure would otherwise be silently the built-in one), but for the informative ones
 * listed. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graphs/core/json.h"
#include "sbp/infer/cost.h"

static int bad(char *msg, size_t len, const char *path, size_t at, const char *what)
{
    snprintf(msg, len, "%s: byte %zu: %s", path, at, what);
    return -1;
}

static int read_dev(const loom__json *doc, int o, const char *path, loom__cost_dev *d, char *msg, size_t len)
{
    static const struct {
        const char *name;
        int latency;  /* 0 allowed */
        int optional; /* the built-in figure when left out */
        int fraction; /* from 0 to 1 */
    } figure[] = {{"flops", 0, 0, 0},       {"mem_bw", 0, 0, 0},       {"op_latency", 1, 0, 0}, {"lib_latency", 1, 1, 0},
                  {"box_latency", 1, 0, 0}, {"box_bw", 0, 0, 0},       {"step_latency", 1, 0, 0},
                  {"net_latency", 1, 1, 0}, {"net_bw", 0, 1, 0},       {"thread_gain", 1, 1, 1},
                  {"core_share", 0, 1, 1}};
    double *field[] = {&d->flops,     &d->mem_bw,       &d->op_latency,  &d->lib_latency, &d->box_latency,
                       &d->box_bw,    &d->step_latency, &d->net_latency, &d->net_bw,      &d->thread_gain,
                       &d->core_share};
    enum { NFIG = sizeof figure / sizeof *figure };
    const loom__json_val *obj = &doc->v[o];
    if (obj->kind != LOOM__JSON_OBJ)
        return bad(msg, len, path, obj->at, "expected an object of figures");
    char what[256];
    for (int c = obj->first; c >= 0; c = doc->v[c].next) {
        const loom__json_val *v = &doc->v[c];
        int k = 0;
        while (k < NFIG && strcmp(v->key, figure[k].name))
            k++;
        if (k < NFIG) {
            if (v->kind != LOOM__JSON_NUM || !isfinite(v->f) || !(figure[k].latency ? v->f >= 0 : v->f > 0) ||
                (figure[k].fraction && v->f > 1)) {
                if (figure[k].fraction)
                    snprintf(what, sizeof what, figure[k].latency ? "'%s' must be a number from 0 to 1" : "'%s' must be a number above 0, at most 1",
                             figure[k].name);
                else
                    snprintf(what, sizeof what, "'%s' must be a %s number", figure[k].name, figure[k].latency ? "non-negative" : "positive");
                return bad(msg, len, path, v->at, what);
            }
            *field[k] = v->f;
        } else if (!strcmp(v->key, "shared")) {
            if (v->kind != LOOM__JSON_BOOL)
                return bad(msg, len, path, v->at, "'shared' must be true or false");
            d->shared = v->i != 0;
        } else if (strcmp(v->key, "measured")) {
            snprintf(what, sizeof what, "unknown figure '%.40s' (expected flops, mem_bw, op_latency, lib_latency, box_latency, "
                                        "box_bw, step_latency, net_latency, net_bw, thread_gain, core_share, shared, measured)", v->key);
            return bad(msg, len, path, v->at, what);
        }
    }
    for (int k = 0; k < NFIG; k++)
        if (!figure[k].optional && loom__json_get(doc, o, figure[k].name) < 0) {
            snprintf(what, sizeof what, "the figure '%s' is missing", figure[k].name);
            return bad(msg, len, path, obj->at, what);
        }
    if (loom__json_get(doc, o, "shared") < 0)
        return bad(msg, len, path, obj->at, "the figure 'shared' is missing");
    return 0;
}

int loom__cost_parse(const char *text, size_t len, const char *path, loom__cost_model *cm, char *msg, size_t msglen)
{
    loom__json doc;
    char why[200];
    if (loom__json_parse(text, len, &doc, why, sizeof why) != 0) {
        snprintf(msg, msglen, "%s: %s", path, why);
        return -1;
    }
    loom__cost_model out;
    loom__cost_default(&out);
    int rc = 0, f = loom__json_get(&doc, 0, "format"), ver = loom__json_get(&doc, 0, "version"),
        devs = loom__json_get(&doc, 0, "devices");
    if (doc.v[0].kind != LOOM__JSON_OBJ)
        rc = bad(msg, msglen, path, doc.v[0].at, "expected an object (a calibration written by loom calibrate)");
    else if (f < 0 || doc.v[f].kind != LOOM__JSON_STR || strcmp(doc.v[f].s, "loom-cost-model"))
        rc = bad(msg, msglen, path, f < 0 ? doc.v[0].at : doc.v[f].at, "expected \"format\": \"loom-cost-model\"");
    else if (ver < 0 || doc.v[ver].kind != LOOM__JSON_NUM || !doc.v[ver].is_int || doc.v[ver].i != 1)
        rc = bad(msg, msglen, path, ver < 0 ? doc.v[0].at : doc.v[ver].at, "expected \"version\": 1");
    else if (devs < 0 || doc.v[devs].kind != LOOM__JSON_OBJ)
        rc = bad(msg, msglen, path, devs < 0 ? doc.v[0].at : doc.v[devs].at, "expected \"devices\": an object by device kind");
    for (int c = rc ? -1 : doc.v[devs].first; c >= 0 && !rc; c = doc.v[c].next) {
        int k = 0;
        while (k < LOOM_DEVICE_KIND_COUNT && strcmp(doc.v[c].key, loom_device_kind_name((loom_device_kind)k)))
            k++;
        if (k == LOOM_DEVICE_KIND_COUNT) {
            char what[120];
            snprintf(what, sizeof what, "unknown device kind '%.40s' (expected cpu or cuda)", doc.v[c].key);
            rc = bad(msg, msglen, path, doc.v[c].at, what);
        } else {
            rc = read_dev(&doc, c, path, &out.dev[k], msg, msglen);
        }
    }
    loom__json_free(&doc);
    if (rc)
        return -1;
    snprintf(out.source, sizeof out.source, "%s", path);
    *cm = out;
    return 0;
}
