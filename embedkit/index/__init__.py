"""The index: FAISS with string keys (see :class:`VectorIndex`), the payload filter language
(:func:`filter_mask`, :func:`compile_filter`), and the two helpers for the directories it
saves (used by :class:`~embedkit.store.Store`):

- :func:`read_manifest` (path): the manifest dict of a saved index, after :func:`recover`;
  raises StoreError when the directory is missing, damaged or from a newer format;
- :func:`recover` (path): finish or undo a save interrupted between its two renames (puts
  the previous copy back when the target is missing, deletes leftover aside copies).
"""

from ._filter import Filter, compile_filter, filter_mask
from ._persist import read_manifest, recover
from .vector_index import SearchResult, VectorIndex

__all__ = ["VectorIndex", "SearchResult", "read_manifest", "recover", "filter_mask", "compile_filter", "Filter"]
