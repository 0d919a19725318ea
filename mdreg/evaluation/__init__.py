"""Evaluation of trained runs: the metrics (``metric:*`` entries: the Inception metrics, the
shape metric, the toys' distances), a recipe's evaluation protocol and the resumable job that
samples and scores it (``tools/evaluate.py``), and sampling a stage into a folder
(``tools/sample.py``)."""
