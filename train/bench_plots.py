"""The plots ``glimpse bench`` writes next to its ``result.json`` (matplotlib, Agg).

* ``anytime.png``, :func:`plot_anytime`: per env, the accuracy of the class scores the
  policy emits at each step ``t = 1..T`` (not written for a report without any anytime
  curve, :func:`has_anytime`: a full-image entry's alone).
* ``accuracy_glimpses.png``, :func:`plot_accuracy_glimpses`: accuracy against the number of
  glimpses used, one panel per env. A fixed-length policy is a curve: its anytime accuracy
  at ``t``, what it scores when stopped after ``t`` glimpses. An adaptive (learned-stopping)
  policy (measured on an adaptive env, ``stop="action"``) is one point: (its
  ``mean_glimpses``, final accuracy). The paper's RAM rows of the env (a model trained for
  each number of glimpses, :data:`train.leaderboard.PAPER`) are drawn as reference points.
* A full-image entry (a supervised baseline, ``full_image`` true: not glimpse-limited) has
  no anytime curve and uses no glimpses: both plots draw it as a dashed horizontal line at
  its accuracy, labelled "full image (not glimpse-limited)" (only "(not glimpse-limited)"
  after a label that says "full image"), never as a point at some number of glimpses.

:func:`glimpse_curve` is the one place that decides what an entry contributes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GlimpseCurve",
    "glimpse_curve",
    "has_anytime",
    "is_adaptive",
    "paper_points",
    "plot_accuracy_glimpses",
    "plot_anytime",
]


@dataclass(frozen=True)
class GlimpseCurve:
    """What one bench result contributes to the accuracy-against-glimpses plot.

    Attributes:
        glimpses: x values, glimpses used.
        accuracy: y values, accuracies in [0, 1] (same length as ``glimpses``).
        adaptive: True: one point of a policy that chooses when to stop (``glimpses`` is its
            mean over episodes); False: the anytime curve of a fixed-length policy.
        full_image: True: a full-image entry (not glimpse-limited): ``glimpses`` is empty
            and ``accuracy`` its one final accuracy, drawn as a horizontal line.
    """

    glimpses: tuple[float, ...]
    accuracy: tuple[float, ...]
    adaptive: bool
    full_image: bool = False


def is_adaptive(entry: Mapping[str, Any]) -> bool:
    """Whether a bench result was measured on an adaptive env (``stop="action"``: the
    registered ``*Adaptive-v0`` ids, or ``stop`` in its ``env_kwargs``)."""
    from glimpse_env.registration import VARIANTS

    variant = VARIANTS.get(entry.get("env_id", ""))
    kwargs = {**(variant.kwargs if variant else {}), **(entry.get("env_kwargs") or {})}
    return kwargs.get("stop") == "action"


def glimpse_curve(entry: Mapping[str, Any]) -> GlimpseCurve:
    """The accuracy-against-glimpses values of one bench result (a ``Result.to_dict()``).

    Args:
        entry: the result of one env. On an adaptive env (:func:`is_adaptive`), where the
            policy stops itself, one point ``(mean_glimpses, accuracy)``; a full-image entry
            (``full_image`` true), no glimpses and its accuracy; else the anytime accuracy
            at ``t = 1..T``.
    """
    if entry.get("full_image"):
        return GlimpseCurve((), (float(entry["accuracy"]),), adaptive=False, full_image=True)
    mean = entry.get("mean_glimpses")
    if is_adaptive(entry) and isinstance(mean, int | float) and not isinstance(mean, bool):
        return GlimpseCurve((float(mean),), (float(entry["accuracy"]),), adaptive=True)
    curve = [float(a) for a in entry["anytime_accuracy"]]
    return GlimpseCurve(tuple(float(t) for t in range(1, len(curve) + 1)), tuple(curve), False)


def paper_points(env_id: str) -> list[tuple[int, float]]:
    """``(glimpses, accuracy)`` of the paper's RAM rows of ``env_id`` (of its fixed-length
    twin for an adaptive id) trained for a fixed number of learned glimpses (the
    random-glimpse ablation and the baselines left out)."""
    from train.leaderboard import PAPER

    return [
        (row.glimpses, 1.0 - row.error_percent / 100.0)
        for row in PAPER.get(env_id.replace("Adaptive-", "-"), ())
        if row.glimpses is not None and "random" not in row.model
    ]


def has_anytime(report: Mapping[str, Any]) -> bool:
    """Whether some entry of ``report`` has an anytime curve (a full-image entry has none):
    :func:`plot_anytime` has something to draw."""
    return any(entry.get("anytime_accuracy") for entry in report["results"].values())


def plot_anytime(report: Mapping[str, Any], path: str) -> None:
    """``anytime.png``: the anytime-accuracy curve of every env of ``report`` (one axes)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (env_id, entry) in enumerate(report["results"].items()):
        curve, color = glimpse_curve(entry), f"C{i % 10}"
        if curve.full_image:
            _full_image_line(ax, curve, env_id, color)
            continue
        anytime = entry["anytime_accuracy"]
        ax.plot(range(1, len(anytime) + 1), anytime, marker="o", label=env_id, color=color)
    ax.set_xlabel("glimpses seen (t)")
    ax.set_ylabel("accuracy of the step-t class scores")
    ax.set_title(f"anytime accuracy: {report['label']} ({report['mode']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def _full_image_line(ax: Any, curve: GlimpseCurve, label: str, color: str) -> None:
    """A full-image entry: a dashed horizontal line at its accuracy (it uses no glimpses)."""
    what = "" if "full image" in label.lower() else ": full image"
    ax.axhline(curve.accuracy[0], linestyle="--", color=color,
               label=f"{label}{what} (not glimpse-limited)")  # fmt: skip


def _accuracy_glimpses_title(reports: Sequence[Mapping[str, Any]]) -> str:
    """What the marks of :func:`plot_accuracy_glimpses` are, for the kinds of entry shown."""
    curves = [glimpse_curve(entry) for r in reports for entry in r["results"].values()]
    kinds = [
        (
            any(not (c.full_image or c.adaptive) for c in curves),
            "lines: the scores after t glimpses",
        ),
        (any(c.adaptive for c in curves), "stars: policies that stop themselves"),
        (any(c.full_image for c in curves), "dashed: full image, not glimpse-limited"),
    ]
    return "accuracy against glimpses (" + "; ".join(text for shown, text in kinds if shown) + ")"


def plot_accuracy_glimpses(reports: Sequence[Mapping[str, Any]], path: str) -> None:
    """``accuracy_glimpses.png``: accuracy against glimpses used, one panel per env.

    Args:
        reports: ``glimpse bench`` reports (``result.json``), one line or point per report
            and env (labelled with the report's ``label``), plus the paper's RAM points.
        path: the PNG to write.
    """
    import matplotlib.pyplot as plt

    env_ids = list(dict.fromkeys(env for r in reports for env in r["results"]))
    columns = min(2, max(1, len(env_ids)))
    rows = -(-len(env_ids) // columns) if env_ids else 1
    fig, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 3.8 * rows), squeeze=False)
    for ax, env_id in zip(axes.flat, env_ids, strict=False):
        for i, report in enumerate(reports):
            entry = report["results"].get(env_id)
            if entry is None:
                continue
            curve, color = glimpse_curve(entry), f"C{i % 10}"
            if curve.full_image:
                _full_image_line(ax, curve, report["label"], color)
            elif curve.adaptive:
                ax.plot(curve.glimpses, curve.accuracy, marker="*", markersize=12, color=color,
                        linestyle="none", label=f"{report['label']} (stops itself)")  # fmt: skip
            else:
                ax.plot(curve.glimpses, curve.accuracy, marker="o", label=report["label"],
                        color=color)  # fmt: skip
        paper = paper_points(env_id)
        if paper:
            ax.plot(*zip(*paper, strict=True), marker="x", linestyle="none", color="black",
                    label="paper: RAM trained for T glimpses")  # fmt: skip
        ax.set_title(env_id, fontsize=10)
        ax.set_xlabel("glimpses used")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(env_ids) :]:
        ax.set_visible(False)
    fig.suptitle(_accuracy_glimpses_title(reports), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
