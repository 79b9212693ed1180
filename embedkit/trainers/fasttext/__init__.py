"""FastText: word vectors with hashed character n-grams (Bojanowski et al. 2017), so unknown
and misspelled words get vectors. The trainer in ``model.py``; the Embeddings subclass that
answers unknown words in ``embeddings.py``."""

from .embeddings import FastTextEmbeddings, ngram_hashes
from .model import FastText

__all__ = ["FastText", "FastTextEmbeddings", "ngram_hashes"]
