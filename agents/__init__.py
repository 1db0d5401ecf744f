"""Agents for the glimpse environments.

* :mod:`agents.ram`: the Recurrent Attention Model, one ``nn.Module`` per paper component.
* :mod:`agents.reinforce`: REINFORCE with a learned baseline and the paper's hybrid loss;
  a trainer that talks to environments only through the Gymnasium vector API.
* :mod:`agents.ram_policy`: the trained RAM as a :class:`agents.policy.Policy`.
* :mod:`agents.sb3_policy`, :mod:`agents.sb3_presets`: the stable-baselines3 PPO /
  RecurrentPPO glue (features extractor mirroring the glimpse network, glimpse history).
* :mod:`agents.policy`: loading any trained agent and evaluating it (one rollout per image).
* :mod:`agents.checkpoints`, :mod:`agents.pretrained`: atomic checkpoints, shipped weights.
"""
