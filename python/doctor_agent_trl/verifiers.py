"""Verifiers, behaving as data/verifiers.ts: a verifier judges a response (the answer part) against a
reference answer.

- rule:  normalised answer match (case, punctuation, articles, whitespace, Unicode), alias groups,
         option letter <-> option text when options are given.
- llm:   an LLM judge over an OpenAI-compatible chat API (urllib), replying True or False.
- model: a verifier model's P(True), correct when strictly above a threshold (0.4 in the recipe): a
         sequence-classifier folder (label-1 probability of the recipe's verifier input), a causal LM
         folder judging the judge prompt (torch and transformers, imported only then), or a server
         giving the log-probabilities of "True" and "False".

Where JavaScript and Python differ (whitespace sets, \\b and \\w, key order of objects, number
formatting), the JavaScript behaviour is reproduced: test/fixtures/reward-conformance.jsonl holds the
cases both implementations are checked on.
"""
from __future__ import annotations

import json
import math
import os
import random
import re
import time
import unicodedata
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable, Mapping, Optional, Sequence

from .reward import HUATUO_VERIFIER_THRESHOLD, JS_WHITESPACE, js_trim


@dataclass(frozen=True)
class VerifyInput:
    response: str
    reference: str
    question: Optional[str] = None
    options: Optional[Mapping[str, str]] = None
    """Option letter -> text, when the item is multiple choice: lets a letter match its text."""


@dataclass(frozen=True)
class Verdict:
    correct: bool
    score: float
    """1/0 for the rule and llm verifiers; P(True) for the model verifier."""
    reason: str


class Verifier:
    """A verifier overrides verify or verify_many (the model verifiers score a batch in one pass)."""

    name = "verifier"

    def verify(self, input: VerifyInput) -> Verdict:
        return self.verify_many([input])[0]

    def verify_many(self, inputs: Sequence[VerifyInput]) -> list[Verdict]:
        return [self.verify(i) for i in inputs]

    def close(self) -> None:
        """Frees what the verifier holds (a model); a no-op for the others."""


# ---------------------------------------------------------------- JavaScript semantics

_JS_S = f"[{JS_WHITESPACE}]"
_JS_W = "[A-Za-z0-9_]"
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")


def js_keys(obj: Mapping[str, Any]) -> list[str]:
    """Object.keys order: array-index keys ascending first, then the others in insertion order."""
    index = [k for k in obj if _ARRAY_INDEX.fullmatch(k) and int(k) < 2**32 - 1]
    return sorted(index, key=int) + [k for k in obj if k not in index]


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def js_to_fixed(x: float, digits: int) -> str:
    """Number.prototype.toFixed: ties of the exact binary value round up (Python's format rounds to even)."""
    if math.isnan(x):
        return "NaN"
    # Ties round away from zero; -0 prints as 0 (x < 0 is false for it).
    return f"{Decimal(x + 0.0 if x == 0 else x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP):f}"


def js_number(x: float) -> str:
    """String(x) of a JavaScript number: 1 not 1.0, 1e-7 not 1e-07, 0.00001 not 1e-05."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    if x < 0:
        return "-" + js_number(-x)
    _, digit_tuple, exp = Decimal(repr(float(x))).as_tuple()
    s = "".join(map(str, digit_tuple))
    stripped = s.rstrip("0")
    exp = int(exp) + len(s) - len(stripped)
    s = stripped
    k, n = len(s), len(s) + exp
    if k <= n <= 21:
        return s + "0" * (n - k)
    if 0 < n <= 21:
        return s[:n] + "." + s[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + s
    e = n - 1
    mantissa = s if k == 1 else s[0] + "." + s[1:]
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def js_json(value: Any) -> str:
    """JSON.stringify(value) for JSON-like values of str, int, bool, None, list and dict."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # JSON.stringify escapes lone surrogates; in a Python str every surrogate is a lone one.
    return re.sub("[\ud800-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", text)


def _js_slice(text: str, end: int) -> str:
    """text.slice(0, end) in UTF-16 code units (a cut pair leaves a lone surrogate, as in JavaScript)."""
    return text.encode("utf-16-le", "surrogatepass")[: 2 * end].decode("utf-16-le", "surrogatepass")


# ---------------------------------------------------------------- prompts (data/prompts/verify.ts)

def judge_prompt(input: VerifyInput) -> str:
    """The judge prompt shared by the LLM judge and the causal-LM model verifier."""
    parts = [
        "You check answers to medical questions. Decide whether the response below reaches the same answer as the reference answer.",
        "Judge the meaning, not the wording: synonyms, abbreviations and extra explanation are fine; a different or hedged answer is not.",
    ]
    if input.question:
        parts.append(f"<question>\n{input.question}\n</question>")
    if input.options is not None:
        listed = "\n".join(f"{k}. {input.options[k]}" for k in js_keys(input.options))
        parts.append(f"<options>\n{listed}\n</options>")
    parts += [f"<response>\n{input.response}\n</response>", f"<reference>\n{input.reference}\n</reference>"]
    parts.append("Reply with one word: True if the response matches the reference answer, False if it does not.")
    return "\n\n".join(parts)


NO_ANSWER = "I do not know the answer."
"""What HuatuoGPT-o1's reward gives its verifier in place of the answer of a malformed response."""


def huatuo_verifier_input(response: Optional[str], reference: str, eos_token: str) -> str:
    """The input of HuatuoGPT-o1's sequence-classifier verifier (its exact whitespace is part of the format)."""
    return "\n".join([
        "<Model Response>", NO_ANSWER if response is None else response, "</Model Response>", "",
        "<Reference Answer>", reference, "</Reference Answer>", "",
        'Your task is to evaluate the model response by comparing it to the reference answer. '
        'If the model response is correct and aligns with the reference answer, output "True" . '
        'If it is incorrect or fails to select the correct option (if options are provided), output "False" . ' + eos_token,
    ])


# ---------------------------------------------------------------- rule-based

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.ASCII)
_SPACES = re.compile(f"{_JS_S}+")


def normalize_answer(text: str) -> str:
    """Lower case, NFKD-folded, no combining marks, punctuation/symbols or articles, single spaces."""
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.category(c).startswith("M"))
    out: list[str] = []
    in_run = False
    for c in text.lower():
        if unicodedata.category(c)[0] in "PS":
            if not in_run:
                out.append(" ")
            in_run = True
        else:
            out.append(c)
            in_run = False
    text = _SPACES.sub(" ", _ARTICLES.sub(" ", "".join(out)))
    return text.strip(" ")


def _chosen_letter(response: str, options: Mapping[str, str]) -> Optional[str]:
    """The option letter a response commits to, if it names one clearly (letters are case-sensitive)."""
    letters = "".join(k for k in js_keys(options) if re.fullmatch("[A-Za-z]", k))
    if not letters:
        return None
    patterns = [
        f"[Aa]nswer (?:is|would be):?{_JS_S}*\\(?([{letters}])\\)?(?!{_JS_W})",
        f"\\A{_JS_S}*\\(?([{letters}])\\)?{_JS_S}*(?:[.:)]|\\Z)",
        f"\\A{_JS_S}*[Oo]ption{_JS_S}+\\(?([{letters}])\\)?(?!{_JS_W})",
    ]
    for pattern in patterns:
        m = re.search(pattern, response)
        if m and m.group(1) in options:
            return m.group(1)
    return None


class RuleVerifier(Verifier):
    name = "rule"

    def __init__(self, aliases: Sequence[Sequence[str]] = ()) -> None:
        """Each alias group lists names that count as the same answer, e.g. ["MI", "myocardial infarction"]."""
        self.aliases = [list(g) for g in aliases]

    def verify(self, input: VerifyInput) -> Verdict:
        options = input.options
        accepted = self._accepted_answers(input.reference, options)
        answer = js_trim(input.response)
        if not answer:
            return Verdict(False, 0, "empty response")
        if options is not None:
            letter = _chosen_letter(answer, options)
            if letter:
                ok = normalize_answer(options[letter]) in accepted
                return Verdict(ok, 1 if ok else 0, f"chose option {letter} ({options[letter]}){'' if ok else ', not the reference'}")
        resp = normalize_answer(answer)
        if resp in accepted:
            return Verdict(True, 1, "exact match after normalisation")
        found = next((a for a in accepted if a and f" {a} " in f" {resp} "), None)
        if found is not None:
            others = [] if options is None else [
                o for o in (normalize_answer(options[k]) for k in js_keys(options)) if o not in accepted and f" {o} " in f" {resp} "]
            if not others:
                return Verdict(True, 1, f'the response contains "{found}"')
            return Verdict(False, 0, f"the response names the reference and other options too ({', '.join(others)})")
        return Verdict(False, 0, "no match with the reference or its aliases")

    def _accepted_answers(self, reference: str, options: Optional[Mapping[str, str]]) -> dict[str, None]:
        ref = js_trim(reference)
        # A reference given as an option letter stands for that option's text.
        m = re.fullmatch(r"\(?([A-Za-z])[).:]?", ref)
        letter = (m.group(1) if m else ref).upper()
        if options is not None and _utf16_len(letter) == 1 and letter in options:
            ref = options[letter]
        accepted: dict[str, None] = {normalize_answer(ref): None}  # an ordered set
        for group in self.aliases:
            norm = [normalize_answer(n) for n in group]
            if any(n in accepted for n in norm):
                for n in norm:
                    accepted.setdefault(n)
        return accepted


# ---------------------------------------------------------------- OpenAI-compatible chat API

class ChatError(Exception):
    def __init__(self, message: str, status: Optional[int] = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after: Optional[float] = None


class ChatApi:
    """POSTs chat completions to `base_url`/chat/completions (urllib), retrying 408, 429, 5xx, timeouts and network errors."""

    def __init__(self, base_url: str, model: str, api_key: Optional[str] = None, api_key_env: Optional[str] = None,
                 timeout: float = 120.0, max_retries: int = 6, concurrency: int = 8,
                 initial_backoff: float = 1.0, max_backoff: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key or (os.environ.get(api_key_env) or None if api_key_env else None)
        self.missing_key_env = api_key_env if api_key_env and not self.api_key else None
        self.timeout = timeout
        self.max_retries = max_retries
        self.concurrency = max(1, concurrency)
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff

    def request_body(self, content: str, max_tokens: int, top_logprobs: Optional[int] = None) -> str:
        """The JSON body, byte for byte what data/chat-client.ts sends for one user message at temperature 0."""
        body: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": content}],
                                "max_tokens": max_tokens, "temperature": 0}
        if top_logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = top_logprobs
        return js_json(body)

    def chat(self, content: str, max_tokens: int, top_logprobs: Optional[int] = None) -> dict[str, Any]:
        """choices[0] of the reply (its message.content a string), retried as configured."""
        data = self.request_body(content, max_tokens, top_logprobs).encode("utf-8")
        for attempt in range(self.max_retries + 1):
            try:
                return self._once(data)
            except ChatError as e:
                if not e.retryable or attempt >= self.max_retries:
                    raise
                cap = min(self.max_backoff, self.initial_backoff * 2**attempt)
                time.sleep(min(e.retry_after, self.max_backoff) if e.retry_after is not None else random.uniform(cap / 2, cap))
        raise AssertionError("unreachable")

    def _once(self, data: bytes) -> dict[str, Any]:
        headers = {"content-type": "application/json"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(f"{self.base_url}/chat/completions", data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                raw = res.read().decode("utf-8", "replace")
                status = res.status
        except urllib.error.HTTPError as e:
            raw = e.read().decode("utf-8", "replace")
            err = ChatError(f"{self.base_url}: HTTP {e.code}: {raw[:300]}{self._hint(e.code)}", e.code,
                            e.code in (408, 429) or e.code >= 500)
            retry_after = e.headers.get("retry-after") if e.headers else None
            if retry_after and re.fullmatch(r"\d+(\.\d+)?", retry_after.strip()):
                err.retry_after = float(retry_after)
            raise err from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            raise ChatError(f"{self.base_url}: network error: {e}", None, True) from None
        try:
            choice = json.loads(raw)["choices"][0]
            if not isinstance(choice["message"]["content"], str):
                raise TypeError
        except (ValueError, KeyError, IndexError, TypeError):
            raise ChatError(f"{self.base_url}: the reply has no choices[0].message.content: {raw[:200]}", status, True) from None
        return choice

    def _hint(self, status: int) -> str:
        if status in (401, 403):
            if self.missing_key_env:
                return f" (no API key was sent: environment variable {self.missing_key_env} is not set)"
            return " (check the API key: api_key_env in the pipeline names the variable holding it)"
        if status == 404:
            return " (check base_url: it should end before /chat/completions, e.g. .../v1, and the model name)"
        return ""


def _concurrently(api: ChatApi, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    if len(items) <= 1 or api.concurrency == 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(api.concurrency, len(items))) as pool:
        return list(pool.map(fn, items))


_TRUE_FALSE = re.compile(r"\b(true|false)\b", re.IGNORECASE | re.ASCII)


class LlmJudgeVerifier(Verifier):
    name = "llm"

    def __init__(self, api: ChatApi) -> None:
        self.api = api

    def verify(self, input: VerifyInput) -> Verdict:
        text = self.api.chat(judge_prompt(input), max_tokens=16)["message"]["content"]
        return judge_verdict(text, self.api.model)

    def verify_many(self, inputs: Sequence[VerifyInput]) -> list[Verdict]:
        return _concurrently(self.api, self.verify, inputs)


def judge_verdict(reply: str, model: str) -> Verdict:
    """The verdict of a judge's reply: its first word "true" or "false" (any case) decides."""
    m = _TRUE_FALSE.search(reply)
    if not m:
        return Verdict(False, 0, f"the judge replied neither True nor False: {js_json(_js_slice(reply, 80))}")
    correct = m.group(1).lower() == "true"
    return Verdict(correct, 1 if correct else 0, f"judge {model} said {m.group(1)}")


# ---------------------------------------------------------------- model verifier

def threshold_verdict(p: float, threshold: float) -> Verdict:
    """Correct when P(True) is strictly above the threshold, as HuatuoGPT-o1's reward decides (P = 0.4 is wrong)."""
    correct = p > threshold
    return Verdict(correct, p, f"P(True) = {js_to_fixed(p, 3)} {'>' if correct else '<='} threshold {js_number(threshold)}")


PromptScorer = Callable[[Sequence[str]], list[float]]
"""P(True) of each judge prompt."""


class ModelVerifier(Verifier):
    """P(True) of the judge prompt (a causal LM, or a server's logprobs) against the threshold."""

    name = "model"

    def __init__(self, scorer: PromptScorer, threshold: float = HUATUO_VERIFIER_THRESHOLD,
                 on_close: Optional[Callable[[], None]] = None) -> None:
        self.scorer = scorer
        self.threshold = threshold
        self._on_close = on_close

    def verify_many(self, inputs: Sequence[VerifyInput]) -> list[Verdict]:
        return [threshold_verdict(p, self.threshold) for p in self.scorer([judge_prompt(i) for i in inputs])]

    def close(self) -> None:
        if self._on_close:
            self._on_close()


def logprob_scorer(api: ChatApi, top_logprobs: int = 20) -> PromptScorer:
    """P(True) from a server's log-probabilities of "True" and "False" as the first token."""

    def one(prompt: str) -> float:
        choice = api.chat(prompt, max_tokens=1, top_logprobs=top_logprobs)
        content = (choice.get("logprobs") or {}).get("content") or []
        if not content:
            raise ChatError(f'{api.base_url}: the reply has no logprobs; the server must support "logprobs": true with "top_logprobs"')
        first = content[0]
        p_true = p_false = 0.0
        for t in [first, *(first.get("top_logprobs") or [])]:
            word = js_trim(t["token"]).lower()
            if word == "true":
                p_true = max(p_true, math.exp(t["logprob"]))
            if word == "false":
                p_false = max(p_false, math.exp(t["logprob"]))
        return 0.0 if p_true + p_false == 0 else p_true / (p_true + p_false)

    return lambda prompts: _concurrently(api, one, prompts)


@dataclass(frozen=True)
class AnswerTokens:
    true: list[int]
    false: list[int]


def answer_token_ids(tokenizer: Any, source: str) -> AnswerTokens:
    """The first token of "True"/" True" and of "False"/" False"; a token starting both is left out."""

    def first(words: list[str]) -> dict[int, None]:
        ids = (tokenizer.encode(w, add_special_tokens=False) for w in words)
        return {i[0]: None for i in ids if i}

    t, f = first(["True", " True"]), first(["False", " False"])
    shared = [i for i in t if i in f]
    for i in shared:
        del t[i], f[i]
    if not t or not f:
        raise ValueError(f'{source}: the tokenizer starts "True" and "False" with the same token, so a verifier cannot tell them apart from the next token')
    return AnswerTokens(list(t), list(f))


def p_true_from_logits(logits: Sequence[float], ids: AnswerTokens) -> float:
    """P(True) from one row of next-token logits (the softmax's normaliser cancels in the ratio)."""
    top = max(logits[i] for i in [*ids.true, *ids.false])
    t = sum(math.exp(logits[i] - top) for i in ids.true)
    f = sum(math.exp(logits[i] - top) for i in ids.false)
    return t / (t + f)


class CausalLmScorer:
    """A causal LM folder judging the judge prompt: the chat template with the generation prompt, cut from the
    left to the context, one left-padded forward pass per max_batch prompts (data/verifier-engine.ts EngineScorer)."""

    def __init__(self, model_dir: str, max_batch: int = 32) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.dir = model_dir
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.answer_ids = answer_token_ids(self.tokenizer, model_dir)
        vocab = self.model.config.vocab_size
        outside = next((i for i in [*self.answer_ids.true, *self.answer_ids.false] if i >= vocab), None)
        if outside is not None:
            raise ValueError(f"{model_dir}: the tokenizer's answer token {outside} is outside the model's vocabulary ({vocab}): tokenizer and config.json do not match")
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        self.pad = pad if pad is not None else 0
        self.max_batch = max(1, max_batch)

    def prompt_ids(self, prompt: str) -> list[int]:
        text = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        ids: list[int] = self.tokenizer.encode(text, add_special_tokens=False)
        room = self.model.config.max_position_embeddings
        return ids[len(ids) - room:] if len(ids) > room else ids

    def __call__(self, prompts: Sequence[str]) -> list[float]:
        import torch

        out: list[float] = []
        for start in range(0, len(prompts), self.max_batch):
            rows = [self.prompt_ids(p) for p in prompts[start:start + self.max_batch]]
            width = max(len(r) for r in rows)
            ids = torch.tensor([[self.pad] * (width - len(r)) + r for r in rows])
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
            positions = (mask.cumsum(-1) - 1).clamp(min=0)  # counted from the first real token, as the engine does
            with torch.no_grad():
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1, :]
            out += [p_true_from_logits(row, self.answer_ids) for row in logits.double().tolist()]
        return out


VERIFIER_MAX_LENGTH = 4000
"""The reward truncates the verifier's input to this many tokens (keeping the first), as HuatuoGPT-o1's."""


class ClassifierScorer:
    """A two-label sequence classifier folder (HuatuoGPT-o1's medical_o1_verifier_3B): the recipe's verifier input
    ending with the tokenizer's EOS token, encoded without added special tokens and cut to max_length tokens;
    P(True) is the softmax at label 1 (data/verifier-engine.ts ClassifierScorer)."""

    def __init__(self, model_dir: str, max_batch: int = 8, max_length: int = VERIFIER_MAX_LENGTH) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.dir = model_dir
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
        config = self.model.config
        if config.num_labels != 2:
            raise ValueError(f"{model_dir}: the verifier classifier has {config.num_labels} labels; P(True) is read as label 1 of two (config.json num_labels / id2label)")
        if self.tokenizer.eos_token is None:
            raise ValueError(f"{model_dir}: the verifier's tokenizer has no eos_token (tokenizer_config.json), which ends every verifier input")
        if len(self.tokenizer) > config.vocab_size:
            raise ValueError(f"{model_dir}: the tokenizer has {len(self.tokenizer)} tokens but config.json's vocab_size is {config.vocab_size}: tokenizer and model do not match")
        self.eos_token: str = self.tokenizer.eos_token
        pad = config.pad_token_id if config.pad_token_id is not None else self.tokenizer.pad_token_id
        self.pad = pad if pad is not None else self.tokenizer.eos_token_id
        self.max_batch = max(1, max_batch)
        self.max_length = max(1, max_length)

    def input_text(self, response: Optional[str], reference: str) -> str:
        return huatuo_verifier_input(response, reference, self.eos_token)

    def input_ids(self, text: str) -> list[int]:
        ids: list[int] = self.tokenizer.encode(text, add_special_tokens=False)
        return ids[: self.max_length]

    def __call__(self, texts: Sequence[str]) -> list[float]:
        import torch

        out: list[float] = []
        for start in range(0, len(texts), self.max_batch):
            rows = [self.input_ids(t) for t in texts[start:start + self.max_batch]]
            width = max(len(r) for r in rows)
            # Right padding: the model pools at the last non-pad token, as it does for one input alone.
            ids = torch.tensor([r + [self.pad] * (width - len(r)) for r in rows])
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
            with torch.no_grad():
                logits = self.model(input_ids=ids, attention_mask=mask).logits
            out += [float(p) for p in torch.softmax(logits.double(), dim=-1)[:, 1].tolist()]
        return out


class ClassifierVerifier(Verifier):
    """The classifier reads the recipe's verifier input (response and reference only), not the judge prompt."""

    name = "model"

    def __init__(self, scorer: ClassifierScorer, threshold: float = HUATUO_VERIFIER_THRESHOLD) -> None:
        self.scorer = scorer
        self.threshold = threshold

    def verify_many(self, inputs: Sequence[VerifyInput]) -> list[Verdict]:
        ps = self.scorer([self.scorer.input_text(i.response, i.reference) for i in inputs])
        return [threshold_verdict(p, self.threshold) for p in ps]


# ---------------------------------------------------------------- factory

def _api(config: Mapping[str, Any], model: str) -> ChatApi:
    timeout = config.get("timeout")
    return ChatApi(config["base_url"], model, api_key_env=config.get("api_key_env"),
                   timeout=float(timeout) if timeout is not None else 120.0,
                   max_retries=config.get("max_retries", 6), concurrency=config.get("concurrency", 8))


def is_sequence_classifier(model_dir: str) -> bool:
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        architectures = json.load(f).get("architectures")
    return isinstance(architectures, list) and any(isinstance(a, str) and a.endswith("ForSequenceClassification") for a in architectures)


def make_verifier(config: Mapping[str, Any]) -> Verifier:
    """A verifier from the pipeline's verifier params (dsl/kinds/common.ts Verifier), as makeVerifier builds it."""
    kind = config.get("type")
    if kind == "rule":
        aliases = config.get("aliases") or {}
        return RuleVerifier([[answer, *aliases[answer]] for answer in js_keys(aliases)])
    if kind == "llm":
        return LlmJudgeVerifier(_api(config, config["model"]))
    if kind == "model":
        threshold = float(config.get("threshold", HUATUO_VERIFIER_THRESHOLD))
        model_dir = config.get("model")
        if model_dir is not None and config.get("base_url") is not None:
            raise ValueError("verifier: give model (a checkpoint folder, scored in-process) or base_url (a server with logprobs), not both")
        if config.get("base_url") is not None:
            return ModelVerifier(logprob_scorer(_api(config, config.get("served_model", "default"))), threshold)
        if model_dir is None:
            raise ValueError("verifier: give model (a checkpoint folder, scored in-process) or base_url (a server with logprobs)")
        if not os.path.exists(os.path.join(model_dir, "config.json")):
            raise ValueError(f"verifier.model: {model_dir} is not a checkpoint folder (no config.json): give a model folder the engine can load, or serve the verifier and set verifier.base_url with served_model")
        if is_sequence_classifier(model_dir):
            return ClassifierVerifier(ClassifierScorer(model_dir), threshold)
        return ModelVerifier(CausalLmScorer(model_dir), threshold)
    raise ValueError(f"verifier.type: {kind!r} is not one of rule, llm, model")
