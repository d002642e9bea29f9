"""`plantlake train baseline`: a small classifier on `image_training_set` that shows the set can
teach a model, and its model card.

Features per image: brightness, contrast and sharpness; per machine and tag on the image's line
the window's mean, min, max and last (`sensor_features`, a machine named like others on other
lines — welder1, welder2 — is one feature: `welder.weld_temp.max`); the alarm episodes of the
window (count, highest severity, seconds active within the window). The label is the ERP verdict
(fail = 1); rows without one are left out and counted. The split is in time: the earliest 70 %
of the captures train, the later ones test (the held-out period), as a model meets new parts.
scikit-learn's HistGradientBoostingClassifier takes the missing features as they are (a tag with
no readings in a window); importances are permutation importances on the held-out rows (ROC AUC;
features that carry the same signal share it, so each can look small). The card also scores the
same classifier on the sensor and alarm features alone: what the fused context knows without
the image.

The card (`_models/baseline/<time>__<set>.json`) holds the base rate, precision, recall, ROC AUC
and average precision on the held-out rows, the top importances, and the set it used: the
`image_training_set` table version and the manifest (content hash) of each day's build in it,
so `plantlake products build --as-of` gives the same rows again. The held-out predictions go
beside it as Parquet (`….predictions.parquet`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import warnings
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from plantlake.core.errors import ConfigError
from plantlake.core.lake import Lake

log = logging.getLogger(__name__)

PREFIX = "_models/baseline"
TRAIN_SHARE = 0.7
IMAGE_FEATURES = ("brightness", "contrast", "sharpness")
ITERATIONS = 100
REPEATS = 3  # permutations per feature for the importances (each is a prediction of the held-out rows)
MIN_ROWS, MIN_CLASS = 30, 3


@dataclass
class ModelCard:
    model: str
    trained_at: str
    #: the image_training_set version read, and each day's build (manifest content hash) in it
    table_version: int
    manifests: dict[str, str]
    set_hash: str
    rows: int
    unlabelled: int
    train_rows: int
    test_rows: int
    split_at: str
    test_from: str
    test_to: str
    base_rate: float
    precision: float
    recall: float
    roc_auc: float
    average_precision: float
    features: int
    #: the same classifier on the sensor and alarm features alone (no image features)
    context_roc_auc: float
    context_average_precision: float
    importances: list[dict[str, Any]] = field(default_factory=list)
    context_importances: list[dict[str, Any]] = field(default_factory=list)
    key: str = ""

    @property
    def beats_base_rate(self) -> bool:
        return self.average_precision > self.base_rate


def _machine(asset_id: str) -> str:
    """The machine's kind: the asset's last segment without its number (welder2 -> welder)."""
    return re.sub(r"[\d_-]+$", "", asset_id.rsplit("/", 1)[-1]) or asset_id.rsplit("/", 1)[-1]


def features(rows: list[dict[str, Any]], window_s: float) -> tuple[list[str], list[list[float]]]:
    """The feature names and one vector per row (NaN where a row has no value)."""
    nan = float("nan")
    vectors: list[dict[str, float]] = []
    for r in rows:
        v = {n: r[n] for n in IMAGE_FEATURES}
        for f in r["sensor_features"] or []:
            for stat in ("mean", "min", "max", "last"):
                v[f"{_machine(f['asset_id'])}.{f['tag']}.{stat}"] = f[stat]
        alarms = r["alarms"] or []
        at = r["captured_at"]
        v["alarms.count"] = float(len(alarms))
        v["alarms.max_severity"] = float(max((a["severity"] or 0 for a in alarms), default=0))
        v["alarms.active_s"] = float(sum(
            max(0.0, ((a["active_to"] or at) - max(a["active_from"], at - timedelta(seconds=window_s))).total_seconds())
            for a in alarms))
        vectors.append(v)
    names = sorted({k for v in vectors for k in v})
    return names, [[nan if v.get(n) is None else float(v[n]) for n in names] for v in vectors]


def train_baseline(lake: Lake, window_s: float, *, seed: int = 0) -> ModelCard:
    """Fit and evaluate the baseline on the current image_training_set; keep its card."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import (
        average_precision_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    from plantlake.pipeline.products import manifest
    from schemas import get_table

    table = get_table("image_training_set")
    version = lake.version(table)
    if version is None:
        raise ConfigError("train baseline: there is no image_training_set yet; build the products first "
                          "(plantlake products build --day …)")
    cols = ["capture_id", "part_serial", "captured_at", "brightness", "contrast", "sharpness", "sensor_features",
            "alarms", "label"]
    data = lake.dataset(table, version=version).to_table(columns=cols).sort_by([("captured_at", "ascending"),
                                                                                 ("capture_id", "ascending")])
    rows = data.to_pylist()
    labelled = [r for r in rows if r["label"] in ("pass", "fail")]
    y = np.array([1 if r["label"] == "fail" else 0 for r in labelled])
    if len(labelled) < MIN_ROWS or y.sum() < MIN_CLASS or (len(y) - y.sum()) < MIN_CLASS:
        raise ConfigError(f"train baseline: image_training_set version {version} has {len(labelled)} labelled images "
                          f"({int(y.sum())} failed); a baseline needs at least {MIN_ROWS}, with {MIN_CLASS} of each "
                          "verdict — ingest more days of images and inspections first")
    names, x = features(labelled, window_s)
    x = np.array(x, dtype=float)
    cut = int(len(labelled) * TRAIN_SHARE)
    # a split inside one timestamp would put simultaneous captures on both sides
    while 0 < cut < len(labelled) and labelled[cut]["captured_at"] == labelled[cut - 1]["captured_at"]:
        cut += 1
    train, test = slice(0, cut), slice(cut, None)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a feature no training row has: nanstd of nothing
        varies = np.nanstd(x[train], axis=0) > 0  # one no training row has, or that never changes, teaches nothing
    names, x = [n for n, k in zip(names, varies, strict=True) if k], x[:, varies]
    if y[test].sum() == 0 or y[test].sum() == len(y[test]) or y[train].sum() == 0:
        raise ConfigError(f"train baseline: the held-out period (from {labelled[cut]['captured_at']}) or the training "
                          "period has one verdict only; ingest a longer period")
    model = HistGradientBoostingClassifier(max_iter=ITERATIONS, learning_rate=0.1, random_state=seed)
    model.fit(x[train], y[train])
    score = model.predict_proba(x[test])[:, 1]
    predicted = (score >= 0.5).astype(int)
    # the same on the sensor and alarm context alone: what the fusion adds beyond the image
    context = [i for i, n in enumerate(names) if n not in IMAGE_FEATURES]
    alone = HistGradientBoostingClassifier(max_iter=ITERATIONS, learning_rate=0.1, random_state=seed)
    alone.fit(x[train][:, context], y[train])
    context_score = alone.predict_proba(x[test][:, context])[:, 1]
    imp = permutation_importance(model, x[test], y[test], scoring="roc_auc", n_repeats=REPEATS, random_state=seed)
    order = np.argsort(-imp.importances_mean)[:10]
    ctx_imp = permutation_importance(alone, x[test][:, context], y[test], scoring="roc_auc", n_repeats=REPEATS,
                                     random_state=seed)
    ctx_order = np.argsort(-ctx_imp.importances_mean)[:10]

    built = _builds_in(manifest.manifests(lake, "image_training_set"), version)
    set_hash = hashlib.sha256("\n".join(f"{d}:{h}" for d, h in sorted(built.items())).encode()).hexdigest()
    now = datetime.now(UTC)
    card = ModelCard(
        model=f"scikit-learn HistGradientBoostingClassifier(max_iter={ITERATIONS}, learning_rate=0.1), {len(names)} features",
        trained_at=now.isoformat(), table_version=version, manifests=built, set_hash=set_hash,
        rows=len(rows), unlabelled=len(rows) - len(labelled), train_rows=cut, test_rows=len(labelled) - cut,
        split_at=labelled[cut]["captured_at"].isoformat(), test_from=labelled[cut]["captured_at"].isoformat(),
        test_to=labelled[-1]["captured_at"].isoformat(), base_rate=float(y[test].mean()),
        precision=float(precision_score(y[test], predicted, zero_division=0)),
        recall=float(recall_score(y[test], predicted, zero_division=0)),
        roc_auc=float(roc_auc_score(y[test], score)), average_precision=float(average_precision_score(y[test], score)),
        features=len(names),
        context_roc_auc=float(roc_auc_score(y[test], context_score)),
        context_average_precision=float(average_precision_score(y[test], context_score)),
        importances=[{"feature": names[i], "importance": round(float(imp.importances_mean[i]), 4),
                      "std": round(float(imp.importances_std[i]), 4)} for i in order],
        context_importances=[{"feature": names[context[i]], "importance": round(float(ctx_imp.importances_mean[i]), 4),
                              "std": round(float(ctx_imp.importances_std[i]), 4)} for i in ctx_order])
    card.key = f"{PREFIX}/{now:%Y%m%dT%H%M%S%fZ}__{set_hash[:12]}.json"
    held = labelled[cut:]
    predictions = pa.table({"capture_id": [r["capture_id"] for r in held], "part_serial": [r["part_serial"] for r in held],
                            "captured_at": pa.array([r["captured_at"] for r in held], pa.timestamp("us", tz="UTC")),
                            "label": [r["label"] for r in held], "score": score.astype(float)})
    buf = io.BytesIO()
    pq.write_table(predictions, buf)
    lake.storage.put(card.key.removesuffix(".json") + ".predictions.parquet", buf.getvalue())
    lake.storage.put(card.key, json.dumps(asdict(card), indent=1).encode())
    log.info("baseline on image_training_set v%d: base rate %.3f, ROC AUC %.3f, AP %.3f -> %s",
             version, card.base_rate, card.roc_auc, card.average_precision, card.key)
    return card


def _builds_in(found: list[Any], version: int) -> dict[str, str]:
    """Per day, the content hash of the newest build committed at or before `version`."""
    out: dict[str, tuple[int, str]] = {}
    for m in found:
        if m.version is not None and m.version <= version and (m.day not in out or m.version > out[m.day][0]):
            out[m.day] = (m.version, m.content_hash)
    return {d: h for d, (_, h) in sorted(out.items())}


def latest_card(lake: Lake) -> ModelCard | None:
    keys = [k for k in lake.storage.list(PREFIX) if k.endswith(".json")]
    return ModelCard(**json.loads(lake.storage.get(sorted(keys)[-1]))) if keys else None


def predictions(lake: Lake, card: ModelCard) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(lake.storage.get(card.key.removesuffix(".json") + ".predictions.parquet")))
