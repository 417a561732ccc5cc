/* What the benchmarks share to write their JSON lines. */
#ifndef LOOM_BENCH_JSON_H
#define LOOM_BENCH_JSON_H

#include <stdio.h>

/* s as a JSON string, cut to fit buf. */
static inline const char *json_str(const char *s, char *buf, size_t n)
{
    size_t k = 0;
    buf[k++] = '"';
    for (; *s && k + 8 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            buf[k++] = '\\', buf[k++] = (char)c;
        else if (c < 0x20)
            k += (size_t)snprintf(buf + k, n - k, "\\u%04x", c);
        else
            buf[k++] = (char)c;
    }
    buf[k++] = '"';
    buf[k] = 0;
    return buf;
}

#endif
