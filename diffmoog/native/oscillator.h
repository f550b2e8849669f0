/* Oscillator: phase + waveform (PolyBLEP/BLAMP, additive for high notes), fused.

Mirrors diffmoog/modules/waveforms.py and additive.py operation for operation, so the
native and the torch paths agree to rounding. The backward recomputes the waveform and
its derivatives instead of saving them: one pass over the output gradient.
Shapes: SHAPE_SINE, SHAPE_SAW, SHAPE_SQUARE, SHAPE_TRIANGLE (ids 0..3, from SHAPE_IDS in
oscillator.py); ADDITIVE_MAX_HARMONICS and ADDITIVE_FADE come from additive.py (generated.h).
Paths: 0 naive, 1 PolyBLEP, 2 additive.
Loops are specialised per (shape, path) so each compiles to branch-free vector code.
*/

INLINE REAL SUF(frac)(REAL x) { return x - FLOOR(x); }

/* Phase of sample n at a constant increment: the product in double is exact to ~1e-12
   cycles for any render length; the second frac catches a double just below 1 rounding
   up to 1.0 in float. */
INLINE REAL SUF(const_phase)(REAL inc, double n) {
    double x = (double)inc * n;
    return SUF(frac)((REAL)(x - floor(x)));
}

INLINE REAL SUF(step_width)(REAL inc) {  /* BLEP width in cycles, as render_waveform */
    REAL a = FABS(inc);
    return a < (REAL)1e-7 ? (REAL)1e-7 : (a > (REAL)0.5 ? (REAL)0.5 : a);
}

INLINE REAL SUF(step_width_slope)(REAL inc) {  /* d step_width / d inc */
    REAL a = FABS(inc);
    return (a >= (REAL)1e-7 && a <= (REAL)0.5) ? (inc > 0 ? (REAL)1 : (inc < 0 ? (REAL)-1 : (REAL)0)) : (REAL)0;
}

/* PolyBLEP residual for a downward step of 2 at phase 0, with d/dp and d/ddt. */
INLINE REAL SUF(blep)(REAL p, REAL dt, REAL *d_p, REAL *d_dt) {
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
INLINE REAL SUF(blamp)(REAL p, REAL dt, REAL *d_p, REAL *d_dt) {
    REAL a = (REAL)1 - p / dt, bb = (REAL)1 + (p - (REAL)1) / dt;
    int after = p < dt, before = !after && p > (REAL)1 - dt;
    *d_p = after ? -a * a / ((REAL)2 * dt) : (before ? bb * bb / ((REAL)2 * dt) : (REAL)0);
    *d_dt = after ? a * a * p / ((REAL)2 * dt * dt)
                  : (before ? -bb * bb * (p - (REAL)1) / ((REAL)2 * dt * dt) : (REAL)0);
    return after ? a * a * a / (REAL)6 : (before ? bb * bb * bb / (REAL)6 : (REAL)0);
}

/* Fourier series with at most ADDITIVE_MAX_HARMONICS harmonics, each fading out just below
   Nyquist (additive.py). */
INLINE REAL SUF(additive)(int shape, REAL p, REAL dt, REAL *d_p, REAL *d_dt) {
    const int step = shape == SHAPE_SAW ? 1 : 2;
    const int use_cos = shape == SHAPE_TRIANGLE;
    REAL theta = (REAL)TWO_PI_D * p;
    REAL c1 = COS(theta), s1 = SIN(theta), two_cos = (REAL)2 * c1;
    REAL s_prev = 0, s_cur = s1, c_prev = 1, c_cur = c1;
    REAL out = 0, dp = 0, ddt = 0;
    DIFFMOOG_PRAGMA_EXPANDED(GCC unroll ADDITIVE_MAX_HARMONICS)  /* unrolled, every amplitude below is a constant */
    for (int k = 1; k <= ADDITIVE_MAX_HARMONICS; k++) {
        if ((k - 1) % step == 0) {
            double kk = (double)k;
            REAL amp = shape == SHAPE_SAW ? (REAL)(-2.0 / (M_PI * kk))
                     : shape == SHAPE_SQUARE ? (REAL)(4.0 / (M_PI * kk))
                     : (REAL)(-8.0 / ((M_PI * kk) * (M_PI * kk)));
            REAL u = ((REAL)0.5 - (REAL)k * dt) / (REAL)ADDITIVE_FADE;
            REAL gain = u < 0 ? (REAL)0 : (u > 1 ? (REAL)1 : u);
            REAL value = use_cos ? c_cur : s_cur;
            REAL deriv = use_cos ? -(REAL)k * s_cur : (REAL)k * c_cur;  /* d/dtheta */
            out += amp * gain * value;
            dp += amp * gain * deriv;
            ddt += INSIDE(u, 0, 1) ? amp * value * (-(REAL)k / (REAL)ADDITIVE_FADE) : (REAL)0;
        }
        REAL s_next = two_cos * s_cur - s_prev, c_next = two_cos * c_cur - c_prev;
        s_prev = s_cur; s_cur = s_next; c_prev = c_cur; c_cur = c_next;
    }
    *d_p = dp * (REAL)TWO_PI_D;
    *d_dt = ddt;
    return out;
}

/* One waveform sample w(p, dt) with dw/dp and dw/ddt; shape and path are constants at
   every call site, so the branches fold away. */
INLINE REAL SUF(wave)(int shape, int path, REAL p, REAL dt, REAL *d_p, REAL *d_dt) {
    REAL bp, bdt, bp2, bdt2;
    *d_dt = 0;
    if (shape == SHAPE_SINE) {
        REAL x = (REAL)TWO_PI_D * p;
        *d_p = (REAL)TWO_PI_D * COS(x);
        return SIN(x);
    }
    if (path == 2) return SUF(additive)(shape, p, dt, d_p, d_dt);
    if (shape == SHAPE_SAW) {
        REAL naive = (REAL)2 * p - (REAL)1;
        if (path == 0) { *d_p = 2; return naive; }
        REAL r = SUF(blep)(p, dt, &bp, &bdt);
        *d_p = (REAL)2 - bp; *d_dt = -bdt;
        return naive - r;
    }
    if (shape == SHAPE_SQUARE) {
        REAL naive = (REAL)1 - (REAL)2 * FLOOR((REAL)2 * p);
        *d_p = 0;
        if (path == 0) return naive;
        REAL r1 = SUF(blep)(p, dt, &bp, &bdt);
        REAL r2 = SUF(blep)(SUF(frac)(p + (REAL)0.5), dt, &bp2, &bdt2);
        *d_p = bp - bp2; *d_dt = bdt - bdt2;
        return naive + r1 - r2;
    }
    REAL centred = p - (REAL)0.5;
    REAL naive = (REAL)1 - (REAL)4 * FABS(centred);
    REAL slope = centred > 0 ? (REAL)-4 : (centred < 0 ? (REAL)4 : (REAL)0);
    if (path == 0) { *d_p = slope; return naive; }
    REAL r1 = SUF(blamp)(p, dt, &bp, &bdt);
    REAL r2 = SUF(blamp)(SUF(frac)(p + (REAL)0.5), dt, &bp2, &bdt2);
    *d_p = slope + (REAL)8 * dt * (bp - bp2);
    *d_dt = (REAL)8 * (r1 - r2) + (REAL)8 * dt * (bdt - bdt2);
    return naive + (REAL)8 * dt * (r1 - r2);
}

/* w(p, dt) where the additive/PolyBLEP choice is made per sample (path 3: a pitch sweep
   crossing the threshold inside a block). Both are computed; the select vectorises. */
INLINE REAL SUF(wave_any)(int shape, int path, REAL p, REAL dt, REAL *d_p, REAL *d_dt) {
    if (path != 3) return SUF(wave)(shape, path, p, dt, d_p, d_dt);
    REAL ap, adt, bp, bdt;
    REAL a = SUF(wave)(shape, 2, p, dt, &ap, &adt), b = SUF(wave)(shape, 1, p, dt, &bp, &bdt);
    int high = dt * (REAL)(ADDITIVE_MAX_HARMONICS + 1) >= (REAL)0.5;
    *d_p = high ? ap : bp; *d_dt = high ? adt : bdt;
    return high ? a : b;
}

/* Run BODY(shape, path) with both as compile-time constants (a sine has one path). */
#define OSC_DISPATCH(BODY) \
    switch (shape * 4 + path) { \
    case SHAPE_SINE * 4: case SHAPE_SINE * 4 + 1: case SHAPE_SINE * 4 + 2: case SHAPE_SINE * 4 + 3: \
        BODY(SHAPE_SINE, 0); break; \
    case SHAPE_SAW * 4: BODY(SHAPE_SAW, 0); break; case SHAPE_SAW * 4 + 1: BODY(SHAPE_SAW, 1); break; \
    case SHAPE_SAW * 4 + 2: BODY(SHAPE_SAW, 2); break; case SHAPE_SAW * 4 + 3: BODY(SHAPE_SAW, 3); break; \
    case SHAPE_SQUARE * 4: BODY(SHAPE_SQUARE, 0); break; case SHAPE_SQUARE * 4 + 1: BODY(SHAPE_SQUARE, 1); break; \
    case SHAPE_SQUARE * 4 + 2: BODY(SHAPE_SQUARE, 2); break; case SHAPE_SQUARE * 4 + 3: BODY(SHAPE_SQUARE, 3); break; \
    case SHAPE_TRIANGLE * 4: BODY(SHAPE_TRIANGLE, 0); break; case SHAPE_TRIANGLE * 4 + 1: BODY(SHAPE_TRIANGLE, 1); break; \
    case SHAPE_TRIANGLE * 4 + 2: BODY(SHAPE_TRIANGLE, 2); break; default: BODY(SHAPE_TRIANGLE, 3); break; \
    }

#define OSC_ROW_SETUP \
    const REAL *f_row = freq + b * (freq_ps ? T : 1); \
    const REAL *a_row = amp + b * (amp_ps ? T : 1); \
    const REAL *c_row = ctl ? ctl + b * T : 0; \
    const REAL *m_row = ctl ? mod + b * (mod_ps ? T : 1) : 0; \
    const int shape = shapes[b]; \
    const int const_pitch = !ctl && !freq_ps; \
    const REAL inc0 = f_row[0] / sr, dt0 = SUF(step_width)(inc0); \
    const REAL *o_row = pm ? pm + b * T : 0; \
    double acc = phase_in ? phase_in[b] : 0.0;

/* Fill p[0..n), dt[0..n), inc[0..n) for samples t0.. of a row; returns the block's path. */
#define OSC_FILL_BLOCK \
    if (const_pitch) { \
        const double first = (double)(start + t0); \
        for (int i = 0; i < n; i++) { p[i] = SUF(const_phase)(inc0, first + (double)i); dt[i] = dt0; inc[i] = inc0; } \
    } else { \
        if (ctl) for (int i = 0; i < n; i++) \
            inc[i] = EXP_MOD(f_row[(t0 + i) * freq_ps], m_row[(t0 + i) * mod_ps], c_row[t0 + i]) / sr; \
        else for (int i = 0; i < n; i++) inc[i] = f_row[t0 + i] / sr; \
        for (int i = 0; i < n; i++) { p[i] = SUF(frac)((REAL)(acc - floor(acc))); acc += (double)inc[i]; } \
        for (int i = 0; i < n; i++) dt[i] = SUF(step_width)(inc[i]); \
    } \
    if (pm) {  /* phase modulation: offset the phase; the offset's step widens the BLEP */ \
        for (int i = 0; i < n; i++) { \
            const int64_t t = t0 + i; \
            const REAL before = t > 0 ? o_row[t - 1] : (pm_before ? pm_before[b] : o_row[0]); \
            p[i] = SUF(frac)(p[i] + o_row[t]); \
            inc[i] = inc[i] + (o_row[t] - before); \
            dt[i] = SUF(step_width)(inc[i]); \
        } \
    } \
    int path = 0; \
    if (band_limited && shape != SHAPE_SINE) { \
        int high = 0; \
        for (int i = 0; i < n; i++) high += dt[i] * (REAL)(ADDITIVE_MAX_HARMONICS + 1) >= (REAL)0.5; \
        path = high == n ? 2 : (high == 0 ? 1 : 3); \
    }

void SUF(osc_forward)(OSC_FORWARD_ARGS) {
    FTZ_BEGIN
    const REAL sr = (REAL)sample_rate;
    REAL p[BLK], dt[BLK], inc[BLK];
    for (int64_t b = row0; b < row1; b++) {
        OSC_ROW_SETUP
        REAL *y = out + b * T;
        for (int64_t t0 = 0; t0 < T; t0 += BLK) {
            const int n = (int)(T - t0 < BLK ? T - t0 : BLK);
            OSC_FILL_BLOCK
            REAL *yb = y + t0;
#define OSC_FWD(S, P) \
            if (amp_ps) { const REAL *ab = a_row + t0; \
                for (int i = 0; i < n; i++) { REAL dp_, ddt_; yb[i] = ab[i] * SUF(wave_any)(S, P, p[i], dt[i], &dp_, &ddt_); } \
            } else { const REAL a0 = a_row[0]; \
                for (int i = 0; i < n; i++) { REAL dp_, ddt_; yb[i] = a0 * SUF(wave_any)(S, P, p[i], dt[i], &dp_, &ddt_); } }
            OSC_DISPATCH(OSC_FWD)
#undef OSC_FWD
        }
        if (phase_out) phase_out[b] = acc - floor(acc);
    }
    FTZ_END
}

/* Sum of v[0..n) in double, with eight partial sums (vectorises without reassociation). */
INLINE double SUF(block_sum)(const REAL *v, int n) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += (double)v[i + j];
    for (; i < n; i++) acc[0] += (double)v[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* Gradients of sum(grad * out) w.r.t. freq, amp, ctl, mod. Each g_* has its input's shape
   (per-row sums for per-row inputs); g_ctl/g_mod may be NULL when not needed.
   Per-sample terms are float work in vector loops; sums over time accumulate in double. */
void SUF(osc_backward)(OSC_BACKWARD_ARGS) {
    FTZ_BEGIN
    const REAL sr = (REAL)sample_rate;
    REAL p[BLK], dt[BLK], inc[BLK], ga[BLK], amp_part[BLK], inc_part[BLK], ramp[BLK];
    /* Time-varying pitch: dL/dp and the step-width path to dL/dinc, for the whole row. */
    REAL *to_phase = 0, *direct = 0;
    if (ctl || freq_ps || pm) {
        to_phase = (REAL *)malloc(sizeof(REAL) * 2 * (size_t)T);
        direct = to_phase + T;
    }
    for (int i = 0; i < BLK; i++) ramp[i] = (REAL)i;
    for (int64_t b = row0; b < row1; b++) {
        OSC_ROW_SETUP
        const REAL *g = grad + b * T;
        double amp_sum = 0, inc_sum = 0;
        for (int64_t t0 = 0; t0 < T; t0 += BLK) {
            const int n = (int)(T - t0 < BLK ? T - t0 : BLK);
            OSC_FILL_BLOCK
            const REAL *gb = g + t0;
            if (amp_ps) for (int i = 0; i < n; i++) ga[i] = gb[i] * a_row[t0 + i];
            else for (int i = 0; i < n; i++) ga[i] = gb[i] * a_row[0];
            if (const_pitch && !pm) {
                /* dp/dinc = n (absolute sample index): split as first + i, both exact in float
                   only up to 2^24, so the first-sample part is summed separately in double. */
                REAL *dp_sum = inc_part, *to_local = inc;  /* scratch; inc[] is just inc0 here */
                const REAL slope = SUF(step_width_slope)(inc0);
#define OSC_BWD_CONST(S, P) \
                for (int i = 0; i < n; i++) { \
                    REAL dp_, ddt_; \
                    REAL w = SUF(wave_any)(S, P, p[i], dt[i], &dp_, &ddt_); \
                    amp_part[i] = gb[i] * w; \
                    dp_sum[i] = ga[i] * dp_; \
                    to_local[i] = ga[i] * (dp_ * ramp[i] + ddt_ * slope); \
                }
                OSC_DISPATCH(OSC_BWD_CONST)
#undef OSC_BWD_CONST
                inc_sum += (double)(start + t0) * SUF(block_sum)(dp_sum, n) + SUF(block_sum)(to_local, n);
            } else {
#define OSC_BWD_VAR(S, P) \
                for (int i = 0; i < n; i++) { \
                    REAL dp_, ddt_; \
                    REAL w = SUF(wave_any)(S, P, p[i], dt[i], &dp_, &ddt_); \
                    amp_part[i] = gb[i] * w; \
                    to_phase[t0 + i] = ga[i] * dp_; \
                    direct[t0 + i] = ga[i] * ddt_ * SUF(step_width_slope)(inc[i]); \
                }  /* (with pm, inc[] is the effective increment, carrier + offset step) */
                OSC_DISPATCH(OSC_BWD_VAR)
#undef OSC_BWD_VAR
            }
            if (amp_ps) for (int i = 0; i < n; i++) g_amp[b * T + t0 + i] = amp_part[i];
            else amp_sum += SUF(block_sum)(amp_part, n);
        }
        if (!amp_ps) g_amp[b] = (REAL)amp_sum;
        if (pm) {
            /* offset[t] moves p[t], and the steps at t (+1) and t+1 (-1); the first sample's
               step is 0 unless it follows a streamed block (pm_before). */
            REAL *g_o = g_pm + b * T;
            for (int64_t t = 0; t < T; t++) {
                const REAL into = (t > 0 || pm_before) ? direct[t] : (REAL)0;
                const REAL out_of = t + 1 < T ? direct[t + 1] : (REAL)0;
                g_o[t] = to_phase[t] + into - out_of;
            }
            if (const_pitch) {  /* the carrier's phase is inc * n: dp/dinc = n */
                double sum = 0;
                for (int64_t t = 0; t < T; t++) sum += (double)to_phase[t] * (double)(start + t) + (double)direct[t];
                g_freq[b] = (REAL)(sum / sr);
                continue;
            }
        }
        if (const_pitch) { g_freq[b] = (REAL)(inc_sum / sr); continue; }
        /* p[t] = sum of inc[s] for s < t: dL/dinc[s] collects dL/dp of every later sample. */
        double later = 0;
        for (int64_t t = T - 1; t >= 0; t--) {
            double own = direct[t];
            direct[t] = (REAL)((later + own) / sr);  /* now dL/d(frequency at t) */
            later += (double)to_phase[t];
        }
        if (!ctl) {
            for (int64_t t = 0; t < T; t++) g_freq[b * T + t] = direct[t];
            continue;
        }
        double freq_sum = 0, mod_sum = 0;
        for (int64_t t0 = 0; t0 < T; t0 += BLK) {
            const int n = (int)(T - t0 < BLK ? T - t0 : BLK);
            const REAL *c_blk = c_row + t0, *d_blk = direct + t0;
            for (int i = 0; i < n; i++) {
                const REAL base = f_row[(t0 + i) * freq_ps], m = m_row[(t0 + i) * mod_ps], c = c_blk[i];
                const REAL swing = EXP2(m * c);
                const REAL d_log = d_blk[i] * base * swing * (REAL)LN2_D;  /* dL/d(m*c) */
                amp_part[i] = d_blk[i] * swing;  /* scratch: dL/dbase */
                inc_part[i] = d_log * c;         /* scratch: dL/dmod */
                ga[i] = d_log * m;               /* scratch: dL/dctl */
            }
            if (g_ctl) for (int i = 0; i < n; i++) g_ctl[b * T + t0 + i] = ga[i];
            if (freq_ps) for (int i = 0; i < n; i++) g_freq[b * T + t0 + i] = amp_part[i];
            else freq_sum += SUF(block_sum)(amp_part, n);
            if (g_mod && mod_ps) for (int i = 0; i < n; i++) g_mod[b * T + t0 + i] = inc_part[i];
            else mod_sum += SUF(block_sum)(inc_part, n);
        }
        if (!freq_ps) g_freq[b] = (REAL)freq_sum;
        if (g_mod && !mod_ps) g_mod[b] = (REAL)mod_sum;
    }
    free(to_phase);
    FTZ_END
}
#undef OSC_DISPATCH
#undef OSC_ROW_SETUP
#undef OSC_FILL_BLOCK
