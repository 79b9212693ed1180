"""Word2Vec in one minute: train on gensim's bundled Lee corpus, query neighbours, evaluate, index.

    python examples/word2vec_example.py

Runs on CPU in well under a minute (gensim backend); with a CUDA GPU, pass --backend torch
--device cuda to use embedkit's own engine instead.
"""

import argparse
import tempfile

import embedkit as ek
from embedkit.evaluate import bundled_eval_path
from embedkit.evaluate.words import similarity_report


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="gensim", choices=["auto", "gensim", "torch"])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    corpus = bundled_eval_path("wordsim353").parent / "lee_background.cor"   # ~60k words, shipped with gensim
    model = ek.Word2Vec(mode="skipgram", dim=50, window=5, min_count=3, epochs=10, seed=0,
                        backend=args.backend, device=args.device)
    emb = model.fit(corpus, callback=lambda epoch, loss: print(f"epoch {epoch}: loss {loss:.4f}"))
    print(f"{len(emb)} words x {emb.dim} dims via {model.backend_}, "
          f"{model.words_per_second_:,.0f} words/s")

    for word in ["government", "police", "fire"]:
        print(word, "->", ", ".join(f"{w} ({s:.2f})" for w, s in emb.most_similar(word, k=5)))

    # The Lee corpus is far too small for WordSim353: the report shows how little of it is covered.
    rep = similarity_report(emb)
    print(f"WordSim353 spearman {rep['spearman']:.3f} on {rep['covered']}/{rep['pairs']} pairs")

    idx = emb.to_index(metric="cosine")
    print("index neighbours of 'police':", idx.search_keys(["police"], k=3).keys[0])
    with tempfile.TemporaryDirectory() as tmp:
        emb.save_word2vec_format(f"{tmp}/vectors.txt")           # readable by gensim's KeyedVectors
        back = ek.Embeddings.load_word2vec_format(f"{tmp}/vectors.txt")
        print("word2vec-format round trip:", len(back), "vectors")
        # the whole model (vocabulary with counts, input and output vectors), no pickle
        same = ek.Word2Vec.load(model.save(f"{tmp}/model.npz"))
        print("model round trip:", len(same.embeddings_), "words, backend", same.backend_)


if __name__ == "__main__":
    main()
