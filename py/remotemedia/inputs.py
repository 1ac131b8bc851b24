"""What a run or push was given, as (pipeline input index, Audio) pairs."""

from __future__ import annotations

from .audio import Audio
from .errors import InvalidInputError, did_you_mean


def call_inputs(names: list[str], given, input: str | None, call: str) -> list[tuple[int, Audio]]:
    """What a run or push was given, as (input index, Audio) pairs in the order given:
    an Audio for the one input (or the input named ``input``), or a dict of Audio by
    input name (``names``: the pipeline's inputs). Raises InvalidInputError, naming the
    inputs there are, for anything else; nothing has run then."""
    if isinstance(given, Audio):
        if input is None:
            if len(names) != 1:
                raise InvalidInputError(f"{call}: this pipeline has the inputs {', '.join(names)}: give a dict of Audio "
                                        f"by input name, or input=NAME")
            given.check_layout()
            return [(0, given)]
        given = {input: given}
    elif input is not None:
        raise InvalidInputError(f"{call}: input=NAME goes with one Audio, got {type(given).__name__}")
    if not isinstance(given, dict) or not given:
        what = "an empty dict" if isinstance(given, dict) else type(given).__name__
        raise InvalidInputError(f"{call} takes remotemedia.Audio or a dict of Audio by input name, got {what}")
    pairs = []
    for name, audio in given.items():
        if name not in names:
            hint = did_you_mean(name, names) if isinstance(name, str) else ""
            raise InvalidInputError(f"{call}: the pipeline has no input {name!r}{hint}; inputs: {', '.join(names)}")
        if not isinstance(audio, Audio):
            raise InvalidInputError(f"{call}: input '{name}' takes remotemedia.Audio, got {type(audio).__name__}")
        audio.check_layout()
        pairs.append((names.index(name), audio))
    return pairs
