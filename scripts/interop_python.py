"""The Python side of scripts/interop-python.ts: run by it, with the folder holding keys.json and ours.json.

Decrypts kms-envelope's messages (ours.json) with the official AWS Encryption SDK for Python and checks each
against its case, then encrypts every case itself into theirs.json. Exit status: 0 when all decrypted, 1 when
some did not, 2 when the SDK cannot be imported.
"""
import base64
import json
import logging
import os
import sys
import warnings

try:
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy, EncryptionKeyType, WrappingAlgorithm
    from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
    from aws_encryption_sdk.key_providers.kms import MRKAwareStrictAwsKmsMasterKeyProvider, StrictAwsKmsMasterKeyProvider
    from aws_encryption_sdk.key_providers.raw import RawMasterKey
except ImportError as error:
    sys.stderr.write("interop-python: cannot import the AWS Encryption SDK for Python (%s).\n" % error)
    sys.stderr.write("Install it (pip install aws-encryption-sdk) or set PYTHONPATH to a checkout's src folder.\n")
    sys.exit(2)

warnings.filterwarnings("ignore")  # the SDK warns about its own deprecations
logging.disable(logging.CRITICAL)  # and logs a traceback for each failure, which is reported below

folder = sys.argv[1]
keys = json.load(open(os.path.join(folder, "keys.json")))
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


def master_key(name):
    """The raw master key kms-envelope's keyring of that name matches (same namespace, key name and key)."""
    if name.startswith("aes-"):
        bits = name[4:]
        wrapping = WrappingKey(
            wrapping_algorithm=AES_WRAPPING[bits],
            wrapping_key=base64.b64decode(keys["aes"][bits]),
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        )
    else:
        wrapping = WrappingKey(
            wrapping_algorithm=RSA_PADDINGS[name[4:]],
            wrapping_key=keys["rsaPrivate"].encode(),
            wrapping_key_type=EncryptionKeyType.PRIVATE,
        )
    return RawMasterKey(provider_id=keys["namespace"], key_id=name.encode(), wrapping_key=wrapping)


def make_key_provider(name, decrypting):
    """The provider matching kms-envelope's keyring of that name: AWS KMS on the emulator (AWS_ENDPOINT_URL_KMS),
    a multi-Region key through its replica in another Region when decrypting; raw keys otherwise."""
    if name == "kms":
        return StrictAwsKmsMasterKeyProvider(key_ids=[keys["kms"]["key"]])
    if name == "kms-mrk":
        return MRKAwareStrictAwsKmsMasterKeyProvider(key_ids=[keys["kms"]["replica" if decrypting else "mrk"]])
    if name != "multi":
        return master_key(name)
    provider = master_key("aes-256")
    provider.add_master_key_provider(master_key("rsa-OAEP-SHA256"))
    return provider


providers = {}


def key_provider(name, decrypting=False):
    """One provider per keyring and direction, reused (each KMS provider keeps its clients)."""
    if (name, decrypting) not in providers:
        providers[(name, decrypting)] = make_key_provider(name, decrypting)
    return providers[(name, decrypting)]


ours = json.load(open(os.path.join(folder, "ours.json")))
decryptor = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
failures = []
for case in ours:
    what = "0x%04x %s %s" % (case["suite"], case["keyring"], case["label"])
    try:
        plaintext, header = decryptor.decrypt(source=base64.b64decode(case["ciphertext"]), key_provider=key_provider(case["keyring"], decrypting=True))
        context = {key: value for key, value in header.encryption_context.items() if key != "aws-crypto-public-key"}
        if plaintext != base64.b64decode(case["plaintext"]):
            failures.append(what + ": another plaintext")
        elif context != case["context"]:
            failures.append(what + ": another context")
        elif header.algorithm.algorithm_id != case["suite"] or header.frame_length != case["frameLength"]:
            failures.append(what + ": another suite or frame length")
    except Exception as error:  # any failure is reported with its case
        failures.append("%s: %s: %s" % (what, type(error).__name__, str(error)[:300]))
print("the Python SDK %s decrypted %d of kms-envelope's %d messages" % (aws_encryption_sdk.__version__, len(ours) - len(failures), len(ours)))
for failure in failures:
    print("  " + failure)

theirs = []
for case in ours:
    committing = case["suite"] in (0x0478, 0x0578)
    policy = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT if committing else CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    frame_length = case["frameLength"] if case["frameLength"] % 128 == 0 else 128
    try:
        ciphertext, _ = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=policy).encrypt(
            source=base64.b64decode(case["plaintext"]),
            key_provider=key_provider(case["keyring"]),
            encryption_context=case["context"],
            algorithm=Algorithm.get_by_id(case["suite"]),
            frame_length=frame_length,
        )
    except Exception as error:  # reported; the case is left out, which the Node side counts as a failure
        failures.append("encrypting 0x%04x %s %s: %s: %s" % (case["suite"], case["keyring"], case["label"], type(error).__name__, str(error)[:300]))
        print("  " + failures[-1])
        continue
    theirs.append(dict(case, frameLength=frame_length, ciphertext=base64.b64encode(ciphertext).decode()))
json.dump(theirs, open(os.path.join(folder, "theirs.json"), "w"))
sys.exit(1 if failures else 0)
