/* Every public header, alone in a C11 translation unit with pedantic errors: what a user's
 * compiler sees. loom_shape takes 0 to LOOM_MAX_DIMS dims and evaluates each once. */
#include <loom/loom.h>

#include <stdio.h>

int main(void)
{
    int k = 0;
    const loom_shape s[] = {loom_shape(), loom_shape(3), loom_shape(1, 2, 3, 4, 5, 6), loom_shape(k++, 2)};
    const int want[] = {0, 1, 6, 2};
    for (int i = 0; i < 4; i++)
        if (s[i].ndim != want[i]) {
            printf("loom_shape %d has %d dims, want %d\n", i, s[i].ndim, want[i]);
            return 1;
        }
    if (k != 1 || s[2].d[5] != 6 || s[3].d[0] != 0 || s[3].d[1] != 2) {
        printf("loom_shape evaluated its argument %d times or lost a dim\n", k);
        return 1;
    }
    /* the _INIT macros name what a zeroed struct means */
    const loom_train_opts o = LOOM_TRAIN_OPTS_INIT, zero = {0};
    const loom_error e = LOOM_ERROR_INIT;
    const loom_array a = LOOM_ARRAY_INIT;
    const loom_csr m = LOOM_CSR_INIT;
    if (o.optimizer.kind != zero.optimizer.kind || o.executor != zero.executor || o.memory_limit != 0 ||
        o.matmul != zero.matmul || o.check_numerics || o.regst_num != 2 || e.status != LOOM_OK || e.msg[0] ||
        a.data || a.ndim || m.nnz || m.rowptr) {
        puts("an _INIT macro differs from the documented defaults");
        return 1;
    }
    return 0;
}
