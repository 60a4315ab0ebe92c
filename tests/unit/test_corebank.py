"""The core-banking client against its emulator over HTTP: accounts, loans, idempotency, refusals."""

from datetime import date

import pytest
import requests

from clients.corebank import CoreBankingClient, CoreBankingRejected, CoreBankingUnavailable
from conversation.scenarios import answer_for
from lending.deposits import CoreDeposits
from lending.repayment import schedule
from sunshine.models import Customer
from sunshine.protect import seal

ID, NAME = "321283197503120119", "张建国"
DISBURSED = date(2026, 12, 6)


def opened(core, key="t-1", method="equal_instalments", principal_fen=5_000_000, term=12):
    account = core.settlement_account(ID, NAME)
    plan = [i.as_dict() for i in schedule(method, principal_fen, 435, term, DISBURSED)]
    loan = core.open_loan(
        "SUN-1", ID, NAME, "sunshine_e_loan", principal_fen, 435, term, method, account.account_no, plan, key + ":open"
    )
    return account, loan


def test_a_customer_has_one_settlement_account_with_a_balance(corebank):
    core, _, _ = corebank
    first = core.settlement_account(ID, NAME)
    assert first.account_no.startswith("623058") and len(first.account_no) == 19
    assert first.status == "normal" and 100_000 <= first.balance_fen <= 5_000_000
    assert core.settlement_account(ID, NAME) == first
    assert core.deposit_account(first.account_no) == first
    with pytest.raises(CoreBankingRejected) as refused:
        core.deposit_account("6230580000000000000")
    assert (refused.value.status, refused.value.code, refused.value.message) == (404, "E0201", "账户不存在")


def test_open_disburse_and_read_a_loan(corebank):
    core, url, state = corebank
    requests.post(f"{url}/_emulator/today", json={"date": DISBURSED.isoformat()}, timeout=5)
    account, loan = opened(core)
    assert (loan.status, loan.principal_outstanding_fen, len(loan.instalments)) == ("opened", 0, 12)
    paid = core.disburse(loan.loan_no, 5_000_000, account.account_no, "t-1")
    assert (paid.amount_fen, paid.account_no, paid.value_date) == (5_000_000, account.account_no, DISBURSED)
    assert core.deposit_account(account.account_no).balance_fen == account.balance_fen + 5_000_000
    now = core.loan(loan.loan_no)
    assert (now.status, now.principal_outstanding_fen, now.disbursed_on) == ("active", 5_000_000, DISBURSED)
    assert now.instalments[0].due_date == date(2027, 1, 6) and now.instalments[0].status == "scheduled"


def test_the_same_key_pays_once_and_another_request_under_it_is_refused(corebank):
    core, url, state = corebank
    account, loan = opened(core)
    first = core.disburse(loan.loan_no, 5_000_000, account.account_no, "t-1")
    again = core.disburse(loan.loan_no, 5_000_000, account.account_no, "t-1")
    assert again == first and len(state["disbursements"]) == 1
    assert core.deposit_account(account.account_no).balance_fen == account.balance_fen + 5_000_000
    assert opened(core)[1].loan_no == loan.loan_no  # the opening again: the same loan
    with pytest.raises(CoreBankingRejected, match="E0301"):
        core.disburse(loan.loan_no, 4_000_000, account.account_no, "t-1")
    with pytest.raises(CoreBankingRejected, match="E0302"):
        core.disburse(loan.loan_no, 5_000_000, account.account_no, "t-2")


def test_a_slow_core_books_then_answers_late_and_the_retry_gets_the_booking(corebank):
    core, url, state = corebank
    account, loan = opened(core)
    requests.post(f"{url}/_emulator/faults", json={"mode": "slow", "delay": 1.0, "path": "disbursements"}, timeout=5)
    impatient = CoreBankingClient(core.base_url, core.channel_id, core.secret, timeout=0.2)
    with pytest.raises(CoreBankingUnavailable, match="did not answer"):
        impatient.disburse(loan.loan_no, 5_000_000, account.account_no, "t-1")
    retried = core.disburse(loan.loan_no, 5_000_000, account.account_no, "t-1")
    assert retried.amount_fen == 5_000_000 and len(state["disbursements"]) == 1


def test_failing_and_refusing_modes(corebank):
    core, url, state = corebank
    account, loan = opened(core)
    requests.post(f"{url}/_emulator/faults", json={"mode": "fail", "path": "disbursements"}, timeout=5)
    with pytest.raises(CoreBankingUnavailable, match="HTTP 503 E9999"):
        core.disburse(loan.loan_no, 5_000_000, account.account_no, "t-1")
    assert state["disbursements"] == []
    requests.post(f"{url}/_emulator/accounts/{account.account_no}", json={"status": "frozen"}, timeout=5)
    with pytest.raises(CoreBankingRejected) as refused:
        core.disburse(loan.loan_no, 5_000_000, account.account_no, "t-1")
    assert (refused.value.code, refused.value.message) == ("E0202", "结算账户状态异常（冻结），不能入账")
    assert state["disbursements"] == []


def test_repayments_pay_instalments_in_order_and_unpaid_ones_fall_overdue(corebank):
    core, url, _ = corebank
    requests.post(f"{url}/_emulator/today", json={"date": DISBURSED.isoformat()}, timeout=5)
    account, loan = opened(core, method="interest_monthly", principal_fen=1_000_000, term=3)
    core.disburse(loan.loan_no, 1_000_000, account.account_no, "t-1")
    first = loan.instalments[0]
    core.repay(loan.loan_no, first.principal_fen + first.interest_fen, "r-1")
    requests.post(f"{url}/_emulator/today", json={"date": "2027-02-10"}, timeout=5)
    late = core.loan(loan.loan_no)
    assert [i.status for i in late.instalments] == ["paid", "overdue", "scheduled"]
    assert (late.status, late.overdue_fen, late.overdue_days) == ("overdue", late.instalments[1].interest_fen, 4)
    assert [p.amount_fen for p in core.repayments(loan.loan_no)] == [first.interest_fen]
    rest = sum(i.principal_fen + i.interest_fen - i.paid_fen for i in late.instalments)
    with pytest.raises(CoreBankingRejected, match="超过剩余应还"):
        core.repay(loan.loan_no, rest + 1, "r-2")
    core.repay(loan.loan_no, rest, "r-3")
    assert core.loan(loan.loan_no).status == "closed"


def test_a_request_with_a_wrong_signature_or_channel_is_refused(corebank):
    core, url, _ = corebank
    for forged in (
        CoreBankingClient(url, core.channel_id, "not-the-secret"),
        CoreBankingClient(url, "OTHER-CHANNEL", core.secret),
    ):
        with pytest.raises(CoreBankingRejected) as refused:
            forged.settlement_account(ID, NAME)
        assert (refused.value.status, refused.value.code) == (401, "E0101")


def test_an_unreachable_core(closed_address):
    with pytest.raises(CoreBankingUnavailable, match="unreachable"):
        CoreBankingClient(closed_address, "C", "s", timeout=1).deposit_account("6230580000000000000")


def test_the_housing_answer_reads_the_customer_s_deposit_from_the_core(corebank, closed_address):
    core, _, _ = corebank
    customer = Customer(id=1, name=NAME, id_sealed=seal("k", ID))
    balance = CoreDeposits(core, "k").deposit_balance(customer)
    assert balance == core.settlement_account(ID, NAME).available_fen // 100 and balance > 0
    # 凤鸣府 asks 30万: more than any emulated opening balance (at most 5万), so the answer says what is missing
    step = answer_for("housing_lottery", customer, "凤鸣府验资", CoreDeposits(core, "k")).next_step or ""
    assert "还差" in step and "够验资金额" not in step
    # a core that cannot answer: the answer says what the project requires and what to bring
    unreachable = CoreDeposits(CoreBankingClient(closed_address, "C", "s", timeout=1), "k")
    assert unreachable.deposit_balance(customer) is None
    step = answer_for("housing_lottery", customer, "凤鸣府验资", unreachable).next_step or ""
    assert "凤鸣府摇号要验资30万元" in step and "身份证" in step and "还差" not in step
