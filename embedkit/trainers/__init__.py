"""The trainer families, one folder each, all keeping the contract of :mod:`.base`:

    sgns/          skip-gram with negative sampling: embedkit's torch engine and the gensim adapter
    word2vec/      Word2Vec (skip-gram, CBOW) on sgns
    fasttext/      FastText: subword (character n-gram) vectors, FastTextEmbeddings
    node2vec/      Node2Vec: p/q-biased walks on sgns
    metapath2vec/  MetaPath2Vec: metapath-constrained walks on typed graphs, on sgns
    mf/            MatrixFactorization (ALS, BPR, SGD), HybridMF (side features), Popularity, ItemKNN,
                   the store layout and the recommender
    encoders/      SiameseEncoder, AutoEncoder, KNNEstimator over feature tables, with their losses
"""

from .base import IgnoredParameterWarning, Trainer, load_from_store

load_model = load_from_store  # ek.load_model(name, store): any trainer saved with to_store

# trainer class name -> module that defines it (imported on first use: torch loads lazily)
TRAINERS = {
    "Word2Vec": "embedkit.trainers.word2vec",
    "Node2Vec": "embedkit.trainers.node2vec",
    "MatrixFactorization": "embedkit.trainers.mf",
    "SiameseEncoder": "embedkit.trainers.encoders",
    "AutoEncoder": "embedkit.trainers.encoders",
    "FastText": "embedkit.trainers.fasttext",
    "MetaPath2Vec": "embedkit.trainers.metapath2vec",
    "HybridMF": "embedkit.trainers.mf",
    "ItemKNN": "embedkit.trainers.mf",
    "Popularity": "embedkit.trainers.mf",
}

__all__ = ["IgnoredParameterWarning", "Trainer", "TRAINERS", "load_from_store", "load_model"]
