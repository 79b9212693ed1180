"""The index: FAISS with string keys (see :class:`VectorIndex`)."""

from .vector_index import SearchResult, VectorIndex

__all__ = ["VectorIndex", "SearchResult"]
