"""Encode text with a textzoo tokenizer.json through HuggingFace's Python `tokenizers`.

Usage: tokenizer_ids.py TOKENIZER_JSON TEXT_FILE
Prints a JSON object: {"ids": [...], "vocab_size": N}. The Rust interop test compares the ids
with textzoo's own encoding of the same text.
"""
import json
import sys

from tokenizers import Tokenizer


def main() -> None:
    tokenizer = Tokenizer.from_file(sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f:
        text = f.read()
    ids = []
    # textzoo encodes line by line (pieces ending at a newline); do the same.
    for line in text.splitlines(keepends=True):
        ids.extend(tokenizer.encode(line, add_special_tokens=False).ids)
    print(json.dumps({"ids": ids, "vocab_size": tokenizer.get_vocab_size(with_added_tokens=True)}))


if __name__ == "__main__":
    main()
