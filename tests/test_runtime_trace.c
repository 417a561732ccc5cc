/* The actor runtime's Chrome traces (parsed back by a small JSON checker) and the plan's validation
 * errors. The protocol itself is tests/test_runtime.c. */
#include "rt_helpers.h"

/* A small JSON validator (RFC 8259 grammar, no semantics): returns the end of the value or NULL. */
static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    return p;
}
static const char *json_value(const char *p, int depth);
static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    for (; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
                        return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
    }
    return p + 1;
}
static const char *json_number(const char *p)
{
    const char *s = p;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    if (*p == '.') {
        if (!(*++p >= '0' && *p <= '9'))
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return p > s ? p : NULL;
}
static const char *json_value(const char *p, int depth)
{
    if (depth > 64)
        return NULL;
    p = json_ws(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int obj = *p == '{';
        p = json_ws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                if (!(p = json_string(json_ws(p))))
                    return NULL;
                p = json_ws(p);
                if (*p++ != ':')
                    return NULL;
            }
            if (!(p = json_value(p, depth + 1)))
                return NULL;
            p = json_ws(p);
            if (*p == close)
                return p + 1;
            if (*p++ != ',')
                return NULL;
        }
    }
    if (*p == '"')
        return json_string(p);
    if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4))
        return p + 4;
    if (!strncmp(p, "false", 5))
        return p + 5;
    return json_number(p);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(fread(s, 1, (size_t)n, f), n);
    s[n] = 0;
    fclose(f);
    return s;
}

static size_t count_of(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

START_TEST(test_trace)
{
    char path[] = "/tmp/loom_rt_trace_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    loom__rt *rt = loom__rt_new(&(loom__rt_opts){.pin = 1, .spin = -1, .trace = path});
    ck_assert_ptr_nonnull(rt);
    enum { N = 4, P = 50 };
    tact *c[N];
    uint64_t id[N];
    const char *names[N] = {"load \"batch\"", "conv\\1", "relu", "sink"}; /* names that need escaping */
    for (int k = 0; k < N; k++) {
        c[k] = tact_new(k);
        c[k]->expect_k[0] = k - 1;
        id[k] = cpu_id(k % 2, k / 2);
        add(rt, id[k], names[k], c[k], k > 0, k < N - 1, 2);
        if (k)
            loom__rt_connect(rt, id[k - 1], 0, id[k], 0);
    }
    ck_assert_msg(loom__rt_run(rt, P) == LOOM_OK, "%s", loom__rt_error(rt));
    ck_assert_int_eq(loom__rt_trace_count(rt), N * P);
    loom__rt_event e, f;
    for (int64_t p = 0; p < P; p++) {
        ck_assert(loom__rt_trace_find(rt, "relu", p, &e));
        ck_assert_int_eq(e.piece, p);
        ck_assert_int_le(e.begin_ns, e.end_ns);
        ck_assert_int_eq(e.thread, loom__rt_thread_of(rt, id[2]));
        ck_assert(loom__rt_trace_find(rt, "conv\\1", p, &f));
        ck_assert_int_le(f.end_ns, e.begin_ns); /* relu of p starts after conv of p ended */
    }
    ck_assert(!loom__rt_trace_find(rt, "relu", P, &e));
    ck_assert(!loom__rt_trace_find(rt, "nobody", 0, &e));
    ck_assert(loom__rt_trace_get(rt, 0, &e));
    ck_assert(!loom__rt_trace_get(rt, N * P, &e));

    char *json = slurp(path);
    const char *end = json_value(json, 0);
    ck_assert_msg(end != NULL, "the trace is not valid JSON");
    ck_assert_msg(*json_ws(end) == 0, "trailing bytes after the trace's JSON");
    ck_assert_int_eq(count_of(json, "\"ph\":\"X\""), N * P);
    ck_assert_int_eq(count_of(json, "\"thread_name\""), 2);
    ck_assert_ptr_nonnull(strstr(json, "\"load \\\"batch\\\"\""));
    free(json);
    remove(path);
    loom__rt_free(rt);
    for (int k = 0; k < N; k++)
        free(c[k]);
}
END_TEST

/* ---- plan validation ------------------------------------------------------------------------ */

static void expect_run_error(loom__rt *rt, loom_status st, const char *needle)
{
    ck_assert_int_eq(loom__rt_run(rt, 1), st);
    ck_assert_msg(strstr(loom__rt_error(rt), needle) != NULL, "'%s' lacks '%s'", loom__rt_error(rt), needle);
    ck_assert_int_eq(loom__rt_run(rt, 1), st); /* the error stays */
    loom__rt_free(rt);
}

START_TEST(test_plan_errors)
{
    loom__rt *rt = rt_new();
    loom__rt_add_actor(rt, &(loom__actor_desc){.id = cpu_id(0, 0), .name = "s", .nout = 1});
    loom__rt_add_actor(rt, &(loom__actor_desc){.id = cpu_id(0, 1), .name = "k", .nin = 2});
    loom__rt_connect(rt, cpu_id(0, 0), 0, cpu_id(0, 1), 0);
    expect_run_error(rt, LOOM_ERR_INVALID, "input 1 of k is not connected");

    rt = rt_new();
    loom__rt_add_actor(rt, &(loom__actor_desc){.id = cpu_id(0, 0), .name = "x"});
    loom__rt_add_actor(rt, &(loom__actor_desc){.id = cpu_id(0, 0), .name = "y"});
    expect_run_error(rt, LOOM_ERR_INVALID, "same id");

    rt = rt_new();
    loom__rt_add_actor(rt, &(loom__actor_desc){.id = cpu_id(0, 0), .name = "s", .nout = 1});
    loom__rt_connect(rt, cpu_id(0, 0), 0, cpu_id(3, 3), 0);
    expect_run_error(rt, LOOM_ERR_INVALID, "no actor has id");

    rt = rt_new(); /* s -> a -> b -> a: a cycle without a token */
    loom__rt_add_actor(rt, &(loom__actor_desc){.id = cpu_id(0, 0), .name = "s", .nout = 1});
    loom__rt_add_actor(rt, &(loom__actor_desc){.id = cpu_id(0, 1), .name = "a", .nin = 2, .nout = 1});
    loom__rt_add_actor(rt, &(loom__actor_desc){.id = cpu_id(1, 0), .name = "b", .nin = 1, .nout = 1});
    loom__rt_connect(rt, cpu_id(0, 0), 0, cpu_id(0, 1), 0);
    loom__rt_connect(rt, cpu_id(1, 0), 0, cpu_id(0, 1), 1);
    loom__rt_connect(rt, cpu_id(0, 1), 0, cpu_id(1, 0), 0);
    expect_run_error(rt, LOOM_ERR_INVALID, "cycle with no initial emits");

    rt = rt_new(); /* a holder in a loop with no source */
    loom__rt_add_actor(rt, &(loom__actor_desc){.id = cpu_id(0, 0), .name = "h", .nin = 1, .nout = 1, .initial_emits = 1});
    loom__rt_add_actor(rt, &(loom__actor_desc){.id = cpu_id(0, 1), .name = "b", .nin = 1, .nout = 1});
    loom__rt_connect(rt, cpu_id(0, 0), 0, cpu_id(0, 1), 0);
    loom__rt_connect(rt, cpu_id(0, 1), 0, cpu_id(0, 0), 0);
    expect_run_error(rt, LOOM_ERR_INVALID, "no source feeds");

    rt = rt_new();
    ck_assert_int_eq(loom__rt_add_actor(rt, &(loom__actor_desc){.id = 1, .name = "r", .nout = 1,
                                                                 .out = (loom__regst_desc[]){{.regst_num = -1}}}),
                     LOOM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(loom__rt_error(rt), "regst_num -1")); /* before any run */
    expect_run_error(rt, LOOM_ERR_INVALID, "regst_num -1");

    rt = rt_new();
    loom__rt_add_actor(rt, &(loom__actor_desc){.id = loom__aid(2, 0, 0, 0, 0), .name = "far"});
    expect_run_error(rt, LOOM_ERR_UNSUPPORTED, "rank 2");

    /* a trace pattern with an unknown conversion, named with where it came from */
    rt = loom__rt_new(&(loom__rt_opts){.pin = 1, .spin = -1, .trace = "/tmp/t-%q.json"});
    ck_assert_ptr_nonnull(rt);
    loom__rt_add_actor(rt, &(loom__actor_desc){.id = cpu_id(0, 0), .name = "s"});
    expect_run_error(rt, LOOM_ERR_INVALID,
                     "'%q' at byte 7 is none of %p (the process id), %n (the run's number in the process) and "
                     "%% (a '%') (opts.trace)");
}
END_TEST

static Suite *trace_suite(void)
{
    Suite *s = suite_create("runtime_trace");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, test_trace);
    tcase_add_test(tc, test_plan_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lt_run_suite(trace_suite()); }
