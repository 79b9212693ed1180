"""Streams of node2vec walk batches for the skip-gram engine, and their text encoding for
gensim's corpus_file mode (used by :mod:`embedkit.trainers.node2vec.walks`, which re-exports them)."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["WalkStream", "encode_lines"]


def _seed_for(*parts: int) -> int:
    """A 63-bit torch seed derived from integers (independent streams per epoch and batch)."""
    return int(np.random.SeedSequence([int(x) for x in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class WalkStream:
    """Re-iterable stream of walk batches for the skip-gram engine; never holds all walks.

    Each iteration is one epoch and yields ``(tokens, lengths)``: the node rows of up to
    ``batch_walkers`` walks concatenated, and their lengths. An epoch runs ``walks_per_node``
    rounds, each over a fresh random permutation of ``starts``; every epoch samples fresh walks.
    Batch ``c`` of epoch ``e`` uses a generator seeded from ``(seed, e, c)``, so the walks depend
    only on the seed, the batch size and the device (CPU and CUDA random streams differ).
    """

    def __init__(self, sampler, starts: np.ndarray, *, walk_length: int, walks_per_node: int,
                 seed: int = 0, batch_walkers: int = 65536):
        self.sampler = sampler
        self.starts = np.asarray(starts, dtype=np.int64)
        self.walk_length = int(walk_length)
        self.walks_per_node = int(walks_per_node)
        self.seed = int(seed)
        self.batch_walkers = int(batch_walkers)
        self.epochs_started = 0

    @property
    def walks_per_epoch(self) -> int:
        return len(self.starts) * self.walks_per_node

    def epoch(self, e: int):
        """Generator over the batches of epoch ``e`` (same ``e`` -> same walks)."""
        gen = torch.Generator(device=self.sampler.device)
        for batch, starts in enumerate(self._start_batches(e)):
            gen.manual_seed(_seed_for(self.seed, e, batch))
            walks, lengths = self.sampler.walk(torch.as_tensor(starts).to(self.sampler.device), self.walk_length, gen)
            if bool((lengths == self.walk_length).all()):
                tokens = walks.reshape(-1)
            else:
                tokens = walks[walks >= 0]
            yield tokens, lengths

    def _start_batches(self, e: int):
        """Start nodes of epoch ``e``: ``walks_per_node`` shuffled rounds, cut into batches of
        ``batch_walkers`` (small graphs put several rounds in one batch)."""
        rng = np.random.default_rng([self.seed, e])
        buf, held = [], 0
        for _ in range(self.walks_per_node):
            perm = rng.permutation(self.starts)
            pos = 0
            while pos < len(perm):
                take = min(self.batch_walkers - held, len(perm) - pos)
                buf.append(perm[pos:pos + take])
                held += take
                pos += take
                if held == self.batch_walkers:
                    yield np.concatenate(buf)
                    buf, held = [], 0
        if held:
            yield np.concatenate(buf)

    def __iter__(self):
        e = self.epochs_started
        self.epochs_started += 1
        return self.epoch(e)

    def write_text(self, fh, num_nodes: int, e: int = 0):
        """Write epoch ``e``'s walks to a binary file handle, one walk per line of node rows
        (the gensim ``corpus_file`` format), batch by batch.

        Returns ``(counts, first)``: visits per node, and the first batch ``(tokens, lengths)``.
        """
        total = np.zeros(num_nodes, dtype=np.int64)
        first = None
        for tokens, lengths in self.epoch(e):
            tok, lens = tokens.cpu().numpy(), lengths.cpu().numpy()
            fh.write(encode_lines(tok, lens))
            total += np.bincount(tok, minlength=num_nodes)
            if first is None:
                first = (tok, lens)
        return total, first

    def write_parts(self, directory, num_nodes: int, e: int = 0, *, part_words: int, on_batch=None):
        """Write epoch ``e``'s walks as text files of about ``part_words`` steps each (whole walks,
        one per line, the gensim ``corpus_file`` format) into ``directory``, batch by batch.

        Returns ``(counts, first, parts)``: visits per node, the first batch ``(tokens, lengths)``
        and the parts as ``(path, steps, walks)`` in order. ``on_batch(walks)`` runs after each batch.
        """
        from pathlib import Path

        part_words = max(1, int(part_words))
        total = np.zeros(num_nodes, dtype=np.int64)
        first = None
        parts: list[tuple[str, int, int]] = []
        state = {"fh": None, "words": 0, "lines": 0}

        def close():
            if state["fh"] is not None:
                state["fh"].close()
                parts.append((state["path"], state["words"], state["lines"]))
                state.update(fh=None, words=0, lines=0)

        try:
            for tokens, lengths in self.epoch(e):
                tok, lens = tokens.cpu().numpy(), lengths.cpu().numpy().astype(np.int64)
                total += np.bincount(tok, minlength=num_nodes)
                if first is None:
                    first = (tok, lens)
                ends = np.cumsum(lens)
                lo = 0
                while lo < len(lens):
                    if state["fh"] is None:
                        state["path"] = str(Path(directory) / f"walks-{len(parts):05d}.txt")
                        state["fh"] = open(state["path"], "wb")
                    base = int(ends[lo - 1]) if lo else 0
                    hi = int(np.searchsorted(ends, base + part_words - state["words"], side="right"))
                    hi = max(hi, lo + 1)
                    top = int(ends[hi - 1])
                    state["fh"].write(encode_lines(tok[base:top], lens[lo:hi]))
                    state["words"] += top - base
                    state["lines"] += int((lens[lo:hi] > 0).sum())
                    if state["words"] >= part_words:
                        close()
                    lo = hi
                if on_batch is not None:
                    on_batch(len(lens))
            close()
        finally:
            if state["fh"] is not None:
                state["fh"].close()
        return total, first, parts

    def counts(self, num_nodes: int, on_batch=None) -> np.ndarray:
        """Visits per node over epoch 0's walks (the same walks the first epoch trains on);
        ``on_batch(walks)`` runs after each batch (progress)."""
        total = torch.zeros(num_nodes, dtype=torch.int64, device=self.sampler.device)
        for tokens, lengths in self.epoch(0):
            total += torch.bincount(tokens, minlength=num_nodes)
            if on_batch is not None:
                on_batch(len(lengths))
        return total.cpu().numpy()


def encode_lines(tokens: np.ndarray, lengths: np.ndarray) -> bytes:
    """ASCII text of non-negative int tokens, space separated, one sentence per line (vectorised)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.size == 0:
        return b""
    nd = np.ones(tokens.shape, dtype=np.int64)
    power = 10
    while True:
        more = tokens >= power
        if not more.any():
            break
        nd += more
        power *= 10
    size = nd + 1                                     # digits + separator
    ends = np.cumsum(size)
    starts = ends - size
    buf = np.full(int(ends[-1]), ord(" "), dtype=np.uint8)
    value = tokens.copy()
    for k in range(int(nd.max())):
        live = nd > k
        buf[(starts + nd - 1 - k)[live]] = (value[live] % 10 + ord("0")).astype(np.uint8)
        value //= 10
    line_ends = np.cumsum(np.asarray(lengths, dtype=np.int64)) - 1
    buf[ends[line_ends[np.asarray(lengths) > 0]] - 1] = ord("\n")
    return buf.tobytes()
