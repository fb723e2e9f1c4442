#!/usr/bin/env python3
"""Inspect an alexnet checkpoint (.safetensors) and optionally hand it to PyTorch.

Reads the file with the Python standard library and numpy only (no `safetensors` package), so
it also serves as an independent check that the C++ writer follows the public format.

  checkpoint_to_torch.py runs/x/checkpoints/last.safetensors
      lists every tensor (name, dtype, shape) and the metadata keys
  ... --check-alexnet
      also checks the tensors the trainer promises (README, "Checkpoints") with consistent
      shapes; exits 1 naming the problems otherwise
  ... --torch [--save out.pt [--model-only]]
      converts every array with torch.from_numpy (torch is imported only then) and can save
      them as a state dict; --model-only leaves out momentum.* and data.*

Exit status: 0 fine, 1 the AlexNet check failed, 2 the file cannot be read or bad usage.
"""

import argparse
import json
import os
import sys

import numpy as np

MAX_HEADER_BYTES = 100_000_000  # the limit of the safetensors package

# dtype -> (numpy dtype as stored, bytes per element). BF16 is read as its raw uint16 bits.
DTYPES = {
    "F64": ("<f8", 8),
    "F32": ("<f4", 4),
    "F16": ("<f2", 2),
    "BF16": ("<u2", 2),
    "I64": ("<i8", 8),
    "I32": ("<i4", 4),
    "I16": ("<i2", 2),
    "I8": ("i1", 1),
    "U64": ("<u8", 8),
    "U32": ("<u4", 4),
    "U16": ("<u2", 2),
    "U8": ("u1", 1),
    "BOOL": ("?", 1),
}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")

CONVS = ["conv1", "conv2", "conv3", "conv4", "conv5"]
FCS = ["fc6", "fc7", "fc8"]
CHECKPOINT_FORMAT = "alexnet-checkpoint/1"

# README, "Checkpoints": the paper's network, whole (untowered), in PyTorch layouts.
PAPER_SHAPES = {
    "conv1.weight": (96, 3, 11, 11), "conv1.bias": (96,),
    "conv2.weight": (256, 48, 5, 5), "conv2.bias": (256,),
    "conv3.weight": (384, 256, 3, 3), "conv3.bias": (384,),
    "conv4.weight": (384, 192, 3, 3), "conv4.bias": (384,),
    "conv5.weight": (256, 192, 3, 3), "conv5.bias": (256,),
    "fc6.weight": (4096, 9216), "fc6.bias": (4096,),
    "fc7.weight": (4096, 4096), "fc7.bias": (4096,),
    "fc8.weight": (1000, 4096), "fc8.bias": (1000,),
}


class CheckpointError(Exception):
    pass


def _is_count(v):
    # bool is an int in Python; JSON true must not pass as 1.
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise CheckpointError(f"header has the key {k!r} twice")
        d[k] = v
    return d


def read_header(path):
    """Returns (metadata, entries sorted by offset, data_start); entries are
    (name, dtype, shape, begin, end). Validates like the safetensors package does."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise CheckpointError(f"cannot open: {e.strerror}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise CheckpointError(
                f"file is only {size} bytes, shorter than the 8-byte header length "
                "(truncated or not a safetensors file)")
        first = f.read(8)
        n = int.from_bytes(first, "little")
        foreign = " (truncated or not a safetensors file)"
        if first[:4] == b"PK\x03\x04":
            foreign = (" (truncated, or not a safetensors file: it looks like a zip archive, "
                       "e.g. a PyTorch .pt file)")
        if n > size - 8:
            raise CheckpointError(
                f"header length {n} is larger than the rest of the file ({size - 8} bytes)"
                + foreign)
        if n > MAX_HEADER_BYTES:
            raise CheckpointError(f"header length {n} exceeds {MAX_HEADER_BYTES} bytes" + foreign)
        raw = f.read(n)
    if not raw.startswith(b"{"):
        raise CheckpointError("header does not start with '{'" + foreign)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as e:
        raise CheckpointError(f"header is not valid UTF-8 at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"header is not valid JSON: {e}") from None

    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError("__metadata__ must map strings to strings")

    entries = []
    for name, info in header.items():
        where = f"tensor {name!r}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"{where}: expected an object with dtype, shape, data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in DTYPES:
            raise CheckpointError(f"{where}: unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
            raise CheckpointError(f"{where}: shape must be a list of non-negative integers")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(_is_count(o) for o in offsets) or offsets[1] < offsets[0]):
            raise CheckpointError(f"{where}: data_offsets must be [begin, end] with begin <= end")
        need = DTYPES[dtype][1]
        for d in shape:
            need *= d
        if offsets[1] - offsets[0] != need:
            raise CheckpointError(
                f"{where}: data_offsets {offsets} span {offsets[1] - offsets[0]} bytes but shape "
                f"{shape} of {dtype} needs {need}")
        entries.append((name, dtype, tuple(shape), offsets[0], offsets[1]))

    data_size = size - 8 - n
    promised = max((e[4] for e in entries), default=0)
    if promised > data_size:
        raise CheckpointError(
            f"file is truncated: header promises {promised} bytes of data, file has {data_size}")
    entries.sort(key=lambda e: (e[3], e[4]))
    covered, previous = 0, None
    for e in entries:
        if e[3] > covered:
            raise CheckpointError(f"hole in the data: bytes [{covered}, {e[3]}) belong to no "
                                  f"tensor (before tensor {e[0]!r})")
        if e[3] < covered:
            raise CheckpointError(f"tensor {e[0]!r} overlaps tensor {previous!r}")
        covered, previous = e[4], e[0]
    if covered != data_size:
        raise CheckpointError(
            f"the tensors cover {covered} bytes of data but the file has {data_size}")
    return metadata, entries, 8 + n


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path):
    """Returns (metadata, {name: (dtype, numpy array)}) in file order. BF16 arrays come back as
    float32 (exact); every array is writable and owns its memory."""
    metadata, entries, data_start = read_header(path)
    arrays = {}
    with open(path, "rb") as f:
        for name, dtype, shape, begin, end in entries:
            buf = bytearray(end - begin)
            f.seek(data_start + begin)
            if f.readinto(buf) != len(buf):
                raise CheckpointError(f"tensor {name!r}: unexpected end of file")
            a = np.frombuffer(buf, dtype=DTYPES[dtype][0]).reshape(shape)
            if dtype == "BF16":
                a = bf16_to_f32(a)
            arrays[name] = (dtype, a)
    return metadata, arrays


def check_alexnet(arrays, metadata):
    """Returns (problems, warnings, summary) for the checkpoint contract (README, "Checkpoints")."""
    problems, warnings = [], []

    def shape(name):
        return tuple(arrays[name][1].shape) if name in arrays else None

    for layer in CONVS + FCS:
        rank = 4 if layer in CONVS else 2
        w, b = shape(f"{layer}.weight"), shape(f"{layer}.bias")
        if w is None:
            problems.append(f"{layer}.weight is missing")
            continue
        if len(w) != rank:
            problems.append(f"{layer}.weight has shape {list(w)}, expected {rank} dimensions")
            continue
        if rank == 4 and w[2] != w[3]:
            problems.append(f"{layer}.weight has a non-square kernel {w[2]}x{w[3]}")
        if b is None:
            problems.append(f"{layer}.bias is missing")
        elif b != (w[0],):
            problems.append(f"{layer}.bias has shape {list(b)}, expected [{w[0]}]")
        for name in (f"{layer}.weight", f"{layer}.bias"):
            if name in arrays and arrays[name][0] not in FLOAT_DTYPES:
                problems.append(f"{name} has dtype {arrays[name][0]}, expected a float type")
    if problems:
        return problems, warnings, None

    out = {layer: shape(f"{layer}.weight")[0] for layer in CONVS + FCS}
    inp = {layer: shape(f"{layer}.weight")[1] for layer in CONVS + FCS}
    kernel = {layer: shape(f"{layer}.weight")[2] for layer in CONVS}

    if inp["conv1"] != 3:
        problems.append(f"conv1.weight takes {inp['conv1']} input channels, expected 3 (RGB)")
    # conv2, conv4 and conv5 see only their own tower's maps (PyTorch groups = towers).
    towers = out["conv1"] // inp["conv2"] if inp["conv2"] else 0
    if towers < 1 or out["conv1"] != towers * inp["conv2"]:
        problems.append(f"conv2.weight takes {inp['conv2']} input maps, which does not divide "
                        f"conv1's {out['conv1']} filters into towers")
        towers = 0
    else:
        expect_in = {"conv3": out["conv2"], "conv4": out["conv3"] // towers,
                     "conv5": out["conv4"] // towers}
        for layer, prev in (("conv2", "conv1"), ("conv3", "conv2"), ("conv4", "conv3"),
                            ("conv5", "conv4")):
            if out[prev] % towers:
                problems.append(f"{prev} has {out[prev]} filters, not divisible by {towers} "
                                "towers")
            if layer in expect_in and inp[layer] != expect_in[layer]:
                kind = "all" if layer == "conv3" else f"1/{towers} of the"
                problems.append(
                    f"{layer}.weight takes {inp[layer]} input maps, expected {expect_in[layer]} "
                    f"({kind} {out[prev]} maps of {prev}, {towers} towers)")
        if out["conv5"] % towers:
            problems.append(f"conv5 has {out['conv5']} filters, not divisible by {towers} towers")

    pool5 = None
    if inp["fc6"] % out["conv5"]:
        problems.append(f"fc6.weight takes {inp['fc6']} inputs, not a multiple of conv5's "
                        f"{out['conv5']} maps")
    else:
        area = inp["fc6"] // out["conv5"]
        pool5 = int(round(area ** 0.5))
        if pool5 * pool5 != area:
            problems.append(f"fc6.weight takes {inp['fc6']} inputs = {out['conv5']} maps x "
                            f"{area}, which is not a square pool5 output")
            pool5 = None
    for layer, prev in (("fc7", "fc6"), ("fc8", "fc7")):
        if inp[layer] != out[prev]:
            problems.append(f"{layer}.weight takes {inp[layer]} inputs, expected {out[prev]} "
                            f"({prev}'s units)")

    for layer in CONVS + FCS:
        for kind in ("weight", "bias"):
            name = f"{layer}.{kind}"
            m = shape(f"momentum.{name}")
            if m is None:
                problems.append(f"momentum.{name} is missing")
            elif m != shape(name):
                problems.append(f"momentum.{name} has shape {list(m)}, {name} has "
                                f"{list(shape(name))}")

    mean = shape("data.mean")
    if mean is None:
        warnings.append("data.mean is missing")
    elif len(mean) != 3 or mean[0] != 3 or mean[1] != mean[2]:
        problems.append(f"data.mean has shape {list(mean)}, expected [3, S, S]")
    for name, want in (("data.pca_eigval", (3,)), ("data.pca_eigvec", (3, 3))):
        s = shape(name)
        if s is None:
            warnings.append(f"{name} is missing")
        elif s != want:
            problems.append(f"{name} has shape {list(s)}, expected {list(want)}")

    fmt = metadata.get("format")
    if fmt is None:
        warnings.append("metadata has no 'format' key")
    elif fmt != CHECKPOINT_FORMAT:
        problems.append(f"metadata format is {fmt!r}, expected {CHECKPOINT_FORMAT!r}")

    summary = (f"AlexNet: conv filters {'/'.join(str(out[c]) for c in CONVS)}, kernels "
               f"{'/'.join(str(kernel[c]) for c in CONVS)}, towers {towers or '?'}, pool5 "
               f"{f'{pool5}x{pool5}' if pool5 else '?'}, fc units "
               f"{'/'.join(str(out[f]) for f in FCS)}")
    return problems, warnings, summary


def check_paper_shapes(arrays):
    """Problems where the file differs from the paper network's names and shapes."""
    problems = []
    for name, want in PAPER_SHAPES.items():
        got = tuple(arrays[name][1].shape) if name in arrays else None
        if got != want:
            problems.append(f"{name} is {list(got) if got else 'missing'}, the paper network "
                            f"has {list(want)}")
    return problems


def load_into_torch_modules(tensors, arrays):
    """Loads the weights into plain torch.nn layers with strict name and shape checking:
    what a PyTorch user of the checkpoint does."""
    import torch

    w = {name: tensors[name] for name in tensors
         if not name.startswith(("momentum.", "data."))}
    towers = w["conv1.weight"].shape[0] // w["conv2.weight"].shape[1]
    layers = torch.nn.ModuleDict()
    for name in CONVS:
        out, inp, k, _ = w[f"{name}.weight"].shape
        groups = 1 if name in ("conv1", "conv3") else towers
        layers[name] = torch.nn.Conv2d(inp * groups, out, k, groups=groups)
    for name in FCS:
        out, inp = w[f"{name}.weight"].shape
        layers[name] = torch.nn.Linear(inp, out)
    layers.load_state_dict(w, strict=True)
    return len(w)


def to_torch(arrays):
    import torch  # optional: only this mode needs it

    tensors = {}
    for name, (dtype, a) in arrays.items():
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))
        if dtype in ("U16", "U32"):  # no unsigned types wider than 8 bits in torch
            a = a.astype(np.int64)
        elif dtype == "U64":
            if a.size and a.max() >= 2**63:
                raise CheckpointError(f"tensor {name!r}: U64 values do not fit torch.int64")
            a = a.astype(np.int64)
        t = torch.from_numpy(a)
        if dtype == "BF16":
            t = t.to(torch.bfloat16)  # exact: the values came from bfloat16
        tensors[name] = t
    return tensors


def preview(value, width=60):
    first = value.split("\n", 1)[0]
    more = "\n" in value or len(first) > width
    return repr(first[:width]) + (f" ... ({len(value)} chars)" if more else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a .safetensors file")
    parser.add_argument("--check-alexnet", action="store_true",
                        help="verify the AlexNet tensors and shapes the README's Checkpoints section promises")
    parser.add_argument("--torch", action="store_true", help="convert to torch tensors")
    parser.add_argument("--save", metavar="OUT.pt",
                        help="save the tensors as a torch state dict (implies --torch)")
    parser.add_argument("--model-only", action="store_true",
                        help="with --save: leave out momentum.* and data.*")
    parser.add_argument("--expect-paper", action="store_true",
                        help="with --check-alexnet: also require the paper network's shapes")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not list the tensors")
    args = parser.parse_args(argv)
    prog = os.path.basename(sys.argv[0])

    try:
        metadata, arrays = read_safetensors(args.checkpoint)
    except CheckpointError as e:
        print(f"{prog}: checkpoint '{args.checkpoint}': {e}", file=sys.stderr)
        return 2

    if not args.quiet:
        width = max((len(n) for n in arrays), default=0)
        for name, (dtype, a) in arrays.items():
            print(f"{name:<{width}}  {dtype:<4}  {list(a.shape)}")
        total = sum(a.size for _, a in arrays.values())
        print(f"{len(arrays)} tensors, {total} elements")
        print("metadata keys: " + (", ".join(sorted(metadata)) or "(none)"))
        for key in sorted(metadata):
            print(f"  {key}: {preview(metadata[key])}")

    status = 0
    if args.check_alexnet:
        problems, warnings, summary = check_alexnet(arrays, metadata)
        if args.expect_paper:
            problems += check_paper_shapes(arrays)
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        if problems:
            for p in problems:
                print(f"{prog}: checkpoint '{args.checkpoint}': {p}", file=sys.stderr)
            status = 1
        else:
            print(summary)
            print("AlexNet check passed")

    if args.torch or args.save:
        try:
            tensors = to_torch(arrays)
        except ImportError:
            print(f"{prog}: --torch needs PyTorch (import torch failed)", file=sys.stderr)
            return 2
        except CheckpointError as e:
            print(f"{prog}: checkpoint '{args.checkpoint}': {e}", file=sys.stderr)
            return 2
        print(f"converted {len(tensors)} tensors to torch "
              f"({', '.join(sorted({str(t.dtype) for t in tensors.values()}))})")
        if args.check_alexnet and status == 0:
            n = load_into_torch_modules(tensors, arrays)
            print(f"loaded {n} tensors into torch.nn Conv2d/Linear layers (strict)")
        if args.save:
            import torch

            if args.model_only:
                tensors = {n: t for n, t in tensors.items()
                           if not n.startswith(("momentum.", "data."))}
            torch.save(tensors, args.save)
            print(f"saved {len(tensors)} tensors to {args.save}")
    return status


if __name__ == "__main__":
    sys.exit(main())
