/* A calibration's fit (see cost.h, loom__cost_fit): the seconds of one of each term, by least
 * squares over the cases' measured steps, weighted so that every case counts by its relative
 * error; a latency that comes out below 0 is held at 0 and the rest fitted again, a rate that
 * comes out not positive keeps its figure. */
#include "sbp/infer/cost.h"

#include <math.h>

/* Solves the n x n system a x = b in place by Gaussian elimination with partial pivoting; -1 when
 * it is singular. */
static int solve(int n, double a[][LOOM__COST_TERMS], double *b, double *x)
{
    for (int c = 0; c < n; c++) {
        int piv = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(a[r][c]) > fabs(a[piv][c]))
                piv = r;
        if (fabs(a[piv][c]) < 1e-12)
            return -1;
        for (int k = 0; k < n; k++) {
            double t = a[c][k];
            a[c][k] = a[piv][k];
            a[piv][k] = t;
        }
        double t = b[c];
        b[c] = b[piv];
        b[piv] = t;
        for (int r = c + 1; r < n; r++) {
            double f = a[r][c] / a[c][c];
            for (int k = c; k < n; k++)
                a[r][k] -= f * a[c][k];
            b[r] -= f * b[c];
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        double s = b[r];
        for (int k = r + 1; k < n; k++)
            s -= a[r][k] * x[k];
        x[r] = s / a[r][r];
    }
    return 0;
}

/* 1 for a term counted in seconds each (a latency, which may be 0); 0 for a rate's. */
static int is_latency(int j)
{
    return j == LOOM__TERM_OPS || j == LOOM__TERM_LIBS || j == LOOM__TERM_BOXES || j == LOOM__TERM_STEPS || j == LOOM__TERM_NET_BOXES;
}

/* The least-squares seconds of the nf free terms free_[] into x (scaled by scale[]), the others
 * held at unit[]; -1 when the cases do not determine them. */
static int least_squares(const loom__cost_case *r, int nr, const double *unit, const int *free_, int nf, const double *scale,
                         double *x)
{
    double ata[LOOM__COST_TERMS][LOOM__COST_TERMS] = {{0}}, atb[LOOM__COST_TERMS] = {0};
    for (int i = 0; i < nr; i++) {
        double w = 1 / r[i].measured, rhs = r[i].measured; /* relative error */
        for (int j = 0; j < LOOM__COST_TERMS; j++) {
            int is_free = 0;
            for (int a = 0; a < nf; a++)
                is_free |= free_[a] == j;
            if (!is_free)
                rhs -= r[i].terms[j] * unit[j];
        }
        for (int a = 0; a < nf; a++) {
            double va = r[i].terms[free_[a]] * scale[a] * w;
            atb[a] += va * rhs * w;
            for (int b = 0; b < nf; b++)
                ata[a][b] += va * r[i].terms[free_[b]] * scale[b] * w;
        }
    }
    return solve(nf, ata, atb, x);
}

void loom__cost_fit(const loom__cost_case *r, int nr, loom__cost_dev *d, int fitted[LOOM__COST_TERMS])
{
    double unit[LOOM__COST_TERMS];
    loom__cost_unit(d, unit);
    int free_[LOOM__COST_TERMS], nf = 0;
    for (int j = 0; j < LOOM__COST_TERMS; j++) {
        double any = 0;
        for (int i = 0; i < nr; i++)
            any += r[i].terms[j];
        if (any > 0)
            free_[nf++] = j;
    }
    while (nf > 0) {
        /* column scales, so that the normal equations are of numbers near 1 */
        double scale[LOOM__COST_TERMS], x[LOOM__COST_TERMS];
        for (int a = 0; a < nf; a++)
            scale[a] = unit[free_[a]] > 0 ? unit[free_[a]] : 1;
        if (least_squares(r, nr, unit, free_, nf, scale, x) != 0)
            break;
        int worst = -1;
        for (int a = 0; a < nf; a++)
            if (!(x[a] > 0) && (worst < 0 || x[a] < x[worst]))
                worst = a;
        if (worst < 0) { /* every figure positive: taken */
            for (int a = 0; a < nf; a++) {
                unit[free_[a]] = x[a] * scale[a];
                fitted[free_[a]] = 1;
            }
            break;
        }
        if (is_latency(free_[worst])) { /* none seen: 0, the others fitted without it */
            unit[free_[worst]] = 0;
            fitted[free_[worst]] = 1;
        }
        free_[worst] = free_[--nf]; /* a rate keeps its figure */
    }
    d->op_latency = unit[LOOM__TERM_OPS];
    d->lib_latency = unit[LOOM__TERM_LIBS];
    d->flops = 1 / unit[LOOM__TERM_FLOPS];
    d->mem_bw = 1 / unit[LOOM__TERM_BYTES];
    d->box_latency = unit[LOOM__TERM_BOXES];
    d->box_bw = 1 / unit[LOOM__TERM_BOX_BYTES];
    d->step_latency = unit[LOOM__TERM_STEPS];
    d->net_latency = unit[LOOM__TERM_NET_BOXES];
    d->net_bw = 1 / unit[LOOM__TERM_NET_BYTES];
}
