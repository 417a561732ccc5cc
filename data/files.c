/* The helpers of data/files.h. */
#include "data/files.h"

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

void loom__data_describe(char *buf, size_t cap, loom_dtype dtype, int ndim, const int64_t *shape)
{
    if (!cap)
        return;
    buf[0] = 0;
    for (int i = 0; i < ndim; i++)
        loom__data_append(buf, cap, "%s%" PRId64, i ? " x " : "", shape[i]);
    loom__data_append(buf, cap, "%s%s", ndim ? " " : "", loom_dtype_name(dtype));
}
