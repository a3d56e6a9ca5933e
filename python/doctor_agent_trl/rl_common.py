"""What the RL runners (rl.grpo, rl.ppo) share: the prepared problems and HuatuoGPT-o1's reward.

The TypeScript job writes the verifiable problems as JSON Lines, one row per problem:
``{"prompt": [{"role": "user", "content": QUESTION}], "reference": ANSWER, "question": QUESTION}``.

The reward (reward.py, as rl/score.ts): ``reward.correct`` when the response is well formed and the
verifier accepts its final answer, ``reward.wrong`` when well formed but not accepted, and
``reward.malformed`` otherwise. ``make_reward_function`` gives a callable with TRL's reward-function
signature that also counts, per call, how many responses were judged correct and how many were well
formed, for the per-iteration metrics (``take_counts``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from .protocol import UserError
from .reward import HUATUO_REWARD, RewardMapping, Scores, score


# ---------------------------------------------------------------- the prepared problems

@dataclass(frozen=True)
class Problem:
    prompt: list[dict[str, str]]
    """The conversation the policy answers: the question as the only user turn."""
    reference: str
    """The ground-truth answer the verifier compares with."""
    question: str


def _messages(value: Any) -> Optional[list[dict[str, str]]]:
    if not isinstance(value, list) or not value:
        return None
    for m in value:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            return None
    return [{"role": m["role"], "content": m["content"]} for m in value]


def read_problems(path: str) -> list[Problem]:
    """The prepared problems, in file order; a bad row is a UserError naming its line."""
    problems: list[Problem] = []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise UserError(f"{path}: cannot read the prepared problems ({e.strerror})", where=path) from e
    with f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{where}: not JSON ({e.msg})", where=where) from e
            if not isinstance(row, dict):
                raise UserError(f"{where}: expected an object", where=where)
            prompt = _messages(row.get("prompt"))
            if prompt is None:
                raise UserError(f'{where}: "prompt" must be a non-empty list of {{"role", "content"}} messages', where=where)
            reference = row.get("reference")
            if not isinstance(reference, str) or not reference.strip():
                raise UserError(f'{where}: "reference" (the ground-truth answer) must be a non-empty string', where=where)
            question = row.get("question")
            if question is None:
                question = prompt[-1]["content"]
            if not isinstance(question, str):
                raise UserError(f'{where}: "question" must be a string', where=where)
            problems.append(Problem(prompt, reference, question))
    if not problems:
        raise UserError(f"{path}: no verifiable problems", where=path, hint="give a data file with at least one problem")
    return problems


def problem_rows(problems: Sequence[Problem]) -> list[dict[str, Any]]:
    """The problems as dataset rows: prompt, reference and question columns (the reward reads the last two)."""
    return [{"prompt": p.prompt, "reference": p.reference, "question": p.question} for p in problems]


# ---------------------------------------------------------------- the reward

def reward_mapping(params: Mapping[str, Any]) -> RewardMapping:
    """The step's ``reward`` mapping (the recipe's where a value is absent)."""
    r = params.get("reward") or {}
    return RewardMapping(
        correct=float(r.get("correct", HUATUO_REWARD.correct)),
        wrong=float(r.get("wrong", HUATUO_REWARD.wrong)),
        malformed=float(r.get("malformed", HUATUO_REWARD.malformed)),
    )


def verifier_config(params: Mapping[str, Any], project_root: str) -> dict[str, Any]:
    """The step's ``verifier``, with a relative model folder taken from the project root."""
    config = params.get("verifier")
    if not isinstance(config, Mapping) or "type" not in config:
        raise UserError("with.verifier: give the verifier, e.g. {type: rule}", where="with.verifier")
    config = dict(config)
    model = config.get("model")
    if config.get("type") == "model" and isinstance(model, str) and not os.path.isabs(model):
        config["model"] = os.path.join(project_root, model)
    return config


def completion_text(completion: Any) -> str:
    """The text of one completion: a string, or a conversation whose assistant turns are joined."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(m.get("content") or "" for m in completion if isinstance(m, dict) and m.get("role", "assistant") == "assistant")
    raise TypeError(f"a completion is a string or a list of messages, not {type(completion).__name__}")


@dataclass
class RewardCounts:
    """What the reward has judged since the counts were last taken."""

    responses: int = 0
    correct: int = 0
    """Judged correct by the verifier, well formed or not (the accuracy)."""
    formatted: int = 0
    """Well formed (the format rate)."""
    reward_sum: float = 0.0

    def add(self, s: Scores) -> None:
        self.responses += len(s.rewards)
        self.correct += sum(1 for c in s.correct if c)
        self.formatted += sum(1 for f in s.formatted if f)
        self.reward_sum += float(sum(s.rewards))

    def means(self) -> dict[str, float]:
        """reward_mean, accuracy and format_rate (rl/loop.ts's names); empty when nothing was judged."""
        if self.responses == 0:
            return {}
        n = float(self.responses)
        return {"reward_mean": self.reward_sum / n, "accuracy": self.correct / n, "format_rate": self.formatted / n}


class VerifierReward:
    """HuatuoGPT-o1's reward through the step's verifier, with TRL's reward-function signature:
    ``reward(prompts, completions, reference=[...], question=[...], **other_columns) -> list[float]``."""

    __name__ = "huatuo_reward"  # the name TRL logs the reward under (rewards/huatuo_reward/mean)

    def __init__(self, verifier: Any, mapping: RewardMapping = HUATUO_REWARD) -> None:
        self.verifier = verifier
        self.mapping = mapping
        self.counts = RewardCounts()

    def score_texts(self, texts: Sequence[str], references: Sequence[str], questions: Optional[Sequence[Optional[str]]] = None) -> Scores:
        """Scores decoded responses (one reference per text) and counts them."""
        s = score(list(texts), list(references), self.verifier, list(questions) if questions is not None else None, self.mapping)
        self.counts.add(s)
        return s

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], reference: Optional[Sequence[str]] = None,
                 question: Optional[Sequence[Optional[str]]] = None, **_columns: Any) -> list[float]:
        if reference is None:
            raise ValueError('the reward needs the "reference" column (the ground-truth answer of each problem)')
        return self.score_texts([completion_text(c) for c in completions], reference, question).rewards

    def take_counts(self) -> RewardCounts:
        """The counts since the last call, which start again from zero."""
        counts, self.counts = self.counts, RewardCounts()
        return counts

    def close(self) -> None:
        self.verifier.close()


def make_reward_function(params: Mapping[str, Any], project_root: str) -> VerifierReward:
    """The reward of an RL step from its ``verifier`` and ``reward`` params. Close it when done (try/finally)."""
    from .verifiers import make_verifier

    config = verifier_config(params, project_root)
    try:
        verifier = make_verifier(config)
    except ValueError as e:
        raise UserError(str(e), where="with.verifier") from e
    return VerifierReward(verifier, reward_mapping(params))
