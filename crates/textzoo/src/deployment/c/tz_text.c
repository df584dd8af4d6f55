/* Twin of textzoo's data/tokenizer.rs, fast_encode.rs and detokenize.rs (see tz_text.h). */
#include "tz_text.h"
#include "tokenizer.h"

#include <string.h>

#define TZ_BAD 0x80000000u /* an invalid UTF-8 byte (low 8 bits) in the input */
#define TZ_END 0xffffffffu

/* ---------- UTF-8 and character classes ---------- */

/* Length of the valid UTF-8 character at s (> 0), or minus the length of the maximal invalid
 * prefix there (< 0, as Rust's from_utf8_lossy counts it); *truncated says that prefix was
 * cut by the end of the input (it might still become valid). */
static int tz_utf8_step(const unsigned char *s, int n, uint32_t *cp, int *truncated)
{
    unsigned b0 = s[0], lo = 0x80, hi = 0xbf;
    int need, i;
    uint32_t c;
    *truncated = 0;
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        need = 1;
        c = b0 & 0x1f;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        need = 2;
        c = b0 & 0x0f;
        if (b0 == 0xe0) {
            lo = 0xa0;
        } else if (b0 == 0xed) {
            hi = 0x9f;
        }
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        need = 3;
        c = b0 & 0x07;
        if (b0 == 0xf0) {
            lo = 0x90;
        } else if (b0 == 0xf4) {
            hi = 0x8f;
        }
    } else {
        return -1;
    }
    for (i = 1; i <= need; i++) {
        unsigned b;
        if (i >= n) {
            *truncated = 1;
            return -i;
        }
        b = s[i];
        if (b < lo || b > hi) {
            return -i;
        }
        lo = 0x80;
        hi = 0xbf;
        c = (c << 6) | (b & 0x3f);
    }
    *cp = c;
    return need + 1;
}

static int tz_utf8_put(uint32_t cp, unsigned char *out)
{
    if (cp & TZ_BAD) {
        out[0] = (unsigned char)(cp & 0xff);
        return 1;
    }
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Unicode White_Space (Rust's char::is_whitespace and regex \s). */
static int tz_is_space(uint32_t c)
{
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xa0 || c == 0x1680
        || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f
        || c == 0x205f || c == 0x3000;
}

#define TZ_CLASS_WORD 1u
#define TZ_CLASS_LETTER 2u
#define TZ_CLASS_NUMBER 4u

/* Class bits of a code point: ASCII by rule, the rest from tz_class_ranges. */
static unsigned tz_class(uint32_t c)
{
    int lo = 0, hi = TZ_CLASS_RANGE_COUNT;
    if (c & TZ_BAD) {
        return 0;
    }
    if (c < 0x80) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            return TZ_CLASS_WORD | TZ_CLASS_LETTER;
        }
        if (c >= '0' && c <= '9') {
            return TZ_CLASS_WORD | TZ_CLASS_NUMBER;
        }
        return c == '_' ? TZ_CLASS_WORD : 0;
    }
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (c < tz_class_ranges[mid][0]) {
            hi = mid;
        } else if (c > tz_class_ranges[mid][1]) {
            lo = mid + 1;
        } else {
            return (unsigned)tz_class_ranges[mid][2];
        }
    }
    return 0;
}

/* Lowercase of c as HF's Lowercase normalizer does it (one or two code points). */
static int tz_lower(uint32_t c, uint32_t out[2])
{
    int lo = 0, hi = TZ_LOWER_MAP_COUNT;
    out[0] = c;
    if (!TZ_TOKENIZER_LOWERCASE || (c & TZ_BAD)) {
        return 1;
    }
    if (c < 0x80) {
        if (c >= 'A' && c <= 'Z') {
            out[0] = c + 32;
        }
        return 1;
    }
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (c < tz_lower_map[mid][0]) {
            hi = mid;
        } else if (c > tz_lower_map[mid][0]) {
            lo = mid + 1;
        } else {
            out[0] = tz_lower_map[mid][1];
            out[1] = tz_lower_map[mid][2];
            return out[1] ? 2 : 1;
        }
    }
    return 1;
}

/* The normalized (lowercased) characters of a piece of input, one at a time. */
typedef struct {
    const unsigned char *s;
    int n, pos;
    uint32_t pending; /* second code point of a two-character lowercase */
} tz_cursor;

static uint32_t tz_next(tz_cursor *c)
{
    uint32_t raw = 0, low[2];
    int k, truncated;
    if (c->pending != TZ_END) {
        raw = c->pending;
        c->pending = TZ_END;
        return raw;
    }
    if (c->pos >= c->n) {
        return TZ_END;
    }
    k = tz_utf8_step(c->s + c->pos, c->n - c->pos, &raw, &truncated);
    if (k < 0) {
        return TZ_BAD | c->s[c->pos++];
    }
    c->pos += k;
    if (tz_lower(raw, low) == 2) {
        c->pending = low[1];
    }
    return low[0];
}

/* ---------- output ---------- */

typedef struct {
    uint16_t *ids;
    int n, max, error;
} tz_ids_out;

static void tz_push(tz_ids_out *o, unsigned id)
{
    if (o->n >= o->max) {
        if (!o->error) {
            o->error = TZ_TEXT_TOO_MANY_IDS;
        }
        return;
    }
    o->ids[o->n++] = (uint16_t)id;
}

#if TZ_TOKENIZER_KIND != TZ_KIND_BPE

/* ---------- word and char tokenizers ---------- */

static unsigned char tz_tok[TZ_TOKEN_MAX_BYTES + 4];
static int tz_tok_len, tz_tok_long;

/* The id of the token bytes, by binary search in the sorted index; <unk> (1) if absent. */
static unsigned tz_lookup(const unsigned char *t, int len)
{
    int lo = 0, hi = TZ_TOKENIZER_VOCAB_SIZE;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, id = tz_vocab_sorted[mid], vl = tz_vocab_len[id], cmp;
        cmp = memcmp(tz_vocab_str[id], t, (size_t)(vl < len ? vl : len));
        if (cmp == 0) {
            cmp = vl - len;
        }
        if (cmp == 0) {
            return (unsigned)id;
        }
        if (cmp < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return 1;
}

static void tz_tok_add(uint32_t cp)
{
    unsigned char b[4];
    int k = tz_utf8_put(cp, b);
    if (tz_tok_len + k > TZ_TOKEN_MAX_BYTES) {
        tz_tok_long = 1;
        return;
    }
    memcpy(tz_tok + tz_tok_len, b, (size_t)k);
    tz_tok_len += k;
}

static void tz_tok_flush(tz_ids_out *o)
{
    if (tz_tok_len > 0 || tz_tok_long) {
        tz_push(o, tz_tok_long ? 1u : tz_lookup(tz_tok, tz_tok_len));
    }
    tz_tok_len = 0;
    tz_tok_long = 0;
}

#if TZ_TOKENIZER_KIND == TZ_KIND_WORD
static int tz_is_word_char(uint32_t c)
{
#if TZ_TOKENIZER_WORD_PATTERN == 1
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
#else
    return (tz_class(c) & TZ_CLASS_WORD) != 0;
#endif
}
#endif

/* Normalize, split on whitespace, cut with the word pattern (or every character), look up. */
static void tz_encode_piece(tz_ids_out *o, const unsigned char *s, int n)
{
    tz_cursor c;
    uint32_t cp;
    int in_word = 0;
    c.s = s;
    c.n = n;
    c.pos = 0;
    c.pending = TZ_END;
    tz_tok_len = 0;
    tz_tok_long = 0;
    while ((cp = tz_next(&c)) != TZ_END) {
#if TZ_TOKENIZER_KIND == TZ_KIND_CHAR
        tz_tok_add(cp);
        tz_tok_flush(o);
        (void)in_word;
#else
        if (!(cp & TZ_BAD) && tz_is_space(cp)) {
            tz_tok_flush(o);
            in_word = 0;
        } else if (tz_is_word_char(cp)) {
            if (!in_word) {
                tz_tok_flush(o);
            }
            tz_tok_add(cp);
            in_word = 1;
        } else {
            tz_tok_flush(o);
            tz_tok_add(cp);
            tz_tok_flush(o);
            in_word = 0;
        }
#endif
    }
    tz_tok_flush(o);
}

#else

/* ---------- byte-level BPE ---------- */

static int tz_is_letter(uint32_t c)
{
    return c != TZ_END && (tz_class(c) & TZ_CLASS_LETTER) != 0;
}

static int tz_is_number(uint32_t c)
{
    return c != TZ_END && (tz_class(c) & TZ_CLASS_NUMBER) != 0;
}

static int tz_is_other(uint32_t c)
{
    return c != TZ_END && ((c & TZ_BAD) || !tz_is_space(c)) && !tz_is_letter(c)
        && !tz_is_number(c);
}

static int tz_is_ws(uint32_t c)
{
    return c != TZ_END && !(c & TZ_BAD) && tz_is_space(c);
}

/* The k-th next normalized character (TZ_END past the end). */
static uint32_t tz_peek(const tz_cursor *c, int k)
{
    tz_cursor t = *c;
    uint32_t cp = TZ_END;
    int i;
    for (i = 0; i <= k; i++) {
        cp = tz_next(&t);
        if (cp == TZ_END) {
            break;
        }
    }
    return cp;
}

/* How many characters from `from` on satisfy `is`. */
static int tz_run(const tz_cursor *c, int from, int (*is)(uint32_t))
{
    tz_cursor t = *c;
    int i, k = 0;
    for (i = 0; i < from; i++) {
        (void)tz_next(&t);
    }
    while (is(tz_next(&t))) {
        k++;
    }
    return k;
}

/* Length in characters of the next piece of GPT-2's pattern
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static int tz_piece_len(const tz_cursor *c)
{
    int (*classes[3])(uint32_t);
    uint32_t c0 = tz_peek(c, 0), c1;
    int i, ws;
    classes[0] = tz_is_letter;
    classes[1] = tz_is_number;
    classes[2] = tz_is_other;
    if (c0 == '\'') {
        uint32_t c2;
        c1 = tz_peek(c, 1);
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
            return 2;
        }
        c2 = tz_peek(c, 2);
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
            return 3;
        }
    }
    for (i = 0; i < 3; i++) {
        if (c0 == ' ' && classes[i](tz_peek(c, 1))) {
            return 1 + tz_run(c, 1, classes[i]);
        }
        if (classes[i](c0)) {
            return tz_run(c, 0, classes[i]);
        }
    }
    ws = tz_run(c, 0, tz_is_ws);
    if (tz_peek(c, ws) == TZ_END || ws < 2) {
        return ws;
    }
    return ws - 1;
}

typedef struct {
    uint16_t c;
    int16_t prev, next;
    uint8_t alive;
} tz_symbol;

typedef struct {
    uint16_t rank, pos, id;
} tz_merge;

static unsigned char tz_piece[TZ_BPE_PIECE_CAP];
static tz_symbol tz_syms[TZ_BPE_PIECE_CAP];
static tz_merge tz_heap[3 * TZ_BPE_PIECE_CAP];
static int tz_heap_n;

static int tz_merge_less(const tz_merge *a, const tz_merge *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void tz_heap_push(uint16_t rank, int pos, uint16_t id)
{
    int i = tz_heap_n++;
    tz_heap[i].rank = rank;
    tz_heap[i].pos = (uint16_t)pos;
    tz_heap[i].id = id;
    while (i > 0) {
        int parent = (i - 1) / 2;
        tz_merge t;
        if (!tz_merge_less(&tz_heap[i], &tz_heap[parent])) {
            break;
        }
        t = tz_heap[i];
        tz_heap[i] = tz_heap[parent];
        tz_heap[parent] = t;
        i = parent;
    }
}

static tz_merge tz_heap_pop(void)
{
    tz_merge top = tz_heap[0];
    int i = 0;
    tz_heap[0] = tz_heap[--tz_heap_n];
    for (;;) {
        int l = 2 * i + 1, best = i;
        tz_merge t;
        if (l < tz_heap_n && tz_merge_less(&tz_heap[l], &tz_heap[best])) {
            best = l;
        }
        if (l + 1 < tz_heap_n && tz_merge_less(&tz_heap[l + 1], &tz_heap[best])) {
            best = l + 1;
        }
        if (best == i) {
            break;
        }
        t = tz_heap[i];
        tz_heap[i] = tz_heap[best];
        tz_heap[best] = t;
        i = best;
    }
    return top;
}

/* The merge of (left, right): its rank and merged id; 0 when there is none. */
static int tz_find_merge(uint16_t left, uint16_t right, uint16_t *rank, uint16_t *id)
{
    uint32_t key = ((uint32_t)left << 16) | right;
    int lo = 0, hi = TZ_BPE_MERGE_COUNT;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (tz_bpe_merge_key[mid] < key) {
            lo = mid + 1;
        } else if (tz_bpe_merge_key[mid] > key) {
            hi = mid;
        } else {
            *rank = tz_bpe_merge_rank[mid];
            *id = tz_bpe_merge_id[mid];
            return 1;
        }
    }
    return 0;
}

/* HF's BPE Word::merge_all, step for step: lowest (rank, position) first, stale entries
 * skipped by the same test. */
static void tz_bpe_word(tz_ids_out *o, int nbytes)
{
    int n = 0, i;
    uint16_t rank, id;
    for (i = 0; i < nbytes; i++) {
        uint16_t c = tz_byte_ids[tz_piece[i]];
        if (c == 0xffff) {
            continue;
        }
        tz_syms[n].c = c;
        tz_syms[n].prev = (int16_t)(n - 1);
        tz_syms[n].next = -1;
        tz_syms[n].alive = 1;
        if (n > 0) {
            tz_syms[n - 1].next = (int16_t)n;
        }
        n++;
    }
    tz_heap_n = 0;
    for (i = 0; i + 1 < n; i++) {
        if (tz_find_merge(tz_syms[i].c, tz_syms[i + 1].c, &rank, &id)) {
            tz_heap_push(rank, i, id);
        }
    }
    while (tz_heap_n > 0) {
        tz_merge top = tz_heap_pop();
        tz_symbol *cur = &tz_syms[top.pos];
        int next;
        if (!cur->alive || cur->next == -1) {
            continue;
        }
        next = cur->next;
        if (!tz_find_merge(cur->c, tz_syms[next].c, &rank, &id) || id != top.id) {
            continue;
        }
        cur->c = top.id;
        cur->next = tz_syms[next].next;
        tz_syms[next].alive = 0;
        if (cur->next >= 0) {
            tz_syms[cur->next].prev = (int16_t)top.pos;
        }
        if (cur->prev >= 0 && tz_find_merge(tz_syms[cur->prev].c, cur->c, &rank, &id)) {
            tz_heap_push(rank, cur->prev, id);
        }
        if (cur->next >= 0 && tz_find_merge(cur->c, tz_syms[cur->next].c, &rank, &id)) {
            tz_heap_push(rank, top.pos, id);
        }
    }
    for (i = 0; i < n; i++) {
        if (tz_syms[i].alive) {
            tz_push(o, tz_syms[i].c);
        }
    }
}

/* Normalize, cut with GPT-2's pattern, merge each piece's bytes. */
static void tz_encode_piece(tz_ids_out *o, const unsigned char *s, int n)
{
    tz_cursor c;
    c.s = s;
    c.n = n;
    c.pos = 0;
    c.pending = TZ_END;
    while (o->error == 0 && tz_peek(&c, 0) != TZ_END) {
        int len = tz_piece_len(&c), nbytes = 0, i;
        for (i = 0; i < len; i++) {
            unsigned char b[4];
            int k = tz_utf8_put(tz_next(&c), b);
            if (nbytes + k > TZ_BPE_PIECE_CAP) {
                o->error = TZ_TEXT_PIECE_TOO_LONG;
                return;
            }
            memcpy(tz_piece + nbytes, b, (size_t)k);
            nbytes += k;
        }
        tz_bpe_word(o, nbytes);
    }
}

#endif

/* Special tokens are matched in the raw text first (as HF does), the rest is encoded. */
int tz_encode_n(const char *text, int len, uint16_t *ids, int max_ids)
{
    const unsigned char *s = (const unsigned char *)text;
    tz_ids_out o;
    int start = 0, i = 0;
    o.ids = ids;
    o.n = 0;
    o.max = max_ids;
    o.error = 0;
    (void)tz_is_space; /* unused by some tokenizer kinds */
    (void)tz_class;
    while (i < len) {
        int special = -1;
        if (s[i] == '<' && i + 5 <= len) {
            if (memcmp(s + i, "<pad>", 5) == 0) {
                special = 0;
            } else if (memcmp(s + i, "<unk>", 5) == 0) {
                special = 1;
            }
        }
        if (special < 0) {
            i++;
            continue;
        }
        tz_encode_piece(&o, s + start, i - start);
        tz_push(&o, (unsigned)special);
        i += 5;
        start = i;
    }
    tz_encode_piece(&o, s + start, len - start);
    return o.error ? o.error : o.n;
}

int tz_encode(const char *text, uint16_t *ids, int max_ids)
{
    return tz_encode_n(text, (int)strlen(text), ids, max_ids);
}

/* ---------- decoding ---------- */

typedef struct {
    char *out;
    int len, cap, overflow;
} tz_text_out;

static void tz_put(tz_text_out *t, const void *src, int k)
{
    if (t->overflow || t->len + k > t->cap - 1) {
        t->overflow = 1;
        return;
    }
    memcpy(t->out + t->len, src, (size_t)k);
    t->len += k;
}

#if TZ_TOKENIZER_KIND == TZ_KIND_WORD
static unsigned tz_flags(const uint16_t *ids, int n, int i)
{
    return (i < 0 || i >= n) ? 0u
        : tz_token_flags[ids[i] < TZ_TOKENIZER_VOCAB_SIZE ? ids[i] : 1];
}

/* detokenize.rs needs_space: joiners stick to two word neighbours. */
static int tz_needs_space(const uint16_t *ids, int n, int i)
{
    unsigned before_prev = tz_flags(ids, n, i - 2), prev = tz_flags(ids, n, i - 1);
    unsigned tok = tz_flags(ids, n, i), next = tz_flags(ids, n, i + 1);
    if ((tok & 2u) || (prev & 4u)) {
        return 0;
    }
    if ((tok & 8u) && (prev & 1u) && (next & 1u)) {
        return 0;
    }
    if ((prev & 8u) && (before_prev & 1u) && (tok & 1u)) {
        return 0;
    }
    return 1;
}
#endif

#if TZ_TOKENIZER_KIND == TZ_KIND_BPE
/* The next up-to-4 bytes of the concatenated tokens from (*id, *off). */
static int tz_bpe_peek(const uint16_t *ids, int n, int id, int off, unsigned char b[4])
{
    int k = 0;
    while (k < 4 && id < n) {
        unsigned t = ids[id];
        if (t >= TZ_TOKENIZER_VOCAB_SIZE || off >= tz_vocab_len[t]) {
            id++;
            off = 0;
            continue;
        }
        b[k++] = (unsigned char)tz_vocab_str[t][off++];
    }
    return k;
}

static void tz_bpe_skip(const uint16_t *ids, int n, int *id, int *off, int k)
{
    while (k > 0 && *id < n) {
        unsigned t = ids[*id];
        if (t >= TZ_TOKENIZER_VOCAB_SIZE || *off >= tz_vocab_len[t]) {
            (*id)++;
            *off = 0;
            continue;
        }
        (*off)++;
        k--;
    }
}
#endif

int tz_decode_settled(const uint16_t *ids, int n, char *out, int cap, int *settled)
{
    tz_text_out t;
    int i;
    t.out = out;
    t.len = 0;
    t.cap = cap;
    t.overflow = cap <= 0;
    *settled = 0;
#if TZ_TOKENIZER_KIND == TZ_KIND_BPE
    {
        /* Bytes concatenated, then String::from_utf8_lossy (maximal invalid prefixes). */
        int id = 0, off = 0;
        (void)i;
        for (;;) {
            unsigned char b[4];
            uint32_t cp;
            int avail = tz_bpe_peek(ids, n, id, off, b), k, truncated;
            if (avail == 0) {
                *settled = t.len;
                break;
            }
            k = tz_utf8_step(b, avail, &cp, &truncated);
            if (k > 0) {
                tz_put(&t, b, k);
            } else {
                if (truncated) {
                    *settled = t.len;
                }
                tz_put(&t, "\xef\xbf\xbd", 3);
                k = -k;
                if (truncated) {
                    break;
                }
            }
            tz_bpe_skip(ids, n, &id, &off, k);
        }
    }
#else
    for (i = 0; i < n; i++) {
        unsigned id = ids[i] < TZ_TOKENIZER_VOCAB_SIZE ? ids[i] : 1u;
#if TZ_TOKENIZER_KIND == TZ_KIND_WORD
        if (i > 0 && tz_needs_space(ids, n, i)) {
            tz_put(&t, " ", 1);
        }
        if (i == n - 1) {
            /* Its spacing waits for the next token. */
            *settled = t.len;
        }
#endif
        tz_put(&t, tz_vocab_str[id], tz_vocab_len[id]);
    }
#if TZ_TOKENIZER_KIND == TZ_KIND_WORD
    if (n > 0) {
        /* The space before the last token is not settled either. */
        if (*settled > 0 && n > 1 && tz_needs_space(ids, n, n - 1)) {
            *settled -= 1;
        }
    }
#else
    *settled = t.len;
#endif
#endif
    if (cap > 0) {
        out[t.overflow ? 0 : t.len] = '\0';
    }
    if (t.overflow) {
        *settled = 0;
        return -1;
    }
    return t.len;
}

int tz_decode(const uint16_t *ids, int n, char *out, int cap)
{
    int settled;
    return tz_decode_settled(ids, n, out, cap, &settled);
}
