"""What a new password must be, and the one length limit shared by creating and signing in.

* Passwords are compared in Unicode NFC (so ``é`` typed as one or two code points is the same
  password) and may be at most :data:`MAX_PASSWORD_BYTES` bytes of UTF-8 after normalisation — the same
  limit when an account is created and when someone signs in, so no password can be set that can never
  be used.
* A new password needs at least :data:`MIN_PASSWORD_CHARS` characters, must not be only whitespace, must
  not be one of the published demo passwords, and must reach zxcvbn score :data:`MIN_ZXCVBN_SCORE`
  (Wheeler 2016, "zxcvbn: Low-Budget Password Strength Estimation", USENIX Security: score 3 means an
  estimated 10^8 guesses or more — "safely unguessable: moderate protection from an offline slow-hash
  scenario"). zxcvbn ships its frequency lists (common passwords, names, words) inside the package, so
  nothing is downloaded. The username, display name and product words count as known to an attacker.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from zxcvbn import zxcvbn

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_BYTES = 128  #: UTF-8 bytes after NFC, for create and for sign-in alike
MIN_ZXCVBN_SCORE = 3
_ZXCVBN_MAX_CHARS = 72  #: zxcvbn-python refuses longer input; the first 72 characters are judged
PRODUCT_WORDS = ("yuncang", "wushan", "plum", "cuili", "orchard", "巫山", "脆李", "云仓")


class WeakPassword(ValueError):
    """The password is refused; the message says why and how to choose a better one."""


def normalise(password: str) -> str:
    """The form passwords are hashed and compared in (Unicode NFC)."""
    return unicodedata.normalize("NFC", password)


def too_long(password: str) -> bool:
    """True when the password exceeds :data:`MAX_PASSWORD_BYTES` (UTF-8, after NFC)."""
    return len(normalise(password).encode("utf-8")) > MAX_PASSWORD_BYTES


def check_new_password(password: str, *, user_inputs: Iterable[str] = (), refused: Iterable[str] = ()) -> str:
    """The normalised password when it may be set; raises :class:`WeakPassword` otherwise.

    ``user_inputs``: strings an attacker knows (username, display name); ``refused``: passwords that are
    public (the demo accounts' published ones).
    """
    pw = normalise(password)
    if not pw.strip():
        raise WeakPassword("password must not be empty or only whitespace")
    if "\x00" in pw:
        raise WeakPassword("password must not contain NUL characters")
    if len(pw) < MIN_PASSWORD_CHARS:
        raise WeakPassword(f"password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(pw.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise WeakPassword(f"password must be at most {MAX_PASSWORD_BYTES} bytes (UTF-8)")
    if pw in {normalise(r) for r in refused}:
        raise WeakPassword("that password is published (a demo password); choose another")
    inputs = [s for s in (*user_inputs, *PRODUCT_WORDS) if s]
    result = zxcvbn(pw[:_ZXCVBN_MAX_CHARS], user_inputs=inputs)
    if int(result["score"]) < MIN_ZXCVBN_SCORE:
        fb = result.get("feedback") or {}
        hint = " ".join(s for s in [fb.get("warning") or "", *(fb.get("suggestions") or [])] if s)
        raise WeakPassword(f"password too easy to guess (strength {result['score']} of 4, needs "
                           f"{MIN_ZXCVBN_SCORE}); {hint or 'use a longer phrase of uncommon words'}")
    return pw
