/* RBJ biquad (diffmoog/modules/filter.py): coefficients, feed-forward and recursion fused.

y[t] = b0 x[t] + b1 x[t-1] + b2 x[t-2] - a1 y[t-1] - a2 y[t-2], coefficients from the
cutoff (optionally base * 2^(mod * ctl[t]), a filter envelope), Q and three type weights
(low/high/band-pass numerators, as biquad_coefficients), the cutoff clamped to
[FILTER_MIN_CUTOFF_HZ, FILTER_MAX_CUTOFF_RATIO * sample_rate] (modules/filter.py, via
generated.h). The recursion is latency-bound,
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

/* Coefficients of samples [t0, t0+n) of row b into k. */
INLINE void SUF(bq_fill)(SUF(bq_block) *k, int64_t b, int64_t t0, int n, int64_t T, const REAL *cutoff,
                                int cutoff_ps, const REAL *ctl, const REAL *mod, int mod_ps, const REAL *q,
                                int q_ps, const REAL *w, REAL sr, REAL hi) {
    const REAL *f_row = cutoff + b * (cutoff_ps ? T : 1), *q_row = q + b * (q_ps ? T : 1);
    if (cutoff_ps) for (int i = 0; i < n; i++) k->raw[i] = f_row[t0 + i];
    else for (int i = 0; i < n; i++) k->raw[i] = f_row[0];
    if (q_ps) for (int i = 0; i < n; i++) k->q[i] = q_row[t0 + i];
    else for (int i = 0; i < n; i++) k->q[i] = q_row[0];
    if (ctl) {
        const REAL *c_row = ctl + b * T + t0, *m_row = mod + b * (mod_ps ? T : 1);
        if (mod_ps) for (int i = 0; i < n; i++) k->raw[i] = EXP_MOD(k->raw[i], m_row[t0 + i], c_row[i]);
        else for (int i = 0; i < n; i++) k->raw[i] = EXP_MOD(k->raw[i], m_row[0], c_row[i]);
    }
    const REAL w_lp = w[0], w_hp = w[1], w_bp = w[2];
    for (int i = 0; i < n; i++) {
        REAL f = k->raw[i];
        f = f < (REAL)FILTER_MIN_CUTOFF_HZ ? (REAL)FILTER_MIN_CUTOFF_HZ : (f > hi ? hi : f);
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

void SUF(biquad_forward)(BIQUAD_FORWARD_ARGS) {
    FTZ_BEGIN
    const REAL sr = (REAL)sample_rate, hi = (REAL)(FILTER_MAX_CUTOFF_RATIO * sample_rate);
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
/* Chain the gradients G of (b0, b1, b2, a1, a2) at one sample to the (clamped) cutoff,
   Q and the three type weights, through the cookbook formulas of bq_fill. */
INLINE void SUF(bq_chain)(const double *G, double cs, double sn, double alpha, double ia0, double q,
                          const REAL *w, REAL sr, double *d_fc, double *d_q, double *d_w) {
    const double w_lp = w[0], w_hp = w[1], w_bp = w[2];
    const double lp = (1.0 - cs) * 0.5, hp = (1.0 + cs) * 0.5;
    const double n0 = w_lp * lp + w_hp * hp + w_bp * alpha, n1 = 2.0 * (w_lp * lp - w_hp * hp);
    const double n2 = w_lp * lp + w_hp * hp - w_bp * alpha;
    const double d_ia0 = G[0] * n0 + G[1] * n1 + G[2] * n2 - 2.0 * cs * G[3] + (1.0 - alpha) * G[4];
    const double d_cs = ia0 * (0.5 * (G[0] + G[2]) * (w_hp - w_lp) - G[1] * (w_lp + w_hp)) - 2.0 * ia0 * G[3];
    const double d_alpha = ia0 * w_bp * (G[0] - G[2]) - ia0 * G[4] - d_ia0 * ia0 * ia0;
    const double d_sn = d_alpha / (2.0 * q);
    *d_fc = (-sn * d_cs + cs * d_sn) * TWO_PI_D / sr;
    *d_q = -d_alpha * sn / (2.0 * q * q);
    d_w[0] = ia0 * (G[0] * lp + G[1] * 2.0 * lp + G[2] * lp);
    d_w[1] = ia0 * (G[0] * hp - G[1] * 2.0 * hp + G[2] * hp);
    d_w[2] = ia0 * alpha * (G[0] - G[2]);
}

/* Constant coefficients: the adjoint recursion for up to BQ_LANES rows at once, with the
   five coefficient gradients summed on the fly; returns them in G[lane][5]. */
INLINE void SUF(bq_backward_constant)(int lanes, int64_t T, const REAL *const *xs, const REAL *const *ys,
                                      const REAL *const *gs, REAL *const *gxs, const REAL (*c)[BQ_LANES],
                                      const REAL (*hist)[4], double (*G)[5]) {
    double l1[BQ_LANES] = {0}, l2[BQ_LANES] = {0}, acc[BQ_LANES][5] = {{0}};
    for (int64_t t = T - 1; t >= 2; t--) {
        for (int j = 0; j < BQ_LANES; j++) {
            const double l = (double)gs[j][t] - (double)c[3][j] * l1[j] - (double)c[4][j] * l2[j];
            gxs[j][t] = (REAL)((double)c[0][j] * l + (double)c[1][j] * l1[j] + (double)c[2][j] * l2[j]);
            acc[j][0] += l * xs[j][t]; acc[j][1] += l * xs[j][t - 1]; acc[j][2] += l * xs[j][t - 2];
            acc[j][3] -= l * ys[j][t - 1]; acc[j][4] -= l * ys[j][t - 2];
            l2[j] = l1[j]; l1[j] = l;
        }
    }
    for (int j = 0; j < lanes; j++) {  /* the first two samples reach into the history */
        for (int64_t t = (T < 2 ? T : 2) - 1; t >= 0; t--) {
            const double l = (double)gs[j][t] - (double)c[3][j] * l1[j] - (double)c[4][j] * l2[j];
            gxs[j][t] = (REAL)((double)c[0][j] * l + (double)c[1][j] * l1[j] + (double)c[2][j] * l2[j]);
            const double x1 = t >= 1 ? xs[j][t - 1] : hist[j][0], x2 = t >= 2 ? xs[j][t - 2] : hist[j][1 - t];
            const double y1 = t >= 1 ? ys[j][t - 1] : hist[j][2], y2 = t >= 2 ? ys[j][t - 2] : hist[j][3 - t];
            acc[j][0] += l * xs[j][t]; acc[j][1] += l * x1; acc[j][2] += l * x2;
            acc[j][3] -= l * y1; acc[j][4] -= l * y2;
            l2[j] = l1[j]; l1[j] = l;
        }
        for (int i = 0; i < 5; i++) G[j][i] = acc[j][i];
    }
}

void SUF(biquad_backward)(BIQUAD_BACKWARD_ARGS) {
    FTZ_BEGIN
    const REAL sr = (REAL)sample_rate, hi = (REAL)(FILTER_MAX_CUTOFF_RATIO * sample_rate);
    const int varying = ctl || cutoff_ps || q_ps;
    SUF(bq_block) k;
    REAL lam[BLK], xp[BLK + 2], yp[BLK + 2];
    double part[6][BLK];  /* d cutoff (raw), d q, d weights x3, d mod */
    if (!varying) {
        for (int64_t b0 = row0; b0 < row1; b0 += BQ_LANES) {
            const int lanes = (int)(row1 - b0 < BQ_LANES ? row1 - b0 : BQ_LANES);
            const REAL *xs[BQ_LANES], *ys[BQ_LANES], *gs[BQ_LANES];
            REAL *gxs[BQ_LANES], c[5][BQ_LANES], hist[BQ_LANES][4];
            double G[BQ_LANES][5];
            for (int j = 0; j < BQ_LANES; j++) {
                const int64_t b = b0 + (j < lanes ? j : 0);  /* idle lanes recompute row b0 */
                SUF(bq_fill)(&k, b, 0, 1, T, cutoff, cutoff_ps, ctl, mod, mod_ps, q, q_ps, types + 3 * b, sr, hi);
                c[0][j] = k.b0[0]; c[1][j] = k.b1[0]; c[2][j] = k.b2[0]; c[3][j] = k.a1[0]; c[4][j] = k.a2[0];
                xs[j] = x + b * T; ys[j] = yout + b * T; gs[j] = grad + b * T;
                gxs[j] = j < lanes ? g_x + b * T : (REAL *)malloc(sizeof(REAL) * (size_t)T);
                for (int i = 0; i < 4; i++) hist[j][i] = state_in ? state_in[4 * b + i] : 0;
            }
            SUF(bq_backward_constant)(lanes, T, xs, ys, gs, gxs, (const REAL (*)[BQ_LANES])c,
                                      (const REAL (*)[4])hist, G);
            for (int j = lanes; j < BQ_LANES; j++) free(gxs[j]);
            for (int j = 0; j < lanes; j++) {
                const int64_t b = b0 + j;
                SUF(bq_fill)(&k, b, 0, 1, T, cutoff, cutoff_ps, ctl, mod, mod_ps, q, q_ps, types + 3 * b, sr, hi);
                double d_fc, d_q, d_w[3];
                SUF(bq_chain)(G[j], k.cs[0], k.sn[0], k.alpha[0], k.ia0[0], k.q[0], types + 3 * b, sr, &d_fc, &d_q, d_w);
                g_cutoff[b] = (k.raw[0] < (REAL)FILTER_MIN_CUTOFF_HZ || k.raw[0] > hi) ? (REAL)0 : (REAL)d_fc;
                g_q[b] = (REAL)d_q;
                if (g_types) for (int i = 0; i < 3; i++) g_types[3 * b + i] = (REAL)d_w[i];
            }
        }
        row1 = row0;  /* done: skip the per-sample path below */
    }
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
        for (int64_t t0 = last; t0 >= 0; t0 -= BLK) {
            const int n = (int)(T - t0 < BLK ? T - t0 : BLK);
            SUF(bq_fill)(&k, b, t0, n, T, cutoff, cutoff_ps, ctl, mod, mod_ps, q, q_ps, w, sr, hi);
            k.b1[n] = next_b1; k.a1[n] = next_a1;
            k.b2[n] = next_b2[0]; k.a2[n] = next_a2[0]; k.b2[n + 1] = next_b2[1]; k.a2[n + 1] = next_a2[1];
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
            for (int i = 0; i < n; i++) {
                const double l = lam[i];
                const double G[5] = {l * xp[i + 2], l * xp[i + 1], l * xp[i], -l * yp[i + 1], -l * yp[i]};
                double d_w[3];
                SUF(bq_chain)(G, k.cs[i], k.sn[i], k.alpha[i], k.ia0[i], k.q[i], w, sr, &part[0][i], &part[1][i], d_w);
                const REAL raw = k.raw[i];
                part[0][i] = (raw < (REAL)FILTER_MIN_CUTOFF_HZ || raw > hi) ? 0.0 : part[0][i];
                part[2][i] = d_w[0]; part[3][i] = d_w[1]; part[4][i] = d_w[2];
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
#undef BQ_LANES
