import logging

from sunshine.protect import (
    MaskingFormatter,
    fingerprint,
    mask_id_number,
    mask_name,
    mask_phone,
    mask_text,
    seal,
    unseal,
)


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


def test_log_formatter_masks_messages_and_tracebacks():
    import io

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingFormatter("%(message)s"))
    logger = logging.getLogger("test.mask")
    logger.addHandler(handler)
    try:
        logger.warning("customer %s called from %s", "321283197503120119", "13912340001")
        try:
            raise ConnectionError(
                "GET /cgi-bin/token?grant_type=client_credential&appid=wx1&secret=s3cr3t-value "
                "Authorization: Bearer k3y-value /auth/AbCdEfGhIjKlMnOp 321283197503120119"
            )
        except ConnectionError:
            logger.exception("WeChat unreachable")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "321283197503120119" not in text and "13912340001" not in text and "139****0001" in text
    assert "s3cr3t-value" not in text and "secret=***" in text and "appid=wx1" in text
    assert "k3y-value" not in text and "Bearer ***" in text
    assert "AbCdEfGhIjKlMnOp" not in text and "/auth/AbCd***" in text
    assert "Traceback" in text and text.count("3212**********0119") == 2


def test_handlers_set_up_by_a_framework_are_masked_too():
    import io

    from sunshine.protect import mask_every_handler

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("framework: %(message)s"))  # as rasa-sdk's coloredlogs does
    logger = logging.getLogger("test.framework")
    logger.addHandler(handler)
    try:
        mask_every_handler()
        mask_every_handler()  # twice: wrapped once
        logger.warning("slot id_number=%s phone=%s", "321283197503120119", "13912340001")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "framework: slot id_number=3212**********0119 phone=139****0001\n"
    assert not isinstance(handler.formatter.inner, type(handler.formatter))
