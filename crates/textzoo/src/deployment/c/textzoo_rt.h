/* textzoo_rt.h — the int8 runtime of textzoo, a C99 twin of the Rust crate `textzoo-rt`.
 *
 * The logits this runtime computes are bit-identical to textzoo-rt's: the same integer
 * arithmetic, and the few float steps (layer norm, logit dequantization) are IEEE + - * / sqrt
 * in the same order (compile with -ffp-contract=off so no multiply-add is fused).
 *
 * The model is data: model.c (generated) fills a `tz_model` with pointers to const arrays
 * (flash / .rodata). The runtime's memory is static: one activation arena, the KV cache or
 * the recurrent state, the logits; their sizes come from model.h, which textzoo_rt.c
 * includes. No malloc, no VLAs.
 */
#ifndef TEXTZOO_RT_H
#define TEXTZOO_RT_H

#include <stdint.h>

/* Targets with the DSP extension's SMLAD but without Helium (Cortex-M7, Cortex-M4/M33,
 * Armv7-A): the transformer's int8 matrices are read as row pairs (model.h then defines
 * TZ_PAIRED_WEIGHTS; c_model.rs pair_rows says why). Every file of the runtime and model must
 * be compiled with the same CPU flags and TZ_PORTABLE setting, as they choose the layout. */
#if !defined(TZ_PORTABLE) && defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) && \
    !(defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1))
#define TZ_PAIRED_TARGET 1
#endif
/* Row-pair arrays start on an 8-byte boundary, for the kernels' doubleword loads. */
#if defined(__GNUC__)
#define TZ_PAIR_ALIGN __attribute__((aligned(8)))
#else
#define TZ_PAIR_ALIGN
#endif

/* Model kinds (the same numbers as model.h's TZ_KIND). */
#define TZ_KIND_TINY_BERT_GENERATOR 0
#define TZ_KIND_TINY_GPT 1
#define TZ_KIND_GRU 2
#define TZ_KIND_LSTM 3

/* The id of <pad>, read by tiny_bert_generator on short contexts and by causal models on an
 * empty one. */
#define TZ_PAD_ID 0

/* ------------------------------------------------------------------------------------------
 * Model structs (filled by the generated model.c)
 */

/* Requantization by `mult * 2^(shift - 31)` (TFLite fixed-point multiplier). */
typedef struct {
    int32_t mult;
    int32_t shift;
} tz_requant;

/* Layer norm constants: y = (d * rstd) * a[i] + b[i] (see textzoo-rt kernels::layernorm). */
typedef struct {
    const float *a;
    const float *b;
    float var_scale;
    float eps;
} tz_layernorm;

/* Fully connected: w[out_dim][in_dim] int8, int32 bias (input zero point folded in),
 * per-output-channel requantization. */
typedef struct {
    const int8_t *w;
    const int32_t *bias;
    const int32_t *mult;
    const int32_t *shift;
    int in_dim;
    int out_dim;
} tz_linear;

/* Attention quantization (heads and head_dim come from the model sizes). */
typedef struct {
    int32_t q_zp, k_zp, v_zp;
    tz_requant softmax; /* score difference -> exp-table steps */
    tz_requant pv;      /* p.v accumulators -> output scale */
    int32_t out_zp;
} tz_attn;

/* One pre-LN Transformer block. */
typedef struct {
    tz_layernorm ln1;
    tz_linear q, k, v;
    tz_attn attn;
    tz_linear proj; /* multipliers carry 2^FRAC_BITS (residual sum) */
    tz_requant res1;
    int32_t x_zp;
    int32_t res2_zp;
    tz_layernorm ln2;
    tz_linear up;
    int32_t up_zp;
    const int8_t *gelu; /* 256 entries, indexed by up + 128 */
    tz_linear down;
    tz_requant res2;
    int32_t y_zp;
} tz_block;

/* An arena tensor: byte offset and size (from the memory planner). */
typedef struct {
    int32_t offset;
    int32_t bytes;
} tz_slot;

/* Arena slots of one block (k/v are arena tensors for tiny_bert_generator only). */
typedef struct {
    tz_slot ln1, k, v, q, scores, probs, ksum, pv_acc, att, res2, ln2, h, y;
} tz_layer_slots;

/* tiny_gpt and tiny_bert_generator. */
typedef struct {
    const int8_t *tok_emb; /* [vocab][C] */
    const int32_t *tok_mult, *tok_shift;
    const int8_t *pos_emb; /* [seq_len][C] */
    const int32_t *pos_mult, *pos_shift;
    int32_t x0_zp;
    const tz_block *blocks; /* num_layers (NULL when 0) */
    tz_layernorm ln_f;
    const int8_t *head_w; /* [vocab][C]; == tok_emb when tied */
    const int32_t *head_bias;
    const float *head_scale;
    const int32_t *exp_lut; /* TZ_EXP_LUT_LEN entries */
    /* memory plan */
    tz_slot x0;
    const tz_layer_slots *slots; /* num_layers (NULL when 0) */
    tz_slot lnf;
} tz_transformer;

/* One recurrent layer (gate rows in PyTorch order: GRU r z n, LSTM i f g o). */
typedef struct {
    int in_dim;
    const int8_t *w_ih; /* [G*H][in_dim] */
    const int32_t *ih_mult, *ih_shift;
    const int8_t *w_hh; /* [G*H][H] */
    const int32_t *hh_mult, *hh_shift;
    const int32_t *bias;    /* Q20, G*H */
    const int32_t *bias_hn; /* GRU: Q20, H; NULL for the LSTM */
    int32_t cell_bits;      /* LSTM cell scale 2^(cell_bits - 15) */
    /* memory plan: W_ih x and W_hh h accumulators */
    tz_slot ih, hh;
} tz_rnn_layer;

/* gru and lstm. */
typedef struct {
    const int8_t *tok_emb; /* [vocab][E] */
    const tz_rnn_layer *layers;
    const int8_t *head_w; /* [vocab][H]; == tok_emb when tied */
    const float *head_scale;
    const float *head_bias;
    const int16_t *sigmoid_lut; /* TZ_ACT_LUT_LEN entries */
    const int16_t *tanh_lut;
    /* memory plan */
    tz_slot x;    /* layer 0 input, int16 [E] */
    tz_slot head; /* head accumulators, int32 [min(64, vocab)] */
} tz_recurrent;

typedef struct tz_model tz_model;
struct tz_model {
    int kind; /* TZ_KIND_* */
    int vocab_size, seq_len, embed_dim, num_heads, num_layers, ffn_dim, hidden_dim;
    int32_t arena_bytes; /* activation arena this model needs */
    int32_t kv_bytes;    /* tiny_gpt KV cache or gru/lstm state bytes */
    const tz_transformer *transformer; /* tiny_gpt, tiny_bert_generator; else NULL */
    const tz_recurrent *recurrent;     /* gru, lstm; else NULL */
};

/* Entries of the softmax exponential table and of the sigmoid/tanh tables. */
#define TZ_EXP_LUT_LEN 1024
#define TZ_ACT_LUT_LEN 513
/* Head outputs per pass of the recurrent head (its int32 scratch in the arena). */
#define TZ_RNN_HEAD_CHUNK 64

/* ------------------------------------------------------------------------------------------
 * API
 */

/* Forgets the context (KV cache / recurrent state). */
void tz_reset(void);

/* Logits (dequantized f32, vocab_size entries, in a static buffer valid until the next call)
 * for the next token after `context` (n ids): exactly textzoo's Int8Lm::next_logits(context).
 * The model reads the last seq_len tokens (tiny_bert_generator left-pads shorter contexts
 * with <pad>; causal models read [<pad>] for an empty context). tiny_gpt keeps its KV cache
 * while the window extends the cached tokens, otherwise it prefills the window; gru/lstm keep
 * their state while the window only grows, otherwise they restart from the zero state.
 * Returns NULL for a token outside the vocabulary, n < 0, or a model larger than the static
 * buffers this runtime was compiled with. */
const float *tz_next_logits(const tz_model *m, const uint16_t *context, int n);

/* tiny_gpt only: appends one token to the cached context and returns its logits, like
 * textzoo-rt's Decoder::step with Decoder::keep = `keep`: one incremental step while the
 * cache has room; when it is full, a re-prefill of the last `keep` tokens (clamped to
 * 1..seq_len-1) plus the new one. keep = seq_len - 1 is the exact sliding window (what
 * tz_next_logits gives); keep = seq_len / 2 amortises the prefill. NULL on bad input. */
const float *tz_gpt_step(const tz_model *m, uint16_t token, int keep);

/* IEEE single-precision square root, correctly rounded, from integer arithmetic only (so no
 * libm is needed and every target gives the same bits as Rust's f32::sqrt). */
float tz_sqrtf(float x);

#endif /* TEXTZOO_RT_H */
