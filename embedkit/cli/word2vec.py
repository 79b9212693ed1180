"""CLI verbs for word2vec: ``embedkit train word2vec``, ``embedkit eval word2vec`` and the demo step.

    embedkit train word2vec corpus.txt more.txt.gz --name words --mode skipgram --dim 100 --lr 0.025
    embedkit train word2vec new.txt --update words --name words2       # continued training
    embedkit train fasttext corpus.txt --name sub --bucket 200000      # subword vectors
    embedkit query words king -k 10
    embedkit eval word2vec words [--similarity PATH] [--analogy PATH]
"""

from __future__ import annotations

from ..errors import InputError
from .common import (
    add_renamed_option,
    add_store_option,
    add_sync_option,
    add_train_options,
    existing_file,
    get_store,
    out,
    refuse_existing,
    renamed_option,
    save_trained,
)

DEMO_NAME = "demo-words"
DEMO_WORDS = ("government", "police", "Australia", "fire", "company")


def register(groups) -> None:
    """Add ``train word2vec`` and ``eval word2vec``."""
    p = groups.train.add_parser(
        "word2vec", help="train word vectors (skip-gram / CBOW) from text files",
        description="Train word2vec on text files (one sentence per line, whitespace tokens; .gz/.bz2 too) "
                    "and save the vectors as an index.")
    p.add_argument("files", nargs="+", metavar="FILE", help="corpus files")
    add_train_options(p, epochs=5, dim=100)
    p.add_argument("--mode", default="skipgram", choices=["skipgram", "cbow"], help="default: skipgram")
    p.add_argument("--window", type=int, default=5, help="context window (default: 5)")
    p.add_argument("--negative", type=int, default=5, help="noise words per example (default: 5)")
    p.add_argument("--min-count", type=int, default=5, help="drop rarer words (default: 5)")
    p.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold, 0 disables (default: 1e-3)")
    p.add_argument("--lr", type=float, default=None, help="initial learning rate (default: 0.025)")
    p.add_argument("--min-lr", type=float, default=None, help="final learning rate (default: 0.0001)")
    # the old names of --lr / --min-lr (word2vec's alpha), accepted with a deprecation note
    add_renamed_option(p, "--alpha", "--lr")
    add_renamed_option(p, "--min-alpha", "--min-lr")
    p.add_argument("--max-vocab", type=int, default=None, help="keep only the most frequent words")
    p.add_argument("--backend", default="auto", choices=["auto", "gensim", "torch"],
                   help="auto: torch on CUDA, else gensim (default: auto)")
    p.add_argument("--workers", type=int, default=None,
                   help="CPU threads: gensim's, or torch's on CPU; ignored on CUDA (default: all cores)")
    p.add_argument("--batch-words", type=int, default=None, help="tokens per torch step")
    add_sync_option(p)
    p.add_argument("--update", metavar="NAME", default=None,
                   help="continue training the model saved as NAME on FILE (vocabulary grows; other training "
                        "options are those of NAME except --epochs; --lr defaults to its lr / 4)")
    p.set_defaults(func=_train)

    f = groups.train.add_parser(
        "fasttext", help="train subword word vectors (fastText) that answer unknown words",
        description="Train fastText (word2vec with hashed character n-grams) on text files and save the vectors "
                    "as an index, the n-gram matrix in the model beside it.")
    f.add_argument("files", nargs="+", metavar="FILE", help="corpus files")
    add_train_options(f, epochs=5, dim=100)
    f.add_argument("--mode", default="skipgram", choices=["skipgram", "cbow"], help="default: skipgram")
    f.add_argument("--window", type=int, default=5, help="context window (default: 5)")
    f.add_argument("--negative", type=int, default=5, help="noise words per example (default: 5)")
    f.add_argument("--min-count", type=int, default=5, help="drop rarer words (default: 5)")
    f.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold, 0 disables (default: 1e-3)")
    f.add_argument("--lr", type=float, default=0.025, help="initial learning rate (default: 0.025)")
    f.add_argument("--min-n", type=int, default=3, help="shortest character n-gram (default: 3)")
    f.add_argument("--max-n", type=int, default=6,
                   help="longest character n-gram, >= --min-n; 0: no n-grams (default: 6)")
    f.add_argument("--bucket", type=int, default=2_000_000, help="n-gram hash buckets (default: 2,000,000)")
    f.add_argument("--backend", default="auto", choices=["auto", "gensim", "torch"],
                   help="auto: torch on CUDA, else gensim (default: auto)")
    f.add_argument("--workers", type=int, default=None, help="CPU threads (default: all cores)")
    add_sync_option(f)
    f.set_defaults(func=_train_fasttext)

    e = groups.eval.add_parser(
        "word2vec", help="word similarity (Spearman) and analogy accuracy of saved word vectors",
        description="Evaluate a saved word2vec index on WordSim353, SimLex-999 and Google analogies "
                    "(bundled with gensim) or on your own files.")
    e.add_argument("name", metavar="NAME", help="index name in the store")
    e.add_argument("--similarity", action="append", metavar="PATH",
                   help="word-pair file 'w1 w2 score' (repeatable; default: wordsim353 and simlex999)")
    e.add_argument("--analogy", metavar="PATH", help="analogy file 'a b c d' (default: questions-words.txt)")
    e.add_argument("--no-analogy", action="store_true", help="skip the analogy test")
    add_store_option(e)
    e.set_defaults(func=_eval)


def _trainer_from_args(args):
    from ..trainers.word2vec import Word2Vec

    return Word2Vec(mode=args.mode, dim=args.dim, window=args.window, negative=args.negative,
                    min_count=args.min_count, sample=args.sample, epochs=args.epochs,
                    lr=renamed_option(args, "lr", "alpha", 0.025),
                    min_lr=renamed_option(args, "min_lr", "min_alpha", 0.0001),
                    max_vocab=args.max_vocab, seed=args.seed, backend=args.backend,
                    device=args.device, workers=args.workers, batch_words=args.batch_words,
                    sync_every=args.sync_every)


def _update(args) -> int:
    from ..data.corpus import Corpus
    from ..trainers.word2vec import Word2Vec

    paths = [existing_file(f) for f in args.files]
    store = get_store(args)
    refuse_existing(store, args.name, args.force)
    trainer = Word2Vec.from_store(args.update, store)
    before = len(trainer.embeddings_)
    emb = trainer.partial_fit(Corpus.from_files(paths), lr=args.lr, epochs=args.epochs,
                              show_progress=not args.no_progress)
    path = save_trained(args, trainer, meta={"backend": trainer.backend_, "updated_from": args.update,
                                             "corpus": [str(p) for p in paths]})
    out(f"continued word2vec {args.update!r} on {len(paths)} file(s): {before} -> {len(emb)} words, "
        f"final loss {trainer.loss_history_[-1]:.4f}")
    out(f"saved index {args.name!r} to {path}")
    return 0


def _train_fasttext(args) -> int:
    from ..data.corpus import Corpus
    from ..trainers.fasttext import FastText

    if args.min_n > args.max_n and args.max_n != 0:
        raise InputError(f"--min-n {args.min_n} is greater than --max-n {args.max_n}: character n-grams need "
                         "1 <= --min-n <= --max-n (default 3 and 6); --max-n 0 turns them off (plain word2vec)")
    paths = [existing_file(f) for f in args.files]
    store = get_store(args)
    refuse_existing(store, args.name, args.force)
    trainer = FastText(mode=args.mode, dim=args.dim, window=args.window, negative=args.negative,
                       min_count=args.min_count, sample=args.sample, epochs=args.epochs, lr=args.lr,
                       min_n=args.min_n, max_n=args.max_n, bucket=args.bucket, seed=args.seed, backend=args.backend,
                       device=args.device, workers=args.workers, sync_every=args.sync_every)
    trainer.check_params()
    emb = trainer.fit(Corpus.from_files(paths), show_progress=not args.no_progress)
    path = save_trained(args, trainer, meta={"backend": trainer.backend_, "corpus": [str(p) for p in paths]})
    out(f"trained fasttext ({args.mode}, {trainer.backend_}): {len(emb)} words x {emb.dim} dims, "
        f"{emb.bucket} n-gram buckets, final loss {trainer.loss_history_[-1]:.4f}")
    out(f"saved index {args.name!r} to {path}")
    return 0


def _train(args) -> int:
    from ..data.corpus import Corpus

    if args.update:
        return _update(args)
    paths = [existing_file(f) for f in args.files]
    store = get_store(args)
    refuse_existing(store, args.name, args.force)
    trainer = _trainer_from_args(args)
    trainer.check_params()  # fail on bad parameters before reading the corpus
    emb = trainer.fit(Corpus.from_files(paths), show_progress=not args.no_progress)
    path = save_trained(args, trainer, meta={"backend": trainer.backend_, "corpus": [str(p) for p in paths]})
    loss = trainer.loss_history_[-1] if trainer.loss_history_ else float("nan")
    out(f"trained word2vec ({args.mode}, {trainer.backend_}) on {int(trainer.vocab_counts_.sum())} "
        f"in-vocabulary tokens: {len(emb)} words x {emb.dim} dims, final loss {loss:.4f}")
    out(f"saved index {args.name!r} to {path}")
    return 0


def _eval(args) -> int:
    from ..evaluate.words import analogy_report, bundled_eval_path, similarity_report

    index = get_store(args).load(args.name)
    emb = index.to_embeddings()
    sims = args.similarity or [bundled_eval_path("wordsim353"), bundled_eval_path("simlex999")]
    for path in sims:
        rep = similarity_report(emb, path)
        out(f"{_label(path):<22} spearman {rep['spearman']:.4f}   covered {rep['covered']}/{rep['pairs']} pairs "
            f"({100 * rep['coverage']:.1f}%)")
    if not args.no_analogy:
        path = args.analogy or bundled_eval_path("questions-words")
        rep = analogy_report(emb, path)
        out(f"{_label(path):<22} accuracy {rep['accuracy']:.4f}   covered {rep['covered']}/{rep['questions']} "
            f"questions ({100 * rep['coverage']:.1f}%)")
    return 0


def _label(path) -> str:
    from pathlib import Path

    return Path(path).name


def demo(args=None) -> None:
    """Train skip-gram on gensim's bundled Lee corpus (seconds), save index 'demo-words', print neighbours."""
    from ..data.corpus import Corpus
    from ..evaluate.words import bundled_eval_path
    from ..trainers.word2vec import Word2Vec

    corpus_path = bundled_eval_path("wordsim353").parent / "lee_background.cor"
    if not corpus_path.is_file():
        raise InputError(f"{corpus_path}: the bundled demo corpus is missing from the installed gensim")
    show = not getattr(args, "no_progress", False)
    # one gensim thread: the same neighbours on every run (a few seconds for ~60k words)
    trainer = Word2Vec(mode="skipgram", dim=50, window=5, min_count=3, epochs=10, seed=0, backend="gensim",
                       workers=1)
    emb = trainer.fit(Corpus.from_files([corpus_path]), show_progress=show)
    path = trainer.to_store(DEMO_NAME, get_store(args), metric="cosine", kind="flat", overwrite=True,
                            meta={"corpus": corpus_path.name})
    out(f"word2vec: trained on {corpus_path.name} ({len(emb)} words), saved index {DEMO_NAME!r} to {path}")
    for word in DEMO_WORDS:
        if word in emb:
            hits = emb.most_similar(word, k=5)
            out(f"  {word:<11} -> " + ", ".join(f"{k} ({s:.2f})" for k, s in hits))
