/* libFuzzer target for the TU dataset reader (data/tu.c): the input is split at the byte 0x1e
 * (ASCII's record separator, which no TU file holds) into up to five parts, the files of dataset
 * T in a directory of the process's own, in this order:
 *
 *   T_A.txt  T_graph_indicator.txt  T_graph_labels.txt  T_node_labels.txt  T_node_attributes.txt
 *
 * then loom_tu_load reads them. A file whose part is absent (the input has fewer separators) or
 * begins with the byte 0x18 is missing, so that the optional files' absence and a required file's
 * are both reached; a sixth part onwards is ignored. Any other byte, NUL included, reaches the
 * files.
 *
 * What must hold: no crash, sanitizer report, leak or hang; a set the reader accepts passes
 * loom_samples_validate and is freed; a refusal has a message, its status in err, and leaves the
 * output cleared. Error statuses themselves are fine.
 *
 * Built by CMake with -DLOOM_FUZZ=ON (scripts/fuzz.sh tu), or by hand against a clang
 * -fsanitize=fuzzer-no-link,address,undefined build of the library:
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *       -Iinclude -I. tests/fuzz/fuzz_tu.c build-fuzz/libloom.a -lopenblas -lck -lhwloc -lz -lm -o /tmp/fuzz_tu
 *   /tmp/fuzz_tu -runs=300000 /tmp/tu-corpus tests/fuzz/corpus/tu
 * The seeds in tests/fuzz/corpus/tu are valid datasets of two or three graphs in this encoding,
 * written with Python: node labels alone; node attributes alone, the node labels' part marked
 * missing (CRLF line ends, no final newline); both (blanks around values, blank lines at the
 * ends, a self-loop); neither (three parts, a graph without edges). */
#include <loom/loom.h>
#include "fuzz.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { SEPARATOR = 0x1e, MISSING = 0x18, FILES = 5 };

static const char *const file_names[FILES] = {"T_A.txt", "T_graph_indicator.txt", "T_graph_labels.txt",
                                              "T_node_labels.txt", "T_node_attributes.txt"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    for (int k = 0; k < FILES; k++) {
        if (!p) {
            fuzz_put_file(file_names[k], NULL, 0);
            continue;
        }
        const uint8_t *sep = memchr(p, SEPARATOR, (size_t)(end - p));
        size_t len = (size_t)((sep ? sep : end) - p);
        fuzz_put_file(file_names[k], len && p[0] == MISSING ? NULL : p, len);
        p = sep ? sep + 1 : NULL;
    }

    loom_samples s;
    loom_error err = LOOM_ERROR_INIT;
    loom_status st = loom_tu_load(fuzz_dir(), "T", &s, &err);
    fuzz_check_samples(st, &s, &err);
    return 0;
}
