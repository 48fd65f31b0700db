"""Tokens sealed with the registry's customer-managed KMS key (TENANT_KEY_ARN), by direct KMS
Encrypt (a token is far below its 4 KB limit, so no envelope is needed). The encryption
context binds a ciphertext to its company and field: a token copied into another company's
record, or from `accessToken` to `refreshToken`, does not open."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from pleo_scope.errors import ConfigurationError, InvalidTenantRecord
from pleo_scope.tenants import StoredToken, TokenField

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient


class KmsTokenCipher:
    def __init__(self, client: KMSClient, key_arn: str) -> None:
        self._client = client
        self._key_arn = key_arn
        self.calls = 0

    def seal(self, company_id: str, name: TokenField, token: str) -> bytes:
        self.calls += 1
        try:
            reply = self._client.encrypt(
                KeyId=self._key_arn,
                Plaintext=token.encode("utf-8"),
                EncryptionContext=_context(company_id, name),
            )
        except ClientError as error:
            raise _kms_error(error, "encrypt") from None
        return bytes(reply["CiphertextBlob"])

    def open(self, company_id: str, name: TokenField, stored: StoredToken) -> str:
        if stored.plain is not None:
            return stored.plain
        assert stored.sealed is not None
        self.calls += 1
        try:
            reply = self._client.decrypt(
                KeyId=self._key_arn,
                CiphertextBlob=stored.sealed,
                EncryptionContext=_context(company_id, name),
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("InvalidCiphertextException", "IncorrectKeyException"):
                raise InvalidTenantRecord(
                    f"company {company_id}: credential.{name} does not open with TENANT_KEY_ARN"
                    " for this company (written for another company or key?)"
                ) from None
            raise _kms_error(error, "decrypt") from None
        return bytes(reply["Plaintext"]).decode("utf-8")


def _context(company_id: str, name: TokenField) -> dict[str, str]:
    return {"companyId": company_id, "field": name}


def _kms_error(error: ClientError, action: str) -> Exception:
    code = error.response.get("Error", {}).get("Code", "error")
    if code in ("AccessDeniedException", "NotFoundException", "DisabledException"):
        return ConfigurationError(
            f"cannot {action} with the tenant key ({code}): check TENANT_KEY_ARN and the"
            f" function's kms:{action.capitalize()} permission"
        )
    return error
