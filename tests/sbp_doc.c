/* Writes docs/sbp.md, the SBP signatures of every op of the registry, from the cases test_sbp_sig
 * proves them on (sbp_sig_cases.c): for each case, the op built on the case's shapes and
 * attributes and the signatures its definition lists for them.
 *
 *     sbp_doc FILE            writes the guide to FILE
 *     sbp_doc --check FILE    exits 1, naming the first line that differs and how to regenerate,
 *                             when FILE is not what sbp_doc would write (the sbp_doc test)
 */
#include "sbp_sig_cases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The command that rewrites the guide, as the file says it (any build folder's) and as the test
 * says it (this build's). */
static const char *const REGENERATE = "cmake --build build --target sbp-doc";
#ifndef LOOM_SBP_DOC_REGENERATE
#define LOOM_SBP_DOC_REGENERATE "cmake --build build --target sbp-doc"
#endif

/* A case's label in a table cell: in backquotes, a '|' escaped. */
static void put_cell(FILE *f, const char *s)
{
    fputc('`', f);
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('`', f);
}

static void write_op(FILE *f, loom_op op)
{
    const loom_op_def *def = loom__op_def(op);
    op_case cs[MAX_CASES];
    int nc = make_cases(op, cs);
    fprintf(f, "\n## %s\n\n", def->name);
    if (nc == 0) {
        fprintf(f, "No case in `tests/sbp_sig_cases.c`: `test_sbp_sig` fails until it has one.\n");
        return;
    }
    fprintf(f, "| case: shapes and attributes | signatures besides (B, ..., B) -> B |\n| --- | --- |\n");
    for (int i = 0; i < nc; i++) {
        const op_case *c = &cs[i];
        val vals[LOOM__MAX_SRC];
        for (int k = 0; k < c->n_src; k++)
            vals[k] = c->src[k].v;
        loom_graph *g;
        loom_tensor *src[LOOM__MAX_SRC];
        char why[600], b[160];
        loom_tensor *t = case_build(c, vals, &c->a, 1, &g, src, why, sizeof why);
        fputs("| ", f);
        put_cell(f, c->label);
        fputs(" | ", f);
        if (!t) {
            fprintf(stderr, "sbp_doc: %s: %s\n", c->label, why);
            fputs("(the case does not build) |\n", f);
        } else {
            loom__sbp_sig sigs[LOOM__MAX_SIGS];
            int nsig = def->sbp ? def->sbp(t, sigs, LOOM__MAX_SIGS) : 0;
            for (int s = 0; s < nsig; s++)
                fprintf(f, "%s`%s`", s ? "<br>" : "", case_sig_str(&sigs[s], t->n_src, b, sizeof b));
            fputs(nsig ? " |\n" : "none |\n", f);
        }
        loom_graph_free(g);
        for (int k = 0; k < c->n_src; k++)
            val_free(&cs[i].src[k].v);
    }
}

/* The names of the ops with any of flags (or move), in backquotes, comma separated. */
static void put_ops(FILE *f, uint32_t flags, int move)
{
    int n = 0;
    for (int op = 0; op < LOOM_OP_COUNT; op++)
        if ((loom__op_def((loom_op)op)->flags & flags) || (move && op == LOOM_OP_MOVE))
            fprintf(f, "%s`%s`", n++ ? ", " : "", loom__op_def((loom_op)op)->name);
}

static void write_guide(FILE *f)
{
    fprintf(f, "# SBP signatures of every op\n\n"
               "<!-- Written by tests/sbp_doc.c; do not edit. After changing an op's signatures or its "
               "cases, run\n     %s\n     (the sbp_doc test fails while this file is stale). -->\n\n",
               REGENERATE);
    fputs("On a placement of several devices each op runs under one of its SBP signatures: the SBP of each\n"
          "input, then `->`, the SBP of its output (`S(i)` split along axis i, `B` broadcast, `P` partial\n"
          "sum; `docs/placement.md`). Inference picks one per op by the boxing it costs (`loom plan`\n"
          "prints which and why). The signature with every input and the output `B` holds for every op\n"
          "and is not listed.\n\n"
          "An op's signatures depend on its shapes and attributes, so each op below shows them for the\n"
          "cases `tests/test_sbp_sig.c` proves them on, from `tests/sbp_sig_cases.c`: small shapes whose\n"
          "split axes are 5 or 7 long, one case per attribute that changes the list. `N` is a dynamic\n"
          "dimension (the nodes or edges of a graph batch), which splits only along axis 0. Each signature\n"
          "listed was run on 2 and 3 devices and gave the logical result.\n\n"
          "This file is generated from the op registry (`graphs/core/ops.def`, the definitions in `ops/`)\n"
          "and those cases by `tests/sbp_doc.c`; the `sbp_doc` test fails when it is out of date.\n",
          f);
    fputs("\nOps that hold values (", f);
    put_ops(f, LOOM__OPF_LEAF, 0);
    fputs(") list no signatures: they take the SBP that\n`loom_tensor_set_sbp` gives them or inference chooses. Nor "
          "do the in-place updates\n(", f);
    put_ops(f, LOOM__OPF_INPLACE, 0);
    fputs("), which follow what they update, or ", f);
    put_ops(f, 0, 1);
    fputs(", which takes any\nSBP on its destination.\n", f);
    for (int op = 0; op < LOOM_OP_COUNT; op++) {
        const loom_op_def *def = loom__op_def((loom_op)op);
        if (!(def->flags & (LOOM__OPF_LEAF | LOOM__OPF_INPLACE)) && op != LOOM_OP_MOVE)
            write_op(f, (loom_op)op);
    }
}

/* The first line where a and b differ (1-based). */
static int first_diff_line(const char *a, const char *b)
{
    int line = 1;
    for (; *a && *a == *b; a++, b++)
        line += *a == '\n';
    return line;
}

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *s = NULL;
    size_t cap = 0;
    *n = 0;
    for (;;) {
        if (*n + 4096 + 1 > cap) {
            cap = 2 * cap + 4096 + 1;
            char *p = realloc(s, cap);
            if (!p)
                break;
            s = p;
        }
        size_t got = fread(s + *n, 1, cap - *n - 1, f);
        *n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f) || !s;
    fclose(f);
    if (bad) {
        free(s);
        return NULL;
    }
    s[*n] = 0;
    return s;
}

static const char *doc_path;
static int doc_check;

/* A Check test, since the cases assert as they build (ck_assert outside a test cannot report). */
START_TEST(test_sbp_doc)
{
    char *want = NULL;
    size_t nwant = 0;
    FILE *f = open_memstream(&want, &nwant);
    ck_assert_ptr_nonnull(f);
    write_guide(f);
    ck_assert_int_eq(fclose(f), 0);
    if (doc_check) {
        size_t nhave;
        char *have = read_all(doc_path, &nhave);
        ck_assert_msg(have, "cannot read %s; write it with: %s", doc_path, LOOM_SBP_DOC_REGENERATE);
        ck_assert_msg(nhave == nwant && !memcmp(have, want, nwant),
                      "%s is out of date (it differs from line %d on): the op registry or the cases of "
                      "tests/sbp_sig_cases.c changed. Regenerate it and commit the result: %s",
                      doc_path, first_diff_line(have, want), LOOM_SBP_DOC_REGENERATE);
        printf("sbp_doc: %s is up to date\n", doc_path);
        free(have);
    } else {
        FILE *o = fopen(doc_path, "w");
        int bad = !o || fwrite(want, 1, nwant, o) != nwant;
        ck_assert_msg(!((o && fclose(o) != 0) || bad), "cannot write %s", doc_path);
        printf("sbp_doc: wrote %s\n", doc_path);
    }
    free(want);
}
END_TEST

int main(int argc, char **argv)
{
    doc_check = argc == 3 && !strcmp(argv[1], "--check");
    if (argc != 2 + doc_check || argv[argc - 1][0] == '-') {
        fprintf(stderr, "usage: sbp_doc FILE | sbp_doc --check FILE\n");
        return 2;
    }
    doc_path = argv[argc - 1];
    Suite *s = suite_create("sbp_doc");
    TCase *tc = tcase_create("doc");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sbp_doc);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
