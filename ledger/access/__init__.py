"""Access: who may act. Sign-In with Ethereum (``siwe``), bearer tokens and principals
(``principals``), API keys (``api_keys``) and roles (``roles``)."""

from ledger.access.api_keys import (
    API_KEY_LIFETIME_MAX,
    API_KEYS_LIVE_MAX,
    KEY_ID_LEN_MAX,
    ApiKeyCreated,
    ApiKeyRecord,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from ledger.access.principals import (
    Principal,
    Role,
    announce_principals_changed,
    authenticate,
    digest_of,
    sign_out,
)
from ledger.access.roles import grant_role, revoke_role
from ledger.access.siwe import (
    CLOCK_SKEW_S,
    Challenge,
    SiweTerms,
    TokenIssued,
    issue_challenge,
    redeem_signature,
    siwe_address,
)

__all__ = [
    "API_KEYS_LIVE_MAX",
    "API_KEY_LIFETIME_MAX",
    "CLOCK_SKEW_S",
    "KEY_ID_LEN_MAX",
    "ApiKeyCreated",
    "ApiKeyRecord",
    "Challenge",
    "Principal",
    "Role",
    "SiweTerms",
    "TokenIssued",
    "announce_principals_changed",
    "authenticate",
    "create_api_key",
    "digest_of",
    "grant_role",
    "issue_challenge",
    "list_api_keys",
    "redeem_signature",
    "revoke_api_key",
    "revoke_role",
    "sign_out",
    "siwe_address",
]
