"""Node2vec random walks in torch, vectorised over many walkers, on CPU or CUDA.

Implements the second-order walk of Grover & Leskovec, "node2vec: Scalable Feature Learning
for Networks" (KDD 2016): having moved ``t -> v``, the walk goes to ``x`` (an out-neighbour of
``v``) with probability proportional to ``w(v, x) * alpha(t, x)`` where ``alpha = 1/p`` if
``x == t``, ``1`` if ``x`` is an out-neighbour of ``t``, and ``1/q`` otherwise.

How: rejection sampling, as in KnightKing (Yang et al., SOSP 2019) and PecanPy's on-the-fly
mode, vectorised over all walkers at once. The return move ``x == t`` gets its exact mass
``w(v, t)/p`` up front (KnightKing's "outlier" folding); every other ``x`` is proposed from the
first-order law ``w(v, x) / sum w(v, .)`` and accepted with probability ``alpha(t, x) /
max(1, 1/q)``; walkers that reject draw again. Accepted moves follow the exact node2vec law.
When acceptance is low (q far from 1), each walker makes several proposals per
round; the rare walkers still pending after a few rounds are drawn from their full normalised
distribution (cost: the sum of their degrees), which is exact too.

Memory is O(edges): the CSR itself, one prefix sum of the weights (weighted graphs) and one
sorted edge-key array for the ``x in N(t)`` test (``torch.searchsorted``); no per-edge alias
tables. With ``p == q == 1`` the acceptance test is skipped: a first-order (DeepWalk) walk.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["WalkSampler", "WalkStream", "random_walks", "encode_lines"]

_MAX_PROPOSALS = 16            # proposals per pending walker and round, at most
_MAX_ROUNDS = 8                # then the walkers still pending are drawn exactly ...
_EXACT_BUDGET = 1 << 22        # ... if their neighbour lists hold at most this many entries in all


def _seed_for(*parts: int) -> int:
    """A 63-bit torch seed derived from integers (independent streams per epoch and batch)."""
    return int(np.random.SeedSequence([int(x) for x in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class WalkSampler:
    """The graph's CSR as torch tensors on ``device``, and node2vec walks over it.

    Parameters
    ----------
    graph : embedkit.Graph
    p, q : float
        Return and in-out parameters (> 0).
    device : str or torch.device, default "cpu"
    """

    def __init__(self, graph, p: float = 1.0, q: float = 1.0, device="cpu"):
        dev = torch.device(device)
        self.device = dev
        self.num_nodes = n = graph.num_nodes
        self.directed = bool(graph.directed)
        self.indptr = torch.as_tensor(graph.indptr, dtype=torch.int64).to(dev)
        self.indices = torch.as_tensor(graph.indices, dtype=torch.int64).to(dev)
        self.degree = self.indptr[1:] - self.indptr[:-1]
        max_degree = int(self.degree.max()) if n else 0
        # float32 uniforms pick a neighbour without visible bias up to ~65k neighbours
        self._udtype = torch.float32 if max_degree <= 65536 else torch.float64
        w = graph.weights
        self.weighted = w is not None and len(w) > 0 and not bool(np.all(w == w[0]))
        self.cumw = None
        if self.weighted:
            cw = np.zeros(len(w) + 1, dtype=np.float64)
            np.cumsum(w, out=cw[1:])
            self.cumw = torch.as_tensor(cw).to(dev)
        self.p, self.q = float(p), float(q)
        self.second_order = not (self.p == 1.0 and self.q == 1.0)
        self.a_return, self.a_out = 1.0 / self.p, 1.0 / self.q
        self.a_env = max(1.0, self.a_out)
        self._acceptance = 1.0     # running per-proposal acceptance rate (sets proposals per round)
        # weighted degrees W_v (float64 when weighted, for exact prefix-sum differences)
        self._wdtype = torch.float64 if self.weighted else torch.float32
        if self.weighted:
            self.wdegree = self.cumw[self.indptr[1:]] - self.cumw[self.indptr[:-1]]
        else:
            self.wdegree = self.degree.to(torch.float32)
        self.keys = None
        if self.second_order and (self.a_out != 1.0 or self.weighted or self.directed):
            rows = torch.repeat_interleave(torch.arange(n, device=dev), self.degree)
            self.keys = rows * n + self.indices          # sorted: rows ascending, columns sorted per row
            del rows

    # ------------------------------------------------------------------ one step
    def _first_order(self, cur: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One neighbour of each ``cur`` drawn with probability w(cur, x) / sum_x w(cur, x)."""
        start = self.indptr[cur]
        deg = self.degree[cur]
        if not self.weighted:
            u = torch.rand(cur.shape[0], generator=gen, device=self.device, dtype=self._udtype)
            off = (u * deg).long()
            off = torch.minimum(off, deg - 1)
            return self.indices[start + off]
        u = torch.rand(cur.shape[0], generator=gen, device=self.device, dtype=torch.float64)
        lo = self.cumw[start]
        target = lo + u * (self.cumw[start + deg] - lo)
        k = torch.searchsorted(self.cumw, target, right=True) - 1
        k = torch.maximum(torch.minimum(k, start + deg - 1), start)
        return self.indices[k]

    def _has_edge(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Whether the edge a -> b exists, for aligned tensors a, b."""
        k = a * self.num_nodes + b
        pos = torch.searchsorted(self.keys, k)
        pos = torch.clamp(pos, max=self.keys.shape[0] - 1)
        return self.keys[pos] == k

    def _edge_weight(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Weight of the edge a -> b (0 where it does not exist), for aligned tensors a, b."""
        if not (self.weighted or self.directed):  # undirected, unweighted: b -> a was just walked
            return torch.ones(a.shape[0], dtype=self._wdtype, device=self.device)
        k = a * self.num_nodes + b
        pos = torch.clamp(torch.searchsorted(self.keys, k), max=self.keys.shape[0] - 1)
        found = self.keys[pos] == k
        w = (self.cumw[pos + 1] - self.cumw[pos]) if self.weighted else torch.ones_like(pos, dtype=self._wdtype)
        return torch.where(found, w, torch.zeros_like(w))

    def _second_order(self, prev: torch.Tensor, cur: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One node2vec step for every walker by vectorised rejection sampling.

        Proposals ``x`` come from the first-order law and are accepted with probability
        ``alpha(t, x) / a_env``, ``a_env = max(1, 1/q)``. When ``1/p > a_env`` the return move is
        folded out of the envelope: it gets its exact mass ``R = w(v, t) / p``; a draw
        ``u ~ U(0, R + a_env * W_v)`` below ``R`` returns to ``t``, otherwise the proposal is
        judged as above (a proposal of ``t`` itself is rejected, its mass being R). Either way
        the accepted law is exactly ``w * alpha`` normalised, and a small p does not lower the
        acceptance rate.

        Each pending walker makes ``k`` independent proposals per round and keeps the first
        accepted one (the same law as proposing one at a time); ``k`` follows the acceptance
        rate seen so far. Walkers still pending after ``_MAX_ROUNDS`` rounds are drawn exactly.
        """
        dev = self.device
        out = torch.empty_like(cur)
        pending = torch.arange(cur.shape[0], device=dev)
        pp, pc = prev, cur
        # Fold the return move out of the envelope only when 1/p is its largest alpha (p < min(1, q));
        # otherwise a proposal of t is simply accepted with probability (1/p) / a_env.
        fold = self.a_return > self.a_env
        if fold:
            pr = self._edge_weight(cur, prev) * self.a_return            # R
            po = self.wdegree[cur] * self.a_env                           # a_env * W_v
        else:
            pr = po = cur                                                 # unused placeholders
        lo_out, hi_out = min(1.0, self.a_out), max(1.0, self.a_out)
        rounds = 0
        while pending.shape[0]:
            if rounds >= _MAX_ROUNDS and int(self.degree[pc].sum()) <= _EXACT_BUDGET:
                out[pending] = self._exact(pp, pc, gen)
                break
            rounds += 1
            m = pending.shape[0]
            k = min(_MAX_PROPOSALS, max(1, int(round(1.0 / self._acceptance))))
            if k > 1:
                pp_k, pc_k = pp.repeat_interleave(k), pc.repeat_interleave(k)
            else:
                pp_k, pc_k = pp, pc
            cand = self._first_order(pc_k, gen)
            is_t = cand == pp_k
            if fold:
                pr_k, po_k = (pr.repeat_interleave(k), po.repeat_interleave(k)) if k > 1 else (pr, po)
                u = torch.rand(m * k, generator=gen, device=dev, dtype=self._wdtype) * (pr_k + po_k)
                ret = u < pr_k
                # given u >= R, (u - R) / W_v is uniform on [0, a_env): the acceptance draw
                r = (u - pr_k) / (po_k / self.a_env)
                alpha = torch.where(is_t, 0.0, self.a_out).to(r.dtype)   # t's mass is R
            else:
                ret = None
                r = torch.rand(m * k, generator=gen, device=dev) * self.a_env
                alpha = torch.where(is_t, self.a_return, self.a_out)
            if self.a_out != 1.0:
                # the neighbour test decides only where r falls between 1 and 1/q
                undecided = (r >= lo_out) & (r < hi_out) & ~is_t
                idx = undecided.nonzero().squeeze(1)
                if idx.shape[0]:
                    nb = self._has_edge(pp_k[idx], cand[idx])
                    alpha[idx[nb]] = 1.0
            acc = r < alpha
            if fold:
                acc |= ret
                cand = torch.where(ret, pp_k, cand)
            if k > 1:
                acc = acc.view(m, k)
                first = acc.to(torch.int8).argmax(1)               # first accepted proposal
                cand = cand.view(m, k).gather(1, first.unsqueeze(1)).squeeze(1)
                hit = acc.any(1)
                rate = float(acc.sum()) / (m * k)
            else:
                hit = acc
                rate = None
            if rounds == 1:
                out = torch.where(hit, cand, out)         # pending is everyone: no scatter needed
            else:
                ok = torch.nonzero(hit).squeeze(1)
                out[pending[ok]] = cand[ok]
            rej = torch.nonzero(~hit).squeeze(1)
            if rate is None:
                rate = (m - rej.shape[0]) / m
            # running estimate of the per-proposal acceptance, which sets k
            self._acceptance = min(1.0, max(0.5 * self._acceptance + 0.5 * rate, 1.0 / _MAX_PROPOSALS))
            pending, pp, pc = pending[rej], pp[rej], pc[rej]
            if fold:
                pr, po = pr[rej], po[rej]
        return out

    def _exact(self, prev: torch.Tensor, cur: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One node2vec step drawn from the full normalised distribution (for a few walkers).

        Expands every walker's neighbour list (cost: the sum of their degrees), weights each
        neighbour by w * alpha and inverts the per-walker cumulative sum.
        """
        dev = self.device
        m = cur.shape[0]
        deg = self.degree[cur]
        ends = torch.cumsum(deg, 0)
        seg = torch.repeat_interleave(torch.arange(m, device=dev), deg)
        pos = self.indptr[cur][seg] + torch.arange(seg.shape[0], device=dev) - (ends - deg)[seg]
        x = self.indices[pos]
        w = (self.cumw[pos + 1] - self.cumw[pos]) if self.weighted else torch.ones(x.shape[0], dtype=torch.float64, device=dev)
        pv = prev[seg]
        alpha = torch.full_like(w, self.a_out)
        if self.keys is not None:
            alpha[self._has_edge(pv, x)] = 1.0
        alpha[x == pv] = self.a_return
        cs = torch.cumsum(w * alpha, 0)
        hi = cs[ends - 1]
        lo = torch.where(ends - deg > 0, cs[(ends - deg - 1).clamp(min=0)], torch.zeros_like(hi))
        u = torch.rand(m, generator=gen, device=dev, dtype=torch.float64)
        k = torch.searchsorted(cs, lo + u * (hi - lo), right=True)
        k = torch.maximum(torch.minimum(k, ends - 1), ends - deg)
        return x[k]

    # ------------------------------------------------------------------ whole walks
    def walk(self, starts: torch.Tensor, walk_length: int, gen: torch.Generator):
        """Walks from ``starts`` (row numbers on this device).

        Returns ``(walks, lengths)``: ``walks`` (len(starts), walk_length) int64 with -1 after a
        walk's end (a directed walk stops at a node without out-edges), ``lengths`` int64.
        """
        b = starts.shape[0]
        dev = self.device
        self._acceptance = 1.0      # walks depend only on (starts, generator), not on earlier calls
        starts = starts.to(dev, torch.int64)
        walks = torch.full((walk_length, b), -1, dtype=torch.int64, device=dev)   # row t = step t
        if b == 0 or walk_length == 0:
            return walks.t(), torch.full((b,), min(walk_length, 1), dtype=torch.int64, device=dev)
        walks[0] = starts
        has_out = self.degree[starts] > 0
        everyone = bool(has_out.all())                 # then no index bookkeeping until someone stops
        alive = torch.arange(b, device=dev) if everyone else torch.nonzero(has_out).squeeze(1)
        prev = cur = starts[alive]
        for t in range(1, walk_length):
            if alive.shape[0] == 0:
                break
            if t == 1 or not self.second_order:
                nxt = self._first_order(cur, gen)
            else:
                nxt = self._second_order(prev, cur, gen)
            if everyone:
                walks[t] = nxt
            else:
                walks[t, alive] = nxt
            prev, cur = cur, nxt
            # only directed graphs have nodes without out-edges that a walk can step onto
            if self.directed and t + 1 < walk_length:
                stop = self.degree[nxt] == 0
                if bool(stop.any()):
                    keep = torch.nonzero(~stop).squeeze(1)
                    alive, prev, cur = alive[keep], prev[keep], cur[keep]
                    everyone = False
        lengths = (walks >= 0).sum(0)
        return walks.t().contiguous(), lengths


def random_walks(graph, walk_length: int = 80, p: float = 1.0, q: float = 1.0, starts=None,
                 seed: int = 0, device="cpu"):
    """Node2vec walks from ``starts`` (node ids; default: one from every node with out-edges).

    Returns ``(walks, lengths)`` as in :meth:`WalkSampler.walk`, row numbers of ``graph.nodes``.
    Same seed, starts and device -> same walks.
    """
    sampler = WalkSampler(graph, p=p, q=q, device=device)
    if starts is None:
        rows = torch.nonzero(sampler.degree > 0).squeeze(1)
    else:
        index = graph.node_index
        rows = torch.tensor([index[str(s)] for s in starts], dtype=torch.int64, device=sampler.device)
    gen = torch.Generator(device=sampler.device)
    gen.manual_seed(_seed_for(seed))
    return sampler.walk(rows, walk_length, gen)


class WalkStream:
    """Re-iterable stream of walk batches for the skip-gram engine; never holds all walks.

    Each iteration is one epoch and yields ``(tokens, lengths)``: the node rows of up to
    ``batch_walkers`` walks concatenated, and their lengths. An epoch runs ``walks_per_node``
    rounds, each over a fresh random permutation of ``starts``; every epoch samples fresh walks.
    Batch ``c`` of epoch ``e`` uses a generator seeded from ``(seed, e, c)``, so the walks depend
    only on the seed, the batch size and the device (CPU and CUDA random streams differ).
    """

    def __init__(self, sampler: WalkSampler, starts: np.ndarray, *, walk_length: int, walks_per_node: int,
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

    def counts(self, num_nodes: int) -> np.ndarray:
        """Visits per node over epoch 0's walks (the same walks the first epoch trains on)."""
        total = torch.zeros(num_nodes, dtype=torch.int64, device=self.sampler.device)
        for tokens, _ in self.epoch(0):
            total += torch.bincount(tokens, minlength=num_nodes)
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
