/* RBJ biquad (diffmoog/modules/filter.py): coefficients, feed-forward and recursion fused.

y[t] = b0 x[t] + b1 x[t-1] + b2 x[t-2] - a1 y[t-1] - a2 y[t-2], coefficients from the
cutoff (optionally base * 2^(mod * ctl[t]), a filter envelope), Q and three type weights
(low/high/band-pass numerators, as biquad_coefficients). The recursion is latency-bound,
so constant-coefficient rows run four at a time (independent chains overlap); per-sample
coefficients are computed a block at a time in vectorised loops. The backward is the
adjoint recursion run backwards in time, with the coefficient gradients chained to
cutoff, Q and the type weights in the same pass.
*/
#define BQ_LANES 4

typedef struct {  /* per-sample coefficient maths for one block (+2 samples of look-ahead) */
    REAL raw[BLK + 2], fc[BLK + 2], q[BLK + 2], cs[BLK + 2], sn[BLK + 2], alpha[BLK + 2], ia0[BLK + 2];
    REAL b0[BLK + 2], b1[BLK + 2], b2[BLK + 2], a1[BLK + 2], a2[BLK + 2];
} SUF(bq_block);

#define BQ_ARGS \
    int64_t row0, int64_t row1, int64_t T, const REAL *x, const REAL *cutoff, int cutoff_ps, \
    const REAL *ctl, const REAL *mod, int mod_ps, const REAL *q, int q_ps, const REAL *types, double sample_rate

/* Coefficients of samples [t0, t0+n) of row b into k. */
static inline void SUF(bq_fill)(SUF(bq_block) *k, int64_t b, int64_t t0, int n, int64_t T, const REAL *cutoff,
                                int cutoff_ps, const REAL *ctl, const REAL *mod, int mod_ps, const REAL *q,
                                int q_ps, const REAL *w, REAL sr, REAL hi) {
    const REAL *f_row = cutoff + b * (cutoff_ps ? T : 1), *q_row = q + b * (q_ps ? T : 1);
    if (cutoff_ps) for (int i = 0; i < n; i++) k->raw[i] = f_row[t0 + i];
    else for (int i = 0; i < n; i++) k->raw[i] = f_row[0];
    if (q_ps) for (int i = 0; i < n; i++) k->q[i] = q_row[t0 + i];
    else for (int i = 0; i < n; i++) k->q[i] = q_row[0];
    if (ctl) {
        const REAL *c_row = ctl + b * T + t0, *m_row = mod + b * (mod_ps ? T : 1);
        if (mod_ps) for (int i = 0; i < n; i++) k->raw[i] = k->raw[i] * EXP2(m_row[t0 + i] * c_row[i]);
        else for (int i = 0; i < n; i++) k->raw[i] = k->raw[i] * EXP2(m_row[0] * c_row[i]);
    }
    const REAL w_lp = w[0], w_hp = w[1], w_bp = w[2];
    for (int i = 0; i < n; i++) {
        REAL f = k->raw[i];
        f = f < (REAL)10 ? (REAL)10 : (f > hi ? hi : f);
        REAL w0 = (REAL)TWO_PI_D * f / sr;
        REAL cs = COS(w0), sn = SIN(w0);
        REAL alpha = sn / ((REAL)2 * k->q[i]);
        REAL ia0 = (REAL)1 / ((REAL)1 + alpha);
        REAL lp = ((REAL)1 - cs) * (REAL)0.5, hp = ((REAL)1 + cs) * (REAL)0.5;
        k->fc[i] = f; k->cs[i] = cs; k->sn[i] = sn; k->alpha[i] = alpha; k->ia0[i] = ia0;
        k->b0[i] = (w_lp * lp + w_hp * hp + w_bp * alpha) * ia0;
        k->b1[i] = (w_lp * (REAL)2 * lp - w_hp * (REAL)2 * hp) * ia0;
        k->b2[i] = (w_lp * lp + w_hp * hp - w_bp * alpha) * ia0;
        k->a1[i] = (REAL)-2 * cs * ia0;
        k->a2[i] = ((REAL)1 - alpha) * ia0;
    }
}

void SUF(biquad_forward)(BQ_ARGS, REAL *state, REAL *out) {
    FTZ_BEGIN
    const REAL sr = (REAL)sample_rate, hi = (REAL)(0.45 * sample_rate);
    const int varying = ctl || cutoff_ps || q_ps;
    SUF(bq_block) k;
    for (int64_t b0 = row0; b0 < row1; b0 += varying ? 1 : BQ_LANES) {
        const int lanes = varying ? 1 : (int)(row1 - b0 < BQ_LANES ? row1 - b0 : BQ_LANES);
        REAL c[5][BQ_LANES], x1[BQ_LANES], x2[BQ_LANES], y1[BQ_LANES], y2[BQ_LANES];
        for (int j = 0; j < BQ_LANES; j++) {
            int64_t b = b0 + (j < lanes ? j : 0);  /* idle lanes repeat row b0 (not stored) */
            x1[j] = state ? state[4 * b] : 0; x2[j] = state ? state[4 * b + 1] : 0;
            y1[j] = state ? state[4 * b + 2] : 0; y2[j] = state ? state[4 * b + 3] : 0;
            if (!varying) {
                SUF(bq_fill)(&k, b, 0, 1, T, cutoff, cutoff_ps, ctl, mod, mod_ps, q, q_ps, types + 3 * b, sr, hi);
                c[0][j] = k.b0[0]; c[1][j] = k.b1[0]; c[2][j] = k.b2[0]; c[3][j] = k.a1[0]; c[4][j] = k.a2[0];
            }
        }
        if (!varying) {
            const REAL *xs[BQ_LANES];
            REAL *ys[BQ_LANES];
            for (int j = 0; j < BQ_LANES; j++) {
                int64_t b = b0 + (j < lanes ? j : 0);
                xs[j] = x + b * T;
                ys[j] = j < lanes ? out + b * T : 0;
            }
            REAL v[BQ_LANES];
            for (int64_t t = 0; t < T; t++) {
                for (int j = 0; j < BQ_LANES; j++) {
                    REAL xt = xs[j][t];
                    v[j] = c[0][j] * xt + c[1][j] * x1[j] + c[2][j] * x2[j] - c[3][j] * y1[j] - c[4][j] * y2[j];
                    x2[j] = x1[j]; x1[j] = xt; y2[j] = y1[j]; y1[j] = v[j];
                }
                for (int j = 0; j < lanes; j++) ys[j][t] = v[j];
            }
        } else {
            const REAL *xr = x + b0 * T;
            REAL *y = out + b0 * T;
            for (int64_t t0 = 0; t0 < T; t0 += BLK) {
                const int n = (int)(T - t0 < BLK ? T - t0 : BLK);
                SUF(bq_fill)(&k, b0, t0, n, T, cutoff, cutoff_ps, ctl, mod, mod_ps, q, q_ps, types + 3 * b0, sr, hi);
                REAL p1 = x1[0], p2 = x2[0], o1 = y1[0], o2 = y2[0];
                for (int i = 0; i < n; i++) {
                    REAL xt = xr[t0 + i];
                    REAL v = k.b0[i] * xt + k.b1[i] * p1 + k.b2[i] * p2 - k.a1[i] * o1 - k.a2[i] * o2;
                    p2 = p1; p1 = xt; o2 = o1; o1 = v; y[t0 + i] = v;
                }
                x1[0] = p1; x2[0] = p2; y1[0] = o1; y2[0] = o2;
            }
        }
        if (state) for (int j = 0; j < lanes; j++) {
            int64_t b = b0 + j;
            state[4 * b] = x1[j]; state[4 * b + 1] = x2[j]; state[4 * b + 2] = y1[j]; state[4 * b + 3] = y2[j];
        }
    }
    FTZ_END
}

/* Gradients of sum(grad * y). state_in: the (x1, x2, y1, y2) the forward started from
   (NULL: zeros); no gradient flows into it. g_ctl, g_mod, g_types may be NULL. */
void SUF(biquad_backward)(BQ_ARGS, const REAL *state_in, const REAL *yout, const REAL *grad,
                          REAL *g_x, REAL *g_cutoff, REAL *g_ctl, REAL *g_mod, REAL *g_q, REAL *g_types) {
    FTZ_BEGIN
    const REAL sr = (REAL)sample_rate, hi = (REAL)(0.45 * sample_rate);
    const int varying = ctl || cutoff_ps || q_ps;
    SUF(bq_block) k;
    REAL lam[BLK], xp[BLK + 2], yp[BLK + 2];
    double part[6][BLK];  /* d cutoff (raw), d q, d weights x3, d mod */
    for (int64_t b = row0; b < row1; b++) {
        const REAL *xr = x + b * T, *yr = yout + b * T, *g = grad + b * T;
        const REAL *w = types + 3 * b;
        REAL *gx = g_x + b * T;
        REAL hist[4] = {0, 0, 0, 0};  /* x[-1], x[-2], y[-1], y[-2] */
        if (state_in) for (int j = 0; j < 4; j++) hist[j] = state_in[4 * b + j];
        double l1 = 0, l2 = 0;  /* lambda[t+1], lambda[t+2] */
        double sums[6] = {0, 0, 0, 0, 0, 0};
        const int64_t last = ((T - 1) / BLK) * BLK;
        /* b1, a1 at t+1 and b2, a2 at t+2 may lie in the (already done) next block. */
        REAL next_b1 = 0, next_a1 = 0, next_b2[2] = {0, 0}, next_a2[2] = {0, 0};
        int have_coef = 0;
        for (int64_t t0 = last; t0 >= 0; t0 -= BLK) {
            const int n = (int)(T - t0 < BLK ? T - t0 : BLK);
            if (varying || !have_coef) {
                SUF(bq_fill)(&k, b, t0, varying ? n : 1, T, cutoff, cutoff_ps, ctl, mod, mod_ps, q, q_ps, w, sr, hi);
                if (!varying) {  /* constant: spread sample 0's coefficients over the block */
                    for (int i = 1; i < BLK + 2; i++) {
                        k.raw[i] = k.raw[0]; k.fc[i] = k.fc[0]; k.q[i] = k.q[0]; k.cs[i] = k.cs[0];
                        k.sn[i] = k.sn[0]; k.alpha[i] = k.alpha[0]; k.ia0[i] = k.ia0[0];
                        k.b0[i] = k.b0[0]; k.b1[i] = k.b1[0]; k.b2[i] = k.b2[0]; k.a1[i] = k.a1[0]; k.a2[i] = k.a2[0];
                    }
                    have_coef = 1;
                }
            }
            if (varying) {
                k.b1[n] = next_b1; k.a1[n] = next_a1;
                k.b2[n] = next_b2[0]; k.a2[n] = next_a2[0]; k.b2[n + 1] = next_b2[1]; k.a2[n + 1] = next_a2[1];
            }
            for (int i = n - 1; i >= 0; i--) {
                double l = (double)g[t0 + i] - (double)k.a1[i + 1] * l1 - (double)k.a2[i + 2] * l2;
                gx[t0 + i] = (REAL)((double)k.b0[i] * l + (double)k.b1[i + 1] * l1 + (double)k.b2[i + 2] * l2);
                lam[i] = (REAL)l;
                l2 = l1; l1 = l;
            }
            next_b1 = k.b1[0]; next_a1 = k.a1[0];
            next_b2[0] = k.b2[0]; next_a2[0] = k.a2[0]; next_b2[1] = k.b2[1]; next_a2[1] = k.a2[1];
            /* x[t-2], x[t-1] (and y) for the block, reaching into history before t = 0. */
            for (int i = 0; i < 2; i++) {
                int64_t t = t0 - 2 + i;
                xp[i] = t >= 0 ? xr[t] : hist[-t - 1];
                yp[i] = t >= 0 ? yr[t] : hist[2 - t - 1];
            }
            for (int i = 0; i < n; i++) { xp[i + 2] = xr[t0 + i]; yp[i + 2] = yr[t0 + i]; }
            const REAL w_lp = w[0], w_hp = w[1], w_bp = w[2];
            for (int i = 0; i < n; i++) {
                const double l = lam[i];
                const double G0 = l * xp[i + 2], G1 = l * xp[i + 1], G2 = l * xp[i], G3 = -l * yp[i + 1], G4 = -l * yp[i];
                const double cs = k.cs[i], sn = k.sn[i], alpha = k.alpha[i], ia0 = k.ia0[i], qq = k.q[i];
                const double lp = (1.0 - cs) * 0.5, hp = (1.0 + cs) * 0.5;
                const double n0 = w_lp * lp + w_hp * hp + w_bp * alpha, n1 = 2.0 * (w_lp * lp - w_hp * hp);
                const double n2 = w_lp * lp + w_hp * hp - w_bp * alpha;
                const double d_ia0 = G0 * n0 + G1 * n1 + G2 * n2 - 2.0 * cs * G3 + (1.0 - alpha) * G4;
                const double d_cs = ia0 * (0.5 * (G0 + G2) * (w_hp - w_lp) - G1 * (w_lp + w_hp)) - 2.0 * ia0 * G3;
                const double d_alpha = ia0 * w_bp * (G0 - G2) - ia0 * G4 - d_ia0 * ia0 * ia0;
                const double d_sn = d_alpha / (2.0 * qq);
                const REAL raw = k.raw[i];
                const double d_fc = (raw < (REAL)10 || raw > hi) ? 0.0 : (-sn * d_cs + cs * d_sn) * TWO_PI_D / sr;
                part[0][i] = d_fc;
                part[1][i] = -d_alpha * sn / (2.0 * qq * qq);
                part[2][i] = ia0 * (G0 * lp + G1 * 2.0 * lp + G2 * lp);
                part[3][i] = ia0 * (G0 * hp - G1 * 2.0 * hp + G2 * hp);
                part[4][i] = ia0 * alpha * (G0 - G2);
            }
            if (ctl) {  /* raw cutoff = base * 2^(m c): chain to base, mod and control */
                const REAL *f_row = cutoff + b * (cutoff_ps ? T : 1), *c_row = ctl + b * T;
                const REAL *m_row = mod + b * (mod_ps ? T : 1);
                for (int i = 0; i < n; i++) {
                    const int64_t t = t0 + i;
                    const double d_log = part[0][i] * (double)k.raw[i] * LN2_D;
                    const double m = m_row[t * mod_ps];
                    part[5][i] = d_log * c_row[t];
                    if (g_ctl) g_ctl[b * T + t] = (REAL)(d_log * m);
                    part[0][i] = part[0][i] * (double)k.raw[i] / (double)f_row[t * cutoff_ps];
                }
                if (g_mod && mod_ps) for (int i = 0; i < n; i++) g_mod[b * T + t0 + i] = (REAL)part[5][i];
                else sums[5] += lane_sum(part[5], n);
            }
            if (cutoff_ps) for (int i = 0; i < n; i++) g_cutoff[b * T + t0 + i] = (REAL)part[0][i];
            else sums[0] += lane_sum(part[0], n);
            if (q_ps) for (int i = 0; i < n; i++) g_q[b * T + t0 + i] = (REAL)part[1][i];
            else sums[1] += lane_sum(part[1], n);
            if (g_types) for (int j = 0; j < 3; j++) sums[2 + j] += lane_sum(part[2 + j], n);
        }
        if (!cutoff_ps) g_cutoff[b] = (REAL)sums[0];
        if (!q_ps) g_q[b] = (REAL)sums[1];
        if (g_types) for (int j = 0; j < 3; j++) g_types[3 * b + j] = (REAL)sums[2 + j];
        if (ctl && g_mod && !mod_ps) g_mod[b] = (REAL)sums[5];
    }
    FTZ_END
}
#undef BQ_ARGS
#undef BQ_LANES
