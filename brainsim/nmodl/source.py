"""The text of a .mod file: comments blanked, line lookup, and the constructs outside the supported subset."""

import re

from ..errors import MechanismError

UNSUPPORTED = frozenset(
    """
    VERBATIM POINTER BBCOREPOINTER KINETIC FUNCTION_TABLE LINEAR NONLINEAR DISCRETE
    PARTIAL WATCH ELECTRODE_CURRENT LONGITUDINAL_DIFFUSION CONSERVE COMPARTMENT WHILE EXTERNAL
    BEFORE AFTER CONSTRUCTOR DESTRUCTOR LAG STEADYSTATE FOR_NETCONS
    """.split()
)
"""Keywords outside the supported subset (KINETIC and the rest may come later)."""


class Source:
    """A .mod file's text, with comments (':' and '?' to the end of a line, COMMENT ... ENDCOMMENT)
    blanked so that keyword searches give the lines of code."""

    def __init__(self, path, text):
        self.path, self.text = str(path), text
        code = re.sub(
            r"\bCOMMENT\b.*?\bENDCOMMENT\b", lambda m: re.sub(r"[^\n]", " ", m.group()), text, flags=re.S
        )
        self.code = re.sub(r"[:?][^\n]*", lambda m: " " * len(m.group()), code)

    def line_of(self, pattern, start=0):
        """1-based line of the first match of the regex pattern in the code at or after offset start."""
        m = re.compile(pattern).search(self.code, start)
        return None if m is None else self.code.count("\n", 0, m.start()) + 1

    def block_start(self, keyword, name=None):
        """Offset of the block `keyword [name]` (0 when absent)."""
        pattern = rf"\b{keyword}\b" + (rf"\s+{re.escape(name)}\b" if name else "")
        m = re.search(pattern, self.code)
        return 0 if m is None else m.start()

    def error(self, message, pattern=None, start=0, line=None):
        """A MechanismError at the line of pattern (or at line)."""
        if line is None and pattern is not None:
            line = self.line_of(pattern, start)
        return MechanismError(message, self.path, line)

    def check_supported(self):
        """Raise MechanismError at the first construct outside the supported subset."""
        found = [
            (m.start(), m.group()) for m in re.finditer(r"\b[A-Z_]+\b", self.code) if m.group() in UNSUPPORTED
        ]
        if found:
            offset, word = min(found)
            line = self.code.count("\n", 0, offset) + 1
            raise MechanismError(f"{word} is not supported by the NMODL translator", self.path, line)
