/* What the libFuzzer targets share: the entry point's declaration and CHECK, which stops the run
 * (a crash libFuzzer reports with the input) when a property does not hold. */
#ifndef LOOM_TESTS_FUZZ_H
#define LOOM_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)              \
    do {                      \
        if (!(c))             \
            __builtin_trap(); \
    } while (0)

#endif
