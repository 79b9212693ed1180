"""Word2Vec: skip-gram and CBOW word vectors (the model in ``model.py``; engines in ``trainers/sgns``)."""

from .model import Word2Vec, build_vocab, encode_corpus

__all__ = ["Word2Vec", "build_vocab", "encode_corpus"]
