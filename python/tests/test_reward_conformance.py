"""The Python reward and verifiers against test/fixtures/reward-conformance.jsonl, the case file whose expected
values the TypeScript implementation computed (scripts/reward-conformance/generate.ts) and which
test/data/reward-conformance.test.ts checks on the TypeScript side.

The judge servers cannot be reached from a test machine: a scripted OpenAI-compatible server on
127.0.0.1 (real HTTP, http.server) plays them and records the raw request bodies. The model cases need
torch and transformers and are skipped without them; the rest needs the standard library alone.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import unittest
from collections import defaultdict
from typing import Any, Optional

from tests.http_stub import Response, StubServer
from doctor_agent_trl.reward import HUATUO_VERIFIER_THRESHOLD, RewardMapping, huatuo_format, score
from doctor_agent_trl.verifiers import (
    ChatApi, LlmJudgeVerifier, ModelVerifier, RuleVerifier, Verdict, Verifier, VerifyInput,
    judge_prompt, logprob_scorer, normalize_answer, threshold_verdict,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASE_FILE = os.path.join(ROOT, "test", "fixtures", "reward-conformance.jsonl")
MODEL_TOLERANCE = 1e-4
HAS_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def _load() -> list[dict[str, Any]]:
    with open(CASE_FILE, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


CASES = _load()


def cases(kind: str) -> list[dict[str, Any]]:
    return [c for c in CASES if c["kind"] == kind]


def verify_input(c: dict[str, Any]) -> VerifyInput:
    # Options are listed as [key, text] pairs in the order an item's JSON gives them.
    options = dict(c["options"]) if "options" in c else None
    return VerifyInput(response=c["response"], reference=c["reference"], question=c.get("question"), options=options)


class Fixed(Verifier):
    """A verifier with a fixed verdict, recording what it was asked."""

    def __init__(self, correct: bool) -> None:
        self.correct = correct
        self.asked: list[VerifyInput] = []

    def verify(self, input: VerifyInput) -> Verdict:
        self.asked.append(input)
        return Verdict(self.correct, 1 if self.correct else 0, "fixed")


class Recording(Verifier):
    def __init__(self, inner: Verifier) -> None:
        self.inner = inner
        self.asked: list[VerifyInput] = []

    def verify(self, input: VerifyInput) -> Verdict:
        self.asked.append(input)
        return self.inner.verify(input)


class CaseFile(unittest.TestCase):
    def test_every_kind_and_enough_cases(self) -> None:
        self.assertGreaterEqual(len(CASES), 80)
        self.assertEqual({c["kind"] for c in CASES}, {"reward", "rule", "threshold", "llm", "logprob", "classifier", "causal_lm"})
        self.assertEqual(len({c["id"] for c in CASES}), len(CASES))

    def test_reward_and_rule_import_without_torch(self) -> None:
        code = "import sys, doctor_agent_trl.reward, doctor_agent_trl.verifiers; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
        out = subprocess.run([sys.executable, "-c", code], cwd=os.path.join(ROOT, "python"), capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.strip(), "[]")


class RewardConformance(unittest.TestCase):
    def test_reward(self) -> None:
        for c in cases("reward"):
            with self.subTest(c["id"]):
                want = c["expected"]
                verifier: Verifier = Fixed(c["verdict"]) if "verdict" in c else RuleVerifier(c.get("aliases", []))
                spy = Recording(verifier)
                mapping = RewardMapping(**c["mapping"]) if "mapping" in c else None
                s = score([c["response"]], [c["reference"]], spy, questions=[c.get("question")],
                          **({"mapping": mapping} if mapping else {}))
                f = huatuo_format(c["response"])
                got = {"formatted": s.formatted[0], "finalResponse": f.final_response, "judged": spy.asked[0].response,
                       "correct": s.correct[0], "reward": s.rewards[0]}
                self.assertEqual(got, want)

    def test_rule(self) -> None:
        for c in cases("rule"):
            with self.subTest(c["id"]):
                v = RuleVerifier(c.get("aliases", [])).verify(verify_input(c))
                got = {"correct": v.correct, "score": v.score, "reason": v.reason,
                       "normalized": [normalize_answer(c["response"]), normalize_answer(c["reference"])]}
                self.assertEqual(got, c["expected"])

    def test_threshold(self) -> None:
        for c in cases("threshold"):
            with self.subTest(c["id"]):
                v = threshold_verdict(c["p"], c.get("threshold", HUATUO_VERIFIER_THRESHOLD))
                self.assertEqual({"correct": v.correct, "score": v.score, "reason": v.reason}, c["expected"])


class ScriptedServer(StubServer):
    """An OpenAI-compatible chat server answering the current scripted reply; records raw bodies."""

    def __init__(self) -> None:
        self.reply: Any = ""
        super().__init__(self.answer)

    def answer(self, path: str, body: str) -> Response:
        if path != "/v1/chat/completions":
            return 404, {}, ""
        r = self.reply
        text = r if isinstance(r, str) else r["text"]
        logprobs = None if isinstance(r, str) else {"content": r["logprobs"]}
        out = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                       "finish_reason": "stop", "logprobs": logprobs}],
                          "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
        return 200, {"content-type": "application/json"}, out


class JudgeConformance(unittest.TestCase):
    server: Optional[ScriptedServer] = None

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ScriptedServer()

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.server:
            cls.server.close()

    def ask(self, reply: Any) -> ScriptedServer:
        assert self.server
        self.server.reply = reply
        self.server.bodies = []
        return self.server

    def test_llm_judge(self) -> None:
        for c in cases("llm"):
            with self.subTest(c["id"]):
                server = self.ask(c["reply"])
                v = LlmJudgeVerifier(ChatApi(server.url, c["judge"], max_retries=0)).verify(verify_input(c))
                self.assertEqual(server.bodies, [c["expected"]["requestBody"]], "the request body, byte for byte")
                self.assertEqual({"requestBody": server.bodies[0], "correct": v.correct, "score": v.score, "reason": v.reason}, c["expected"])

    def test_logprob_model_verifier(self) -> None:
        for c in cases("logprob"):
            with self.subTest(c["id"]):
                server = self.ask(c["reply"])
                [v] = ModelVerifier(logprob_scorer(ChatApi(server.url, c["judge"], max_retries=0))).verify_many([verify_input(c)])
                want = c["expected"]
                self.assertEqual(server.bodies, [want["requestBody"]])
                self.assertAlmostEqual(v.score, want["pTrue"], delta=1e-12)
                self.assertEqual(v.correct, want["correct"])

    def test_judge_prompt_in_the_request(self) -> None:
        c = cases("llm")[0]
        body = json.loads(c["expected"]["requestBody"])
        self.assertEqual(body["messages"], [{"role": "user", "content": judge_prompt(verify_input(c))}])


@unittest.skipUnless(HAS_TORCH, "torch and transformers are not installed")
class ModelConformance(unittest.TestCase):
    def test_sequence_classifier(self) -> None:
        from doctor_agent_trl.verifiers import ClassifierScorer, ClassifierVerifier, make_verifier

        groups: dict[tuple[str, Optional[int]], list[dict[str, Any]]] = defaultdict(list)
        for c in cases("classifier"):
            groups[(c["model"], c.get("maxLength"))].append(c)
        for (model, max_length), group in groups.items():
            scorer = ClassifierScorer(os.path.join(ROOT, model), **({"max_length": max_length} if max_length else {}))
            texts = [scorer.input_text(c["response"], c["reference"]) for c in group]
            ps = scorer(texts)  # one right-padded batch
            for c, text, p in zip(group, texts, ps):
                with self.subTest(c["id"]):
                    want = c["expected"]
                    self.assertEqual(text, want["input"])
                    self.assertEqual(scorer.input_ids(text), want["ids"])
                    self.assertAlmostEqual(p, want["pTrue"], delta=MODEL_TOLERANCE)
                    self.assertEqual(threshold_verdict(p, c.get("threshold", HUATUO_VERIFIER_THRESHOLD)).correct, want["correct"])
        plain = [c for c in cases("classifier") if c["response"] is not None and "maxLength" not in c and "threshold" not in c]
        v = make_verifier({"type": "model", "model": os.path.join(ROOT, plain[0]["model"])})
        self.assertIsInstance(v, ClassifierVerifier)
        for c, d in zip(plain, v.verify_many([verify_input(c) for c in plain])):
            self.assertAlmostEqual(d.score, c["expected"]["pTrue"], delta=MODEL_TOLERANCE)
            self.assertEqual(d.correct, c["expected"]["correct"])

    def test_causal_lm_judge(self) -> None:
        from doctor_agent_trl.verifiers import CausalLmScorer, make_verifier

        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for c in cases("causal_lm"):
            groups[c["model"]].append(c)
        for model, group in groups.items():
            scorer = CausalLmScorer(os.path.join(ROOT, model))
            prompts = [judge_prompt(verify_input(c)) for c in group]
            together = scorer(prompts)  # one left-padded batch of prompts of different lengths
            for c, prompt, p in zip(group, prompts, together):
                with self.subTest(c["id"]):
                    want = c["expected"]
                    self.assertEqual(prompt, want["prompt"])
                    self.assertEqual(scorer.prompt_ids(prompt), want["ids"])
                    self.assertEqual({"true": scorer.answer_ids.true, "false": scorer.answer_ids.false}, want["answerIds"])
                    self.assertAlmostEqual(p, want["pTrue"], delta=MODEL_TOLERANCE)
                    self.assertAlmostEqual(scorer([prompt])[0], want["pTrue"], delta=MODEL_TOLERANCE)
                    self.assertEqual(threshold_verdict(p, c.get("threshold", HUATUO_VERIFIER_THRESHOLD)).correct, want["correct"])
            v = make_verifier({"type": "model", "model": os.path.join(ROOT, model)})
            self.assertIsInstance(v, ModelVerifier)
            plain = [c for c in group if "threshold" not in c]
            for c, d in zip(plain, v.verify_many([verify_input(c) for c in plain])):
                self.assertEqual(d.correct, c["expected"]["correct"])


if __name__ == "__main__":
    unittest.main()
