"""Write the bad-input corpus: small files under tests/bad_inputs/files/, committed with this script.

Run once (`python tests/bad_inputs/make_corpus.py`); tests/bad_inputs/cases.json says what each file (and each
bad flag or spec) must produce. The two large cases (a 5 MB answer, 100,000 pairs) are generated at test time
by `large_answer` and `many_pairs` below, into a temporary folder, and never committed.
"""

from __future__ import annotations

import csv
import json
import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = HERE / "files"


def pair(i: int, category: str | None = None, **extra) -> dict:
    row = {"prompt": f"Question {i}: what is {i} plus {i}?", "chosen": f"It is {2 * i}.", "rejected": f"It is {2 * i + 1}."}
    if category is not None:
        row["category"] = category
    row.update(extra)
    return row


def good_rows(n: int = 12) -> list[dict]:
    return [pair(i, "math" if i % 2 else "trivia") for i in range(n)]


def jsonl(rows) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def png_bytes() -> bytes:
    """A valid 1x1 PNG: a real binary file that is not text."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def large_answer(folder: Path, megabytes: int = 5) -> Path:
    """A JSON-lines file whose first pair has a chosen answer of `megabytes` MB (at test time only)."""
    rows = good_rows(10)
    rows[0]["chosen"] = "word " * (megabytes * 1024 * 1024 // 5)
    path = folder / "huge_answer.jsonl"
    path.write_text(jsonl(rows))
    return path


def many_pairs(folder: Path, n: int = 100_000) -> Path:
    """`n` tiny pairs (at test time only)."""
    path = folder / "many_pairs.jsonl"
    with open(path, "w") as handle:
        for i in range(n):
            handle.write(f'{{"prompt": "q{i}", "chosen": "yes {i}", "rejected": "no {i}"}}\n')
    return path


def write_corpus() -> None:
    FILES.mkdir(exist_ok=True)
    good = good_rows()
    text = {
        "empty.jsonl": "",
        "whitespace_only.jsonl": "\n  \n\n",
        "bom.jsonl": jsonl(good),
        "malformed_lines.jsonl": jsonl([*good[:2], '{"prompt": "p", "chosen": "a", ', *good[2:6], "not json at all", *good[6:]]),
        "missing_rejected.jsonl": jsonl([{k: v for k, v in r.items() if k != "rejected"} for r in good]),
        "misspelt_columns.jsonl": jsonl([{"prompt": r["prompt"], "chosn": r["chosen"], "rejectd": r["rejected"]} for r in good]),
        "number_chosen.jsonl": jsonl([*good[:3], pair(3, chosen=42), *good[4:]]),
        "nested_chosen.jsonl": jsonl([*good[:4], pair(4, chosen={"text": {"deep": [1, 2]}}), *good[5:]]),
        "null_rejected.jsonl": jsonl([*good[:5], pair(5, rejected=None), *good[6:]]),
        "identical.jsonl": jsonl([*good[:3], pair(3, chosen="Same answer.", rejected="Same answer."), *good[4:]]),
        "judgment_bad_winner.jsonl": jsonl([{"prompt": f"q{i}", "response_a": f"a{i}", "response_b": f"b{i}",
                                             "winner": ["maybe", "tie", "both", "unsure"][i % 4]} for i in range(8)]),
        "conversation_unknown_role.jsonl": jsonl([{"chosen": [{"role": "robot" if i == 2 else "user", "content": f"hi {i}"},
                                                              {"role": "assistant", "content": f"good {i}"}],
                                                   "rejected": [{"role": "robot" if i == 2 else "user", "content": f"hi {i}"},
                                                                {"role": "assistant", "content": f"bad {i}"}]}
                                                  for i in range(8)]),
        "conversation_no_content.jsonl": jsonl([{"chosen": [{"role": "user", "content": f"hi {i}"},
                                                            {"role": "assistant", **({} if i == 3 else {"content": f"good {i}"})}],
                                                 "rejected": [{"role": "user", "content": f"hi {i}"},
                                                              {"role": "assistant", "content": f"bad {i}"}]}
                                                for i in range(8)]),
        "one_pair.jsonl": jsonl(good[:1]),
        "single_category.jsonl": jsonl([pair(i, "only") for i in range(10)]),
        "long_prompts.jsonl": jsonl([pair(i, prompt="Please read this long context carefully. " * 40 + f"Question {i}?")
                                     for i in range(10)]),
        "scalar.json": "42\n",
        "pairs.tsv": "prompt\tchosen\trejected\n" + "".join(f"{r['prompt']}\t{r['chosen']}\t{r['rejected']}\n" for r in good),
        "not_a_dataset/readme.txt": "a folder that is not a save_to_disk dataset\n",
        "payloads.jsonl": jsonl([pair(i, chosen=f"<script>alert({i})</script> It is {2 * i}.",
                                      rejected=f"<img src=x onerror=alert({i})> [click](javascript:alert({i}))")
                                 for i in range(6)]),
        "no_weights_model/config.json": json.dumps({"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 32,
                                                    "num_hidden_layers": 1, "num_attention_heads": 2,
                                                    "intermediate_size": 37, "vocab_size": 99}, indent=1),
        # A model folder whose config needs its own code: with trust_remote_code off it must never run.
        "remote_code_model/config.json": json.dumps({"model_type": "evil", "architectures": ["EvilModel"],
                                                     "auto_map": {"AutoConfig": "configuration_evil.EvilConfig",
                                                                  "AutoModel": "configuration_evil.EvilModel"}}, indent=1),
        "remote_code_model/configuration_evil.py": (
            "# Test fixture: proves remote code ran by writing $NORMBT_REMOTE_CODE_MARKER; must never execute.\n"
            "import os\n\nfrom pathlib import Path\n\n"
            "Path(os.environ.get('NORMBT_REMOTE_CODE_MARKER', '/tmp/normbt_remote_code_ran')).write_text('ran')\n"
            "from transformers import PretrainedConfig\n\n\nclass EvilConfig(PretrainedConfig):\n    model_type = 'evil'\n"),
        "spec_future.json": json.dumps({"schema_version": 99, "dataset": "demo"}),
        "spec_unknown_field.json": json.dumps({"dataset": "demo", "learning_rate_typo": 0.1}),
        "spec_not_object.json": json.dumps([1, 2, 3]),
    }
    for name, content in text.items():
        path = FILES / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    (FILES / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + jsonl(good).encode())
    with open(FILES / "bom.csv", "wb") as handle:
        handle.write(b"\xef\xbb\xbf")
        handle.write(_csv(good).encode())
    (FILES / "png_named.jsonl").write_bytes(png_bytes())
    (FILES / "csv_named.parquet").write_text(_csv(good))
    (FILES / "invalid_utf8.jsonl").write_bytes(jsonl(good[:2]).encode() + b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n')
    embedded = [pair(i) for i in range(6)]
    embedded[1]["chosen"] = 'Line one,\nline "two", and\r\nline three.'
    embedded[2]["rejected"] = '"quoted", with, commas'
    (FILES / "embedded_newlines.csv").write_text(_csv(embedded), newline="")


def _csv(rows: list[dict]) -> str:
    from io import StringIO

    out = StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


if __name__ == "__main__":
    write_corpus()
    print(f"wrote {sum(1 for p in FILES.rglob('*') if p.is_file())} files under {FILES}")
