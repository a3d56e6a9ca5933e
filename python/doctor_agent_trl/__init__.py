"""Doctor-Agent's TRL runner: train.sft, rl.grpo and rl.ppo on Hugging Face TRL and PyTorch.

Started by the TypeScript job jobs/trl.ts as ``python -m doctor_agent_trl SPEC.json``; speaks the
project's JSON-lines job protocol (contract/protocol.ts) on stdout.
"""

__version__ = "0.1.0"
