"""Reads the records of an offline W&B run file (``run-ID.wandb``), for the
tests: wandb ships no reader in Python. The file is a 7-byte header (":W&B",
a magic number, a version) and then LevelDB's log format: 32 KiB blocks of
records, each a 7-byte header (CRC, little-endian length, type: full, first,
middle, last) and a piece of a serialised ``Record`` protobuf."""

import json
import struct
from pathlib import Path

BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _payloads(data: bytes):
    assert data[:4] == b":W&B", "not a W&B run file"
    position, pieces = 7, []
    while position + 7 <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < 7:  # the block's zero-filled trailer
            position += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        piece = data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind == 0 and length == 0:
            break
        pieces.append(piece)
        if kind in (FULL, LAST):
            yield b"".join(pieces)
            pieces = []


def records(path: str | Path) -> list:
    from wandb.proto import wandb_internal_pb2

    out = []
    for payload in _payloads(Path(path).read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        out.append(record)
    return out


def history(path: str | Path) -> list[dict]:
    """The rows of ``run.log``, as dicts of their values."""
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
    return rows


def config(path: str | Path) -> dict:
    """The config the run started with (its "run" record)."""
    for record in records(path):
        if record.WhichOneof("record_type") == "run":
            return {
                item.key: json.loads(item.value_json)
                for item in record.run.config.update
            }
    return {}
