/* Checkpoints: a program's parameters, optimizer state and step count in a safetensors file
 * (https://huggingface.co/docs/safetensors), which PyTorch's and NumPy's readers take as it is:
 *
 *   byte 0      u64, little-endian: N, the header's length
 *   byte 8      N bytes of JSON: {"__metadata__": {"optimizer": "adam", "step": "12"},
 *               "fc.weight": {"dtype": "F32", "shape": [4, 3], "data_offsets": [0, 48]}, ...},
 *               padded with spaces so that the data starts at a multiple of 8
 *   byte 8 + N  the tensors' data, little-endian, each at its data_offsets (from here): one after
 *               another, from 0, with no gap and nothing after the last
 *
 * The logical tensors are saved, whole, whatever the placement: the newest value of each, pulled
 * from the devices that hold it as loom_program_fetch does. A load puts the values into the
 * program's own copies and marks them the newest, so the next run pushes them to its devices on
 * any placement. The reader believes nothing before checking it: the header's length against a
 * limit and the file's size before reading it, the structure of every entry, the offsets against
 * each other and the data's size, then the tensors against the program's, all before reading the
 * data; the program changes only once everything was read. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graphs/core/files.h"
#include "graphs/core/json.h"
#include "graphs/session/program.h"

/* Values are written and read as the host holds them: the format's order is little-endian. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoints assume a little-endian host"
#endif

/* The safetensors crate refuses a longer header: a file that claims one is not a checkpoint, and
 * is refused before so much is read. */
#define CKPT_HEADER_MAX UINT64_C(100000000)

static const char *const opt_name[LOOM_OPT_KIND_COUNT] = {"none", "sgd", "adam"};

/* The format's dtypes (every one, so that a file of other dtypes is read far enough to say which
 * tensor differs), their sizes, and Loom's dtype of each (LOOM_DTYPE_COUNT: none). */
static const struct {
    const char *name;
    int size;
    loom_dtype dtype;
} dtypes[] = {
    {"F32", 4, LOOM_F32},          {"F64", 8, LOOM_F64},          {"I32", 4, LOOM_I32},
    {"I64", 8, LOOM_I64},          {"U8", 1, LOOM_U8},            {"BOOL", 1, LOOM_DTYPE_COUNT},
    {"I8", 1, LOOM_DTYPE_COUNT},   {"I16", 2, LOOM_DTYPE_COUNT},  {"U16", 2, LOOM_DTYPE_COUNT},
    {"U32", 4, LOOM_DTYPE_COUNT},  {"U64", 8, LOOM_DTYPE_COUNT},  {"F16", 2, LOOM_DTYPE_COUNT},
    {"BF16", 2, LOOM_DTYPE_COUNT}, {"C64", 8, LOOM_DTYPE_COUNT},  {"F8_E4M3", 1, LOOM_DTYPE_COUNT},
    {"F8_E5M2", 1, LOOM_DTYPE_COUNT}, {"F8_E8M0", 1, LOOM_DTYPE_COUNT},
};
#define NDTYPES ((int)(sizeof dtypes / sizeof *dtypes))

static const char *dtype_str(loom_dtype t)
{
    for (int k = 0; k < NDTYPES; k++)
        if (dtypes[k].dtype == t)
            return dtypes[k].name;
    return "?";
}

/* ---- the program's tensors -------------------------------------------------------------------- */

/* What a checkpoint holds of a program: each parameter under its name and each optimizer state
 * under "<parameter>.<state>", PyTorch's names of them, in tensor order. */
typedef struct ckpt_tensor {
    int id;
    char name[96]; /* a name (63 characters at most) and the longest suffix */
} ckpt_tensor;

typedef struct ckpt_list {
    ckpt_tensor *t;
    int n;
} ckpt_list;

static int by_name(const void *a, const void *b) { return strcmp(((const ckpt_tensor *)a)->name, ((const ckpt_tensor *)b)->name); }

/* The program's checkpoint tensors; LOOM_ERR_INVALID when two would share a name (a parameter
 * named as another's state) or one would be named as the header's metadata. */
static loom_status own_tensors(loom_program *p, const char *api, ckpt_list *out)
{
    loom_graph *g = p->g;
    *out = (ckpt_list){0};
    int n = 0;
    for (int id = 0; id < p->n; id++)
        n += g->t[id]->op == LOOM_OP_PARAM || g->t[id]->op == LOOM_OP_STATE;
    int *slot = malloc(((size_t)p->n + 1) * sizeof *slot);
    ckpt_tensor *t = malloc(((size_t)n + 1) * sizeof *t), *sorted = malloc(((size_t)n + 1) * sizeof *t);
    if (!slot || !t || !sorted) {
        free(slot);
        free(t);
        free(sorted);
        return loom__program_fail(p, LOOM_ERR_NOMEM, "%s: out of memory", api);
    }
    n = 0;
    for (int id = 0; id < p->n; id++) {
        slot[id] = -1;
        if (g->t[id]->op == LOOM_OP_PARAM || g->t[id]->op == LOOM_OP_STATE) {
            slot[id] = n;
            t[n] = (ckpt_tensor){.id = id};
            snprintf(t[n].name, sizeof t[n].name, "%s", g->t[id]->name);
            n++;
        }
    }
    /* state is named by the update that reads it: (param, grad, momentum) or (param, grad, m, v) */
    for (int id = p->bwd_end; id < p->n; id++) {
        const loom_tensor *u = g->t[id];
        static const char *const sgd[] = {"momentum"}, *const adam[] = {"exp_avg", "exp_avg_sq"};
        const char *const *suffix = u->op == LOOM_OP_SGD_UPDATE ? sgd : u->op == LOOM_OP_ADAM_UPDATE ? adam : NULL;
        for (int k = 0; suffix && k < u->n_src - 2; k++) {
            int s = slot[u->src[2 + k]->id];
            if (s >= 0)
                snprintf(t[s].name, sizeof t[s].name, "%s.%s", u->src[0]->name, suffix[k]);
        }
    }
    free(slot);
    memcpy(sorted, t, (size_t)n * sizeof *t);
    qsort(sorted, (size_t)n, sizeof *sorted, by_name);
    const char *bad = NULL;
    for (int i = 0; i < n && !bad; i++)
        if (!sorted[i].name[0] || !strcmp(sorted[i].name, "__metadata__") || (i && !strcmp(sorted[i].name, sorted[i - 1].name)))
            bad = sorted[i].name;
    loom_status s = LOOM_OK;
    if (bad)
        s = loom__program_fail(p, LOOM_ERR_INVALID, "%s: two of the program's tensors would be saved as '%s' (a parameter "
                               "named as another's optimizer state, or as the header's metadata): rename it", api, bad);
    free(sorted);
    if (s != LOOM_OK) {
        free(t);
        return s;
    }
    *out = (ckpt_list){.t = t, .n = n};
    return LOOM_OK;
}

/* What a save and a load begin with: the path checked, the program's tensors listed. */
static loom_status begin(loom_program *p, const char *api, const char *path, ckpt_list *l)
{
    *l = (ckpt_list){0};
    p->err[0] = 0;
    if (!path || !path[0])
        return loom__program_fail(p, LOOM_ERR_INVALID, "%s: the path is %s", api, path ? "empty" : "NULL");
    return own_tensors(p, api, l);
}

static size_t value_bytes(const loom_program *p, int id)
{
    return (size_t)loom__numel(&p->val[id]) * loom_dtype_size(p->val[id].dtype);
}

/* ---- saving ----------------------------------------------------------------------------------- */

/* The JSON header of the tensors of l, padded so that the data starts at a multiple of 8; NULL
 * when out of memory. */
static char *header_json(loom_program *p, const ckpt_list *l, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f)
        return NULL;
    fprintf(f, "{\"__metadata__\":{\"optimizer\":\"%s\",\"step\":\"%" PRId64 "\"}", opt_name[p->opt.kind], p->step);
    uint64_t at = 0;
    for (int i = 0; i < l->n; i++) {
        const loom__value *v = &p->val[l->t[i].id];
        fputc(',', f);
        loom__json_put_str(f, l->t[i].name);
        fprintf(f, ":{\"dtype\":\"%s\",\"shape\":[", dtype_str(v->dtype));
        for (int k = 0; k < v->ndim; k++)
            fprintf(f, "%s%" PRId64, k ? "," : "", v->shape[k]);
        /* the values are in memory, so their byte counts add up within a size_t */
        uint64_t end = at + value_bytes(p, l->t[i].id);
        fprintf(f, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", at, end);
        at = end;
    }
    fputc('}', f);
    int bad = ferror(f);
    long n = ftell(f);
    for (; n >= 0 && (8 + n) % 8; n++)
        fputc(' ', f);
    if (fclose(f) != 0 || bad || n < 0) {
        free(text);
        return NULL;
    }
    return text;
}

loom_status loom_program_save(loom_program *p, const char *path)
{
    static const char api[] = "loom_program_save";
    if (!p)
        return LOOM_ERR_INVALID;
    ckpt_list l;
    loom_status s = begin(p, api, path, &l);
    for (int i = 0; s == LOOM_OK && i < l.n; i++) /* the newest values, wherever they are */
        s = loom__program_pull(p, l.t[i].id);
    size_t hlen = 0;
    char *head = s == LOOM_OK ? header_json(p, &l, &hlen) : NULL;
    if (s == LOOM_OK && !head)
        s = loom__program_fail(p, LOOM_ERR_NOMEM, "%s: no memory for the header of %s", api, path);
    char *tmp = NULL;
    int fd = s == LOOM_OK ? loom__file_replace_open(path, &tmp) : -1;
    if (s == LOOM_OK && fd < 0)
        s = loom__program_fail(p, LOOM_ERR_IO, "%s: cannot create %s: %s", api, tmp ? tmp : path, strerror(errno));
    if (s == LOOM_OK) {
        uint8_t len[8];
        for (int k = 0; k < 8; k++)
            len[k] = (uint8_t)((uint64_t)hlen >> 8 * k);
        int err = loom__file_write(fd, len, 8);
        if (!err)
            err = loom__file_write(fd, head, hlen);
        for (int i = 0; i < l.n && !err; i++)
            err = loom__file_write(fd, p->val[l.t[i].id].data, value_bytes(p, l.t[i].id));
        int renamed;
        err = loom__file_replace_end(fd, tmp, path, err, &renamed);
        tmp = NULL; /* freed */
        if (err)
            s = loom__program_fail(p, LOOM_ERR_IO, renamed ? "%s: %s written, but its directory cannot be synced: %s"
                                                           : "%s: cannot write %s: %s", api, path, strerror(err));
    }
    free(tmp);
    free(head);
    free(l.t);
    return s;
}

/* ---- loading ---------------------------------------------------------------------------------- */

/* A tensor of the file's header. */
typedef struct file_tensor {
    const char *name;
    uint64_t at;          /* where its entry starts */
    uint64_t offsets_at;  /* where its data_offsets are */
    int dtype;            /* in dtypes[] */
    int ndim;             /* may be over LOOM_MAX_DIMS: then shape holds none */
    int64_t shape[LOOM_MAX_DIMS];
    uint64_t begin, end;  /* in the data */
} file_tensor;

typedef struct reader {
    const char *path;
    int fd;
    uint64_t size;     /* of the file */
    uint64_t hlen;     /* of the JSON header */
    char *head;        /* the file's first 8 + hlen bytes */
    loom__json doc;
    file_tensor *t;    /* in the header's order */
    int n;
    file_tensor **by_name; /* the same, by name */
    int64_t step;
    const char *optimizer; /* NULL when the metadata names none */
    loom_error *err;
} reader;

/* "F32 [4, 3]", the dtype as the format names it. */
static void describe(char *buf, size_t len, const char *dtype, int ndim, const int64_t *shape)
{
    if (ndim > LOOM_MAX_DIMS) {
        snprintf(buf, len, "%s of %d dims", dtype, ndim);
        return;
    }
    int k = snprintf(buf, len, "%s [", dtype);
    for (int i = 0; i < ndim && k >= 0 && (size_t)k < len; i++)
        k += snprintf(buf + k, len - (size_t)k, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (k >= 0 && (size_t)k < len)
        snprintf(buf + k, len - (size_t)k, "]");
}

/* The decimal step count of the metadata; -1 when v is not one. */
static int64_t step_of(const char *v)
{
    int64_t n = 0;
    if (!*v)
        return -1;
    for (; *v; v++)
        if (*v < '0' || *v > '9' || n > (INT64_MAX - (*v - '0')) / 10)
            return -1;
        else
            n = n * 10 + (*v - '0');
    return n;
}

static loom_status read_metadata(reader *r, int m)
{
    const loom__json *d = &r->doc;
    if (d->v[m].kind != LOOM__JSON_OBJ)
        return loom__file_bad(r->err, r->path, d->v[m].at, "expected __metadata__ to be an object of strings");
    r->step = -1;
    for (int c = d->v[m].first; c >= 0; c = d->v[c].next) {
        if (d->v[c].kind != LOOM__JSON_STR)
            return loom__file_bad(r->err, r->path, d->v[c].at, "expected __metadata__'s \"%s\" to be a string (the format's "
                                  "metadata are strings)", d->v[c].key);
        if (!strcmp(d->v[c].key, "step") && (r->step = step_of(d->v[c].s)) < 0)
            return loom__file_bad(r->err, r->path, d->v[c].at, "__metadata__'s step is \"%.40s\": expected a count of steps "
                                  "(decimal digits, at most 2^63 - 1)", d->v[c].s);
        if (!strcmp(d->v[c].key, "optimizer"))
            r->optimizer = d->v[c].s;
    }
    if (r->step < 0)
        return loom__file_bad(r->err, r->path, d->v[m].at, "expected the step count in __metadata__ (\"step\": \"12\"): "
                              "not a checkpoint of loom_program_save");
    return LOOM_OK;
}

/* One tensor's entry e, named key: its dtype, shape and data_offsets, each checked. */
static loom_status read_entry(reader *r, int e, file_tensor *t)
{
    const loom__json *d = &r->doc;
    const loom__json_val *v = &d->v[e];
    *t = (file_tensor){.name = v->key, .at = v->at, .dtype = -1};
    if (v->kind != LOOM__JSON_OBJ)
        return loom__file_bad(r->err, r->path, v->at, "tensor '%s': expected an object of dtype, shape and data_offsets",
                              t->name);
    int dt = loom__json_get(d, e, "dtype"), sh = loom__json_get(d, e, "shape"), of = loom__json_get(d, e, "data_offsets");
    if (dt < 0 || sh < 0 || of < 0)
        return loom__file_bad(r->err, r->path, v->at, "tensor '%s' has no %s: expected dtype, shape and data_offsets", t->name,
                              dt < 0 ? "dtype" : sh < 0 ? "shape" : "data_offsets");
    if (d->v[dt].kind != LOOM__JSON_STR)
        return loom__file_bad(r->err, r->path, d->v[dt].at, "tensor '%s': expected its dtype as a string (\"F32\")", t->name);
    for (int k = 0; k < NDTYPES && t->dtype < 0; k++)
        if (!strcmp(d->v[dt].s, dtypes[k].name))
            t->dtype = k;
    if (t->dtype < 0)
        return loom__file_bad(r->err, r->path, d->v[dt].at, "tensor '%s': unknown dtype \"%.32s\": expected one of the "
                              "format's (F32, F64, I32, I64, U8, BOOL, F16, BF16, ...)", t->name, d->v[dt].s);
    if (d->v[sh].kind != LOOM__JSON_ARR)
        return loom__file_bad(r->err, r->path, d->v[sh].at, "tensor '%s': expected its shape as an array of sizes", t->name);
    int64_t bytes = dtypes[t->dtype].size;
    t->ndim = d->v[sh].n;
    int i = 0;
    for (int c = d->v[sh].first; c >= 0; c = d->v[c].next, i++) {
        if (d->v[c].kind != LOOM__JSON_NUM || !d->v[c].is_int || d->v[c].i < 0)
            return loom__file_bad(r->err, r->path, d->v[c].at, "tensor '%s': dim %d of its shape is not a size (an integer "
                                  ">= 0)", t->name, i);
        if (i < LOOM_MAX_DIMS)
            t->shape[i] = d->v[c].i;
        if (loom__mul_size(bytes, d->v[c].i, &bytes))
            return loom__file_bad(r->err, r->path, d->v[sh].at, "tensor '%s': its shape makes more than 2^63 bytes", t->name);
    }
    const loom__json_val *o = &d->v[of];
    t->offsets_at = o->at;
    if (o->kind != LOOM__JSON_ARR || o->n != 2 || d->v[o->first].kind != LOOM__JSON_NUM || !d->v[o->first].is_int ||
        d->v[o->first].i < 0 || d->v[d->v[o->first].next].kind != LOOM__JSON_NUM || !d->v[d->v[o->first].next].is_int ||
        d->v[d->v[o->first].next].i < 0)
        return loom__file_bad(r->err, r->path, o->at, "tensor '%s': expected data_offsets [begin, end], two integers >= 0",
                              t->name);
    t->begin = (uint64_t)d->v[o->first].i;
    t->end = (uint64_t)d->v[d->v[o->first].next].i;
    if (t->begin > t->end)
        return loom__file_bad(r->err, r->path, o->at, "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] are out of order "
                              "(expected begin <= end)", t->name, t->begin, t->end);
    if (t->end - t->begin != (uint64_t)bytes) {
        char b[96];
        describe(b, sizeof b, dtypes[t->dtype].name, t->ndim, t->shape);
        return loom__file_bad(r->err, r->path, o->at, "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64
                              " bytes: expected %" PRId64 ", the bytes of %s", t->name, t->begin, t->end, t->end - t->begin,
                              bytes, b);
    }
    return LOOM_OK;
}

static int by_begin(const void *a, const void *b)
{
    const file_tensor *x = a, *y = b;
    return x->begin != y->begin ? (x->begin < y->begin ? -1 : 1) : x->end != y->end ? (x->end < y->end ? -1 : 1) : 0;
}

static int by_file_name(const void *a, const void *b)
{
    return strcmp((*(const file_tensor *const *)a)->name, (*(const file_tensor *const *)b)->name);
}

/* The tensors' data one after another from 0, with no gap, and the file ending with the last. */
static loom_status check_offsets(reader *r)
{
    uint64_t data_at = 8 + r->hlen, data = r->size - data_at;
    file_tensor *s = malloc(((size_t)r->n + 1) * sizeof *s);
    if (!s)
        return loom_error_set(r->err, LOOM_ERR_NOMEM, "%s: out of memory", r->path);
    memcpy(s, r->t, (size_t)r->n * sizeof *s);
    qsort(s, (size_t)r->n, sizeof *s, by_begin);
    loom_status st = LOOM_OK;
    uint64_t end = 0;
    for (int i = 0; i < r->n && st == LOOM_OK; i++) {
        const file_tensor *t = &s[i], *prev = i ? &s[i - 1] : NULL;
        if (t->begin < end)
            st = loom__file_bad(r->err, r->path, t->offsets_at, "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] overlap "
                                "those of '%s' [%" PRIu64 ", %" PRIu64 "]", t->name, t->begin, t->end, prev->name,
                                prev->begin, prev->end);
        else if (t->begin > end)
            st = loom__file_bad(r->err, r->path, t->offsets_at, "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] leave "
                                "a gap: expected its data to begin at %" PRIu64 ", %s", t->name, t->begin, t->end, end,
                                prev ? "where the one before ends" : "the start of the data");
        else if (t->end > data)
            st = loom__file_bad(r->err, r->path, r->size, "the file ends here, inside the data of tensor '%s' (its "
                                "data_offsets [%" PRIu64 ", %" PRIu64 "], at byte %" PRIu64 ", put it at bytes %" PRIu64
                                " to %" PRIu64 " of the file): truncated, or offsets past the data", t->name, t->begin,
                                t->end, t->offsets_at, data_at + t->begin, data_at + t->end);
        end = t->end;
    }
    if (st == LOOM_OK && end < data)
        st = loom__file_bad(r->err, r->path, data_at + end, "%" PRIu64 " bytes after the last tensor's data: expected the "
                            "file to end here", data - end);
    free(s);
    return st;
}

/* The header: its length, its JSON, every entry, the metadata, the offsets. */
static loom_status read_header(reader *r)
{
    uint8_t len[8];
    ssize_t k = loom__file_read(r->fd, len, 8);
    if (k < 0)
        return loom_error_set(r->err, LOOM_ERR_IO, "%s: cannot read: %s", r->path, strerror(errno));
    if (k < 8)
        return loom__file_bad(r->err, r->path, (uint64_t)k, "the file ends here: expected an 8-byte header length (a "
                              "safetensors file)");
    for (int i = 0; i < 8; i++)
        r->hlen |= (uint64_t)len[i] << 8 * i;
    if (r->hlen > CKPT_HEADER_MAX)
        return loom__file_bad(r->err, r->path, 0, "a header length of %" PRIu64 " bytes, over the limit of %" PRIu64
                              ": not a safetensors file", r->hlen, CKPT_HEADER_MAX);
    if (r->hlen > r->size - 8)
        return loom__file_bad(r->err, r->path, 0, "a header length of %" PRIu64 " bytes, but the file ends %" PRIu64
                              " bytes after it: truncated", r->hlen, r->size - 8);
    if (!(r->head = malloc((size_t)r->hlen + 8)))
        return loom_error_set(r->err, LOOM_ERR_NOMEM, "%s: no memory for a header of %" PRIu64 " bytes", r->path, r->hlen);
    memcpy(r->head, len, 8);
    k = loom__file_read(r->fd, r->head + 8, (size_t)r->hlen);
    if (k < 0)
        return loom_error_set(r->err, LOOM_ERR_IO, "%s: cannot read: %s", r->path, strerror(errno));
    if ((uint64_t)k < r->hlen) /* it shrank since it was opened */
        return loom__file_bad(r->err, r->path, 8 + (uint64_t)k, "the file ends here, inside the header");
    char msg[256];
    if (loom__json_parse_range(r->head, 8, 8 + (size_t)r->hlen, &r->doc, msg, sizeof msg))
        return loom_error_set(r->err, LOOM_ERR_FORMAT, "%s: %s (in the JSON header, bytes 8 to %" PRIu64 ")", r->path, msg,
                              8 + r->hlen);
    const loom__json *d = &r->doc;
    if (d->v[0].kind != LOOM__JSON_OBJ)
        return loom__file_bad(r->err, r->path, d->v[0].at, "expected the header to be a JSON object of tensors");
    if (!(r->t = malloc(((size_t)d->v[0].n + 1) * sizeof *r->t)))
        return loom_error_set(r->err, LOOM_ERR_NOMEM, "%s: out of memory", r->path);
    loom_status st = LOOM_OK;
    int meta = -1;
    for (int c = d->v[0].first; c >= 0 && st == LOOM_OK; c = d->v[c].next)
        if (!strcmp(d->v[c].key, "__metadata__"))
            st = meta >= 0 ? loom__file_bad(r->err, r->path, d->v[c].at, "a second __metadata__") : read_metadata(r, meta = c);
        else
            st = read_entry(r, c, &r->t[r->n++]);
    if (st == LOOM_OK && meta < 0)
        st = loom__file_bad(r->err, r->path, 8, "no __metadata__: expected the step count there (\"step\": \"12\"): not a "
                            "checkpoint of loom_program_save");
    if (st != LOOM_OK)
        return st;
    /* a name twice: another reader would keep one of the two */
    file_tensor **s = r->by_name = malloc(((size_t)r->n + 1) * sizeof *s);
    if (!s)
        return loom_error_set(r->err, LOOM_ERR_NOMEM, "%s: out of memory", r->path);
    for (int i = 0; i < r->n; i++)
        s[i] = &r->t[i];
    qsort(s, (size_t)r->n, sizeof *s, by_file_name);
    for (int i = 1; i < r->n && st == LOOM_OK; i++)
        if (!strcmp(s[i]->name, s[i - 1]->name))
            st = loom__file_bad(r->err, r->path, s[i]->at > s[i - 1]->at ? s[i]->at : s[i - 1]->at,
                                "a second tensor named '%s'", s[i]->name);
    return st == LOOM_OK ? check_offsets(r) : st;
}

static const file_tensor *find(const reader *r, const char *name)
{
    const file_tensor key = {.name = name}, *k = &key;
    file_tensor **t = bsearch(&k, r->by_name, (size_t)r->n, sizeof *r->by_name, by_file_name);
    return t ? *t : NULL;
}

/* Every tensor of the program in the file with its dtype and shape, in the program's order, then
 * nothing else, in the file's; the first that differs is named. found[i] gets the file's tensor
 * of the program's i-th. */
static loom_status match(loom_program *p, const ckpt_list *l, const reader *r, const file_tensor **found)
{
    char b[2][96];
    for (int i = 0; i < l->n; i++) {
        const loom__value *v = &p->val[l->t[i].id];
        const file_tensor *t = found[i] = find(r, l->t[i].name);
        describe(b[0], sizeof b[0], dtype_str(v->dtype), v->ndim, v->shape);
        if (!t)
            return loom_error_set(r->err, LOOM_ERR_FORMAT, "%s is not a checkpoint of this program: it has no tensor '%s' "
                                  "(the program's is %s)", r->path, l->t[i].name, b[0]);
        int same = dtypes[t->dtype].dtype == v->dtype && t->ndim == v->ndim;
        for (int k = 0; same && k < v->ndim; k++)
            same = t->shape[k] == v->shape[k];
        if (!same) {
            describe(b[1], sizeof b[1], dtypes[t->dtype].name, t->ndim, t->shape);
            return loom_error_set(r->err, LOOM_ERR_FORMAT, "%s is not a checkpoint of this program: tensor '%s' is %s there "
                                  "(byte %" PRIu64 "), %s in the program", r->path, t->name, b[1], t->at, b[0]);
        }
    }
    if (r->n > l->n) { /* each of the program's is one of the file's, the names of both unique: the rest are extra */
        uint8_t *ours = calloc((size_t)r->n + 1, 1);
        if (!ours)
            return loom_error_set(r->err, LOOM_ERR_NOMEM, "%s: out of memory", r->path);
        for (int i = 0; i < l->n; i++)
            ours[found[i] - r->t] = 1;
        int j = 0;
        while (ours[j])
            j++;
        free(ours);
        return loom_error_set(r->err, LOOM_ERR_FORMAT, "%s is not a checkpoint of this program: it has tensor '%s' (byte %"
                              PRIu64 "), which the program has not", r->path, r->t[j].name, r->t[j].at);
    }
    if (r->optimizer && strcmp(r->optimizer, opt_name[p->opt.kind]))
        return loom_error_set(r->err, LOOM_ERR_FORMAT, "%s is not a checkpoint of this program: its optimizer is \"%.16s\", "
                              "the program's \"%s\"", r->path, r->optimizer, opt_name[p->opt.kind]);
    return LOOM_OK;
}

loom_status loom_program_load(loom_program *p, const char *path)
{
    static const char api[] = "loom_program_load";
    if (!p)
        return LOOM_ERR_INVALID;
    ckpt_list l;
    loom_status s = begin(p, api, path, &l);
    if (s != LOOM_OK)
        return s;
    loom_error err = LOOM_ERROR_INIT;
    reader r = {.path = path, .fd = -1, .err = &err};
    const file_tensor **m = malloc(((size_t)l.n + 1) * sizeof *m);
    uint8_t *data = NULL;
    if (!m)
        s = loom_error_set(&err, LOOM_ERR_NOMEM, "out of memory");
    if (s == LOOM_OK)
        s = loom__file_open(path, LOOM_ERR_IO, &r.fd, &r.size, &err);
    if (s == LOOM_OK)
        s = read_header(&r);
    if (s == LOOM_OK)
        s = match(p, &l, &r, m);
    /* the data whole before any of it is taken, so that a failed read changes nothing */
    uint64_t data_at = 8 + r.hlen, bytes = r.size - data_at;
    if (s == LOOM_OK && !(data = malloc((size_t)bytes + 1)))
        s = loom_error_set(&err, LOOM_ERR_NOMEM, "%s: no memory for %" PRIu64 " bytes of data", path, bytes);
    if (s == LOOM_OK) {
        ssize_t k = loom__file_read(r.fd, data, (size_t)bytes);
        if (k < 0)
            s = loom_error_set(&err, LOOM_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
        else if ((uint64_t)k < bytes)
            s = loom__file_bad(&err, path, data_at + (uint64_t)k, "the file ends here, %" PRIu64 " bytes short of the data "
                               "it had when it was opened", bytes - (uint64_t)k);
    }
    if (s == LOOM_OK) {
        for (int i = 0; i < l.n; i++) {
            int id = l.t[i].id;
            memcpy(p->val[id].data, data + m[i]->begin, value_bytes(p, id));
            p->holder[id] = NULL; /* the program's copy is the newest: the next run pushes it to the devices */
        }
        p->step = r.step;
    }
    if (r.fd >= 0)
        close(r.fd);
    free(data);
    free(m);
    free(r.t);
    free(r.by_name);
    free(r.head);
    loom__json_free(&r.doc);
    free(l.t);
    return s == LOOM_OK ? s : loom__program_fail(p, s, "%s: %s", api, err.msg);
}
