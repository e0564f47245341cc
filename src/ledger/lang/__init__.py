"""lang: the policy language, from text to a checked `Policy`.

`policy.lark` is the specification; `syntax` parses text into frozen AST nodes (`ast`)
that remember their positions; `check` resolves names and types into a `Policy`
(`policy`), returning every diagnostic at once; `lint` warns; `load` reads policy files
and folders; `unparse` writes AST back as text for `fmt` (the canonical layout) and for
explanations. Imports only ledger.core.
"""
