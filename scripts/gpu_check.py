"""GPU check of the TRL runner: train.sft then rl.grpo through python/doctor_agent_trl (the code the
`trl` runner runs), on fresh weights of a model config, measuring speed rather than quality.

The step params and prepared data are built here the way jobs/trl.ts builds them (SFT items as
prompt/completion conversations with the "## Thinking / ## Final Response" target, verifiable
problems as a user prompt with its reference), from samples/huatuo-o1-demo.json. The model is a
folder of random weights of configs/NAME.json with the config's own vocabulary size kept (151936 for
Qwen2.5-0.5B), so the matrix products are those of the real model; the tokenizer is any one whose
ids fit (a small one by default: the text is only something to train on).

Printed: one summary line per stage; written: a JSON of the figures (--out). Figures:
  - tokens per second: SFT, the non-padding tokens trained; GRPO, the tokens generated (per second
    of generation) and the prompt + completion tokens trained (per second of the rest of the step:
    scoring, the reference and old log-probs and the update);
  - peak GPU memory (torch.cuda.max_memory_allocated / max_memory_reserved, per stage);
  - model FLOP utilisation: 6 × parameters × trained tokens / time / the GPU's peak dense bf16
    FLOP/s (generation: 2 × parameters × generated tokens); attention's own FLOPs are not counted.
The first steps (SFT) or the first iteration (GRPO) are left out of the rates as warm-up.

Run it through scripts/gpu-check.sh, which makes TRL and datasets importable first.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "samples", "huatuo-o1-demo.json")
DEFAULT_TOKENIZER = os.path.join(ROOT, "test", "fixtures", "parity", "qwen2-f32")

# Peak dense bf16 tensor FLOP/s (TFLOP/s, without sparsity), by the name torch reports; first match wins.
PEAK_BF16_TFLOPS: list[tuple[tuple[str, ...], float, str]] = [
    (("H200",), 989.4, "H200"),
    (("H100", "PCIE"), 756.5, "H100 PCIe"),
    (("H100", "HBM3"), 989.4, "H100 SXM"),
    (("H100", "SXM"), 989.4, "H100 SXM"),
    (("A100",), 312.0, "A100"),
    (("L40S",), 362.05, "L40S"),
]

GPU_DEFAULTS = dict(config="qwen2.5-0.5b-instruct", sft_steps=80, sft_batch=8, seq_len=1024, warmup_steps=3,
                    grpo_iterations=6, prompts=8, generations=8, response_length=256, mini_batch=16,
                    max_prompt_len=256)
SMOKE_DEFAULTS = dict(config="tiny", sft_steps=4, sft_batch=2, seq_len=128, warmup_steps=1,
                      grpo_iterations=2, prompts=2, generations=2, response_length=12, mini_batch=2,
                      max_prompt_len=48)


SUMMARY = sys.stdout
"""The summary lines go here; what the libraries print goes to stderr."""


def say(line: str) -> None:
    print(line, file=SUMMARY, flush=True)


class CheckError(Exception):
    """A problem with the check's inputs: printed as one line, exit 2."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="scripts/gpu-check.sh", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-smoke", action="store_true",
                    help="tiny shapes (configs/tiny.json) and a few steps, to try the check without a GPU "
                         "(also DOCTOR_AGENT_GPU_CHECK_SMOKE=1)")
    ap.add_argument("--config", help="model config: configs/NAME.json (default qwen2.5-0.5b-instruct; smoke: tiny)")
    ap.add_argument("--tokenizer", default=DEFAULT_TOKENIZER, help="tokenizer folder whose ids fit the config's vocabulary")
    ap.add_argument("--data", default=SAMPLES, help="HuatuoGPT-o1 items with the SFT and verifiable fields")
    ap.add_argument("--sft-steps", type=int, help="SFT optimizer steps (default 80)")
    ap.add_argument("--sft-batch", type=int, help="SFT sequences per step (default 8)")
    ap.add_argument("--seq-len", type=int, help="SFT max_seq_len: longer sequences are cut (default 1024)")
    ap.add_argument("--warmup-steps", type=int, help="SFT steps left out of the rates (default 3)")
    ap.add_argument("--grpo-iterations", type=int, help="GRPO iterations (default 6; the first is left out of the rates)")
    ap.add_argument("--prompts", type=int, help="GRPO prompts per iteration (default 8)")
    ap.add_argument("--generations", type=int, help="GRPO responses per prompt (default 8)")
    ap.add_argument("--response-length", type=int, help="GRPO new tokens per response (default 256)")
    ap.add_argument("--mini-batch", type=int, help="GRPO responses per optimizer step (default 16)")
    ap.add_argument("--max-prompt-len", type=int, help="GRPO prompt tokens kept (default 256)")
    ap.add_argument("--stages", default="sft,grpo", help="sft, grpo or both (grpo alone trains the fresh weights)")
    ap.add_argument("--peak-tflops", type=float, help="the device's peak dense bf16 TFLOP/s, for the MFU (default: from the GPU's name)")
    ap.add_argument("--out", help="the JSON of the figures (default $OUT/gpu-check.json when OUT is set, else gpu-check.json)")
    ap.add_argument("--work-dir", help="where the model, data and checkpoints go (default a temporary folder, removed after)")
    ap.add_argument("--verbose", action="store_true", help="echo the runner's protocol messages to stderr")
    a = ap.parse_args(argv)
    if os.environ.get("DOCTOR_AGENT_GPU_CHECK_SMOKE") == "1":
        a.cpu_smoke = True
    defaults = SMOKE_DEFAULTS if a.cpu_smoke else GPU_DEFAULTS
    for key, value in defaults.items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    for key in ("sft_steps", "sft_batch", "seq_len", "grpo_iterations", "prompts", "generations", "response_length",
                "mini_batch", "max_prompt_len"):
        if getattr(a, key) < 1:
            raise CheckError(f"--{key.replace('_', '-')}: give a positive number, not {getattr(a, key)}")
    if a.warmup_steps < 0 or a.warmup_steps >= a.sft_steps:
        raise CheckError(f"--warmup-steps: give 0 to {a.sft_steps - 1} (fewer than --sft-steps)")
    if a.generations < 2:
        raise CheckError("--generations: GRPO needs at least 2 responses per prompt")
    stages = [s.strip() for s in a.stages.split(",") if s.strip()]
    if not stages or any(s not in ("sft", "grpo") for s in stages):
        raise CheckError(f"--stages: give sft, grpo or sft,grpo, not {a.stages!r}")
    a.stages = stages
    if a.peak_tflops is not None and a.peak_tflops <= 0:
        raise CheckError("--peak-tflops: give a positive number of TFLOP/s")
    if a.out is None:
        a.out = os.path.join(os.environ["OUT"], "gpu-check.json") if os.environ.get("OUT") else "gpu-check.json"
    return a


# ---------------------------------------------------------------- data, as jobs/trl.ts prepares it

def read_items(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            items = json.load(f) if path.endswith(".json") else [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        raise CheckError(f"{path}: cannot read the items ({e})") from e
    if not isinstance(items, list) or not items:
        raise CheckError(f"{path}: expected a non-empty list of items")
    for n, it in enumerate(items, start=1):
        for field in ("Question", "Complex_CoT", "Response", "Open-ended Verifiable Question", "Ground-True Answer"):
            if not isinstance(it, dict) or not isinstance(it.get(field), str) or not it[field].strip():
                raise CheckError(f"{path}: item {n}: {field!r} must be a non-empty string (the check needs the SFT and verifiable fields)")
    return items


def sft_rows(items: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """`count` SFT rows (the items in order, again from the first when they run out)."""
    rows = []
    for i in range(count):
        it = items[i % len(items)]
        target = f"## Thinking\n\n{it['Complex_CoT']}\n\n## Final Response\n\n{it['Response']}"  # data/formats.ts sftTarget
        rows.append({"prompt": [{"role": "user", "content": it["Question"]}],
                     "completion": [{"role": "assistant", "content": target}]})
    return rows


def rl_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"prompt": [{"role": "user", "content": it["Open-ended Verifiable Question"]}],
             "reference": it["Ground-True Answer"], "question": it["Open-ended Verifiable Question"]} for it in items]


def write_jsonl(path: str, rows: list[dict[str, Any]]) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def sft_params(a: argparse.Namespace, model: str) -> dict[str, Any]:
    """train.sft's params as dsl/kinds/sft.ts fills them in (one epoch over steps × batch rows, no checkpoint before the end)."""
    return {"model": model, "tokenizer": a.tokenizer, "tokenizer_vocab_size": 2048, "data": a.data, "learning_rate": 5e-6,
            "epochs": 1, "batch_size": a.sft_batch, "gradient_accumulation_steps": 1, "max_seq_len": a.seq_len,
            "warmup_ratio": 0.05, "weight_decay": 0.1, "max_grad_norm": 1.0, "save_every": a.sft_steps + 1,
            "save_every_minutes": 0, "seed": 0}


def grpo_params(a: argparse.Namespace, policy: str) -> dict[str, Any]:
    """rl.grpo's params as dsl/kinds/grpo.ts fills them in."""
    return {"policy": policy, "data": a.data, "verifier": {"type": "rule"}, "num_generations": a.generations,
            "temperature": 0.5, "top_p": 1.0, "response_length": a.response_length, "learning_rate": 5e-7,
            "lr_scheduler_type": "linear", "warmup_ratio": 0.05, "loss_type": "dapo", "scale_rewards": "group",
            "kl_estimator": "k3", "iterations": a.grpo_iterations, "prompts_per_iteration": a.prompts,
            "mini_batch_size": a.mini_batch, "max_grad_norm": 1.0, "max_prompt_len": a.max_prompt_len,
            "reward": {"correct": 1.0, "wrong": 0.1, "malformed": 0.0}, "seed": 0,
            "save_every": a.grpo_iterations + 1, "save_every_minutes": 0,
            "epsilon": 0.2, "epsilon_high": 0.2, "beta": 0.03, "num_iterations": 1}


def job_spec(kind: str, step: str, params: dict[str, Any], out_dir: str, data: str, tokenizer: str) -> dict[str, Any]:
    """The spec jobs/trl.ts writes (trl-job.json)."""
    return {"kind": kind, "runId": "gpu-check", "stepId": step, "attempt": 1, "params": params, "outDir": out_dir,
            "prepared": {"data": data, "tokenizer": tokenizer}, "projectRoot": ROOT}


# ---------------------------------------------------------------- the model

def model_config(name: str, tokenizer: Any) -> Any:
    """configs/NAME.json with its vocabulary size kept; special ids from the tokenizer, whose ids must fit."""
    from transformers import AutoConfig

    path = os.path.join(ROOT, "configs", f"{name}.json")
    if not os.path.isfile(path):
        raise CheckError(f"--config: no configs/{name}.json")
    with open(path, encoding="utf-8") as f:
        raw = {k: v for k, v in json.load(f).items() if k not in ("architectures", "torch_dtype", "transformers_version")}
    if len(tokenizer) > int(raw["vocab_size"]):
        raise CheckError(f"--tokenizer: {len(tokenizer)} tokens do not fit configs/{name}.json's vocabulary of {raw['vocab_size']}")
    for key, tok_id in (("eos_token_id", tokenizer.eos_token_id), ("pad_token_id", tokenizer.pad_token_id),
                        ("bos_token_id", tokenizer.bos_token_id)):
        raw[key] = tok_id
    return AutoConfig.for_model(raw.pop("model_type"), **raw)


def flop_parameters(model: Any) -> int:
    """Parameters that take part in a matrix product per token: all of them once (tied embeddings are the LM head),
    less the input embedding when it is not tied to the head (a lookup)."""
    n = sum(p.numel() for p in model.parameters())
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    if head is None or head.weight is not emb:
        n -= emb.numel()
    return int(n)


def write_fresh_model(config: Any, tokenizer: Any, folder: str, device: str) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    n = flop_parameters(model)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    return n


# ---------------------------------------------------------------- measuring inside the trainers

def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


class Generation:
    """Seconds spent in GRPOTrainer._generate_single_turn and the completion tokens it returned."""

    seconds = 0.0
    tokens = 0

    @classmethod
    def install(cls) -> None:
        from trl import GRPOTrainer

        inner = GRPOTrainer._generate_single_turn
        if getattr(inner, "_timed", False):
            return

        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            sync()
            t = time.perf_counter()
            out = inner(self, *args, **kwargs)
            sync()
            cls.seconds += time.perf_counter() - t
            cls.tokens += sum(len(ids) for ids in out[0])
            return out

        timed._timed = True  # type: ignore[attr-defined]
        GRPOTrainer._generate_single_turn = timed


def make_meter() -> Any:
    """A TrainerCallback that every Trainer built in this process gets (transformers' default callbacks):
    per optimizer step its seconds, the generation inside it, and TRL's cumulative token count."""
    import transformers.trainer as hf_trainer
    from transformers import TrainerCallback

    class Meter(TrainerCallback):
        def __init__(self) -> None:
            self.steps: list[dict[str, Any]] = []
            self.tokens: dict[int, float] = {}
            self._t0 = 0.0
            self._gen = (0.0, 0)

        def reset(self) -> None:
            self.steps, self.tokens = [], {}

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            sync()
            self._t0 = time.perf_counter()
            self._gen = (Generation.seconds, Generation.tokens)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            sync()
            self.steps.append({"step": state.global_step, "seconds": time.perf_counter() - self._t0,
                               "gen_seconds": Generation.seconds - self._gen[0], "gen_tokens": Generation.tokens - self._gen[1]})

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
            if logs and isinstance(logs.get("num_tokens"), (int, float)):
                self.tokens[state.global_step] = float(logs["num_tokens"])

    meter = Meter()
    hf_trainer.DEFAULT_CALLBACKS.append(meter)
    return meter


class Protocol:
    """Takes the runner's JSON-lines messages in place of stdout (echoed to stderr with --verbose)."""

    def __init__(self, echo: bool) -> None:
        self.echo = echo
        self.messages: list[dict[str, Any]] = []
        self._buf = ""

    def write(self, s: str) -> int:
        self._buf += s
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            if line.strip():
                self.messages.append(json.loads(line))
                if self.echo:
                    print(line, file=sys.stderr)
        return len(s)

    def flush(self) -> None:
        pass


# ---------------------------------------------------------------- figures

def peak_flops(args: argparse.Namespace, device_name: str | None) -> tuple[float | None, str | None]:
    if args.peak_tflops is not None:
        return args.peak_tflops * 1e12, "--peak-tflops"
    if device_name is None:
        return None, None
    upper = device_name.upper()
    for keys, tflops, label in PEAK_BF16_TFLOPS:
        if all(k in upper for k in keys):
            return tflops * 1e12, label
    return None, None


def rate(amount: float, seconds: float) -> float | None:
    return amount / seconds if seconds > 0 and amount > 0 else None


def mfu(flops_per_token: float, tokens_per_s: float | None, peak: float | None) -> float | None:
    return flops_per_token * tokens_per_s / peak if tokens_per_s and peak else None


def memory() -> dict[str, int] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return {"max_allocated_bytes": int(torch.cuda.max_memory_allocated()),
            "max_reserved_bytes": int(torch.cuda.max_memory_reserved())}


def reset_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def sft_figures(meter: Any, warmup: int, n_params: int, peak: float | None) -> dict[str, Any]:
    steps = meter.steps
    if not steps or not meter.tokens:
        raise RuntimeError("the SFT trainer reported no steps or no token counts")
    last = steps[-1]["step"]
    skip = warmup if len(steps) > warmup else 0
    start_tokens = meter.tokens.get(steps[skip - 1]["step"], 0.0) if skip else 0.0
    tokens = meter.tokens[last] - start_tokens
    seconds = sum(s["seconds"] for s in steps[skip:])
    tps = rate(tokens, seconds)
    return {"steps": len(steps), "steps_measured": len(steps) - skip, "tokens_measured": int(tokens),
            "seconds_measured": seconds, "tokens_total": int(meter.tokens[last]),
            "seconds_total": sum(s["seconds"] for s in steps),
            "train_tokens_per_s": tps, "mfu": mfu(6 * n_params, tps, peak)}


def grpo_figures(meter: Any, steps_per_iteration: int, passes: int, n_params: int, peak: float | None) -> dict[str, Any]:
    steps = meter.steps
    if not steps:
        raise RuntimeError("the GRPO trainer reported no steps")
    iterations: list[dict[str, float]] = []
    previous_tokens = 0.0
    for i in range(len(steps) // steps_per_iteration):
        chunk = steps[i * steps_per_iteration:(i + 1) * steps_per_iteration]
        end = chunk[-1]["step"]
        known = [meter.tokens[s] for s in meter.tokens if s <= end]
        cumulative = max(known) if known else previous_tokens
        seconds = sum(s["seconds"] for s in chunk)
        gen_seconds = sum(s["gen_seconds"] for s in chunk)
        iterations.append({"seconds": seconds, "gen_seconds": gen_seconds,
                           "gen_tokens": sum(s["gen_tokens"] for s in chunk),
                           "round_tokens": cumulative - previous_tokens})
        previous_tokens = cumulative
    if not iterations:
        raise RuntimeError("the GRPO trainer finished no iteration")
    measured = iterations[1:] if len(iterations) > 1 else iterations

    def total(key: str) -> float:
        return sum(it[key] for it in measured)

    seconds, gen_seconds, gen_tokens, round_tokens = total("seconds"), total("gen_seconds"), total("gen_tokens"), total("round_tokens")
    trained = round_tokens * passes
    train_seconds = seconds - gen_seconds
    gen_tps, train_tps = rate(gen_tokens, gen_seconds), rate(trained, train_seconds)
    return {"iterations": len(iterations), "iterations_measured": len(measured),
            "seconds_measured": seconds, "generation_seconds": gen_seconds, "train_seconds": train_seconds,
            "generated_tokens": int(gen_tokens), "trained_tokens": int(trained),
            "generated_tokens_per_s": gen_tps, "trained_tokens_per_s": train_tps,
            "tokens_per_s": rate(round_tokens, seconds),
            "mfu": mfu(6 * n_params, train_tps, peak), "generation_mfu": mfu(2 * n_params, gen_tps, peak),
            "seconds_total": sum(it["seconds"] for it in iterations)}


def fmt_rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def fmt_pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def fmt_mem(m: dict[str, int] | None) -> str:
    if m is None:
        return "peak GPU memory n/a (no GPU)"
    return f"peak GPU memory {m['max_allocated_bytes'] / 2**30:.1f} GiB allocated / {m['max_reserved_bytes'] / 2**30:.1f} GiB reserved"


# ---------------------------------------------------------------- the check

def run_stage(module: Any, spec: dict[str, Any], spec_path: str) -> dict[str, Any]:
    from doctor_agent_trl import protocol

    with open(spec_path, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=1)
    try:
        outputs = module.run(protocol.load_spec(spec_path))
    except protocol.UserError as e:
        raise CheckError(f"{spec['kind']}: {e.message}" + (f" (at {e.where})" if e.where else "") + (f"; {e.hint}" if e.hint else "")) from e
    if not outputs:
        raise RuntimeError(f"{spec['kind']} stopped before the end")
    return outputs


def main(argv: list[str]) -> int:
    started = time.perf_counter()
    sys.stdout = sys.stderr
    try:
        a = parse_args(argv)
        return check(a, started)
    except CheckError as e:
        print(f"gpu-check: {e}", file=sys.stderr)
        return 2


def check(a: argparse.Namespace, started: float) -> int:
    import torch
    import transformers

    try:
        import datasets  # noqa: F401  (with pyarrow and pandas)
        import trl
        from trl import GRPOTrainer, SFTTrainer  # noqa: F401
    except (ImportError, RuntimeError) as e:
        raise CheckError(f"TRL or datasets does not import ({e}): carry the wheels of scripts/gpu-wheels.txt "
                         "(fetch-gpu-wheels.sh; --with-arrow for pyarrow and pandas) and run with "
                         "DOCTOR_AGENT_GPU_CHECK_INSTALL=all") from e
    from doctor_agent_trl import grpo, protocol, sft
    from doctor_agent_trl.models import load_tokenizer

    cuda = torch.cuda.is_available()
    device_name = torch.cuda.get_device_name(0) if cuda else None
    peak, peak_source = peak_flops(a, device_name)
    if cuda and peak is None:
        print(f"gpu-check: no peak bf16 FLOP/s known for {device_name}; give --peak-tflops for the MFU", file=sys.stderr)
    items = read_items(a.data)
    try:
        tokenizer = load_tokenizer(a.tokenizer)
    except protocol.UserError as e:
        raise CheckError(f"--tokenizer: {e.message}") from e
    config = model_config(a.config, tokenizer)

    capture = Protocol(a.verbose)
    protocol._OUT = capture  # the runner's messages, which the supervisor would read from stdout
    meter = make_meter()
    Generation.install()

    work = a.work_dir or tempfile.mkdtemp(prefix="gpu-check-")
    os.makedirs(work, exist_ok=True)
    result: dict[str, Any] = {
        "device": device_name or "cpu", "cuda": cuda, "smoke": a.cpu_smoke,
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__},
        "model": {"config": f"configs/{a.config}.json", "vocab_size": int(config.vocab_size), "tokenizer_size": len(tokenizer)},
        "peak_flops": peak, "peak_flops_source": peak_source, "stages": {}, "specs": {},
    }
    try:
        t = time.perf_counter()
        model_dir = os.path.join(work, "fresh-model")
        n_params = write_fresh_model(config, tokenizer, model_dir, "cuda" if cuda else "cpu")
        result["model"]["flop_parameters"] = n_params
        result["model"]["build_seconds"] = time.perf_counter() - t
        policy = model_dir

        if "sft" in a.stages:
            reset_memory()
            meter.reset()
            data = write_jsonl(os.path.join(work, "sft-data.jsonl"), sft_rows(items, a.sft_steps * a.sft_batch))
            params = sft_params(a, model_dir)
            spec = job_spec("train.sft", "sft", params, os.path.join(work, "sft"), data, a.tokenizer)
            t = time.perf_counter()
            outputs = run_stage(sft, spec, os.path.join(work, "sft-job.json"))
            stage = sft_figures(meter, a.warmup_steps, n_params, peak)
            stage.update(wall_seconds=time.perf_counter() - t, gpu_memory=memory(), batch=a.sft_batch, max_seq_len=a.seq_len)
            result["stages"]["sft"], result["specs"]["sft"] = stage, params
            policy = outputs["checkpoint"]
            say(f"sft: {stage['steps']} steps of {a.sft_batch} sequences ≤ {a.seq_len} tokens; "
                  f"{fmt_rate(stage['train_tokens_per_s'])} train tokens/s; MFU {fmt_pct(stage['mfu'])}; "
                f"{fmt_mem(stage['gpu_memory'])}; {stage['wall_seconds']:.0f} s in all")

        if "grpo" in a.stages:
            reset_memory()
            meter.reset()
            data = write_jsonl(os.path.join(work, "grpo-data.jsonl"), rl_rows(items))
            params = grpo_params(a, policy)
            spec = job_spec("rl.grpo", "grpo", params, os.path.join(work, "grpo"), data, policy)
            shape = grpo.Shape(params, len(items))
            t = time.perf_counter()
            run_stage(grpo, spec, os.path.join(work, "grpo-job.json"))
            stage = grpo_figures(meter, shape.steps_per_iteration, shape.passes, n_params, peak)
            stage.update(wall_seconds=time.perf_counter() - t, gpu_memory=memory(), prompts=shape.prompts,
                         generations=shape.generations, response_length=a.response_length, mini_batch=a.mini_batch)
            result["stages"]["grpo"], result["specs"]["grpo"] = stage, params
            say(f"grpo: {stage['iterations']} iterations of {shape.prompts} prompts × {shape.generations} generations ≤ "
                  f"{a.response_length} tokens; {fmt_rate(stage['generated_tokens_per_s'])} generated tokens/s, "
                  f"{fmt_rate(stage['trained_tokens_per_s'])} trained tokens/s; MFU {fmt_pct(stage['mfu'])} training, "
                  f"{fmt_pct(stage['generation_mfu'])} generation; {fmt_mem(stage['gpu_memory'])}; "
                f"{stage['wall_seconds']:.0f} s in all")
    finally:
        if not a.work_dir:
            shutil.rmtree(work, ignore_errors=True)

    result["seconds"] = time.perf_counter() - started
    out_dir = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(out_dir, exist_ok=True)
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, allow_nan=False)
        f.write("\n")
    os.replace(tmp, a.out)
    peak_note = f"{peak / 1e12:g} TFLOP/s bf16 ({peak_source})" if peak else "unknown peak FLOP/s"
    say(f"gpu-check: {result['device']}, {n_params / 1e6:.0f}M parameters, MFU against {peak_note}; "
        f"{result['seconds']:.0f} s in all; figures in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
