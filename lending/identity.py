"""Resident ID numbers (GB 11643-1999)."""

from __future__ import annotations

from datetime import date

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


class InvalidIdNumber(ValueError):
    """The text is not a valid 18-character resident ID number."""


def check_digit(first17: str) -> str:
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=False)) % 11]


def normalize_id_number(raw: str) -> str:
    """Return the ID number upper-cased and validated, or raise InvalidIdNumber (Chinese message)."""
    s = raw.strip().upper()
    if len(s) != 18 or not s[:17].isdigit() or not (s[17].isdigit() or s[17] == "X"):
        raise InvalidIdNumber("身份证号应为18位，最后一位可以是数字或X")
    if check_digit(s[:17]) != s[17]:
        raise InvalidIdNumber("身份证号校验位不对，请核对后重新输入")
    try:
        date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise InvalidIdNumber("身份证号中的出生日期不对，请核对后重新输入") from None
    return s


def birth_date(id_number: str) -> date:
    s = normalize_id_number(id_number)
    return date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
