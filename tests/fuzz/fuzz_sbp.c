/* libFuzzer target for the SBP parser: parses the input as one value and as a 1- or 2-level SBP;
 * when it parses, the canonical print must re-parse to an equal value that prints the same; when
 * it fails, the status is LOOM_ERR_INVALID, the message names the SBP and the output is untouched.
 * The check against tensors of every rank runs on what parses.
 *
 * Built by CMake with -DLOOM_FUZZ=ON (scripts/fuzz.sh sbp), or by hand:
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *       -Iinclude -I. tests/fuzz/fuzz_sbp.c sbp/types/placement.c sbp/types/sbp.c sbp/types/parse.c graphs/core/core.c -o /tmp/fuzz_sbp
 *   /tmp/fuzz_sbp -runs=1000000 /tmp/sbp-corpus tests/fuzz/corpus/sbp
 * Seeds: every spelling the syntax accepts and a few near misses, one per file. */
#include <loom/sbp.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(loom_status st, const loom_error *err)
{
    if (st != LOOM_ERR_INVALID || err->status != LOOM_ERR_INVALID || strncmp(err->msg, "SBP '", 5))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    char a[64], b[64];
    loom_error err = {0};

    loom_sbp one = loom_partial_sum(), again;
    loom_status st = loom_sbp_parse(s, &one, &err);
    if (st) {
        check_error(st, &err);
        if (!loom_sbp_equal(one, loom_partial_sum()))
            __builtin_trap();
    } else {
        size_t n = loom_sbp_str(one, a, sizeof a);
        if (n >= sizeof a || loom_sbp_parse(a, &again, &err) || !loom_sbp_equal(one, again) ||
            loom_sbp_str(again, b, sizeof b) != n || strcmp(a, b))
            __builtin_trap();
    }

    loom_nd_sbp nd = loom_nd_sbp_1d(loom_broadcast()), nd2;
    st = loom_nd_sbp_parse(s, &nd, &err);
    if (st) {
        check_error(st, &err);
        loom_nd_sbp b1 = loom_nd_sbp_1d(loom_broadcast());
        if (!loom_nd_sbp_equal(&nd, &b1))
            __builtin_trap();
    } else {
        size_t n = loom_nd_sbp_str(&nd, a, sizeof a);
        if (nd.n < 1 || nd.n > LOOM_SBP_MAX_LEVELS || n >= sizeof a || loom_nd_sbp_parse(a, &nd2, &err) ||
            !loom_nd_sbp_equal(&nd, &nd2) || loom_nd_sbp_str(&nd2, b, sizeof b) != n || strcmp(a, b))
            __builtin_trap();
        /* A value that parses is valid for a tensor with more dims than its split axis. */
        for (int d = 0; d <= LOOM_MAX_DIMS; d++)
            for (int i = 0; i < nd.n; i++) {
                int ok = loom_sbp_check(nd.v[i], d, &err) == LOOM_OK;
                if (ok != (nd.v[i].kind != LOOM_SBP_SPLIT || nd.v[i].axis < d))
                    __builtin_trap();
            }
        /* The one-value parser agrees wherever it accepts. */
        if (loom_sbp_parse(s, &one, NULL) == LOOM_OK && (nd.n != 1 || !loom_sbp_equal(one, nd.v[0])))
            __builtin_trap();
    }
    free(s);
    return 0;
}
