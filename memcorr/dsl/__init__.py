"""Stage 1, the language: program text -> checked program (docs/language.md).

Input: the text of an ``.opt`` program, a path, or the name of a bundled program. Output:
``Checked`` — the declarations by kind, the statements and the read/write graph of one step.

- ``library``: where a program comes from (text, a file, ``derivations/NAME.opt``);
- ``parse``: text -> ``ast.Program`` with the lark grammar of ``grammars/``;
- ``check``: every rule that needs no algebra, each a positioned ``DSLError``;
- ``ast``: the node types and ``Visitor``, the one way the later stages walk them.
"""
