"""Glimpse environments: image classification through a moving multi-scale glimpse.

One base env, :class:`GlimpseEnv`, holds the whole episode logic; each benchmark is a small
subclass that fills in one hook, :meth:`GlimpseEnv.compose`, which says how a canvas is made
from a digit (centred, translated, cluttered). The episode logic is written batched, on
arrays of ``N`` episodes: the single env runs it with ``N = 1`` and the native vector env
(:mod:`glimpse_env.vector`) with ``N = num_envs``, so the two cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from glimpse_env import _random, _xp
from glimpse_env.actions import LOCATION_DIM, STOP_DIM, stop_scores, unpack_action
from glimpse_env.datasets import SPLITS, MNISTSplit, load_mnist
from glimpse_env.sensor import SummedAreaTable, _gather_glimpses, _lazy_table

N_CLASSES = 10
DIGIT_SIZE = 28
STARTS = ("random", "center")
REWARDS = ("sparse", "dense")
#: ``"never"``: every episode takes ``n_glimpses`` glimpses; ``"action"``: the agent's stop
#: score (the action's last component) ends it, at the latest after ``max_glimpses``.
STOPS = ("never", "action")
#: Splits whose canvases are a fixed benchmark: canvas ``i`` is a pure function of (split, i).
EVAL_SPLITS = ("val", "test")
_SPLIT_SALT = {"train": 0x7452, "train_full": 0x7446, "val": 0x5641, "test": 0x5445}


@dataclass(frozen=True)
class EpisodeBatch:
    """Everything drawn for a batch of ``N`` new episodes.

    Attributes:
        canvases: uint8 ``(N, H, W)`` images the glimpses are taken from.
        tables: their summed-area tables (what the sensor reads), built from ``canvases`` on
            first use: the canvases must not be modified.
        labels: int64 ``(N,)`` true classes.
        image_indices: int64 ``(N,)`` index of each digit in its split.
        starts: float32 ``(N, 2)`` first glimpse locations.
        layout: how each canvas was composed (subclass-specific arrays, e.g. positions).
    """

    canvases: np.ndarray
    tables: SummedAreaTable
    labels: np.ndarray
    image_indices: np.ndarray
    starts: np.ndarray
    layout: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, i: int) -> EpisodeBatch:
        """Episode ``i`` as a batch of one (views into this batch; its tables are shared)."""
        part = slice(i, i + 1)
        return EpisodeBatch(
            canvases=self.canvases[part],
            tables=self.tables[part],
            labels=self.labels[part],
            image_indices=self.image_indices[part],
            starts=self.starts[part],
            layout={name: value[part] for name, value in self.layout.items()},
        )


def validate_actions(actions: Any, shape: tuple[int, ...], stop: bool = False) -> np.ndarray:
    """Check a (batch of) action(s) and return it as a float array (``stop``: the action
    ends with a stop score, which the error messages mention).

    Raises:
        TypeError: if the action is not a floating-point array (or is a torch tensor that
            requires grad: the env never takes part in the caller's graph).
        ValueError: on a wrong shape or a NaN/infinite entry.
    """
    if _xp.is_torch(actions) and actions.requires_grad:
        raise TypeError("action is a torch tensor that requires grad: pass action.detach()")
    array = np.asarray(actions)
    if array.dtype.kind != "f":
        raise TypeError(
            f"action must be a floating-point array (e.g. float32) of shape {shape}, "
            f"got dtype {array.dtype}"
        )
    if array.shape != shape:
        raise ValueError(
            f"action must have shape {shape} ({action_layout(stop)}), got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"action must be finite, got NaN or infinity in {array!r}")
    return array


def action_layout(stop: bool) -> str:
    """The action's components in words, for error messages."""
    return "location x, y, then one score per class" + (", then the stop score" if stop else "")


def validate_seed(seed: Any) -> int:
    """``seed`` as an int, checked: an integer in ``[0, 2**64)`` (not a bool, float or str).

    Raises:
        ValueError: otherwise.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64) or None, got {seed!r}")
    return int(seed)


def clip_locations(actions: Any) -> Any:
    """The location part of ``actions (N, 2 + C)`` clipped to [-1, 1], as float32 ``(N, 2)``."""
    if _xp.is_torch(actions):
        import torch

        # detach: observations never carry the caller's graph.
        return torch.clamp(unpack_action(actions)[0].detach(), -1.0, 1.0).to(torch.float32)
    # Clipping before rounding to float32 gives the same values (rounding is monotone and
    # keeps -1 and 1), and the cast is free for float32 actions.
    location = unpack_action(actions)[0]
    return np.minimum(np.maximum(location, -1.0), 1.0).astype(np.float32, copy=False)


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of ``(N, C)`` scores, in float64 whatever their dtype (finite
    float32 scores as large as +-3e38 give finite log-probabilities)."""
    scores = np.asarray(scores, dtype=np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class GlimpseEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Classify an MNIST digit by moving a multi-scale glimpse over the canvas.

    The base env of every variant; see the subclasses for the benchmarks of Mnih et al.
    (2014), "Recurrent Models of Visual Attention". The agent never sees the whole canvas: each
    observation is a small multi-scale glimpse ("retina") around a location the agent chose,
    and the reward says at the end whether the class it named is right.

    ## Action Space

    ``Box(-1, 1, (2 + 10,), float32)``:

    | index | meaning |
    |---|---|
    | 0 | x of the next glimpse, -1 = left edge, 1 = right edge |
    | 1 | y of the next glimpse, -1 = top edge, 1 = bottom edge |
    | 2 .. 11 | one score per class 0..9; only read at the last step (argmax), and by the dense reward |
    | 12 | only with ``stop="action"`` (the ``...Adaptive`` ids): the stop score; above 0 ends the episode on this step |

    Locations outside [-1, 1] are clipped to [-1, 1] (the clipped location is the one
    reported in the observation). Scores are not clipped. An action must be a finite
    floating-point array of shape ``(12,)`` (``(13,)`` with ``stop="action"``): a NaN or
    infinity raises ``ValueError``, a wrong shape ``ValueError``, an integer array
    ``TypeError``. :mod:`glimpse_env.actions` packs and unpacks the layout.

    ## Observation Space

    ``Dict(glimpse=Box(0, 1, (n_scales, g, g), float32), location=Box(-1, 1, (2,), float32))``:
    the glimpse and the location it was taken at. Scale ``s`` of the glimpse covers
    ``g * 2**s`` pixels around the location, averaged down to ``g x g``; pixels off the canvas
    read 0. The exact pixel mapping is in :mod:`glimpse_env.sensor`.

    ## Timing (T = ``n_glimpses``)

    | call | observation returned | action read | reward |
    |---|---|---|---|
    | ``reset()`` | glimpse 1, at the start location | - | - |
    | ``step`` 1 .. T-1 | glimpse t+1, at the action's location | location | 0 (sparse) |
    | ``step`` T | a glimpse at the action's location (not needed) | class scores | 1 if right, else 0 |

    So the action of step ``t`` is chosen after seeing glimpses ``1..t``, and the scores of
    step ``T`` are judged after ``T`` glimpses. Step ``T`` returns ``terminated=True``.

    With ``stop="action"`` the agent decides the length: step ``t`` is the last (its scores
    are judged after ``t`` glimpses, ``terminated=True``) when its stop score is above 0
    (0.0 does not stop), and step ``max_glimpses`` is the last in any case. Stopping at
    step 1 classifies from the first glimpse alone.

    ## Rewards

    ``reward="sparse"`` (default, as in the paper): 1.0 at step T if ``argmax(scores)`` is the
    label, else 0.0; every other step 0.0. ``reward="dense"``: at every step the
    log-probability that ``softmax(scores)`` gives the true class (always <= 0; with scores
    in [-1, 1] at most ``log(e / (e + 9/e)) ~= -0.80`` for 10 classes). Rewards are Python
    floats.

    ``glimpse_cost`` (default 0) charges every glimpse: the sparse reward at the last step
    is ``1[right] - glimpse_cost * t`` after ``t`` glimpses, and the dense reward of every
    step is lowered by ``glimpse_cost``, so an episode's return is lowered by
    ``glimpse_cost * t`` either way. It is what makes stopping early worth something.

    ## Episode End

    Terminates after ``n_glimpses`` steps (``terminated=True``), or with ``stop="action"`` at
    the first step whose stop score is above 0 (at the latest ``max_glimpses``). Never truncates by itself
    (the ids register no ``max_episode_steps``: a time limit at the horizon would flag every
    episode end as truncated too); ``gym.make(..., max_episode_steps=k)`` with
    ``k < n_glimpses`` truncates at ``k``, and nothing is judged. Every ``info`` holds
    ``image_index`` (int), the index of the episode's digit in its split (``reset`` returns
    ``info={"image_index": i}``); the last step's also holds ``label`` (int), ``prediction``
    (int, argmax of the scores) and ``is_success`` (bool), and with ``stop="action"``
    ``glimpses`` (int, the glimpses the episode took). A step before ``reset`` or after the
    episode ended raises ``gymnasium.error.ResetNeeded``.

    ## Arguments

    | argument | default | meaning |
    |---|---|---|
    | ``split`` | ``"train"`` | ``"train"`` (first 50,000 training digits), ``"val"`` (last 10,000), ``"test"`` (10,000), ``"train_full"`` (60,000) |
    | ``n_glimpses`` | per variant | glimpses per episode (= steps); ``stop="never"`` only |
    | ``glimpse_size`` | per variant | side ``g`` of each glimpse scale in pixels |
    | ``n_scales`` | per variant | scales per glimpse |
    | ``start`` | ``"random"`` | first location uniform in [-1, 1]^2 (paper), or ``"center"`` |
    | ``reward`` | ``"sparse"`` | ``"sparse"`` or ``"dense"`` (see Rewards) |
    | ``sequential`` | ``False`` | show the split's digits in order 0, 1, 2, ... instead of at random |
    | ``data_dir`` | ``None`` | MNIST folder; else ``$GLIMPSE_ENV_DATA``, else a user cache (downloaded) |
    | ``render_mode`` | ``None`` | ``"rgb_array"``: the canvas with the glimpse boxes and the path so far |
    | ``stop`` | ``"never"`` | ``"never"``: fixed length; ``"action"``: the stop score ends the episode (the ``...Adaptive`` ids) |
    | ``glimpse_cost`` | ``0.0`` | reward charged per glimpse taken (see Rewards), >= 0 |
    | ``max_glimpses`` | per variant | with ``stop="action"``: the most glimpses an episode takes |

    An unknown argument raises ``TypeError``; a bad value ``ValueError``. With
    ``stop="action"``, ``n_glimpses`` is refused (the agent sets the length; pass
    ``max_glimpses``), and ``env.n_glimpses`` is ``max_glimpses``: the longest an episode
    can be.

    Randomness: on ``train``/``train_full`` each episode (digit, canvas, start location) is
    drawn from the env's seed and episode number. On ``val``/``test`` the canvas and start
    location of digit ``i`` are a pure function of ``(split, i)``, so every user evaluates
    on the same fixed benchmark; the seed only picks which digit comes next (unless
    ``sequential``).

    ## Version History

    * v0: Initial version. Since glimpse-env 0.2 every step's ``info`` holds ``image_index``
      (libraries that fix their info layout at reset, such as TorchRL, read every step).
      Since glimpse-env 0.3: the ``stop``, ``glimpse_cost`` and ``max_glimpses`` arguments
      and the adaptive ids (their defaults leave every v0 id exactly as it was).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 2}

    #: Side of the square canvas in pixels.
    canvas_size: ClassVar[int] = DIGIT_SIZE
    #: Uniform draws per episode that :meth:`compose` consumes.
    n_layout_draws: ClassVar[int] = 0
    #: Defaults of the variant (the paper's settings).
    default_n_glimpses: ClassVar[int] = 7
    default_glimpse_size: ClassVar[int] = 8
    default_n_scales: ClassVar[int] = 1
    #: Episodes the single env draws in one batched :meth:`draw_episodes` call; it serves the
    #: next resets from them. Every episode is a pure function of (seed, episode number), so
    #: this changes no draw, only how many are made per call.
    lookahead: ClassVar[int] = 16

    def __init__(
        self,
        split: str = "train",
        n_glimpses: int | None = None,
        glimpse_size: int | None = None,
        n_scales: int | None = None,
        start: str = "random",
        reward: str = "sparse",
        sequential: bool = False,
        data_dir: str | None = None,
        render_mode: str | None = None,
        stop: str = "never",
        glimpse_cost: float = 0.0,
        max_glimpses: int | None = None,
    ) -> None:
        _check_choice("stop", stop, STOPS)
        self.stop = stop
        self.glimpse_cost = _cost(glimpse_cost)
        self.n_glimpses = self._horizon(n_glimpses, max_glimpses)
        self.glimpse_size = _positive_int("glimpse_size", glimpse_size, self.default_glimpse_size)
        self.n_scales = _positive_int("n_scales", n_scales, self.default_n_scales)
        self._check_sizes()
        _check_choice("split", split, SPLITS)
        _check_choice("start", start, STARTS)
        _check_choice("reward", reward, REWARDS)
        _check_choice("render_mode", render_mode, (None, *self.metadata["render_modes"]))
        self.split, self.start, self.reward_type = split, start, reward
        if not isinstance(sequential, (bool, np.bool_)):
            raise ValueError(f"sequential must be True or False, got {sequential!r}")
        self.sequential = bool(sequential)
        self.render_mode = render_mode
        self.data: MNISTSplit = load_mnist(split, data_dir)
        #: The dataset on the backend the episodes are drawn on (NumPy unless moved).
        self._images: Any = self.data.images
        self._labels: Any = self.data.labels
        self.n_classes = N_CLASSES

        self.observation_space, self.action_space = self.spaces(
            self.glimpse_size, self.n_scales, stop
        )
        self._action_shape = (1, *self.action_space.shape)

        self._key: np.ndarray | None = None  # uint64 (1,), fixed by the seed
        self._episode = 0  # episodes started since the seed
        #: Episodes ``_ahead_first ..`` drawn in one batch (see :attr:`lookahead`).
        self._ahead: EpisodeBatch | None = None
        self._ahead_first = 0
        self._batch: EpisodeBatch | None = None  # the current episode, a batch of one
        self._t = 0
        self._done = True
        self._path: list[np.ndarray] = []

    @property
    def max_glimpses(self) -> int:
        """The most glimpses an episode takes (``n_glimpses``; every episode takes that many
        with ``stop="never"``)."""
        return self.n_glimpses

    def _horizon(self, n_glimpses: int | None, max_glimpses: int | None) -> int:
        """``n_glimpses`` (fixed length) or ``max_glimpses`` (stop action), checked."""
        if self.stop == "never":
            if max_glimpses is not None:
                raise ValueError(
                    'max_glimpses applies to stop="action"; with stop="never" every episode '
                    f"takes n_glimpses glimpses: pass n_glimpses={max_glimpses!r}"
                )
            return _positive_int("n_glimpses", n_glimpses, self.default_n_glimpses)
        if n_glimpses is not None:
            raise ValueError(
                'with stop="action" the agent chooses how many glimpses an episode takes: '
                f"pass max_glimpses={n_glimpses!r} (the most it may take), not n_glimpses"
            )
        return _positive_int("max_glimpses", max_glimpses, self.default_n_glimpses)

    @classmethod
    def spaces(
        cls, glimpse_size: int | None = None, n_scales: int | None = None, stop: str = "never"
    ) -> tuple[spaces.Dict, spaces.Box]:
        """The observation and action spaces of this variant with these settings (``None``:
        the variant's default), without loading any data."""
        g = glimpse_size or cls.default_glimpse_size
        k = n_scales or cls.default_n_scales
        observation_space = spaces.Dict(
            {
                "glimpse": spaces.Box(0.0, 1.0, (k, g, g), np.float32),
                "location": spaces.Box(-1.0, 1.0, (LOCATION_DIM,), np.float32),
            }
        )
        n_actions = LOCATION_DIM + N_CLASSES + (STOP_DIM if stop == "action" else 0)
        action_space = spaces.Box(-1.0, 1.0, (n_actions,), np.float32)
        return observation_space, action_space

    def _check_sizes(self) -> None:
        """The glimpse must fit what the canvas can use: scale ``s`` is ``g * 2**s`` pixels
        wide, and a scale twice the canvas already sees all of it from any location."""
        g, k, size = self.glimpse_size, self.n_scales, self.canvas_size
        if g > size:
            raise ValueError(f"glimpse_size must be at most the canvas side ({size}), got {g}")
        max_scales = 1 + max(0, math.ceil(math.log2(2 * size / g)))
        if k > max_scales:
            raise ValueError(
                f"n_scales={k} is more than a {size}x{size} canvas can use with {g}x{g} "
                f"glimpses: scale s is {g} * 2**s pixels wide, so at most {max_scales} scales"
            )

    # ------------------------------------------------------------------ the variant hook
    def compose(
        self, digits: np.ndarray, u: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Make canvases from digits: the one hook a variant fills in.

        Args:
            digits: uint8 ``(N, 28, 28)`` digits of this env's split.
            u: float64 ``(N, n_layout_draws)`` uniform draws in [0, 1) for this episode.

        Returns:
            ``(canvases, layout)``: uint8 ``(N, canvas_size, canvas_size)`` canvases (pixel
            values saturate at 255, i.e. 1.0) and a dict of arrays describing how each was
            made (positions, clutter sources), for tests and rendering.
        """
        return digits, {}

    # ------------------------------------------------------------------ batched core
    def draw_episodes(
        self, keys: np.ndarray, episodes: np.ndarray, offsets: np.ndarray, stride: int
    ) -> EpisodeBatch:
        """Draw ``N`` new episodes (the batched core of ``reset``).

        Args:
            keys: uint64 ``(N,)`` per-env keys (the seed of each env).
            episodes: int64 ``(N,)`` episode number of each env since its seed.
            offsets: int64 ``(N,)`` first digit of each env in ``sequential`` mode.
            stride: digits between two episodes of one env in ``sequential`` mode.

        Returns:
            The new episodes.
        """
        n_images = len(self.data)
        if self.sequential:
            index = (offsets + episodes * stride) % n_images
        else:
            u_index = _random.uniforms(_random.derive(keys, episodes), 1)[:, 0]
            index = _random.integers(u_index, n_images)
        if self.split in EVAL_SPLITS:
            salt = np.full(len(index), _SPLIT_SALT[self.split], dtype=np.uint64)
            episode_keys = _random.derive(salt, index)
        else:
            episode_keys = _random.derive(keys ^ np.uint64(_SPLIT_SALT[self.split]), episodes)
        u = _random.uniforms(episode_keys, 2 + self.n_layout_draws)
        if self.start == "random":
            starts = (u[:, :2] * 2.0 - 1.0).astype(np.float32)
        else:
            starts = np.zeros((len(index), 2), dtype=np.float32)
        # Draws are made on the host (a few numbers per episode); images stay on the backend.
        index_b = _xp.to_backend(index, self._images)
        canvases, layout = self.compose(
            self._images[index_b], _xp.to_backend(u[:, 2:], self._images)
        )
        return EpisodeBatch(
            canvases=canvases,
            tables=_lazy_table(canvases),  # no copy: nobody changes the fresh canvases
            labels=self._labels[index_b],
            image_indices=index,
            starts=_xp.to_backend(starts, self._images),
            layout=layout,
        )

    def to_backend(self, device: str | Any) -> None:
        """Keep this env's dataset as torch tensors on ``device`` (for the vector env)."""
        import torch

        # torch.tensor copies: the split's arrays are read-only views, which torch.as_tensor
        # would share (and warn about) on the CPU.
        self._images = torch.tensor(self.data.images, device=device)
        self._labels = torch.tensor(self.data.labels, device=device)

    def observe(self, tables: SummedAreaTable, locations: np.ndarray) -> dict[str, np.ndarray]:
        """Batched observation: glimpses ``(N, k, g, g)`` at float32 ``locations (N, 2)``."""
        glimpses = _gather_glimpses(tables, locations, self.glimpse_size, self.n_scales)
        return {"glimpse": glimpses, "location": locations}

    def episode_ends(self, actions: Any, steps: np.ndarray) -> np.ndarray:
        """Which episodes end at this step, as a host bool ``(N,)`` mask.

        Args:
            actions: the step's validated actions ``(N, 2 + C [+ 1])`` (NumPy or torch).
            steps: int64 ``(N,)`` glimpses each episode has taken, this step's included.
        """
        last = steps >= self.n_glimpses
        if self.stop == "action":
            stop = stop_scores(actions)
            stop = stop.detach().cpu().numpy() if _xp.is_torch(stop) else np.asarray(stop)
            last = last | (stop > 0)
        return last

    def rewards(
        self, scores: Any, labels: Any, last: bool | np.ndarray, steps: np.ndarray | None = None
    ) -> tuple[Any, Any]:
        """Batched rewards for class ``scores (N, C)`` (NumPy or torch).

        Args:
            scores: the class-score part of the actions.
            labels: int64 ``(N,)`` true classes.
            last: whether this is the episode's last step (the one whose scores are judged):
                one bool for every episode, or a host bool ``(N,)`` mask.
            steps: int64 ``(N,)`` glimpses taken, this step's included (host); read only when
                ``glimpse_cost > 0``.

        Returns:
            ``(rewards (N,), predictions int64 (N,))``: float64 on NumPy, float32 on torch;
            ``predictions`` is ``None`` where nothing is judged (sparse reward, no last step).
        """
        judged = np.asarray(last, dtype=bool)
        if self.reward_type == "sparse" and not judged.any():
            if _xp.is_torch(scores):
                import torch

                return torch.zeros(len(labels), device=scores.device), None
            return np.zeros(len(labels)), None
        if _xp.is_torch(scores):
            import torch

            predictions = scores.argmax(dim=1)
            if self.reward_type == "dense":
                logp = torch.log_softmax(scores.to(torch.float32), dim=1)
                rewards = logp.gather(1, labels[:, None])[:, 0]
            else:
                weight = (
                    float(judged) if judged.ndim == 0 else torch.as_tensor(judged).to(scores.device)
                )
                rewards = (predictions == labels).to(torch.float32) * weight
        else:
            predictions = scores.argmax(axis=1)
            if self.reward_type == "dense":
                rewards = log_softmax(scores)[np.arange(len(labels)), labels]
            else:
                weight = float(judged) if judged.ndim == 0 else judged
                rewards = (predictions == labels).astype(np.float64) * weight
        return self._charge(rewards, judged, steps), predictions

    def _charge(self, rewards: Any, judged: np.ndarray, steps: np.ndarray | None) -> Any:
        """``rewards`` less the glimpse cost: per step (dense), or ``cost * steps`` at the
        judged step (sparse)."""
        if not self.glimpse_cost:
            return rewards
        if self.reward_type == "dense":
            return rewards - self.glimpse_cost
        if steps is None:
            raise ValueError("rewards() needs steps when glimpse_cost > 0")
        charge = self.glimpse_cost * np.asarray(steps, dtype=np.float64) * judged
        if _xp.is_torch(rewards):
            import torch

            return rewards - torch.as_tensor(charge, dtype=rewards.dtype).to(rewards.device)
        return rewards - charge

    def new_keys(self, seed: int | None, n: int) -> np.ndarray:
        """Keys of ``n`` envs: ``seed + i`` when seeded, else drawn from ``np_random``."""
        if seed is None:
            return self.np_random.integers(0, 2**63, size=n, dtype=np.uint64)
        first = validate_seed(seed)
        return np.array([first + i for i in range(n)], dtype=np.uint64)

    # ------------------------------------------------------------------ Gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if seed is not None:
            seed = validate_seed(seed)
        super().reset(seed=seed)
        if seed is not None or self._key is None:
            self._key = self.new_keys(seed, 1)
            self._episode, self._ahead = 0, None
        else:
            self._episode += 1
        batch = self._next_episode()
        self._batch, self._t, self._done = batch, 0, False
        self._path = [batch.starts[0]] if self.render_mode is not None else []
        obs = self.observe(batch.tables, batch.starts)
        return _first(obs), {"image_index": int(batch.image_indices[0])}

    def _next_episode(self) -> EpisodeBatch:
        """Episode ``_episode`` of this env's key, drawn :attr:`lookahead` at a time."""
        slot = self._episode - self._ahead_first
        if self._ahead is None or not 0 <= slot < len(self._ahead):
            episodes = self._episode + np.arange(self.lookahead, dtype=np.int64)
            keys = np.repeat(self._key, self.lookahead)
            offsets = np.zeros(self.lookahead, dtype=np.int64)
            self._ahead = self.draw_episodes(keys, episodes, offsets, 1)
            self._ahead_first, slot = self._episode, 0
        return self._ahead.select(slot)

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], SupportsFloat, bool, bool, dict[str, Any]]:
        if self._batch is None:
            raise ResetNeeded("Cannot call step() before reset(): call env.reset() first.")
        if self._done:
            raise ResetNeeded(
                f"The episode ended after {self._t} steps: call env.reset() before step()."
            )
        stop = self.stop == "action"
        actions = validate_actions(action, self._action_shape[1:], stop)[None]
        locations = clip_locations(actions)
        self._t += 1
        if self.render_mode is not None:
            self._path.append(locations[0])
        obs = _first(self.observe(self._batch.tables, locations))
        steps = np.array([self._t])
        last = bool(self.episode_ends(actions, steps)[0])
        info: dict[str, Any] = {"image_index": int(self._batch.image_indices[0])}
        if not last and self.reward_type == "sparse":
            return obs, 0.0, False, False, info
        scores = unpack_action(actions, stop)[1]
        rewards, predictions = self.rewards(scores, self._batch.labels, last, steps)
        if last:
            self._done = True
            label, prediction = int(self._batch.labels[0]), int(predictions[0])
            info.update(label=label, prediction=prediction, is_success=label == prediction)
            if stop:
                info["glimpses"] = self._t
        return obs, float(rewards[0]), last, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn('render() called without render_mode; use render_mode="rgb_array".')
            return None
        if self._batch is None:
            raise ResetNeeded("Cannot call render() before reset().")
        from glimpse_env.rendering import render_frame

        return render_frame(
            self._batch.canvases[0], np.stack(self._path), self.glimpse_size, self.n_scales
        )


def _first(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"glimpse": obs["glimpse"][0], "location": obs["location"][0]}


def _positive_int(name: str, value: int | None, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _cost(value: Any) -> float:
    """``glimpse_cost`` checked: a finite real number >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"glimpse_cost must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


class GlimpseMNISTEnv(GlimpseEnv):
    """28x28 MNIST, the digit as it is (centred): Table 1 of the paper.

    Defaults: 7 glimpses of 8x8, 1 scale. Everything else as :class:`GlimpseEnv`.

    ## Version History

    * v0: Initial version.
    """


class TranslatedMNISTEnv(GlimpseEnv):
    """60x60 translated MNIST: the whole digit at a uniformly random position on a blank canvas.

    Defaults: 8 glimpses of 12x12, 3 scales. Everything else as :class:`GlimpseEnv`; the
    layout reports ``digit_pos`` (int64 ``(N, 2)``, top-left ``(row, col)``).

    ## Version History

    * v0: Initial version.
    """

    canvas_size = 60
    n_layout_draws = 2
    default_n_glimpses = 8
    default_glimpse_size = 12
    default_n_scales = 3

    def compose(
        self, digits: np.ndarray, u: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        size = self.canvas_size
        canvases = _xp.zeros(digits, (len(digits), size, size), "uint8")
        pos = _xp.randint(u[:, :2], size - DIGIT_SIZE + 1)
        _xp.add_saturating_at(canvases, digits, pos[:, 0], pos[:, 1])
        return canvases, {"digit_pos": pos}


class ClutteredMNISTEnv(GlimpseEnv):
    """60x60 cluttered translated MNIST: Table 2 of the paper (DeepMind's generator).

    The canvas starts at 0; ``n_clutter`` pieces, each a random 8x8 window (offset 0..20 on
    each axis) of a random digit of the same split, are added at random positions
    (0..W-8, may overlap); then the whole digit is added at a random position (0..W-28);
    pixel values saturate at 1 (saturating addition, not max). Defaults: 4 pieces,
    8 glimpses of 12x12, 3 scales. The layout reports ``digit_pos (N, 2)``,
    ``clutter_source (N, n)`` (indices into the split), ``clutter_window (N, n, 2)`` and
    ``clutter_pos (N, n, 2)`` (all ``(row, col)``).

    ## Version History

    * v0: Initial version.
    """

    canvas_size = 60
    n_clutter: ClassVar[int] = 4
    clutter_size: ClassVar[int] = 8
    default_n_glimpses = 8
    default_glimpse_size = 12
    default_n_scales = 3

    @property
    def n_layout_draws(self) -> int:  # type: ignore[override]
        """Digit position (2) and, per clutter piece, source, window (2) and position (2)."""
        return 2 + 5 * self.n_clutter

    def compose(
        self, digits: np.ndarray, u: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        size, piece, n = self.canvas_size, self.clutter_size, len(digits)
        canvases = _xp.zeros(digits, (n, size, size), "uint8")
        draws = u[:, 2:].reshape(n, self.n_clutter, 5)
        source = _xp.randint(draws[:, :, 0], len(self.data))
        window = _xp.randint(draws[:, :, 1:3], DIGIT_SIZE - piece + 1)
        pos = _xp.randint(draws[:, :, 3:5], size - piece + 1)
        patches = _xp.windows(self._images, source, window[..., 0], window[..., 1], piece)
        for j in range(self.n_clutter):  # pieces may overlap: one at a time
            _xp.add_saturating_at(canvases, patches[:, j], pos[:, j, 0], pos[:, j, 1])
        digit_pos = _xp.randint(u[:, :2], size - DIGIT_SIZE + 1)
        _xp.add_saturating_at(canvases, digits, digit_pos[:, 0], digit_pos[:, 1])
        layout = {
            "digit_pos": digit_pos,
            "clutter_source": source,
            "clutter_window": window,
            "clutter_pos": pos,
        }
        return canvases, layout


class ClutteredMNIST100Env(ClutteredMNISTEnv):
    """100x100 cluttered translated MNIST with 8 pieces of clutter: Table 2 of the paper.

    As :class:`ClutteredMNISTEnv` on a 100x100 canvas with 8 pieces; defaults 8 glimpses of
    12x12, 4 scales.

    ## Version History

    * v0: Initial version.
    """

    canvas_size = 100
    n_clutter = 8
    default_n_scales = 4
