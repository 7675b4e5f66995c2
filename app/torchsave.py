"""What a torch.save file declares, read from its pickle's opcodes without running them.

torch.load(weights_only=True) unpickles with an allow-list, but it allocates every storage
at the size the pickle declares before it reads a byte of it, and it builds every object
the pickle asks for. So before torch.load sees an upload, `scan` walks the pickle with
`pickletools.genops` (which decodes opcodes and never executes one), keeps the few values
that matter on a stack of its own (strings, numbers, tuples, lists, global names) and
records each storage's persistent id: its class (so its element size), its key and its
declared element count. Callers compare those with the bytes that really follow.

Two layouts are read: the zip format (torch >= 1.6; `data.pkl` beside one member per
storage) and the legacy format (before 1.6; several pickles one after another, then each
storage's element count and bytes), in which torchvision's own older weights are saved.
"""

from __future__ import annotations

import pickle
import pickletools
import struct
import threading
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple, cast

from app.errors import Cancelled, TooLarge, UnreadableFile, UnsupportedType, excerpt

# The legacy format's first two pickles (torch/serialization.py, MAGIC_NUMBER and
# PROTOCOL_VERSION).
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Bytes per element of each storage class torch writes in a persistent id. Typed storages
# for the dtypes that have one; UntypedStorage (float8, uint16, …) counts bytes.
ITEMSIZE = {
    ("torch", "DoubleStorage"): 8,
    ("torch", "FloatStorage"): 4,
    ("torch", "HalfStorage"): 2,
    ("torch", "BFloat16Storage"): 2,
    ("torch", "LongStorage"): 8,
    ("torch", "IntStorage"): 4,
    ("torch", "ShortStorage"): 2,
    ("torch", "CharStorage"): 1,
    ("torch", "ByteStorage"): 1,
    ("torch", "BoolStorage"): 1,
    ("torch", "ComplexDoubleStorage"): 16,
    ("torch", "ComplexFloatStorage"): 8,
    ("torch", "QInt8Storage"): 1,
    ("torch", "QUInt8Storage"): 1,
    ("torch", "QInt32Storage"): 4,
    ("torch", "QUInt4x2Storage"): 1,
    ("torch", "QUInt2x4Storage"): 1,
    ("torch.storage", "UntypedStorage"): 1,
}
# How often (in opcodes) a long walk looks at its stop event.
_CHECK_EVERY = 4096
# Longest line a text opcode (GLOBAL, INT, …) may read: a missing newline is not a search
# through the whole upload.
_MAX_LINE = 4096


class Global(NamedTuple):
    """A global a pickle names (GLOBAL or STACK_GLOBAL); never imported here."""

    module: str
    name: str


class _Opaque:
    """Any value the walk does not need to know (dicts, objects, floats, …)."""

    __slots__ = ()


_OPAQUE = _Opaque()
_MARK = object()


@dataclass(frozen=True)
class Storage:
    """One storage as the pickle declares it."""

    key: str
    kind: str  # its class, as torch names it: FloatStorage, UntypedStorage, …
    itemsize: int
    numel: int
    view: tuple[str, int, int] | None = None  # legacy only: (view key, offset, size)

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize


@dataclass
class Scan:
    """One pickle, walked: its value where it is a literal, its storages, its tensors."""

    value: Any
    storages: dict[str, Storage] = field(default_factory=dict)
    tensors: int = 0  # calls of torch._utils._rebuild_*: one per tensor it builds
    ops: int = 0
    end: int = 0  # the offset just past its STOP


class _Reader:
    """A file object over part of a buffer, for genops, without copying the buffer."""

    def __init__(self, data: bytes | bytearray | memoryview, start: int) -> None:
        self.view = memoryview(data)
        self.pos = start

    def read(self, n: int = -1, /) -> bytes:
        n = len(self.view) - self.pos if n < 0 else n
        out = bytes(self.view[self.pos : self.pos + n])
        self.pos += len(out)
        return out

    def readline(self, size: int | None = -1, /) -> bytes:
        chunk = bytes(self.view[self.pos : self.pos + _MAX_LINE])
        end = chunk.find(b"\n")
        line = chunk if end < 0 else chunk[: end + 1]
        self.pos += len(line)
        return line

    def tell(self) -> int:
        return self.pos


# Opcodes whose argument is the value they push.
_LITERALS = frozenset(
    ("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING",
     "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "UNICODE",
     "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8")
)  # fmt: skip
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_PUTS = frozenset(("PUT", "BINPUT", "LONG_BINPUT"))
_GETS = frozenset(("GET", "BINGET", "LONG_BINGET"))
_TUPLES = {"EMPTY_TUPLE": 0, "TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}


def _text(value: Any) -> str | None:
    """A string a pickle holds (a Python 2 pickle may hold it as bytes), or None."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes) and value.isascii():
        return value.decode("ascii")
    return None


def scan(
    data: bytes | bytearray | memoryview,
    start: int,
    what: str,
    *,
    max_ops: int,
    max_tensors: int,
    stop: threading.Event | None = None,
) -> Scan:
    """Walk the pickle at `data[start:]` up to its STOP, executing nothing.

    Refused: a damaged pickle (400), more than `max_ops` opcodes or `max_tensors` tensor
    rebuilds (413, before torch would build them), a persistent id that is not a storage
    of a known class with a whole, non-negative element count (400/415).
    """
    out = Scan(_OPAQUE)
    stack: list[Any] = []
    marks: list[list[Any]] = []
    memo: dict[int, Any] = {}
    reader = _Reader(data, start)
    try:
        for op, arg, _ in pickletools.genops(cast(IO[bytes], reader)):
            out.ops += 1
            if out.ops > max_ops:
                raise TooLarge(
                    f"{what} is a pickle of more than {max_ops} operations; a state dict of "
                    f"at most {max_tensors} tensors needs fewer. Save only the model's state "
                    "dict, or as .safetensors."
                )
            if stop is not None and out.ops % _CHECK_EVERY == 0 and stop.is_set():
                raise Cancelled("stopped while reading a pickle")
            name = op.name
            if name in _LITERALS:
                stack.append(arg)
            elif name in _CONSTANTS:
                stack.append(_CONSTANTS[name])
            elif name == "MARK":
                marks.append(stack)
                stack = []
            elif name in _PUTS:
                memo[int(arg or 0)] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in _GETS:
                if int(arg or 0) not in memo:
                    raise ValueError(f"memo key {arg} used before it is set")
                stack.append(memo[int(arg or 0)])
            elif name in _TUPLES:
                n = _TUPLES[name]
                items = tuple(stack[len(stack) - n :]) if n else ()
                del stack[len(stack) - n :]
                if len(items) != n:
                    raise IndexError("stack underflow")
                stack.append(items)
            elif name == "TUPLE":
                items = tuple(stack)
                stack = marks.pop()
                stack.append(items)
            elif name == "EMPTY_LIST":
                stack.append([])
            elif name == "LIST":
                items_list = list(stack)
                stack = marks.pop()
                stack.append(items_list)
            elif name == "APPEND":
                item = stack.pop()
                if isinstance(stack[-1], list):
                    stack[-1].append(item)
            elif name == "APPENDS":
                items_list = stack
                stack = marks.pop()
                if isinstance(stack[-1], list):
                    stack[-1].extend(items_list)
            elif name == "GLOBAL":
                module, _, gname = str(arg).partition(" ")
                stack.append(Global(module, gname))
            elif name == "STACK_GLOBAL":
                gname, module = stack.pop(), stack.pop()
                stack.append(Global(str(module), str(gname)))
            elif name == "DUP":
                stack.append(stack[-1])
            elif name == "BINPERSID":
                _storage(stack.pop(), out, what)
                stack.append(_OPAQUE)
            elif name == "PERSID":
                raise UnreadableFile(
                    f"{what} holds a text persistent id; torch.save writes storages as tuples.",
                    code="bad_pickle",
                )
            elif name == "REDUCE":
                stack.pop()
                func = stack.pop()
                if isinstance(func, Global) and func.module == "torch._utils":
                    out.tensors += func.name.startswith("_rebuild_")
                    if out.tensors > max_tensors:
                        raise TooLarge(
                            f"{what} holds more than {max_tensors} tensors; the limit is "
                            f"{max_tensors} (zero-size ones count too). Save only the "
                            "model's state dict."
                        )
                stack.append(_OPAQUE)
            elif name == "PROTO":
                if not 2 <= int(arg or 0) <= pickle.HIGHEST_PROTOCOL:
                    raise ValueError(f"pickle protocol {arg}")
            elif name == "STOP":
                out.value = stack.pop()
                if stack or marks:
                    raise ValueError("values left on the stack at STOP")
            else:
                _generic(op, stack, marks)
    except (TooLarge, UnreadableFile, UnsupportedType, Cancelled):
        raise
    except (ValueError, IndexError, KeyError, TypeError, EOFError, OverflowError) as exc:
        # genops: unknown opcode, an argument cut short, a missing STOP; the stack: a pop
        # from an empty stack or a missing MARK.
        raise UnreadableFile(
            f"{what} is not a readable torch.save pickle: {excerpt(exc, 120)} (at byte "
            f"{reader.pos}).",
            code="bad_pickle",
        ) from None
    out.end = reader.pos
    return out


def _generic(op: pickletools.OpcodeInfo, stack: list[Any], marks: list[list[Any]]) -> None:
    """Any other opcode, by the stack effect pickletools documents; it pushes opaque values."""
    before = op.stack_before
    if pickletools.markobject in before:
        outer = before.index(pickletools.markobject)
        popped = outer  # what sits below the mark (the dict of SETITEMS, the set of ADDITEMS)
        stack[:] = marks.pop()
    else:
        popped = len(before)
    if popped:
        if len(stack) < popped:
            raise IndexError("stack underflow")
        del stack[len(stack) - popped :]
    stack.extend([_OPAQUE] * len(op.stack_after))


def _storage(pid: Any, out: Scan, what: str) -> None:
    """Record one persistent id: ('storage', class, key, location, numel[, view])."""
    bad = UnreadableFile(
        f"{what} holds a persistent id that is not a storage torch.save writes "
        f"({excerpt(pid if isinstance(pid, tuple | str | int) else type(pid).__name__, 80)}).",
        code="bad_pickle",
    )
    if not isinstance(pid, tuple) or len(pid) not in (5, 6) or _text(pid[0]) != "storage":
        raise bad
    kind, key, location, numel = pid[1:5]
    key = _text(key)
    if not isinstance(kind, Global) or key is None or _text(location) is None:
        raise bad
    if kind not in ITEMSIZE:
        raise UnsupportedType(
            f"{what} holds a storage of class {excerpt(kind.module + '.' + kind.name, 80)}; "
            "save float, int or bool tensors.",
            code="storage_type",
        )
    if type(numel) is not int or numel < 0:
        raise UnreadableFile(
            f"{what}: storage {excerpt(key)} declares {excerpt(numel)} elements; a whole "
            "number >= 0 is needed.",
            code="bad_pickle",
        )
    view = None
    if len(pid) == 6 and pid[5] is not None:
        view = pid[5]
        if (
            not isinstance(view, tuple)
            or len(view) != 3
            or _text(view[0]) is None
            or not all(type(v) is int and v >= 0 for v in view[1:])
            or view[1] + view[2] > numel
        ):
            raise UnreadableFile(
                f"{what}: storage {excerpt(key)} has a view {excerpt(view, 80)} outside "
                f"its {numel} elements.",
                code="bad_pickle",
            )
        view = (_text(view[0]) or "", view[1], view[2])
    storage = Storage(key, kind.name, ITEMSIZE[kind], numel, view)
    seen = out.storages.get(key)
    if seen is not None and (seen.kind, seen.numel) != (storage.kind, storage.numel):
        raise UnreadableFile(
            f"{what}: storage {excerpt(key)} is declared twice, as {seen.numel} "
            f"{seen.kind} and as {numel} {storage.kind} elements.",
            code="bad_pickle",
        )
    out.storages.setdefault(key, storage)


def legacy(
    data: bytes | bytearray,
    what: str,
    *,
    max_ops: int,
    max_tensors: int,
    max_storages: int,
    max_bytes: int,
    stop: threading.Event | None = None,
) -> dict[str, Storage]:
    """The storages of a legacy torch.save file, each checked against the bytes after it.

    The layout (torch/serialization.py, _legacy_load): pickles of the magic number, the
    protocol version and system information; the object's pickle; a pickle of the list of
    storage keys; then, for each key in that order, its element count as a little-endian
    int64 and its bytes. Every count must equal what the object's pickle declared, every
    storage's bytes must be there, and nothing may follow the last one. Refused before
    anything is allocated: more than `max_storages` storages or `max_bytes` bytes in all.
    """
    try:
        magic = scan(data, 0, what, max_ops=16, max_tensors=0)
    except (TooLarge, UnreadableFile):
        magic = Scan(_OPAQUE)
    if magic.value != LEGACY_MAGIC:
        raise UnsupportedType(
            f"{what} is a pickle but not a torch.save file; uploads are never unpickled. "
            "Save with torch.save, or as .npy/.safetensors.",
            code="pickle",
        )
    protocol = scan(data, magic.end, what, max_ops=16, max_tensors=0)
    if protocol.value != LEGACY_PROTOCOL:
        raise UnreadableFile(
            f"{what} is a legacy torch.save file of protocol {excerpt(protocol.value)}; "
            f"only {LEGACY_PROTOCOL} exists.",
            code="bad_pickle",
        )
    sys_info = scan(data, protocol.end, what, max_ops=256, max_tensors=0)
    main = scan(data, sys_info.end, what, max_ops=max_ops, max_tensors=max_tensors, stop=stop)
    if len(main.storages) > max_storages:
        raise TooLarge(
            f"{what} holds {len(main.storages)} storages; at most {max_storages} are read."
        )
    declared = sum(s.nbytes for s in main.storages.values())
    if declared > max_bytes:
        raise TooLarge(
            f"{what} declares {declared} bytes of tensor data; the limit is {max_bytes} "
            "(8 bytes for each of ONEBYONE_MAX_VALUES). Send a smaller checkpoint."
        )
    keys = scan(
        data,
        main.end,
        what,
        max_ops=4 * len(main.storages) + 16,
        max_tensors=0,
        stop=stop,
    )
    order = keys.value
    if (
        not isinstance(order, list)
        or not all(isinstance(k, str) for k in order)
        or len(set(order)) != len(order)
        or set(order) != set(main.storages)
    ):
        raise UnreadableFile(
            f"{what}: its list of storage keys does not name each of its "
            f"{len(main.storages)} storages once.",
            code="bad_pickle",
        )
    offset = keys.end
    for key in order:
        storage = main.storages[key]
        if offset + 8 > len(data):
            raise UnreadableFile(
                f"{what} is truncated: storage {excerpt(key)} has no bytes.", code="truncated"
            )
        (count,) = struct.unpack_from("<q", data, offset)
        if count != storage.numel:
            raise UnreadableFile(
                f"{what}: storage {excerpt(key)} is declared with {storage.numel} elements "
                f"but its data says {count}; the file is damaged or crafted.",
                code="bad_storage",
            )
        offset += 8 + storage.nbytes
        if offset > len(data):
            raise UnreadableFile(
                f"{what} is truncated: storage {excerpt(key)} declares {storage.nbytes} bytes "
                f"but only {len(data) - (offset - storage.nbytes)} follow.",
                code="truncated",
            )
    if offset != len(data):
        raise UnreadableFile(
            f"{what} has {len(data) - offset} bytes after its last storage; the file is "
            "damaged or crafted.",
            code="bad_storage",
        )
    return main.storages


def zip_storages(
    data_pkl: bytes | bytearray,
    sizes: dict[str, int],
    what: str,
    *,
    max_ops: int,
    max_tensors: int,
    stop: threading.Event | None = None,
) -> dict[str, Storage]:
    """The storages a zip-format `data.pkl` declares, each checked against its member's size.

    `sizes` maps each storage key to the size of its member (`<root>/data/<key>`).
    """
    found = scan(data_pkl, 0, what, max_ops=max_ops, max_tensors=max_tensors, stop=stop)
    if found.end != len(data_pkl):
        raise UnreadableFile(f"{what}: its data.pkl goes on after its end.", code="bad_pickle")
    for key, storage in found.storages.items():
        if storage.view is not None:
            raise UnreadableFile(
                f"{what}: storage {excerpt(key)} has a legacy view in a zip file.",
                code="bad_pickle",
            )
        size = sizes.get(key)
        if size is None:
            raise UnreadableFile(
                f"{what}: storage {excerpt(key)} has no data member.", code="bad_storage"
            )
        if size != storage.nbytes:
            raise UnreadableFile(
                f"{what}: storage {excerpt(key)} declares {storage.numel} {storage.kind} "
                f"elements ({storage.nbytes} bytes) but its member holds {size} bytes; the "
                "file is damaged or crafted.",
                code="bad_storage",
            )
    return found.storages
