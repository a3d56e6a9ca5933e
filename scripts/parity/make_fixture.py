"""Builds the parity fixture in test/fixtures/parity/ with Hugging Face transformers + torch.

What it makes (everything the TypeScript parity tests compare against):
  tokenizer/        a tokenizer trained by `doctor-agent tokenizer train` on the demo data
  qwen2-f32/        a tiny random Qwen2 (QKV bias, tied embeddings, GQA), saved by transformers as is
  qwen2-bf16/       the same weights in BF16 (config says bfloat16)
  llama-f32/        a tiny random Llama (no bias, untied lm_head, llama3 RoPE scaling), config.json in the
                    older Hub layout (rope_theta + rope_scaling), as Llama-3.1 ships it
  llama-f16/        the same Llama weights in F16
  reference.json    per model: fixed input ids, last-position logits (all of the vocabulary), logits of
                    every position at a fixed set of vocabulary ids, per-position sums, greedy
                    continuations of ragged prompts (each decoded alone), and the top-1 margin of every
                    greedy step; tokenizer encodings/decodings of a text set; chat template renderings.

Run from the repository root (see README.md in this folder):
  /tmp/parity-venv/bin/python scripts/parity/make_fixture.py
"""
import argparse
import base64
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import (AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM)
import tokenizers

from texts import CHATS, TEXTS

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'parity')
DEMO = os.path.join(ROOT, '..', 'shared', 'data', 'huatuo-o1-demo.json')
VOCAB = 1024
NEW_TOKENS = 12
MIN_MARGIN = 2e-3  # every greedy step must win by this much, so 1e-4 float noise cannot flip it


def b64_f32(array):
    """float32 little-endian bytes in base64: exact and compact."""
    return base64.b64encode(np.ascontiguousarray(array, dtype='<f4').tobytes()).decode('ascii')


def train_tokenizer(out_dir):
    """Runs this project's trainer (the `doctor-agent tokenizer train` command's code)."""
    if os.path.exists(os.path.join(ROOT, 'cli', 'main.ts')):
        cmd = ['node', 'bin/doctor-agent.js', 'tokenizer', 'train', '--data', DEMO, '--vocab-size', str(VOCAB),
               '--out', out_dir, '--force']
    else:
        code = ("const { tokenizerTrain } = await import('./cli/commands/tokenizer.ts');"
                f"tokenizerTrain({{ data: [{json.dumps(DEMO)}], vocabSize: {VOCAB}, out: {json.dumps(out_dir)}, force: true }});")
        cmd = ['node', '--import', 'tsx', '--input-type=module', '-e', code]
    subprocess.run(cmd, cwd=ROOT, check=True)


def randomize(model, seed):
    """Weights with enough spread that the logits are far from uniform (init_std 0.02 gives near-ties)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('norm.weight'):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith('.bias'):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            elif 'embed_tokens' in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / (p.shape[-1] ** 0.5))


def tiny_models(tok):
    eos = tok.convert_tokens_to_ids('<|im_end|>')
    pad = tok.convert_tokens_to_ids('<|endoftext|>')
    common = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=256, eos_token_id=eos, pad_token_id=pad, bos_token_id=None)
    qwen = Qwen2ForCausalLM(Qwen2Config(**common, num_key_value_heads=2, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
                                        tie_word_embeddings=True, attn_implementation='eager'))
    llama = LlamaForCausalLM(LlamaConfig(**common, num_key_value_heads=1, rms_norm_eps=1e-5, tie_word_embeddings=False,
                                         rope_theta=500_000.0, attention_bias=False, attn_implementation='eager',
                                         rope_scaling={'rope_type': 'llama3', 'factor': 8.0, 'low_freq_factor': 1.0,
                                                       'high_freq_factor': 4.0, 'original_max_position_embeddings': 32}))
    return {'qwen2': qwen, 'llama': llama}


def legacy_rope_config(path):
    """Rewrites config.json's rope_parameters to the older rope_theta + rope_scaling keys (Hub layout)."""
    with open(path) as f:
        cfg = json.load(f)
    rp = cfg.pop('rope_parameters')
    cfg['rope_theta'] = rp.pop('rope_theta')
    if rp.get('rope_type', 'default') != 'default':
        cfg['rope_scaling'] = rp
    cfg['torch_dtype'] = cfg.pop('dtype')
    with open(path, 'w') as f:
        json.dump(cfg, f, indent=2)


def save_folder(model, tok_dir, out_dir, dtype=None, legacy=False):
    shutil.rmtree(out_dir, ignore_errors=True)
    model.save_pretrained(out_dir)
    for name in ('tokenizer.json', 'tokenizer_config.json'):
        shutil.copy(os.path.join(tok_dir, name), os.path.join(out_dir, name))
    if dtype is not None:
        path = os.path.join(out_dir, 'model.safetensors')
        tensors = {k: v.to(dtype).contiguous() for k, v in load_file(path).items()}
        save_file(tensors, path, metadata={'format': 'pt'})
        cfg_path = os.path.join(out_dir, 'config.json')
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg['dtype'] = str(dtype).replace('torch.', '')
        with open(cfg_path, 'w') as f:
            json.dump(cfg, f, indent=2)
    if legacy:
        legacy_rope_config(os.path.join(out_dir, 'config.json'))


def reference_for(folder, input_ids, prompts, probe_ids, original=None):
    """Loads the folder back with transformers (float32 compute) and records what the tests compare.
    For an F32 folder, `original` (the model in memory) must give the same logits: the saved config
    (e.g. the rewritten RoPE keys) means what was intended."""
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation='eager').eval()
    with torch.no_grad():
        logits = model(torch.tensor(input_ids)).logits.float().numpy()  # [B, T, V]
        if original is not None:
            same = original.eval()(torch.tensor(input_ids)).logits.float().numpy()
            assert np.abs(same - logits).max() < 1e-5, f'{folder}: reloaded model differs from the one saved'
        greedy, margins = [], []
        for prompt in prompts:  # one at a time: the reference for ragged batched generation
            ids = torch.tensor([prompt])
            steps = []
            for _ in range(NEW_TOKENS):
                step = model(ids).logits[0, -1].float()
                top2 = torch.topk(step, 2).values
                margins.append(float(top2[0] - top2[1]))
                nxt = int(torch.argmax(step))
                steps.append(nxt)
                ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
            out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                                 do_sample=False, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                                 eos_token_id=None, pad_token_id=0)
            assert out[0, len(prompt):].tolist() == steps, 'generate() and the step loop disagree'
            greedy.append(steps)
    return {
        'input_ids': input_ids,
        'last_logits': b64_f32(logits[:, -1, :]),
        'probe_ids': probe_ids,
        'probe_logits': b64_f32(logits[:, :, probe_ids]),
        'position_sums': b64_f32(logits.sum(axis=-1, dtype=np.float64)),
        'prompts': prompts,
        'greedy': greedy,
        'min_margin': min(margins),
    }


LLAMA3_STYLE_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                        r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_STYLE_TEMPLATE = (
    "{{- bos_token }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}")


def demo_strings():
    out = []

    def walk(v):
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
    with open(DEMO) as f:
        walk(json.load(f))
    return out


def python_trained_tokenizer(out_dir):
    """A second tokenizer, made by Python `tokenizers` itself in the Llama 3 style (digit runs of up to
    three, ignore_merges, a BOS-adding post-processor, chat template in chat_template.jinja), to check that
    our loader reads tokenizer folders it did not write."""
    from tokenizers import Regex, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast
    specials = ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>']
    tok = tokenizers.Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_STYLE_PATTERN), behavior='isolated', invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(demo_strings(), trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=specials, min_frequency=2, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    bos = tok.token_to_id('<|begin_of_text|>')
    tok.post_processor = processors.TemplateProcessing(
        single='<|begin_of_text|> $A', pair='<|begin_of_text|> $A <|begin_of_text|> $B:1',
        special_tokens=[('<|begin_of_text|>', bos)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token='<|begin_of_text|>', eos_token='<|eot_id|>',
                                   pad_token='<|end_of_text|>', clean_up_tokenization_spaces=False)
    fast.chat_template = LLAMA3_STYLE_TEMPLATE
    shutil.rmtree(out_dir, ignore_errors=True)
    fast.save_pretrained(out_dir)


def tokenizer_reference(tok_dir):
    raw = tokenizers.Tokenizer.from_file(os.path.join(tok_dir, 'tokenizer.json'))
    hf = AutoTokenizer.from_pretrained(tok_dir)
    items = []
    for text in TEXTS:
        ids = raw.encode(text).ids
        assert hf.encode(text) == ids, f'tokenizers and transformers disagree on {text!r}'
        plain = hf.encode(text, add_special_tokens=False)
        items.append({'text': text, 'ids': ids, 'ids_no_special': plain, 'tokens': raw.encode(text, add_special_tokens=False).tokens,
                      'decoded': hf.decode(ids), 'decoded_skip_special': hf.decode(ids, skip_special_tokens=True)})
    chats = []
    for messages in CHATS:
        for gen in (False, True):
            rendered = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
            chats.append({'messages': messages, 'add_generation_prompt': gen, 'text': rendered,
                          'ids': hf.encode(rendered, add_special_tokens=False)})
    return {'files': sorted(os.listdir(tok_dir)), 'vocab_size': len(hf), 'eos_token_id': hf.eos_token_id,
            'pad_token_id': hf.pad_token_id, 'bos_token_id': hf.bos_token_id, 'encodings': items, 'chats': chats}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seed', type=int, default=1234)
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    tok_dir = os.path.join(OUT, 'tokenizer')
    train_tokenizer(tok_dir)
    tok = AutoTokenizer.from_pretrained(tok_dir)

    rng = np.random.default_rng(args.seed)
    input_ids = rng.integers(0, VOCAB, size=(2, 10)).tolist()
    probe_ids = sorted(rng.choice(VOCAB, size=24, replace=False).tolist())
    prompt_texts = ['A 62-year-old woman with chest pain', 'Dose: 5 µg/kg ≥ 3 times daily; 心脏 🫀']
    prompts = [tok.encode(t) for t in prompt_texts]
    chat = tok.apply_chat_template([{'role': 'user', 'content': 'What lowers blood pressure?'}], tokenize=False,
                                   add_generation_prompt=True)
    prompts.append(tok.encode(chat))

    torch.manual_seed(args.seed)
    models = tiny_models(tok)
    # family -> [(folder, dtype)]; the Llama folders get the older Hub config layout.
    layouts = {'qwen2': [('qwen2-f32', None), ('qwen2-bf16', torch.bfloat16)],
               'llama': [('llama-f32', None), ('llama-f16', torch.float16)]}
    py_tok_dir = os.path.join(OUT, 'tokenizer-python')
    python_trained_tokenizer(py_tok_dir)
    reference = {'tokenizer': tokenizer_reference(tok_dir), 'tokenizer_python': tokenizer_reference(py_tok_dir), 'models': {}}
    for family, model in models.items():
        # Draw weights until every greedy step is clear-cut and the continuations are not one token
        # repeated, so the comparison is decisive rather than lucky.
        for seed in range(args.seed, args.seed + 50):
            randomize(model, seed)
            refs = {}
            for name, dtype in layouts[family]:
                folder = os.path.join(OUT, name)
                save_folder(model, tok_dir, folder, dtype, legacy=family == 'llama')
                refs[name] = reference_for(folder, input_ids, prompts, probe_ids, model if dtype is None else None)
                refs[name]['weights_seed'] = seed
            ok = all(r['min_margin'] >= MIN_MARGIN and min(len(set(g)) for g in r['greedy']) >= 3 for r in refs.values())
            if ok:
                break
        else:
            sys.exit(f'{family}: no weights seed in 50 gave clear greedy steps')
        for name, ref in refs.items():
            reference['models'][name] = ref
            print(f'{name}: weights seed {seed}, min greedy margin {ref["min_margin"]:.4f}, greedy {ref["greedy"]}')

    with open(os.path.join(OUT, 'reference.json'), 'w') as f:
        json.dump({'transformers': __import__('transformers').__version__, 'torch': torch.__version__,
                   'tokenizers': tokenizers.__version__, 'seed': args.seed, **reference}, f, ensure_ascii=False, indent=1)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f'fixture: {total / 1e6:.2f} MB in {OUT}')
    assert total < 2e6, 'the fixture must stay under 2 MB'


if __name__ == '__main__':
    main()
