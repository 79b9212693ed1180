"""Write the small example data sets of this folder (the README's snippets use them).

    python examples/data/make_data.py [DIR]   # (re)writes the four files below (into DIR), same bytes every run

* corpus.txt: 400 sentences (one per line) about four topics (animals, food, music, travel)
  drawn from small templates, so word2vec finds the topics in a second.
* edges.txt: a graph of three communities ("ann0".."ann13", "bob0".., "eve0"..), one
  ``source target`` edge per line, dense inside each community with a few bridges between them.
* interactions.csv: ``user,item,count`` with a header; 60 users, each drawn to one of three tastes
  (rock, jazz, classical records) and playing mostly records of that taste.
* features.csv: ``id,f0..f7,label`` with a header; 150 rows in three classes (Gaussian clusters
  in 8 dimensions) and 6 outliers labelled ``odd``.

Only the standard library's seeded ``random``: the files do not depend on numpy's generators.
"""

from __future__ import annotations

import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

TOPICS = {
    "animals": (["cat", "dog", "mouse", "horse", "rabbit", "fox", "owl", "sheep"],
                ["chased", "watched", "followed", "fed", "heard"],
                ["barn", "field", "forest", "garden", "meadow"]),
    "food": (["bread", "soup", "cheese", "apple", "rice", "pasta", "salad", "cake"],
             ["cooked", "baked", "tasted", "served", "sliced"],
             ["kitchen", "oven", "table", "market", "bakery"]),
    "music": (["guitar", "piano", "violin", "drum", "song", "melody", "band", "choir"],
              ["played", "tuned", "practised", "recorded", "sang"],
              ["concert", "studio", "stage", "hall", "festival"]),
    "travel": (["train", "ship", "plane", "bus", "bicycle", "car", "ferry", "taxi"],
               ["boarded", "missed", "caught", "drove", "booked"],
               ["station", "harbour", "airport", "city", "road"]),
}
PEOPLE = ["anna", "ben", "clara", "david", "emma", "felix"]


def corpus(rng: random.Random, n: int = 400) -> str:
    lines = []
    names = list(TOPICS)
    for _ in range(n):
        things, verbs, places = TOPICS[names[rng.randrange(len(names))]]
        a, b, c = rng.sample(things, 3)
        form = rng.randrange(3)
        if form == 0:
            line = f"the {a} and the {b} were in the {rng.choice(places)}"
        elif form == 1:
            line = f"{rng.choice(PEOPLE)} {rng.choice(verbs)} the {a} near the {rng.choice(places)}"
        else:
            line = f"in the {rng.choice(places)} the {a} {rng.choice(verbs)} a {b} and a {c}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def edges(rng: random.Random) -> str:
    groups = {"ann": 14, "bob": 14, "eve": 14}
    nodes = {g: [f"{g}{i}" for i in range(n)] for g, n in groups.items()}
    out = set()
    for members in nodes.values():
        for i, u in enumerate(members):
            for v in members[i + 1:]:
                if rng.random() < 0.35:
                    out.add((u, v))
    names = list(nodes)
    for _ in range(6):  # a few bridges
        g, h = rng.sample(names, 2)
        out.add((rng.choice(nodes[g]), rng.choice(nodes[h])))
    return "".join(f"{u} {v}\n" for u, v in sorted(out))


def interactions(rng: random.Random) -> str:
    tastes = ["rock", "jazz", "classical"]
    items = {t: [f"{t}-{i:02d}" for i in range(12)] for t in tastes}
    rows = ["user,item,count"]
    for u in range(60):
        taste = tastes[u % 3]
        played = set()
        for _ in range(rng.randint(8, 14)):
            pool = items[taste] if rng.random() < 0.85 else items[rng.choice(tastes)]
            played.add(rng.choice(pool))
        rows += [f"user{u:02d},{item},{rng.randint(1, 9)}" for item in sorted(played)]
    return "\n".join(rows) + "\n"


def features(rng: random.Random) -> str:
    centres = {"circle": [0.0] * 8, "square": [3.0] * 4 + [0.0] * 4, "star": [0.0] * 4 + [3.0] * 4}
    rows = ["id," + ",".join(f"f{j}" for j in range(8)) + ",label"]
    i = 0
    for label, centre in centres.items():
        for _ in range(50):
            vals = [c + rng.gauss(0.0, 0.6) for c in centre]
            rows.append(f"r{i:03d}," + ",".join(f"{v:.3f}" for v in vals) + f",{label}")
            i += 1
    for _ in range(6):
        vals = [rng.uniform(-6.0, 9.0) for _ in range(8)]
        rows.append(f"r{i:03d}," + ",".join(f"{v:.3f}" for v in vals) + ",odd")
        i += 1
    return "\n".join(rows) + "\n"


FILES = {"corpus.txt": corpus, "edges.txt": edges, "interactions.csv": interactions, "features.csv": features}


def main(out_dir=HERE) -> None:
    out_dir = Path(out_dir)
    for name, make in FILES.items():
        (out_dir / name).write_text(make(random.Random(0)), encoding="utf-8")
        print(f"wrote {out_dir / name}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1] if len(sys.argv) > 1 else HERE)
