/* libFuzzer target for the placement parser: parses the input as a string; when it parses, the
 * canonical print must re-parse to an equal placement that prints the same, and the accessors must
 * agree with each other; when it fails, the status is LOOM_ERR_INVALID and the message names the
 * placement. Anything else (a crash, a sanitizer report, a leak) is a bug.
 *
 * Built by CMake with -DLOOM_FUZZ=ON (scripts/fuzz.sh placement), or by hand:
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *       -Iinclude -I. tests/fuzz/fuzz_placement.c sbp/types/placement.c sbp/types/sbp.c sbp/types/parse.c graphs/core/core.c -o /tmp/fuzz_placement
 *   /tmp/fuzz_placement -runs=1000000 /tmp/placement-corpus tests/fuzz/corpus/placement
 * Seeds: the syntax's examples and a few near misses, one per file. */
#include <loom/sbp.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The canonical print in a malloc'd buffer, sized by a first call. */
static char *print(const loom_placement *p)
{
    size_t n = loom_placement_str(p, NULL, 0);
    char *s = malloc(n + 1);
    if (!s || loom_placement_str(p, s, n + 1) != n || strlen(s) != n)
        __builtin_trap();
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;

    loom_error err = {0};
    loom_placement *p = loom_placement_parse(s, &err);
    if (!p) {
        if (err.status != LOOM_ERR_INVALID || strncmp(err.msg, "placement", 9))
            __builtin_trap();
        free(s);
        return 0;
    }
    char *a = print(p);
    loom_placement *q = loom_placement_parse(a, &err);
    if (!q || !loom_placement_equal(p, q) || !loom_placement_overlaps(p, q))
        __builtin_trap();
    char *b = print(q);
    if (strcmp(a, b))
        __builtin_trap();

    /* Accessors: device i is found at position i; hierarchy and counts agree. */
    int dims[2], h = loom_placement_hierarchy(p, dims), n = loom_placement_ndevices(p);
    if (n != loom_placement_nranks(p) * loom_placement_ndevices_per_rank(p) || (h == 1 ? dims[0] : dims[0] * dims[1]) != n ||
        (loom_placement_has_ranks(p) && h != 2) || loom_placement_device(p, n, NULL) != -1)
        __builtin_trap();
    for (int i = 0; i < n && i < 512; i++) {
        int r, d = loom_placement_device(p, i, &r);
        if (d < 0 || d > LOOM_MAX_DEVICE_INDEX || r < 0 || r > LOOM_MAX_RANK || loom_placement_find(p, r, d) != i)
            __builtin_trap();
    }
    loom_placement *c = loom_placement_copy(p);
    if (!loom_placement_equal(c, p) || loom_placement_check(p, LOOM_MAX_RANK + 1, LOOM_MAX_DEVICE_INDEX + 1, &err) != LOOM_OK)
        __builtin_trap();

    loom_placement_free(c);
    loom_placement_free(q);
    loom_placement_free(p);
    free(b);
    free(a);
    free(s);
    return 0;
}
