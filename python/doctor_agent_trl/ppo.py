"""rl.ppo: PPO with a value model and the verifier reward, the recipe's RL stage.

TRL 1.16 has no PPO trainer (it was removed; neither ``trl`` nor ``trl.experimental`` holds one),
so the update is built here from TRL's, transformers' and accelerate's pieces: policy and reference
are ``AutoModelForCausalLM``; rollouts come from ``model.generate`` inside TRL's
``unwrap_model_for_generation`` (which gathers ZeRO-3 shards for generation); log-probs come from
TRL's ``selective_log_softmax``; the reference model is prepared with TRL's ``prepare_deepspeed``
under DeepSpeed; the schedule is transformers' ``get_scheduler``; and ``accelerate`` prepares the
models and the optimizer, so ``accelerate launch`` with several processes or a DeepSpeed config
runs it as it runs TRL's trainers.

The value model is a separate ``AutoModelForTokenClassification`` (num_labels=1) started from
``value_model`` or else the policy folder, its head set to zero unless the folder already is such
a value model. A separate model, rather than a head on the policy's trunk, is what the recipe
does (a 3B value model for an 8B policy) and what rl/ppo.ts does: the value loss never moves the
policy's weights, and the value model can be smaller. Policy and value model are held in one
module (``PolicyAndValue``) with one AdamW of two parameter groups, so that DeepSpeed, which takes
one model per engine, shards and checkpoints both; their parameters are disjoint, so one backward
pass of ``pg_loss + vf_coef * vf_loss`` and one step give exactly the two separate steps of
rl/ppo.ts.

The definitions are those of the built-in PPO (rl/loop.ts, rl/ppo.ts, rl/advantages.ts,
rl/losses.ts), so both runners mean the same thing:

- a response ends at its first stop token (kept as its last token) or after ``response_length``
  tokens; nothing after it is masked in;
- every log-prob (old, reference, new) is taken with the logits divided by temperature + 1e-7;
- per-token reward: ``-kl_coef * (logp_old - logp_ref)`` on every response token, plus the
  verifier reward on the last one; the ``kl`` metric is the mean of ``logp_old - logp_ref`` over
  the response tokens;
- values: entry t is the value of the state before response token t (the head at the position
  before it); GAE over the response tokens with the value after the last one 0; returns are
  advantages + values; advantages are whitened over all response tokens of the batch (mean 0,
  unbiased variance, ``(x - mean) / sqrt(var + 1e-8)``);
- policy loss: clipped surrogate, mean over the mini-batch's response tokens; clip fraction: the
  share of tokens where the clipped term was the larger loss; value loss:
  ``0.5 * mean(max((V - R)^2, (clip(V, V_old ± c) - R)^2))`` times ``vf_coef`` (reported unweighted);
- AdamW without weight decay at the same learning rate for both, which follows the schedule with
  one scheduler step per iteration (ceil(iterations * warmup_ratio) warmup steps); gradients are
  clipped to ``max_grad_norm`` for the policy and the value model each;
- ``batch_size`` prompts per iteration (all problems when there are fewer), drawn without
  replacement from shuffled passes over the problems; ``num_ppo_epochs`` passes of shuffled
  mini-batches of ``mini_batch_size`` responses.

Differences: the random streams are torch's and numpy's, so samples and prompt order differ from
the built-in for the same seed. Across several processes each takes its share of the prompts and
of each mini-batch (batch_size and mini_batch_size must be multiples of the number of processes);
whitening and the metrics are over all processes, the losses are means over each process's tokens
whose gradients are averaged, as DDP does. Under DeepSpeed the engine clips the gradients of both
models together by its ``gradient_clipping`` (set to max_grad_norm when the config says auto), and
``grad_norm`` is not reported. ``rollout:`` (a rollout server) is the built-in runner's only.

Checkpoints (every save_every iterations or save_every_minutes, and on SIGTERM, then the job
stops): outDir/checkpoints/checkpoint-N with the policy (policy/, a Hugging Face folder with the
tokenizer), the value model (value/), the optimizer, scheduler and RNG states (accelerate's
save_state) and ppo_state.json (iteration, metrics so far, the parameters' hash), written under a
temporary name and renamed when complete; the newest two are kept. A resumed run continues exactly.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from typing import Any, Optional, Sequence

from . import protocol
from .models import load_tokenizer

STATE_FILE = "ppo_state.json"
ITERATIONS_FILE = "iterations.jsonl"
POLICY_DIR = "policy"
VALUE_DIR = "value"
KEEP_CHECKPOINTS = 2
WHITEN_EPS = 1e-8


# ---------------------------------------------------------------- the math (tensors [B, T], mask 1 on response tokens)

def masked_mean(x: Any, mask: Any) -> Any:
    """Mean of x over the entries where mask is 1 (0 when there are none)."""
    return (x * mask).sum() / mask.sum().clamp(min=1)


def whiten(x: Any, mask: Any, reduce_sum: Any = None) -> Any:
    """x shifted and scaled over the masked entries to mean 0 and (unbiased) standard deviation 1,
    (x - mean) / sqrt(var + 1e-8); 0 off the mask, and everywhere when fewer than two entries.
    ``reduce_sum`` sums a tensor over all processes (None: this process only)."""
    import torch

    total = reduce_sum or (lambda t: t)
    count = total(mask.sum().to(torch.float64))
    if count.item() < 2:
        return torch.zeros_like(x)
    mean = total((x * mask).sum().to(torch.float64)) / count
    var = total((((x - mean) * mask) ** 2).sum().to(torch.float64)) / (count - 1)
    return ((x - mean) * torch.rsqrt(var + WHITEN_EPS) * mask).to(x.dtype)


def token_rewards(scores: Any, old_logp: Any, ref_logp: Any, mask: Any, kl_coef: float) -> tuple[Any, Any]:
    """Per-token rewards and KL: -kl_coef * (old - ref) on each response token, plus the score on its last token."""
    import torch

    kl = (old_logp - ref_logp) * mask
    rewards = -kl_coef * kl
    lengths = mask.sum(1).long()
    rows = torch.nonzero(lengths > 0).squeeze(1)
    rewards[rows, lengths[rows] - 1] += scores[rows].to(rewards.dtype)
    return rewards, kl


def gae(rewards: Any, values: Any, mask: Any, gamma: float, lam: float) -> tuple[Any, Any]:
    """GAE per row over the masked (response) tokens, the value after the last one 0:
    delta_t = r_t + gamma V_{t+1} - V_t, A_t = delta_t + gamma lam A_{t+1}; returns A + V."""
    import torch

    rewards = rewards * mask
    values = values * mask
    T = rewards.shape[1]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[:, 0])
    for t in range(T - 1, -1, -1):
        next_value = values[:, t + 1] if t + 1 < T else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = (delta + gamma * lam * last) * mask[:, t]
        advantages[:, t] = last
    return advantages, (advantages + values) * mask


def policy_loss(logp: Any, old_logp: Any, advantages: Any, mask: Any, clip: float) -> tuple[Any, Any]:
    """The clipped surrogate (mean over masked tokens) and the share of tokens where the clipped term was taken."""
    import torch

    ratio = torch.exp(logp - old_logp)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    return masked_mean(torch.max(unclipped, clipped), mask), masked_mean((clipped > unclipped).to(logp.dtype), mask)


def value_loss(values: Any, old_values: Any, returns: Any, mask: Any, clip: float) -> Any:
    """0.5 * mean over masked tokens of max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2)."""
    import torch

    clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    return 0.5 * masked_mean(torch.max((values - returns) ** 2, (clipped - returns) ** 2), mask)


# ---------------------------------------------------------------- models

def _policy_and_value_class() -> Any:
    import torch

    class PolicyAndValue(torch.nn.Module):
        """The policy and the value model as one module (one DeepSpeed engine, one DDP wrapper)."""

        def __init__(self, policy: Any, value: Any) -> None:
            super().__init__()
            self.policy = policy
            self.value = value

        # What TRL's unwrap_model_for_generation asks of the model it unwraps.
        @property
        def is_gradient_checkpointing(self) -> bool:
            return bool(getattr(self.policy, "is_activation_checkpointing", False))

        def gradient_checkpointing_disable(self) -> None:
            self.policy.gradient_checkpointing_disable()

        def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: Any = None) -> None:
            self.policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gradient_checkpointing_kwargs)

        def forward(self, input_ids: Any, attention_mask: Any, response_len: int) -> tuple[Any, Any]:
            """Policy logits [B, R, V] and values [B, R] at the positions before each of the last R tokens."""
            position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
            logits = self.policy(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                 logits_to_keep=response_len + 1, use_cache=False).logits[:, :-1]
            values = self.value(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits[..., 0]
            return logits, values[:, -response_len - 1:-1]

    return PolicyAndValue


def own_aligned_storage(model: Any) -> Any:
    """Every parameter and buffer of a loaded model moved to memory of its own, aligned as the allocator
    aligns fresh tensors (64 bytes), when it is not already. A safetensors file packs its tensors end to
    end, so a loaded tensor can sit off that grid (a value model's ``score.weight`` comes right after the
    4-byte ``score.bias``); CPU kernels take other vector paths for such a tensor and round differently
    in the last bit, so a run resumed from a checkpoint would drift from the run that never stopped."""
    import torch

    with torch.no_grad():
        for tensors in (model.parameters(), model.buffers()):
            for t in tensors:
                if t.device.type == "cpu" and t.numel() and t.data_ptr() % 64:
                    t.data = t.data.clone(memory_format=torch.preserve_format)
    return model


def _folder(ref: str, project_root: str) -> str:
    return ref if os.path.isabs(ref) or os.path.isdir(ref) else os.path.join(project_root, ref)


def load_policy(folder: str, where: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise protocol.UserError(f"{folder}: not a model folder (no config.json)", where=where,
                                 hint="give a checkpoint folder, e.g. ${{ steps.sft.outputs.checkpoint }}")
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)


def is_value_folder(folder: str) -> bool:
    """Whether a folder already holds a value model (a token classifier with one output)."""
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError):
        return False
    archs = config.get("architectures") or []
    labels = len(config.get("id2label") or {}) or config.get("num_labels", 2)
    return any(str(a).endswith("ForTokenClassification") for a in archs) and labels == 1


def load_value_model(folder: str, vocab: int, where: str) -> Any:
    """A value model from a model folder: the same trunk with a one-output head, zero unless the folder is a value model already."""
    import torch
    from transformers import AutoModelForTokenClassification

    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise protocol.UserError(f"{folder}: not a model folder (no config.json)", where=where)
    keep_head = is_value_folder(folder)
    try:
        model = AutoModelForTokenClassification.from_pretrained(folder, num_labels=1, dtype=torch.float32)
    except ValueError as e:
        raise protocol.UserError(f"{folder}: cannot be a value model ({e})", where=where,
                                 hint="give a model folder of an architecture with a token-classification variant (Llama, Qwen2, ...)") from e
    if model.get_input_embeddings().num_embeddings < vocab:
        raise protocol.UserError(f"{folder}: its vocabulary ({model.get_input_embeddings().num_embeddings}) is smaller than the policy tokenizer's ({vocab})",
                                 where=where, hint="the value model reads the policy's token ids: give a model of the same tokenizer")
    if not keep_head:
        with torch.no_grad():
            model.score.weight.zero_()
            if model.score.bias is not None:
                model.score.bias.zero_()
    return model


# ---------------------------------------------------------------- prompts, schedule, seeds

def params_hash(p: dict[str, Any]) -> str:
    """The run's shape: every parameter except how often to checkpoint."""
    shape = {k: v for k, v in p.items() if k not in ("save_every", "save_every_minutes")}
    return hashlib.sha256(json.dumps({"kind": "rl.ppo", "shape": shape}, sort_keys=True).encode()).hexdigest()


def prompts_per_iteration(batch_size: int, problems: int, processes: int) -> int:
    n = min(batch_size, problems)
    n -= n % processes
    if n == 0:
        raise protocol.UserError(f"{problems} problems for {processes} processes: each process needs at least one prompt per iteration",
                                 where="with.data", hint="give more problems or run fewer processes")
    return n


def iteration_prompts(iteration: int, count: int, problems: int, seed: int) -> list[int]:
    """The problems of an iteration: positions iteration*count .. +count of the stream of shuffled passes over them."""
    import numpy as np

    passes: dict[int, Any] = {}
    out: list[int] = []
    for pos in range(iteration * count, (iteration + 1) * count):
        k = pos // problems
        if k not in passes:
            passes[k] = np.random.default_rng([seed, k]).permutation(problems)
        out.append(int(passes[k][pos % problems]))
    return out


def derived_seed(*parts: int) -> int:
    import numpy as np

    return int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0] % (2 ** 63))


def warmup_steps(iterations: int, ratio: float) -> int:
    return math.ceil(iterations * ratio)


# ---------------------------------------------------------------- rollouts

def encode_prompt(tokenizer: Any, messages: list[dict[str, str]], max_len: int) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids[len(ids) - max_len:] if len(ids) > max_len else ids


def stop_token_ids(tokenizer: Any, model: Any) -> list[int]:
    ids: list[int] = []
    for x in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        for i in (x if isinstance(x, (list, tuple)) else [x]):
            if i is not None and int(i) not in ids:
                ids.append(int(i))
    if not ids:
        raise protocol.UserError("the tokenizer has no end-of-sequence token", where="with.policy")
    return ids


def cut_responses(generated: Any, stop_ids: Sequence[int]) -> tuple[list[list[int]], list[bool]]:
    """Each generated row up to and including its first stop token (or all of it), and whether it stopped."""
    responses: list[list[int]] = []
    finished: list[bool] = []
    stops = set(stop_ids)
    for row in generated.tolist():
        end = next((i for i, t in enumerate(row) if t in stops), None)
        responses.append(row if end is None else row[:end + 1])
        finished.append(end is not None)
    return responses, finished


def batch_tensors(prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], pad_id: int, device: Any) -> dict[str, Any]:
    """[left-padded prompt | right-padded response] rows, their attention mask and the response mask [B, R]."""
    import torch

    P = max(len(p) for p in prompts)
    R = max(1, max(len(r) for r in responses))
    B = len(prompts)
    ids = torch.full((B, P + R), pad_id, dtype=torch.long)
    attn = torch.zeros((B, P + R), dtype=torch.long)
    mask = torch.zeros((B, R), dtype=torch.float32)
    for b, (p, r) in enumerate(zip(prompts, responses)):
        ids[b, P - len(p):P] = torch.tensor(p, dtype=torch.long)
        attn[b, P - len(p):P] = 1
        if r:
            ids[b, P:P + len(r)] = torch.tensor(r, dtype=torch.long)
            attn[b, P:P + len(r)] = 1
            mask[b, :len(r)] = 1
    return {"input_ids": ids.to(device), "attention_mask": attn.to(device), "mask": mask.to(device), "prompt_len": P}


def rows(batch: dict[str, Any], idx: Any) -> dict[str, Any]:
    """Rows idx of a batch, cut to their own longest response."""
    P = batch["prompt_len"]
    mask = batch["mask"][idx]
    R = max(1, int(mask.sum(1).max().item()))
    out = {"prompt_len": P, "mask": mask[:, :R], "input_ids": batch["input_ids"][idx][:, :P + R],
           "attention_mask": batch["attention_mask"][idx][:, :P + R]}
    for key in ("old_logp", "ref_logp", "old_values", "advantages", "returns"):
        if key in batch:
            out[key] = batch[key][idx][:, :R]
    return out


# ---------------------------------------------------------------- the run

class _Run:
    def __init__(self, spec: dict[str, Any]) -> None:
        import torch
        from accelerate import Accelerator
        from accelerate.utils import DistributedType, set_seed

        from .rl_common import problem_rows, read_problems

        self.spec = spec
        self.p = p = spec["params"]
        if p.get("rollout"):
            raise protocol.UserError("with.rollout: the TRL runner samples rollouts from the policy it trains; a rollout server is the built-in runner's",
                                     where="with.rollout", hint="remove rollout:, or use runner: builtin")
        self.root = spec.get("projectRoot") or os.getcwd()
        self.out_dir = spec["outDir"]
        self.stop = protocol.StopRequest().install()
        # Mixed precision as `accelerate launch --mixed_precision` says, else bf16 where the GPU has it (as sft and grpo).
        precision = os.environ.get("ACCELERATE_MIXED_PRECISION") or ("bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no")
        self.acc = acc = Accelerator(step_scheduler_with_optimizer=False, mixed_precision=precision)
        self.deepspeed = acc.distributed_type == DistributedType.DEEPSPEED
        self.world = acc.num_processes
        for name in ("batch_size", "mini_batch_size"):
            if p[name] % self.world:
                raise protocol.UserError(f"with.{name}: {p[name]} is not a multiple of the {self.world} processes", where=f"with.{name}")
        set_seed(p["seed"])
        prepared = spec["prepared"]
        self.tokenizer = load_tokenizer(prepared["tokenizer"])
        self.problems = problem_rows(read_problems(prepared["data"]))
        self.prompt_ids = [encode_prompt(self.tokenizer, r["prompt"], p["max_prompt_len"]) for r in self.problems]
        self.count = prompts_per_iteration(p["batch_size"], len(self.problems), self.world)
        self.hash = params_hash(p)

        resume = spec.get("resumeFrom") or None
        self.state: dict[str, Any] = {"iteration": 0, "history": [], "params_hash": self.hash}
        self.saved_at = -1
        if resume:
            self.state = self.read_state(resume)
        policy_dir = _folder(p["policy"], self.root)
        policy = load_policy(os.path.join(resume, POLICY_DIR) if resume else policy_dir, "with.policy")
        ref = load_policy(policy_dir, "with.policy")
        value_from = os.path.join(resume, VALUE_DIR) if resume else _folder(p.get("value_model") or p["policy"], self.root)
        value = load_value_model(value_from, len(self.tokenizer), "with.value_model" if p.get("value_model") else "with.policy")
        from trl.trainer.utils import disable_dropout_in_model

        for m in (policy, ref, value):
            disable_dropout_in_model(m)
            own_aligned_storage(m)
        ref.requires_grad_(False)
        self.stop_ids = stop_token_ids(self.tokenizer, policy)

        from transformers import get_scheduler

        model = _policy_and_value_class()(policy, value)
        optimizer = torch.optim.AdamW(
            [{"params": [q for q in policy.parameters() if q.requires_grad]}, {"params": [q for q in value.parameters() if q.requires_grad]}],
            lr=p["learning_rate"], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
        scheduler = get_scheduler(p["lr_scheduler_type"], optimizer, num_warmup_steps=warmup_steps(p["iterations"], p["warmup_ratio"]),
                                  num_training_steps=p["iterations"])
        if self.deepspeed:
            ds = acc.state.deepspeed_plugin.deepspeed_config
            ds["train_micro_batch_size_per_gpu"] = p["mini_batch_size"] // self.world
            ds["gradient_accumulation_steps"] = 1
            if ds.get("gradient_clipping", "auto") == "auto":
                ds["gradient_clipping"] = p["max_grad_norm"]
        self.model, self.optimizer, self.scheduler = acc.prepare(model, optimizer, scheduler)
        if self.deepspeed:
            from trl.models.utils import prepare_deepspeed

            self.ref = prepare_deepspeed(ref, acc)
        else:
            self.ref = acc.prepare_model(ref, evaluation_mode=True)
        self.ref.eval()
        # The weights travel as Hugging Face folders (policy/, value/); accelerate's state file keeps the rest.
        acc.register_save_state_pre_hook(lambda models, weights, out: weights.clear())
        acc.register_load_state_pre_hook(lambda models, inp: models.clear())
        if resume:
            acc.load_state(resume)
            protocol.log(f"resuming at iteration {self.state['iteration']} of {p['iterations']} from {resume}")

    # ---------------- state and checkpoints

    def read_state(self, folder: str) -> dict[str, Any]:
        path = os.path.join(folder, STATE_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise protocol.UserError(f"{folder}: not a checkpoint of rl.ppo (cannot read {STATE_FILE}: {e})", where="resumeFrom",
                                     hint="delete the step folder to start afresh") from e
        if state.get("params_hash") != self.hash:
            raise protocol.UserError(f"{folder}: checkpoint of a run with other parameters", where="resumeFrom",
                                     hint="delete the step folder to start afresh")
        return state

    def unwrapped(self) -> Any:
        return self.acc.unwrap_model(self.model)

    def save_models(self, policy_folder: str, value_folder: Optional[str] = None) -> None:
        """The policy (with the tokenizer) to policy_folder, and the value model to value_folder when given;
        gathered from every process (e.g. under ZeRO-3). Every process calls it."""
        full = self.acc.get_state_dict(self.model)
        if not self.acc.is_main_process:
            return
        m = self.unwrapped()
        part = lambda prefix: {k[len(prefix):]: v for k, v in full.items() if k.startswith(prefix)}  # noqa: E731
        m.policy.save_pretrained(policy_folder, state_dict=part("policy."), safe_serialization=True)
        self.tokenizer.save_pretrained(policy_folder)
        if value_folder is not None:
            m.value.save_pretrained(value_folder, state_dict=part("value."), safe_serialization=True)

    def save_checkpoint(self) -> str:
        acc = self.acc
        n = self.state["iteration"]
        root = os.path.join(self.out_dir, "checkpoints")
        final = os.path.join(root, f"checkpoint-{n}")
        partial = final + ".partial"
        if acc.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
            os.makedirs(partial)
        acc.wait_for_everyone()
        acc.save_state(partial)
        self.save_models(os.path.join(partial, POLICY_DIR), os.path.join(partial, VALUE_DIR))
        if acc.is_main_process:
            with open(os.path.join(partial, STATE_FILE), "w", encoding="utf-8") as f:
                json.dump(self.state, f)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(partial, final)
            done = sorted((d for d in os.listdir(root) if d.startswith("checkpoint-") and d[len("checkpoint-"):].isdigit()),
                          key=lambda d: int(d[len("checkpoint-"):]))
            for old in done[:-KEEP_CHECKPOINTS]:
                shutil.rmtree(os.path.join(root, old), ignore_errors=True)
            protocol.checkpoint(final, n)
        acc.wait_for_everyone()
        self.saved_at = n
        return final

    def any_process(self, flag: bool) -> bool:
        import torch

        if self.world == 1:
            return flag
        return bool(self.acc.reduce(torch.tensor([1.0 if flag else 0.0], device=self.acc.device), "sum").item() > 0)

    def reduce_sum(self, t: Any) -> Any:
        return t if self.world == 1 else self.acc.reduce(t.to(self.acc.device), "sum")

    # ---------------- one iteration

    def rollout(self, chosen: list[int]) -> tuple[list[list[int]], list[list[int]], list[bool]]:
        import torch
        from transformers import GenerationConfig
        from trl.models.utils import unwrap_model_for_generation
        from trl.trainer.utils import pad

        p = self.p
        prompts = [self.prompt_ids[i] for i in chosen]
        ids = pad([torch.tensor(x, dtype=torch.long) for x in prompts], padding_value=self.tokenizer.pad_token_id, padding_side="left")
        attn = pad([torch.ones(len(x), dtype=torch.long) for x in prompts], padding_value=0, padding_side="left")
        config = GenerationConfig(do_sample=True, temperature=p["temperature"] + 1e-7, top_p=p["top_p"], top_k=0,
                                  max_new_tokens=p["response_length"], eos_token_id=self.stop_ids,
                                  pad_token_id=self.tokenizer.pad_token_id, use_cache=True)
        with unwrap_model_for_generation(self.model, self.acc) as unwrapped, torch.no_grad(), self.acc.autocast():
            out = unwrapped.policy.generate(input_ids=ids.to(self.acc.device), attention_mask=attn.to(self.acc.device), generation_config=config)
        responses, finished = cut_responses(out[:, ids.shape[1]:].cpu(), self.stop_ids)
        return prompts, responses, finished

    def logprobs_and_values(self, batch: dict[str, Any], chunk: int) -> None:
        """Old and reference log-probs and old values of the batch, without gradients."""
        import torch
        from trl.trainer.utils import selective_log_softmax

        t = self.p["temperature"] + 1e-7
        B = batch["input_ids"].shape[0]
        old, ref, vals = [], [], []
        R = batch["mask"].shape[1]
        self.model.eval()
        with torch.no_grad():
            for s in range(0, B, chunk):
                ids, attn = batch["input_ids"][s:s + chunk], batch["attention_mask"][s:s + chunk]
                targets = ids[:, -R:]
                logits, values = self.model(ids, attn, R)
                old.append(selective_log_softmax(logits, targets, temperature=t))
                vals.append(values.float())
                pos = (attn.cumsum(-1) - 1).clamp(min=0)
                ref_logits = self.ref(input_ids=ids, attention_mask=attn, position_ids=pos, logits_to_keep=R + 1, use_cache=False).logits[:, :-1]
                ref.append(selective_log_softmax(ref_logits, targets, temperature=t))
        m = batch["mask"]
        batch["old_logp"] = torch.cat(old).float() * m
        batch["ref_logp"] = torch.cat(ref).float() * m
        batch["old_values"] = torch.cat(vals) * m

    def update(self, batch: dict[str, Any], iteration: int) -> dict[str, float]:
        import torch
        from trl.trainer.utils import selective_log_softmax

        p = self.p
        t = p["temperature"] + 1e-7
        acc = self.acc
        B = batch["input_ids"].shape[0]
        mb = p["mini_batch_size"] // self.world
        g = torch.Generator().manual_seed(derived_seed(p["seed"], iteration, 1))
        m = self.unwrapped()
        policy_params = [q for q in m.policy.parameters() if q.requires_grad]
        value_params = [q for q in m.value.parameters() if q.requires_grad]
        sums = {"pg_loss": 0.0, "vf_loss": 0.0, "clip_frac": 0.0, "grad_norm": 0.0, "value_grad_norm": 0.0}
        norms = not self.deepspeed
        steps = 0
        self.model.train()
        for _ in range(p["num_ppo_epochs"]):
            order = torch.randperm(B, generator=g).to(batch["input_ids"].device)
            for s in range(0, B, mb):
                b = rows(batch, order[s:s + mb])
                R = b["mask"].shape[1]
                logits, values = self.model(b["input_ids"], b["attention_mask"], R)
                logp = selective_log_softmax(logits, b["input_ids"][:, -R:], temperature=t)
                pg, clip_frac = policy_loss(logp.float(), b["old_logp"], b["advantages"], b["mask"], p["clip_range"])
                vf = value_loss(values.float(), b["old_values"], b["returns"], b["mask"], p["clip_range_value"])
                acc.backward(pg + p["vf_coef"] * vf)
                if norms:
                    gn = acc.clip_grad_norm_(policy_params, p["max_grad_norm"])
                    vn = acc.clip_grad_norm_(value_params, p["max_grad_norm"])
                    sums["grad_norm"] += float(gn)
                    sums["value_grad_norm"] += float(vn)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                sums["pg_loss"] += pg.item()
                sums["vf_loss"] += vf.item()
                sums["clip_frac"] += clip_frac.item()
                steps += 1
        stats = {k: v / max(1, steps) for k, v in sums.items() if norms or "grad_norm" not in k}
        if self.world > 1:
            keys = sorted(stats)
            mean = self.reduce_sum(torch.tensor([stats[k] for k in keys], dtype=torch.float64)) / self.world
            stats = {k: float(v) for k, v in zip(keys, mean.tolist())}
        stats["loss"] = stats["pg_loss"]
        stats["steps"] = float(steps)
        return stats

    def iteration(self, reward: Any) -> dict[str, Any]:
        import torch

        p = self.p
        acc = self.acc
        i = self.state["iteration"]
        t0 = time.perf_counter()
        chosen = iteration_prompts(i, self.count, len(self.problems), p["seed"])[acc.process_index::self.world]
        lr = float(self.scheduler.get_last_lr()[0])
        torch.manual_seed(derived_seed(p["seed"], i, 0, acc.process_index))
        prompts, responses, finished = self.rollout(chosen)
        self.stop.hold(f"rollout-{i}")
        t1 = time.perf_counter()
        texts = [self.tokenizer.decode(r, skip_special_tokens=True) for r in responses]
        scores = reward.score_texts(texts, [self.problems[c]["reference"] for c in chosen], [self.problems[c]["question"] for c in chosen])
        batch = batch_tensors(prompts, responses, self.tokenizer.pad_token_id, acc.device)
        self.logprobs_and_values(batch, max(1, p["mini_batch_size"] // self.world))
        m = batch["mask"]
        rewards, kl = token_rewards(torch.tensor(scores.rewards, device=m.device), batch["old_logp"], batch["ref_logp"], m, p["kl_coef"])
        adv, ret = gae(rewards, batch["old_values"], m, p["gamma"], p["lam"])
        batch["advantages"] = whiten(adv, m, self.reduce_sum)
        batch["returns"] = ret
        stats = self.update(batch, i)
        self.scheduler.step()
        t2 = time.perf_counter()

        n = len(texts)
        local = torch.tensor([n, sum(scores.rewards), sum(map(float, scores.correct)), sum(map(float, scores.formatted)),
                              float(sum(len(r) for r in responses)), float(sum(finished)), float(kl.sum().item()), float(m.sum().item())],
                             dtype=torch.float64)
        tot = self.reduce_sum(local).tolist()
        count = max(1.0, tot[0])
        values: dict[str, Any] = {
            "iteration": i + 1,
            "reward_mean": tot[1] / count,
            "accuracy": tot[2] / count,
            "format_rate": tot[3] / count,
            "lr": lr,
            "response_length": tot[4] / count,
            "finished_rate": tot[5] / count,
            **stats,
            "kl": tot[6] / max(1.0, tot[7]),
            "rollout_s": t1 - t0,
            "update_s": t2 - t1,
            "responses": int(tot[0]),
        }
        if texts:
            protocol.log(f"iteration {i + 1} sample (reward {scores.rewards[0]}): {json.dumps(texts[0][:400], ensure_ascii=False)}")
        return values

    def write_metrics(self) -> str:
        path = os.path.join(self.out_dir, ITERATIONS_FILE)
        if self.acc.is_main_process:
            os.makedirs(self.out_dir, exist_ok=True)
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                for h in self.state["history"]:
                    f.write(json.dumps(h) + "\n")
            os.replace(tmp, path)
        return path

    def run(self) -> Optional[dict[str, Any]]:
        from .rl_common import make_reward_function

        p = self.p
        total = p["iterations"]
        clock = protocol.SaveClock(p["save_every_minutes"])
        reward = make_reward_function(p, self.root)
        metrics_file = os.path.join(self.out_dir, ITERATIONS_FILE)
        try:
            protocol.progress(self.state["iteration"], total, unit="iterations")
            while self.state["iteration"] < total:
                self.stop.hold(f"iteration-{self.state['iteration']}")
                if self.any_process(self.stop.requested):
                    if self.saved_at != self.state["iteration"]:
                        self.save_checkpoint()
                    protocol.log(f"stopped at iteration {self.state['iteration']} of {total} (checkpoint written)")
                    return None
                values = self.iteration(reward)
                self.state["iteration"] += 1
                self.state["history"].append(values)
                metrics_file = self.write_metrics()
                protocol.metric(values, self.state["iteration"])
                protocol.progress(self.state["iteration"], total,
                                  f"reward {values['reward_mean']:.3f}, accuracy {values['accuracy']:.2f}, format {values['format_rate']:.2f}",
                                  "iterations")
                it = self.state["iteration"]
                if it < total and self.any_process(it % p["save_every"] == 0 or clock.due() or self.stop.requested):
                    self.save_checkpoint()
                    clock.saved()
            final = os.path.join(self.out_dir, "checkpoint")
            partial = final + ".partial"
            if self.acc.is_main_process:
                shutil.rmtree(partial, ignore_errors=True)
            self.acc.wait_for_everyone()
            self.save_models(partial)
            if self.acc.is_main_process:
                shutil.rmtree(final, ignore_errors=True)
                os.replace(partial, final)
            self.acc.wait_for_everyone()
            protocol.artifact("checkpoint", final)
            return {"checkpoint": final, "metrics": metrics_file}
        finally:
            reward.close()


def run(spec: dict[str, Any]) -> Optional[dict[str, Any]]:
    return _Run(spec).run()
