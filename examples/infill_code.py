"""Fill-in-the-middle for Python with the embedded model: the filled file always compiles.

    python examples/infill_code.py

Two expression holes in one file, filled jointly (an assignment's value and a return value).
The first run of a new kind of hole compiles its automaton (seconds to tens of seconds on a
laptop CPU); it is then cached on disk (``~/.cache/constrained-dlm``), so later runs start at
once. ``cdlm infill FILE --at LINE[:COL]`` does the same from the shell.
"""

from constrained_dlm import Gap, infill_document, load_model, sampler_options

PREFIX = '''def mean(values):
    """The arithmetic mean of a non-empty list."""
    total = 0
    for v in values:
        total = '''
MIDDLE = '''
    return '''
SUFFIX = '''


print(mean([1, 2, 3]))
'''


def main() -> None:
    model = load_model()
    res = infill_document(model, [PREFIX, Gap(max_tokens=8), MIDDLE, Gap(max_tokens=8), SUFFIX],
                          options=sampler_options(model, steps=8))
    print(res.document)
    compile(res.document, "<filled>", "exec")      # always compiles: checked independently here
    print(f"middles: {res.middles}  ({res.nfe} forward passes)")


if __name__ == "__main__":
    main()
