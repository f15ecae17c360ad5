"""Errors of the electronic card and its QR code; each ``code`` is part of the API contract.

Statuses: 422 when the code itself cannot be accepted (malformed, forged, unknown key, outside
its validity, wrong purpose); 409 when something valid meets a state that refuses it (replayed
code, blocked card, suspended e-card, duplicate issue); 403 for a wrong e-card password (the
caller's own login is fine, so not 401); 429 for a locked e-card password; 404 for no e-card.
"""

from __future__ import annotations

from yikatong.errors import N_, Conflict, InvalidInput, NotFound, RateLimited, YikatongError

# --- the QR code ------------------------------------------------------------------------------


class QrError(YikatongError):
    """Base of every refusal of an e-card QR code (offline or online)."""


class QrMalformed(QrError):
    """The text is not a well-formed e-card QR code (prefix, encoding, length or a field);
    ``reason`` names what is wrong."""

    code = "qr_malformed"
    status = 422
    title = N_("This is not a valid e-card QR code")
    reason = "malformed"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, reason=self.reason)


class QrTruncated(QrMalformed):
    """The code is shorter than its format requires."""

    reason = "truncated"


class QrTrailingData(QrMalformed):
    """The code carries bytes after its signature."""

    reason = "trailing_data"


class QrUnsupportedVersion(QrMalformed):
    """The code's format version is not one this platform reads."""

    reason = "unsupported_version"


class QrUnknownKey(QrError):
    """The code names a signing key the verifier does not trust (unknown, revoked or too old)."""

    code = "qr_unknown_key"
    status = 422
    title = N_("The e-card QR code was signed with a key that is not trusted")


class QrBadSignature(QrError):
    """The code's SM2 signature does not verify: it was altered or forged."""

    code = "qr_bad_signature"
    status = 422
    title = N_("The e-card QR code's signature does not verify")


class QrExpired(QrError):
    """The code's validity has ended; the holder shows a fresh one."""

    code = "qr_expired"
    status = 422
    title = N_("The e-card QR code has expired")


class QrNotYetValid(QrError):
    """The code's validity starts later than the verifier's clock (check the terminal clock)."""

    code = "qr_not_yet_valid"
    status = 422
    title = N_("The e-card QR code is not valid yet")


class QrWrongPurpose(QrError):
    """The code was issued for another purpose (identity, payment, medical) than requested."""

    code = "qr_wrong_purpose"
    status = 422
    title = N_("The e-card QR code was issued for another purpose")


class QrReplayed(QrError):
    """The code was already accepted once; each code is accepted at most once online."""

    code = "qr_replayed"
    status = 409
    title = N_("The e-card QR code has already been used")


class QrCardBlocked(QrError):
    """The card behind the code is lost, replaced, cancelled or blacklisted."""

    code = "qr_card_blocked"
    status = 409
    title = N_("The card behind this QR code cannot be used")


# --- the electronic card ----------------------------------------------------------------------


class EcardNotFound(NotFound):
    """The resident has no electronic card (or it is outside what the caller may see)."""

    code = "ecard_not_found"
    title = N_("No electronic card")


class EcardExists(Conflict):
    """The resident's card already has an electronic card in use (one per card)."""

    code = "ecard_exists"
    title = N_("An electronic card has already been issued for this card")


class EcardCardNotUsable(Conflict):
    """An e-card is issued only from a card that is issued or active."""

    code = "ecard_card_not_usable"
    title = N_("The resident has no card in use to issue an electronic card from")


class EcardNotActive(Conflict):
    """The e-card is suspended (its card is lost) or revoked."""

    code = "ecard_not_active"
    title = N_("The electronic card is suspended or revoked")


class EcardLevelRefused(Conflict):
    """Payment level (level 2) needs the card's bank account to be activated."""

    code = "ecard_level_refused"
    title = N_("Payment level needs an activated bank account on the card")


class EcardLevelInsufficient(Conflict):
    """A payment code needs a payment-level (level 2) e-card."""

    code = "ecard_level_insufficient"
    title = N_("This needs a payment-level electronic card")


class EcardWeakPassword(InvalidInput):
    """The e-card password must be six digits and not trivially guessed."""

    code = "ecard_weak_password"
    title = N_("The electronic card password is too easy to guess")


class EcardPasswordWrong(YikatongError):
    """Wrong e-card password; the failure was counted (``attempts_left`` says how many remain)."""

    code = "ecard_password_wrong"
    status = 403
    title = N_("Wrong electronic card password")
    keep_changes = True  # the counted failure and its audit entry must persist


class EcardLocked(RateLimited):
    """Too many wrong e-card passwords: the password is locked until ``locked_until``."""

    code = "ecard_locked"
    title = N_("The electronic card password is locked after repeated failures")
    keep_changes = True
