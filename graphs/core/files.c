/* The helpers of graphs/core/files.h. */
#include "graphs/core/files.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

loom_status loom__file_open(const char *path, loom_status missing, int *fd, uint64_t *size, loom_error *err)
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

loom_status loom__file_bad(loom_error *err, const char *path, uint64_t at, const char *fmt, ...)
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

ssize_t loom__file_read(int fd, void *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = read(fd, (uint8_t *)p + done, n - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        done += (size_t)k;
    }
    return (ssize_t)done;
}

int loom__file_write(int fd, const void *p, size_t n)
{
    for (size_t done = 0; done < n;) {
        ssize_t k = write(fd, (const uint8_t *)p + done, n - done);
        if (k < 0 && errno != EINTR)
            return errno;
        if (k == 0) /* no progress and no reason: never spin on it */
            return EIO;
        if (k > 0)
            done += (size_t)k;
    }
    return 0;
}

int loom__file_replace_open(const char *path, char **tmp)
{
    size_t len = strlen(path);
    if (!(*tmp = malloc(len + 32))) {
        errno = ENOMEM;
        return -1;
    }
    snprintf(*tmp, len + 32, "%s.%ld.tmp", path, (long)getpid());
    return open(*tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
}

/* The directory holding path, synced so that the rename into it lasts. Filesystems that cannot
 * sync a directory (EINVAL) are left at that. */
static int sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return ENOMEM;
    int fd = open(dir, O_RDONLY | O_CLOEXEC), e = 0;
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
        e = errno;
    if (fd >= 0)
        close(fd);
    free(dir);
    return e;
}

int loom__file_replace_end(int fd, char *tmp, const char *path, int err, int *renamed)
{
    *renamed = 0;
    if (!err && fsync(fd) != 0)
        err = errno;
    if (close(fd) != 0 && !err)
        err = errno;
    if (!err && rename(tmp, path) != 0)
        err = errno;
    if (err)
        remove(tmp);
    else
        *renamed = 1, err = sync_dir(path);
    free(tmp);
    return err;
}
