"""Tree search agents (ExACT's MCTS and R-MCTS) on the harness's sandboxes and LLM layer.

Modules: options (every knob), tree (nodes, PUCT, backup, best child), expansion (dedupe, priors,
branching factor), policy (the prompt agent's prompt sampled n times), value (single- and
multi-agent debate), memory + reflection (contrastive reflection across tasks), search (the loop),
persist (search.jsonl, rebuild on resume), agents (`mcts`, `rmcts`). Design: docs/design/rmcts.md.
"""
