/* White noise from the counter-based hash of diffmoog/rng.py (bit-identical), times amp.

value = amp * (2 u - 1), u = uniform(seed of the row, absolute sample index). The hash is
integer-only, so the loops vectorise; the backward re-hashes instead of saving the noise.
*/
#ifndef DIFFMOOG_NOISE_ONCE
#define DIFFMOOG_NOISE_ONCE
INLINE uint32_t mix32(uint32_t x) {  /* lowbias32, as diffmoog/rng.py */
    x ^= x >> 16; x *= (uint32_t)RNG_MIX_MUL1; x ^= x >> 15; x *= (uint32_t)RNG_MIX_MUL2; x ^= x >> 16;
    return x;
}
#endif

INLINE void SUF(white_block)(REAL *u, int64_t seed, int64_t first, int n) {
    const uint32_t key = (uint32_t)seed, mixed_key = mix32(key), salt = key * (uint32_t)RNG_SALT_MUL;
    for (int i = 0; i < n; i++) {
        uint32_t x = mix32(mixed_key ^ (uint32_t)(first + i));
        x = mix32(x ^ salt);
        u[i] = (REAL)2 * ((REAL)(x >> 8) * (REAL)(1.0 / 16777216.0)) - (REAL)1;
    }
}

void SUF(noise_forward)(NOISE_FORWARD_ARGS) {
    FTZ_BEGIN
    REAL u[BLK];
    for (int64_t b = row0; b < row1; b++) {
        const REAL *a = amp + b * (amp_ps ? T : 1);
        for (int64_t t0 = 0; t0 < T; t0 += BLK) {
            const int n = (int)(T - t0 < BLK ? T - t0 : BLK);
            SUF(white_block)(u, seeds[b], start + t0, n);
            REAL *y = out + b * T + t0;
            if (amp_ps) for (int i = 0; i < n; i++) y[i] = a[t0 + i] * u[i];
            else for (int i = 0; i < n; i++) y[i] = a[0] * u[i];
        }
    }
    FTZ_END
}

/* d/d amp of sum(grad * out): per sample, or summed over the row for a per-row amp. */
void SUF(noise_backward)(NOISE_BACKWARD_ARGS) {
    FTZ_BEGIN
    REAL u[BLK];
    double part[BLK];
    for (int64_t b = row0; b < row1; b++) {
        const REAL *g = grad + b * T;
        double sum = 0;
        for (int64_t t0 = 0; t0 < T; t0 += BLK) {
            const int n = (int)(T - t0 < BLK ? T - t0 : BLK);
            SUF(white_block)(u, seeds[b], start + t0, n);
            if (amp_ps) for (int i = 0; i < n; i++) g_amp[b * T + t0 + i] = g[t0 + i] * u[i];
            else {
                for (int i = 0; i < n; i++) part[i] = (double)g[t0 + i] * u[i];
                sum += lane_sum(part, n);
            }
        }
        if (!amp_ps) g_amp[b] = (REAL)sum;
    }
    FTZ_END
}
