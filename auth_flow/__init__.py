"""Remote credit-report authorization: tokens, QR codes, consent."""
