/* Files the library reads and writes (internal): opening one to read with its size, reads and
 * writes that carry on through short counts and interruptions, a file replaced whole (a
 * temporary file beside it, fsync, rename, fsync of its directory), and the message of a
 * malformed file, which names the file, the byte offset and what was expected there. */
#ifndef LOOM_GRAPHS_FILES_H
#define LOOM_GRAPHS_FILES_H

#include <loom/core.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Opens path to read, with its size: a path that does not exist gives `missing` (the caller's
 * status for that), any other failure, and anything but a regular file, LOOM_ERR_IO naming the
 * path and why. *fd is -1 unless it returns LOOM_OK. */
loom_status loom__file_open(const char *path, loom_status missing, int *fd, uint64_t *size, loom_error *err);

/* LOOM_ERR_FORMAT with the message "path: byte at: " and the rest. */
loom_status loom__file_bad(loom_error *err, const char *path, uint64_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reads n bytes: the count read (less than n when the file ends first), or -1 with errno set. */
ssize_t loom__file_read(int fd, void *p, size_t n);
/* Writes all n bytes: 0, or the errno of the failure. */
int loom__file_write(int fd, const void *p, size_t n);

/* Begins replacing path whole: a temporary file beside it (rename does not cross filesystems),
 * named by the process so that two processes writing one path never share it, and never opened
 * through a link left there. The descriptor, or -1 with errno set; *tmp its name (malloc'd; NULL
 * when out of memory), which the caller frees after a failure. */
int loom__file_replace_open(const char *path, char **tmp);
/* Ends the replacement begun by loom__file_replace_open: err is 0 when every write went well.
 * Syncs and closes fd, renames tmp over path, syncs the directory so that the rename lasts, and
 * frees tmp. On any failure before the rename (err included) the temporary file is removed and
 * path is left as it was. Returns 0, or the errno of the first failure; *renamed says whether path
 * is now the new file (a failure to sync the directory only). */
int loom__file_replace_end(int fd, char *tmp, const char *path, int err, int *renamed);

#endif
