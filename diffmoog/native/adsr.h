/* ADSR envelope (diffmoog/modules/adsr.py), forward and backward in one pass each.

curve(x, k) = expm1(-k x) / expm1(-k). Most samples sit in a flat part (x = 0 or 1 for
every segment: sustain, silence), where curve is exactly x and no exponential is needed.
*/

/* curve(x, k) with d/dx and d/dk; e = expm1(-k). */
static inline REAL SUF(adsr_curve)(REAL x, REAL k, REAL e, REAL *d_x, REAL *d_k) {
    if (x <= (REAL)0 || x >= (REAL)1) {
        /* curve is x here; its slopes still matter at the clamp edges (x exactly 0 or 1). */
        REAL ex = x <= 0 ? (REAL)0 : e;
        *d_x = -k * (ex + (REAL)1) / e;
        *d_k = (-x * (ex + (REAL)1) * e + ex * (e + (REAL)1)) / (e * e);
        return x;
    }
    REAL ex = EXPM1(-k * x);
    *d_x = -k * (ex + (REAL)1) / e;
    *d_k = (-x * (ex + (REAL)1) * e + ex * (e + (REAL)1)) / (e * e);
    return ex / e;
}

static inline REAL SUF(adsr_curve_value)(REAL x, REAL k, REAL e) {
    return (x <= (REAL)0 || x >= (REAL)1) ? x : EXPM1(-k * x) / e;
}

static inline REAL SUF(clamp01)(REAL u) { return u < 0 ? (REAL)0 : (u > 1 ? (REAL)1 : u); }

#define ADSR_ROWS \
    const REAL *A = attack + b * (attack_ps ? T : 1), *D = decay + b * (decay_ps ? T : 1); \
    const REAL *S = sustain + b * (sustain_ps ? T : 1), *R = release + b * (release_ps ? T : 1); \
    const REAL *C = curve + b * (curve_ps ? T : 1);

#define ADSR_SAMPLE \
    const REAL a = A[t * attack_ps], d = D[t * decay_ps], s = S[t * sustain_ps]; \
    const REAL r = R[t * release_ps], k = (REAL)1e-3 + (REAL)8 * C[t * curve_ps]; \
    if (k != k_last) { k_last = k; e = EXPM1(-k); }  /* once per row unless curve moves */ \
    const REAL time = (REAL)((double)(start + t) / sample_rate); \
    const REAL held_t = time < off ? time : off; \
    const REAL u_rise = held_t / a, u_fall = (held_t - a) / d, u_rel = (time - off) / r;

void SUF(adsr_forward)(int64_t row0, int64_t row1, int64_t T,
                       const REAL *attack, int attack_ps, const REAL *decay, int decay_ps,
                       const REAL *sustain, int sustain_ps, const REAL *release, int release_ps,
                       const REAL *curve, int curve_ps, double sample_rate, double note_off,
                       int64_t start, REAL *out) {
    const REAL off = (REAL)note_off;
    for (int64_t b = row0; b < row1; b++) {
        ADSR_ROWS
        REAL *y = out + b * T;
        REAL k_last = -1, e = 0;
        for (int64_t t = 0; t < T; t++) {
            ADSR_SAMPLE
            REAL rise = SUF(adsr_curve_value)(SUF(clamp01)(u_rise), k, e);
            REAL fall = SUF(adsr_curve_value)(SUF(clamp01)(u_fall), k, e);
            REAL rel = SUF(adsr_curve_value)(SUF(clamp01)(u_rel), k, e);
            y[t] = (rise - ((REAL)1 - s) * fall) * ((REAL)1 - rel);
        }
    }
}

/* Gradients of sum(grad * out) w.r.t. the five parameters (per-row sums for per-row ones). */
void SUF(adsr_backward)(int64_t row0, int64_t row1, int64_t T,
                        const REAL *attack, int attack_ps, const REAL *decay, int decay_ps,
                        const REAL *sustain, int sustain_ps, const REAL *release, int release_ps,
                        const REAL *curve, int curve_ps, double sample_rate, double note_off,
                        int64_t start, const REAL *grad,
                        REAL *g_attack, REAL *g_decay, REAL *g_sustain, REAL *g_release, REAL *g_curve) {
    const REAL off = (REAL)note_off;
    for (int64_t b = row0; b < row1; b++) {
        ADSR_ROWS
        const REAL *g = grad + b * T;
        double sums[5] = {0, 0, 0, 0, 0};
        REAL k_last = -1, e = 0;
        for (int64_t t = 0; t < T; t++) {
            ADSR_SAMPLE
            if (g[t] == (REAL)0) {  /* nothing flows back; skip the exponentials */
                if (attack_ps) g_attack[b * T + t] = 0;
                if (decay_ps) g_decay[b * T + t] = 0;
                if (sustain_ps) g_sustain[b * T + t] = 0;
                if (release_ps) g_release[b * T + t] = 0;
                if (curve_ps) g_curve[b * T + t] = 0;
                continue;
            }
            REAL rx, rk, fx, fk, lx, lk;
            REAL rise = SUF(adsr_curve)(SUF(clamp01)(u_rise), k, e, &rx, &rk);
            REAL fall = SUF(adsr_curve)(SUF(clamp01)(u_fall), k, e, &fx, &fk);
            REAL rel = SUF(adsr_curve)(SUF(clamp01)(u_rel), k, e, &lx, &lk);
            if (!INSIDE(u_rise, 0, 1)) rx = 0;
            if (!INSIDE(u_fall, 0, 1)) fx = 0;
            if (!INSIDE(u_rel, 0, 1)) lx = 0;
            const double gt = g[t];
            const double keep = (REAL)1 - rel, held = rise - ((REAL)1 - s) * fall;
            const double d_rise = gt * keep, d_fall = -gt * ((REAL)1 - s) * keep, d_rel = -gt * held;
            double grads[5];
            grads[0] = d_rise * rx * (-(double)held_t / ((double)a * a)) + d_fall * fx * (-1.0 / d);
            grads[1] = d_fall * fx * (-((double)held_t - a) / ((double)d * d));
            grads[2] = gt * fall * keep;
            grads[3] = d_rel * lx * (-((double)time - off) / ((double)r * r));
            grads[4] = 8.0 * (d_rise * rk + d_fall * fk + d_rel * lk);
            REAL *targets[5] = {g_attack, g_decay, g_sustain, g_release, g_curve};
            const int per_sample[5] = {attack_ps, decay_ps, sustain_ps, release_ps, curve_ps};
            for (int i = 0; i < 5; i++) {
                if (per_sample[i]) targets[i][b * T + t] = (REAL)grads[i]; else sums[i] += grads[i];
            }
        }
        REAL *targets[5] = {g_attack, g_decay, g_sustain, g_release, g_curve};
        const int per_sample[5] = {attack_ps, decay_ps, sustain_ps, release_ps, curve_ps};
        for (int i = 0; i < 5; i++) if (!per_sample[i]) targets[i][b] = (REAL)sums[i];
    }
}
#undef ADSR_ROWS
#undef ADSR_SAMPLE
