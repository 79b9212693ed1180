"""Node2vec random walks in torch, vectorised over many walkers, on CPU or CUDA.

Implements the second-order walk of Grover & Leskovec, "node2vec: Scalable Feature Learning
for Networks" (KDD 2016): having moved ``t -> v``, the walk goes to ``x`` (an out-neighbour of
``v``) with probability proportional to ``w(v, x) * alpha(t, x)`` where ``alpha = 1/p`` if
``x == t``, ``1`` if ``x`` is an out-neighbour of ``t``, and ``1/q`` otherwise.

How, for a walker that came t -> v (all walkers advanced at once). Write R = w(v, t)/p for the
return move, B = W_v - w(v, t) for the weight of v's other neighbours, and C for the part of B
on common neighbours of t and v. The step's total mass is R + B/q + C (1 - 1/q).

* C is precomputed once per edge (a sparse product A W^T sampled on the graph's own entries,
  O(edges) memory, cost sum_x indegree(x)^2) when that is cheap next to the walk itself.
* The return move gets its exact mass R (KnightKing's "outlier" folding, Yang et al., SOSP 2019)
  and neighbours other than t are drawn from w(v, .) with t's entry skipped exactly, so no
  proposal is wasted on t.
* q >= 1 with C known: an exact three-part mixture, return / any neighbour but t (weight 1/q) /
  common neighbour (weight 1 - 1/q). Only the last part, which exists only on edges inside
  triangles, needs proposals and the ``x in N(t)`` test. Most steps of a sparse graph take no
  test and no rejection at all.
* otherwise (q < 1, or C not precomputed): rejection from the envelope "R at t, max(1, 1/q) w
  elsewhere", accepting a proposal with probability alpha / max(1, 1/q) (as PecanPy's on-the-fly
  mode). The neighbour test (``torch.searchsorted`` on sorted edge keys) runs only where the
  draw falls between the two alphas, and never on an edge whose C is known to be 0. When
  acceptance is low each walker makes several proposals per round.
* walkers still pending after a few rounds are drawn from their full normalised distribution
  (cost: the sum of their degrees), which is exact too.

Memory is O(edges): the CSR itself, a prefix sum of the weights (weighted graphs), the sorted
edge keys, the position of each entry's reverse edge and C; no per-edge alias tables. With
``p == q == 1`` none of this is built: a first-order (DeepWalk) walk.

Beside it: ``common_weights.py`` (the sparse product behind C) and ``walk_stream.py``
(``WalkStream``, batches of walks per epoch, and ``encode_lines``, re-exported here).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..._validation import check_choice, check_int
from .walk_stream import WalkStream, _seed_for, encode_lines

__all__ = ["WalkSampler", "WalkStream", "random_walks", "encode_lines"]

_MAX_PROPOSALS = 16            # proposals per pending walker and round, at most
_MAX_ROUNDS = 8                # default max_rounds: then the walkers still pending are drawn exactly ...
_EXACT_BUDGET = 1 << 22        # ... if their neighbour lists hold at most this many entries in all
# (WalkSampler's strategy, exact_fallback, max_rounds and common_block arguments choose between the
# paths; the constants below are the defaults of the "auto" strategy's cost model)
# Common-neighbour weights are precomputed (with scipy, on CPU) when their cost in multiply-adds
# is at most _COMMON_STEPS_RATIO x the walk steps expected (or _COMMON_BUDGET_PER_ENTRY x the
# CSR entries when that is unknown), and always below _COMMON_MIN_BUDGET; _COMMON_BLOCK bounds
# the memory. On CPU a multiply-add costs ~1/10 of a walk step without them (measured: ~25M/s
# against ~2-5M steps/s); on CUDA walk steps are much cheaper, so the ratio is lower there (a
# guess: not yet measured on a GPU).
_COMMON_STEPS_RATIO = {"cpu": 8.0, "cuda": 0.5}
_COMMON_BUDGET_PER_ENTRY = 32
_COMMON_MIN_BUDGET = 5e6
_COMMON_BLOCK = 1e6

log = logging.getLogger(__name__)


def _take(src: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``src[idx]`` for a 1-D index tensor: index_select is 4-7x faster than advanced indexing
    on CPU (measured with torch 2.13), and these gathers are most of a walk's work."""
    return torch.index_select(src, 0, idx)


def _sub(x, idx):
    """_take for per-walker values that may be a scalar or None (the same for every walker)."""
    return torch.index_select(x, 0, idx) if isinstance(x, torch.Tensor) else x


def _rep(x, k: int):
    """Each walker's value k times in a row (scalars and None stay as they are)."""
    return x.repeat_interleave(k) if isinstance(x, torch.Tensor) else x


class WalkSampler:
    """The graph's CSR as torch tensors on ``device``, and node2vec walks over it.

    Parameters
    ----------
    graph : embedkit.Graph
    p, q : float
        Return and in-out parameters (> 0).
    device : str or torch.device, default "cpu"
    expected_steps : int or None
        Walk steps the caller expects to sample. It decides whether precomputing the
        common-neighbour weight of every edge pays off (see the module docstring); None uses
        a budget proportional to the number of edges.
    strategy : {"auto", "mixture", "rejection"}, default "auto"
        How second-order steps are drawn (all are exact). "auto": the common-neighbour weights
        are precomputed when their cost fits the budget; then steps with q >= 1 take the exact
        mixture and steps with q < 1 the rejection path helped by the weights; otherwise every
        step takes the rejection path with the neighbour test. "mixture": precompute the weights
        whatever their cost. "rejection": never precompute them (every step by rejection).
    exact_fallback : bool, default True
        Draw the walkers still pending after ``max_rounds`` rounds of proposals from their full
        distribution (when their neighbour lists hold at most ``1 << 22`` entries in all);
        False: keep proposing until every walker is accepted.
    max_rounds : int, default 8
        Rounds of proposals before the exact fallback.
    common_block : float, default 1e6
        Multiply-adds per row block of the common-weight product (bounds its memory).
    """

    STRATEGIES = ("auto", "mixture", "rejection")

    def __init__(self, graph, p: float = 1.0, q: float = 1.0, device="cpu", expected_steps: int | None = None, *,
                 strategy: str = "auto", exact_fallback: bool = True, max_rounds: int = _MAX_ROUNDS,
                 common_block: float = _COMMON_BLOCK):
        self.strategy = check_choice("WalkSampler", "strategy", strategy, self.STRATEGIES)
        self.exact_fallback = bool(exact_fallback)
        self.max_rounds = check_int("WalkSampler", "max_rounds", max_rounds, 0)
        self.common_block = float(common_block)
        self._exact_budget = _EXACT_BUDGET if self.exact_fallback else -1
        dev = torch.device(device)
        self.device = dev
        self.num_nodes = n = graph.num_nodes
        self.directed = bool(graph.directed)
        self.indptr = torch.as_tensor(graph.indptr, dtype=torch.int64).to(dev)
        self.indices = torch.as_tensor(graph.indices, dtype=torch.int64).to(dev)
        self.num_entries = nnz = int(self.indices.shape[0])
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
        self.keys = self.rev = self.common = None
        self._all_rev = False
        if self.second_order and nnz:
            rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(graph.indptr))
            keys = rows * n + graph.indices              # sorted: rows ascending, columns sorted per row
            self.keys = torch.as_tensor(keys).to(dev)
            back = self.indices * n + torch.as_tensor(rows).to(dev)   # key of each entry's reverse edge
            pos = torch.clamp(torch.searchsorted(self.keys, back), max=nnz - 1)
            self.rev = torch.where(_take(self.keys, pos) == back, pos, torch.full_like(pos, -1))
            del back, pos
            self._all_rev = bool((self.rev >= 0).all())     # always so in undirected graphs
            if self.a_out != 1.0 and strategy != "rejection":
                self.common = _common_weights(graph, w if self.weighted else None, rows, keys, self._wdtype,
                                              dev, expected_steps, block=self.common_block,
                                              budgeted=strategy == "auto")

    # ------------------------------------------------------------------ one step
    def _first_order(self, cur: torch.Tensor, gen: torch.Generator, with_pos: bool = False):
        """One neighbour of each ``cur`` drawn with probability w(cur, x) / sum_x w(cur, x)
        (and, with ``with_pos``, its CSR position)."""
        start = _take(self.indptr, cur)
        deg = _take(self.degree, cur)
        if not self.weighted:
            u = torch.rand(cur.shape[0], generator=gen, device=self.device, dtype=self._udtype)
            off = (u * deg).long()
            off = torch.minimum(off, deg - 1)
            pos = start + off
        else:
            u = torch.rand(cur.shape[0], generator=gen, device=self.device, dtype=torch.float64)
            lo = _take(self.cumw, start)
            target = lo + u * (_take(self.cumw, start + deg) - lo)
            pos = torch.searchsorted(self.cumw, target, right=True) - 1
            pos = torch.maximum(torch.minimum(pos, start + deg - 1), start)
        nxt = _take(self.indices, pos)
        return (nxt, pos) if with_pos else nxt

    def edge_positions(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """CSR positions of the edges a -> b (aligned tensors; -1 where there is no such edge)."""
        k = a * self.num_nodes + b
        pos = torch.clamp(torch.searchsorted(self.keys, k), max=self.keys.shape[0] - 1)
        return torch.where(_take(self.keys, pos) == k, pos, torch.full_like(pos, -1))

    def _has_edge(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Whether the edge a -> b exists, for aligned tensors a, b."""
        return self.edge_positions(a, b) >= 0

    def _weight_at(self, pos: torch.Tensor) -> torch.Tensor:
        """Edge weights at CSR positions ``pos`` (all >= 0)."""
        if self.weighted:
            return _take(self.cumw, pos + 1) - _take(self.cumw, pos)
        return torch.ones(pos.shape[0], dtype=self._wdtype, device=self.device)

    def _back_edge(self, edge: torch.Tensor):
        """For walkers that came t -> v along CSR entry ``edge``: the position of v -> t
        (clamped to 0 where absent), whether it exists, and its weight w(v, t) (0 if absent).
        When every edge has its reverse (undirected graphs) "whether" is None and an unweighted
        w(v, t) is the scalar 1."""
        rv = _take(self.rev, edge)
        if self._all_rev:
            return rv, None, (self._weight_at(rv) if self.weighted else 1.0)
        has = rv >= 0
        rv = torch.clamp(rv, min=0)
        if self.weighted:
            w_vt = torch.where(has, self._weight_at(rv), torch.zeros((), dtype=self._wdtype, device=self.device))
        else:
            w_vt = has.to(self._wdtype)
        return rv, has, w_vt

    def _propose(self, cur, rv, has_rev, rest, gen):
        """A neighbour x != t of each ``cur`` = v, drawn with probability w(v, x) / ``rest``
        (``rest`` = W_v - w(v, t)), skipping the entry ``rv`` of t exactly (no redraw).

        Returns (x, CSR position). Rows whose only neighbour is t (rest == 0) get a valid
        but meaningless position; callers never keep them.
        """
        start = _take(self.indptr, cur)
        if not self.weighted:
            # rest = deg - [t in N(v)] holds an exact integer; a float64 uniform times it stays
            # below it, so the offset needs no clamping (fewer operations per step)
            u = torch.rand(cur.shape[0], generator=gen, device=self.device, dtype=torch.float64)
            pos = start + (u * rest).long()
            after = pos >= rv
            pos = pos + (after if has_rev is None else has_rev & after)
        else:
            deg = _take(self.degree, cur)
            u = torch.rand(cur.shape[0], generator=gen, device=self.device, dtype=torch.float64)
            target = _take(self.cumw, start) + u * rest
            skip = target >= _take(self.cumw, rv)
            skip = skip if has_rev is None else has_rev & skip
            target = torch.where(skip, target + (_take(self.cumw, rv + 1) - _take(self.cumw, rv)), target)
            pos = torch.searchsorted(self.cumw, target, right=True) - 1
            pos = torch.maximum(torch.minimum(pos, start + deg - 1), start)
            # rounding can land exactly on t's entry: step to a neighbouring entry of the same row
            on_t = pos == rv
            on_t = on_t if has_rev is None else has_rev & on_t
            pos = torch.where(on_t, torch.where(pos + 1 < start + deg, pos + 1, pos - 1), pos)
        pos = torch.clamp(pos, 0, self.num_entries - 1)
        return _take(self.indices, pos), pos

    def _second_order(self, prev: torch.Tensor, cur: torch.Tensor, gen: torch.Generator,
                      edge: torch.Tensor | None = None, with_pos: bool = False):
        """One node2vec step for every walker that came ``prev`` -> ``cur`` (along the CSR entry
        ``edge``, looked up when not given).

        The unnormalised law over x in N(v) is: R = w(v, t)/p for x = t, w(v, x) for common
        neighbours of t and v, w(v, x)/q for the others. Writing B = W_v - w(v, t) and C = the
        weight of the common neighbours (precomputed per edge), its total is
        R + B/q + C (1 - 1/q).

        * q >= 1 and C known: an exact three-part mixture. u ~ U(0, total): below R return to t;
          below R + B/q take x from w(v, .) on N(v) minus t (drawn directly, no rejection);
          otherwise x is a common neighbour: proposals from the same law until one is a
          neighbour of t (only walkers whose edge has common neighbours ever get here).
        * otherwise (q < 1, or C not precomputed): rejection from the envelope R at t plus
          a_env * w on N(v) minus t, a_env = max(1, 1/q); a proposal is accepted with
          probability alpha / a_env. The neighbour test runs only where the draw falls between
          the two alphas and, when C is known, only on edges that have common neighbours.

        Walkers still pending after ``max_rounds`` rounds are drawn exactly (:meth:`_exact`) when
        ``exact_fallback``.
        Returns the next nodes (and, with ``with_pos``, their CSR positions).
        """
        if not self.second_order:                    # p = q = 1: the first-order law
            return self._first_order(cur, gen, with_pos)
        if edge is None:
            edge = self.edge_positions(prev, cur)
        rv, has_rev, w_vt = self._back_edge(edge)
        ret_mass = w_vt * self.a_return
        rest = _take(self.wdegree, cur) - w_vt
        common = None if self.common is None else _take(self.common, edge)
        if common is not None and self.a_out <= 1.0:
            nxt, pos = self._mixture(prev, cur, rv, has_rev, ret_mass, rest, common, gen)
        else:
            nxt, pos = self._envelope(prev, cur, rv, has_rev, ret_mass, rest, common, gen)
        return (nxt, pos) if with_pos else nxt

    def _mixture(self, prev, cur, rv, has_rev, ret_mass, rest, common, gen):
        a_out = self.a_out
        u = torch.rand(cur.shape[0], generator=gen, device=self.device, dtype=self._wdtype)
        u = u * (ret_mass + a_out * rest + (1.0 - a_out) * common)
        ret = (u < ret_mass) | (rest <= 0)           # (the second test only guards against rounding)
        x, pos = self._propose(cur, rv, has_rev, rest, gen)
        nxt = torch.where(ret, prev, x)
        npos = torch.where(ret, rv, pos)
        # u >= R + B/q implies u >= R; rest <= 0 implies C = 0: no need to test ~ret
        tri = torch.nonzero((u >= ret_mass + a_out * rest) & (common > 0)).squeeze(1)
        if tri.shape[0] == 0:
            return nxt, npos
        # the common-neighbour part: proposals until one is a neighbour of t
        pt, pc, prv, phas, prest = (_sub(t, tri) for t in (prev, cur, rv, has_rev, rest))
        cand, cpos = _take(x, tri), _take(pos, tri)
        rounds = 0
        while True:
            hit = self._has_edge(pt, cand)
            ok = torch.nonzero(hit).squeeze(1)
            nxt.index_copy_(0, _take(tri, ok), _take(cand, ok))
            npos.index_copy_(0, _take(tri, ok), _take(cpos, ok))
            left = torch.nonzero(~hit).squeeze(1)
            if left.shape[0] == 0:
                break
            tri, pt, pc, prv, phas, prest = (_sub(t, left) for t in (tri, pt, pc, prv, phas, prest))
            rounds += 1
            if rounds >= self.max_rounds and int(_take(self.degree, pc).sum()) <= self._exact_budget:
                x2, p2 = self._exact(pt, pc, gen, a_return=0.0, a_in=1.0, a_out=0.0)
                nxt.index_copy_(0, tri, x2)
                npos.index_copy_(0, tri, p2)
                break
            cand, cpos = self._propose(pc, prv, phas, prest, gen)
        return nxt, npos

    def _envelope(self, prev, cur, rv, has_rev, ret_mass, rest, common, gen):
        dev = self.device
        a_env, a_out = self.a_env, self.a_out
        sure = min(1.0, a_out) / a_env        # proposals with r below this are accepted untested
        out = torch.empty_like(cur)
        out_pos = torch.empty_like(cur)
        pending = torch.arange(cur.shape[0], device=dev)
        pp, pc, prv, phas, pret, prest = prev, cur, rv, has_rev, ret_mass, rest
        pcom = common
        rounds = 0
        while pending.shape[0]:
            if rounds >= self.max_rounds and int(_take(self.degree, pc).sum()) <= self._exact_budget:
                x2, p2 = self._exact(pp, pc, gen)
                out.index_copy_(0, pending, x2)
                out_pos.index_copy_(0, pending, p2)
                break
            rounds += 1
            m = pending.shape[0]
            k = min(_MAX_PROPOSALS, max(1, int(round(1.0 / self._acceptance))))
            if k > 1:
                pp_k, pc_k, prv_k, phas_k, pret_k, prest_k, pcom_k = (
                    _rep(t, k) for t in (pp, pc, prv, phas, pret, prest, pcom))
            else:
                pp_k, pc_k, prv_k, phas_k, pret_k, prest_k, pcom_k = pp, pc, prv, phas, pret, prest, pcom
            u = torch.rand(m * k, generator=gen, device=dev, dtype=self._wdtype)
            u = u * (pret_k + a_env * prest_k)
            ret = (u < pret_k) | (prest_k <= 0)
            cand, cpos = self._propose(pc_k, prv_k, phas_k, prest_k, gen)
            # given u >= R, r = (u - R) / (a_env * B) is uniform on [0, 1): the acceptance draw
            r = (u - pret_k) / torch.clamp(a_env * prest_k, min=torch.finfo(self._wdtype).tiny)
            acc = ret | (r < sure)
            undecided = ~acc
            if pcom_k is not None:               # no common neighbour: alpha = 1/q for every x
                free = undecided & (pcom_k <= 0)
                acc |= free & (r < a_out / a_env)
                undecided &= ~free
            idx = undecided.nonzero().squeeze(1)
            if idx.shape[0]:
                alpha = torch.where(self._has_edge(_take(pp_k, idx), _take(cand, idx)), 1.0, a_out)
                acc.index_copy_(0, idx, _take(r, idx) < alpha / a_env)
            cand = torch.where(ret, pp_k, cand)
            cpos = torch.where(ret, prv_k, cpos)
            if k > 1:
                acc = acc.view(m, k)
                first = acc.to(torch.int8).argmax(1, keepdim=True)   # first accepted proposal
                cand = cand.view(m, k).gather(1, first).squeeze(1)
                cpos = cpos.view(m, k).gather(1, first).squeeze(1)
                hit = acc.any(1)
                rate = float(acc.sum()) / (m * k)
            else:
                hit = acc
                rate = None
            if rounds == 1:
                out = torch.where(hit, cand, out)          # pending is everyone: no scatter needed
                out_pos = torch.where(hit, cpos, out_pos)
            else:
                ok = torch.nonzero(hit).squeeze(1)
                out.index_copy_(0, _take(pending, ok), _take(cand, ok))
                out_pos.index_copy_(0, _take(pending, ok), _take(cpos, ok))
            rej = torch.nonzero(~hit).squeeze(1)
            if rate is None:
                rate = (m - rej.shape[0]) / m
            # running estimate of the per-proposal acceptance, which sets k
            self._acceptance = min(1.0, max(0.5 * self._acceptance + 0.5 * rate, 1.0 / _MAX_PROPOSALS))
            if rej.shape[0] == 0:
                break
            pending, pp, pc, prv, phas, pret, prest, pcom = (
                _sub(t, rej) for t in (pending, pp, pc, prv, phas, pret, prest, pcom))
        return out, out_pos

    def _exact(self, prev: torch.Tensor, cur: torch.Tensor, gen: torch.Generator,
               a_return: float | None = None, a_in: float = 1.0, a_out: float | None = None):
        """One step drawn from the full normalised distribution (for a few walkers).

        Expands every walker's neighbour list (cost: the sum of their degrees), weights each
        neighbour x by w * alpha (alpha = ``a_return`` for x = prev, ``a_in`` for neighbours of
        prev, ``a_out`` otherwise; node2vec's 1/p, 1, 1/q by default) and inverts the
        per-walker cumulative sum. Returns (x, CSR position).
        """
        dev = self.device
        a_return = self.a_return if a_return is None else a_return
        a_out = self.a_out if a_out is None else a_out
        m = cur.shape[0]
        deg = _take(self.degree, cur)
        ends = torch.cumsum(deg, 0)
        seg = torch.repeat_interleave(torch.arange(m, device=dev), deg)
        pos = _take(_take(self.indptr, cur), seg) + torch.arange(seg.shape[0], device=dev) - _take((ends - deg), seg)
        x = _take(self.indices, pos)
        w = self._weight_at(pos).to(torch.float64)
        pv = _take(prev, seg)
        alpha = torch.full_like(w, a_out)
        if a_in != a_out:
            alpha[self._has_edge(pv, x)] = a_in
        alpha[x == pv] = a_return
        cs = torch.cumsum(w * alpha, 0)
        hi = cs[ends - 1]
        lo = torch.where(ends - deg > 0, cs[(ends - deg - 1).clamp(min=0)], torch.zeros_like(hi))
        u = torch.rand(m, generator=gen, device=dev, dtype=torch.float64)
        k = torch.searchsorted(cs, lo + u * (hi - lo), right=True)
        k = torch.maximum(torch.minimum(k, ends - 1), ends - deg)
        return _take(x, k), _take(pos, k)

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
        has_out = _take(self.degree, starts) > 0
        everyone = bool(has_out.all())                 # then no index bookkeeping until someone stops
        alive = torch.arange(b, device=dev) if everyone else torch.nonzero(has_out).squeeze(1)
        prev = cur = _take(starts, alive)
        edge = None                                    # CSR entry of each walker's last move
        for t in range(1, walk_length):
            if alive.shape[0] == 0:
                break
            if not self.second_order:
                nxt = self._first_order(cur, gen)
            elif t == 1:
                nxt, edge = self._first_order(cur, gen, with_pos=True)
            else:
                nxt, edge = self._second_order(prev, cur, gen, edge, with_pos=True)
            if everyone:
                walks[t] = nxt
            else:
                walks[t].index_copy_(0, alive, nxt)
            prev, cur = cur, nxt
            # only directed graphs have nodes without out-edges that a walk can step onto
            if self.directed and t + 1 < walk_length:
                stop = _take(self.degree, nxt) == 0
                if bool(stop.any()):
                    keep = torch.nonzero(~stop).squeeze(1)
                    alive, prev, cur = _take(alive, keep), _take(prev, keep), _take(cur, keep)
                    if edge is not None:
                        edge = _take(edge, keep)
                    everyone = False
        lengths = (walks >= 0).sum(0)
        return walks.t().contiguous(), lengths


def _common_weights(graph, weights, rows, keys, dtype, device, expected_steps: int | None, *,
                    block: float = _COMMON_BLOCK, budgeted: bool = True):
    """C per CSR entry (see :func:`embedkit.trainers.node2vec.common_weights.common_weights`), or None
    when ``budgeted`` and its cost, sum over x of indegree(x)^2 multiply-adds, exceeds the budget."""
    from .common_weights import common_weights

    n, nnz = graph.num_nodes, len(graph.indices)
    indeg = np.bincount(graph.indices, minlength=n).astype(np.float64)
    cost = float((indeg * indeg).sum())
    ratio = _COMMON_STEPS_RATIO.get(torch.device(device).type, 1.0)
    budget = _COMMON_BUDGET_PER_ENTRY * nnz if expected_steps is None else ratio * expected_steps
    if budgeted and cost > max(budget, _COMMON_MIN_BUDGET):
        log.info("node2vec walks: common-neighbour weights not precomputed (cost %.3g > budget %.3g): "
                 "the neighbour test runs on every undecided proposal", cost, budget)
        return None
    out = common_weights(graph.indptr, graph.indices, weights, rows, keys, indeg, block=block)
    return torch.as_tensor(out).to(device=device, dtype=dtype)


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
