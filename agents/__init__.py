"""Agents for the glimpse environments.

* :mod:`agents.ram`: the Recurrent Attention Model, one ``nn.Module`` per paper component,
  acting step by step and replaying a recorded episode in one batched forward.
* :mod:`agents.rollout`: playing a batch of episodes without autograd, recording what the
  replay needs.
* :mod:`agents.losses`: the paper's hybrid loss and pure REINFORCE, with a learned baseline.
* :mod:`agents.locations`: where the glimpses go (learned, or a fixed rule such as the
  paper's random-glimpse ablation).
* :mod:`agents.reinforce`: the trainer, which talks to environments only through the
  Gymnasium vector API.
* :mod:`agents.ram_policy`: the trained RAM as a :class:`agents.policy.Policy`.
* :mod:`agents.sb3_policy`, :mod:`agents.sb3_presets`: the stable-baselines3 PPO /
  RecurrentPPO glue (features extractor mirroring the glimpse network, glimpse history).
* :mod:`agents.policy`: loading any trained agent and evaluating it (one rollout per image,
  through :mod:`glimpse_env.play`, the one evaluation loop).
* :mod:`agents.baselines`: the full-image supervised baselines.
* :mod:`agents.checkpoints`, :mod:`agents.pretrained`: atomic checkpoints, shipped weights.
"""
