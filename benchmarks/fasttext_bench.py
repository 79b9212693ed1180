"""FastText benchmark: embedkit's FastText (gensim backend; torch engine with hashed n-grams)
beside plain gensim FastText, on the corpus of benchmarks/word2vec_bench.py.

Same corpus, parameters and worker count on every side. Reported per system: training
seconds, words/s, and WordSim353 / SimLex-999 Spearman twice: on the pairs whose words are
all in the vocabulary (gensim's convention) and with the out-of-vocabulary pairs included
(unknown words answered from their character n-grams; plain gensim's vectors are wrapped in
the same FastTextEmbeddings, whose OOV rule is gensim's), plus Google-analogy accuracy.

    python benchmarks/fasttext_bench.py --corpus corpus.txt            # gensim + ours-gensim
    python benchmarks/fasttext_bench.py --corpus corpus.txt --systems ours-torch --device cuda
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import embedkit as ek  # noqa: E402
from embedkit.evaluate.words import analogy_report, bundled_eval_path, similarity_report  # noqa: E402
from embedkit.trainers.fasttext import FastText, FastTextEmbeddings  # noqa: E402


def run_plain_gensim(path, a):
    from gensim.models import FastText as GensimFastText

    model = GensimFastText(vector_size=a.dim, window=a.window, negative=a.negative, hs=0, min_count=a.min_count,
                           sample=a.sample, epochs=a.epochs, seed=a.seed, workers=a.workers, sg=int(a.mode == "skipgram"),
                           min_n=a.min_n, max_n=a.max_n, bucket=a.bucket)
    model.build_vocab(corpus_file=path)
    t0 = time.perf_counter()
    model.train(corpus_file=path, total_examples=model.corpus_count, total_words=model.corpus_total_words,
                epochs=a.epochs)
    seconds = time.perf_counter() - t0
    wv = model.wv
    emb = FastTextEmbeddings(list(wv.index_to_key), wv.vectors, wv.vectors_ngrams, min_n=a.min_n, max_n=a.max_n)
    return emb, seconds, model.corpus_total_words * a.epochs


def run_ours(path, a, backend):
    model = FastText(mode=a.mode, dim=a.dim, window=a.window, negative=a.negative, min_count=a.min_count,
                     sample=a.sample, epochs=a.epochs, seed=a.seed, min_n=a.min_n, max_n=a.max_n, bucket=a.bucket,
                     backend=backend, device=a.device if backend == "torch" else "cpu", workers=a.workers)
    emb = model.fit(ek.Corpus.from_files([path]), show_progress=a.progress)
    return emb, model.train_seconds_, model.words_per_second_ * model.train_seconds_


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", required=True)
    p.add_argument("--systems", nargs="+", default=["gensim", "ours-gensim"], choices=["gensim", "ours-gensim", "ours-torch"])
    p.add_argument("--mode", default="skipgram", choices=["skipgram", "cbow"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negative", type=int, default=5)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--sample", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--min-n", type=int, default=3)
    p.add_argument("--max-n", type=int, default=6)
    p.add_argument("--bucket", type=int, default=2_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action="store_true")
    p.add_argument("--json")
    a = p.parse_args(argv)
    rows = []
    for system in a.systems:
        if system == "gensim":
            emb, seconds, words = run_plain_gensim(a.corpus, a)
        else:
            emb, seconds, words = run_ours(a.corpus, a, system.split("-")[1])
        row = {"system": system, "mode": a.mode, "train_s": round(seconds, 1), "words_per_s": round(words / seconds)}
        for name in ("wordsim353", "simlex999"):
            known = similarity_report(emb, bundled_eval_path(name), oov=False)
            every = similarity_report(emb, bundled_eval_path(name), oov=True)
            row[f"{name}_known"] = round(known["spearman"], 4)
            row[f"{name}_pairs_known"] = known["covered"]
            row[f"{name}_with_oov"] = round(every["spearman"], 4)
            row[f"{name}_pairs_with_oov"] = every["covered"]
        row["analogy"] = round(analogy_report(emb)["accuracy"], 4)
        rows.append(row)
        print(" | ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(dict(args=vars(a), rows=rows), indent=1))


if __name__ == "__main__":
    main()
