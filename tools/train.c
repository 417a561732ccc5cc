/* loom train and loom bench: a model of models.c trained epoch by epoch, with a progress bar on a
 * terminal, metrics as JSON lines, a checkpoint at each epoch's end and resumption from the last
 * one; or a short timed run of its steps. */
#include "tools/cli.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double cli_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- Ctrl-C: the run is cancelled (its steps begun complete), the last checkpoint stays ------- */

/* The handler only writes a byte to a pipe (what a handler may do); a thread of ours reads it and
 * cancels the run. A second signal ends the process at once. Signals the caller's shell ignores
 * (a background job's SIGINT) stay ignored. */
static int signal_pipe[2] = {-1, -1};
static volatile sig_atomic_t signals_seen;

static void on_signal(int sig)
{
    if (signals_seen++) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    const char c = 's';
    if (write(signal_pipe[1], &c, 1) < 0) { /* nothing else a handler can do */
    }
}

typedef struct interrupt {
    pthread_t thread;
    loom_program *p;
    int hit, started;
    struct sigaction old[2];
} interrupt;

static void *wait_signal(void *ctx)
{
    interrupt *in = ctx;
    char c;
    while (read(signal_pipe[0], &c, 1) == 1 && c == 's') {
        in->hit = 1;
        loom_program_cancel(in->p);
    }
    return NULL;
}

static int interrupt_start(interrupt *in, loom_program *p)
{
    static const int sigs[2] = {SIGINT, SIGTERM};
    in->p = p;
    if (pipe(signal_pipe) != 0)
        return -1;
    if (pthread_create(&in->thread, NULL, wait_signal, in) != 0) {
        close(signal_pipe[0]);
        close(signal_pipe[1]);
        return -1;
    }
    in->started = 1;
    for (int k = 0; k < 2; k++) {
        struct sigaction sa = {0};
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[k], NULL, &in->old[k]);
        if (in->old[k].sa_handler != SIG_IGN)
            sigaction(sigs[k], &sa, NULL);
    }
    return 0;
}

static void interrupt_stop(interrupt *in)
{
    static const int sigs[2] = {SIGINT, SIGTERM};
    if (!in->started)
        return;
    for (int k = 0; k < 2; k++)
        sigaction(sigs[k], &in->old[k], NULL);
    const char c = 'q';
    if (write(signal_pipe[1], &c, 1) == 1)
        pthread_join(in->thread, NULL);
    close(signal_pipe[0]);
    close(signal_pipe[1]);
}

/* ---- checkpoints: DIR/epoch-N.safetensors, the last kept, and DIR/run.json ------------------ */

/* The options that make a run's result: a resumed run must be given the same. */
static void run_identity(const cli_run *r, char *buf, size_t len)
{
    snprintf(buf, len,
             "{\"model\":\"%s\",\"data\":\"%s\",\"batch\":%lld,\"lr\":%.17g,\"hidden\":%lld,\"seed\":%llu,\"limit\":%lld,"
             "\"sampler\":\"%s\"}\n",
             r->m->name, r->o.data, (long long)r->o.batch, r->o.lr > 0 ? r->o.lr : r->m->lr,
             (long long)(r->o.hidden ? r->o.hidden : r->m->hidden), (unsigned long long)r->o.seed, (long long)r->o.limit,
             r->m->kind == CLI_SAMPLES ? (r->o.sampler ? r->o.sampler : "balance") : "");
}

/* The largest N of DIR/epoch-N.safetensors, or 0 when there is none. */
static int latest_epoch(const char *dir)
{
    DIR *d = opendir(dir);
    int best = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));) {
        int n, used = 0;
        if (sscanf(e->d_name, "epoch-%d.safetensors%n", &n, &used) == 1 && e->d_name[used] == 0 && n > best)
            best = n;
    }
    closedir(d);
    return best;
}

static void checkpoint_path(char *buf, size_t len, const char *dir, int epoch)
{
    snprintf(buf, len, "%s/epoch-%d.safetensors", dir, epoch);
}

/* Writes text to path whole (a temporary file, then a rename); 0, or -1 with errno. */
static int write_whole(const char *path, const char *text)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int bad = fputs(text, f) < 0;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

/* Prepares DIR for checkpoints: made when missing; its run.json written (a new run) or compared
 * (--resume). Returns the epoch to resume from (0: none), or -1 (status 1) / -2 (status 2) with a
 * message. */
static int checkpoint_open(const cli_run *r, const char *dir, int resume)
{
    char id[1024], path[4200], old[1024] = "";
    run_identity(r, id, sizeof id);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return fprintf(stderr, "loom train: --checkpoint: cannot make %s: %s\n", dir, strerror(errno)), -1;
    snprintf(path, sizeof path, "%s/run.json", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(old, sizeof old, f))
            old[0] = 0;
        fclose(f);
    }
    const int last = latest_epoch(dir);
    if (!resume) {
        if (last > 0)
            return fprintf(stderr, "loom train: %s holds a checkpoint (epoch %d): add --resume to go on from it, or give another "
                                   "directory\n", dir, last), -2;
        if (write_whole(path, id) != 0)
            return fprintf(stderr, "loom train: cannot write %s: %s\n", path, strerror(errno)), -1;
        return 0;
    }
    if (last == 0)
        return fprintf(stderr, "loom train: --resume: %s holds no checkpoint (epoch-N.safetensors) to resume from\n", dir), -2;
    if (old[0] && strcmp(old, id)) {
        old[strcspn(old, "\n")] = 0;
        id[strcspn(id, "\n")] = 0;
        return fprintf(stderr, "loom train: --resume: %s was trained as %s, but this run is %s; resume with the same model, "
                               "data, batch, lr, hidden, seed, limit and sampler\n", dir, old, id), -2;
    }
    return last;
}

/* Saves epoch's checkpoint, then removes those of earlier epochs; 0, or 1 with a message. */
static int checkpoint_save(cli_run *r, const char *dir, int epoch)
{
    char path[4200];
    checkpoint_path(path, sizeof path, dir, epoch);
    if (loom_program_save(r->p, path) != LOOM_OK)
        return fprintf(stderr, "loom train: %s\n", loom_program_error(r->p)), 1;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        int n, used = 0;
        if (sscanf(e->d_name, "epoch-%d.safetensors%n", &n, &used) == 1 && e->d_name[used] == 0 && n < epoch) {
            checkpoint_path(path, sizeof path, dir, n);
            unlink(path);
        }
    }
    if (d)
        closedir(d);
    return 0;
}

/* ---- progress and metrics ------------------------------------------------------------------ */

static void duration(char *buf, size_t len, double s)
{
    long t = s > 0 && s < 1e7 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

/* The bar of an epoch in progress, redrawn in place (a terminal only). */
static void progress(int epoch, int epochs, int64_t done, int64_t steps, double loss, double rate, double eta, const char *unit)
{
    char bar[31], left[32];
    int fill = steps > 0 ? (int)(30 * done / steps) : 30;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    duration(left, sizeof left, eta);
    printf("\r\033[Kepoch %d/%d [%s] %lld/%lld  loss %.4f  %.0f %s/s  ETA %s", epoch, epochs, bar, (long long)done,
           (long long)steps, loss, rate, unit, left);
    fflush(stdout);
}

/* The mean loss of the steps from `from` on. */
static double mean_loss(const cli_run *r, int64_t from)
{
    int64_t n;
    const double *l = loom_program_losses(r->p, &n);
    double sum = 0;
    for (int64_t i = from; i < n; i++)
        sum += l[i];
    return n > from ? sum / (double)(n - from) : 0.0;
}

static void metrics_line(FILE *f, const char *type, int epoch, int64_t step, double loss, double acc, double rate, double secs)
{
    if (!f)
        return;
    fprintf(f, "{\"type\":\"%s\",\"epoch\":%d,\"step\":%lld,\"loss\":%.17g,", type, epoch, (long long)step, loss);
    if (acc >= 0)
        fprintf(f, "\"accuracy\":%.17g,", acc);
    fprintf(f, "\"samples_per_s\":%.6g,\"seconds\":%.6g}\n", rate, secs);
    fflush(f);
}

/* ---- loom train ------------------------------------------------------------------------------ */

typedef struct trainer {
    cli_run r;
    interrupt intr;
    FILE *metrics;
    char tmp_metrics[4200];
    int tty;
} trainer;

/* Epoch e (0-based) of t's run; 0, or 1 with a message. */
static int train_epoch(trainer *t, int e, loom_error *err)
{
    cli_run *r = &t->r;
    const cli_opts *o = &r->o;
    if (cli_epoch(r, e, err) != LOOM_OK)
        return 1;
    int64_t chunk = r->epoch_steps, from = loom_program_steps(r->p), samples = 0, mark = 0, marked_samples = 0;
    int64_t base;
    loom_program_losses(r->p, &base);
    if (t->tty && !o->quiet) /* the bar moves 50 times an epoch at most */
        chunk = (chunk + 49) / 50;
    if (o->log_every && o->log_every < chunk)
        chunk = o->log_every;
    const double t0 = cli_now();
    double tmark = t0;
    while (r->next < r->epoch_steps) {
        if (cli_steps(r, chunk, &samples, err) != LOOM_OK)
            return 1;
        const double now = cli_now(), secs = now - t0;
        if (o->log_every && r->next - mark >= o->log_every) {
            metrics_line(t->metrics, "steps", e + 1, loom_program_steps(r->p), mean_loss(r, base + mark), -1,
                         (double)(samples - marked_samples) / (now - tmark), now - tmark);
            mark = r->next, marked_samples = samples, tmark = now;
        }
        if (t->tty && !o->quiet && r->next < r->epoch_steps)
            progress(e + 1, o->epochs, r->next, r->epoch_steps, mean_loss(r, base), (double)samples / secs,
                     secs / (double)r->next * (double)(r->epoch_steps - r->next), cli_sample_name(r));
    }
    const double secs = cli_now() - t0, loss = mean_loss(r, base);
    if (t->tty && !o->quiet) {
        printf("\r\033[Kepoch %d/%d: loss %.4f, measuring the held-out accuracy ...", e + 1, o->epochs, loss);
        fflush(stdout);
    }
    double acc = -1;
    if (cli_accuracy(r, &acc, err) != LOOM_OK)
        return 1;
    metrics_line(t->metrics, "epoch", e + 1, loom_program_steps(r->p), loss, acc, (double)samples / secs, secs);
    if (!o->quiet) {
        char what[64] = "";
        if (acc >= 0)
            snprintf(what, sizeof what, ", accuracy %.4f", acc);
        printf("%sepoch %d/%d: loss %.4f%s, %.0f %s/s, %lld steps in %.2f s\n", t->tty ? "\r\033[K" : "", e + 1, o->epochs, loss,
               what, (double)samples / secs, cli_sample_name(r), (long long)(loom_program_steps(r->p) - from), secs);
        fflush(stdout);
    }
    return 0;
}

int cli_train(int argc, char **argv)
{
    cli_opts o = {0};
    const cli_model *m;
    int rc = cli_command_args("train", argc, argv, &o, &m);
    if (rc != CLI_GO)
        return rc;
    if (o.checkpoint && strlen(o.checkpoint) > 4000)
        return fprintf(stderr, "loom train: --checkpoint: the directory's path is too long\n"), 2;
    if (o.resume && !o.checkpoint)
        return fprintf(stderr, "loom train: --resume needs --checkpoint DIR, where the checkpoints are\n"), 2;
    if (o.log_every && !o.metrics)
        return fprintf(stderr, "loom train: --log-every writes metrics lines: give --metrics FILE too\n"), 2;
    if (o.plot && !cli_program_found("gnuplot"))
        return fprintf(stderr, "loom train: --plot draws with gnuplot, which is not on PATH (scripts/install-deps.sh installs it; "
                               "on Debian: apt-get install gnuplot-nox)\n"), 1;
    if (!o.epochs)
        o.epochs = m->kind == CLI_NODES ? 200 : 5;

    trainer t = {0};
    if ((rc = cli_run_new(&t.r, "train", m, &o, 0)) != 0) {
        cli_run_free(&t.r);
        return rc;
    }
    cli_run *r = &t.r;
    int start = 0;
    loom_error err = LOOM_ERROR_INIT;
    if (o.checkpoint) {
        start = checkpoint_open(r, o.checkpoint, o.resume);
        if (start < 0) {
            cli_run_free(r);
            return start == -2 ? 2 : 1;
        }
        char path[4200];
        checkpoint_path(path, sizeof path, o.checkpoint, start);
        if (start > 0 && loom_program_load(r->p, path) != LOOM_OK) {
            fprintf(stderr, "loom train: --resume: %s\n", loom_program_error(r->p));
            cli_run_free(r);
            return 1;
        }
    }
    const char *mpath = o.metrics;
    if (!mpath && o.plot) { /* the curves need the metrics: kept in a file of our own meanwhile */
        const char *tmp = getenv("TMPDIR");
        snprintf(t.tmp_metrics, sizeof t.tmp_metrics, "%s/loom-metrics-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        int fd = mkstemp(t.tmp_metrics);
        if (fd < 0) {
            fprintf(stderr, "loom train: cannot make a metrics file for --plot: %s\n", strerror(errno));
            cli_run_free(r);
            return 1;
        }
        close(fd);
        mpath = t.tmp_metrics;
    }
    if (mpath && !(t.metrics = fopen(mpath, start > 0 && o.metrics ? "a" : "w"))) {
        fprintf(stderr, "loom train: cannot write %s: %s\n", mpath, strerror(errno));
        cli_run_free(r);
        return 1;
    }
    t.tty = isatty(STDOUT_FILENO);
    char pl[128] = "cpu:0";
    if (o.placement)
        snprintf(pl, sizeof pl, "%s", o.placement);
    if (!o.quiet) {
        printf("%s on %s (--data %s): ", m->name, pl, r->o.data);
        if (m->kind == CLI_NODES)
            printf("%lld nodes, %lld features, %lld classes", (long long)r->num_nodes, (long long)r->node_features,
                   (long long)r->classes);
        else if (m->kind == CLI_SAMPLES && r->test.count)
            printf("%lld training and %lld held-out %s, batch %lld", (long long)r->train.count, (long long)r->test.count,
                   cli_sample_name(r), (long long)r->o.batch);
        else if (m->kind == CLI_SAMPLES)
            printf("%lld %s (scored on themselves), batch %lld", (long long)r->train.count, cli_sample_name(r), (long long)r->o.batch);
        else
            printf("%lld training and %lld test images, batch %lld", (long long)r->itrain.count, (long long)r->itest.count,
                   (long long)r->o.batch);
        if (start > 0)
            printf("; resumed after epoch %d (step %lld)", start, (long long)loom_program_steps(r->p));
        printf("\n");
        fflush(stdout);
    }
    if (interrupt_start(&t.intr, r->p) != 0) {
        fprintf(stderr, "loom train: cannot start the thread that waits for Ctrl-C: %s\n", strerror(errno));
        rc = 1;
        goto done;
    }
    for (int e = start; e < o.epochs && rc == 0; e++) {
        if (train_epoch(&t, e, &err)) {
            if (t.intr.hit) {
                char path[4200] = "";
                int last = o.checkpoint ? latest_epoch(o.checkpoint) : 0;
                if (last)
                    checkpoint_path(path, sizeof path, o.checkpoint, last);
                fprintf(stderr, "%sloom train: interrupted in epoch %d%s%s%s\n", t.tty ? "\n" : "", e + 1,
                        last ? "; the last checkpoint is " : "", path, last ? " (--resume goes on from it)" : "");
                rc = 130;
            } else {
                fprintf(stderr, "%sloom train: %s\n", t.tty ? "\n" : "", err.msg);
                rc = 1;
            }
        } else if (o.checkpoint) {
            rc = checkpoint_save(r, o.checkpoint, e + 1);
        }
    }
    if (start >= o.epochs && !o.quiet)
        printf("nothing to do: the checkpoint is of epoch %d, and --epochs is %d\n", start, o.epochs);
done:
    interrupt_stop(&t.intr);
    if (t.metrics && fclose(t.metrics) != 0 && rc == 0)
        rc = (fprintf(stderr, "loom train: cannot write %s: %s\n", mpath, strerror(errno)), 1);
    if (rc == 0 && o.plot) {
        char title[256];
        snprintf(title, sizeof title, "loom train %s on %s", m->name, pl);
        rc = cli_plot(mpath, o.plot, title);
        if (rc == 0 && !o.quiet)
            printf("wrote %s\n", o.plot);
    }
    if (t.tmp_metrics[0])
        unlink(t.tmp_metrics);
    cli_run_free(r);
    return rc;
}

/* ---- loom bench ------------------------------------------------------------------------------ */

int cli_bench(int argc, char **argv)
{
    cli_opts o = {0};
    const cli_model *m;
    int rc = cli_command_args("bench", argc, argv, &o, &m);
    if (rc != CLI_GO)
        return rc;
    const int64_t steps = o.steps ? o.steps : 20, warmup = o.warmup ? o.warmup : 3;
    cli_run r;
    if ((rc = cli_run_new(&r, "bench", m, &o, 0)) != 0) {
        cli_run_free(&r);
        return rc;
    }
    loom_error err = LOOM_ERROR_INIT;
    int64_t epoch = 0, samples = 0, done = 0;
    double secs = 0;
    /* warm-up steps, then the timed ones, epoch after epoch as long as it takes */
    for (int timed = 0; timed < 2 && rc == 0; timed++) {
        const int64_t want = timed ? steps : warmup;
        int64_t counted = 0;
        const double t0 = cli_now();
        for (int64_t left = want; left > 0 && rc == 0;) {
            if (r.next >= r.epoch_steps && cli_epoch(&r, epoch++, &err) != LOOM_OK) {
                rc = 1;
                break;
            }
            int64_t before = r.next;
            if (cli_steps(&r, left, timed ? &counted : &samples, &err) != LOOM_OK)
                rc = 1;
            left -= r.next - before;
        }
        if (timed)
            secs = cli_now() - t0, samples = counted, done = want;
    }
    if (rc) {
        fprintf(stderr, "loom bench: %s\n", err.msg);
    } else {
        loom_memory mem = {0};
        loom_program_memory(r.p, LOOM_RUN_STEP, LOOM_ALL_DEVICES, &mem);
        char pl[128] = "cpu:0";
        if (o.placement)
            snprintf(pl, sizeof pl, "%s", o.placement);
        printf("{\"bench\":\"loom\",\"model\":\"%s\",\"data\":\"%s\",\"placement\":\"%s\",\"batch\":%lld,\"steps\":%lld,"
               "\"seconds\":%.6g,\"ms_per_step\":%.6g,\"samples_per_s\":%.6g,\"samples\":\"%s\",\"plan_bytes\":%zu}\n",
               m->name, r.o.data, pl, (long long)r.o.batch, (long long)done, secs, 1e3 * secs / (double)done,
               (double)samples / secs, cli_sample_name(&r), mem.total);
    }
    cli_run_free(&r);
    return rc;
}
