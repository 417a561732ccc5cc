/* Routes of boxings between devices that hold only their own parts (runtime/comm/route.c, what the
 * GPUs' NCCL boxing runs): each route, played on the host with the collectives done by hand and
 * every transfer matched against its sender's, must give each device exactly the part that the
 * shared-memory boxing (loom__part_convert) gives, and under the same SBP its own part; every kind
 * on 1 to 5 devices, uneven splits, 1 to 3 dims. And the plan's boxing tasks meet in one order on every device
 * (loom__plan_check_collectives), which a plan whose chains disagree fails. */
#include "box_cases.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graphs/plan/plan.h"
#include "runtime/comm/route.h"

static loom__value make(int nd, const int64_t *shape)
{
    loom__value v = {.dtype = LOOM_F64, .ndim = nd};
    memcpy(v.shape, shape, (size_t)nd * sizeof *shape);
    v.data = calloc((size_t)loom__numel(&v) + 1, sizeof(double));
    ck_assert_ptr_nonnull(v.data);
    return v;
}

/* Copies box (sat, ext) of src (shape ss) to dat of dst (shape ds). */
static void box(double *dst, const int64_t *ds, const int64_t *dat, const double *src, const int64_t *ss, const int64_t *sat,
                const int64_t *ext, int nd)
{
    lt_host_box(dst, ds, dat, src, ss, sat, ext, nd, sizeof *dst);
}

/* Device d's output by its route, from every device's input part and route. */
static void play(const loom__own_route *r, int n, int d, const loom__value *in, const int64_t *shape, int nd, loom__value *out)
{
    const loom__own_route *me = &r[d];
    int64_t zero[LOOM_MAX_DIMS] = {0}, m = loom__numel(out), whole = loom__route_count(shape, nd);
    double *o = out->data, *sum = calloc((size_t)whole + 1, sizeof *sum);
    ck_assert_ptr_nonnull(sum);
    if (me->zero)
        memset(o, 0, (size_t)m * sizeof *o);
    switch (me->kind) {
    case LOOM__ROUTE_NONE: /* the GPUs write nothing */
        break;
    case LOOM__ROUTE_LOCAL:
        if (me->copy)
            box(o, me->out_shape, me->local_to, in[d].data, me->in_shape, me->local.at, me->local.ext, nd);
        break;
    case LOOM__ROUTE_ALL_REDUCE:
    case LOOM__ROUTE_REDUCE_SCATTER:
    case LOOM__ROUTE_REDUCE_SLICE:
        for (int q = 0; q < n; q++) {
            ck_assert_int_eq(r[q].kind, me->kind); /* every device calls the same collective */
            for (int64_t i = 0; i < whole; i++)
                sum[i] += ((const double *)in[q].data)[i];
        }
        if (me->kind == LOOM__ROUTE_ALL_REDUCE)
            memcpy(o, sum, (size_t)m * sizeof *o);
        else if (me->kind == LOOM__ROUTE_REDUCE_SCATTER)
            memcpy(o, sum + (size_t)d * (size_t)m, (size_t)m * sizeof *o);
        else
            box(o, me->out_shape, zero, sum, shape, me->local.at, me->local.ext, nd);
        break;
    case LOOM__ROUTE_ALL_GATHER:
        for (int q = 0, at = 0; q < n; q++) {
            int64_t c = loom__numel(&in[q]);
            ck_assert_int_eq(r[q].kind, me->kind);
            ck_assert_int_eq(c, loom__numel(&in[d])); /* equal counts */
            memcpy(o + at, in[q].data, (size_t)c * sizeof *o);
            at += (int)c;
        }
        break;
    case LOOM__ROUTE_EXCHANGE:
        if (me->copy)
            box(o, me->out_shape, me->local_to, in[d].data, me->in_shape, me->local.at, me->local.ext, nd);
        for (int k = 0; k < me->nrecv; k++) {
            const loom__route_box *rb = &me->recv[k];
            const loom__own_route *them = &r[rb->peer];
            ck_assert_int_eq(them->kind, LOOM__ROUTE_EXCHANGE);
            int found = -1;
            for (int s = 0; s < them->nsend; s++)
                if (them->send[s].peer == d)
                    found = s;
            ck_assert_msg(found >= 0, "device %d waits for device %d, which sends it nothing", d, rb->peer);
            for (int i = 0; i < nd; i++)
                ck_assert_int_eq(them->send[found].ext[i], rb->ext[i]);
            box(o, me->out_shape, rb->at, in[rb->peer].data, them->in_shape, them->send[found].at, rb->ext, nd);
        }
        for (int s = 0; s < me->nsend; s++) { /* every send is received */
            const loom__own_route *them = &r[me->send[s].peer];
            int found = 0;
            for (int k = 0; k < them->nrecv; k++)
                found |= them->recv[k].peer == d;
            ck_assert_msg(found, "device %d sends device %d what it does not receive", d, me->send[s].peer);
        }
        break;
    default:
        ck_abort_msg("unknown route");
    }
    free(sum);
}

static loom_sbp sbp_at(int k, int nd)
{
    return k < nd ? loom_split(k) : k == nd ? loom_broadcast() : loom_partial_sum();
}

START_TEST(test_routes_match_shared_boxing)
{
    static const int64_t dims[][3] = {{7, 5, 3}, {8, 2, 6}, {3, 4, 5}, {1, 9, 2}, {12, 1, 4}, {2, 2, 2}};
    int cases = 0, kinds[LOOM__ROUTE_KIND_COUNT] = {0};
    uint64_t seed = 1;
    for (int n = 1; n <= 5; n++)
        for (size_t c = 0; c < sizeof dims / sizeof dims[0]; c++)
            for (int nd = 1; nd <= 3; nd++)
                for (int f = 0; f < nd + 2; f++)
                    for (int t = 0; t < nd + 2; t++) {
                        /* f == t: a boxing on a mesh that changes only its level of one device */
                        loom_sbp from = sbp_at(f, nd), to = sbp_at(t, nd);
                        const int64_t *shape = dims[c];
                        loom__value x = make(nd, shape), in[8], want = {0}, got = {0};
                        int64_t m = loom__numel(&x);
                        for (int64_t i = 0; i < m; i++) /* integers: sums are exact in any order */
                            ((double *)x.data)[i] = (double)((seed = seed * 6364136223846793005ULL + 1) >> 58) - 16;
                        loom__own_route r[8];
                        for (int d = 0; d < n; d++) {
                            int64_t ps[LOOM_MAX_DIMS];
                            loom__part_shape(shape, nd, from.kind == LOOM_SBP_PARTIAL_SUM ? loom_broadcast() : from, n, d, ps);
                            in[d] = make(nd, ps);
                            loom__part_cut(&x, from.kind == LOOM_SBP_PARTIAL_SUM ? loom_broadcast() : from, n, d, &in[d]);
                            for (int64_t i = 0; from.kind == LOOM_SBP_PARTIAL_SUM && d > 0 && i < m; i++)
                                ((double *)in[d].data)[i] = (double)(i % 3 - d); /* an addend; device 0 holds the rest */
                            loom__own_route_make(shape, nd, from, to, n, d, &r[d]);
                        }
                        if (from.kind == LOOM_SBP_PARTIAL_SUM) /* device 0: x minus the others */
                            for (int d = 1; d < n; d++)
                                for (int64_t i = 0; i < m; i++)
                                    ((double *)in[0].data)[i] -= ((double *)in[d].data)[i];
                        const loom__value *pp[8];
                        for (int d = 0; d < n; d++)
                            pp[d] = &in[d];
                        for (int d = 0; d < n; d++) {
                            int64_t ps[LOOM_MAX_DIMS], first = 0, size;
                            loom__part_shape(shape, nd, to, n, d, ps);
                            if (to.kind == LOOM_SBP_SPLIT)
                                loom_split_part(shape[to.axis], n, d, &first, &size);
                            want = make(nd, ps);
                            got = make(nd, ps);
                            for (int i = 0; i < nd; i++)
                                ck_assert_int_eq(r[d].out_shape[i], ps[i]);
                            if (f == t) /* each device keeps its part (under P its addend) */
                                memcpy(want.data, in[d].data, (size_t)loom__numel(&want) * sizeof(double));
                            else
                                loom__part_convert(pp, from, n, to, n, d, first, shape, &want);
                            play(r, n, d, in, shape, nd, &got);
                            char a[16], b[16];
                            loom_sbp_str(from, a, sizeof a);
                            loom_sbp_str(to, b, sizeof b);
                            ck_assert_msg(!memcmp(want.data, got.data, (size_t)loom__numel(&want) * sizeof(double)),
                                          "%s -> %s on %d devices, shape %lld x %lld x %lld (%d dims), device %d (%s): wrong part", a,
                                          b, n, (long long)shape[0], (long long)shape[1], (long long)shape[2], nd, d,
                                          loom__route_name[r[d].kind]);
                            kinds[r[d].kind]++;
                            free(want.data);
                            free(got.data);
                        }
                        for (int d = 0; d < n; d++)
                            free(in[d].data);
                        free(x.data);
                        cases++;
                    }
    for (int k = LOOM__ROUTE_LOCAL; k < LOOM__ROUTE_KIND_COUNT; k++) /* every route was taken */
        ck_assert_msg(kinds[k] > 0, "no case took route %s", loom__route_name[k]);
    ck_assert_int_gt(cases, 500);
}
END_TEST

/* Transfers of an uneven all-to-all: each element leaves its sender once, and a box of a row split
 * is contiguous only where it spans whole rows. */
START_TEST(test_route_counts)
{
    const int64_t shape[2] = {7, 5};
    int64_t sent = 0, kept = 0;
    for (int d = 0; d < 3; d++) {
        loom__own_route r;
        loom__own_route_make(shape, 2, loom_split(0), loom_split(1), 3, d, &r);
        ck_assert_int_eq(r.kind, LOOM__ROUTE_EXCHANGE);
        ck_assert_int_eq(r.nsend, 2);
        ck_assert_int_eq(r.nrecv, 2);
        for (int s = 0; s < r.nsend; s++)
            sent += loom__route_count(r.send[s].ext, 2);
        kept += loom__route_count(r.local.ext, 2);
    }
    ck_assert_int_eq(sent + kept, 35);
    int64_t off;
    const int64_t s3[3] = {4, 3, 2}, at[3] = {1, 0, 0}, whole_rows[3] = {2, 3, 2}, part_row[3] = {2, 2, 2}, one[3] = {1, 2, 2};
    ck_assert(loom__route_contiguous(s3, at, whole_rows, 3, &off) && off == 6);
    ck_assert(!loom__route_contiguous(s3, at, part_row, 3, &off));
    ck_assert(loom__route_contiguous(s3, at, one, 3, &off));
}
END_TEST

/* Two devices, two collectives (tasks 0-1 and 2-3, one per device each): in order on both
 * devices, then device 1's chain swapped, then one collective in a backward chain. */
START_TEST(test_collective_order)
{
    loom__task task[4];
    loom__regst regst[8];
    int out[4] = {4, 5, 6, 7}, in[4] = {0, 1, 2, 3};
    loom__plan pl = {.ndev = 2, .ntasks = 4, .nregst = 8, .task = task, .regst = regst};
    memset(regst, 0, sizeof regst);
    for (int i = 0; i < 4; i++) {
        task[i] = (loom__task){.kind = LOOM__TASK_BOXING, .tensor = -1, .device = i % 2, .chain_pos = i / 2, .n_in = 1,
                               .in = &in[i], .n_out = 1, .out = &out[i]};
        regst[4 + i].part = i % 2;
    }
    char msg[300] = "";
    ck_assert_int_eq(loom__plan_check_collectives(&pl, msg, sizeof msg), 0);
    task[1].chain_pos = 1, task[3].chain_pos = 0;
    ck_assert_int_eq(loom__plan_check_collectives(&pl, msg, sizeof msg), -1);
    ck_assert_msg(strstr(msg, "device 1 reaches the boxing of task 1") != NULL, "%s", msg);
    task[1].chain_pos = 0, task[3].chain_pos = 1;
    task[2].chain = LOOM__CHAIN_BWD;
    ck_assert_int_eq(loom__plan_check_collectives(&pl, msg, sizeof msg), -1);
    ck_assert_msg(strstr(msg, "device 0 has boxing tasks in both") != NULL, "%s", msg);
}
END_TEST

/* The boxing programs of the GPU test (box_cases.c) on CPU devices: each has the one boxing it is
 * for, and gives the values of one device. */
START_TEST(test_box_cases_on_cpu)
{
    static const char *const places[] = {"cpu:0-1", "cpu:0-2"};
    float one[8 * 5], many[8 * 5];
    char plan[4096], want[64], sf[16], st[16];
    for (int rows = 7; rows <= 8; rows++)
        for (int from = 0; from < LT_BOX_KINDS; from++)
            for (int to = 0; to < LT_BOX_KINDS; to++) {
                if (from == to)
                    continue;
                lt_box_run("cpu:0", from, to, rows, one, NULL, 0);
                for (size_t q = 0; q < sizeof places / sizeof places[0]; q++) {
                    lt_box_run(places[q], from, to, rows, many, plan, sizeof plan);
                    loom_sbp_str(lt_box_sbp(from), sf, sizeof sf);
                    loom_sbp_str(lt_box_sbp(to), st, sizeof st);
                    snprintf(want, sizeof want, "%s -> %s", sf, st);
                    ck_assert_msg(strstr(plan, want) != NULL, "%s, %s: no boxing %s in the plan:\n%s", places[q], want, want, plan);
                    for (int i = 0; i < rows * 5; i++)
                        ck_assert_msg(fabsf(one[i] - many[i]) <= 1e-5f * (1 + fabsf(one[i])), "%s, %s, %d rows: element %d: %g, one device %g",
                                      places[q], want, rows, i, many[i], one[i]);
                }
            }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("box_route");
    TCase *tc = tcase_create("routes");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_routes_match_shared_boxing);
    tcase_add_test(tc, test_route_counts);
    tcase_add_test(tc, test_collective_order);
    tcase_add_test(tc, test_box_cases_on_cpu);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
