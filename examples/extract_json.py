"""JSON extraction with the embedded model: a pydantic model in, a validated instance out.

    python examples/extract_json.py

The output always validates (the constraint guarantees it); how *right* the values are depends
on the model, and the embedded one is tiny. Swap in a real one with ``load_model("GSAI-ML/LLaDA-
8B-Instruct", trust_remote_code=True, revision=...)`` on a GPU.
"""

from typing import Literal

from pydantic import BaseModel, Field

from constrained_dlm import generate_json, load_model, sampler_options


class Person(BaseModel):
    name: str = Field(max_length=40)
    age: int = Field(ge=0, le=130)
    job: Literal["engineer", "mathematician", "scientist", "other"]
    city: str = Field(max_length=30)


def main() -> None:
    model = load_model()                          # the embedded default model, no download
    for text in ["Ada Lovelace, 36, an engineer who lives in London.",
                 "Alan Turing is 41 and lives in Manchester; a mathematician."]:
        res = generate_json(model, Person, text, options=sampler_options(model, steps=12))
        print(f"{text}\n  -> {res.value!r}  ({res.nfe} forward passes)")


if __name__ == "__main__":
    main()
