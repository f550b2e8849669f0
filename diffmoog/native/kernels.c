/* Native CPU kernels for diffmoog's per-sample DSP, built on first use (diffmoog/native/__init__.py).

Each kernel is a template over REAL (float and double), included twice below. A kernel
processes the rows [row0, row1) of a batch, so Python threads can split a batch (ctypes
releases the GIL). Parameters are passed as a pointer plus a per-sample flag: rows of
[batch, 1] (flag 0) or [batch, samples] (flag 1) contiguous tensors.

generated.h is written at build time from the Python declarations (the modules' KERNEL
and C_CONSTANTS): constants, every kernel's argument list and prototype, and the
#include of every kernel header, in the module registry's order.
*/
#include "common.h"

#define REAL float
#define SUF(name) name##_f32
#define FLOOR floorf
#define RINT rintf
#define FABS fabsf
#define SIN sinf
#define COS cosf
#define EXP2 exp2f
#define EXPM1 expm1f
#define EXP expf
#include "generated.h"
#undef REAL
#undef SUF
#undef FLOOR
#undef RINT
#undef FABS
#undef SIN
#undef COS
#undef EXP2
#undef EXPM1
#undef EXP

#define REAL double
#define SUF(name) name##_f64
#define FLOOR floor
#define RINT rint
#define FABS fabs
#define SIN sin
#define COS cos
#define EXP2 exp2
#define EXPM1 expm1
#define EXP exp
#include "generated.h"
