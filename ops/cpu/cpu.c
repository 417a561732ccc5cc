/* Shared by the CPU kernels. */
#include "ops/cpu/cpu.h"

#include <stdarg.h>
#include <stdio.h>

loom_status loom__kfail(const loom__kctx *ctx, loom_status s, const char *fmt, ...)
{
    if (ctx && ctx->msg && ctx->msglen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->msg, ctx->msglen, fmt, ap);
        va_end(ap);
    }
    return s;
}
