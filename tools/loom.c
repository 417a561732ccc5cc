/* The loom command-line program.
 *
 *     loom info     what this build has: version, CUDA devices, registered ops
 *     loom ops      the op registry, one op a line
 */
#include <loom/loom.h>

#include <stdio.h>
#include <string.h>

#include "ops/op.h"

static int usage(FILE *f)
{
    fprintf(f, "usage: loom info | loom ops\n");
    return f == stderr ? 2 : 0;
}

static int info(void)
{
    loom_error why = {0};
    int n = loom_cuda_device_count(&why);
    printf("loom %s\n", LOOM_VERSION);
    printf("cuda devices: %d%s%s\n", n, n ? "" : " (", n ? "" : why.msg[0] ? why.msg : "none found");
    if (!n)
        printf(")\n");
    printf("ops: %d\n", (int)LOOM_OP_COUNT);
    return 0;
}

static int ops(void)
{
    for (int i = 0; i < LOOM_OP_COUNT; i++) {
        const loom_op_def *d = loom__op_def((loom_op)i);
        printf("%-28s %s%s\n", d ? d->name : "(missing)", d && d->grad ? "grad" : "-",
               d && (d->flags & LOOM__OPF_LEAF) ? " leaf" : "");
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    if (!strcmp(argv[1], "info"))
        return info();
    if (!strcmp(argv[1], "ops"))
        return ops();
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))
        return usage(stdout);
    fprintf(stderr, "loom: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
