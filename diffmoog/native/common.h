/* Shared helpers for the kernels. Included once per REAL type (see kernels.c). */
#ifndef DIFFMOOG_COMMON_ONCE
#define DIFFMOOG_COMMON_ONCE
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
/* Helpers must inline into the vector loops; GCC's size heuristics would otherwise
   keep some as calls in the larger kernels, which stops vectorisation. */
#define INLINE static inline __attribute__((always_inline))
/* glibc's libmvec has vector versions of these (>= 2.35 for expm1/exp2). Declaring them
   SIMD lets the compiler vectorise loops that call them, without -ffast-math (whose
   value-changing rewrites would make the kernels disagree with the PyTorch path). */
#if !defined(DIFFMOOG_SCALAR_MATH) && defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
#define DIFFMOOG_SIMD __attribute__((simd("notinbranch"), const))
DIFFMOOG_SIMD float sinf(float); DIFFMOOG_SIMD float cosf(float);
DIFFMOOG_SIMD float expm1f(float); DIFFMOOG_SIMD float exp2f(float); DIFFMOOG_SIMD float expf(float);
DIFFMOOG_SIMD double sin(double); DIFFMOOG_SIMD double cos(double);
DIFFMOOG_SIMD double expm1(double); DIFFMOOG_SIMD double exp2(double); DIFFMOOG_SIMD double exp(double);
#endif
#define TWO_PI_D 6.283185307179586
#define LN2_D 0.6931471805599453
/* Inclusive bounds, as torch.clamp passes gradient on both edges. */
#define INSIDE(u, lo, hi) ((u) >= (lo) && (u) <= (hi))
/* A pragma whose argument is macro-expanded first (e.g. GCC unroll ADDITIVE_MAX_HARMONICS). */
#define DIFFMOOG_PRAGMA(x) _Pragma(#x)
#define DIFFMOOG_PRAGMA_EXPANDED(x) DIFFMOOG_PRAGMA(x)
/* Exponential modulation, base * 2^(mod * ctl): the oscillator's pitch and the filter's
   cutoff (modules/base.py: exp_mod, the PyTorch reference). */
#define EXP_MOD(base, mod, ctl) ((base) * EXP2((mod) * (ctl)))
#endif
#ifndef DIFFMOOG_LANES_ONCE
#define DIFFMOOG_LANES_ONCE
/* Flush denormals to zero inside a kernel: a filter ringing down after the note ends
   passes through 1e-38..1e-45, where x86 arithmetic is ~100x slower. The caller's
   floating-point mode is restored on exit. */
#if defined(__SSE__)
#include <xmmintrin.h>
#define FTZ_BEGIN const unsigned int saved_csr_ = _mm_getcsr(); _mm_setcsr(saved_csr_ | 0x8040);
#define FTZ_END _mm_setcsr(saved_csr_);
#else
#define FTZ_BEGIN
#define FTZ_END
#endif
/* Kernels work in blocks of this many samples: per-sample quantities go to small
   arrays in a vectorisable loop, then sequential parts (recursions, phase sums) run. */
#define BLK 256
/* Sum of v[0..n) with eight independent partial sums: the compiler vectorises this
   without -fassociative-math (which would also reorder the DSP maths). */
INLINE double lane_sum(const double *v, int n) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += v[i + j];
    for (; i < n; i++) acc[0] += v[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
#endif
