"""PyTorch reference for bench/engine.ts: the same decoder, batch and sequence length, on CPU.

Builds the model of a configs/*.json preset with transformers (Qwen2 / Llama config and
causal-LM classes, random weights, float32) and times
  - one training step: forward, next-token cross-entropy over every position, backward,
    gradient clipping to norm 1 and an AdamW step (the engine's trainStep with a full mask);
  - generation with the KV cache: a 16-token random prompt, N new tokens sampled at
    temperature 1 (no top-k / top-p), the prefill included; a run that only prefills and
    samples the first token gives the decoding-alone rate, as in bench/engine.ts.
at a given number of intra-op threads (torch.set_num_threads).

Two ways to run it (bench-only; no test or CI runs it; needs `pip install torch transformers`):

  python bench/torch_reference.py [--runs 5] [--threads 1,2] [--quick]
      measures the same figures as bench/engine.ts and prints one JSON object.

  python bench/torch_reference.py --serve
      reads one JSON request per stdin line and answers one JSON line each, so that
      bench/engine.ts can interleave its own runs with these on a shared, noisy machine:
        {"op": "train", "config": PATH, "batch": B, "seqLen": T, "threads": n}
        {"op": "generate", "config": PATH, "batch": B, "promptLen": 16, "newTokens": N, "threads": n}
      answer: {"wall": seconds, "cpu": process CPU seconds} for one timed run (the first request
      of a shape is preceded by an untimed warm-up run; "steps": k times k runs back to back).
"""
import argparse
import json
import os
import sys
import time

import torch
import transformers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_models = {}
_warm = set()


def load_model(path):
    """The preset's model with random weights (seeded), its optimizer, and its config dict."""
    if path not in _models:
        with open(path) as f:
            cfg = json.load(f)
        fields = {k: v for k, v in cfg.items() if k not in ("architectures", "model_type", "torch_dtype")}
        config = transformers.AutoConfig.for_model(cfg["model_type"], **fields)
        torch.manual_seed(1)
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
        _models[path] = (model, opt, cfg)
    return _models[path]


def train_once(path, batch, seq_len):
    model, opt, cfg = load_model(path)
    model.train()
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(0, cfg["vocab_size"], (batch, seq_len), generator=g)
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)


def generate_once(path, batch, prompt_len, new_tokens):
    model, _, cfg = load_model(path)
    model.eval()
    g = torch.Generator().manual_seed(11)
    ids = torch.randint(0, cfg["vocab_size"], (batch, prompt_len), generator=g)
    torch.manual_seed(3)
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True,
            do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
            max_new_tokens=new_tokens, min_new_tokens=new_tokens,
            eos_token_id=None, pad_token_id=0,
        )
    assert out.shape[1] == prompt_len + new_tokens, out.shape


def timed(req):
    """One timed run of a request, or `steps` back to back (after `warmup` untimed runs, default 1, for a request not seen yet)."""
    torch.set_num_threads(int(req.get("threads", 1)))
    path = req["config"]
    if req["op"] == "train":
        f = lambda: train_once(path, req["batch"], req["seqLen"])
    elif req["op"] == "generate":
        f = lambda: generate_once(path, req["batch"], req.get("promptLen", 16), req["newTokens"])
    else:
        raise ValueError(f"unknown op {req['op']!r}: use train or generate")
    key = json.dumps(req, sort_keys=True)
    if key not in _warm:
        for _ in range(int(req.get("warmup", 1))):
            f()
        _warm.add(key)
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(int(req.get("steps", 1))):
        f()
    return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def serve():
    print(json.dumps({"ready": True, "torch": torch.__version__, "transformers": transformers.__version__}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            print(json.dumps(timed(json.loads(line))), flush=True)
        except Exception as e:  # answer, so the caller can report it, and keep serving
            print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)


def median(xs):
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def standalone(args):
    tiny, small = (os.path.join(ROOT, "configs", f"{n}.json") for n in ("tiny", "small"))
    train_shapes = [("tiny", tiny, 16, 128), ("small", small, 8, 128)] if args.quick else [
        ("tiny", tiny, 32, 64), ("tiny", tiny, 16, 128), ("tiny", tiny, 8, 256),
        ("small", small, 16, 64), ("small", small, 8, 128)]
    gen = [("tiny", tiny, 16 if args.quick else 64), ("small", small, 16 if args.quick else 32)]
    out = {"torch": torch.__version__, "transformers": transformers.__version__, "training": [], "generation": []}
    for threads in [int(t) for t in args.threads.split(",")]:
        for name, path, B, T in train_shapes:
            runs = [timed({"op": "train", "config": path, "batch": B, "seqLen": T, "threads": threads}) for _ in range(args.runs)]
            out["training"].append({"preset": name, "threads": threads, "batch": B, "seqLen": T,
                                    "tokensPerSec": round(B * T / median([r["wall"] for r in runs])),
                                    "tokensPerCpuSecond": round(B * T / median([r["cpu"] for r in runs]))})
        for name, path, N in gen:
            for B in (1, 8, 32):
                req = {"op": "generate", "config": path, "batch": B, "promptLen": 16, "threads": threads}
                runs = [timed({**req, "newTokens": N}) for _ in range(args.runs)]
                out["generation"].append({"preset": name, "threads": threads, "batch": B, "newTokens": N,
                                          "tokensPerSec": round(B * N / median([r["wall"] for r in runs])),
                                          "tokensPerCpuSecond": round(B * N / median([r["cpu"] for r in runs]))})
    print(json.dumps(out))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--serve", action="store_true", help="answer JSON requests on stdin, one per line")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    serve() if a.serve else standalone(a)
