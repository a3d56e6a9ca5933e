"""rl.grpo on TRL's GRPOTrainer, with HuatuoGPT-o1's reward through the step's verifier.

One iteration is one generation round: `prompts_per_iteration` problems (all of them when there are
fewer) are each answered `num_generations` times, scored, and then trained on in optimizer steps of
`mini_batch_size` responses, `num_iterations` passes over the round. In TRL's terms (one process):
generation_batch_size = prompts × num_generations, per_device_train_batch_size = mini_batch_size,
steps_per_generation = generation_batch_size / mini_batch_size, and an iteration is
steps_per_generation × num_iterations optimizer steps. Progress, checkpoints and the per-iteration
metrics (outDir/iterations.jsonl, rl/loop.ts's field names) count iterations.

The TypeScript job has written the problems as prompt/reference/question rows
(spec["prepared"]["data"], see rl_common.py) and points spec["prepared"]["tokenizer"] at the policy.
"""
from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Callable, Mapping

from . import protocol
from .models import load_causal_lm, load_tokenizer, save_trained
from .rl_common import VerifierReward, make_reward_function, problem_rows, read_problems

ITERATIONS_FILE = "iterations.jsonl"


# ---------------------------------------------------------------- the step's knobs

def _knob(p: Mapping[str, Any], name: str, earlier: str, default: Any) -> Any:
    """TRL's name of a knob, else its earlier name here, else the default (the TS schema keeps one)."""
    if p.get(name) is not None:
        return p[name]
    if p.get(earlier) is not None:
        return p[earlier]
    return default


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


class Shape:
    """How the iterations map onto TRL's batches and optimizer steps."""

    def __init__(self, p: Mapping[str, Any], n_problems: int, processes: int = 1) -> None:
        self.prompts = min(int(p["prompts_per_iteration"]), n_problems)
        self.generations = int(p["num_generations"])
        self.responses = self.prompts * self.generations
        self.mini_batch = int(p["mini_batch_size"])
        self.passes = int(_knob(p, "num_iterations", "epochs_per_iteration", 1))
        if self.mini_batch % processes != 0:
            raise protocol.UserError(
                f"with.mini_batch_size: {self.mini_batch} responses per optimizer step cannot be shared by {processes} processes",
                where="with.mini_batch_size", hint=f"give a multiple of {processes}")
        if self.responses % self.mini_batch != 0:
            raise protocol.UserError(
                f"with.mini_batch_size: {self.mini_batch} does not divide the {self.responses} responses of an iteration "
                f"({self.prompts} prompts × {self.generations} generations)",
                where="with.mini_batch_size", hint="the TRL runner trains on whole mini-batches: give a divisor of prompts_per_iteration × num_generations")
        self.per_device = self.mini_batch // processes
        self.steps_per_generation = self.responses // self.mini_batch
        self.steps_per_iteration = self.steps_per_generation * self.passes
        self.iterations = int(p["iterations"])
        self.max_steps = self.iterations * self.steps_per_iteration


def check_params(p: Mapping[str, Any]) -> None:
    estimator = p.get("kl_estimator", "k3")
    if estimator != "k3":
        raise protocol.UserError(
            f'with.kl_estimator: the TRL runner computes the KL penalty with the k3 estimator only, not "{estimator}"',
            where="with.kl_estimator", hint="remove kl_estimator (k3 is the default) or use the built-in runner")
    if p.get("rollout") is not None:
        raise protocol.UserError(
            "with.rollout: the TRL runner samples the rollouts with the policy in-process; it does not take a rollout server",
            where="with.rollout", hint="remove rollout, or use the built-in runner")


def grpo_config(p: Mapping[str, Any], shape: Shape, output_dir: str) -> Any:
    import torch
    from trl import GRPOConfig

    epsilon = float(_knob(p, "epsilon", "clip_range", 0.2))
    warmup = float(p["warmup_ratio"])
    kwargs: dict[str, Any] = {}
    if p.get("loss_type") is not None:
        kwargs["loss_type"] = p["loss_type"]  # loss_type → loss_type (grpo, dr_grpo, dapo)
    if p.get("scale_rewards") is not None:
        kwargs["scale_rewards"] = p["scale_rewards"]  # scale_rewards → scale_rewards (group, batch, none; true/false)
    return GRPOConfig(
        output_dir=output_dir,
        # num_generations → num_generations: responses per prompt, the group of the advantages
        num_generations=shape.generations,
        # response_length → max_completion_length
        max_completion_length=int(p["response_length"]),
        # temperature, top_p → temperature, top_p (TRL divides the logits by temperature + 1e-7, as the built-in)
        temperature=float(p["temperature"]),
        top_p=float(p["top_p"]),
        # learning_rate, lr_scheduler_type → the same names; the schedule runs over the optimizer steps
        learning_rate=float(p["learning_rate"]),
        lr_scheduler_type=p["lr_scheduler_type"],
        # warmup_ratio → warmup_steps: a ratio of max_steps when below 1 (rounded up); 1 means every step
        warmup_steps=warmup if warmup < 1 else shape.max_steps,
        # kl_coef (or beta) → beta: the weight of the k3 KL penalty to the starting policy
        beta=float(_knob(p, "beta", "kl_coef", 0.03)),
        # clip_range (or epsilon) → epsilon; epsilon_high defaults to epsilon
        epsilon=epsilon,
        epsilon_high=float(p["epsilon_high"]) if p.get("epsilon_high") is not None else epsilon,
        # epochs_per_iteration (or num_iterations) → num_iterations: passes over each round's responses
        num_iterations=shape.passes,
        # prompts_per_iteration × num_generations → generation_batch_size (responses per round);
        # mini_batch_size → per_device_train_batch_size (divided among processes), one optimizer step each
        # (no gradient accumulation); TRL derives steps_per_generation = generation_batch_size / mini_batch_size
        generation_batch_size=shape.responses,
        per_device_train_batch_size=shape.per_device,
        gradient_accumulation_steps=1,
        # iterations → max_steps: iterations × steps_per_generation × num_iterations optimizer steps
        max_steps=shape.max_steps,
        # max_grad_norm → max_grad_norm
        max_grad_norm=float(p["max_grad_norm"]),
        # seed → seed (also the prompt order: TRL's RepeatSampler, reseeded per pass below)
        seed=int(p["seed"]),
        # save_every (iterations) → save_steps (optimizer steps)
        save_strategy="steps",
        save_steps=int(p["save_every"]) * shape.steps_per_iteration,
        save_total_limit=2,
        logging_steps=1,
        report_to=[],
        disable_tqdm=True,
        # The built-in engine has no dropout; without it the old, reference and new log-probs agree.
        disable_dropout=True,
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        dataloader_num_workers=0,
        log_completions=False,
        **kwargs,
    )


# ---------------------------------------------------------------- the trainer

def grpo_trainer_class() -> type:
    """GRPOTrainer with prompts cut from the left to max_prompt_len tokens, and a prompt order
    reseeded from seed + pass number at each pass over the problems (TRL draws the order of later
    passes from one generator, which a run resumed in a later pass would not reproduce)."""
    from trl import GRPOTrainer
    from trl.trainer.utils import RepeatSampler

    class PassSeededRepeatSampler(RepeatSampler):
        def set_epoch(self, epoch: int) -> None:
            if self.shuffle:
                self.generator.manual_seed((self.seed or 0) + epoch)

    class Trainer(GRPOTrainer):
        max_prompt_len: int | None = None
        on_prompt_cut: Callable[[int, int], None] | None = None

        def _get_train_sampler(self, dataset: Any = None) -> Any:
            s = super()._get_train_sampler(dataset)
            return PassSeededRepeatSampler(s.data_source, s.mini_repeat_count, s.batch_size, s.repeat_count, s.shuffle, s.seed)

        def _tokenize_prompts(self, prompts: list) -> Any:
            prompt_ids, images, fields = super()._tokenize_prompts(prompts)
            limit = self.max_prompt_len
            if limit is not None and any(len(ids) > limit for ids in prompt_ids):
                if fields:
                    raise protocol.UserError("with.max_prompt_len: prompts with images cannot be cut", where="with.max_prompt_len")
                if self.on_prompt_cut is not None:
                    self.on_prompt_cut(max(len(ids) for ids in prompt_ids), limit)
                prompt_ids = [list(ids[len(ids) - limit:]) if len(ids) > limit else ids for ids in prompt_ids]
            return prompt_ids, images, fields

    return Trainer


def iteration_log_callback(reward: VerifierReward, steps_per_iteration: int, path: str, history: list[dict[str, Any]],
                           reduce: Callable[[list[float]], list[float]]) -> Any:
    """Writes one row per iteration to outDir/iterations.jsonl (and a metric message), from the
    reward's counts and TRL's per-step logs, and copies the rows into each checkpoint."""
    from transformers import TrainerCallback

    def mean(xs: list[float]) -> float | None:
        xs = [x for x in xs if isinstance(x, (int, float)) and math.isfinite(x)]
        return sum(xs) / len(xs) if xs else None

    class IterationLog(TrainerCallback):
        def __init__(self) -> None:
            self.logs: list[dict[str, Any]] = []
            self.started = time.monotonic()

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.monotonic()
            self.logs = []

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
            if not logs or "loss" not in logs or "train_runtime" in logs:
                return
            self.logs.append(logs)
            if state.global_step % steps_per_iteration != 0:
                return
            c = reward.take_counts()
            responses, correct, formatted, reward_sum = reduce([c.responses, c.correct, c.formatted, c.reward_sum])
            n = max(1.0, responses)

            def over(key: str) -> float | None:
                return mean([entry[key] for entry in self.logs if key in entry])

            row: dict[str, Any] = {
                "iteration": state.global_step // steps_per_iteration,
                "reward_mean": reward_sum / n,
                "accuracy": correct / n,
                "format_rate": formatted / n,
                "lr": self.logs[0].get("learning_rate"),
                "response_length": over("completions/mean_length"),
                "finished_rate": None if over("completions/clipped_ratio") is None else 1.0 - over("completions/clipped_ratio"),
                "loss": over("loss"),
                "kl": over("kl"),
                "clip_frac": over("clip_ratio/region_mean"),
                "grad_norm": over("grad_norm"),
                "entropy": over("entropy"),
                "reward_std": over("reward_std"),
                "frac_reward_zero_std": over("frac_reward_zero_std"),
                "steps": len(self.logs),
                "iteration_s": time.monotonic() - self.started,
                "responses": int(responses),
            }
            row = {k: v for k, v in row.items() if v is not None}
            self.logs = []
            self.started = time.monotonic()
            if not state.is_world_process_zero:
                return
            history.append(row)
            write_rows(path, history)
            protocol.metric(row, row["iteration"])

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            if state.is_world_process_zero and os.path.isdir(folder):
                write_rows(os.path.join(folder, ITERATIONS_FILE), history)

    return IterationLog()


def write_rows(path: str, rows: list[dict[str, Any]]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, allow_nan=False) + "\n")
    os.replace(tmp, path)


def resumed_rows(resume: str | None, iteration: int | None) -> list[dict[str, Any]]:
    """The metric rows a checkpoint carries, up to its iteration."""
    if not resume:
        return []
    path = os.path.join(resume, ITERATIONS_FILE)
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if iteration is None or r.get("iteration", 0) <= iteration]


def checkpoint_step(resume: str) -> int | None:
    try:
        with open(os.path.join(resume, "trainer_state.json"), encoding="utf-8") as f:
            return int(json.load(f)["global_step"])
    except (OSError, ValueError, KeyError):
        return None


# ---------------------------------------------------------------- the step

def run(spec: dict[str, Any]) -> dict[str, Any] | None:
    from datasets import Dataset

    from .callbacks import ProtocolCallback

    p = spec["params"]
    prepared = spec["prepared"]
    out_dir = spec["outDir"]
    project_root = spec.get("projectRoot") or os.getcwd()
    check_params(p)
    if not os.path.isfile(os.path.join(p["policy"], "config.json")):
        raise protocol.UserError(f"{p['policy']}: not a model folder (no config.json)", where="with.policy",
                                 hint="give a checkpoint folder, e.g. ${{ steps.sft.outputs.checkpoint }}")
    problems = read_problems(prepared["data"])
    shape = Shape(p, len(problems), world_size())
    stop = protocol.StopRequest().install()
    os.makedirs(out_dir, exist_ok=True)

    tokenizer = load_tokenizer(prepared["tokenizer"])
    model = load_causal_lm(p["policy"], tokenizer, project_root, int(p["seed"]))
    dataset = Dataset.from_list(problem_rows(problems))
    resume = spec.get("resumeFrom") or None
    step = checkpoint_step(resume) if resume else None
    history = resumed_rows(resume, None if step is None else step // shape.steps_per_iteration)
    metrics_path = os.path.join(out_dir, ITERATIONS_FILE)

    reward = make_reward_function(p, project_root)
    try:
        Trainer = grpo_trainer_class()
        trainer = Trainer(
            model=model,
            reward_funcs=[reward],
            args=grpo_config(p, shape, os.path.join(out_dir, "checkpoints")),
            train_dataset=dataset,
            processing_class=tokenizer,
        )
        cut_reported = False

        def on_prompt_cut(longest: int, limit: int) -> None:
            nonlocal cut_reported
            if not cut_reported:
                protocol.log(f"prompts longer than max_prompt_len ({limit} tokens, the longest {longest}) are cut from the left", "warn")
                cut_reported = True

        trainer.max_prompt_len = int(p["max_prompt_len"])
        trainer.on_prompt_cut = on_prompt_cut

        def reduce(values: list[float]) -> list[float]:
            if trainer.accelerator.num_processes == 1:
                return values
            import torch

            t = torch.tensor(values, dtype=torch.float64, device=trainer.accelerator.device)
            return trainer.accelerator.reduce(t, reduction="sum").tolist()

        # The iteration log comes first: a checkpoint's rows are on disk before its checkpoint message.
        trainer.add_callback(iteration_log_callback(reward, shape.steps_per_iteration, metrics_path, history, reduce))
        trainer.add_callback(ProtocolCallback(p["save_every_minutes"], stop, unit="iterations",
                                              steps_per_unit=shape.steps_per_iteration, report_logs=False))
        protocol.log(f"{shape.iterations} iterations of {shape.prompts} prompts × {shape.generations} generations, "
                     f"{shape.steps_per_iteration} optimizer steps of {shape.mini_batch} responses each")
        if resume:
            at = "?" if step is None else step // shape.steps_per_iteration
            protocol.log(f"resuming at iteration {at} of {shape.iterations} from {resume}")
        trainer.train(resume_from_checkpoint=resume)
        if stop.requested:
            return None
        final = save_trained(trainer, tokenizer, os.path.join(out_dir, "checkpoint"))
    finally:
        reward.close()
    if not os.path.isfile(metrics_path):
        write_rows(metrics_path, history)
    protocol.artifact("checkpoint", final)
    return {"checkpoint": final, "metrics": metrics_path}
