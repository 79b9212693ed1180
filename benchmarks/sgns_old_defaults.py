"""The torch engine with its old defaults emulated (init ±0.5/dim, steps of tokens/100) through the
engine's init= argument; same parameters as benchmarks/word2vec_bench.py.

    python benchmarks/sgns_old_defaults.py cbow|skipgram CORPUS   (CORPUS: from word2vec_bench.py --build-corpus)
"""
# ruff: noqa: E402, E501
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from word2vec_bench import quality

import embedkit as ek
from embedkit.data.corpus import Corpus
from embedkit.trainers.sgns.engine import cpu_threads, train_skipgram
from embedkit.trainers.word2vec.model import build_vocab, encode_corpus

mode = sys.argv[1]
corpus = Corpus.from_files([sys.argv[2]])
words, counts, _ = build_vocab(corpus, 5)
blocks = encode_corpus(corpus, {w: i for i, w in enumerate(words)})
total = int(sum(b[0].size for b in blocks))
import torch

g = torch.Generator().manual_seed(0)
w_in = ((torch.rand((len(words), 100), generator=g) - 0.5) / 100).numpy()
t = time.time()
with cpu_threads(2, "cpu"):
    v, losses = train_skipgram(blocks, counts, mode=mode, dim=100, window=5, negative=5, sample=1e-3, epochs=5, seed=0,
                               total_words=total, batch_words=total // 100, show_progress=False,
                               init=(w_in, np.zeros_like(w_in)))
ws, sl, an = quality(ek.Embeddings(words, v))
print(f"{mode} torch old defaults emulated: {time.time()-t:.0f}s WS353 {ws['spearman']:.4f} SimLex {sl['spearman']:.4f} analogy {an['accuracy']:.4f}", flush=True)
