"""Copy an in-memory (FAISS) VectorIndex into a Milvus collection: ``embedkit index push``."""

from __future__ import annotations

import logging

from ..errors import EmbedkitError, InputError, StoreError
from ._milvus import MAX_LISTED_KEYS, META, MilvusIndex, check_uri, collection_name
from ._milvus_client import _call, connected, source_index
from ._milvus_filter import check_text, literal

log = logging.getLogger(__name__)

__all__ = ["push"]


def push(index, uri, *, collection: str | None = None, name: str | None = None, kind: str = "auto",
         batch: int = 5000, show_progress: bool = False) -> dict:
    """Upsert every item of ``index`` (keys, vectors as given, payloads) into ``collection`` at
    ``uri`` (created with the index's dim and metric when missing), then remove the collection's
    items that ``index`` does not hold, so pushing again mirrors the index. Returns a report dict
    (collection, pushed, removed, count). A failure midway raises a one-line StoreError saying how
    far it got; running the push again finishes it (every step is an upsert or a delete).

    A collection that holds another store index (its recorded ``source_index`` is not ``name``) is
    refused before anything is written: ``shop-items`` and ``shop.items`` map to one collection name.
    The push mirrors the whole index, so the collection's payload field types become the index's."""
    uri = check_uri(uri)
    given = collection
    collection = collection or collection_name(name or "embedkit")
    keys = index.keys
    for i, k in enumerate(keys):  # everything Milvus would refuse, before anything is written
        check_text(k, f"key #{i}")
        if len(k.encode("utf-8")) > 65535:
            raise InputError(f"key #{i} is {len(k.encode('utf-8'))} bytes long; Milvus keys hold at most 65535 bytes")
    with connected(uri) as c:  # one client for the check and the push
        _check_owner(c, uri, collection, name, given)
        target = MilvusIndex(index.dim, index.metric, kind, uri=uri, collection=collection)
        try:
            return _push(index, target, keys, name, batch, show_progress)
        finally:
            target.close()


def _check_owner(c, uri: str, collection: str, name, given) -> None:
    """Refuse a collection pushed from another store index (its description's meta ``source_index``)."""
    if name is None or META not in _call(c.list_collections, "list collections"):
        return
    rows = _call(c.query, "read the index's description", META, filter=f"key == {literal(collection)}",
                 output_fields=["info"], timeout=30)
    src = source_index(rows[0].get("info") or {}) if rows else None
    if src is None or src == name:
        return
    if given is None:
        raise InputError(f"collection {collection!r} at {uri} holds the index {src!r}; {name!r} maps to the same "
                         "collection name: give --collection NAME")
    raise InputError(f"collection {collection!r} at {uri} holds the index {src!r}, not {name!r}; pushing would replace "
                     "it: give another --collection NAME")


def _push(index, target, keys, name, batch, show_progress) -> dict:
    """Mirror ``index`` (its ``keys``, checked by push) into ``target``: see :func:`push`."""
    uri, collection = target.uri, target.collection
    has_payload = bool(index.payload_fields)
    meta = {**(index.meta or {}), "source_index": name}
    bar = None
    if show_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(keys), desc=f"push to {collection}", unit="vec")
    done = 0
    try:
        # the collection records its source first (a later push of another index is refused even after a
        # failure midway), and takes the index's payload field types: it is about to mirror the index
        target._kinds = dict(index.payload_fields)
        target.set_meta(meta)
        for i in range(0, len(keys), batch):
            part = keys[i:i + batch]
            vecs = index.get_vectors(part)
            payload = [index.payload(k) for k in part] if has_payload else [{} for _ in part]
            target.upsert(part, vecs, payload=payload)
            done += len(part)
            if bar is not None:
                bar.update(len(part))
        removed = 0
        n = len(target)
        if n > len(keys):
            if n > MAX_LISTED_KEYS:
                log.warning("collection %r holds %d items, more than the index's %d; stale items were not looked "
                            "for (over %d)", collection, n, len(keys), MAX_LISTED_KEYS)
            else:
                have = set(keys)
                removed = target.remove([k for k in target.keys if k not in have], missing_ok=True)
        target.flush()
    except EmbedkitError as exc:
        if isinstance(exc, InputError) and not done:
            raise
        raise StoreError(f"push to collection {collection!r} at {uri} stopped after {done} of {len(keys)} items "
                         f"({exc}); the collection holds a partial copy: run the same push again to finish") from None
    finally:
        if bar is not None:
            bar.close()
    return {"collection": collection, "pushed": done, "removed": removed, "count": len(target)}
