/* textzoo_rt.c — the int8 runtime of textzoo, a C99 twin of the Rust crate `textzoo-rt`.
 *
 * Every function here is the loop nest of its Rust namesake (quant.rs, kernels.rs,
 * transformer.rs, rnn.rs) with pointers instead of slices. Integer sums are exact (the Rust
 * portable kernels' 16-lane accumulation order gives the same int32 as a plain loop), so the
 * loops are free to be written for speed; the float steps are in exactly the Rust order.
 *
 * Sections: buffers | quantization arithmetic | kernels | transformer | recurrent | API.
 * Memory: all static. The buffer sizes come from the generated model.h (TZ_ARENA_BYTES,
 * TZ_KV_BYTES, TZ_VOCAB_SIZE, TZ_SEQ_LEN); c_model.rs's ram_bytes() counts exactly the
 * arrays declared below.
 *
 * Portability notes: `>>` of a negative int32 is an arithmetic shift (implementation-defined
 * in C99, arithmetic on every compiler textzoo targets, as in Rust); every other operation is
 * defined for the values that reach it. The arena is an int32_t array and is only ever
 * accessed as int32_t or through character types (int8_t/uint8_t), so strict aliasing holds.
 */
#include "textzoo_rt.h"
#include "model.h"

#include <stddef.h>
#include <string.h>

/* -DTZ_PROFILE_LAYERS (benchmarking's per-layer emulated view): tz_platform_mark() between the
 * transformer's steps, so the QEMU instruction counter splits a forward pass into embedding |
 * per block: ln1, q/k/v, attention, proj, ln2, up (+ GELU), down | ln_f | head. Off otherwise. */
#if defined(TZ_PROFILE_LAYERS)
#include "platform.h"
#define TZ_LAYER_MARK() tz_platform_mark()
#else
#define TZ_LAYER_MARK() ((void)0)
#endif

/* Optional SIMD int8 dot products (exact integer sums, so the same bits as the portable
 * loops; define TZ_PORTABLE to turn them off): Helium (Cortex-M55, arm_mve.h), else the
 * DSP extension's SMLAD (Cortex-M4/M7/M33/M55, and Armv7-A). */
#if !defined(TZ_PORTABLE) && defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>
#define TZ_MVE 1
#elif !defined(TZ_PORTABLE) && defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32)
#include <arm_acle.h>
#define TZ_SMLAD 1
#endif
/* The DSP extension's saturating QADD for the requantization arithmetic (the same values as
 * the portable C). */
#if !defined(TZ_PORTABLE) && defined(__ARM_FEATURE_DSP)
#if !defined(TZ_SMLAD)
#include <arm_acle.h>
#endif
#define TZ_DSP 1
#endif

/* Small functions of the per-output arithmetic, inlined into the loops (GNU C: always). */
#if defined(__GNUC__)
#define TZ_INLINE __attribute__((always_inline)) inline
#define TZ_NOINLINE __attribute__((noinline))
#else
#define TZ_INLINE inline
#define TZ_NOINLINE
#endif

/* ==========================================================================================
 * Static buffers
 */

#define TZ_MAX1(n) ((n) > 0 ? (n) : 1)
#define TZ_ARENA_WORDS TZ_MAX1((TZ_ARENA_BYTES + 3) / 4)
#define TZ_KV_STATE_ELEMS TZ_MAX1((TZ_KV_BYTES + 1) / 2)

/* The activation arena (int32 elements: every planner offset is 16-aligned). */
static int32_t tz_arena[TZ_ARENA_WORDS];
/* tiny_gpt: the int8 KV cache [layers][2][seq_len][C]; gru/lstm: int16 h [layers][H], then
 * the LSTM cell c [layers][H]. */
static int16_t tz_kv_state[TZ_KV_STATE_ELEMS];
static float tz_logits[TZ_MAX1(TZ_VOCAB_SIZE)];
/* Tokens whose keys/values (or recurrent state) the buffers hold, and the current window. */
static uint16_t tz_cached[TZ_MAX1(TZ_SEQ_LEN)];
static uint16_t tz_window[TZ_MAX1(TZ_SEQ_LEN)];
static int tz_cached_n;
static const tz_model *tz_owner;

static int8_t *tz_a8(tz_slot s) { return (int8_t *)tz_arena + s.offset; }
static int32_t *tz_a32(tz_slot s) { return tz_arena + s.offset / 4; }
static int8_t *tz_kv(void) { return (int8_t *)tz_kv_state; }

/* ==========================================================================================
 * Quantization arithmetic (quant.rs)
 */

#if !defined(TZ_DSP)
static int32_t tz_sat32(int64_t x) {
    return x < INT32_MIN ? INT32_MIN : x > INT32_MAX ? INT32_MAX : (int32_t)x;
}
#endif

/* Upper bound first, then the lower one: the order gcc turns into SSAT. */
static TZ_INLINE int8_t tz_sat8(int32_t x) {
#if defined(TZ_DSP)
    return (int8_t)__ssat(x, 8);
#else
    x = x > 127 ? 127 : x;
    return (int8_t)(x < -128 ? -128 : x);
#endif
}

static TZ_INLINE int16_t tz_sat16(int32_t x) {
    x = x > 32767 ? 32767 : x;
    return (int16_t)(x < -32768 ? -32768 : x);
}

static TZ_INLINE int32_t tz_sat_add32(int32_t a, int32_t b) {
#if defined(TZ_DSP)
    return __qadd(a, b);
#else
    return tz_sat32((int64_t)a + b);
#endif
}

static TZ_INLINE int32_t tz_clamp32(int32_t x, int32_t lo, int32_t hi) {
    x = x > hi ? hi : x;
    return x < lo ? lo : x;
}

static int64_t tz_clamp64(int64_t x, int64_t lo, int64_t hi) {
    return x < lo ? lo : x > hi ? hi : x;
}

/* gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), ties towards +inf.
 * gemmlowp adds the nudge 2^30 (ab >= 0) or 1 - 2^30 (ab < 0) and divides truncating towards
 * zero; for ab < 0 that is floor((ab + 1 - 2^30 + 2^31 - 1) / 2^31), so both cases are
 * (ab + 2^30) >> 31 (one SMLAL and a funnel shift). That value fits in int32 except for
 * a = b = INT32_MIN (2^31, saturated to INT32_MAX), and it is never -2^31 (|ab| < 2^62
 * otherwise), so its low word 0x80000000 marks exactly the saturating case. */
static TZ_INLINE int32_t tz_srdhm(int32_t a, int32_t b) {
    int64_t v = (int64_t)a * b + ((int64_t)1 << 30);
#if defined(TZ_DSP)
    /* QADD doubles the high word with saturation (2^30 -> INT32_MAX, the special case). */
    int32_t hi = (int32_t)(v >> 32);
    return __qadd(hi, hi) | (int32_t)((uint32_t)v >> 31);
#else
    int64_t q = v >> 31;
    return (uint32_t)q == 0x80000000u ? INT32_MAX : (int32_t)q;
#endif
}

/* gemmlowp RoundingDivideByPOT: round(x / 2^exponent), ties away from zero (0 <= exponent
 * <= 31). */
static TZ_INLINE int32_t tz_rdbp(int32_t x, int32_t exponent) {
    int32_t mask = (int32_t)(((uint32_t)1 << exponent) - 1u);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* tz_mbqm for shift >= 0: x * 2^shift saturated, then the high product (RoundingDivideByPOT
 * by 0 is the identity). Out of line, so that the compiler does not compute it alongside
 * the common shift < 0 case. */
static TZ_NOINLINE int32_t tz_mbqm_left(int32_t x, int32_t mult, int32_t shift) {
    if (x > (INT32_MAX >> shift)) {
        x = INT32_MAX;
    } else if (x < (INT32_MIN >> shift)) {
        x = INT32_MIN;
    } else {
        x = (int32_t)((uint32_t)x << shift);
    }
    return tz_srdhm(x, mult);
}

/* hi:lo = V = x mult + 2^30 - [x < 0] 2^31 (tz_mbqm's sum; one SMLAL from a start gcc would
 * not fold into it). */
static TZ_INLINE int32_t tz_mbqm_v(int32_t x, int32_t mult, uint32_t *lo_out) {
#if defined(TZ_DSP) && defined(__GNUC__)
    int32_t hi = x >> 31;
    uint32_t lo = ((uint32_t)hi << 31) | 0x40000000u;
    __asm__("smlal %0, %1, %2, %3" : "+r"(lo), "+r"(hi) : "r"(x), "r"(mult));
    *lo_out = lo;
    return hi;
#else
    int64_t v = (int64_t)x * mult + (x < 0 ? -((int64_t)1 << 30) : ((int64_t)1 << 30));
    *lo_out = (uint32_t)v;
    return (int32_t)(v >> 32);
#endif
}

/* TFLite MultiplyByQuantizedMultiplier (double rounding; the left shift saturates) for
 * mult >= 0 (the model file's check: every multiplier is a QuantizeMultiplier output, never
 * negative), computed with one rounding of a 64-bit product (SMLAL, then the high word).
 * shift = -e < 0: RoundingDivideByPOT(SRDHM(x, mult), e). With y = floor((xm + 2^30) / 2^31)
 * (tz_srdhm; its saturating case needs mult < 0), the result
 * floor((y + 2^(e-1) - [y < 0]) / 2^e) is floor((V + 2^(e+30)) / 2^(31+e)) with
 * V = xm + 2^30 - [y < 0] 2^31 (nested floors of powers of two). [y < 0] may be read as
 * [x < 0]: they differ only when y = 0 (mult >= 0), where the tie term never decides
 * (2^(e-1) - 1 and 2^(e-1) both floor to 0). shift >= 0 without saturation:
 * SRDHM(x 2^shift, mult) = floor((xm + 2^(30-shift)) / 2^(31-shift)). */
static TZ_INLINE int32_t tz_mbqm(int32_t x, int32_t mult, int32_t shift) {
    if (shift < 0) {
        /* e = 1: floor((V + 2^31) / 2^32); e >= 2: (hi + 2^(e-2)) >> (e - 1), written as
         * ((hi >> (e - 2)) + 1) >> 1 (nested floors again) */
        uint32_t lo;
        int32_t hi = tz_mbqm_v(x, mult, &lo);
        if (shift == -1) return hi + (int32_t)(lo >> 31);
        return ((hi >> (-shift - 2)) + 1) >> 1;
    }
#if defined(TZ_DSP) && defined(__GNUC__)
    /* x 2^shift in range (the common case): a funnel shift of the SMLAL sum */
    if (((int32_t)((uint32_t)x << shift) >> shift) == x) {
        uint32_t lo = 1u << (30 - shift);
        int32_t hi = 0;
        __asm__("smlal %0, %1, %2, %3" : "+r"(lo), "+r"(hi) : "r"(x), "r"(mult));
        return (int32_t)((lo >> (31 - shift)) | ((uint32_t)hi << (shift + 1)));
    }
#endif
    return tz_mbqm_left(x, mult, shift);
}

static TZ_INLINE int32_t tz_rq(int32_t x, tz_requant r) { return tz_mbqm(x, r.mult, r.shift); }

/* One requantization applied to many values (attention's softmax steps and p.v outputs, a
 * layer's residual term): tz_mbqm with the shift's branch taken once.
 * e2 = e - 2 for shift = -e <= -2; -1 sends every other shift to tz_mbqm. */
typedef struct {
    int32_t mult, shift, e2;
} tz_rqk;

static TZ_INLINE tz_rqk tz_rqk_of(tz_requant r) {
    tz_rqk k;
    k.mult = r.mult;
    k.shift = r.shift;
    k.e2 = r.shift <= -2 ? -r.shift - 2 : -1;
    return k;
}

static TZ_INLINE int32_t tz_rqk_apply(int32_t x, const tz_rqk *k) {
    uint32_t lo;
    if (k->e2 < 0) return tz_mbqm(x, k->mult, k->shift);
    return ((tz_mbqm_v(x, k->mult, &lo) >> k->e2) + 1) >> 1;
}

/* sat8(zp + v) for a requantized v, clamped to +-1024 first (no overflow). */
static TZ_INLINE int8_t tz_zp_sat8(int32_t v, int32_t zp) {
#if defined(TZ_DSP)
    /* SSAT to [-1024, 1023]: zero points are int8 (the model file's check), so zp + 1023 and
     * zp + 1024 both saturate to 127. */
    return tz_sat8(zp + __ssat(v, 11));
#else
    return tz_sat8(zp + tz_clamp32(v, -1024, 1024));
#endif
}

/* sat8(zp + requant(acc)). */
static TZ_INLINE int8_t tz_requant_i8(int32_t acc, int32_t mult, int32_t shift, int32_t zp) {
    return tz_zp_sat8(tz_mbqm(acc, mult, shift), zp);
}

/* Extra fraction bits of two-term sums (kernels::FRAC_BITS). */
#define TZ_FRAC_BITS 8

/* tz_rdbp(x, TZ_FRAC_BITS) for a value then saturated to int8 with an int8 zero point:
 * floor((x + 2^7 - [x < 0]) / 2^8), the addition saturating (QADD), which changes only
 * results of 2^23 - 1 and more, where the int8 saturation gives 127 either way. */
static TZ_INLINE int32_t tz_rdbp_frac(int32_t x) {
#if defined(TZ_DSP)
    return __qadd(x, (1 << (TZ_FRAC_BITS - 1)) + (x >> 31)) >> TZ_FRAC_BITS;
#else
    return tz_rdbp(x, TZ_FRAC_BITS);
#endif
}

/* Two requantized terms summed with TZ_FRAC_BITS extra bits, rounded once. */
static TZ_INLINE int8_t tz_add2(int32_t a, tz_requant ra, int32_t b, tz_requant rb, int32_t zp) {
    int32_t sum = tz_sat_add32(tz_rq(a, ra), tz_rq(b, rb));
    return tz_sat8(zp + tz_rdbp_frac(sum));
}

/* round(x) half away from zero, saturated to int8 (quant::round_f32_to_i8). Single precision
 * throughout: 0.5f, never 0.5. */
#if defined(__GNUC__) && defined(__ARM_FP) && (__ARM_FP & 4) && defined(__ARM_PCS_VFP)
/* With a single-precision FPU: VCVT.S32.F32 truncates like the C conversion, saturates out
 * of range and gives 0 for NaN, so the clamp to +-200 (which only keeps the C conversion
 * defined) is not needed: above 127.5 or below -128.5 both saturate, NaN gives 0 + 0.5 -> 0
 * there and NaN - 0.5 -> 0 here. */
static TZ_INLINE int8_t tz_round_f32_to_i8(float x) {
    float r = x >= 0.0f ? x + 0.5f : x - 0.5f, t;
    int32_t i;
    __asm__("vcvt.s32.f32 %0, %1" : "=t"(t) : "t"(r));
    memcpy(&i, &t, sizeof i);
    return tz_sat8(i);
}
#else
static int8_t tz_round_f32_to_i8(float x) {
    float r;
    if (x > 200.0f) {
        x = 200.0f;
    } else if (x < -200.0f) {
        x = -200.0f;
    } else if (x != x) {
        x = 0.0f;
    }
    r = x >= 0.0f ? x + 0.5f : x - 0.5f;
    return tz_sat8((int32_t)r);
}
#endif

float tz_sqrtf(float x) {
    uint32_t u, r, bit;
    uint64_t mant, rem;
    int32_t e;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) == 0) return x; /* +-0 */
    if (u & 0x80000000u) {                /* negative: NaN */
        u = 0x7fc00000u;
        memcpy(&x, &u, sizeof u);
        return x;
    }
    if ((u >> 23) == 0xff) return x; /* +inf, NaN */
    e = (int32_t)(u >> 23);
    mant = u & 0x7fffffu;
    if (e == 0) { /* subnormal: normalise */
        e = 1;
        while (!(mant & 0x800000u)) {
            mant <<= 1;
            e -= 1;
        }
    } else {
        mant |= 0x800000u;
    }
    /* x = mant * 2^(e - 127 - 23), mant in [2^23, 2^24). Make the exponent even. */
    e -= 127;
    if (e & 1) {
        mant <<= 1;
        e -= 1;
    }
    /* sqrt(x) = sqrt(mant * 2^23) * 2^(e/2 - 23), with mant * 2^23 in [2^46, 2^48). */
    mant <<= 23;
    r = 0;
    rem = 0;
    for (bit = 1u << 23; bit != 0; bit >>= 1) {
        uint64_t t = (uint64_t)(r | bit) * (r | bit);
        if (t <= mant) r |= bit;
    }
    rem = mant - (uint64_t)r * r;
    /* Round to nearest: x is never exactly halfway between two roots' squares. */
    if (rem > r) r += 1;
    if (r == (1u << 24)) {
        r >>= 1;
        e += 2;
    }
    u = ((uint32_t)(e / 2 + 127) << 23) | (r & 0x7fffffu);
    memcpy(&x, &u, sizeof u);
    return x;
}

/* The layer norms' square root: VSQRT.F32 where there is a single-precision FPU (IEEE,
 * correctly rounded: the same bits as tz_sqrtf for every input but a NaN, which the layer
 * norm's finite, checked constants never produce), else tz_sqrtf. */
static TZ_INLINE float tz_sqrt_fast(float x) {
#if defined(__GNUC__) && defined(__ARM_FP) && (__ARM_FP & 4) && defined(__ARM_PCS_VFP)
    float r;
    __asm__("vsqrt.f32 %0, %1" : "=t"(r) : "t"(x));
    return r;
#else
    return tz_sqrtf(x);
#endif
}

/* ==========================================================================================
 * Kernels (kernels.rs, portable path)
 */


#if defined(TZ_SMLAD)
/* Four int8 as one word (memcpy: unaligned loads are fine on every target with SMLAD). */
static uint32_t tz_load4(const int8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Bytes 1 and 3 of x sign-extended to two int16: SXTB16 with its ROR #8 folded in (gcc 12
 * does not fold __sxtb16 of a rotate, so GNU C compilers get the one instruction as asm;
 * not volatile: the compiler may schedule or drop it like any pure expression). */
#if defined(__GNUC__)
static uint32_t tz_sxtb16_ror8(uint32_t x) {
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
#else
static uint32_t tz_sxtb16_ror8(uint32_t x) { return __sxtb16((x >> 8) | (x << 24)); }
#endif

/* acc + sum of the four byte products of x and y: bytes 0, 2 then 1, 3 as int16 pairs. */
static int32_t tz_smlad4(uint32_t x, uint32_t y, int32_t acc) {
    acc = __smlad(__sxtb16(x), __sxtb16(y), acc);
    return __smlad(tz_sxtb16_ror8(x), tz_sxtb16_ror8(y), acc);
}

/* acc + the four byte products of the word w with the activations xe (bytes 0, 2 as int16)
 * and xo (bytes 1, 3). */
#define TZ_SMLAD_W(acc, xe, xo, w) \
    ((acc) = __smlad((xo), tz_sxtb16_ror8(w), __smlad((xe), __sxtb16(w), (acc))))

#if defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__)
/* gcc, optimizing (the asm takes 13 registers, more than -O0 leaves free): tz_dot4's inner
 * loop is inline asm (in C, gcc 12 hoists the loads and spills), and tz_fc expands each
 * input row once into int16 pairs on the stack (tz_expand), so that the loop only
 * sign-extends weights: 21 instructions per 16 MACs, plus the loop test per 64. */
#define TZ_SMLAD_ASM 1
/* The longest row expanded (2 bytes of stack per input); longer rows are read as int8. */
#define TZ_XS_MAX 512

/* xs[2j], xs[2j + 1] = bytes 0, 2 and bytes 1, 3 of x[4j..4j + 3] as int16 pairs (j < k / 4):
 * the operands SMLAD pairs with a weight word's SXTB16 and SXTB16 ROR #8. */
#if !defined(TZ_PAIRED_WEIGHTS)
static void tz_expand(uint32_t *xs, const int8_t *x, int k) {
    int j;
    for (j = 0; j < k / 4; j++) {
        uint32_t v = tz_load4(x + 4 * j);
        xs[2 * j] = __sxtb16(v);
        xs[2 * j + 1] = tz_sxtb16_ror8(v);
    }
}
#endif

/* Asm pieces of tz_dot4's loop. Operands: accumulators s0..s3, rows 0 and 2 at wa and wb
 * (rows 1 and 3 at register offset k), activations at xp (up to xend), scratch xe, xo (x as
 * int16 pairs), wv (a weight word), t. */
#define TZ_ASM_ROW(acc, addr)                       \
    "ldr %[wv], " addr "\n\t"                        \
    "sxtb16 %[t], %[wv]\n\t"                         \
    "smlad %[" acc "], %[xe], %[t], %[" acc "]\n\t" \
    "sxtb16 %[t], %[wv], ror #8\n\t"                 \
    "smlad %[" acc "], %[xo], %[t], %[" acc "]\n\t"
#define TZ_ASM_ROWS4                                                   \
    TZ_ASM_ROW("s1", "[%[wa], %[k]]") TZ_ASM_ROW("s0", "[%[wa]], #4") \
    TZ_ASM_ROW("s3", "[%[wb], %[k]]") TZ_ASM_ROW("s2", "[%[wb]], #4")
/* Four inputs from xs (A32 LDRD needs an even/odd register pair, so two LDRs there). */
#if defined(__thumb2__)
#define TZ_ASM_XS "ldrd %[xe], %[xo], [%[xp]], #8\n\t" TZ_ASM_ROWS4
#else
#define TZ_ASM_XS "ldr %[xe], [%[xp]], #4\n\tldr %[xo], [%[xp]], #4\n\t" TZ_ASM_ROWS4
#endif
/* Four int8 inputs from x. */
#define TZ_ASM_X8                     \
    "ldr %[xe], [%[xp]], #4\n\t"      \
    "sxtb16 %[xo], %[xe], ror #8\n\t" \
    "sxtb16 %[xe], %[xe]\n\t" TZ_ASM_ROWS4
#define TZ_ASM_LOOP(step) "1:\n\t" step step step step "cmp %[xp], %[xend]\n\tbne 1b"
#define TZ_ASM_OPERANDS                                                                   \
    : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [xp] "+r"(xp),         \
      [wa] "+r"(wa), [wb] "+r"(wb), [xe] "=&r"(xe), [xo] "=&r"(xo), [wv] "=&r"(wv),       \
      [t] "=&r"(t)                                                                        \
    : [k] "r"(k), [xend] "r"(xend)                                                        \
    : "cc", "memory"
#endif
#endif

/* sum a[i] * b[i] over int8 (exact). */
static int32_t tz_dot(const int8_t *a, const int8_t *b, int n) {
    int32_t s = 0;
    int i = 0;
#if defined(TZ_MVE)
    for (; i + 16 <= n; i += 16) s = vmladavaq_s8(s, vld1q_s8(a + i), vld1q_s8(b + i));
#elif defined(TZ_SMLAD)
    for (; i + 4 <= n; i += 4) s = tz_smlad4(tz_load4(a + i), tz_load4(b + i), s);
#endif
    for (; i < n; i++) s += (int32_t)a[i] * b[i];
    return s;
}

/* out[j] = the dot product of x[0..n) with w[j * stride ..][0..n) for j < 4 (x read once
 * for four outputs). */
#if !defined(TZ_PAIRED_WEIGHTS)
static void tz_dot4_c(const int8_t *x, const int8_t *w, int n, int stride, int32_t out[4]) {
    const int8_t *w0 = w, *w1 = w + stride, *w2 = w + 2 * stride, *w3 = w + 3 * stride;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
#if defined(TZ_MVE)
    for (; i + 16 <= n; i += 16) {
        int8x16_t xv = vld1q_s8(x + i);
        s0 = vmladavaq_s8(s0, xv, vld1q_s8(w0 + i));
        s1 = vmladavaq_s8(s1, xv, vld1q_s8(w1 + i));
        s2 = vmladavaq_s8(s2, xv, vld1q_s8(w2 + i));
        s3 = vmladavaq_s8(s3, xv, vld1q_s8(w3 + i));
    }
#elif defined(TZ_SMLAD)
    for (; i + 4 <= n; i += 4) {
        uint32_t xw = tz_load4(x + i);
        uint32_t xe = __sxtb16(xw), xo = tz_sxtb16_ror8(xw);
        TZ_SMLAD_W(s0, xe, xo, tz_load4(w0 + i));
        TZ_SMLAD_W(s1, xe, xo, tz_load4(w1 + i));
        TZ_SMLAD_W(s2, xe, xo, tz_load4(w2 + i));
        TZ_SMLAD_W(s3, xe, xo, tz_load4(w3 + i));
    }
#endif
    for (; i < n; i++) {
        int32_t xi = x[i];
        s0 += xi * w0[i];
        s1 += xi * w1[i];
        s2 += xi * w2[i];
        s3 += xi * w3[i];
    }
    out[0] = s0;
    out[1] = s1;
    out[2] = s2;
    out[3] = s3;
}
#endif

/* out[o] += the dot product of x[0..n) with row w + o * stride, for o < m4 (a multiple of 4). */
#if !defined(TZ_PAIRED_WEIGHTS)
static void tz_dot4_add(const int8_t *x, const int8_t *w, int n, int stride, int m4,
                        int32_t *out) {
    int o;
    int32_t d[4];
    for (o = 0; o < m4; o += 4, w += (size_t)4 * stride) {
        tz_dot4_c(x, w, n, stride, d);
        out[o] += d[0];
        out[o + 1] += d[1];
        out[o + 2] += d[2];
        out[o + 3] += d[3];
    }
}
#endif

#if defined(TZ_SMLAD_ASM)
/* One group of four rows in tz_dot4: the asm loop over inputs 0 .. i - 1 (xp from x0 to
 * xend), the bias as the start of the sums. */
#define TZ_DOT4_GROUPS(xtype, x0, xend_, loop)                           \
    for (o = 0; o < m4; o += 4) {                                        \
        int32_t s0 = bias[o], s1 = bias[o + 1], s2 = bias[o + 2], s3 = bias[o + 3]; \
        const int8_t *wa = w + (size_t)o * k, *wb = wa + 2 * k;          \
        const xtype *xp = (x0), *xend = (xend_);                         \
        uint32_t xe, xo, wv, t;                                          \
        __asm__(loop TZ_ASM_OPERANDS);                                   \
        out[o] = s0;                                                     \
        out[o + 1] = s1;                                                 \
        out[o + 2] = s2;                                                 \
        out[o + 3] = s3;                                                 \
    }
#endif

/* out[o] = bias[o] + the dot product of x with row w + o * k, for o < m4 (a multiple of 4;
 * four rows at a time; int32 sums are exact, so the bias may start the sum). xs: NULL, or
 * (TZ_SMLAD_ASM) x expanded by tz_expand. */
#if !defined(TZ_PAIRED_WEIGHTS)
static void tz_dot4(const int8_t *x, const uint32_t *xs, const int8_t *w, int k,
                    const int32_t *bias, int m4, int32_t *out) {
    int o;
#if defined(TZ_SMLAD_ASM)
    /* Inputs 0 .. i - 1 in the asm loop, sixteen a turn; the rest in C. */
    int i = k & ~15;
    if (i == 0) {
        for (o = 0; o < m4; o++) out[o] = bias[o];
    } else if (xs != NULL) {
        TZ_DOT4_GROUPS(uint32_t, xs, xs + i / 2, TZ_ASM_LOOP(TZ_ASM_XS))
    } else {
        TZ_DOT4_GROUPS(int8_t, x, x + i, TZ_ASM_LOOP(TZ_ASM_X8))
    }
    if (i < k) tz_dot4_add(x + i, w + i, k - i, k, m4, out);
#else
    (void)xs;
    for (o = 0; o < m4; o++) out[o] = bias[o];
    tz_dot4_add(x, w, k, k, m4, out);
#endif
}
#endif

#if defined(TZ_PAIRED_WEIGHTS)
/* ---- Row pairs (TZ_PAIRED_WEIGHTS; c_model.rs pair_rows) ----------------------------------
 * Rows 2p and 2p + 1 (a, b) of a matrix with k inputs start at w + 2pk: byte 2i is a[i],
 * and bytes 2i, 2i + 1 read as a little-endian int16 are v[i] = a[i] + 256 b[i]. Over a run
 * of inputs, S = sum x v = a.x + 256 b.x and T = sum x a (the SXTB16 of v's words) give
 * a.x = T and b.x = (S - T) / 256; S and T are summed modulo 2^32 (SMLAD wraps), exact as long
 * as |256 b.x| < 2^31, i.e. runs of at most TZ_PAIR_RUN inputs. */
#define TZ_PAIR_RUN 512
/* The widest input a layer has (embed_dim or ffn_dim): the widened row on the stack. */
#define TZ_XS_MAX_PAIRED TZ_MAX1(TZ_EMBED_DIM > TZ_FFN_DIM ? TZ_EMBED_DIM : TZ_FFN_DIM)

/* v[i] of the pair at wp: the high byte signed, the low byte unsigned. */
static TZ_INLINE int32_t tz_pair_v(const int8_t *wp, int i) {
    return (int32_t)wp[2 * i + 1] * 256 + (int32_t)(uint8_t)wp[2 * i];
}

/* The dot product of x[0..k) with row `row` of the paired matrix w (exact, plain C). */
static int32_t tz_pair_dot_row(const int8_t *x, const int8_t *w, int k, int row) {
    const int8_t *wp = w + (size_t)(row / 2) * 2 * k;
    int32_t s = 0;
    int i;
    if (row & 1) {
        for (i = 0; i < k; i++) s += (int32_t)x[i] * ((tz_pair_v(wp, i) - wp[2 * i]) / 256);
    } else {
        for (i = 0; i < k; i++) s += (int32_t)x[i] * wp[2 * i];
    }
    return s;
}

/* Row `row` of the paired matrix w as int8 (the embedding lookup of a tied token table). */
static void tz_pair_row(int8_t *out, const int8_t *w, int k, int row) {
    const int8_t *wp = w + (size_t)(row / 2) * 2 * k;
    int i;
    if (row & 1) {
        /* (v - a) / 256 is the high byte plus the borrow a negative a took from it */
        for (i = 0; i < k; i++) out[i] = (int8_t)(wp[2 * i + 1] + (wp[2 * i] < 0));
    } else {
        for (i = 0; i < k; i++) out[i] = wp[2 * i];
    }
}

/* x as int16 (the activations SMLAD pairs with v's halfwords); xs is word-aligned. With
 * SMLAD, four at a time: SXTB16 gives x0, x2 and x1, x3, two halfword packs (PKHBT, PKHTB)
 * put them in order. */
static void tz_widen(int16_t *xs, const int8_t *x, int k) {
    int i = 0;
#if defined(TZ_SMLAD)
    uint32_t *xw = (uint32_t *)(void *)xs;
    for (; i + 4 <= k; i += 4) {
        uint32_t w = tz_load4(x + i);
        uint32_t e = __sxtb16(w), o = tz_sxtb16_ror8(w);
        *xw++ = (e & 0xffffu) | (o << 16);
        *xw++ = (o & 0xffff0000u) | (e >> 16);
    }
#endif
    for (; i < k; i++) xs[i] = x[i];
}

#if defined(TZ_SMLAD_ASM)
/* One pair in the asm loop: two words of v (inputs i..i + 3) at ptr; S += x.v, T += x.a
 * (each word's SXTB16 in place once S has used it: twelve registers in all). */
#if defined(__thumb2__)
#define TZ_PASM_LOADW(ptr) "ldrd %[w0], %[w1], [%[" ptr "]], #8\n\t"
#define TZ_PASM_LOADX "ldrd %[xa], %[xb], [%[xp]], #8\n\t"
#else
#define TZ_PASM_LOADW(ptr) "ldr %[w0], [%[" ptr "]], #4\n\tldr %[w1], [%[" ptr "]], #4\n\t"
#define TZ_PASM_LOADX "ldr %[xa], [%[xp]], #4\n\tldr %[xb], [%[xp]], #4\n\t"
#endif
/* One pair's products for four inputs (xa, xb) once its word w0, w1 is loaded: S takes the
 * 16-bit pair sums, T the low rows' (SXTB16). */
#define TZ_PASM_MACS(s, t)                               \
    "smlad %[" s "], %[xa], %[w0], %[" s "]\n\t"         \
    "sxtb16 %[w0], %[w0]\n\t"                            \
    "smlad %[" t "], %[xa], %[w0], %[" t "]\n\t"         \
    "smlad %[" s "], %[xb], %[w1], %[" s "]\n\t"         \
    "sxtb16 %[w1], %[w1]\n\t"                            \
    "smlad %[" t "], %[xb], %[w1], %[" t "]\n\t"
#define TZ_PASM_PAIR(s, t, ptr) TZ_PASM_LOADW(ptr) TZ_PASM_MACS(s, t)
/* Four inputs for both pairs: 15 instructions for 16 products (Thumb-2). */
#define TZ_PASM_STEP TZ_PASM_LOADX TZ_PASM_PAIR("s0", "t0", "pa") TZ_PASM_PAIR("s1", "t1", "pb")
#define TZ_PASM_LOOP \
    "1:\n\t" TZ_PASM_STEP TZ_PASM_STEP TZ_PASM_STEP TZ_PASM_STEP "cmp %[xp], %[xend]\n\tbne 1b"
#endif

#if defined(TZ_SMLAD_ASM)
/* The groups of tz_dot4p when k % 16 == 0 and k <= TZ_PAIR_RUN (every input in one run, the
 * doubleword loads aligned): the asm loop per group, then the outputs. After a group's loop
 * pa has reached pb's start and pb the next group's, so the pointers simply run on. Kept
 * apart from the general path so that its few live values stay in registers. OUT writes
 * outputs o..o + 3 from d0..d3. */
#define TZ_DOT4P_FAST(OUT)                                                                   \
    do {                                                                                     \
        const int8_t *pb = w;                                                                \
        const int16_t *xend = xs + k;                                                        \
        int o;                                                                               \
        for (o = 0; o < m4; o += 4) {                                                        \
            const int16_t *xp = xs;                                                          \
            const int8_t *pa = pb;                                                           \
            uint32_t s0 = (uint32_t)bias[o], t0 = s0, s1 = (uint32_t)bias[o + 2], t1 = s1;   \
            uint32_t xa, xb, w0, w1;                                                         \
            int32_t d0, d1, d2, d3;                                                          \
            pb = pa + (size_t)2 * k;                                                         \
            __asm__(TZ_PASM_LOOP                                                             \
                    : [s0] "+r"(s0), [t0] "+r"(t0), [s1] "+r"(s1), [t1] "+r"(t1),            \
                      [xp] "+r"(xp), [pa] "+r"(pa), [pb] "+r"(pb), [xa] "=&r"(xa),           \
                      [xb] "=&r"(xb), [w0] "=&r"(w0), [w1] "=&r"(w1)                         \
                    : [xend] "r"(xend)                                                       \
                    : "cc", "memory");                                                       \
            d0 = (int32_t)t0;                                                                \
            d1 = bias[o + 1] + ((int32_t)(s0 - t0) >> 8);                                    \
            d2 = (int32_t)t1;                                                                \
            d3 = bias[o + 3] + ((int32_t)(s1 - t1) >> 8);                                    \
            OUT;                                                                             \
        }                                                                                    \
    } while (0)

/* Thumb-2 with k = TZ_EMBED_DIM (the head, q/k/v, proj and up; compile-time, a multiple of 4
 * up to 252): the inputs are not looped over but unrolled (.rept), x and both pairs read at
 * immediate offsets from fixed bases (xs, and pw for the group: pair A at pw, pair B at
 * pw + 2k), so a group spends 15 instructions per four inputs and nothing on loop control. */
#if defined(__thumb2__) && TZ_EMBED_DIM % 4 == 0 && TZ_EMBED_DIM >= 4 && TZ_EMBED_DIM <= 252
#define TZ_UNROLL_K TZ_EMBED_DIM
#define TZ_PASM_UPAIR(s, t, off) \
    "ldrd %[w0], %[w1], [%[pw], #" off "]\n\t" TZ_PASM_MACS(s, t)
#define TZ_PASM_UNROLLED                                                        \
    ".set .Ltz_off, 0\n\t"                                                      \
    ".rept %c[steps]\n\t"                                                       \
    "ldrd %[xa], %[xb], [%[xs], #.Ltz_off]\n\t"                                 \
    TZ_PASM_UPAIR("s0", "t0", ".Ltz_off") TZ_PASM_UPAIR("s1", "t1", ".Ltz_off + %c[k2]") \
    ".set .Ltz_off, .Ltz_off + 8\n\t"                                           \
    ".endr"
/* One group: s0/t0 (pair A), s1/t1 (pair B) from the biases, then the unrolled sums. */
#define TZ_DOT4P_GROUP(pw_, bias_) TZ_DOT4P_GROUP_K(pw_, bias_, TZ_UNROLL_K)
#define TZ_DOT4P_GROUP_K(pw_, bias_, K)                                                   \
    uint32_t s0 = (uint32_t)(bias_)[0], t0 = s0, s1 = (uint32_t)(bias_)[2], t1 = s1;       \
    do {                                                                                  \
        uint32_t xa, xb, w0, w1;                                                          \
        __asm__(TZ_PASM_UNROLLED                                                          \
                : [s0] "+r"(s0), [t0] "+r"(t0), [s1] "+r"(s1), [t1] "+r"(t1), [xa] "=&r"(xa), \
                  [xb] "=&r"(xb), [w0] "=&r"(w0), [w1] "=&r"(w1)                          \
                : [xs] "r"(xs), [pw] "r"(pw_), [steps] "i"((K) / 4), [k2] "i"(2 * (K))      \
                : "memory");                                                              \
    } while (0)

/* The int32 sums of groups of four outputs for k = K (tz_dot4p_unrolled: the embedding
 * width; tz_dot4p_unrolled_ffn: the FFN width, down's input, when it qualifies too). */
#define TZ_DOT4P_UNROLLED_BODY(K)                                              \
    const int8_t *pw = w;                                                      \
    const int32_t *bias_end = bias + m4;                                       \
    for (; bias != bias_end; pw += 4 * (K), bias += 4, out += 4) {             \
        TZ_DOT4P_GROUP_K(pw, bias, K);                                         \
        out[0] = (int32_t)t0;                                                  \
        out[1] = bias[1] + ((int32_t)(s0 - t0) >> 8);                          \
        out[2] = (int32_t)t1;                                                  \
        out[3] = bias[3] + ((int32_t)(s1 - t1) >> 8);                          \
    }

static TZ_NOINLINE void tz_dot4p_unrolled(const int16_t *xs, const int8_t *w,
                                          const int32_t *bias, int m4, int32_t *out) {
    TZ_DOT4P_UNROLLED_BODY(TZ_UNROLL_K)
}

#if TZ_FFN_DIM != TZ_EMBED_DIM && TZ_FFN_DIM % 4 == 0 && TZ_FFN_DIM >= 4 && TZ_FFN_DIM <= 252
#define TZ_UNROLL_K_FFN TZ_FFN_DIM
static TZ_NOINLINE void tz_dot4p_unrolled_ffn(const int16_t *xs, const int8_t *w,
                                              const int32_t *bias, int m4, int32_t *out) {
    TZ_DOT4P_UNROLLED_BODY(TZ_UNROLL_K_FFN)
}
#endif

#if TZ_UNROLL_K <= 128
/* Groups of six outputs (three pairs: pw, pw + 2k, pw + 4k, in reach of LDRD's offset for
 * k <= 128): x is loaded once per six outputs instead of once per four, 22 instructions per
 * four inputs instead of 15 for four outputs. Each pair is tz_dot4p's: T from the first
 * row's bias is that row's output, S - T is 256 times the second row's dot product. */
#define TZ_PASM_UNROLLED6                                                       \
    ".set .Ltz_off, 0\n\t"                                                      \
    ".rept %c[steps]\n\t"                                                       \
    "ldrd %[xa], %[xb], [%[xs], #.Ltz_off]\n\t"                                 \
    TZ_PASM_UPAIR("s0", "t0", ".Ltz_off") TZ_PASM_UPAIR("s1", "t1", ".Ltz_off + %c[k2]") \
    TZ_PASM_UPAIR("s2", "t2", ".Ltz_off + %c[k4]")                              \
    ".set .Ltz_off, .Ltz_off + 8\n\t"                                           \
    ".endr"
#define TZ_DOT6P_GROUP(pw_, bias_)                                                        \
    uint32_t s0 = (uint32_t)(bias_)[0], t0 = s0, s1 = (uint32_t)(bias_)[2], t1 = s1;       \
    uint32_t s2 = (uint32_t)(bias_)[4], t2 = s2;                                          \
    uint32_t xa, xb, w0, w1;                                                              \
    __asm__(TZ_PASM_UNROLLED6                                                             \
            : [s0] "+r"(s0), [t0] "+r"(t0), [s1] "+r"(s1), [t1] "+r"(t1), [s2] "+r"(s2),  \
              [t2] "+r"(t2), [xa] "=&r"(xa), [xb] "=&r"(xb), [w0] "=&r"(w0), [w1] "=&r"(w1) \
            : [xs] "r"(xs), [pw] "r"(pw_), [steps] "i"(TZ_UNROLL_K / 4),                  \
              [k2] "i"(2 * TZ_UNROLL_K), [k4] "i"(4 * TZ_UNROLL_K)                        \
            : "memory")

static TZ_NOINLINE void tz_dot6p_unrolled(const int16_t *xs, const int8_t *w,
                                          const int32_t *bias, int m6, int32_t *out) {
    const int8_t *pw = w;
    const int32_t *bias_end = bias + m6;
    for (; bias != bias_end; pw += 6 * TZ_UNROLL_K, bias += 6, out += 6) {
        TZ_DOT6P_GROUP(pw, bias);
        (void)w1;
        out[0] = (int32_t)t0;
        out[1] = bias[1] + ((int32_t)(s0 - t0) >> 8);
        out[2] = (int32_t)t1;
        out[3] = bias[3] + ((int32_t)(s1 - t1) >> 8);
        out[4] = (int32_t)t2;
        out[5] = bias[5] + ((int32_t)(s2 - t2) >> 8);
    }
}
#define TZ_SIX 1
#endif

/* tz_dot4p_unrolled in sixes where it can (the largest multiple of 12; the rest, 0, 4 or 8,
 * in fours). */
static void tz_dot4p_unrolled_mixed(const int16_t *xs, const int8_t *w, const int32_t *bias,
                                    int m4, int32_t *out) {
#if defined(TZ_SIX)
    int m12 = m4 / 12 * 12;
    tz_dot6p_unrolled(xs, w, bias, m12, out);
    w += (size_t)m12 * TZ_UNROLL_K;
    bias += m12;
    out += m12;
    m4 -= m12;
#endif
    if (m4 > 0) tz_dot4p_unrolled(xs, w, bias, m4, out);
}

#if defined(__ARM_FP) && (__ARM_FP & 4) && defined(__ARM_PCS_VFP) && defined(TZ_SIX)
/* The head in sixes, with tz_dot4p_unrolled_logits's float epilogue for six. */
#define TZ_HEAD_SIX 1
static TZ_NOINLINE void tz_dot6p_unrolled_logits(const int16_t *xs, const int8_t *w,
                                                 const int32_t *bias, int m6,
                                                 const float *scale, float *fout) {
    const int8_t *pw = w;
    const int32_t *bias_end = bias + m6;
    for (; bias != bias_end; pw += 6 * TZ_UNROLL_K, bias += 6) {
        TZ_DOT6P_GROUP(pw, bias);
        /* as in tz_dot4p_unrolled_logits, for six */
        __asm__ volatile("ldr %[xa], [%[bias], #4]\n\t"
                         "ldr %[xb], [%[bias], #12]\n\t"
                         "ldr %[w0], [%[bias], #20]\n\t"
                         "sub %[s0], %[s0], %[t0]\n\t"
                         "add %[xa], %[xa], %[s0], asr #8\n\t"
                         "sub %[s1], %[s1], %[t1]\n\t"
                         "add %[xb], %[xb], %[s1], asr #8\n\t"
                         "sub %[s2], %[s2], %[t2]\n\t"
                         "add %[w0], %[w0], %[s2], asr #8\n\t"
                         "vmov s0, s1, %[t0], %[xa]\n\t"
                         "vmov s2, s3, %[t1], %[xb]\n\t"
                         "vmov s4, s5, %[t2], %[w0]\n\t"
                         "vcvt.f32.s32 s0, s0\n\t"
                         "vcvt.f32.s32 s1, s1\n\t"
                         "vcvt.f32.s32 s2, s2\n\t"
                         "vcvt.f32.s32 s3, s3\n\t"
                         "vcvt.f32.s32 s4, s4\n\t"
                         "vcvt.f32.s32 s5, s5\n\t"
                         "vldmia %[scale]!, {s6-s11}\n\t"
                         "vmul.f32 s0, s0, s6\n\t"
                         "vmul.f32 s1, s1, s7\n\t"
                         "vmul.f32 s2, s2, s8\n\t"
                         "vmul.f32 s3, s3, s9\n\t"
                         "vmul.f32 s4, s4, s10\n\t"
                         "vmul.f32 s5, s5, s11\n\t"
                         "vstmia %[fout]!, {s0-s5}"
                         : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [xa] "=&r"(xa),
                           [xb] "=&r"(xb), [w0] "=&r"(w0), [scale] "+r"(scale),
                           [fout] "+r"(fout)
                         : [t0] "r"(t0), [t1] "r"(t1), [t2] "r"(t2), [bias] "r"(bias)
                         : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10",
                           "s11", "memory");
        (void)w1;
    }
}
#endif

static TZ_NOINLINE void tz_dot4p_unrolled_logits(const int16_t *xs, const int8_t *w,
                                                 const int32_t *bias, int m4, const float *scale,
                                                 float *fout) {
    const int8_t *pw;
    const int32_t *bias_end = bias + m4;
#if defined(TZ_HEAD_SIX)
    /* Sixes over the largest multiple of 12 (the rest, 0, 4 or 8, in fours). */
    int m12 = m4 / 12 * 12;
    tz_dot6p_unrolled_logits(xs, w, bias, m12, scale, fout);
    w += (size_t)m12 * TZ_UNROLL_K;
    bias += m12;
    scale += m12;
    fout += m12;
#endif
    pw = w;
    for (; bias != bias_end; pw += 4 * TZ_UNROLL_K, bias += 4) {
        TZ_DOT4P_GROUP(pw, bias);
#if defined(__ARM_FP) && (__ARM_FP & 4) && defined(__ARM_PCS_VFP)
        /* The four logits (float)d * scale as the C below computes them (VCVT.F32.S32 rounds
         * to nearest like the C conversion, VMUL is the C product), in 18 instructions
         * instead of the ~30 gcc makes of it: paired VMOVs, one VLDM of the scales, one VSTM. */
        {
            uint32_t b1, b3;
            __asm__ volatile("ldr %[b1], [%[bias], #4]\n\t"
                             "ldr %[b3], [%[bias], #12]\n\t"
                             "sub %[s0], %[s0], %[t0]\n\t"
                             "add %[b1], %[b1], %[s0], asr #8\n\t"
                             "sub %[s1], %[s1], %[t1]\n\t"
                             "add %[b3], %[b3], %[s1], asr #8\n\t"
                             "vmov s0, s1, %[t0], %[b1]\n\t"
                             "vmov s2, s3, %[t1], %[b3]\n\t"
                             "vcvt.f32.s32 s0, s0\n\t"
                             "vcvt.f32.s32 s1, s1\n\t"
                             "vcvt.f32.s32 s2, s2\n\t"
                             "vcvt.f32.s32 s3, s3\n\t"
                             "vldmia %[scale]!, {s4-s7}\n\t"
                             "vmul.f32 s0, s0, s4\n\t"
                             "vmul.f32 s1, s1, s5\n\t"
                             "vmul.f32 s2, s2, s6\n\t"
                             "vmul.f32 s3, s3, s7\n\t"
                             "vstmia %[fout]!, {s0-s3}"
                             : [s0] "+r"(s0), [s1] "+r"(s1), [b1] "=&r"(b1), [b3] "=&r"(b3),
                               [scale] "+r"(scale), [fout] "+r"(fout)
                             : [t0] "r"(t0), [t1] "r"(t1), [bias] "r"(bias)
                             : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "memory");
        }
#else
        {
            int32_t d1 = bias[1] + ((int32_t)(s0 - t0) >> 8);
            int32_t d3 = bias[3] + ((int32_t)(s1 - t1) >> 8);
            fout[0] = (float)(int32_t)t0 * scale[0];
            fout[1] = (float)d1 * scale[1];
            fout[2] = (float)(int32_t)t1 * scale[2];
            fout[3] = (float)d3 * scale[3];
            scale += 4;
            fout += 4;
        }
#endif
    }
}
#endif

static void tz_dot4p_fast(const int16_t *xs, const int8_t *w, int k, const int32_t *bias,
                          int m4, int32_t *out) {
    TZ_DOT4P_FAST((out[o] = d0, out[o + 1] = d1, out[o + 2] = d2, out[o + 3] = d3));
}

static void tz_dot4p_fast_logits(const int16_t *xs, const int8_t *w, int k,
                                 const int32_t *bias, int m4, const float *scale, float *fout) {
    TZ_DOT4P_FAST((fout[o] = (float)d0 * scale[o], fout[o + 1] = (float)d1 * scale[o + 1],
                   fout[o + 2] = (float)d2 * scale[o + 2],
                   fout[o + 3] = (float)d3 * scale[o + 3]));
}
#endif

/* out[o + j] = bias[o + j] + x . row o + j of the paired matrix w, for o < m4 (a multiple of
 * 4: two pairs a group); xs is x widened by tz_widen. With `scale` (the head), the logits
 * (float)(bias + x . row) * scale go to fout instead, in the same order of operations as
 * kernels::dequantize_logits. Each pair's S and T both start at the bias of its first row,
 * so T is that row's output and S - T stays 256 times the second row's dot product (an exact
 * multiple: the arithmetic shift divides); inputs are summed in runs of at most TZ_PAIR_RUN,
 * each exact. */
static void tz_dot4p(const int16_t *xs, const int8_t *w, int k, const int32_t *bias, int m4,
                     int32_t *out, const float *scale, float *fout) {
    int o;
#if defined(TZ_SMLAD_ASM)
#if defined(TZ_UNROLL_K_FFN)
    if (k == TZ_UNROLL_K_FFN && scale == NULL) {
        tz_dot4p_unrolled_ffn(xs, w, bias, m4, out);
        return;
    }
#endif
#if defined(TZ_UNROLL_K)
    if (k == TZ_UNROLL_K) {
        if (scale != NULL) {
            tz_dot4p_unrolled_logits(xs, w, bias, m4, scale, fout);
        } else {
            tz_dot4p_unrolled_mixed(xs, w, bias, m4, out);
        }
        return;
    }
#endif
    if ((k & 15) == 0 && k <= TZ_PAIR_RUN) {
        if (scale != NULL) {
            tz_dot4p_fast_logits(xs, w, k, bias, m4, scale, fout);
        } else {
            tz_dot4p_fast(xs, w, k, bias, m4, out);
        }
        return;
    }
#endif
    for (o = 0; o < m4; o += 4) {
        const int8_t *wa = w + (size_t)o * k, *wb = wa + (size_t)2 * k;
        uint32_t s0 = (uint32_t)bias[o], t0 = s0, s1 = (uint32_t)bias[o + 2], t1 = s1;
        int32_t d0, d1 = bias[o + 1], d2, d3 = bias[o + 3];
        int i0, i;
        for (i0 = 0; i0 < k; i0 += TZ_PAIR_RUN) {
            int end = k - i0 < TZ_PAIR_RUN ? k : i0 + TZ_PAIR_RUN;
            for (i = i0; i < end; i++) {
                int32_t xv = xs[i];
                s0 += (uint32_t)(xv * tz_pair_v(wa, i));
                t0 += (uint32_t)(xv * wa[2 * i]);
                s1 += (uint32_t)(xv * tz_pair_v(wb, i));
                t1 += (uint32_t)(xv * wb[2 * i]);
            }
            d1 += (int32_t)(s0 - t0) >> 8;
            d3 += (int32_t)(s1 - t1) >> 8;
            s0 = t0;
            s1 = t1;
        }
        d0 = (int32_t)t0;
        d2 = (int32_t)t1;
        if (scale != NULL) {
            fout[o] = (float)d0 * scale[o];
            fout[o + 1] = (float)d1 * scale[o + 1];
            fout[o + 2] = (float)d2 * scale[o + 2];
            fout[o + 3] = (float)d3 * scale[o + 3];
        } else {
            out[o] = d0;
            out[o + 1] = d1;
            out[o + 2] = d2;
            out[o + 3] = d3;
        }
    }
}
#endif

/* What a fully connected layer does with its accumulators (kernels::Epilogue). */
enum { TZ_EPI_REQUANT, TZ_EPI_LUT, TZ_EPI_RESIDUAL };

typedef struct {
    int kind;
    int32_t zp;
    const int8_t *lut;  /* TZ_EPI_LUT */
    const int8_t *res;  /* TZ_EPI_RESIDUAL: [n][m] */
    int32_t res_zp;     /* TZ_EPI_RESIDUAL */
    tz_requant res_rq;  /* TZ_EPI_RESIDUAL */
} tz_epi;

/* orow[o + j] = the epilogue of acc[j] (output o + j, j < cnt); res: the residual row. The
 * kind is switched on once per call, not per output. */
static void tz_epi_run(const tz_epi *e, const tz_linear *l, int8_t *orow, const int8_t *res,
                       int o, int cnt, const int32_t *acc) {
    const int32_t *mult = l->mult + o, *shift = l->shift + o;
    int32_t zp = e->zp;
    int j;
    orow += o;
    switch (e->kind) {
    case TZ_EPI_LUT: {
        const int8_t *lut = e->lut + 128;
        for (j = 0; j < cnt; j++) orow[j] = lut[tz_requant_i8(acc[j], mult[j], shift[j], zp)];
        break;
    }
    case TZ_EPI_RESIDUAL: {
        /* tz_add2, the residual's requantization (one for the layer) worked out once. */
        int32_t res_zp = e->res_zp;
        tz_rqk rr = tz_rqk_of(e->res_rq);
        res += o;
        for (j = 0; j < cnt; j++) {
            int32_t sum = tz_sat_add32(tz_mbqm(acc[j], mult[j], shift[j]),
                                       tz_rqk_apply((int32_t)res[j] - res_zp, &rr));
            orow[j] = tz_sat8(zp + tz_rdbp_frac(sum));
        }
        break;
    }
    default:
        for (j = 0; j < cnt; j++) orow[j] = tz_requant_i8(acc[j], mult[j], shift[j], zp);
    }
}

/* Outputs per tz_dot4 call (a multiple of 4; int32 accumulators on the stack). */
#define TZ_CHUNK 64

/* out[n][m] = epilogue(bias + x[n][k] . w[m][k]^T). */
static void tz_fc(int8_t *out, const int8_t *x, const tz_linear *l, int n, const tz_epi *e) {
    int k = l->in_dim, m = l->out_dim, m4 = m / 4 * 4;
    int r, o;
    int32_t acc[TZ_CHUNK];
#if defined(TZ_PAIRED_WEIGHTS)
    uint32_t xs_buf[(TZ_XS_MAX_PAIRED + 1) / 2];
    int16_t *xs = (int16_t *)xs_buf;
    for (r = 0; r < n; r++) {
        const int8_t *xr = x + (size_t)r * k;
        int8_t *orow = out + (size_t)r * m;
        const int8_t *res = e->kind == TZ_EPI_RESIDUAL ? e->res + (size_t)r * m : NULL;
        tz_widen(xs, xr, k);
        for (o = 0; o < m4; o += TZ_CHUNK) {
            int cnt = m4 - o < TZ_CHUNK ? m4 - o : TZ_CHUNK;
            tz_dot4p(xs, l->w + (size_t)o * k, k, l->bias + o, cnt, acc, NULL, NULL);
            tz_epi_run(e, l, orow, res, o, cnt, acc);
        }
        for (o = m4; o < m; o++) {
            acc[0] = l->bias[o] + tz_pair_dot_row(xr, l->w, k, o);
            tz_epi_run(e, l, orow, res, o, 1, acc);
        }
    }
#else
    const uint32_t *xs = NULL;
#if defined(TZ_SMLAD_ASM)
    uint32_t xs_buf[TZ_XS_MAX / 2];
    if (k <= TZ_XS_MAX) xs = xs_buf;
#endif
    for (r = 0; r < n; r++) {
        const int8_t *xr = x + (size_t)r * k;
        int8_t *orow = out + (size_t)r * m;
        const int8_t *res = e->kind == TZ_EPI_RESIDUAL ? e->res + (size_t)r * m : NULL;
#if defined(TZ_SMLAD_ASM)
        if (xs != NULL) tz_expand(xs_buf, xr, k);
#endif
        for (o = 0; o < m4; o += TZ_CHUNK) {
            int cnt = m4 - o < TZ_CHUNK ? m4 - o : TZ_CHUNK;
            tz_dot4(xr, xs, l->w + (size_t)o * k, k, l->bias + o, cnt, acc);
            tz_epi_run(e, l, orow, res, o, cnt, acc);
        }
        for (o = m4; o < m; o++) {
            acc[0] = l->bias[o] + tz_dot(xr, l->w + (size_t)o * k, k);
            tz_epi_run(e, l, orow, res, o, 1, acc);
        }
    }
#endif
}

/* The head: out[n][m] = (float)(bias[o] + x[r] . w[o]) * scale[o]. */
static void tz_fc_logits(float *out, const int8_t *x, const int8_t *w, const int32_t *bias,
                         const float *scale, int n, int k, int m) {
    int m4 = m / 4 * 4;
    int r, o;
#if defined(TZ_PAIRED_WEIGHTS)
    uint32_t xs_buf[(TZ_XS_MAX_PAIRED + 1) / 2];
    int16_t *xs = (int16_t *)xs_buf;
    for (r = 0; r < n; r++) {
        const int8_t *xr = x + (size_t)r * k;
        float *orow = out + (size_t)r * m;
        tz_widen(xs, xr, k);
        tz_dot4p(xs, w, k, bias, m4, NULL, scale, orow);
        for (o = m4; o < m; o++)
            orow[o] = (float)(bias[o] + tz_pair_dot_row(xr, w, k, o)) * scale[o];
    }
#else
    int j;
    int32_t acc[TZ_CHUNK];
    const uint32_t *xs = NULL;
#if defined(TZ_SMLAD_ASM)
    uint32_t xs_buf[TZ_XS_MAX / 2];
    if (k <= TZ_XS_MAX) xs = xs_buf;
#endif
    for (r = 0; r < n; r++) {
        const int8_t *xr = x + (size_t)r * k;
        float *orow = out + (size_t)r * m;
#if defined(TZ_SMLAD_ASM)
        if (xs != NULL) tz_expand(xs_buf, xr, k);
#endif
        for (o = 0; o < m4; o += TZ_CHUNK) {
            int cnt = m4 - o < TZ_CHUNK ? m4 - o : TZ_CHUNK;
            tz_dot4(xr, xs, w + (size_t)o * k, k, bias + o, cnt, acc);
            for (j = 0; j < cnt; j++) orow[o + j] = (float)acc[j] * scale[o + j];
        }
        for (o = m4; o < m; o++)
            orow[o] = (float)(bias[o] + tz_dot(xr, w + (size_t)o * k, k)) * scale[o];
    }
#endif
}

/* Layer norm of n rows of c int8 values (kernels::layernorm): integer statistics, then
 * r = 1 / sqrt(ss * var_scale + eps) and y = (d * r) * a + b in f32, in this order.
 * ss = sum (c x - S)^2 (S = sum x) is the same integer as c (c sum x^2 - S^2), so one pass
 * over the row gives it (sum x^2 < 2^31 for c < 2^17). */
static void tz_layernorm_rows(int8_t *out, const int8_t *x, const tz_layernorm *ln, int n, int c) {
    const float *a = ln->a, *b = ln->b;
    int r, i;
    for (r = 0; r < n; r++) {
        const int8_t *xr = x + (size_t)r * c;
        int8_t *orow = out + (size_t)r * c;
        int32_t sum = 0, sq = 0;
        int64_t ss;
        float rstd;
        i = 0;
#if defined(TZ_SMLAD)
        for (; i + 4 <= c; i += 4) {
            uint32_t w = tz_load4(xr + i);
            uint32_t e = __sxtb16(w), o = tz_sxtb16_ror8(w);
            sum = __smlad(e, 0x00010001u, sum);
            sum = __smlad(o, 0x00010001u, sum);
            sq = __smlad(e, e, sq);
            sq = __smlad(o, o, sq);
        }
#endif
        for (; i < c; i++) {
            sum += xr[i];
            sq += (int32_t)xr[i] * xr[i];
        }
        ss = (int64_t)c * ((int64_t)c * sq - (int64_t)sum * sum);
        rstd = 1.0f / tz_sqrt_fast((float)ss * ln->var_scale + ln->eps);
        /* a and b in locals: the int8 stores may alias *ln, which would reload them */
        for (i = 0; i < c; i++) {
            float d = (float)(c * (int32_t)xr[i] - sum);
            orow[i] = tz_round_f32_to_i8(d * rstd * a[i] + b[i]);
        }
    }
}

/* Softmax probabilities have scale 1 / TZ_PROB_ONE. */
#define TZ_PROB_ONE 255

/* round(num / den) = (num + den / 2) / den through a 32-bit reciprocal (kernels::div_round). */
static uint32_t tz_div_round(uint64_t num, uint64_t den, uint64_t inv) {
    uint64_t nn = num + den / 2, q;
    if (nn >= ((uint64_t)1 << 32)) return (uint32_t)(nn / den);
    q = (nn * inv) >> 32;
    return (uint32_t)(q + (nn - q * den >= den ? 1 : 0));
}

/* Softmax of n int32 scores (their maximum given) through the exponential table into u8
 * probabilities; scores are overwritten with the table values. The table's entries are in
 * [0, 2^16] with a positive first one (the model file's check), so the sum is at least 1;
 * while it is below 2^31, num + den / 2 < 2^32 and tz_div_round is the quotient
 * floor(num + den / 2) / den (its estimate from inv is corrected to exactly that), which a
 * 32-bit division gives directly. */
static void tz_softmax_lut(uint8_t *probs, int32_t *scores, int n, int32_t max, tz_requant rq,
                           const int32_t *exp_lut) {
    uint64_t sum = 0, inv;
    tz_rqk k = tz_rqk_of(rq);
    int j;
    for (j = 0; j < n; j++) {
#if defined(TZ_DSP)
        int32_t idx = __usat(tz_rqk_apply(max - scores[j], &k), 10); /* TZ_EXP_LUT_LEN = 2^10 */
#else
        int32_t idx = tz_clamp32(tz_rqk_apply(max - scores[j], &k), 0, TZ_EXP_LUT_LEN - 1);
#endif
        scores[j] = exp_lut[idx];
        sum += (uint64_t)scores[j];
    }
    if (sum >= 1 && sum < ((uint64_t)1 << 31)) {
        uint32_t den = (uint32_t)sum, half = den / 2;
        for (j = 0; j < n; j++)
            probs[j] = (uint8_t)(((uint32_t)scores[j] * TZ_PROB_ONE + half) / den);
        return;
    }
    inv = ((uint64_t)1 << 32) / (sum > 0 ? sum : 1);
    for (j = 0; j < n; j++)
        probs[j] = (uint8_t)tz_div_round((uint64_t)scores[j] * TZ_PROB_ONE, sum, inv);
}

/* Attention scratch (arena slots; the plan's ksum slot is textzoo-rt's: the scores here need
 * no key sums). */
typedef struct {
    int32_t *scores;
    uint8_t *probs;
    int32_t *acc;
} tz_attn_scratch;

#if defined(TZ_SMLAD) && TZ_HEAD_DIM % 4 == 0 && TZ_HEAD_DIM >= 4 && TZ_HEAD_DIM <= 32
/* SMLAD targets, heads of a multiple of 4: the words of a head (compile-time, so the loops
 * over them unroll and q - q_zp's pairs stay in registers). */
#define TZ_HEAD_WORDS (TZ_HEAD_DIM / 4)

/* One query row of one head (hd = TZ_HEAD_DIM) over keys/values kj, vj (stride c, `seen`
 * of them), tz_attention's steps: q - q_zp as int16 pairs matching a key word's SXTB16
 * halves (SSUB16), the scores with their maximum, the softmax, then the p.v sums four
 * outputs at a time in registers (each key's word of v read once) and their requantization
 * with the constants worked out once. */
static void tz_attention_row(int8_t *orow, const int8_t *qi, const int8_t *kj, const int8_t *vj,
                             int seen, int c, const tz_attn *p, const int32_t *exp_lut,
                             const tz_attn_scratch *s) {
    uint32_t qe[TZ_HEAD_WORDS], qo[TZ_HEAD_WORDS];
    uint32_t zz = (uint32_t)(uint16_t)p->q_zp * 0x10001u;
    int32_t qsum = 0, corr, psum = 0, zfix, max = INT32_MIN;
    tz_rqk pv = tz_rqk_of(p->pv);
    int32_t *scores = s->scores, out_zp = p->out_zp;
    uint8_t *probs = s->probs;
    int j, g;
    for (g = 0; g < TZ_HEAD_WORDS; g++) {
        uint32_t w = tz_load4(qi + 4 * g);
        qe[g] = __ssub16(__sxtb16(w), zz);
        qo[g] = __ssub16(tz_sxtb16_ror8(w), zz);
        qsum += (int32_t)qi[4 * g] + qi[4 * g + 1] + qi[4 * g + 2] + qi[4 * g + 3];
    }
    corr = -p->k_zp * (qsum - TZ_HEAD_DIM * p->q_zp);
    for (j = 0; j < seen; j++, kj += c) {
        int32_t sc = corr;
        for (g = 0; g < TZ_HEAD_WORDS; g++) {
            uint32_t w = tz_load4(kj + 4 * g);
            sc = __smlad(qe[g], __sxtb16(w), sc);
            sc = __smlad(qo[g], tz_sxtb16_ror8(w), sc);
        }
        scores[j] = sc;
        if (sc > max) max = sc;
    }
    tz_softmax_lut(probs, scores, seen, max, p->softmax, exp_lut);
    for (j = 0; j < seen; j++) psum += probs[j];
    zfix = p->v_zp * psum;
    for (g = 0; g < TZ_HEAD_WORDS; g++) {
        const int8_t *vp = vj + 4 * g;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (j = 0; j < seen; j++, vp += c) {
            int32_t pj = probs[j];
            uint32_t w = tz_load4(vp);
            uint32_t e = __sxtb16(w), o = tz_sxtb16_ror8(w);
            a0 = __smlabb((int32_t)e, pj, a0);
            a2 = __smlatb((int32_t)e, pj, a2);
            a1 = __smlabb((int32_t)o, pj, a1);
            a3 = __smlatb((int32_t)o, pj, a3);
        }
        orow[4 * g] = tz_zp_sat8(tz_rqk_apply(a0 - zfix, &pv), out_zp);
        orow[4 * g + 1] = tz_zp_sat8(tz_rqk_apply(a1 - zfix, &pv), out_zp);
        orow[4 * g + 2] = tz_zp_sat8(tz_rqk_apply(a2 - zfix, &pv), out_zp);
        orow[4 * g + 3] = tz_zp_sat8(tz_rqk_apply(a3 - zfix, &pv), out_zp);
    }
}
#endif

/* Attention for query rows q[rows][C] at positions pos0.. over keys/values k, v (rows 0.. of
 * a cache or window). causal: row i sees keys 0..=pos0 + i; otherwise all n_keys.
 *
 * kernels::attention's score is dot(q, k) + corr - q_zp ksum(k); the same integer is
 * sum (q - q_zp) k - k_zp sum (q - q_zp), which needs no key sums, and the running maximum
 * is kept while the scores are made, so the softmax starts at its second pass. Keys with
 * p = 0 add nothing to the p.v sums or to psum, so they need not be skipped. */
static void tz_attention(int8_t *out, const int8_t *q, const int8_t *k, const int8_t *v,
                         int rows, int pos0, int n_keys, int causal, const tz_attn *p,
                         int heads, int hd, const int32_t *exp_lut, const tz_attn_scratch *s) {
    int c = heads * hd;
    int h, i, j, d;
    int32_t q_zp = p->q_zp, k_zp = p->k_zp;
    if (causal && n_keys > pos0 + rows) n_keys = pos0 + rows;
    for (h = 0; h < heads; h++) {
        int h0 = h * hd;
        for (i = 0; i < rows; i++) {
            int seen = causal ? pos0 + i + 1 : n_keys;
            const int8_t *qi = q + (size_t)i * c + h0;
            const int8_t *kj = k + h0;
            int32_t qsum = 0, corr, psum = 0, zfix, max = INT32_MIN;
            int8_t *orow = out + (size_t)i * c + h0;
#if defined(TZ_HEAD_WORDS)
            if (hd == TZ_HEAD_DIM) {
                tz_attention_row(orow, qi, kj, v + h0, seen, c, p, exp_lut, s);
                continue;
            }
#endif
            for (d = 0; d < hd; d++) qsum += qi[d];
            corr = -k_zp * (qsum - hd * q_zp);
            for (j = 0; j < seen; j++, kj += c) {
                int32_t sc = corr;
                for (d = 0; d < hd; d++) sc += ((int32_t)qi[d] - q_zp) * kj[d];
                s->scores[j] = sc;
                if (sc > max) max = sc;
            }
            tz_softmax_lut(s->probs, s->scores, seen, max, p->softmax, exp_lut);
            for (d = 0; d < hd; d++) s->acc[d] = 0;
            for (j = 0; j < seen; j++) {
                int32_t pj = s->probs[j];
                const int8_t *vj;
                if (pj == 0) continue;
                psum += pj;
                vj = v + (size_t)j * c + h0;
                for (d = 0; d < hd; d++) s->acc[d] += pj * vj[d];
            }
            zfix = p->v_zp * psum;
            for (d = 0; d < hd; d++)
                orow[d] = tz_requant_i8(s->acc[d] - zfix, p->pv.mult, p->pv.shift, p->out_zp);
        }
    }
}

/* ==========================================================================================
 * Transformer: tiny_gpt (KV cache) and tiny_bert_generator (transformer.rs)
 */

/* The block input of layer l (x0 or the previous block's output). */
static tz_slot tz_block_input(const tz_transformer *t, int l) {
    return l == 0 ? t->x0 : t->slots[l - 1].y;
}

static void tz_embed(const tz_model *m, int8_t *out, const uint16_t *tokens, int n, int pos0) {
    const tz_transformer *t = m->transformer;
    int c = m->embed_dim, r, i;
    for (r = 0; r < n; r++) {
        int tok = tokens[r], pos = pos0 + r;
        tz_requant tr, pr;
        const int8_t *te = t->tok_emb + (size_t)tok * c, *pe = t->pos_emb + (size_t)pos * c;
        int8_t *orow = out + (size_t)r * c;
#if defined(TZ_PAIRED_WEIGHTS)
        int8_t row[TZ_MAX1(TZ_EMBED_DIM)];
        tz_pair_row(row, t->tok_emb, c, tok);
        te = row;
#endif
        tr.mult = t->tok_mult[tok];
        tr.shift = t->tok_shift[tok];
        pr.mult = t->pos_mult[pos];
        pr.shift = t->pos_shift[pos];
        for (i = 0; i < c; i++) orow[i] = tz_add2(te[i], tr, pe[i], pr, t->x0_zp);
    }
}

/* Block `layer` over `rows` rows: keys/values into rows kv0.. of the layer's cache (or its
 * arena slots); attention over rows 0..kv0 + rows; with last_only, only the last row goes
 * past K/V. */
static void tz_block_run(const tz_model *m, int layer, int rows, int kv0, int causal,
                         int last_only) {
    const tz_transformer *t = m->transformer;
    const tz_block *b = &t->blocks[layer];
    const tz_layer_slots *ls = &t->slots[layer];
    int c = m->embed_dim, T = m->seq_len;
    int hd = c / m->num_heads;
    tz_slot xs = tz_block_input(t, layer);
    int8_t *kc, *vc, *ln1 = tz_a8(ls->ln1);
    int q_rows = last_only ? 1 : rows, first = last_only ? rows - 1 : 0;
    tz_epi e;
    tz_attn_scratch sc;

    tz_layernorm_rows(ln1, tz_a8(xs), &b->ln1, rows, c);
    TZ_LAYER_MARK();
    if (m->kind == TZ_KIND_TINY_GPT) {
        kc = tz_kv() + (size_t)2 * layer * T * c;
        vc = kc + (size_t)T * c;
    } else {
        kc = tz_a8(ls->k);
        vc = tz_a8(ls->v);
    }
    memset(&e, 0, sizeof e);
    e.kind = TZ_EPI_REQUANT;
    e.zp = b->attn.k_zp;
    tz_fc(kc + (size_t)kv0 * c, ln1, &b->k, rows, &e);
    e.zp = b->attn.v_zp;
    tz_fc(vc + (size_t)kv0 * c, ln1, &b->v, rows, &e);
    e.zp = b->attn.q_zp;
    tz_fc(tz_a8(ls->q), ln1 + (size_t)first * c, &b->q, q_rows, &e);
    TZ_LAYER_MARK();

    sc.scores = tz_a32(ls->scores);
    sc.probs = (uint8_t *)tz_a8(ls->probs);
    sc.acc = tz_a32(ls->pv_acc);
    tz_attention(tz_a8(ls->att), tz_a8(ls->q), kc, vc, q_rows, kv0 + first, kv0 + rows, causal,
                 &b->attn, m->num_heads, hd, t->exp_lut, &sc);
    TZ_LAYER_MARK();

    e.kind = TZ_EPI_RESIDUAL;
    e.res = tz_a8(xs) + (size_t)first * c;
    e.res_zp = b->x_zp;
    e.res_rq = b->res1;
    e.zp = b->res2_zp;
    tz_fc(tz_a8(ls->res2), tz_a8(ls->att), &b->proj, q_rows, &e);
    TZ_LAYER_MARK();

    tz_layernorm_rows(tz_a8(ls->ln2), tz_a8(ls->res2), &b->ln2, q_rows, c);
    TZ_LAYER_MARK();

    e.kind = TZ_EPI_LUT;
    e.zp = b->up_zp;
    e.lut = b->gelu;
    tz_fc(tz_a8(ls->h), tz_a8(ls->ln2), &b->up, q_rows, &e);
    TZ_LAYER_MARK();

    e.kind = TZ_EPI_RESIDUAL;
    e.res = tz_a8(ls->res2);
    e.res_zp = b->res2_zp;
    e.res_rq = b->res2;
    e.zp = b->y_zp;
    tz_fc(tz_a8(ls->y), tz_a8(ls->h), &b->down, q_rows, &e);
    TZ_LAYER_MARK();
}

/* Final layer norm and head on rows x_row0.. of the last hidden state. */
static void tz_head(const tz_model *m, int x_row0, int rows, float *out) {
    const tz_transformer *t = m->transformer;
    int c = m->embed_dim;
    int8_t *x = tz_a8(tz_block_input(t, m->num_layers)) + (size_t)x_row0 * c;
    int8_t *ln = tz_a8(t->lnf);
    tz_layernorm_rows(ln, x, &t->ln_f, rows, c);
    TZ_LAYER_MARK();
    tz_fc_logits(out, ln, t->head_w, t->head_bias, t->head_scale, rows, c, m->vocab_size);
}

/* Runs n tokens at positions pos0.. through every block (tiny_gpt: causal, K/V appended to
 * the cache at kv0; tiny_bert_generator: one window, last-row block at the end). */
static void tz_blocks(const tz_model *m, const uint16_t *tokens, int n, int pos0, int kv0) {
    int bert = m->kind == TZ_KIND_TINY_BERT_GENERATOR;
    int l;
    tz_embed(m, tz_a8(m->transformer->x0), tokens, n, pos0);
    TZ_LAYER_MARK();
    for (l = 0; l < m->num_layers; l++)
        tz_block_run(m, l, n, kv0, !bert, bert && l + 1 == m->num_layers);
}

/* tiny_gpt: resets the cache and runs tokens[0..n) (1 <= n <= seq_len); `tokens` may be
 * tz_cached itself. Decoder::prefill. */
static void tz_gpt_prefill(const tz_model *m, const uint16_t *tokens, int n) {
    tz_blocks(m, tokens, n, 0, 0);
    tz_head(m, n - 1, 1, tz_logits);
    if (tokens != tz_cached) memmove(tz_cached, tokens, (size_t)n * sizeof *tokens);
    tz_cached_n = n;
}

/* tiny_gpt: Decoder::step with Decoder::keep = keep. */
static void tz_gpt_step_run(const tz_model *m, uint16_t token, int keep) {
    int T = m->seq_len, pos = tz_cached_n;
    if (pos == 0) {
        tz_gpt_prefill(m, &token, 1);
        return;
    }
    if (pos == T) {
        if (keep > T - 1) keep = T - 1;
        if (keep < 1) keep = T > 1 ? 1 : 0;
        memmove(tz_cached, tz_cached + (T - keep), (size_t)keep * sizeof *tz_cached);
        tz_cached[keep] = token;
        tz_gpt_prefill(m, tz_cached, keep + 1);
        return;
    }
    tz_blocks(m, &token, 1, pos, pos);
    tz_head(m, 0, 1, tz_logits);
    tz_cached[pos] = token;
    tz_cached_n = pos + 1;
}

/* tiny_bert_generator: one window of n tokens (a short one sits at the last positions);
 * the last row's logits. transformer::window_logits. */
static void tz_bert_window(const tz_model *m, const uint16_t *tokens, int n) {
    tz_blocks(m, tokens, n, m->seq_len - n, 0);
    tz_head(m, m->num_layers == 0 ? n - 1 : 0, 1, tz_logits);
}

/* ==========================================================================================
 * Recurrent: gru and lstm with int16 state (rnn.rs)
 */

#define TZ_PRE_BITS 20
#define TZ_LUT_IN_BITS 12
#define TZ_STATE_BITS 15

/* (a * b) / 2^s rounded half away from zero (s = 0: the plain product), in 64 bits. */
static int64_t tz_mul_shift(int32_t a, int32_t b, int32_t s) {
    int64_t p = (int64_t)a * b, half;
    if (s == 0) return p;
    half = (int64_t)1 << (s - 1);
    return (p >= 0 ? p + half : p - half) / ((int64_t)1 << s);
}

/* The table at x (Q3.12): lut[i] + (lut[i + 1] - lut[i]) * frac / 128. */
static int32_t tz_lut_eval(const int16_t *lut, int16_t x) {
    int32_t u = (int32_t)x + 32768;
    int32_t i = u >> 7, frac = u & 127;
    int32_t a = lut[i], b = lut[i + 1];
    return a + (int32_t)tz_mul_shift(b - a, frac, 7);
}

/* Q20 sum -> table input (Q3.12), saturated. */
static int16_t tz_to_lut_in(int32_t pre) {
    return tz_sat16(tz_rdbp(pre, TZ_PRE_BITS - TZ_LUT_IN_BITS));
}

/* acc[o] = sum_i x[i] * w[o][i], int16 x int8 (exact for k <= 516). */
static void tz_fc_acc_i16(int32_t *acc, const int16_t *x, const int8_t *w, int k, int m) {
    int o, i;
    for (o = 0; o < m; o++) {
        const int8_t *wr = w + (size_t)o * k;
        int32_t s = 0;
        for (i = 0; i < k; i++) s += (int32_t)x[i] * wr[i];
        acc[o] = s;
    }
}

/* The same with an int8 input (layer 0 reads the embedding row, whose int16 copy in
 * textzoo-rt holds the same values: the sums are identical). */
static void tz_fc_acc_i8(int32_t *acc, const int8_t *x, const int8_t *w, int k, int m) {
    int o;
    for (o = 0; o < m; o++) acc[o] = tz_dot(x, w + (size_t)o * k, k);
}

static int32_t tz_rq_at(const int32_t *mult, const int32_t *shift, int j, int32_t acc) {
    return tz_mbqm(acc, mult[j], shift[j]);
}

/* Gate pre-activation j (Q20): W_ih x + W_hh h + bias, saturating. */
static int32_t tz_pre(const tz_rnn_layer *ly, const int32_t *acc_ih, const int32_t *acc_hh,
                      int j) {
    return tz_sat_add32(tz_sat_add32(tz_rq_at(ly->ih_mult, ly->ih_shift, j, acc_ih[j]),
                                     tz_rq_at(ly->hh_mult, ly->hh_shift, j, acc_hh[j])),
                        ly->bias[j]);
}

/* Consumes one token and leaves its next-token logits in tz_logits (RnnState::step). */
static void tz_rnn_step(const tz_model *m, uint16_t token) {
    const tz_recurrent *rn = m->recurrent;
    int e = m->embed_dim, H = m->hidden_dim, V = m->vocab_size, L = m->num_layers;
    int lstm = m->kind == TZ_KIND_LSTM;
    int g = (lstm ? 4 : 3) * H;
    int16_t *hs = tz_kv_state, *cs = tz_kv_state + (size_t)L * H;
    const int16_t *sig = rn->sigmoid_lut, *th = rn->tanh_lut;
    const int8_t *w;
    int32_t *acc;
    int l, j, o0, chunk;
    for (l = 0; l < L; l++) {
        const tz_rnn_layer *ly = &rn->layers[l];
        int32_t *acc_ih = tz_a32(ly->ih), *acc_hh = tz_a32(ly->hh);
        int16_t *hl = hs + (size_t)l * H;
        if (l == 0)
            tz_fc_acc_i8(acc_ih, rn->tok_emb + (size_t)token * e, ly->w_ih, ly->in_dim, g);
        else
            tz_fc_acc_i16(acc_ih, hs + (size_t)(l - 1) * H, ly->w_ih, ly->in_dim, g);
        tz_fc_acc_i16(acc_hh, hl, ly->w_hh, H, g);
        if (lstm) {
            int16_t *cl = cs + (size_t)l * H;
            int32_t cb = ly->cell_bits;
            for (j = 0; j < H; j++) {
                int32_t ig = tz_lut_eval(sig, tz_to_lut_in(tz_pre(ly, acc_ih, acc_hh, j)));
                int32_t fg = tz_lut_eval(sig, tz_to_lut_in(tz_pre(ly, acc_ih, acc_hh, H + j)));
                int32_t gg = tz_lut_eval(th, tz_to_lut_in(tz_pre(ly, acc_ih, acc_hh, 2 * H + j)));
                int32_t og = tz_lut_eval(sig, tz_to_lut_in(tz_pre(ly, acc_ih, acc_hh, 3 * H + j)));
                int64_t c64 = tz_mul_shift(fg, cl[j], TZ_STATE_BITS) +
                              tz_mul_shift(ig, gg, TZ_STATE_BITS + cb);
                int16_t cn = tz_sat16((int32_t)tz_clamp64(c64, -65536, 65536));
                int64_t cin;
                int32_t tc;
                cl[j] = cn;
                /* c (Q(15 - cb)) to the table's Q3.12 */
                cin = cb <= 3 ? tz_mul_shift(cn, 1, 3 - cb)
                              : (int64_t)cn * ((int64_t)1 << (cb - 3));
                tc = tz_lut_eval(th, tz_sat16((int32_t)tz_clamp64(cin, -65536, 65536)));
                hl[j] = tz_sat16((int32_t)tz_mul_shift(og, tc, TZ_STATE_BITS));
            }
        } else {
            for (j = 0; j < H; j++) {
                int32_t r = tz_lut_eval(sig, tz_to_lut_in(tz_pre(ly, acc_ih, acc_hh, j)));
                int32_t z = tz_lut_eval(sig, tz_to_lut_in(tz_pre(ly, acc_ih, acc_hh, H + j)));
                int32_t hn = tz_sat_add32(
                    tz_rq_at(ly->hh_mult, ly->hh_shift, 2 * H + j, acc_hh[2 * H + j]),
                    ly->bias_hn[j]);
                int32_t xn = tz_sat_add32(
                    tz_rq_at(ly->ih_mult, ly->ih_shift, 2 * H + j, acc_ih[2 * H + j]),
                    ly->bias[2 * H + j]);
                int32_t rn32 = (int32_t)tz_clamp64(tz_mul_shift(r, hn, TZ_STATE_BITS),
                                                   INT32_MIN, INT32_MAX);
                int32_t n = tz_lut_eval(th, tz_to_lut_in(tz_sat_add32(xn, rn32)));
                int32_t hp = hl[j];
                int64_t hnew = (int64_t)n + tz_mul_shift(z, hp - n, TZ_STATE_BITS);
                hl[j] = tz_sat16((int32_t)tz_clamp64(hnew, -65536, 65536));
            }
        }
    }
    /* Head on the top layer's state, TZ_RNN_HEAD_CHUNK outputs per pass. */
    w = rn->head_w;
    acc = tz_a32(rn->head);
    chunk = V < TZ_RNN_HEAD_CHUNK ? V : TZ_RNN_HEAD_CHUNK;
    for (o0 = 0; o0 < V; o0 += chunk) {
        const int16_t *top = hs + (size_t)(L - 1) * H;
        int n = V - o0 < chunk ? V - o0 : chunk;
        tz_fc_acc_i16(acc, top, w + (size_t)o0 * H, H, n);
        for (j = 0; j < n; j++)
            tz_logits[o0 + j] = (float)acc[j] * rn->head_scale[o0 + j] + rn->head_bias[o0 + j];
    }
}

/* ==========================================================================================
 * API: the next-logits policy (textzoo quantization::Int8Lm::next_logits)
 */

void tz_reset(void) {
    tz_cached_n = 0;
    tz_owner = NULL;
}

/* Whether this runtime's static buffers hold model m. */
static int tz_fits(const tz_model *m) {
    if (m == NULL) return 0;
    if (m->kind == TZ_KIND_TINY_GPT || m->kind == TZ_KIND_TINY_BERT_GENERATOR) {
        if (m->transformer == NULL) return 0;
    } else if (m->kind == TZ_KIND_GRU || m->kind == TZ_KIND_LSTM) {
        if (m->recurrent == NULL || m->num_layers < 1) return 0;
    } else {
        return 0;
    }
    return m->seq_len >= 1 && m->seq_len <= TZ_SEQ_LEN && m->vocab_size >= 1 &&
           m->vocab_size <= TZ_VOCAB_SIZE && m->arena_bytes <= 4 * (int32_t)TZ_ARENA_WORDS &&
           m->kv_bytes <= 2 * (int32_t)TZ_KV_STATE_ELEMS;
}

/* A new model forgets the previous one's cache. */
static void tz_own(const tz_model *m) {
    if (tz_owner != m) {
        tz_cached_n = 0;
        tz_owner = m;
    }
}

/* Whether window[0..wn) strictly extends the cached tokens. */
static int tz_extends(const uint16_t *window, int wn) {
    return tz_cached_n > 0 && tz_cached_n < wn &&
           memcmp(window, tz_cached, (size_t)tz_cached_n * sizeof *window) == 0;
}

const float *tz_next_logits(const tz_model *m, const uint16_t *context, int n) {
    int T, wn, i, tail;
    if (!tz_fits(m) || n < 0 || (n > 0 && context == NULL)) return NULL;
    T = m->seq_len;
    tail = n < T ? n : T;
    /* model_window: the last seq_len tokens; tiny_bert_generator left-pads with <pad>;
     * causal models read [<pad>] for an empty context. */
    if (m->kind == TZ_KIND_TINY_BERT_GENERATOR) {
        wn = T;
        for (i = 0; i < T - tail; i++) tz_window[i] = TZ_PAD_ID;
    } else if (tail == 0) {
        wn = 1;
        tz_window[0] = TZ_PAD_ID;
    } else {
        wn = tail;
    }
    for (i = 0; i < tail; i++) tz_window[wn - tail + i] = context[n - tail + i];
    for (i = 0; i < wn; i++)
        if (tz_window[i] >= m->vocab_size) return NULL;
    tz_own(m);

    switch (m->kind) {
    case TZ_KIND_TINY_GPT:
        if (tz_extends(tz_window, wn)) {
            for (i = tz_cached_n; i < wn; i++) tz_gpt_step_run(m, tz_window[i], T - 1);
        } else {
            tz_gpt_prefill(m, tz_window, wn);
        }
        break;
    case TZ_KIND_TINY_BERT_GENERATOR:
        tz_bert_window(m, tz_window, wn);
        tz_cached_n = 0;
        break;
    default:
        if (!tz_extends(tz_window, wn)) {
            int cells = m->kind == TZ_KIND_LSTM ? 2 : 1;
            memset(tz_kv_state, 0,
                   (size_t)cells * m->num_layers * m->hidden_dim * sizeof *tz_kv_state);
            tz_cached_n = 0;
        }
        for (i = tz_cached_n; i < wn; i++) tz_rnn_step(m, tz_window[i]);
        memcpy(tz_cached, tz_window, (size_t)wn * sizeof *tz_window);
        tz_cached_n = wn;
        break;
    }
    return tz_logits;
}

const float *tz_gpt_step(const tz_model *m, uint16_t token, int keep) {
    if (!tz_fits(m) || m->kind != TZ_KIND_TINY_GPT || token >= m->vocab_size) return NULL;
    tz_own(m);
    tz_gpt_step_run(m, token, keep);
    return tz_logits;
}
