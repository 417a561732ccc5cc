/* Placements: parsing, the canonical print, accessors, comparisons and the check against a run.
 *
 * A placement is stored as two sorted lists, the ranks and the device indices of each rank, not
 * as every (rank, device) pair: "@0-65535/cpu:0-127" is 8M devices in 256 KiB. The grammar
 * (docs/placement.md):
 *
 *     placement := [ '@' list '/' ] kind ':' list [ mesh ]
 *     kind      := 'cpu' | 'cuda'
 *     list      := item { ',' item }         strictly increasing, no repeats
 *     item      := num | num '-' num         decimal, no sign, no leading zero
 *     mesh      := '[' num ',' num ']'       the devices seen as a 2-D mesh, row-major; not with '@'
 *
 * Parsing is strict (no spaces, no unordered lists) so that each placement has one spelling of
 * each device set and the part a device holds never depends on how the list was written. */
#include <loom/sbp.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbp/types/parse.h"

struct loom_placement {
    loom_device_kind kind;
    int has_ranks;                          /* written with "@": hierarchy [nranks, ndev] */
    int ndev;                               /* device indices per rank, 1..128 */
    int nranks;                             /* 1 without "@" */
    int mesh[2];                            /* without "@": [rows, columns] of a 2-D mesh, or {0, 0} (1-D) */
    uint64_t mask[2];                       /* the device indices as a set */
    uint8_t dev[LOOM_MAX_DEVICE_INDEX + 1]; /* ndev of them, increasing */
    int32_t rank[];                         /* nranks, increasing; {0} without "@" */
};

static const char *const kind_names[LOOM_DEVICE_KIND_COUNT] = {"cpu", "cuda"};

#define RANK_WORDS ((LOOM_MAX_RANK + 64) / 64)
#define DEV_WORDS ((LOOM_MAX_DEVICE_INDEX + 64) / 64)

static int bit(const uint64_t *set, int v) { return (int)((set[v >> 6] >> (v & 63)) & 1); }

/* Describes the character at s[at] for "found ..." in a message. */
static void describe(const char *s, size_t at, char out[32])
{
    unsigned char c = (unsigned char)s[at];
    if (!c)
        snprintf(out, 32, "the end");
    else if (c > 0x20 && c < 0x7f)
        snprintf(out, 32, "'%c'", c);
    else
        snprintf(out, 32, "byte 0x%02x", c);
}

typedef loom__parser parser;

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* The kind named by the len characters at w, or -1. */
static int kind_of(const char *w, size_t len)
{
    for (int k = 0; k < LOOM_DEVICE_KIND_COUNT; k++)
        if (strlen(kind_names[k]) == len && !memcmp(w, kind_names[k], len))
            return k;
    return -1;
}

/* Reads a number at ps->pos, at most max; what names it in messages ("device index", "rank").
 * Returns it, or -1 after setting the error. */
static int64_t number(parser *ps, int64_t max, const char *what, const char *why)
{
    const char *s = ps->s;
    size_t at = ps->pos, end = at;
    if (s[at] == '-' && is_digit(s[at + 1]))
        return loom__parse_fail(ps, "negative %s at offset %zu", what, at);
    if (!is_digit(s[at])) {
        char found[32];
        describe(s, at, found);
        return loom__parse_fail(ps, "expected a %s at offset %zu, found %s", what, at, found);
    }
    int64_t v = 0;
    for (; is_digit(s[end]); end++)
        if (v <= max) /* stop growing past max: no overflow on a long run of digits */
            v = v * 10 + (s[end] - '0');
    int nd = (int)(end - at);
    if (v > max)
        return loom__parse_fail(ps, "%s %.*s%s at offset %zu is over %lld (%s)", what, nd > 20 ? 20 : nd, s + at,
                    nd > 20 ? "..." : "", at, (long long)max, why);
    if (nd > 1 && s[at] == '0')
        return loom__parse_fail(ps, "%s '%.*s%s' at offset %zu has a leading zero; write %lld", what, nd > 20 ? 20 : nd, s + at,
                    nd > 20 ? "..." : "", at, (long long)v);
    ps->pos = end;
    return v;
}

/* Parses a list into set (max + 1 bits, zeroed by the caller) and returns its size, or -1 after
 * setting the error. kind is the placement's kind name for a device list (to name a second kind
 * in the list), NULL for a rank list. */
static int parse_list(parser *ps, int max, const char *what, const char *why, const char *kind, uint64_t *set)
{
    const char *s = ps->s;
    int count = 0, last = -1;
    if (!s[ps->pos])
        return loom__parse_fail(ps, "the %s list is empty: expected a %s at offset %zu", kind ? "device" : "rank", what, ps->pos);
    for (;;) {
        size_t at = ps->pos;
        if (kind && is_alpha(s[at])) {
            size_t end = at;
            while (is_alpha(s[end]))
                end++;
            if (kind_of(s + at, end - at) >= 0 && s[end] == ':')
                return loom__parse_fail(ps, "a second device kind '%.*s' at offset %zu in a %s placement (a placement has one kind)",
                            (int)(end - at), s + at, at, kind);
        }
        int64_t a = number(ps, max, what, why);
        if (a < 0)
            return -1;
        int64_t b = a;
        if (s[ps->pos] == '-') {
            ps->pos++;
            if ((b = number(ps, max, what, why)) < 0)
                return -1;
            if (b < a)
                return loom__parse_fail(ps, "range %lld-%lld at offset %zu is descending; write %lld-%lld", (long long)a, (long long)b,
                            at, (long long)b, (long long)a);
        }
        for (int v = (int)a; v <= b; v++)
            if (bit(set, v))
                return a == b ? loom__parse_fail(ps, "%s %d at offset %zu is listed twice", what, v, at)
                              : loom__parse_fail(ps, "range %lld-%lld at offset %zu lists %s %d twice", (long long)a, (long long)b, at,
                                     what, v);
        if (a <= last)
            return loom__parse_fail(ps, "the list must be increasing: %s %lld at offset %zu comes after %d", what, (long long)a, at, last);
        for (int v = (int)a; v <= b; v++)
            set[v >> 6] |= UINT64_C(1) << (v & 63);
        count += (int)(b - a + 1);
        last = (int)b;
        if (s[ps->pos] != ',')
            return count;
        ps->pos++;
    }
}

/* Parses a mesh "[rows,columns]" at ps->pos (at its '[') over the ndev devices listed into mesh:
 * 0, or -1 after setting the error. */
static int parse_mesh(parser *ps, int has_ranks, int ndev, int mesh[2])
{
    const char *s = ps->s;
    size_t open = ps->pos;
    if (has_ranks)
        return loom__parse_fail(ps, "a mesh at offset %zu on a placement with ranks, whose hierarchy is [ranks, devices per rank] "
                                    "already", open);
    ps->pos++;
    for (int k = 0; k < 2; k++) {
        size_t at = ps->pos;
        int64_t v = number(ps, LOOM_MAX_DEVICE_INDEX + 1, "mesh size", "a placement holds at most 128 devices");
        if (v < 0)
            return -1;
        if (v == 0)
            return loom__parse_fail(ps, "mesh size 0 at offset %zu; each dim of a mesh is at least 1", at);
        mesh[k] = (int)v;
        char want = k ? ']' : ',';
        if (s[ps->pos] != want) {
            char found[32];
            describe(s, ps->pos, found);
            return k ? loom__parse_fail(ps, "expected ']' at offset %zu to close '[' at offset %zu (a mesh has 2 dims), found %s",
                                        ps->pos, open, found)
                     : loom__parse_fail(ps, "expected ',' at offset %zu (a mesh has 2 dims, as in [2,2]), found %s", ps->pos, found);
        }
        ps->pos++;
    }
    if (mesh[0] * mesh[1] != ndev)
        return loom__parse_fail(ps, "mesh [%d,%d] at offset %zu has %d devices but the list has %d", mesh[0], mesh[1], open,
                                mesh[0] * mesh[1], ndev);
    return 0;
}

/* A placement of nranks ranks (NULL: none written) and ndev devices, lists not yet filled. */
static loom_placement *alloc(loom_device_kind kind, int has_ranks, int nranks, int ndev)
{
    loom_placement *p = calloc(1, sizeof *p + (size_t)nranks * sizeof p->rank[0]);
    if (p) {
        p->kind = kind;
        p->has_ranks = has_ranks;
        p->nranks = nranks;
        p->ndev = ndev;
    }
    return p;
}

static void add_dev(loom_placement *p, int j, int v)
{
    p->dev[j] = (uint8_t)v;
    p->mask[v >> 6] |= UINT64_C(1) << (v & 63);
}

loom_placement *loom_placement_parse(const char *s, loom_error *err)
{
    if (!s) {
        loom_error_set(err, LOOM_ERR_INVALID, "placement: the string is NULL");
        return NULL;
    }
    parser ps = loom__parser_start(s, "placement", err);
    if (!*s) {
        loom__parse_fail(&ps, "the string is empty; expected a placement such as 'cpu:0-3' or '@0-1/cuda:0-3'");
        return NULL;
    }
    for (size_t i = 0; s[i]; i++)
        if (is_space(s[i])) {
            /* Suggest the string without whitespace when that parses (it has none, so no loop). */
            char fix[128], qfix[256];
            size_t n = 0, k = 0;
            for (; s[k] && n + 1 < sizeof fix; k++)
                if (!is_space(s[k]))
                    fix[n++] = s[k];
            fix[n] = 0;
            loom_placement *p = s[k] ? NULL : loom_placement_parse(fix, NULL);
            loom__parse_quote(fix, qfix);
            if (p)
                loom__parse_fail(&ps, "whitespace at offset %zu; a placement has no spaces (did you mean '%s'?)", i, qfix);
            else
                loom__parse_fail(&ps, "whitespace at offset %zu; a placement has no spaces", i);
            loom_placement_free(p);
            return NULL;
        }

    /* The rank set is 8 KiB: on the stack, so that a parse allocates only its result. */
    uint64_t ranks[RANK_WORDS] = {0}, devs[DEV_WORDS] = {0};
    int has_ranks = s[0] == '@', nranks = 1;
    if (has_ranks) {
        ps.pos = 1;
        if (s[1] == '/') {
            loom__parse_fail(&ps, "the rank list is empty: expected a rank at offset 1");
            return NULL;
        }
        nranks = parse_list(&ps, LOOM_MAX_RANK, "rank", "the actor id has 16 bits for it", NULL, ranks);
        if (nranks < 0)
            return NULL;
        if (s[ps.pos] != '/') {
            char found[32];
            describe(s, ps.pos, found);
            loom__parse_fail(&ps, "expected '/' after the rank list at offset %zu, found %s", ps.pos, found);
            return NULL;
        }
        ps.pos++;
    }

    size_t at = ps.pos, end = at;
    while (is_alpha(s[end]))
        end++;
    int kind = kind_of(s + at, end - at);
    if (end == at) {
        char found[32];
        describe(s, at, found);
        loom__parse_fail(&ps, "expected a device kind ('cpu' or 'cuda') at offset %zu, found %s", at, found);
        return NULL;
    }
    if (kind < 0) {
        int n = (int)(end - at);
        loom__parse_fail(&ps, "unknown device kind '%.*s%s' at offset %zu; expected 'cpu' or 'cuda'", n > 20 ? 20 : n, s + at,
             n > 20 ? "..." : "", at);
        return NULL;
    }
    if (s[end] != ':') {
        char found[32];
        describe(s, end, found);
        loom__parse_fail(&ps, "expected ':' after '%s' at offset %zu, found %s", kind_names[kind], end, found);
        return NULL;
    }
    ps.pos = end + 1;
    int ndev = parse_list(&ps, LOOM_MAX_DEVICE_INDEX, "device index", "the actor id has 7 bits for it", kind_names[kind], devs);
    if (ndev < 0)
        return NULL;
    int mesh[2] = {0, 0};
    if (s[ps.pos] == '[' && parse_mesh(&ps, has_ranks, ndev, mesh))
        return NULL;
    if (s[ps.pos]) {
        char found[32];
        describe(s, ps.pos, found);
        loom__parse_fail(&ps, "unexpected %s at offset %zu after the %s", found, ps.pos, mesh[0] ? "mesh" : "device list");
        return NULL;
    }

    loom_placement *p = alloc((loom_device_kind)kind, has_ranks, nranks, ndev);
    if (!p) {
        loom_error_set(err, LOOM_ERR_NOMEM, "placement '%s': out of memory", ps.q);
        return NULL;
    }
    for (int v = 0, j = 0; v <= LOOM_MAX_DEVICE_INDEX; v++)
        if (bit(devs, v))
            add_dev(p, j++, v);
    memcpy(p->mesh, mesh, sizeof mesh);
    if (has_ranks) {
        for (int w = 0, r = 0; w < RANK_WORDS; w++)
            for (uint64_t m = ranks[w]; m; m &= m - 1)
                p->rank[r++] = w * 64 + __builtin_ctzll(m);
    }
    return p;
}

/* Checks one of loom_placement_new's lists; 0 or -1 after setting the error. */
static int check_list(const char *what, int n, const int *v, int max, loom_error *err)
{
    for (int i = 0; i < n; i++) {
        if (v[i] < 0 || v[i] > max) {
            loom_error_set(err, LOOM_ERR_INVALID, "loom_placement_new: %s %d (entry %d) is outside [0, %d]", what, v[i], i, max);
            return -1;
        }
        if (i && v[i] <= v[i - 1]) {
            loom_error_set(err, LOOM_ERR_INVALID, "loom_placement_new: the list must be strictly increasing: %s %d (entry %d) after %d",
                           what, v[i], i, v[i - 1]);
            return -1;
        }
    }
    return 0;
}

loom_placement *loom_placement_new(loom_device_kind kind, int nranks, const int *ranks, int ndev, const int *devs,
                                   loom_error *err)
{
    if ((unsigned)kind >= LOOM_DEVICE_KIND_COUNT) {
        loom_error_set(err, LOOM_ERR_INVALID, "loom_placement_new: device kind %d is not cpu or cuda", (int)kind);
        return NULL;
    }
    if (ndev < 1 || !devs) {
        loom_error_set(err, LOOM_ERR_INVALID, "loom_placement_new: a placement needs at least one device, got %d%s", ndev,
                       ndev >= 1 ? " and no list" : "");
        return NULL;
    }
    if (ndev > LOOM_MAX_DEVICE_INDEX + 1) {
        loom_error_set(err, LOOM_ERR_INVALID, "loom_placement_new: %d devices per rank, at most %d", ndev, LOOM_MAX_DEVICE_INDEX + 1);
        return NULL;
    }
    if (ranks ? nranks < 1 || nranks > LOOM_MAX_RANK + 1 : nranks != 0) {
        loom_error_set(err, LOOM_ERR_INVALID, "loom_placement_new: %d ranks %s a list (give 1 to %d ranks, or NULL and 0)", nranks,
                       ranks ? "with" : "without", LOOM_MAX_RANK + 1);
        return NULL;
    }
    if (check_list("device index", ndev, devs, LOOM_MAX_DEVICE_INDEX, err) || check_list("rank", nranks, ranks, LOOM_MAX_RANK, err))
        return NULL;
    loom_placement *p = alloc(kind, ranks != NULL, ranks ? nranks : 1, ndev);
    if (!p) {
        loom_error_set(err, LOOM_ERR_NOMEM, "loom_placement_new: out of memory");
        return NULL;
    }
    for (int j = 0; j < ndev; j++)
        add_dev(p, j, devs[j]);
    for (int r = 0; ranks && r < nranks; r++)
        p->rank[r] = ranks[r];
    return p;
}

loom_placement *loom_placement_copy(const loom_placement *p)
{
    if (!p)
        return NULL;
    size_t bytes = sizeof *p + (size_t)p->nranks * sizeof p->rank[0];
    loom_placement *c = malloc(bytes);
    if (c)
        memcpy(c, p, bytes);
    return c;
}

loom_placement *loom_placement_stage(const loom_placement *p, int stage, int nstages, loom_error *err)
{
    char b[64];
    if (!p) {
        loom_error_set(err, LOOM_ERR_INVALID, "loom_placement_stage: the placement is NULL");
        return NULL;
    }
    if (nstages < 1 || stage < 0 || stage >= nstages) {
        loom_error_set(err, LOOM_ERR_INVALID, "loom_placement_stage: stage %d of %d pipeline stages (stages count from 0 to nstages - 1)",
                       stage, nstages);
        return NULL;
    }
    int64_t first, n;
    loom_split_part(p->ndev, nstages, stage, &first, &n);
    if (n == 0) {
        loom_placement_str(p, b, sizeof b);
        loom_error_set(err, LOOM_ERR_INVALID,
                       "loom_placement_stage: placement '%s' has %d device%s%s, too few for %d pipeline stages: stage %d would have "
                       "no devices",
                       b, p->ndev, p->ndev == 1 ? "" : "s", p->has_ranks ? " per rank" : "", nstages, stage);
        return NULL;
    }
    int devs[LOOM_MAX_DEVICE_INDEX + 1];
    for (int j = 0; j < n; j++)
        devs[j] = p->dev[first + j];
    return loom_placement_new(p->kind, p->has_ranks ? p->nranks : 0, p->has_ranks ? p->rank : NULL, (int)n, devs, err);
}

void loom_placement_free(loom_placement *p) { free(p); }

loom_placement *loom_placement_mesh(const loom_placement *p, int rows, int cols, loom_error *err)
{
    char q[96];
    if (!p) {
        loom_error_set(err, LOOM_ERR_INVALID, "loom_placement_mesh: the placement is NULL");
        return NULL;
    }
    if (loom_placement_str(p, q, sizeof q) >= sizeof q)
        memcpy(q + sizeof q - 4, "...", 4);
    if (p->has_ranks) {
        loom_error_set(err, LOOM_ERR_INVALID, "loom_placement_mesh: placement '%s' has ranks, whose hierarchy is [ranks, devices per "
                                              "rank] already", q);
        return NULL;
    }
    if (rows < 1 || cols < 1 || (int64_t)rows * cols != p->ndev) {
        loom_error_set(err, LOOM_ERR_INVALID, "loom_placement_mesh: a mesh of %d x %d for placement '%s' of %d device%s", rows, cols, q,
                       p->ndev, p->ndev == 1 ? "" : "s");
        return NULL;
    }
    loom_placement *m = loom_placement_copy(p);
    if (!m) {
        loom_error_set(err, LOOM_ERR_NOMEM, "loom_placement_mesh: out of memory");
        return NULL;
    }
    m->mesh[0] = rows;
    m->mesh[1] = cols;
    return m;
}

/* ---- printing ------------------------------------------------------------------------------ */

/* An snprintf-style output: writes what fits, counts everything. */
typedef struct sink {
    char *buf;
    size_t len, n;
} sink;

__attribute__((format(printf, 2, 3))) static void put(sink *o, const char *fmt, ...)
{
    size_t room = o->n < o->len ? o->len - o->n : 0;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(room ? o->buf + o->n : NULL, room, fmt, ap);
    va_end(ap);
    if (w > 0)
        o->n += (size_t)w;
}

/* Prints n increasing values with runs of two or more as ranges: 0,1,2,5 -> "0-2,5". */
static void put_list(sink *o, int n, const int32_t *i32, const uint8_t *u8)
{
#define AT(k) (i32 ? (int)i32[k] : (int)u8[k])
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && AT(j + 1) == AT(j) + 1)
            j++;
        if (j > i)
            put(o, "%s%d-%d", i ? "," : "", AT(i), AT(j));
        else
            put(o, "%s%d", i ? "," : "", AT(i));
        i = j + 1;
    }
#undef AT
}

size_t loom_placement_str(const loom_placement *p, char *buf, size_t len)
{
    sink o = {buf, buf ? len : 0, 0};
    if (o.len)
        buf[0] = 0;
    if (!p) {
        put(&o, "(null)");
        return o.n;
    }
    if (p->has_ranks) {
        put(&o, "@");
        put_list(&o, p->nranks, p->rank, NULL);
        put(&o, "/");
    }
    put(&o, "%s:", loom_device_kind_name(p->kind));
    put_list(&o, p->ndev, NULL, p->dev);
    if (p->mesh[0])
        put(&o, "[%d,%d]", p->mesh[0], p->mesh[1]);
    return o.n;
}

/* ---- accessors ----------------------------------------------------------------------------- */

const char *loom_device_kind_name(loom_device_kind k)
{
    return (unsigned)k < LOOM_DEVICE_KIND_COUNT ? kind_names[k] : "?";
}

loom_device_kind loom_placement_kind(const loom_placement *p) { return p ? p->kind : LOOM_DEVICE_KIND_COUNT; }
int loom_placement_has_ranks(const loom_placement *p) { return p ? p->has_ranks : 0; }
int loom_placement_ndevices(const loom_placement *p) { return p ? p->nranks * p->ndev : 0; }
int loom_placement_nranks(const loom_placement *p) { return p ? p->nranks : 0; }
int loom_placement_ndevices_per_rank(const loom_placement *p) { return p ? p->ndev : 0; }

int loom_placement_rank(const loom_placement *p, int r) { return p && r >= 0 && r < p->nranks ? p->rank[r] : -1; }
int loom_placement_local_index(const loom_placement *p, int j) { return p && j >= 0 && j < p->ndev ? p->dev[j] : -1; }

int loom_placement_hierarchy(const loom_placement *p, int dims[2])
{
    if (!p)
        return 0;
    if (p->mesh[0]) {
        dims[0] = p->mesh[0];
        dims[1] = p->mesh[1];
        return 2;
    }
    if (!p->has_ranks) {
        dims[0] = p->ndev;
        return 1;
    }
    dims[0] = p->nranks;
    dims[1] = p->ndev;
    return 2;
}

int loom_placement_device(const loom_placement *p, int i, int *rank)
{
    if (!p || i < 0 || i >= p->nranks * p->ndev)
        return -1;
    if (rank)
        *rank = p->rank[i / p->ndev];
    return p->dev[i % p->ndev];
}

int loom_placement_find(const loom_placement *p, int rank, int index)
{
    if (!p || index < 0 || index > LOOM_MAX_DEVICE_INDEX || !bit(p->mask, index))
        return -1;
    int lo = 0, hi = p->nranks; /* ranks are sorted: binary search */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (p->rank[mid] < rank)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == p->nranks || p->rank[lo] != rank)
        return -1;
    int j = 0;
    while (p->dev[j] != index)
        j++;
    return lo * p->ndev + j;
}

int loom_placement_equal(const loom_placement *a, const loom_placement *b)
{
    if (!a || !b)
        return a == b;
    return a->kind == b->kind && a->has_ranks == b->has_ranks && a->ndev == b->ndev && a->nranks == b->nranks &&
           a->mesh[0] == b->mesh[0] && a->mesh[1] == b->mesh[1] &&
           !memcmp(a->dev, b->dev, (size_t)a->ndev) && !memcmp(a->rank, b->rank, (size_t)a->nranks * sizeof a->rank[0]);
}

int loom_placement_overlaps(const loom_placement *a, const loom_placement *b)
{
    if (!a || !b || a->kind != b->kind || !((a->mask[0] & b->mask[0]) | (a->mask[1] & b->mask[1])))
        return 0;
    for (int i = 0, j = 0; i < a->nranks && j < b->nranks;) { /* both sorted: merge */
        if (a->rank[i] == b->rank[j])
            return 1;
        if (a->rank[i] < b->rank[j])
            i++;
        else
            j++;
    }
    return 0;
}

loom_status loom_placement_check(const loom_placement *p, int nranks, int ncuda, loom_error *err)
{
    if (!p)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_placement_check: placement is NULL");
    char q[96];
    if (loom_placement_str(p, q, sizeof q) >= sizeof q)
        memcpy(q + sizeof q - 4, "...", 4);
    int top = p->rank[p->nranks - 1];
    if (top >= nranks)
        return loom_error_set(err, LOOM_ERR_NOT_FOUND, "placement '%s' needs %d process%s (ranks up to %d), this run has %d", q,
                              top + 1, top ? "es" : "", top, nranks);
    int need = p->dev[p->ndev - 1] + 1;
    if (p->kind == LOOM_DEVICE_CUDA && need > ncuda) {
        char have[64];
        if (ncuda > 0)
            snprintf(have, sizeof have, "%d", ncuda);
        else
            snprintf(have, sizeof have, "none (no GPU visible, or Loom built without CUDA)");
        return loom_error_set(err, LOOM_ERR_NOT_FOUND, "placement '%s' needs %d CUDA device%s (up to cuda:%d), this machine has %s", q,
                              need, need > 1 ? "s" : "", need - 1, have);
    }
    return LOOM_OK;
}
