/* RBJ biquad (diffmoog/modules/filter.py): coefficients, feed-forward and recursion fused.

y[t] = b0 x[t] + b1 x[t-1] + b2 x[t-2] - a1 y[t-1] - a2 y[t-2], coefficients from the
cutoff (optionally base * 2^(mod * ctl[t]), a filter envelope), Q and three type weights
(low/high/band-pass numerators, see biquad_coefficients). Per-sample coefficients are
computed a block at a time in a loop the compiler vectorises, then the recursion runs.
The backward is the adjoint recursion run backwards in time, with the coefficient
gradients chained to cutoff, Q and the type weights in the same pass.
*/
#define BQ_BLOCK 256

/* Coefficients (b0, b1, b2, a1, a2) for one cutoff (already clamped) and Q. */
static inline void SUF(rbj)(REAL fc, REAL q, const REAL *w, REAL sr, REAL *c) {
    REAL w0 = (REAL)TWO_PI_D * fc / sr;
    REAL cs = COS(w0), sn = SIN(w0);
    REAL alpha = sn / ((REAL)2 * q);
    REAL ia0 = (REAL)1 / ((REAL)1 + alpha);
    REAL lp = ((REAL)1 - cs) * (REAL)0.5, hp = ((REAL)1 + cs) * (REAL)0.5;
    c[0] = (w[0] * lp + w[1] * hp + w[2] * alpha) * ia0;
    c[1] = (w[0] * (REAL)2 * lp - w[1] * (REAL)2 * hp) * ia0;
    c[2] = (w[0] * lp + w[1] * hp - w[2] * alpha) * ia0;
    c[3] = (REAL)-2 * cs * ia0;
    c[4] = ((REAL)1 - alpha) * ia0;
}

/* Chain coefficient gradients G (b0, b1, b2, a1, a2) to the clamped cutoff, Q and weights. */
static inline void SUF(rbj_backward)(REAL fc, REAL q, const REAL *w, REAL sr, const double *G,
                                     double *d_fc, double *d_q, double *d_w) {
    double w0 = (double)((REAL)TWO_PI_D * fc / sr);
    double cs = cos(w0), sn = sin(w0);
    double alpha = sn / (2.0 * q), ia0 = 1.0 / (1.0 + alpha);
    double lp = (1.0 - cs) * 0.5, hp = (1.0 + cs) * 0.5;
    double n0 = w[0] * lp + w[1] * hp + w[2] * alpha, n1 = 2.0 * (w[0] * lp - w[1] * hp);
    double n2 = w[0] * lp + w[1] * hp - w[2] * alpha;
    double d_ia0 = G[0] * n0 + G[1] * n1 + G[2] * n2 - 2.0 * cs * G[3] + (1.0 - alpha) * G[4];
    double d_cs = ia0 * (0.5 * (G[0] + G[2]) * (w[1] - w[0]) - G[1] * (w[0] + w[1])) - 2.0 * ia0 * G[3];
    double d_alpha = ia0 * w[2] * (G[0] - G[2]) - ia0 * G[4] - d_ia0 * ia0 * ia0;
    double d_sn = d_alpha / (2.0 * q);
    *d_q = -d_alpha * sn / (2.0 * q * q);
    *d_fc = (-sn * d_cs + cs * d_sn) * TWO_PI_D / sr;
    if (d_w) {
        d_w[0] = ia0 * (G[0] * lp + G[1] * 2.0 * lp + G[2] * lp);
        d_w[1] = ia0 * (G[0] * hp - G[1] * 2.0 * hp + G[2] * hp);
        d_w[2] = ia0 * alpha * (G[0] - G[2]);
    }
}

/* Cutoff of sample t before the clamp, and after it (poles inside the unit circle). */
#define BQ_CUTOFF(t) (ctl ? f_row[(t) * cutoff_ps] * EXP2(m_row[(t) * mod_ps] * c_row[t]) : f_row[(t) * cutoff_ps])
#define BQ_CLAMP(f) ((f) < (REAL)10 ? (REAL)10 : ((f) > hi ? hi : (f)))

#define BQ_ROWS \
    const REAL *f_row = cutoff + b * (cutoff_ps ? T : 1); \
    const REAL *c_row = ctl ? ctl + b * T : 0; \
    const REAL *m_row = ctl ? mod + b * (mod_ps ? T : 1) : 0; \
    const REAL *q_row = q + b * (q_ps ? T : 1); \
    const REAL *w = types + 3 * b; \
    const REAL *xr = x + b * T; \
    const int varying = ctl || cutoff_ps || q_ps;

void SUF(biquad_forward)(int64_t row0, int64_t row1, int64_t T, const REAL *x,
                         const REAL *cutoff, int cutoff_ps, const REAL *ctl, const REAL *mod, int mod_ps,
                         const REAL *q, int q_ps, const REAL *types, double sample_rate,
                         REAL *state, REAL *out) {
    const REAL sr = (REAL)sample_rate, hi = (REAL)(0.45 * sample_rate);
    REAL coef[5][BQ_BLOCK];
    for (int64_t b = row0; b < row1; b++) {
        BQ_ROWS
        REAL *y = out + b * T;
        REAL x1 = 0, x2 = 0, y1 = 0, y2 = 0, c[5];
        if (state) { x1 = state[4 * b]; x2 = state[4 * b + 1]; y1 = state[4 * b + 2]; y2 = state[4 * b + 3]; }
        if (!varying) {
            REAL f = BQ_CUTOFF(0);
            SUF(rbj)(BQ_CLAMP(f), q_row[0], w, sr, c);
            for (int64_t t = 0; t < T; t++) {
                REAL v = c[0] * xr[t] + c[1] * x1 + c[2] * x2 - c[3] * y1 - c[4] * y2;
                x2 = x1; x1 = xr[t]; y2 = y1; y1 = v; y[t] = v;
            }
        } else {
            for (int64_t t0 = 0; t0 < T; t0 += BQ_BLOCK) {
                int n = (int)(T - t0 < BQ_BLOCK ? T - t0 : BQ_BLOCK);
                for (int i = 0; i < n; i++) {
                    REAL f = BQ_CUTOFF(t0 + i), cc[5];
                    SUF(rbj)(BQ_CLAMP(f), q_row[(t0 + i) * q_ps], w, sr, cc);
                    for (int j = 0; j < 5; j++) coef[j][i] = cc[j];
                }
                for (int i = 0; i < n; i++) {
                    REAL xt = xr[t0 + i];
                    REAL v = coef[0][i] * xt + coef[1][i] * x1 + coef[2][i] * x2 - coef[3][i] * y1 - coef[4][i] * y2;
                    x2 = x1; x1 = xt; y2 = y1; y1 = v; y[t0 + i] = v;
                }
            }
        }
        if (state) { state[4 * b] = x1; state[4 * b + 1] = x2; state[4 * b + 2] = y1; state[4 * b + 3] = y2; }
    }
}

/* Gradients of sum(grad * y). state_in: the (x1, x2, y1, y2) the forward started from
   (NULL: zeros); no gradient flows into it. g_ctl, g_mod, g_types may be NULL. */
void SUF(biquad_backward)(int64_t row0, int64_t row1, int64_t T, const REAL *x,
                          const REAL *cutoff, int cutoff_ps, const REAL *ctl, const REAL *mod, int mod_ps,
                          const REAL *q, int q_ps, const REAL *types, double sample_rate,
                          const REAL *state_in, const REAL *yout, const REAL *grad,
                          REAL *g_x, REAL *g_cutoff, REAL *g_ctl, REAL *g_mod, REAL *g_q, REAL *g_types) {
    const REAL sr = (REAL)sample_rate, hi = (REAL)(0.45 * sample_rate);
    REAL coef[5][BQ_BLOCK + 2];
    double lam[BQ_BLOCK];
    for (int64_t b = row0; b < row1; b++) {
        BQ_ROWS
        const REAL *yr = yout + b * T, *g = grad + b * T;
        REAL *gx = g_x + b * T;
        REAL hist[4] = {0, 0, 0, 0};  /* x[-1], x[-2], y[-1], y[-2] */
        if (state_in) for (int j = 0; j < 4; j++) hist[j] = state_in[4 * b + j];
#define BQ_X(t) ((t) >= 0 ? (double)xr[t] : (double)hist[-(t) - 1])
#define BQ_Y(t) ((t) >= 0 ? (double)yr[t] : (double)hist[2 - (t) - 1])
        double l1 = 0, l2 = 0;  /* lambda[t+1], lambda[t+2] */
        double sums[8] = {0, 0, 0, 0, 0, 0, 0, 0};  /* d cutoff, d mod, d q, d types[3] */
        if (!varying) {
            REAL c[5], f = BQ_CUTOFF(0), fc = BQ_CLAMP(f);
            SUF(rbj)(fc, q_row[0], w, sr, c);
            double G[5] = {0, 0, 0, 0, 0};
            for (int64_t t = T - 1; t >= 0; t--) {
                double l = (double)g[t] - c[3] * l1 - c[4] * l2;
                gx[t] = (REAL)(c[0] * l + c[1] * l1 + c[2] * l2);
                G[0] += l * xr[t]; G[1] += l * BQ_X(t - 1); G[2] += l * BQ_X(t - 2);
                G[3] -= l * BQ_Y(t - 1); G[4] -= l * BQ_Y(t - 2);
                l2 = l1; l1 = l;
            }
            double d_fc, d_q, d_w[3];
            SUF(rbj_backward)(fc, q_row[0], w, sr, G, &d_fc, &d_q, g_types ? d_w : 0);
            if (f < (REAL)10 || f > hi) d_fc = 0;
            g_cutoff[b] = (REAL)d_fc;
            g_q[b] = (REAL)d_q;
            if (g_types) for (int j = 0; j < 3; j++) g_types[3 * b + j] = (REAL)d_w[j];
            continue;
        }
        double c1_next = 0, c2_next = 0, a1_next = 0, a2_next = 0, a2_next2 = 0, b2_next2 = 0;
        int64_t last = ((T - 1) / BQ_BLOCK) * BQ_BLOCK;
        for (int64_t t0 = last; t0 >= 0; t0 -= BQ_BLOCK) {
            int n = (int)(T - t0 < BQ_BLOCK ? T - t0 : BQ_BLOCK);
            for (int i = 0; i < n; i++) {
                REAL f = BQ_CUTOFF(t0 + i), cc[5];
                SUF(rbj)(BQ_CLAMP(f), q_row[(t0 + i) * q_ps], w, sr, cc);
                for (int j = 0; j < 5; j++) coef[j][i] = cc[j];
            }
            /* The recursion needs b1, a1 at t+1 and b2, a2 at t+2, reaching into the next block. */
            for (int i = n - 1; i >= 0; i--) {
                double b1n = i + 1 < n ? coef[1][i + 1] : c1_next, a1n = i + 1 < n ? coef[3][i + 1] : a1_next;
                double b2n = i + 2 < n ? coef[2][i + 2] : (i + 2 == n ? c2_next : b2_next2);
                double a2n = i + 2 < n ? coef[4][i + 2] : (i + 2 == n ? a2_next : a2_next2);
                double l = (double)g[t0 + i] - a1n * l1 - a2n * l2;
                gx[t0 + i] = (REAL)(coef[0][i] * l + b1n * l1 + b2n * l2);
                lam[i] = l;
                l2 = l1; l1 = l;
            }
            b2_next2 = n > 1 ? coef[2][1] : c2_next;
            a2_next2 = n > 1 ? coef[4][1] : a2_next;
            c1_next = coef[1][0]; c2_next = coef[2][0]; a1_next = coef[3][0]; a2_next = coef[4][0];
            for (int i = 0; i < n; i++) {
                int64_t t = t0 + i;
                double l = lam[i];
                double G[5] = {l * xr[t], l * BQ_X(t - 1), l * BQ_X(t - 2), -l * BQ_Y(t - 1), -l * BQ_Y(t - 2)};
                REAL f = BQ_CUTOFF(t);
                double d_fc, d_q, d_w[3];
                SUF(rbj_backward)(BQ_CLAMP(f), q_row[t * q_ps], w, sr, G, &d_fc, &d_q, g_types ? d_w : 0);
                if (f < (REAL)10 || f > hi) d_fc = 0;
                if (g_types) for (int j = 0; j < 3; j++) sums[3 + j] += d_w[j];
                if (q_ps) g_q[b * T + t] = (REAL)d_q; else sums[6] += d_q;
                if (!ctl) {
                    if (cutoff_ps) g_cutoff[b * T + t] = (REAL)d_fc; else sums[0] += d_fc;
                    continue;
                }
                double base = f_row[t * cutoff_ps], m = m_row[t * mod_ps], c = c_row[t];
                double d_log = d_fc * (double)f * LN2_D, swing = (double)f / base;
                if (cutoff_ps) g_cutoff[b * T + t] = (REAL)(d_fc * swing); else sums[0] += d_fc * swing;
                if (g_mod) { if (mod_ps) g_mod[b * T + t] = (REAL)(d_log * c); else sums[1] += d_log * c; }
                if (g_ctl) g_ctl[b * T + t] = (REAL)(d_log * m);
            }
        }
        if (!cutoff_ps) g_cutoff[b] = (REAL)sums[0];
        if (ctl && g_mod && !mod_ps) g_mod[b] = (REAL)sums[1];
        if (!q_ps) g_q[b] = (REAL)sums[6];
        if (g_types) for (int j = 0; j < 3; j++) g_types[3 * b + j] = (REAL)sums[3 + j];
#undef BQ_X
#undef BQ_Y
    }
}
#undef BQ_CUTOFF
#undef BQ_CLAMP
#undef BQ_ROWS
