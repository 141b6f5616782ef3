"""The Python side of scripts/interop.ts (npm run interop:python): run by it, with the folder holding keys.tsv,
context.tsv and ours.tsv (their columns: scripts/interop.ts).

Decrypts kms-envelope's messages (ours.tsv) with the official AWS Encryption SDK for Python and checks each
against its case, then encrypts every case itself into theirs.tsv. Exit status: 0 when all decrypted, 1 when
some did not, 2 when the SDK cannot be imported.
"""
import base64
import logging
import sys
import warnings

from peer_files import read_folder, theirs_row, write_results

try:
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy, EncryptionKeyType, WrappingAlgorithm
    from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
    from aws_encryption_sdk.key_providers.kms import MRKAwareStrictAwsKmsMasterKeyProvider, StrictAwsKmsMasterKeyProvider
    from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider
except ImportError as error:
    sys.stderr.write("interop: cannot import the AWS Encryption SDK for Python (%s).\n" % error)
    sys.stderr.write("Install it (pip install aws-encryption-sdk) or set PYTHONPATH to a checkout's src folder.\n")
    sys.exit(2)

warnings.filterwarnings("ignore")  # the SDK warns about its own deprecations
logging.disable(logging.CRITICAL)  # and logs a traceback for each failure, which is reported below

folder = sys.argv[1]
keys, context, ours = read_folder(folder)
RSA_PADDINGS = {
    "OAEP-SHA1": WrappingAlgorithm.RSA_OAEP_SHA1_MGF1,
    "OAEP-SHA256": WrappingAlgorithm.RSA_OAEP_SHA256_MGF1,
    "OAEP-SHA384": WrappingAlgorithm.RSA_OAEP_SHA384_MGF1,
    "OAEP-SHA512": WrappingAlgorithm.RSA_OAEP_SHA512_MGF1,
    "PKCS1": WrappingAlgorithm.RSA_PKCS1,
}
AES_WRAPPING = {
    "128": WrappingAlgorithm.AES_128_GCM_IV12_TAG16_NO_PADDING,
    "192": WrappingAlgorithm.AES_192_GCM_IV12_TAG16_NO_PADDING,
    "256": WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
}


def wrapping_key(name):
    """The key of kms-envelope's raw keyring of that name."""
    if name.startswith("aes-"):
        return WrappingKey(
            wrapping_algorithm=AES_WRAPPING[name[4:]],
            wrapping_key=base64.b64decode(keys[name]),
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        )
    return WrappingKey(
        wrapping_algorithm=RSA_PADDINGS[name[4:]],
        wrapping_key=base64.b64decode(keys["rsa-private"]),
        wrapping_key_type=EncryptionKeyType.PRIVATE,
    )


class RawKeys(RawMasterKeyProvider):
    """kms-envelope's raw keyrings by name (same namespace, key names and keys). Unlike one master key given
    another with add_master_key_provider, which encrypts under the first only, this writes a data key for each."""

    provider_id = keys["namespace"]

    def _get_raw_key(self, key_id):
        return wrapping_key(key_id.decode())


def make_key_provider(name, decrypting):
    """The provider matching kms-envelope's keyring of that name: AWS KMS on the emulator (AWS_ENDPOINT_URL_KMS),
    a multi-Region key through its replica in another Region when decrypting; raw keys otherwise."""
    if name == "kms":
        return StrictAwsKmsMasterKeyProvider(key_ids=[keys["kms-key"]])
    if name == "kms-mrk":
        return MRKAwareStrictAwsKmsMasterKeyProvider(key_ids=[keys["kms-replica" if decrypting else "kms-mrk"]])
    provider = RawKeys()
    provider.add_master_keys_from_list(["aes-256", "rsa-OAEP-SHA256"] if name == "multi" else [name])
    return provider


providers = {}


def key_provider(name, decrypting=False):
    """One provider per keyring and direction, reused (each KMS provider keeps its clients)."""
    if (name, decrypting) not in providers:
        providers[(name, decrypting)] = make_key_provider(name, decrypting)
    return providers[(name, decrypting)]


decryptor = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
failures = []
for case in ours:
    what = "0x%04x %s %s" % (case["suite"], case["keyring"], case["label"])
    try:
        plaintext, header = decryptor.decrypt(source=base64.b64decode(case["ciphertext"]), key_provider=key_provider(case["keyring"], decrypting=True))
        found = {key: value for key, value in header.encryption_context.items() if key != "aws-crypto-public-key"}
        if plaintext != base64.b64decode(case["plaintext"]):
            failures.append(what + ": another plaintext")
        elif found != context:
            failures.append(what + ": another context")
        elif header.algorithm.algorithm_id != case["suite"] or header.frame_length != case["frameLength"]:
            failures.append(what + ": another suite or frame length")
    except Exception as error:  # any failure is reported with its case
        failures.append("%s: %s: %s" % (what, type(error).__name__, str(error)[:300]))
writer = "the Python SDK %s" % aws_encryption_sdk.__version__
print("%s decrypted %d of kms-envelope's %d messages" % (writer, len(ours) - len(failures), len(ours)))
for failure in failures:
    print("  " + failure)

theirs = []
for case in ours:
    committing = case["suite"] in (0x0478, 0x0578)
    policy = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT if committing else CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    try:
        ciphertext, _ = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=policy).encrypt(
            source=base64.b64decode(case["plaintext"]),
            key_provider=key_provider(case["keyring"]),
            encryption_context=context,
            algorithm=Algorithm.get_by_id(case["suite"]),
            frame_length=case["peerFrameLength"],
        )
    except Exception as error:  # reported; the case is left out, which the Node side counts as a failure
        failures.append("encrypting 0x%04x %s %s: %s: %s" % (case["suite"], case["keyring"], case["label"], type(error).__name__, str(error)[:300]))
        print("  " + failures[-1])
        continue
    theirs.append(theirs_row(case, ciphertext))
write_results(folder, writer, theirs)
sys.exit(1 if failures else 0)
