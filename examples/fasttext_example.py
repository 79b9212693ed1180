"""FastText in one minute: subword vectors on gensim's bundled Lee corpus; unknown and misspelled
words get vectors from their character n-grams; then continued training of a Word2Vec model.

    python examples/fasttext_example.py

Runs on CPU (gensim backend) in about a minute; with a CUDA GPU pass --backend torch --device cuda.
"""

import argparse
import tempfile
from pathlib import Path

import embedkit as ek
from embedkit.evaluate import bundled_eval_path
from embedkit.evaluate.words import similarity_report
from embedkit.trainers.fasttext import FastText, FastTextEmbeddings


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="gensim", choices=["auto", "gensim", "torch"])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    corpus = bundled_eval_path("wordsim353").parent / "lee_background.cor"   # ~60k words, shipped with gensim
    model = FastText(dim=50, min_count=3, epochs=10, bucket=200_000, seed=0, backend=args.backend, device=args.device)
    emb = model.fit(corpus, show_progress=False)
    print(f"{emb!r} via {model.backend_}")
    for word in ["governments", "policemen", "goverment"]:          # unseen / misspelled
        print(f"  {word:<12} known={word in emb}  ->", ", ".join(k for k, _ in emb.most_similar(word, 4)))
    ws = similarity_report(emb, oov=True)
    print(f"WordSim353 spearman {ws['spearman']:.3f} on {ws['covered']}/{ws['pairs']} pairs "
          f"({ws['oov_answered']} answered from n-grams)")
    with tempfile.TemporaryDirectory() as tmp:
        emb.save(Path(tmp) / "ft.npz")                               # npz + JSON, no pickle
        print("reloaded:", FastTextEmbeddings.load(Path(tmp) / "ft.npz").similarity("goverment", "government"))

    # continued training: a Word2Vec model trained on half the corpus, updated with the other half
    lines = corpus.read_text(encoding="utf-8").splitlines()
    half = len(lines) // 2
    old = [line.split() for line in lines[:half]]
    new = [line.split() for line in lines[half:]]
    w2v = ek.Word2Vec(dim=50, min_count=3, epochs=10, seed=0, backend="gensim", workers=1)
    before = w2v.fit(old, show_progress=False)
    after = w2v.partial_fit(new, show_progress=False)                # vocabulary grows, lr starts at lr / 4
    print(f"Word2Vec.partial_fit: vocabulary {len(before)} -> {len(after)} words")


if __name__ == "__main__":
    main()
