"""Writes the bad-input corpus in this directory (run once; the outputs are checked in).

Every file is something a real run could meet: a cut download, a zero-byte file, a header
that lies about sizes, a label list edited by hand, a pickle that tries to run code. The
test that uses them is tests/bad_inputs.rs. Python only writes bytes here: nothing in this
script needs torch, so the corpus is independent of our own writers.
"""
import pickle
import random
import struct
import zipfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
FACE_JPG = (HERE.parent / "fixtures/images/face.jpg").read_bytes()
rng = random.Random(2048)


def write(name, data):
    path = HERE / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


# Images (swinface infer).
write("images/empty.jpg", b"")
write("images/truncated.jpg", FACE_JPG[: len(FACE_JPG) // 3])
write("images/garbage.jpg", bytes(rng.randrange(256) for _ in range(512)))
write("images/garbage.png", b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(512)))
# A well-formed PNG whose header claims 100000 x 100000 RGB pixels (30 GB decoded).
ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
write(
    "images/huge_dimensions.png",
    b"\x89PNG\r\n\x1a\n"
    + png_chunk(b"IHDR", ihdr)
    + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    + png_chunk(b"IEND", b""),
)
# The fixture JPEG with its frame header (SOF0) rewritten to 65000 x 65000.
sof = FACE_JPG.index(b"\xff\xc0")
write("images/huge_dimensions.jpg", FACE_JPG[: sof + 5] + struct.pack(">HH", 65000, 65000) + FACE_JPG[sof + 9 :])

# Label lists (swinface data check, one config key pointed at the file).
write("labels/raf_missing_label.txt", "train_00001.jpg 5\ntrain_00002.jpg\n")
write("labels/raf_label_out_of_range.txt", "train_00001.jpg 5\ntrain_00002.jpg 9\n")
write("labels/raf_label_negative.txt", "train_00001.jpg -1\n")
write("labels/raf_label_nan.txt", "train_00001.jpg 5\ntrain_00002.jpg nan\n")
write("labels/raf_non_utf8_name.txt", b"train_00001.jpg 5\ntrain_\xff\xfe01.jpg 3\n")
celeba_header = "image_id " + " ".join(f"a{k}" for k in range(40)) + "\n"
write("labels/celeba_wrong_columns.txt", celeba_header + "000001.jpg " + "0 " * 39 + "\n")
write("labels/celeba_label_nan.txt", celeba_header + "000001.jpg " + "0 " * 20 + "nan " + "1 " * 19 + "\n")
write("labels/celeba_label_out_of_range.txt", celeba_header + "000001.jpg " + "0 " * 20 + "7 " + "1 " * 19 + "\n")
write("labels/age_gender_negative_age/IMDB/label.txt", "name age gender\n000001.jpg 30 1.0\n000002.jpg -4 0.0\n")
write("labels/age_gender_wrong_columns/IMDB/label.txt", "name age gender\n000001.jpg 30\n")
write("labels/affectnet_wrong_columns.txt", "name split expression\naffectnet_000001.jpg train\n")
write("labels/affectnet_label_out_of_range.txt", "name split expression\naffectnet_000001.jpg train 12\n")


# RecordIO (config key `rec`): two records holding the fixture JPEG, then broken.
def record(payload, label, key):
    body = struct.pack("<IfQQ", 0, label, key, 0) + payload
    pad = (4 - len(body) % 4) % 4
    return struct.pack("<II", 0xCED7230A, len(body)) + body + b"\x00" * pad


def rec_pair(name, records, idx_lines):
    write(f"recordio/{name}/train.rec", b"".join(records))
    write(f"recordio/{name}/train.idx", "".join(f"{k}\t{o}\n" for k, o in idx_lines))


# Keys 0, 1, 2 are images (record 0 has no header flag, so every key is an image); the
# last record is the damaged one.
good = [record(FACE_JPG, 0.0, 0), record(FACE_JPG, 1.0, 1), record(FACE_JPG, 1.0, 2)]
offsets = [0, len(good[0]), 2 * len(good[0])]
keys = [0, 1, 2]
bad_magic = bytearray(good[2])
bad_magic[0:4] = b"\x0b\xad\xf0\x0d"
rec_pair("bad_magic", good[:2] + [bytes(bad_magic)], zip(keys, offsets))
rec_pair("truncated", good[:2] + [good[2][: len(good[2]) // 2]], zip(keys, offsets))
rec_pair("idx_past_end", good, [(0, 0), (1, offsets[1]), (2, 10_000_000)])
# A record whose length field claims 512 MiB.
huge = bytearray(good[2])
huge[4:8] = struct.pack("<I", (512 << 20) - 1)
rec_pair("length_past_end", good[:2] + [bytes(huge)], zip(keys, offsets))

# Pickles. An insightface .bin is pickle.dumps((bins, issame_list)).
write("pickles/lfw_wrong_structure.bin", pickle.dumps({"bins": [], "issame": []}, protocol=2))
# Three pairs promised, two images given.
write("pickles/lfw_too_few_images.bin", pickle.dumps(([FACE_JPG] * 2, [True, False, True]), protocol=2))
# GLOBAL os.system + REDUCE: unpickling with Python's pickle would run the shell command.
EVIL = b"cos\nsystem\n(S'touch /tmp/swinface_bad_input_pwned'\ntR."
write("pickles/lfw_evil_global.bin", EVIL)
# torch.save layout (a zip with archive/data.pkl): one whose pickle runs code, one that is a
# valid pickle of the wrong structure.
for name, pkl in [
    ("evil_global.pt", EVIL),
    ("wrong_structure.pt", pickle.dumps({"epoch": 3, "note": "no state dicts"}, protocol=2)),
]:
    with zipfile.ZipFile(HERE / "pickles" / name, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")

# YAML (swinface train).
write("yaml/unknown_key.yaml", "lerning_rate: 0.1\n")
write("yaml/wrong_type.yaml", "lr: fast\n")
write("yaml/wrong_nesting.yaml", "swin:\n  depths: two\n")
write("yaml/not_a_mapping.yaml", "- just\n- a list\n")
