"""A denoising loop we do not own, kept valid by CanvasMatcher (see docs/engines.md).

The low-confidence remasking loop of the LLaDA paper (Nie et al. 2025, Alg. 2), written from
the paper, with two lines added: the model's logits are turned into one jointly valid
completion (``matcher.propose``) and the loop commits its most confident positions. Runs on
the embedded model, offline:

    python examples/matcher_loop.py
"""

import json

import torch

import constrained_dlm as cd
from constrained_dlm.decode.matcher import CanvasMatcher

model = cd.load_model(device="cpu")                         # any mask-diffusion model
schema = json.load(open("examples/person.schema.json"))
template = cd.compile_json_schema(schema, model.vocab)
matcher = CanvasMatcher(template)                           # built once per template

prompt = torch.tensor([model.format_prompt("Grace Hopper, 85, admiral from New York.")])
mask = model.vocab.mask_id
canvas = torch.as_tensor(template.token_ids)[None].clone()  # scaffold + masks
steps = 8
with torch.no_grad():
    for step in range(steps):
        undecided = canvas == mask
        left = int(undecided.sum())
        if left == 0:
            break
        ids = torch.cat([prompt, canvas], 1)
        logits = model(ids, torch.ones_like(ids, dtype=torch.bool))[:, prompt.shape[1]:]
        proposal = matcher.propose(canvas, logits)          # jointly valid, most probable
        conf = logits.log_softmax(-1).gather(-1, proposal[..., None])[..., 0]
        conf = torch.where(undecided, conf, float("-inf"))
        k = -(-left // (steps - step))                      # the paper's linear schedule
        top = conf.topk(k, -1).indices
        canvas[0, top[0]] = proposal[0, top[0]]
        print(f"step {step + 1}: {left - k} positions left")
print(json.dumps(matcher.values(canvas)[0]))
