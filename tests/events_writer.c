/* Writes the files tests/events_py.py reads with bench/peers/events.py: DIR/events.bin (generated
 * events) and DIR/labelled.bin (graph labels, no edge features), and prints one JSON line for each,
 * of its counts and the CRC-32 of each array's little-endian bytes (null for an absent one): what
 * the numpy reader must find.
 *
 *     events_writer DIR */
#include <loom/loom.h>

#include <stdio.h>
#include <string.h>
#include <zlib.h>

/* CRC-32 of n elements of size bytes (4 or 8) at p, each as its little-endian bytes. */
static unsigned long crc_le(const void *p, int64_t n, int size)
{
    uLong crc = crc32(0, NULL, 0);
    const unsigned char *b = p;
    for (int64_t i = 0; i < n; i++) {
        uint64_t v;
        if (size == 8) {
            memcpy(&v, b + i * 8, 8);
        } else {
            uint32_t w;
            memcpy(&w, b + i * 4, 4);
            v = w;
        }
        unsigned char le[8];
        for (int k = 0; k < size; k++)
            le[k] = (unsigned char)(v >> 8 * k);
        crc = crc32(crc, le, (uInt)size);
    }
    return crc;
}

static void print_crc(const char *name, const void *p, int64_t n, int size, int last)
{
    if (p)
        printf("\"%s\":%lu%s", name, crc_le(p, n, size), last ? "" : ",");
    else
        printf("\"%s\":null%s", name, last ? "" : ",");
}

static int write_and_print(const loom_samples *s, const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    loom_error err = LOOM_ERROR_INIT;
    if (loom_samples_write(s, path, &err) != LOOM_OK) {
        fprintf(stderr, "events_writer: %s\n", err.msg);
        return 1;
    }
    int64_t n = s->count, nodes = s->node_off[n], edges = s->edge_off[n];
    printf("{\"file\":\"%s\",\"count\":%lld,\"node_features\":%lld,\"edge_features\":%lld,\"num_classes\":%lld,", name,
           (long long)n, (long long)s->node_features, (long long)s->edge_features, (long long)s->num_classes);
    print_crc("node_off", s->node_off, n + 1, 8, 0);
    print_crc("edge_off", s->edge_off, n + 1, 8, 0);
    print_crc("src", s->src, edges, 4, 0);
    print_crc("dst", s->dst, edges, 4, 0);
    print_crc("x", s->x, nodes * s->node_features, 4, 0);
    print_crc("edge_attr", s->edge_attr, edges * s->edge_features, 4, 0);
    print_crc("edge_y", s->edge_y, edges, 4, 0);
    print_crc("graph_y", s->graph_y, n, 4, 1);
    printf("}\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: events_writer DIR\n");
        return 2;
    }
    loom_event_opts o = LOOM_EVENT_OPTS_INIT;
    o.events = 50;
    o.seed = 4;
    loom_samples s;
    loom_error err = LOOM_ERROR_INIT;
    if (loom_events_generate(&o, &s, &err) != LOOM_OK) {
        fprintf(stderr, "events_writer: %s\n", err.msg);
        return 1;
    }
    int rc = write_and_print(&s, argv[1], "events.bin");
    loom_samples_free(&s);

    int64_t node_off[] = {0, 2, 2, 5}, edge_off[] = {0, 1, 1, 4};
    int32_t src[] = {0, 0, 1, 2}, dst[] = {1, 2, 2, 0}, graph_y[] = {2, 0, 1};
    float x[] = {1, -2, 3.5f, 4, 5, 6, 7, 8, 9, 10};
    loom_samples l = {.count = 3, .node_features = 2, .num_classes = 3, .node_off = node_off, .edge_off = edge_off,
                      .src = src, .dst = dst, .x = x, .graph_y = graph_y};
    return rc | write_and_print(&l, argv[1], "labelled.bin");
}
