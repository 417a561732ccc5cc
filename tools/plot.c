/* Curves of a training run: the epoch lines of loom train's metrics (JSON lines) drawn by gnuplot
 * as three panels, the loss, the held-out accuracy and the samples per second against the epoch. */
#include "tools/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_program_found(const char *name)
{
    const char *path = getenv("PATH");
    if (!path)
        return 0;
    char dir[4096];
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        if (n > 0 && n + strlen(name) + 2 < sizeof dir) {
            memcpy(dir, p, n);
            snprintf(dir + n, sizeof dir - n, "/%s", name);
            if (access(dir, X_OK) == 0)
                return 1;
        }
        p += n + (p[n] == ':');
    }
    return 0;
}

/* The number after "key": in a JSON line, or -1 when it has none. */
static double field(const char *line, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *at = strstr(line, k);
    if (!at)
        return -1;
    char *end;
    double v = strtod(at + strlen(k), &end);
    return end == at + strlen(k) ? -1 : v;
}

/* s inside gnuplot's single quotes, where a quote is written twice. */
static void quote(const char *s, char *out, size_t len)
{
    size_t at = 0;
    for (; *s && at + 3 < len; s++) {
        if (*s == '\n')
            continue;
        if (*s == '\'')
            out[at++] = '\'';
        out[at++] = *s;
    }
    out[at] = 0;
}

int cli_plot(const char *metrics, const char *png, const char *title)
{
    FILE *in = fopen(metrics, "r");
    if (!in)
        return fprintf(stderr, "loom: --plot: cannot read %s: %s\n", metrics, strerror(errno)), 1;
    char data[4200];
    const char *tmp = getenv("TMPDIR");
    snprintf(data, sizeof data, "%s/loom-plot-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(data);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!out) {
        fclose(in);
        return fprintf(stderr, "loom: --plot: cannot make a data file: %s\n", strerror(errno)), 1;
    }
    char line[1024];
    int rows = 0, with_acc = 0;
    while (fgets(line, sizeof line, in)) {
        if (!strstr(line, "\"type\":\"epoch\""))
            continue;
        char acc[32] = "NaN";
        double a = field(line, "accuracy");
        if (a >= 0)
            snprintf(acc, sizeof acc, "%.6g", a), with_acc = 1;
        fprintf(out, "%g %.9g %s %g\n", field(line, "epoch"), field(line, "loss"), acc, field(line, "samples_per_s"));
        rows++;
    }
    fclose(in);
    int bad = ferror(out) != 0;
    bad |= fclose(out) != 0;
    if (bad || !rows) {
        unlink(data);
        return fprintf(stderr, "loom: --plot: %s\n", bad ? "cannot write its data file" : "the metrics hold no epoch line to draw"), 1;
    }
    /* gnuplot's errors go to our stderr; the PNG is checked afterwards, as gnuplot's status does
     * not always say that its terminal failed */
    FILE *gp = popen("gnuplot", "w");
    if (!gp) {
        unlink(data);
        return fprintf(stderr, "loom: --plot: cannot run gnuplot: %s\n", strerror(errno)), 1;
    }
    char qpng[8400], qtitle[600];
    quote(png, qpng, sizeof qpng);
    quote(title, qtitle, sizeof qtitle);
    unlink(png);
    fprintf(gp,
            "set terminal pngcairo size 1500,450 font ',10'\n"
            "set output '%s'\n"
            "set multiplot layout 1,3 title '%s'\n"
            "set xlabel 'epoch'\nset grid\nset key off\nset style data linespoints\n"
            "set title 'loss'\nplot '%s' using 1:2 lw 2\n",
            qpng, qtitle, data);
    if (with_acc)
        fprintf(gp, "set title 'held-out accuracy'\nplot '%s' using 1:3 lw 2\n", data);
    else
        fprintf(gp, "set title 'held-out accuracy'\nset label 1 'none for this model' at graph 0.5,0.5 center\n"
                    "plot [0:1] [0:1] 1/0\nunset label 1\n");
    fprintf(gp, "set title 'samples per second'\nset yrange [0:*]\nplot '%s' using 1:4 lw 2\nunset multiplot\n", data);
    int st = pclose(gp);
    (void)st;
    unlink(data);
    struct stat sb;
    if (stat(png, &sb) != 0 || sb.st_size == 0)
        return fprintf(stderr, "loom: --plot: gnuplot wrote no %s\n", png), 1;
    return 0;
}
