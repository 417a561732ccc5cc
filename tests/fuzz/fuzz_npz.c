/* libFuzzer target for the .npz reader: opens the input as an archive and reads every member as
 * f64 and as i64. Any crash, sanitizer report or leak is a bug; error statuses are fine.
 *
 * Mutations of an archive's members almost always break their CRC-32, which stops the reader
 * before the .npy parser; so the input is also parsed as a bare .npy image (the corpus has a few
 * .npy seeds for that), which lets the fuzzer reach the header dict and the conversions directly.
 *
 * Built by CMake with -DLOOM_FUZZ=ON (scripts/fuzz.sh), or by hand:
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *       -Iinclude -I. tests/fuzz/fuzz_npz.c data/npz.c data/npy.c graphs/core/core.c -lz -o /tmp/fuzz_npz
 *   /tmp/fuzz_npz -runs=200000 /tmp/npz-corpus tests/fuzz/corpus/npz
 * The seeds in tests/fuzz/corpus/npz are small valid archives written with Python's zipfile and
 * struct: stored and deflated members, numpy-style zip64 local extras, a zip64 end record, a
 * comment, a data descriptor, v1/v2/v3 headers, scalar, empty and 2-D shapes, and every dtype the
 * reader knows; and three bare .npy images. */
#include <loom/loom.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads every element of a successful result, so that a short allocation shows up under ASan. */
static void touch(const loom_array *a)
{
    volatile uint8_t sink = 0;
    const uint8_t *p = a->data;
    size_t bytes = (size_t)loom_array_numel(a) * loom_dtype_size(a->dtype);
    for (size_t k = 0; k < bytes; k++)
        sink ^= p[k];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const loom_dtype as[2] = {LOOM_F64, LOOM_I64};
    for (int t = 0; t < 2; t++) {
        loom_array a;
        loom_error err = {0};
        if (loom_npy_parse(data, size, "fuzz.npy", as[t], &a, &err) == LOOM_OK)
            touch(&a);
        else if (!strstr(err.msg, "fuzz.npy"))
            __builtin_trap();
        loom_array_free(&a);
    }

    loom_npz *z = NULL;
    loom_error err = {0};
    if (loom_npz_open_mem(data, size, "fuzz.npz", &z, &err) != LOOM_OK) {
        /* Every failure carries a message naming the file. */
        if (!strstr(err.msg, "fuzz.npz"))
            __builtin_trap();
        return 0;
    }
    for (int i = 0; i < loom_npz_count(z); i++) {
        const char *name = loom_npz_name(z, i);
        for (int t = 0; t < 2; t++) {
            loom_array a;
            err = (loom_error){0};
            loom_status s = loom_npz_read(z, name, as[t], &a, &err);
            if (s == LOOM_OK)
                touch(&a);
            else if (!strstr(err.msg, "fuzz.npz"))
                __builtin_trap();
            loom_array_free(&a);
        }
    }
    loom_npz_close(z);
    return 0;
}
