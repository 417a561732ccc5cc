/* The helpers of data/files.h. */
#include "data/files.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void loom__data_append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(buf);
    if (n + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

int loom__data_is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, R_OK) == 0;
}

loom_status loom__data_open(const char *path, loom_status missing, int *fd, uint64_t *size, loom_error *err)
{
    *fd = -1;
    *size = 0;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return loom_error_set(err, errno == ENOENT ? missing : LOOM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(f, &st) != 0) {
        int e = errno;
        close(f);
        return loom_error_set(err, LOOM_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return loom_error_set(err, LOOM_ERR_IO, "%s: not a regular file: %s", path,
                              S_ISDIR(st.st_mode) ? strerror(EISDIR) : "a device, a pipe or a socket");
    }
    /* whole files are read into memory by some readers: half the address space is the most */
    if ((uint64_t)st.st_size > SIZE_MAX / 2) {
        close(f);
        return loom_error_set(err, LOOM_ERR_IO, "%s: %" PRIu64 " bytes, more than this process can hold", path,
                              (uint64_t)st.st_size);
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return LOOM_OK;
}

void loom__data_describe(char *buf, size_t cap, loom_dtype dtype, int ndim, const int64_t *shape)
{
    if (!cap)
        return;
    buf[0] = 0;
    for (int i = 0; i < ndim; i++)
        loom__data_append(buf, cap, "%s%" PRId64, i ? " x " : "", shape[i]);
    loom__data_append(buf, cap, "%s%s", ndim ? " " : "", loom_dtype_name(dtype));
}

loom_status loom__data_bad(loom_error *err, const char *path, uint64_t at, const char *fmt, ...)
{
    if (!err)
        return LOOM_ERR_FORMAT;
    char what[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return loom_error_set(err, LOOM_ERR_FORMAT, "%s: byte %" PRIu64 ": %s", path, at, what);
}
