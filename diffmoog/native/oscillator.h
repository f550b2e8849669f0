/* Oscillator: phase accumulation + waveform (PolyBLEP/BLAMP, additive for high notes), fused.

Mirrors diffmoog/modules/waveforms.py and additive.py operation for operation, so the
native and the torch paths agree to rounding. The backward recomputes the waveform and
its derivatives instead of saving them: one pass over the output gradient.
Shapes: 0 sine, 1 saw, 2 square, 3 triangle.
*/

static inline REAL SUF(frac)(REAL x) { return x - FLOOR(x); }

/* Phase of sample n at a constant increment: the product in double is exact to ~1e-12
   cycles for any render length; the second frac catches a double just below 1 rounding
   up to 1.0 in float. */
static inline REAL SUF(const_phase)(REAL inc, int64_t n) {
    double x = (double)inc * (double)n;
    return SUF(frac)((REAL)(x - floor(x)));
}

/* PolyBLEP residual for a downward step of 2 at phase 0, with d/dp and d/ddt. */
static inline REAL SUF(blep)(REAL p, REAL dt, REAL *d_p, REAL *d_dt) {
    REAL d = p - RINT(p);
    REAL u = d / dt;
    REAL y = u < (REAL)-1 ? (REAL)-1 : (u > (REAL)1 ? (REAL)1 : u);
    REAL side = (REAL)2 * FLOOR(d) + (REAL)1;
    REAL slope = INSIDE(u, -1, 1) ? (REAL)2 - (REAL)2 * FABS(y) : (REAL)0;
    *d_p = slope / dt;
    *d_dt = -slope * d / (dt * dt);
    return (REAL)2 * y - y * FABS(y) - side;
}

/* PolyBLAMP residual (integrated BLEP) for a unit slope change at phase 0. */
static inline REAL SUF(blamp)(REAL p, REAL dt, REAL *d_p, REAL *d_dt) {
    if (p < dt) {
        REAL a = (REAL)1 - p / dt;
        *d_p = -a * a / ((REAL)2 * dt);
        *d_dt = a * a * p / ((REAL)2 * dt * dt);
        return a * a * a / (REAL)6;
    }
    if (p > (REAL)1 - dt) {
        REAL b = (REAL)1 + (p - (REAL)1) / dt;
        *d_p = b * b / ((REAL)2 * dt);
        *d_dt = -b * b * (p - (REAL)1) / ((REAL)2 * dt * dt);
        return b * b * b / (REAL)6;
    }
    *d_p = 0; *d_dt = 0;
    return 0;
}

/* Fourier series with at most 8 harmonics, each fading out just below Nyquist (additive.py). */
static inline REAL SUF(additive)(int shape, REAL p, REAL dt, REAL *d_p, REAL *d_dt) {
    const int step = shape == 1 ? 1 : 2;
    const int use_cos = shape == 3;
    REAL theta = (REAL)TWO_PI_D * p;
    REAL c1 = COS(theta), s1 = SIN(theta), two_cos = (REAL)2 * c1;
    REAL s_prev = 0, s_cur = s1, c_prev = 1, c_cur = c1;
    REAL out = 0, dp = 0, ddt = 0;
    for (int k = 1; k <= 8; k++) {
        if ((k - 1) % step == 0) {
            double kk = (double)k;
            REAL amp = shape == 1 ? (REAL)(-2.0 / (M_PI * kk))
                     : shape == 2 ? (REAL)(4.0 / (M_PI * kk))
                     : (REAL)(-8.0 / ((M_PI * kk) * (M_PI * kk)));
            REAL u = ((REAL)0.5 - (REAL)k * dt) / (REAL)0.05;
            REAL gain = u < 0 ? (REAL)0 : (u > 1 ? (REAL)1 : u);
            REAL value = use_cos ? c_cur : s_cur;
            REAL deriv = use_cos ? -(REAL)k * s_cur : (REAL)k * c_cur;  /* d/dtheta */
            out += amp * gain * value;
            dp += amp * gain * deriv;
            if (INSIDE(u, 0, 1)) ddt += amp * value * (-(REAL)k / (REAL)0.05);
        }
        REAL s_next = two_cos * s_cur - s_prev, c_next = two_cos * c_cur - c_prev;
        s_prev = s_cur; s_cur = s_next; c_prev = c_cur; c_cur = c_next;
    }
    *d_p = dp * (REAL)TWO_PI_D;
    *d_dt = ddt;
    return out;
}

/* One waveform sample w(p, dt) with dw/dp and dw/ddt. */
static inline REAL SUF(wave)(int shape, int band_limited, REAL p, REAL dt, REAL *d_p, REAL *d_dt) {
    REAL bp, bdt, bp2, bdt2;
    *d_dt = 0;
    if (shape == 0) {
        REAL x = (REAL)TWO_PI_D * p;
        *d_p = (REAL)TWO_PI_D * COS(x);
        return SIN(x);
    }
    if (band_limited && dt * (REAL)9 >= (REAL)0.5)
        return SUF(additive)(shape, p, dt, d_p, d_dt);
    if (shape == 1) {
        REAL naive = (REAL)2 * p - (REAL)1;
        if (!band_limited) { *d_p = 2; return naive; }
        REAL r = SUF(blep)(p, dt, &bp, &bdt);
        *d_p = (REAL)2 - bp; *d_dt = -bdt;
        return naive - r;
    }
    if (shape == 2) {
        REAL naive = (REAL)1 - (REAL)2 * FLOOR((REAL)2 * p);
        *d_p = 0;
        if (!band_limited) return naive;
        REAL r1 = SUF(blep)(p, dt, &bp, &bdt);
        REAL r2 = SUF(blep)(SUF(frac)(p + (REAL)0.5), dt, &bp2, &bdt2);
        *d_p = bp - bp2; *d_dt = bdt - bdt2;
        return naive + r1 - r2;
    }
    REAL centred = p - (REAL)0.5;
    REAL naive = (REAL)1 - (REAL)4 * FABS(centred);
    *d_p = centred > 0 ? (REAL)-4 : (centred < 0 ? (REAL)4 : (REAL)0);
    if (!band_limited) return naive;
    REAL r1 = SUF(blamp)(p, dt, &bp, &bdt);
    REAL r2 = SUF(blamp)(SUF(frac)(p + (REAL)0.5), dt, &bp2, &bdt2);
    *d_p += (REAL)8 * dt * (bp - bp2);
    *d_dt = (REAL)8 * (r1 - r2) + (REAL)8 * dt * (bdt - bdt2);
    return naive + (REAL)8 * dt * (r1 - r2);
}

/* Frequency of sample t: base * 2^(mod * ctl[t]) (exponential FM) or just base. */
#define OSC_FREQ(t) (ctl ? f_row[(t) * freq_ps] * EXP2(m_row[(t) * mod_ps] * c_row[t]) : f_row[(t) * freq_ps])

/* out[b, t] = amp * wave(phase).
   Constant pitch (no ctl, freq_ps 0): closed-form phase per absolute sample index
   (start + t), as waveforms.phase does. Otherwise the increments are integrated in double
   from phase_in[b] (NULL: 0) and the end phase stored in phase_out[b] (if not NULL). */
void SUF(osc_forward)(int64_t row0, int64_t row1, int64_t T,
                      const REAL *freq, int freq_ps, const REAL *amp, int amp_ps,
                      const REAL *ctl, const REAL *mod, int mod_ps,
                      const int32_t *shapes, int band_limited, double sample_rate, int64_t start,
                      const double *phase_in, double *phase_out, REAL *out) {
    const REAL sr = (REAL)sample_rate;
    for (int64_t b = row0; b < row1; b++) {
        const REAL *f_row = freq + b * (freq_ps ? T : 1);
        const REAL *a_row = amp + b * (amp_ps ? T : 1);
        const REAL *c_row = ctl ? ctl + b * T : 0;
        const REAL *m_row = ctl ? mod + b * (mod_ps ? T : 1) : 0;
        const int shape = shapes[b];
        REAL *y = out + b * T;
        REAL dp, ddt;
        if (!ctl && !freq_ps) {
            const REAL inc = f_row[0] / sr;
            const REAL dt = FABS(inc) < (REAL)1e-7 ? (REAL)1e-7 : (FABS(inc) > (REAL)0.5 ? (REAL)0.5 : FABS(inc));
            for (int64_t t = 0; t < T; t++) {
                REAL p = SUF(const_phase)(inc, start + t);
                y[t] = a_row[t * amp_ps] * SUF(wave)(shape, band_limited, p, dt, &dp, &ddt);
            }
            continue;
        }
        double acc = phase_in ? phase_in[b] : 0.0;
        for (int64_t t = 0; t < T; t++) {
            const REAL inc = OSC_FREQ(t) / sr;
            const REAL dt = FABS(inc) < (REAL)1e-7 ? (REAL)1e-7 : (FABS(inc) > (REAL)0.5 ? (REAL)0.5 : FABS(inc));
            REAL p = SUF(frac)((REAL)(acc - floor(acc)));  /* double frac may round up to 1 */
            acc += (double)inc;
            y[t] = a_row[t * amp_ps] * SUF(wave)(shape, band_limited, p, dt, &dp, &ddt);
        }
        if (phase_out) phase_out[b] = acc - floor(acc);
    }
}

/* Gradients of sum(grad * out) w.r.t. freq, amp, ctl, mod. Each g_* has its input's shape
   (per-row sums for per-row inputs); g_ctl/g_mod may be NULL when not needed. */
void SUF(osc_backward)(int64_t row0, int64_t row1, int64_t T,
                       const REAL *freq, int freq_ps, const REAL *amp, int amp_ps,
                       const REAL *ctl, const REAL *mod, int mod_ps,
                       const int32_t *shapes, int band_limited, double sample_rate, int64_t start,
                       const double *phase_in, const REAL *grad,
                       REAL *g_freq, REAL *g_amp, REAL *g_ctl, REAL *g_mod) {
    const REAL sr = (REAL)sample_rate;
    double *to_phase = 0, *direct = 0;  /* per-sample dL/dp and the dt path to dL/dinc */
    for (int64_t b = row0; b < row1; b++) {
        const REAL *f_row = freq + b * (freq_ps ? T : 1);
        const REAL *a_row = amp + b * (amp_ps ? T : 1);
        const REAL *c_row = ctl ? ctl + b * T : 0;
        const REAL *m_row = ctl ? mod + b * (mod_ps ? T : 1) : 0;
        const REAL *g = grad + b * T;
        const int shape = shapes[b];
        double amp_sum = 0;
        REAL dp, ddt;
        if (!ctl && !freq_ps) {
            const REAL inc = f_row[0] / sr;
            const REAL dt = FABS(inc) < (REAL)1e-7 ? (REAL)1e-7 : (FABS(inc) > (REAL)0.5 ? (REAL)0.5 : FABS(inc));
            const REAL dt_dinc = INSIDE(FABS(inc), 1e-7, 0.5) ? (inc > 0 ? (REAL)1 : (inc < 0 ? (REAL)-1 : (REAL)0)) : (REAL)0;
            double inc_sum = 0;
            for (int64_t t = 0; t < T; t++) {
                int64_t n = start + t;
                REAL p = SUF(const_phase)(inc, n);
                REAL a = a_row[t * amp_ps];
                REAL w = SUF(wave)(shape, band_limited, p, dt, &dp, &ddt);
                double ga = (double)g[t] * a;
                if (amp_ps) g_amp[b * T + t] = g[t] * w; else amp_sum += (double)g[t] * w;
                inc_sum += ga * ((double)dp * (double)n + (double)ddt * dt_dinc);
            }
            g_freq[b] = (REAL)(inc_sum / sr);
            if (!amp_ps) g_amp[b] = (REAL)amp_sum;
            continue;
        }
        if (!to_phase) {
            to_phase = (double *)malloc(sizeof(double) * 2 * (size_t)T);
            direct = to_phase + T;
        }
        double acc = phase_in ? phase_in[b] : 0.0;
        for (int64_t t = 0; t < T; t++) {
            const REAL inc = OSC_FREQ(t) / sr;
            const REAL dt = FABS(inc) < (REAL)1e-7 ? (REAL)1e-7 : (FABS(inc) > (REAL)0.5 ? (REAL)0.5 : FABS(inc));
            const REAL dt_dinc = INSIDE(FABS(inc), 1e-7, 0.5) ? (inc > 0 ? (REAL)1 : (inc < 0 ? (REAL)-1 : (REAL)0)) : (REAL)0;
            REAL p = SUF(frac)((REAL)(acc - floor(acc)));
            acc += (double)inc;
            REAL a = a_row[t * amp_ps];
            REAL w = SUF(wave)(shape, band_limited, p, dt, &dp, &ddt);
            double ga = (double)g[t] * a;
            if (amp_ps) g_amp[b * T + t] = g[t] * w; else amp_sum += (double)g[t] * w;
            to_phase[t] = ga * dp;
            direct[t] = ga * ddt * dt_dinc;
        }
        if (!amp_ps) g_amp[b] = (REAL)amp_sum;
        /* p[t] = sum of inc[s] for s < t: dL/dinc[s] collects dL/dp of every later sample. */
        double later = 0, freq_sum = 0, mod_sum = 0;
        for (int64_t t = T - 1; t >= 0; t--) {
            double d_freq = (later + direct[t]) / sr;  /* dL/d(frequency at t) */
            later += to_phase[t];
            if (!ctl) { g_freq[b * T + t] = (REAL)d_freq; continue; }
            double base = f_row[t * freq_ps], m = m_row[t * mod_ps], c = c_row[t];
            double swing = (double)EXP2((REAL)(m * c));
            double d_log = d_freq * base * swing * LN2_D;  /* dL/d(m*c) */
            if (freq_ps) g_freq[b * T + t] = (REAL)(d_freq * swing); else freq_sum += d_freq * swing;
            if (g_mod) { if (mod_ps) g_mod[b * T + t] = (REAL)(d_log * c); else mod_sum += d_log * c; }
            if (g_ctl) g_ctl[b * T + t] = (REAL)(d_log * m);
        }
        if (ctl && !freq_ps) g_freq[b] = (REAL)freq_sum;
        if (ctl && g_mod && !mod_ps) g_mod[b] = (REAL)mod_sum;
    }
    free(to_phase);
}
#undef OSC_FREQ
