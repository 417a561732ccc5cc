/* Tracing: the per-thread act records, reading them back, and the Chrome trace writer. The
 * format is the Trace Event Format's JSON array: one "X" (complete) event per act with ts and dur
 * in microseconds, plus "M" metadata naming the process and each worker thread. */
#define LOOM__RT_PRIVATE
#include "runtime/runtime.h"

#include "graphs/core/json.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int loom__trace_grow(loom__trace_buf *b)
{
    size_t cap = b->cap ? 2 * b->cap : 1024;
    loom__trace_rec *p = realloc(b->rec, cap * sizeof *p);
    if (!p) {
        b->lost++;
        return 0;
    }
    b->rec = p;
    b->cap = cap;
    return 1;
}

void loom__trace_free(loom__trace_buf *b)
{
    free(b->rec);
    *b = (loom__trace_buf){0};
}

size_t loom__rt_trace_count(const loom__rt *rt)
{
    size_t n = 0;
    for (int ti = 0; ti < rt->nthreads; ti++)
        n += rt->threads[ti].trace.n;
    return n;
}

static void to_event(const loom__rt *rt, int ti, const loom__trace_rec *r, loom__rt_event *e)
{
    const loom__actor *a = rt->actors[r->actor];
    *e = (loom__rt_event){.actor = a->name, .id = a->id, .thread = ti, .piece = r->piece, .initial = (int)r->initial,
                          .begin_ns = r->begin_ns, .end_ns = r->end_ns};
}

int loom__rt_trace_get(const loom__rt *rt, size_t i, loom__rt_event *e)
{
    for (int ti = 0; ti < rt->nthreads; ti++) {
        const loom__trace_buf *b = &rt->threads[ti].trace;
        if (i < b->n) {
            to_event(rt, ti, &b->rec[i], e);
            return 1;
        }
        i -= b->n;
    }
    return 0;
}

int loom__rt_trace_find(const loom__rt *rt, const char *actor, int64_t piece, loom__rt_event *e)
{
    for (int k = 0; k < rt->nactors; k++) {
        const loom__actor *a = rt->actors[k];
        if (strcmp(a->name, actor) != 0)
            continue;
        const loom__trace_buf *b = &rt->threads[a->thread].trace;
        for (size_t i = 0; i < b->n; i++)
            if (b->rec[i].actor == (uint32_t)k && b->rec[i].piece == piece && !b->rec[i].initial) {
                to_event(rt, (int)a->thread, &b->rec[i], e);
                return 1;
            }
    }
    return 0;
}

/* The process's count of traced runs, %n of a trace pattern: the one number two runtimes (two
 * programs, or one program's modes) of a process must not both use, so it cannot live on one. */
static atomic_uint_fast64_t trace_runs;

uint64_t loom__trace_next_run(void) { return atomic_fetch_add(&trace_runs, 1); }

char *loom__trace_path(const char *pattern, long pid, uint64_t run, char *msg, size_t len)
{
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n); /* grows as needed: no size computed here */
    if (!f) {
        snprintf(msg, len, "trace: out of memory");
        return NULL;
    }
    const char *bad = NULL;
    for (const char *c = pattern; *c && !bad; c++) {
        if (*c != '%')
            fputc(*c, f);
        else if (c[1] == 'p')
            fprintf(f, "%ld", pid), c++;
        else if (c[1] == 'n')
            fprintf(f, "%" PRIuFAST64, run), c++;
        else if (c[1] == '%')
            fputc('%', f), c++;
        else
            bad = c;
    }
    int failed = ferror(f);
    if (fclose(f) != 0 || failed) {
        snprintf(msg, len, "trace: out of memory");
        free(out);
        return NULL;
    }
    if (bad) {
        if (bad[1])
            snprintf(msg, len, "trace: bad pattern '%s': '%%%c' at byte %td is none of %%p (the process id), %%n (the "
                     "run's number in the process) and %%%% (a '%%')", pattern, bad[1], bad - pattern);
        else
            snprintf(msg, len, "trace: bad pattern '%s': a lone '%%' ends it (write %%%% for a '%%')", pattern);
        free(out);
        return NULL;
    }
    return out;
}

/* Opens where the trace goes: *tmp (to be renamed over path) for a new or regular file, path
 * itself for a character device or a FIFO (written in place, never replaced); NULL with the
 * message set for anything else. */
static FILE *open_target(loom__rt *rt, const char *path, char **tmp)
{
    *tmp = NULL;
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
            /* a FIFO nobody reads fails (ENXIO) rather than blocking the run's return */
            int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
            if (fd >= 0)
                fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
            FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
            if (!f) {
                snprintf(rt->msg, sizeof rt->msg, "trace: cannot write '%s': %s", path, strerror(errno));
                if (fd >= 0)
                    close(fd);
            }
            return f;
        }
        snprintf(rt->msg, sizeof rt->msg, "trace: '%s' is %s: not replaced (give the path of a regular file or a new one)",
                 path, S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        return NULL;
    }
    size_t len = strlen(path);
    if (!(*tmp = malloc(len + 5))) {
        snprintf(rt->msg, sizeof rt->msg, "trace: out of memory");
        return NULL;
    }
    memcpy(*tmp, path, len);
    memcpy(*tmp + len, ".tmp", 5);
    /* never through a link someone left at the temporary name */
    int fd = open(*tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f) {
        snprintf(rt->msg, sizeof rt->msg, "trace: cannot write '%s': %s", *tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            remove(*tmp);
        }
        free(*tmp);
        *tmp = NULL;
    }
    return f;
}

loom_status loom__rt_trace_write(loom__rt *rt, const char *path)
{
    char *tmp;
    FILE *f = open_target(rt, path, &tmp);
    if (!f)
        return LOOM_ERR_IO;
    int pid = rt->opts.rank;
    fprintf(f, "[\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,\"args\":{\"name\":\"loom rank %d\"}}", pid,
            pid);
    for (int ti = 0; ti < rt->nthreads; ti++) {
        fprintf(f, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":", pid, ti);
        loom__json_put_str(f, rt->threads[ti].name);
        fputs("}}", f);
    }
    for (int ti = 0; ti < rt->nthreads && !ferror(f); ti++) {
        const loom__trace_buf *b = &rt->threads[ti].trace;
        for (size_t i = 0; i < b->n && !ferror(f); i++) {
            const loom__trace_rec *r = &b->rec[i];
            int64_t ts = r->begin_ns - rt->t0_ns, dur = r->end_ns - r->begin_ns;
            fputs(",\n{\"name\":", f);
            loom__json_put_str(f, rt->actors[r->actor]->name);
            fprintf(f,
                    ",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"ts\":%lld.%03lld,\"dur\":%lld.%03lld,"
                    "\"args\":{\"piece\":%lld}}",
                    r->initial ? "initial" : "act", pid, ti, (long long)(ts / 1000), (long long)(ts % 1000),
                    (long long)(dur / 1000), (long long)(dur % 1000), (long long)r->piece);
        }
    }
    fputs("\n]\n", f);
    /* every write: the stream's error flag is sticky, and the buffered rest surfaces at the flush
     * and the close */
    int bad = ferror(f) | (fflush(f) != 0);
    int err = bad ? errno : 0;
    if (fclose(f) != 0 && !bad)
        bad = 1, err = errno;
    if (!bad && tmp && rename(tmp, path) != 0)
        bad = 1, err = errno;
    if (bad) {
        snprintf(rt->msg, sizeof rt->msg, "trace: cannot write '%s': %s", path, err ? strerror(err) : "write error");
        if (tmp)
            remove(tmp);
    }
    free(tmp);
    return bad ? LOOM_ERR_IO : LOOM_OK;
}
