/* The actor protocol: registers, ready queues, acting, REQ/ACK/EOD, initial emits and deferred
 * completion. Everything here runs on the actor's own thread (creation, layout and reset run on the
 * caller's thread while no worker exists), so actor state needs no atomics. */
#define LOOM__RT_PRIVATE
#include "runtime/runtime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LOOM__REC_READY = 1, LOOM__REC_INITIAL = 2, LOOM__REC_HELD = 4 /* its inputs stay for the next act */ };

/* ---- creation ------------------------------------------------------------------------------ */

loom_status loom__actor_new(const loom__actor_desc *d, loom__actor **out, char *msg, size_t msg_size)
{
    *out = NULL;
    char idname[40];
    snprintf(idname, sizeof idname, "actor %#" PRIx64, d->id);
    const char *name = d->name ? d->name : idname;
    if (d->nin < 0 || d->nin > LOOM__RT_MAX_SLOTS || d->nout < 0 || d->nout > LOOM__RT_MAX_SLOTS) {
        snprintf(msg, msg_size, "loom__rt_add_actor: %s: nin %d, nout %d (each 0 .. %d)", name, d->nin, d->nout,
                 LOOM__RT_MAX_SLOTS);
        return LOOM_ERR_INVALID;
    }
    if (d->initial_emits < 0 || d->max_deferred < 0 || d->max_deferred > LOOM__RT_MAX_REGST) {
        snprintf(msg, msg_size, "loom__rt_add_actor: %s: initial_emits %d, max_deferred %d", name, d->initial_emits,
                 d->max_deferred);
        return LOOM_ERR_INVALID;
    }
    if (d->hold < 0 || d->hold > LOOM__RT_MAX_REGST || d->group < 0 || (d->gather && (d->nin == 0 || d->hold > 1)) ||
        (d->max_deferred > 0 && (d->hold > 1 || d->gather))) {
        snprintf(msg, msg_size, "loom__rt_add_actor: %s: hold %d, group %d, gather %d with %d inputs and max_deferred %d "
                 "(hold 0 .. %d, group >= 0; gather needs an input and no hold; neither defers)", name, d->hold, d->group,
                 d->gather, d->nin, d->max_deferred, LOOM__RT_MAX_REGST);
        return LOOM_ERR_INVALID;
    }
    if (d->remote && (d->hold > 1 || d->group > 1 || d->gather || d->in_place)) {
        snprintf(msg, msg_size, "loom__rt_add_actor: %s: a remote actor with hold %d, group %d, gather %d, in_place %d (it acts "
                 "on its own rank, which holds its groups of pieces; here it has none)", name, d->hold, d->group, d->gather, d->in_place);
        return LOOM_ERR_INVALID;
    }
    if (d->initial_emits > 0 && d->nin == 0) {
        snprintf(msg, msg_size, "loom__rt_add_actor: %s: initial emits need an input (a source emits anyway)", name);
        return LOOM_ERR_INVALID;
    }
    for (int j = 0; j < d->nout && d->out; j++)
        if (d->out[j].regst_num < 0 || d->out[j].regst_num > LOOM__RT_MAX_REGST) {
            snprintf(msg, msg_size, "loom__rt_add_actor: %s: register %d has regst_num %d (1 .. %d)", name, j,
                     d->out[j].regst_num, LOOM__RT_MAX_REGST);
            return LOOM_ERR_INVALID;
        }

    loom__actor *a = calloc(1, sizeof *a);
    if (!a)
        goto nomem;
    *a = (loom__actor){.id = d->id, .fn = d->act, .ctx = d->ctx, .nin = d->nin, .nout = d->nout,
                       .initial_emits = d->initial_emits, .max_deferred = d->max_deferred, .hold = d->hold > 1 ? d->hold : 1,
                       .group = d->group > 1 ? d->group : 1, .gather = d->gather != 0, .in_place = d->in_place != 0,
                       .remote = d->remote};
    a->name = strdup(name);
    a->in = calloc((size_t)d->nin + 1, sizeof *a->in);
    a->out = calloc((size_t)d->nout + 1, sizeof *a->out);
    if (!a->name || !a->in || !a->out)
        goto nomem;
    for (int j = 0; j < d->nout; j++) {
        loom__rt_out *o = &a->out[j];
        int n = d->out && d->out[j].regst_num ? d->out[j].regst_num : 2;
        o->regst_num = (uint32_t)n;
        o->bufs = calloc((size_t)n, sizeof *o->bufs);
        o->pending = calloc((size_t)n, sizeof *o->pending);
        o->freeq = calloc((size_t)n, sizeof *o->freeq);
        if (!o->bufs || !o->pending || !o->freeq)
            goto nomem;
        if (d->out && d->out[j].bufs)
            memcpy(o->bufs, d->out[j].bufs, (size_t)n * sizeof *o->bufs);
    }
    *out = a;
    return LOOM_OK;
nomem:
    loom__actor_free(a);
    snprintf(msg, msg_size, "loom__rt_add_actor: %s: out of memory", name);
    return LOOM_ERR_NOMEM;
}

loom_status loom__actor_layout(loom__actor *a)
{
    size_t nin = (size_t)a->nin, nout = (size_t)a->nout;
    for (size_t i = 0; i < nin; i++)
        if (!(a->in[i].q = calloc(a->in[i].cap, sizeof *a->in[i].q)))
            return LOOM_ERR_NOMEM;
    a->nrec = a->max_deferred > 0 ? a->max_deferred : 1;
    size_t nrec = (size_t)a->nrec;
    a->rec_in = calloc(nrec * nin + 1, sizeof *a->rec_in);
    a->rec_out = calloc(nrec * nout + 1, sizeof *a->rec_out);
    a->rec_piece = calloc(nrec, sizeof *a->rec_piece);
    a->rec_flags = calloc(nrec, sizeof *a->rec_flags);
    a->in_ptr = calloc(nin + 1, sizeof *a->in_ptr);
    a->out_ptr = calloc(nout + 1, sizeof *a->out_ptr);
    a->in_piece = calloc(nin + 1, sizeof *a->in_piece);
    if (!a->rec_in || !a->rec_out || !a->rec_piece || !a->rec_flags || !a->in_ptr || !a->out_ptr || !a->in_piece)
        return LOOM_ERR_NOMEM;
    return LOOM_OK;
}

void loom__actor_free(loom__actor *a)
{
    if (!a)
        return;
    for (int i = 0; a->in && i < a->nin; i++)
        free(a->in[i].q);
    for (int j = 0; a->out && j < a->nout; j++) {
        free(a->out[j].bufs);
        free(a->out[j].pending);
        free(a->out[j].freeq);
        free(a->out[j].cons);
    }
    free(a->in);
    free(a->out);
    free(a->rec_in);
    free(a->rec_out);
    free(a->rec_piece);
    free(a->rec_flags);
    free(a->in_ptr);
    free(a->out_ptr);
    free(a->in_piece);
    free(a->name);
    free(a);
}

void loom__actor_reset(loom__actor *a, int64_t first_piece)
{
    for (int i = 0; i < a->nin; i++) {
        a->in[i].head = a->in[i].n = 0;
        a->in[i].eod = 0;
    }
    for (int j = 0; j < a->nout; j++) {
        loom__rt_out *o = &a->out[j];
        for (uint32_t b = 0; b < o->regst_num; b++) {
            o->pending[b] = 0;
            o->freeq[b] = b;
        }
        o->free_head = 0;
        o->free_n = o->regst_num;
    }
    a->rec_head = a->rec_n = 0;
    a->done = a->ending = 0;
    a->to_emit = a->initial_emits;
    a->held = 0;
    a->next_piece = first_piece;
    a->acts = 0;
}

/* ---- sending ------------------------------------------------------------------------------- */

static inline void send(loom__rt_thread *t, const loom__rt_peer *to, uint8_t kind, uint64_t src, uint32_t buf,
                        int64_t piece)
{
    loom__rt_msg m = {.dst = to->id, .src = src, .piece = piece, .buf = buf, .reg = to->reg, .kind = kind};
    loom__rt_send(t, to->thread, &m);
}

/* Acks the oldest version queued on input i and drops it. */
static void ack_head(loom__rt_thread *t, loom__actor *a, loom__rt_in *in)
{
    loom__rt_ver v = in->q[in->head];
    in->head = in->head + 1 == in->cap ? 0 : in->head + 1;
    in->n--;
    send(t, &in->producer, LOOM__MSG_ACK, a->id, v.buf, v.piece);
}

static void finish(loom__rt_thread *t, loom__actor *a)
{
    a->done = 1;
    for (int j = 0; j < a->nout; j++)
        for (uint32_t c = 0; c < a->out[j].ncons; c++)
            send(t, &a->out[j].cons[c], LOOM__MSG_EOD, a->id, 0, a->next_piece);
    /* Versions left on other inputs go back now, so producers that run longer than this actor
     * (a second source with more pieces) are never stuck waiting for a buffer. */
    for (int i = 0; i < a->nin; i++)
        while (a->in[i].n)
            ack_head(t, a, &a->in[i]);
    loom__rt_actor_done(t->rt);
}

/* Sends the REQs and ACKs of record r and releases it; records complete in order. */
static void complete(loom__rt_thread *t, loom__actor *a, int r)
{
    const uint32_t *bout = a->rec_out + (size_t)r * (size_t)a->nout;
    int64_t piece = a->rec_piece[r];
    for (int j = 0; j < a->nout; j++) {
        loom__rt_out *o = &a->out[j];
        uint32_t b = bout[j];
        if (o->ncons == 0) { /* nobody reads it: free at once */
            o->freeq[(o->free_head + o->free_n++) % o->regst_num] = b;
            continue;
        }
        o->pending[b] = o->ncons;
        for (uint32_t c = 0; c < o->ncons; c++)
            send(t, &o->cons[c], LOOM__MSG_REQ, a->id, b, piece);
    }
    if (!(a->rec_flags[r] & (LOOM__REC_INITIAL | LOOM__REC_HELD))) {
        const loom__rt_ver *vin = a->rec_in + (size_t)r * (size_t)a->nin;
        for (int i = 0; i < a->nin; i++)
            send(t, &a->in[i].producer, LOOM__MSG_ACK, a->id, vin[i].buf, vin[i].piece);
    }
}

static void flush_records(loom__rt_thread *t, loom__actor *a)
{
    while (a->rec_n > 0 && (a->rec_flags[a->rec_head] & LOOM__REC_READY)) {
        complete(t, a, a->rec_head);
        a->rec_head = a->rec_head + 1 == a->nrec ? 0 : a->rec_head + 1;
        a->rec_n--;
    }
}

/* ---- acting -------------------------------------------------------------------------------- */

/* Puts the output buffers an act took (bout) back on their free lists, first in line again. */
static void untake_outputs(loom__actor *a, const uint32_t *bout)
{
    for (int j = 0; j < a->nout; j++) {
        loom__rt_out *o = &a->out[j];
        o->free_head = o->free_head == 0 ? o->regst_num - 1 : o->free_head - 1;
        o->freeq[o->free_head] = bout[j];
        o->free_n++;
    }
}

/* One act: inputs popped, one buffer of each output taken, the callback run. Returns 0 when the
 * run must stop (a broken protocol); a failing callback ends the actor and drains the run. */
static int act(loom__rt_thread *t, loom__actor *a, int initial)
{
    loom__rt *rt = t->rt;
    int r = a->rec_head + a->rec_n;
    if (r >= a->nrec)
        r -= a->nrec;
    loom__rt_ver *vin = a->rec_in + (size_t)r * (size_t)a->nin;
    uint32_t *bout = a->rec_out + (size_t)r * (size_t)a->nout;

    int64_t piece;
    const int keep = !initial && a->nin > 0 && a->held + 1 < a->hold; /* the inputs serve another act */
    if (initial || a->nin == 0) {
        piece = a->next_piece;
        for (int i = 0; i < a->nin; i++) {
            a->in_ptr[i] = NULL;
            a->in_piece[i] = -1;
        }
    } else {
        piece = a->in[0].q[a->in[0].head].piece;
        for (int i = 0; i < a->nin; i++) {
            loom__rt_in *in = &a->in[i];
            loom__rt_ver v = in->q[in->head];
            if (!keep) {
                in->head = in->head + 1 == in->cap ? 0 : in->head + 1;
                in->n--;
            }
            vin[i] = v;
            a->in_ptr[i] = in->bufs[v.buf];
            a->in_piece[i] = v.piece;
            /* The protocol keeps pieces aligned; this costs one compare per input. */
            if (v.piece != piece) {
                loom__rt_fail(rt, LOOM_ERR_RUNTIME, "%s: input %d carries piece %" PRId64 ", input 0 piece %" PRId64,
                              a->name, i, v.piece, piece);
                return 0;
            }
        }
    }
    for (int j = 0; j < a->nout; j++) {
        loom__rt_out *o = &a->out[j];
        uint32_t b = o->freeq[o->free_head];
        o->free_head = o->free_head + 1 == o->regst_num ? 0 : o->free_head + 1;
        o->free_n--;
        bout[j] = b;
        a->out_ptr[j] = o->bufs[b];
    }

    const int repeat = initial || a->nin == 0 ? 0 : a->held;
    /* a gathering actor emits on the last piece of each group only, the outputs carrying its first */
    const int emits = !a->gather || initial || (piece + 1) % a->group == 0;
    int64_t out_piece = initial || a->nin == 0 ? piece : piece + a->initial_emits + repeat;
    if (a->gather && !initial)
        out_piece = piece + 1 - a->group + a->initial_emits;
    t->msg[0] = 0;
    loom__act args = {.rt = rt, .id = a->id, .name = a->name, .thread = (int)t->index, .piece = piece,
                      .out_piece = out_piece, .initial = initial, .nin = a->nin, .nout = a->nout, .in = a->in_ptr,
                      .in_piece = a->in_piece, .out = a->out_ptr, .out_buf = bout, .msg = t->msg,
                      .msg_size = sizeof t->msg, .can_defer = a->max_deferred > 0, .repeat = repeat};
    loom_status st = LOOM_OK;
    if (rt->tracing) {
        int64_t t0 = loom__now_ns();
        if (a->fn)
            st = a->fn(a->ctx, &args);
        loom__trace_add(&t->trace, a->index, piece, initial, t0, loom__now_ns());
    } else if (a->fn) {
        st = a->fn(a->ctx, &args);
    }
    a->acts++;
    if (st != LOOM_OK) {
        /* The run drains (loom__rt_drain): this actor ends as if its data had ended at this piece.
         * The failed act's inputs go back to their producers and its outputs to the free lists,
         * so that nothing waits on them; every piece that does not need this act still completes. */
        t->msg[sizeof t->msg - 1] = 0;
        loom__rt_drain(rt, st, "%s (piece %" PRId64 "): %s", a->name, piece, t->msg[0] ? t->msg : loom_status_str(st));
        if (!initial)
            for (int i = 0; i < a->nin; i++) {
                if (keep) { /* still queued: dropped with its ack */
                    ack_head(t, a, &a->in[i]);
                    continue;
                }
                send(t, &a->in[i].producer, LOOM__MSG_ACK, a->id, vin[i].buf, vin[i].piece);
            }
        untake_outputs(a, bout);
        a->ending = 1;
        return 1;
    }
    if (!initial && a->nin > 0)
        a->held = keep ? a->held + 1 : 0;
    if (!emits) { /* an act inside a group: its inputs are done with, its outputs not yet made */
        untake_outputs(a, bout);
        for (int i = 0; i < a->nin; i++)
            send(t, &a->in[i].producer, LOOM__MSG_ACK, a->id, vin[i].buf, vin[i].piece);
        return 1;
    }

    if (initial) {
        a->to_emit--;
        a->next_piece++;
    } else if (a->nin == 0) {
        if (args.eod) { /* nothing produced: give the buffers back */
            untake_outputs(a, bout);
            a->ending = 1;
            return 1;
        }
        a->next_piece++;
    } else if (args.eod) {
        loom__rt_fail(rt, LOOM_ERR_INVALID, "%s (piece %" PRId64 "): only sources may end the data", a->name, piece);
        return 0;
    }

    a->rec_piece[r] = out_piece;
    a->rec_flags[r] = (uint8_t)((args.deferred ? 0 : LOOM__REC_READY) | (initial ? LOOM__REC_INITIAL : 0) |
                                (keep ? LOOM__REC_HELD : 0));
    a->rec_n++;
    if (args.deferred)
        atomic_fetch_add_explicit(&rt->deferred, 1, memory_order_relaxed);
    else
        flush_records(t, a);
    return 1;
}

/* Acts while the actor can; finishes it once no act can follow. */
static void try_act(loom__rt_thread *t, loom__actor *a)
{
    loom__rt *rt = t->rt;
    while (!a->done) {
        if (loom__rt_stopping(rt))
            return;
        int initial = a->to_emit > 0;
        if (!a->ending && !initial) {
            if (a->nin == 0) {
                if (a->next_piece >= rt->run_end || (loom__rt_draining(rt) && a->next_piece % a->group == 0))
                    a->ending = 1; /* a failure or a cancel: the pieces (groups) begun complete, no new one */
            } else {
                for (int i = 0; i < a->nin; i++)
                    if (a->in[i].n == 0) {
                        if (!a->in[i].eod)
                            return;
                        a->ending = 1; /* inputs are aligned: no act can follow */
                        break;
                    }
            }
        }
        if (a->ending) {
            if (a->rec_n == 0)
                finish(t, a);
            return;
        }
        if (a->rec_n == a->nrec)
            return;
        /* in place: a new input version waits until nobody reads what the actor emitted */
        const uint32_t need_all = a->in_place && !initial && a->held == 0;
        for (int j = 0; j < a->nout; j++)
            if (a->out[j].free_n == 0 || (need_all && a->out[j].free_n < a->out[j].regst_num))
                return;
        if (!act(t, a, initial))
            return;
    }
}

void loom__actor_start(loom__rt_thread *t, loom__actor *a) { try_act(t, a); }

void loom__actor_on_msg(loom__rt_thread *t, loom__actor *a, const loom__rt_msg *m)
{
    switch (m->kind) {
    case LOOM__MSG_REQ: {
        loom__rt_in *in = &a->in[m->reg];
        if (a->done) { /* nothing will read it: hand it straight back */
            send(t, &in->producer, LOOM__MSG_ACK, a->id, m->buf, m->piece);
            return;
        }
        assert(in->n < in->cap && "more versions in flight than the producer has buffers");
        uint32_t k = in->head + in->n;
        in->q[k >= in->cap ? k - in->cap : k] = (loom__rt_ver){.piece = m->piece, .buf = m->buf};
        in->n++;
        break;
    }
    case LOOM__MSG_ACK: {
        loom__rt_out *o = &a->out[m->reg];
        assert(o->pending[m->buf] > 0 && "ACK for a buffer that owes none");
        if (--o->pending[m->buf] == 0) {
            uint32_t k = o->free_head + o->free_n++;
            o->freeq[k >= o->regst_num ? k - o->regst_num : k] = m->buf;
        }
        if (a->done)
            return;
        break;
    }
    case LOOM__MSG_EOD:
        a->in[m->reg].eod = 1;
        if (a->done)
            return;
        break;
    case LOOM__MSG_DONE: { /* the oldest act still deferred has completed */
        int r = a->rec_head, k = 0;
        while (k < a->rec_n && (a->rec_flags[r] & LOOM__REC_READY)) {
            r = r + 1 == a->nrec ? 0 : r + 1;
            k++;
        }
        assert(k < a->rec_n && "completion without a deferred act");
        if (k == a->rec_n)
            return;
        a->rec_flags[r] |= LOOM__REC_READY;
        flush_records(t, a);
        break;
    }
    default:
        assert(0 && "unknown message kind");
        return;
    }
    try_act(t, a);
}

loom_status loom__act_defer(loom__act *a)
{
    if (!a->can_defer)
        return LOOM_ERR_INVALID;
    a->deferred = 1;
    return LOOM_OK;
}
