/* GPUs over ranks (ctest labels gpu and mpi; run by mpirun -np 1, and -np 2 where two GPUs are
 * visible): every rank trains the same models on @0-(n-1)/cuda:0, one GPU per rank, and checks the
 * losses and parameters against one CPU device and one GPU of its own: the MLP in data, model and
 * hybrid parallelism, the GCN data parallel with and without a data source. On one rank the
 * placement's NCCL communicator is still made (its id from the MPI layer's broadcast), as on
 * several. With several ranks each takes the GPU of its local rank (CUDA_VISIBLE_DEVICES, set
 * here before CUDA starts, then the program runs again). Skipped (exit 77) with fewer GPUs than
 * ranks. */
#include "equiv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char placement[64];

static void check(lt_build_fn build, const char *name, enum lt_mode m, int src, double tol)
{
    lt_result cpu, gpu, many;
    char what[200];
    lt_train(build, 0, m, &(lt_train_opts){.placement = "cpu:0", .executor = LOOM_EXEC_ACTORS}, &cpu);
    lt_train(build, 0, m, &(lt_train_opts){.placement = "cuda:0", .executor = LOOM_EXEC_ACTORS}, &gpu);
    lt_train(build, 0, m, &(lt_train_opts){.placement = placement, .executor = LOOM_EXEC_ACTORS, .with_source = src}, &many);
    const lt_result *ref[2] = {&cpu, &gpu};
    for (int r = 0; r < 2; r++) {
        snprintf(what, sizeof what, "rank %d: %s %s on %s%s, against %s", loom_dist_rank(), name, lt_mode_name[m], placement,
                 src ? " with a data source" : "", r ? "cuda:0" : "cpu:0");
        lt_assert_results_close(&many, ref[r], tol, what);
    }
}

START_TEST(test_mlp_over_ranks)
{
    for (int m = 0; m < LT_MODE_COUNT; m++)
        for (int src = 0; src < 2; src++)
            check(lt_model_mlp, "mlp", (enum lt_mode)m, src, 1e-5);
}
END_TEST

START_TEST(test_gcn_over_ranks)
{
    for (int src = 0; src < 2; src++)
        check(lt_model_gcn, "gcn", LT_DATA, src, 1e-9);
}
END_TEST

/* Field `index` (from 0) of a comma-separated list, into out; 0 when there is none. */
static int field(const char *list, int index, char *out, size_t len)
{
    for (int i = 0; list; i++) {
        const char *end = strchr(list, ',');
        size_t n = end ? (size_t)(end - list) : strlen(list);
        if (i == index) {
            snprintf(out, len, "%.*s", (int)n, list);
            return n > 0;
        }
        list = end ? end + 1 : NULL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    const char *size_s = getenv("OMPI_COMM_WORLD_SIZE"), *local = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    int size = size_s ? atoi(size_s) : 1;
    if (!getenv("LOOM_TEST_GPU_OF_RANK")) {
        loom_error why = {0};
        int n = loom_cuda_device_count(&why);
        if (n < size) {
            printf("mpi_gpu: skipped: %d CUDA device(s) visible for %d rank(s), each needs one%s%s\n", n, size, why.msg[0] ? ": " : "",
                   why.msg);
            return 77;
        }
        if (size > 1) { /* this rank's GPU as cuda:0, before CUDA starts in the program run again */
            char dev[32];
            const char *visible = getenv("CUDA_VISIBLE_DEVICES");
            int lr = local ? atoi(local) : 0;
            if (!visible || !field(visible, lr, dev, sizeof dev))
                snprintf(dev, sizeof dev, "%d", lr);
            setenv("CUDA_VISIBLE_DEVICES", dev, 1);
            setenv("LOOM_TEST_GPU_OF_RANK", "1", 1);
            execv("/proc/self/exe", argv);
            perror("mpi_gpu: execv");
            return 1;
        }
    }
    if (lt_mpi_init("mpi_gpu", placement, sizeof placement, "cuda:0"))
        return 1;
    Suite *s = suite_create("mpi_gpu");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_mlp_over_ranks);
    tcase_add_test(tc, test_gcn_over_ranks);
    suite_add_tcase(s, tc);
    return lt_run_mpi_suite(s);
}
