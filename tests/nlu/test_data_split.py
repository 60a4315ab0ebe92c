"""Checks on the NLU data that need no training.

- The held-out set (tests/nlu/heldout.yml) and the blind sets
  (tests/nlu/blind.yml and blind2.yml, written without reading the training data) share
  no example text with the training data (nlu_data/), and every intent (and
  faq/* response key) that is trained on has examples in both, as does every
  intent in the domain.
- Examples written for weak spots (nlu_data/hard_cases*.yml, written after
  the held-out set) are not near copies of held-out ones: difflib's character
  ratio below MAX_SIMILARITY to every held-out text (`close_to_heldout` tells
  a writer how close one is).
- Every annotated `amount` parses with lending.amounts.parse_amount, every
  `id_number` is 18 characters, every `phone` 11 digits starting with 1.
- Every entity annotation starts and ends on a token boundary of jieba with
  the project's user dictionary, as Rasa's JiebaTokenizer cuts both in
  `rasa train` and in `rasa run`; otherwise DIET cannot learn the entity and
  Rasa warns "Misaligned entity".
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from pathlib import Path

import pytest
import yaml

from lending.amounts import parse_amount

ROOT = Path(__file__).resolve().parents[2]
TRAIN_DIR = ROOT / "nlu_data"
HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
BLIND = ROOT / "tests" / "nlu" / "blind.yml"
BLIND2 = ROOT / "tests" / "nlu" / "blind2.yml"
DOMAIN = ROOT / "bot" / "domain.yml"
JIEBA_DIR = TRAIN_DIR / "jieba"
HARD_CASES = sorted(TRAIN_DIR.glob("hard_cases*.yml"))
# Intents the integrator adds to the domain together with this data.
NEW_INTENTS = {"cancel", "complain"}
MAX_SIMILARITY = 0.7

pytestmark = pytest.mark.no_database  # files only


def _load(path: Path | list[Path]):
    """One file, a list of files, or every *.yml of a folder (not the jieba dictionary)."""
    from rasa.shared.nlu.training_data.loading import load_data

    files = path if isinstance(path, list) else sorted(path.glob("*.yml")) if path.is_dir() else [path]
    first, *rest = [load_data(str(f)) for f in files]
    return first.merge(*rest)


@pytest.fixture(scope="module")
def train():
    return _load(TRAIN_DIR)


@pytest.fixture(scope="module")
def heldout():
    return _load(HELDOUT)


@pytest.fixture(scope="module")
def blind():
    return _load(BLIND)


@pytest.fixture(scope="module")
def blind2():
    return _load(BLIND2)


def _key(message) -> str:
    return message.get("intent_response_key") or message.get("intent")


def _examples(data):
    return [m for m in data.intent_examples]


def _norm(text: str) -> str:
    return re.sub(r"[\s，。,.!！?？~、]+", "", text).lower()


@pytest.mark.parametrize("which", ["heldout", "blind", "blind2"])
def test_no_test_text_in_training(which, train, request):
    trained = {_norm(m.get("text")) for m in _examples(train)}
    leaked = [m.get("text") for m in _examples(request.getfixturevalue(which)) if _norm(m.get("text")) in trained]
    assert not leaked, f"{which} examples also in the training data: {leaked}"


def close_to_heldout(texts: list[str], heldout) -> list[tuple[str, float, str]]:
    """(text, similarity, held-out text) for each pair whose difflib ratio reaches
    MAX_SIMILARITY. Each held-out text is indexed once (difflib's second sequence) and
    the ratio's cheap upper bounds rule out most pairs before it is computed."""
    norms, found = [(t, _norm(t)) for t in texts], []
    matcher = SequenceMatcher(None)
    for m in _examples(heldout):
        matcher.set_seq2(_norm(m.get("text")))
        for text, norm in norms:
            matcher.set_seq1(norm)
            if matcher.real_quick_ratio() >= MAX_SIMILARITY and matcher.quick_ratio() >= MAX_SIMILARITY:
                if (ratio := matcher.ratio()) >= MAX_SIMILARITY:
                    found.append((text, ratio, m.get("text")))
    return found


def test_weak_spot_examples_are_not_close_to_heldout(heldout):
    close = close_to_heldout([m.get("text") for m in _examples(_load(HARD_CASES))], heldout)
    assert not close, close


def _written_examples(folder: Path) -> list[str]:
    """Every example as written in the files (Rasa drops exact repeats when it merges them)."""
    texts = []
    for path in sorted(folder.glob("*.yml")):
        for item in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            if "intent" in item:
                texts += [
                    re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line.strip()[2:])
                    for line in item["examples"].splitlines()
                    if line.strip().startswith("- ")
                ]
    return texts


def test_training_has_no_duplicates():
    texts = [_norm(t) for t in _written_examples(TRAIN_DIR)]
    assert len(texts) > 2000
    dups = sorted({t for t in texts if texts.count(t) > 1})
    assert not dups, f"duplicated training examples: {dups}"


@pytest.mark.parametrize("which", ["heldout", "blind", "blind2"])
def test_test_set_has_no_duplicates(which, request):
    texts = [_norm(m.get("text")) for m in _examples(request.getfixturevalue(which))]
    dups = sorted({t for t in texts if texts.count(t) > 1})
    assert not dups, f"duplicated {which} examples: {dups}"


@pytest.mark.parametrize("which", ["heldout", "blind", "blind2"])
def test_every_intent_has_test_examples(which, train, request):
    domain = yaml.safe_load(DOMAIN.read_text(encoding="utf-8"))
    domain_intents = {i if isinstance(i, str) else next(iter(i)) for i in domain["intents"]}
    tested = _examples(request.getfixturevalue(which))
    tested_keys = {_key(m) for m in tested}
    tested_intents = {m.get("intent") for m in tested}
    assert domain_intents <= tested_intents, f"no {which} examples for {domain_intents - tested_intents}"
    train_keys = {_key(m) for m in _examples(train)}
    assert train_keys <= tested_keys, f"no {which} examples for {train_keys - tested_keys}"
    assert tested_keys <= train_keys, f"{which} intents never trained: {tested_keys - train_keys}"
    assert NEW_INTENTS <= train_keys


def _entities(data):
    for m in _examples(data):
        for e in m.get("entities") or []:
            yield m.get("text"), e


@pytest.mark.parametrize("which", ["train", "heldout", "blind", "blind2"])
def test_entity_values(which, request):
    data = request.getfixturevalue(which)
    bad = []
    for text, e in _entities(data):
        raw = text[e["start"] : e["end"]]
        if e["entity"] == "amount":
            try:
                parse_amount(raw)
            except ValueError as exc:
                bad.append((text, raw, str(exc)))
        elif e["entity"] == "id_number":
            if len(raw) != 18 or not re.fullmatch(r"\d{17}[\dXx]", raw):
                bad.append((text, raw, "not an 18-character ID number"))
        elif e["entity"] == "phone":
            if not re.fullmatch(r"1[3-9]\d{9}", raw):
                bad.append((text, raw, "not an 11-digit mobile number"))
    assert not bad, bad


@pytest.fixture(scope="module")
def tokenizers():
    """jieba as Rasa's JiebaTokenizer sets it up. `rasa run` loads the user dictionary once;
    `rasa train` loads it twice in one process (from nlu_data/jieba, then from the model
    storage), and each load adds to jieba's total word frequency, which shifts a few cuts:
    with the second load, 三年期 without its own dictionary entry is one token, not 三年/期."""
    import jieba

    jieba.setLogLevel(60)
    made = []
    for loads in (1, 2):
        tokenizer = jieba.Tokenizer()
        for _ in range(loads):
            for path in sorted(JIEBA_DIR.glob("*")):
                tokenizer.load_userdict(str(path))
        made.append(tokenizer)
    return made


@pytest.mark.parametrize("which", ["train", "heldout", "blind", "blind2"])
def test_entities_on_token_boundaries(which, request, tokenizers):
    data = request.getfixturevalue(which)
    bad = []
    for text, e in _entities(data):
        for tokenizer in tokenizers:
            tokens = list(tokenizer.tokenize(text))
            starts = {s for _, s, _ in tokens}
            ends = {t for _, _, t in tokens}
            if e["start"] not in starts or e["end"] not in ends:
                bad.append((text, text[e["start"] : e["end"]], "/".join(w for w, _, _ in tokens)))
    assert not bad, "\n".join(map(str, bad))


def test_phone_regex_not_inside_id_number():
    spec = yaml.safe_load((TRAIN_DIR / "entities.yml").read_text(encoding="utf-8"))
    regexes = {item["regex"]: item["examples"].strip().lstrip("- ").strip() for item in spec["nlu"] if "regex" in item}
    phone = re.compile(regexes["phone"])
    id_number = re.compile(regexes["id_number"])
    assert not phone.search("我叫李秀英身份证号321322196807230021")
    assert not phone.search("320321198503151234")
    assert phone.search("身份证320321198503151234手机13912345678").group() == "13912345678"
    assert id_number.search("张建国 320321198503151234").group() == "320321198503151234"
    assert not id_number.search("13912345678")
