/* textzoo example application: generate text from a prompt with the int8 model.
 *
 * Prints the prompt as typed, then the continuation exactly as `textzoo
 * operation_mode=prediction` writes it to generated.txt (decode(all ids) minus the decoded
 * prompt, or " " + decode(new ids) when the prompt does not decode to a prefix), then "\n".
 * Text is streamed as soon as it is settled (later tokens cannot change it).
 *
 * Settings come from app_config.h and can be overridden with -D (e.g. -DTZ_SEED=7); a host
 * build (-DTZ_HOST) also takes them from the command line:
 *   --prompt TEXT --max-tokens N --seed S --greedy|--sample --temperature T --top-k K
 *   --top-p P --allow-special --repetition-penalty R --no-repeat-ngram-size N --trace
 * --trace (or -DTZ_TRACE) prints `prompt_ids <id>...` then, per step,
 * `step <i> token <id> logits <f32 bits as 8 hex digits>...` instead of the text.
 * TZ_PROMPT_IDS / TZ_PROMPT_ID_COUNT, when defined (next to TZ_PROMPT, in the same #ifndef),
 * are the host tokenizer's ids for TZ_PROMPT and are used instead of encoding it here.
 *
 * On a real MCU board (neither TZ_HOST nor TZ_QEMU) the DWT cycle counter is read around the
 * prefill and each decoded token, and one line follows the text:
 *   timing: prefill_cycles=P cycles_per_token=C ms_per_token=M tokens_per_s=T tokens=N sysclk_hz=H
 * (forward passes only, like the emulated instruction counts; ms and tokens/s at TZ_SYSCLK_HZ;
 * `textzoo benchmarking.board_log=FILE` reads it back). Under QEMU the counter does not run and
 * nothing is printed, so the text stays what generated.txt holds.
 *
 * Entry points (textzoo_app.h): main() below for the standalone firmware and the host; a
 * CubeMX project compiles this file as Middlewares/Third_Party/textzoo/Src/textzoo_app.c
 * (with TZ_APP_NO_MAIN) and calls MX_TEXTZOO_Init() then MX_TEXTZOO_Process() from its own
 * main(), after its own SystemClock_Config(). */
#include <stdint.h>
#include <string.h>

#include "app_config.h"
#include "model.h"
#include "platform.h"
#include "textzoo_rt.h"
#include "tokenizer.h"
#include "tz_sample.h"
#include "tz_text.h"
#include "textzoo_app.h"

#ifdef TZ_HOST
#include <stdio.h>
#include <stdlib.h>
#endif

#ifndef TZ_PROMPT
#define TZ_PROMPT "to be or not"
#endif
#ifndef TZ_MAX_TOKENS
#define TZ_MAX_TOKENS 50
#endif
#ifndef TZ_GREEDY
#define TZ_GREEDY 1
#endif
#ifndef TZ_TEMPERATURE
#define TZ_TEMPERATURE 1.0
#endif
#ifndef TZ_TOP_K
#define TZ_TOP_K 0
#endif
#ifndef TZ_TOP_P
#define TZ_TOP_P 1.0
#endif
#ifndef TZ_SEED
#define TZ_SEED 42
#endif
#ifndef TZ_ALLOW_SPECIAL
#define TZ_ALLOW_SPECIAL 0
#endif
#ifndef TZ_REPETITION_PENALTY
#define TZ_REPETITION_PENALTY 1.0
#endif
#ifndef TZ_NO_REPEAT_NGRAM_SIZE
#define TZ_NO_REPEAT_NGRAM_SIZE 0
#endif
/* Most prompt tokens, and most generated tokens, the static buffers hold. */
#ifndef TZ_PROMPT_CAP
#ifdef TZ_HOST
#define TZ_PROMPT_CAP 1024
#else
#define TZ_PROMPT_CAP 128
#endif
#endif
#ifndef TZ_GEN_CAP
#if defined(TZ_HOST) && TZ_MAX_TOKENS < 1024
#define TZ_GEN_CAP 1024
#else
#define TZ_GEN_CAP TZ_MAX_TOKENS
#endif
#endif
#define TZ_CONTEXT_CAP (TZ_PROMPT_CAP + TZ_GEN_CAP)
#define TZ_TEXT_CAP (TZ_CONTEXT_CAP * TZ_TOKEN_TEXT_MAX + 2)

static uint16_t tz_context[TZ_CONTEXT_CAP];
static char tz_whole[TZ_TEXT_CAP];  /* decode(all ids) */
static char tz_prompt_text[TZ_TEXT_CAP]; /* decode(prompt ids) */
static char tz_fresh[TZ_TEXT_CAP];  /* decode(new ids), for the " " + ... case */

#if defined(TZ_PROMPT_IDS) && defined(TZ_PROMPT_ID_COUNT) && TZ_PROMPT_ID_COUNT > 0
static const uint16_t tz_default_prompt_ids[TZ_PROMPT_ID_COUNT] = {TZ_PROMPT_IDS};
#define TZ_HAVE_PROMPT_IDS 1
#endif

static void tz_print(const char *s)
{
    tz_platform_write(s, (int)strlen(s));
}

static void tz_print_u64(uint64_t v)
{
    char b[21];
    int i = 20;
    b[i] = '\0';
    do {
        b[--i] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v > 0);
    tz_print(b + i);
}

#define TZ_NO_NUMBER ((uint64_t)-1)

#ifdef TZ_BENCH
/* -DTZ_BENCH (textzoo's benchmarking): the time of each tz_next_logits call, printed after
 * the text as `bench_ns <call> <ns>` lines (call 0 is the prompt's prefill), and on Linux
 * the peak resident memory as `bench_rss_kb <kB>`. */
static uint64_t tz_bench_ns[TZ_GEN_CAP + 1];

static void tz_bench_report(int calls)
{
    int i;
    for (i = 0; i < calls; i++) {
        tz_print("bench_ns ");
        tz_print_u64((uint64_t)i);
        tz_print(" ");
        tz_print_u64(tz_bench_ns[i]);
        tz_print("\n");
    }
#ifdef TZ_HOST
    {
        char line[128];
        FILE *f = fopen("/proc/self/status", "r");
        while (f != NULL && fgets(line, (int)sizeof line, f) != NULL) {
            if (strncmp(line, "VmHWM:", 6) == 0) {
                tz_print("bench_rss_kb ");
                tz_print_u64((uint64_t)strtoull(line + 6, NULL, 10));
                tz_print("\n");
            }
        }
        if (f != NULL) {
            fclose(f);
        }
    }
#endif
}
#endif

#if !defined(TZ_HOST) && !defined(TZ_QEMU) && !defined(TZ_NO_TIMING) && !defined(TZ_TIMING)
/* On-board timing from the DWT cycle counter (tz_platform_ticks on the UART platform);
 * -DTZ_TIMING forces it elsewhere (the host's ticks are nanoseconds: textzoo's tests read the
 * line back with TZ_SYSCLK_HZ = 10^9). */
#define TZ_TIMING 1
#endif
#ifdef TZ_TIMING
#ifndef TZ_SYSCLK_HZ
#error "app.c: TZ_SYSCLK_HZ (app_config.h) is needed for the on-board timing (or -DTZ_NO_TIMING)"
#endif

/* v / 10^decimals as text with that many decimals, e.g. (1018, 3) -> "1.018". */
static void tz_print_fixed(uint64_t v, int decimals)
{
    uint64_t scale = 1;
    int i;
    for (i = 0; i < decimals; i++) scale *= 10u;
    tz_print_u64(v / scale);
    if (decimals > 0) {
        char frac[20];
        uint64_t f = v % scale;
        for (i = decimals - 1; i >= 0; i--) {
            frac[i] = (char)('0' + (int)(f % 10u));
            f /= 10u;
        }
        frac[decimals] = '\0';
        tz_print(".");
        tz_print(frac);
    }
}

/* The timing line (see the top of this file); nothing when the counter did not run. */
static void tz_timing_report(uint64_t prefill, uint64_t decode, int tokens)
{
    uint64_t hz = (uint64_t)(TZ_SYSCLK_HZ), per;
    if (tokens <= 0 || decode == 0u || hz == 0u) return;
    per = (decode + (uint64_t)tokens / 2u) / (uint64_t)tokens;
    if (per == 0u) return;
    tz_print("timing: prefill_cycles=");
    tz_print_u64(prefill);
    tz_print(" cycles_per_token=");
    tz_print_u64(per);
    tz_print(" ms_per_token=");
    tz_print_fixed((per * 1000000u + hz / 2u) / hz, 3);
    tz_print(" tokens_per_s=");
    tz_print_fixed((hz * 10u + per / 2u) / per, 1);
    tz_print(" tokens=");
    tz_print_u64((uint64_t)tokens);
    tz_print(" sysclk_hz=");
    tz_print_u64(hz);
    tz_print("\n");
}
#endif

static void tz_fail(const char *message, uint64_t number, const char *rest)
{
    tz_print("textzoo: ");
    tz_print(message);
    if (number != TZ_NO_NUMBER) {
        tz_print_u64(number);
    }
    tz_print(rest);
    tz_print("\n");
    tz_platform_exit(2);
}

static void tz_trace_logits(int step, int token, const float *logits)
{
    static const char digits[] = "0123456789abcdef";
    char chunk[9 * 64];
    int i, k = 0;
    tz_print("step ");
    tz_print_u64((uint64_t)step);
    tz_print(" token ");
    tz_print_u64((uint64_t)token);
    tz_print(" logits");
    for (i = 0; i < TZ_VOCAB_SIZE; i++) {
        uint32_t bits;
        int d;
        memcpy(&bits, &logits[i], sizeof bits);
        chunk[k++] = ' ';
        for (d = 7; d >= 0; d--) {
            chunk[k++] = digits[(bits >> (4 * d)) & 15u];
        }
        if (k == (int)sizeof chunk) {
            tz_platform_write(chunk, k);
            k = 0;
        }
    }
    tz_platform_write(chunk, k);
    tz_print("\n");
}

/* The continuation so far (prediction::continuation) and how much of it is settled:
 * *text points at it, *len is its length. */
static int tz_continuation(int n, int prompt_n, int prompt_len, const char **text, int *len)
{
    int settled = 0, whole_settled = 0, whole_len;
    whole_len = tz_decode_settled(tz_context, n, tz_whole, TZ_TEXT_CAP, &whole_settled);
    if (whole_len < 0) {
        tz_fail("decoded text exceeds its buffer of ", (uint64_t)TZ_TEXT_CAP, " bytes");
    }
    /* Until the whole text's settled part covers the decoded prompt, nothing is decided. */
    if (whole_len >= prompt_len && memcmp(tz_whole, tz_prompt_text, (size_t)prompt_len) == 0) {
        *text = tz_whole + prompt_len;
        *len = whole_len - prompt_len;
        settled = whole_settled >= prompt_len ? whole_settled - prompt_len : -1;
    } else {
        int fresh_settled = 0;
        int fresh_len = tz_decode_settled(tz_context + prompt_n, n - prompt_n, tz_fresh + 1,
                                          TZ_TEXT_CAP - 1, &fresh_settled);
        if (fresh_len < 0) {
            tz_fail("decoded text exceeds its buffer of ", (uint64_t)TZ_TEXT_CAP, " bytes");
        }
        tz_fresh[0] = ' ';
        *text = tz_fresh;
        *len = fresh_len + 1;
        settled = whole_settled >= prompt_len ? fresh_settled + 1 : -1;
    }
    return settled; /* -1: not even the choice between the two forms is settled */
}

#ifdef TZ_HOST
static const char *tz_arg(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        tz_print("textzoo: ");
        tz_print(argv[*i]);
        tz_print(" needs a value\n");
        tz_platform_exit(2);
    }
    *i += 1;
    return argv[*i];
}
#endif

int tz_app_run(int argc, char **argv)
{
    const char *prompt = TZ_PROMPT;
    int prompt_bytes = (int)sizeof(TZ_PROMPT) - 1;
    int use_prompt_ids = 0;
    int max_tokens = TZ_MAX_TOKENS, trace = 0;
    uint64_t seed = (uint64_t)(TZ_SEED);
    tz_sample_cfg cfg;
    tz_rng rng;
    int n, prompt_n, prompt_len, printed = 0, step;
#ifdef TZ_TIMING
    uint64_t prefill_cycles = 0, decode_cycles = 0;
#endif

#ifndef TZ_HOST
    (void)argc;
    (void)argv;
#endif
    cfg.greedy = TZ_GREEDY;
    cfg.temperature = (float)(TZ_TEMPERATURE);
    cfg.top_k = TZ_TOP_K;
    cfg.top_p = (float)(TZ_TOP_P);
    cfg.allow_special = TZ_ALLOW_SPECIAL;
    cfg.repetition_penalty = (float)(TZ_REPETITION_PENALTY);
    cfg.no_repeat_ngram_size = TZ_NO_REPEAT_NGRAM_SIZE;
#ifdef TZ_TRACE
    trace = 1;
#endif
#ifdef TZ_HAVE_PROMPT_IDS
    use_prompt_ids = 1;
#endif
#ifdef TZ_HOST
    {
        int i;
        for (i = 1; i < argc; i++) {
            const char *a = argv[i];
            if (strcmp(a, "--prompt") == 0) {
                prompt = tz_arg(argc, argv, &i);
                prompt_bytes = (int)strlen(prompt);
                use_prompt_ids = 0;
            } else if (strcmp(a, "--max-tokens") == 0) {
                max_tokens = atoi(tz_arg(argc, argv, &i));
            } else if (strcmp(a, "--seed") == 0) {
                seed = (uint64_t)strtoull(tz_arg(argc, argv, &i), NULL, 10);
            } else if (strcmp(a, "--greedy") == 0) {
                cfg.greedy = 1;
            } else if (strcmp(a, "--sample") == 0) {
                cfg.greedy = 0;
            } else if (strcmp(a, "--temperature") == 0) {
                cfg.temperature = (float)strtod(tz_arg(argc, argv, &i), NULL);
            } else if (strcmp(a, "--top-k") == 0) {
                cfg.top_k = atoi(tz_arg(argc, argv, &i));
            } else if (strcmp(a, "--top-p") == 0) {
                cfg.top_p = (float)strtod(tz_arg(argc, argv, &i), NULL);
            } else if (strcmp(a, "--allow-special") == 0) {
                cfg.allow_special = 1;
            } else if (strcmp(a, "--repetition-penalty") == 0) {
                cfg.repetition_penalty = (float)strtod(tz_arg(argc, argv, &i), NULL);
            } else if (strcmp(a, "--no-repeat-ngram-size") == 0) {
                cfg.no_repeat_ngram_size = atoi(tz_arg(argc, argv, &i));
            } else if (strcmp(a, "--trace") == 0) {
                trace = 1;
            } else {
                tz_print("textzoo: unknown option ");
                tz_print(a);
                tz_print(" (--prompt --max-tokens --seed --greedy --sample --temperature"
                         " --top-k --top-p --allow-special --repetition-penalty"
                         " --no-repeat-ngram-size --trace)\n");
                tz_platform_exit(2);
            }
        }
    }
#endif
    if (max_tokens < 0 || max_tokens > TZ_GEN_CAP) {
        tz_fail("max tokens must be between 0 and ", (uint64_t)TZ_GEN_CAP,
                " (build with a larger -DTZ_GEN_CAP)");
    }
    if (!(cfg.temperature > 0.0f) || !(cfg.top_p > 0.0f && cfg.top_p <= 1.0f) || cfg.top_k < 0) {
        tz_fail("needs temperature > 0, 0 < top-p <= 1 and top-k >= 0", TZ_NO_NUMBER, "");
    }
    if (!(cfg.repetition_penalty > 0.0f && cfg.repetition_penalty <= 10.0f)
        || cfg.no_repeat_ngram_size < 0) {
        tz_fail("needs 0 < repetition penalty <= 10 and no-repeat n-gram size >= 0",
                TZ_NO_NUMBER, "");
    }

#ifdef TZ_HAVE_PROMPT_IDS
    if (use_prompt_ids) {
        if (TZ_PROMPT_ID_COUNT > TZ_PROMPT_CAP) {
            tz_fail("the prompt has more tokens than TZ_PROMPT_CAP = ", (uint64_t)TZ_PROMPT_CAP,
                    "; shorten it or build with a larger -DTZ_PROMPT_CAP");
        }
        memcpy(tz_context, tz_default_prompt_ids, sizeof tz_default_prompt_ids);
        prompt_n = TZ_PROMPT_ID_COUNT;
    } else
#endif
    {
        prompt_n = tz_encode_n(prompt, prompt_bytes, tz_context, TZ_PROMPT_CAP);
        if (prompt_n == TZ_TEXT_PIECE_TOO_LONG) {
            tz_fail("a word of the prompt is longer than TZ_BPE_PIECE_CAP = ",
                    (uint64_t)TZ_BPE_PIECE_CAP, " bytes; build with a larger -DTZ_BPE_PIECE_CAP");
        }
        if (prompt_n < 0) {
            tz_fail("the prompt has more tokens than TZ_PROMPT_CAP = ", (uint64_t)TZ_PROMPT_CAP,
                    "; shorten it or build with a larger -DTZ_PROMPT_CAP");
        }
    }
    (void)use_prompt_ids;
    n = prompt_n;
    prompt_len = tz_decode(tz_context, prompt_n, tz_prompt_text, TZ_TEXT_CAP);
    if (prompt_len < 0) {
        tz_fail("decoded prompt exceeds its buffer of ", (uint64_t)TZ_TEXT_CAP, " bytes");
    }
    tz_rng_init(&rng, seed);
    tz_reset();

    if (trace) {
        int i;
        tz_print("prompt_ids");
        for (i = 0; i < prompt_n; i++) {
            tz_print(" ");
            tz_print_u64(tz_context[i]);
        }
        tz_print("\n");
    } else {
        tz_platform_write(prompt, prompt_bytes);
    }
    for (step = 0; step < max_tokens; step++) {
        const float *logits;
        int token;
#if defined(TZ_BENCH) || defined(TZ_TIMING)
        uint64_t started = tz_platform_ticks();
#endif
        /* The instruction counter (make count-qemu) records these two calls: the forward
         * pass alone lies between them. */
        tz_platform_mark();
        logits = tz_next_logits(&TZ_MODEL, tz_context, n);
        tz_platform_mark();
#ifdef TZ_BENCH
        tz_bench_ns[step] = tz_platform_ticks() - started;
#endif
#ifdef TZ_TIMING
        if (step == 0) {
            prefill_cycles = tz_platform_ticks() - started;
        } else {
            decode_cycles += tz_platform_ticks() - started;
        }
#endif
        token = tz_sample_pick_in_context(logits, TZ_VOCAB_SIZE, &cfg, &rng, tz_context, n);
        if (token < 0) {
            tz_fail("the sampler's scratch is smaller than the vocabulary: ", (uint64_t)TZ_VOCAB_SIZE, "");
        }
        tz_context[n++] = (uint16_t)token;
        if (trace) {
            tz_trace_logits(step, token, logits);
        } else {
            const char *text;
            int len, settled = tz_continuation(n, prompt_n, prompt_len, &text, &len);
            if (settled > printed) {
                tz_platform_write(text + printed, settled - printed);
                printed = settled;
            }
        }
    }
    if (!trace) {
        const char *text;
        int len;
        (void)tz_continuation(n, prompt_n, prompt_len, &text, &len);
        tz_platform_write(text + printed, len - printed);
        tz_print("\n");
    }
#ifdef TZ_BENCH
    tz_bench_report(max_tokens);
#endif
#ifdef TZ_TIMING
    if (!trace) tz_timing_report(prefill_cycles, decode_cycles, max_tokens - 1);
#endif
    return 0;
}

void MX_TEXTZOO_Init(void)
{
    tz_platform_init();
}

void MX_TEXTZOO_Process(void)
{
    (void)tz_app_run(0, NULL);
}

#ifndef TZ_APP_NO_MAIN
int main(int argc, char **argv)
{
    int code;
    tz_platform_init();
    code = tz_app_run(argc, argv);
    tz_platform_exit(code);
    return code;
}
#endif
