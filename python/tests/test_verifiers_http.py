"""The judge client over HTTP: retries as data/chat-client.ts does (408, 429, 5xx; Retry-After wins), fails at once
on other statuses with the server's message, and sends the API key. A scripted server on 127.0.0.1 (real HTTP)
plays the judge, which cannot be reached from a test machine."""
from __future__ import annotations

import json
import os
import unittest

from tests.http_stub import Response, StubServer
from doctor_agent_trl.verifiers import ChatApi, ChatError, LlmJudgeVerifier, VerifyInput, make_verifier


class Server(StubServer):
    """Answers POSTs from a script of (status, headers, body), in order."""

    def __init__(self, script: list[Response]) -> None:
        self.script = list(script)
        super().__init__(lambda _path, _body: self.script.pop(0), path="/v1/")


def reply(text: str) -> tuple[int, dict[str, str], str]:
    return 200, {"content-type": "application/json"}, json.dumps({"choices": [{"message": {"content": text}}]})


INPUT = VerifyInput(response="Parvovirus B19", reference="Parvovirus B19 infection")


class JudgeHttp(unittest.TestCase):
    def test_retries_then_answers(self) -> None:
        server = Server([(503, {}, "busy"), (429, {"retry-after": "0"}, "slow down"), (200, {}, "not json"), reply("True")])
        try:
            v = LlmJudgeVerifier(ChatApi(server.url, "judge", max_retries=3, initial_backoff=0.01))
            d = v.verify(INPUT)
            self.assertEqual((d.correct, d.score, d.reason), (True, 1, "judge judge said True"))
            self.assertEqual(len(server.headers), 4)
        finally:
            server.close()

    def test_gives_up_after_max_retries(self) -> None:
        server = Server([(500, {}, "down")] * 3)
        try:
            with self.assertRaises(ChatError) as e:
                LlmJudgeVerifier(ChatApi(server.url, "judge", max_retries=2, initial_backoff=0.01)).verify(INPUT)
            self.assertEqual(e.exception.status, 500)
            self.assertEqual(len(server.headers), 3)
        finally:
            server.close()

    def test_client_error_fails_at_once_naming_the_missing_key(self) -> None:
        os.environ.pop("DOCTOR_AGENT_TEST_NO_KEY", None)
        server = Server([(401, {}, '{"error": "no key"}')])
        try:
            v = make_verifier({"type": "llm", "base_url": server.url, "model": "judge", "api_key_env": "DOCTOR_AGENT_TEST_NO_KEY"})
            with self.assertRaises(ChatError) as e:
                v.verify(INPUT)
            self.assertIn("HTTP 401", str(e.exception))
            self.assertIn("environment variable DOCTOR_AGENT_TEST_NO_KEY is not set", str(e.exception))
            self.assertEqual(len(server.headers), 1, "a 401 is not retried")
            self.assertNotIn("authorization", server.headers[0])
        finally:
            server.close()

    def test_sends_the_key_and_judges_many_concurrently(self) -> None:
        os.environ["DOCTOR_AGENT_TEST_KEY"] = "sk-test"
        server = Server([reply("False"), reply("False"), reply("False")])
        try:
            v = make_verifier({"type": "llm", "base_url": server.url, "model": "judge", "api_key_env": "DOCTOR_AGENT_TEST_KEY", "concurrency": 2})
            verdicts = v.verify_many([INPUT] * 3)
            self.assertEqual([d.correct for d in verdicts], [False] * 3)
            self.assertEqual({h["authorization"] for h in server.headers}, {"Bearer sk-test"})
        finally:
            os.environ.pop("DOCTOR_AGENT_TEST_KEY", None)
            server.close()

    def test_model_verifier_config_errors(self) -> None:
        with self.assertRaisesRegex(ValueError, "not both"):
            make_verifier({"type": "model", "model": "ckpt", "base_url": "http://127.0.0.1:1/v1"})
        with self.assertRaisesRegex(ValueError, r"give model .* or base_url"):
            make_verifier({"type": "model"})
        with self.assertRaisesRegex(ValueError, r"verifier\.model: no/such/ckpt is not a checkpoint folder \(no config\.json\)"):
            make_verifier({"type": "model", "model": "no/such/ckpt"})


if __name__ == "__main__":
    unittest.main()
