/* Twin of textzoo-rt/src/rng.rs and textzoo-rt/src/sample.rs; keep them in step. */
#include "tz_sample.h"

#include <string.h>

#ifndef TZ_VOCAB_SIZE
#include "model.h"
#endif

#define TZ_PCG_MULTIPLIER 6364136223846793005ULL
#define TZ_PCG_INCREMENT 1442695040888963407ULL

uint32_t tz_rng_u32(tz_rng *r)
{
    uint64_t old = r->state;
    uint32_t xorshifted, rot;
    r->state = old * TZ_PCG_MULTIPLIER + TZ_PCG_INCREMENT;
    xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
    rot = (uint32_t)(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
}

void tz_rng_init(tz_rng *r, uint64_t seed)
{
    r->state = 0;
    (void)tz_rng_u32(r);
    r->state += seed;
    (void)tz_rng_u32(r);
}

float tz_rng_f32(tz_rng *r)
{
    return (float)(tz_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

typedef union { float f; uint32_t u; } tz_bits;

static float tz_from_bits(uint32_t u)
{
    tz_bits b;
    b.u = u;
    return b.f;
}

static int32_t tz_total_key(float x)
{
    tz_bits b;
    int32_t bits;
    b.f = x;
    bits = (int32_t)b.u;
    return bits ^ (int32_t)(((uint32_t)(bits >> 31)) >> 1);
}

static uint32_t tz_to_bits(float x)
{
    tz_bits b;
    b.f = x;
    return b.u;
}

static int tz_is_finite(float x)
{
    tz_bits b;
    b.f = x;
    return (b.u & 0x7f800000u) != 0x7f800000u;
}

float tz_sample_exp(float x)
{
    float t, nf, r, p;
    int32_t n;
    if (x != x) {
        return x;
    }
    if (x > 88.72f) {
        return tz_from_bits(0x7f800000u);
    }
    if (x < -103.98f) {
        return 0.0f;
    }
    t = x * 0x1.715476p+0f;
    t = t < 0.0f ? t - 0.5f : t + 0.5f;
    n = (int32_t)t;
    nf = (float)n;
    r = (x - nf * 0.693359375f) - nf * -0x1.bd0106p-13f;
    p = 0x1.a01a02p-13f;
    p = p * r + 0x1.6c16c2p-10f;
    p = p * r + 0x1.111112p-7f;
    p = p * r + 0x1.555556p-5f;
    p = p * r + 0x1.555556p-3f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    if (n < -126) {
        p *= tz_from_bits(0x1f800000u); /* 2^-64 */
        n += 64;
    }
    if (n > 127) {
        p *= 2.0f;
        n -= 1;
    }
    return p * tz_from_bits((uint32_t)(n + 127) << 23);
}

/* Scratch for the candidates (no malloc). */
static uint32_t tz_ids[TZ_VOCAB_SIZE];
static float tz_probs[TZ_VOCAB_SIZE];

/* Whether candidate a comes before b: higher logit (total order) first, then lower id. */
static int tz_before(const float *logits, uint32_t a, uint32_t b)
{
    int32_t ka = tz_total_key(logits[a]), kb = tz_total_key(logits[b]);
    return ka > kb || (ka == kb && a < b);
}

static void tz_sift_down(const float *logits, uint32_t *v, int start, int n)
{
    int root = start;
    for (;;) {
        int child = 2 * root + 1, last = root;
        uint32_t tmp;
        if (child >= n) {
            return;
        }
        /* A heap whose root comes last in the order, so the sorted array comes out first-first. */
        if (tz_before(logits, v[last], v[child])) {
            last = child;
        }
        if (child + 1 < n && tz_before(logits, v[last], v[child + 1])) {
            last = child + 1;
        }
        if (last == root) {
            return;
        }
        tmp = v[root];
        v[root] = v[last];
        v[last] = tmp;
        root = last;
    }
}

/* Heapsort into candidate order; keys are unique, so any correct sort gives Rust's order. */
static void tz_sort(const float *logits, uint32_t *v, int n)
{
    int i;
    for (i = n / 2 - 1; i >= 0; i--) {
        tz_sift_down(logits, v, i, n);
    }
    for (i = n - 1; i > 0; i--) {
        uint32_t tmp = v[0];
        v[0] = v[i];
        v[i] = tmp;
        tz_sift_down(logits, v, 0, i);
    }
}

int tz_sample_pick(const float *logits, int vocab, const tz_sample_cfg *cfg, tz_rng *rng)
{
    int i, n = 0, keep;
    float max, total, cumulative, kept, r;
    if (vocab > TZ_VOCAB_SIZE) {
        return -1;
    }
    if (cfg->greedy) {
        int best = -1;
        for (i = 0; i < vocab; i++) {
            if (tz_is_finite(logits[i]) && (cfg->allow_special || i > 1)
                && (best < 0 || tz_before(logits, (uint32_t)i, (uint32_t)best))) {
                best = i;
            }
        }
        return best < 0 ? 1 : best;
    }
    for (i = 0; i < vocab; i++) {
        if (tz_is_finite(logits[i]) && (cfg->allow_special || i > 1)) {
            tz_ids[n++] = (uint32_t)i;
        }
    }
    if (n == 0) {
        return 1;
    }
    tz_sort(logits, tz_ids, n);
    if (cfg->top_k > 0 && cfg->top_k < n) {
        n = cfg->top_k;
    }
    max = logits[tz_ids[0]];
    total = 0.0f;
    for (i = 0; i < n; i++) {
        float p = tz_sample_exp((logits[tz_ids[i]] - max) / cfg->temperature);
        tz_probs[i] = p;
        total += p;
    }
    cumulative = 0.0f;
    keep = n;
    for (i = 0; i < n; i++) {
        tz_probs[i] /= total;
        cumulative += tz_probs[i];
        if (keep == n && cumulative >= cfg->top_p) {
            keep = i + 1;
        }
    }
    kept = 0.0f;
    for (i = 0; i < keep; i++) {
        kept += tz_probs[i];
    }
    r = tz_rng_f32(rng) * kept;
    for (i = 0; i < keep; i++) {
        float p = tz_probs[i];
        if (r < p) {
            return (int)tz_ids[i];
        }
        r -= p;
    }
    return (int)tz_ids[keep - 1];
}

int tz_sample_uses_context(const tz_sample_cfg *cfg)
{
    return cfg->repetition_penalty != 1.0f || cfg->no_repeat_ngram_size > 0;
}

/* The logits after the context controls (textzoo_rt::sample::adjust). */
static float tz_adjusted[TZ_VOCAB_SIZE];

int tz_sample_pick_in_context(const float *logits, int vocab, const tz_sample_cfg *cfg,
                              tz_rng *rng, const uint16_t *context, int n)
{
    int i, size = cfg->no_repeat_ngram_size;
    float penalty = cfg->repetition_penalty;
    if (!tz_sample_uses_context(cfg)) {
        return tz_sample_pick(logits, vocab, cfg, rng);
    }
    if (vocab > TZ_VOCAB_SIZE) {
        return -1;
    }
    memcpy(tz_adjusted, logits, (size_t)vocab * sizeof logits[0]);
    if (penalty != 1.0f) {
        for (i = 0; i < n; i++) {
            int id = context[i];
            /* Penalized once, without a "seen" table: a logit that already differs from the
             * model's was penalized; one the penalty leaves unchanged gives the same again. */
            if (id < vocab && tz_to_bits(tz_adjusted[id]) == tz_to_bits(logits[id])) {
                float l = logits[id];
                tz_adjusted[id] = l < 0.0f ? l * penalty : l / penalty;
            }
        }
    }
    /* The last size - 1 ids are a prefix; whatever followed the same prefix before is banned. */
    if (size > 0 && n + 1 >= size) {
        const uint16_t *prefix = context + (n + 1 - size);
        int start;
        for (start = 0; start < n + 1 - size; start++) {
            int k = 0;
            while (k < size - 1 && context[start + k] == prefix[k]) {
                k++;
            }
            if (k == size - 1 && context[start + size - 1] < vocab) {
                tz_adjusted[context[start + size - 1]] = tz_from_bits(0xff800000u);
            }
        }
    }
    return tz_sample_pick(tz_adjusted, vocab, cfg, rng);
}
