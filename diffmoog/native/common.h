/* Shared helpers for the kernels. Included once per REAL type (see kernels.c). */
#ifndef DIFFMOOG_COMMON_ONCE
#define DIFFMOOG_COMMON_ONCE
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
/* glibc's libmvec has vector versions of these (>= 2.35 for expm1/exp2). Declaring them
   SIMD lets the compiler vectorise loops that call them, without -ffast-math (whose
   value-changing rewrites would make the kernels disagree with the PyTorch path). */
#if !defined(DIFFMOOG_SCALAR_MATH) && defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
#define DIFFMOOG_SIMD __attribute__((simd("notinbranch")))
DIFFMOOG_SIMD float sinf(float); DIFFMOOG_SIMD float cosf(float);
DIFFMOOG_SIMD float expm1f(float); DIFFMOOG_SIMD float exp2f(float); DIFFMOOG_SIMD float expf(float);
DIFFMOOG_SIMD double sin(double); DIFFMOOG_SIMD double cos(double);
DIFFMOOG_SIMD double expm1(double); DIFFMOOG_SIMD double exp2(double); DIFFMOOG_SIMD double exp(double);
#endif
#define TWO_PI_D 6.283185307179586
#define LN2_D 0.6931471805599453
/* Inclusive bounds, as torch.clamp passes gradient on both edges. */
#define INSIDE(u, lo, hi) ((u) >= (lo) && (u) <= (hi))
#endif
