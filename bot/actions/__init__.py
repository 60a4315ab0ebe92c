"""Custom actions for the Rasa action server (rasa-sdk).

Run from the project root: `rasa run actions --actions bot.actions`.
The SDK imports every module of this package and registers its actions.
"""

from bot.actions.applications import (
    ActionApplicationStatus,
    ActionOfferWithdrawal,
    ActionRepayment,
    ActionWithdrawApplication,
)
from bot.actions.authorization import ActionStartAuthorization
from bot.actions.credit_line import ActionCreditLine
from bot.actions.hand_off import ActionHandOff
from bot.actions.loan_application import (
    ActionAskAmount,
    ActionAskApplicationConfirmed,
    ActionAskCustomerRef,
    ActionAskGuarantorRef,
    ActionAskProduct,
    ActionAskPurpose,
    ActionAskTerm,
    ActionStopLoanApplication,
    ActionSubmitLoanApplication,
)
from bot.actions.loan_form_validation import ValidateLoanApplicationForm
from bot.actions.products import ActionInterestRate, ActionProducts
from bot.actions.scenarios import ActionFaq
from bot.actions.short_replies import ActionAnswerYesNo, ActionDefaultFallback
from sunshine.protect import mask_every_handler, mask_records

__all__ = [
    "ActionAnswerYesNo",
    "ActionApplicationStatus",
    "ActionAskAmount",
    "ActionAskApplicationConfirmed",
    "ActionAskCustomerRef",
    "ActionAskGuarantorRef",
    "ActionAskProduct",
    "ActionAskPurpose",
    "ActionAskTerm",
    "ActionCreditLine",
    "ActionDefaultFallback",
    "ActionFaq",
    "ActionHandOff",
    "ActionInterestRate",
    "ActionOfferWithdrawal",
    "ActionProducts",
    "ActionRepayment",
    "ActionStartAuthorization",
    "ActionStopLoanApplication",
    "ActionSubmitLoanApplication",
    "ActionWithdrawApplication",
    "ValidateLoanApplicationForm",
]

# The action server logs through rasa-sdk's handlers: mask ID and phone numbers and credentials there too.
mask_records()
mask_every_handler()
