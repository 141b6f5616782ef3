"""The files a peer program of scripts/interop.ts reads and writes in its folder (columns: scripts/interop.ts)."""
import base64
import os

COLUMNS = ("suite", "keyring", "label", "frameLength", "peerFrameLength", "plaintext", "ciphertext")


def read_rows(folder, name):
    """The tab-separated rows of that file in the folder."""
    with open(os.path.join(folder, name), encoding="utf-8") as rows:
        return [line.rstrip("\n").split("\t") for line in rows if line.strip()]


def read_folder(folder):
    """keys.tsv as a dict, context.tsv decoded, and ours.tsv as one dict a message (numbers as ints)."""
    keys = dict(read_rows(folder, "keys.tsv"))
    context = {base64.b64decode(key).decode(): base64.b64decode(value).decode() for key, value in read_rows(folder, "context.tsv")}
    ours = [dict(zip(COLUMNS, row)) for row in read_rows(folder, "ours.tsv")]
    for case in ours:
        case["suite"], case["frameLength"], case["peerFrameLength"] = int(case["suite"]), int(case["frameLength"]), int(case["peerFrameLength"])
    return keys, context, ours


def theirs_row(case, ciphertext):
    """The row of theirs.tsv for a case: its columns, with the peer's ciphertext."""
    return [str(case[column]) for column in COLUMNS[:-1]] + [base64.b64encode(ciphertext).decode()]


def write_results(folder, writer, theirs):
    """writer.txt (who wrote theirs.tsv) and theirs.tsv."""
    with open(os.path.join(folder, "writer.txt"), "w", encoding="utf-8") as out:
        out.write(writer)
    with open(os.path.join(folder, "theirs.tsv"), "w", encoding="utf-8") as out:
        out.writelines("\t".join(row) + "\n" for row in theirs)
