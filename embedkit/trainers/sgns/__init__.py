"""Skip-gram with negative sampling, shared by Word2Vec and Node2Vec.

``engine``: embedkit's own torch trainer (CPU and CUDA); ``gensim_backend``: the one adapter
to gensim's Word2Vec (CPU), used by both trainers.
"""
