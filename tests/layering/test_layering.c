/* ctest `layering`: the source tree has no edge against the flow of the design (check.h), and the
 * check finds each kind of edge when one is planted in a small tree of its own: an include that
 * points up, a call that points up, a user's internal include and call, LOOM_HAVE_CUDA outside the
 * device layer, a file in no layer. */
#define _GNU_SOURCE
#include "check.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef LOOM_SOURCE_DIR
#error "LOOM_SOURCE_DIR names the source tree"
#endif

/* The check's report on root, and the number of violations. */
static char *run_check(const char *root, int *n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    *n = layering_check(root, f);
    fclose(f);
    return buf;
}

START_TEST(test_the_tree_follows_the_flow)
{
    int n;
    char *report = run_check(LOOM_SOURCE_DIR, &n);
    ck_assert_msg(n == 0, "%d edges against the flow:\n%.3000s", n, report);
    free(report);
}
END_TEST

static void put(const char *root, const char *rel, const char *text)
{
    char path[512], dir[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    snprintf(dir, sizeof dir, "%s", path);
    for (char *s = dir + strlen(root) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        mkdir(dir, 0700);
        *s = '/';
    }
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_planted_edges_are_found)
{
    char root[] = "/tmp/loom_layering_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(root));
    /* what is allowed: downward includes and calls, a user on the public API */
    put(root, "include/loom/loom.h", "int loom_api(void);\n");
    put(root, "graphs/core/core.c", "#include <loom/loom.h>\nint loom__ground(void)\n{\n    return 1;\n}\n");
    put(root, "actors/exec.h", "int loom__exec_run(void);\n");
    put(root, "actors/exec.c", "#include \"actors/exec.h\"\n#include \"graphs/core/json.h\"\nint loom__exec_run(void)\n{\n    return loom__ground();\n}\n");
    put(root, "graphs/core/json.h", "int loom__json(void);\n");
    put(root, "graphs/session/run.c", "#include \"actors/exec.h\"\nint loom_api(void)\n{\n    return loom__exec_run();\n}\n");
    put(root, "tools/ok.c", "#include <loom/loom.h>\n/* loom__exec_run() in a comment is no call */\nint main(void)\n{\n    return loom_api();\n}\n");
    put(root, "ops/cuda/k.c", "#ifdef LOOM_HAVE_CUDA\n#endif\n");
    put(root, "tests/anything.c", "#include \"actors/exec.h\"\n");
    int n;
    char *report = run_check(root, &n);
    ck_assert_msg(n == 0, "a tree that follows the flow: %s", report);
    free(report);

    /* planted: each of these is one edge against the flow */
    put(root, "graphs/core/bad_include.c", "#include \"actors/exec.h\"\n");
    put(root, "graphs/core/bad_call.c", "int loom__ground2(void)\n{\n    return loom__exec_run();\n}\n");
    put(root, "bench/bad.c", "#include \"graphs/core/json.h\"\nint main(void)\n{\n    return loom__json();\n}\n");
    put(root, "ops/cpu/bad_macro.c", "#ifdef LOOM_HAVE_CUDA\n#endif\n");
    put(root, "newfolder/x.c", "int y;\n");
    report = run_check(root, &n);
    const char *want[] = {
        "graphs/core/bad_include.c:1: includes \"actors/exec.h\": the ground types (layer 0) may not depend on the actors (layer 5)",
        "graphs/core/bad_call.c:3: calls loom__exec_run (actors/exec.c): the ground types (layer 0) may not depend on the actors (layer 5)",
        "bench/bad.c:1: includes \"graphs/core/json.h\", which is not the public API",
        "bench/bad.c:4: calls loom__json, which is not the public API",
        "ops/cpu/bad_macro.c:1: reads LOOM_HAVE_CUDA outside the device layer",
        "newfolder/x.c: in no layer",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        ck_assert_msg(strstr(report, want[i]), "missing \"%s\" in:\n%s", want[i], report);
    ck_assert_msg(n == (int)(sizeof want / sizeof *want), "%d violations:\n%s", n, report);
    free(report);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("layering");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, test_the_tree_follows_the_flow);
    tcase_add_test(tc, test_planted_edges_are_found);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
