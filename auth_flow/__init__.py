"""Remote credit-report authorization: one request per party, each reached by a random,
expiring, single-use token (QR code or link). A party goes through the steps in order,
each recorded in the evidence chain (auth_flow.evidence):

    identity (auth_flow.identity: name + last 6 of the ID number, with the party's own
              WeChat or an SMS code to the phone on file; or the mini-program login)
    -> biometric consent, face check, consent to the credit-report query (auth_flow.consent)
       => status "consented", token used up

Requests and tokens: auth_flow.tokens; reference faces: auth_flow.enrolment; from the
last consent to the reports: auth_flow.reports; the officer told: auth_flow.notices.
"""
