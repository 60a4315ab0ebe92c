import logging

from sunshine.protect import MaskingFilter, fingerprint, mask_id_number, mask_name, mask_phone, mask_text, seal, unseal


def test_masks():
    assert mask_id_number("321283197503120119") == "3212**********0119"
    assert mask_phone("13912340001") == "139****0001"
    assert mask_name("张建国") == "张**"


def test_mask_text_finds_ids_and_phones_but_not_phone_inside_id():
    text = "身份证321283197503120119，电话13912340001"
    assert mask_text(text) == "身份证3212**********0119，电话139****0001"


def test_fingerprint_is_keyed_and_case_insensitive():
    assert fingerprint("k", "32128319820820033x") == fingerprint("k", "32128319820820033X")
    assert fingerprint("k", "1") != fingerprint("other", "1")


def test_seal_round_trip_and_opaque():
    token = seal("k", "13912340001")
    assert "13912340001" not in token and unseal("k", token) == "13912340001"


def test_log_filter_masks(caplog):
    logger = logging.getLogger("test.mask")
    logger.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="test.mask"):
        logger.info("customer %s called from %s", "321283197503120119", "13912340001")
    assert "321283197503120119" not in caplog.text and "139****0001" in caplog.text
