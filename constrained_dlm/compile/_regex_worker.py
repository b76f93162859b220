"""The helper process behind ``byte_dfa``: reads regexes, answers with outlines-core byte DFAs.

Protocol on stdin/stdout: 4-byte big-endian length + pickle, both ways. Started as
``python -m constrained_dlm.compile._regex_worker MEMORY_BYTES``; it imports only outlines-core.
"""

import pickle
import struct
import sys


def _read(stream):
    head = stream.read(4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack(">I", head)
    return pickle.loads(stream.read(n))


def _write(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def main() -> None:
    try:
        import resource
        limit = int(sys.argv[1])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except Exception:
        pass
    from outlines_core import Index, Vocabulary

    vocab = Vocabulary(256, {bytes([b]): [b] for b in range(256)})
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        regex = _read(inp)
        if regex is None:
            return
        try:
            index = Index(regex, vocab)
            _write(out, ("ok", (index.get_initial_state(), list(index.get_final_states()),
                                index.get_transitions())))
        except MemoryError:
            _write(out, ("memory", None))
        except Exception as e:  # outlines-core rejects the syntax
            _write(out, ("error", str(e)))


if __name__ == "__main__":
    main()
