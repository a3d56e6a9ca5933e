"""Builds the sequence-classifier parity fixture with Hugging Face transformers + torch.

What it makes, in test/fixtures/parity/ (next to make_fixture.py's output, whose tokenizer it reuses):
  qwen2-seqcls/               a tiny random Qwen2ForSequenceClassification (hidden 32, 2 layers, vocabulary
                              1,024, two labels, score head without bias, pad_token_id = <|endoftext|>),
                              saved by transformers as is, with the tokenizer files
  classifier-reference.json   for HuatuoGPT-o1's verifier inputs (the reward's template, rendered here with
                              the tokenizer's EOS token) and for raw id rows with pad tokens inside and at the
                              end: the ids, transformers' logits and P(label 1), scored as one right-padded
                              batch (as the reward scores a rollout) and one row at a time

Run from the repository root after make_fixture.py (see README.md in this folder):
  /tmp/parity-venv/bin/python scripts/parity/make_classifier_fixture.py
"""
import argparse
import json
import os
import shutil

import numpy as np
import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer, Qwen2Config, Qwen2ForSequenceClassification

from make_fixture import OUT, VOCAB, randomize

FOLDER = os.path.join(OUT, 'qwen2-seqcls')
REFERENCE = os.path.join(OUT, 'classifier-reference.json')
MAX_LENGTH = 4000  # the reward truncates the verifier's input to this many tokens

# The verifier's input format, as HuatuoGPT-o1's reward renders it (response, reference, EOS token).
VERIFIER_FORMAT = ('<Model Response>\n{response}\n</Model Response>\n\n<Reference Answer>\n{reference}\n</Reference Answer>\n\n'
                   'Your task is to evaluate the model response by comparing it to the reference answer. If the model '
                   'response is correct and aligns with the reference answer, output "True" . If it is incorrect or fails '
                   'to select the correct option (if options are provided), output "False" . {eos}')

CASES = [
    ('Vitamin C deficiency.', 'Vitamin C'),
    ('I do not know the answer.', 'Parvovirus B19 infection'),
    ('The most likely diagnosis is acute myocardial infarction; start aspirin 300 mg.', 'Myocardial infarction'),
    ('Dose: 5 µg/kg ≥ 3 times daily; 心脏', 'B. Digoxin'),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seed', type=int, default=4321)
    args = ap.parse_args()
    tok_dir = os.path.join(OUT, 'tokenizer')
    tok = AutoTokenizer.from_pretrained(tok_dir)
    pad = tok.convert_tokens_to_ids('<|endoftext|>')
    eos = tok.convert_tokens_to_ids('<|im_end|>')
    assert tok.eos_token == '<|im_end|>' and tok.padding_side == 'right'

    torch.manual_seed(args.seed)
    config = Qwen2Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=256, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
                         tie_word_embeddings=True, eos_token_id=eos, pad_token_id=pad, bos_token_id=None, num_labels=2,
                         attn_implementation='eager')
    model = Qwen2ForSequenceClassification(config)
    randomize(model, args.seed)
    shutil.rmtree(FOLDER, ignore_errors=True)
    model.save_pretrained(FOLDER)
    for name in ('tokenizer.json', 'tokenizer_config.json'):
        shutil.copy(os.path.join(tok_dir, name), os.path.join(FOLDER, name))

    loaded = AutoModelForSequenceClassification.from_pretrained(FOLDER, dtype=torch.float32, attn_implementation='eager').eval()
    assert type(loaded).__name__ == 'Qwen2ForSequenceClassification'
    assert loaded.score.bias is None

    texts = [VERIFIER_FORMAT.format(response=r, reference=a, eos=tok.eos_token) for r, a in CASES]
    batch = tok(texts, return_tensors='pt', add_special_tokens=False, max_length=MAX_LENGTH, padding=True, truncation=True)
    with torch.no_grad():
        batch_logits = loaded(**batch).logits.float()
    batch_probs = torch.softmax(batch_logits, dim=-1)
    items = []
    for i, text in enumerate(texts):
        ids = tok(text, add_special_tokens=False)['input_ids']
        with torch.no_grad():
            alone = loaded(torch.tensor([ids])).logits.float()[0]
        assert torch.abs(alone - batch_logits[i]).max() < 1e-5, 'a padded batch row differs from the row alone'
        items.append({'response': CASES[i][0], 'reference': CASES[i][1], 'text': text, 'ids': ids,
                      'logits': alone.tolist(), 'p_true': float(torch.softmax(alone, -1)[1]),
                      'batch_logits': batch_logits[i].tolist(), 'batch_p_true': float(batch_probs[i, 1])})

    # Raw rows for the pooled-token rule: pad tokens at the end, in the middle, and only pads.
    rng = np.random.default_rng(args.seed)
    body = [int(x) for x in rng.integers(0, pad, size=9)]
    rows = [body, body + [pad, pad], body[:4] + [pad] + body[4:], body + [eos, pad], [pad, pad, pad]]
    raw = []
    for ids in rows:
        with torch.no_grad():
            logits = loaded(torch.tensor([ids])).logits.float()[0]
        raw.append({'ids': ids, 'logits': logits.tolist(), 'p_true': float(torch.softmax(logits, -1)[1])})
    assert raw[0]['logits'] == raw[1]['logits'], 'trailing pad tokens are skipped by the pooled-token rule'

    with open(REFERENCE, 'w') as f:
        json.dump({'transformers': transformers.__version__, 'torch': torch.__version__, 'seed': args.seed,
                   'folder': os.path.basename(FOLDER), 'pad_token_id': pad, 'eos_token': tok.eos_token, 'max_length': MAX_LENGTH,
                   'verifier_inputs': items, 'raw_rows': raw}, f, ensure_ascii=False, indent=1)
    total = sum(os.path.getsize(os.path.join(FOLDER, n)) for n in os.listdir(FOLDER)) + os.path.getsize(REFERENCE)
    print(f'classifier fixture: {total / 1e6:.2f} MB; P(True) {[round(x["p_true"], 4) for x in items]}, raw {[round(x["p_true"], 4) for x in raw]}')
    assert total < 5e5, 'the classifier fixture must stay under 500 kB'


if __name__ == '__main__':
    main()
