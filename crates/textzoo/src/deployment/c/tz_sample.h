/* PCG32 and the next-token sampler: twins of textzoo-rt's rng.rs and sample.rs.
 *
 * A device must draw the same tokens as `textzoo operation_mode=prediction` for the same
 * seed, so every float step is the Rust one in the same order (build with
 * -ffp-contract=off) and exp is computed without libm. */
#ifndef TZ_SAMPLE_H
#define TZ_SAMPLE_H

#include <stdint.h>

typedef struct { uint64_t state; } tz_rng;

void tz_rng_init(tz_rng *r, uint64_t seed);
uint32_t tz_rng_u32(tz_rng *r);
/* Uniform in [0, 1) with 24 random bits. */
float tz_rng_f32(tz_rng *r);

typedef struct {
    int greedy;          /* 1: best token; 0: sample */
    float temperature;   /* > 0 */
    int top_k;           /* 0 = all */
    float top_p;         /* (0, 1] */
    int allow_special;   /* may pick <pad> (0) and <unk> (1) */
    float repetition_penalty;  /* > 0; 1 = off (tz_sample_pick_in_context only) */
    int no_repeat_ngram_size;  /* >= 0; 0 = off (tz_sample_pick_in_context only) */
} tz_sample_cfg;

/* The next token id for `vocab` logits (non-finite logits are never picked). Returns 1
 * (<unk>) when nothing can be picked, -1 when vocab exceeds TZ_VOCAB_SIZE (the scratch). */
int tz_sample_pick(const float *logits, int vocab, const tz_sample_cfg *cfg, tz_rng *rng);

/* Whether the pick depends on the context (a repetition penalty or n-gram bans are on). Then
 * every logit is needed: a shortcut that finds the argmax without the full logits is only
 * valid when this is 0. */
int tz_sample_uses_context(const tz_sample_cfg *cfg);

/* The next token after context[0..n) (the prompt and every generated id, not only the model's
 * window), as textzoo_rt::sample::TokenSampler::pick_in_context: a copy of the logits gets the
 * repetition penalty (positive logits of context tokens divided by it, negative ones
 * multiplied, once per distinct token), then tokens that would repeat an n-gram of the
 * context are banned; tz_sample_pick chooses from the copy. Same return values. With both
 * controls off this is tz_sample_pick. */
int tz_sample_pick_in_context(const float *logits, int vocab, const tz_sample_cfg *cfg,
                              tz_rng *rng, const uint16_t *context, int n);

/* e^x from + - * / and bit operations (textzoo_rt::sample::exp). */
float tz_sample_exp(float x);

#endif
