/* libFuzzer target for the samples file reader (data/samples_file.c): the input bytes are written
 * to a file and read back with loom_samples_read.
 *
 * What must hold: no crash, sanitizer report, leak or hang; a set the reader accepts passes
 * loom_samples_validate (the reader promises it) and is freed; a refusal has a message naming the
 * file, its status in err, and leaves the output cleared. Error statuses themselves are fine.
 *
 * Almost every mutation breaks the payload's CRC-32 (header byte 68), which stops the reader before
 * the offsets and the set's own check; so unless the two low bits of that field's first byte are
 * 0 (a quarter of the inputs, which keep their checksum as mutated), the field is recomputed over
 * the payload (byte 80 to the end) before the file is written, and mutated counts, offsets,
 * endpoints and labels reach the deeper checks.
 *
 * Built by CMake with -DLOOM_FUZZ=ON (scripts/fuzz.sh samples), or by hand against a clang
 * -fsanitize=fuzzer-no-link,address,undefined build of the library:
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *       -Iinclude -I. tests/fuzz/fuzz_samples.c build-fuzz/libloom.a -lopenblas -lck -lhwloc -lz -lm -o /tmp/fuzz_samples
 *   /tmp/fuzz_samples -runs=300000 /tmp/samples-corpus tests/fuzz/corpus/samples
 * The seeds in tests/fuzz/corpus/samples are files written by loom_samples_write: generated events
 * (loom_events_generate, seed 1, 1 to 3 events of pile-up 1 and few particles: edge features and
 * edge labels), a set with graph labels and no edge features, and one with an empty sample and no
 * edges. */
#include <loom/loom.h>
#include "fuzz.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* the header's size and where it keeps the payload's CRC-32 (data/samples_file.c) */
enum { HEADER = 80, AT_CRC = 68 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *file = malloc(size ? size : 1);
    CHECK(file);
    memcpy(file, data, size);
    if (size >= HEADER && (file[AT_CRC] & 3)) {
        uint32_t crc = (uint32_t)crc32(crc32(0, NULL, 0), file + HEADER, (uInt)(size - HEADER));
        for (int k = 0; k < 4; k++)
            file[AT_CRC + k] = (uint8_t)(crc >> 8 * k);
    }
    fuzz_put_file("samples.bin", file, size);
    free(file);

    char path[FUZZ_PATH_MAX];
    fuzz_path(path, "samples.bin");
    loom_samples s;
    loom_error err = LOOM_ERROR_INIT;
    loom_status st = loom_samples_read(path, &s, &err);
    CHECK(st == LOOM_OK || strstr(err.msg, path));
    fuzz_check_samples(st, &s, &err);
    return 0;
}
