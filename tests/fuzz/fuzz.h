/* What the libFuzzer targets share: the entry point's declaration and CHECK, which stops the run
 * (a crash libFuzzer reports with the input) when a property does not hold; for the targets of
 * readers that take a path, a directory of the process's own to write their inputs into; and the
 * check of what a reader of a loom_samples returns. */
#ifndef LOOM_TESTS_FUZZ_H
#define LOOM_TESTS_FUZZ_H

#include <loom/samples.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)              \
    do {                      \
        if (!(c))             \
            __builtin_trap(); \
    } while (0)

enum { FUZZ_PATH_MAX = 512 };

/* The directory fuzz_dir makes: one per process (a -jobs or -fork run has several). */
static inline char *fuzz_dir_name(void)
{
    static char path[64];
    return path;
}

/* Empties and removes the directory, at exit: the readers' inputs are not worth keeping (libFuzzer
 * saves one that fails). */
static inline void fuzz_dir_remove(void)
{
    DIR *d = opendir(fuzz_dir_name());
    if (!d)
        return;
    char path[FUZZ_PATH_MAX];
    for (struct dirent *e; (e = readdir(d));) {
        snprintf(path, sizeof path, "%s/%s", fuzz_dir_name(), e->d_name);
        if (e->d_name[0] != '.')
            unlink(path);
    }
    closedir(d);
    rmdir(fuzz_dir_name());
}

/* The directory's path, made on the first call: in /dev/shm (memory) where there is one, since the
 * targets write files for every input, a few times faster there than on a disk; else in /tmp. */
static inline const char *fuzz_dir(void)
{
    char *path = fuzz_dir_name();
    if (!path[0]) {
        strcpy(path, "/dev/shm/loom_fuzz_XXXXXX");
        if (!mkdtemp(path)) {
            strcpy(path, "/tmp/loom_fuzz_XXXXXX");
            CHECK(mkdtemp(path));
        }
        atexit(fuzz_dir_remove);
    }
    return path;
}

/* The path of name (a file name, no slash) in the directory, in buf[FUZZ_PATH_MAX]. */
static inline const char *fuzz_path(char *buf, const char *name)
{
    CHECK(snprintf(buf, FUZZ_PATH_MAX, "%s/%s", fuzz_dir(), name) < FUZZ_PATH_MAX);
    return buf;
}

/* Makes name in the directory hold exactly size bytes of data, or removes it when data is NULL (a
 * reader then finds it missing). A failure stops the run: the reader would not see the input. */
static inline void fuzz_put_file(const char *name, const uint8_t *data, size_t size)
{
    char path[FUZZ_PATH_MAX];
    fuzz_path(path, name);
    if (!data) {
        CHECK(unlink(path) == 0 || errno == ENOENT);
        return;
    }
    /* written over, then cut to size: truncating it first (O_TRUNC) has ext4 flush the old
     * contents to disk, which made a run a hundred times slower */
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    for (size_t done = 0; done < size;) {
        ssize_t k = write(fd, data + done, size - done);
        CHECK(k > 0);
        done += (size_t)k;
    }
    CHECK(ftruncate(fd, (off_t)size) == 0 && close(fd) == 0);
}

/* What a reader of a loom_samples promises, checked on what it returned (status st, set *s, err):
 * a set it accepts passes loom_samples_validate (abort() where not, which a report tells from a
 * crash inside the reader) and is freed here; a refusal has a message, its status in err, and
 * leaves *s cleared. */
static inline void fuzz_check_samples(loom_status st, loom_samples *s, const loom_error *err)
{
    if (st == LOOM_OK) {
        loom_error verr = LOOM_ERROR_INIT;
        if (loom_samples_validate(s, &verr) != LOOM_OK)
            abort();
        loom_samples_free(s);
        return;
    }
    CHECK(err->status == st && err->msg[0]);
    CHECK(!s->node_off && !s->edge_off && !s->src && !s->dst && !s->x && !s->edge_attr && !s->edge_y && !s->graph_y);
}

#endif
