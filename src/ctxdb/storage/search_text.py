"""The words the full-text index holds: one normalisation for documents and queries, both backends.

Both engines index the same text, computed here in Python (``search_documents.terms``), and
do nothing of their own to it: SQLite's FTS5 splits it with ``unicode61``, PostgreSQL with
the ``simple`` configuration, and the text is already lower-case words separated by blanks,
which both split alike. So a query finds the same records on both backends, and the rules
below are written once:

- a word is a run of letters and digits; everything else separates words (``parse_config``,
  ``src/ctxdb/cli.py``, ``retry-after``);
- a word in camelCase or PascalCase is split into its parts (``parseConfig``,
  ``ParseConfig`` and ``HTTPServer`` are ``parse config`` and ``http server``), so an
  identifier is found by each of its words and, as a phrase, by the whole identifier however
  it is written;
- each word is lower-cased and reduced to its stem by the Snowball English stemmer
  (``retried`` and ``retries`` are ``retri``, as ``retry`` is; ``payments`` is ``payment``).

Queries go through the same function (:func:`query_words`), so a query word matches every
form of it that stems alike. The stemmer is imported on first use only: the hook path, which
rarely writes a document, does not pay for it otherwise.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

# A word: a run of letters and digits. Inside it, the boundaries of camelCase parts: a
# lower-case letter or digit then an upper-case one (parse|Config), or an upper-case run then
# an upper-case letter starting a lower-case word (HTTP|Server).
_WORD = re.compile(r"[^\W_]+")
_CAMEL = re.compile(r"(?<=[^\W_A-Z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][^\W\d_A-Z])")
# The same words in ASCII text, found faster: every byte that is not a letter or digit becomes
# a blank (bytes.translate), and the text is split at blanks.
_ASCII_SEPARATORS = bytes(b if b < 128 and chr(b).isalnum() else 0x20 for b in range(256))
# Index text per word of a document (see index_terms); emptied when it grows this large.
_INDEX_TEXT_LIMIT = 65_536
_index_text: dict[str, str] = {}
# Where snowballstemmer's English stemmer is loaded (see _english_stemmer_module).
_PRIVATE_PACKAGE = "ctxdb._snowball_english"
# A word this long is no word a person would type (a hash, base64); it is kept as it is,
# and not stemmed.
_LONGEST_STEMMED = 40


@functools.cache
def _stemmer() -> Callable[[str], str]:
    import importlib.util

    if importlib.util.find_spec("Stemmer") is not None:
        # PyStemmer is installed: snowballstemmer hands its work to it, and so does ctxdb.
        import snowballstemmer  # type: ignore[import-untyped]

        stem: Callable[[str], str] = snowballstemmer.stemmer("english").stemWord
        return stem
    english: Any = _english_stemmer_module()
    return english.EnglishStemmer().stemWord  # type: ignore[no-any-return]


def _english_stemmer_module() -> ModuleType:
    """snowballstemmer's English stemmer, without the package's ``__init__``, which imports
    all of its 36 stemmers: 15 to 90 ms on every prompt that is searched (recall) and every
    process that writes a document, for the one language ctxdb uses. Its modules are loaded
    from the package's folder under a private package name, so the code is the library's
    own and ``import snowballstemmer`` elsewhere is untouched."""
    import importlib
    import importlib.util
    import sys

    spec = importlib.util.find_spec("snowballstemmer")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the snowballstemmer package is not installed")
    if _PRIVATE_PACKAGE not in sys.modules:
        package = ModuleType(_PRIVATE_PACKAGE)
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules[_PRIVATE_PACKAGE] = package
    return importlib.import_module(f"{_PRIVATE_PACKAGE}.english_stemmer")


@functools.lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    """The index's form of one lower-case word (its Snowball English stem)."""
    if len(word) > _LONGEST_STEMMED or not word.isalpha():
        return word
    return _stemmer()(word)


def _parts(word: str) -> Iterator[str]:
    if word.islower() or word.isupper() or word.isdigit():
        yield word.lower()
        return
    for part in _CAMEL.split(word):
        yield part.lower()


def words_of(text: str) -> list[str]:
    """The lower-case words of ``text``, camelCase split, before stemming."""
    return [part for match in _WORD.finditer(text) for part in _parts(match[0]) if part]


def index_terms(text: str) -> str:
    """The text the full-text index holds for a document of ``text``.

    Every write of a search document runs this, so it is made of C-level steps: the words of
    ASCII text found by :data:`_ASCII_SEPARATORS` (a third of the regular expression's cost),
    and each word's index text looked up in :data:`_index_text` by ``map`` (text repeats
    its words: a known word costs one look-up instead of splitting, lower-casing and stemming
    it again); only the words not seen before go through Python code.
    """
    if text.isascii():
        words = text.encode("ascii").translate(_ASCII_SEPARATORS).decode("ascii").split()
    else:
        words = _WORD.findall(text)
    terms: list[str | None] = list(map(_index_text.get, words))
    if None in terms:
        terms = [known if known is not None else _new_index_text(word)
                 for word, known in zip(words, terms, strict=True)]
    return " ".join(terms)  # type: ignore[arg-type]  # no None is left


def _new_index_text(word: str) -> str:
    if len(_index_text) >= _INDEX_TEXT_LIMIT:  # bounded, like the caches it stands for
        _index_text.clear()
    text = _index_text[word] = " ".join(_index_words(word))
    return text


def query_words(words: tuple[str, ...]) -> tuple[str, ...]:
    """The index's words for the words of a query term (a phrase stays a phrase)."""
    return tuple(stem(word) for text in words for word in words_of(text))


def prefix_words(words: tuple[str, ...]) -> tuple[str, ...]:
    """Like :func:`query_words` for a prefix term (``confi*``): the last word is a prefix,
    which is stemmed too, as the index holds stems (``retry*`` looks for ``retri…``), unless
    stemming would lengthen it."""
    found = [word for text in words for word in words_of(text)]
    if not found:
        return ()
    last = found[-1]
    stemmed = stem(last)
    kept = stemmed if len(stemmed) <= len(last) else last
    return (*(stem(word) for word in found[:-1]), kept)


def word_matcher(words: Iterable[str], prefixes: Iterable[str]) -> Callable[[str], bool]:
    """Whether a word of a document is one a query finds, ``words`` and ``prefixes`` being
    the query's words as the index holds them (for the ``**`` marks of snippets)."""
    wanted, starts = frozenset(words), tuple(prefixes)

    def matches(word: str) -> bool:
        for part in _index_words(word):
            if part in wanted or (starts and part.startswith(starts)):
                return True
        return False

    return matches


@functools.lru_cache(maxsize=65_536)
def _index_words(word: str) -> tuple[str, ...]:
    """The index's words for one word of a document (snippets test every word they show)."""
    return tuple(stem(part) for part in _parts(word) if part)
