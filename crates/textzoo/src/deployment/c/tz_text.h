/* Prompt encoding and token decoding on the device: twin of textzoo's TextTokenizer
 * (encode, decode with the word joining rules). Tables come from tokenizer.c.
 *
 * Exact (same ids / same text as the host) for any valid UTF-8 text with word, char and
 * byte-level BPE tokenizers, lowercase included (the emitted tables carry the Unicode
 * classes and lowercase mappings that matter), with these differences:
 *  - NFC / NFKC normalization is not applied on the device (TZ_TOKENIZER_NORMALIZATION):
 *    a prompt that is not already normalized may encode differently (ASCII always is);
 *  - invalid UTF-8 (impossible in a Rust string) counts as one unknown character per byte
 *    (byte-level BPE encodes the byte itself);
 *  - text is a C string, so it cannot hold NUL (use tz_encode_n). */
#ifndef TZ_TEXT_H
#define TZ_TEXT_H

#include <stdint.h>

/* Longest pre-tokenized piece byte-level BPE can merge (static scratch, ~16 bytes each). */
#ifndef TZ_BPE_PIECE_CAP
#define TZ_BPE_PIECE_CAP 256
#endif

#define TZ_TEXT_TOO_MANY_IDS (-1)
#define TZ_TEXT_PIECE_TOO_LONG (-2)

/* Token ids of `text` into ids[0..max_ids). Returns the count, TZ_TEXT_TOO_MANY_IDS when
 * they do not fit, TZ_TEXT_PIECE_TOO_LONG when a BPE piece exceeds TZ_BPE_PIECE_CAP bytes. */
int tz_encode(const char *text, uint16_t *ids, int max_ids);
int tz_encode_n(const char *text, int len, uint16_t *ids, int max_ids);

/* Text of ids[0..n) into out (NUL-terminated; the text itself may hold NUL bytes). Returns
 * its length in bytes, or -1 when it needs more than cap - 1 bytes
 * (n * TZ_TOKEN_TEXT_MAX + 1 always suffices). */
int tz_decode(const uint16_t *ids, int n, char *out, int cap);

/* tz_decode, also giving in *settled how many leading bytes of the text can no longer change
 * when more ids are appended (word spacing depends on the next token; a byte-level BPE text
 * may end inside a UTF-8 character). */
int tz_decode_settled(const uint16_t *ids, int n, char *out, int cap, int *settled);

#endif
