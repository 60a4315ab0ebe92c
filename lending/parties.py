"""The parties of a loan application whose credit report the bank may query:
their roles and how each audience names them. The one place they are defined."""

from __future__ import annotations

ROLES = ("applicant", "spouse", "guarantor")
# In a customer's chat, beside a masked name: 本人张**、配偶李**.
LABELS = {"applicant": "本人", "spouse": "配偶", "guarantor": "担保人"}
# In the consent text and on the officer's pages: who this person is to the loan.
ROLE_NAMES = {"applicant": "借款人本人", "spouse": "借款人配偶", "guarantor": "担保人"}
# In the rule hits of a decision.
RISK_LABELS = {"applicant": "申请人", "spouse": "配偶", "guarantor": "担保人"}
