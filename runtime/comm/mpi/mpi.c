/* The communication thread over MPI: one per rank and runtime, it carries the messages of the
 * actors whose other end is on another rank, and the register buffers their REQs announce.
 *
 * Wire: every message is one control record (tag CTL) of a kind: a runtime message (REQ, ACK,
 * EOD), a drain (a rank's run failed or was cancelled: every rank drains, the error names that
 * rank), an abort (a rank stopped at once: every rank stops), a heartbeat, DONE (this rank's actors
 * are all done) and FIN (every rank this one talks to is done). A REQ whose consumer is the
 * register's first on that rank carries the wire header of the buffer (loom__rt_wire) and is
 * followed by its ranges (tag DATA); the receiver posts their receives into its mirror of the
 * buffer when the record arrives, so a large send never waits on a receive that waits on it.
 * Records from one rank are handled in order (one receive posted per peer), and what they ask is
 * delivered in that order once the data before it has landed.
 *
 * Ending a run: when this rank's workers have ended, the REQs still queued for them are acked
 * (ack_leftovers in run.c), then every REQ that still comes is acked here; DONE goes to every
 * peer, and once every peer is DONE, FIN. A peer's receive is not posted again after its FIN, so
 * what it sends for the next run waits in MPI for that run. A peer that sends nothing (not even
 * its heartbeat, every second) for LOOM_NET_TIMEOUT seconds (default 10) stops the run: it died
 * or hangs, and nothing more is sent to it. Before anything came from it in a run (each run begins
 * with a heartbeat) the wait is three times as long: it may still be busy before the run (the
 * program's own work between runs is not the same on every rank).
 *
 * All MPI calls of a run are on this thread; loom_dist_init and the plan check call MPI from the
 * caller's thread, never during a run of the same runtime. The thread never spins for long: idle,
 * it sleeps on its event count (a worker that posts to it wakes it at once) with a timeout that
 * grows from 4 to 100 microseconds, so that messages from other ranks are seen that soon. With
 * LOOM_NET_YIELD_US set, it first polls for that many microseconds after it last had something to
 * do, yielding its core to any thread that wants it (sched_yield): a thread woken from a timed
 * sleep on a loaded machine may wait milliseconds for a core, which polling avoids, but the
 * polling takes time from the ranks' compute (bench/mpi.c measures both; sleeping is the default,
 * as measured in bench/README.md). */
#define _GNU_SOURCE
#define LOOM__RT_PRIVATE
#include "runtime/runtime.h"

#include <loom/dist.h>

#include <inttypes.h>
#include <mpi.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

enum { TAG_CTL = 7301, TAG_DATA = 7302, TAG_COLL = 7303, TAG_COLL_DATA = 7304 };
enum { NET_MSG = 1, NET_DRAIN, NET_ABORT, NET_BEAT, NET_DONE, NET_FIN };
enum { BEAT_NS = 1000000000, SPIN_POLLS = 64, SLEEP_MIN_NS = 4000, SLEEP_MAX_NS = 100000 };
enum { WHY_LEN = 512 };

/* ---- the job: MPI initialised once per process ------------------------------------------------ */

/* MPI is process-wide; so is what Loom knows of it. */
static struct {
    int ready, ours, rank, size;
    int broken; /* a run stopped every rank at once, a rank may be dead: no collective can complete */
    char why[WHY_LEN]; /* why it is broken */
    int64_t coll; /* the job's collectives so far: every rank calls the same ones in the same order */
    MPI_Comm comm; /* Loom's own copy of MPI_COMM_WORLD: its tags never meet the program's */
    _Atomic int64_t sent; /* bytes of register buffers sent (loom__net_data_sent) */
} job = {.size = 1};

int64_t loom__net_data_sent(void) { return atomic_load(&job.sent); }

static void mpi_msg(int code, char *buf, size_t len)
{
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(code, s, &n) != MPI_SUCCESS)
        snprintf(s, sizeof s, "MPI error %d", code);
    snprintf(buf, len, "%s", s);
}

loom_status loom_dist_init(loom_error *err)
{
    loom_error e = LOOM_ERROR_INIT;
    if (!job.ready) {
        int init = 0, fin = 0, provided = 0;
        MPI_Initialized(&init);
        MPI_Finalized(&fin);
        if (fin) {
            e.status = LOOM_ERR_RUNTIME;
            snprintf(e.msg, sizeof e.msg, "loom_dist_init: MPI was finalised already");
        } else if (!init) {
            int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
            if (rc != MPI_SUCCESS) {
                e.status = LOOM_ERR_RUNTIME;
                mpi_msg(rc, e.msg, sizeof e.msg);
            }
            job.ours = rc == MPI_SUCCESS;
            if (job.ours) /* a program that never calls loom_dist_finalize still ends MPI properly */
                atexit(loom_dist_finalize);
        } else {
            MPI_Query_thread(&provided);
        }
        if (e.status == LOOM_OK && provided < MPI_THREAD_SERIALIZED) {
            e.status = LOOM_ERR_UNSUPPORTED;
            snprintf(e.msg, sizeof e.msg,
                     "loom_dist_init: MPI gives thread level %d; Loom's communication thread needs "
                     "MPI_THREAD_SERIALIZED or more (initialise MPI with MPI_Init_thread)", provided);
        }
        if (e.status == LOOM_OK) {
            MPI_Comm_dup(MPI_COMM_WORLD, &job.comm);
            MPI_Comm_set_errhandler(job.comm, MPI_ERRORS_RETURN);
            MPI_Comm_rank(job.comm, &job.rank);
            MPI_Comm_size(job.comm, &job.size);
            job.ready = 1;
        }
    }
    if (err)
        *err = e;
    return e.status;
}

int loom_dist_rank(void) { return job.rank; }
int loom_dist_size(void) { return job.size; }
int loom_dist_available(void) { return 1; }
int loom__net_ready(void) { return job.ready; }

void loom_dist_finalize(void)
{
    if (!job.ready)
        return;
    if (!job.broken)
        MPI_Comm_free(&job.comm);
    job.ready = 0;
    job.rank = 0;
    job.size = 1;
    int fin = 0;
    MPI_Finalized(&fin);
    if (job.ours && !fin && !job.broken) /* with a rank gone, MPI_Finalize would wait for it */
        MPI_Finalize();
    job.ours = 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A setting of the communication thread from the environment: its value in nanoseconds when
 * unset, the numbers it takes (lo itself too unless lo_open) and the nanoseconds of one. */
typedef struct net_setting {
    const char *name, *expected;
    int64_t unset_ns;
    double lo, hi, unit_ns;
    int lo_open;
} net_setting;
/* how long a peer may send nothing: it died or hangs (10 s unless set) */
static const net_setting NET_TIMEOUT = {"LOOM_NET_TIMEOUT", "seconds above 0, at most 86400", 10000000000, 0, 86400, 1e9, 1};
/* how long it polls before it sleeps (0 unless set: it sleeps as soon as it is idle) */
static const net_setting NET_YIELD = {"LOOM_NET_YIELD_US", "microseconds from 0 to 1000000", 0, 0, 1e6, 1e3, 0};

/* s's value in nanoseconds; -1 when it is set to what s does not take. */
static int64_t net_ns(const net_setting *s)
{
    const char *v = getenv(s->name);
    if (!v || !*v)
        return s->unset_ns;
    char *end;
    double x = strtod(v, &end);
    if (*end || !(x >= s->lo && x <= s->hi) || (s->lo_open && x == s->lo))
        return -1;
    return (int64_t)(x * s->unit_ns);
}

/* s's value for a run of rt; a bad one drains every rank with LOOM_ERR_INVALID naming it, and the
 * run ends as though it were unset. */
static int64_t net_ns_for_run(loom__rt *rt, const net_setting *s)
{
    int64_t ns = net_ns(s);
    if (ns >= 0)
        return ns;
    loom__rt_drain(rt, LOOM_ERR_INVALID, "%s is '%.64s': expected %s", s->name, getenv(s->name), s->expected);
    return s->unset_ns;
}

/* Refuses a collective once a rank may be gone, or the ranks went different ways. */
static loom_status check_job(char *msg, size_t len)
{
    if (!job.broken)
        return LOOM_OK;
    snprintf(msg, len, "%s: the processes can no longer work together", job.why);
    return LOOM_ERR_RUNTIME;
}

/* Marks the job broken for why (the first reason stays) and fails with it. */
static loom_status break_job(char *msg, size_t len, const char *why)
{
    if (!job.broken)
        snprintf(job.why, sizeof job.why, "%s", why);
    job.broken = 1;
    snprintf(msg, len, "%s", why);
    return LOOM_ERR_RUNTIME;
}

/* The job's collectives (the plan check, the pull of parameters) run on the callers' threads
 * between runs, as point-to-point messages waited for with a limit: a rank that died or hangs, or
 * whose program went another way (a branch taken on one rank only, then a collective the others
 * never call), is named instead of waited for forever. Each begins with a header: the
 * collective's number in the job and what it is, so that a rank at another collective is named
 * as such. The limit is three times LOOM_NET_TIMEOUT: a rank may still be busy with the program's
 * own work before it. */
enum { COLL_PLAN = 1, COLL_BCAST, COLL_OK };
typedef struct coll_head {
    int64_t seq;
    int32_t what, pad;
    uint64_t value; /* the plan's hash; a broadcast's bytes */
} coll_head;

static const char *coll_name(int32_t what)
{
    return what == COLL_PLAN    ? "the plan check"
           : what == COLL_BCAST ? "a fetch of parameters"
           : what == COLL_OK    ? "a check that every rank succeeded"
                                : "not Loom's";
}

/* Waits for the n requests, to or from rank peer[i] each, for what; on the limit, names the first
 * rank whose message has not completed and breaks the job (its messages are cancelled). */
static loom_status coll_wait(int n, MPI_Request *req, const int *peer, const char *what, char *msg, size_t len)
{
    const int64_t to = net_ns(&NET_TIMEOUT), limit = 3 * (to >= 0 ? to : NET_TIMEOUT.unset_ns), t0 = now_ns(); /* a bad one: the run says so */
    for (int polls = 0;; polls++) {
        int flag = 0, rc = MPI_Testall(n, req, &flag, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) {
            char m[MPI_MAX_ERROR_STRING + 64];
            mpi_msg(rc, m, sizeof m);
            return break_job(msg, len, m);
        }
        if (flag)
            return LOOM_OK;
        if (now_ns() - t0 > limit)
            break;
        if (polls > SPIN_POLLS)
            nanosleep(&(struct timespec){.tv_nsec = SLEEP_MAX_NS}, NULL);
    }
    int who = -1;
    for (int i = 0; i < n; i++) {
        int flag = 0;
        MPI_Test(&req[i], &flag, MPI_STATUS_IGNORE);
        if (!flag) {
            who = who < 0 ? peer[i] : who;
            MPI_Cancel(&req[i]);
            MPI_Request_free(&req[i]);
        }
    }
    char m[WHY_LEN];
    snprintf(m, sizeof m, "rank %d: nothing came from it for %.0f s in %s: the process died or hangs, or its program went "
             "another way (LOOM_NET_TIMEOUT)", who, (double)limit / 1e9, what);
    return break_job(msg, len, m);
}

/* Checks the header h from rank r against this rank's collective (seq, what). */
static loom_status coll_check(const coll_head *h, int r, int64_t seq, int32_t what, char *msg, size_t len)
{
    if (h->seq == seq && h->what == what)
        return LOOM_OK;
    char m[WHY_LEN];
    snprintf(m, sizeof m, "rank %d is at its collective step %" PRId64 " (%s), this rank at its step %" PRId64 " (%s): the ranks' "
             "programs went different ways (every rank must run, fetch and free the same programs in the same order)",
             r, h->seq, coll_name(h->what), seq, coll_name(what));
    return break_job(msg, len, m);
}

/* Sends this rank's record (each bytes, its header first; the header's seq is set here) to every
 * rank and receives theirs: *out holds job.size records by rank, this rank's too (the caller frees
 * it, NULL on a failure), each checked to be at this collective. */
static loom_status coll_all(coll_head *mine, size_t each, void **out, char *msg, size_t len)
{
    *out = NULL;
    if (check_job(msg, len) != LOOM_OK)
        return LOOM_ERR_RUNTIME;
    mine->seq = job.coll++;
    char *all = calloc((size_t)job.size, each);
    MPI_Request *req = malloc(2 * (size_t)job.size * sizeof *req);
    int *peer = malloc(2 * (size_t)job.size * sizeof *peer);
    if (!all || !req || !peer) {
        free(all), free(req), free(peer);
        snprintf(msg, len, "out of memory");
        return LOOM_ERR_NOMEM;
    }
    int n = 0, rc = MPI_SUCCESS;
    memcpy(all + (size_t)job.rank * each, mine, each);
    for (int r = 0; r < job.size && rc == MPI_SUCCESS; r++)
        if (r != job.rank) {
            peer[n] = r;
            rc = MPI_Irecv(all + (size_t)r * each, (int)each, MPI_BYTE, r, TAG_COLL, job.comm, &req[n++]);
            peer[n] = r;
            if (rc == MPI_SUCCESS)
                rc = MPI_Isend(mine, (int)each, MPI_BYTE, r, TAG_COLL, job.comm, &req[n++]);
        }
    loom_status st = rc == MPI_SUCCESS ? coll_wait(n, req, peer, coll_name(mine->what), msg, len) : LOOM_ERR_RUNTIME;
    if (rc != MPI_SUCCESS) {
        char m[MPI_MAX_ERROR_STRING + 64];
        mpi_msg(rc, m, sizeof m);
        st = break_job(msg, len, m);
    }
    for (int r = 0; r < job.size && st == LOOM_OK; r++)
        st = coll_check((const coll_head *)(all + (size_t)r * each), r, mine->seq, mine->what, msg, len);
    free(req), free(peer);
    if (st != LOOM_OK)
        free(all);
    else
        *out = all;
    return st;
}

loom_status loom__net_same_plan(uint64_t hash, char *msg, size_t len)
{
    if (!job.ready || job.size == 1)
        return LOOM_OK;
    coll_head mine = {.what = COLL_PLAN, .value = hash};
    void *got;
    loom_status st = coll_all(&mine, sizeof mine, &got, msg, len);
    const coll_head *all = got;
    for (int r = 1; r < job.size && st == LOOM_OK; r++)
        if (all[r].value != all[0].value) {
            snprintf(msg, len, "the plan of rank %d differs from rank 0's (hash %016" PRIx64 " against %016" PRIx64
                     "): every rank must build the same graph with the same options", r, all[r].value, all[0].value);
            st = LOOM_ERR_INVALID;
        }
    free(got);
    return st;
}

loom_status loom__net_all_ok(loom_status st, char *msg, size_t len)
{
    if (!job.ready || job.size == 1)
        return st;
    typedef struct ok_rec {
        coll_head h; /* value: the rank's status */
        char msg[400];
    } ok_rec;
    ok_rec mine = {.h = {.what = COLL_OK, .value = (uint64_t)(int64_t)st}};
    if (st != LOOM_OK)
        snprintf(mine.msg, sizeof mine.msg, "%s", msg);
    void *got;
    loom_status cs = coll_all(&mine.h, sizeof mine, &got, msg, len);
    if (cs != LOOM_OK)
        return cs;
    ok_rec *all = got;
    for (int r = 0; r < job.size && st == LOOM_OK; r++)
        if (all[r].h.value != LOOM_OK) {
            all[r].msg[sizeof all[r].msg - 1] = 0;
            snprintf(msg, len, "rank %d: %s", r, all[r].msg);
            st = (loom_status)(int64_t)all[r].h.value;
        }
    free(got);
    return st;
}

int64_t loom__net_timeout_ns(void)
{
    int64_t ns = net_ns(&NET_TIMEOUT);
    return ns >= 0 ? ns : NET_TIMEOUT.unset_ns;
}

loom_status loom__net_bcast(void *buf, size_t bytes, int root, char *msg, size_t len)
{
    if (!job.ready || job.size == 1)
        return LOOM_OK;
    if (check_job(msg, len) != LOOM_OK)
        return LOOM_ERR_RUNTIME;
    const int64_t seq = job.coll++;
    coll_head mine = {.seq = seq, .what = COLL_BCAST, .value = bytes}, got;
    MPI_Request *req = malloc((size_t)job.size * sizeof *req);
    int *peer = malloc((size_t)job.size * sizeof *peer);
    if (!req || !peer) {
        free(req), free(peer);
        snprintf(msg, len, "out of memory");
        return LOOM_ERR_NOMEM;
    }
    loom_status st = LOOM_OK;
    /* the header, then the bytes in pieces (MPI counts are ints): from the root to every rank */
    for (size_t at = 0, first = 1; st == LOOM_OK && (first || at < bytes); first = 0) {
        int n = 0, rc = MPI_SUCCESS, cnt = bytes - at > (size_t)INT32_MAX ? INT32_MAX : (int)(bytes - at);
        void *p = first ? (job.rank == root ? (void *)&mine : (void *)&got) : (char *)buf + at;
        if (first)
            cnt = (int)sizeof mine;
        for (int r = 0; r < job.size && rc == MPI_SUCCESS; r++)
            if (job.rank == root && r != root) {
                peer[n] = r;
                rc = MPI_Isend(p, cnt, MPI_BYTE, r, first ? TAG_COLL : TAG_COLL_DATA, job.comm, &req[n++]);
            }
        if (job.rank != root) {
            peer[n] = root;
            rc = MPI_Irecv(p, cnt, MPI_BYTE, root, first ? TAG_COLL : TAG_COLL_DATA, job.comm, &req[n++]);
        }
        if (rc != MPI_SUCCESS) {
            char m[MPI_MAX_ERROR_STRING + 64];
            mpi_msg(rc, m, sizeof m);
            st = break_job(msg, len, m);
        } else {
            st = coll_wait(n, req, peer, coll_name(COLL_BCAST), msg, len);
        }
        if (st == LOOM_OK && first && job.rank != root) {
            st = coll_check(&got, root, seq, COLL_BCAST, msg, len);
            if (st == LOOM_OK && got.value != bytes) {
                char m[WHY_LEN];
                snprintf(m, sizeof m, "rank %d sends %" PRIu64 " bytes of a parameter, this rank expects %zu: the ranks' plans differ",
                         root, got.value, bytes);
                st = break_job(msg, len, m);
            }
        }
        if (!first)
            at += (size_t)cnt;
    }
    free(req), free(peer);
    return st;
}

/* ---- a runtime's communication thread ------------------------------------------------------- */

typedef struct ctl {
    loom__rt_msg m;
    int64_t run;         /* the runtime's run: every rank runs the same sequence */
    int32_t kind, origin; /* NET_*; DRAIN and ABORT: the rank where it began */
    int32_t status;       /* DRAIN and ABORT: the status it began with, which every rank returns */
    uint32_t hlen, nrange;
    uint64_t len[3];
    char head[LOOM__WIRE_HEAD]; /* a REQ's wire header; DRAIN and ABORT: the message */
} ctl;
#define CTL_FIXED offsetof(ctl, head)

typedef struct sendrec {
    MPI_Request req[4];
    int nreq;
    ctl c;
} sendrec;

typedef struct pending {
    ctl c;
    MPI_Request req[3];
    int nreq;
    void *mirror;        /* with data: the buffer it lands in */
} pending;

typedef struct peer {
    int rank;
    ctl rx;
    MPI_Request rxreq;
    int posted;
    pending *q;          /* what it sent, in order, until delivered */
    int qhead, qn, qcap;
    int64_t heard_ns;    /* when it was last heard from (the run's start before) */
    int heard;           /* anything came from it in this run */
    int dead;            /* timed out: nothing more is sent to it (a send to a dead process may never end) */
    int done, fin;
} peer;

struct loom__net {
    peer *peers;
    int npeers;
    sendrec **pool, **active;
    int npool, nactive, cap;
    int64_t timeout_ns;
    int64_t yield_ns;    /* how long it polls, yielding, after it last had something to do */
    int drain_sent;      /* this run's drain went to the peers (or came from one) */
};


loom_status loom__net_layout(loom__rt *rt)
{
    if (!job.ready)
        return loom__rt_build_fail(rt, LOOM_ERR_INVALID, "loom__rt_run: actors of other ranks, and loom_dist_init was not called");
    struct loom__net *n = calloc(1, sizeof *n);
    char *seen = calloc((size_t)job.size, 1);
    if (!n || !seen) {
        free(n);
        free(seen);
        return loom__rt_build_fail(rt, LOOM_ERR_NOMEM, "loom__rt_run: out of memory");
    }
    rt->net = n;
    for (int k = 0; k < rt->nactors; k++) {
        unsigned r = loom__aid_rank(rt->actors[k]->id);
        if (!rt->actors[k]->remote)
            continue;
        if (r >= (unsigned)job.size) {
            free(seen);
            return loom__rt_build_fail(rt, LOOM_ERR_INVALID, "loom__rt_run: %s is on rank %u, the job has %d", rt->actors[k]->name, r,
                                       job.size);
        }
        n->npeers += !seen[r];
        seen[r] = 1;
    }
    n->peers = calloc((size_t)n->npeers, sizeof *n->peers);
    if (!n->peers) {
        free(seen);
        return loom__rt_build_fail(rt, LOOM_ERR_NOMEM, "loom__rt_run: out of memory");
    }
    for (int r = 0, i = 0; r < job.size; r++)
        if (seen[r])
            n->peers[i++].rank = r;
    free(seen);
    return LOOM_OK;
}

void loom__net_free(loom__rt *rt)
{
    struct loom__net *n = rt->net;
    if (!n)
        return;
    for (int i = 0; i < n->npeers; i++)
        free(n->peers[i].q);
    free(n->peers);
    for (int i = 0; i < n->npool; i++)
        free(n->pool[i]);
    for (int i = 0; i < n->nactive; i++)
        free(n->active[i]); /* only after a hard stop: their requests were cancelled or abandoned */
    free(n->pool);
    free(n->active);
    free(n);
    rt->net = NULL;
}

/* A send record from the pool (NULL: out of memory). */
static sendrec *take(struct loom__net *n)
{
    if (n->nactive == n->cap) {
        int cap = n->cap ? 2 * n->cap : 16;
        sendrec **p = realloc(n->pool, (size_t)cap * sizeof *p), **a = p ? realloc(n->active, (size_t)cap * sizeof *a) : NULL;
        if (p)
            n->pool = p;
        if (!a)
            return NULL;
        n->active = a;
        n->cap = cap;
    }
    sendrec *s = n->npool ? n->pool[--n->npool] : malloc(sizeof *s);
    if (s) {
        s->nreq = 0;
        n->active[n->nactive++] = s;
    }
    return s;
}

static loom_status post_send(loom__rt *rt, sendrec *s, int rank, const void *const *range)
{
    int rc = MPI_Isend(&s->c, (int)(CTL_FIXED + s->c.hlen), MPI_BYTE, rank, TAG_CTL, job.comm, &s->req[s->nreq++]);
    for (uint32_t i = 0; i < s->c.nrange && rc == MPI_SUCCESS; i++)
        if (s->c.len[i])
            rc = MPI_Isend(range[i], (int)s->c.len[i], MPI_BYTE, rank, TAG_DATA, job.comm, &s->req[s->nreq++]);
    if (rc != MPI_SUCCESS) {
        char m[256];
        mpi_msg(rc, m, sizeof m);
        return loom__rt_fail(rt, LOOM_ERR_RUNTIME, "sending to rank %d: %s", rank, m);
    }
    return LOOM_OK;
}

/* A send record holding a fresh control record (NULL, the run failed: out of memory). */
static sendrec *new_ctl(loom__rt *rt, int kind, int origin, const loom__rt_msg *m)
{
    sendrec *s = take(rt->net);
    if (!s) {
        loom__rt_fail(rt, LOOM_ERR_NOMEM, "the communication thread is out of memory");
        return NULL;
    }
    memset(&s->c, 0, CTL_FIXED);
    s->c.run = rt->runs;
    s->c.kind = kind;
    s->c.origin = origin;
    if (m)
        s->c.m = *m;
    return s;
}

/* A control record without data to one rank. */
static void send_ctl(loom__rt *rt, int rank, int kind, int origin, loom_status st, const loom__rt_msg *m, const char *text)
{
    sendrec *s = new_ctl(rt, kind, origin, m);
    if (!s)
        return;
    s->c.status = (int32_t)st;
    if (text)
        s->c.hlen = (uint32_t)snprintf(s->c.head, sizeof s->c.head, "%s", text) + 1;
    if (s->c.hlen > sizeof s->c.head)
        s->c.hlen = sizeof s->c.head;
    post_send(rt, s, rank, NULL);
}

static void to_peers(loom__rt *rt, int kind, int origin, loom_status st, const char *text, int except)
{
    struct loom__net *n = rt->net;
    for (int i = 0; i < n->npeers; i++)
        if (n->peers[i].rank != except && !n->peers[i].dead)
            send_ctl(rt, n->peers[i].rank, kind, origin, st, NULL, text);
}

/* A worker's message to an actor of another rank; a REQ carries the buffer where it must. */
static void send_msg(loom__rt *rt, const loom__rt_msg *m)
{
    int k = loom__rt_find_actor(rt, m->dst);
    const loom__actor *c = rt->actors[k];
    int rank = (int)loom__aid_rank(m->dst);
    if (m->kind != LOOM__MSG_REQ || !c->in[m->reg].with_data) {
        send_ctl(rt, rank, NET_MSG, job.rank, LOOM_OK, m, NULL);
        return;
    }
    const loom__actor *p = rt->actors[loom__rt_find_actor(rt, m->src)];
    void *buf = p->out[c->in[m->reg].producer.reg].bufs[m->buf];
    sendrec *s = new_ctl(rt, NET_MSG, job.rank, m);
    if (!s)
        return;
    const void *range[3] = {0};
    size_t len[3] = {0};
    if (buf && rt->wire.pack) {
        s->c.hlen = (uint32_t)rt->wire.pack(rt->wire.ctx, buf, rank, s->c.head, range, len);
        s->c.nrange = 3;
        for (int i = 0; i < 3; i++) {
            if (len[i] > INT32_MAX) {
                loom__rt_fail(rt, LOOM_ERR_UNSUPPORTED, "%s: a buffer of %zu bytes for rank %d: one message takes at most 2 GiB",
                              p->name, len[i], rank);
                return;
            }
            s->c.len[i] = len[i];
            atomic_fetch_add(&job.sent, (int64_t)len[i]);
        }
    }
    post_send(rt, s, rank, range);
}

static void complete_sends(struct loom__net *n)
{
    for (int i = 0; i < n->nactive;) {
        int flag = 0;
        MPI_Testall(n->active[i]->nreq, n->active[i]->req, &flag, MPI_STATUSES_IGNORE);
        if (flag) {
            n->pool[n->npool++] = n->active[i];
            n->active[i] = n->active[--n->nactive];
        } else {
            i++;
        }
    }
}

static int post_rx(peer *p)
{
    p->posted = MPI_Irecv(&p->rx, (int)sizeof p->rx, MPI_BYTE, p->rank, TAG_CTL, job.comm, &p->rxreq) == MPI_SUCCESS;
    return p->posted;
}

/* The status a drain or an abort began with on its rank: every rank returns the same one (a
 * program checks the status, and the ranks must agree on what their run did). */
static loom_status origin_status(const ctl *c) { return c->status != LOOM_OK ? (loom_status)c->status : LOOM_ERR_RUNTIME; }

/* A record from peer p: runtime messages queue behind the data they wait for; the rest act now. */
static void on_ctl(loom__rt *rt, peer *p)
{
    const ctl *c = &p->rx;
    p->heard_ns = now_ns();
    p->heard = 1;
    if (c->hlen > sizeof c->head || c->nrange > 3) {
        loom__rt_fail(rt, LOOM_ERR_RUNTIME, "rank %d sent a record of %u header bytes and %u ranges: not Loom's", p->rank,
                      c->hlen, c->nrange);
        return;
    }
    switch (c->kind) {
    case NET_MSG: {
        if (p->qn == p->qcap) {
            int cap = p->qcap ? 2 * p->qcap : 16;
            pending *q = malloc((size_t)cap * sizeof *q);
            if (!q) {
                loom__rt_fail(rt, LOOM_ERR_NOMEM, "the communication thread is out of memory");
                return;
            }
            for (int i = 0; i < p->qn; i++)
                q[i] = p->q[(p->qhead + i) % p->qcap];
            free(p->q);
            p->q = q;
            p->qhead = 0;
            p->qcap = cap;
        }
        pending *e = &p->q[(p->qhead + p->qn++) % p->qcap];
        memcpy(&e->c, c, CTL_FIXED + c->hlen);
        e->nreq = 0;
        e->mirror = NULL;
        if (c->nrange) {
            const loom__actor *a = rt->actors[loom__rt_find_actor(rt, c->m.dst)];
            e->mirror = a->in[c->m.reg].bufs[c->m.buf];
            void *range[3] = {0};
            size_t cap[3] = {0};
            rt->wire.room(rt->wire.ctx, e->mirror, c->head, c->hlen, range, cap);
            for (int i = 0; i < 3; i++) {
                if (!c->len[i])
                    continue;
                if (c->len[i] > cap[i]) {
                    loom__rt_fail(rt, LOOM_ERR_RUNTIME, "rank %d sent %" PRIu64 " bytes for %s, which holds %zu: the ranks' plans differ",
                                  p->rank, c->len[i], a->name, cap[i]);
                    return;
                }
                MPI_Irecv(range[i], (int)c->len[i], MPI_BYTE, p->rank, TAG_DATA, job.comm, &e->req[e->nreq++]);
            }
        }
        break;
    }
    case NET_DRAIN:
        if (!rt->net->drain_sent) {
            rt->net->drain_sent = 1;
            loom__rt_drain(rt, origin_status(c), "rank %d: %s", c->origin, c->head);
            to_peers(rt, NET_DRAIN, c->origin, origin_status(c), c->head, p->rank);
        }
        break;
    case NET_ABORT:
        if (!atomic_load(&rt->hard)) {
            loom__rt_fail(rt, origin_status(c), "rank %d: %s", c->origin, c->head);
            to_peers(rt, NET_ABORT, c->origin, origin_status(c), c->head, p->rank);
        }
        break;
    case NET_DONE:
        p->done = 1;
        break;
    case NET_FIN:
        p->fin = 1;
        break;
    default: /* NET_BEAT: heard */
        break;
    }
}

/* Delivers what peer p sent, in order, as far as its data has landed. */
static int deliver(loom__rt *rt, peer *p)
{
    int did = 0;
    while (p->qn) {
        pending *e = &p->q[p->qhead];
        if (e->nreq) {
            int flag = 0;
            MPI_Testall(e->nreq, e->req, &flag, MPI_STATUSES_IGNORE);
            if (!flag)
                break;
            e->nreq = 0;
        }
        const loom__rt_msg *m = &e->c.m;
        int k = loom__rt_find_actor(rt, m->dst);
        const loom__actor *a = rt->actors[k];
        if (e->mirror && rt->wire.unpack)
            rt->wire.unpack(rt->wire.ctx, e->mirror, e->c.head, e->c.hlen);
        if (!atomic_load(&rt->quiet)) {
            loom__rt_post(rt, a->thread, m);
        } else if (m->kind == LOOM__MSG_REQ) { /* this rank's actors are done: it goes straight back */
            loom__rt_msg ack = {.dst = m->src, .src = m->dst, .piece = m->piece, .buf = m->buf,
                                .reg = a->in[m->reg].producer.reg, .kind = LOOM__MSG_ACK};
            send_ctl(rt, p->rank, NET_MSG, job.rank, LOOM_OK, &ack, NULL);
        }
        p->qhead = (p->qhead + 1) % p->qcap;
        p->qn--;
        did++;
    }
    return did;
}

/* After a stop at once: the records still posted are cancelled, the sends given a moment. */
static void abandon(loom__rt *rt)
{
    struct loom__net *n = rt->net;
    int64_t until = now_ns() + 2000000000;
    while (n->nactive && now_ns() < until) {
        complete_sends(n);
        nanosleep(&(struct timespec){.tv_nsec = 100000}, NULL);
    }
    for (int i = 0; i < n->nactive; i++)
        for (int r = 0; r < n->active[i]->nreq; r++) {
            MPI_Cancel(&n->active[i]->req[r]);
            MPI_Request_free(&n->active[i]->req[r]);
        }
    for (int i = 0; i < n->npeers; i++) {
        peer *p = &n->peers[i];
        if (p->posted) {
            MPI_Cancel(&p->rxreq);
            MPI_Request_free(&p->rxreq);
            p->posted = 0;
        }
        for (int k = 0; k < p->qn; k++) {
            pending *e = &p->q[(p->qhead + k) % p->qcap];
            for (int r = 0; r < e->nreq; r++) {
                MPI_Cancel(&e->req[r]);
                MPI_Request_free(&e->req[r]);
            }
        }
        p->qn = 0;
    }
    /* the ranks no longer agree on what is in flight, and one may be dead: later runs of this plan
     * and collectives are refused (the run's own message stays as it is) */
    if (!job.broken)
        snprintf(job.why, sizeof job.why, "a run stopped every rank at once (a rank failed or died)");
    job.broken = 1;
    if (rt->build_status == LOOM_OK) {
        snprintf(rt->build_msg, sizeof rt->build_msg, "an earlier run stopped every rank at once: %.400s", rt->msg);
        rt->build_status = LOOM_ERR_RUNTIME;
    }
}

void *loom__net_main(void *arg)
{
    loom__rt_thread *t = arg;
    loom__rt *rt = t->rt;
    struct loom__net *n = rt->net;
    /* its sleeps are 4 to 100 us: Linux lets a timed wait of a normal thread end up to 50 us late
     * (its timer slack), which every message from another rank would wait */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
    int64_t t0 = now_ns(), beat = t0 - BEAT_NS - 1; /* the first heartbeat at once: every peer hears of this run */
    for (int i = 0; i < n->npeers; i++) {
        peer *p = &n->peers[i];
        p->done = p->fin = p->heard = p->dead = 0;
        p->heard_ns = t0;
        p->qhead = p->qn = 0;
        if (!p->posted && !post_rx(p))
            loom__rt_fail(rt, LOOM_ERR_RUNTIME, "cannot receive from rank %d", p->rank);
    }
    int done_sent = 0, fin_sent = 0, quiet = 0, idle = 0;
    int64_t busy = t0; /* when it last had something to do */
    n->drain_sent = 0;
    /* read per run: a program (bench/mpi.c) may compare settings */
    n->yield_ns = net_ns_for_run(rt, &NET_YIELD);
    n->timeout_ns = net_ns_for_run(rt, &NET_TIMEOUT);
    loom__rt_msg m;
    for (;;) {
        int did = 0;
        while (loom__ring_pop(&t->ring, &m)) {
            send_msg(rt, &m);
            did++;
        }
        complete_sends(n);
        int64_t now = now_ns();
        int all_done = 1, all_fin = 1, queued = 0;
        for (int i = 0; i < n->npeers; i++) {
            peer *p = &n->peers[i];
            int flag = 0;
            while (p->posted && MPI_Test(&p->rxreq, &flag, MPI_STATUS_IGNORE) == MPI_SUCCESS && flag) {
                p->posted = 0;
                on_ctl(rt, p);
                did++;
                if (!p->fin)
                    post_rx(p);
            }
            did += deliver(rt, p);
            all_done &= p->done;
            all_fin &= p->fin;
            queued += p->qn;
            /* a peer not heard yet in this run may still be busy before it (3 times as long) */
            int64_t limit = p->heard ? n->timeout_ns : 3 * n->timeout_ns;
            if (!p->fin && now - p->heard_ns > limit && !atomic_load(&rt->hard) && (p->dead = 1))
                loom__rt_fail(rt, LOOM_ERR_RUNTIME, "rank %d: nothing heard from it for %.0f s: the process died or hangs "
                              "(LOOM_NET_TIMEOUT)", p->rank, (double)limit / 1e9);
        }
        if (atomic_load(&rt->hard)) {
            while (atomic_load_explicit(&rt->err_state, memory_order_acquire) != 2)
                sched_yield();
            to_peers(rt, NET_ABORT, job.rank, rt->status, rt->msg, -1); /* a peer's abort: its rank is in the text */
            abandon(rt);
            atomic_store(&rt->quiet, 1);
            break;
        }
        if (!n->drain_sent && loom__rt_draining(rt)) { /* this rank began it: a failed act or a cancel */
            n->drain_sent = 1;
            int e = atomic_load_explicit(&rt->err_state, memory_order_acquire);
            while (e == 1)
                e = atomic_load_explicit(&rt->err_state, memory_order_acquire);
            to_peers(rt, NET_DRAIN, job.rank, e ? rt->status : LOOM_ERR_RUNTIME, e ? rt->msg : "cancelled", -1);
        }
        if (!quiet && atomic_load(&rt->quiesce)) {
            quiet = 1;
            atomic_store(&rt->quiet, 1);
        }
        if (quiet && !done_sent && atomic_load(&rt->leftovers) && loom__ring_empty(&t->ring)) {
            done_sent = 1;
            to_peers(rt, NET_DONE, job.rank, LOOM_OK, NULL, -1);
        }
        if (done_sent && all_done && !queued && !fin_sent) {
            fin_sent = 1;
            to_peers(rt, NET_FIN, job.rank, LOOM_OK, NULL, -1);
        }
        if (fin_sent && all_fin && !queued && n->nactive == 0)
            break;
        if (!fin_sent && now - beat > BEAT_NS) {
            beat = now;
            to_peers(rt, NET_BEAT, job.rank, LOOM_OK, NULL, -1);
        }
        if (did) {
            idle = 0;
            busy = now;
            continue;
        }
        if (++idle < SPIN_POLLS)
            continue;
        if (now - busy < n->yield_ns) {
            idle = SPIN_POLLS - 1; /* the sleeps after it begin short */
            sched_yield();
            continue;
        }
        int64_t ns = SLEEP_MIN_NS << (idle - SPIN_POLLS < 5 ? idle - SPIN_POLLS : 5);
        if (ns > SLEEP_MAX_NS)
            ns = SLEEP_MAX_NS;
        uint32_t v = ck_ec32_value(&t->ec);
        if (!loom__ring_empty(&t->ring))
            continue;
        const struct timespec dl = loom__deadline_after(CLOCK_MONOTONIC, (long)ns);
        t->sleeps++;
        loom__ec_wait_until(&t->ec, &loom__ec_mode, v, &dl);
    }
    return NULL;
}
