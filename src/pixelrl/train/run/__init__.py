"""Running a training: build the envs and the model, check everything first, learn, checkpoint, evaluate.

- `factory`: the envs, policy, buffer and model a config describes.
- `preflight`: every check that can fail before work starts (builds the envs and model once).
- `runner`: one run end to end, resumable.
- `checkpoints`, `artifacts`, `lock`: what a run writes and how (atomic, locked, resumable).
- `callbacks`, `memory`, `evaluate`: the pieces the runner uses.
"""
