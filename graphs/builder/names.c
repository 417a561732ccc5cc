/* Tensors found by name: a hash table of the named tensors' ids, so that naming n tensors is linear
 * (searched instead when out of memory); and the parameters found by position. */
#include "graphs/builder/builder_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t name_hash(const char *s) /* FNV-1a */
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return (size_t)h;
}

/* The slot holding name, or else the free slot where it would go. */
static int name_slot(const loom_graph *g, const char *name)
{
    size_t mask = (size_t)g->names_cap - 1;
    for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
        int id = g->names[i];
        if (id == LOOM__NAME_FREE || (id >= 0 && !strcmp(g->t[id]->name, name)))
            return (int)i;
    }
}

/* Enters t (named now) in the table, growing it to keep a free slot in every two. */
static void name_add(loom_graph *g, const loom_tensor *t)
{
    if (g->names_cap < 0)
        return;
    if (2 * (g->names_used + 1) > g->names_cap) {
        int cap = g->names_cap ? 2 * g->names_cap : 64;
        int *old = g->names, old_cap = g->names_cap;
        g->names = cap > 0 && cap <= INT_MAX / 2 ? malloc((size_t)cap * sizeof *g->names) : NULL;
        if (!g->names) {
            free(old);
            g->names_cap = -1; /* searched from now on */
            return;
        }
        for (int i = 0; i < cap; i++)
            g->names[i] = LOOM__NAME_FREE;
        g->names_cap = cap;
        g->names_used = 0;
        for (int i = 0; i < old_cap; i++)
            if (old[i] >= 0) {
                g->names[name_slot(g, g->t[old[i]]->name)] = old[i];
                g->names_used++;
            }
        free(old);
    }
    g->names[name_slot(g, t->name)] = t->id;
    g->names_used++;
}

loom_tensor *loom_graph_find(loom_graph *g, const char *name)
{
    if (!g || !name || !*name)
        return NULL;
    if (g->names_cap < 0) {
        for (int i = 0; i < g->n; i++)
            if (g->t[i]->name[0] && !strcmp(g->t[i]->name, name))
                return g->t[i];
        return NULL;
    }
    if (!g->names_cap)
        return NULL;
    int id = g->names[name_slot(g, name)];
    return id >= 0 ? g->t[id] : NULL;
}

loom_tensor *loom_graph_tensor(loom_graph *g, const char *name)
{
    if (!g)
        return NULL;
    loom_tensor *t = loom_graph_find(g, name);
    if (t)
        return t;
    if (!name)
        return loom__fail(g, LOOM_ERR_INVALID, "loom_graph_tensor: the name is NULL");
    return loom__fail(g, LOOM_ERR_NOT_FOUND, "loom_graph_tensor: the graph has no tensor named '%s'", name);
}

/* Names t (a tensor of g, name checked by name_ok), in the table too. */
void loom__set_name(loom_graph *g, loom_tensor *t, const char *name)
{
    if (t->name[0] && g->names_cap > 0)
        g->names[name_slot(g, t->name)] = LOOM__NAME_GONE; /* still used: probes go past it */
    snprintf(t->name, sizeof t->name, "%s", name);
    name_add(g, t);
}

void loom_tensor_set_name(loom_tensor *t, const char *name)
{
    if (!t || (t->flags & LOOM__T_POISON))
        return;
    if (loom__name_ok(t->graph, "loom_tensor_set_name", name))
        loom__set_name(t->graph, t, name);
}

loom_tensor *loom_graph_param(loom_graph *g, int k)
{
    for (int i = 0; g && i < g->n; i++)
        if (g->t[i]->op == LOOM_OP_PARAM && k-- == 0)
            return g->t[i];
    return NULL;
}

int loom__name_ok(loom_graph *g, const char *api, const char *name)
{
    if (!name || !*name || strlen(name) >= sizeof g->poison.name) {
        loom__fail(g, LOOM_ERR_INVALID, "%s: name must be 1 to %zu characters", api, sizeof g->poison.name - 1);
        return 0;
    }
    if (loom_graph_find(g, name)) {
        loom__fail(g, LOOM_ERR_INVALID, "%s: a tensor named '%s' exists already", api, name);
        return 0;
    }
    return 1;
}
