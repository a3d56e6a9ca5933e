"""Checks that folders written by our saveModel load in transformers and compute what our engine computes.

For every parity fixture model, our engine saves an F32 and a BF16 copy (save_engine_copies.ts); this
script loads each copy with AutoModelForCausalLM, AutoTokenizer and GenerationConfig, and compares
transformers' logits on the reference input ids with (a) our engine's logits on the same folder and
(b) for F32 copies, the fixture's reference logits. Run from the repository root:
  /tmp/parity-venv/bin/python scripts/parity/check_saved.py [--out /tmp/parity-saved]
"""
import argparse
import base64
import json
import os
import subprocess

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
FIXTURE = os.path.join(ROOT, 'test', 'fixtures', 'parity')
TOL = 1e-4


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default='/tmp/parity-saved')
    args = ap.parse_args()
    subprocess.run(['node', '--import', 'tsx', 'scripts/parity/save_engine_copies.ts', args.out], cwd=ROOT, check=True)
    with open(os.path.join(args.out, 'engine_logits.json')) as f:
        ours = json.load(f)
    with open(os.path.join(FIXTURE, 'reference.json')) as f:
        reference = json.load(f)['models']
    failures = 0
    for folder, entry in ours.items():
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation='eager').eval()
        tok = AutoTokenizer.from_pretrained(folder)
        gen = GenerationConfig.from_pretrained(folder)
        ids = torch.tensor(entry['input_ids'])
        with torch.no_grad():
            theirs = model(ids).logits.float().numpy()
        mine = np.array(entry['logits'], dtype=np.float32).reshape(theirs.shape)
        d_engine = float(np.abs(theirs - mine).max())
        line = f'{os.path.basename(folder)}: transformers vs our engine {d_engine:.2e}'
        ok = d_engine < TOL
        name = os.path.basename(folder).split('-saved-')[0]
        if folder.endswith('-f32') and name in reference:
            last = np.frombuffer(base64.b64decode(reference[name]['last_logits']), dtype='<f4').reshape(len(ids), -1)
            d_ref = float(np.abs(theirs[:, -1, :] - last).max())
            line += f', vs the fixture reference {d_ref:.2e}'
            ok = ok and d_ref < TOL
        line += f'; tokenizer vocab {len(tok)}, eos {gen.eos_token_id}'
        print(('ok   ' if ok else 'FAIL ') + line)
        failures += 0 if ok else 1
    if failures:
        raise SystemExit(f'{failures} folder(s) differ')
    print('every folder saved by saveModel loads in transformers and gives the same logits')


if __name__ == '__main__':
    main()
