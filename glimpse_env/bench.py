"""GlimpseBench: benchmark any attention policy on an env's fixed test canvases.

The protocol (versioned, :data:`PROTOCOL` = ``"GlimpseBench-v1"``): per (policy, env),
every fixed test canvas of the env (all 10,000 unless ``n_images`` asks for the first
``n``), the env's ``n_glimpses``, one rollout per image from the native vector env
(``gym.make_vec(env_id, split="test", sequential=True, autoreset_mode=SAME_STEP)``, image
``i`` visited exactly once and counted through ``info["image_index"]``, as
:func:`agents.policy.evaluate_policy` does), with the policy's deterministic actions or, in
``"sample"`` mode, one seeded rollout per seed. It reports:

* **final accuracy**, what the env judges (the argmax of the last step's scores), with a 95%
  Wilson score interval over images;
* **anytime accuracy**: the accuracy of the argmax of the class scores the policy emits at
  every step ``t = 1..T`` (the env judges only the last; the harness reads every step's
  scores from the actions), and its mean over ``t`` (a policy that knows early scores
  higher);
* **where it looks**: the share of episodes in which some glimpse the policy chose
  (glimpses ``2..T``; glimpse 1 is the env's start location) is centred within
  ``radius_px`` pixels of the digit's 28x28 box (the layout's ``digit_pos``; on plain
  28x28 MNIST the digit is the whole canvas), the share per glimpse ``1..T``, and the mean
  distance in pixels from the first chosen glimpse (glimpse 2) to the digit's centre;
* **cost**: the policy's parameters when it reports them (an ``n_parameters`` attribute)
  and evaluation episodes per second.

A full-image classifier (a supervised baseline that sees the whole canvas in one pass) is
an entry too, marked not glimpse-limited: a :class:`Result` with ``full_image=True``, no
glimpses, anytime curve or locations (``agents.baselines.bench_baseline`` measures one).

A policy is a bare callable ``act(obs) -> action`` for ONE observation dict exactly as
``env.step`` takes it (the harness loops it over the batch), a callable marked batched with
:func:`batched`, or an object with the tiny protocol of :class:`BenchPolicy`
(:class:`agents.policy.Policy` objects already fit): the user manual of the protocol is
:mod:`glimpse_env.bench_policy`, whose public names this module re-exports::

    import numpy as np
    from glimpse_env.bench import evaluate

    def look_at_centre(obs):
        return np.array([0, 0, *np.eye(10)[3]], dtype=np.float32)  # always says "3"

    result = evaluate(look_at_centre, "GlimpseMNIST-v0", n_images=1000)
    print(result.accuracy, result.accuracy_interval, result.anytime_accuracy)

NumPy and Gymnasium only: benchmarking a NumPy policy imports no torch. A policy whose output
is wrong (shape, dtype, NaN) or that raises gets one :class:`BenchPolicyError` naming it and
what was expected.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from glimpse_env.actions import LOCATION_DIM
from glimpse_env.bench_policy import (
    BatchedCallable,
    BenchPolicy,
    BenchPolicyError,
    _check_actions,
    _Guarded,
    as_policy,
    batched,
    policy_name,
)
from glimpse_env.envs import DIGIT_SIZE
from glimpse_env.play import play_batches

__all__ = [
    "MODES",
    "PROTOCOL",
    "TIMING_KEYS",
    "BatchedCallable",
    "BenchPolicy",
    "BenchPolicyError",
    "Result",
    "Rollout",
    "as_policy",
    "batched",
    "evaluate",
    "recorded_env_kwargs",
    "summarise",
    "wilson_interval",
]

#: The version of the protocol; a change to what is measured or how gets a new version.
PROTOCOL = "GlimpseBench-v1"
MODES = ("deterministic", "sample")
#: How :attr:`Result.accuracy_interval` is computed.
INTERVAL_METHOD = "wilson-95-over-images"
#: Result entries that are timings: everything else is identical between two runs.
TIMING_KEYS = ("wall_seconds", "episodes_per_second")
#: The 0.975 quantile of the standard normal (a two-sided 95% interval).
Z_95 = 1.959963984540054
#: Env keyword arguments the protocol fixes itself.
_PROTOCOL_KWARGS = ("split", "sequential", "start", "reward", "autoreset_mode", "num_envs")


def wilson_interval(n_correct: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``n_correct / n`` (95% by default).

    Returns:
        ``(low, high)`` in [0, 1]; ``(0.0, 1.0)`` when ``n == 0``.
    """
    if n <= 0:
        return 0.0, 1.0
    p = n_correct / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Rollout:
    """One rollout per image with one seed (in ``"deterministic"`` mode the only one).

    A full-image entry has no glimpses: its ``anytime_accuracy`` and ``on_digit_by_glimpse``
    are empty, ``anytime_mean``, ``on_digit_share``, ``first_glimpse_distance_px`` and the
    glimpse counts None.

    Attributes:
        seed: the reset seed and, in ``"sample"`` mode, the sampling seed.
        accuracy: final accuracy (the env's judgement at the last step).
        n_correct: images classified right.
        accuracy_interval: 95% Wilson interval of ``accuracy`` over images.
        anytime_accuracy: ``T`` accuracies of each step's argmax ``t = 1..T``.
        anytime_mean: their mean (None for a full-image entry).
        on_digit_share: share of episodes with a chosen glimpse (2..T) within the radius of
            the digit's box (None when ``T == 1``: no glimpse is chosen).
        on_digit_by_glimpse: ``T`` shares, glimpse ``t`` within the radius of the box.
        first_glimpse_distance_px: mean distance of glimpse 2 to the digit centre (or None).
        wall_seconds: time of the rollout (reset to last step).
        episodes_per_second: counted episodes over ``wall_seconds``.
        mean_glimpses: glimpses per image (``T`` on a fixed-length env; the policy's choice
            on an adaptive one).
        glimpses_by_class: mean glimpses of the images of each class ``0..C-1``.
        glimpse_counts: ``T`` counts, images classified after ``1..T`` glimpses.
    """

    seed: int
    accuracy: float
    n_correct: int
    accuracy_interval: tuple[float, float]
    anytime_accuracy: list[float]
    anytime_mean: float | None
    on_digit_share: float | None
    on_digit_by_glimpse: list[float]
    first_glimpse_distance_px: float | None
    wall_seconds: float
    episodes_per_second: float
    mean_glimpses: float | None = None
    glimpses_by_class: list[float] | None = None
    glimpse_counts: list[int] | None = None


@dataclass
class Result:
    """What :func:`evaluate` measured for one (policy, env); JSON-able by :meth:`to_dict`.

    The summary fields are means over :attr:`rollouts` (one in ``"deterministic"`` mode).
    With several rollouts ``accuracy_interval`` is the Wilson interval of the mean accuracy
    over ``n_images`` images (each image's mean success over the rollouts counted as one
    trial); the per-seed intervals are in ``rollouts``.

    ``full_image`` marks an entry that is not glimpse-limited: a classifier of the whole
    canvas (a supervised baseline), ``n_glimpses`` 0, ``anytime_accuracy`` empty,
    ``anytime_mean``, ``on_digit_share``, ``first_glimpse_distance_px``, ``mean_glimpses``
    and ``glimpses_by_class`` None; ``episodes_per_second`` counts images. Results written
    before it existed read as ``False``.
    """

    protocol: str
    policy: str
    env_id: str
    mode: str
    split: str
    n_images: int
    n_glimpses: int
    n_classes: int
    env_kwargs: dict[str, Any]
    radius_px: float
    interval_method: str
    accuracy: float
    error_rate: float
    accuracy_interval: tuple[float, float]
    anytime_accuracy: list[float]
    anytime_mean: float | None
    on_digit_share: float | None
    first_glimpse_distance_px: float | None
    n_parameters: int | None
    wall_seconds: float
    episodes_per_second: float
    #: Glimpses per image, and per class (means over the rollouts; see :class:`Rollout`).
    #: ``None`` in results written before the adaptive envs.
    mean_glimpses: float | None = None
    glimpses_by_class: list[float] | None = None
    #: True: a full-image classifier, not glimpse-limited (see above).
    full_image: bool = False
    rollouts: list[Rollout] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (tuples as lists)."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        """The inverse of :meth:`to_dict`."""
        values = dict(data)
        values["accuracy_interval"] = tuple(values["accuracy_interval"])
        values["rollouts"] = [
            Rollout(**{**r, "accuracy_interval": tuple(r["accuracy_interval"])})
            for r in values.get("rollouts", [])
        ]
        return cls(**values)


def _plain(value: Any) -> Any:
    """Nested dicts/lists/tuples/NumPy scalars as plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def evaluate(
    policy: Any,
    env_id: str,
    *,
    mode: str = "deterministic",
    n_images: int | None = None,
    num_envs: int = 500,
    seeds: Sequence[int] = (0,),
    env_kwargs: Mapping[str, Any] | None = None,
    radius_px: float = 0.0,
    name: str | None = None,
    progress: bool = False,
    split: str = "test",
) -> Result:
    """Benchmark ``policy`` on the fixed test canvases of ``env_id`` (protocol GlimpseBench-v1).

    Args:
        policy: a :class:`BenchPolicy`, a callable marked :func:`batched`, or a bare callable
            ``act(obs) -> action (2 + C,)`` for one observation.
        env_id: a registered glimpse env id.
        mode: ``"deterministic"`` or ``"sample"`` (the ``deterministic`` flag given to ``act``).
        n_images: the first ``n_images`` test images (default all).
        num_envs: episodes stepped together (at most ``n_images``).
        seeds: one rollout per seed (the envs' reset seed, and the sampling seed through the
            policy's ``seed_sampling`` and, when torch is already imported, torch's global
            generator, restored afterwards).
        env_kwargs: env keyword arguments (e.g. ``n_glimpses``, ``data_dir``); the protocol
            sets ``split``, ``sequential``, ``start`` and ``reward`` itself.
        radius_px: a glimpse centre within this many pixels of the digit's box counts as on it.
        name: how results and errors name the policy (default :func:`policy_name`).
        progress: show a progress bar (tqdm).
        split: the protocol's ``"test"``; ``"val"`` for validation during training (the
            same fixed-canvas measurement on the held-out digits).

    Returns:
        The :class:`Result`.

    Raises:
        BenchPolicyError: if the policy raises or returns a wrong shape, dtype or a NaN.
        ValueError: on a bad argument.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    seeds = [_check_seed(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
    name = name or policy_name(policy)
    kwargs = {k: v for k, v in (env_kwargs or {}).items() if k not in _PROTOCOL_KWARGS}
    probe = gym.make_vec(env_id, num_envs=1, split=split, sequential=True, **kwargs)
    task = probe.unwrapped.task
    total = len(task.data) if n_images is None else n_images
    probe.close()
    if isinstance(total, bool) or not isinstance(total, int) or not 1 <= total <= len(task.data):
        raise ValueError(f"n_images must be an integer in 1..{len(task.data)}, got {n_images!r}")
    envs = gym.make_vec(
        env_id,
        num_envs=min(num_envs, total),
        split=split,
        sequential=True,
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        **kwargs,
    )
    try:
        adapted = as_policy(policy, task.n_classes, name, task.stop == "action")
        rollouts = [
            _rollout(adapted, envs, total, mode, seed, radius_px, name, progress) for seed in seeds
        ]
    finally:
        envs.close()
    return summarise(
        rollouts,
        protocol=PROTOCOL,
        policy=name,
        env_id=env_id,
        mode=mode,
        split=split,
        n_images=total,
        n_glimpses=task.n_glimpses,
        n_classes=task.n_classes,
        env_kwargs=recorded_env_kwargs(kwargs),
        radius_px=float(radius_px),
        interval_method=INTERVAL_METHOD,
        n_parameters=_n_parameters(policy),
    )


def recorded_env_kwargs(env_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The env keyword arguments a :class:`Result` records: JSON-able, without those the
    protocol fixes itself and without ``data_dir`` (where the data lies is no setting)."""
    return _plain(
        {
            k: v
            for k, v in (env_kwargs or {}).items()
            if k not in _PROTOCOL_KWARGS and k != "data_dir"
        }
    )


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seeds must be non-negative integers, got {seed!r}")
    return int(seed)


def _n_parameters(policy: Any) -> int | None:
    value = getattr(policy, "n_parameters", None)
    if isinstance(policy, BatchedCallable) and value is None:
        value = getattr(policy.fn, "n_parameters", None)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    return None


def summarise(rollouts: list[Rollout], **fields: Any) -> Result:
    """The :class:`Result` of ``rollouts`` (one per seed): their means, the interval over
    images; a measure some rollout lacks (None, or an empty curve: a full-image entry) is
    None (empty) in the result.

    Args:
        rollouts: at least one.
        **fields: the other fields of :class:`Result` (``n_images`` among them).
    """
    k, n = len(rollouts), fields["n_images"]
    accuracy = float(np.mean([r.accuracy for r in rollouts]))
    if k == 1:
        interval = rollouts[0].accuracy_interval
    else:
        interval = wilson_interval(accuracy * n, n)
    curves = [r.anytime_accuracy for r in rollouts]
    anytime = np.mean(curves, axis=0).tolist() if all(curves) else []
    by_class = [r.glimpses_by_class for r in rollouts]
    glimpses = [r.mean_glimpses for r in rollouts]
    on_digit = [r.on_digit_share for r in rollouts]
    first = [r.first_glimpse_distance_px for r in rollouts]
    wall = float(sum(r.wall_seconds for r in rollouts))
    return Result(
        **fields,
        accuracy=accuracy,
        error_rate=1.0 - accuracy,
        accuracy_interval=interval,
        anytime_accuracy=anytime,
        anytime_mean=float(np.mean(anytime)) if anytime else None,
        on_digit_share=None if None in on_digit else float(np.mean(on_digit)),
        first_glimpse_distance_px=None if None in first else float(np.mean(first)),
        wall_seconds=wall,
        episodes_per_second=k * n / wall if wall > 0 else 0.0,
        mean_glimpses=None if None in glimpses else float(np.mean(glimpses)),
        glimpses_by_class=None if None in by_class else np.mean(by_class, axis=0).tolist(),
        rollouts=rollouts,
    )


def _digit_boxes(layout: Mapping[str, np.ndarray], n: int, size: int) -> np.ndarray:
    """float ``(N, 4)`` boxes ``(row0, col0, row1, col1)`` of the digits, in pixels."""
    if "digit_pos" in layout:
        top_left = np.asarray(layout["digit_pos"], dtype=np.float64)
        return np.concatenate([top_left, top_left + DIGIT_SIZE], axis=1)
    return np.tile(np.array([0.0, 0.0, size, size]), (n, 1))  # plain MNIST: the canvas


def _pixels(locations: np.ndarray, size: int) -> np.ndarray:
    """Locations ``(N, 2)`` ``(x, y)`` in [-1, 1] (clipped as the env clips) -> continuous
    pixel ``(row, col)`` (the sensor's mapping: ``col = (x + 1) * W / 2``)."""
    clipped = np.clip(np.asarray(locations, dtype=np.float64), -1.0, 1.0)
    return (clipped[:, ::-1] + 1.0) * size / 2.0


def _box_distance(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Distance in pixels from ``(N, 2)`` (row, col) points to ``(N, 4)`` boxes (0 inside)."""
    d_row = np.maximum(np.maximum(boxes[:, 0] - points[:, 0], points[:, 0] - boxes[:, 2]), 0.0)
    d_col = np.maximum(np.maximum(boxes[:, 1] - points[:, 1], points[:, 1] - boxes[:, 3]), 0.0)
    return np.hypot(d_row, d_col)


class _Stats:
    """What one rollout counts: :meth:`on_act` records every step of a batch, :meth:`end`
    counts it once each episode's length is known (adaptive envs end them at different
    steps; what a sub-env does after its end is left out)."""

    def __init__(self, envs: gym.vector.VectorEnv, total: int, radius_px: float, name: str) -> None:
        task = envs.unwrapped.task
        self.envs, self.total, self.radius_px, self.name = envs, total, radius_px, name
        self.steps, self.size, self.n_classes = task.n_glimpses, task.canvas_size, task.n_classes
        self.stop = task.stop == "action"
        self.shape = (envs.num_envs, *task.action_space.shape)
        self.labels_all = np.asarray(task.data.labels)
        self.anytime = np.zeros(self.steps, dtype=np.int64)
        self.on_box = np.zeros(self.steps, dtype=np.int64)
        self.taken = np.zeros(self.steps, dtype=np.int64)  # episodes that took glimpse t
        self.any_chosen_on_box, self.first_distance, self.n_first = 0, 0.0, 0
        self.by_length = np.zeros(self.steps, dtype=np.int64)
        self.glimpses_by_class = np.zeros(self.n_classes)
        self.images_by_class = np.zeros(self.n_classes, dtype=np.int64)
        self.batches = 0
        n = envs.num_envs
        self.counted = self.labels = self.boxes = self.gap = np.zeros(0)
        self.predicted = np.zeros((self.steps, n), dtype=np.int64)
        self.hits = np.zeros((self.steps, n), dtype=bool)

    def _start(self, obs: Any) -> None:
        """A batch starts: its images (only the first ``total`` are counted), boxes, and
        whether glimpse 1 (the env's start location) is on the digit."""
        n, b, env = self.envs.num_envs, self.batches, self.envs.unwrapped
        index = env.image_indices
        self.counted = (index >= b * n) & (index < min(self.total, (b + 1) * n))
        self.labels = self.labels_all[index]
        self.boxes = _digit_boxes(env.layout, n, self.size)
        self.predicted[:] = 0
        self.hits[:] = False
        self.hits[0] = _box_distance(_pixels(obs["location"], self.size), self.boxes) <= (
            self.radius_px
        )
        self.gap = np.zeros(n)
        self.batches += 1

    def on_act(self, t: int, obs: Any, actions: Any) -> np.ndarray:
        """Check step ``t``'s actions and record what they say; return them as NumPy."""
        actions = _check_actions(actions, self.shape, self.name, "actions", self.stop)
        if t == 0:
            self._start(obs)
        if t >= self.steps:  # no episode is this long: a sub-env past its end
            return actions
        scores = actions[:, LOCATION_DIM : LOCATION_DIM + self.n_classes]
        self.predicted[t] = scores.argmax(axis=1)
        if t < self.steps - 1:  # the location of glimpse t + 2, chosen by the policy
            points = _pixels(actions[:, :LOCATION_DIM], self.size)
            self.hits[t + 1] = _box_distance(points, self.boxes) <= self.radius_px
            if t == 0:
                centres = (self.boxes[:, :2] + self.boxes[:, 2:]) / 2.0
                self.gap = np.hypot(*(points - centres).T)
        return actions

    def end(self, success: np.ndarray, lengths: np.ndarray) -> int:
        """A batch ended after ``lengths`` (N,) steps (= glimpses) each: count it; returns
        the number of its counted episodes classified right."""
        counted, steps = self.counted, np.arange(self.steps)[:, None]
        # Anytime: at step t an episode that already stopped answers with its last scores.
        answer = np.take_along_axis(self.predicted, np.minimum(steps, lengths - 1), axis=0)
        self.anytime += np.sum((answer == self.labels) & counted, axis=1)
        taken = (steps < lengths) & counted  # glimpse t + 1 was taken
        self.taken += taken.sum(axis=1)
        self.on_box += np.sum(self.hits & taken, axis=1)
        self.any_chosen_on_box += int(np.sum((self.hits[1:] & taken[1:]).any(axis=0)))
        first = counted & (lengths > 1)
        self.first_distance += float(np.sum(self.gap[first]))
        self.n_first += int(first.sum())
        self.by_length += np.bincount(lengths[counted] - 1, minlength=self.steps)[: self.steps]
        np.add.at(self.glimpses_by_class, self.labels[counted], lengths[counted])
        np.add.at(self.images_by_class, self.labels[counted], 1)
        return int(np.sum(success & counted))


def _rollout(
    policy: BenchPolicy,
    envs: gym.vector.VectorEnv,
    total: int,
    mode: str,
    seed: int,
    radius_px: float,
    name: str,
    progress: bool,
) -> Rollout:
    """One rollout per image of the first ``total`` images, through :func:`play_batches`."""
    stats = _Stats(envs, total, radius_px, name)
    steps = stats.steps
    correct = 0
    start = time.perf_counter()
    batches = play_batches(
        _Guarded(policy, name, stats.shape),
        envs,
        math.ceil(total / envs.num_envs),
        deterministic=mode == "deterministic",
        seed=seed,
        progress=progress,
        desc=f"bench {name}",
        on_act=stats.on_act,
    )
    for batch in batches:
        if batch.horizon > steps or (not stats.stop and batch.horizon != steps):
            raise ValueError(f"{envs.spec.id} ended its episodes after {batch.horizon} steps")
        correct += stats.end(batch.success, batch.lengths)
    wall = time.perf_counter() - start
    accuracy = correct / total
    anytime_accuracy = (stats.anytime / total).tolist()
    by_class = stats.glimpses_by_class / np.maximum(stats.images_by_class, 1)
    return Rollout(
        seed=seed,
        accuracy=accuracy,
        n_correct=correct,
        accuracy_interval=wilson_interval(correct, total),
        anytime_accuracy=anytime_accuracy,
        anytime_mean=float(np.mean(anytime_accuracy)),
        on_digit_share=stats.any_chosen_on_box / total if steps > 1 else None,
        on_digit_by_glimpse=(stats.on_box / np.maximum(stats.taken, 1)).tolist(),
        first_glimpse_distance_px=stats.first_distance / stats.n_first if stats.n_first else None,
        wall_seconds=wall,
        episodes_per_second=total / wall if wall > 0 else 0.0,
        mean_glimpses=float(stats.by_length @ np.arange(1, steps + 1) / total),
        glimpses_by_class=by_class.tolist(),
        glimpse_counts=stats.by_length.tolist(),
    )
