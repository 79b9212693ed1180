"""2-D maps and loss curves: the pictures hold what they should, bad input gets one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import embedkit as ek  # noqa: E402
from embedkit import plot  # noqa: E402
from embedkit.cli import main  # noqa: E402
from embedkit.errors import InputError, ParseError  # noqa: E402
from embedkit.store import Store  # noqa: E402

TAB10_BLUE = (31, 119, 180)
TAB10_ORANGE = (255, 127, 14)


def clusters(n=12, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    keys = [f"x{i}" for i in range(n)] + [f"y{i}" for i in range(n)]
    vecs = np.vstack([np.eye(dim)[0] + 0.05 * rng.standard_normal((n, dim)),
                      np.eye(dim)[1] + 0.05 * rng.standard_normal((n, dim))]).astype(np.float32)
    return ek.Embeddings(keys, vecs)


def pixels_near(path, rgb, tol=40) -> int:
    import matplotlib.image as mpimg

    img = mpimg.imread(str(path))[..., :3] * 255
    return int((np.abs(img - np.array(rgb)).max(axis=-1) < tol).sum())


def test_read_labels_formats(tmp_path):
    f = tmp_path / "labels.txt"
    f.write_text("# key label\nx0\tgroup one\nx1,g2\nx2 g3 more\n\n", encoding="utf-8")
    assert plot.read_labels(f) == {"x0": "group one", "x1": "g2", "x2": "g3 more"}
    f.write_text("x0 a\nlonely\n", encoding="utf-8")
    with pytest.raises(ParseError, match=r"labels.txt:2: expected 'KEY LABEL'"):
        plot.read_labels(f)
    f.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(InputError, match="no labels"):
        plot.read_labels(f)


def test_pca_separates_clusters_and_is_deterministic():
    emb = clusters()
    xy = plot.project_2d(emb.vectors, "pca")
    a, b = xy[:12, 0], xy[12:, 0]
    assert (a.max() < b.min()) or (b.max() < a.min())  # the first axis splits the two clusters
    # axis signs are fixed, so mirrored data gives the same picture (SVD alone may flip them)
    np.testing.assert_allclose(plot.project_2d(-emb.vectors, "pca"), xy, atol=1e-6)
    assert plot.project_2d(emb.vectors, "tsne", seed=0).shape == (24, 2)


def test_map_is_coloured_by_label(tmp_path):
    emb = clusters()
    labels = {k: ("left" if k.startswith("x") else "right") for k in emb.keys}
    out = tmp_path / "map.png"
    res = plot.plot_map(emb, out, labels=labels, title="two clusters")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert res["labels"][:12] == ["left"] * 12 and res["xy"].shape == (24, 2)
    assert pixels_near(out, TAB10_BLUE) > 50 and pixels_near(out, TAB10_ORANGE) > 50

    unlabelled = tmp_path / "plain.png"
    plot.plot_map(emb, unlabelled)
    assert pixels_near(unlabelled, TAB10_ORANGE) == 0  # one colour only without labels


def test_many_labels_pool_and_sampling(tmp_path):
    rng = np.random.default_rng(1)
    emb = ek.Embeddings([f"k{i}" for i in range(300)], rng.standard_normal((300, 5)).astype(np.float32))
    labels = {f"k{i}": f"L{i % 30}" for i in range(300)}
    res = plot.plot_map(emb, tmp_path / "m.svg", labels=labels, max_points=120, seed=3)
    assert len(res["keys"]) == 120
    assert plot.OTHER in res["labels"] and len(set(res["labels"])) == plot.MAX_COLOURS
    assert (tmp_path / "m.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(InputError, match="none of the labelled keys"):
        plot.plot_map(emb, tmp_path / "n.png", labels={"zzz": "a"})


@pytest.mark.parametrize("kwargs,words", [
    ({"method": "umap"}, "'method'"),
    ({"out": "map.jpg2"}, ".png"),
    ({"max_points": 1}, "'max_points'"),
])
def test_map_rejects_bad_options(tmp_path, kwargs, words):
    out = tmp_path / kwargs.pop("out", "map.png")
    with pytest.raises(InputError, match=words):
        plot.plot_map(clusters(), out, **kwargs)


def test_loss_curve(tmp_path):
    out = plot.plot_loss([4.0, 2.0, 1.5, 1.2, 1.1], tmp_path / "loss.png", title="w2v")
    assert out.stat().st_size > 1000
    assert pixels_near(out, (37, 99, 235), tol=30) > 30  # the curve is drawn
    with pytest.raises(InputError, match="empty"):
        plot.plot_loss([], tmp_path / "l.png")
    with pytest.raises(InputError, match="epoch 2"):
        plot.plot_loss([1.0, float("nan")], tmp_path / "l.png")


def test_cli_plot(tmp_path, capsys):
    root = tmp_path / "store"
    store = Store(root)
    emb = clusters()
    store.save("c", emb.to_index(), meta={"trainer": "Word2Vec", "loss_history": [3.0, 2.5, 2.2]})
    store.save("noloss", emb.to_index())
    labels = tmp_path / "labels.tsv"
    labels.write_text("".join(f"{k}\t{'left' if k[0] == 'x' else 'right'}\n" for k in emb.keys))
    base = ["--store", str(root), "plot"]
    assert main(base + ["c", "--out", str(tmp_path / "map.png"), "--labels", str(labels)]) == 0
    assert "24 labelled" in capsys.readouterr().out
    assert pixels_near(tmp_path / "map.png", TAB10_ORANGE) > 50
    assert main(base + ["c", "--out", str(tmp_path / "t.png"), "--method", "tsne"]) == 0
    assert main(base + ["c", "--loss", "--out", str(tmp_path / "loss.png")]) == 0
    assert "3 epochs" in capsys.readouterr().out
    for argv, words in [
        (["noloss", "--loss", "--out", str(tmp_path / "x.png")], "no loss history"),
        (["c", "--loss", "--labels", str(labels), "--out", str(tmp_path / "x.png")], "drop --labels"),
        (["c", "--out", str(tmp_path / "x.png"), "--labels", str(tmp_path / "missing.txt")], "no such file"),
        (["nope", "--out", str(tmp_path / "x.png")], "no index named 'nope'"),
        (["c", "--out", str(tmp_path / "nodir" / "x.png")], "no such directory"),
    ]:
        assert main(base + argv) == 1, argv
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, err


# ---------------------------------------------------------------- issue 15, item 8: maps worth looking at
def test_pca_axes_say_the_explained_variance(tmp_path):
    emb = clusters()
    res = plot.plot_map(emb, tmp_path / "m.svg")
    first, second = res["explained_variance"]
    assert 0.5 < first <= 1.0 and 0.0 <= second <= first and first + second <= 1.0 + 1e-9
    svg = (tmp_path / "m.svg").read_text()
    assert "of variance" in svg
    assert plot.plot_map(emb, tmp_path / "t.png", method="tsne")["explained_variance"] is None


def test_picked_keys_are_written_never_sampled_away_and_stand_out(tmp_path):
    rng = np.random.default_rng(1)
    emb = ek.Embeddings([f"k{i}" for i in range(2000)], rng.standard_normal((2000, 5)).astype(np.float32))
    pick = ["k1999", "k1000", "k7"]
    for seed in range(3):
        res = plot.plot_map(emb, tmp_path / "m.svg", max_points=50, seed=seed, label_keys=pick)
        assert set(pick) <= set(res["keys"]) and len(res["keys"]) == 50
        assert res["annotated"] == pick
    svg = (tmp_path / "m.svg").read_text()
    assert svg.count('id="key-label-') == 3  # three texts written (drawn as paths: the keys are not in the svg)
    assert svg.count("stroke: #111111; stroke-width: 0.9") >= 3  # dark edges on the picked points
    with pytest.raises(InputError, match=r"'k20000'.*did you mean 'k200'"):
        plot.plot_map(emb, tmp_path / "m.png", label_keys=["k1", "k20000"])


def test_big_maps_write_a_readable_subset_of_the_first_keys(tmp_path):
    rng = np.random.default_rng(2)
    emb = ek.Embeddings([f"word{i}" for i in range(400)], rng.standard_normal((400, 8)).astype(np.float32))
    res = plot.plot_map(emb, tmp_path / "m.png", label_top=30)
    written = res["annotated"]
    assert 0 < len(written) <= 30 and set(written) <= {f"word{i}" for i in range(30)} and written[0] == "word0"
    assert plot.plot_map(emb, tmp_path / "m.png", label_top=0)["annotated"] == []
    small = clusters()
    assert plot.plot_map(small, tmp_path / "s.png")["annotated"] == small.keys  # every key when few


def test_one_epoch_loss_is_not_a_lone_dot(tmp_path):
    out = plot.plot_loss([0.6931], tmp_path / "one.svg")
    svg = out.read_text()
    assert "epoch 1: loss 0.6931" in svg and "train more epochs" in svg


def test_cli_plot_label_keys_and_messages(tmp_path, capsys):
    root = tmp_path / "store"
    emb = clusters()
    Store(root).save("c", emb.to_index(), meta={"trainer": "Word2Vec", "loss_history": [3.0]})
    keys = tmp_path / "keys.txt"
    keys.write_text("# picked\nx1\ny2\n", encoding="utf-8")
    base = ["--store", str(root), "plot"]
    assert main(base + ["c", "--out", str(tmp_path / "m.png"), "--label-keys", "x0,y0"]) == 0
    said = capsys.readouterr().out
    assert "2 keys written" in said and "% of the variance" in said
    assert main(base + ["c", "--out", str(tmp_path / "m.png"), "--label-keys", f"@{keys}"]) == 0
    assert "2 keys written" in capsys.readouterr().out
    assert main(base + ["c", "--loss", "--out", str(tmp_path / "l.png")]) == 0
    assert "1 epoch to" in capsys.readouterr().out
    assert main(base + ["cc", "--out", str(tmp_path / "m.png")]) == 1
    err = capsys.readouterr().err
    assert str(root.resolve()) in err and "did you mean 'c'" in err
    assert main(["--store", str(tmp_path / "none"), "plot", "c", "--out", str(tmp_path / "m.png")]) == 1
    assert "does not exist" in capsys.readouterr().err
