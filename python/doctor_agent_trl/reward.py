"""HuatuoGPT-o1's RL reward, as data/reward.ts and rl/score.ts define it (standard library only).

A response is well formed when its decoded text (special tokens removed) contains
``## Final Response`` followed by a blank line exactly once and ``## Thinking`` exactly once;
otherwise its reward is ``malformed`` (0.0), whatever the verifier says. The verifier judges the
text after that ``## Final Response\\n\\n``, stripped as ``str.strip()`` does. A well-formed
response earns ``correct`` (1.0) when the verifier accepts it (the model verifier: P(True)
strictly above 0.4), else ``wrong`` (0.1). A malformed response is still judged, on the text
after its last ``## Final Response`` trimmed as JavaScript's ``trim()`` does, so that the
``correct`` flags count answers that are right but badly formatted.

test/fixtures/reward-conformance.jsonl holds the cases on which this module and the TypeScript
one must agree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Protocol, Sequence

if TYPE_CHECKING:
    from .verifiers import Verdict, VerifyInput


@dataclass(frozen=True)
class RewardMapping:
    correct: float
    wrong: float
    malformed: float


HUATUO_REWARD = RewardMapping(correct=1.0, wrong=0.1, malformed=0.0)
"""The recipe's mapping: correct 1.0, well formed but wrong 0.1, malformed 0.0."""

HUATUO_VERIFIER_THRESHOLD = 0.4
"""The model verifier's threshold: P(True) must be strictly greater."""

FINAL_RESPONSE_MARK = "## Final Response\n\n"
THINKING_MARK = "## Thinking"

# JavaScript's whitespace (String.prototype.trim, \s in a RegExp): unlike str.isspace() it
# includes U+FEFF and excludes U+001C-U+001F and U+0085.
JS_WHITESPACE = "\t\n\v\f\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def js_trim(text: str) -> str:
    """JavaScript's String.prototype.trim()."""
    return text.strip(JS_WHITESPACE)


def count_occurrences(text: str, needle: str) -> int:
    """Non-overlapping occurrences, counted left to right (str.count)."""
    if needle == "":
        raise ValueError("count_occurrences: empty needle")
    return text.count(needle)


@dataclass(frozen=True)
class ResponseFormat:
    formatted: bool
    """Both headings exactly once, ``## Final Response`` followed by a blank line."""
    final_response: Optional[str]
    """What the verifier judges: the stripped text after ``## Final Response\\n\\n``; None when not formatted."""


def huatuo_format(text: str) -> ResponseFormat:
    """The format check and answer extraction of HuatuoGPT-o1's RL reward."""
    if count_occurrences(text, FINAL_RESPONSE_MARK) != 1 or count_occurrences(text, THINKING_MARK) != 1:
        return ResponseFormat(False, None)
    start = text.index(FINAL_RESPONSE_MARK) + len(FINAL_RESPONSE_MARK)
    return ResponseFormat(True, text[start:].strip())


def reward_for(formatted: bool, correct: bool, mapping: RewardMapping = HUATUO_REWARD) -> float:
    """The reward of a response from its format and the verifier's verdict."""
    if not formatted:
        return mapping.malformed
    return mapping.correct if correct else mapping.wrong


def extract_final_response(text: str) -> str:
    """The text after the last ``## Final Response`` heading (the whole text when there is none), JS-trimmed."""
    i = text.rfind("## Final Response")
    return js_trim(text if i < 0 else text[i + len("## Final Response"):])


def judged_response(text: str) -> str:
    """What the verifier judges for a decoded response, well formed or not (rl/score.ts)."""
    final = huatuo_format(text).final_response
    return final if final is not None else extract_final_response(text)


def reward_of(text: str, correct: bool, mapping: RewardMapping = HUATUO_REWARD) -> float:
    """The reward of one decoded response given the verdict (with the default mapping, huatuo_reward)."""
    return reward_for(huatuo_format(text).formatted, correct, mapping)


def huatuo_reward(text: str, correct: bool) -> float:
    return reward_of(text, correct, HUATUO_REWARD)


class Judge(Protocol):
    def verify_many(self, inputs: Sequence["VerifyInput"]) -> list["Verdict"]: ...


@dataclass(frozen=True)
class Scores:
    rewards: list[float]
    correct: list[bool]
    formatted: list[bool]


def score(texts: Sequence[str], references: Sequence[str], verifier: Judge,
          questions: Optional[Sequence[Optional[str]]] = None,
          mapping: RewardMapping = HUATUO_REWARD) -> Scores:
    """Scores each decoded response against its reference answer (one reference per text), as rl/score.ts."""
    from .verifiers import VerifyInput

    if len(references) != len(texts) or (questions is not None and len(questions) != len(texts)):
        raise ValueError(f"score: {len(texts)} texts need as many references and questions")
    formats = [huatuo_format(t) for t in texts]
    inputs = [VerifyInput(response=f.final_response if f.final_response is not None else extract_final_response(t),
                          reference=references[i], question=questions[i] if questions is not None else None)
              for i, (t, f) in enumerate(zip(texts, formats))]
    correct = [v.correct for v in verifier.verify_many(inputs)]
    return Scores(rewards=[reward_for(f.formatted, c, mapping) for f, c in zip(formats, correct)],
                  correct=correct, formatted=[f.formatted for f in formats])
