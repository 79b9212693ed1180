"""Word-vector evaluation: word-pair similarity (Spearman) and analogies (3CosAdd accuracy).

Follows the protocol of gensim's ``KeyedVectors.evaluate_word_pairs`` and
``evaluate_word_analogies`` (Mikolov et al., "Efficient Estimation of Word Representations
in Vector Space", 2013, for analogies; Finkelstein et al. 2002 WordSim353 and Hill et al.
2015 SimLex-999 for similarity), so figures are comparable with gensim's:

- matching is case-insensitive; when several keys differ only by case, the first (the most
  frequent, for trainer output ordered by frequency) is used;
- a pair or question with a word outside the vocabulary (for analogies: outside the
  ``restrict_vocab`` first keys) is skipped, never counted as wrong; the reports give the
  coverage and :func:`word_similarity` / :func:`word_analogy` log it at INFO level;
- an analogy ``a : b :: c : ?`` is answered by the key nearest (cosine) to ``b - a + c``
  among the ``restrict_vocab`` first keys, excluding ``a``, ``b`` and ``c``.

The three standard sets ship inside gensim (``gensim/test/test_data``);
:func:`bundled_eval_path` finds them without downloading anything.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

from .._files import text_lines
from .._knn import knn_search, unit_rows
from .._validation import check_int
from ..embeddings import check_embeddings
from ..errors import InputError, ParseError

log = logging.getLogger(__name__)

__all__ = ["word_similarity", "word_analogy", "similarity_report", "analogy_report", "bundled_eval_path"]

_BUNDLED = {
    "wordsim353": "wordsim353.tsv",
    "ws353": "wordsim353.tsv",
    "simlex999": "simlex999.txt",
    "simlex": "simlex999.txt",
    "questions-words": "questions-words.txt",
    "analogy": "questions-words.txt",
    "google": "questions-words.txt",
}


def bundled_eval_path(name: str) -> Path:
    """Path of an evaluation set shipped with gensim: 'wordsim353', 'simlex999' or 'questions-words'.

    Raises InputError for an unknown name or when gensim (and so the file) is not installed.
    """
    key = str(name).lower()
    for suffix in (".tsv", ".txt"):
        key = key[: -len(suffix)] if key.endswith(suffix) else key
    filename = _BUNDLED.get(key)
    if filename is None:
        raise InputError(f"unknown evaluation set {name!r}; use 'wordsim353', 'simlex999' or 'questions-words'")
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the bundled {filename} ships with gensim, which is not installed; "
                         "pip install gensim or pass the path of your own file")
    path = Path(list(spec.submodule_search_locations)[0]) / "test" / "test_data" / filename
    if not path.is_file():
        raise InputError(f"{path}: not found in the installed gensim; pass the path of your own file")
    return path


def _lookup(emb, restrict_vocab: int | None = None) -> dict[str, int]:
    """Lower-cased key -> row, the first (most frequent) key winning among case variants."""
    check_embeddings(emb)
    if len(emb.keys) == 0:
        raise InputError("emb holds no vectors (0 keys), so nothing can be evaluated; give the trained embeddings")
    keys = emb.keys if restrict_vocab is None else emb.keys[:restrict_vocab]
    table: dict[str, int] = {}
    for i, k in enumerate(keys):
        table.setdefault(k.lower(), i)
    return table


def _read_lines(path):
    for no, line in text_lines(Path(path), "a text file of word pairs or analogy questions"):
        yield no, line.strip()


def similarity_report(emb, pairs_path=None, *, oov: bool | None = None) -> dict:
    """Spearman correlation of cosine similarities with human scores, plus coverage.

    ``pairs_path``: lines ``word1 word2 score`` (tab or spaces; ``#`` starts a comment);
    default: gensim's bundled WordSim353. Returns ``{"spearman", "pairs", "covered",
    "coverage", "oov_pairs", "oov_answered"}``; ``spearman`` is NaN when fewer than two pairs
    are covered. ``oov``: answer unknown words from the embeddings' subwords (FastText's
    ``FastTextEmbeddings.vector``); None: whenever the embeddings can (``oov_answered`` counts
    the pairs so included; ``oov_pairs`` lists those still skipped).
    Raises ParseError on a malformed line, InputError for embeddings without any key.
    """
    from scipy.stats import spearmanr

    path = Path(pairs_path) if pairs_path is not None else bundled_eval_path("wordsim353")
    table = _lookup(emb)
    unit = unit_rows(emb.vectors)
    can = callable(getattr(emb, "has_vector", None)) and callable(getattr(emb, "vector", None))
    if oov and not can:
        raise InputError("oov=True needs embeddings that answer unknown words (FastTextEmbeddings)")
    use_oov = can if oov is None else bool(oov)
    answered = 0

    def unit_of(word, row):
        if row is not None:
            return unit[row]
        v = np.asarray(emb.vector(word), dtype=np.float64)
        n = float(np.linalg.norm(v))
        return v / n if n > 0 else v

    human, model, total, skipped = [], [], 0, []
    for no, line in _read_lines(path):
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) < 3:
            raise ParseError(path, no, f"expected 'word1 word2 score', got {line[:60]!r}")
        a, b = parts[0].strip(), parts[1].strip()
        try:
            score = float(parts[2])
        except ValueError:
            if total == 0:  # a header line such as "word1 word2 SimLex999"
                continue
            raise ParseError(path, no, f"score {parts[2]!r} is not a number") from None
        total += 1
        ia, ib = table.get(a.lower()), table.get(b.lower())
        if ia is None or ib is None:
            if not (use_oov and (ia is not None or emb.has_vector(a.lower()))
                    and (ib is not None or emb.has_vector(b.lower()))):
                skipped.append((a, b))
                continue
            answered += 1
        human.append(score)
        model.append(float(unit_of(a.lower(), ia) @ unit_of(b.lower(), ib)))
    if total == 0:
        raise InputError(f"{path}: holds no word pairs")
    covered = len(human)
    rho = float(spearmanr(human, model).statistic) if covered >= 2 else float("nan")
    return {"spearman": rho, "pairs": total, "covered": covered, "coverage": covered / total,
            "oov_pairs": skipped, "oov_answered": answered}


def word_similarity(emb, pairs_path=None) -> float:
    """Spearman rho between cosine similarity and human scores on ``pairs_path``.

    Default set: WordSim353 as shipped by gensim. Pairs with an out-of-vocabulary word are
    skipped (gensim's convention); the coverage is logged, and :func:`similarity_report`
    returns it. NaN when fewer than two pairs are covered.
    """
    rep = similarity_report(emb, pairs_path)
    log.info("word_similarity: spearman %.4f on %d of %d pairs (%.1f%% covered)",
             rep["spearman"], rep["covered"], rep["pairs"], 100 * rep["coverage"])
    return rep["spearman"]


def analogy_report(emb, questions_path=None, *, restrict_vocab: int = 300_000, batch_size: int = 512) -> dict:
    """3CosAdd analogy accuracy over the questions whose four words are known, plus coverage.

    ``questions_path``: lines ``a b c d`` with optional ``: section`` headers; default:
    gensim's bundled Google analogy set (questions-words.txt). Only the ``restrict_vocab``
    first keys are candidates (and count as known), as in gensim. Returns ``{"accuracy",
    "questions", "covered", "coverage", "correct", "sections": {name: accuracy}}``;
    ``accuracy`` is NaN when no question is covered.
    """
    restrict_vocab = check_int("analogy_report", "restrict_vocab", restrict_vocab, 1)
    batch_size = check_int("analogy_report", "batch_size", batch_size, 1)
    path = Path(questions_path) if questions_path is not None else bundled_eval_path("questions-words")
    table = _lookup(emb, restrict_vocab)
    section = "default"
    rows, sections, total = [], [], 0
    for no, line in _read_lines(path):
        if not line:
            continue
        if line.startswith(":"):
            section = line[1:].strip() or "default"
            continue
        words = line.split()
        if len(words) != 4:
            raise ParseError(path, no, f"expected four words 'a b c d', got {line[:60]!r}")
        total += 1
        ids = [table.get(w.lower()) for w in words]
        if any(i is None for i in ids):
            continue
        rows.append(ids)
        sections.append(section)
    if total == 0:
        raise InputError(f"{path}: holds no analogy questions")
    unit = unit_rows(emb.vectors[: min(restrict_vocab, len(emb))])
    q = np.asarray(rows, dtype=np.int64).reshape(-1, 4)
    hits = np.zeros(len(q), dtype=bool)
    for start in range(0, len(q), batch_size):
        part = q[start:start + batch_size]
        target = unit[part[:, 1]] - unit[part[:, 0]] + unit[part[:, 2]]
        # 3CosAdd: the best candidate by inner product with the target, the three words excluded
        _, best = knn_search(unit, target, 1, exclude=part[:, :3], chunk=batch_size)
        if best.shape[1]:
            hits[start:start + len(part)] = best[:, 0] == part[:, 3]
    by_section: dict[str, list[int]] = {}
    for name, hit in zip(sections, hits):
        acc = by_section.setdefault(name, [0, 0])
        acc[0] += int(hit)
        acc[1] += 1
    covered = len(q)
    return {
        "accuracy": float(hits.mean()) if covered else float("nan"),
        "questions": total, "covered": covered, "coverage": covered / total, "correct": int(hits.sum()),
        "sections": {k: v[0] / v[1] for k, v in by_section.items()},
    }


def word_analogy(emb, questions_path=None, *, restrict_vocab: int = 300_000) -> float:
    """Share of covered analogy questions answered correctly (3CosAdd; gensim's protocol).

    Default set: Google's questions-words.txt as shipped by gensim. Questions with an unknown
    word are skipped; the coverage is logged and :func:`analogy_report` returns it.
    """
    rep = analogy_report(emb, questions_path, restrict_vocab=restrict_vocab)
    log.info("word_analogy: accuracy %.4f on %d of %d questions (%.1f%% covered)",
             rep["accuracy"], rep["covered"], rep["questions"], 100 * rep["coverage"])
    return rep["accuracy"]
