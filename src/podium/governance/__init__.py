"""Governance: what each agent may do, who approved it, and the record that proves it.

- `policy`: deny-by-default grants per agent and role, checked in the door's `policy` slot
  for every tool call, whoever asks (an LLM's tool call, `ctx.use`, an MCP tool).
- `approvals`: a tool call that needs a person suspends the run at that call; an approval is
  bound to a hash of the exact arguments, single use, with an optional time to live.
- `taint`: content from tools, documents, other agents and peers is untrusted; an effect
  whose arguments derive from it is escalated unless a plan pinned it or a sanitiser passed it.
- `audit`: security-relevant records, hash-chained, written with the journal row.
- `pii`: detectors and masking of personal data and secrets at agent boundaries.

A check's outcome is a `Verdict`: allow, deny (a `PolicyDeniedError`, fed back to the model
as a refusal), or approve (ask a person for this exact call).
"""
