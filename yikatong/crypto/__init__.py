"""National cryptographic algorithms (SM2, SM3, SM4) and the platform's key management.

* :mod:`~yikatong.crypto.sm3` – SM3 digests and HMAC-SM3;
* :mod:`~yikatong.crypto.sm4` – SM4-GCM authenticated encryption and the bare block cipher;
* :mod:`~yikatong.crypto.sm2` – SM2 signatures (default signer ID, DER and raw forms);
* :mod:`~yikatong.crypto.keystore` – the key ring: versioned data keys under a master key;
* :mod:`~yikatong.crypto.fields` – encrypted database columns and blind indexes;
* :mod:`~yikatong.crypto.diversify` – per-card keys and card cryptograms;
* :mod:`~yikatong.crypto.masking` – display masking and the log filter.
"""

from yikatong.crypto.diversify import (
    card_cryptogram,
    card_diversification_data,
    diversify,
    verify_card_cryptogram,
)
from yikatong.crypto.errors import CryptoError, DecryptionError, KeyStoreError, SignatureInvalid
from yikatong.crypto.fields import (
    EncryptedString,
    blind_index,
    decrypt_field,
    encrypt_field,
    needs_reencryption,
    normalize_for_index,
    reencrypt_field,
)
from yikatong.crypto.keystore import (
    KeyRing,
    generate_master_key,
    get_keyring,
    master_key_id,
    parse_master_key,
    reset_keyring_cache,
    resolve_master_key,
    resolve_secret_key,
)
from yikatong.crypto.masking import (
    SensitiveDataFilter,
    mask_address,
    mask_bank_account,
    mask_id_number,
    mask_name,
    mask_phone,
    mask_text,
)
from yikatong.crypto.sm2 import (
    DEFAULT_SIGNER_ID,
    SM2PrivateKey,
    SM2PublicKey,
    der_to_raw,
    raw_to_der,
)
from yikatong.crypto.sm3 import hmac_sm3, hmac_sm3_verify, sm3, sm3_hex
from yikatong.crypto.sm4 import SM4GCM, ecb_encrypt_block, gcm_decrypt, gcm_encrypt

__all__ = [
    "DEFAULT_SIGNER_ID",
    "SM4GCM",
    "CryptoError",
    "DecryptionError",
    "EncryptedString",
    "KeyRing",
    "KeyStoreError",
    "SM2PrivateKey",
    "SM2PublicKey",
    "SensitiveDataFilter",
    "SignatureInvalid",
    "blind_index",
    "card_cryptogram",
    "card_diversification_data",
    "decrypt_field",
    "der_to_raw",
    "diversify",
    "ecb_encrypt_block",
    "encrypt_field",
    "gcm_decrypt",
    "gcm_encrypt",
    "generate_master_key",
    "get_keyring",
    "hmac_sm3",
    "hmac_sm3_verify",
    "mask_address",
    "mask_bank_account",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "mask_text",
    "master_key_id",
    "needs_reencryption",
    "normalize_for_index",
    "parse_master_key",
    "raw_to_der",
    "reencrypt_field",
    "reset_keyring_cache",
    "resolve_master_key",
    "resolve_secret_key",
    "sm3",
    "sm3_hex",
    "verify_card_cryptogram",
]
