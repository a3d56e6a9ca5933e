"""The Trainer arguments of where training runs (models.device_args): a single process on a machine
without GPUs gets a Trainer that sets up (no process group is looked for), as the runner starts it
when no accelerate: is given."""
from __future__ import annotations

import os
import tempfile
import unittest
from unittest import mock


class DeviceArgsTest(unittest.TestCase):
    def test_a_single_process_sets_up_its_device(self) -> None:
        import torch

        from doctor_agent_trl.sft import sft_config

        params = {"epochs": 1, "batch_size": 1, "gradient_accumulation_steps": 1, "learning_rate": 1e-5,
                  "warmup_ratio": 0.0, "weight_decay": 0.0, "max_grad_norm": 1.0, "max_seq_len": 32,
                  "save_every": 10, "seed": 0}
        env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
        with tempfile.TemporaryDirectory() as out, mock.patch.dict(os.environ, env, clear=True):
            config = sft_config(params, out)
            self.assertEqual(config.device.type, "cuda" if torch.cuda.is_available() else "cpu")
            self.assertEqual(config.world_size, 1)

    def test_several_processes_on_cpu_use_gloo(self) -> None:
        import torch

        from doctor_agent_trl.models import device_args

        if torch.cuda.is_available():
            self.assertNotIn("ddp_backend", device_args())
            return
        with mock.patch.dict(os.environ, {"WORLD_SIZE": "2"}):
            self.assertEqual(device_args(), {"use_cpu": True, "ddp_backend": "gloo"})
        with mock.patch.dict(os.environ, {"WORLD_SIZE": "1"}):
            self.assertEqual(device_args(), {"use_cpu": True})


if __name__ == "__main__":
    unittest.main()
