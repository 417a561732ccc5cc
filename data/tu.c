/* The TU Dortmund graph-classification text format (loom_tu_load): DS_A.txt, DS_graph_indicator.txt,
 * DS_graph_labels.txt and the optional DS_node_labels.txt and DS_node_attributes.txt of a dataset DS
 * in one directory (https://chrsmrrs.github.io/datasets/docs/format/).
 *
 * Each file is read once, a line at a time, with no limit on a line's length: the larger datasets
 * run to hundreds of MB. Every value is checked before it is used, and a bad one is reported with
 * its file, line and column (1-based, in bytes), since these files come from many tools. */
#include <loom/samples.h>

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * Reading lines and values.
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    FILE *f;          /* NULL when an optional file does not exist */
    char *path;       /* dir/DS_<suffix>, for I/O errors */
    const char *name; /* DS_<suffix> (inside path), for format errors */
    char *buf;        /* getline's buffer */
    size_t cap;
    int64_t lines; /* lines read so far */
    int64_t line;  /* the number of the line in text */
    char *text;    /* that line without its end or trailing blanks, NUL-terminated */
    loom_error *err;
} text_file;

static loom_status vfail(const text_file *t, int64_t line, int64_t col, const char *fmt, va_list ap)
{
    char what[sizeof t->err->msg];
    vsnprintf(what, sizeof what, fmt, ap);
    return loom_error_set(t->err, LOOM_ERR_FORMAT, "%s: line %" PRId64 ", column %" PRId64 ": %s", t->name, line, col, what);
}

/* A format error at position at of the current line. */
__attribute__((format(printf, 3, 4))) static loom_status fail_at(const text_file *t, const char *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    loom_status s = vfail(t, t->line, (int64_t)(at - t->text) + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* A format error at the start of a given line (one past the last when the file ends too soon). */
__attribute__((format(printf, 3, 4))) static loom_status fail_line(const text_file *t, int64_t line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    loom_status s = vfail(t, line, 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Room for a token as a message shows it: 40 bytes, the quotes, "..." and the NUL. */
enum { SHOWN = 48 };

/* The token at p as a message shows it: quoted and cut at 40 bytes, or the end of the line. */
static const char *shown(const text_file *t, const char *p, char *buf, size_t n)
{
    if (!*p)
        return p == t->text ? "an empty line" : "the end of the line";
    size_t len = strcspn(p, ", \t");
    if (len == 0)
        len = 1; /* a separator where a value belongs: show it */
    snprintf(buf, n, "'%.*s%s'", (int)(len > 40 ? 40 : len), p, len > 40 ? "..." : "");
    return buf;
}

/* Opens dir/DS<suffix>. An optional file that does not exist leaves t->f NULL, which is no error. */
static loom_status tf_open(text_file *t, const char *dir, const char *ds, const char *suffix, int required, loom_error *err)
{
    *t = (text_file){.err = err};
    size_t n = strlen(dir) + strlen(ds) + strlen(suffix) + 2;
    if (!(t->path = malloc(n)))
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_tu_load: out of memory for a path");
    snprintf(t->path, n, "%s/%s%s", dir, ds, suffix);
    t->name = t->path + strlen(dir) + 1;
    t->f = fopen(t->path, "r");
    int e = errno;
    if (!t->f && (required || e != ENOENT))
        return loom_error_set(err, LOOM_ERR_IO, "cannot open %s: %s", t->path, strerror(e));
    return LOOM_OK;
}

static void tf_close(text_file *t)
{
    if (t->f)
        fclose(t->f);
    free(t->buf);
    free(t->path);
    *t = (text_file){0};
}

/* Moves to the next line; *got is 0 at the end of the file. Blank lines (nothing but spaces, tabs
 * and line ends) at the end of a file are ignored. A blank line before more text is given as an
 * empty line at its own number, without the text read past it: every line of these files holds a
 * value, so every caller refuses it. */
static loom_status tf_next(text_file *t, int *got)
{
    int64_t blank = 0;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&t->buf, &t->cap, t->f);
        if (n < 0) {
            if (ferror(t->f))
                return loom_error_set(t->err, LOOM_ERR_IO, "cannot read %s: %s", t->path, strerror(errno ? errno : EIO));
            if (!feof(t->f))
                return loom_error_set(t->err, LOOM_ERR_NOMEM, "%s: out of memory for line %" PRId64, t->path, t->lines + 1);
            *got = 0;
            return LOOM_OK;
        }
        t->lines++;
        t->line = t->lines;
        t->text = t->buf;
        const char *nul = memchr(t->buf, 0, (size_t)n);
        if (nul)
            return fail_at(t, nul, "expected text, got a NUL byte");
        while (n > 0 && (t->buf[n - 1] == '\n' || t->buf[n - 1] == '\r' || t->buf[n - 1] == ' ' || t->buf[n - 1] == '\t'))
            n--;
        t->buf[n] = 0;
        if (n == 0) {
            if (!blank)
                blank = t->lines;
            continue;
        }
        if (blank) {
            t->line = blank;
            t->buf[0] = 0;
        }
        *got = 1;
        return LOOM_OK;
    }
}

static char *skip_blanks(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static int ends_token(char c) { return c == ',' || c == ' ' || c == '\t' || c == 0; }

/* Reads the decimal integer at *p (what names it in messages) and moves *p past it. */
static loom_status read_int(const text_file *t, char **p, const char *what, int64_t *v)
{
    char *start = *p, *q = start, tok[SHOWN];
    int neg = *q == '-';
    if (*q == '-' || *q == '+')
        q++;
    if (*q < '0' || *q > '9')
        return fail_at(t, start, "expected %s (an integer), got %s", what, shown(t, start, tok, sizeof tok));
    uint64_t m = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *q >= '0' && *q <= '9'; q++) {
        unsigned d = (unsigned)(*q - '0');
        if (m > (lim - d) / 10)
            return fail_at(t, start, "expected %s, got %s: outside the range of a 64-bit integer", what,
                           shown(t, start, tok, sizeof tok));
        m = m * 10 + d;
    }
    if (!ends_token(*q))
        return fail_at(t, start, "expected %s (an integer), got %s", what, shown(t, start, tok, sizeof tok));
    *v = !neg ? (int64_t)m : m > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)m;
    *p = q;
    return LOOM_OK;
}

/* Reads attribute k (1-based) of a line, a real number, at *p and moves *p past it. */
static loom_status read_real(const text_file *t, char **p, int64_t k, float *v)
{
    char *start = *p, *end = start, tok[SHOWN];
    double d = 0;
    /* strtod would skip white space; a value must start here, as an integer does. */
    if (!isspace((unsigned char)*start))
        d = strtod(start, &end);
    if (end == start || !ends_token(*end))
        return fail_at(t, start, "expected attribute %" PRId64 " (a real number), got %s", k, shown(t, start, tok, sizeof tok));
    if (!isfinite(d))
        return fail_at(t, start, "expected attribute %" PRId64 " to be a finite number, got %s", k,
                       shown(t, start, tok, sizeof tok));
    if (fabs(d) > FLT_MAX)
        return fail_at(t, start, "expected attribute %" PRId64 " within f32's range, got %s", k,
                       shown(t, start, tok, sizeof tok));
    *v = (float)d;
    *p = end;
    return LOOM_OK;
}

/* Nothing but blanks may follow what was read last (after names it in messages). */
static loom_status expect_end(const text_file *t, char *p, const char *after)
{
    char tok[SHOWN];
    p = skip_blanks(p);
    if (*p)
        return fail_at(t, p, "expected the end of the line after %s, got %s", after, shown(t, p, tok, sizeof tok));
    return LOOM_OK;
}

/* ---------------------------------------------------------------------------------------------
 * The dataset.
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    int32_t src, dst; /* within their graph */
    int64_t graph;
} tu_edge;

typedef struct {
    const char *dir, *ds;
    loom_error *err;
    int64_t nodes, graphs;
    int64_t *node_off; /* [graphs + 1]; every graph has a node, so it increases strictly */
    int64_t *glabel;   /* [graphs] graph labels as read */
    tu_edge *edge;     /* [edges] in file order */
    int64_t edges;
    int64_t *nlabel; /* [nodes] node labels as read, or NULL */
    float *attr;     /* [nodes, nattr] node attributes, or NULL */
    int64_t nattr;
} tu;

static loom_status no_memory(const tu *c, const char *what)
{
    return loom_error_set(c->err, LOOM_ERR_NOMEM, "loom_tu_load %s: out of memory for %s", c->ds, what);
}

/* n elements of elem bytes, zeroed; NULL when the size overflows or memory runs out (n = 0 asks
 * for one element, so that NULL always means failure). */
static void *alloc_n(int64_t n, size_t elem)
{
    if (n < 0 || (uint64_t)n > SIZE_MAX / elem)
        return NULL;
    return calloc(n ? (size_t)n : 1, elem);
}

/* p with room for need elements of elem bytes, its capacity *cap doubled as it fills; NULL (p left
 * as it was) when the size overflows or memory runs out. */
static void *grow(void *p, int64_t *cap, int64_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    int64_t c = *cap ? *cap : 64;
    while (c < need)
        c = c > INT64_MAX / 2 ? need : 2 * c;
    if ((uint64_t)c > SIZE_MAX / elem)
        return NULL;
    void *q = realloc(p, (size_t)c * elem);
    if (q)
        *cap = c;
    return q;
}

/* A line past the n expected, one per graph or node of the indicator. */
static loom_status extra_line(const text_file *t, const tu *c, const char *at, int64_t n, const char *unit)
{
    char tok[SHOWN];
    return fail_at(t, at, "expected the end of the file after %" PRId64 " lines, one per %s of %s_graph_indicator.txt, got %s", n,
                   unit, c->ds, shown(t, at, tok, sizeof tok));
}

/* The file ended at line i (0-based) of the n expected. */
static loom_status missing_line(const text_file *t, const tu *c, int64_t i, int64_t n, const char *what, const char *unit)
{
    return fail_line(t, i + 1,
                     "expected the %s of %s %" PRId64 ", got the end of the file: %s_graph_indicator.txt has %" PRId64 " %ss",
                     what, unit, i + 1, c->ds, n, unit);
}

/* DS_graph_indicator.txt: the graph of each node, 1 .. G, the nodes of a graph contiguous. */
static loom_status read_indicator(tu *c)
{
    text_file t;
    loom_status s = tf_open(&t, c->dir, c->ds, "_graph_indicator.txt", 1, c->err);
    int64_t cap = 0, g = 0, in_graph = 0;
    int got;
    while (!s && !(s = tf_next(&t, &got)) && got) {
        char *p = skip_blanks(t.text), *at = p;
        int64_t id;
        if ((s = read_int(&t, &p, "a graph id", &id)) || (s = expect_end(&t, p, "the graph id")))
            break;
        if (g == 0 && id != 1) {
            s = fail_at(&t, at, "expected graph id 1 on the first line, got %" PRId64, id);
            break;
        }
        if (id != g && id != g + 1) {
            s = fail_at(&t, at,
                        "expected graph id %" PRId64 " or %" PRId64 ", got %" PRId64
                        ": the nodes of a graph are contiguous and graph ids run from 1 up without gaps",
                        g, g + 1, id);
            break;
        }
        if (id == g + 1) {
            int64_t *off = grow(c->node_off, &cap, id + 1, sizeof *off);
            if (!off) {
                s = no_memory(c, "the graph offsets");
                break;
            }
            c->node_off = off;
            c->node_off[g] = c->nodes;
            g = id;
            in_graph = 0;
        }
        if (++in_graph > INT32_MAX) {
            s = fail_at(&t, at, "graph %" PRId64 " has more than 2^31 - 1 nodes, over an i32 index", g);
            break;
        }
        c->nodes++;
    }
    if (!s && g == 0)
        s = fail_line(&t, 1, "expected a graph id, got the end of the file: a dataset has at least one graph");
    if (!s) {
        c->graphs = g;
        c->node_off[g] = c->nodes;
    }
    tf_close(&t);
    return s;
}

/* A file of one integer label per graph or node (n of them): *out gets them; an optional file
 * that does not exist leaves *out NULL. */
static loom_status read_labels(tu *c, const char *suffix, int required, int64_t n, const char *unit, int64_t **out)
{
    text_file t;
    loom_status s = tf_open(&t, c->dir, c->ds, suffix, required, c->err);
    if (s || !t.f) {
        tf_close(&t);
        return s;
    }
    int64_t i = 0, *v = alloc_n(n, sizeof *v);
    if (!v)
        s = no_memory(c, "the labels");
    char what[32];
    snprintf(what, sizeof what, "a %s label", unit);
    int got;
    while (!s && !(s = tf_next(&t, &got)) && got) {
        char *p = skip_blanks(t.text);
        if (i == n) {
            s = extra_line(&t, c, p, n, unit);
            break;
        }
        if ((s = read_int(&t, &p, what, &v[i])) || (s = expect_end(&t, p, what)))
            break;
        i++;
    }
    if (!s && i < n)
        s = missing_line(&t, c, i, n, "label", unit);
    tf_close(&t);
    if (s)
        free(v);
    else
        *out = v;
    return s;
}

/* The first index of u[0 .. k), increasing, whose value is at least x (k if none). */
static int64_t first_at_least(const int64_t *u, int64_t k, int64_t x)
{
    int64_t lo = 0, hi = k;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (u[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The graph (0-based) of node v (0-based): the first whose end passes v. */
static int64_t graph_of(const tu *c, int64_t v) { return first_at_least(c->node_off + 1, c->graphs, v + 1); }

/* A node id of DS_A.txt read at *p, checked against the indicator's nodes. */
static loom_status read_node(const text_file *t, const tu *c, char **p, int64_t *v)
{
    char *at = *p;
    loom_status s = read_int(t, p, "a node id", v);
    if (!s && (*v < 1 || *v > c->nodes))
        s = fail_at(t, at, "expected a node id in [1, %" PRId64 "] (the nodes of %s_graph_indicator.txt), got %" PRId64, c->nodes,
                    c->ds, *v);
    return s;
}

/* DS_A.txt: "row, col" per line, 1-based node ids of one graph. */
static loom_status read_edges(tu *c)
{
    text_file t;
    loom_status s = tf_open(&t, c->dir, c->ds, "_A.txt", 1, c->err);
    int64_t cap = 0;
    int got;
    while (!s && !(s = tf_next(&t, &got)) && got) {
        char *p = skip_blanks(t.text), tok[SHOWN];
        int64_t a, b;
        if ((s = read_node(&t, c, &p, &a)))
            break;
        p = skip_blanks(p);
        if (*p != ',') {
            s = fail_at(&t, p, "expected ',' after the first node id, got %s", shown(&t, p, tok, sizeof tok));
            break;
        }
        p = skip_blanks(p + 1);
        char *at = p;
        if ((s = read_node(&t, c, &p, &b)) || (s = expect_end(&t, p, "the second node id")))
            break;
        int64_t ga = graph_of(c, a - 1), gb = graph_of(c, b - 1);
        if (ga != gb) {
            s = fail_at(&t, at,
                        "node %" PRId64 " is in graph %" PRId64 " but node %" PRId64 " in graph %" PRId64
                        ": expected an edge within one graph",
                        a, ga + 1, b, gb + 1);
            break;
        }
        tu_edge *e = grow(c->edge, &cap, c->edges + 1, sizeof *e);
        if (!e) {
            s = no_memory(c, "the edges");
            break;
        }
        c->edge = e;
        int64_t first = c->node_off[ga]; /* the graph's node count fits an i32 (read_indicator) */
        e[c->edges++] = (tu_edge){.src = (int32_t)(a - 1 - first), .dst = (int32_t)(b - 1 - first), .graph = ga};
    }
    tf_close(&t);
    return s;
}

/* DS_node_attributes.txt (optional): per node, comma-separated reals, as many on every line as on
 * the first. */
static loom_status read_attributes(tu *c)
{
    text_file t;
    loom_status s = tf_open(&t, c->dir, c->ds, "_node_attributes.txt", 0, c->err);
    if (s || !t.f) {
        tf_close(&t);
        return s;
    }
    int64_t i = 0, cap = 0, f = 0;
    int got;
    while (!s && !(s = tf_next(&t, &got)) && got) {
        char *p = skip_blanks(t.text), tok[SHOWN];
        if (i == c->nodes) {
            s = extra_line(&t, c, p, c->nodes, "node");
            break;
        }
        int64_t k = 0;
        for (;;) {
            if (i > 0 && k == f) {
                s = fail_at(&t, p, "expected %" PRId64 " attributes, as on line 1, got more: %s", f,
                            shown(&t, p, tok, sizeof tok));
                break;
            }
            if (i == 0) {
                float *a = grow(c->attr, &cap, k + 1, sizeof *a);
                if (!a) {
                    s = no_memory(c, "the node attributes");
                    break;
                }
                c->attr = a;
            }
            if ((s = read_real(&t, &p, k + 1, &c->attr[i * f + k])))
                break;
            k++;
            p = skip_blanks(p);
            if (!*p)
                break;
            if (*p != ',') {
                s = fail_at(&t, p, "expected ',' or the end of the line after attribute %" PRId64 ", got %s", k,
                            shown(&t, p, tok, sizeof tok));
                break;
            }
            p = skip_blanks(p + 1);
        }
        if (s)
            break;
        if (i == 0) {
            /* The first line fixes the width: room for every node's row, at once. */
            f = k;
            int64_t total;
            float *a = NULL;
            if (__builtin_mul_overflow(c->nodes, f, &total) || (uint64_t)total > SIZE_MAX / sizeof *a ||
                !(a = realloc(c->attr, (size_t)total * sizeof *a))) {
                s = no_memory(c, "the node attributes");
                break;
            }
            c->attr = a;
        } else if (k < f) {
            s = fail_at(&t, p, "expected %" PRId64 " attributes, as on line 1, got %" PRId64, f, k);
            break;
        }
        i++;
    }
    if (!s && i < c->nodes)
        s = missing_line(&t, c, i, c->nodes, "attributes", "node");
    if (!s)
        c->nattr = f;
    tf_close(&t);
    return s;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The distinct values of v[0 .. n) in increasing order (*k of them), or NULL without memory. */
static int64_t *distinct(const int64_t *v, int64_t n, int64_t *k)
{
    int64_t *u = alloc_n(n, sizeof *u);
    if (!u)
        return NULL;
    memcpy(u, v, (size_t)n * sizeof *u);
    qsort(u, (size_t)n, sizeof *u, cmp_i64);
    *k = 0;
    for (int64_t i = 0; i < n; i++)
        if (i == 0 || u[i] != u[*k - 1])
            u[(*k)++] = u[i];
    return u;
}

/* The samples from what was read: edges bucketed by graph (stably), graph labels renumbered, x of
 * the attributes then the one-hot node labels, or ones. */
#define LOOM__TU_MAX_NODE_LABELS 4096
static loom_status assemble(tu *c, loom_samples *out)
{
    int64_t nclass = 0, nlab = 0, cols, cells;
    int64_t *classes = distinct(c->glabel, c->graphs, &nclass);
    int64_t *values = c->nlabel ? distinct(c->nlabel, c->nodes, &nlab) : NULL;
    if (__builtin_add_overflow(c->nattr, nlab, &cols))
        cols = -1;
    else if (cols == 0)
        cols = 1; /* neither attributes nor node labels: a column of ones */
    out->count = c->graphs;
    out->node_off = c->node_off;
    c->node_off = NULL;
    out->edge_off = alloc_n(c->graphs + 1, sizeof *out->edge_off);
    out->src = alloc_n(c->edges, sizeof *out->src);
    out->dst = alloc_n(c->edges, sizeof *out->dst);
    out->graph_y = alloc_n(c->graphs, sizeof *out->graph_y);
    loom_status s = LOOM_OK;
    if (!out->edge_off || !out->src || !out->dst || !out->graph_y || !classes || (c->nlabel && !values))
        s = no_memory(c, "the samples");
    else if (nlab > LOOM__TU_MAX_NODE_LABELS) /* a column each: a file of distinct labels would square its size */
        s = loom_error_set(c->err, LOOM_ERR_UNSUPPORTED,
                           "loom_tu_load %s: %" PRId64 " distinct node labels, over the %d a one-hot node feature takes", c->ds,
                           nlab, LOOM__TU_MAX_NODE_LABELS);
    else if (cols < 0 || __builtin_mul_overflow(c->nodes, cols, &cells) || !(out->x = alloc_n(cells, sizeof *out->x)))
        s = no_memory(c, "the node features");
    else if (nclass > INT32_MAX)
        s = loom_error_set(c->err, LOOM_ERR_UNSUPPORTED, "loom_tu_load %s: %" PRId64 " graph classes, over an i32 label", c->ds,
                           nclass);
    if (!s) {
        /* Counting sort by graph: edge_off[g + 1] counts graph g's edges, then, summed, is where
         * graph g + 1 starts; placing advances edge_off[g] from graph g's start to its end, which
         * is graph g + 1's start, so a shift by one restores the offsets. */
        for (int64_t e = 0; e < c->edges; e++)
            out->edge_off[c->edge[e].graph + 1]++;
        for (int64_t g = 0; g < c->graphs; g++)
            out->edge_off[g + 1] += out->edge_off[g];
        for (int64_t e = 0; e < c->edges; e++) {
            int64_t at = out->edge_off[c->edge[e].graph]++;
            out->src[at] = c->edge[e].src;
            out->dst[at] = c->edge[e].dst;
        }
        for (int64_t g = c->graphs; g > 0; g--)
            out->edge_off[g] = out->edge_off[g - 1];
        out->edge_off[0] = 0;

        for (int64_t g = 0; g < c->graphs; g++)
            out->graph_y[g] = (int32_t)first_at_least(classes, nclass, c->glabel[g]);
        out->num_classes = nclass;

        out->node_features = cols;
        for (int64_t i = 0; i < c->nodes; i++) {
            float *row = out->x + i * cols;
            if (c->nattr)
                memcpy(row, c->attr + i * c->nattr, (size_t)c->nattr * sizeof *row);
            if (values)
                row[c->nattr + first_at_least(values, nlab, c->nlabel[i])] = 1.0f;
            else if (!c->nattr)
                row[0] = 1.0f;
        }
    }
    free(classes);
    free(values);
    return s;
}

loom_status loom_tu_load(const char *dir, const char *name, loom_samples *out, loom_error *err)
{
    if (out)
        *out = LOOM_SAMPLES_INIT;
    if (!dir || !name || !name[0] || !out)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_tu_load: expected a directory, a dataset name and an output");
    tu c = {.dir = dir, .ds = name, .err = err};
    loom_status s;
    if (!(s = read_indicator(&c)) && !(s = read_labels(&c, "_graph_labels.txt", 1, c.graphs, "graph", &c.glabel)) &&
        !(s = read_edges(&c)) && !(s = read_labels(&c, "_node_labels.txt", 0, c.nodes, "node", &c.nlabel)) &&
        !(s = read_attributes(&c)) && !(s = assemble(&c, out)))
        s = loom_samples_validate(out, err);
    free(c.node_off);
    free(c.glabel);
    free(c.edge);
    free(c.nlabel);
    free(c.attr);
    if (s)
        loom_samples_free(out);
    return s;
}
