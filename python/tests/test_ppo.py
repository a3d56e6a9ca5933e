"""rl.ppo of the TRL runner: the math on hand-computed numbers, a short run over the job protocol,
and exact resumption (after a checkpoint, and after SIGTERM) on CPU with a tiny policy."""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import unittest

import torch

from doctor_agent_trl import ppo, protocol

from tests import jobs

PYTHON_DIR = jobs.PYTHON_DIR
REPO = os.path.dirname(PYTHON_DIR)
TOKENIZER = os.path.join(REPO, "test", "fixtures", "parity", "qwen2-f32")


def t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


class MathTest(unittest.TestCase):
    def test_token_rewards_put_the_score_on_the_last_response_token(self) -> None:
        mask = t([[1, 1, 1], [1, 1, 0]])
        rewards, kl = ppo.token_rewards(t([[1.0, 0.5]])[0], t([[-1, -2, -3], [-1, -1, 0]]), t([[-1.5, -2, -2], [-0.5, -1, 5]]), mask, 0.1)
        torch.testing.assert_close(kl, t([[0.5, 0, -1], [-0.5, 0, 0]]))
        torch.testing.assert_close(rewards, t([[-0.05, 0, 1.1], [0.05, 0.5, 0]]))

    def test_gae_stops_at_the_response_end(self) -> None:
        mask = t([[1, 1, 1], [1, 1, 0]])
        adv, ret = ppo.gae(t([[0, 0, 1], [0, 0.5, 9]]), t([[0.5, 0.4, 0.2], [0.1, 0.3, 7]]), mask, 1.0, 0.95)
        # row 0: deltas 0.8, -0.2, -0.1 from the end; row 1: the value after its last token is 0.
        torch.testing.assert_close(adv, t([[0.432, 0.56, 0.8], [0.39, 0.2, 0]]))
        torch.testing.assert_close(ret, t([[0.932, 0.96, 1.0], [0.49, 0.5, 0]]))

    def test_gae_discounts_with_gamma(self) -> None:
        adv, _ = ppo.gae(t([[0, 1]]), t([[0, 0]]), t([[1, 1]]), 0.5, 1.0)
        torch.testing.assert_close(adv, t([[0.5, 1.0]]))

    def test_whiten_over_the_masked_tokens_with_the_unbiased_variance(self) -> None:
        w = ppo.whiten(t([[1, 2, 100], [3, 4, 100]]), t([[1, 1, 0], [1, 1, 0]]))
        s = math.sqrt(5 / 3 + 1e-8)
        torch.testing.assert_close(w, t([[-1.5 / s, -0.5 / s, 0], [0.5 / s, 1.5 / s, 0]]))
        self.assertTrue(torch.equal(ppo.whiten(t([[7, 1]]), t([[1, 0]])), t([[0, 0]])))

    def test_clipped_policy_loss_and_clip_fraction(self) -> None:
        logp = t([[0.5, -0.5, 0, 3]])
        loss, frac = ppo.policy_loss(logp, t([[0, 0, 0, 0]]), t([[1, 1, -2, 5]]), t([[1, 1, 1, 0]]), 0.2)
        # ratio e^0.5 clipped to 1.2 (taken), e^-0.5 kept (-0.6065 > -0.8), ratio 1 with A=-2 gives 2.
        self.assertAlmostEqual(loss.item(), (-1.2 - math.exp(-0.5) + 2) / 3, places=9)
        self.assertAlmostEqual(frac.item(), 1 / 3, places=9)

    def test_clipped_value_loss(self) -> None:
        loss = ppo.value_loss(t([[1.0, 0.0, 5]]), t([[0.5, 0.5, 0]]), t([[2.0, 0.0, 0]]), t([[1, 1, 0]]), 0.2)
        # max(1, (0.7-2)^2) = 1.69 and max(0, 0.3^2) = 0.09
        self.assertAlmostEqual(loss.item(), 0.5 * (1.69 + 0.09) / 2, places=9)

    def test_prompts_are_passes_over_shuffled_problems(self) -> None:
        stream = [i for it in range(4) for i in ppo.iteration_prompts(it, 3, 4, 7)]
        self.assertEqual(sorted(stream[:4]), [0, 1, 2, 3])
        self.assertEqual(sorted(stream[4:8]), [0, 1, 2, 3])
        self.assertEqual(ppo.iteration_prompts(2, 3, 4, 7), stream[6:9])
        self.assertEqual(ppo.prompts_per_iteration(64, 10, 4), 8)
        self.assertEqual(ppo.warmup_steps(10, 0.05), 1)

    def test_a_rollout_server_is_a_user_error(self) -> None:
        spec = {"kind": "rl.ppo", "outDir": "unused", "params": {"rollout": {"base_url": "http://127.0.0.1:1/v1"}}}
        with self.assertRaises(protocol.UserError) as e:
            ppo.run(spec)
        self.assertEqual(e.exception.where, "with.rollout")

    def test_cut_responses_keep_the_stop_token(self) -> None:
        responses, finished = ppo.cut_responses(torch.tensor([[5, 9, 2, 2], [5, 6, 7, 8]]), [9])
        self.assertEqual(responses, [[5, 9], [5, 6, 7, 8]])
        self.assertEqual(finished, [True, False])


PROBLEMS = [
    ("Which valve lesion gives a rumbling diastolic murmur after rheumatic fever?", "Mitral stenosis"),
    ("What is the first-line drug for anaphylaxis?", "Adrenaline"),
    ("Which organism causes most cases of infective endocarditis in drug users?", "Staphylococcus aureus"),
    ("What electrolyte disturbance gives peaked T waves?", "Hyperkalaemia"),
    ("Which vitamin deficiency causes Wernicke encephalopathy?", "Thiamine"),
    ("What is the antidote for paracetamol overdose?", "Acetylcysteine"),
]


def build_policy(folder: str) -> None:
    """A tiny Qwen2 policy with fresh weights (configs/tiny.json's shape, smaller) and the fixture tokenizer."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tok = AutoTokenizer.from_pretrained(TOKENIZER)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)


class RunTest(unittest.TestCase):
    """One uninterrupted reference run (in this process, shared by the tests) and runs that stop and resume
    against it. The stop lands at a known place: a job waits at a hold point until SIGTERM has arrived."""

    tmp: str
    policy: str
    data: str
    full: str
    code: int
    lines: list[dict]

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.mkdtemp(prefix="ppo-test-")
        cls.policy = os.path.join(cls.tmp, "policy")
        build_policy(cls.policy)
        cls.data = os.path.join(cls.tmp, "data.jsonl")
        with open(cls.data, "w", encoding="utf-8") as f:
            for q, a in PROBLEMS:
                f.write(json.dumps({"prompt": [{"role": "user", "content": q}], "reference": a, "question": q}) + "\n")
        cls.full = os.path.join(cls.tmp, "full")
        cls.code, cls.lines = jobs.in_process(cls.spec("full", save_every=1))

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def spec(cls, name: str, resume: str | None = None, **overrides: object) -> str:
        params = {
            "policy": cls.policy, "data": "problems.jsonl", "verifier": {"type": "rule"}, "kl_coef": 0.03, "gamma": 1.0, "lam": 0.95,
            "clip_range": 0.2, "clip_range_value": 0.2, "vf_coef": 0.1, "temperature": 0.9, "top_p": 0.95, "response_length": 8,
            "num_ppo_epochs": 2, "learning_rate": 3e-3, "lr_scheduler_type": "cosine", "warmup_ratio": 0.0, "iterations": 2,
            "batch_size": 4, "mini_batch_size": 2, "max_grad_norm": 1.0, "max_prompt_len": 64,
            # A constant score for the (malformed) responses of a random policy still gives non-zero advantages.
            "reward": {"correct": 1.0, "wrong": 0.1, "malformed": -1.0}, "seed": 11, "save_every": 100, "save_every_minutes": 0,
        }
        params.update(overrides)
        spec = {"kind": "rl.ppo", "runId": "r", "stepId": "ppo", "attempt": 1, "outDir": os.path.join(cls.tmp, name),
                "projectRoot": REPO, "params": params, "prepared": {"data": cls.data, "tokenizer": cls.policy}}
        if resume:
            spec["resumeFrom"] = resume
        path = os.path.join(cls.tmp, f"{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(spec, f)
        return path

    def weights(self, folder: str) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        return load_file(os.path.join(folder, "model.safetensors"))

    def assert_same_weights(self, a: str, b: str) -> None:
        wa, wb = self.weights(a), self.weights(b)
        self.assertEqual(sorted(wa), sorted(wb))
        for k in wa:
            self.assertTrue(torch.equal(wa[k], wb[k]), f"{k} differs")

    def history(self, out_dir: str) -> list[dict]:
        with open(os.path.join(out_dir, "iterations.jsonl"), encoding="utf-8") as f:
            rows = [json.loads(line) for line in f]
        return [{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows]

    def assert_resumes_exactly(self, checkpoint: str, name: str, first: int) -> None:
        """A run resumed from the checkpoint reports from iteration `first` on and ends as the reference run."""
        code, lines = jobs.in_process(self.spec(name, resume=checkpoint))
        self.assertEqual(code, 0, lines[-3:])
        self.assertEqual([m["current"] for m in lines if m["type"] == "progress"], list(range(first, 3)))
        self.assert_same_weights(os.path.join(self.full, "checkpoint"), os.path.join(self.tmp, name, "checkpoint"))
        self.assertEqual(self.history(self.full), self.history(os.path.join(self.tmp, name)))

    def test_a_two_iteration_run_reports_and_leaves_a_loadable_policy(self) -> None:
        from transformers import AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer

        lines, out_dir = self.lines, self.full
        self.assertEqual(self.code, 0, lines[-3:])
        kinds = [m["type"] for m in lines]
        self.assertEqual([m["current"] for m in lines if m["type"] == "progress"], [0, 1, 2])
        metrics = [m for m in lines if m["type"] == "metric"]
        self.assertEqual([m["step"] for m in metrics], [1, 2])
        for key in ("reward_mean", "accuracy", "format_rate", "kl", "vf_loss", "pg_loss", "clip_frac", "response_length", "lr", "grad_norm"):
            self.assertIn(key, metrics[0]["values"])
        self.assertEqual(metrics[0]["values"]["reward_mean"], -1.0)  # the random policy's responses are all malformed
        self.assertGreater(metrics[0]["values"]["grad_norm"], 0)
        self.assertGreater(abs(metrics[1]["values"]["kl"]), 0)  # the first update moved the policy
        checkpoints = [m for m in lines if m["type"] == "checkpoint"]
        self.assertEqual([(os.path.basename(c["path"]), c["step"]) for c in checkpoints], [("checkpoint-1", 1)])
        self.assertEqual(kinds[-1], "result")
        outputs = lines[-1]["outputs"]
        self.assertEqual(outputs, {"checkpoint": os.path.join(out_dir, "checkpoint"), "metrics": os.path.join(out_dir, "iterations.jsonl")})
        self.assertEqual(len(self.history(out_dir)), 2)
        model = AutoModelForCausalLM.from_pretrained(outputs["checkpoint"])
        tok = AutoTokenizer.from_pretrained(outputs["checkpoint"])
        ids = tok("hello", return_tensors="pt")["input_ids"]
        self.assertEqual(model(ids).logits.shape[-1], len(tok))
        start = AutoModelForCausalLM.from_pretrained(self.policy)
        self.assertFalse(torch.equal(model.lm_head.weight, start.lm_head.weight), "the policy was not trained")
        value = AutoModelForTokenClassification.from_pretrained(os.path.join(checkpoints[0]["path"], "value"))
        self.assertEqual(value.config.num_labels, 1)
        self.assertTrue(ppo.is_value_folder(os.path.join(checkpoints[0]["path"], "value")))
        self.assertFalse(ppo.is_value_folder(self.policy))
        self.assertFalse(os.path.exists(checkpoints[0]["path"] + ".partial"))

    def test_a_run_resumed_from_a_checkpoint_ends_with_the_same_weights(self) -> None:
        self.assert_resumes_exactly(os.path.join(self.full, "checkpoints", "checkpoint-1"), "resumed", 1)

    def test_sigterm_before_the_first_iteration_saves_then_stops_and_the_resumed_run_is_exact(self) -> None:
        # A real process, stopped from outside: it holds before its first iteration until the signal is in.
        proc = jobs.start(self.spec("stopped-at-start"), PYTHON_DIR, hold_for_stop="iteration-0")
        lines: list[dict] = []
        jobs.terminate_when_held(proc, lines)
        self.assertEqual([m["current"] for m in lines if m["type"] == "progress"], [0])
        out, err = proc.communicate(timeout=600)
        self.assertEqual(proc.returncode, 143, err[-3000:])
        lines += [json.loads(line) for line in out.splitlines() if line.strip()]
        checkpoints = [m for m in lines if m["type"] == "checkpoint"]
        self.assertEqual([(os.path.basename(c["path"]), c["step"]) for c in checkpoints], [("checkpoint-0", 0)])
        self.assertFalse(any(m["type"] in ("metric", "result") for m in lines))
        # Nothing trained yet; the value model in the checkpoint is a value folder now, loaded with its (zero) head.
        self.assertTrue(ppo.is_value_folder(os.path.join(checkpoints[0]["path"], "value")))
        self.assert_resumes_exactly(checkpoints[0]["path"], "stopped-at-start-resumed", 0)

    def test_sigterm_during_the_first_iteration_saves_after_it_and_the_resumed_run_is_exact(self) -> None:
        code, lines = jobs.in_process(self.spec("stopped-in-iteration"), hold_for_stop="rollout-0")
        self.assertEqual(code, 143, lines[-3:])
        self.assertEqual([m["step"] for m in lines if m["type"] == "metric"], [1])
        checkpoints = [m for m in lines if m["type"] == "checkpoint"]
        self.assertEqual([(os.path.basename(c["path"]), c["step"]) for c in checkpoints], [("checkpoint-1", 1)])
        self.assertFalse(any(m["type"] == "result" for m in lines))
        self.assert_resumes_exactly(checkpoints[0]["path"], "stopped-in-iteration-resumed", 1)

    def test_a_checkpoint_holds_the_weights_of_the_run_in_aligned_memory(self) -> None:
        # A safetensors file packs tensors end to end: the value head's weight sits 4 bytes past its 1-float bias.
        from safetensors.torch import load_file

        value = os.path.join(self.full, "checkpoints", "checkpoint-1", "value")
        self.assertTrue(any(t.data_ptr() % 16 for t in load_file(os.path.join(value, "model.safetensors")).values()))
        model = ppo.own_aligned_storage(ppo.load_value_model(value, 1, "with.value_model"))
        self.assertEqual([n for n, t in model.named_parameters() if t.data_ptr() % 64], [])

    def test_resuming_with_other_parameters_is_a_user_error(self) -> None:
        code, lines = jobs.in_process(self.spec("other", resume=os.path.join(self.full, "checkpoints", "checkpoint-1"), kl_coef=0.5))
        self.assertEqual(code, 2)
        error = lines[-1]
        self.assertEqual(error["type"], "error")
        self.assertTrue(error["user"])
        self.assertIn("other parameters", error["message"])


if __name__ == "__main__":
    unittest.main()
