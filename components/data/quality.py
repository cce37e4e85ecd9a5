"""The data-quality report: a JSON summary and a self-contained HTML page (tables, bar charts and
example images inlined), written by the data preparation stage next to its splits."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def missing_shares(features: np.ndarray, names: list[str]) -> dict[str, float]:
    """Share of missing values per table column (columns without any are left out)."""
    if features.dtype.kind != "f" or features.ndim != 2:
        return {}
    shares = np.isnan(features).mean(axis=0)
    return {name: round(float(share), 4) for name, share in zip(names, shares) if share > 0}


def constant_columns(features: np.ndarray, names: list[str]) -> list[str]:
    if features.ndim != 2 or not len(features):
        return []
    with np.errstate(all="ignore"):
        spread = np.nanmax(features, axis=0) - np.nanmin(features, axis=0)
    return [name for name, value in zip(names, spread) if not np.isfinite(value) or value == 0]


def _image_tag(pixels: np.ndarray, caption: str) -> str:
    from PIL import Image

    array = np.asarray(pixels)
    array = array[0] if array.shape[0] == 1 else np.transpose(array, (1, 2, 0))
    image = Image.fromarray(array.astype(np.uint8))
    scale = max(1, 96 // max(image.size))
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'<figure><img src="data:image/png;base64,{encoded}"><figcaption>{html.escape(caption)}</figcaption></figure>'


def _class_bars(counts: dict[str, int]) -> str:
    """The class distribution as a table with a bar per class, drawn by the page itself: a rendered
    chart needed pyplot, whose import and drawing took 1.2 s of every data preparation."""
    largest = max(max(counts.values()), 1)
    rows = "".join(
        f"<tr><td>{html.escape(str(name))}</td><td>{count}</td>"
        f'<td><div class="bar" style="width:{200 * count / largest:.0f}px"></div></td></tr>'
        for name, count in counts.items()
    )
    return f"<table><tr><th>class</th><th>samples</th><th></th></tr>{rows}</table>"


def _shown_value(name: str, value: float, categories: dict[str, list[str]]) -> Any:
    """A table value as the report shows it: a category's own text (not its code), missing as None."""
    if np.isnan(value):
        return None
    if name in categories:
        return categories[name][int(value) - 1] if 0 < value <= len(categories[name]) else "(unknown)"
    return round(float(value), 4)


def examples(
    features: np.ndarray,
    positions: list[int],
    ids: Sequence[str],
    labels: Sequence[str],
    modality: str,
    names: list[str],
    limit: int,
    categories: dict[str, list[str]] | None = None,
    image_shape: tuple[int, ...] | list[int] = (),
    notes: list[str] | None = None,
) -> list[dict[str, Any]]:
    """A few flagged samples to show, in the order given: an inline image (with the row's values when
    the table lists images next to other columns), the text, or the row's values; ``notes`` (one per
    position: a suggested label, say) go into the caption or a column of their own."""
    shown = []
    categories = categories or {}
    for index, position in enumerate(positions[:limit]):
        note = notes[index] if notes else ""
        entry: dict[str, Any] = {"id": ids[position], "label": labels[position]}
        if note:
            entry["note"] = note
        if modality == "image":
            entry["html"] = _image_tag(
                features[position], f"{ids[position]} (label {labels[position]}{'; ' + note if note else ''})"
            )
        elif modality == "multimodal" and image_shape:
            width = len(names) - 1
            row = features[position]
            values = ", ".join(f"{name} {_shown_value(name, value, categories)}" for name, value in zip(names[:-1], row[:width]))
            caption = f"{ids[position]} (label {labels[position]}; {values})"
            entry["html"] = _image_tag(row[width:].reshape(image_shape), caption)
        elif modality in ("text", "multimodal"):
            vocabulary = categories.get(names[-1], [])
            width = len(names) - 1 if modality == "multimodal" else 0
            codes = features[position][width:]
            words = [vocabulary[int(code) - 1] if 0 < code <= len(vocabulary) else "?" for code in codes if code > 0]
            table = {name: _shown_value(name, value, categories) for name, value in zip(names[:-1], features[position][:width])}
            entry["values"] = {**table, "text": " ".join(words)}
        elif modality == "sequence":
            steps = features[position]
            valid = ~np.isnan(steps).all(axis=1)
            entry["values"] = {"steps": int(valid.sum())} | {
                f"{name} mean": round(float(np.nanmean(steps[:, channel])), 4) for channel, name in enumerate(names)
            }
        else:
            entry["values"] = {name: _shown_value(name, value, categories) for name, value in zip(names, features[position])}
        shown.append(entry)
    return shown


def _table(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(report: dict[str, Any], example_sets: dict[str, list[dict[str, Any]]]) -> str:
    """The report as one HTML page with everything inlined (it opens from MLflow or a file)."""
    sections = [
        f"<h1>Data quality: {html.escape(report['data_path'])}</h1>",
        f"<p>{report['samples_loaded']} samples loaded ({html.escape(report['modality'])}, {html.escape(report['task_type'])}), "
        f"{report['samples_used']} used after cleaning. Data version {html.escape(str(report.get('data_version', 'untracked')))}, "
        f"report of {html.escape(str(report.get('created', '')))}.</p>",
        "<h2>Decisions</h2><ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in report["decisions"]) + "</ul>",
    ]
    if report["warnings"]:
        sections.append(
            "<h2>Warnings</h2><ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in report["warnings"]) + "</ul>"
        )
    sections.append("<h2>Splits</h2>" + _table([[name, size] for name, size in report["splits"].items()], ["split", "samples"]))
    leakage = report["leakage"]
    sections.append(
        "<h2>Leakage check</h2><p>"
        + (
            "No input appears in two splits."
            if not leakage["shared_inputs"]
            else "Inputs shared between splits: " + html.escape(json.dumps(leakage["shared_inputs"]))
        )
        + "</p>"
    )
    if report.get("class_counts"):
        counts = report["class_counts"]
        sections.append(
            f"<h2>Classes</h2><p>Largest to smallest class: {report['imbalance_ratio']:.1f}x.</p>" + _class_bars(counts)
        )
    if report.get("missing_shares"):
        sections.append(
            "<h2>Missing values</h2>"
            + _table([[name, f"{share:.1%}"] for name, share in report["missing_shares"].items()], ["column", "missing"])
        )
    if report.get("constant_columns"):
        sections.append("<h2>Constant columns</h2><p>" + html.escape(", ".join(report["constant_columns"])) + "</p>")
    for kind in ("duplicates", "conflicts", "outliers", "label_errors"):
        finding = report[kind]
        title = kind.replace("_", " ").capitalize()
        sections.append(
            f"<h2>{title}</h2><p>{finding['count']} found; policy <b>{html.escape(finding['policy'])}</b>. "
            f"{html.escape(finding.get('method', ''))}</p>"
        )
        shown = example_sets.get(kind, [])
        if shown and "html" in shown[0]:
            sections.append('<div class="examples">' + "".join(entry["html"] for entry in shown) + "</div>")
        elif shown:
            columns = list(shown[0]["values"])
            noted = any("note" in entry for entry in shown)
            rows = [
                [entry["id"], entry["label"], *([entry.get("note", "")] if noted else []), *entry["values"].values()]
                for entry in shown
            ]
            sections.append(_table(rows, ["id", "label", *(["model suggests"] if noted else []), *columns]))
        if finding["ids"]:
            listed = ", ".join(finding["ids"][:200]) + (" ..." if len(finding["ids"]) > 200 else "")
            sections.append(f"<details><summary>All ids</summary><p>{html.escape(listed)}</p></details>")
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
        ".examples{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0;font-size:11px;text-align:center}"
        ".bar{height:12px;background:#1f77b4}"
    )
    return f"<!doctype html><html><head><meta charset='utf-8'><title>Data quality</title><style>{style}</style></head><body>{''.join(sections)}</body></html>\n"


def write_report(folder: Path, report: dict[str, Any], example_sets: dict[str, list[dict[str, Any]]]) -> tuple[Path, Path]:
    json_path, html_path = Path(folder) / "quality.json", Path(folder) / "quality.html"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    html_path.write_text(render_html(report, example_sets))
    return json_path, html_path


def headline_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The figures `dvc metrics show` lists."""
    figures = {
        "samples_loaded": report["samples_loaded"],
        "samples_used": report["samples_used"],
        "duplicates": report["duplicates"]["count"],
        "conflicts": report["conflicts"]["count"],
        "outliers": report["outliers"]["count"],
        "label_errors": report["label_errors"]["count"],
        "shared_inputs_between_splits": sum(report["leakage"]["shared_inputs"].values()),
        **{f"{split}_samples": size for split, size in report["splits"].items()},
    }
    if report.get("imbalance_ratio") is not None:
        figures["imbalance_ratio"] = round(report["imbalance_ratio"], 4)
    return {key: float(value) for key, value in figures.items()}
