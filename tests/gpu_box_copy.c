/* The box copy kernel of the boxing between GPUs (loom__cuda_box_copy: the slices, packs and
 * unpacks of runtime/comm/nccl/) on one GPU: random boxes of 1 to 4 dims and elements of 1, 4 and 8
 * bytes against a copy on the host; and the exchanges of route.c (S -> S, S -> B, S -> P on 2 to 5
 * devices, uneven) played on the one GPU as nccl.c plays them, each device's part in its own buffer,
 * boxes packed and unpacked by the kernel where they are not one range, a transfer a copy, against
 * the shared-memory boxing (loom__part_convert). Skipped (exit 77) without a GPU. */
#include <loom/loom.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "box_cases.h"
#include "runtime/comm/route.h"
#include "runtime/devices/cuda/cuda_rt.h"

static char msg[256];
static uint64_t seed = 7;

static uint64_t next(void) { return (seed = seed * 6364136223846793005ULL + 1442695040888963407ULL) >> 33; }

#define CHECK(cond, ...)                                                                                                     \
    do {                                                                                                                     \
        if (!(cond)) {                                                                                                       \
            printf("gpu_box_copy: " __VA_ARGS__);                                                                            \
            printf(" (%s)\n", msg);                                                                                          \
            exit(1);                                                                                                         \
        }                                                                                                                    \
    } while (0)

static void *dev_alloc(size_t bytes)
{
    void *p = NULL;
    CHECK(loom__cuda_alloc(0, bytes ? bytes : 1, &p, msg, sizeof msg) == LOOM_OK, "alloc of %zu bytes", bytes);
    return p;
}

/* Copies bytes (either way) once the kernels launched so far are done. */
static void up(void *d, const void *h, size_t bytes)
{
    CHECK(loom__cuda_stream_sync(NULL, msg, sizeof msg) == LOOM_OK, "kernels");
    CHECK(!bytes || loom__cuda_copy_sync(d, h, bytes, msg, sizeof msg) == LOOM_OK, "copy of %zu bytes", bytes);
}

static void random_boxes(void)
{
    static const size_t sizes[] = {1, 4, 8};
    for (int trial = 0; trial < 300; trial++) {
        const int nd = 1 + (int)(next() % 4);
        const size_t es = sizes[next() % 3];
        int64_t ss[LOOM_MAX_DIMS], ds[LOOM_MAX_DIMS], sat[LOOM_MAX_DIMS], dat[LOOM_MAX_DIMS], ext[LOOM_MAX_DIMS];
        int64_t sn = 1, dn = 1;
        for (int i = 0; i < nd; i++) {
            ext[i] = 1 + (int64_t)(next() % 6);
            ss[i] = ext[i] + (int64_t)(next() % 4), ds[i] = ext[i] + (int64_t)(next() % 4);
            sat[i] = (int64_t)(next() % (uint64_t)(ss[i] - ext[i] + 1));
            dat[i] = (int64_t)(next() % (uint64_t)(ds[i] - ext[i] + 1));
            sn *= ss[i], dn *= ds[i];
        }
        char *hs = malloc((size_t)sn * es), *hd = malloc((size_t)dn * es), *got = malloc((size_t)dn * es);
        CHECK(hs && hd && got, "out of memory");
        for (int64_t i = 0; i < sn * (int64_t)es; i++)
            hs[i] = (char)next();
        for (int64_t i = 0; i < dn * (int64_t)es; i++)
            hd[i] = (char)next();
        void *s = dev_alloc((size_t)sn * es), *d = dev_alloc((size_t)dn * es);
        up(s, hs, (size_t)sn * es);
        up(d, hd, (size_t)dn * es);
        CHECK(loom__cuda_box_copy(d, ds, dat, s, ss, sat, ext, nd, es, NULL, msg, sizeof msg) == LOOM_OK, "box copy launch");
        up(got, d, (size_t)dn * es);
        lt_host_box(hd, ds, dat, hs, ss, sat, ext, nd, es);
        CHECK(!memcmp(got, hd, (size_t)dn * es), "box copy trial %d (%d dims, %zu-byte elements): wrong elements", trial, nd, es);
        loom__cuda_free(s), loom__cuda_free(d);
        free(hs), free(hd), free(got);
    }
}

/* Device d's output of an exchange, as nccl.c's exchange makes it: own box copied, each box from
 * peer q read where q sends it (packed by the kernel when not one range of q's part) and written
 * where d receives it (unpacked by the kernel when not one range of d's part). */
static void play_exchange(const loom__own_route *r, int d, void *const *in, void *out, void *stage)
{
    static const int64_t zero[LOOM_MAX_DIMS];
    const loom__own_route *me = &r[d];
    const int nd = me->nd;
    const size_t es = sizeof(double);
    if (me->copy)
        CHECK(loom__cuda_box_copy(out, me->out_shape, me->local_to, in[d], me->in_shape, me->local.at, me->local.ext, nd, es, NULL,
                                  msg, sizeof msg) == LOOM_OK,
              "local copy");
    for (int k = 0; k < me->nrecv; k++) {
        const loom__route_box *rb = &me->recv[k];
        const loom__own_route *q = &r[rb->peer];
        const loom__route_box *sb = NULL;
        for (int s = 0; s < q->nsend; s++)
            if (q->send[s].peer == d)
                sb = &q->send[s];
        CHECK(sb != NULL, "device %d receives from %d, which sends it nothing", d, rb->peer);
        const size_t bytes = (size_t)loom__route_count(rb->ext, nd) * es;
        int64_t so, dof;
        const char *from = (const char *)in[rb->peer];
        if (loom__route_contiguous(q->in_shape, sb->at, sb->ext, nd, &so)) {
            from += so * (int64_t)es;
        } else {
            CHECK(loom__cuda_box_copy(stage, sb->ext, zero, in[rb->peer], q->in_shape, sb->at, sb->ext, nd, es, NULL, msg, sizeof msg) ==
                      LOOM_OK,
                  "pack");
            from = stage;
        }
        if (loom__route_contiguous(me->out_shape, rb->at, rb->ext, nd, &dof)) {
            up((char *)out + dof * (int64_t)es, from, bytes);
        } else {
            char *st2 = (char *)stage + (1 << 16);
            up(st2, from, bytes);
            CHECK(loom__cuda_box_copy(out, me->out_shape, rb->at, st2, rb->ext, zero, rb->ext, nd, es, NULL, msg, sizeof msg) == LOOM_OK,
                  "unpack");
        }
    }
}

static void exchanges(void)
{
    static const int64_t dims[][3] = {{7, 5, 3}, {8, 2, 6}, {3, 4, 5}, {5, 9, 2}};
    void *stage = dev_alloc(1 << 17);
    int cases = 0;
    for (int n = 2; n <= 5; n++)
        for (size_t c = 0; c < sizeof dims / sizeof dims[0]; c++)
            for (int nd = 2; nd <= 3; nd++)
                for (int f = 0; f < nd; f++)
                    for (int t = 0; t < nd + 2; t++) {
                        const int64_t *shape = dims[c];
                        loom_sbp from = loom_split(f), to = t < nd ? loom_split(t) : t == nd ? loom_broadcast() : loom_partial_sum();
                        if (t == f)
                            continue;
                        loom__value x = {.dtype = LOOM_F64, .ndim = nd}, parts[8], want;
                        memcpy(x.shape, shape, (size_t)nd * sizeof *shape);
                        const int64_t m = loom__numel(&x);
                        x.data = malloc((size_t)m * sizeof(double));
                        CHECK(x.data, "out of memory");
                        for (int64_t i = 0; i < m; i++)
                            ((double *)x.data)[i] = (double)i + 0.25;
                        loom__own_route r[8];
                        void *in[8], *out[8];
                        const loom__value *pp[8];
                        for (int d = 0; d < n; d++) {
                            parts[d] = (loom__value){.dtype = LOOM_F64, .ndim = nd};
                            loom__part_shape(shape, nd, from, n, d, parts[d].shape);
                            parts[d].data = malloc((size_t)loom__numel(&parts[d]) * sizeof(double) + 8);
                            CHECK(parts[d].data, "out of memory");
                            loom__part_cut(&x, from, n, d, &parts[d]);
                            pp[d] = &parts[d];
                            in[d] = dev_alloc((size_t)loom__numel(&parts[d]) * sizeof(double));
                            up(in[d], parts[d].data, (size_t)loom__numel(&parts[d]) * sizeof(double));
                            loom__own_route_make(shape, nd, from, to, n, d, &r[d]);
                            CHECK(r[d].kind == LOOM__ROUTE_EXCHANGE || r[d].kind == LOOM__ROUTE_ALL_GATHER, "route %s",
                                  loom__route_name[r[d].kind]);
                        }
                        for (int d = 0; d < n && r[d].kind == LOOM__ROUTE_EXCHANGE; d++) {
                            want = (loom__value){.dtype = LOOM_F64, .ndim = nd};
                            loom__part_shape(shape, nd, to, n, d, want.shape);
                            const size_t bytes = (size_t)loom__numel(&want) * sizeof(double);
                            int64_t first = 0, size;
                            if (to.kind == LOOM_SBP_SPLIT)
                                loom_split_part(shape[to.axis], n, d, &first, &size);
                            want.data = malloc(bytes + 8);
                            double *got = malloc(bytes + 8);
                            CHECK(want.data && got, "out of memory");
                            loom__part_convert(pp, from, n, to, n, d, first, shape, &want);
                            out[d] = dev_alloc(bytes);
                            memset(got, 0, bytes);
                            up(out[d], got, bytes); /* zeroed, as nccl.c zeroes a P part off device 0 */
                            play_exchange(r, d, in, out[d], stage);
                            up(got, out[d], bytes);
                            CHECK(!memcmp(got, want.data, bytes), "S(%d) -> %s on %d devices, %lld x %lld x %lld (%d dims), device %d: wrong part",
                                  f, t < nd ? "S" : t == nd ? "B" : "P", n, (long long)shape[0], (long long)shape[1], (long long)shape[2],
                                  nd, d);
                            loom__cuda_free(out[d]);
                            free(want.data), free(got);
                            cases++;
                        }
                        for (int d = 0; d < n; d++)
                            loom__cuda_free(in[d]), free(parts[d].data);
                        free(x.data);
                    }
    loom__cuda_free(stage);
    CHECK(cases > 100, "only %d exchanges played", cases);
}

int main(void)
{
    loom_error why = {0};
    if (loom_cuda_device_count(&why) < 1) {
        printf("gpu_box_copy: skipped: no CUDA device%s%s\n", why.msg[0] ? ": " : "", why.msg);
        return 77;
    }
    CHECK(loom__cuda_set_device(0, msg, sizeof msg) == LOOM_OK, "cuda:0");
    random_boxes();
    exchanges();
    printf("gpu_box_copy: passed\n");
    return 0;
}
