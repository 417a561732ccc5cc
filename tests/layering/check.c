/* The layering check (see check.h): files are read whole; comments and string literals are blanked
 * (keeping line breaks) before definitions and calls are looked for, includes are read from the
 * text as written. A function is defined where a line at column 0 names it before '(' and its
 * declaration reaches '{' before ';'. */
#define _GNU_SOURCE /* nftw with FTW_ACTIONRETVAL */
#include "check.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>

typedef struct layer {
    const char *prefix;
    int rank;
    const char *name;
} layer;

static const layer layers[] = {
    {"include/loom/", 0, "the public headers"}, {"graphs/core/", 0, "the ground types"},
    {"sbp/types/", 0, "the ground types"},      {"runtime/devices/", 1, "the devices"},
    {"runtime/", 1, "the runtime"},             {"ops/", 2, "the ops"},
    {"graphs/builder/", 2, "the builder"},      {"sbp/infer/", 3, "the graph passes"},
    {"graphs/plan/", 4, "the compiled plan"},   {"actors/", 5, "the actors"},
    {"graphs/session/", 6, "the session"},      {"nn/", 7, "the models"},
    {"data/", 7, "the datasets"},               {"tools/", 8, "the tools"},
    {"examples/", 8, "the examples"},           {"bench/", 8, "the benchmarks"},
};
#define USERS 8
/* Where LOOM_HAVE_CUDA may be read: the device layer. */
static const char *const cuda_ok[] = {"runtime/devices/", "actors/devices/", "ops/cuda/"};

typedef struct file {
    char *path; /* relative to the root */
    char *text; /* as written */
    char *code; /* comments and strings blanked */
    const layer *l;
} file;

typedef struct def {
    char *name;
    int file;
} def;

static struct {
    const char *root;
    size_t rootlen;
    file *f;
    int n, cap;
    int failed;
} tree;

static const layer *layer_of(const char *path)
{
    const layer *best = NULL;
    for (size_t i = 0; i < sizeof layers / sizeof *layers; i++)
        if (!strncmp(path, layers[i].prefix, strlen(layers[i].prefix)) && (!best || strlen(layers[i].prefix) > strlen(best->prefix)))
            best = &layers[i];
    return best;
}

static int source_file(const char *p)
{
    const char *dot = strrchr(p, '.');
    return dot && (!strcmp(dot, ".c") || !strcmp(dot, ".h") || !strcmp(dot, ".cu") || !strcmp(dot, ".def"));
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = 0;
    fclose(f);
    return s;
}

/* Comments, string and character literals become spaces; line breaks stay. */
static char *blank(const char *t)
{
    char *c = strdup(t);
    if (!c)
        return NULL;
    for (size_t i = 0; c[i];) {
        if (c[i] == '/' && c[i + 1] == '*') {
            while (c[i] && !(c[i] == '*' && c[i + 1] == '/'))
                c[i] = c[i] == '\n' ? '\n' : ' ', i++;
            if (c[i])
                c[i] = c[i + 1] = ' ', i += 2;
        } else if (c[i] == '/' && c[i + 1] == '/') {
            while (c[i] && c[i] != '\n')
                c[i++] = ' ';
        } else if (c[i] == '"' || c[i] == '\'') {
            char q = c[i];
            c[i++] = ' ';
            while (c[i] && c[i] != q && c[i] != '\n') {
                if (c[i] == '\\' && c[i + 1])
                    c[i++] = ' ';
                c[i++] = ' ';
            }
            if (c[i] == q)
                c[i++] = ' ';
        } else {
            i++;
        }
    }
    return c;
}

static int visit(const char *path, const struct stat *st, int kind, struct FTW *ftw)
{
    (void)st;
    const char *rel = path + tree.rootlen + (path[tree.rootlen] == '/');
    const char *base = path + ftw->base;
    if (kind == FTW_D && ftw->level > 0 &&
        (base[0] == '.' || !strncmp(base, "build", 5) || !strcmp(base, "gpu-deps") || !strcmp(base, "gpu-data") ||
         (ftw->level == 1 && !strcmp(base, "tests"))))
        return FTW_SKIP_SUBTREE;
    if (kind != FTW_F || !source_file(rel))
        return FTW_CONTINUE;
    if (tree.n == tree.cap) {
        tree.cap = tree.cap ? tree.cap * 2 : 256;
        file *f = realloc(tree.f, (size_t)tree.cap * sizeof *f);
        if (!f)
            return tree.failed = 1, FTW_STOP;
        tree.f = f;
    }
    file *f = &tree.f[tree.n];
    *f = (file){.path = strdup(rel), .text = slurp(path), .l = layer_of(rel)};
    f->code = f->text ? blank(f->text) : NULL;
    if (!f->path || !f->text || !f->code)
        return tree.failed = 1, FTW_STOP;
    tree.n++;
    return FTW_CONTINUE;
}

static int find_file(const char *rel)
{
    for (int i = 0; i < tree.n; i++)
        if (!strcmp(tree.f[i].path, rel))
            return i;
    return -1;
}

static int line_of(const char *text, const char *at)
{
    int n = 1;
    for (const char *p = text; p < at; p++)
        n += *p == '\n';
    return n;
}

static int ident(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

static int violations;
static FILE *out;

static void report(const file *f, const char *at, const char *what, const file *to)
{
    violations++;
    fprintf(out, "%s:%d: %s", f->path, line_of(f->code, at), what);
    if (to)
        fprintf(out, ": %s (layer %d) may not depend on %s (layer %d)", f->l->name, f->l->rank, to->l->name, to->l->rank);
    fputc('\n', out);
}

/* The file an include names: from the root when it has a '/', else beside the includer. */
static int include_target(const file *f, const char *name, size_t len)
{
    char rel[512];
    if (len >= 256)
        return -1;
    if (memchr(name, '/', len)) {
        snprintf(rel, sizeof rel, "%.*s", (int)len, name);
    } else {
        const char *slash = strrchr(f->path, '/');
        snprintf(rel, sizeof rel, "%.*s%.*s", slash ? (int)(slash - f->path + 1) : 0, f->path, (int)len, name);
    }
    return find_file(rel);
}

static void check_includes(const file *f)
{
    for (const char *p = f->text; (p = strstr(p, "#include")); p += 8) {
        const char *q = p + 8;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q != '"' && *q != '<')
            continue;
        const char *end = strchr(q + 1, *q == '"' ? '"' : '>');
        const char *nl = strchr(q, '\n');
        if (!end || (nl && end > nl))
            continue;
        char what[600];
        if (*q == '<')
            continue; /* a system header, or the public API */
        int t = include_target(f, q + 1, (size_t)(end - q - 1));
        snprintf(what, sizeof what, "includes \"%.*s\"", (int)(end - q - 1), q + 1);
        if (t < 0) {
            if (f->l->rank == USERS) /* an internal header a user cannot have */
                report(f, f->code + (p - f->text), strcat(what, ", which is not the public API"), NULL);
            continue;
        }
        const file *to = &tree.f[t];
        if (!to->l)
            continue;
        int own_folder = strrchr(to->path, '/') && strrchr(f->path, '/') &&
                         strrchr(to->path, '/') - to->path == strrchr(f->path, '/') - f->path &&
                         !strncmp(to->path, f->path, (size_t)(strrchr(f->path, '/') - f->path));
        if (f->l->rank == USERS && !own_folder && strncmp(to->path, "include/loom/", 13))
            report(f, f->code + (p - f->text), strcat(what, ", which is not the public API"), NULL);
        else if (to->l->rank > f->l->rank)
            report(f, f->code + (p - f->text), what, to);
    }
}

/* Every function defined at column 0 whose name starts with loom_ (static ones too: a call is
 * resolved in its own file first). */
static def *collect_defs(int *ndefs)
{
    def *d = NULL;
    int n = 0, cap = 0;
    for (int i = 0; i < tree.n; i++) {
        const char *c = tree.f[i].code;
        for (const char *line = c; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
            if (!ident(*line) || !strncmp(line, "return", 6) || !strncmp(line, "typedef", 7))
                continue;
            const char *paren = line;
            while (*paren && *paren != '(' && *paren != '\n' && *paren != ';' && *paren != '=')
                paren++;
            if (*paren != '(')
                continue;
            const char *e = paren;
            while (e > line && e[-1] == ' ')
                e--;
            const char *s = e;
            while (s > line && ident(s[-1]))
                s--;
            if (e - s < 6 || strncmp(s, "loom_", 5))
                continue;
            const char *brace = strchr(paren, '{'), *semi = strchr(paren, ';');
            if (!brace || (semi && semi < brace))
                continue; /* a declaration */
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                def *nd = realloc(d, (size_t)cap * sizeof *nd);
                if (!nd)
                    return free(d), NULL;
                d = nd;
            }
            d[n].name = strndup(s, (size_t)(e - s));
            d[n++].file = i;
        }
    }
    *ndefs = n;
    return d;
}

static void check_calls(int fi, const def *d, int nd)
{
    const file *f = &tree.f[fi];
    for (const char *p = f->code; *p; p++) {
        if (strncmp(p, "loom_", 5) || (p > f->code && ident(p[-1])))
            continue;
        const char *e = p;
        while (ident(*e))
            e++;
        const char *q = e;
        while (*q == ' ')
            q++;
        size_t len = (size_t)(e - p);
        const char *bol = p;
        while (bol > f->code && bol[-1] != '\n')
            bol--;
        const char *first = ident(*bol) ? strchr(bol, '(') : NULL;
        if (first == q) { /* the name a column-0 line declares or defines */
            p = e - 1;
            continue;
        }
        if (*q != '(') {
            p = e - 1;
            continue;
        }
        int own = -1, other = -1, others = 0;
        for (int i = 0; i < nd; i++)
            if (strlen(d[i].name) == len && !strncmp(d[i].name, p, len)) {
                if (d[i].file == fi)
                    own = i;
                else if (other < 0 || d[i].file != d[other].file)
                    other = i, others++;
            }
        char what[200];
        if (own < 0 && f->l->rank == USERS && !strncmp(p, "loom__", 6)) {
            snprintf(what, sizeof what, "calls %.*s, which is not the public API", (int)len, p);
            report(f, p, what, NULL);
        } else if (own < 0 && others == 1 && tree.f[d[other].file].l && tree.f[d[other].file].l->rank > f->l->rank) {
            snprintf(what, sizeof what, "calls %.*s (%s)", (int)len, p, tree.f[d[other].file].path);
            report(f, p, what, &tree.f[d[other].file]);
        }
        p = e - 1;
    }
}

static void check_cuda_macro(const file *f)
{
    for (size_t i = 0; i < sizeof cuda_ok / sizeof *cuda_ok; i++)
        if (!strncmp(f->path, cuda_ok[i], strlen(cuda_ok[i])))
            return;
    const char *p = strstr(f->code, "LOOM_HAVE_CUDA");
    if (p)
        report(f, p, "reads LOOM_HAVE_CUDA outside the device layer", NULL);
}

int layering_check(const char *root, FILE *o)
{
    out = o;
    violations = 0;
    tree.root = root;
    tree.rootlen = strlen(root);
    tree.failed = 0;
    if (nftw(root, visit, 32, FTW_ACTIONRETVAL | FTW_PHYS) != 0 || tree.failed) {
        fprintf(out, "cannot read the tree at %s\n", root);
        return -1;
    }
    int nd = 0;
    def *d = collect_defs(&nd);
    for (int i = 0; i < tree.n; i++) {
        if (!tree.f[i].l) {
            violations++;
            fprintf(out, "%s: in no layer (a new folder needs its place in tests/layering/check.c)\n", tree.f[i].path);
            continue;
        }
        check_includes(&tree.f[i]);
        if (d && strncmp(tree.f[i].path, "include/loom/", 13)) /* the API's own inline wrappers call the API */
            check_calls(i, d, nd);
        check_cuda_macro(&tree.f[i]);
    }
    for (int i = 0; i < nd; i++)
        free(d[i].name);
    free(d);
    for (int i = 0; i < tree.n; i++) {
        free(tree.f[i].path);
        free(tree.f[i].text);
        free(tree.f[i].code);
    }
    free(tree.f);
    tree.f = NULL;
    tree.n = tree.cap = 0;
    return violations;
}
