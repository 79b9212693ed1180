"""Skip-gram / CBOW engine quality against gensim by held-out loss (issue 16, item 1).

Trains gensim (one worker) and embedkit's torch engine under variants of the step size, the
init range and the row-step limit on the first ``--train-lines`` lines of a corpus, and reports
the mean word2vec loss of each result's final (input, output) vectors on the last
``--held-lines`` lines (never trained on; 3 noise seeds). Lower is better; unlike WS353 on a
small corpus this figure barely moves between runs, so it can resolve the small effects sought.

    python benchmarks/sgns_quality_bench.py --corpus corpus.txt --mode skipgram
    python benchmarks/sgns_quality_bench.py --corpus corpus.txt --mode cbow

(``corpus.txt``: ``python benchmarks/word2vec_bench.py --build-corpus corpus.txt``.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from embedkit.trainers.sgns.engine import cpu_threads, evaluate_loss, train_skipgram  # noqa: E402
from embedkit.trainers.word2vec.model import build_vocab, encode_corpus  # noqa: E402

# label, tokens per step (None: tokens / steps_div), steps_div, init half-range x dim, max_row_step
VARIANTS = [
    ("torch, old defaults (tokens/100 per step, init +-0.5/dim)", None, 100, 0.5, None),
    ("torch, steps of 1,000 tokens", 1000, None, 0.5, None),
    ("torch, old steps, no row-step limit", None, 100, 0.5, float("inf")),
    ("torch, old steps, row-step limit 1.0", None, 100, 0.5, 1.0),
    ("torch, old steps, init +-1/dim (gensim 4)", None, 100, 1.0, None),
    ("torch, tokens/500 per step", None, 500, 0.5, None),
    ("torch, tokens/500 per step, no row-step limit", None, 500, 0.5, float("inf")),
    ("torch, new defaults (tokens/500 per step, init +-1/dim)", None, 500, 1.0, None),
]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", required=True)
    p.add_argument("--mode", default="skipgram", choices=["skipgram", "cbow"])
    p.add_argument("--train-lines", type=int, default=3000)
    p.add_argument("--held-lines", type=int, default=800)
    p.add_argument("--dim", type=int, default=50)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--min-count", type=int, default=3)
    p.add_argument("--sample", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    a = p.parse_args(argv)
    lines = Path(a.corpus).read_text(encoding="utf-8").splitlines()
    train = [line.split() for line in lines[:a.train_lines]]
    held = [line.split() for line in lines[-a.held_lines:]]
    words, counts, _ = build_vocab(train, a.min_count)
    index = {w: i for i, w in enumerate(words)}
    blocks = encode_corpus(train, index)
    total = int(sum(b[0].size for b in blocks))
    ids, lengths = [], []
    for s in held:
        enc = [index[w] for w in s if w in index]
        if len(enc) >= 2:
            ids += enc
            lengths.append(len(enc))
    ids, lengths = np.array(ids), np.array(lengths)
    common = dict(mode=a.mode, window=5, negative=5, sample=a.sample)

    def held_loss(vectors, output):
        return float(np.mean([evaluate_loss(vectors, output, ids, lengths, counts, seed=s, **common) for s in range(3)]))

    print(f"# {a.mode}: {total} training tokens, {len(ids)} held-out tokens, vocabulary {len(words)}", flush=True)
    rows = []
    from gensim.models import Word2Vec as GensimWord2Vec

    t0 = time.perf_counter()
    g = GensimWord2Vec(train, vector_size=a.dim, window=5, negative=5, hs=0, min_count=a.min_count, sample=a.sample,
                       epochs=a.epochs, seed=a.seed, workers=1, sg=int(a.mode == "skipgram"))
    rows_of = np.array([g.wv.key_to_index[w] for w in words])
    base = held_loss(g.wv.vectors[rows_of], g.syn1neg[rows_of])
    rows.append(dict(variant="gensim, 1 worker", held_loss=round(base, 4), seconds=round(time.perf_counter() - t0, 1)))
    print(rows[-1], flush=True)
    for label, batch, div, scale, tau in VARIANTS:
        t0 = time.perf_counter()
        rng = np.random.default_rng(a.seed)
        w_in = ((rng.random((len(words), a.dim), dtype=np.float32) * 2 - 1) * scale / a.dim).astype(np.float32)
        with cpu_threads(1, "cpu"):
            v, _, o = train_skipgram(blocks, counts, dim=a.dim, epochs=a.epochs, seed=a.seed, total_words=total,
                                     batch_words=batch or max(16, total // div), max_row_step=tau,
                                     show_progress=False, return_output=True, init=(w_in, np.zeros_like(w_in)),
                                     **common)
        loss = held_loss(v, o)
        rows.append(dict(variant=label, held_loss=round(loss, 4), vs_gensim=round(loss - base, 4),
                         seconds=round(time.perf_counter() - t0, 1)))
        print(rows[-1], flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(dict(args=vars(a), rows=rows), indent=1))


if __name__ == "__main__":
    main()
