"""Word2Vec benchmark: embedkit (gensim backend, torch backend) beside plain gensim.

Same corpus file, same hyper-parameters, same worker count on every side; gensim runs in
its ``corpus_file`` mode. Prints one row per (mode, system): training words/s (raw corpus
words x epochs / seconds of the training phase), end-to-end fit seconds (vocabulary +
training), the words/s ratio against plain gensim, and WordSim353 / SimLex-999 Spearman and
Google-analogy accuracy (gensim's bundled sets; pairs with unknown words skipped, coverage
printed once per corpus).

    python benchmarks/word2vec_bench.py --corpus corpus.txt                  # CPU, all cores
    python benchmarks/word2vec_bench.py --corpus corpus.txt --device cuda    # + torch on the GPU
    python benchmarks/word2vec_bench.py --build-corpus corpus.txt            # assemble offline data

``--build-corpus`` assembles the largest English corpus available offline here: the
Wikipedia sample and Lee corpus shipped in gensim's test data, WordNet glosses (Debian
package wordnet-base) and the GCIDE dictionary (Debian dict-gcide), lower-cased, letters
only (~5.6M words when all are present). Nothing is downloaded at run time.
"""

from __future__ import annotations

import argparse
import bz2
import glob
import gzip
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


import embedkit as ek  # noqa: E402
from embedkit._device import cpu_count  # noqa: E402
from embedkit.evaluate.words import analogy_report, bundled_eval_path, similarity_report  # noqa: E402

_WORD = re.compile(r"[a-z]+")


# ----------------------------------------------------------------------------- data
def build_corpus(out_path: str) -> int:
    """Write the offline corpus described in the module docstring; return its word count."""
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    data = bundled_eval_path("wordsim353").parent
    n = 0
    with open(out_path, "w", encoding="utf-8") as out:
        def emit(text):
            nonlocal n
            toks = _WORD.findall(text.lower())
            if len(toks) >= 3:
                out.write(" ".join(toks) + "\n")
                n += len(toks)

        wiki = data / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
        with bz2.open(wiki, "rt", encoding="utf-8") as fh:
            for _title, text, _pageid in extract_pages(fh):
                for para in filter_wiki(text).split("\n"):
                    emit(para)
        for line in open(data / "lee_background.cor", encoding="utf-8"):
            emit(line)
        for f in sorted(glob.glob("/usr/share/wordnet/data.*")):
            for line in open(f, encoding="latin-1"):
                if not line.startswith("  ") and "|" in line:
                    for part in line.split("|", 1)[1].split(";"):
                        emit(part.replace('"', " "))
        gcide = Path("/usr/share/dictd/gcide.dict.dz")
        if gcide.exists():
            with gzip.open(gcide, "rt", encoding="utf-8", errors="replace") as fh:
                para: list[str] = []
                for line in fh:
                    if line.strip():
                        para.append(line.strip())
                        continue
                    text = " ".join(para)
                    text = re.sub(r"\\[^\\]*\\", " ", text)   # pronunciations
                    text = re.sub(r"\[[^\]]*\]", " ", text)   # [1913 Webster], etymologies
                    text = re.sub(r"--\s*\w+\.", " ", text)   # --Author.
                    for sent in re.split(r"[.;:?!]\s", text):
                        emit(sent)
                    para = []
    return n


def plain_copy(path: str, workdir: str) -> str:
    """gensim's corpus_file needs plain text: decompress .gz/.bz2 once, outside any timing."""
    if not path.endswith((".gz", ".bz2")):
        return path
    target = os.path.join(workdir, "corpus.txt")
    opener = gzip.open if path.endswith(".gz") else bz2.open
    with opener(path, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 22)
    return target


def count_words(path: str) -> int:
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            n += len(line.split())
    return n


# ----------------------------------------------------------------------------- systems
def run_plain_gensim(path, mode, a):
    from gensim.models import Word2Vec

    t0 = time.perf_counter()
    model = Word2Vec(vector_size=a.dim, window=a.window, negative=a.negative, hs=0, min_count=a.min_count,
                     sample=a.sample, epochs=a.epochs, seed=a.seed, workers=a.workers, sg=int(mode == "skipgram"))
    model.build_vocab(corpus_file=path)
    t1 = time.perf_counter()
    model.train(corpus_file=path, total_examples=model.corpus_count, total_words=model.corpus_total_words,
                epochs=a.epochs)
    t2 = time.perf_counter()
    emb = ek.Embeddings(list(model.wv.index_to_key), model.wv.vectors)
    return emb, t2 - t1, t2 - t0, float("nan")


def run_ours(path, mode, a, backend, device):
    model = ek.Word2Vec(mode=mode, dim=a.dim, window=a.window, negative=a.negative, min_count=a.min_count,
                        sample=a.sample, epochs=a.epochs, seed=a.seed, backend=backend, device=device,
                        workers=a.workers, batch_words=a.batch_words if backend == "torch" else None)
    t0 = time.perf_counter()
    emb = model.fit(path, show_progress=a.progress)
    total = time.perf_counter() - t0
    return emb, model.train_seconds_, total, model.loss_history_[-1]


def warm_up_cuda(a):
    """CUDA context and kernels start once per process; keep that out of the first timing."""
    sents = [["w%d" % (i % 50) for i in range(j, j + 20)] for j in range(500)]
    ek.Word2Vec(dim=a.dim, min_count=1, epochs=1, backend="torch", device=a.device).fit(sents, show_progress=False)


def quality(emb):
    ws = similarity_report(emb, bundled_eval_path("wordsim353"))
    sl = similarity_report(emb, bundled_eval_path("simlex999"))
    an = analogy_report(emb)
    return ws, sl, an


# ----------------------------------------------------------------------------- continued training
def _split(path: str, fraction: float, workdir: str):
    """The corpus cut in two by lines: the first 1 - fraction (old) and the rest (new)."""
    lines = open(path, encoding="utf-8").read().splitlines(keepends=True)
    cut = int(round(len(lines) * (1 - fraction)))
    old, new = os.path.join(workdir, "old.txt"), os.path.join(workdir, "new.txt")
    open(old, "w", encoding="utf-8").writelines(lines[:cut])
    open(new, "w", encoding="utf-8").writelines(lines[cut:])
    return old, new


def _old_loss(vectors, output, keys, counts, old_path, a, mode):
    """Mean word2vec loss of (input, output) vectors on the first 20,000 words of the old text:
    how well the model still fits the data it was first trained on."""
    import numpy as np

    from embedkit.trainers.sgns.engine import evaluate_loss

    index = {k: i for i, k in enumerate(keys)}
    ids, lengths, n = [], [], 0
    for line in open(old_path, encoding="utf-8"):
        enc = [index[w] for w in line.split() if w in index]
        if len(enc) >= 2:
            ids += enc
            lengths.append(len(enc))
            n += len(enc)
        if n >= 20_000:
            break
    return evaluate_loss(vectors, output, np.array(ids), np.array(lengths), np.asarray(counts), mode=mode,
                         window=a.window, negative=a.negative, sample=a.sample, seed=0)


def continued(path: str, a, workdir: str) -> list[dict]:
    """Train on the old part, then continue on the new part: plain gensim (``build_vocab(update=True)``
    and ``train`` at its default rate 0.025 -> 0.0001) beside embedkit's ``partial_fit`` (gensim
    backend) at its default rate (lr / 4) and at gensim's. Quality before and after each update:
    WS353, SimLex-999, and the loss on the old text (lower is better)."""
    from gensim.models import Word2Vec as GensimWord2Vec

    old, new = _split(path, a.continued, workdir)
    mode = a.modes[0]
    rows = []

    def report(system, stage, emb, vectors, output, keys, counts, seconds):
        ws = similarity_report(emb, bundled_eval_path("wordsim353"))
        sl = similarity_report(emb, bundled_eval_path("simlex999"))
        row = dict(system=system, stage=stage, vocab=len(keys), seconds=round(seconds, 1),
                   ws353=round(ws["spearman"], 4), simlex=round(sl["spearman"], 4),
                   old_loss=round(_old_loss(vectors, output, keys, counts, old, a, mode), 4))
        print(" | ".join(f"{k} {v}" for k, v in row.items()), flush=True)
        rows.append(row)

    g = GensimWord2Vec(vector_size=a.dim, window=a.window, negative=a.negative, hs=0, min_count=a.min_count,
                       sample=a.sample, epochs=a.epochs, seed=a.seed, workers=a.workers, sg=int(mode == "skipgram"))
    t0 = time.perf_counter()
    g.build_vocab(corpus_file=old)
    g.train(corpus_file=old, total_examples=g.corpus_count, total_words=g.corpus_total_words, epochs=a.epochs)
    keys = list(g.wv.index_to_key)

    def counts_of(m, ks):
        return [m.wv.get_vecattr(k, "count") for k in ks]

    report("gensim", "old", ek.Embeddings(keys, g.wv.vectors), g.wv.vectors, g.syn1neg, keys, counts_of(g, keys),
           time.perf_counter() - t0)
    t0 = time.perf_counter()
    g.build_vocab(corpus_file=new, update=True)
    g.train(corpus_file=new, total_examples=g.corpus_count, total_words=g.corpus_total_words, epochs=a.epochs)
    keys = list(g.wv.index_to_key)
    report("gensim", "after update", ek.Embeddings(keys, g.wv.vectors), g.wv.vectors, g.syn1neg, keys,
           counts_of(g, keys), time.perf_counter() - t0)
    for label, lr in (("embedkit partial_fit (default lr/4)", None), ("embedkit partial_fit (lr 0.025)", 0.025)):
        m = ek.Word2Vec(mode=mode, dim=a.dim, window=a.window, negative=a.negative, min_count=a.min_count,
                        sample=a.sample, epochs=a.epochs, seed=a.seed, backend="gensim", workers=a.workers)
        t0 = time.perf_counter()
        emb = m.fit(old, show_progress=False)
        report(label, "old", emb, emb.vectors, m._output, emb.keys, m.vocab_counts_, time.perf_counter() - t0)
        t0 = time.perf_counter()
        emb = m.partial_fit(new, lr=lr, show_progress=False)
        report(label, "after update", emb, emb.vectors, m._output, emb.keys, m.vocab_counts_, time.perf_counter() - t0)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", help="text file (one sentence per line; .gz/.bz2 decompressed first)")
    p.add_argument("--build-corpus", metavar="OUT", help="assemble the offline corpus into OUT and exit")
    p.add_argument("--modes", nargs="+", default=["skipgram", "cbow"], choices=["skipgram", "cbow"])
    p.add_argument("--systems", nargs="+", default=["gensim", "ours-gensim", "ours-torch"],
                   choices=["gensim", "ours-gensim", "ours-torch"])
    p.add_argument("--device", default="cpu", help="device of the torch backend: cpu or cuda (default: cpu)")
    p.add_argument("--workers", type=int, default=cpu_count(), help="threads, all sides")
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negative", type=int, default=5)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--sample", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-words", type=int, default=None, help="torch tokens per step (default: engine's)")
    p.add_argument("--max-row-step", type=float, default=None, help="torch engine's row step limit (default: engine's)")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.add_argument("--json", help="also write the rows as JSON here")
    p.add_argument("--continued", type=float, metavar="FRACTION",
                   help="continued-training run instead: train on the first 1-FRACTION of the lines, update on "
                        "the rest (gensim's build_vocab(update=True) beside Word2Vec.partial_fit); first --modes only")
    a = p.parse_args(argv)
    if a.build_corpus:
        n = build_corpus(a.build_corpus)
        print(f"wrote {a.build_corpus}: {n} words")
        return 0
    if a.max_row_step is not None:
        import embedkit.trainers.sgns.engine as engine

        engine._ROW_STEP = a.max_row_step
    workdir = tempfile.mkdtemp(prefix="w2v-bench-")
    try:
        path = plain_copy(a.corpus or str(bundled_eval_path("wordsim353").parent / "lee_background.cor"), workdir)
        words = count_words(path)
        import torch

        dev_name = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "cpu"
        print(f"corpus {a.corpus or 'lee_background.cor'}: {words} words; workers {a.workers}; cpu cores "
              f"{os.cpu_count()}; torch device {a.device} ({dev_name}); dim {a.dim} window {a.window} "
              f"negative {a.negative} min_count {a.min_count} sample {a.sample} epochs {a.epochs}", flush=True)
        if a.continued:
            rows = continued(path, a, workdir)
            if a.json:
                with open(a.json, "w") as fh:
                    json.dump(dict(words=words, args=vars(a), rows=rows), fh, indent=1)
            return 0
        if "ours-torch" in a.systems and a.device.startswith("cuda"):
            warm_up_cuda(a)
        header = (f"{'mode':<9} {'system':<18} {'train w/s':>11} {'fit s':>7} {'ratio':>6} "
                  f"{'WS353':>7} {'SimLex':>7} {'analogy':>7} {'loss':>7}")
        print(header)
        print("-" * len(header), flush=True)
        rows, coverage_shown = [], False
        for mode in a.modes:
            base = None
            for system in a.systems:
                if system == "gensim":
                    emb, train_s, fit_s, loss = run_plain_gensim(path, mode, a)
                    label = "gensim"
                elif system == "ours-gensim":
                    emb, train_s, fit_s, loss = run_ours(path, mode, a, "gensim", "cpu")
                    label = "embedkit gensim"
                else:
                    label = f"embedkit torch/{a.device}"
                    try:
                        emb, train_s, fit_s, loss = run_ours(path, mode, a, "torch", a.device)
                    except ek.InputError as exc:  # a diverged run
                        print(f"{mode:<9} {label:<18} diverged: {exc}", flush=True)
                        rows.append(dict(mode=mode, system=label, diverged=str(exc)))
                        continue
                wps = words * a.epochs / train_s
                if system == "gensim":
                    base = wps
                ratio = wps / base if base else float("nan")
                ws, sl, an = quality(emb)
                if not coverage_shown:
                    print(f"# coverage: WS353 {ws['covered']}/{ws['pairs']}, SimLex {sl['covered']}/{sl['pairs']}, "
                          f"analogy {an['covered']}/{an['questions']} (vocabulary {len(emb)})", flush=True)
                    coverage_shown = True
                print(f"{mode:<9} {label:<18} {wps:>11,.0f} {fit_s:>7.1f} {ratio:>6.2f} {ws['spearman']:>7.4f} "
                      f"{sl['spearman']:>7.4f} {an['accuracy']:>7.4f} {loss:>7.4f}", flush=True)
                rows.append(dict(mode=mode, system=label, words_per_s=wps, fit_s=fit_s, train_s=train_s,
                                 ratio=ratio, ws353=ws["spearman"], simlex=sl["spearman"],
                                 analogy=an["accuracy"], loss=loss, vocab=len(emb)))
        if a.json:
            with open(a.json, "w") as fh:
                json.dump(dict(words=words, args=vars(a), device=dev_name, rows=rows), fh, indent=1)
        print("ratio = training words/s / plain gensim's; loss: embedkit torch = mean loss of the last epoch, "
              "embedkit gensim = loss of the final vectors on a 2k-token sample, gensim = not reported (its counter is wrong)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
