"""Plain SB3 SAC + HER on state FetchReach-v4 (no pixelrl): does the task learn in N env steps?

The state control for tier 2 outside pixelrl: 4 envs, one gradient step per vec-env step,
deterministic evaluation on 30 episodes (seeds 100-129).

    python benchmarks/learning/sb3_fetchreach_state.py ours 8000   # lr 1e-4, batch 64, ent 0.05
    python benchmarks/learning/sb3_fetchreach_state.py zoo 8000    # lr 1e-3, batch 256, ent auto

Prints one line: settings, training seconds and the success rate.
"""

import sys
import time

import gymnasium as gym
import gymnasium_robotics
import torch
from stable_baselines3 import SAC, HerReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv

torch.set_num_threads(1)
gym.register_envs(gymnasium_robotics)
mode, steps = sys.argv[1], int(sys.argv[2])
venv = DummyVecEnv([lambda: gym.make("FetchReach-v4")] * 4)
if mode == "zoo":
    kw = dict(learning_rate=1e-3, batch_size=256, gamma=0.95, ent_coef="auto")
else:
    kw = dict(learning_rate=1e-4, batch_size=64, gamma=0.95, ent_coef=0.05, tau=0.005)
model = SAC(
    "MultiInputPolicy", venv, replay_buffer_class=HerReplayBuffer,
    replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future"),
    learning_starts=1000, seed=0, **kw,
)  # fmt: skip
start = time.time()
model.learn(steps)
seconds = time.time() - start
env = gym.make("FetchReach-v4")
successes = 0.0
for episode in range(30):
    obs, _ = env.reset(seed=100 + episode)
    done = False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    successes += float(info["is_success"])
print(mode, steps, "train s", round(seconds), "success", successes / 30, flush=True)
