"""Stage 7: printers. ``text`` (terminal summary), ``latex`` (formulas), ``numpy`` (a module)."""
