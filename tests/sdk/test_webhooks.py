"""The webhook signature of asynchronous-request callbacks (docs/signing.md): a known vector, and every way a
callback must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from arkserve.sdk import webhooks

SECRET = "whsec_test-secret"
BODY = json.dumps({"id": "ar_1", "status": "succeeded"}).encode()


def test_the_signature_is_hmac_sha256_over_id_timestamp_and_body() -> None:
    headers = webhooks.sign(SECRET, "ar_1", BODY, now=1_700_000_000)
    mac = hmac.new(SECRET.encode(), b"ar_1.1700000000." + BODY, hashlib.sha256).digest()
    assert headers == {"X-Ark-Webhook-Id": "ar_1", "X-Ark-Webhook-Timestamp": "1700000000",
                       "X-Ark-Webhook-Signature": "v1=" + base64.b64encode(mac).decode()}
    lower = {k.lower(): v for k, v in headers.items()}  # header names are case-insensitive
    assert webhooks.verify(SECRET, lower, BODY, now=1_700_000_100) == {"id": "ar_1", "status": "succeeded"}
    rotated = {**headers, "X-Ark-Webhook-Signature": "v1=AAAA " + headers["X-Ark-Webhook-Signature"]}
    assert webhooks.verify(SECRET, rotated, BODY, now=1_700_000_000)["id"] == "ar_1"


@pytest.mark.parametrize(("change", "why"), [
    (lambda h, b: (h, b + b" "), "no signature matches"),
    (lambda h, b: ({**h, "X-Ark-Webhook-Id": "ar_2"}, b), "no signature matches"),
    (lambda h, b: ({**h, "X-Ark-Webhook-Timestamp": "1700000001"}, b), "no signature matches"),
    (lambda h, b: ({**h, "X-Ark-Webhook-Timestamp": "soon"}, b), "not an integer"),
    (lambda h, b: ({k: v for k, v in h.items() if k != "X-Ark-Webhook-Signature"}, b), "missing"),
    (lambda h, b: ({**h, "X-Ark-Webhook-Signature": "v2=" + h["X-Ark-Webhook-Signature"][3:]}, b),
     "no signature matches"),
])
def test_a_changed_callback_is_refused(change: object, why: str) -> None:
    headers, body = change(webhooks.sign(SECRET, "ar_1", BODY, now=1_700_000_000), BODY)  # type: ignore[operator]
    with pytest.raises(webhooks.WebhookVerificationError, match=why):
        webhooks.verify(SECRET, headers, body, now=1_700_000_000)


def test_wrong_secret_old_timestamp_and_an_id_not_the_bodys_are_refused() -> None:
    headers = webhooks.sign(SECRET, "ar_1", BODY, now=1_700_000_000)
    with pytest.raises(webhooks.WebhookVerificationError, match="no signature matches"):
        webhooks.verify(SECRET + "x", headers, BODY, now=1_700_000_000)
    with pytest.raises(webhooks.WebhookVerificationError, match="away from now"):
        webhooks.verify(SECRET, headers, BODY, now=1_700_000_301)
    other = json.dumps({"id": "ar_9"}).encode()
    with pytest.raises(webhooks.WebhookVerificationError, match="not the signed id"):
        webhooks.verify(SECRET, webhooks.sign(SECRET, "ar_1", other, now=5), other, now=5)
