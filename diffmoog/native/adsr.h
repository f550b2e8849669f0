/* ADSR envelope (diffmoog/modules/adsr.py), forward and backward in one pass each.

curve(x, k) = expm1(-k x) / expm1(-k), with x clamped to [0, 1]; x = 0 and x = 1 give
exactly 0 and 1, as in the PyTorch path; k = ADSR_CURVE_MIN + ADSR_CURVE_SPAN * curve
(constants from modules/adsr.py, via generated.h). Parameters are copied a block at a time into
small arrays (constant ones repeated), so the per-sample loops vectorise either way.
*/

/* Block [t0, t0+n) of a [batch, 1] (ps 0) or [batch, samples] (ps 1) parameter row. */
INLINE void SUF(param_block)(REAL *dst, const REAL *row, int ps, int64_t t0, int n) {
    if (ps) for (int i = 0; i < n; i++) dst[i] = row[t0 + i];
    else for (int i = 0; i < n; i++) dst[i] = row[0];
}

INLINE REAL SUF(clamp01)(REAL u) { return u < 0 ? (REAL)0 : (u > 1 ? (REAL)1 : u); }

INLINE REAL SUF(curve)(REAL x, REAL k, REAL e) {
    REAL v = EXPM1(-k * x) / e;
    return (x <= (REAL)0 || x >= (REAL)1) ? x : v;
}

/* d curve/dx and d curve/dk at the clamped x (slopes are finite at both edges). */
INLINE void SUF(curve_slopes)(REAL x, REAL k, REAL e, REAL *d_x, REAL *d_k) {
    REAL ex = EXPM1(-k * x);
    *d_x = -k * (ex + (REAL)1) / e;
    *d_k = (-x * (ex + (REAL)1) * e + ex * (e + (REAL)1)) / (e * e);
}

/* With constant parameters every segment ramp is monotonic in time, so a block whose first
   and last samples sit on the same flat side of all three ramps (u <= 0 or u >= 1;
   strictly, when `strict`, since the clamp passes gradient at 0 and 1) is flat: sustain,
   hold or silence. Returns 1 and the level and the sustain slope d y / d s if so. */
INLINE int SUF(adsr_flat)(double t_first, double t_last, REAL a, REAL d, REAL s, REAL r, REAL off,
                                 int strict, REAL *level, REAL *d_sustain) {
    REAL x[3];
    for (int side = 0; side < 2; side++) {
        const REAL time = (REAL)(side ? t_last : t_first);
        const REAL held_t = time < off ? time : off;
        const REAL u[3] = {held_t / a, (held_t - a) / d, (time - off) / r};
        for (int j = 0; j < 3; j++) {
            int low = strict ? u[j] < 0 : u[j] <= 0, high = strict ? u[j] > 1 : u[j] >= 1;
            if (!low && !high) return 0;
            REAL v = low ? (REAL)0 : (REAL)1;
            if (side && v != x[j]) return 0;
            x[j] = v;
        }
    }
    *level = (x[0] - ((REAL)1 - s) * x[1]) * ((REAL)1 - x[2]);
    *d_sustain = x[1] * ((REAL)1 - x[2]);
    return 1;
}

#define ADSR_FLAT(strict) \
    (all_constant && SUF(adsr_flat)((double)(start + t0) / sample_rate, (double)(start + t0 + n - 1) / sample_rate, \
                                    attack[b], decay[b], sustain[b], release[b], off, strict, &level, &d_sustain))

#define ADSR_BLOCK \
    SUF(param_block)(A, attack + b * (attack_ps ? T : 1), attack_ps, t0, n); \
    SUF(param_block)(D, decay + b * (decay_ps ? T : 1), decay_ps, t0, n); \
    SUF(param_block)(S, sustain + b * (sustain_ps ? T : 1), sustain_ps, t0, n); \
    SUF(param_block)(R, release + b * (release_ps ? T : 1), release_ps, t0, n); \
    SUF(param_block)(C, curve + b * (curve_ps ? T : 1), curve_ps, t0, n); \
    for (int i = 0; i < n; i++) { K[i] = (REAL)ADSR_CURVE_MIN + (REAL)ADSR_CURVE_SPAN * C[i]; E[i] = EXPM1(-K[i]); }

#define ADSR_SAMPLE \
    const REAL a = A[i], d = D[i], s = S[i], r = R[i], k = K[i], e = E[i]; \
    const REAL time = (REAL)((double)(start + t0 + i) / sample_rate); \
    const REAL held_t = time < off ? time : off; \
    const REAL u_rise = held_t / a, u_fall = (held_t - a) / d, u_rel = (time - off) / r; \
    const REAL x_rise = SUF(clamp01)(u_rise), x_fall = SUF(clamp01)(u_fall), x_rel = SUF(clamp01)(u_rel); \
    const REAL rise = SUF(curve)(x_rise, k, e), fall = SUF(curve)(x_fall, k, e), rel = SUF(curve)(x_rel, k, e);

void SUF(adsr_forward)(ADSR_FORWARD_ARGS) {
    FTZ_BEGIN
    const REAL off = (REAL)note_off;
    REAL A[BLK], D[BLK], S[BLK], R[BLK], C[BLK], K[BLK], E[BLK];
    const int all_constant = !(attack_ps || decay_ps || sustain_ps || release_ps || curve_ps);
    for (int64_t b = row0; b < row1; b++) {
        for (int64_t t0 = 0; t0 < T; t0 += BLK) {
            const int n = (int)(T - t0 < BLK ? T - t0 : BLK);
            REAL *y = out + b * T + t0, level, d_sustain;
            if (ADSR_FLAT(0)) {
                for (int i = 0; i < n; i++) y[i] = level;
                continue;
            }
            ADSR_BLOCK
            for (int i = 0; i < n; i++) {
                ADSR_SAMPLE
                y[i] = (rise - ((REAL)1 - s) * fall) * ((REAL)1 - rel);
            }
        }
    }
    FTZ_END
}

/* Gradients of sum(grad * out) w.r.t. the five parameters (per-row sums for per-row ones). */
void SUF(adsr_backward)(ADSR_BACKWARD_ARGS) {
    FTZ_BEGIN
    const REAL off = (REAL)note_off;
    REAL A[BLK], D[BLK], S[BLK], R[BLK], C[BLK], K[BLK], E[BLK];
    double parts[5][BLK];
    REAL *targets[5] = {g_attack, g_decay, g_sustain, g_release, g_curve};
    const int per_sample[5] = {attack_ps, decay_ps, sustain_ps, release_ps, curve_ps};
    const int all_constant = !(attack_ps || decay_ps || sustain_ps || release_ps || curve_ps);
    for (int64_t b = row0; b < row1; b++) {
        const REAL *g = grad + b * T;
        double sums[5] = {0, 0, 0, 0, 0};
        for (int64_t t0 = 0; t0 < T; t0 += BLK) {
            const int n = (int)(T - t0 < BLK ? T - t0 : BLK);
            REAL level, d_sustain;
            if (ADSR_FLAT(1)) {  /* only the sustain level moves a flat block */
                for (int i = 0; i < n; i++) parts[2][i] = g[t0 + i];
                sums[2] += (double)d_sustain * lane_sum(parts[2], n);
                continue;
            }
            ADSR_BLOCK
            for (int i = 0; i < n; i++) {
                ADSR_SAMPLE
                REAL rx, rk, fx, fk, lx, lk;
                SUF(curve_slopes)(x_rise, k, e, &rx, &rk);
                SUF(curve_slopes)(x_fall, k, e, &fx, &fk);
                SUF(curve_slopes)(x_rel, k, e, &lx, &lk);
                rx = INSIDE(u_rise, 0, 1) ? rx : (REAL)0;  /* torch.clamp passes gradient inside only */
                fx = INSIDE(u_fall, 0, 1) ? fx : (REAL)0;
                lx = INSIDE(u_rel, 0, 1) ? lx : (REAL)0;
                const double gt = g[t0 + i];
                const double keep = (REAL)1 - rel, held = rise - ((REAL)1 - s) * fall;
                const double d_rise = gt * keep, d_fall = -gt * ((REAL)1 - s) * keep, d_rel = -gt * held;
                parts[0][i] = d_rise * rx * (-(double)held_t / ((double)a * a)) + d_fall * fx * (-1.0 / d);
                parts[1][i] = d_fall * fx * (-((double)held_t - a) / ((double)d * d));
                parts[2][i] = gt * fall * keep;
                parts[3][i] = d_rel * lx * (-((double)time - off) / ((double)r * r));
                parts[4][i] = ADSR_CURVE_SPAN * (d_rise * rk + d_fall * fk + d_rel * lk);
            }
            for (int j = 0; j < 5; j++) {
                if (per_sample[j]) for (int i = 0; i < n; i++) targets[j][b * T + t0 + i] = (REAL)parts[j][i];
                else sums[j] += lane_sum(parts[j], n);
            }
        }
        for (int j = 0; j < 5; j++) if (!per_sample[j]) targets[j][b] = (REAL)sums[j];
    }
    FTZ_END
}
#undef ADSR_BLOCK
#undef ADSR_SAMPLE
#undef ADSR_FLAT
