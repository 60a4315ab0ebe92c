"""Text as customers type it (bot/normalizer.py): OpenCC's Traditional-to-Simplified conversion,
full-width digits, and the typo table bot/typos.yml, as the first step of the NLU pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.normalizer import TYPOS_FILE, TextNormalizer, TypoFileError, normalize, read_typos

pytestmark = pytest.mark.no_database


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("我想申請貸款", "我想申请贷款"),  # OpenCC
        ("銀行卡丟了怎麼辦", "银行卡丢了怎么办"),
        ("還款日是幾號", "还款日是几号"),
        ("借５万", "借5万"),  # full width
        ("俺想代点款", "俺想贷点款"),  # typos.yml
        ("利习是多少", "利息是多少"),
        ("还歀日是几号", "还款日是几号"),
        ("妳好", "你好"),
        ("正信授权咋弄", "征信授权咋弄"),
        ("貸款利习多少", "贷款利息多少"),  # both
    ],
)
def test_what_customers_type_becomes_what_they_mean(typed, meant):
    assert normalize(typed) == meant


@pytest.mark.parametrize("text", ["货款到了没有", "我想贷款", "张建国 320321198503151234", "预期多少", "5万"])
def test_correct_text_is_left_alone(text):
    assert normalize(text) == text


def test_every_typo_keeps_the_length_so_entities_stay_in_place():
    data = yaml.safe_load(TYPOS_FILE.read_text(encoding="utf-8"))
    for typo, meant in {**data["characters"], **data["words"]}.items():
        assert len(normalize(typo)) == len(typo) and normalize(typo) == meant


def _typos_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "typos.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_correction_of_another_length_is_refused(tmp_path):
    with pytest.raises(TypoFileError, match="typos.yml, words: 代款 -> 贷款了 must be the same length"):
        read_typos(_typos_file(tmp_path, "words:\n  代款: 贷款了\n"))


def test_a_character_entry_must_be_one_character(tmp_path):
    with pytest.raises(TypoFileError, match="one character each"):
        read_typos(_typos_file(tmp_path, "characters:\n  代款: 贷款\n"))


def test_an_unknown_section_is_refused(tmp_path):
    with pytest.raises(TypoFileError, match="unknown section word"):
        read_typos(_typos_file(tmp_path, "word:\n  代款: 贷款\n"))


def test_the_pipeline_step_rewrites_messages_in_training_and_serving():
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    step = TextNormalizer()
    served = step.process([Message(data={"text": "利习多少"})])
    assert served[0].get("text") == "利息多少"
    trained = step.process_training_data(TrainingData([Message(data={"text": "我想代款", "intent": "apply_loan"})]))
    assert trained.training_examples[0].get("text") == "我想贷款"


def test_the_pipeline_starts_with_the_normaliser():
    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "bot" / "config.yml").read_text(encoding="utf-8"))
    assert config["pipeline"][0]["name"] == "bot.normalizer.TextNormalizer"
