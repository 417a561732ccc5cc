/* What the builder's files share (internal to graphs/builder/): the checks that making a node
 * (builder.c) and a leaf (leaves.c) go through, of shapes (dims.c) and of names (names.c). */
#ifndef LOOM_GRAPHS_BUILDER_INTERNAL_H
#define LOOM_GRAPHS_BUILDER_INTERNAL_H

#include "graphs/builder/graph.h"

/* A shape is valid on g when every dim is a size >= 0 or (allow_dynamic) one of g's dynamic
 * dims; else 0 with why as loom__dim_ok writes it. */
int loom__shape_ok(const loom_graph *g, const loom_shape *s, int allow_dynamic, char *why, size_t len);
/* 1 when a tensor of dtype, layout and (valid) shape has its element and byte counts in an int64
 * at the bounds of its dims, which every size computed later (values, plan registers, feeds)
 * relies on; else 0 with why = "[N, 4] of f32 is 2^66 bytes ..., over ...". A dim of 0 counts as
 * 1: an empty tensor's strides still multiply its other dims (kernels compute them), and the
 * answer must not depend on where the 0 is. A CSR matrix's arrays are sized by its rows (the row
 * pointer) and its entries (checked when fed). */
int loom__size_fits(const loom_graph *g, loom_dtype dtype, loom__layout layout, const loom_shape *s, char *why, size_t len);

/* 1 when name can name a new tensor of g (not empty, within a tensor's name, no tensor's yet);
 * else 0 with the error recorded on g, naming api. */
int loom__name_ok(loom_graph *g, const char *api, const char *name);
/* Names t (a tensor of g, name checked by loom__name_ok), in the table too. */
void loom__set_name(loom_graph *g, loom_tensor *t, const char *name);

#endif
