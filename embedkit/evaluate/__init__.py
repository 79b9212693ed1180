"""Evaluation of embeddings, recommenders and indexes.

word_similarity, word_analogy           (words)
node_classification, link_prediction    (graphs)
ranking_metrics, rmse                   (ranking)
precision_at_1, map_at_r, knn_accuracy  (encoders)
anomaly_auc, average_precision, anomaly_report   (anomaly: inputs checked, one-line errors)
compare, cross_validate, grid_search    (selection: recommenders side by side, model selection)
index_recall                            (index)
"""

from __future__ import annotations

import importlib

_LAZY = {
    "word_similarity": "words", "word_analogy": "words", "bundled_eval_path": "words",
    "similarity_report": "words", "analogy_report": "words",
    "node_classification": "graphs", "link_prediction": "graphs", "split_edges": "graphs", "read_labels": "graphs",
    "ranking_metrics": "ranking", "rmse": "ranking", "topk_metrics": "ranking",
    "precision_at_1": "encoders", "map_at_r": "encoders", "knn_accuracy": "encoders", "anomaly_auc": "anomaly",
    "average_precision": "anomaly", "anomaly_report": "anomaly",
    "compare": "selection", "cross_validate": "selection", "grid_search": "selection", "folds": "selection",
    "index_recall": "index",
}

__all__ = list(_LAZY)


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'embedkit.evaluate' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
