/* libFuzzer target for the plan-JSON reader (graphs/plan/plan_json_read.c on graphs/core/json.c): the
 * input bytes are the text given to loom__plan_read_json; a plan it accepts is printed (to /dev/null) and
 * freed.
 *
 * What must hold: no crash, sanitizer report, leak or hang; a refusal has a message naming the
 * text and a byte offset ("fuzz: byte N: ..."); an accepted plan prints without reading out of
 * bounds. Error statuses themselves are fine.
 *
 * Built by CMake with -DLOOM_FUZZ=ON (scripts/fuzz.sh plan_json), or by hand against a clang
 * -fsanitize=fuzzer-no-link,address,undefined build of the library:
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *       -Iinclude -I. tests/fuzz/fuzz_plan_json.c build-fuzz/libloom.a -lopenblas -lck -lhwloc -lz -lm -o /tmp/fuzz_plan_json
 *   /tmp/fuzz_plan_json -runs=200000 -max_len=200000 /tmp/plan_json-corpus tests/fuzz/corpus/plan_json
 * The seeds in tests/fuzz/corpus/plan_json are plans written by `loom plan ... --json`: the MLP on
 * cpu:0-1 and on cpu:0, and the GCN on cpu:0-3. */
#include "graphs/plan/plan.h"

#include "fuzz.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static FILE *null_file(void)
{
    static FILE *f;
    if (!f)
        f = fopen("/dev/null", "w");
    return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes, with no terminator: a read past the text shows up under ASan. */
    char *text = malloc(size ? size : 1);
    CHECK(text);
    if (size)
        memcpy(text, data, size);
    char msg[512];
    memset(msg, 0, sizeof msg);
    loom__plan *pl = loom__plan_read_json(text, size, "fuzz", msg, sizeof msg);
    if (pl) {
        FILE *f = null_file();
        CHECK(f);
        loom__plan_print(pl, f);
        loom__plan_free(pl);
    } else {
        /* "fuzz: byte N: ..." */
        CHECK(!strncmp(msg, "fuzz: byte ", 11));
        CHECK(msg[11] >= '0' && msg[11] <= '9');
    }
    if (getenv("FUZZ_PLAN_JSON_VERBOSE"))
        fprintf(stderr, "%s\n", pl ? "accepted" : msg);
    free(text);
    return 0;
}
