/* Elementary functions from basic operations, for data/events.c (internal to data/): exp, log,
 * asin, sinh, asinh and a wrap of angles from IEEE-754 additions, multiplications, divisions and
 * sqrt alone, each correctly rounded everywhere, so that generated events are the same bytes on
 * every machine. Include it after the file's pragma that turns off contraction into fused
 * multiply-adds (data/events.c), or the compiler may contract these too. */
#ifndef LOOM_DATA_EVENTS_MATH_H
#define LOOM_DATA_EVENTS_MATH_H

#include <math.h>

#define EV_PI 3.14159265358979323846

/* ---------------------------------------------------------------------------------------------
 * Elementary functions from basic operations (see the top of the file).
 * ------------------------------------------------------------------------------------------- */
#define EV_LN2_HI 6.93147180369123816490e-01 /* ln 2 split so that k * EV_LN2_HI is exact for |k| < 2^11 */
#define EV_LN2_LO 1.90821492927058770002e-10

/* e^x: x = k ln 2 + r with |r| <= ln 2 / 2, e^r from 18 terms of its series (the 19th is below 1e-22). */
static inline double ev_exp(double x)
{
    if (x < -745.0)
        return 0.0;
    double k = floor(x * 1.44269504088896340736 + 0.5);
    double r = (x - k * EV_LN2_HI) - k * EV_LN2_LO;
    double p = 1.0;
    for (int n = 18; n >= 1; n--)
        p = 1.0 + p * r / n;
    return ldexp(p, (int)k);
}

/* ln x for a finite x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(t) with
 * t = (m - 1) / (m + 1), |t| <= 0.172, from 13 terms (t^26 is below 1e-19). */
static inline double ev_log(double x)
{
    int e;
    double m = frexp(x, &e);
    if (m < 0.70710678118654752440) {
        m *= 2.0;
        e--;
    }
    double t = (m - 1.0) / (m + 1.0), t2 = t * t, s = 1.0 / 25.0;
    for (int k = 11; k >= 0; k--)
        s = s * t2 + 1.0 / (2 * k + 1);
    return e * EV_LN2_HI + (e * EV_LN2_LO + 2.0 * t * s);
}

/* asin y for 0 <= y <= 1/2: 30 terms of sum binom(2n, n) / 4^n y^(2n+1) / (2n + 1) (y^60 < 1e-18). */
static inline double ev_asin_small(double y)
{
    double y2 = y * y, p = y, s = 0.0;
    for (int n = 0; n < 30; n++) {
        s += p / (2 * n + 1);
        p *= y2 * (2 * n + 1) / (2 * n + 2);
    }
    return s;
}

/* asin x for 0 <= x <= 1, above 1/2 through asin x = pi/2 - 2 asin sqrt((1 - x) / 2). */
static inline double ev_asin(double x)
{
    return x <= 0.5 ? ev_asin_small(x) : EV_PI / 2 - 2.0 * ev_asin_small(sqrt((1.0 - x) / 2.0));
}

static inline double ev_sinh(double x)
{
    double e = ev_exp(x);
    return (e - 1.0 / e) / 2.0;
}

static inline double ev_asinh(double x)
{
    double a = fabs(x), v = ev_log(a + sqrt(a * a + 1.0));
    return x < 0 ? -v : v;
}

/* phi in [-pi, pi) */
static inline double ev_wrap(double phi)
{
    while (phi >= EV_PI)
        phi -= 2 * EV_PI;
    while (phi < -EV_PI)
        phi += 2 * EV_PI;
    return phi;
}

#endif
