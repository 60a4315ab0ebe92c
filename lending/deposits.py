"""A customer's deposits at the bank, read from core banking (the 验资 answer's DepositBalances)."""

from __future__ import annotations

import logging

from clients.corebank import CoreBankingClient, CoreBankingError
from sunshine.models import Customer
from sunshine.protect import unseal

log = logging.getLogger(__name__)


class CoreDeposits:
    """The available balance of the customer's settlement account (结算账户) in yuan; None when
    the core cannot answer now."""

    def __init__(self, core: CoreBankingClient, secret_key: str):
        self.core = core
        self.secret_key = secret_key

    def deposit_balance(self, customer: Customer) -> int | None:
        try:
            account = self.core.settlement_account(unseal(self.secret_key, customer.id_sealed), customer.name)
        except CoreBankingError as exc:
            log.warning("deposit balance of customer %s not read: %s", customer.id, exc)
            return None
        return account.available_fen // 100
