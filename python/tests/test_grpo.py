"""rl.grpo on TRL's GRPOTrainer, end to end on CPU with a tiny policy: the protocol lines, the
per-iteration metrics, the final checkpoint, and a run stopped by SIGTERM then resumed from its
checkpoint reaching exactly the weights of an uninterrupted run."""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import unittest

from tests import jobs

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
PROJECT_ROOT = os.path.dirname(PYTHON_DIR)
TOKENIZER = os.path.join(HERE, "fixtures", "tokenizer")

SHORT_Q = "What is the most likely diagnosis?"
LONG_Q = "A patient has fever, a new murmur and painful finger nodules. What is the most likely diagnosis?"
TAUGHT = "## Thinking\n\nA murmur.\n\n## Final Response\n\nInfective endocarditis"
ITERATIONS = 4


def make_policy(folder: str) -> None:
    """A tiny Qwen2 (configs/tiny.json) taught a few steps to answer in HuatuoGPT-o1's format, so
    that sampled responses are a mix of well formed and malformed ones and the rewards of a group
    differ (a random policy never writes the format, and GRPO then has nothing to learn from)."""
    import torch
    from transformers import AutoModelForCausalLM

    sys.path.insert(0, PYTHON_DIR)
    from doctor_agent_trl.models import load_tokenizer, preset_config

    tok = load_tokenizer(TOKENIZER)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(preset_config("tiny", tok, PROJECT_ROOT), dtype=torch.float32)
    prompt = tok.apply_chat_template([{"role": "user", "content": SHORT_Q}], tokenize=False, add_generation_prompt=True)
    ids = tok(prompt + TAUGHT + tok.eos_token, add_special_tokens=False, return_tensors="pt").input_ids
    labels = ids.clone()
    labels[:, : len(tok(prompt, add_special_tokens=False).input_ids)] = -100
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(40):
        model(input_ids=ids, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


def write_problems(path: str) -> None:
    rows = [
        {"prompt": [{"role": "user", "content": SHORT_Q}], "reference": "Infective endocarditis", "question": SHORT_Q},
        {"prompt": [{"role": "user", "content": LONG_Q}], "reference": "Infective endocarditis", "question": LONG_Q},
        {"prompt": [{"role": "user", "content": SHORT_Q}], "reference": "Pneumonia", "question": SHORT_Q},
        {"prompt": [{"role": "user", "content": SHORT_Q}], "reference": "Endocarditis", "question": SHORT_Q},
    ]
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def grpo_params(policy: str, **over: object) -> dict:
    p = {
        "policy": policy, "data": "problems.jsonl", "verifier": {"type": "rule"},
        "num_generations": 2, "temperature": 1.0, "top_p": 1.0, "response_length": 24,
        "learning_rate": 2e-3, "lr_scheduler_type": "linear", "warmup_ratio": 0.0,
        "loss_type": "dapo", "scale_rewards": "group", "beta": 0.03, "kl_estimator": "k3",
        "epsilon": 0.2, "epsilon_high": 0.2, "iterations": ITERATIONS, "prompts_per_iteration": 2,
        "num_iterations": 1, "mini_batch_size": 4, "max_grad_norm": 1.0, "max_prompt_len": 24,
        "reward": {"correct": 1.0, "wrong": 0.1, "malformed": 0.0}, "seed": 3,
        "save_every": 1, "save_every_minutes": 0,
    }
    p.update(over)
    return p


def write_spec(root: str, name: str, params: dict, data: str, policy: str, resume: str | None = None) -> str:
    spec = {"kind": "rl.grpo", "runId": "r", "stepId": "grpo", "attempt": 2 if resume else 1,
            "outDir": os.path.join(root, name), "projectRoot": PROJECT_ROOT, "params": params,
            "prepared": {"data": data, "tokenizer": policy}}
    if resume:
        spec["resumeFrom"] = resume
    path = os.path.join(root, f"{name}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(spec, f)
    return path


def weights(folder: str) -> dict:
    from safetensors.torch import load_file

    return load_file(os.path.join(folder, "model.safetensors"))


def rows(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


class GrpoRunTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.root = tempfile.mkdtemp(prefix="grpo-test-")
        cls.policy = os.path.join(cls.root, "policy")
        make_policy(cls.policy)
        cls.data = os.path.join(cls.root, "problems.jsonl")
        write_problems(cls.data)
        cls.full = write_spec(cls.root, "full", grpo_params(cls.policy), cls.data, cls.policy)
        cls.rc, cls.lines = jobs.in_process(cls.full)
        cls.err = json.dumps(cls.lines[-3:])

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.root, ignore_errors=True)

    def of(self, kind: str) -> list[dict]:
        return [l for l in self.lines if l["type"] == kind]

    def test_protocol_lines_and_outputs(self) -> None:
        self.assertEqual(self.rc, 0, self.err[-3000:])
        progress = self.of("progress")
        self.assertEqual([p["current"] for p in progress], list(range(ITERATIONS + 1)))
        self.assertTrue(all(p["total"] == ITERATIONS and p["unit"] == "iterations" for p in progress))

        metrics = self.of("metric")
        self.assertEqual([m["step"] for m in metrics], list(range(1, ITERATIONS + 1)))
        for m in metrics:
            for key in ("iteration", "reward_mean", "accuracy", "format_rate", "kl", "clip_frac", "response_length", "loss", "lr"):
                self.assertIn(key, m["values"])
            self.assertEqual(m["values"]["responses"], 4)
        self.assertGreater(sum(m["values"]["format_rate"] for m in metrics), 0, "some responses should be well formed")

        checkpoints = self.of("checkpoint")
        self.assertEqual([c["step"] for c in checkpoints], list(range(1, ITERATIONS + 1)))
        self.assertTrue(os.path.isdir(checkpoints[-1]["path"]))

        (result,) = self.of("result")
        out = result["outputs"]
        self.assertEqual(set(out), {"checkpoint", "metrics"})
        self.assertEqual(self.lines[-1]["type"], "result")
        history = rows(out["metrics"])
        self.assertEqual([r["iteration"] for r in history], list(range(1, ITERATIONS + 1)))
        self.assertEqual([r["reward_mean"] for r in history], [m["values"]["reward_mean"] for m in metrics])

        # The long prompt is over max_prompt_len: cut from the left, with one warning.
        warnings = [l for l in self.of("log") if l.get("level") == "warn" and "max_prompt_len" in l["message"]]
        self.assertEqual(len(warnings), 1)

        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(out["checkpoint"])
        tok = AutoTokenizer.from_pretrained(out["checkpoint"])
        self.assertEqual(model.config.vocab_size, len(tok))
        trained, start_w = weights(out["checkpoint"]), weights(self.policy)
        self.assertTrue(any(not trained[k].equal(start_w[k]) for k in start_w), "training should change the policy")

    def test_stopped_then_resumed_matches_uninterrupted(self) -> None:
        self.assertEqual(self.rc, 0, self.err[-3000:])
        # SIGTERM once the first iteration's metrics are out and the job holds before its second iteration's
        # first optimizer step: the run saves at the end of the second iteration and exits 143. Two iterations
        # are one pass over the four problems, so the resumed run starts the second pass (whose prompt order
        # it must draw as the first run did). A real process, stopped from outside.
        proc = jobs.start(write_spec(self.root, "stopped", grpo_params(self.policy), self.data, self.policy), PROJECT_ROOT,
                          hold_for_stop="unit-1")
        seen: list[dict] = []
        jobs.terminate_when_held(proc, seen)
        self.assertEqual([l["step"] for l in seen if l["type"] == "metric"], [1])
        out, err = proc.communicate(timeout=900)
        seen += [json.loads(l) for l in out.splitlines() if l.strip()]
        self.assertEqual(proc.returncode, 143, err[-3000:])
        self.assertFalse([l for l in seen if l["type"] == "result"])
        last = [l for l in seen if l["type"] == "checkpoint"][-1]
        self.assertEqual(last["step"], 2)

        rc, resumed = jobs.in_process(write_spec(self.root, "resumed", grpo_params(self.policy), self.data, self.policy, resume=last["path"]))
        self.assertEqual(rc, 0, resumed[-3:])
        self.assertEqual([p["current"] for p in resumed if p["type"] == "progress"], list(range(last["step"], ITERATIONS + 1)))
        (result,) = [l for l in resumed if l["type"] == "result"]
        (full,) = self.of("result")

        # CPU float32 with the sampling RNG, prompt order, optimizer and scheduler restored: bit for bit.
        a, b = weights(result["outputs"]["checkpoint"]), weights(full["outputs"]["checkpoint"])
        self.assertEqual(set(a), set(b))
        for k in a:
            self.assertTrue(a[k].equal(b[k]), k)
        # The iterations after the stop had groups whose rewards differ, so their rollouts moved the weights.
        self.assertTrue(any(r["frac_reward_zero_std"] < 1 for r in rows(full["outputs"]["metrics"])[2:]))
        # The metrics file carries the iterations before the stop, and the same rollouts after it.
        strip = lambda rs: [{k: v for k, v in r.items() if k != "iteration_s"} for r in rs]
        self.assertEqual(strip(rows(result["outputs"]["metrics"])), strip(rows(full["outputs"]["metrics"])))

        # A stop requested before the first optimizer step: the first iteration is trained and saved, then the
        # job stops; its checkpoint holds the weights the stopped run above had after its first iteration.
        rc, early = jobs.in_process(write_spec(self.root, "stopped-at-start", grpo_params(self.policy), self.data, self.policy),
                                    hold_for_stop="unit-0")
        self.assertEqual(rc, 143, early[-3:])
        self.assertEqual([l["step"] for l in early if l["type"] == "metric"], [1])
        self.assertEqual([c["step"] for c in early if c["type"] == "checkpoint"], [1])
        self.assertFalse([l for l in early if l["type"] == "result"])
        (first,) = [c["path"] for c in early if c["type"] == "checkpoint"]
        a, b = weights(first), weights(os.path.join(self.root, "stopped", "checkpoints", "checkpoint-1"))
        self.assertEqual(set(a), set(b))
        for k in a:
            self.assertTrue(a[k].equal(b[k]), k)


class GrpoParamsTest(unittest.TestCase):
    def test_refuses_other_kl_estimators_and_rollout_servers(self) -> None:
        sys.path.insert(0, PYTHON_DIR)
        from doctor_agent_trl import grpo
        from doctor_agent_trl.protocol import UserError

        with self.assertRaises(UserError) as e:
            grpo.check_params(grpo_params("policy", kl_estimator="k2"))
        self.assertEqual(e.exception.where, "with.kl_estimator")
        with self.assertRaises(UserError) as e:
            grpo.check_params(grpo_params("policy", rollout={"base_url": "http://127.0.0.1:1/v1"}))
        self.assertEqual(e.exception.where, "with.rollout")

    def test_shape_maps_iterations_to_optimizer_steps(self) -> None:
        sys.path.insert(0, PYTHON_DIR)
        from doctor_agent_trl import grpo
        from doctor_agent_trl.protocol import UserError

        s = grpo.Shape(grpo_params("policy", prompts_per_iteration=8, num_generations=4, mini_batch_size=8, num_iterations=2, iterations=10), 100)
        self.assertEqual((s.responses, s.steps_per_generation, s.steps_per_iteration, s.max_steps), (32, 4, 8, 80))
        # Fewer problems than prompts_per_iteration: every problem once per iteration.
        self.assertEqual(grpo.Shape(grpo_params("policy", prompts_per_iteration=8, mini_batch_size=2), 3).prompts, 3)
        # The earlier name of num_iterations.
        p = grpo_params("policy", mini_batch_size=2)
        del p["num_iterations"]
        p["epochs_per_iteration"] = 3
        self.assertEqual(grpo.Shape(p, 10).steps_per_iteration, 6)
        with self.assertRaises(UserError) as e:
            grpo.Shape(grpo_params("policy", mini_batch_size=3), 10)
        self.assertEqual(e.exception.where, "with.mini_batch_size")


if __name__ == "__main__":
    unittest.main()
