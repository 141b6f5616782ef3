"""The AWS Encryption CLI's side of scripts/interop.ts (npm run interop:cli): run by it, with the folder holding
keys.tsv, context.tsv and ours.tsv (their columns: scripts/interop.ts), under the Python that has the CLI installed.

Decrypts kms-envelope's messages (ours.tsv) with the `aws-encryption-cli` command, one process a message as a user
runs it, and checks each against its case (the plaintext, and the context, suite and frame length the CLI's metadata
output reports), then has the CLI encrypt every case itself into theirs.tsv. The CLI's only keys are AWS KMS keys:
here on the KMS emulator (AWS_ENDPOINT_URL_KMS), a multi-Region key decrypting through its replica in another Region.
Exit status: 0 when all decrypted, 1 when some did not, 2 when the CLI cannot be found.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

from peer_files import read_folder, theirs_row, write_results

try:
    import aws_encryption_sdk
    import aws_encryption_sdk_cli
    from aws_encryption_sdk.identifiers import Algorithm
except ImportError as error:
    sys.stderr.write("interop: cannot import the AWS Encryption CLI (%s).\n" % error)
    sys.stderr.write("Run this with the Python it is installed in (--python <venv>/bin/python).\n")
    sys.exit(2)

folder = sys.argv[1]
COMMAND = os.path.join(os.path.dirname(sys.executable), "aws-encryption-cli")
if not os.path.exists(COMMAND):
    COMMAND = shutil.which("aws-encryption-cli")
if COMMAND is None:
    sys.stderr.write("interop: no aws-encryption-cli beside %s or on the PATH.\n" % sys.executable)
    sys.exit(2)

keys, context, ours = read_folder(folder)
CONTEXT_ARGUMENTS = ["--encryption-context"] + ["%s=%s" % pair for pair in context.items()]
work = tempfile.mkdtemp(prefix="interop-cli-")


def key_arn(name, decrypting):
    """The KMS key of kms-envelope's keyring of that name; a multi-Region key through its replica when decrypting."""
    if name == "kms":
        return keys["kms-key"]
    return keys["kms-replica" if decrypting else "kms-mrk"]


def run_cli(index, mode, data, arguments):
    """`aws-encryption-cli --<mode>` over `data` in files of its own; (output bytes, metadata) or an error text."""
    source, target, metadata = (os.path.join(work, "%d-%s.%s" % (index, mode, kind)) for kind in ("in", "out", "json"))
    with open(source, "wb") as out:
        out.write(data)
    command = [COMMAND, "--" + mode, "--input", source, "--output", target, "--metadata-output", metadata] + arguments
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if finished.returncode != 0 or not os.path.exists(target):
        return "exit %d: %s" % (finished.returncode, (finished.stderr or finished.stdout).strip()[-300:])
    with open(target, "rb") as result, open(metadata, encoding="utf-8") as report:
        return result.read(), json.loads(report.read())


def check_decrypt(index, case):
    """Decrypt our message of that case with the CLI; a failure text, or None."""
    what = "0x%04x %s %s" % (case["suite"], case["keyring"], case["label"])
    arguments = ["--wrapping-keys", "key=" + key_arn(case["keyring"], True), "--commitment-policy", "require-encrypt-allow-decrypt"]
    outcome = run_cli(index, "decrypt", base64.b64decode(case["ciphertext"]), arguments + CONTEXT_ARGUMENTS)
    if isinstance(outcome, str):
        return "%s: %s" % (what, outcome)
    plaintext, metadata = outcome
    header = metadata["header"]
    found = {key: value for key, value in header["encryption_context"].items() if key != "aws-crypto-public-key"}
    if plaintext != base64.b64decode(case["plaintext"]):
        return what + ": another plaintext"
    if found != context:
        return what + ": another context"
    if Algorithm[header["algorithm"]].algorithm_id != case["suite"] or header["frame_length"] != case["frameLength"]:
        return what + ": another suite or frame length"
    return None


def encrypt(index, case):
    """The CLI's message for that case, as a row of theirs.tsv, or a failure text."""
    committing = case["suite"] in (0x0478, 0x0578)
    arguments = [
        "--wrapping-keys",
        "key=" + key_arn(case["keyring"], False),
        "--algorithm",
        Algorithm.get_by_id(case["suite"]).name,
        "--frame-length",
        str(case["peerFrameLength"]),
        "--commitment-policy",
        "require-encrypt-require-decrypt" if committing else "forbid-encrypt-allow-decrypt",
    ]
    outcome = run_cli(len(ours) + index, "encrypt", base64.b64decode(case["plaintext"]), arguments + CONTEXT_ARGUMENTS)
    if isinstance(outcome, str):
        return "encrypting 0x%04x %s %s: %s" % (case["suite"], case["keyring"], case["label"], outcome)
    return theirs_row(case, outcome[0])


# Four at a time: each is a process of its own, which spends most of its time starting Python.
with ThreadPoolExecutor(max_workers=4) as pool:
    failures = [failure for failure in pool.map(check_decrypt, range(len(ours)), ours) if failure is not None]
    written = list(pool.map(encrypt, range(len(ours)), ours))
writer = "the AWS Encryption CLI %s (Python SDK %s)" % (aws_encryption_sdk_cli.__version__, aws_encryption_sdk.__version__)
print("%s decrypted %d of kms-envelope's %d messages" % (writer, len(ours) - len(failures), len(ours)))
for failure in failures:
    print("  " + failure)
theirs = [row for row in written if not isinstance(row, str)]
for failure in (row for row in written if isinstance(row, str)):  # the case is left out, which the Node side counts
    failures.append(failure)
    print("  " + failure)
write_results(folder, writer, theirs)
shutil.rmtree(work, ignore_errors=True)
sys.exit(1 if failures else 0)
