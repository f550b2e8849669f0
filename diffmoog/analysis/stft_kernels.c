/* Fused per-bin passes of the multi-resolution STFT loss (float32), see stft_native.py.

   `ri` is a spectrum `[rows, bins]` as interleaved (re, im) pairs. Each function does in one
   pass what PyTorch does in 6-10 passes over spectrum-sized temporaries. Maths as in
   spectral_loss.py:
   P = max(re^2 + im^2, EPS), m = sqrt(P). */
#include <math.h>
#include <stdint.h>

/* glibc's libmvec has a vector logf; declaring it SIMD lets GCC vectorise the loops that
   call it without -ffast-math (which would reorder sums and drop NaN propagation). */
#if !defined(STFT_SCALAR_MATH) && defined(__x86_64__) && defined(__GLIBC__)
__attribute__((simd("notinbranch"), const)) float logf(float);
#endif

#define EPS 1e-8f

/* All functions take a row range [r0, r1) of `bins` bins, so a caller can split rows across
   threads; sums are per row (double), so results do not depend on the split. */

/* Target side: magnitude and log power per bin; row_sums[r] = the row's summed power. */
void target_bins(int64_t r0, int64_t r1, int64_t bins, const float *ri, float *mag, float *log_power,
                 double *row_sums) {
    for (int64_t r = r0; r < r1; r++) {
        const float *x = ri + 2 * r * bins;
        float *m = mag + r * bins, *lp = log_power + r * bins;
        double total = 0.0;
#pragma omp simd reduction(+ : total)
        for (int64_t k = 0; k < bins; k++) {
            float re = x[2 * k], im = x[2 * k + 1];
            float p = re * re + im * im;
            p = p < EPS ? EPS : p; /* NaN stays NaN (the comparison is false) */
            lp[k] = logf(p);
            m[k] = sqrtf(p);
            total += p;
        }
        row_sums[r] = total;
    }
}

/* Prediction side: diff = m - t per bin; row_sums[2r] = sum diff^2, row_sums[2r+1] = sum |log P - log Pt|. */
void pred_bins(int64_t r0, int64_t r1, int64_t bins, const float *ri, const float *t_mag,
               const float *t_log_power, float *diff, double *row_sums) {
    for (int64_t r = r0; r < r1; r++) {
        const float *x = ri + 2 * r * bins, *tm = t_mag + r * bins, *tl = t_log_power + r * bins;
        float *d = diff + r * bins;
        double sq = 0.0, ab = 0.0;
#pragma omp simd reduction(+ : sq, ab)
        for (int64_t k = 0; k < bins; k++) {
            float re = x[2 * k], im = x[2 * k + 1];
            float p = re * re + im * im;
            p = p < EPS ? EPS : p;
            float dk = sqrtf(p) - tm[k];
            d[k] = dk;
            sq += (double)dk * dk;
            ab += fabsf(logf(p) - tl[k]);
        }
        row_sums[2 * r] = sq;
        row_sums[2 * r + 1] = ab;
    }
}

/* Gradient spectrum: coef * (re, im) with coef = (c_sc * d + c_log * sign(d) / m) / m, 0 where
   re^2 + im^2 < EPS (the clamp's gradient), times 2 at DC and (if `nyquist`) the last bin. */
void grad_bins(int64_t r0, int64_t r1, int64_t bins, int nyquist, const float *ri, const float *diff,
               float c_sc, float c_log, float *grad) {
    for (int64_t r = r0; r < r1; r++) {
        const float *x = ri + 2 * r * bins, *d = diff + r * bins;
        float *g = grad + 2 * r * bins;
#pragma omp simd
        for (int64_t k = 0; k < bins; k++) {
            float re = x[2 * k], im = x[2 * k + 1];
            float p = re * re + im * im;
            float m = sqrtf(p < EPS ? EPS : p);
            float s = (float)((d[k] > 0.0f) - (d[k] < 0.0f));
            float coef = p >= EPS ? (c_sc * d[k] + c_log * s / m) / m : 0.0f;
            g[2 * k] = coef * re;
            g[2 * k + 1] = coef * im;
        }
        g[0] *= 2.0f;
        g[1] *= 2.0f;
        if (nyquist) {
            g[2 * bins - 2] *= 2.0f;
            g[2 * bins - 1] *= 2.0f;
        }
    }
}

/* Windowed frames: rows [r0, r1) of `[batch * frames, n_fft]` from audio `[batch, samples]`,
   centred with reflect padding (as torch.stft), denormal samples read as 0 (x86 arithmetic on
   them is ~100x slower; synth tails decaying to silence end in them). */
void frames(int64_t r0, int64_t r1, int64_t n_frames, int64_t samples, int64_t n_fft, int64_t hop,
            const float *audio, const float *win, float *out) {
    const int64_t pad = n_fft / 2;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = audio + (r / n_frames) * samples;
        const int64_t start = (r % n_frames) * hop - pad;
        float *o = out + r * n_fft;
        if (start >= 0 && start + n_fft <= samples) {
            const float *xs = x + start;
#pragma omp simd
            for (int64_t j = 0; j < n_fft; j++) {
                float v = xs[j];
                o[j] = (fabsf(v) < 1.17549435e-38f ? 0.0f : v) * win[j];
            }
        } else {
            for (int64_t j = 0; j < n_fft; j++) {
                int64_t i = start + j;
                i = i < 0 ? -i : i;
                i = i >= samples ? 2 * (samples - 1) - i : i;
                float v = x[i];
                o[j] = (fabsf(v) < 1.17549435e-38f ? 0.0f : v) * win[j];
            }
        }
    }
}

/* The adjoint of `frames` (without the denormal step, which is not differentiated): rows
   [b0, b1) of the audio gradient `[batch, samples]` from the frames' gradient
   `[batch, frames, n_fft]`, windowed, overlap-added and folded back through the reflect
   padding. Adds to `out` when `accumulate` (the resolutions of a loss share one gradient). */
void overlap_add(int64_t b0, int64_t b1, int64_t n_frames, int64_t samples, int64_t n_fft, int64_t hop,
                 const float *grad_frames, const float *win, int accumulate, float *out) {
    const int64_t pad = n_fft / 2;
    for (int64_t b = b0; b < b1; b++) {
        float *o = out + b * samples;
        if (!accumulate)
            for (int64_t i = 0; i < samples; i++) o[i] = 0.0f;
        for (int64_t f = 0; f < n_frames; f++) {
            const float *g = grad_frames + (b * n_frames + f) * n_fft;
            const int64_t start = f * hop - pad;
            if (start >= 0 && start + n_fft <= samples) {
                float *os = o + start;
#pragma omp simd
                for (int64_t j = 0; j < n_fft; j++) os[j] += g[j] * win[j];
            } else {
                for (int64_t j = 0; j < n_fft; j++) {
                    int64_t i = start + j;
                    i = i < 0 ? -i : i;
                    i = i >= samples ? 2 * (samples - 1) - i : i;
                    o[i] += g[j] * win[j];
                }
            }
        }
    }
}
