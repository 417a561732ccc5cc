/* What the file readers of data/ share (internal to data/): the pieces of their messages, which
 * name the file, the byte offset and what was expected there. Opening a file and the message of a
 * malformed one are graphs/core/files.h's, which the library's other files share. */
#ifndef LOOM_DATA_FILES_H
#define LOOM_DATA_FILES_H

#include <loom/core.h>

#include "graphs/core/files.h"

#include <stddef.h>
#include <stdint.h>

/* Appends to a message buffer, cutting what does not fit (messages may be shortened, never overrun). */
void loom__data_append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* 1 when p is a regular file this process may read. */
int loom__data_is_file(const char *p);

/* Writes "60000 x 28 x 28 u8" (the dims, then the dtype) into buf, cut to fit. */
void loom__data_describe(char *buf, size_t cap, loom_dtype dtype, int ndim, const int64_t *shape);

#endif
