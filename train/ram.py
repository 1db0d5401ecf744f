"""``glimpse train ram``: the Recurrent Attention Model trained with REINFORCE.

Reads top to bottom: the config (every field a ``--flag``), then :class:`RAMRun`, what the
run harness (:mod:`train.harness`) drives: build the vector env and the trainer; one
iteration plays one batch of episodes and takes one optimiser step; the checkpoint holds
the trainer's state and the env's episode stream (so ``--resume`` continues exactly);
validation and the final test evaluation (deterministic and one sampled rollout per image)
go through :func:`agents.policy.evaluate_policy`. The run folder, resume, ``--max-minutes``,
logging and ``eval.json`` are the harness's, the same for every ``glimpse train`` command.

``--location-policy random`` is the paper's random-glimpse ablation (presets
``*-random8``): uniform random locations, a classifier trained on their glimpses;
``center`` and ``raster`` are the leaderboard's other location heuristics (every glimpse at
the centre; a fixed scan), each likewise with its own classifier.

On an adaptive env (``--stop action``, or an ``...Adaptive`` id) the model has a stop network
and learns how many glimpses each image needs: ``--glimpse-cost C`` charges every glimpse
(return ``1[right] - C * glimpses``), ``--glimpse-cost-warmup F`` ramps that cost up over
the first fraction F of the run. ``--init-from RUN_DIR|pretrained:ENV_ID`` starts from a
trained RAM's weights (its stop network, if it has none, starts fresh): e.g. fine-tune the
shipped 7-glimpse MNIST model into one that stops.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from glimpse_env.registration import ALL_IDS
from train.common import (
    CHANGEABLE,
    TRAINING_SPLITS,
    EnvOptions,
    RunOptions,
    epochs_summary,
    load_for_cli,
    training_split_notice,
)
from train.harness import Cadence, FinalEval, Progress, RunMeta, Trainer, absolute_data_dir
from train.validation import counted

#: Presets: the paper's RAM rows (Tables 1-2). Each maps to an env and its settings; the
#: optimisation settings are this project's (docs/results.md says what they reach).
PRESETS: dict[str, dict[str, Any]] = {
    **{f"mnist-{t}": {"env": "GlimpseMNIST-v0", "n_glimpses": t} for t in (2, 3, 4, 5, 6, 7)},
    **{f"translated-{t}": {"env": "GlimpseTranslatedMNIST-v0", "n_glimpses": t} for t in (4, 6, 8)},
    **{f"cluttered60-{t}": {"env": "GlimpseClutteredMNIST-v0", "n_glimpses": t} for t in (4, 6, 8)},
    **{
        f"cluttered100-{t}": {"env": "GlimpseClutteredMNIST100-v0", "n_glimpses": t}
        for t in (4, 6, 8)
    },
    # The paper's "RAM, 8 random glimpses" ablation (Table 2; the translated one is extra).
    **{
        f"{name}-random8": {"env": env, "n_glimpses": 8, "location_policy": "random"}
        for name, env in (
            ("translated", "GlimpseTranslatedMNIST-v0"),
            ("cluttered60", "GlimpseClutteredMNIST-v0"),
            ("cluttered100", "GlimpseClutteredMNIST100-v0"),
        )
    },
}


#: The settings of learned stopping: refused on an env where the agent takes every glimpse.
STOP_FIELDS = (
    "glimpse_cost",
    "stop_mlp_hidden",
    "detach_stop_input",
    "stop_input",
    "stop_bias_init",
    "stop_objective",
    "stop_baseline",
    "halting_share",
    "stop_lr_scale",
    "glimpse_cost_warmup",
)


@dataclass
class RAMTrainConfig(EnvOptions, RunOptions):
    """Everything ``glimpse train ram`` can be told (each field is a ``--flag``; the env's
    settings and the run control shared with the other commands are in
    :class:`train.common.EnvOptions` and :class:`train.common.RunOptions`)."""

    command: ClassVar[str] = "ram"
    agents: ClassVar[tuple[str, ...]] = ("ram",)

    env: str = field(default="GlimpseMNIST-v0", metadata={"choices": ALL_IDS})
    """Environment id."""
    split: str = field(default="train", metadata={"choices": TRAINING_SPLITS})
    """Training split: ``train`` (the first 50,000 digits; the last 10,000, ``val``, are
    held out for validation) or ``train_full`` (all 60,000, as the paper; validation then
    measures digits the run trains on, so only the test split is held out)."""
    batch_size: int = field(default=64, metadata={"ge": 1})
    """Episodes per optimiser step (= sub-envs of the vector env)."""
    epochs: float = field(default=150.0, metadata={"gt": 0.0})
    """Length of the run in passes over the training split (sets the iteration count)."""
    optimizer: str = field(default="adam", metadata={"choices": ("adam", "sgd")})
    """``adam`` or ``sgd`` (momentum 0.9, as the paper)."""
    lr: float = field(default=5e-4, metadata={"gt": 0.0})
    """Initial learning rate."""
    lr_schedule: str = field(
        default="cosine", metadata={"choices": ("constant", "linear", "cosine")}
    )
    """``constant``, ``linear`` or ``cosine`` anneal to 0 over the run."""
    weight_decay: float = field(default=0.0, metadata={"ge": 0.0})
    """L2 weight decay."""
    std: float = field(default=0.12, metadata={"gt": 0.0})
    """Location policy standard deviation (in [-1, 1] units)."""
    std_end: float | None = field(default=None, metadata={"gt": 0.0})
    """Anneal the std linearly to this value over the run (None: constant)."""
    core: str = field(default="rnn", metadata={"choices": ("rnn", "lstm", "gru")})
    """Core network: ``rnn`` (paper), ``lstm`` or ``gru``."""
    glimpse_hidden: int = field(default=128, metadata={"ge": 1})
    """Units of h_g."""
    location_hidden: int = field(default=128, metadata={"ge": 1})
    """Units of h_l."""
    glimpse_out: int = field(default=256, metadata={"ge": 1})
    """Units of g_t."""
    core_hidden: int = field(default=256, metadata={"ge": 1})
    """Units of the core state h_t."""
    location_mlp_hidden: int = field(default=0, metadata={"ge": 0})
    """Units of a hidden ReLU layer in the location network (mean
    ``tanh(Linear(ReLU(Linear(h_t))))``); 0: the paper's ``tanh(Linear(h_t))``."""
    detach_location_input: bool = True
    """The location network reads a detached ``h_t`` (REINFORCE trains only the location
    network); ``--no-detach-location-input``: the location gradient also reaches the core
    and glimpse networks, as in the paper's policy-gradient derivation."""
    location_reward: str = field(default="env", metadata={"choices": ("env", "expected")})
    """Return of the location network's REINFORCE term (hybrid loss): ``env`` the env's
    0/1 reward (paper) or ``expected`` the probability the final scores give the true
    class (the 0/1 reward averaged over the class draw: less variance)."""
    reinforce_weight: float = field(default=1.0, metadata={"ge": 0.0})
    """Weight of the REINFORCE term in the loss (with Adam it matters only where that term
    shares parameters with the others, i.e. with ``--no-detach-location-input``)."""
    hybrid: bool = True
    """Hybrid loss (paper: cross-entropy for the classifier); ``--no-hybrid``: pure REINFORCE."""
    location_policy: str = field(
        default="learned",
        metadata={"choices": ("learned", "random", "center", "raster", "oracle")},
    )
    """``learned`` (RAM), or a fixed heuristic with its own trained classifier: ``random``
    (the random-glimpse ablation: every location uniform in [-1, 1]^2, seeded; evaluation
    uses a fixed seeded draw per image and step, deterministic and sampled modes being two
    independent draws), ``center`` (every glimpse at (0, 0)), ``raster`` (a fixed scan of
    the 3x3 grid at +-0.5 without its centre, row-major, cycling) or ``oracle`` (every glimpse
    at the centre of the digit's true 28x28 box, read from the env: an upper bound for
    "where"; on plain MNIST the canvas centre). With a heuristic only the classifier, core
    and glimpse networks train, and evaluation uses the same locations."""
    max_grad_norm: float | None = field(default=None, metadata={"gt": 0.0})
    """Clip the gradient norm (None: no clipping)."""
    precision: str = field(default="float32", metadata={"choices": ("float32", "bfloat16")})
    """``float32`` or ``bfloat16``: mixed precision for the training products (float32
    weights, gradients and evaluation; faster on CPUs with AVX512-BF16/AMX and on GPUs,
    slower where bfloat16 is emulated)."""
    eval_every: int = field(default=8000, metadata={"ge": 1})
    """Validate every this many iterations."""
    eval_images: int = field(
        default=10000, metadata={"ge": 1, "le": 10_000, "why": "the val split has 10,000 images"}
    )
    """Validation images per validation (deterministic, one rollout each)."""
    test_images: int | None = field(
        default=None,
        metadata={"ge": 1, "le": 10_000, "why": "the test split has 10,000 images", **CHANGEABLE},
    )
    """Test images of the final evaluation (None: the whole test split)."""
    log_every: int = field(default=1000, metadata={"ge": 1})
    """Write a metrics row every this many iterations."""
    checkpoint_every: int = field(default=2000, metadata={"ge": 1})
    """Write the checkpoint every this many iterations."""
    stop_mlp_hidden: int = field(default=0, metadata={"ge": 0})
    """Adaptive envs: units of a hidden ReLU layer in the stop network (0: the stop logit is
    Linear(h_t))."""
    detach_stop_input: bool = True
    """Adaptive envs: the stop network reads a detached h_t (its REINFORCE term trains only
    the stop network); --no-detach-stop-input: it also reaches the core and glimpse
    networks."""
    stop_input: str = field(default="both", metadata={"choices": ("state", "confidence", "both")})
    """Adaptive envs: what the stop network reads: state (h_t, as DT-RAM; alone, it learned
    never to stop when fine-tuning, see docs/stopping.md), confidence (the log-odds of the
    step's most likely class) or both."""
    stop_bias_init: float = -2.0
    """Adaptive envs: initial stop logit (every glimpse first stops with probability
    sigmoid of it; -2: 0.12)."""
    stop_objective: str = field(
        default="reinforce", metadata={"choices": ("reinforce", "expected")}
    )
    """Adaptive envs: how the stop network learns: reinforce (DT-RAM: episodes end where the
    sampled stops say, REINFORCE on those decisions) or expected (episodes take every
    glimpse; the stop network maximises its expected return sum_t P(stop after t) *
    (1[right after t] - cost * t), exactly, as PonderNet; no collapse to never stopping)."""
    stop_baseline: str = field(default="learned", metadata={"choices": ("learned", "stop_now")})
    """Adaptive envs: baseline of the stop decisions' REINFORCE term: learned (the baseline
    network's b_t, as for the locations) or stop_now (what stopping at that step would have
    returned: the stop decisions then learn what going on gained over stopping there)."""
    halting_share: float = field(default=0.0, metadata={"ge": 0.0, "le": 1.0})
    """Adaptive envs, --stop-objective expected: share of the classifier's cross-entropy
    weighted by where the episodes stop (PonderNet's weighting: it learns most where it is
    asked); the rest is spread evenly over the steps (0: every step alike)."""
    stop_lr_scale: float = field(default=1.0, metadata={"gt": 0.0})
    """Adaptive envs: learning rate of the stop network relative to --lr (a fresh stop
    network on a model fine-tuned at a small --lr needs a larger one)."""
    glimpse_cost_warmup: float = field(default=0.0, metadata={"ge": 0.0, "le": 1.0})
    """Adaptive envs: fraction of the run over which the glimpse cost of the returns ramps
    linearly from 0 to --glimpse-cost (0: the full cost from the start)."""
    init_from: str | None = None
    """Start from a trained RAM's weights: a run folder of glimpse train ram, or
    pretrained:ENV_ID for shipped weights (a new stop network starts fresh; the sizes must
    match)."""

    def __post_init__(self) -> None:
        """Check the fields (see :class:`train.common.Checked`) and their combination.

        Raises:
            ValueError: for a bad value, or ``--location-reward expected`` without the hybrid loss.
        """
        super().__post_init__()
        if self.location_reward == "expected" and not self.hybrid:
            raise ValueError(
                "--location-reward expected needs the label, i.e. the hybrid loss: drop "
                "--no-hybrid, or use --location-reward env"
            )
        self.check_length(self.env)
        if not self.stops(self.env):
            changed = [
                "--" + f.name.replace("_", "-")
                for f in fields(self)
                if f.name in STOP_FIELDS and getattr(self, f.name) != f.default
            ]
            if changed:
                raise ValueError(
                    f"{', '.join(changed)}: learned-stopping settings, but {self.env} takes "
                    "every glimpse: use an ...Adaptive id (e.g. --env GlimpseMNISTAdaptive-v0) "
                    "or --stop action"
                )


class RAMRun(Trainer):
    """A RAM run as the harness drives it: :class:`agents.reinforce.ReinforceTrainer` on a
    vector env of ``batch_size`` episodes."""

    def __init__(self, cfg: RAMTrainConfig, device: Any) -> None:
        import gymnasium as gym

        import glimpse_env  # noqa: F401  (registers the ids)
        from agents.ram import RAMConfig, count_parameters
        from agents.reinforce import ReinforceConfig, ReinforceTrainer
        from agents.rollout import env_setting

        self.cfg, self.device = cfg, device
        data = {} if cfg.data_dir is None else {"data_dir": cfg.data_dir}
        self.env_kwargs = {**cfg.env_kwargs(), **data}
        # The training batch (the torch backend on CUDA keeps the loop on the GPU).
        backend = {"backend": "torch", "device": device} if device.type == "cuda" else {}
        self.envs = gym.make_vec(
            cfg.env,
            num_envs=cfg.batch_size,
            split=cfg.split,
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
            **self.env_kwargs,
            **backend,
        )
        self.n_train = len(self.envs.unwrapped.task.data)
        self.total_iterations = max(1, round(cfg.epochs * self.n_train / cfg.batch_size))
        self.step_size = cfg.batch_size
        self.cadence = Cadence(cfg.log_every, cfg.eval_every, cfg.checkpoint_every)
        self.notice = training_split_notice(cfg.split)
        #: The env's episodes end where the agent stops (a stop network is trained).
        self.adaptive = env_setting(self.envs, "stop") == "action"
        if self.adaptive:
            self.shown = ("train_accuracy_ema", "glimpses", "val_accuracy")

        self.model_config = RAMConfig(
            glimpse_hidden=cfg.glimpse_hidden,
            location_hidden=cfg.location_hidden,
            glimpse_out=cfg.glimpse_out,
            core_hidden=cfg.core_hidden,
            location_mlp_hidden=cfg.location_mlp_hidden,
            core=cfg.core,
            location_std=cfg.std,
            detach_location_input=cfg.detach_location_input,
            stop=self.adaptive,
            detach_stop_input=cfg.detach_stop_input,
            stop_mlp_hidden=cfg.stop_mlp_hidden,
            stop_bias_init=cfg.stop_bias_init,
            stop_input=cfg.stop_input,
        )
        self.trainer = ReinforceTrainer(
            self.envs,
            ReinforceConfig(
                model=self.model_config,
                total_iterations=self.total_iterations,
                optimizer=cfg.optimizer,
                lr=cfg.lr,
                lr_schedule=cfg.lr_schedule,
                weight_decay=cfg.weight_decay,
                std_start=cfg.std,
                std_end=cfg.std_end,
                hybrid=cfg.hybrid,
                reinforce_weight=cfg.reinforce_weight,
                location_reward=cfg.location_reward,
                location_policy=cfg.location_policy,
                max_grad_norm=cfg.max_grad_norm,
                precision=cfg.precision,
                glimpse_cost_warmup=cfg.glimpse_cost_warmup,
                stop_baseline=cfg.stop_baseline,
                stop_objective=cfg.stop_objective,
                stop_lr_scale=cfg.stop_lr_scale,
                halting_share=cfg.halting_share,
                seed=cfg.seed,
            ),
            device=device,
        )
        if cfg.init_from is not None:
            init_from(self.trainer.model, cfg.init_from)
        self.parameters = count_parameters(self.trainer.model)

    @property
    def iteration(self) -> int:
        return self.trainer.iteration

    def describe(self) -> str:
        cfg = self.cfg
        stop = ""
        if self.adaptive:
            from agents.rollout import env_setting

            cost = float(env_setting(self.envs, "glimpse_cost") or 0.0)
            warmup = cfg.glimpse_cost_warmup
            ramp = f", ramped up over {warmup:.0%} of the run" if warmup else ""
            stop = f" with a stop network (glimpse cost {cost:g}{ramp})"
        start = "" if cfg.init_from is None else f", from {cfg.init_from}"
        return (
            f"RAM{stop} ({self.parameters:,} parameters) on {cfg.env}{start}: "
            f"{counted(self.total_iterations, 'iteration')} of {cfg.batch_size} episodes "
            f"({cfg.epochs:g} epochs)"
        )

    def meta(self) -> RunMeta:
        cfg = self.cfg
        return RunMeta(
            agent="ram",
            env_id=cfg.env,
            env_kwargs=cfg.env_kwargs(),
            checkpoint=self.checkpoint_name,
            parameters=self.parameters,
            data_dir=absolute_data_dir(cfg.data_dir),
            details={
                "iterations": self.total_iterations,
                "location_policy": cfg.location_policy,
                "location_seed": cfg.seed,
                **({"init_from": cfg.init_from} if cfg.init_from is not None else {}),
            },
        )

    def train_iteration(self) -> dict[str, Any]:
        return self.trainer.train_iteration()

    def policy(self) -> Any:
        """The current model as the policy it is evaluated with (the run's locations when
        they are not learned: :func:`agents.locations.with_locations`)."""
        from agents.locations import with_locations
        from agents.ram_policy import RAMPolicy

        policy = RAMPolicy(
            self.trainer.model,
            self.cfg.env,
            self.env_kwargs,
            std=self.trainer.current_std(),
            device=self.device,
        )
        return with_locations(policy, self.cfg.location_policy, self.cfg.seed)

    def validate(self) -> float:
        from agents.policy import evaluate_policy

        n = self.cfg.eval_images
        return evaluate_policy(self.policy(), split="val", n_images=n, num_envs=min(1000, n))[
            "accuracy"
        ]

    def save(self, path: Path, progress: Progress) -> None:
        from agents.checkpoints import save_checkpoint
        from agents.ram_policy import model_payload

        payload = {
            **self.meta().to_json(),
            **model_payload(self.trainer.model, self.model_config),
            "trainer": self.trainer.state_dict(),
            "env_state": self.envs.unwrapped.get_state(),  # the episode stream, to go on exactly
            **asdict(progress),
        }
        save_checkpoint(path, payload, keep_previous=True)

    def load(self, path: Path) -> Progress:
        from agents.checkpoints import load_checkpoint

        state = load_checkpoint(path, map_location=self.device)
        self.trainer.load_state_dict(state["trainer"])
        self.trainer.set_observation(self.envs.unwrapped.set_state(state["env_state"]))
        return Progress.from_payload(state)

    def evaluate(self) -> FinalEval:
        """Test split, one rollout per image, deterministic and sampled."""
        from agents.policy import evaluate_policy

        results = {
            mode: evaluate_policy(
                self.policy(), split="test", n_images=self.cfg.test_images, mode=mode, num_envs=1000
            )
            for mode in ("deterministic", "sample")
        }
        summary = {
            "test_error_rate": results["deterministic"]["error_rate"],
            "test_error_rate_sampled": results["sample"]["error_rate"],
            "results": results,
            "location_policy": self.cfg.location_policy,
            **epochs_summary(self.iteration, self.cfg.batch_size, self.n_train, self.cfg.split),
        }
        line = (
            f"test error {100 * summary['test_error_rate']:.2f}% (deterministic), "
            f"{100 * summary['test_error_rate_sampled']:.2f}% (one sampled rollout)"
        )
        if self.adaptive:
            glimpses = {mode: results[mode].get("mean_glimpses") for mode in results}
            summary["test_mean_glimpses"] = glimpses["deterministic"]
            summary["test_mean_glimpses_sampled"] = glimpses["sample"]
            line += (
                f"; {glimpses['deterministic']:.2f} and {glimpses['sample']:.2f} glimpses per image"
            )
        return FinalEval(summary, line)

    def close(self) -> None:
        self.envs.close()


def init_from(model: Any, source: str) -> list[str]:
    """``--init-from``: load a trained RAM's weights into ``model`` (see
    :func:`agents.ram_policy.warm_start`).

    Args:
        model: the new run's model.
        source: a ``glimpse train ram`` run folder (or its checkpoint file), or
            ``pretrained:ENV_ID`` for the weights shipped for ``ENV_ID``.

    Returns:
        The names of the tensors that kept their initial values (the new stop network's).

    Raises:
        GlimpseError: for a source that does not exist, is not a RAM run, or whose model
            does not fit ``model`` (one line, with what to do).
    """
    from agents.checkpoints import load_checkpoint
    from agents.policy import read_meta
    from agents.pretrained import available, pretrained_path
    from agents.ram_policy import warm_start
    from train.errors import GlimpseError

    if source.startswith("pretrained:"):
        env_id = source.removeprefix("pretrained:")
        if env_id not in available():
            raise GlimpseError(
                f"--init-from {source}: no pretrained weights for {env_id!r}; shipped: "
                f"{', '.join(available()) or 'none'}"
            )
        path = pretrained_path(env_id)
    else:
        path = Path(source)
    file, meta = load_for_cli(path, read_meta)
    if meta.get("agent") != "ram":
        raise GlimpseError(
            f"--init-from {source} holds a {meta.get('agent') or 'unknown'!r} agent, not a RAM: "
            "give a run folder of glimpse train ram or pretrained:ENV_ID"
        )
    payload = load_for_cli(file, load_checkpoint)
    try:
        return warm_start(model, payload["model_state"])
    except (KeyError, ValueError) as exc:
        raise GlimpseError(f"--init-from {source}: {exc}") from None


def train_ram(cfg: RAMTrainConfig, resume: str | None = None, overwrite: bool = False) -> Path:
    """Train (or resume) a RAM agent; returns the run folder (see :func:`train.harness.train`)."""
    from train.harness import train

    return train(cfg, RAMRun, resume, overwrite)


def load_run_policy(path: str | Path, device: str = "cpu") -> Any:
    """A trained RAM run (folder or checkpoint) as the policy its ``eval.json`` used (a run
    with a location heuristic: with those locations)."""
    from agents.policy import load_policy

    return load_policy(path, device=device).policy


# ------------------------------------------------------------------------ command line
def register(subparsers: Any) -> None:
    """Add ``ram`` to the ``glimpse train`` subcommands."""
    from train.harness import add_training_arguments

    parser = subparsers.add_parser(
        "ram",
        help="the Recurrent Attention Model with REINFORCE (hybrid loss)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a row of the paper's tables")
    add_training_arguments(parser, RAMTrainConfig)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``glimpse train ram`` (a new run, or ``--resume RUN_DIR``)."""
    from train.harness import config_from_args

    preset = PRESETS[args.preset] if args.preset else None
    cfg = config_from_args(args, RAMTrainConfig, preset)  # on --resume: the saved config
    train_ram(cfg, resume=args.resume, overwrite=args.overwrite)
    return 0
