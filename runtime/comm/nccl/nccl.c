/* NCCL between GPUs (see nccl.h): communicators made once per group when a plan opens, and each
 * device's boxing run as its route (runtime/comm/route.h) on its stream: the collectives, or the
 * point-to-point transfers of an exchange grouped in one ncclGroupStart/End with the boxes that
 * are not contiguous packed before and unpacked after, in scratch memory. */
#include "runtime/comm/nccl/nccl.h"

#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/comm/route.h"
#include "runtime/devices/cuda/cuda_rt.h"
#include "runtime/runtime.h"

const int loom__nccl_built = 1;

enum { ALIGN = 256 };

/* "nccl: <call>: <reason>", with the communicator's last error where it has one. */
static loom_status fail(ncclResult_t r, const char *call, ncclComm_t comm, char *msg, size_t len)
{
    const char *last = comm ? ncclGetLastError(comm) : NULL;
    snprintf(msg, len, "nccl: %s: %s%s%s", call, ncclGetErrorString(r), last && last[0] ? ": " : "", last && last[0] ? last : "");
    return LOOM_ERR_RUNTIME;
}

#define NCK(call, comm)                                      \
    do {                                                     \
        ncclResult_t r_ = (call);                            \
        if (r_ != ncclSuccess)                               \
            return fail(r_, #call, (comm), msg, len);        \
    } while (0)

/* ---- communicators ----------------------------------------------------------------------------- */

loom_status loom__nccl_open(int n, const int *rank, const int *cuda, int self, int over_job, void **comm, char *msg, size_t len)
{
    /* the id, or why the first member's process could not make one: every process learns either */
    struct {
        int ok;
        ncclUniqueId id;
    } made;
    memset(&made, 0, sizeof made);
    for (int j = 0; j < n; j++)
        comm[j] = NULL;
    if (rank[0] == self) {
        ncclResult_t r = ncclGetUniqueId(&made.id);
        made.ok = r == ncclSuccess;
        if (!made.ok)
            fail(r, "ncclGetUniqueId", NULL, msg, len);
    }
    loom_status s = over_job ? loom__net_bcast(&made, sizeof made, rank[0], msg, len) : LOOM_OK;
    if (s != LOOM_OK)
        return s;
    if (!made.ok) {
        if (rank[0] != self)
            snprintf(msg, len, "nccl: ncclGetUniqueId failed on rank %d", rank[0]);
        return LOOM_ERR_RUNTIME;
    }
    /* every device is set (and so checked) before the group, and a failure on any process is
     * known to every one before any waits in an init: inits queued in a group that ends wait for
     * ranks that never join */
    for (int j = 0; j < n && s == LOOM_OK; j++)
        if (rank[j] == self)
            s = loom__cuda_set_device(cuda[j], msg, len);
    if (over_job)
        s = loom__net_all_ok(s, msg, len);
    if (s != LOOM_OK)
        return s;
    /* several devices of one process join in one group (NCCL's rule for one thread) */
    NCK(ncclGroupStart(), NULL);
    ncclResult_t r = ncclSuccess;
    const char *call = "ncclCommInitRank";
    for (int j = 0; j < n && r == ncclSuccess && s == LOOM_OK; j++)
        if (rank[j] == self && (s = loom__cuda_set_device(cuda[j], msg, len)) == LOOM_OK)
            r = ncclCommInitRank((ncclComm_t *)&comm[j], n, made.id, j);
    ncclResult_t e = ncclGroupEnd();
    if (r == ncclSuccess && e != ncclSuccess)
        r = e, call = "ncclGroupEnd (ncclCommInitRank)";
    if (s == LOOM_OK && r != ncclSuccess)
        s = fail(r, call, NULL, msg, len);
    /* every process fails together, with the failing one's message, or none goes on to the next
     * group while another stopped */
    if (over_job)
        s = loom__net_all_ok(s, msg, len);
    if (s != LOOM_OK)
        for (int j = 0; j < n; j++)
            if (comm[j])
                ncclCommAbort(comm[j]), comm[j] = NULL;
    return s;
}

void loom__nccl_close(void *comm, int abort)
{
    if (!comm)
        return;
    if (abort)
        ncclCommAbort(comm);
    else
        ncclCommDestroy(comm);
}

loom_status loom__nccl_error(void *comm, char *msg, size_t len)
{
    ncclResult_t async = ncclSuccess;
    if (!comm)
        return LOOM_OK;
    NCK(ncclCommGetAsyncError(comm, &async), comm);
    return async == ncclSuccess ? LOOM_OK : fail(async, "a collective in flight", comm, msg, len);
}

size_t loom__nccl_scratch(size_t from_bytes, size_t to_bytes, int n)
{
    size_t pad = (size_t)ALIGN * (2 * (size_t)n + 2);
    if (from_bytes > SIZE_MAX / 4 || to_bytes > SIZE_MAX / 4)
        return SIZE_MAX;
    return from_bytes + to_bytes + pad;
}

/* ---- boxing ------------------------------------------------------------------------------------ */

/* A layout as one level: its own, or on a mesh with one level of one device, the other level. */
static int one_level(const loom__lay *l, loom_sbp *s)
{
    if (l->s.n < 2 || l->mesh[1] == 1)
        *s = l->s.v[0];
    else if (l->mesh[0] == 1)
        *s = l->s.v[1];
    else
        return -1;
    return 0;
}

static int nccl_type(loom_dtype dt, ncclDataType_t *t)
{
    switch (dt) {
    case LOOM_F32:
        *t = ncclFloat32;
        return 0;
    case LOOM_F64:
        *t = ncclFloat64;
        return 0;
    case LOOM_I32:
        *t = ncclInt32;
        return 0;
    case LOOM_I64:
        *t = ncclInt64;
        return 0;
    case LOOM_U8:
        *t = ncclUint8;
        return 0;
    default:
        return -1;
    }
}

/* Room in scratch for `bytes`, aligned; NULL when the plan gave too little (an internal error). */
static char *take(const loom__nccl_ctx *c, size_t *used, size_t bytes)
{
    size_t at = (*used + ALIGN - 1) / ALIGN * ALIGN;
    if (at > c->scratch_bytes || bytes > c->scratch_bytes - at)
        return NULL;
    *used = at + bytes;
    return c->scratch + at;
}

/* The point-to-point transfers of an exchange: boxes that are one range of their part go straight
 * from the input or into the output, the others through scratch (packed before the group,
 * unpacked after it). */
static loom_status exchange(const loom__own_route *r, const loom__nccl_ctx *c, const loom__value *in, loom__value *out, size_t es,
                            char *msg, size_t len)
{
    static const int64_t zero[LOOM_MAX_DIMS];
    const int nd = r->nd;
    char *send[LOOM__MAX_DEVICES], *recv[LOOM__MAX_DEVICES];
    int staged[LOOM__MAX_DEVICES];
    size_t used = 0;
    if (r->copy && loom__cuda_box_copy(out->data, r->out_shape, r->local_to, in->data, r->in_shape, r->local.at, r->local.ext, nd,
                                       es, c->stream, msg, len) != LOOM_OK)
        return LOOM_ERR_RUNTIME;
    for (int k = 0; k < r->nsend; k++) {
        const loom__route_box *b = &r->send[k];
        int64_t off;
        if (loom__route_contiguous(r->in_shape, b->at, b->ext, nd, &off)) {
            send[k] = (char *)in->data + (size_t)off * es;
            continue;
        }
        if (!(send[k] = take(c, &used, (size_t)loom__route_count(b->ext, nd) * es)))
            return snprintf(msg, len, "the boxing's scratch is too small (internal error)"), LOOM_ERR_RUNTIME;
        if (loom__cuda_box_copy(send[k], b->ext, zero, in->data, r->in_shape, b->at, b->ext, nd, es, c->stream, msg, len) != LOOM_OK)
            return LOOM_ERR_RUNTIME;
    }
    for (int k = 0; k < r->nrecv; k++) {
        const loom__route_box *b = &r->recv[k];
        int64_t off;
        staged[k] = !loom__route_contiguous(r->out_shape, b->at, b->ext, nd, &off);
        recv[k] = staged[k] ? take(c, &used, (size_t)loom__route_count(b->ext, nd) * es) : (char *)out->data + (size_t)off * es;
        if (!recv[k])
            return snprintf(msg, len, "the boxing's scratch is too small (internal error)"), LOOM_ERR_RUNTIME;
    }
    ncclComm_t comm = c->comm;
    cudaStream_t stream = c->stream;
    NCK(ncclGroupStart(), comm);
    ncclResult_t e = ncclSuccess;
    const char *call = "ncclSend";
    for (int k = 0; k < r->nsend && e == ncclSuccess; k++)
        e = ncclSend(send[k], (size_t)loom__route_count(r->send[k].ext, nd) * es, ncclUint8, r->send[k].peer, comm, stream);
    for (int k = 0; k < r->nrecv && e == ncclSuccess; k++)
        e = ncclRecv(recv[k], (size_t)loom__route_count(r->recv[k].ext, nd) * es, ncclUint8, r->recv[k].peer, comm, stream),
        call = "ncclRecv";
    ncclResult_t g = ncclGroupEnd();
    if (e != ncclSuccess || g != ncclSuccess)
        return fail(e != ncclSuccess ? e : g, e != ncclSuccess ? call : "ncclGroupEnd (send and receive)", comm, msg, len);
    for (int k = 0; k < r->nrecv; k++)
        if (staged[k] && loom__cuda_box_copy(out->data, r->out_shape, r->recv[k].at, recv[k], r->recv[k].ext, zero, r->recv[k].ext,
                                             nd, es, c->stream, msg, len) != LOOM_OK)
            return LOOM_ERR_RUNTIME;
    return LOOM_OK;
}

static loom_status nccl_box(const loom__comm_box *b, loom__value *out, char *msg, size_t len)
{
    const loom__nccl_ctx *c = b->ctx;
    const loom__value *in = b->parts[0];
    loom_sbp from = b->from, to = b->to;
    if (in->rowptr) {
        snprintf(msg, len, "boxing a sparse (CSR) value between GPUs is not built yet");
        return LOOM_ERR_UNSUPPORTED;
    }
    if ((b->lay_from && one_level(b->lay_from, &from)) || (b->lay_to && one_level(b->lay_to, &to))) {
        char f[40], t[40];
        loom_nd_sbp_str(&b->lay_from->s, f, sizeof f);
        loom_nd_sbp_str(&b->lay_to->s, t, sizeof t);
        snprintf(msg, len, "boxing %s -> %s on a 2-D mesh of GPUs is not built yet (meshes with one device on a level are)", f, t);
        return LOOM_ERR_UNSUPPORTED;
    }
    ncclDataType_t type;
    if (nccl_type(out->dtype, &type)) {
        snprintf(msg, len, "no NCCL type for dtype %s", loom_dtype_name(out->dtype));
        return LOOM_ERR_UNSUPPORTED;
    }
    loom__own_route *r = malloc(sizeof *r);
    if (!r)
        return snprintf(msg, len, "out of memory"), LOOM_ERR_NOMEM;
    loom__own_route_make(b->logical, out->ndim, from, to, b->n_from, b->part, r);
    const size_t es = loom_dtype_size(out->dtype);
    const int64_t nin = loom__route_count(r->in_shape, r->nd), nout = loom__route_count(r->out_shape, r->nd);
    ncclComm_t comm = c->comm;
    cudaStream_t stream = c->stream;
    loom_status s = LOOM_OK;
    if (r->zero)
        s = loom__cuda_zero_async(out->data, (size_t)nout * es, stream, msg, len);
    size_t used = 0;
    char *whole = NULL;
    ncclResult_t e = ncclSuccess;
    const char *call = NULL;
    switch (s == LOOM_OK ? r->kind : LOOM__ROUTE_NONE) {
    case LOOM__ROUTE_NONE:
        break;
    case LOOM__ROUTE_LOCAL:
        if (r->copy)
            s = loom__cuda_box_copy(out->data, r->out_shape, r->local_to, in->data, r->in_shape, r->local.at, r->local.ext, r->nd, es,
                                    stream, msg, len);
        break;
    case LOOM__ROUTE_ALL_REDUCE:
        e = ncclAllReduce(in->data, out->data, (size_t)nin, type, ncclSum, comm, stream), call = "ncclAllReduce";
        break;
    case LOOM__ROUTE_REDUCE_SCATTER:
        e = ncclReduceScatter(in->data, out->data, (size_t)nout, type, ncclSum, comm, stream), call = "ncclReduceScatter";
        break;
    case LOOM__ROUTE_REDUCE_SLICE:
        if (!(whole = take(c, &used, (size_t)nin * es))) {
            s = LOOM_ERR_RUNTIME;
            snprintf(msg, len, "the boxing's scratch is too small (internal error)");
            break;
        }
        e = ncclAllReduce(in->data, whole, (size_t)nin, type, ncclSum, comm, stream), call = "ncclAllReduce";
        if (e == ncclSuccess)
            s = loom__cuda_box_copy(out->data, r->out_shape, r->local_to, whole, r->in_shape, r->local.at, r->local.ext, r->nd, es,
                                    stream, msg, len);
        break;
    case LOOM__ROUTE_ALL_GATHER:
        e = ncclAllGather(in->data, out->data, (size_t)nin, type, comm, stream), call = "ncclAllGather";
        break;
    case LOOM__ROUTE_EXCHANGE:
        s = exchange(r, c, in, out, es, msg, len);
        break;
    default:
        s = LOOM_ERR_RUNTIME;
        snprintf(msg, len, "unknown route (internal error)");
    }
    free(r);
    if (e != ncclSuccess)
        return fail(e, call, comm, msg, len);
    return s;
}

const loom__comm_ops loom__comm_nccl = {.name = "NCCL", .box = nccl_box};
