"""The JAX trainer's checkpoint payload: Flax's msgpack bytes, with the arrays' data not copied.

``flax.serialization.msgpack_serialize`` copies each array's data four times on the way to
its bytes (``tobytes``, the array's own packing, the extension's, the whole map's): 3.7 ms
for the rerank model's 4 MB state on a 2-core CPU, on the checkpoint thread, beside the
training steps, every epoch. ``msgpack_buffers`` gives the same bytes as a list of buffers,
each large array's data as a view of the array, for ``ltr_common.files.write_checkpoint_bytes``
to hash and write in turn. Everything else is packed by Flax and msgpack themselves; only the
two headers of a large array (an ``ext 32`` of Flax's ndarray type around a 3-element array
whose last element is a ``bin 32``) are written here, where msgpack's format leaves them no
other form. ``flax.serialization.msgpack_restore`` reads the joined buffers.
"""

from __future__ import annotations

import struct

import flax.serialization
import jax
import msgpack
import numpy as np

# Arrays of at least this many bytes are framed here: msgpack holds data of 65,536 bytes or
# more only in its 32-bit forms (bin 32, and ext 32 for the extension around it).
VIEW_MIN_BYTES = 2**16
_NDARRAY_EXT = 1  # Flax's msgpack extension type for an ndarray (flax.serialization)


def msgpack_buffers(tree) -> list:
    """``flax.serialization.msgpack_serialize(tree)`` as buffers: ``b"".join`` of them is those
    bytes. ``tree``: nested dicts with string keys (``flax.serialization.to_state_dict``'s
    form) and leaves msgpack or Flax packs. Arrays of at least ``VIEW_MIN_BYTES`` (and at most
    Flax's chunk size, above which Flax splits them) appear as views of C-contiguous data:
    the caller must not change them until the buffers are written.

    Example:
      >>> import numpy as np, flax
      >>> tree = {"w": np.arange(2**15, dtype=np.float32), "step": 3}
      >>> b"".join(msgpack_buffers(tree)) == flax.serialization.msgpack_serialize(tree)
      True
    """
    out: list = []
    _pack(jax.tree.map(lambda x: x, tree), out)  # as Flax does first: each dict's keys sorted
    return out


def _pack(node, out: list) -> None:
    # A map as msgpack packs one, where Flax's strict types take it as a map with string keys
    # (what ``to_state_dict`` gives); anything else is Flax's to pack, or to refuse.
    if type(node) is dict and all(type(key) is str for key in node):
        out.append(msgpack.Packer().pack_map_header(len(node)))
        for key, value in node.items():
            out.append(msgpack.packb(key))
            _pack(value, out)
        return
    if isinstance(node, jax.Array):
        node = np.asarray(node)
    if (
        type(node) is np.ndarray
        and not (node.dtype.hasobject or node.dtype.isalignedstruct)
        and VIEW_MIN_BYTES <= node.nbytes <= flax.serialization.MAX_CHUNK_SIZE
    ):
        data = np.ascontiguousarray(node)  # at least 1-D: the shape is the node's
        head = b"\x93" + msgpack.packb(node.shape) + msgpack.packb(data.dtype.name)
        head += b"\xc6" + struct.pack(">I", data.nbytes)  # bin 32: the data's length
        out.append(b"\xc9" + struct.pack(">IB", len(head) + data.nbytes, _NDARRAY_EXT) + head)
        out.append(memoryview(data.reshape(-1).view(np.uint8)))  # any dtype, bfloat16 too
        return
    out.append(flax.serialization.msgpack_serialize(node))  # any other leaf, as Flax packs it
