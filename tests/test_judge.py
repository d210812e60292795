"""Pairwise judging: question files, the both-orders verdict rule, local and URL judges, the command."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest

from activeit import judge as J
from activeit.config import Config
from activeit.errors import ConfigError, RunStateError, TaskFormatError


def _write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


QUESTIONS = [
    {"id": "greet", "instruction": "Write a greeting."},
    {"id": "sum", "instruction": "Add the numbers.", "input": "1 2 3"},
    {"id": "sent", "instruction": "Classify the sentiment.", "input": "The movie was great."},
    {"id": "rev", "instruction": "Reverse the word.", "input": "fox"},
    {"id": "cap", "instruction": "What is the capital of France?"},
]


# --------------------------------------------------------------------------- questions


def test_read_questions_forms(tmp_path):
    path = _write(tmp_path / "qs.jsonl", [
        {"id": "a", "instruction": " Do it. ", "input": " x "},
        {"instruction": "Self-Instruct form", "instances": [{"input": "inp", "output": "out"}]},
        {"id": 7, "instruction": "No input"},
    ])
    qs = J.read_questions(path)
    assert qs == [J.Question("a", "Do it.", "x"), J.Question("qs-1", "Self-Instruct form", "inp"),
                  J.Question("7", "No input", "")]
    listed = tmp_path / "qs.json"
    listed.write_text(json.dumps([{"instruction": "one"}]), encoding="utf-8")
    assert J.read_questions(listed) == [J.Question("qs-0", "one", "")]


@pytest.mark.parametrize("rows, message", [
    ([{"input": "x"}], "record 1: missing or empty 'instruction'"),
    ([{"instruction": "  "}], "missing or empty 'instruction'"),
    ([{"instruction": "a", "input": 3}], "'input' must be a string"),
    ([{"id": "x", "instruction": "a"}, {"id": "x", "instruction": "b"}], "record 2: duplicate id 'x'"),
    ([], "no questions"),
    (["text"], "must be an object"),
])
def test_read_questions_errors(tmp_path, rows, message):
    with pytest.raises(TaskFormatError, match=message):
        J.read_questions(_write(tmp_path / "q.jsonl", rows))


def test_read_questions_missing_file(tmp_path):
    with pytest.raises(TaskFormatError):
        J.read_questions(tmp_path / "absent.jsonl")


# --------------------------------------------------------------------------- verdict rule


@pytest.mark.parametrize("a_first, b_first, verdict", [
    ("1", "2", "a"), ("2", "1", "b"),
    ("1", "1", "tie"), ("2", "2", "tie"),  # position bias: the judge always picks the same slot
    ("tie", "2", "tie"), ("1", "tie", "tie"), ("tie", "tie", "tie"),
    (None, "2", "invalid"), ("1", None, "invalid"),
])
def test_combine(a_first, b_first, verdict):
    assert J.combine(a_first, b_first) == verdict


def test_position_free_margin_cancels_a_slot_bias():
    # a judge with bias c = 2 towards slot 1 and a true preference m = 0.5 for A
    a_first = {"logprob_1": -1.0, "logprob_2": -3.5}  # m + c = 2.5
    b_first = {"logprob_1": -1.0, "logprob_2": -2.5}  # -m + c = 1.5
    assert J.position_free_margin(a_first, b_first) == pytest.approx(0.5)
    assert J.position_free_margin(b_first, a_first) == pytest.approx(-0.5)


def test_summarize_counts_for_a():
    rows = [{"verdict": v} for v in ["a", "a", "b", "tie", "invalid"]]
    s = J.summarize(rows)
    assert (s["wins"], s["ties"], s["losses"], s["invalid"], s["n"]) == (2, 1, 1, 1, 5)
    assert s["win_rate"] == pytest.approx(0.5)
    assert s["win_rate_ties_half"] == pytest.approx(0.625)
    assert J.summarize([{"verdict": "invalid"}])["win_rate"] is None


@pytest.mark.parametrize("text, choice", [
    ("Response 1 is clearer.\n[[1]]", "1"), ("[[1]] at first, but on reflection [[ 2 ]]", "2"),
    ("Both fine. [[TIE]]", "tie"), ("I prefer the first.", None), ("[[3]]", None),
])
def test_parse_choice(text, choice):
    assert J.parse_choice(text) == choice


class _ByLength:
    """A test judge that prefers the longer response, or always slot 1 with `biased`."""

    def __init__(self, biased: bool = False):
        self.biased = biased
        self.calls: list[J.Pair] = []

    def choose(self, pairs):
        self.calls += pairs
        if self.biased:
            return [{"choice": "1"} for _ in pairs]
        return [{"choice": "1" if len(p.first) > len(p.second) else "2" if len(p.second) > len(p.first) else "tie"}
                for p in pairs]


def test_judge_pairs_asks_both_orders_and_skips_identical_answers():
    qs = [J.Question(str(i), f"q{i}") for i in range(4)]
    judge = _ByLength()
    rows = J.judge_pairs(lambda: judge, qs, ["long answer", "x", "same", "eq1"], ["short", "longer", " same ", "eq2"])
    assert [r["verdict"] for r in rows] == ["a", "b", "tie", "tie"]
    assert rows[2]["identical"] and rows[2]["a_first"] is None
    assert [(p.first, p.second) for p in judge.calls] == [
        ("long answer", "short"), ("short", "long answer"), ("x", "longer"), ("longer", "x"),
        ("eq1", "eq2"), ("eq2", "eq1")]
    biased = J.judge_pairs(lambda: _ByLength(biased=True), qs[:2], ["long answer", "x"], ["short", "longer"])
    assert [r["verdict"] for r in biased] == ["tie", "tie"]
    with pytest.raises(ValueError, match="4 questions but 2"):
        J.judge_pairs(lambda: judge, qs, ["a", "b"], ["c", "d"])


class _SlotBiased:
    """A local-style judge with a strong preference for slot 1 plus a small one for the longer answer."""

    rule = "calibrated"

    def choose(self, pairs):
        rows = []
        for p in pairs:
            lean = 0.5 if len(p.first) > len(p.second) else -0.5 if len(p.second) > len(p.first) else 0.0
            lp1, lp2 = -1.0 + lean, -4.0  # log-odds 3 + lean: "1" whatever the order
            rows.append({"choice": "1", "logprob_1": lp1, "logprob_2": lp2})
        return rows


def test_calibrated_rule_cancels_the_slot_bias():
    """Hand-computed: A longer → log-odds 3.5 (A first) and 2.5 (B first): margin (3.5 − 2.5)/2 = 0.5 > 0."""
    qs = [J.Question(str(i), f"q{i}") for i in range(3)]
    judge = _SlotBiased()
    rows = J.judge_pairs(lambda: judge, qs, ["long answer", "x", "ab"], ["short", "longer", "cd"])
    assert [r["margin"] for r in rows] == [0.5, -0.5, 0.0]
    assert [r["verdict"] for r in rows] == ["a", "b", "tie"]
    judge.rule = "both_orders"
    assert [r["verdict"] for r in J.judge_pairs(lambda: judge, qs, ["long answer", "x", "ab"],
                                                ["short", "longer", "cd"])] == ["tie", "tie", "tie"]
    assert (J.calibrated(0.1), J.calibrated(-2.0), J.calibrated(0.0)) == ("a", "b", "tie")


def test_calibrated_rule_needs_a_local_judge(tmp_path):
    from activeit.config import load_config
    from activeit.errors import ConfigError

    with pytest.raises(ConfigError, match="needs a local judge"):
        J.LazyJudge("http://127.0.0.1:9/v1/chat/completions", load_config(None), rule="calibrated")
    assert "rule" not in J.LazyJudge("smollm2-135m", load_config(None)).inputs()
    assert J.LazyJudge("smollm2-135m", load_config(None), rule="calibrated").inputs()["rule"] == "calibrated"


def test_judge_is_not_loaded_when_all_answers_match():
    def never():
        raise AssertionError("judge loaded")

    rows = J.judge_pairs(never, [J.Question("1", "q")], ["same"], ["same"])
    assert rows[0]["verdict"] == "tie"


# --------------------------------------------------------------------------- local judge


def _naive_option_logprob(lm, prompt: str, option: list[int]) -> float:
    import torch

    ids = lm.tokenizer(prompt)["input_ids"] + option
    with torch.no_grad():
        logits = lm.model(torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    start = len(ids) - len(option)
    return float(sum(logp[start - 1 + j, t] for j, t in enumerate(option)))


def _check_local_judge_against_naive(judge: J.LocalJudge, pairs: list[J.Pair]) -> None:
    got = judge.choose(pairs)
    for pair, row in zip(pairs, got):
        prompt = judge.prompt(pair)
        lp1, lp2 = (_naive_option_logprob(judge.lm, prompt, o) for o in judge.options)
        assert row["logprob_1"] == pytest.approx(lp1, abs=1e-3)
        assert row["logprob_2"] == pytest.approx(lp2, abs=1e-3)
        if abs(lp1 - lp2) > 1e-3:
            assert row["choice"] == ("1" if lp1 > lp2 else "2")


def test_local_judge_matches_a_plain_forward_pass(tiny_causal_dir):
    cfg = Config.model_validate({"model": {"dtype": "float32"}})
    judge = J.LocalJudge(str(tiny_causal_dir), cfg)
    assert not judge.chat
    pairs = [J.Pair(J.Question("1", "Reverse the word.", "fox"), "xof", "fox fox"),
             J.Pair(J.Question("2", "Classify the sentiment."), "positive", "")]
    assert "Response 2\n(empty)" in judge.prompt(pairs[1])
    _check_local_judge_against_naive(judge, pairs + [J.Pair(p.question, p.second, p.first) for p in pairs])


@pytest.mark.slow
def test_smollm2_judge_matches_a_plain_forward_pass(smollm2, monkeypatch):
    monkeypatch.setattr("activeit.judge.load_trained", lambda spec, cfg: smollm2)
    judge = J.LocalJudge("smollm2-135m", Config())
    assert judge.chat and judge.options == [[33], [34]]
    q = J.Question("1", "What is the capital of France?")
    _check_local_judge_against_naive(judge, [J.Pair(q, "Paris.", "Berlin."), J.Pair(q, "Berlin.", "Paris.")])


# --------------------------------------------------------------------------- URL judge


class _Server:
    """A local OpenAI-style endpoint replaying scripted (status, reply text) answers."""

    def __init__(self, script):
        self.script = list(script)
        self.requests: list[tuple[dict, dict]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append((dict(self.headers), body))
                status, text = owner.script.pop(0) if owner.script else (200, "[[tie]]")
                payload = json.dumps({"choices": [{"message": {"content": text}}]} if status == 200 else {"error": text})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def server():
    servers = []

    def make(script):
        servers.append(_Server(script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_url_judge_request_and_parsing(server, monkeypatch):
    monkeypatch.setattr(J.time, "sleep", lambda s: None)
    srv = server([(503, "busy"), (200, "The first.\n[[1]]"), (200, "no verdict here")])
    monkeypatch.setenv("ACTIVEIT_JUDGE_API_KEY", "secret")
    judge = J.make_judge(srv.url, Config(), url_model="judge-x")
    assert isinstance(judge, J.UrlJudge) and judge.url == srv.url + "/v1/chat/completions"
    q = J.Question("1", "Reverse the word.", "fox")
    rows = judge.choose([J.Pair(q, "xof", "fox"), J.Pair(q, "fox", "xof")])
    assert [r["choice"] for r in rows] == ["1", None]
    assert len(srv.requests) == 3  # the 503 was retried
    headers, body = srv.requests[1]
    assert headers["Authorization"] == "Bearer secret"
    assert body["model"] == "judge-x" and body["temperature"] == 0
    user = body["messages"][-1]["content"]
    assert "### Input\nfox" in user and user.index("### Response 1\nxof") < user.index("### Response 2\nfox")


def test_url_judge_errors(server, monkeypatch):
    monkeypatch.setattr(J.time, "sleep", lambda s: None)
    srv = server([(400, "bad model")])
    with pytest.raises(ConfigError, match="HTTP 400"):
        J.UrlJudge(srv.url + "/v1", "m").choose([J.Pair(J.Question("1", "q"), "a", "b")])
    with pytest.raises(ConfigError, match="cannot reach"):
        J.UrlJudge("http://127.0.0.1:9", "m", retries=0).choose([J.Pair(J.Question("1", "q"), "a", "b")])


# --------------------------------------------------------------------------- resolving sides


def _fake_run(root: Path, strategies: list[str], trained: list[str]) -> None:
    from activeit.pipeline import Manifest

    cfg = Config.model_validate({"rounds": {"count": 3}, "experiment": {"strategies": strategies, "seeds": [1]}})
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(cfg.to_yaml(), encoding="utf-8")
    manifest = Manifest(root)
    for key in trained:
        (root / key.rsplit("/", 1)[0] / "adapter").mkdir(parents=True, exist_ok=True)
        manifest.finish(key, "h", {}, [], 0.0)


def test_resolve_side(tmp_path):
    cfg = Config()
    assert J.resolve_side("smollm2-135m", cfg) == J.Side("smollm2-135m", "smollm2-135m", cfg)
    one = tmp_path / "one"
    _fake_run(one, ["random"], ["round_0/train", "round_1/train"])
    side = J.resolve_side(str(one), cfg)
    assert side.model == str(one / "round_1") and side.cfg.rounds.count == 3
    two = tmp_path / "two"
    _fake_run(two, ["random", "high_prompt_uncertainty"],
              ["seed_1/round_0/train", "seed_1/random/round_1/train", "seed_1/high_prompt_uncertainty/round_1/train",
               "seed_1/high_prompt_uncertainty/round_2/train"])
    with pytest.raises(RunStateError, match="2 trained strategies/seeds.*random/round_1.*high_prompt_uncertainty/round_2"):
        J.resolve_side(str(two), cfg)
    track = J.resolve_side(str(two / "seed_1" / "high_prompt_uncertainty"), cfg)
    assert track.model == str(two / "seed_1" / "high_prompt_uncertainty" / "round_2") and track.cfg.rounds.count == 3
    assert J.resolve_side(str(two / "seed_1" / "round_0"), cfg).model == str(two / "seed_1" / "round_0")
    with pytest.raises(RunStateError, match="no trained model here"):
        J.resolve_side(str(tmp_path), cfg)
    empty = tmp_path / "empty"
    _fake_run(empty, ["random"], [])
    (empty / "round_0").mkdir()  # killed while training round 0: no manifest yet
    with pytest.raises(RunStateError, match="no round of this run"):
        J.resolve_side(str(empty), cfg)


# --------------------------------------------------------------------------- the command


def _cfg() -> Config:
    return Config.model_validate({"model": {"dtype": "float32"}, "evaluation": {"max_new_tokens": 6},
                                  "prompt": {"stop_strings": []}})


def test_run_judge_end_to_end_symmetry_and_resume(tmp_path, tiny_causal_dir, other_causal_dir, monkeypatch):
    qpath = _write(tmp_path / "q.jsonl", QUESTIONS)
    a, b = str(tiny_causal_dir), str(other_causal_dir)
    ab = J.run_judge(a, b, qpath, tmp_path / "ab", judge=a, cfg=_cfg(), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "ab" / "verdicts.jsonl").read_text().splitlines()]
    answers_a = [json.loads(line) for line in (tmp_path / "ab" / "answers_a.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [q["id"] for q in QUESTIONS] == [r["id"] for r in answers_a]
    assert [r["answer_a"] for r in rows] == [r["answer"] for r in answers_a]
    assert any(not r["identical"] for r in rows)
    assert ab["wins"] + ab["ties"] + ab["losses"] + ab["invalid"] == ab["n"] == len(QUESTIONS)
    assert ab == json.loads((tmp_path / "ab" / "summary.json").read_text())
    for r in rows:
        if not r["identical"]:
            assert r["verdict"] == J.combine(r["a_first"]["choice"], r["b_first"]["choice"])
            assert r["margin"] == pytest.approx(J.position_free_margin(r["a_first"], r["b_first"]))

    ba = J.run_judge(b, a, qpath, tmp_path / "ba", judge=a, cfg=_cfg(), progress=False)
    assert (ba["wins"], ba["ties"], ba["losses"]) == (ab["losses"], ab["ties"], ab["wins"])

    monkeypatch.setattr("activeit.judge.load_trained", lambda *args: pytest.fail("a finished step ran again"))
    assert J.run_judge(a, b, qpath, tmp_path / "ab", judge=a, cfg=_cfg(), progress=False) == ab


def test_run_judge_resumes_an_interrupted_judging(tmp_path, tiny_causal_dir, other_causal_dir, monkeypatch):
    qpath = _write(tmp_path / "q.jsonl", QUESTIONS)
    a, b = str(tiny_causal_dir), str(other_causal_dir)
    monkeypatch.setattr(J, "CHUNK", 2)
    calls = []
    real = J.judge_pairs

    def crash_on_second_chunk(*args):
        calls.append(len(args[1]))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(J, "judge_pairs", crash_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        J.run_judge(a, b, qpath, tmp_path / "out", judge=a, cfg=_cfg(), progress=False)
    assert not (tmp_path / "out" / "summary.json").exists()
    assert len(list((tmp_path / "out").glob(".verdicts-*.partial.jsonl"))) == 1
    monkeypatch.setattr(J, "judge_pairs", real)
    resumed = J.run_judge(a, b, qpath, tmp_path / "out", judge=a, cfg=_cfg(), progress=False)
    straight = J.run_judge(a, b, qpath, tmp_path / "straight", judge=a, cfg=_cfg(), progress=False)
    assert {k: resumed[k] for k in ("wins", "ties", "losses", "n")} == {k: straight[k] for k in ("wins", "ties", "losses", "n")}
    assert (tmp_path / "out" / "verdicts.jsonl").read_text() == (tmp_path / "straight" / "verdicts.jsonl").read_text()
    assert not list((tmp_path / "out").glob(".verdicts-*"))


def test_same_model_on_both_sides_is_all_ties(tmp_path, tiny_causal_dir, monkeypatch):
    qpath = _write(tmp_path / "q.jsonl", QUESTIONS[:2])
    monkeypatch.setattr(J, "make_judge", lambda *a, **k: pytest.fail("judge loaded for identical answers"))
    s = J.run_judge(str(tiny_causal_dir), str(tiny_causal_dir), qpath, tmp_path / "o", judge="unused", cfg=_cfg(),
                    progress=False)
    assert (s["wins"], s["ties"], s["losses"]) == (0, 2, 0)
