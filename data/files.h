/* What the file readers of data/ share (internal to data/): opening a file to read, and the pieces
 * of their messages, which name the file, the byte offset and what was expected there. */
#ifndef LOOM_DATA_FILES_H
#define LOOM_DATA_FILES_H

#include <loom/core.h>

#include <stddef.h>
#include <stdint.h>

/* Appends to a message buffer, cutting what does not fit (messages may be shortened, never overrun). */
void loom__data_append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* 1 when p is a regular file this process may read. */
int loom__data_is_file(const char *p);

/* Opens path to read, with its size: a path that does not exist gives `missing` (the caller's
 * status for that), any other failure, and anything but a regular file, LOOM_ERR_IO naming the
 * path and why. *fd is -1 unless it returns LOOM_OK. */
loom_status loom__data_open(const char *path, loom_status missing, int *fd, uint64_t *size, loom_error *err);

/* Writes "60000 x 28 x 28 u8" (the dims, then the dtype) into buf, cut to fit. */
void loom__data_describe(char *buf, size_t cap, loom_dtype dtype, int ndim, const int64_t *shape);

/* LOOM_ERR_FORMAT with the message "path: byte at: " and the rest. */
loom_status loom__data_bad(loom_error *err, const char *path, uint64_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
