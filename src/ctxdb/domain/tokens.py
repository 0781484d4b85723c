"""A fast token estimator.

ctxdb must count tokens on every write and cannot ship a model tokenizer (no downloads at run
time), so it estimates: one token per 4 ASCII characters plus one token per non-ASCII
character. BPE tokenizers for current coding models spend 3.5–4.5 characters per token on
English prose and source code, and about one token per character on CJK text, so the estimate
leans to the safe side for packing (it rarely undercounts). It is an estimate, not a count:
callers that know the exact number (for example from an API response's ``usage`` field) pass
it as ``token_count`` and it is stored as given.
"""

from __future__ import annotations

ASCII_CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    ascii_chars = len(text.encode("ascii", "ignore"))
    other_chars = len(text) - ascii_chars
    return max(1, -(-ascii_chars // ASCII_CHARS_PER_TOKEN) + other_chars)
